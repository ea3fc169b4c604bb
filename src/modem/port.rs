//! Opening, reading and writing the AT serial port, and noticing that it is gone.
//!
//! The port is opened exactly as a real tty (`tokio_serial::new(path, baud).open_native_async()`),
//! so the simulator's pseudo-terminals exercise the production path. serialport opens ttys in
//! exclusive mode by default (`TIOCEXCL` plus `flock(LOCK_EX)`, as chan_quectel locks its ttys):
//! no second process (ModemManager, a stray `screen`) may talk to the same modem. The configured
//! path is re-resolved on every open because `/dev/serial/by-id` and simulator symlinks point to a
//! new ttyUSBn / pts after re-enumeration. A read of 0 bytes, or EIO, means the device is gone
//! (tokio-serial semantics for an unplugged USB tty and a closed pty master).
//!
//! A write is never followed by a flush: tokio-serial's flush is `tcdrain(3)`, a blocking ioctl
//! that waits until the tty has put every byte on the wire. Run on a runtime worker, it stalled
//! that worker for the transmit time of each command (milliseconds on a UART adapter at
//! 115,200 baud) and, on a modem that stops taking bytes (flow control held, a wedged USB
//! stick), for as long as it stays stuck, with every task on that worker. Nothing here needs the
//! drain: the modem answers only what it received, and the command timeout covers a modem that
//! never does. The kernel's write buffer is the only queue (one ioctl less per write, four per
//! SMS: docs/daemon.md, "Footprint").

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::{SerialPortBuilderExt, SerialStream};

/// The result of one read.
#[derive(Debug)]
pub(crate) enum ReadOutcome {
    /// This many bytes were read into the buffer.
    Data(usize),
    /// The device is gone (EOF, EIO or another fatal error, described).
    Gone(String),
}

/// An open AT port.
#[derive(Debug)]
pub(crate) struct Port {
    stream: SerialStream,
    /// The path the configured name resolved to when opened (for logs).
    pub(crate) resolved: PathBuf,
}

/// Resolves symlinks of the configured path (`None` if it does not exist right now).
pub(crate) fn resolve(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}

impl Port {
    /// Opens `path` (after resolving symlinks) at `baud`, exclusively.
    pub(crate) fn open(path: &Path, baud: u32) -> Result<Port, tokio_serial::Error> {
        let resolved = resolve(path).ok_or_else(|| {
            tokio_serial::Error::new(
                tokio_serial::ErrorKind::NoDevice,
                format!("{} does not exist", path.display()),
            )
        })?;
        let stream = tokio_serial::new(resolved.to_string_lossy(), baud).open_native_async()?;
        Ok(Port { stream, resolved })
    }

    /// Reads what is available (cancel safe: usable in `select!`).
    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> ReadOutcome {
        match self.stream.read(buf).await {
            Ok(0) => ReadOutcome::Gone("end of file (device unplugged)".into()),
            Ok(n) => ReadOutcome::Data(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => ReadOutcome::Data(0),
            Err(e) => ReadOutcome::Gone(e.to_string()),
        }
    }

    /// Writes all bytes into the tty (not drained: see the module comment).
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }
}
