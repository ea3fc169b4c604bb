#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The HTTP API end to end: the daemon in-process against simulated modems with `[http]` on a
//! loopback port, driven by the real `curl` (the client the docs' examples use). Refusals first
//! (missing, wrong, revoked and under-scoped tokens; malformed, unknown-field and oversized
//! bodies; rate limits), then what an integrating app does: send and follow a message, read the
//! inbox and conversations, manage members and broadcasts, follow live events, fetch the
//! OpenAPI document; then TLS.

mod daemon_util;

use std::process::Command;
use std::time::Duration;

use daemon_util::{ALICE, BOB, Gateway, Resp, config_text, curl, options, poll, short_tempdir};
use gsmgate::admin::protocol::{Scope, TokensCreateArgs};
use gsmgate::config::Config;
use serde_json::Value;

struct Api {
    gw: Gateway,
    base: String,
}

impl Api {
    async fn start(extra: &str) -> Api {
        let dir = short_tempdir();
        let text = format!(
            "{}\n[http]\nlisten = \"127.0.0.1:0\"\n{extra}\n",
            config_text(dir.path())
        );
        let cfg = Config::from_str(&text, "test.toml").unwrap();
        let opts = options(&cfg);
        let gw = Gateway::start_in(dir, cfg, opts).await;
        let addr = gw.daemon.http_addr().expect("http on");
        Api {
            gw,
            base: format!("http://{addr}"),
        }
    }

    async fn token(&self, name: &str, scope: Scope) -> String {
        self.gw
            .client()
            .await
            .tokens_create(TokensCreateArgs {
                name: name.into(),
                scope,
            })
            .await
            .unwrap()
            .secret
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `curl` with a bearer token, on the blocking pool.
    async fn call(&self, token: &str, method: &str, path: &str, body: Option<&str>) -> Resp {
        self.call_with(token, method, path, body, &[]).await
    }

    async fn call_with(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[&str],
    ) -> Resp {
        let mut args: Vec<String> = vec!["-X".into(), method.into(), self.url(path)];
        if !token.is_empty() {
            args.push("-H".into());
            args.push(format!("Authorization: Bearer {token}"));
        }
        for h in headers {
            args.push("-H".into());
            args.push(h.to_string());
        }
        if let Some(b) = body {
            args.extend([
                "-H".into(),
                "Content-Type: application/json".into(),
                "--data-binary".into(),
                b.into(),
            ]);
        }
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            curl(&refs)
        })
        .await
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_json_with_codes_and_leave_the_daemon_serving() {
    let api = Api::start("").await;
    let read = api.token("dashboard", Scope::Read).await;
    let send = api.token("crm", Scope::Send).await;

    // No token, a malformed header, a wrong token.
    let r = api.call("", "GET", "/api/v1/status", None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "unauthorized"),
        "{r:?}"
    );
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    let r = api
        .call_with(
            "",
            "GET",
            "/api/v1/status",
            None,
            &["Authorization: Basic eDp5"],
        )
        .await;
    assert_eq!(r.status, 401);
    let r = api
        .call("gsmgate_wrong", "GET", "/api/v1/status", None)
        .await;
    assert_eq!((r.status, r.code().as_str()), (401, "unauthorized"));
    // Every route needs a token, the metrics and the OpenAPI document included.
    for path in [
        "/api/v1/openapi.json",
        "/metrics",
        "/api/v1/events",
        "/api/v1/members",
    ] {
        assert_eq!(api.call("", "GET", path, None).await.status, 401, "{path}");
    }

