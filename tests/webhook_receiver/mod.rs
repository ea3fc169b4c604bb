//! A webhook receiver for the tests and the benchmark: a small HTTP/1.1 server on 127.0.0.1
//! that checks each delivery exactly as docs/http-api.md ("Webhooks", "Verifying a delivery")
//! tells a user to — timestamp within 5 minutes, `sha256=` + hex HMAC-SHA256 over
//! "<timestamp>.<raw body>" compared in constant time, de-duplication by event id — and records
//! what it saw. It can answer a scripted sequence of statuses (500 then 200) and go down (its
//! port closed: connection refused) and come back on the same port.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub kind: String,
    pub body: Value,
    /// Whether the signature verified (the receiver answered 401 when not).
    pub verified: bool,
    /// Whether this id had been seen before (a duplicate, answered 2xx and dropped).
    pub duplicate: bool,
    /// Unix ms when it arrived.
    pub received_ms: i64,
    /// The status the receiver answered.
    pub status: u16,
}

#[derive(Default)]
struct State {
    deliveries: Vec<Delivery>,
    seen: BTreeSet<i64>,
    /// Statuses to answer next (after verification), then 200.
    script: VecDeque<u16>,
    /// How long to hold each answer after recording the delivery.
    delay_ms: u64,
}

/// Why [`verify`] refused a delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    MissingHeader(&'static str),
    BadTimestamp,
    TooOld,
    BadSignature,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The receiver's check, step by step as docs/http-api.md gives it. `header` looks a header up
/// case-insensitively.
pub fn verify(
    secret: &str,
    header: impl Fn(&str) -> Option<String>,
    raw_body: &[u8],
    now_secs: i64,
) -> Result<(), Refused> {
    // 1. The timestamp header: an integer, at most 300 s from now (refuses replays).
    let ts = header("X-Gsmgate-Timestamp").ok_or(Refused::MissingHeader("X-Gsmgate-Timestamp"))?;
    let t: i64 = ts.trim().parse().map_err(|_| Refused::BadTimestamp)?;
    if (now_secs - t).abs() > 300 {
        return Err(Refused::TooOld);
    }
    // 2. HMAC-SHA256 with the shared secret over "<timestamp>.<raw body>", lower-case hex.
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(ts.trim().as_bytes());
    mac.update(b".");
    mac.update(raw_body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let expected = format!("sha256={hex}");
    // 3. Compared in constant time with X-Gsmgate-Signature.
    let got = header("X-Gsmgate-Signature").ok_or(Refused::MissingHeader("X-Gsmgate-Signature"))?;
    if bool::from(expected.as_bytes().ct_eq(got.trim().as_bytes())) {
        Ok(())
    } else {
        Err(Refused::BadSignature)
    }
}

pub struct Receiver {
    addr: SocketAddr,
    secret: String,
    state: Arc<Mutex<State>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Receiver {
    /// Starts on 127.0.0.1 with a free port.
    pub async fn start(secret: &str) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver {
            addr: listener.local_addr().unwrap(),
            secret: secret.to_string(),
            state: Arc::default(),
            task: Mutex::new(None),
        };
        r.serve(listener);
        r
    }

    pub fn url(&self) -> String {
        format!("http://{}/gsmgate/events", self.addr)
    }

    fn serve(&self, listener: TcpListener) {
        let state = self.state.clone();
        let secret = self.secret.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (state, secret) = (state.clone(), secret.clone());
                tokio::spawn(async move {
                    let _ = handle(stream, &secret, &state).await;
                });
            }
        });
        *self.task.lock().unwrap() = Some(task);
    }

    /// Closes the port: deliveries get "connection refused" until [`Receiver::up`].
    pub fn down(&self) {
        if let Some(t) = self.task.lock().unwrap().take() {
            t.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn up(&self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) => {
                    tries += 1;
                    assert!(tries < 100, "cannot rebind {}: {e}", self.addr);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        };
        self.serve(listener);
    }

    /// The next requests are answered with these statuses (after verification), then 200.
    pub fn script(&self, statuses: &[u16]) {
        self.state.lock().unwrap().script.extend(statuses);
    }

    /// Holds each answer this long after the delivery was recorded (so a test can kill the
    /// sender between "received" and "answered").
    pub fn set_delay(&self, ms: u64) {
        self.state.lock().unwrap().delay_ms = ms;
    }

    /// Forgets the scripted statuses not used yet: 200 from now on.
    pub fn clear_script(&self) {
        self.state.lock().unwrap().script.clear();
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.lock().unwrap().deliveries.clone()
    }

    /// The ids accepted (verified and answered 2xx), de-duplicated, ascending.
    pub fn ids(&self) -> BTreeSet<i64> {
        self.state.lock().unwrap().seen.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.down();
    }
}

async fn handle(stream: TcpStream, secret: &str, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).await?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| *k == name.to_ascii_lowercase())
            .map(|(_, v)| v.clone())
    };
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).await?;
    let received_ms = now_ms();
    let verified = verify(secret, header, &body, now_secs()).is_ok();
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = parsed["id"].as_i64().unwrap_or(-1);
    let (status, delay_ms) = {
        let mut s = state.lock().unwrap();
        let status = if !verified {
            401
        } else {
            s.script.pop_front().unwrap_or(200)
        };
        let duplicate = s.seen.contains(&id);
        if verified && (200..300).contains(&status) {
            s.seen.insert(id);
        }
        s.deliveries.push(Delivery {
            id,
            kind: parsed["type"].as_str().unwrap_or_default().to_string(),
            body: parsed,
            verified,
            duplicate,
            received_ms,
            status,
        });
        (status, s.delay_ms)
    };
    tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
    let mut stream = reader.into_inner();
    let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}
