//! vigil-chaos: issue 13's fault tests against a private nats-server and the real engine binary
//! (`scripts/chaos` builds both and runs this). Under a steady load of vitals it
//! 1. kills the engine with `kill -9` at random moments while alerts open and escalate, and
//!    restarts it;
//! 2. restarts nats-server (SIGTERM, then SIGKILL);
//! 3. publishes poison identifiers, floods the gateway with idle sockets while probing
//!    `/healthz`, and lets one dashboard stop reading while another reads;
//!
//! then accounts for everything from the streams themselves and prints a report with exact
//! counts. Exit status 1 on any loss: an alert missing or duplicated, a gap in an alert's
//! audit trail, an escalation more than 2 s off its deadline (or, for a deadline that passed
//! while the engine was down, more than 2 s after it was ready again), an event not
//! acknowledged, a dead letter not accounted for, a failed probe, a reading dashboard that
//! missed an alert, a stalled one not closed with 1013.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream;
use clap::Parser;
use futures::{SinkExt, StreamExt};
use rand::Rng;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

const TENANT: &str = "chaos";
const TOKEN: &str = "chaos-admin-token";
const CONSUMER: &str = "vigil-chaos";
/// Escalation levels at 0, 4 and 8 s: deadlines fall inside the outages.
const LEVEL_AFTER_MS: [i64; 3] = [0, 4000, 8000];
/// How far an escalation may be from its deadline.
const SLACK_MS: i64 = 2000;

#[derive(Parser, Debug)]
#[command(
    name = "vigil-chaos",
    about = "Fault tests of a Vigil engine; exits 1 on any loss"
)]
struct Args {
    /// The engine binary (`target/release/vigil`).
    #[arg(long, required_unless_present = "hold")]
    vigil: Option<PathBuf>,
    /// The nats-server binary.
    #[arg(long, default_value = "nats-server")]
    nats_server: PathBuf,
    /// Simulated patients; every tenth deteriorates (NEWS2 8), at staggered times.
    #[arg(long, default_value_t = 5000)]
    patients: usize,
    /// Vitals per second, all patients together.
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// `kill -9` of the engine, each followed by a restart.
    #[arg(long, default_value_t = 10)]
    kills: usize,
    /// Idle TCP connections of the flood (the engine's cap is its default: `ulimit -n` less an
    /// eighth). More than this process's own file limit allows are skipped.
    #[arg(long, default_value_t = 20000)]
    flood: usize,
    /// Internal: hold `--hold-count` idle sockets to this address until stdin closes (the
    /// flood comes from helper processes, each within its own file limit).
    #[arg(long, hide = true)]
    hold: Option<String>,
    #[arg(long, hide = true, default_value_t = 0)]
    hold_count: usize,
}

/// Sockets one helper process holds: well within a file limit of 20,000.
const HELD_PER_HELPER: usize = 5000;

/// The helper's whole job: connect, report how many it holds, wait for stdin to close.
async fn hold_sockets(addr: &str, count: usize) -> anyhow::Result<()> {
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        if let Ok(s) = tokio::net::TcpStream::connect(addr).await {
            held.push(s);
        }
    }
    println!("held {}", held.len());
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 1];
    let _ = stdin.read(&mut buf).await;
    Ok(())
}

/// Starts helpers holding `total` idle sockets to `addr` in all; returns them once every one
/// has connected, with the number held (dropping a helper's stdin ends it).
fn flood(addr: &str, total: usize) -> anyhow::Result<(Vec<Child>, usize)> {
    let exe = std::env::current_exe()?;
    let mut helpers = Vec::new();
    let mut held = 0;
    let mut left = total;
    while left > 0 {
        let n = left.min(HELD_PER_HELPER);
        left -= n;
        let mut child = Command::new(&exe)
            .args(["--hold", addr, "--hold-count", &n.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let out = child.stdout.take().context("helper stdout")?;
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line)?;
        held += line
            .trim()
            .strip_prefix("held ")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
        helpers.push(child);
    }
    Ok((helpers, held))
}

/// The log lines of a child process, kept for the report when something fails.
type Log = Arc<Mutex<Vec<String>>>;

fn spawn_logged(cmd: &mut Command, marker: &'static str) -> anyhow::Result<(Child, String, Log)> {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let stderr = child.stderr.take().context("stderr")?;
    let log: Log = Arc::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find(marker) {
                let _ = tx.send(line[i + marker.len()..].trim().to_string());
            }
            if let Ok(mut l) = sink.lock() {
                l.push(line);
            }
        }
    });
    let found = rx
        .recv_timeout(Duration::from_secs(60))
        .with_context(|| format!("no `{marker}` from {cmd:?}"))?;
    Ok((child, found, log))
}

