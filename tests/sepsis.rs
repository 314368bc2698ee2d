//! Issue 3's rules end to end against a real nats-server and the real binary: a lab result on
//! `VITALS` fires `sepsis.sirs_lactate` explained under the unit's threshold profile, and
//! signal loss fires from the patient actor's timer with no further event, then clears.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use async_nats::jetstream;
use common::*;
use serde_json::{Value, json};

const T: &str = "clinic-abc";

const PROFILES: &str = r#"
[engine]
tick = "200ms"

[[profiles]]
name = "icu-default"
tenant = "clinic-abc"
units = ["icu-3"]
"#;

/// Signal loss after 2 s of silence, for the timer test.
const FAST_SIGNAL_LOSS: &str = r#"
[profiles.rules."technical.signal_loss"]
window = "2s"
"#;

/// SIRS 2 (temperature 38.6, HR 95) with NEWS2 2 and qSOFA 0: only a lactate can make it fire.
fn sirs_two(patient: &str) -> Value {
    json!({"patientId": patient, "unitId": "icu-3", "hr": 95, "rr": 16, "spo2": 98,
           "onOxygen": false, "temp": 38.6, "sbp": 120, "consciousness": "A"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lactate_result_fires_sirs_lactate_under_the_units_profile() {
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, PROFILES);
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);
    let mut nurse = Client::connect(&engine.ws_url("nurse-icu3-token")).await;
    nurse.subscribe(&["alerts", "patients"]).await;

    let subject = format!("vitals.{T}.patient-7");
    let v = envelope(T, "s-1", "vitals.observation.v1", 20, sirs_two("patient-7"));
    publish_json(&js, &subject, &v).await;
    let p = nurse.next_of("patient", 10).await;
    assert_eq!(p["sirs"], 2, "{p}");
    let lab = envelope(
        T,
        "s-2",
        "lab.result.v1",
        10,
        json!({"patientId": "patient-7", "unitId": "icu-3", "code": "lactate", "value": 2.6,
               "unit": "mmol/L"}),
    );
    publish_json(&js, &subject, &lab).await;
    let frame = nurse.next_of("alert", 10).await;
    let a = &frame["alert"];
    assert_eq!(a["rule"], "sepsis.sirs_lactate");
    assert_eq!(a["category"], "sepsis");
    assert_eq!(a["level"], "critical");
    assert_eq!(a["meta"]["sirs"], 2);
    assert_eq!(a["meta"]["lactate"], 2.6);
    assert_eq!(a["explanation"]["profile"], "icu-default");
    let why = a["explanation"]["why"].as_str().unwrap();
    assert!(
        why.starts_with(
            "SIRS 2 >= 2 and lactate 2.6 >= 2.0 mmol/L within 6 h (threshold profile icu-default)"
        ),
        "{why}"
    );
    let names: Vec<&str> = a["explanation"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"temp") && names.contains(&"hr") && names.contains(&"lactate"));
    for c in a["explanation"]["components"].as_array().unwrap() {
        assert!(
            c["observedAt"].is_string() && c["points"].is_number(),
            "{c}"
        );
    }

    // An impossible lab value goes to the DLQ with its code; nothing else changes.
    let bad = envelope(
        T,
        "s-3",
        "lab.result.v1",
        5,
        json!({"patientId": "patient-7", "unitId": "icu-3", "code": "lactate", "value": -1}),
    );
    publish_json(&js, &subject, &bad).await;
    let dlq = js.get_stream("DLQ").await.unwrap();
    let mut found = false;
    for _ in 0..100 {
        if let Ok(m) = dlq.get_last_raw_message_by_subject("dlq.VITALS").await {
            let code = m
                .headers
                .get("Vigil-Error-Code")
                .map(|v| v.to_string())
                .unwrap_or_default();
            if code == "LAB_OUT_OF_RANGE" {
                found = true;
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(found, "negative lactate in the DLQ with LAB_OUT_OF_RANGE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_loss_fires_from_the_timer_and_clears_when_data_flows() {
    let nats = NatsServer::start();
    let engine = Engine::start(&nats, &format!("{PROFILES}{FAST_SIGNAL_LOSS}"));
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);
    let mut nurse = Client::connect(&engine.ws_url("nurse-icu3-token")).await;
    nurse.subscribe(&["alerts"]).await;

    let subject = format!("vitals.{T}.patient-9");
    let v = envelope(
        T,
        "q-1",
        "vitals.observation.v1",
        0,
        vitals_news2_0("patient-9", "icu-3"),
    );
    publish_json(&js, &subject, &v).await;
    // No further event: the actor's timer notices the silence (window 2 s, tick 200 ms).
    let frame = nurse.next_of("alert", 10).await;
    let a = &frame["alert"];
    assert_eq!(a["rule"], "technical.signal_loss");
    assert_eq!(a["category"], "technical");
    assert_eq!(a["state"], "open");
    assert_eq!(a["explanation"]["profile"], "icu-default");

    let v = envelope(
        T,
        "q-2",
        "vitals.observation.v1",
        0,
        vitals_news2_0("patient-9", "icu-3"),
    );
    publish_json(&js, &subject, &v).await;
    let frame = nurse.next_of("alert", 10).await;
    assert_eq!(frame["alert"]["rule"], "technical.signal_loss");
    assert_eq!(frame["alert"]["state"], "resolved");
    assert_eq!(
        frame["alert"]["transition"]["reason"],
        "condition cleared: observations flowing again"
    );
}
