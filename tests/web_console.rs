#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The web console over HTTP (no browser; the browser journeys are separate): the daemon
//! in-process against simulated modems with `[http]` on a loopback port, driven with reqwest
//! (cookies handled by hand, so their flags are checked as the browser would see them).
//! Refusals first (no session on any route, CSRF, roles, throttling), then what the pages show
//! (escaping of untrusted names and texts, live data), then the `web user` CLI through the real
//! binary.

mod daemon_util;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use daemon_util::{ALICE, BOB, Gateway, config_text, curl, options, poll, short_tempdir};
use gsmgate::admin::protocol::{BroadcastArgs, MemberAddArgs, WebRole, WebUserAddArgs};
use gsmgate::config::Config;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

const OWNER_PW: &str = "owner password 1";
const VOLUNTEER_PW: &str = "volunteer password 1";
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   media-src 'self'; connect-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// A generous deadline for outcomes on a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

struct Console {
    gw: Gateway,
    base: String,
    http: reqwest::Client,
}

/// One answer, read whole.
#[derive(Debug)]
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// The value of the first `name="…" value="…"` hidden input (maud writes attributes in
    /// source order).
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no csrf field in {}", self.body));
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

/// A logged-in browser: its session cookie and its CSRF token.
#[derive(Debug, Clone)]
struct Login {
    cookie: String,
    csrf: String,
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn cookie_value(set_cookie: &[String], name: &str) -> Option<String> {
    set_cookie.iter().find_map(|c| {
        let first = c.split(';').next()?;
        let (k, v) = first.split_once('=')?;
        (k.trim() == name).then(|| v.trim().to_string())
    })
}

impl Console {
    async fn start() -> Console {
        Console::start_with("").await
    }

    async fn start_with(extra: &str) -> Console {
        Console::start_from(config_text, extra, |_| {}).await
    }

    /// A console whose base configuration is `base(dir)` (the modems' ports depend on the
    /// temporary directory), with `[http]` and `extra` after it.
    async fn start_from(
        base: impl FnOnce(&std::path::Path) -> String,
        extra: &str,
        tweak: impl FnOnce(&mut gsmgate::daemon::DaemonOptions),
    ) -> Console {
        let dir = short_tempdir();
        let text = format!(
            "{}\n[http]\nlisten = \"127.0.0.1:0\"\n{extra}\n",
            base(dir.path())
        );
        let cfg = Config::from_str(&text, "test.toml").unwrap();
        let mut opts = options(&cfg);
        tweak(&mut opts);
        let gw = Gateway::start_in(dir, cfg, opts).await;
        let addr = gw.daemon.http_addr().expect("http on");
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(WAIT)
            .build()
            .unwrap();
        let c = Console {
            gw,
            base: format!("http://{addr}"),
            http,
        };
        c.add_user("olive", WebRole::Owner, OWNER_PW).await;
        c.add_user("victor", WebRole::Volunteer, VOLUNTEER_PW).await;
        c
    }

