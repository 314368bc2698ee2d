//! The staff pages in a real browser: Debian's chromium, headless, driven by Playwright
//! (tests/browser/dashboard.mjs) against `vigil run` with a real NATS. The ward view must be
//! live or say that it is not: a token the server refuses is named as refused, an alert
//! appears in its patient's row once published, an acknowledgement from the page lands in
//! `ALERTS`, a viewer is offered no action, the patient panel shows the window and the audit
//! trail, and with the server gone the banner says so and every action is disabled. The
//! practice view shows the clinic's chairs and providers. The pager view keeps one card per
//! page however often it is sent, receipts it once shown, accepts and declines (which pages
//! the next level). Nothing is fetched from anywhere but the engine, and no console error.
//!
//! Needs `node`, `chromium` and `tests/browser/node_modules` (`scripts/test` installs the
//! last two); a missing one fails the test, saying how to install it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use async_nats::jetstream;
use common::{Engine, NatsServer, all_messages, http_json, make_critical};
use serde_json::Value;

/// The chromium to drive: `VIGIL_CHROMIUM`, else Debian's.
fn chromium() -> PathBuf {
    let path = std::env::var_os("VIGIL_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "{} not found: install Debian's chromium (`apt-get install chromium`; scripts/test \
         does) or point VIGIL_CHROMIUM at a chromium",
        path.display()
    );
    path
}

/// `tests/browser`, with its pinned Playwright installed.
fn browser_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "Playwright is not installed: run `npm ci` in {} (scripts/test does)",
        dir.display()
    );
    dir
}

