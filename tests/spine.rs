//! The spine end to end against a real nats-server and the real binary: vitals on JetStream to an
//! explained alert on a WebSocket and in `ALERTS`; every DLQ case; dedupe; isolation; commands
//! and roles; snapshot on reconnect; clean shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use async_nats::jetstream;
use common::*;
use serde_json::{Value, json};

const T: &str = "clinic-abc";
const OBS: &str = "vitals.observation.v1";

/// The latest transition of `alert_id` on `ALERTS`. Dashboards hear of a transition as soon as
/// it happens and the outbox stores it right after, so it may take a moment to appear.
async fn alert_on_stream(js: &jetstream::Context, tenant: &str, alert_id: &str) -> Value {
    let stream = js.get_stream("ALERTS").await.expect("ALERTS exists");
    let subject = format!("alerts.{tenant}.{alert_id}");
    for _ in 0..100 {
        if let Ok(m) = stream.get_last_raw_message_by_subject(&subject).await {
            return serde_json::from_slice(&m.payload).expect("envelope json");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no transition of {alert_id} on ALERTS within 5 s");
}

/// Publishes two readings scoring NEWS2 8 (one JSON, one MessagePack): `news2.high` fires.
async fn raise_high(js: &jetstream::Context, tenant: &str, patient: &str, unit: &str) {
    let subject = format!("vitals.{tenant}.{patient}");
    let first = envelope(
        tenant,
        &format!("{patient}-e1"),
        OBS,
        60,
        vitals_news2_8(patient, unit),
    );
    publish_json(js, &subject, &first).await;
    let second = envelope(
        tenant,
        &format!("{patient}-e2"),
        OBS,
        30,
        vitals_news2_8(patient, unit),
    );
    let packed = rmp_serde::to_vec_named(&second).unwrap();
    publish_raw(
        js,
        &subject,
        &[("Content-Type", "application/msgpack")],
        packed,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vitals_to_explained_alert_on_websocket_and_alerts_stream() {
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, "");
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);

    let mut nurse = Client::connect(&engine.ws_url("nurse-icu3-token")).await;
    let snapshot = nurse.subscribe(&["alerts", "patients"]).await;
    assert_eq!(snapshot["alerts"], json!([]));

    raise_high(&js, T, "patient-123", "icu-3").await;
    let frame = nurse.next_of("alert", 10).await;
    let alert = &frame["alert"];
    assert_eq!(alert["rule"], "news2.high");
    assert_eq!(alert["level"], "critical");
    assert_eq!(alert["state"], "open");
    assert_eq!(alert["category"], "deterioration");
    assert_eq!(alert["patientId"], "patient-123");
    assert_eq!(alert["unitId"], "icu-3");
    assert_eq!(
        alert["message"],
        "NEWS2 8 (high): RR 26 (3), SpO2 91 (3), HR 112 (2)"
    );
    assert_eq!(alert["meta"]["news2"], 8);
    assert_eq!(
        alert["explanation"]["why"],
        "NEWS2 aggregate 8 >= 7 (threshold profile default)"
    );
    assert!(
        alert["explanation"]["whyNow"]
            .as_str()
            .unwrap()
            .contains("sustained over 2 readings")
    );
    assert_eq!(
        alert["explanation"]["components"].as_array().unwrap().len(),
        7
    );
    assert_eq!(alert["transition"]["to"], "open");
    assert_eq!(alert["transition"]["from"], Value::Null);
    assert_eq!(alert["escalation"]["targets"], json!(["role:nurse@icu-3"]));
    for key in ["resourceId", "providerId"] {
        assert_eq!(alert[key], Value::Null, "{key}");
    }
    assert_eq!(alert["relatedAppointments"], json!([]));

    // The patient frame carries the score and the latest vitals.
    let patient = nurse.next_of("patient", 5).await;
    assert_eq!(
        (patient["patientId"].as_str(), patient["news2"].as_i64()),
        (Some("patient-123"), Some(8))
    );
    assert_eq!(patient["vitals"]["hr"], 112.0);
    assert_eq!(
        patient["vitals"]["spo2Scale"], 1,
        "the contract's number, not a variant name"
    );
    // qSOFA: RR 26 >= 22 only; SIRS: HR 112 > 90 and RR 26 > 20 (no labs: partial).
    assert_eq!(
        (patient["qsofa"].as_i64(), patient["sirs"].as_i64()),
        (Some(1), Some(2))
    );

    // The transition is on ALERTS as an orchestration.alert.v1 envelope.
    let id = alert["alertId"].as_str().unwrap();
    let stored = alert_on_stream(&js, T, id).await;
    assert_eq!(stored["eventType"], "orchestration.alert.v1");
    assert_eq!(stored["tenantId"], T);
    assert_eq!(stored["data"]["alertId"], id);
    assert_eq!(stored["data"]["state"], "open");

    // The opening is timed from the reading's occurredAt in /metrics.
    assert_eq!(
        engine.metric("vigil_alert_open_delay_seconds_count").await,
        1.0
    );

    // ALERTS is an immutable audit trail.
    let info = js
        .get_stream("ALERTS")
        .await
        .unwrap()
        .cached_info()
        .config
        .clone();
    assert!(info.deny_delete && info.deny_purge);
    let streams: Vec<String> = ["VITALS", "CHECKINS", "OCCUPANCY", "ALERTS", "FLOW", "DLQ"]
        .into_iter()
        .filter(|s| futures::executor::block_on(js.get_stream(*s)).is_err())
        .map(String::from)
        .collect();
    assert!(streams.is_empty(), "missing streams: {streams:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_message_goes_to_the_dlq_with_a_code_and_good_ones_still_flow() {
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, "");
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);
    let s = "vitals.clinic-abc.patient-1";
    let good = |id: &str| envelope(T, id, OBS, 10, vitals_news2_0("patient-1", "icu-3"));
    let with = |id: &str, f: &dyn Fn(&mut Value)| {
        let mut v = good(id);
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    };
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, &'a str);
    let cases: Vec<Case> = vec![
        (s, vec![], b"{not json".to_vec(), "DECODE_FAILED"),
        (
            s,
            vec![],
            with("b1", &|v| v["data"]["hr"] = json!("fast")),
            "SCHEMA_INVALID",
        ),
        (
            s,
            vec![],
            with("b2", &|v| {
                v.as_object_mut().unwrap().remove("producer");
            }),
            "ENVELOPE_INVALID",
        ),
        (
            s,
            vec![],
            with("b3", &|v| v["eventType"] = json!("vitals.guess.v7")),
            "UNKNOWN_EVENT_TYPE",
        ),
        (
            s,
            vec![],
            with("b4", &|v| v["eventVersion"] = json!("2")),
            "UNSUPPORTED_VERSION",
        ),
        (
            s,
            vec![],
            with("b5", &|v| v["eventType"] = json!("patient.checkin.v1")),
            "WRONG_STREAM",
        ),
        (
            s,
            vec![],
            with("b6", &|v| v["tenantId"] = json!("clinic-other")),
            "TENANT_MISMATCH",
        ),
        (
            s,
            vec![],
            with("b7", &|v| v["data"]["patientId"] = json!("patient-2")),
            "PATIENT_MISMATCH",
        ),
        (
            s,
            vec![],
            with("b8", &|v| v["occurredAt"] = json!("2099-01-01T00:00:00Z")),
            "OCCURRED_IN_FUTURE",
        ),
        (
            s,
            vec![],
            with("b9", &|v| v["data"]["consciousness"] = json!("Z")),
            "DATA_INVALID",
        ),
        (
            s,
            vec![],
            with("b10", &|v| v["data"]["hr"] = json!(400)),
            "VITAL_OUT_OF_RANGE",
        ),
        (
            s,
            vec![("Content-Type", "text/xml")],
            with("b11", &|_| {}),
            "UNSUPPORTED_CONTENT_TYPE",
        ),
        (s, vec![], vec![b' '; 70 * 1024], "PAYLOAD_TOO_LARGE"),
    ];
    // SUBJECT_INVALID cannot arrive through VITALS (its subjects are vitals.*.*): unit-tested.
    for (subject, headers, payload, _) in &cases {
        publish_raw(&js, subject, headers, payload.clone()).await;
    }
    let lab = envelope(
        T,
        "lab-neg",
        "lab.result.v1",
        10,
        json!({"patientId": "patient-1", "unitId": "icu-3", "code": "lactate", "value": -1}),
    );
    publish_json(&js, s, &lab).await;
    publish_json(&js, s, &good("g1")).await;

    let mut dlq = js.get_stream("DLQ").await.unwrap();
    let expected = cases.len() + 1;
    let mut waited = 0;
    while dlq.info().await.unwrap().state.messages < expected as u64 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(dlq.info().await.unwrap().state.messages, expected as u64);
    let mut codes = Vec::new();
    for seq in 1..=expected as u64 {
        let m = dlq.get_raw_message(seq).await.unwrap();
        assert_eq!(m.subject.as_str(), "dlq.VITALS");
        let h = |k: &str| {
            m.headers
                .get(k)
                .map(|v| v.as_str().to_string())
                .unwrap_or_default()
        };
        assert!(!h("Vigil-Error").is_empty());
        assert_eq!(h("Vigil-Source-Subject"), s);
        assert!(h("Vigil-Source-Seq").parse::<u64>().unwrap() >= 1);
        codes.push(h("Vigil-Error-Code"));
        if seq == 1 {
            assert_eq!(&m.payload[..], b"{not json", "the original bytes are kept");
        }
    }
    let mut want: Vec<String> = cases.iter().map(|c| c.3.to_string()).collect();
    want.push("LAB_OUT_OF_RANGE".into());
    assert_eq!(codes, want);

    // The good event after all of them was applied, and each code is counted in /metrics.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        engine
            .metric("vigil_events_ingested_total{type=\"vitals.observation.v1\"}")
            .await,
        1.0
    );
    assert_eq!(
        engine
            .metric("vigil_dlq_total{code=\"VITAL_OUT_OF_RANGE\"}")
            .await,
        1.0
    );
    assert_eq!(
        engine
            .metric("vigil_dlq_total{code=\"DECODE_FAILED\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_event_never_counts_as_a_second_reading() {
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, "");
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);
    let mut admin = Client::connect(&engine.ws_url("admin-abc-token")).await;
    admin.subscribe(&["alerts"]).await;
    let s = "vitals.clinic-abc.patient-7";
    let e1 = envelope(T, "dup-1", OBS, 60, vitals_news2_8("patient-7", "icu-3"));
    publish_json(&js, s, &e1).await;
    publish_json(&js, s, &e1).await; // same (tenantId, eventId): a replayed copy
    admin.none_of("alert", 2).await;
    assert_eq!(engine.metric("vigil_events_duplicate_total").await, 1.0);
    let e2 = envelope(T, "dup-2", OBS, 30, vitals_news2_8("patient-7", "icu-3"));
    publish_json(&js, s, &e2).await;
    let a = admin.next_of("alert", 10).await;
    assert_eq!(a["alert"]["rule"], "news2.high");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_and_units_are_isolated() {
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, "");
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);
    let mut icu = Client::connect(&engine.ws_url("nurse-icu3-token")).await;
    icu.subscribe(&["alerts", "patients"]).await;
    let mut ward =
        Client::connect_with_header(&format!("ws://{}/ws", engine.addr), "nurse-ward9-token").await;
    ward.subscribe(&["alerts", "patients"]).await;
    let mut other = Client::connect(&engine.ws_url("admin-other-token")).await;
    other.subscribe(&["alerts", "patients"]).await;

    // A nurse cannot subscribe to a unit outside the token.
    icu.send(json!({"type": "subscribe", "id": "s2", "channels": ["alerts"], "units": ["ward-9"]}))
        .await;
    let err = icu.next_of("error", 5).await;
    assert_eq!(
        (err["id"].as_str(), err["code"].as_str()),
        (Some("s2"), Some("FORBIDDEN"))
    );

    raise_high(&js, T, "patient-icu", "icu-3").await;
    let a = icu.next_of("alert", 10).await;
    assert_eq!(a["alert"]["unitId"], "icu-3");
    // Neither the other unit's nurse nor the other tenant hears of it.
    ward.none_of("alert", 1).await;
    other.none_of("alert", 1).await;
    // Nor can they act on it: for them it does not exist.
    let id = a["alert"]["alertId"].as_str().unwrap().to_string();
    for c in [&mut ward, &mut other] {
        c.send(json!({"type": "ack", "id": "c1", "alertId": id}))
            .await;
        let e = c.next_of("error", 5).await;
        assert_eq!(e["code"], "ALERT_NOT_FOUND");
    }
    // Patient frames are scoped the same way.
    ward.none_of("patient", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_and_resolve_with_roles_and_snapshot_on_reconnect() {
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, "");
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);
    let mut nurse = Client::connect(&engine.ws_url("nurse-icu3-token")).await;
    nurse.subscribe(&["alerts"]).await;
    raise_high(&js, T, "patient-9", "icu-3").await;
    let id = nurse.next_of("alert", 10).await["alert"]["alertId"]
        .as_str()
        .unwrap()
        .to_string();

    // A new connection gets the open alert in its snapshot.
    let mut viewer = Client::connect(&engine.ws_url("viewer-icu3-token")).await;
    let snap = viewer.subscribe(&["alerts"]).await;
    assert_eq!(snap["alerts"][0]["alertId"], id.as_str());

    // A viewer may not acknowledge.
    viewer
        .send(json!({"type": "ack", "id": "c1", "alertId": id, "reason": "looking"}))
        .await;
    let e = viewer.next_of("error", 5).await;
    assert_eq!(
        (e["id"].as_str(), e["code"].as_str()),
        (Some("c1"), Some("FORBIDDEN"))
    );

    nurse
        .send(json!({"type": "ack", "id": "c2", "alertId": id, "reason": "at bedside"}))
        .await;
    let r = nurse.next_of("result", 5).await;
    assert_eq!(
        (r["id"].as_str(), r["ok"].as_bool()),
        (Some("c2"), Some(true))
    );
    let a = nurse.next_of("alert", 5).await;
    assert_eq!(a["alert"]["state"], "acknowledged");
    assert_eq!(a["alert"]["transition"]["by"], "nurse-anna");
    assert_eq!(a["alert"]["transition"]["reason"], "at bedside");
    assert_eq!(
        viewer.next_of("alert", 5).await["alert"]["state"],
        "acknowledged"
    );

    nurse
        .send(json!({"type": "ack", "id": "c3", "alertId": id}))
        .await;
    assert_eq!(
        nurse.next_of("error", 5).await["code"],
        "INVALID_TRANSITION"
    );
    nurse
        .send(json!({"type": "resolve", "id": "c4", "alertId": id, "reason": "treated"}))
        .await;
    assert_eq!(nurse.next_of("result", 5).await["ok"], true);
    assert_eq!(
        nurse.next_of("alert", 5).await["alert"]["state"],
        "resolved"
    );
    nurse
        .send(json!({"type": "ack", "id": "c5", "alertId": id}))
        .await;
    assert_eq!(
        nurse.next_of("error", 5).await["code"],
        "INVALID_TRANSITION"
    );
    nurse
        .send(json!({"type": "ack", "id": "c6", "alertId": "alert-0000000000000000"}))
        .await;
    assert_eq!(nurse.next_of("error", 5).await["code"], "ALERT_NOT_FOUND");

    // Every transition is on ALERTS; the last one is the current state.
    let stored = alert_on_stream(&js, T, &id).await;
    assert_eq!(stored["data"]["state"], "resolved");
    assert_eq!(stored["data"]["version"], 3);

    // After resolution a reconnecting client's snapshot no longer holds it.
    let mut again = Client::connect(&engine.ws_url("nurse-icu3-token")).await;
    assert_eq!(again.subscribe(&["alerts"]).await["alerts"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_websocket_input_gets_error_frames_and_no_token_gets_401() {
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, "");
    engine.wait_ready().await;
    assert_eq!(http_get(&engine.addr, "/ws").await.0, 401);
    assert_eq!(http_get(&engine.addr, "/ws?token=wrong-token").await.0, 401);
    assert!(
        tokio_tungstenite::connect_async(format!("ws://{}/ws?token=nope", engine.addr))
            .await
            .is_err()
    );
    assert_eq!(http_get(&engine.addr, "/healthz").await.0, 200);
    // The dashboard page and its scripts need no token to load (the page asks for one) and
    // speak the contract.
    let mut page = String::new();
    for path in [
        "/",
        "/pager",
        "/assets/common.js",
        "/assets/ward.js",
        "/assets/pager.js",
    ] {
        let (status, text) = http_get(&engine.addr, path).await;
        assert_eq!(status, 200, "{path}");
        page.push_str(&text);
    }
    for needle in [
        "/ws?token=",
        r#"type: "subscribe""#,
        r#"["alerts", "patients", "resources", "pages"]"#,
        r#"["ack", "snooze", "resolve"]"#,
        "/api/me",
        r#"type: "receipt""#,
        r#"type: "decline""#,
    ] {
        assert!(page.contains(needle), "dashboard lacks {needle}");
    }

    let mut c = Client::connect(&engine.ws_url("nurse-icu3-token")).await;
    c.send_text("{oops").await;
    assert_eq!(c.next_of("error", 5).await["code"], "BAD_REQUEST");
    c.send(json!({"type": "teleport", "id": "x1"})).await;
    let e = c.next_of("error", 5).await;
    assert_eq!(
        (e["id"].as_str(), e["code"].as_str()),
        (Some("x1"), Some("BAD_REQUEST"))
    );
    c.send(json!({"type": "ack", "id": "x2"})).await;
    let e = c.next_of("error", 5).await;
    assert!(e["message"].as_str().unwrap().contains("alertId"), "{e}");
    c.send(json!({"type": "subscribe", "id": "x3", "channels": ["gossip"]}))
        .await;
    assert_eq!(c.next_of("error", 5).await["code"], "BAD_REQUEST");
    c.send(json!({"type": "ping"})).await;
    assert_eq!(c.next_of("pong", 5).await["type"], "pong");
    // Flooding is rate limited, not fatal.
    for _ in 0..60 {
        c.send(json!({"type": "ping"})).await;
    }
    let mut limited = false;
    for _ in 0..60 {
        match c.next(5).await {
            Some(v) if v["code"] == "RATE_LIMITED" => {
                limited = true;
                break;
            }
            Some(_) => {}
            None => break,
        }
    }
    assert!(limited, "60 messages at once must hit the rate limit");
    assert!(
        engine
            .metric("vigil_ws_errors_total{code=\"BAD_REQUEST\"}")
            .await
            >= 4.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_acknowledges_and_exits_zero() {
    let nats = NatsServer::start();
    let mut engine = Engine::start(&nats, "");
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);
    let mut c = Client::connect(&engine.ws_url("admin-abc-token")).await;
    c.subscribe(&["alerts"]).await;
    for i in 0..500 {
        let p = format!("patient-{}", i % 50);
        let e = envelope(
            T,
            &format!("bulk-{i}"),
            OBS,
            120 - i64::from(i % 100),
            vitals_news2_0(&p, "icu-3"),
        );
        publish_json(&js, &format!("vitals.clinic-abc.{p}"), &e).await;
    }
    let status = engine.terminate();
    assert!(status.success(), "exit status {status:?}");
    // Connected clients are told the gateway is going away.
    assert_eq!(c.close_code(5).await, Some(1001));
    // Everything consumed was acknowledged: nothing pending for the durable consumer.
    let mut consumer: jetstream::consumer::PullConsumer = js
        .get_stream("VITALS")
        .await
        .unwrap()
        .get_consumer("vigil-test")
        .await
        .unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(info.num_ack_pending, 0, "{info:?}");
    assert_eq!(
        info.num_pending + info.ack_floor.stream_sequence,
        500,
        "{info:?}"
    );
    assert!(
        engine
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("stopped cleanly"))
    );
}

/// SIGTERM with NATS gone: nothing can be acknowledged or stored, so the engine does not wait
/// for NATS (a supervisor's grace period is often 30 s; the restart must not hang on it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_nats_gone_exits_without_waiting_for_it() {
    let mut nats = NatsServer::start();
    let mut engine = Engine::start(&nats, "");
    engine.wait_ready().await;
    nats.stop("KILL");
    // Until the engine has noticed: /readyz says so.
    for _ in 0..100 {
        if http_get(&engine.addr, "/readyz").await.0 == 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let asked = std::time::Instant::now();
    let status = engine.terminate();
    let took = asked.elapsed();
    assert!(status.success(), "exit status {status:?}");
    // Far below the 10 s the outbox may take to drain, and the 2 s an acknowledgement flush
    // may take when NATS is there: neither is waited for when it is not.
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    let log = engine.log.lock().unwrap().join("\n");
    assert!(log.contains("NATS is away"), "{log}");
    assert!(
        !log.contains("not sent within"),
        "waited for a flush: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_mirror_lists_and_commands_alerts_with_the_same_codes() {
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, "");
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);
    let mut watcher = Client::connect(&engine.ws_url("nurse-icu3-token")).await;
    watcher.subscribe(&["alerts"]).await;
    raise_high(&js, T, "patient-h", "icu-3").await;
    let id = watcher.next_of("alert", 10).await["alert"]["alertId"]
        .as_str()
        .unwrap()
        .to_string();
    let a = &engine.addr;

    assert_eq!(http_json(a, "GET", "/api/alerts", None, "").await.0, 401);
    let (status, list) = http_json(
        a,
        "GET",
        "/api/alerts?state=open",
        Some("nurse-icu3-token"),
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["alerts"][0]["alertId"], id.as_str());
    let (status, err) = http_json(
        a,
        "GET",
        "/api/alerts?state=bogus",
        Some("nurse-icu3-token"),
        "",
    )
    .await;
    assert_eq!((status, err["code"].as_str()), (400, Some("BAD_REQUEST")));
    let (_, other_unit) = http_json(a, "GET", "/api/alerts", Some("nurse-ward9-token"), "").await;
    assert_eq!(other_unit["alerts"], json!([]));

    let ack = format!("/api/alerts/{id}/ack");
    let (status, err) = http_json(a, "POST", &ack, Some("viewer-icu3-token"), "").await;
    assert_eq!((status, err["code"].as_str()), (403, Some("FORBIDDEN")));
    let (status, err) = http_json(
        a,
        "POST",
        &ack,
        Some("nurse-icu3-token"),
        r#"{"reason": 5}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        err["message"].as_str().unwrap().contains("`reason`"),
        "{err}"
    );
    let (status, err) =
        http_json(a, "POST", &ack, Some("nurse-icu3-token"), r#"{"why": "x"}"#).await;
    assert_eq!(status, 400);
    assert!(err["message"].as_str().unwrap().contains("`why`"), "{err}");
    let (status, err) = http_json(a, "POST", &ack, Some("nurse-icu3-token"), "{not json").await;
    assert_eq!((status, err["code"].as_str()), (400, Some("BAD_REQUEST")));
    let (status, err) = http_json(a, "POST", &ack, Some("admin-other-token"), "").await;
    assert_eq!(
        (status, err["code"].as_str()),
        (404, Some("ALERT_NOT_FOUND"))
    );

    let (status, ok) = http_json(
        a,
        "POST",
        &ack,
        Some("nurse-icu3-token"),
        r#"{"reason": "at bedside"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ok["alert"]["state"], "acknowledged");
    assert_eq!(ok["alert"]["transition"]["by"], "nurse-anna");
    // The HTTP command fans out to WebSocket clients like any transition.
    assert_eq!(
        watcher.next_of("alert", 5).await["alert"]["state"],
        "acknowledged"
    );
    let (status, err) = http_json(a, "POST", &ack, Some("nurse-icu3-token"), "").await;
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("INVALID_TRANSITION"))
    );
    let (status, _) = http_json(
        a,
        "POST",
        &format!("/api/alerts/{id}/resolve"),
        Some("nurse-icu3-token"),
        "",
    )
    .await;
    assert_eq!(status, 200);
    let (_, resolved) = http_json(
        a,
        "GET",
        "/api/alerts?state=resolved",
        Some("nurse-icu3-token"),
        "",
    )
    .await;
    assert_eq!(resolved["alerts"][0]["state"], "resolved");
    let (_, open) = http_json(a, "GET", "/api/alerts", Some("nurse-icu3-token"), "").await;
    assert_eq!(open["alerts"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admission_is_taken_deduplicated_and_scoring_goes_on() {
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, "");
    engine.wait_ready().await;
    let client = nats.client().await;
    let js = jetstream::new(client.clone());
    let mut dlq = client.subscribe("dlq.VITALS").await.unwrap();
    client.flush().await.unwrap();
    let admitted = envelope(
        T,
        "adt-1",
        "patient.admitted.v1",
        60,
        json!({"patientId": "patient-7", "unitId": "icu-3", "admittedAt": "2025-11-27T02:00:00Z",
               "hospitalAdmittedAt": "2025-11-26T20:00:00Z", "age": 67, "sex": "female"}),
    );
    let subject = format!("vitals.{T}.patient-7");
    publish_json(&js, &subject, &admitted).await;
    // The same event again: applied once.
    publish_json(&js, &subject, &admitted).await;
    // A bad one: a dead letter with a code.
    let mut bad = admitted.clone();
    bad["eventId"] = "adt-2".into();
    bad["data"]["age"] = 140.into();
    publish_json(&js, &subject, &bad).await;
    let m = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        futures::StreamExt::next(&mut dlq),
    )
    .await
    .expect("a dead letter")
    .unwrap();
    let h = m.headers.expect("headers");
    assert_eq!(h.get("Vigil-Error-Code").unwrap().as_str(), "DATA_INVALID");
    assert!(h.get("Vigil-Error").unwrap().as_str().contains("`age`"));
    let ingested = "vigil_events_ingested_total{type=\"patient.admitted.v1\"}";
    assert_eq!(engine.metric(ingested).await, 1.0);
    assert!(engine.metric("vigil_events_duplicate_total").await >= 1.0);
    // The admitted patient is scored and alerted as any other.
    let mut nurse = Client::connect(&engine.ws_url("nurse-icu3-token")).await;
    nurse.subscribe(&["alerts"]).await;
    make_critical(&js, T, "patient-7").await;
    let alert = nurse.next_alert_of("news2.high", 10).await;
    assert_eq!(alert["alert"]["patientId"], "patient-7");
}

/// `GET /api/patients/{patientId}`: the current scores and the window's series, each point at
/// its reading's own time, scoped by the token like every other route; and the `patient` frame
/// carries the single-3 mark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patient_api_shows_the_window_scoped_by_the_token() {
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, "");
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);
    let mut ws = Client::connect(&engine.ws_url("nurse-icu3-token")).await;
    ws.subscribe(&["patients"]).await;

    // Three readings in three minutes (NEWS2 0, then 8 twice) and a lactate.
    let subject = format!("vitals.{T}.p-window");
    let readings = [
        (190, vitals_news2_0("p-window", "icu-3")),
        (125, vitals_news2_8("p-window", "icu-3")),
        (62, vitals_news2_8("p-window", "icu-3")),
    ];
    let mut readings = readings;
    readings[2].1["bedId"] = "b3".into();
    let mut times = Vec::new();
    for (i, (ago, data)) in readings.into_iter().enumerate() {
        let e = envelope(T, &format!("pw-{i}"), OBS, ago, data);
        times.push(e["occurredAt"].as_str().unwrap().to_string());
        publish_json(&js, &subject, &e).await;
    }
    let collected = (chrono::Utc::now() - chrono::Duration::seconds(100))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let lab = json!({"patientId": "p-window", "unitId": "icu-3", "code": "lactate", "value": 2.6,
                     "unit": "mmol/L", "collectedAt": collected});
    publish_json(
        &js,
        &subject,
        &envelope(T, "pw-lab", "lab.result.v1", 90, lab),
    )
    .await;

    let mut frame = ws.next_of("patient", 10).await;
    // Coalesced: the frames of the three readings may come as one, two or three.
    while frame["bedId"] != "b3" {
        frame = ws.next_of("patient", 10).await;
    }
    assert_eq!(frame["single3"], true, "RR 26 scores 3 on its own: {frame}");
    assert_eq!(frame["bedId"], "b3", "{frame}");

    let get = |token: &'static str, id: &'static str| {
        let path = format!("/api/patients/{id}");
        let addr = engine.addr.clone();
        async move { http_json(&addr, "GET", &path, Some(token), "").await }
    };
    let mut view = Value::Null;
    for _ in 0..100 {
        let (status, body) = get("nurse-icu3-token", "p-window").await;
        if status == 200 && body["labs"].as_array().is_some_and(|l| !l.is_empty()) {
            view = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(view["patientId"], "p-window", "{view}");
    assert_eq!(view["unitId"], "icu-3", "{view}");
    assert_eq!(view["horizonMinutes"], 360, "{view}");
    assert_eq!(view["bedId"], "b3", "{view}");
    assert_eq!(view["scores"]["news2"]["total"], 8, "{view}");
    assert_eq!(view["scores"]["news2"]["single3"], true, "{view}");
    assert_eq!(view["scores"]["qsofa"]["value"], 1, "RR 26 >= 22: {view}");
    // Each vital's point is the reading's own time, to the second.
    let hr: Vec<(String, i64)> = view["series"]["hr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["at"].as_str().unwrap().to_string(),
                p["value"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(hr.len(), 3, "{view}");
    for ((at, _), sent) in hr.iter().zip(&times) {
        assert_eq!(at[..19], sent[..19], "{view}");
    }
    assert_eq!(
        hr.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
        [70, 112, 112]
    );
    let news2: Vec<i64> = view["series"]["news2"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_i64().unwrap())
        .collect();
    assert_eq!(news2, [0, 8, 8], "{view}");
    assert_eq!(view["labs"][0]["code"], "lactate", "{view}");
    assert_eq!(view["labs"][0]["results"][0]["value"], 2.6, "{view}");

    // Scoped: another unit's nurse, another tenant's admin and an unknown patient are 404;
    // no token is 401; an identifier that cannot be one is 400.
    for (token, id) in [
        ("nurse-ward9-token", "p-window"),
        ("admin-other-token", "p-window"),
        ("nurse-icu3-token", "p-nobody"),
    ] {
        let (status, body) = get(token, id).await;
        assert_eq!(status, 404, "{token} {id}: {body}");
        assert_eq!(body["code"], "PATIENT_NOT_FOUND", "{body}");
    }
    let (status, body) = http_json(&engine.addr, "GET", "/api/patients/p-window", None, "").await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = get("nurse-icu3-token", "p.window").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        engine
            .metric("vigil_ws_errors_total{code=\"PATIENT_NOT_FOUND\"}")
            .await,
        3.0
    );
}
