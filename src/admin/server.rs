//! The daemon side of the admin socket: binding the socket file safely, accepting connections,
//! checking peers, framing and decoding requests, and answering them in order through a
//! [`Handler`] that the daemon implements.
//!
//! Shape (mini-redis): [`serve`] takes a bound listener and a `CancellationToken`, runs one task per
//! connection under a `TaskTracker`, and returns once every connection task has ended. Protocol
//! concerns stay here and the daemon's meaning stays behind [`Handler`]: the server itself answers
//! `ping` (it proves the accept loop and a connection task are alive), `version` and `watch`;
//! every other command goes to [`Handler::handle`]. A handler reply that does not answer the
//! command it was given (say `Reply::Status` to `send`) is a daemon bug and goes out as `internal`.
//!
//! Limits, so that no client can take the socket from the others (issue 14, item 3): at most
//! `max_connections` connections at once, at most `max_per_uid` from one uid, and the last
//! `reserved_for_root` of them for root only (the rules are `admission`'s). A connection over a
//! limit gets one `unavailable` line saying which limit and is closed, rather than left hanging in
//! the backlog, because a silent hang would look like a dead daemon. Credentials, the access check
//! and admission are decided in the accept loop, in accept order, before a task is spawned.
//!
//! Idle connections: a request connection that sends no complete request for `idle_timeout`, or
//! does not take an answer within it, gets one `unavailable` line and is closed, so leaked
//! connections come back within a minute. A `watch` connection is exempt once acknowledged: its
//! client only reads and may stay silent for days by design; a watcher that does not read loses
//! events (`lagged`), not the daemon's time, and a watcher that dies is noticed at once because
//! the kernel closes its end (EOF). What a pile of watches can hold is bounded by the per-uid cap
//! and the root reserve.
//!
//! Requests longer than `max_request_bytes` are refused without being buffered (see `lines`).
//! Requests on one connection are handled one after another, so pipelined requests are answered
//! in order.
//!
//! Shutdown: when the token fires, connections stop reading, and an in-flight handler call or a
//! blocked write gets `shutdown_grace` to finish (a `send` being stored should still get its
//! answer); after that the connection is dropped, so `serve` always returns promptly.
//!
//! Socket file: [`bind`] never deletes a live daemon's socket (it connects first) nor anything
//! that is not a socket. Against the umask race (the socket exists with umask-derived permissions
//! between `bind(2)` and `chmod`) it binds inside a fresh 0700 directory next to the target,
//! sets mode and group there, then `rename(2)`s the socket into place: nobody but root can reach it
//! before its mode is final, and no process-wide `umask` change races other threads.

use std::future::Future;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::admission::{Admission, Limits};
use super::lines::{Frame, LineReader};
use super::peer::{self, AccessPolicy, Decision, Peer, PeerError, Trusted};
use super::protocol::{
    COMMANDS, Decoded, ErrorBody, ErrorCode, Event, EventKind, EventLine, MAX_REQUEST_BYTES,
    PROTOCOL_VERSION, Pong, Reply, Request, RequestId, Response, VersionData, WatchArgs,
    WatchStarted, decode_request,
};

/// The seam between the protocol machinery and the daemon.
///
/// `handle` gets every decoded request except `ping`, `version` and `watch` (answered by the
/// server) and returns the reply for that command, or an error to send back. It runs on the
/// connection's task; a slow `handle` delays only that connection. `events` hands out a fresh
/// receiver of the daemon's event channel for each `watch`.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        request: Request,
        peer: &Peer,
    ) -> impl Future<Output = Result<Reply, ErrorBody>> + Send;

    fn events(&self) -> broadcast::Receiver<Event>;
}

/// Errors of the server side: binding the socket file and resolving access names.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(
        "another gsmgate daemon is already answering on {path}; stop it first or configure a \
         different [daemon] admin_socket"
    )]
    AlreadyRunning { path: PathBuf },
    #[error("{path} exists and is not a socket; refusing to replace it (remove it yourself)")]
    NotASocket { path: PathBuf },
    #[error("socket path {path} is {len} bytes long; Unix sockets allow at most {max}")]
    PathTooLong {
        path: PathBuf,
        len: usize,
        max: usize,
    },
    #[error("admin socket {path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("admin socket {path}: setting group {gid}: {source}")]
    Chown {
        path: PathBuf,
        gid: u32,
        #[source]
        source: nix::Error,
    },
    #[error(transparent)]
    Access(#[from] PeerError),
}

