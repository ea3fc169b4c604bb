//! Pseudo-terminal plumbing: opening a pty pair, making the slave raw, publishing it behind a
//! stable symlink, and async reads/writes on the master. It owns file descriptors and paths only;
//! what is written is decided by `modem.rs` and `audio.rs`.
//!
//! Why nix `openpty` and not `SerialStream::pair()`: we need the slave's path for the symlink and
//! we keep our own slave descriptor open for the pty's lifetime, so the master never sees EIO
//! when the daemon closes and reopens the port (a real USB tty also survives that). Unplugging
//! drops both descriptors on purpose. The slave is made raw (cfmakeraw) so CR/LF pass untouched
//! and nothing is echoed by the line discipline; the daemon's tokio-serial open sets its own
//! termios on top, like on a real tty.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use tokio::io::unix::AsyncFd;

/// Errors from pty and symlink handling.
#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    #[error("openpty failed: {0}")]
    Open(nix::Error),
    #[error("setting up pty {what}: {source}")]
    Setup {
        what: &'static str,
        source: nix::Error,
    },
    #[error("registering pty with the runtime: {0}")]
    Register(io::Error),
    #[error("creating symlink {link} -> {target}: {source}")]
    Link {
        link: PathBuf,
        target: PathBuf,
        source: io::Error,
    },
}

/// One open pseudo-terminal pair.
pub struct Pty {
    master: AsyncFd<OwnedFd>,
    /// Held open so the master does not read EIO while no client has the slave open.
    _slave: OwnedFd,
    slave_path: PathBuf,
}

impl Pty {
    /// Opens a pty with a raw slave and a non-blocking master. Needs a tokio runtime.
    pub fn open() -> Result<Pty, PtyError> {
        let pair = nix::pty::openpty(None, None).map_err(PtyError::Open)?;
        let mut t = tcgetattr(pair.slave.as_fd()).map_err(|source| PtyError::Setup {
            what: "tcgetattr",
            source,
        })?;
        cfmakeraw(&mut t);
        tcsetattr(pair.slave.as_fd(), SetArg::TCSANOW, &t).map_err(|source| PtyError::Setup {
            what: "tcsetattr",
            source,
        })?;
        let slave_path =
            nix::unistd::ttyname(pair.slave.as_fd()).map_err(|source| PtyError::Setup {
                what: "ttyname",
                source,
            })?;
        let flags =
            fcntl(pair.master.as_fd(), FcntlArg::F_GETFL).map_err(|source| PtyError::Setup {
                what: "F_GETFL",
                source,
            })?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(pair.master.as_fd(), FcntlArg::F_SETFL(flags)).map_err(|source| PtyError::Setup {
            what: "F_SETFL",
            source,
        })?;
        // SAFETY: `OwnedFd` is a valid open descriptor that keeps referring to the same file
        // description until the AsyncFd (which owns it) is dropped.
        let master = unsafe { AsyncFd::register(pair.master) }
            .map_err(|e| PtyError::Register(e.into_parts().1))?;
        Ok(Pty {
            master,
            _slave: pair.slave,
            slave_path,
        })
    }

