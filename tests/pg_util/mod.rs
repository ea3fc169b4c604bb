//! A real PostgreSQL server for tests: Debian's `postgresql` package, `initdb` into a fresh temp
//! dir, `postgres` on 127.0.0.1 with a free port and its unix socket inside the temp dir, one
//! database owned by one login role with a password (scram-sha-256 over TCP, as in production).
//! Dropping the [`PgServer`] stops the server (fast shutdown, by its PID) and removes the dir.
//!
//! Why it is built this way:
//! - The newest installed major version is used (`/usr/lib/postgresql/<N>/bin`), so a Debian
//!   upgrade does not break the tests. No PostgreSQL installed is a test FAILURE with the fix in
//!   the message, never a silent skip: CI installs the package (`.ci/run`), and a suite that
//!   quietly stops testing the second backend would look green while proving nothing.
//! - `initdb` and `postgres` refuse to run as root, and CI runs as root: then both run as the
//!   `postgres` system user the Debian package creates (the temp dir is chowned to it), otherwise
//!   as the current user.
//! - The superuser is reached only over the unix socket in the temp dir (`trust`), so no other
//!   local user's server or socket is ever touched; the test role uses TCP with its password.
//! - Readiness is polled (a connection attempt every 50 ms, 60 s deadline) while watching that the
//!   server did not exit; its log is printed when it fails. No fixed sleeps anywhere.
//! - `fsync=off`: the tests exercise SQL and concurrency, not the disk; the server's own crash
//!   safety is PostgreSQL's business.
//! - [`PgServer::restart`] stops and starts the same data dir on the same port, for tests of
//!   reconnecting after the database went away.

#![allow(dead_code)]

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to start or stop on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(90);

/// The superuser `initdb` creates; reached over the unix socket only.
const SUPERUSER: &str = "pgadmin";

/// A throw-away PostgreSQL server with one database and one password-protected login role.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<(u32, u32)>,
    port: u16,
    child: Option<Child>,
    /// The test database, owned by [`PgServer::user`].
    pub db: String,
    /// The login role the tests (and the gateway) use; not a superuser.
    pub user: String,
    /// Its password, checked with scram-sha-256 over TCP.
    pub password: String,
}

/// Options for [`PgServer::start_with`].
#[derive(Default)]
pub struct PgOptions {
    /// PEM certificate and key to serve TLS with (`ssl = on`).
    pub tls: Option<(String, String)>,
}

impl PgServer {
    /// Starts a fresh server with database `gsmgate` and role `gsmgate`.
    pub fn start() -> PgServer {
        PgServer::start_with(PgOptions::default())
    }