/// Tunables of [`serve_with`]; [`ServeOptions::new`] gives the defaults. None of them is a
/// configuration key: the defaults fit a gateway administered by a handful of people and
/// scripts, and the daemon uses them as they are.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub access: AccessPolicy,
    /// Who is always let in, and who counts as root for `reserved_for_root`.
    pub trusted: Trusted,
    /// Connections open at once, root's reserve included.
    pub max_connections: usize,
    /// Connections one uid may hold at once (root included).
    pub max_per_uid: usize,
    /// Of `max_connections`, how many only root may take.
    pub reserved_for_root: usize,
    /// How long a request connection may go without a complete request, or without taking its
    /// answer, before it is closed. Not applied to `watch` streams.
    pub idle_timeout: Duration,
    pub max_request_bytes: usize,
    pub shutdown_grace: Duration,
}

/// Default bound on concurrent admin connections: each is a task, an 8 KiB read buffer and at most
/// a 64 KiB request, so the socket costs at most about 5 MiB however it is used.
pub const MAX_CONNECTIONS: usize = 64;
/// Default per-uid bound: a web front end or a bridge holding a `watch` and a few requests in
/// flight fits many times over, while a script leaking connections stops at a quarter of the
/// socket and three other users still fit beside it.
pub const MAX_PER_UID: usize = 16;
/// Default connections held back for root: `status` and `doctor` use one each, so root can run a
/// few at once (or `watch` and ask `status` beside it) when the other users hold all the rest.
pub const RESERVED_FOR_ROOT: usize = 4;
/// Default idle timeout. Every client of ours writes its request as soon as it has connected and
/// asks again within a second (`broadcast --wait` polls each second); a minute is still generous to
/// a person typing requests into `socat`, and frees a leaked connection within a minute.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time an in-flight request may take to finish after shutdown is requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Bound on writing a refusal or farewell line. It is the first and only line on a fresh
/// connection (or the last on an idle one), so it fits the socket buffer and is written at once;
/// the bound only stops a peer that has filled its buffer from holding the task.
const FAREWELL_WRITE: Duration = Duration::from_secs(1);

impl ServeOptions {
    pub fn new(access: AccessPolicy) -> Self {
        ServeOptions {
            access,
            trusted: Trusted::system(),
            max_connections: MAX_CONNECTIONS,
            max_per_uid: MAX_PER_UID,
            reserved_for_root: RESERVED_FOR_ROOT,
            idle_timeout: IDLE_TIMEOUT,
            max_request_bytes: MAX_REQUEST_BYTES,
            shutdown_grace: SHUTDOWN_GRACE,
        }
    }
}

/// Default socket file mode: owner and group read/write.
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;

/// Longest socket path Linux accepts (`sun_path` is 108 bytes including the terminating NUL).
const SUN_PATH_MAX: usize = 107;

/// Bind the admin socket at `path` with file mode `mode` (e.g. [`DEFAULT_SOCKET_MODE`]) and, if
/// given, group `group`. Creates missing parent directories. A stale socket file (one nobody
/// answers on) is replaced; a live one is refused with [`AdminError::AlreadyRunning`]. Async only
/// because the tokio listener must be created inside the runtime.
pub async fn bind(path: &Path, mode: u32, group: Option<u32>) -> Result<UnixListener, AdminError> {
    let io_err = |action: &'static str| {
        move |source| AdminError::Io {
            path: path.to_owned(),
            action,
            source,
        }
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp_dir = parent.join(format!(".gsm{}", std::process::id()));
    let tmp_sock = tmp_dir.join("s");
    for p in [path, tmp_sock.as_path()] {
        let len = p.as_os_str().len();
        if len > SUN_PATH_MAX {
            return Err(AdminError::PathTooLong {
                path: p.to_owned(),
                len,
                max: SUN_PATH_MAX,
            });
        }
    }
    std::fs::create_dir_all(parent).map_err(io_err("creating its directory"))?;
    remove_if_stale(path)?;

    // A leftover from a crashed start with the same pid is ours to clear.
    let _ = std::fs::remove_file(&tmp_sock);
    let _ = std::fs::remove_dir(&tmp_dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&tmp_dir)
        .map_err(io_err("creating a private directory to bind in"))?;

    let result = (|| -> Result<std::os::unix::net::UnixListener, AdminError> {
        let listener =
            std::os::unix::net::UnixListener::bind(&tmp_sock).map_err(io_err("binding"))?;
        std::fs::set_permissions(&tmp_sock, std::fs::Permissions::from_mode(mode))
            .map_err(io_err("setting its mode"))?;
        if let Some(gid) = group {
            nix::unistd::chown(&tmp_sock, None, Some(nix::unistd::Gid::from_raw(gid))).map_err(
                |source| AdminError::Chown {
                    path: path.to_owned(),
                    gid,
                    source,
                },
            )?;
        }
        std::fs::rename(&tmp_sock, path).map_err(io_err("moving it into place"))?;
        listener
            .set_nonblocking(true)
            .map_err(io_err("making it non-blocking"))?;
        Ok(listener)
    })();
    let _ = std::fs::remove_file(&tmp_sock);
    let _ = std::fs::remove_dir(&tmp_dir);
    UnixListener::from_std(result?).map_err(io_err("registering with the runtime"))
}

