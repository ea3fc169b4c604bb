#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The web console in a real browser (headless Debian chromium through chromedriver): the
//! journeys of docs/web.md against the daemon in-process on simulated modems, with screenshots
//! of every page at phone (390×844) and laptop (1280×800) sizes under
//! `target/console-screenshots/` and an axe-core accessibility check on every page.

mod browser_util;

use browser_util::Browser;
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