    pub fn start_with(options: PgOptions) -> PgServer {
        let bin = newest_bin_dir();
        let run_as = run_as_user();
        let dir = tempfile::Builder::new()
            .prefix("gsmgate-pg-")
            .tempdir()
            .expect("temp dir");
        // The server must be able to enter its dir; root's tempdir is 0700.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        chown(dir.path(), run_as);
        let mut server = PgServer {
            dir,
            bin,
            run_as,
            port: 0,
            child: None,
            db: "gsmgate".into(),
            user: "gsmgate".into(),
            password: "s3cret-Pa55 with spaces".into(),
        };
        server.initdb(&options);
        // A port that was free a moment ago can be taken before the server binds it: retry with
        // another one rather than failing the test.
        let mut tries = 0;
        loop {
            server.port = free_port();
            match server.spawn_and_wait() {
                Ok(()) => break,
                Err(log) if tries < 5 && log.contains("could not") => tries += 1,
                Err(log) => panic!("PostgreSQL did not start:\n{log}"),
            }
        }
        server.create_role_and_db();
        server
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the data dir, the socket and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The connection URL for the test role (no password: it is given separately).
    pub fn url(&self, sslmode: &str) -> String {
        format!(
            "postgres://{}@127.0.0.1:{}/{}?sslmode={}",
            self.user, self.port, self.db, sslmode
        )
    }

    /// A superuser connection over the unix socket, for set-up and inspection.
    pub fn superuser(&self, db: &str) -> postgres::Client {
        socket_config(self.dir.path(), self.port, db)
            .connect(postgres::NoTls)
            .expect("superuser connection over the unix socket")
    }

    /// A new, empty database owned by the test role.
    pub fn create_database(&self, name: &str) {
        let mut admin = self.superuser("postgres");
        admin
            .batch_execute(&format!("CREATE DATABASE {name} OWNER {}", self.user))
            .unwrap();
    }

    /// Stops the server (fast shutdown) and starts it again on the same data dir and port.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(log) = self.spawn_and_wait() {
            panic!("PostgreSQL did not restart on port {}:\n{log}", self.port);
        }
    }

    /// Fast shutdown by PID (SIGINT: connections are cut, the server exits cleanly), waiting
    /// for the process to end; SIGKILL if it has not after the deadline.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if start.elapsed() < DEADLINE => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
            }
        }
    }

    /// The server's log so far (printed by failing tests).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        // The test's own cwd may not be readable by the postgres user.
        cmd.current_dir(self.dir.path());
        cmd.env_remove("PGDATA").env("LC_ALL", "C.UTF-8");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn initdb(&self, options: &PgOptions) {
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-U", SUPERUSER, "-E", "UTF8", "--locale=C.UTF-8"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .args(["--no-sync", "--no-instructions"])
            .output()
            .expect("running initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut conf = String::from(
            "\n# gsmgate tests\nfsync = off\nshared_buffers = 16MB\nmax_connections = 50\n\
             listen_addresses = '127.0.0.1'\n",
        );
        if let Some((cert, key)) = &options.tls {
            let cert_path = self.dir.path().join("server.crt");
            let key_path = self.dir.path().join("server.key");
            fs::write(&cert_path, cert).unwrap();
            fs::write(&key_path, key).unwrap();
            // PostgreSQL refuses a key readable by others.
            fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600)).unwrap();
            chown(&cert_path, self.run_as);
            chown(&key_path, self.run_as);
            conf.push_str(&format!(
                "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
                cert_path.display(),
                key_path.display()
            ));
        }
        let conf_path = self.data_dir().join("postgresql.conf");
        let mut text = fs::read_to_string(&conf_path).unwrap();
        text.push_str(&conf);
        fs::write(&conf_path, text).unwrap();
    }

    /// Starts `postgres` and waits until it accepts connections; `Err(log)` if it exited.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log_path = self.dir.path().join("postgres.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        chown(&log_path, self.run_as);
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawning postgres");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return Err(format!("postgres exited with {status}\n{}", self.log()));
            }
            let ok = socket_config(self.dir.path(), self.port, "postgres")
                .connect(postgres::NoTls)
                .is_ok();
            if ok {
                return Ok(());
            }
            if start.elapsed() > DEADLINE {
                self.stop();
                return Err(format!("not ready after {DEADLINE:?}\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn create_role_and_db(&self) {
        let mut admin = self.superuser("postgres");
        // The password travels as a literal here only; the server stores its SCRAM verifier.
        let pw = self.password.replace('\'', "''");
        // One statement per call: CREATE DATABASE refuses the implicit transaction of a batch.
        for sql in [
            "SET password_encryption = 'scram-sha-256'".to_owned(),
            format!("CREATE ROLE {} LOGIN PASSWORD '{pw}'", self.user),
            format!("CREATE DATABASE {} OWNER {}", self.db, self.user),
        ] {
            admin.batch_execute(&sql).unwrap();
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `bin` dir of the newest PostgreSQL major version installed by Debian's package.
fn newest_bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let newest = fs::read_dir(root).ok().and_then(|entries| {
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let version: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                (bin.join("initdb").exists() && bin.join("postgres").exists())
                    .then_some((version, bin))
            })
            .max_by_key(|(version, _)| *version)
    });
    match newest {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/initdb): the \
             PostgreSQL store tests need a real server. Install Debian's package: \
             `apt-get install postgresql` (.ci/run installs it)."
        ),
    }
}

/// `Some((uid, gid))` of the `postgres` system user when running as root.
fn run_as_user() -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    match nix::unistd::User::from_name("postgres") {
        Ok(Some(user)) => Some((user.uid.as_raw(), user.gid.as_raw())),
        _ => panic!(
            "running as root, but there is no `postgres` system user to run initdb and postgres \
             as (PostgreSQL refuses root): install Debian's `postgresql` package, which creates it"
        ),
    }
}

fn chown(path: &Path, run_as: Option<(u32, u32)>) {
    if let Some((uid, gid)) = run_as {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn socket_config(dir: &Path, port: u16, db: &str) -> postgres::Config {
    let mut config = postgres::Config::new();
    config
        .host_path(dir)
        .port(port)
        .user(SUPERUSER)
        .dbname(db)
        .connect_timeout(Duration::from_secs(10));
    config
}
