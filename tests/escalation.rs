//! Issue 4's escalation end to end against a real nats-server and the real binary, with
//! policies configured in seconds: a critical alert pages the nurse, escalates to the charge
//! nurse's pager when nobody acknowledges, a decline jumps a level at once, a page waiting for a
//! role reaches the pager that connects later, the pager's ack accepts it; a snooze comes back;
//! the HTTP mirror and the audit trail (`/api/alerts/{id}/history`) tell the same story; an ack
//! and a resolve racing from two clients end in one consistent state, never an un-resolve.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use async_nats::jetstream;
use common::*;
use serde_json::{Value, json};

const T: &str = "clinic-abc";

const FAST_POLICIES: &str = r#"
[[escalation.policies]]
name = "critical-default"
match = { level = "critical" }
ack_expiry = "30m"
page_receipt_timeout = "30s"
levels = [
  { after = "0s", targets = ["nurse"] },
  { after = "2s", targets = ["charge_nurse"] },
  { after = "20s", targets = ["rapid_response"] },
]

[[auth.tokens]]
token = "charge-icu3-token"
tenant = "clinic-abc"
role = "charge_nurse"
units = ["icu-3"]
name = "charge-bo"

[[auth.tokens]]
token = "pager-rrt-token"
tenant = "clinic-abc"
role = "pager"
units = ["icu-3"]
page_roles = ["rapid_response"]
name = "rrt-pager-1"
"#;

