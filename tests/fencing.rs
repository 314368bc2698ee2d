//! Issue 14, item 4: an engine writes an alert's transition only over the state it based the
//! transition on. Each transition goes to `ALERTS` with `Nats-Expected-Last-Subject-Sequence`;
//! when another engine has written the alert since (a newer owner, while this one was paused or
//! cut off), the stream refuses it, and this engine stops instead of writing over the newer
//! state.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::context::PublishErrorKind;
use common::*;
use serde_json::Value;

const T: &str = "clinic-abc";

/// The server's side of what the outbox relies on: a fenced publish is stored only right after
/// the sequence it names (0: an empty subject). A retry of a stored publish (the same
/// `Nats-Msg-Id`, the same fence) is refused like a stale one (nats-server checks the fence
/// before it looks for duplicates) or answered as a duplicate; either way the subject's last
/// message then carries the retry's `Nats-Msg-Id`, which is how the outbox tells a retry from
/// a real fence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_stores_a_fenced_publish_only_after_the_sequence_it_names() {
    let nats = NatsServer::start();
    let js = jetstream::new(nats.client().await);
    js.create_stream(jetstream::stream::Config {
        name: "FENCE".into(),
        subjects: vec!["fence.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let publish = |id: &'static str, expected: u64| {
        let js = js.clone();
        async move {
            let mut h = async_nats::HeaderMap::new();
            h.insert("Nats-Msg-Id", id);
            h.insert(
                "Nats-Expected-Last-Subject-Sequence",
                expected.to_string().as_str(),
            );
            js.publish_with_headers("fence.a", h, "x".into())
                .await
                .unwrap()
                .await
        }
    };
    let first = publish("v1", 0).await.expect("an empty subject");
    let second = publish("v2", first.sequence).await.expect("right after v1");
    match publish("v2", first.sequence).await {
        Ok(retry) => assert!(
            retry.duplicate && retry.sequence == second.sequence,
            "{retry:?}"
        ),
        Err(e) => assert_eq!(e.kind(), PublishErrorKind::WrongLastSequence),
    }
    let stream = js.get_stream("FENCE").await.unwrap();
    let last = stream
        .get_last_raw_message_by_subject("fence.a")
        .await
        .unwrap();
    assert_eq!(last.sequence, second.sequence);
    assert_eq!(last.headers.get("Nats-Msg-Id").unwrap().as_str(), "v2");
    let stale = publish("v2-other", first.sequence)
        .await
        .expect_err("stale");
    assert_eq!(stale.kind(), PublishErrorKind::WrongLastSequence);
    let again = publish("v1-other", 0).await.expect_err("not empty");
    assert_eq!(again.kind(), PublishErrorKind::WrongLastSequence);
}

/// Opens a critical alert on `engine`, then writes its acknowledgement to `ALERTS` as another
/// writer (a newer owner) would: the alert's id, subject, that transition and its version.
async fn acknowledged_by_another_writer(
    engine: &Engine,
    js: &jetstream::Context,
) -> (String, String, Value, u64) {
    make_critical(js, T, "patient-1").await;
    let mut opened = None;
    for _ in 0..100 {
        // The deteriorating patient may also open `sepsis.model`: the NEWS2 alert is the one.
        let alerts = list_alerts(&engine.addr, "admin-abc-token").await;
        if let Some(a) = alerts.iter().find(|a| a["rule"] == "news2.high") {
            opened = Some(a.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let opened = opened.expect("the alert opened");
    let alert_id = opened["alertId"].as_str().unwrap().to_string();
    let subject = format!("alerts.{T}.{alert_id}");
    let stored: Vec<Value> = all_messages(js, "ALERTS")
        .await
        .into_iter()
        .filter(|m| m["data"]["rule"] == "news2.high")
        .collect();
    let mut newer = stored.last().unwrap().clone();
    assert_eq!(newer["data"]["alertId"], alert_id.as_str());
    let version = newer["data"]["version"].as_u64().unwrap() + 1;
    newer["data"]["version"] = version.into();
    newer["data"]["state"] = "acknowledged".into();
    newer["eventId"] = format!("{alert_id}-v{version}-newer-owner").into();
    publish_json(js, &subject, &newer).await;
    (alert_id, subject, newer, version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_whose_alert_another_engine_wrote_stops_instead_of_writing_over_it() {
    let nats = NatsServer::start();
    let mut engine = Engine::start(&nats, "");
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);
    let (alert_id, subject, mut newer, version) =
        acknowledged_by_another_writer(&engine, &js).await;

    // This engine does not know; its own ack of the alert is refused by ALERTS.
    let ack = format!("/api/alerts/{alert_id}/ack");
    let (status, body) = http_json(&engine.addr, "POST", &ack, Some("nurse-icu3-token"), "").await;
    assert_ne!(
        status, 200,
        "a stale ack must not be answered as done: {body}"
    );

    // It stops (a supervisor restarts it; recovery then reads the newer state), and says why.
    let exit = engine.wait_exit(20).expect("the fenced engine stopped");
    assert!(!exit.success(), "{exit:?}");
    let log = engine.log.lock().unwrap().join("\n");
    assert!(
        log.contains("another engine wrote this alert since"),
        "{log}"
    );
    assert!(log.contains("fenced"), "{log}");

    // The newer owner's transition is still the alert's last; nothing was written over it.
    let trail: Vec<Value> = all_messages(&js, "ALERTS")
        .await
        .into_iter()
        .filter(|m| m["data"]["alertId"] == alert_id.as_str())
        .collect();
    assert_eq!(trail.last().unwrap()["eventId"], newer["eventId"]);
    assert_eq!(
        trail.len() as u64,
        version,
        "one message per version, none from the stale engine"
    );

    // Restarted, the engine recovers the newer state and its fence: another write by the
    // newer owner after the recovery fences the restarted engine too.
    let mut again = Engine::start(&nats, "");
    again.wait_ready().await;
    let alerts = list_alerts(&again.addr, "admin-abc-token").await;
    assert_eq!(alerts[0]["state"], "acknowledged");
    assert_eq!(alerts[0]["version"], version);
    newer["data"]["version"] = (version + 1).into();
    newer["eventId"] = format!("{alert_id}-v{}-newer-owner", version + 1).into();
    publish_json(&js, &subject, &newer).await;
    let resolve = format!("/api/alerts/{alert_id}/resolve");
    let body = r#"{"reason":"fine"}"#;
    let (status, answer) = http_json(
        &again.addr,
        "POST",
        &resolve,
        Some("nurse-icu3-token"),
        body,
    )
    .await;
    assert_ne!(status, 200, "{answer}");
    assert!(again.wait_exit(20).is_some_and(|e| !e.success()));

    // Once it has read the newest state, it goes on from it.
    let last = Engine::start(&nats, "");
    last.wait_ready().await;
    let (status, answer) =
        http_json(&last.addr, "POST", &resolve, Some("nurse-icu3-token"), body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["alert"]["version"], version + 2);
    assert_eq!(answer["alert"]["state"], "resolved");
}

/// A cluster member is a stale owner when `ALERTS` refuses its write: it stops writing, gives
/// up every partition and takes its share again with a fresh recovery, without exiting; the
/// recovery reads the newer state, and it goes on from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_member_refused_by_alerts_gives_its_partitions_up_and_goes_on_from_the_newer_state()
 {
    let nats = NatsServer::start();
    let mut engine = Engine::start(
        &nats,
        "[cluster]\nmember = \"engine-a\"\npartitions = 4\nfailover = \"3s\"",
    );
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);
    let (alert_id, _, _, version) = acknowledged_by_another_writer(&engine, &js).await;

    let ack = format!("/api/alerts/{alert_id}/ack");
    let (status, body) = http_json(&engine.addr, "POST", &ack, Some("nurse-icu3-token"), "").await;
    assert_ne!(
        status, 200,
        "a stale ack must not be answered as done: {body}"
    );

    // It stays up, gives its partitions up and takes them back, recovered.
    let mut recovered = None;
    for _ in 0..200 {
        assert!(engine.wait_exit(0).is_none(), "the member exited");
        let alerts = list_alerts(&engine.addr, "admin-abc-token").await;
        if http_get(&engine.addr, "/readyz").await.0 == 200
            && engine.metric("vigil_cluster_partitions_owned").await == 4.0
            && engine.metric("vigil_cluster_displaced_total").await == 1.0
            && let Some(a) = alerts.iter().find(|a| a["alertId"] == alert_id.as_str())
        {
            recovered = Some(a.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = engine.log.lock().unwrap().join("\n");
    let recovered = recovered.unwrap_or_else(|| panic!("not back with its partitions: {log}"));
    assert!(
        log.contains("displaced: ALERTS refused a transition"),
        "{log}"
    );
    assert_eq!(recovered["version"], version, "{recovered}");
    assert_eq!(recovered["state"], "acknowledged");

    let resolve = format!("/api/alerts/{alert_id}/resolve");
    let (status, answer) = http_json(
        &engine.addr,
        "POST",
        &resolve,
        Some("nurse-icu3-token"),
        r#"{"reason":"fine"}"#,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["alert"]["version"], version + 1);
    let trail: Vec<Value> = all_messages(&js, "ALERTS")
        .await
        .into_iter()
        .filter(|m| m["data"]["alertId"] == alert_id.as_str())
        .collect();
    assert_eq!(trail.len() as u64, version + 1, "one message per version");
}
