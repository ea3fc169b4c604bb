#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The web console in a real browser (headless Debian chromium through chromedriver): the
//! journeys of docs/web.md against the daemon in-process on simulated modems, with screenshots
//! of every page at phone (390×844) and laptop (1280×800) sizes under
//! `target/console-screenshots/` and an axe-core accessibility check on every page.

mod browser_util;
mod daemon_util;

use std::path::Path;
use std::time::Duration;

use browser_util::Browser;
use daemon_util::{ALICE, BOB, CAROL, Gateway, config_text, options, poll, short_tempdir};
use gsmgate::admin::protocol::{MemberAddArgs, MemberGetArgs};
use gsmgate::config::Config;
use gsmgate::sim::PhoneCall;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves one fixed HTML page on a loopback port, for as many requests as come.
async fn serve_static(html: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\r\n{html}",
                    html.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

/// The accessibility check is not vacuous: axe-core finds a missing image alt and an unlabelled
/// input on a bad page and nothing serious on a good one; clicks and typing reach the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_drives_chromium_and_axe_finds_real_violations() {
    let bad = serve_static(
        "<!doctype html><html><head><title>x</title></head><body><main><img src=\"data:,\">\
         <input type=text></main></body></html>",
    )
    .await;
    let good = serve_static(
        "<!doctype html><html lang=\"en\"><head><title>ok</title></head><body><main><h1>Hi</h1>\
         <label for=\"t\">Name</label><input id=\"t\" type=\"text\"><p id=\"out\"></p>\
         <button id=\"b\" type=\"button\">Go</button></main></body></html>",
    )
    .await;
    let b = Browser::start().await;
    b.goto(&format!("http://127.0.0.1:{bad}/")).await;
    let ids: Vec<String> = b.axe().await.into_iter().map(|v| v.id).collect();
    assert!(ids.iter().any(|i| i == "image-alt"), "{ids:?}");
    assert!(ids.iter().any(|i| i == "label"), "{ids:?}");

    b.goto(&format!("http://127.0.0.1:{good}/")).await;
    b.assert_accessible("good page").await;
    b.type_into("#t", "héllo <b>").await;
    let v = b
        .exec(
            "return document.getElementById('t').value",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(v, "héllo <b>");
    let shots = b.screenshots("harness").await;
    for s in shots {
        assert!(
            std::fs::metadata(&s).unwrap().len() > 1000,
            "{}",
            s.display()
        );
    }
    b.quit().await;
}

// ---- The console's journeys (docs/web.md, "Element ids the tests rely on") -------------------

const WAIT: Duration = Duration::from_secs(30);
const OWNER: (&str, &str) = ("olga", "correct horse battery");
const VOLUNTEER: (&str, &str) = ("victor", "staple paper clip");

/// A gateway with the console on a loopback port and voice on (a Huawei and a SIMCom stick, so a
/// simulated call can leave a voicemail); returns it with the console's base URL.
async fn start_console() -> (Gateway, String) {
    let dir = short_tempdir();
    let d = dir.path().display().to_string();
    let text = config_text(dir.path())
        .replace(
            "[simulator]\nenabled = true\nmodems = 2\n",
            "[simulator]\nenabled = true\nmodems = 2\nprofiles = [\"huawei\", \"simcom\"]\n",
        )
        .replace("/sim/modem0\"\n", "/sim/modem0\"\nprofile = \"huawei\"\n")
        .replace("/sim/modem1\"\n", "/sim/modem1\"\nprofile = \"simcom\"\n");
    assert!(
        text.contains("\"simcom\"\n"),
        "the test config changed shape"
    );
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/voice/demo_greeting.wav"),
        dir.path().join("greeting.wav"),
    )
    .expect("copy the demo greeting");
    let text = format!(
        "{text}\n[voice]\nenabled = true\nanswer_after_rings = 2\ngreeting = \"{d}/greeting.wav\"\n\
         voicemail = true\nmax_seconds = 30\nsilence_seconds = 1\n\n[http]\nlisten = \"127.0.0.1:0\"\n"
    );
    let cfg = Config::from_str(&text, "web-test.toml").expect("console test config validates");
    let mut opts = options(&cfg);
    if let Some(sim) = opts.sim.as_mut() {
        for spec in &mut sim.modems {
            spec.ring_interval_ms = 300;
            spec.cpcmreg_delay_ms = 400;
            spec.noise_interval_ms = 0;
        }
    }
    let gw = Gateway::start_in(dir, cfg, opts).await;
    let addr = gw.daemon.http_addr().expect("http listens");
    let base = format!("http://{addr}");
    (gw, base)
}

