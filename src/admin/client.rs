//! The CLI side of the admin socket: connect (with an error a user can act on when the daemon is
//! not running or the socket is not theirs), send one request at a time and match its response by
//! id, typed helpers per command, and `watch` as a stream of events.
//!
//! One request is in flight at a time, so a response either carries our id or is a
//! connection-level error with `id: null` (permission refused, too many connections, idle
//! timeout, a request too large); anything else is a protocol error rather than being guessed at.
//!
//! Refusals: the daemon refuses a connection with one error line and closes it, possibly before
//! our request is written, and the write then fails with EPIPE. The line is already in our receive
//! buffer (a Unix socket delivers what the peer wrote before its close, and only then the error),
//! so a failed write is followed by one bounded read, and the user sees the daemon's words
//! instead of "Broken pipe". Events of a type this client does not
//! know (from a newer daemon) are skipped, as the versioning rule allows new event types.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::lines::{Frame, LineReader};
use super::protocol::GreetingFile;
use super::protocol::{ActivityArgs, ActivityData};
use super::protocol::{
    BroadcastArgs, BroadcastIdArgs, BroadcastItem, BroadcastResult, BroadcastsArgs,
    ConversationArgs, ConversationItem, Envelope, ErrorBody, Event, EventLine, ExportData,
    ImportResult, InDoubtItem, InDoubtResolveArgs, InDoubtResolved, InboxArgs, InboxItem,
    MemberAddArgs, MemberGetArgs, MemberItem, MemberRemoveArgs, MemberRemoved, MemberTagArgs,
    MembersExportArgs, MembersImportArgs, MembersListArgs, MembersPage, ModemInfo, NoArgs,
    PROTOCOL_VERSION, Pong, Request, RequestId, Response, SendAccepted, SendArgs, StatusData,
    VersionData, WatchArgs, WatchStarted,
};
use super::protocol::{
    CallItem, CallsArgs, GREETING_CHUNK_BYTES, GreetingInstalled, GreetingSetArgs, GreetingUpload,
    VoicemailDeleted, VoicemailFile, VoicemailIdArgs, VoicemailItem, VoicemailListArgs, base64,
};
use super::protocol::{ReviewItem, ReviewResolveArgs, ReviewResolved};
use super::protocol::{TokenCreated, TokenItem, TokensCreateArgs, TokensRevokeArgs};
use super::protocol::{UssdArgs, UssdResult};
use super::protocol::{
    WebUserAddArgs, WebUserChanged, WebUserItem, WebUserNameArgs, WebUserPasswdArgs,
};
use super::protocol::{WebhookItem, WebhookReplayArgs, WebhookReplayed};

/// Where the daemon listens when installed as a service.
pub const SYSTEM_SOCKET: &str = "/run/gsmgate/admin.sock";
/// Where the embedded default configuration puts the socket, relative to the working directory.
pub const LOCAL_SOCKET: &str = "gsmgate-state/admin.sock";
/// Environment variable naming the socket.
pub const SOCKET_ENV: &str = "GSMGATE_SOCKET";
/// Longest response line the client accepts (inbox pages can be large, but not unbounded).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Bound on reading a refusal line after a failed write. The peer has closed, so the read ends
/// at once with the line or EOF; the bound only guards against a socket in some other state.
const REFUSAL_READ: Duration = Duration::from_secs(2);

/// Errors of the client side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "gsmgate daemon is not running (no socket at {path}). Start it with `gsmgate daemon` or \
         `systemctl start gsmgate`."
    )]
    NotRunning { path: PathBuf },
    #[error(
        "permission denied on {path}: your user may not use this gateway's admin socket; ask the \
         administrator to add you to the socket's group, or run as root"
    )]
    PermissionDenied { path: PathBuf },
    #[error("cannot connect to {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("admin connection: {0}")]
    Io(#[from] io::Error),
    /// The daemon answered with an error.
    #[error("{0}")]
    Server(ErrorBody),
    #[error("the daemon closed the connection before answering")]
    Closed,
    #[error("unexpected response from the daemon: {detail}")]
    Protocol { detail: String },
}

/// Pick the socket path: the `--socket` flag, else `$GSMGATE_SOCKET`, else
/// `./gsmgate-state/admin.sock` when it exists (the embedded default daemon run from here), else
/// `/run/gsmgate/admin.sock`.
pub fn resolve_socket_path(flag: Option<&Path>) -> PathBuf {
    resolve_with(
        flag,
        std::env::var_os(SOCKET_ENV),
        Path::new(LOCAL_SOCKET).exists(),
    )
}