/// Remove `path` if it is a socket nobody answers on; refuse if it is live or not a socket.
fn remove_if_stale(path: &Path) -> Result<(), AdminError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(AdminError::Io {
                path: path.to_owned(),
                action: "inspecting the existing file",
                source,
            });
        }
    };
    if !meta.file_type().is_socket() {
        return Err(AdminError::NotASocket {
            path: path.to_owned(),
        });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(AdminError::AlreadyRunning {
            path: path.to_owned(),
        }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            info!(path = %path.display(), "removing stale admin socket");
            std::fs::remove_file(path).map_err(|source| AdminError::Io {
                path: path.to_owned(),
                action: "removing the stale socket",
                source,
            })
        }
        Err(source) => Err(AdminError::Io {
            path: path.to_owned(),
            action: "checking whether a daemon answers on the existing socket",
            source,
        }),
    }
}

/// Remove the socket file at shutdown, if it is still a socket.
pub fn remove_socket(path: &Path) -> Result<(), AdminError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|source| AdminError::Io {
                path: path.to_owned(),
                action: "removing it",
                source,
            })
        }
        _ => Ok(()),
    }
}

/// Serve with default limits. See [`serve_with`].
pub async fn serve<H: Handler>(
    listener: UnixListener,
    handler: Arc<H>,
    access: AccessPolicy,
    shutdown: CancellationToken,
) -> Result<(), AdminError> {
    serve_with(listener, handler, ServeOptions::new(access), shutdown).await
}

/// Accept and serve connections until `shutdown` fires, then wait (at most `shutdown_grace` plus
/// a write) for connection tasks to end. Accept errors (EMFILE and the like) are logged and
/// retried after a pause; they never end the server.
pub async fn serve_with<H: Handler>(
    listener: UnixListener,
    handler: Arc<H>,
    options: ServeOptions,
    shutdown: CancellationToken,
) -> Result<(), AdminError> {
    let options = Arc::new(options);
    let admission = Admission::new(Limits {
        max_connections: options.max_connections,
        reserved_for_root: options.reserved_for_root,
        max_per_uid: options.max_per_uid,
    });
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                warn!(error = %e, "admin socket accept failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let peer = match stream.peer_cred() {
            Ok(c) => peer::peer_from_cred(c.uid(), c.gid(), c.pid()),
            Err(e) => {
                warn!(error = %e, "admin connection dropped: cannot read peer credentials");
                continue;
            }
        };
        let refusal = if peer::decide(&options.access, options.trusted, &peer) == Decision::Refused
        {
            warn!(
                uid = peer.uid,
                gid = peer.gid,
                pid = peer.pid,
                "admin connection refused: peer not allowed"
            );
            ErrorBody::new(ErrorCode::PermissionDenied, peer::refusal_message(&peer))
        } else {
            match admission.admit(peer.uid, peer.uid == options.trusted.root) {
                Ok(slot) => {
                    let conn = Connection {
                        handler: handler.clone(),
                        options: options.clone(),
                        shutdown: shutdown.clone(),
                    };
                    tracker.spawn(async move {
                        conn.run(stream, peer).await;
                        drop(slot);
                    });
                    continue;
                }
                Err(refusal) => {
                    warn!(%peer, "admin connection refused: {refusal}");
                    ErrorBody::new(ErrorCode::Unavailable, refusal.to_string())
                }
            }
        };
        tracker.spawn(farewell(stream, refusal));
    }
    // Stop queueing new connections in the backlog while the open ones wind down.
    drop(listener);
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Write one connection-level error line (id `null`) and close. The peer may already have
/// written a request; it is not read, and the client reads this line in its place.
async fn farewell<S: AsyncWrite + Unpin>(mut stream: S, error: ErrorBody) {
    let resp = Response::failure(None, error);
    let _ = tokio::time::timeout(FAREWELL_WRITE, async {
        if write_response(&mut stream, &resp).await.is_ok() {
            let _ = stream.shutdown().await;
        }
    })
    .await;
}