/// Runs the real `gsmgate` binary against the gateway's admin socket; `stdin` is piped in.
async fn gsmgate(gw: &Gateway, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gsmgate"));
    cmd.arg("--socket").arg(gw.socket()).args(args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let input = stdin.to_string();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().expect("gsmgate runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn add_user(gw: &Gateway, (name, password): (&str, &str), role: &str) {
    let (ok, out, err) = gsmgate(
        gw,
        &["web", "user", "add", name, "--role", role],
        &format!("{password}\n{password}\n"),
    )
    .await;
    assert!(ok, "web user add {name}: {out} {err}");
}

async fn login(b: &Browser, base: &str, (name, password): (&str, &str)) {
    b.goto(&format!("{base}/login")).await;
    b.type_into("#login input[name=username]", name).await;
    b.type_into("#login input[name=password]", password).await;
    b.click("#login-submit").await;
    b.wait_for("nav #nav-dashboard").await;
}

/// The HTTP status of `path` fetched by the page itself (with its session cookie).
async fn status_in_page(b: &Browser, path: &str) -> u64 {
    b.exec_async(
        "const done = arguments[arguments.length - 1];\
         fetch(arguments[0], {redirect: 'manual', credentials: 'same-origin'})\
           .then(r => done(r.status)).catch(e => done(-1));",
        json!([path]),
    )
    .await
    .as_u64()
    .unwrap_or(0)
}

fn thread_css(number: &str) -> String {
    format!("#threads li.thread[data-number=\"{number}\"]")
}

async fn add_member(gw: &Gateway, number: &str, name: &str, city: &str) {
    gw.client()
        .await
        .members_add(MemberAddArgs {
            number: number.into(),
            name: Some(name.into()),
            city: Some(city.into()),
            ..MemberAddArgs::default()
        })
        .await
        .unwrap_or_else(|e| panic!("members_add {number}: {e}"));
}

/// Log in; a phone texts the number and its thread appears live; the owner replies and the phone
/// receives it; the phone texts STOP and the member shows as opted out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_appears_live_the_reply_reaches_the_phone_and_stop_shows_opted_out() {
    let (gw, base) = start_console().await;
    add_user(&gw, OWNER, "owner").await;
    let b = Browser::start().await;

    // A wrong password is refused on the page.
    b.goto(&format!("{base}/login")).await;
    b.type_into("#login input[name=username]", OWNER.0).await;
    b.type_into("#login input[name=password]", "wrong").await;
    b.click("#login-submit").await;
    b.wait_for(".error").await;
    assert!(!b.exists("nav #nav-dashboard").await);

    login(&b, &base, OWNER).await;
    b.goto(&format!("{base}/conversations")).await;
    b.wait_for("#threads").await;
    assert!(!b.exists(&thread_css(ALICE)).await);

    // No navigation from here: the thread must arrive over the event stream.
    gw.text_in(ALICE, 0, "Hello from Alice <b>bold</b>");
    b.wait_for(&thread_css(ALICE)).await;
    b.click(&format!("{} a", thread_css(ALICE))).await;
    b.wait_any_text("#messages li.message.in .text", "Alice's text", |t| {
        t.contains("Hello from Alice <b>bold</b>")
    })
    .await;

    b.type_into("#reply textarea[name=text]", "Hi Alice, welcome!")
        .await;
    b.click("#reply-send").await;
    poll("Alice receives the console's reply", WAIT, || async {
        gw.received_texts(ALICE)
            .iter()
            .any(|t| t == "Hi Alice, welcome!")
            .then_some(())
    })
    .await;
    b.wait_any_text(
        "#messages li.message.out .text",
        "the reply in the thread",
        |t| t.contains("Hi Alice, welcome!"),
    )
    .await;

    gw.text_in(ALICE, 0, "STOP");
    poll("Alice is opted out", WAIT, || async {
        let m = gw
            .client()
            .await
            .members_get(MemberGetArgs {
                number: ALICE.into(),
            })
            .await
            .ok()?;
        (m.status == "opted_out").then_some(())
    })
    .await;
    b.goto(&format!("{base}/members")).await;
    b.wait_text(
        &format!("#members tr.member[data-number=\"{ALICE}\"] td.status"),
        "Alice's status",
        |t| t.contains("opted out"),
    )
    .await;
    b.quit().await;
    gw.shutdown().await;
}

/// Compose a broadcast to one city: the page's count equals the CLI's dry run; send it and the
/// progress reaches 100 %; the members there receive it and the member elsewhere does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_to_one_city_counts_like_the_cli_and_reaches_100_percent() {
    let (gw, base) = start_console().await;
    add_user(&gw, OWNER, "owner").await;
    add_member(&gw, ALICE, "Alice", "Springfield").await;
    add_member(&gw, BOB, "Bob", "Springfield").await;
    add_member(&gw, CAROL, "Carol", "Shelbyville").await;
    let segment = "city=Springfield";
    let (ok, out, err) = gsmgate(
        &gw,
        &[
            "--json",
            "broadcast",
            "--dry-run",
            "--segment",
            segment,
            "x",
        ],
        "",
    )
    .await;
    assert!(ok, "dry run: {out} {err}");
    let dry: serde_json::Value = serde_json::from_str(&out).unwrap();
    let cli_count = dry["recipients"].as_u64().unwrap();
    assert_eq!(cli_count, 2);

    let b = Browser::start().await;
    login(&b, &base, OWNER).await;
    b.click("#nav-broadcast").await;
    b.type_into("#broadcast input[name=segment]", segment).await;
    let text = "Hi {first_name}, meeting at 7 tonight";
    b.type_into("#broadcast textarea[name=text]", text).await;
    let shown = b
        .wait_text("#count", "the recipient count", |t| {
            t.trim() == cli_count.to_string()
        })
        .await;
    assert_eq!(shown.trim(), "2");
    // The preview is a dry run on the server (the form keeps what was typed).
    b.click("#broadcast-preview").await;
    b.wait_text("#preview", "the personalised preview", |t| {
        t.contains("meeting at 7 tonight") && !t.contains("{first_name}")
    })
    .await;
    b.click("#broadcast-send").await;
    b.wait_for("#progress").await;
    let deadline = std::time::Instant::now() + WAIT * 2;
    loop {
        let pct = b
            .attr("#progress", "data-percent")
            .await
            .unwrap_or_default();
        if pct == "100" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "progress stuck at {pct:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (phone, name) in [(ALICE, "Alice"), (BOB, "Bob")] {
        let want = format!("Hi {name}, meeting at 7 tonight");
        poll(&format!("{phone} receives the broadcast"), WAIT, || async {
            gw.received_texts(phone)
                .iter()
                .any(|t| t.starts_with(&want))
                .then_some(())
        })
        .await;
    }
    assert!(
        !gw.received_texts(CAROL)
            .iter()
            .any(|t| t.contains("meeting at 7")),
        "Carol is in Shelbyville"
    );
    b.quit().await;
    gw.shutdown().await;
}

