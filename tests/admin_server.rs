//! End-to-end tests of the admin socket: a real `serve` on a temp-dir socket, driven by the real
//! client and by raw byte writes. The `TestHandler` here is a recording stand-in for the daemon:
//! it exists to exercise the protocol machinery (framing, decoding, ordering, errors, watch,
//! shutdown, access), not to pretend to be the daemon's request handling.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gsmgate::admin::protocol::{
    ConversationArgs, ConversationItem, Direction, ErrorBody, ErrorCode, Event, EventKind,
    InboxArgs, InboxItem, ModemInfo, NoArgs, Reply, Request, SendAccepted, SendArgs, StatusData,
    WatchArgs,
};
use gsmgate::admin::{
    AccessPolicy, AdminError, Client, ClientError, Handler, Peer, ServeOptions, Trusted, bind,
    serve_with,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(10);

async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

struct TestHandler {
    seen: Mutex<Vec<(Request, u32)>>,
    events: broadcast::Sender<Event>,
}

fn status() -> StatusData {
    StatusData {
        version: "0.1.0".into(),
        uptime_secs: 42,
        modems_total: 2,
        modems_ready: 1,
        outbox_queued: 3,
        outbox_in_doubt: 0,
        sent_today: 10,
        received_today: 4,
        members: 100,
        broadcasts_active: 1,
        storage: None,
        sims: Vec::new(),
        sites: Vec::new(),
    }
}

fn modem() -> ModemInfo {
    ModemInfo {
        name: "modem0".into(),
        profile: "simcom".into(),
        port: "/dev/ttyUSB2".into(),
        state: "ready".into(),
        registration: "home".into(),
        signal_dbm: Some(-71),
        operator: Some("Sim Mobile".into()),
        iccid: Some("8901".into()),
        imsi: Some("001010123456789".into()),
        imei: Some("490154203237518".into()),
        last_error: None,
        sent_today: 5,
        received_today: 2,
        per_day: Some(200),
        waiting: None,
        paused: None,
        sim: None,
        site: None,
    }
}

fn inbox_item() -> InboxItem {
    InboxItem {
        id: 9,
        from: "+15551230000".into(),
        text: "JOIN".into(),
        received_at: "2026-01-02T03:04:05Z".into(),
        modem: "modem0".into(),
        read: false,
        flag: None,
    }
}

fn conv_item() -> ConversationItem {
    ConversationItem {
        id: 11,
        direction: Direction::Out,
        text: "Welcome".into(),
        at: "2026-01-02T03:04:06Z".into(),
        status: Some("sent".into()),
        modem: Some("modem0".into()),
    }
}

impl Handler for TestHandler {
    async fn handle(&self, request: Request, peer: &Peer) -> Result<Reply, ErrorBody> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push((request.clone(), peer.uid));
        }
        match request {
            Request::Status(_) => Ok(Reply::Status(status())),
            Request::Modems(_) => Ok(Reply::Modems(vec![modem()])),
            Request::Send(a) if a.to == "bad" => Err(ErrorBody::new(
                ErrorCode::InvalidNumber,
                "\"bad\" is not a phone number",
            )),
            Request::Send(a) if a.text == "wrong-reply" => Ok(Reply::Status(status())),
            Request::Send(a) if a.text == "slow" => {
                std::future::pending::<()>().await;
                unreachable!()
            }
            Request::Send(a) if a.text == "panic" => panic!("test handler panics on purpose"),
            Request::Send(a) => Ok(Reply::SendAccepted(SendAccepted {
                id: 1,
                parts: a.text.len().div_ceil(160) as u32,
                encoding: "gsm7".into(),
            })),
            Request::Inbox(_) => Ok(Reply::Inbox(vec![inbox_item()])),
            Request::Conversation(_) => Ok(Reply::Conversation(vec![conv_item()])),
            other => Err(ErrorBody::new(
                ErrorCode::Internal,
                format!("test handler got {}", other.name()),
            )),
        }
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}

struct Server {
    _dir: tempfile::TempDir,
    path: PathBuf,
    handler: Arc<TestHandler>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), AdminError>>,
}

async fn start(options: ServeOptions, event_capacity: usize) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    start_at(dir, path, 0o660, options, event_capacity).await
}

async fn start_at(
    dir: tempfile::TempDir,
    path: PathBuf,
    mode: u32,
    options: ServeOptions,
    event_capacity: usize,
) -> Server {
    let listener = bind(&path, mode, None).await.unwrap();
    let (events, _) = broadcast::channel(event_capacity);
    let handler = Arc::new(TestHandler {
        seen: Mutex::new(Vec::new()),
        events,
    });
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve_with(
        listener,
        handler.clone(),
        options,
        shutdown.clone(),
    ));
    Server {
        _dir: dir,
        path,
        handler,
        shutdown,
        task,
    }
}

