//! Issue 5 end to end: a morning clinic replayed through a real nats-server into the real
//! binary, with the delay rules configured in seconds. Appointments are booked, one patient
//! checks in late, a walk-in's check-in arrives before its schedule, the provider falls
//! behind, a chair overruns; the test asserts the exact alerts, flow updates, resource frames
//! and dead letters, the unit scoping of both, and a command on a delay alert.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use async_nats::jetstream;
use common::*;
use futures::StreamExt;
use serde_json::{Value, json};

const T: &str = "clinic-abc";

const CLINIC: &str = r#"
[engine]
unscheduled_after = "5s"

[rules."delay.waiting"]
window = "3s"

[rules."delay.provider"]
window = "4s"
clear_below = "2s"
sustain = 2

[rules."delay.resource_overrun"]
window = "2s"

[[auth.tokens]]
token = "coord-loc1-token"
tenant = "clinic-abc"
role = "coordinator"
units = ["loc-1"]
name = "desk-loc1"

[[auth.tokens]]
token = "coord-loc2-token"
tenant = "clinic-abc"
role = "coordinator"
units = ["loc-2"]
"#;

/// RFC 3339 time `secs` from now (negative: in the past).
fn at(secs: f64) -> String {
    let t = chrono::Utc::now() + chrono::Duration::milliseconds((secs * 1000.0) as i64);
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn checkin_event(
    js: &jetstream::Context,
    id: &str,
    appointment: &str,
    ty: &str,
    data: Value,
) {
    let v = envelope(T, id, ty, 0, data);
    publish_json(js, &format!("checkin.{T}.{appointment}"), &v).await;
}

async fn schedule(js: &jetstream::Context, appointment: &str, patient: &str, start: f64) {
    let data = json!({
        "appointmentId": appointment, "patientId": patient, "providerId": "prov-77",
        "locationId": "loc-1", "resourceId": "chair-12",
        "scheduledStart": at(start), "expectedDurationMinutes": 30
    });
    checkin_event(
        js,
        &format!("sched-{appointment}"),
        appointment,
        "appointment.scheduled.v1",
        data,
    )
    .await;
}

async fn check_in(js: &jetstream::Context, appointment: &str, patient: &str, notes: &str) {
    let data = json!({
        "patientId": patient, "appointmentId": appointment, "locationId": "loc-1",
        "checkinAt": at(0.0), "method": "front-desk", "notes": notes
    });
    checkin_event(
        js,
        &format!("in-{appointment}"),
        appointment,
        "patient.checkin.v1",
        data,
    )
    .await;
}

async fn status(js: &jetstream::Context, id: &str, appointment: &str, from: &str, to: &str) {
    let data = json!({
        "appointmentId": appointment, "previousStatus": from, "newStatus": to,
        "updatedAt": at(0.0), "actorId": "user-32"
    });
    checkin_event(js, id, appointment, "appointment.status.changed.v1", data).await;
}

/// The next message on a core subscription, as JSON envelope (or headers for the DLQ).
async fn next_msg(sub: &mut async_nats::Subscriber, what: &str) -> async_nats::Message {
    tokio::time::timeout(Duration::from_secs(15), sub.next())
        .await
        .unwrap_or_else(|_| panic!("no {what} within 15 s"))
        .expect("subscription open")
}

/// The next dead letter's code, message and source subject.
async fn next_dead_letter(sub: &mut async_nats::Subscriber) -> (String, String, String) {
    let m = next_msg(sub, "dead letter").await;
    let h = m.headers.expect("headers");
    let get = |k: &str| h.get(k).map(|v| v.as_str().to_string()).unwrap_or_default();
    (
        get("Vigil-Error-Code"),
        get("Vigil-Error"),
        get("Vigil-Source-Subject"),
    )
}

async fn next_flow(sub: &mut async_nats::Subscriber) -> Value {
    let m = next_msg(sub, "flow update").await;
    let v: Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(v["eventType"], "patient.flow.update.v1");
    assert_eq!(
        m.subject.as_str(),
        format!("flow.{T}.{}", v["data"]["patientId"].as_str().unwrap())
    );
    v["data"].clone()
}

/// A socket whose frames are kept as they arrive, so a test can wait for one kind while
/// others (arriving in any order) stay available.
struct Inbox {
    client: Client,
    frames: Vec<Value>,
}

impl Inbox {
    /// Takes the first kept or arriving frame that satisfies `ok`.
    async fn take(&mut self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(i) = self.frames.iter().position(&ok) {
                return self.frames.remove(i);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "no {what} within 20 s; got {:?}",
                self.frames
            );
            if let Some(f) = self.client.next(left.as_secs().max(1)).await {
                self.frames.push(f);
            }
        }
    }

    async fn alert(&mut self, rule: &str, state: &str) -> Value {
        let what = format!("{rule} alert in state {state}");
        let f = self
            .take(&what, |f| {
                f["type"] == "alert" && f["alert"]["rule"] == rule && f["alert"]["state"] == state
            })
            .await;
        f["alert"].clone()
    }

    async fn resource(&mut self, id: &str, status: &str) -> Value {
        self.take(&format!("resource frame {id} {status}"), |f| {
            f["type"] == "resource" && f["resourceId"] == id && f["status"] == status
        })
        .await
    }

    async fn send(&mut self, v: Value) {
        self.client.send(v).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_morning_clinic_raises_exactly_its_delays_and_flows() {
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, CLINIC);
    engine.wait_ready().await;
    let client = nats.client().await;
    let js = jetstream::new(client.clone());
    let mut flows = client.subscribe(format!("flow.{T}.>")).await.unwrap();
    let mut dlq = client.subscribe("dlq.CHECKINS").await.unwrap();
    client.flush().await.unwrap();

    let mut desk = Client::connect(&engine.ws_url("coord-loc1-token")).await;
    desk.subscribe(&["alerts", "resources"]).await;
    let mut desk = Inbox {
        client: desk,
        frames: Vec::new(),
    };
    let mut other = Client::connect(&engine.ws_url("coord-loc2-token")).await;
    other.subscribe(&["alerts", "resources"]).await;

    // 08:59: two appointments with prov-77, both due now.
    schedule(&js, "appt-1", "patient-1", -1.0).await;
    schedule(&js, "appt-2", "patient-2", -2.0).await;
    // A walk-in's check-in arrives before its schedule: held, then applied.
    check_in(&js, "appt-3", "patient-3", "walk-in").await;
    // Patient 1 checks in late.
    check_in(&js, "appt-1", "patient-1", "running 5 minutes late").await;
    let f = next_flow(&mut flows).await;
    assert_eq!(
        (
            &f["patientId"],
            &f["appointmentId"],
            &f["stage"],
            &f["notes"]
        ),
        (
            &json!("patient-1"),
            &json!("appt-1"),
            &json!("checked_in"),
            &json!("running 5 minutes late")
        )
    );
    schedule(&js, "appt-3", "patient-3", 0.0).await;
    let f = next_flow(&mut flows).await;
    assert_eq!(
        (&f["patientId"], &f["stage"], &f["notes"]),
        (&json!("patient-3"), &json!("checked_in"), &json!("walk-in"))
    );

    // The provider falls behind: two due, unstarted appointments average over 4 s.
    let provider = desk.alert("delay.provider", "open").await;
    assert_eq!(provider["category"], "delay");
    assert_eq!(provider["level"], "warning");
    assert_eq!(provider["providerId"], "prov-77");
    assert_eq!(provider["unitId"], "loc-1");
    assert_eq!(provider["relatedAppointments"], json!(["appt-3", "appt-1"]));
    assert!(
        provider["meta"]["avgDelayMinutes"].is_number(),
        "{provider}"
    );
    assert_eq!(provider["escalation"]["policy"], "delay-default");
    assert_eq!(
        provider["escalation"]["targets"],
        json!(["role:coordinator@loc-1"])
    );
    assert!(
        provider["message"]
            .as_str()
            .unwrap()
            .starts_with("Provider running >")
    );

    // Patients 1 and 3 have waited 3 s since the later of check-in and start.
    let mut waiting = [
        desk.alert("delay.waiting", "open").await,
        desk.alert("delay.waiting", "open").await,
    ];
    waiting.sort_by_key(|a| a["patientId"].as_str().unwrap().to_string());
    assert_eq!(waiting[0]["patientId"], "patient-1");
    assert_eq!(waiting[0]["relatedAppointments"], json!(["appt-1"]));
    assert_eq!(waiting[1]["patientId"], "patient-3");

    // Patient 1 is taken to chair 12, expected free in 1 s: the waiting alert clears.
    status(&js, "st-1", "appt-1", "checked_in", "in_progress").await;
    let f = next_flow(&mut flows).await;
    assert_eq!(
        (&f["patientId"], &f["stage"]),
        (&json!("patient-1"), &json!("in_progress"))
    );
    let cleared = desk.alert("delay.waiting", "resolved").await;
    assert_eq!(cleared["alertId"], waiting[0]["alertId"]);
    assert_eq!(cleared["transition"]["reason"], "appointment started");
    let occupied = envelope(
        T,
        "occ-1",
        "resource.occupancy.update.v1",
        0,
        json!({"resourceId": "chair-12", "status": "occupied", "currentAppointmentId": "appt-1",
               "expectedFreeAt": at(1.0)}),
    );
    publish_json(&js, &format!("occupancy.{T}.chair-12"), &occupied).await;
    let frame = desk.resource("chair-12", "occupied").await;
    assert_eq!(frame["kind"], "resource");
    assert_eq!(frame["currentAppointmentId"], "appt-1");
    assert_eq!(
        frame["unitId"], "loc-1",
        "the location comes from the appointment"
    );

    // The chair overruns its expected free time by the 2 s window.
    let overrun = desk.alert("delay.resource_overrun", "open").await;
    assert_eq!(overrun["resourceId"], "chair-12");
    assert_eq!(overrun["relatedAppointments"], json!(["appt-1"]));
    // The coordinator acknowledges it over the socket; then the chair is freed.
    desk.send(json!({"type": "ack", "id": "c1", "alertId": overrun["alertId"], "reason": "on it"}))
        .await;
    let result = desk.take("result", |f| f["type"] == "result").await;
    assert_eq!(result["ok"], true, "{result}");
    let acked = desk.alert("delay.resource_overrun", "acknowledged").await;
    assert_eq!(acked["transition"]["by"], "desk-loc1");
    let free = envelope(
        T,
        "occ-2",
        "resource.occupancy.update.v1",
        0,
        json!({"resourceId": "chair-12", "status": "cleaning", "locationId": "loc-1"}),
    );
    publish_json(&js, &format!("occupancy.{T}.chair-12"), &free).await;
    let freed = desk.alert("delay.resource_overrun", "resolved").await;
    assert_eq!(freed["transition"]["reason"], "resource freed");
    desk.resource("chair-12", "cleaning").await;

    // Bad input: a finished appointment restarted, a check-in for a cancelled one.
    status(&js, "st-2", "appt-1", "in_progress", "completed").await;
    let f = next_flow(&mut flows).await;
    assert_eq!(
        (&f["patientId"], &f["stage"]),
        (&json!("patient-1"), &json!("completed"))
    );
    status(&js, "st-3", "appt-1", "completed", "in_progress").await;
    let (code, message, _) = next_dead_letter(&mut dlq).await;
    assert_eq!(code, "INVALID_TRANSITION");
    assert_eq!(
        message,
        "appointment appt-1 is completed: it cannot become in_progress"
    );
    schedule(&js, "appt-4", "patient-4", 600.0).await;
    status(&js, "st-4", "appt-4", "scheduled", "cancelled").await;
    check_in(&js, "appt-4", "patient-4", "").await;
    let (code, message, subject) = next_dead_letter(&mut dlq).await;
    assert_eq!(code, "INVALID_TRANSITION");
    assert_eq!(
        message,
        "appointment appt-4 is cancelled: a check-in cannot follow"
    );
    assert_eq!(subject, format!("checkin.{T}.appt-4"));

    // Exactly these flow updates: nothing for the cancelled appointment, nothing refused.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(200), flows.next())
            .await
            .is_err(),
        "no other flow update"
    );

    // Exactly these alerts, all in loc-1.
    let alerts = list_alerts(&engine.addr, "admin-abc-token").await;
    let mut open: Vec<(String, String)> = alerts
        .iter()
        .filter(|a| a["category"] == "delay")
        .map(|a| {
            (
                a["rule"].as_str().unwrap().to_string(),
                a["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    open.sort();
    assert_eq!(
        open,
        [
            ("delay.provider".to_string(), "open".to_string()),
            ("delay.waiting".to_string(), "open".to_string()),
        ],
        "{alerts:?}"
    );
    assert_eq!(
        engine
            .metric("vigil_dlq_total{code=\"INVALID_TRANSITION\"}")
            .await,
        2.0
    );
    assert_eq!(engine.metric("vigil_practice_held").await, 0.0);

    // The other location's coordinator saw none of it.
    other.none_of("alert", 1).await;
    other.none_of("resource", 1).await;
    assert!(
        list_alerts(&engine.addr, "coord-loc2-token")
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_keeps_delay_alerts_and_the_state_that_clears_them() {
    let nats = NatsServer::start();
    let client = nats.client().await;
    let js = jetstream::new(client.clone());
    let mut first = Engine::start(&nats, CLINIC);
    first.wait_ready().await;
    let mut desk = Client::connect(&first.ws_url("coord-loc1-token")).await;
    desk.subscribe(&["alerts"]).await;
    let mut desk = Inbox {
        client: desk,
        frames: Vec::new(),
    };
    schedule(&js, "appt-1", "patient-1", 0.0).await;
    check_in(&js, "appt-1", "patient-1", "").await;
    let waiting = desk.alert("delay.waiting", "open").await;
    let provider = desk.alert("delay.provider", "open").await;
    // The coordinator resolves the provider delay before the crash (it persists).
    let path = format!(
        "/api/alerts/{}/resolve",
        provider["alertId"].as_str().unwrap()
    );
    let (code, body) = http_json(&first.addr, "POST", &path, Some("coord-loc1-token"), "").await;
    assert_eq!(code, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    first.kill9();
    drop(desk);

    let second = Engine::start(&nats, CLINIC);
    second.wait_ready().await;
    // The same waiting alert, once; the provider delay stays resolved.
    let alerts = list_alerts(&second.addr, "coord-loc1-token").await;
    let ids: Vec<&str> = alerts
        .iter()
        .map(|a| a["alertId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [waiting["alertId"].as_str().unwrap()], "{alerts:?}");
    // The appointment and the waiting area were rebuilt: starting it clears the restored alert.
    let mut desk = Client::connect(&second.ws_url("coord-loc1-token")).await;
    desk.subscribe(&["alerts"]).await;
    let mut desk = Inbox {
        client: desk,
        frames: Vec::new(),
    };
    status(&js, "st-1", "appt-1", "checked_in", "in_progress").await;
    let cleared = desk.alert("delay.waiting", "resolved").await;
    assert_eq!(cleared["alertId"], waiting["alertId"]);
    desk.client.none_of("alert", 2).await;
    assert!(
        list_alerts(&second.addr, "coord-loc1-token")
            .await
            .is_empty()
    );
}