/// A volunteer reads and answers conversations but has no broadcast page: no link, and the page
/// and its form are refused even when asked for directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volunteer_cannot_reach_the_broadcast_page() {
    let (gw, base) = start_console().await;
    add_user(&gw, VOLUNTEER, "volunteer").await;
    let b = Browser::start().await;
    login(&b, &base, VOLUNTEER).await;
    assert!(b.exists("#nav-conversations").await);
    assert!(
        !b.exists("#nav-broadcast").await,
        "a volunteer sees no broadcast link"
    );
    assert_eq!(status_in_page(&b, "/broadcast").await, 403);
    b.goto(&format!("{base}/broadcast")).await;
    b.wait_for("main h1").await;
    assert!(!b.exists("#broadcast-send").await);
    b.goto(&format!("{base}/")).await;
    // Logged out, nothing answers: the event stream and a page both want a session.
    b.click("#logout button").await;
    b.wait_for("#login").await;
    assert_eq!(status_in_page(&b, "/console/events").await, 401);
    let s = status_in_page(&b, "/conversations").await;
    assert!(
        s == 303 || s == 302 || s == 0,
        "a page without a session: {s}"
    );
    b.quit().await;
    gw.shutdown().await;
}

/// Upload a greeting and listen to it; a simulated call leaves a voicemail that plays in the
/// browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_greeting_plays_and_a_voicemail_plays_in_the_browser() {
    let (gw, base) = start_console().await;
    add_user(&gw, OWNER, "owner").await;
    let b = Browser::start().await;
    login(&b, &base, OWNER).await;
    b.click("#nav-calls").await;
    let greeting = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/voice/demo_greeting.wav");
    b.type_into(
        "#greeting input[type=file][name=greeting]",
        &greeting.display().to_string(),
    )
    .await;
    b.click("#greeting button[type=submit]").await;
    b.wait_for("#greeting-audio").await;
    assert!(
        playable(&b, "#greeting-audio").await > 1.0,
        "the greeting plays"
    );

    // The caller says something after the greeting and the beep, then hangs up.
    let speak = gw.dir.path().join("speech.wav");
    let mut w = hound::WavWriter::create(
        &speak,
        hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        },
    )
    .unwrap();
    for i in 0..8000 * 6 {
        let s = if i < 8000 * 4 {
            0.0
        } else {
            (i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 8000.0).sin() * 8000.0
        };
        w.write_sample(s as i16).unwrap();
    }
    w.finalize().unwrap();
    gw.sim()
        .phone_call(&PhoneCall {
            from: BOB.into(),
            modem: 0,
            speak_wav: Some(speak),
            ..PhoneCall::default()
        })
        .expect("call placed");
    let deadline = std::time::Instant::now() + WAIT * 2;
    loop {
        b.goto(&format!("{base}/calls")).await;
        if b.exists("audio.voicemail").await {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no voicemail listed");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(b.exists("#calls tr.call").await);
    assert!(
        playable(&b, "audio.voicemail").await > 0.5,
        "the voicemail plays"
    );
    b.quit().await;
    gw.shutdown().await;
}

/// Loads the audio element's source in the page and returns its duration in seconds (the browser
/// decoded the WAV), failing on a media error.
async fn playable(b: &Browser, css: &str) -> f64 {
    let v = b
        .exec_async(
            "const done = arguments[arguments.length - 1];\
             const a = document.querySelector(arguments[0]);\
             if (!a) { done('no element'); return; }\
             const ok = () => done(a.duration);\
             a.addEventListener('error', () => done('media error ' + (a.error && a.error.code)));\
             if (a.readyState >= 1 && isFinite(a.duration)) { ok(); return; }\
             a.addEventListener('loadedmetadata', ok); a.preload = 'auto'; a.load();",
            json!([css]),
        )
        .await;
    v.as_f64()
        .unwrap_or_else(|| panic!("{css} does not play: {v}"))
}

/// Every page at phone and laptop sizes, screenshots written, no serious or critical
/// accessibility violation, and untrusted names and texts shown as text (no script runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_on_a_phone_and_a_laptop_accessibly_and_escapes_untrusted_text() {
    let (gw, base) = start_console().await;
    add_user(&gw, OWNER, "owner").await;
    let evil = "<img src=x onerror=alert(1)>";
    add_member(&gw, ALICE, evil, "Springfield").await;
    gw.text_in(ALICE, 0, "<script>alert(2)</script> & hello");
    poll("Alice's text is in", WAIT, || async {
        (!gw.conversation(ALICE).await.is_empty()).then_some(())
    })
    .await;
    let b = Browser::start().await;
    b.goto(&format!("{base}/login")).await;
    b.wait_for("#login").await;
    let mut shots = b.screenshots("login").await;
    b.assert_accessible("login").await;
    login(&b, &base, OWNER).await;
    let thread = format!("/conversations/{}", ALICE.replace('+', "%2B"));
    let pages = [
        ("dashboard", "/"),
        ("conversations", "/conversations"),
        ("thread", thread.as_str()),
        ("broadcast", "/broadcast"),
        ("members", "/members"),
        ("calls", "/calls"),
        ("modems", "/modems"),
    ];
    for (name, path) in pages {
        b.goto(&format!("{base}{path}")).await;
        b.wait_for("main h1").await;
        shots.extend(b.screenshots(name).await);
        let all = b.assert_accessible(name).await;
        println!("{name}: {} minor/moderate axe findings", all.len());
        let alert = b.raw_alert().await;
        assert!(alert.is_none(), "{name}: a script ran: {alert:?}");
    }
    b.goto(&format!("{base}/members")).await;
    b.wait_text("#members", "the evil name shown as text", |t| {
        t.contains(evil)
    })
    .await;
    b.goto(&format!("{base}{thread}")).await;
    b.wait_text("#messages", "the HTML text shown as text", |t| {
        t.contains("<script>alert(2)</script> & hello")
    })
    .await;
    assert!(b.raw_alert().await.is_none());
    for s in &shots {
        assert!(
            std::fs::metadata(s).unwrap().len() > 1000,
            "{}",
            s.display()
        );
    }
    println!("screenshots: {}", browser_util::screenshot_dir().display());
    b.quit().await;
    gw.shutdown().await;
}