    // A read token reads but cannot send; a send token sends but cannot change members.
    assert_eq!(
        api.call(&read, "GET", "/api/v1/status", None).await.status,
        200
    );
    let msg = r#"{"to": "+14155550101", "text": "hello"}"#;
    let r = api.call(&read, "POST", "/api/v1/messages", Some(msg)).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "permission_denied"),
        "{r:?}"
    );
    let r = api
        .call(
            &send,
            "POST",
            "/api/v1/members",
            Some(r#"{"number": "+14155550102"}"#),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (403, "permission_denied"));
    let r = api
        .call(&send, "DELETE", "/api/v1/members/+14155550101", None)
        .await;
    assert_eq!(r.status, 403);

    // Bad bodies.
    let r = api
        .call(&send, "POST", "/api/v1/messages", Some("{nope"))
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "malformed_json"));
    let r = api
        .call(
            &send,
            "POST",
            "/api/v1/messages",
            Some(r#"{"to": "+1", "txt": "x"}"#),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_request"));
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("txt")
    );
    let r = api
        .call(
            &send,
            "POST",
            "/api/v1/messages",
            Some(r#"{"to": "12", "text": "x"}"#),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_number"));
    let big = format!(
        r#"{{"to": "+14155550101", "text": "{}"}}"#,
        "a".repeat(2_000_000)
    );
    let path = api.gw.dir.path().join("big.json");
    std::fs::write(&path, big).unwrap();
    let r = api
        .call(
            &send,
            "POST",
            "/api/v1/messages",
            Some(&format!("@{}", path.display())),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (413, "request_too_large"),
        "{r:?}"
    );
    let r = api
        .call(&read, "GET", "/api/v1/inbox?limit=abc", None)
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_request"));
    let r = api.call(&read, "GET", "/api/v1/inbox?bogus=1", None).await;
    assert_eq!(r.status, 400);
    let r = api.call(&read, "GET", "/api/v1/nowhere", None).await;
    assert_eq!((r.status, r.code().as_str()), (404, "not_found"));
    let r = api.call(&read, "GET", "/api/v1/messages/999", None).await;
    assert_eq!((r.status, r.code().as_str()), (404, "not_found"));

    // A revoked token stops working at once.
    api.gw
        .client()
        .await
        .tokens_revoke("dashboard")
        .await
        .unwrap();
    assert_eq!(
        api.call(&read, "GET", "/api/v1/status", None).await.status,
        401
    );

    // Still serving: the send token sends.
    let r = api.call(&send, "POST", "/api/v1/messages", Some(msg)).await;
    assert_eq!(r.status, 202, "{r:?}");
    api.gw.daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_is_followed_to_the_phone_and_a_retry_never_sends_twice() {
    let api = Api::start("").await;
    let send = api.token("crm", Scope::Send).await;
    let body = r#"{"to": "+14155550101", "text": "Your shift starts at 9"}"#;
    let key = ["Idempotency-Key: 5b0c1d2e-signup-42"];
    let first = api
        .call_with(&send, "POST", "/api/v1/messages", Some(body), &key)
        .await;
    assert_eq!(first.status, 202, "{first:?}");
    let id = first.json()["id"].as_i64().unwrap();
    assert_eq!(
        first.header("location").unwrap(),
        format!("/api/v1/messages/{id}")
    );
    // The retry gets the same answer, marked as a replay, and nothing new is queued.
    let again = api
        .call_with(&send, "POST", "/api/v1/messages", Some(body), &key)
        .await;
    assert_eq!((again.status, again.json()["id"].as_i64()), (202, Some(id)));
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    // The same key for another request is a client bug, refused.
    let other = api
        .call_with(
            &send,
            "POST",
            "/api/v1/messages",
            Some(r#"{"to": "+14155550101", "text": "different"}"#),
            &key,
        )
        .await;
    assert_eq!(other.status, 400, "{other:?}");

    let status = poll("the message is sent", Duration::from_secs(30), || async {
        let r = api
            .call(&send, "GET", &format!("/api/v1/messages/{id}"), None)
            .await;
        let s = r.json()["status"].as_str().unwrap_or("").to_string();
        matches!(s.as_str(), "sent" | "delivered").then_some(r.json())
    })
    .await;
    assert_eq!(status["to"], "+14155550101");
    assert!(status["modem"].as_str().unwrap().starts_with("sim"));
    poll("the phone has it", Duration::from_secs(30), || async {
        api.gw
            .received_texts(ALICE)
            .iter()
            .any(|t| t == "Your shift starts at 9")
            .then_some(())
    })
    .await;
    let copies = api
        .gw
        .received_texts(ALICE)
        .iter()
        .filter(|t| *t == "Your shift starts at 9")
        .count();
    assert_eq!(copies, 1, "a retried request never sends twice");
    api.gw.daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_reads_the_inbox_and_manages_members_and_broadcasts() {
    let api = Api::start("").await;
    let admin = api.token("ops", Scope::Admin).await;

    // Members: add, get, patch, list, export, remove.
    let r = api
        .call(
            &admin,
            "POST",
            "/api/v1/members",
            Some(r#"{"number": "+14155550102", "name": "Bob", "city": "Oakland"}"#),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = api
        .call(
            &admin,
            "PATCH",
            "/api/v1/members/+14155550102",
            Some(r#"{"city": "Berkeley", "tags": ["Volunteer"]}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let m = api
        .call(&admin, "GET", "/api/v1/members/%2B14155550102", None)
        .await
        .json();
    assert_eq!(
        (m["city"].as_str(), m["tags"][0].as_str()),
        (Some("Berkeley"), Some("volunteer"))
    );
    let page = api
        .call(
            &admin,
            "GET",
            "/api/v1/members?segment=tag%3Dvolunteer",
            None,
        )
        .await
        .json();
    assert_eq!(page["total"], 1);
    let csv = api
        .call(&admin, "GET", "/api/v1/members/export", None)
        .await;
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(csv.body.contains("+14155550102"), "{}", csv.body);
    let r = api
        .call(
            &admin,
            "POST",
            "/api/v1/members/import",
            Some(r#"{"csv": "number,name\n+14155550103,Carol\n", "dry_run": true}"#),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["valid"].as_u64()),
        (200, Some(1)),
        "{r:?}"
    );

    // Broadcasts: a dry run answers 200 with counts, a real one 201, then its progress.
    let r = api
        .call(
            &admin,
            "POST",
            "/api/v1/broadcasts",
            Some(r#"{"text": "Meeting tonight", "dry_run": true}"#),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["recipients"].as_u64()),
        (200, Some(1)),
        "{r:?}"
    );
    let r = api
        .call(
            &admin,
            "POST",
            "/api/v1/broadcasts",
            Some(r#"{"text": "Meeting tonight"}"#),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let b = r.json()["id"].as_i64().unwrap();
    poll(
        "the broadcast reaches Bob",
        Duration::from_secs(30),
        || async {
            let p = api
                .call(&admin, "GET", &format!("/api/v1/broadcasts/{b}"), None)
                .await
                .json();
            (p["sent"].as_u64().unwrap_or(0) + p["delivered"].as_u64().unwrap_or(0) == 1)
                .then_some(())
        },
    )
    .await;
    let r = api
        .call(
            &admin,
            "POST",
            &format!("/api/v1/broadcasts/{b}/cancel"),
            None,
        )
        .await;
    assert_eq!(
        r.status, 409,
        "a finished broadcast cannot be cancelled: {r:?}"
    );

    // Inbound: a phone texts in; the inbox (and `since`) and conversations show it.
    api.gw.text_in(BOB, 0, "Count me in");
    let items = poll(
        "the text is in the inbox",
        Duration::from_secs(30),
        || async {
            let v = api
                .call(&admin, "GET", "/api/v1/inbox?since=0", None)
                .await
                .json();
            let items = v.as_array()?.clone();
            items
                .iter()
                .any(|i| i["text"] == "Count me in")
                .then_some(items)
        },
    )
    .await;
    let last = items.last().unwrap()["id"].as_i64().unwrap();
    let none = api
        .call(&admin, "GET", &format!("/api/v1/inbox?since={last}"), None)
        .await
        .json();
    assert_eq!(none.as_array().unwrap().len(), 0);
    let threads = api
        .call(&admin, "GET", "/api/v1/conversations", None)
        .await
        .json();
    assert!(
        threads
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["number"] == BOB && t["name"] == "Bob")
    );
    let conv = api
        .call(&admin, "GET", "/api/v1/conversations/+14155550102", None)
        .await
        .json();
    assert!(
        conv.as_array()
            .unwrap()
            .iter()
            .any(|m| m["text"] == "Count me in")
    );

    let r = api
        .call(&admin, "DELETE", "/api/v1/members/+14155550102", None)
        .await;
    assert_eq!(r.status, 200);
    for path in [
        "/api/v1/modems",
        "/api/v1/calls",
        "/api/v1/voicemails",
        "/api/v1/status",
        "/api/v1/activity?days=7&alerts=3",
    ] {
        assert_eq!(
            api.call(&admin, "GET", path, None).await.status,
            200,
            "{path}"
        );
    }
    api.gw.daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_delivers_a_text_as_it_arrives() {
    let api = Api::start("").await;
    let read = api.token("feed", Scope::Read).await;
    let url = api.url("/api/v1/events?events=message_in");
    let mut child = std::process::Command::new("curl")
        .args(["-sS", "-N", "--max-time", "60", "-H"])
        .arg(format!("Authorization: Bearer {read}"))
        .arg(&url)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (subscribed_tx, subscribed) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(out).lines() {
            let line = line.unwrap_or_default();
            if line.starts_with(": subscribed") {
                let _ = subscribed_tx.send(());
            }
            let done = line.contains("Hello stream");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    });
    // The stream's first line says the subscription is live; one text is then enough.
    tokio::task::spawn_blocking(move || subscribed.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the stream opens with `: subscribed`");
    api.gw.text_in(ALICE, 0, "Hello stream");
    let lines = reader.join().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(lines.iter().any(|l| l == "event: message_in"), "{lines:?}");
    let data = lines.iter().find(|l| l.starts_with("data:")).unwrap();
    let v: Value = serde_json::from_str(data.trim_start_matches("data:").trim()).unwrap();
    assert_eq!(
        (v["type"].as_str(), v["from"].as_str()),
        (Some("message_in"), Some(ALICE))
    );
    api.gw.daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_and_each_one_answers() {
    let api = Api::start("").await;
    let admin = api.token("ops", Scope::Admin).await;
    let doc = api
        .call(&admin, "GET", "/api/v1/openapi.json", None)
        .await
        .json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for route in gsmgate::http::openapi::ROUTES {
        let path = format!("/api/v1{}", route.path);
        assert!(
            paths[&path][route.method].is_object(),
            "{path} {}",
            route.method
        );
        if route.method != "get" || route.path == "/events" {
            continue;
        }
        // A GET of the documented path never falls through to "no route".
        let concrete = path
            .replace("{id}", "1")
            .replace("{number}", "+14155550101");
        let r = api.call(&admin, "GET", &concrete, None).await;
        assert!(
            !r.body.contains("no route"),
            "documented {path} is not served: {r:?}"
        );
    }
    api.gw.daemon.shutdown().await;
}

/// A client that trickles header bytes (slowloris) is disconnected once the header-read timeout
/// passes (here 2 s, from `request_timeout_secs`), while other clients are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_trickles_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let api = Api::start("request_timeout_secs = 2").await;
    let read = api.token("reader", Scope::Read).await;
    let addr = api.base.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    // Keep trickling one header byte a second; the server must hang up on us regardless.
    let mut buf = [0u8; 256];
    let closed = loop {
        tokio::select! {
            n = slow.read(&mut buf) => break n,
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {
                if slow.write_all(b"X").await.is_err() {
                    break Ok(0);
                }
            }
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "a trickling client still holds its connection after 60 s"
        );
    };
    // Closed (0 bytes) or reset, and never a served answer to the unfinished request.
    if let Ok(n) = closed {
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || !answer.contains("200 OK"), "{answer:?}");
    }
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    assert_eq!(
        api.call(&read, "GET", "/api/v1/status", None).await.status,
        200
    );
    api.gw.daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_past_its_rate_gets_429_with_retry_after() {
    let api = Api::start("rate_per_minute = 3").await;
    let read = api.token("burst", Scope::Read).await;
    for _ in 0..3 {
        assert_eq!(
            api.call(&read, "GET", "/api/v1/status", None).await.status,
            200
        );
    }
    let r = api.call(&read, "GET", "/api/v1/status", None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (429, "rate_limited"),
        "{r:?}"
    );
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    // Another token is not affected.
    let other = api.token("other", Scope::Read).await;
    assert_eq!(
        api.call(&other, "GET", "/api/v1/status", None).await.status,
        200
    );
    api.gw.daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_https_with_the_configured_certificate() {
    let dir = short_tempdir();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let text = format!(
        "{}\n[http]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        config_text(dir.path()),
        cert_path.display(),
        key_path.display()
    );
    let cfg = Config::from_str(&text, "test.toml").unwrap();
    let opts = options(&cfg);
    let gw = Gateway::start_in(dir, cfg, opts).await;
    let port = gw.daemon.http_addr().unwrap().port();
    let token = gw
        .client()
        .await
        .tokens_create(TokensCreateArgs {
            name: "tls".into(),
            scope: Scope::Read,
        })
        .await
        .unwrap()
        .secret;
    let url = format!("https://localhost:{port}/api/v1/status");
    let ca = cert_path.display().to_string();
    let auth = format!("Authorization: Bearer {token}");
    let r = tokio::task::spawn_blocking(move || {
        curl(&[
            "--cacert",
            &ca,
            "--resolve",
            &format!("localhost:{port}:127.0.0.1"),
            "-H",
            &auth,
            &url,
        ])
    })
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    // Plain HTTP to the TLS port gets no API answer.
    let plain = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{port}/api/v1/status"))
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("\"uptime"));
    gw.daemon.shutdown().await;
}

#[test]
fn a_public_address_without_tls_is_a_config_error() {
    let dir = short_tempdir();
    let base = config_text(dir.path());
    let bad = format!("{base}\n[http]\nlisten = \"0.0.0.0:8640\"\n");
    let e = Config::from_str(&bad, "t.toml").unwrap_err().to_string();
    assert!(
        e.contains("http.listen") && e.contains("allow_plaintext"),
        "{e}"
    );
    let ok = format!("{base}\n[http]\nlisten = \"0.0.0.0:8640\"\nallow_plaintext = true\n");
    assert!(Config::from_str(&ok, "t.toml").is_ok());
    let half = format!("{base}\n[http]\nlisten = \"127.0.0.1:8640\"\ntls_cert = \"c.pem\"\n");
    assert!(
        Config::from_str(&half, "t.toml")
            .unwrap_err()
            .to_string()
            .contains("tls_key")
    );
    let junk = format!("{base}\n[http]\nlisten = \"localhost\"\n");
    assert!(Config::from_str(&junk, "t.toml").is_err());
}

/// The fenced `sh` blocks between `<!-- api-examples -->` and `<!-- /api-examples -->` of a
/// markdown file, in order.
fn example_blocks(markdown: &str) -> Vec<String> {
    let Some(start) = markdown.find("<!-- api-examples -->") else {
        return Vec::new();
    };
    let end = markdown[start..]
        .find("<!-- /api-examples -->")
        .map_or(markdown.len(), |e| start + e);
    let mut blocks = Vec::new();
    let mut rest = &markdown[start..end];
    while let Some(open) = rest.find("```sh\n") {
        let body = &rest[open + 6..];
        let close = body.find("```").expect("closed block");
        blocks.push(body[..close].to_string());
        rest = &body[close + 3..];
    }
    blocks
}

/// docs/http-api.md and README.md show curl commands; each block runs, in order, against a real
/// gateway with `curl -f` (so an HTTP error fails it), exactly as a user would paste it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_curl_examples_run_as_written() {
    let api = Api::start("").await;
    let token = api.token("docs", Scope::Admin).await;
    let root = env!("CARGO_MANIFEST_DIR");
    let mut blocks = Vec::new();
    for file in ["docs/http-api.md", "README.md"] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let found = example_blocks(&text);
        assert!(!found.is_empty(), "{file} has no marked API examples");
        blocks.extend(found.into_iter().map(|b| (file, b)));
    }
    let work = api.gw.dir.path().join("examples");
    std::fs::create_dir_all(&work).unwrap();
    for (file, block) in blocks {
        let (url, token, work, script) =
            (api.base.clone(), token.clone(), work.clone(), block.clone());
        let out = tokio::task::spawn_blocking(move || {
            Command::new("bash")
                .args(["-euo", "pipefail", "-c", &script])
                .current_dir(&work)
                .env("GSMGATE_URL", url)
                .env("TOKEN", token)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{file} example failed:\n{block}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // What the examples did is visible: the text reached the phone, the member and file exist.
    poll(
        "the example text reaches the phone",
        Duration::from_secs(30),
        || async {
            api.gw
                .received_texts(ALICE)
                .iter()
                .any(|t| t.starts_with("Welcome aboard!"))
                .then_some(())
        },
    )
    .await;
    assert!(work.join("members.csv").exists() && work.join("openapi.json").exists());
    api.gw.daemon.shutdown().await;
}