/// The next `alert` frame whose transition reason contains `needle`.
async fn alert_where(c: &mut Client, needle: &str) -> Value {
    for _ in 0..20 {
        let f = c.next_of("alert", 15).await;
        if f["alert"]["transition"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(needle))
        {
            return f["alert"].clone();
        }
    }
    panic!("no alert transition mentioning `{needle}`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_alert_escalates_through_pagers_with_delivery_states() {
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, FAST_POLICIES);
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);

    let mut nurse = Client::connect(&engine.ws_url("nurse-icu3-token")).await;
    nurse.subscribe(&["alerts", "pages"]).await;
    let mut charge = Client::connect(&engine.ws_url("charge-icu3-token")).await;
    charge.subscribe(&["pages"]).await;

    make_critical(&js, T, "patient-1").await;

    // Level 1: the nurse is paged at once; the charge nurse is not.
    let page1 = nurse.next_of("page", 10).await;
    let alert_id = page1["alert"]["alertId"].as_str().unwrap().to_string();
    let page1_id = page1["pageId"].as_str().unwrap().to_string();
    assert_eq!(page1["alert"]["escalation"]["level"], 1);
    assert_eq!(
        page1["alert"]["escalation"]["targets"],
        json!(["role:nurse@icu-3"])
    );
    assert_eq!(page1["alert"]["escalation"]["page"]["state"], "sent");
    nurse
        .send(json!({"type": "receipt", "id": "r1", "pageId": page1_id}))
        .await;
    let r = nurse.next_of("result", 5).await;
    assert_eq!(
        (r["id"].clone(), r["ok"].clone()),
        (json!("r1"), json!(true))
    );
    let delivered = alert_where(&mut nurse, "delivered to nurse-anna").await;
    assert_eq!(delivered["escalation"]["page"]["state"], "delivered");

    // Nobody acknowledges: after 2 s the charge nurse's pager gets level 2.
    let page2 = charge.next_of("page", 10).await;
    assert_eq!(page2["alert"]["alertId"], alert_id.as_str());
    assert_eq!(page2["alert"]["escalation"]["level"], 2);
    assert_eq!(
        page2["alert"]["escalation"]["targets"],
        json!(["role:charge_nurse@icu-3"])
    );
    let page2_id = page2["pageId"].as_str().unwrap().to_string();
    assert_ne!(page2_id, page1_id);
    // The nurse may not decline a page addressed to the charge nurse.
    nurse
        .send(json!({"type": "decline", "id": "d0", "pageId": page2_id}))
        .await;
    assert_eq!(nurse.next_of("error", 5).await["code"], "FORBIDDEN");

    // The charge nurse declines: level 3 at once, long before its 20 s.
    charge
        .send(json!({"type": "decline", "id": "d1", "pageId": page2_id, "reason": "in theatre"}))
        .await;
    let r = charge.next_of("result", 5).await;
    assert_eq!(r["alert"]["escalation"]["level"], 3, "{r}");
    let l3 = alert_where(&mut nurse, "declined by charge-bo (in theatre)").await;
    assert_eq!(
        l3["escalation"]["targets"],
        json!(["role:rapid_response@icu-3"])
    );
    // Declining a superseded page changes nothing.
    charge
        .send(json!({"type": "decline", "id": "d2", "pageId": page2_id}))
        .await;
    assert_eq!(
        charge.next_of("error", 5).await["code"],
        "INVALID_TRANSITION"
    );

    // The rapid-response pager connects after the page was issued: it gets it on subscribe.
    let mut rrt = Client::connect(&engine.ws_url("pager-rrt-token")).await;
    rrt.send(json!({"type": "subscribe", "id": "s1", "channels": ["pages"]}))
        .await;
    rrt.next_of("subscribed", 5).await;
    let page3 = rrt.next_of("page", 5).await;
    assert_eq!(page3["alert"]["escalation"]["level"], 3);
    let page3_id = page3["pageId"].as_str().unwrap();
    rrt.send(json!({"type": "receipt", "pageId": page3_id}))
        .await;
    rrt.send(json!({"type": "ack", "id": "a1", "alertId": alert_id, "reason": "on my way"}))
        .await;
    let acked = rrt.next_of("result", 5).await;
    assert_eq!(acked["alert"]["state"], "acknowledged", "{acked}");
    assert_eq!(acked["alert"]["escalation"]["page"]["state"], "accepted");
    assert_eq!(acked["alert"]["escalation"]["nextAt"], Value::Null);

    // The audit trail has every step, in order, from the ALERTS stream.
    let path = format!("/api/alerts/{alert_id}/history");
    let (status, body) = http_json(&engine.addr, "GET", &path, Some("nurse-icu3-token"), "").await;
    assert_eq!(status, 200, "{body}");
    let history = body["history"].as_array().unwrap();
    let versions: Vec<u64> = history
        .iter()
        .map(|a| a["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, (1..=versions.len() as u64).collect::<Vec<_>>());
    let reasons: Vec<&str> = history
        .iter()
        .map(|a| a["transition"]["reason"].as_str().unwrap())
        .collect();
    let expect_in_order = [
        "rule fired",
        "delivered to nurse-anna",
        "escalated to level 2",
        "declined by charge-bo",
        "delivered to rrt-pager-1",
        "on my way",
    ];
    let mut at = 0;
    for needle in expect_in_order {
        let found = reasons[at..]
            .iter()
            .position(|r| r.contains(needle))
            .unwrap_or_else(|| panic!("`{needle}` missing after step {at}: {reasons:?}"));
        at += found + 1;
    }
    // Another tenant's token does not see it; another unit's neither.
    let (status, _) = http_json(&engine.addr, "GET", &path, Some("admin-other-token"), "").await;
    assert_eq!(status, 404);
    let (status, _) = http_json(&engine.addr, "GET", &path, Some("nurse-ward9-token"), "").await;
    assert_eq!(status, 404);
    let (status, _) = http_json(&engine.addr, "GET", &path, None, "").await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snooze_comes_back_open_and_escalation_restarts() {
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, FAST_POLICIES);
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);
    let mut nurse = Client::connect(&engine.ws_url("nurse-icu3-token")).await;
    nurse.subscribe(&["alerts", "pages"]).await;
    make_critical(&js, T, "patient-2").await;
    let page = nurse.next_of("page", 10).await;
    let alert_id = page["alert"]["alertId"].as_str().unwrap().to_string();

    // Malformed snoozes change nothing and name the field.
    let path = format!("/api/alerts/{alert_id}/snooze");
    for (body, field) in [
        ("{}", "minutes"),
        (r#"{"minutes": "ten"}"#, "minutes"),
        (r#"{"minutes": 0}"#, "minutes"),
        (r#"{"minutes": 5, "until": "later"}"#, "until"),
        ("not json", "JSON"),
    ] {
        let (status, v) =
            http_json(&engine.addr, "POST", &path, Some("nurse-icu3-token"), body).await;
        assert_eq!(status, 400, "{body} -> {v}");
        assert_eq!(v["code"], "BAD_REQUEST");
        assert!(
            v["message"].as_str().unwrap().contains(field),
            "{body} -> {v}"
        );
    }
    let (status, v) = http_json(
        &engine.addr,
        "POST",
        "/api/alerts/alert-0000000000000000/snooze",
        Some("nurse-icu3-token"),
        r#"{"minutes": 5}"#,
    )
    .await;
    assert_eq!((status, v["code"].clone()), (404, json!("ALERT_NOT_FOUND")));
    let (status, v) = http_json(
        &engine.addr,
        "POST",
        &path,
        Some("viewer-icu3-token"),
        r#"{"minutes": 5}"#,
    )
    .await;
    assert_eq!((status, v["code"].clone()), (403, json!("FORBIDDEN")));

    // Snooze over HTTP for 3 s (fractional minutes), as an integration would.
    let (status, v) = http_json(
        &engine.addr,
        "POST",
        &path,
        Some("nurse-icu3-token"),
        r#"{"minutes": 0.05, "reason": "family at bedside"}"#,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["alert"]["state"], "snoozed");
    assert!(v["alert"]["snoozedUntil"].is_string());
    let snoozed = alert_where(&mut nurse, "snoozed for 3 s").await;
    assert_eq!(snoozed["escalation"]["nextAt"], Value::Null);
    // Snoozing a snoozed alert over the WebSocket is refused.
    nurse
        .send(json!({"type": "snooze", "id": "z1", "alertId": alert_id, "minutes": 10}))
        .await;
    assert_eq!(
        nurse.next_of("error", 5).await["code"],
        "INVALID_TRANSITION"
    );
    // It comes back by itself: open, level 1, the nurse paged again (the page and alert frames
    // travel on separate channels: either may come first).
    let (mut back, mut repage) = (Value::Null, Value::Null);
    while back.is_null() || repage.is_null() {
        let f = nurse.next(15).await.expect("snooze end frames");
        let reason = f["alert"]["transition"]["reason"].as_str().unwrap_or("");
        match f["type"].as_str() {
            Some("alert") if reason.contains("snooze ended") => back = f["alert"].clone(),
            Some("page") => repage = f,
            _ => {}
        }
    }
    assert_eq!(back["state"], "open");
    assert_eq!(back["transition"]["from"], "snoozed");
    assert_eq!(back["escalation"]["level"], 1);
    assert_ne!(repage["pageId"], page["pageId"]);
    assert_eq!(repage["alert"]["escalation"]["level"], 1);
    let (_, open) = http_json(
        &engine.addr,
        "GET",
        "/api/alerts?state=open",
        Some("nurse-icu3-token"),
        "",
    )
    .await;
    assert!(
        open["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["alertId"] == alert_id.as_str())
    );
    // And, still unacknowledged, it escalates from the restart.
    let l2 = alert_where(&mut nurse, "escalated to level 2").await;
    assert_eq!(l2["escalation"]["level"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ack_and_resolve_from_two_clients_end_in_one_consistent_state() {
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, FAST_POLICIES);
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);
    let patients: Vec<String> = (0..8).map(|i| format!("race-{i}")).collect();
    for p in &patients {
        make_critical(&js, T, p).await;
    }
    let mut ids = Vec::new();
    for _ in 0..100 {
        ids = list_alerts(&engine.addr, "admin-abc-token")
            .await
            .iter()
            .map(|a| a["alertId"].as_str().unwrap().to_string())
            .collect();
        if ids.len() == patients.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ids.len(), patients.len(), "one critical alert per patient");
    // For each alert, a nurse acknowledges over the WebSocket while the charge nurse resolves
    // over HTTP, at the same moment; every other time the ack leaves a little later, so that
    // both orders happen.
    let mut nurse = Client::connect(&engine.ws_url("nurse-icu3-token")).await;
    for (i, id) in ids.iter().enumerate() {
        let ack = async {
            if i % 2 == 1 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            nurse
                .send(json!({"type": "ack", "id": id, "alertId": id, "reason": "at bedside"}))
                .await;
            loop {
                let f = nurse.next(10).await.expect("a reply to the ack");
                if matches!(f["type"].as_str(), Some("result" | "error")) && f["id"] == id.as_str()
                {
                    return f;
                }
            }
        };
        let path = format!("/api/alerts/{id}/resolve");
        let resolve = http_json(&engine.addr, "POST", &path, Some("charge-icu3-token"), "");
        let (ack, (status, resolved)) = tokio::join!(ack, resolve);
        // The resolve always succeeds (from open or from acknowledged); the ack either came
        // first or is refused, never applied after the resolve.
        assert_eq!(status, 200, "{resolved}");
        assert_eq!(resolved["alert"]["state"], "resolved");
        let ack_won = ack["type"] == "result";
        if !ack_won {
            assert_eq!(ack["code"], "INVALID_TRANSITION", "{ack}");
        }
        // The audit trail agrees: versions in order, resolved last, acknowledged only before.
        let mut history = Vec::new();
        for _ in 0..100 {
            let (_, body) = http_json(
                &engine.addr,
                "GET",
                &format!("/api/alerts/{id}/history"),
                Some("admin-abc-token"),
                "",
            )
            .await;
            history = body["history"].as_array().cloned().unwrap_or_default();
            if history.last().is_some_and(|a| a["state"] == "resolved") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let states: Vec<&str> = history
            .iter()
            .map(|a| a["state"].as_str().unwrap())
            .collect();
        let versions: Vec<u64> = history
            .iter()
            .map(|a| a["version"].as_u64().unwrap())
            .collect();
        assert_eq!(versions, (1..=versions.len() as u64).collect::<Vec<_>>());
        assert_eq!(states.last(), Some(&"resolved"), "{states:?}");
        assert_eq!(
            states.iter().filter(|s| **s == "resolved").count(),
            1,
            "{states:?}"
        );
        assert_eq!(states.contains(&"acknowledged"), ack_won, "{states:?}");
    }
    assert!(
        list_alerts(&engine.addr, "admin-abc-token")
            .await
            .is_empty()
    );
}