struct Connection<H> {
    handler: Arc<H>,
    options: Arc<ServeOptions>,
    shutdown: CancellationToken,
}

/// Why a connection loop ended early; only logged.
enum End {
    Closed,
    Shutdown,
    /// No request within the idle timeout.
    Idle,
    /// The peer did not take an answer within the idle timeout.
    Stalled,
    Io(io::Error),
}

impl<H: Handler> Connection<H> {
    async fn run(&self, stream: UnixStream, peer: Peer) {
        debug!(%peer, "admin connection accepted");
        let (rd, mut wr) = stream.into_split();
        let mut reader = LineReader::new(rd, self.options.max_request_bytes);
        let end = self.requests(&mut reader, &mut wr, &peer).await;
        match end {
            End::Io(e) => debug!(%peer, error = %e, "admin connection ended with an I/O error"),
            End::Idle => debug!(%peer, "admin connection closed: idle"),
            End::Stalled => debug!(%peer, "admin connection closed: the peer stopped reading"),
            End::Closed | End::Shutdown => debug!(%peer, "admin connection closed"),
        }
    }

    /// The request loop: one request at a time, answered in order.
    async fn requests<R, W>(&self, reader: &mut LineReader<R>, wr: &mut W, peer: &Peer) -> End
    where
        R: tokio::io::AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let idle = self.options.idle_timeout;
        loop {
            let frame = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return End::Shutdown,
                f = tokio::time::timeout(idle, reader.next_frame()) => match f {
                    Ok(f) => f,
                    Err(_) => {
                        let message = format!(
                            "closing this connection: no request for {} s (idle timeout); \
                             connect again to send more",
                            idle.as_secs_f64()
                        );
                        farewell(wr, ErrorBody::new(ErrorCode::Unavailable, message)).await;
                        return End::Idle;
                    }
                },
            };
            let line = match frame {
                Ok(Some(Frame::Line(line))) => line,
                Ok(Some(Frame::TooLong)) => {
                    let max = self.options.max_request_bytes;
                    let resp = Response::failure(
                        None,
                        ErrorBody::new(
                            ErrorCode::RequestTooLarge,
                            format!("request line longer than {max} bytes; it was discarded"),
                        ),
                    );
                    if let Err(end) = self.reply(wr, &resp).await {
                        return end;
                    }
                    continue;
                }
                Ok(None) => return End::Closed,
                Err(e) => return End::Io(e),
            };
            let Decoded { id, request } = match decode_request(&line) {
                Ok(d) => d,
                Err(e) => {
                    debug!(%peer, code = %e.error.code, "admin request rejected: {}", e.error.message);
                    if let Err(end) = self.reply(wr, &Response::failure(e.id, e.error)).await {
                        return end;
                    }
                    continue;
                }
            };
            if let Request::Watch(args) = request {
                return self.watch(id, args, reader, wr).await;
            }
            let resp = self.answer(id, request, peer).await;
            if let Err(end) = self.reply(wr, &resp).await {
                return end;
            }
        }
    }

    async fn answer(&self, id: RequestId, request: Request, peer: &Peer) -> Response {
        let id = Some(id);
        let reply = match request {
            Request::Ping(_) => Ok(Reply::Pong(Pong { pong: true })),
            Request::Version(_) => Ok(Reply::Version(VersionData {
                protocol: PROTOCOL_VERSION,
                daemon: env!("CARGO_PKG_VERSION").to_owned(),
                commands: COMMANDS.iter().map(|c| (*c).to_owned()).collect(),
            })),
            request => {
                let cmd = request.name();
                let call = AssertUnwindSafe(self.handler.handle(request, peer)).catch_unwind();
                match self.bounded(call).await {
                    None => Err(ErrorBody::new(
                        ErrorCode::Unavailable,
                        "the daemon is shutting down; the request may not have completed",
                    )),
                    Some(Err(_panic)) => {
                        warn!(%peer, cmd, "admin handler panicked");
                        Err(ErrorBody::new(
                            ErrorCode::Internal,
                            format!("internal error while handling {cmd}; see the daemon log"),
                        ))
                    }
                    Some(Ok(Ok(reply))) if reply.command() != cmd => {
                        warn!(
                            cmd,
                            reply = reply.command(),
                            "admin handler answered the wrong command"
                        );
                        Err(ErrorBody::new(
                            ErrorCode::Internal,
                            format!(
                                "internal error: {cmd} got a reply meant for {}",
                                reply.command()
                            ),
                        ))
                    }
                    Some(Ok(result)) => result,
                }
            }
        };
        match reply.map(|r| serde_json::to_value(&r)) {
            Ok(Ok(data)) => Response::success(id, data),
            Ok(Err(e)) => {
                warn!(error = %e, "admin reply could not be serialized");
                Response::failure(
                    id,
                    ErrorBody::new(
                        ErrorCode::Internal,
                        "internal error: reply not serializable",
                    ),
                )
            }
            Err(error) => Response::failure(id, error),
        }
    }

    /// Stream events until the client closes, the event channel closes, or shutdown. Input lines
    /// after `watch` are read (so a close is noticed) and ignored.
    async fn watch<R, W>(
        &self,
        id: RequestId,
        args: WatchArgs,
        reader: &mut LineReader<R>,
        wr: &mut W,
    ) -> End
    where
        R: tokio::io::AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        // Subscribe before acknowledging so no event published after the ack is missed.
        let mut rx = self.handler.events();
        let kinds = args.events.unwrap_or_else(|| EventKind::ALL.to_vec());
        let ack = WatchStarted {
            events: kinds.clone(),
        };
        // A struct of strings cannot fail to serialize; the default (null) is never sent.
        let data = serde_json::to_value(Reply::Watching(ack)).unwrap_or_default();
        if let Err(end) = self.send(wr, &Response::success(Some(id), data)).await {
            return end;
        }
        loop {
            let event = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return End::Shutdown,
                r = rx.recv() => match r {
                    Ok(ev) if kinds.contains(&ev.kind()) => ev,
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(missed)) => Event::Lagged { missed },
                    Err(broadcast::error::RecvError::Closed) => return End::Closed,
                },
                f = reader.next_frame() => match f {
                    Ok(Some(_)) => continue,
                    Ok(None) => return End::Closed,
                    Err(e) => return End::Io(e),
                },
            };
            if let Err(end) = self.send(wr, &EventLine { event }).await {
                return end;
            }
        }
    }

    /// [`Self::send`] for an answer on a request connection: a peer that does not take it within
    /// the idle timeout (it pipelines requests and never reads) is dropped.
    async fn reply<W: AsyncWrite + Unpin>(&self, wr: &mut W, resp: &Response) -> Result<(), End> {
        match tokio::time::timeout(self.options.idle_timeout, self.send(wr, resp)).await {
            Ok(r) => r,
            Err(_) => Err(End::Stalled),
        }
    }

    async fn send<W, T>(&self, wr: &mut W, value: &T) -> Result<(), End>
    where
        W: AsyncWrite + Unpin,
        T: serde::Serialize,
    {
        match self.bounded(write_response(wr, value)).await {
            None => Err(End::Shutdown),
            Some(Err(e)) => Err(End::Io(e)),
            Some(Ok(())) => Ok(()),
        }
    }

    async fn bounded<F: Future>(&self, fut: F) -> Option<F::Output> {
        bounded(fut, &self.shutdown, self.options.shutdown_grace).await
    }
}

/// Run `fut` to completion unless shutdown was requested and `grace` has passed since.
async fn bounded<F: Future>(
    fut: F,
    shutdown: &CancellationToken,
    grace: Duration,
) -> Option<F::Output> {
    tokio::select! {
        r = fut => Some(r),
        _ = async {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        } => None,
    }
}

/// Write one JSON value and a newline.
async fn write_response<W, T>(wr: &mut W, value: &T) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
    T: serde::Serialize,
{
    let mut buf = serde_json::to_vec(value).map_err(io::Error::other)?;
    buf.push(b'\n');
    wr.write_all(&buf).await?;
    wr.flush().await
}
