//! A real browser for the console's end-to-end tests: Debian's `chromium`, headless, driven through
//! `chromedriver` with the W3C WebDriver protocol (https://www.w3.org/TR/webdriver2/). The client is
//! a few lines of HTTP/1.1 over a loopback socket rather than a WebDriver crate: the protocol is
//! plain JSON over one short connection per call (chromedriver does not speak HTTP/1.0 and keeps
//! the socket open, so answers are read by their Content-Length), and the tests gain no
//! TLS stack or second async runtime.
//!
//! What it owns: starting and ending one chromedriver process per test (on a free loopback port,
//! killed by its PID on drop), the session, element lookups by CSS, waits that poll with a
//! deadline (never fixed sleeps), screenshots under `target/`, and the accessibility check with
//! axe-core (from the npm registry, installed by `.ci/run`; the path is `AXE_CORE_JS` or
//! `target/axe/node_modules/axe-core/axe.min.js`). It knows nothing about the console's pages:
//! the journeys in `tests/web_browser.rs` hold those.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a wait polls before the test fails (generous: the CI machine is often loaded).
pub const WAIT: Duration = Duration::from_secs(30);

pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

/// One axe-core finding.
#[derive(Debug)]
pub struct Violation {
    pub id: String,
    pub impact: String,
    pub help: String,
    pub nodes: usize,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// The directory screenshots go to: `target/console-screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("create the screenshot dir");
    dir
}

fn axe_path() -> PathBuf {
    if let Some(p) = std::env::var_os("AXE_CORE_JS") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/axe/node_modules/axe-core/axe.min.js")
}