fn options() -> ServeOptions {
    ServeOptions::new(AccessPolicy::default())
}

/// A raw connection for writing arbitrary bytes and reading JSON lines.
struct Raw {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
}

impl Raw {
    async fn connect(path: &Path) -> Raw {
        let (rd, wr) = UnixStream::connect(path).await.unwrap().into_split();
        Raw {
            rd: BufReader::new(rd),
            wr,
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.wr.write_all(bytes).await.unwrap();
    }

    async fn line(&mut self) -> Option<Value> {
        let mut s = String::new();
        let n = within("a line", self.rd.read_line(&mut s)).await.unwrap();
        (n > 0).then(|| serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}: {s:?}")))
    }

    async fn ask(&mut self, req: &str) -> Value {
        self.write(format!("{req}\n").as_bytes()).await;
        self.line().await.expect("a response")
    }
}

fn assert_error(resp: &Value, id: Value, code: &str) {
    assert_eq!(resp["v"], 1, "{resp}");
    assert_eq!(resp["ok"], false, "{resp}");
    assert_eq!(resp["id"], id, "{resp}");
    assert_eq!(resp["error"]["code"], code, "{resp}");
    assert!(
        resp["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{resp}"
    );
}

#[tokio::test]
async fn every_command_round_trips_through_the_client() {
    let s = start(options(), 16).await;
    let mut c = Client::connect(&s.path).await.unwrap();
    assert!(c.ping().await.unwrap().pong);
    let v = c.version().await.unwrap();
    assert_eq!(v.protocol, 1);
    assert!(v.commands.iter().any(|c| c == "send"));
    assert_eq!(c.status().await.unwrap(), status());
    assert_eq!(c.modems().await.unwrap(), vec![modem()]);
    let send = SendArgs {
        to: "+15551234567".into(),
        text: "hello".into(),
        modem: Some("modem0".into()),
    };
    let acc = c.send(send.clone()).await.unwrap();
    assert_eq!((acc.id, acc.parts, acc.encoding.as_str()), (1, 1, "gsm7"));
    let inbox = InboxArgs {
        unread_only: true,
        limit: Some(5),
        since: None,
    };
    assert_eq!(c.inbox(inbox.clone()).await.unwrap(), vec![inbox_item()]);
    let conv = ConversationArgs {
        number: "+15551230000".into(),
        limit: None,
    };
    assert_eq!(
        c.conversation(conv.clone()).await.unwrap(),
        vec![conv_item()]
    );

    // The handler saw exactly the daemon-core commands, typed, with the peer's uid; ping and
    // version never reached it.
    let seen = s.handler.seen.lock().unwrap().clone();
    let me = nix::unistd::geteuid().as_raw();
    assert_eq!(
        seen,
        vec![
            (Request::Status(NoArgs {}), me),
            (Request::Modems(NoArgs {}), me),
            (Request::Send(send), me),
            (Request::Inbox(inbox), me),
            (Request::Conversation(conv), me),
        ]
    );
}

#[tokio::test]
async fn wire_shape_of_success_and_handler_errors() {
    let s = start(options(), 16).await;
    let mut raw = Raw::connect(&s.path).await;
    assert_eq!(
        raw.ask(r#"{"id": 7, "cmd": "ping"}"#).await,
        json!({"v": 1, "id": 7, "ok": true, "data": {"pong": true}})
    );
    assert_eq!(
        raw.ask(r#"{"id": "abc", "v": 1, "cmd": "send", "to": "+15551234567", "text": "hi"}"#)
            .await,
        json!({"v": 1, "id": "abc", "ok": true, "data": {"id": 1, "parts": 1, "encoding": "gsm7"}})
    );
    let r = raw
        .ask(r#"{"id": 8, "cmd": "send", "to": "bad", "text": "hi"}"#)
        .await;
    assert_error(&r, json!(8), "invalid_number");
    let r = raw
        .ask(r#"{"id": 9, "cmd": "send", "to": "+1", "text": "wrong-reply"}"#)
        .await;
    assert_error(&r, json!(9), "internal");
    let r = raw
        .ask(r#"{"id": 10, "cmd": "send", "to": "+1", "text": "panic"}"#)
        .await;
    assert_error(&r, json!(10), "internal");
    // The connection survived all of that.
    assert_eq!(raw.ask(r#"{"id": 11, "cmd": "ping"}"#).await["ok"], true);
}

#[tokio::test]
async fn client_reports_daemon_errors_as_server_errors() {
    let s = start(options(), 16).await;
    let mut c = Client::connect(&s.path).await.unwrap();
    let err = c
        .send(SendArgs {
            to: "bad".into(),
            text: "x".into(),
            modem: None,
        })
        .await
        .unwrap_err();
    match err {
        ClientError::Server(e) => assert_eq!(e.code, ErrorCode::InvalidNumber),
        other => panic!("{other:?}"),
    }
    assert!(c.ping().await.unwrap().pong);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let s = start(options(), 16).await;
    let mut raw = Raw::connect(&s.path).await;
    let mut batch = String::new();
    for i in 0..100u32 {
        let cmd = ["ping", "status", "modems", "version"][(i % 4) as usize];
        batch.push_str(&format!("{{\"id\": {i}, \"cmd\": \"{cmd}\"}}\n"));
    }
    raw.write(batch.as_bytes()).await;
    for i in 0..100u32 {
        let r = raw.line().await.unwrap();
        assert_eq!(r["id"], i, "{r}");
        assert_eq!(r["ok"], true, "{r}");
    }
}

#[tokio::test]
async fn bad_requests_get_errors_and_the_server_carries_on() {
    let s = start(options(), 16).await;
    let mut raw = Raw::connect(&s.path).await;
    let cases = [
        (r#"{"id": 1, "cmd": "#, json!(null), "malformed_json"),
        (r#"not json at all"#, json!(null), "malformed_json"),
        (r#"[1, 2, 3]"#, json!(null), "malformed_json"),
        (
            r#"{"id": 2, "cmd": "launch_rockets"}"#,
            json!(2),
            "unknown_command",
        ),
        (r#"{"id": 3}"#, json!(3), "unknown_command"),
        (
            r#"{"id": 4, "cmd": "send", "to": 15551234567, "text": "x"}"#,
            json!(4),
            "invalid_request",
        ),
        (
            r#"{"id": 5, "cmd": "inbox", "limit": "ten"}"#,
            json!(5),
            "invalid_request",
        ),
        (
            r#"{"id": 6, "cmd": "send", "text": "x"}"#,
            json!(6),
            "invalid_request",
        ),
        (r#"{"cmd": "ping"}"#, json!(null), "invalid_request"),
        (
            r#"{"id": -1, "cmd": "ping"}"#,
            json!(null),
            "invalid_request",
        ),
        (
            r#"{"id": 7, "v": 2, "cmd": "ping"}"#,
            json!(7),
            "unsupported_version",
        ),
    ];
    for (req, id, code) in cases {
        let r = raw.ask(req).await;
        assert_error(&r, id, code);
    }
    let r = raw
        .ask(r#"{"id": 4, "cmd": "send", "to": 15551234567, "text": "x"}"#)
        .await;
    assert!(
        r["error"]["message"].as_str().unwrap().contains("`to`"),
        "{r}"
    );
    let r = raw.ask(r#"{"cmd": "ping"}"#).await;
    assert!(
        r["error"]["message"].as_str().unwrap().contains("`id`"),
        "{r}"
    );

    assert_eq!(raw.ask(r#"{"id": 99, "cmd": "ping"}"#).await["ok"], true);
    let mut fresh = Raw::connect(&s.path).await;
    assert_eq!(fresh.ask(r#"{"id": 1, "cmd": "ping"}"#).await["ok"], true);
    assert!(s.handler.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_megabyte_line_is_refused_early_and_the_connection_resyncs() {
    let s = start(options(), 16).await;
    let mut raw = Raw::connect(&s.path).await;
    // 100 KiB without a newline: the refusal must arrive before the line ends, which shows the
    // server is not buffering the line to its end.
    raw.write(&vec![b'x'; 100 * 1024]).await;
    let r = raw.line().await.unwrap();
    assert_error(&r, json!(null), "request_too_large");
    // The other ~900 KiB, the newline, then a valid request on the same connection.
    for _ in 0..9 {
        raw.write(&vec![b'{'; 100 * 1024]).await;
    }
    raw.write(b"\"}\n{\"id\": 2, \"cmd\": \"ping\"}\n").await;
    let r = raw.line().await.unwrap();
    assert_eq!(r["id"], 2, "{r}");
    assert_eq!(r["ok"], true, "{r}");
}

#[tokio::test]
async fn a_request_at_the_size_limit_is_accepted() {
    let mut opts = options();
    opts.max_request_bytes = 1024;
    let s = start(opts, 16).await;
    let mut raw = Raw::connect(&s.path).await;
    let head = r#"{"id": 1, "cmd": "send", "to": "+1", "text": ""#;
    let text = "a".repeat(1024 - head.len() - 2);
    let req = format!("{head}{text}\"}}");
    assert_eq!(req.len(), 1024);
    assert_eq!(raw.ask(&req).await["ok"], true);
    let req = format!("{head}{text}a\"}}");
    assert_error(&raw.ask(&req).await, json!(null), "request_too_large");
}

#[tokio::test]
async fn watch_streams_events_and_filters_them() {
    let s = start(options(), 16).await;
    let all = Client::connect(&s.path).await.unwrap();
    let mut all = all.watch(WatchArgs::default()).await.unwrap();
    assert_eq!(all.started().events, EventKind::ALL.to_vec());
    let some = Client::connect(&s.path).await.unwrap();
    let mut some = some
        .watch(WatchArgs {
            events: Some(vec![EventKind::MessageIn]),
        })
        .await
        .unwrap();

    let state = Event::ModemState {
        modem: "modem0".into(),
        state: "ready".into(),
        detail: None,
    };
    let msg = Event::MessageIn {
        id: 3,
        from: "+15551230000".into(),
        text: "JOIN".into(),
        modem: "modem0".into(),
    };
    s.handler.events.send(state.clone()).unwrap();
    s.handler.events.send(msg.clone()).unwrap();
    assert_eq!(within("event", all.next()).await.unwrap(), Some(state));
    assert_eq!(
        within("event", all.next()).await.unwrap(),
        Some(msg.clone())
    );
    assert_eq!(within("event", some.next()).await.unwrap(), Some(msg));

    // The Stream adapter yields the same events.
    let mut stream = std::pin::pin!(some.into_stream());
    let again = Event::MessageIn {
        id: 4,
        from: "+15551230001".into(),
        text: "STOP".into(),
        modem: "modem1".into(),
    };
    s.handler.events.send(again.clone()).unwrap();
    let got = within("stream event", futures_util::StreamExt::next(&mut stream)).await;
    assert_eq!(got.unwrap().unwrap(), again);

    // A watching connection does not stop others from working.
    let mut c = Client::connect(&s.path).await.unwrap();
    assert!(c.ping().await.unwrap().pong);
}

#[tokio::test]
async fn a_lagging_watcher_gets_a_lagged_line_and_stays_connected() {
    // Current-thread runtime: the burst below is sent without the server task running in between,
    // so the subscriber deterministically falls behind a 4-slot channel.
    let s = start(options(), 4).await;
    let mut raw = Raw::connect(&s.path).await;
    let ack = raw.ask(r#"{"id": 1, "cmd": "watch"}"#).await;
    assert_eq!(ack["ok"], true, "{ack}");
    for i in 0..20 {
        s.handler
            .events
            .send(Event::Log {
                level: "warn".into(),
                target: "test".into(),
                message: format!("event {i}"),
            })
            .unwrap();
    }
    assert_eq!(
        raw.line().await.unwrap(),
        json!({"event": {"type": "lagged", "missed": 16}})
    );
    for i in 16..20 {
        let l = raw.line().await.unwrap();
        assert_eq!(l["event"]["type"], "log", "{l}");
        assert_eq!(l["event"]["message"], format!("event {i}"), "{l}");
    }
    // Still connected: a later event arrives.
    s.handler.events.send(Event::Lagged { missed: 0 }).unwrap();
    assert_eq!(raw.line().await.unwrap()["event"]["type"], "lagged");
}

#[tokio::test]
async fn shutdown_ends_serve_promptly_with_open_connections() {
    let mut opts = options();
    opts.shutdown_grace = Duration::from_millis(200);
    let s = start(opts, 16).await;
    let mut idle = Raw::connect(&s.path).await;
    assert_eq!(idle.ask(r#"{"id": 1, "cmd": "ping"}"#).await["ok"], true);
    let watcher = Client::connect(&s.path).await.unwrap();
    let mut watcher = watcher.watch(WatchArgs::default()).await.unwrap();
    let mut slow = Raw::connect(&s.path).await;
    slow.write(b"{\"id\": 5, \"cmd\": \"send\", \"to\": \"+1\", \"text\": \"slow\"}\n")
        .await;
    // Make sure the slow request reached the handler before shutting down.
    within("slow request", async {
        while s.handler.seen.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await;

    s.shutdown.cancel();
    let started = std::time::Instant::now();
    within("serve to return", s.task).await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));

    // The stuck request was answered, not dropped silently.
    assert_error(&slow.line().await.unwrap(), json!(5), "unavailable");
    assert_eq!(within("watch end", watcher.next()).await.unwrap(), None);
    assert_eq!(idle.line().await, None);
}

#[tokio::test]
async fn connections_over_the_limit_get_unavailable() {
    let mut opts = options();
    opts.max_connections = 2;
    opts.reserved_for_root = 0;
    let s = start(opts, 16).await;
    let mut a = Raw::connect(&s.path).await;
    let mut b = Raw::connect(&s.path).await;
    assert_eq!(a.ask(r#"{"id": 1, "cmd": "ping"}"#).await["ok"], true);
    assert_eq!(b.ask(r#"{"id": 1, "cmd": "ping"}"#).await["ok"], true);
    let mut c = Raw::connect(&s.path).await;
    assert_error(&c.line().await.unwrap(), json!(null), "unavailable");
    assert_eq!(c.line().await, None);
    drop(a);
    // The slot is freed once the first connection's task ends; poll for it.
    within("a free slot", async {
        loop {
            let mut d = Raw::connect(&s.path).await;
            let r = d.ask(r#"{"id": 1, "cmd": "ping"}"#).await;
            if r["ok"] == true {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn socket_file_gets_the_configured_mode_and_group() {
    for mode in [0o660, 0o600, 0o666] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        let _l = bind(&path, mode, None).await.unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, mode, "mode {mode:o}");
        // The private bind directory is gone.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("admin.sock")]);
    }
    if nix::unistd::geteuid().is_root() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        let _l = bind(&path, 0o660, Some(65534)).await.unwrap();
        assert_eq!(std::fs::symlink_metadata(&path).unwrap().gid(), 65534);
    } else {
        println!("SKIPPED group ownership check: not running as root");
    }
}

#[tokio::test]
async fn stale_socket_is_replaced_live_socket_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    // A stale socket file: bound once, nobody listening any more.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let s = start_at(dir, path.clone(), 0o660, options(), 16).await;
    let mut c = Client::connect(&path).await.unwrap();
    assert!(c.ping().await.unwrap().pong);

    // A second daemon on the same path is refused and the first keeps its socket.
    let err = bind(&path, 0o660, None).await.unwrap_err();
    assert!(matches!(err, AdminError::AlreadyRunning { .. }), "{err:?}");
    assert!(err.to_string().contains("already"), "{err}");
    let mut c = Client::connect(&path).await.unwrap();
    assert!(c.ping().await.unwrap().pong);
    drop(s);
}

#[tokio::test]
async fn a_regular_file_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    std::fs::write(&path, b"precious").unwrap();
    let err = bind(&path, 0o660, None).await.unwrap_err();
    assert!(matches!(err, AdminError::NotASocket { .. }), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

const PY_PING: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
try:
    s.sendall(b'{"id": 1, "cmd": "ping"}\n')
except OSError:
    pass
sys.stdout.write(s.makefile('rb').readline().decode())
"#;

/// Run PY_PING as uid/gid 65534 (nobody) against the socket and return its one reply line.
async fn ping_as_nobody(path: &Path) -> Value {
    let out = within(
        "python client",
        tokio::process::Command::new("python3")
            .arg("-c")
            .arg(PY_PING)
            .arg(path)
            .uid(65534)
            .gid(65534)
            .output(),
    )
    .await
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout:?}"))
}

/// A world-reachable directory and socket, so only the peer-credential check can refuse.
async fn world_open_server(access: AccessPolicy) -> Server {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.path().join("admin.sock");
    start_at(dir, path, 0o666, ServeOptions::new(access), 16).await
}

#[tokio::test]
async fn a_peer_not_allowed_is_refused_with_permission_denied() {
    if !nix::unistd::geteuid().is_root() {
        println!("SKIPPED: switching to uid 65534 needs root");
        return;
    }
    let s = world_open_server(AccessPolicy::default()).await;
    let r = ping_as_nobody(&s.path).await;
    assert_eq!(
        r,
        json!({"v": 1, "id": null, "ok": false, "error": {"code": "permission_denied",
            "message": "uid 65534 is not allowed to use this gateway; ask the administrator to add it to [daemon] admin_allow_users or admin_allow_groups"}})
    );
    assert!(s.handler.seen.lock().unwrap().is_empty());
    // The daemon's own user still gets in.
    let mut c = Client::connect(&s.path).await.unwrap();
    assert!(c.ping().await.unwrap().pong);
}

#[tokio::test]
async fn listed_uid_and_listed_group_are_let_in() {
    if !nix::unistd::geteuid().is_root() {
        println!("SKIPPED: switching to uid 65534 needs root");
        return;
    }
    for access in [
        AccessPolicy {
            allow_uids: vec![65534],
            allow_gids: vec![],
        },
        AccessPolicy {
            allow_uids: vec![],
            allow_gids: vec![65534],
        },
    ] {
        let s = world_open_server(access.clone()).await;
        let r = ping_as_nobody(&s.path).await;
        assert_eq!(r["ok"], true, "{access:?}: {r}");
        assert_eq!(r["data"], json!({"pong": true}));
    }
}

// ---- Limits: idle timeout, per-uid cap, root's reserve (issue 14, item 3) ----

/// Options under which the test's own user is an ordinary peer, neither root nor the daemon's
/// user, whatever uid the tests run as.
fn as_ordinary_user(access: AccessPolicy) -> ServeOptions {
    let mut o = ServeOptions::new(access);
    o.trusted = Trusted {
        root: 4_000_000_001,
        daemon: 4_000_000_002,
    };
    o
}

fn me() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Connect until a ping is answered (a freed slot is given back when the old connection's task
/// ends, just after its peer sees the close).
async fn until_admitted(path: &Path) -> Raw {
    within("a free slot", async {
        loop {
            let mut raw = Raw::connect(path).await;
            // A refused connection may be closed before the write; its line is read all the same.
            let _ = raw.wr.write_all(b"{\"id\": 1, \"cmd\": \"ping\"}\n").await;
            if raw.line().await.is_some_and(|r| r["ok"] == true) {
                return raw;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

#[tokio::test]
async fn idle_connections_are_closed_and_watch_streams_are_not() {
    let mut opts = options();
    opts.idle_timeout = Duration::from_millis(300);
    opts.max_per_uid = 3;
    let s = start(opts, 16).await;
    // The watch starts first, so it has been silent longer than the idle one when that is closed.
    let watcher = Client::connect(&s.path).await.unwrap();
    let mut watcher = watcher.watch(WatchArgs::default()).await.unwrap();
    let opened = std::time::Instant::now();
    let mut silent = Raw::connect(&s.path).await;
    let mut talker = Raw::connect(&s.path).await;
    assert_eq!(talker.ask(r#"{"id": 1, "cmd": "ping"}"#).await["ok"], true);
    // The per-uid cap is reached: watcher, silent, talker.
    let mut fourth = Raw::connect(&s.path).await;
    let r = fourth.line().await.unwrap();
    assert_error(&r, json!(null), "unavailable");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 3 per user"),
        "{r}"
    );

    // The silent connection is told why and closed, not before the timeout.
    let r = silent.line().await.unwrap();
    assert_error(&r, json!(null), "unavailable");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("idle timeout"),
        "{r}"
    );
    assert_eq!(silent.line().await, None);
    assert!(opened.elapsed() >= Duration::from_millis(300));
    // So is one that asked once and then went quiet.
    assert_error(&talker.line().await.unwrap(), json!(null), "unavailable");
    assert_eq!(talker.line().await, None);

    // Their slots are free again, and the watch is still streaming.
    let mut again = until_admitted(&s.path).await;
    assert_eq!(again.ask(r#"{"id": 2, "cmd": "status"}"#).await["ok"], true);
    let ev = Event::Lagged { missed: 0 };
    s.handler.events.send(ev.clone()).unwrap();
    assert_eq!(within("event", watcher.next()).await.unwrap(), Some(ev));
}

#[tokio::test]
async fn a_peer_that_never_reads_its_answers_is_dropped() {
    let mut opts = options();
    opts.idle_timeout = Duration::from_millis(300);
    let s = start(opts, 16).await;
    let raw = Raw::connect(&s.path).await;
    let mut wr = raw.wr;
    // Pipeline requests forever without reading: the answers fill the socket, the server's write
    // blocks, and after the timeout the server drops the connection, which fails our writes.
    let line = b"{\"id\": 1, \"cmd\": \"version\"}\n".repeat(100);
    let err = within("the server to drop the connection", async {
        loop {
            if let Err(e) = wr.write_all(&line).await {
                return e;
            }
        }
    })
    .await;
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ),
        "{err}"
    );
    drop(raw.rd);
    // Its slot is back.
    until_admitted(&s.path).await;
}

/// Holds `count` connections to the socket as whoever runs it; prints `open` once they are all
/// connected, then waits for a line on stdin, pings on every connection and prints the answers
/// as one JSON array (the refused ones answer with their refusal line).
const PY_HOLD: &str = r#"
import json, socket, sys
socks = []
for _ in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    socks.append(s)
print("open", flush=True)
sys.stdin.readline()
answers = []
for s in socks:
    try:
        s.sendall(b'{"id": 1, "cmd": "ping"}\n')
    except OSError:
        pass
    answers.append(json.loads(s.makefile('rb').readline() or b'null'))
print(json.dumps(answers), flush=True)
"#;

struct Holder {
    child: tokio::process::Child,
    out: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

/// Start PY_HOLD as `uid` (needs root) and wait until its connections are open.
async fn hold_as(uid: u32, path: &Path, count: usize) -> Holder {
    let mut child = tokio::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(PY_HOLD)
        .arg(path)
        .arg(count.to_string())
        .uid(uid)
        .gid(uid)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = within("the holder's connections", out.next_line()).await;
    assert_eq!(first.unwrap().as_deref(), Some("open"));
    Holder { child, out }
}

impl Holder {
    /// Ping on every held connection; returns (answered, refused with a message containing
    /// `refusal`).
    async fn ping_all(mut self, refusal: &str) -> (usize, usize) {
        let mut stdin = self.child.stdin.take().unwrap();
        stdin.write_all(b"go\n").await.unwrap();
        let line = within("the holder's answers", self.out.next_line())
            .await
            .unwrap()
            .unwrap();
        let answers: Vec<Value> = serde_json::from_str(&line).unwrap();
        let ok = answers.iter().filter(|a| a["ok"] == true).count();
        let refused = answers
            .iter()
            .filter(|a| {
                a["error"]["code"] == "unavailable"
                    && a["error"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(refusal))
            })
            .count();
        (ok, refused)
    }
}

/// Run the real `gsmgate` binary against `path` with `args`; returns (exit code, stderr).
async fn gsmgate(path: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gsmgate"));
    cmd.arg("--socket").arg(path).args(args);
    let out = within(
        "the gsmgate binary",
        tokio::task::spawn_blocking(move || cmd.output().expect("gsmgate runs")),
    )
    .await
    .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_script_holding_64_idle_connections_does_not_lock_out_root() {
    if !nix::unistd::geteuid().is_root() {
        println!("SKIPPED: holding connections as other uids needs root");
        return;
    }
    // The defaults: 64 connections, 16 per uid, 4 kept for root, a minute's idle timeout (the
    // held connections stay for the whole test).
    let s = world_open_server(AccessPolicy {
        allow_uids: vec![65534, 65533],
        allow_gids: vec![],
    })
    .await;
    let script = hold_as(65534, &s.path, 64).await;
    // Root gets through, in-process and through the CLI.
    let mut c = Client::connect(&s.path).await.unwrap();
    assert_eq!(c.status().await.unwrap(), status());
    let (code, stderr) = gsmgate(&s.path, &["status"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    // So does another user.
    let other = hold_as(65533, &s.path, 1).await;
    assert_eq!(other.ping_all("-").await, (1, 0));
    // The script got its 16 and was told why it got no more.
    assert_eq!(script.ping_all("at most 16 per user").await, (16, 48));
}

#[tokio::test]
async fn root_keeps_its_reserve_when_other_users_hold_the_rest() {
    if !nix::unistd::geteuid().is_root() {
        println!("SKIPPED: holding connections as other uids needs root");
        return;
    }
    let mut opts = ServeOptions::new(AccessPolicy {
        allow_uids: vec![65534, 65533],
        allow_gids: vec![],
    });
    opts.max_connections = 6;
    opts.reserved_for_root = 2;
    opts.max_per_uid = 3;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.path().join("admin.sock");
    let s = start_at(dir, path, 0o666, opts, 16).await;
    // Two users fill the four shared slots; the last connection of the second is refused.
    let a = hold_as(65534, &s.path, 3).await;
    let b = hold_as(65533, &s.path, 2).await;
    // Root takes the two held back for it, and no more.
    let mut r1 = Client::connect(&s.path).await.unwrap();
    assert!(r1.ping().await.unwrap().pong);
    let mut r2 = Client::connect(&s.path).await.unwrap();
    assert!(r2.ping().await.unwrap().pong);
    let mut r3 = Client::connect(&s.path).await.unwrap();
    match r3.status().await.unwrap_err() {
        ClientError::Server(e) => {
            assert_eq!(e.code, ErrorCode::Unavailable);
            assert!(e.message.contains("root's included"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.ping_all("-").await, (3, 0));
    assert_eq!(b.ping_all("kept for root").await, (1, 1));
    drop((r1, r2));
}

// ---- The client shows what the daemon said (issue 14, item 7) ----

const REFUSAL: &str = r#"{"v":1,"id":null,"ok":false,"error":{"code":"permission_denied","message":"uid 4242 is not allowed to use this gateway"}}"#;

/// A stand-in daemon that answers every connection with `line` (if any) and closes it at once,
/// reporting each close, so the client's request is written only after the close: the write fails
/// with EPIPE every time, which is the path that used to print "Broken pipe".
async fn refusing_socket(
    line: Option<&'static str>,
) -> (tempfile::TempDir, PathBuf, tokio::sync::mpsc::Receiver<()>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let (closed, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            if let Some(line) = line {
                stream
                    .write_all(format!("{line}\n").as_bytes())
                    .await
                    .unwrap();
            }
            drop(stream);
            let _ = closed.send(()).await;
        }
    });
    (dir, path, rx)
}

#[tokio::test]
async fn a_refusal_written_before_the_request_reaches_the_client() {
    let (_dir, path, mut closed) = refusing_socket(Some(REFUSAL)).await;
    let mut c = Client::connect(&path).await.unwrap();
    within("the close", closed.recv()).await.unwrap();
    match c.status().await.unwrap_err() {
        ClientError::Server(e) => {
            assert_eq!(e.code, ErrorCode::PermissionDenied);
            assert_eq!(e.message, "uid 4242 is not allowed to use this gateway");
        }
        other => panic!("expected the daemon's refusal, got {other:?} ({other})"),
    }

    // A close without a line is reported as such, not as an I/O error.
    let (_dir, path, mut closed) = refusing_socket(None).await;
    let mut c = Client::connect(&path).await.unwrap();
    within("the close", closed.recv()).await.unwrap();
    let err = c.ping().await.unwrap_err();
    assert!(matches!(err, ClientError::Closed), "{err:?}");
    assert!(!err.to_string().contains("os error"), "{err}");
}

#[tokio::test]
async fn a_refused_peer_sees_the_daemons_message_in_the_client_and_the_cli() {
    let s = start(as_ordinary_user(AccessPolicy::default()), 16).await;
    let expected = format!("uid {} is not allowed to use this gateway", me());
    let mut c = Client::connect(&s.path).await.unwrap();
    match c.status().await.unwrap_err() {
        ClientError::Server(e) => {
            assert_eq!(e.code, ErrorCode::PermissionDenied);
            assert!(e.message.starts_with(&expected), "{e}");
        }
        other => panic!("{other:?}"),
    }
    for verb in [&["status"][..], &["watch"], &["members", "list"]] {
        let (code, stderr) = gsmgate(&s.path, verb).await;
        assert_eq!(code, Some(1), "{verb:?}: {stderr}");
        assert!(
            stderr.contains(&format!("error: permission_denied: {expected}")),
            "{verb:?}: {stderr}"
        );
        assert!(!stderr.contains("Broken pipe"), "{verb:?}: {stderr}");
    }
    assert!(s.handler.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_full_server_says_so_in_the_client_and_the_cli() {
    // One user at its cap.
    let mut opts = as_ordinary_user(AccessPolicy {
        allow_uids: vec![me()],
        allow_gids: vec![],
    });
    opts.max_per_uid = 2;
    let s = start(opts, 16).await;
    let mut a = Raw::connect(&s.path).await;
    let mut b = Raw::connect(&s.path).await;
    assert_eq!(a.ask(r#"{"id": 1, "cmd": "ping"}"#).await["ok"], true);
    assert_eq!(b.ask(r#"{"id": 1, "cmd": "ping"}"#).await["ok"], true);
    let per_uid = format!(
        "error: unavailable: too many admin connections from uid {} (at most 2 per user)",
        me()
    );
    let mut c = Client::connect(&s.path).await.unwrap();
    match c.status().await.unwrap_err() {
        ClientError::Server(e) => assert_eq!(e.code, ErrorCode::Unavailable),
        other => panic!("{other:?}"),
    }
    let (code, stderr) = gsmgate(&s.path, &["status"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&per_uid), "{stderr}");

    // The whole socket full.
    let mut opts = as_ordinary_user(AccessPolicy {
        allow_uids: vec![me()],
        allow_gids: vec![],
    });
    opts.max_connections = 2;
    opts.reserved_for_root = 1;
    let s = start(opts, 16).await;
    let mut a = Raw::connect(&s.path).await;
    assert_eq!(a.ask(r#"{"id": 1, "cmd": "ping"}"#).await["ok"], true);
    let (code, stderr) = gsmgate(&s.path, &["status"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: unavailable: too many admin connections (at most 2, 1 of them kept for root)"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_request_too_large_is_reported_with_the_daemons_message() {
    let s = start(options(), 16).await;
    let text = "x".repeat(70 * 1024);
    let mut c = Client::connect(&s.path).await.unwrap();
    let err = c
        .send(SendArgs {
            to: "+15551234567".into(),
            text: text.clone(),
            modem: None,
        })
        .await
        .unwrap_err();
    match err {
        ClientError::Server(e) => assert_eq!(e.code, ErrorCode::RequestTooLarge),
        other => panic!("{other:?}"),
    }
    let (code, stderr) = gsmgate(&s.path, &["send", "--to", "+15551234567", &text]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("error: request_too_large: request line longer than 65536 bytes"),
        "{stderr}"
    );
}