fn resolve_with(flag: Option<&Path>, env: Option<OsString>, local_exists: bool) -> PathBuf {
    if let Some(p) = flag {
        return p.to_owned();
    }
    if let Some(e) = env.filter(|e| !e.is_empty()) {
        return PathBuf::from(e);
    }
    if local_exists {
        return PathBuf::from(LOCAL_SOCKET);
    }
    PathBuf::from(SYSTEM_SOCKET)
}

/// A connection to the daemon.
#[derive(Debug)]
pub struct Client {
    reader: LineReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
}

impl Client {
    pub async fn connect(path: impl AsRef<Path>) -> Result<Client, ClientError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| connect_error(path, e))?;
        let (rd, writer) = stream.into_split();
        Ok(Client {
            reader: LineReader::new(rd, MAX_RESPONSE_BYTES),
            writer,
            next_id: 1,
        })
    }

    /// Send one request and return its `data`, or the daemon's error as [`ClientError::Server`].
    pub async fn request(&mut self, request: &Request) -> Result<Value, ClientError> {
        let id = RequestId::Num(self.next_id);
        self.next_id += 1;
        let envelope = Envelope {
            id: id.clone(),
            v: Some(PROTOCOL_VERSION),
            request: request.clone(),
        };
        let mut line = serde_json::to_vec(&envelope).map_err(|e| ClientError::Protocol {
            detail: format!("cannot encode request: {e}"),
        })?;
        line.push(b'\n');
        let written = async {
            self.writer.write_all(&line).await?;
            self.writer.flush().await
        };
        if let Err(e) = written.await {
            return Err(self.refusal_after(e).await);
        }

        let resp: Response = parse(read_line(&mut self.reader).await?)?;
        match (resp.id, resp.ok) {
            (Some(got), ok) if got == id => {
                if ok {
                    Ok(resp.data.unwrap_or(Value::Null))
                } else {
                    Err(server_error(resp.error))
                }
            }
            (None, false) => Err(server_error(resp.error)),
            (got, _) => Err(ClientError::Protocol {
                detail: format!("response for id {got:?} while waiting for {id}"),
            }),
        }
    }

    /// What to report when writing a request failed with `error`: the daemon's refusal line
    /// (id `null`) when it sent one before closing, else that the daemon closed the connection.
    async fn refusal_after(&mut self, error: io::Error) -> ClientError {
        let line = tokio::time::timeout(REFUSAL_READ, read_line(&mut self.reader)).await;
        match line {
            Ok(Ok(line)) => match serde_json::from_slice::<Response>(&line) {
                Ok(resp) if !resp.ok && resp.id.is_none() => server_error(resp.error),
                _ => ClientError::Io(error),
            },
            Ok(Err(ClientError::Closed)) if peer_gone(&error) => ClientError::Closed,
            _ => ClientError::Io(error),
        }
    }

    /// Send a request and decode its data as `T`.
    pub async fn call<T: DeserializeOwned>(&mut self, request: &Request) -> Result<T, ClientError> {
        let data = self.request(request).await?;
        serde_json::from_value(data).map_err(|e| ClientError::Protocol {
            detail: format!("{} reply: {e}", request.name()),
        })
    }

    pub async fn ping(&mut self) -> Result<Pong, ClientError> {
        self.call(&Request::Ping(NoArgs {})).await
    }

    pub async fn version(&mut self) -> Result<VersionData, ClientError> {
        self.call(&Request::Version(NoArgs {})).await
    }

    pub async fn status(&mut self) -> Result<StatusData, ClientError> {
        self.call(&Request::Status(NoArgs {})).await
    }

    pub async fn modems(&mut self) -> Result<Vec<ModemInfo>, ClientError> {
        self.call(&Request::Modems(NoArgs {})).await
    }

    pub async fn send(&mut self, args: SendArgs) -> Result<SendAccepted, ClientError> {
        self.call(&Request::Send(args)).await
    }

    pub async fn inbox(&mut self, args: InboxArgs) -> Result<Vec<InboxItem>, ClientError> {
        self.call(&Request::Inbox(args)).await
    }

    pub async fn conversation(
        &mut self,
        args: ConversationArgs,
    ) -> Result<Vec<ConversationItem>, ClientError> {
        self.call(&Request::Conversation(args)).await
    }

    pub async fn members_list(
        &mut self,
        args: MembersListArgs,
    ) -> Result<MembersPage, ClientError> {
        self.call(&Request::MembersList(args)).await
    }

    pub async fn members_add(&mut self, args: MemberAddArgs) -> Result<MemberItem, ClientError> {
        self.call(&Request::MembersAdd(args)).await
    }

    pub async fn members_remove(
        &mut self,
        args: MemberRemoveArgs,
    ) -> Result<MemberRemoved, ClientError> {
        self.call(&Request::MembersRemove(args)).await
    }

    pub async fn members_get(&mut self, args: MemberGetArgs) -> Result<MemberItem, ClientError> {
        self.call(&Request::MembersGet(args)).await
    }

    pub async fn members_tag(&mut self, args: MemberTagArgs) -> Result<MemberItem, ClientError> {
        self.call(&Request::MembersTag(args)).await
    }

    pub async fn members_import(
        &mut self,
        args: MembersImportArgs,
    ) -> Result<ImportResult, ClientError> {
        self.call(&Request::MembersImport(args)).await
    }

    pub async fn members_export(
        &mut self,
        args: MembersExportArgs,
    ) -> Result<ExportData, ClientError> {
        self.call(&Request::MembersExport(args)).await
    }

    pub async fn members_review(&mut self) -> Result<Vec<ReviewItem>, ClientError> {
        self.call(&Request::MembersReview(NoArgs {})).await
    }

    pub async fn members_review_resolve(
        &mut self,
        args: ReviewResolveArgs,
    ) -> Result<ReviewResolved, ClientError> {
        self.call(&Request::MembersReviewResolve(args)).await
    }

    pub async fn broadcast(&mut self, args: BroadcastArgs) -> Result<BroadcastResult, ClientError> {
        self.call(&Request::Broadcast(args)).await
    }

    pub async fn broadcasts(
        &mut self,
        args: BroadcastsArgs,
    ) -> Result<Vec<BroadcastItem>, ClientError> {
        self.call(&Request::Broadcasts(args)).await
    }

    pub async fn broadcast_progress(&mut self, id: i64) -> Result<BroadcastItem, ClientError> {
        self.call(&Request::BroadcastProgress(BroadcastIdArgs {
            broadcast: id,
        }))
        .await
    }

    pub async fn broadcast_pause(&mut self, id: i64) -> Result<BroadcastItem, ClientError> {
        self.call(&Request::BroadcastPause(BroadcastIdArgs { broadcast: id }))
            .await
    }

    pub async fn broadcast_resume(&mut self, id: i64) -> Result<BroadcastItem, ClientError> {
        self.call(&Request::BroadcastResume(BroadcastIdArgs { broadcast: id }))
            .await
    }

    pub async fn broadcast_cancel(&mut self, id: i64) -> Result<BroadcastItem, ClientError> {
        self.call(&Request::BroadcastCancel(BroadcastIdArgs { broadcast: id }))
            .await
    }

    pub async fn in_doubt(&mut self) -> Result<Vec<InDoubtItem>, ClientError> {
        self.call(&Request::InDoubt(NoArgs {})).await
    }

    pub async fn in_doubt_resolve(
        &mut self,
        args: InDoubtResolveArgs,
    ) -> Result<InDoubtResolved, ClientError> {
        self.call(&Request::InDoubtResolve(args)).await
    }

    /// `webhooks`: every configured webhook with its backlog and last error.
    pub async fn webhooks(&mut self) -> Result<Vec<WebhookItem>, ClientError> {
        self.call(&Request::Webhooks(NoArgs {})).await
    }

    /// `webhook_replay`: sends one journal event to one webhook again.
    pub async fn webhook_replay(
        &mut self,
        name: &str,
        event: i64,
    ) -> Result<WebhookReplayed, ClientError> {
        self.call(&Request::WebhookReplay(WebhookReplayArgs {
            name: name.to_string(),
            event,
        }))
        .await
    }

    pub async fn calls(&mut self, args: CallsArgs) -> Result<Vec<CallItem>, ClientError> {
        self.call(&Request::Calls(args)).await
    }

    pub async fn voicemail_list(
        &mut self,
        args: VoicemailListArgs,
    ) -> Result<Vec<VoicemailItem>, ClientError> {
        self.call(&Request::VoicemailList(args)).await
    }

    /// One voicemail's file (still base64 in `wav_base64`; [`base64::decode`] it).
    pub async fn voicemail_export(&mut self, id: i64) -> Result<VoicemailFile, ClientError> {
        self.call(&Request::VoicemailExport(VoicemailIdArgs { voicemail: id }))
            .await
    }

    pub async fn voicemail_delete(&mut self, id: i64) -> Result<VoicemailDeleted, ClientError> {
        self.call(&Request::VoicemailDelete(VoicemailIdArgs { voicemail: id }))
            .await
    }

    pub async fn tokens_create(
        &mut self,
        args: TokensCreateArgs,
    ) -> Result<TokenCreated, ClientError> {
        self.call(&Request::TokensCreate(args)).await
    }

    pub async fn tokens_list(&mut self) -> Result<Vec<TokenItem>, ClientError> {
        self.call(&Request::TokensList(NoArgs {})).await
    }

    pub async fn tokens_revoke(&mut self, name: &str) -> Result<TokenItem, ClientError> {
        self.call(&Request::TokensRevoke(TokensRevokeArgs {
            name: name.to_string(),
        }))
        .await
    }

    /// The greeting in use (`greeting_get`); `None` when none is installed.
    pub async fn greeting_get(&mut self) -> Result<Option<GreetingFile>, ClientError> {
        self.call(&Request::GreetingGet(NoArgs {})).await
    }

    pub async fn web_users_add(
        &mut self,
        args: WebUserAddArgs,
    ) -> Result<WebUserItem, ClientError> {
        self.call(&Request::WebUsersAdd(args)).await
    }

    pub async fn web_users_list(&mut self) -> Result<Vec<WebUserItem>, ClientError> {
        self.call(&Request::WebUsersList(NoArgs {})).await
    }

    pub async fn web_users_passwd(
        &mut self,
        args: WebUserPasswdArgs,
    ) -> Result<WebUserChanged, ClientError> {
        self.call(&Request::WebUsersPasswd(args)).await
    }

    pub async fn web_users_remove(&mut self, name: &str) -> Result<WebUserChanged, ClientError> {
        self.call(&Request::WebUsersRemove(WebUserNameArgs {
            name: name.to_string(),
        }))
        .await
    }

    /// Per-day figures and the latest alerts (`activity`).
    pub async fn activity(&mut self, args: ActivityArgs) -> Result<ActivityData, ClientError> {
        self.call(&Request::Activity(args)).await
    }

    /// One USSD operation (`ussd`): a code, a menu reply or a cancel; waits for the network.
    pub async fn ussd(&mut self, args: UssdArgs) -> Result<UssdResult, ClientError> {
        self.call(&Request::Ussd(args)).await
    }

    /// One `greeting_set` request (a whole file or one chunk).
    pub async fn greeting_set_chunk(
        &mut self,
        args: GreetingSetArgs,
    ) -> Result<GreetingUpload, ClientError> {
        self.call(&Request::GreetingSet(args)).await
    }

    /// Uploads a greeting WAV: whole when it fits one request, otherwise in chunks of
    /// [`GREETING_CHUNK_BYTES`]. Returns the installed greeting.
    pub async fn greeting_set(&mut self, wav: &[u8]) -> Result<GreetingInstalled, ClientError> {
        let total = wav.len() as u64;
        let mut last = None;
        if wav.len() <= GREETING_CHUNK_BYTES {
            last = Some(
                self.greeting_set_chunk(GreetingSetArgs {
                    wav_base64: base64::encode(wav),
                    offset: None,
                    total_bytes: None,
                })
                .await?,
            );
        } else {
            for (i, chunk) in wav.chunks(GREETING_CHUNK_BYTES).enumerate() {
                last = Some(
                    self.greeting_set_chunk(GreetingSetArgs {
                        wav_base64: base64::encode(chunk),
                        offset: Some((i * GREETING_CHUNK_BYTES) as u64),
                        total_bytes: Some(total),
                    })
                    .await?,
                );
            }
        }
        match last {
            Some(GreetingUpload {
                greeting: Some(g), ..
            }) => Ok(g),
            other => Err(ClientError::Protocol {
                detail: format!(
                    "the daemon did not install the greeting after the whole file: {other:?}"
                ),
            }),
        }
    }

    /// Turn this connection into an event stream.
    pub async fn watch(mut self, args: WatchArgs) -> Result<EventStream, ClientError> {
        let started: WatchStarted = self.call(&Request::Watch(args)).await?;
        Ok(EventStream {
            reader: self.reader,
            _writer: self.writer,
            started,
        })
    }
}