impl Browser {
    /// Starts chromedriver and a headless chromium session at 1280×800.
    pub async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver)");
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(v) = b.raw("GET", "/status", None).await
                && v["value"]["ready"] == json!(true)
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Root in a container needs --no-sandbox; /dev/shm is small there, hence the last flag.
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,800",
                         "--autoplay-policy=no-user-gesture-required",
                         "--lang=en-US"]
            }
        }}});
        let v = b
            .raw("POST", "/session", Some(caps))
            .await
            .expect("new session");
        b.session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        b
    }

    /// One WebDriver call; `Err` carries the WebDriver error text.
    async fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut s = TcpStream::connect(("127.0.0.1", self.port))
            .await
            .map_err(|e| e.to_string())?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        // chromedriver keeps the socket open after answering, so read by Content-Length.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        let (head, body_start, len) = loop {
            let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("chromedriver closed the connection early".into());
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim()
                            .eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .ok_or("no Content-Length")?;
                break (head, end + 4, len);
            }
        };
        while buf.len() < body_start + len {
            let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("chromedriver closed the connection mid-answer".into());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let json_text = String::from_utf8_lossy(&buf[body_start..body_start + len]).to_string();
        let v: Value =
            serde_json::from_str(&json_text).map_err(|e| format!("{e}: {head} {json_text}"))?;
        if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200") {
            Ok(v)
        } else {
            Err(format!(
                "{}: {}",
                v["value"]["error"], v["value"]["message"]
            ))
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let full = format!("/session/{}{path}", self.session);
        match self.raw(method, &full, body).await {
            Ok(v) => v["value"].clone(),
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        }
    }

    pub async fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url }))).await;
    }

    pub async fn url(&self) -> String {
        self.call("GET", "/url", None)
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub async fn set_size(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    /// Every element matching `css`, now (maybe none).
    pub async fn all(&self, css: &str) -> Vec<String> {
        let v = self
            .call(
                "POST",
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(e) = self.all(css).await.into_iter().next() {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no element {css} on {} within {WAIT:?}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One call on the first element matching `css`. Live updates replace parts of the page, so
    /// an element found a moment ago may be gone ("stale"): look it up again and retry.
    async fn on_element(&self, css: &str, method: &str, what: &str, body: Option<Value>) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let e = self.find(css).await;
            let full = format!("/session/{}/element/{e}{what}", self.session);
            match self.raw(method, &full, body.clone()).await {
                Ok(v) => return v["value"].clone(),
                Err(err) if err.contains("stale element") && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => panic!("WebDriver {method} {what} on {css}: {err}"),
            }
        }
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self.all(css).await.is_empty()
    }

    pub async fn click(&self, css: &str) {
        self.on_element(css, "POST", "/click", Some(json!({})))
            .await;
    }

    /// Types `text` into the element (a file input takes an absolute path).
    pub async fn type_into(&self, css: &str, text: &str) {
        self.on_element(css, "POST", "/value", Some(json!({ "text": text })))
            .await;
    }

    pub async fn clear(&self, css: &str) {
        self.on_element(css, "POST", "/clear", Some(json!({})))
            .await;
    }

    /// The rendered text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let v = self.on_element(css, "GET", "/text", None).await;
        v.as_str().unwrap_or("").to_string()
    }

    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let v = self
            .on_element(css, "GET", &format!("/attribute/{name}"), None)
            .await;
        v.as_str().map(str::to_string)
    }

    /// Polls the text of `css` until `ok` holds; returns it.
    pub async fn wait_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.exists(css).await {
                let t = self.text(css).await;
                if ok(&t) {
                    return t;
                }
                assert!(
                    Instant::now() < deadline,
                    "{what}: {css} still reads {t:?} on {}",
                    self.url().await
                );
            } else {
                assert!(Instant::now() < deadline, "{what}: no {css}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The rendered texts of every element matching `css`, now.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.all(css).await {
            let full = format!("/session/{}/element/{e}/text", self.session);
            // An element replaced by a live update since the lookup is skipped, not fatal.
            if let Ok(v) = self.raw("GET", &full, None).await {
                out.push(v["value"].as_str().unwrap_or("").to_string());
            }
        }
        out
    }

    /// Polls until some element matching `css` has a text for which `ok` holds; returns it.
    pub async fn wait_any_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let texts = self.texts(css).await;
            if let Some(t) = texts.iter().find(|t| ok(t)) {
                return t.clone();
            }
            assert!(
                Instant::now() < deadline,
                "{what}: no {css} fits; they read {texts:?} on {}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until `css` matches something.
    pub async fn wait_for(&self, css: &str) {
        self.find(css).await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn exec(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Runs an async `script`: it calls `arguments[arguments.length - 1](result)` when done.
    pub async fn exec_async(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Makes the viewport exactly `width`×`height` CSS pixels (a phone-like, touch-less mobile
    /// viewport under 600 px, so `<meta name=viewport>` applies), through chromedriver's Chrome
    /// DevTools passthrough: a window rect would include the browser's own frame.
    pub async fn viewport(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/goog/cdp/execute",
            Some(
                json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {
                    "width": width, "height": height, "deviceScaleFactor": 1,
                    "mobile": width < 600
                }}),
            ),
        )
        .await;
    }

    /// A PNG of the viewport at `width`×`height`, written as `<name>-<width>x<height>.png` under
    /// `target/console-screenshots/`; returns the path.
    pub async fn screenshot(&self, name: &str, width: u32, height: u32) -> PathBuf {
        self.viewport(width, height).await;
        use base64::Engine;
        let v = self.call("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("screenshot is base64"))
            .expect("screenshot decodes");
        let path = screenshot_dir().join(format!("{name}-{width}x{height}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    /// Screenshots at the phone (390×844) and laptop (1280×800) sizes, then back to laptop.
    pub async fn screenshots(&self, name: &str) -> Vec<PathBuf> {
        let phone = self.screenshot(name, 390, 844).await;
        let laptop = self.screenshot(name, 1280, 800).await;
        vec![phone, laptop]
    }

    /// axe-core's violations on the current page (all impacts; the journeys assert on
    /// `serious` and `critical`).
    pub async fn axe(&self) -> Vec<Violation> {
        let path = axe_path();
        let source = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "axe-core not found at {} ({e}): run `npm install --prefix target/axe axe-core` \
                 (.ci/run does) or set AXE_CORE_JS",
                path.display()
            )
        });
        // WebDriver scripts run outside the page's Content-Security-Policy, so the console's
        // policy (no inline script) does not stop the check.
        self.exec(&source, json!([])).await;
        let v = self
            .exec_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, {resultTypes: ['violations']})\
                   .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact || '', \
                         help: v.help, nodes: v.nodes.length}))))\
                   .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: 0}]));",
                json!([]),
            )
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|x| Violation {
                        id: x["id"].as_str().unwrap_or("").to_string(),
                        impact: x["impact"].as_str().unwrap_or("").to_string(),
                        help: x["help"].as_str().unwrap_or("").to_string(),
                        nodes: x["nodes"].as_u64().unwrap_or(0) as usize,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Fails the test on any serious or critical axe-core violation; returns all findings.
    pub async fn assert_accessible(&self, page: &str) -> Vec<Violation> {
        let all = self.axe().await;
        let bad: Vec<&Violation> = all
            .iter()
            .filter(|v| v.impact == "serious" || v.impact == "critical")
            .collect();
        assert!(bad.is_empty(), "{page}: accessibility violations: {bad:#?}");
        all
    }

    /// The text of an open alert/confirm/prompt dialog, if a script opened one.
    pub async fn raw_alert(&self) -> Option<String> {
        let full = format!("/session/{}/alert/text", self.session);
        self.raw("GET", &full, None)
            .await
            .ok()
            .and_then(|v| v["value"].as_str().map(str::to_string))
    }

    /// Ends the session and chromedriver.
    pub async fn quit(mut self) {
        let _ = self
            .raw("DELETE", &format!("/session/{}", self.session), None)
            .await;
        self.session.clear();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test drops without quit(): end the session first (so chromedriver closes the
        // browser it started), then chromedriver by its PID.
        if !self.session.is_empty() {
            use std::io::{Read, Write};
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let req = format!(
                    "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                    self.session
                );
                let _ = s.write_all(req.as_bytes());
                let _ = s.read(&mut [0u8; 4096]);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