    async fn add_user(&self, name: &str, role: WebRole, password: &str) {
        self.gw
            .client()
            .await
            .web_users_add(WebUserAddArgs {
                name: name.into(),
                role,
                password: password.into(),
            })
            .await
            .unwrap();
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Page {
        let url = format!("{}{path}", self.base);
        let mut rq = match method {
            "GET" => self.http.get(url),
            "POST" => self.http.post(url),
            other => panic!("method {other}"),
        };
        if let Some(c) = cookie {
            rq = rq.header("cookie", c);
        }
        if let Some((ctype, bytes)) = body {
            rq = rq.header("content-type", ctype).body(bytes);
        }
        let r = rq.send().await.unwrap();
        Page {
            status: r.status(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap_or_default(),
        }
    }

    async fn get(&self, path: &str, login: &Login) -> Page {
        self.send("GET", path, Some(&login.cookie), None).await
    }

    async fn post(&self, path: &str, cookie: Option<&str>, pairs: &[(&str, &str)]) -> Page {
        self.send(
            "POST",
            path,
            cookie,
            Some((
                "application/x-www-form-urlencoded",
                form(pairs).into_bytes(),
            )),
        )
        .await
    }

    /// Fetches the login form and posts it: the answer and the login cookie pair used.
    async fn try_login(&self, user: &str, password: &str) -> Page {
        let f = self.send("GET", "/login", None, None).await;
        assert_eq!(f.status, StatusCode::OK, "{f:?}");
        let token = cookie_value(&f.set_cookies(), "gsmgate_login").expect("login cookie");
        assert_eq!(f.csrf(), token, "the form echoes the login cookie");
        self.post(
            "/login",
            Some(&format!("gsmgate_login={token}")),
            &[("csrf", &token), ("username", user), ("password", password)],
        )
        .await
    }

    async fn login(&self, user: &str, password: &str) -> Login {
        let r = self.try_login(user, password).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
        assert_eq!(r.header("location"), "/");
        let id = cookie_value(&r.set_cookies(), "gsmgate_session").expect("session cookie");
        let cookie = format!("gsmgate_session={id}");
        let home = self.send("GET", "/", Some(&cookie), None).await;
        assert_eq!(home.status, StatusCode::OK, "{home:?}");
        Login {
            csrf: home.csrf(),
            cookie,
        }
    }
}

fn assert_console_headers(p: &Page, what: &str) {
    assert_eq!(p.header("content-security-policy"), CSP, "{what}");
    assert_eq!(p.header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(p.header("referrer-policy"), "no-referrer", "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_answers_without_a_session_and_logins_set_safe_cookies() {
    let c = Console::start().await;
    // Every protected route refuses: pages redirect to the login page, scripts' endpoints 401;
    // a made-up session cookie is no better than none.
    for cookie in [None, Some("gsmgate_session=made-up")] {
        for (method, path) in gsmgate::web::PROTECTED_ROUTES {
            let r = if *method == "GET" {
                c.send("GET", path, cookie, None).await
            } else {
                c.post(path, cookie, &[("csrf", "x"), ("text", "hi")]).await
            };
            if path.starts_with("/console/") {
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}: {r:?}");
            } else {
                assert_eq!(r.status, StatusCode::SEE_OTHER, "{method} {path}: {r:?}");
                assert_eq!(r.header("location"), "/login", "{method} {path}");
            }
            assert_console_headers(&r, path);
            assert!(!r.body.contains("+1555"), "{path} leaked data");
        }
    }

    // A browser asking for a page that does not exist gets an HTML 404 with the console's
    // headers (not the API's JSON), without a session and without the path echoed; a script
    // asking without `Accept: text/html`, and anything under /api/, still gets JSON.
    let get_accepting = |path: &'static str, accept: &'static str| {
        c.http
            .get(format!("{}{path}", c.base))
            .header("accept", accept)
            .send()
    };
    for (path, accept) in [
        ("/no-such-page", "text/html"),
        ("/console/nowhere", "text/html,*/*"),
    ] {
        let r = get_accepting(path, accept).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ctype.starts_with("text/html"), "{path}: {ctype}");
        assert_eq!(r.headers()["content-security-policy"], CSP, "{path}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("<h1>Not found</h1>") && body.contains("href=\"/\""),
            "{body}"
        );
        assert!(!body.contains(path), "{body}");
    }
    for (path, accept) in [
        ("/no-such-page", "application/json"),
        ("/api/v1/nowhere", "text/html"),
    ] {
        let r = get_accepting(path, accept).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(r.text().await.unwrap().contains("\"not_found\""), "{path}");
    }

    // The login page: the form of the element contract, safe headers, no inline script.
    let f = c.send("GET", "/login", None, None).await;
    assert_console_headers(&f, "/login");
    for needle in [
        "<form id=\"login\" method=\"post\"",
        "name=\"username\"",
        "name=\"password\"",
        "id=\"login-submit\"",
    ] {
        assert!(f.body.contains(needle), "{needle} in {}", f.body);
    }
    assert!(!f.body.contains("<script>") && !f.body.contains("style="));

    // A login without the form's token, or with another one, is refused.
    let r = c
        .post(
            "/login",
            None,
            &[("username", "olive"), ("password", OWNER_PW)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    let r = c
        .post(
            "/login",
            Some("gsmgate_login=abc"),
            &[
                ("csrf", "abd"),
                ("username", "olive"),
                ("password", OWNER_PW),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");

    // A wrong password shows `.error` and sets no session.
    let r = c.try_login("olive", "not the password").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("class=\"error\""), "{}", r.body);
    assert!(cookie_value(&r.set_cookies(), "gsmgate_session").is_none());
    let r = c.try_login("nobody", "not the password").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // A good one: the cookie's flags (no Secure on plain HTTP).
    let r = c.try_login("olive", OWNER_PW).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let set = r
        .set_cookies()
        .into_iter()
        .find(|s| s.starts_with("gsmgate_session="))
        .unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(!set.contains("Secure"), "{set}");
    let id = cookie_value(&[set], "gsmgate_session").unwrap();
    assert!(id.len() >= 43, "32 random bytes: {id}");

    // Every page: 200, the security headers, the navigation contract, one h1.
    let owner = c.login("olive", OWNER_PW).await;
    for path in [
        "/",
        "/conversations",
        "/broadcast",
        "/members",
        "/members/import",
        "/calls",
        "/modems",
    ] {
        let p = c.get(path, &owner).await;
        assert_eq!(p.status, StatusCode::OK, "{path}: {}", p.body);
        assert_console_headers(&p, path);
        assert_eq!(p.body.matches("<h1").count(), 1, "{path}");
        for id in [
            "nav-dashboard",
            "nav-conversations",
            "nav-broadcast",
            "nav-members",
            "nav-calls",
            "nav-modems",
        ] {
            assert!(p.body.contains(&format!("id=\"{id}\"")), "{id} on {path}");
        }
        assert!(
            p.body.contains("<form id=\"logout\" method=\"post\""),
            "{path}"
        );
        assert!(p.body.contains("<main>"), "{path}");
        assert!(
            !p.body.contains("<script>") && !p.body.contains(" style="),
            "{path}"
        );
    }
    let modems = c.get("/modems", &owner).await;
    assert!(
        modems
            .body
            .contains("<tr class=\"modem\" data-name=\"sim0\"")
    );
    // The SIM column shows each SIM's shortened ICCID and the number it reported.
    let infos = c.gw.client().await.modems().await.unwrap();
    for m in &infos {
        let sim = m.sim.as_ref().expect("the simulator's SIMs are read");
        let short = sim.iccid_short.as_deref().expect("an ICCID");
        assert!(modems.body.contains(short), "{} {short}", m.name);
        if let Some(n) = &sim.number {
            assert!(modems.body.contains(n.as_str()), "{} {n}", m.name);
        }
    }
    // The static files are served from the binary, also without a session.
    let js = c.send("GET", "/static/console.js", None, None).await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.header("content-type").starts_with("text/javascript"));
    assert_console_headers(&js, "console.js");
    let css = c.send("GET", "/static/console.css", None, None).await;
    assert!(css.header("content-type").starts_with("text/css"));
    c.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_is_checked_on_every_post_and_logout_everywhere_ends_other_sessions() {
    let c = Console::start().await;
    let a = c.login("olive", OWNER_PW).await;
    let b = c.login("olive", OWNER_PW).await;
    let other = c.login("victor", VOLUNTEER_PW).await;
    assert_ne!(a.csrf, b.csrf, "a token per session");

    let reply = "/conversations/%2B14155550101/reply";
    let posts: [(&str, Vec<(&str, &str)>); 6] = [
        (reply, vec![("text", "hello")]),
        ("/broadcast", vec![("text", "hi"), ("action", "send")]),
        ("/members/import", vec![("csv", "number\n+14155550101\n")]),
        ("/members/%2B14155550101", vec![("name", "X")]),
        ("/broadcasts/1/cancel", vec![]),
        ("/logout", vec![]),
    ];
    for (path, fields) in &posts {
        let r = c.post(path, Some(&a.cookie), fields).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path} without csrf");
        let mut wrong = fields.clone();
        wrong.push(("csrf", &b.csrf));
        let r = c.post(path, Some(&a.cookie), &wrong).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{path} with another session's csrf"
        );
        assert_console_headers(&r, path);
    }
    // The multipart upload too.
    let (ctype, body) = multipart(&[("csrf", b"wrong".as_slice(), None)]);
    let r = c
        .send(
            "POST",
            "/calls/greeting",
            Some(&a.cookie),
            Some((&ctype, body)),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    // Nothing was sent or changed by the refused posts.
    assert!(
        c.gw.conversation(ALICE).await.is_empty(),
        "a refused reply queued nothing"
    );

    // With the right token the reply goes out.
    let r = c
        .post(
            reply,
            Some(&a.cookie),
            &[("csrf", &a.csrf), ("text", "hello")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert!(
        r.header("location")
            .starts_with("/conversations/%2B14155550101")
    );

    // Logout everywhere from a: a and b end, the other account's session stays.
    let r = c
        .post("/logout-everywhere", Some(&a.cookie), &[("csrf", &a.csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), "/login");
    for s in [&a, &b] {
        let p = c.get("/conversations", s).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
    }
    assert_eq!(c.get("/", &other).await.status, StatusCode::OK);
    // Logout ends only this session.
    let d = c.login("victor", VOLUNTEER_PW).await;
    let r = c
        .post("/logout", Some(&other.cookie), &[("csrf", &other.csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.set_cookies()
            .iter()
            .any(|s| s.starts_with("gsmgate_session=;") && s.contains("Max-Age=0"))
    );
    assert_eq!(c.get("/", &other).await.status, StatusCode::SEE_OTHER);
    assert_eq!(c.get("/", &d).await.status, StatusCode::OK);
    // The change is recorded with who made it.
    let owner = c.login("olive", OWNER_PW).await;
    let home = c.get("/", &owner).await;
    assert!(home.body.contains("olive: send"), "{}", home.body);
    c.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_throttled_per_name_and_per_address() {
    let c = Console::start().await;
    for _ in 0..5 {
        let r = c.try_login("olive", "wrong password!").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // The right password no longer helps for this name, for a while.
    let r = c.try_login("olive", OWNER_PW).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    assert_console_headers(&r, "throttled");
    // Another name from the same address still logs in.
    c.login("victor", VOLUNTEER_PW).await;
    // Guessing many names from one address ends there too.
    for i in 0..15 {
        let r = c.try_login(&format!("guess{i}"), "wrong password!").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "guess {i}");
    }
    let r = c.try_login("victor", VOLUNTEER_PW).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    c.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volunteer_answers_conversations_but_cannot_broadcast_import_or_edit_members() {
    let c = Console::start().await;
    c.gw.add_member(ALICE).await;
    let v = c.login("victor", VOLUNTEER_PW).await;
    let home = c.get("/", &v).await;
    assert!(!home.body.contains("nav-broadcast"), "no broadcast link");
    // The dashboard's chart counts the member who joined today.
    assert!(
        home.body.contains("<figure id=\"joined-chart\">"),
        "{}",
        home.body
    );
    assert!(
        home.body.contains("1 joined, 0 opted out in all"),
        "{}",
        home.body
    );
    assert!(home.body.contains("<rect "), "a bar for today");

    for path in [
        "/broadcast",
        "/broadcasts/1",
        "/members/import",
        "/members/export",
    ] {
        let p = c.get(path, &v).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "GET {path}: {p:?}");
        assert!(p.body.contains("<h1"), "a page, not a blank");
    }
    let count = c
        .send(
            "GET",
            "/console/broadcast/count?segment=",
            Some(&v.cookie),
            None,
        )
        .await;
    assert_eq!(count.status, StatusCode::FORBIDDEN);
    let csrf = v.csrf.as_str();
    for (path, fields) in [
        (
            "/broadcast",
            vec![("csrf", csrf), ("text", "hi"), ("action", "send")],
        ),
        (
            "/members/import",
            vec![("csrf", csrf), ("csv", "number\n+14155550102\n")],
        ),
        (
            "/members/%2B14155550101",
            vec![("csrf", csrf), ("name", "Changed"), ("tags", "x")],
        ),
        ("/broadcasts/1/cancel", vec![("csrf", csrf)]),
    ] {
        let r = c.post(path, Some(&v.cookie), &fields).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "POST {path}: {r:?}");
    }
    let (ctype, body) = multipart(&[
        ("csrf", csrf.as_bytes(), None),
        ("greeting", b"RIFF".as_slice(), Some("g.wav")),
    ]);
    let r = c
        .send(
            "POST",
            "/calls/greeting",
            Some(&v.cookie),
            Some((&ctype, body)),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Nothing changed: no broadcast, the member as before.
    let mut client = c.gw.client().await;
    assert!(
        client
            .broadcasts(Default::default())
            .await
            .unwrap()
            .is_empty()
    );
    let m = client
        .members_get(gsmgate::admin::protocol::MemberGetArgs {
            number: ALICE.into(),
        })
        .await
        .unwrap();
    assert_eq!(m.name, None);
    // The member page shows, without a save button.
    let p = c.get("/members/%2B14155550101", &v).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(!p.body.contains("member-save"));
    // And the volunteer answers a conversation.
    let r = c
        .post(
            "/conversations/+14155550101/reply",
            Some(&v.cookie),
            &[("csrf", csrf), ("text", "Thanks, we got it")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    poll("the reply reaches the phone", WAIT, || async {
        c.gw.received_texts(ALICE)
            .iter()
            .any(|t| t == "Thanks, we got it")
            .then_some(())
    })
    .await;
    c.gw.shutdown().await;
}

/// The text of the element that starts at `open` (up to its closing `close`).
fn element<'a>(body: &'a str, open: &str, close: &str) -> &'a str {
    let at = body
        .find(open)
        .unwrap_or_else(|| panic!("no {open} in {body}"));
    let rest = &body[at..];
    &rest[..rest.find(close).map_or(rest.len(), |e| e + close.len())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_charts_joins_opt_outs_and_messages_and_lists_alerts() {
    // sim0 reads its balance at the first upkeep tick (the simulator answers 12.34), below
    // `low_balance`: the journal gets a `low_balance` alert.
    let c = Console::start_from(
        |d| {
            let text = config_text(d)
                .replace(
                    "[simulator]\nenabled = true\nmodems = 2\n",
                    "[simulator]\nenabled = true\nmodems = 2\nprofiles = [\"huawei\", \"simcom\"]\n",
                )
                .replace(
                    "/sim/modem0\"\n",
                    "/sim/modem0\"\nprofile = \"huawei\"\nbalance_ussd = \"*100#\"\n\
                     balance_every_hours = 744\nlow_balance = 100.0\n",
                )
                .replace("/sim/modem1\"\n", "/sim/modem1\"\nprofile = \"simcom\"\n");
            assert!(text.contains("low_balance") && text.contains("\"simcom\"\n"));
            text
        },
        "",
        // The first upkeep tick (which reads the balance) comes at once, not after a minute.
        |o| {
            o.upkeep = gsmgate::daemon::upkeep::UpkeepTiming {
                tick: Duration::from_millis(100),
                hour: Duration::from_secs(3600),
            }
        },
    )
    .await;
    // Two join, one of them opts out, texts go both ways.
    c.gw.add_member(ALICE).await;
    c.gw.add_member(BOB).await;
    c.gw.text_in(BOB, 0, "STOP");
    c.gw.text_in(ALICE, 0, "Hello there");
    let o = c.login("olive", OWNER_PW).await;
    poll("Alice's text is in", WAIT, || async {
        c.gw.inbox()
            .await
            .iter()
            .any(|m| m.text == "Hello there")
            .then_some(())
    })
    .await;
    let r = c
        .post(
            "/conversations/+14155550101/reply",
            Some(&o.cookie),
            &[("csrf", &o.csrf), ("text", "Hi Alice")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    // The STOP confirmation and the reply are recorded as sent (polled: the phone may have them
    // a moment before the store records the send).
    poll("two SMS recorded as sent", WAIT, || async {
        let a =
            c.gw.client()
                .await
                .activity(gsmgate::admin::protocol::ActivityArgs::default())
                .await
                .ok()?;
        (a.days.iter().map(|d| d.sent).sum::<u64>() >= 2).then_some(())
    })
    .await;

    let v = c.login("victor", VOLUNTEER_PW).await;
    let home = poll("the dashboard shows it all", WAIT, || async {
        let p = c.get("/", &v).await;
        let done = p.body.contains("2 joined, 1 opted out in all")
            && p.body.contains("2 received, ")
            && !p.body.contains("received, 0 sent in all")
            && p.body.contains("<strong>low balance</strong>");
        done.then_some(p)
    })
    .await;
    assert_eq!(home.status, StatusCode::OK);
    // The members chart: both series drawn, the figures as the image's label and as a table.
    let members = element(&home.body, "<figure id=\"joined-chart\">", "</figure>");
    assert!(members.contains("<rect class=\"joined\""), "{members}");
    assert!(members.contains("<rect class=\"opted-out\""), "{members}");
    assert!(members.contains("role=\"img\""));
    let label = element(members, "aria-label=\"", "\">");
    assert!(label.contains(" 1 opted out"), "{label}");
    assert!(members.contains("<details><summary>Figures</summary><table>"));
    assert_eq!(members.matches("<tr><th scope=\"row\">").count(), 14);
    // The messages chart.
    let messages = element(&home.body, "<figure id=\"messages-chart\">", "</figure>");
    assert!(messages.contains("<rect class=\"received\""), "{messages}");
    assert!(messages.contains("<rect class=\"sent\""), "{messages}");
    // The alert, for a volunteer too: time, kind and the sentence.
    let alerts = element(&home.body, "<ul id=\"alerts\">", "</ul>");
    assert!(
        alerts.contains("<li class=\"alert\" data-kind=\"low_balance\"><time datetime=\"20"),
        "{alerts}"
    );
    assert!(
        alerts.contains("sim0: balance 12.34 is below 100"),
        "{alerts}"
    );
    // The same figures through the API's verb, for the CLI and scripts.
    let a =
        c.gw.client()
            .await
            .activity(gsmgate::admin::protocol::ActivityArgs::default())
            .await
            .unwrap();
    assert_eq!(a.days.len(), 14);
    let total =
        |f: fn(&gsmgate::admin::protocol::ActivityDay) -> u64| a.days.iter().map(f).sum::<u64>();
    assert_eq!((total(|d| d.joined), total(|d| d.opted_out)), (2, 1));
    assert_eq!(total(|d| d.received), 2);
    assert!(
        total(|d| d.sent) >= 2,
        "the STOP confirmation and the reply"
    );
    assert_eq!(a.alerts[0].kind, "low_balance");
    // And through the real binary.
    let socket = c.gw.socket();
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || cli(&socket, &["activity", "--days", "3"], ""))
            .await
            .unwrap();
    assert!(ok, "{err}");
    assert!(
        out.contains("opted out") && out.contains("low_balance: sim0: balance"),
        "{out}"
    );
    c.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_names_and_texts_show_as_text_and_threads_carry_the_contract() {
    let c = Console::start().await;
    let evil_name = "<img src=x onerror=alert(1)>";
    c.gw.client()
        .await
        .members_add(MemberAddArgs {
            number: BOB.into(),
            name: Some(evil_name.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let evil_text = "<script>alert('x')</script> & \"quotes\"";
    c.gw.text_in(BOB, 0, evil_text);
    let o = c.login("olive", OWNER_PW).await;
    let list = poll("the thread appears", WAIT, || async {
        let p = c.get("/conversations", &o).await;
        p.body.contains("data-number=\"+14155550102\"").then_some(p)
    })
    .await;
    assert!(list.body.contains("<ul id=\"threads\""));
    assert!(
        list.body
            .contains("<li class=\"thread\" data-number=\"+14155550102\"")
    );
    assert!(list.body.contains("class=\"unread\""));
    assert!(list.body.contains("href=\"/conversations/%2B14155550102\""));
    assert!(!list.body.contains(evil_name), "raw name in {}", list.body);
    assert!(list.body.contains("&lt;img src=x onerror=alert(1)&gt;"));

    // The thread: the text escaped, with direction and state; both spellings of the number.
    for path in [
        "/conversations/%2B14155550102",
        "/conversations/+14155550102",
    ] {
        let t = c.get(path, &o).await;
        assert_eq!(t.status, StatusCode::OK, "{path}");
        assert!(t.body.contains("<ol id=\"messages\""));
        assert!(t.body.contains("class=\"message in\""));
        assert!(!t.body.contains("<script>alert"), "raw text in {}", t.body);
        assert!(
            t.body
                .contains("&lt;script&gt;alert('x')&lt;/script&gt; &amp; &quot;quotes&quot;"),
            "{}",
            t.body
        );
        assert!(t.body.contains("<form id=\"reply\""));
        assert!(t.body.contains("<textarea id=\"reply-text\" name=\"text\""));
        assert!(t.body.contains("id=\"reply-send\""));
    }
    let members = c.get("/members", &o).await;
    assert!(!members.body.contains(evil_name));
    assert!(members.body.contains("&lt;img src=x onerror=alert(1)&gt;"));
    let member = c.get("/members/%2B14155550102", &o).await;
    assert!(!member.body.contains(evil_name), "{}", member.body);

    // An outgoing reply shows as `out` with a state; the event stream needs a session.
    let r = c
        .post(
            "/conversations/%2B14155550102/reply",
            Some(&o.cookie),
            &[("csrf", &o.csrf), ("text", "<b>bold?</b>")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let t = c.get("/conversations/%2B14155550102", &o).await;
    assert!(t.body.contains("class=\"message out\""));
    assert!(t.body.contains("&lt;b&gt;bold?&lt;/b&gt;"));
    assert!(t.body.contains("class=\"state\""));
    let r = c.send("GET", "/console/events", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    c.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_counts_like_the_dry_run_and_its_progress_reaches_100() {
    let c = Console::start().await;
    let mut client = c.gw.client().await;
    for (n, city) in [
        (ALICE, "Springfield"),
        (BOB, "Springfield"),
        (daemon_util::CAROL, "Shelbyville"),
    ] {
        client
            .members_add(MemberAddArgs {
                number: n.into(),
                city: Some(city.into()),
                name: Some("Pat".into()),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let dry = client
        .broadcast(BroadcastArgs {
            text: "Hi {name}".into(),
            segment: Some("city=Springfield".into()),
            dry_run: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let o = c.login("olive", OWNER_PW).await;
    let page = c.get("/broadcast", &o).await;
    for needle in [
        "<form id=\"broadcast\"",
        "name=\"segment\"",
        "name=\"text\"",
        "name=\"at\"",
        "<output id=\"count\"",
        "id=\"preview\"",
        "id=\"broadcast-preview\"",
        "id=\"broadcast-send\"",
    ] {
        assert!(page.body.contains(needle), "{needle}");
    }
    // The JSON count console.js asks for, and the no-JS preview, say what the CLI says.
    let j = c
        .send(
            "GET",
            "/console/broadcast/count?segment=city%3DSpringfield",
            Some(&o.cookie),
            None,
        )
        .await;
    assert_eq!(j.status, StatusCode::OK, "{j:?}");
    let v: serde_json::Value = serde_json::from_str(&j.body).unwrap();
    assert_eq!(v["recipients"], dry.recipients);
    assert_eq!(dry.recipients, 2);
    let bad = c
        .send(
            "GET",
            "/console/broadcast/count?segment=colour%3Dred",
            Some(&o.cookie),
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let fields = [
        ("csrf", o.csrf.as_str()),
        ("segment", "city=Springfield"),
        ("text", "Hi {name}"),
        ("at", ""),
        ("action", "preview"),
    ];
    let p = c.post("/broadcast", Some(&o.cookie), &fields).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(
        p.body
            .contains("<output id=\"count\" for=\"segment\" aria-live=\"polite\">2</output>"),
        "{}",
        p.body
    );
    assert!(p.body.contains("Hi Pat"), "personalised preview");
    assert!(
        p.body.contains("GSM-7") || p.body.contains("gsm7"),
        "{}",
        p.body
    );
    assert!(
        client
            .broadcasts(Default::default())
            .await
            .unwrap()
            .is_empty(),
        "a preview sends nothing"
    );

    // Send: redirected to its progress, which reaches 100 %.
    let mut send = fields;
    send[4] = ("action", "send");
    let r = c.post("/broadcast", Some(&o.cookie), &send).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let location = r.header("location");
    assert!(location.starts_with("/broadcasts/"), "{location}");
    let done = poll("the progress reaches 100 %", WAIT, || async {
        let p = c.get(&location, &o).await;
        p.body.contains("data-percent=\"100\"").then_some(p)
    })
    .await;
    for needle in ["id=\"progress\"", "id=\"eta\"", "id=\"held\""] {
        assert!(done.body.contains(needle), "{needle}");
    }
    assert_eq!(
        c.gw.received_texts(ALICE),
        vec!["Hi Pat".to_string()],
        "one copy"
    );
    assert!(c.gw.received_texts(daemon_util::CAROL).is_empty());
    c.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opted_out_member_shows_as_opted_out_and_import_lists_numbered_row_errors() {
    let c = Console::start().await;
    c.gw.add_member(ALICE).await;
    c.gw.text_in(ALICE, 0, "STOP");
    let o = c.login("olive", OWNER_PW).await;
    let page = poll("the member shows as opted out", WAIT, || async {
        let p = c.get("/members", &o).await;
        p.body.contains("opted out").then_some(p)
    })
    .await;
    assert!(page.body.contains("<table id=\"members\""));
    assert!(
        page.body
            .contains("<tr class=\"member\" data-number=\"+14155550101\"")
    );
    assert!(page.body.contains("<form id=\"member-search\""));
    let cell = &page.body[page.body.find("class=\"status\"").unwrap()..];
    let cell = &cell[..cell.find("</td>").unwrap()];
    assert!(
        cell.contains("opted out 20") && cell.contains("STOP"),
        "when and how: {cell}"
    );
    // Searching by number and by segment.
    let p = c.get("/members?q=%2B14155550101", &o).await;
    assert!(p.body.contains("data-number=\"+14155550101\""));
    let p = c.get("/members?q=status%3Dactive", &o).await;
    assert!(!p.body.contains("data-number=\"+14155550101\""));

    // A dry-run import with bad rows lists them by number and imports nothing.
    let csv = "number,name\n+14155550102,Bo\nnot a number,X\n+1415,Y\n";
    let r = c
        .post(
            "/members/import",
            Some(&o.cookie),
            &[("csrf", &o.csrf), ("csv", csv), ("dry_run", "1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("<ol id=\"import-errors\""), "{}", r.body);
    assert!(
        r.body.contains("Row 3:") || r.body.contains("Row 2:"),
        "{}",
        r.body
    );
    let listed =
        c.gw.client()
            .await
            .members_get(gsmgate::admin::protocol::MemberGetArgs { number: BOB.into() })
            .await;
    assert!(listed.is_err(), "nothing imported");
    c.gw.shutdown().await;
}

/// A multipart body of `(name, bytes, filename)` parts.
fn multipart(parts: &[(&str, &[u8], Option<&str>)]) -> (String, Vec<u8>) {
    let boundary = "gsmgateTestBoundary7MA4YWxk";
    let mut body = Vec::new();
    for (name, data, file) in parts {
        write!(body, "--{boundary}\r\n").unwrap();
        match file {
            Some(f) => write!(
                body,
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                 Content-Type: audio/wav\r\n\r\n"
            )
            .unwrap(),
            None => write!(
                body,
                "Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"
            )
            .unwrap(),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{boundary}--\r\n").unwrap();
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn wav_bytes(seconds: usize) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
    for i in 0..8000 * seconds {
        w.write_sample(((i as f64 * 0.3).sin() * 5000.0) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_greeting_is_uploaded_and_played_back_from_the_calls_page() {
    let c = Console::start_with("").await;
    let voice_on = {
        // The plain test config has voice off: the upload is refused with the reason.
        let o = c.login("olive", OWNER_PW).await;
        let calls = c.get("/calls", &o).await;
        assert!(calls.body.contains("<table id=\"calls\""));
        assert!(calls.body.contains("<form id=\"greeting\""));
        assert!(calls.body.contains("enctype=\"multipart/form-data\""));
        assert!(calls.body.contains("type=\"file\" name=\"greeting\""));
        assert!(calls.body.contains("<audio id=\"greeting-audio\""));
        let (ctype, body) = multipart(&[
            ("csrf", o.csrf.as_bytes(), None),
            ("greeting", &wav_bytes(1), Some("g.wav")),
        ]);
        let r = c
            .send(
                "POST",
                "/calls/greeting",
                Some(&o.cookie),
                Some((&ctype, body)),
            )
            .await;
        r.status
    };
    assert_eq!(voice_on, StatusCode::BAD_REQUEST, "voice is off here");
    c.gw.shutdown().await;

    // With voice on: uploaded, then played back from a session-protected route.
    let dir = short_tempdir();
    let text = config_text(dir.path())
        .replace(
            "[simulator]\nenabled = true\nmodems = 2\n",
            "[simulator]\nenabled = true\nmodems = 2\nprofiles = [\"huawei\", \"simcom\"]\n",
        )
        .replace("/sim/modem0\"\n", "/sim/modem0\"\nprofile = \"huawei\"\n")
        .replace("/sim/modem1\"\n", "/sim/modem1\"\nprofile = \"simcom\"\n");
    let text = format!(
        "{text}\n[voice]\nenabled = true\nvoicemail = true\n\n[http]\nlisten = \"127.0.0.1:0\"\n"
    );
    let cfg = Config::from_str(&text, "voice.toml").unwrap();
    let opts = options(&cfg);
    let gw = Gateway::start_in(dir, cfg, opts).await;
    let addr = gw.daemon.http_addr().unwrap();
    let c = Console {
        gw,
        base: format!("http://{addr}"),
        http: c.http.clone(),
    };
    c.add_user("olive", WebRole::Owner, OWNER_PW).await;
    let o = c.login("olive", OWNER_PW).await;
    let wav = wav_bytes(2);
    let (ctype, body) = multipart(&[
        ("csrf", o.csrf.as_bytes(), None),
        ("greeting", &wav, Some("g.wav")),
    ]);
    let r = c
        .send(
            "POST",
            "/calls/greeting",
            Some(&o.cookie),
            Some((&ctype, body)),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let calls = c.get("/calls", &o).await;
    assert!(
        calls.body.contains("src=\"/calls/greeting.wav\""),
        "{}",
        calls.body
    );
    let audio = c.get("/calls/greeting.wav", &o).await;
    assert_eq!(audio.status, StatusCode::OK);
    assert_eq!(audio.header("content-type"), "audio/wav");
    let none = c.send("GET", "/calls/greeting.wav", None, None).await;
    assert_eq!(none.status, StatusCode::SEE_OTHER);
    c.gw.shutdown().await;
}

/// Runs the real binary's `web user …` with `stdin` piped in.
fn cli(socket: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gsmgate"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_user_cli_adds_lists_changes_and_removes_accounts() {
    let c = Console::start().await;
    let socket = c.gw.socket();
    let run = |args: Vec<&'static str>, stdin: &'static str| {
        let socket = socket.clone();
        tokio::task::spawn_blocking(move || cli(&socket, &args, stdin))
    };
    let (ok, out, err) = run(
        vec!["web", "user", "add", "ann", "--role", "volunteer"],
        "first password\n",
    )
    .await
    .unwrap();
    assert!(ok, "{out} {err}");
    assert!(out.contains("ann"), "{out}");
    assert!(!out.contains("first password") && !err.contains("first password"));
    let a = c.login("ann", "first password").await;
    let (ok, out, _) = run(vec!["web", "user", "list"], "").await.unwrap();
    assert!(ok);
    for name in ["ann", "olive", "victor", "volunteer", "owner"] {
        assert!(out.contains(name), "{name} in {out}");
    }
    let (ok, json, _) = run(vec!["--json", "web", "user", "list"], "")
        .await
        .unwrap();
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v.to_string().contains("\"sessions\":1"), "{v}");
    assert!(!json.contains("argon2"), "never a hash");
    // Too short a password, a duplicate name, an unknown role: refused.
    let (ok, _, err) = run(
        vec!["web", "user", "add", "bea", "--role", "owner"],
        "short\n",
    )
    .await
    .unwrap();
    assert!(!ok && err.contains("at least 10"), "{err}");
    let (ok, _, err) = run(
        vec!["web", "user", "add", "ann", "--role", "owner"],
        "another password\n",
    )
    .await
    .unwrap();
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, _) = run(vec!["web", "user", "add", "cy", "--role", "boss"], "x\n")
        .await
        .unwrap();
    assert!(!ok);
    // passwd: the old password stops working and the sessions end.
    let (ok, out, err) = run(vec!["web", "user", "passwd", "ann"], "second password\n")
        .await
        .unwrap();
    assert!(ok, "{out}{err}");
    assert!(out.contains("1 session"), "{out}");
    assert_eq!(c.get("/", &a).await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        c.try_login("ann", "first password").await.status,
        StatusCode::UNAUTHORIZED
    );
    let b = c.login("ann", "second password").await;
    // remove: the account and its sessions go.
    let (ok, out, _) = run(vec!["web", "user", "remove", "ann"], "").await.unwrap();
    assert!(ok, "{out}");
    assert_eq!(c.get("/", &b).await.status, StatusCode::SEE_OTHER);
    let (ok, _, err) = run(vec!["web", "user", "remove", "ann"], "").await.unwrap();
    assert!(!ok && err.contains("not found"), "{err}");
    c.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_tls_the_session_cookie_is_secure() {
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
    gw.client()
        .await
        .web_users_add(WebUserAddArgs {
            name: "olive".into(),
            role: WebRole::Owner,
            password: OWNER_PW.into(),
        })
        .await
        .unwrap();
    let port = gw.daemon.http_addr().unwrap().port();
    let ca = cert_path.display().to_string();
    let headers = tokio::task::spawn_blocking(move || {
        let resolve = format!("localhost:{port}:127.0.0.1");
        let base = format!("https://localhost:{port}");
        let r = curl(&[
            "--cacert",
            &ca,
            "--resolve",
            &resolve,
            &format!("{base}/login"),
        ]);
        let (h, body) = (r.headers, r.body);
        let set: Vec<String> = h
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
            .map(|l| l["set-cookie:".len()..].trim().to_string())
            .collect();
        assert!(set.iter().all(|c| c.contains("Secure")), "{set:?}");
        let token = cookie_value(&set, "gsmgate_login").unwrap();
        assert!(body.contains(&token));
        let data = form(&[
            ("csrf", &token),
            ("username", "olive"),
            ("password", OWNER_PW),
        ]);
        curl(&[
            "--cacert",
            &ca,
            "--resolve",
            &resolve,
            "-H",
            &format!("Cookie: gsmgate_login={token}"),
            "--data-binary",
            &data,
            &format!("{base}/login"),
        ])
        .headers
    })
    .await
    .unwrap();
    let session = headers
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: gsmgate_session=")
        })
        .unwrap_or_else(|| panic!("no session cookie in {headers}"));
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
        assert!(session.contains(flag), "{session}");
    }
    gw.shutdown().await;
}