/// The events of a `watch`. Dropping it closes the connection, which ends the watch.
#[derive(Debug)]
pub struct EventStream {
    reader: LineReader<OwnedReadHalf>,
    /// Kept open: dropping the write half shuts down our side, which the daemon reads as "done".
    _writer: OwnedWriteHalf,
    started: WatchStarted,
}

impl EventStream {
    /// What the daemon acknowledged.
    pub fn started(&self) -> &WatchStarted {
        &self.started
    }

    /// The events as a `futures` stream, ending after the first error.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = Result<Event, ClientError>> {
        futures_util::stream::unfold(Some(self), |state| async move {
            let mut events = state?;
            match events.next().await {
                Ok(Some(ev)) => Some((Ok(ev), Some(events))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    /// The next event, or `None` when the daemon ends the stream (shutdown).
    pub async fn next(&mut self) -> Result<Option<Event>, ClientError> {
        loop {
            let line = match self.reader.next_frame().await? {
                None => return Ok(None),
                Some(Frame::TooLong) => {
                    return Err(ClientError::Protocol {
                        detail: format!("event line longer than {MAX_RESPONSE_BYTES} bytes"),
                    });
                }
                Some(Frame::Line(l)) => l,
            };
            let value: Value = parse(line)?;
            if value.get("event").is_none() {
                // A connection-level error line, e.g. during shutdown.
                if let Ok(resp) = serde_json::from_value::<Response>(value.clone())
                    && !resp.ok
                {
                    return Err(server_error(resp.error));
                }
                return Err(ClientError::Protocol {
                    detail: format!("expected an event line, got {value}"),
                });
            }
            match serde_json::from_value::<EventLine>(value) {
                Ok(line) => return Ok(Some(line.event)),
                Err(e) => {
                    tracing::debug!(error = %e, "skipping an event this client does not know")
                }
            }
        }
    }
}

/// Map a connect failure to the error a user can act on.
fn connect_error(path: &Path, source: io::Error) -> ClientError {
    let path = path.to_owned();
    match source.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
            ClientError::NotRunning { path }
        }
        io::ErrorKind::PermissionDenied => ClientError::PermissionDenied { path },
        _ => ClientError::Connect { path, source },
    }
}

/// Whether an I/O error means the daemon closed its end.
fn peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

async fn read_line(reader: &mut LineReader<OwnedReadHalf>) -> Result<Vec<u8>, ClientError> {
    // A reset after the last line (the daemon closed with our request unread) is a close.
    let frame = match reader.next_frame().await {
        Err(e) if peer_gone(&e) => return Err(ClientError::Closed),
        r => r?,
    };
    match frame {
        Some(Frame::Line(l)) => Ok(l),
        Some(Frame::TooLong) => Err(ClientError::Protocol {
            detail: format!("response longer than {MAX_RESPONSE_BYTES} bytes"),
        }),
        None => Err(ClientError::Closed),
    }
}

fn parse<T: DeserializeOwned>(line: Vec<u8>) -> Result<T, ClientError> {
    serde_json::from_slice(&line).map_err(|e| ClientError::Protocol {
        detail: format!("{e}: {}", String::from_utf8_lossy(&line)),
    })
}

fn server_error(error: Option<ErrorBody>) -> ClientError {
    match error {
        Some(e) => ClientError::Server(e),
        None => ClientError::Protocol {
            detail: "error response without an error object".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_precedence() {
        let flag = Path::new("/tmp/flag.sock");
        let env = Some(OsString::from("/tmp/env.sock"));
        assert_eq!(resolve_with(Some(flag), env.clone(), true), flag);
        assert_eq!(
            resolve_with(None, env.clone(), true),
            PathBuf::from("/tmp/env.sock")
        );
        assert_eq!(
            resolve_with(None, Some(OsString::new()), true),
            PathBuf::from(LOCAL_SOCKET)
        );
        assert_eq!(resolve_with(None, None, true), PathBuf::from(LOCAL_SOCKET));
        assert_eq!(
            resolve_with(None, None, false),
            PathBuf::from(SYSTEM_SOCKET)
        );
    }

    #[test]
    fn connect_errors_map_to_actionable_messages() {
        let p = Path::new("/run/gsmgate/admin.sock");
        let e = connect_error(p, io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(matches!(e, ClientError::PermissionDenied { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains("permission denied on /run/gsmgate/admin.sock")
        );
        let e = connect_error(p, io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(matches!(e, ClientError::NotRunning { .. }), "{e:?}");
        let e = connect_error(p, io::Error::from(io::ErrorKind::TimedOut));
        assert!(matches!(e, ClientError::Connect { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn missing_socket_says_daemon_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        let err = Client::connect(&path).await.unwrap_err();
        assert!(matches!(err, ClientError::NotRunning { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("not running"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("gsmgate daemon"), "{msg}");
    }

    #[tokio::test]
    async fn dead_socket_file_says_daemon_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let err = Client::connect(&path).await.unwrap_err();
        assert!(matches!(err, ClientError::NotRunning { .. }), "{err:?}");
    }
}
