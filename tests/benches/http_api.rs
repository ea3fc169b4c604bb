//! Figures of the HTTP API: requests per second of `POST /api/v1/messages` from 50 concurrent
//! keep-alive clients on loopback, their latency percentiles, and the daemon's resident memory
//! (VmRSS now, VmHWM peak) with the server on, before and after the load.
//!
//! The daemon is the release binary (`gsmgate daemon --config …`) in its own process on two
//! simulated modems, so its RSS is its own; the clients are this process (a few lines of
//! HTTP/1.1 over tokio's TcpStream: a load tool's own costs stay out of the daemon's figures).
//! Every accepted message is in SQLite (fsynced) before its 202, so the rate measures the
//! durable path, not a queue in memory. `cargo bench --bench http_api` prints one table.

// Test code: a failed setup may panic with unwrap/expect; that is the bench failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const CLIENTS: usize = 50;
const REQUESTS: usize = 10_000;
const BIN: &str = env!("CARGO_BIN_EXE_gsmgate");

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One keep-alive connection sending `n` POSTs; returns each request's latency.
async fn client(port: u16, token: String, n: usize) -> Vec<Duration> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let body = r#"{"to": "+14155550101", "text": "Load test: your shift starts at 9."}"#;
    let req = format!(
        "POST /api/v1/messages HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut lat = Vec::with_capacity(n);
    let mut line = String::new();
    for _ in 0..n {
        let t = Instant::now();
        w.write_all(req.as_bytes()).await.unwrap();
        let mut len = 0usize;
        line.clear();
        r.read_line(&mut line).await.unwrap();
        assert!(line.contains(" 202 "), "unexpected answer: {line:?}");
        loop {
            line.clear();
            r.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut buf = vec![0u8; len];
        r.read_exact(&mut buf).await.unwrap();
        lat.push(t.elapsed());
    }
    lat
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let dir = tempfile::Builder::new()
        .prefix("gh")
        .tempdir_in("/tmp")
        .unwrap();
    let d = dir.path().display();
    let port = free_port();
    let config = dir.path().join("gsmgate.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\nstate_dir = \"{d}/state\"\nadmin_socket = \"{d}/a.sock\"\nlog = \"warn\"\n\
             [simulator]\nenabled = true\nmodems = 2\ndir = \"{d}/sim\"\n\
             [http]\nlisten = \"127.0.0.1:{port}\"\nrate_per_minute = 1000000\n"
        ),
    )
    .unwrap();
    let child = Command::new(BIN)
        .args(["daemon", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let daemon = Daemon(child);
    let pid = daemon.0.id();
    let socket = format!("{d}/a.sock");
    let deadline = Instant::now() + Duration::from_secs(60);
    let token = loop {
        let out = Command::new(BIN)
            .args([
                "--socket", &socket, "--json", "tokens", "create", "bench", "--scope", "send",
            ])
            .output()
            .unwrap();
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            break v["secret"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(Duration::from_millis(100));
    };
    let rss_idle = status_kib(pid, "VmRSS:");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // Warm-up: connections, the token lookup path, SQLite's page cache.
    rt.block_on(client(port, token.clone(), 200));
    let started = Instant::now();
    let mut lat: Vec<Duration> = rt.block_on(async {
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| tokio::spawn(client(port, token.clone(), REQUESTS / CLIENTS)))
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let elapsed = started.elapsed();
    lat.sort();
    let rss_after = status_kib(pid, "VmRSS:");
    let hwm = status_kib(pid, "VmHWM:");
    println!(
        "HTTP API: POST /api/v1/messages, {CLIENTS} keep-alive clients, loopback, release build"
    );
    println!(
        "  requests        {:>8}  in {:.2} s",
        lat.len(),
        elapsed.as_secs_f64()
    );
    println!(
        "  throughput      {:>8.0}  requests/s (each stored and fsynced before its 202)",
        lat.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  latency ms      p50 {:.2}  p99 {:.2}  max {:.2}",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    );
    println!(
        "  daemon RSS      {:.1} MiB idle with the server on, {:.1} MiB after, peak {:.1} MiB",
        rss_idle as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    drop(daemon);
}