/// The Playwright script as a child process, spoken to in lines.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Browser {
    fn start(base_url: &str, shots: &Path) -> Self {
        let dir = browser_dir();
        let mut child = Command::new("node")
            .arg(dir.join("dashboard.mjs"))
            .current_dir(&dir)
            .env("BASE_URL", base_url)
            .env("NURSE_TOKEN", "nurse-icu3-token")
            .env("VIEWER_TOKEN", "viewer-icu3-token")
            .env("PAGER_TOKEN", "pager-icu3-token")
            .env("ADMIN_TOKEN", "admin-abc-token")
            .env("CHROMIUM", chromium())
            .env("SHOTS", shots)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run node ({e}): install Node.js (`apt-get install nodejs`)")
            });
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Browser {
            child,
            stdin,
            lines,
        }
    }

    /// The rest of the next line, which must start with `word`.
    fn expect(&self, word: &str, secs: u64) -> String {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(secs))
            .unwrap_or_else(|_| {
                panic!("the browser said nothing for {secs} s (waiting for `{word}`)")
            });
        assert!(
            line == word || line.starts_with(&format!("{word} ")),
            "expected `{word}` from the browser, got `{line}`"
        );
        line[word.len()..].trim().to_string()
    }

    fn tell(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("the browser script is gone");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The script closes chromium itself; a test that failed half-way kills it.
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The pager's token (pages for nurses of icu-3) and a critical policy whose pages are sent
/// again after 2 s without a receipt.
const CONFIG: &str = r#"
[[auth.tokens]]
token = "pager-icu3-token"
tenant = "clinic-abc"
role = "pager"
units = ["icu-3"]
page_roles = ["nurse"]
name = "pager-icu3"

[[escalation.policies]]
name = "critical-default"
match = { level = "critical" }
page_receipt_timeout = "2s"
levels = [
  { after = "0s", targets = ["nurse"] },
  { after = "5m", targets = ["charge_nurse"] },
]
"#;

/// Two readings of NEWS2 8 for `patient` in bed `bed` of icu-3, as `make_critical`.
async fn critical_in_bed(js: &jetstream::Context, patient: &str, bed: &str) {
    for (i, ago) in [(1, 2), (2, 1)] {
        let mut data = common::vitals_news2_8(patient, "icu-3");
        data["bedId"] = bed.into();
        let (subject, id) = (
            format!("vitals.clinic-abc.{patient}"),
            format!("{patient}-{i}"),
        );
        publish(js, &subject, &id, "vitals.observation.v1", ago, data).await;
    }
}

/// Stores one clinic-abc event of `event_type`, `seconds_ago` old, on `subject`.
async fn publish(
    js: &jetstream::Context,
    subject: &str,
    id: &str,
    event_type: &str,
    seconds_ago: i64,
    data: Value,
) {
    let e = common::envelope("clinic-abc", id, event_type, seconds_ago, data);
    common::publish_json(js, subject, &e).await;
}

/// Every transition of `patient`'s alerts in `ALERTS` once `done` holds for one (5 s at most).
async fn trail_until(
    js: &jetstream::Context,
    patient: &str,
    done: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    for _ in 0..50 {
        let trail: Vec<Value> = all_messages(js, "ALERTS")
            .await
            .into_iter()
            .map(|m| m["data"].clone())
            .filter(|a| a["patientId"] == patient)
            .collect();
        if trail.iter().any(&done) {
            return trail;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("ALERTS never showed what was waited for, for {patient}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_staff_pages_are_live_act_and_say_when_they_are_not() {
    let nats = NatsServer::start();
    let mut engine = Engine::start(&nats, CONFIG);
    engine.wait_ready().await;

    // What the page asks before it connects: who the token is and what it may act on.
    let me = |token: &'static str| http_json(&engine.addr, "GET", "/api/me", Some(token), "");
    let (status, nurse) = me("nurse-icu3-token").await;
    assert_eq!(status, 200, "{nurse}");
    assert_eq!(
        nurse,
        serde_json::json!({"tenant": "clinic-abc", "role": "nurse", "units": ["icu-3"],
            "name": "nurse-anna", "acts": ["deterioration", "sepsis", "technical"]})
    );
    let (_, viewer) = me("viewer-icu3-token").await;
    assert_eq!(viewer["acts"], serde_json::json!([]), "{viewer}");
    let (status, refused) = me("not-a-token").await;
    assert_eq!(status, 401, "{refused}");
    assert_eq!(refused["code"], "UNAUTHORIZED", "{refused}");
    // Every asset the pages load is served by the binary; nothing else is.
    for (path, kind) in [
        ("/", "text/html"),
        ("/pager", "text/html"),
        ("/assets/vigil.css", "text/css"),
        ("/assets/common.js", "text/javascript"),
        ("/assets/ward.js", "text/javascript"),
        ("/assets/pager.js", "text/javascript"),
    ] {
        let (status, head) = common::http_head(&engine.addr, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(head.contains(kind), "{path}: {head}");
    }
    assert_eq!(
        common::http_get(&engine.addr, "/assets/other.js").await.0,
        404
    );
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut browser = Browser::start(&format!("http://{}", engine.addr), &shots);

    let refused = browser.expect("refused", 60);
    assert!(refused.contains("UNAUTHORIZED"), "{refused}");
    assert!(
        refused.contains("Not connected: no patients or alerts shown.")
            && !refused.contains("No open alerts"),
        "a refused page never looks calm: {refused}"
    );
    browser.expect("ready", 30);

    let js = jetstream::new(nats.client().await);
    critical_in_bed(&js, "p-browser", "b12").await;
    browser.tell("published");
    let ms = browser.expect("shown", 10);
    println!("the alert was on the page {ms} ms after its reading was stored");
    // Ages and countdowns are relative, times in one named zone; the row is the patient's,
    // with its NEWS2 band in words beside the colour.
    let times: Value = serde_json::from_str(&browser.expect("times", 10)).unwrap();
    assert_eq!(times["age"], "open <1 min", "{times}");
    let escalation = times["escalation"].as_str().unwrap();
    assert!(
        escalation.starts_with("level 1 · role:nurse@icu-3")
            && (escalation.contains("escalates in 4:") || escalation.contains("escalates in 5:00"))
            && escalation.contains("page sent"),
        "news2.high pages the next level after 5 min: {times}"
    );
    assert!(
        times["zone"].as_str().unwrap().starts_with("times: "),
        "{times}"
    );
    assert!(
        times["counts"].as_str().unwrap().contains(" critical, "),
        "{times}"
    );
    // A new critical alert is announced (aria-live) and its level is a word and an icon.
    assert!(
        times["announced"]
            .as_str()
            .unwrap()
            .starts_with("New critical alert: news2.high for p-browser in icu-3."),
        "{times}"
    );
    assert_eq!(times["level"], "▲ critical", "{times}");
    assert_eq!(times["news2"], "8", "{times}");
    assert_eq!(times["patient"], "p-browsericu-3 · bed b12", "{times}");
    assert_eq!(
        browser.expect("viewer-buttons", 10),
        "0",
        "a viewer may not act"
    );
    browser.expect("acked", 10);

    // The acknowledgement from the page is the audit trail's transition, by the nurse's
    // token, with the reason picked and typed.
    let trail = trail_until(&js, "p-browser", |a| a["state"] == "acknowledged").await;
    let acked = trail.iter().find(|a| a["state"] == "acknowledged").unwrap();
    assert_eq!(acked["rule"], "news2.high", "{acked}");
    assert_eq!(acked["transition"]["by"], "nurse-anna", "{acked}");
    assert_eq!(
        acked["transition"]["reason"], "Seen, plan in place: fluids started",
        "{acked}"
    );

    // The panel: the window's seven charts, the explanation's components, the audit trail.
    let panel: Value = serde_json::from_str(&browser.expect("panel", 10)).unwrap();
    assert_eq!(panel["title"], "p-browser · icu-3 · bed b12", "{panel}");
    assert!(
        panel["scores"]
            .as_str()
            .unwrap()
            .starts_with("NEWS2 8 (high)"),
        "{panel}"
    );
    assert_eq!(
        panel["charts"], 6,
        "NEWS2 and five vitals with readings: {panel}"
    );
    assert!(panel["components"].as_u64().unwrap() >= 7, "{panel}");
    let timeline = panel["timeline"][0].as_str().unwrap();
    assert!(
        timeline.contains("new → open") && timeline.contains("open → acknowledged"),
        "{panel}"
    );
    assert_eq!(panel["focused"], "panel-title", "focus moves to the panel");
    assert_eq!(
        browser.expect("focus-back", 10),
        "\"Details for p-browser\""
    );

    // A clinic: one chair past its expected free time, one provider.
    let ago = |mins: i64| {
        (chrono::Utc::now() - chrono::Duration::minutes(mins))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let chair = serde_json::json!({"resourceId": "chair-7", "status": "occupied",
        "currentAppointmentId": "appt-7", "expectedFreeAt": ago(20), "locationId": "clinic-1"});
    publish(
        &js,
        "occupancy.clinic-abc.chair-7",
        "occ-7",
        "resource.occupancy.update.v1",
        0,
        chair,
    )
    .await;
    let provider = serde_json::json!({"providerId": "prov-3", "status": "busy",
        "effectiveAt": ago(1), "locationId": "clinic-1"});
    publish(
        &js,
        "occupancy.clinic-abc.prov-3",
        "prov-3",
        "provider.status.update.v1",
        0,
        provider,
    )
    .await;
    // A patient checked in 15 min ago for an appointment due 20 min ago: waiting 15 min.
    let booked = serde_json::json!({"appointmentId": "appt-9", "patientId": "p-wait",
        "providerId": "prov-3", "locationId": "clinic-1", "scheduledStart": ago(20),
        "expectedDurationMinutes": 30});
    publish(
        &js,
        "checkin.clinic-abc.appt-9",
        "sched-9",
        "appointment.scheduled.v1",
        0,
        booked,
    )
    .await;
    let arrived = serde_json::json!({"patientId": "p-wait", "appointmentId": "appt-9",
        "locationId": "clinic-1", "checkinAt": ago(15), "method": "front-desk"});
    publish(
        &js,
        "checkin.clinic-abc.appt-9",
        "in-9",
        "patient.checkin.v1",
        0,
        arrived,
    )
    .await;
    browser.tell("practice");
    let practice: Value = serde_json::from_str(&browser.expect("practice", 20)).unwrap();
    let chair = practice["chair"].as_str().unwrap();
    assert!(
        chair.contains("occupied") && chair.contains("clinic-1") && chair.contains("min over"),
        "{practice}"
    );
    let waiting = practice["waiting"].as_str().unwrap();
    assert!(
        waiting.contains("1 waiting") && waiting.contains("p-wait · 15 min (appt-9"),
        "{practice}"
    );

    // The pager.
    critical_in_bed(&js, "p-pager-1", "b7").await;
    browser.tell("paged");
    let resent = browser.expect("resent", 20);
    assert_eq!(resent, "1 \"Page sent\"", "a page sent again is one card");
    browser.expect("delivered", 10);
    let accepted = browser.expect("accepted", 10);
    assert_eq!(
        accepted,
        "\"Page accepted\" \"▲ critical p-pager-1 · bed b7 · icu-3\""
    );
    let trail = trail_until(&js, "p-pager-1", |a| a["state"] == "acknowledged").await;
    let acked = trail.iter().find(|a| a["state"] == "acknowledged").unwrap();
    assert_eq!(acked["transition"]["by"], "pager-icu3", "{acked}");
    assert_eq!(acked["escalation"]["page"]["state"], "accepted", "{acked}");
    assert_eq!(acked["bedId"], "b7", "the alert names the bed: {acked}");
    assert!(
        trail
            .iter()
            .any(|a| a["escalation"]["page"]["state"] == "delivered"
                && a["escalation"]["page"]["attempts"].as_u64() >= Some(2)),
        "the receipt came after the page was sent again"
    );

    make_critical(&js, "clinic-abc", "p-pager-2").await;
    browser.tell("paged-again");
    let declined = browser.expect("declined", 15);
    assert!(declined.contains("role:charge_nurse@icu-3"), "{declined}");
    let trail = trail_until(&js, "p-pager-2", |a| a["escalation"]["level"] == 2).await;
    let up = trail
        .iter()
        .find(|a| a["escalation"]["level"] == 2)
        .unwrap();
    assert!(
        up["transition"]["reason"]
            .as_str()
            .unwrap()
            .contains("With another patient"),
        "{up}"
    );
    assert_eq!(browser.expect("console-errors", 10), "[]");

    engine.terminate();
    browser.tell("stopped");
    let offline = browser.expect("offline", 30);
    let (status, counts) = offline.rsplit_once('"').unwrap();
    assert!(status.contains("Reconnecting"), "{offline}");
    let counts: Vec<u32> = counts
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(counts[0], 0, "no action enabled while not live: {offline}");
    assert!(
        counts[1] > 0,
        "the nurse's actions are shown, disabled: {offline}"
    );
    browser.expect("done", 30);
    assert!(browser.child.wait().unwrap().success());
}
