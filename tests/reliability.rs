//! Issue 13 end to end, against a real nats-server and the real binary:
//! - escalation counts from when staff were told, not from the reading's time: a backlog of
//!   late readings (as after an outage) pages level 1 for every new alert, and level 2 comes
//!   only the policy's delay after the alert opened;
//! - an identifier that a NATS header cannot carry (CR, LF, NUL) is dead-lettered with
//!   `ENVELOPE_INVALID`, and the audit trail (`ALERTS`) and `FLOW` keep being written for
//!   everyone else afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream;
use common::*;
use serde_json::{Value, json};

const T: &str = "clinic-abc";

/// The issue's policy: levels at 0 s, 4 s and 8 s. Counted from a reading 20 minutes old, every
/// level would be due at once.
const FAST_POLICY: &str = r#"
[[escalation.policies]]
name = "critical-default"
match = { level = "critical" }
page_receipt_timeout = "60s"
levels = [
  { after = "0s", targets = ["nurse"] },
  { after = "4s", targets = ["charge_nurse"] },
  { after = "8s", targets = ["rapid_response"] },
]
"#;

fn millis(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time"))
        .expect("RFC 3339")
        .timestamp_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_late_readings_pages_level_one_for_every_new_alert() {
    const PATIENTS: usize = 500;
    let nats = NatsServer::start();
    // The engine is down while the monitors' readings pile up (an outage): first start it
    // once so the streams exist, then stop it.
    let mut first = Engine::start(&nats, FAST_POLICY);
    first.wait_ready().await;
    assert!(first.terminate().success());
    let js = jetstream::new(nats.client().await);
    // 1,000 readings, two of NEWS2 8 per patient, taken 20 and 19 minutes ago.
    for p in 0..PATIENTS {
        let patient = format!("patient-{p}");
        for (i, ago) in [(1, 1200), (2, 1140)] {
            let v = envelope(
                T,
                &format!("{patient}-{i}"),
                "vitals.observation.v1",
                ago,
                vitals_news2_8(&patient, "icu-3"),
            );
            publish_json(&js, &format!("vitals.{T}.{patient}"), &v).await;
        }
    }
    let back = chrono::Utc::now().timestamp_millis();
    let engine = Engine::start(&nats, FAST_POLICY);
    engine.wait_ready().await;
    // Wait until every patient's alert is open, then past level 2's delay.
    for _ in 0..200 {
        if list_alerts(&engine.addr, "admin-abc-token").await.len() == PATIENTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;

    let mut opened: HashMap<String, Value> = HashMap::new();
    let mut escalations = Vec::new();
    for m in all_messages(&js, "ALERTS").await {
        let a = m["data"].clone();
        if a["version"] == 1 {
            opened.insert(a["alertId"].as_str().unwrap().to_string(), a);
        } else if a["transition"]["reason"]
            .as_str()
            .unwrap()
            .contains("escalated to level")
        {
            escalations.push(a);
        }
    }
    assert_eq!(opened.len(), PATIENTS, "one alert per patient");
    for a in opened.values() {
        // Opened on the engine's clock, at level 1: the nurse first.
        let at = millis(&a["openedAt"]);
        assert!(
            at >= back,
            "openedAt is the engine's clock, not the reading's: {a}"
        );
        assert_eq!(a["transition"]["at"], a["openedAt"]);
        assert_eq!(a["escalation"]["level"], 1, "{a}");
        assert_eq!(a["escalation"]["targets"], json!(["role:nurse@icu-3"]));
        assert_eq!(millis(&a["escalation"]["nextAt"]), at + 4000, "{a}");
        assert_eq!(millis(&a["escalation"]["page"]["sentAt"]), at);
        // The reading's own time stays where the contract puts it.
        let fired = millis(&a["triggeredAt"]);
        assert!(
            at - fired >= 1_100_000,
            "triggeredAt is the reading's time: {a}"
        );
        for c in a["explanation"]["components"].as_array().unwrap() {
            assert_eq!(millis(&c["observedAt"]), fired);
        }
    }
    // Level 2 came to each alert 4 s after it opened, never sooner.
    assert!(
        !escalations.is_empty(),
        "level 2 is paged once its delay passed"
    );
    for e in &escalations {
        let open = &opened[e["alertId"].as_str().unwrap()];
        let level = e["escalation"]["level"].as_u64().unwrap();
        let after = millis(&e["transition"]["at"]) - millis(&open["openedAt"]);
        let due = if level == 2 { 4000 } else { 8000 };
        assert!(
            after >= due,
            "level {level} paged {after} ms after opening: {e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identifier_with_a_line_break_is_dead_lettered_and_the_audit_trail_goes_on() {
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, "");
    engine.wait_ready().await;
    let client = nats.client().await;
    let js = jetstream::new(client.clone());
    let mut dlq = client.subscribe("dlq.>").await.unwrap();
    let mut flows = client.subscribe(format!("flow.{T}.>")).await.unwrap();
    client.flush().await.unwrap();

    let scheduled = json!({ "appointmentId": "appt-1", "patientId": "patient-9",
        "providerId": "prov-1", "locationId": "loc-1", "resourceId": "chair-1",
        "scheduledStart": chrono::Utc::now().to_rfc3339(), "expectedDurationMinutes": 30 });
    let e = envelope(T, "sched-1", "appointment.scheduled.v1", 1, scheduled);
    publish_json(&js, &format!("checkin.{T}.appt-1"), &e).await;
    let checkin = |id: &str| {
        envelope(
            T,
            id,
            "patient.checkin.v1",
            0,
            json!({ "patientId": "patient-9", "appointmentId": "appt-1", "locationId": "loc-1",
                    "checkinAt": chrono::Utc::now().to_rfc3339(), "method": "kiosk" }),
        )
    };
    // The poison: CR LF in eventId (it went into the FLOW output's Nats-Msg-Id), then NUL.
    publish_json(
        &js,
        &format!("checkin.{T}.appt-1"),
        &checkin("ci-1\r\nX: y"),
    )
    .await;
    let nul = envelope(
        T,
        "v-\u{0}-1",
        "vitals.observation.v1",
        0,
        vitals_news2_8("patient-1", "icu-3"),
    );
    publish_json(&js, &format!("vitals.{T}.patient-1"), &nul).await;
    // One dead letter from each stream, in either order (two consumers).
    let mut subjects = Vec::new();
    for _ in 0..2 {
        let m = tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::next(&mut dlq))
            .await
            .expect("a dead letter")
            .unwrap();
        subjects.push(m.subject.to_string());
        let h = m.headers.expect("headers");
        assert_eq!(
            h.get("Vigil-Error-Code").unwrap().as_str(),
            "ENVELOPE_INVALID"
        );
        assert!(
            h.get("Vigil-Error")
                .unwrap()
                .as_str()
                .contains("control characters"),
            "{:?}",
            h.get("Vigil-Error")
        );
    }
    subjects.sort();
    assert_eq!(subjects, ["dlq.CHECKINS", "dlq.VITALS"]);

    // Everyone else's outputs are still stored: a good check-in's flow update, and an alert.
    publish_json(&js, &format!("checkin.{T}.appt-1"), &checkin("ci-2")).await;
    let flow = tokio::time::timeout(
        Duration::from_secs(10),
        futures::StreamExt::next(&mut flows),
    )
    .await
    .expect("a flow update")
    .unwrap();
    let flow: Value = serde_json::from_slice(&flow.payload).unwrap();
    assert_eq!(flow["eventId"], "flow-ci-2");
    make_critical(&js, T, "patient-2").await;
    let mut stored = false;
    for _ in 0..100 {
        let alerts = all_messages(&js, "ALERTS").await;
        if alerts.iter().any(|m| m["data"]["patientId"] == "patient-2") {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stored, "the alert reached the audit trail");
    assert_eq!(http_get(&engine.addr, "/readyz").await.0, 200);
    let log = engine.log.lock().unwrap().join("\n");
    assert!(!log.contains("outbox closed"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_is_answered_only_once_it_is_stored_and_refused_while_it_cannot_be() {
    let mut nats = NatsServer::start();
    let mut engine = Engine::start(&nats, "");
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);
    make_critical(&js, T, "patient-1").await;
    let mut alert_id = None;
    for _ in 0..100 {
        if let Some(a) = list_alerts(&engine.addr, "admin-abc-token").await.first() {
            alert_id = a["alertId"].as_str().map(str::to_string);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let alert_id = alert_id.expect("the alert opened");
    let ack = format!("/api/alerts/{alert_id}/ack");

    // NATS goes away: once the engine has noticed (readiness says so), an ack is refused with
    // a retryable error, and nothing changes.
    nats.stop("KILL");
    let mut noticed = false;
    for _ in 0..100 {
        let (status, body) = http_get(&engine.addr, "/readyz").await;
        if status == 503 && body.contains("not connected to NATS") {
            noticed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(noticed, "the engine never noticed NATS was gone");
    let refused = http_json(&engine.addr, "POST", &ack, Some("nurse-icu3-token"), "").await;
    assert_eq!(refused.0, 503, "{}", refused.1);
    assert_eq!(refused.1["code"], "UNAVAILABLE");
    assert!(
        refused.1["message"]
            .as_str()
            .unwrap()
            .contains("nothing was changed"),
        "{}",
        refused.1
    );
    let alerts = list_alerts(&engine.addr, "admin-abc-token").await;
    assert_eq!(alerts[0]["state"], "open");
    assert!(
        engine
            .metric("vigil_ws_errors_total{code=\"UNAVAILABLE\"}")
            .await
            >= 1.0
    );

    // NATS is back: the ack is stored, then answered; it survives a kill -9.
    nats.start_again();
    let mut done = (0, Value::Null);
    for _ in 0..100 {
        done = http_json(&engine.addr, "POST", &ack, Some("nurse-icu3-token"), "").await;
        if done.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(done.0, 200, "{}", done.1);
    assert_eq!(done.1["alert"]["state"], "acknowledged");
    engine.kill9();
    let again = Engine::start(&nats, "");
    again.wait_ready().await;
    let alerts = list_alerts(&again.addr, "admin-abc-token").await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["state"], "acknowledged", "{}", alerts[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_started_while_nats_is_down_answers_health_and_says_why_it_is_not_ready() {
    let mut nats = NatsServer::start();
    nats.stop("KILL");
    let engine = Engine::start(&nats, "");
    assert_eq!(
        http_get(&engine.addr, "/healthz").await,
        (200, "ok\n".to_string())
    );
    let mut why = String::new();
    for _ in 0..50 {
        let (status, body) = http_get(&engine.addr, "/readyz").await;
        assert_eq!(status, 503, "{body}");
        why = body;
        if why.contains("waiting: cannot connect to NATS") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(why.contains(&nats.url), "names the address: {why}");
    assert!(
        why.to_lowercase().contains("refused"),
        "says what is wrong: {why}"
    );
    // A command cannot be taken meanwhile: refused, retryable.
    let (status, body) = http_json(
        &engine.addr,
        "POST",
        "/api/alerts/alert-0000000000000000/ack",
        Some("nurse-icu3-token"),
        "",
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("UNAVAILABLE")),
        "{body}"
    );
    // NATS comes up: the engine connects by itself and turns ready.
    nats.start_again();
    engine.wait_ready().await;
    let log = engine.log.lock().unwrap().join("\n");
    assert!(log.contains("NATS not usable yet"), "{log}");
}