    /// The slave's device path (`/dev/pts/N`).
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }

    /// Reads what the client wrote. Never returns 0 while we hold the slave open.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.master.readable().await?;
            match guard
                .try_io(|fd| nix::unistd::read(fd.get_ref().as_fd(), buf).map_err(io::Error::from))
            {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Reads whatever is available now without waiting (0 if nothing).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match nix::unistd::read(self.master.get_ref().as_fd(), buf) {
            Ok(n) => Ok(n),
            Err(nix::errno::Errno::EAGAIN) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes all bytes, waiting at most `patience` for room each time the pty buffer is full.
    /// Returns the number of bytes dropped because nobody read them in time (a real serial line
    /// loses output nobody reads, too).
    pub async fn write_all(&self, mut bytes: &[u8], patience: Duration) -> io::Result<usize> {
        while !bytes.is_empty() {
            let ready = tokio::time::timeout(patience, self.master.writable()).await;
            let Ok(guard) = ready else {
                return Ok(bytes.len());
            };
            let mut guard = guard?;
            match guard.try_io(|fd| {
                nix::unistd::write(fd.get_ref().as_fd(), bytes).map_err(io::Error::from)
            }) {
                Ok(Ok(n)) => bytes = bytes.get(n..).unwrap_or_default(),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(0)
    }

    /// Writes what fits now without waiting; returns bytes written.
    pub fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        match nix::unistd::write(self.master.get_ref().as_fd(), bytes) {
            Ok(n) => Ok(n),
            Err(nix::errno::Errno::EAGAIN) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }
}

/// Points `link` at `target`, replacing an existing link atomically (symlink to a temporary name,
/// then rename), so a client never sees the path missing during a replug.
pub fn publish(link: &Path, target: &Path) -> Result<(), PtyError> {
    // Unique per call: `with_extension` would give `modem0` and `modem0.audio` the same temporary
    // name, and their tasks (the audio one on its own thread) publish at the same moment on a
    // replug: one removed or renamed the other's link, and the AT port never came back.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = link.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}-{n}", std::process::id()));
    let tmp = link.with_file_name(name);
    let _ = std::fs::remove_file(&tmp);
    let err = |source| PtyError::Link {
        link: link.to_path_buf(),
        target: target.to_path_buf(),
        source,
    };
    std::os::unix::fs::symlink(target, &tmp).map_err(err)?;
    std::fs::rename(&tmp, link).map_err(|source| PtyError::Link {
        link: link.to_path_buf(),
        target: target.to_path_buf(),
        source,
    })
}

/// Removes a published link if it is still there.
pub fn unpublish(link: &Path) {
    let _ = std::fs::remove_file(link);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[tokio::test]
    async fn raw_bytes_pass_both_ways() {
        let pty = Pty::open().unwrap();
        let mut client = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(pty.slave_path())
            .unwrap();
        client.write_all(b"AT\r\n").unwrap();
        let mut buf = [0u8; 16];
        let n = pty.read(&mut buf).await.unwrap();
        // Raw: the CR is not translated and nothing is echoed back.
        assert_eq!(&buf[..n], b"AT\r\n");
        assert_eq!(
            pty.write_all(b"\r\nOK\r\n", Duration::from_secs(1))
                .await
                .unwrap(),
            0
        );
        let mut got = [0u8; 6];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"\r\nOK\r\n");
    }

    #[tokio::test]
    async fn client_close_does_not_break_master() {
        let pty = Pty::open().unwrap();
        {
            let mut c = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(pty.slave_path())
                .unwrap();
            c.write_all(b"x").unwrap();
        }
        let mut buf = [0u8; 4];
        assert_eq!(pty.read(&mut buf).await.unwrap(), 1);
        // No client now: a non-blocking read finds nothing instead of EIO.
        assert_eq!(pty.try_read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn publish_replaces_link() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("modem0");
        publish(&link, Path::new("/dev/null")).unwrap();
        publish(&link, Path::new("/dev/zero")).unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/dev/zero"));
        unpublish(&link);
        assert!(!link.exists());
    }

    /// The AT link and the audio link of one modem (`modem0`, `modem0.audio`) are published by
    /// two threads at once on a replug; neither may break the other.
    #[test]
    fn an_at_link_and_its_audio_link_publish_concurrently() {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("modem0");
        let audio = dir.path().join("modem0.audio");
        let spawn = |link: PathBuf, target: &'static str| {
            std::thread::spawn(move || {
                for _ in 0..500 {
                    publish(&link, Path::new(target)).expect("publish");
                }
            })
        };
        let a = spawn(at.clone(), "/dev/null");
        let b = spawn(audio.clone(), "/dev/zero");
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(std::fs::read_link(&at).unwrap(), Path::new("/dev/null"));
        assert_eq!(std::fs::read_link(&audio).unwrap(), Path::new("/dev/zero"));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "no temporary link left behind");
    }
}