fn signal(child: &mut Child, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status();
    for _ in 0..300 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

struct Nats {
    bin: PathBuf,
    store: PathBuf,
    child: Option<Child>,
    url: String,
}

impl Nats {
    fn spawn(&mut self, port: &str) -> anyhow::Result<String> {
        let (child, addr, _) = spawn_logged(
            Command::new(&self.bin)
                .args(["-js", "-a", "127.0.0.1", "-p", port, "-sd"])
                .arg(&self.store),
            "Listening for client connections on ",
        )?;
        self.child = Some(child);
        Ok(addr)
    }

    fn start(bin: PathBuf) -> anyhow::Result<Nats> {
        let store = std::env::temp_dir().join(format!("vigil-chaos-nats-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&store);
        let mut n = Nats {
            bin,
            store,
            child: None,
            url: String::new(),
        };
        n.url = format!("nats://{}", n.spawn("-1")?);
        Ok(n)
    }

    fn restart(&mut self, sig: &str) -> anyhow::Result<()> {
        if let Some(mut c) = self.child.take() {
            signal(&mut c, sig);
        }
        std::thread::sleep(Duration::from_secs(2));
        let port = self.url.rsplit(':').next().unwrap_or("-1").to_string();
        self.spawn(&port)?;
        Ok(())
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

struct Engine {
    bin: PathBuf,
    config: PathBuf,
    child: Option<Child>,
    addr: String,
    log: Log,
}

impl Engine {
    fn config_text(nats_url: &str) -> String {
        format!(
            r#"[nats]
url = "{nats_url}"
consumer = "{CONSUMER}"

[gateway]
listen = "127.0.0.1:0"

[[auth.tokens]]
token = "{TOKEN}"
tenant = "{TENANT}"
role = "admin"

[[escalation.policies]]
name = "critical-default"
match = {{ level = "critical" }}
page_receipt_timeout = "1h"
levels = [
  {{ after = "0s", targets = ["nurse"] }},
  {{ after = "4s", targets = ["charge_nurse"] }},
  {{ after = "8s", targets = ["rapid_response"] }},
]
"#
        )
    }

    async fn start(bin: &std::path::Path, nats_url: &str) -> anyhow::Result<Engine> {
        let config = std::env::temp_dir().join(format!("vigil-chaos-{}.toml", std::process::id()));
        std::fs::write(&config, Self::config_text(nats_url))?;
        let mut e = Engine {
            bin: bin.to_path_buf(),
            config,
            child: None,
            addr: String::new(),
            log: Arc::default(),
        };
        e.restart().await?;
        Ok(e)
    }

    /// Starts the process and waits for `/readyz`; returns when it was ready.
    async fn restart(&mut self) -> anyhow::Result<Instant> {
        let (child, addr, log) = spawn_logged(
            Command::new(&self.bin)
                .arg("run")
                .arg("--config")
                .arg(&self.config)
                .env("RUST_LOG", "warn"),
            "listening on ",
        )?;
        self.child = Some(child);
        self.addr = addr;
        self.log = log;
        for _ in 0..1200 {
            if http_get(&self.addr, "/readyz").await.0 == 200 {
                return Ok(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "engine not ready within 60 s: {:?}",
            self.log.lock().map(|l| l.clone())
        )
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// A plain HTTP/1.1 GET: status (0 when the connection failed) and body.
async fn http_get(addr: &str, path: &str) -> (u16, String) {
    let req = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let text = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
        );
        s.write_all(text.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).to_string();
        let status = text.split(' ').nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(10), req)
        .await
        .ok()
        .flatten()
        .unwrap_or((0, String::new()))
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn millis(v: &Value) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// When patient `p` starts to deteriorate (round), if ever: every tenth from the start,
/// staggered over 30 rounds; those ending in 5 only from the gateway phase on.
fn deteriorates_from(p: usize, gateway_round: u64) -> Option<u64> {
    match p % 10 {
        0 => Some((p as u64 / 10) % 30),
        5 => Some(gateway_round),
        _ => None,
    }
}

/// The monitors: one reading per patient per round, at `rate` in all; every hundredth event
/// published a second time without `Nats-Msg-Id` (the engine's own dedupe must absorb it).
struct Load {
    stop: AtomicBool,
    published: AtomicU64,
    duplicates: AtomicU64,
    round: AtomicU64,
    /// The round from which the patients ending in 5 deteriorate (set by the gateway phase).
    gateway_round: AtomicU64,
}

async fn publish_until_stored(
    js: &jetstream::Context,
    subject: String,
    headers: async_nats::HeaderMap,
    payload: bytes::Bytes,
) {
    loop {
        if let Ok(ack) = js
            .publish_with_headers(subject.clone(), headers.clone(), payload.clone())
            .await
            && ack.await.is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run_load(js: jetstream::Context, args: Arc<Args>, load: Arc<Load>) {
    let per_round = Duration::from_secs_f64(args.patients as f64 / args.rate.max(1) as f64);
    while !load.stop.load(Relaxed) {
        let round = load.round.load(Relaxed);
        let started = Instant::now();
        for p in 0..args.patients {
            let sick = deteriorates_from(p, load.gateway_round.load(Relaxed))
                .is_some_and(|from| round >= from);
            let (hr, rr, spo2) = if sick { (112, 26, 91) } else { (70, 16, 98) };
            let id = format!("p{p}-r{round}");
            let body = json!({
                "eventId": id, "eventType": "vitals.observation.v1", "eventVersion": "1",
                "occurredAt": now_rfc3339(), "producer": "chaos-monitor", "tenantId": TENANT,
                "data": {"patientId": format!("p{p}"), "unitId": "icu-3", "hr": hr, "rr": rr,
                         "spo2": spo2, "onOxygen": false, "temp": 37.0, "sbp": 120,
                         "consciousness": "A"}
            });
            let payload = bytes::Bytes::from(body.to_string());
            let subject = format!("vitals.{TENANT}.p{p}");
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", id.as_str());
            publish_until_stored(&js, subject.clone(), headers, payload.clone()).await;
            load.published.fetch_add(1, Relaxed);
            if (round as usize * args.patients + p) % 100 == 0 {
                publish_until_stored(&js, subject, async_nats::HeaderMap::new(), payload).await;
                load.duplicates.fetch_add(1, Relaxed);
            }
            if load.stop.load(Relaxed) {
                break;
            }
        }
        load.round.fetch_add(1, Relaxed);
        if let Some(rest) = per_round.checked_sub(started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
}

/// A failure of the run: what was lost or wrong, for the report.
#[derive(Default)]
struct Findings {
    failures: Vec<String>,
    lines: Vec<String>,
}

impl Findings {
    fn check(&mut self, ok: bool, what: String) {
        if ok {
            self.lines.push(format!("ok    {what}"));
        } else {
            self.lines.push(format!("FAIL  {what}"));
            self.failures.push(what);
        }
    }
    fn note(&mut self, what: String) {
        self.lines.push(format!("      {what}"));
    }
}

/// The engine's counter `name` (0 when absent).
async fn metric(addr: &str, name: &str) -> f64 {
    let (_, body) = http_get(addr, "/metrics").await;
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Vitals the engine applied per second, over 3 s.
async fn ingest_rate(addr: &str) -> f64 {
    const APPLIED: &str = "vigil_events_ingested_total{type=\"vitals.observation.v1\"}";
    let a = metric(addr, APPLIED).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    (metric(addr, APPLIED).await - a) / 3.0
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn dashboard(addr: &str, channels: &[&str], small_buffer: bool) -> anyhow::Result<Ws> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    if small_buffer {
        socket.set_recv_buffer_size(4096)?;
    }
    let tcp = socket.connect(addr.parse()?).await?;
    let url = format!("ws://{addr}/ws?token={TOKEN}");
    let (mut ws, _) =
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(tcp)).await?;
    let sub = json!({"type": "subscribe", "id": "s1", "channels": channels});
    ws.send(Message::text(sub.to_string())).await?;
    Ok(ws)
}

/// Alert ids the reading dashboard saw opened (version 1), until `stop`.
async fn read_alerts(mut ws: Ws, stop: Arc<AtomicBool>) -> HashSet<String> {
    let mut opened = HashSet::new();
    while !stop.load(Relaxed) {
        match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
                    continue;
                };
                let alerts: Vec<&Value> = match v["type"].as_str() {
                    Some("alert") => vec![&v["alert"]],
                    Some("snapshot") => v["alerts"]
                        .as_array()
                        .map_or(vec![], |a| a.iter().collect()),
                    _ => vec![],
                };
                for a in alerts {
                    if let Some(id) = a["alertId"].as_str() {
                        opened.insert(id.to_string());
                    }
                }
            }
            Ok(Some(Ok(_))) | Err(_) => {}
            Ok(_) => break,
        }
    }
    opened
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    if let Some(addr) = &args.hold {
        return hold_sockets(addr, args.hold_count).await;
    }
    let vigil = args.vigil.clone().context("--vigil is required")?;
    let started = Instant::now();
    let mut nats = Nats::start(args.nats_server.clone())?;
    let mut engine = Engine::start(&vigil, &nats.url).await?;
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(&nats.url)
        .await?;
    let js = jetstream::new(client.clone());
    let load = Arc::new(Load {
        stop: AtomicBool::new(false),
        published: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
        round: AtomicU64::new(0),
        gateway_round: AtomicU64::new(u64::MAX),
    });
    let load_task = tokio::spawn(run_load(js.clone(), args.clone(), load.clone()));
    let mut f = Findings::default();
    let mut rng = rand::rng();

    // 1. kill -9 at random moments; each outage from the kill to ready again.
    let mut outages: Vec<(i64, i64)> = Vec::new();
    let epoch = |t: Instant| {
        chrono::Utc::now().timestamp_millis() - i64::try_from(t.elapsed().as_millis()).unwrap_or(0)
    };
    for _ in 0..args.kills {
        tokio::time::sleep(Duration::from_millis(rng.random_range(1500..5000))).await;
        let killed = Instant::now();
        engine.kill9();
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..3000))).await;
        let ready = engine.restart().await?;
        outages.push((epoch(killed), epoch(ready)));
    }
    let recoveries: Vec<String> = outages
        .iter()
        .map(|(k, r)| format!("{:.1}", (r - k) as f64 / 1000.0))
        .collect();
    f.note(format!(
        "{} kill -9, down then ready again after (s): {}",
        args.kills,
        recoveries.join(" ")
    ));

    // 2. nats-server restarts during the load.
    for sig in ["TERM", "KILL"] {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let stopped = Instant::now();
        nats.restart(sig)?;
        // Until the engine is ready again, deadlines may wait: count it as an outage.
        for _ in 0..1200 {
            if http_get(&engine.addr, "/readyz").await.0 == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        outages.push((epoch(stopped), epoch(Instant::now())));
        f.note(format!(
            "nats-server SIGKILL/SIGTERM ({sig}) and restart: engine ready again"
        ));
    }

    // 3. The gateway under abuse, while new alerts open.
    let poison = [
        (
            format!("checkin.{TENANT}.appt-1"),
            json!({"eventId": "ci-1\r\nX: y", "eventType": "patient.checkin.v1", "eventVersion": "1",
                   "occurredAt": now_rfc3339(), "producer": "chaos", "tenantId": TENANT,
                   "data": {"patientId": "p1", "appointmentId": "appt-1", "locationId": "loc-1",
                            "checkinAt": now_rfc3339(), "method": "kiosk"}})
            .to_string()
            .into_bytes(),
            None,
        ),
        (
            format!("vitals.{TENANT}.p1"),
            json!({"eventId": "v-\u{0}-1", "eventType": "vitals.observation.v1", "eventVersion": "1",
                   "occurredAt": now_rfc3339(), "producer": "chaos", "tenantId": TENANT,
                   "data": {"patientId": "p1", "unitId": "icu-3", "hr": 80}})
            .to_string()
            .into_bytes(),
            None,
        ),
        (format!("vitals.{TENANT}.p1"), {
            let e = json!({"eventId": "v-two", "eventType": "vitals.observation.v1", "eventVersion": "1",
                   "occurredAt": now_rfc3339(), "producer": "chaos", "tenantId": TENANT,
                   "data": {"patientId": "p1", "unitId": "icu-3", "hr": 140}});
            let mut b = rmp_serde::to_vec_named(&e)?;
            b.extend(rmp_serde::to_vec_named(&e)?);
            b
        }, Some("application/msgpack")),
    ];
    for (subject, payload, content_type) in &poison {
        let mut h = async_nats::HeaderMap::new();
        if let Some(ct) = content_type {
            h.insert("Content-Type", *ct);
        }
        publish_until_stored(&js, subject.clone(), h, payload.clone().into()).await;
    }
    let stalled = dashboard(&engine.addr, &["alerts", "patients"], true).await?;
    // It reads at last once the engine has given up on it (its writes blocked past the 5 s
    // timeout; the closing frame then gets 10 s): it must find 1013.
    let stalled_addr = engine.addr.clone();
    let stalled = tokio::spawn(async move {
        for _ in 0..300 {
            if metric(&stalled_addr, "vigil_ws_slow_client_closes_total").await >= 1.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut ws = stalled;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                Ok(Some(Ok(Message::Close(Some(c))))) => return Some(u16::from(c.code)),
                Ok(Some(Ok(_))) => {}
                _ => return None,
            }
        }
        None
    });
    let reader_stop = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(read_alerts(
        dashboard(&engine.addr, &["alerts"], false).await?,
        reader_stop.clone(),
    ));
    let rate_before = ingest_rate(&engine.addr).await;
    load.gateway_round
        .store(load.round.load(Relaxed) + 1, Relaxed);
    // Probes every 100 ms while the helpers connect and hold their sockets.
    let probing = Arc::new(AtomicBool::new(true));
    let probes = {
        let (addr, probing) = (engine.addr.clone(), probing.clone());
        tokio::spawn(async move {
            let (mut n, mut failed, mut worst) = (0usize, 0usize, Duration::ZERO);
            while probing.load(Relaxed) {
                let t = Instant::now();
                let (status, _) = http_get(&addr, "/healthz").await;
                worst = worst.max(t.elapsed());
                n += 1;
                failed += usize::from(status != 200);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (n, failed, worst)
        })
    };
    let flood_addr = engine.addr.clone();
    let flood_total = args.flood;
    let (helpers, held) =
        tokio::task::spawn_blocking(move || flood(&flood_addr, flood_total)).await??;
    let rate_during = ingest_rate(&engine.addr).await;
    probing.store(false, Relaxed);
    let (probed, failed_probes, worst_probe) = probes.await?;
    f.check(
        failed_probes == 0,
        format!(
            "{held} idle sockets: {} of {probed} /healthz probes answered, slowest {} ms",
            probed - failed_probes,
            worst_probe.as_millis()
        ),
    );
    f.note(format!(
        "ingest (3 s windows, offered {}/s): {rate_before:.0}/s before, {rate_during:.0}/s while the flood was held and a dashboard stalled",
        args.rate,
    ));
    for mut h in helpers {
        drop(h.stdin.take());
        let _ = h.wait();
    }
    let stalled_code = stalled.await?;
    f.check(
        stalled_code == Some(1013),
        format!(
            "a dashboard that stopped reading was closed with {stalled_code:?} (1013 expected)"
        ),
    );

    // Stop the load, let the engine drain and the last deadlines pass.
    load.stop.store(true, Relaxed);
    let _ = load_task.await;
    let mut vitals = js.get_stream("VITALS").await?;
    let stored = vitals.info().await?.state.messages;
    let last = vitals.info().await?.state.last_sequence;
    let mut drained = false;
    for _ in 0..1200 {
        let mut c: jetstream::consumer::PullConsumer = vitals
            .get_consumer(CONSUMER)
            .await
            .map_err(|e| anyhow::anyhow!("consumer {CONSUMER}: {e}"))?;
        let i = c.info().await?;
        if i.ack_floor.stream_sequence == last && i.num_pending == 0 {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(LEVEL_AFTER_MS[2] + SLACK_MS).unwrap_or(10_000),
    ))
    .await;
    reader_stop.store(true, Relaxed);
    let reader_saw = reader.await.unwrap_or_default();

    // Accounting, from the streams.
    let published = load.published.load(Relaxed);
    let duplicates = load.duplicates.load(Relaxed);
    let poison_vitals = 2;
    f.check(
        stored == published + duplicates + poison_vitals,
        format!(
            "VITALS holds {stored} messages: {published} readings + {duplicates} duplicates + {poison_vitals} poison"
        ),
    );
    f.check(
        drained,
        format!("every VITALS message acknowledged (ack floor {last}, none pending)"),
    );
    let mut dlq_codes: BTreeMap<String, u64> = BTreeMap::new();
    let dlq = js
        .get_stream("DLQ")
        .await?
        .info()
        .await?
        .state
        .last_sequence;
    let dlq_stream = js.get_stream("DLQ").await?;
    for seq in 1..=dlq {
        if let Ok(m) = dlq_stream.get_raw_message(seq).await {
            let code = m
                .headers
                .get("Vigil-Error-Code")
                .map_or("?".to_string(), |v| v.as_str().to_string());
            *dlq_codes.entry(code).or_default() += 1;
        }
    }
    let expected_dlq: BTreeMap<String, u64> = [
        ("DECODE_FAILED".to_string(), 1),
        ("ENVELOPE_INVALID".to_string(), 2),
    ]
    .into();
    f.check(
        dlq_codes == expected_dlq,
        format!("DLQ holds exactly the 3 poison messages: {dlq_codes:?}"),
    );

    let alerts_stream = js.get_stream("ALERTS").await?;
    let n = alerts_stream
        .get_info()
        .await
        .map_or(0, |i| i.state.last_sequence);
    let mut trail: HashMap<String, Vec<Value>> = HashMap::new();
    for seq in 1..=n {
        let m = alerts_stream.get_raw_message(seq).await?;
        let v: Value = serde_json::from_slice(&m.payload)?;
        let a = v["data"].clone();
        trail
            .entry(a["alertId"].as_str().unwrap_or("").to_string())
            .or_default()
            .push(a);
    }
    let gateway_round = load.gateway_round.load(Relaxed);
    let rounds = load.round.load(Relaxed);
    let expected: HashSet<String> = (0..args.patients)
        .filter(|&p| deteriorates_from(p, gateway_round).is_some_and(|from| from + 1 < rounds))
        .map(|p| format!("p{p}"))
        .collect();
    let mut active_by_patient: HashMap<String, Vec<String>> = HashMap::new();
    let (mut gaps, mut dup_versions, mut late, mut checked) = (0, 0, Vec::new(), 0);
    for (id, versions) in &trail {
        let mut seen: Vec<u64> = versions
            .iter()
            .filter_map(|a| a["version"].as_u64())
            .collect();
        let total = seen.len();
        seen.sort_unstable();
        seen.dedup();
        dup_versions += total - seen.len();
        if seen != (1..=seen.len() as u64).collect::<Vec<_>>() {
            gaps += 1;
        }
        let Some(last) = versions.iter().max_by_key(|a| a["version"].as_u64()) else {
            continue;
        };
        if last["state"] != "resolved" {
            // The NEWS2 risk rules count as one rule (scoring.md); news2.trend is another.
            let rule = last["rule"].as_str().unwrap_or("");
            let family = if rule == "news2.trend" {
                "trend"
            } else {
                rule.split('.').next().unwrap_or("")
            };
            let patient = last["patientId"].as_str().unwrap_or("");
            active_by_patient
                .entry(format!("{patient} {family}"))
                .or_default()
                .push(id.clone());
        }
        let Some(opened) = versions
            .iter()
            .find(|a| a["version"] == 1)
            .and_then(|a| millis(&a["openedAt"]))
        else {
            continue;
        };
        for a in versions {
            let level = a["escalation"]["level"].as_u64().unwrap_or(0) as usize;
            let escalated = a["transition"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("escalated to level"));
            if !escalated || level < 2 || level > LEVEL_AFTER_MS.len() {
                continue;
            }
            checked += 1;
            let due = opened + LEVEL_AFTER_MS[level - 1];
            let at = millis(&a["transition"]["at"]).unwrap_or(0);
            let on_time = at >= due && at - due <= SLACK_MS;
            let on_recovery = outages.iter().any(|(down, up)| {
                due >= *down - SLACK_MS
                    && due <= *up
                    && at >= due.min(*up) - SLACK_MS
                    && at <= up + SLACK_MS
            });
            if !(on_time || on_recovery) {
                late.push(format!(
                    "{id} level {level}: {} ms after its deadline",
                    at - due
                ));
            }
        }
    }
    let duplicated: Vec<_> = active_by_patient
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .collect();
    let risk_open: HashSet<&str> = active_by_patient
        .keys()
        .filter_map(|k| k.strip_suffix(" news2"))
        .collect();
    let missing: Vec<_> = expected
        .iter()
        .filter(|p| !risk_open.contains(p.as_str()))
        .collect();
    let unexpected: Vec<_> = active_by_patient
        .keys()
        .filter(|k| !expected.contains(k.split(' ').next().unwrap_or("")))
        .collect();
    f.check(
        missing.is_empty() && unexpected.is_empty(),
        format!(
            "{} NEWS2 alerts open for the {} deteriorating patients ({} missing, {} unexpected)",
            risk_open.len(),
            expected.len(),
            missing.len(),
            unexpected.len()
        ),
    );
    let example = duplicated.first().map_or(String::new(), |(p, ids)| {
        let summary: Vec<String> = ids
            .iter()
            .map(|id| {
                let v = &trail[id];
                let first = &v[0];
                format!(
                    "{id} (rule {}, opened {}, triggered {}, {} transitions)",
                    first["rule"],
                    first["openedAt"],
                    first["triggeredAt"],
                    v.len()
                )
            })
            .collect();
        format!(", e.g. {p}: {}", summary.join("; "))
    });
    f.check(
        duplicated.is_empty(),
        format!(
            "no duplicate open alert per patient and rule ({} duplicated{example})",
            duplicated.len()
        ),
    );
    f.check(
        gaps == 0 && dup_versions == 0,
        format!(
            "{} audit trails, {n} transitions: {gaps} with a gap, {dup_versions} versions stored twice",
            trail.len()
        ),
    );
    f.check(
        late.is_empty(),
        format!(
            "{checked} escalations within {SLACK_MS} ms of their deadline, or at recovery ({} late{})",
            late.len(),
            late.first().map_or(String::new(), |l| format!(", e.g. {l}"))
        ),
    );
    let gateway_alerts: HashSet<&String> = trail
        .iter()
        .filter(|(_, v)| {
            v.iter().any(|a| {
                a["version"] == 1
                    && a["patientId"]
                        .as_str()
                        .and_then(|p| p.trim_start_matches('p').parse::<usize>().ok())
                        .is_some_and(|p| p % 10 == 5)
            })
        })
        .map(|(id, _)| id)
        .collect();
    let unseen = gateway_alerts
        .iter()
        .filter(|id| !reader_saw.contains(**id))
        .count();
    f.check(
        unseen == 0,
        format!(
            "the reading dashboard got all {} alerts opened while the other stalled ({unseen} missed)",
            gateway_alerts.len()
        ),
    );

    println!(
        "vigil-chaos: {} patients at {}/s, {} readings, {:.0} s",
        args.patients,
        args.rate,
        published,
        started.elapsed().as_secs_f64()
    );
    for line in &f.lines {
        println!("{line}");
    }
    if f.failures.is_empty() {
        println!("PASS: nothing lost, nothing duplicated");
        Ok(())
    } else {
        if let Ok(log) = engine.log.lock() {
            eprintln!(
                "last engine log lines:\n{}",
                log.iter()
                    .rev()
                    .take(30)
                    .rev()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        println!("FAIL: {} finding(s)", f.failures.len());
        // `exit` runs no destructors: stop the engine and nats-server first.
        drop(engine);
        drop(nats);
        std::process::exit(1);
    }
}
