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

/// Publishes one `vitals.observation.v1` of `patient` (unit icu-3) `ago` seconds old, NEWS2 8
/// or 0.
async fn reading(js: &jetstream::Context, patient: &str, n: u32, ago: i64, high: bool) {
    let data = if high {
        vitals_news2_8(patient, "icu-3")
    } else {
        vitals_news2_0(patient, "icu-3")
    };
    let id = format!("{patient}-{n}");
    let v = envelope(T, &id, "vitals.observation.v1", ago, data);
    publish_json(js, &format!("vitals.{T}.{patient}"), &v).await;
}

/// Waits until every `VITALS` message is delivered and acknowledged to the engine's consumer.
async fn drained(js: &jetstream::Context, engine: &mut Engine) {
    let mut stream = js.get_stream("VITALS").await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    for _ in 0..300 {
        assert!(
            engine.wait_exit(0).is_none(),
            "the engine stopped: {:?}",
            engine.log
        );
        // The consumer every test engine's configuration names (tests/common).
        let info = stream.consumer_info("vigil-test").await;
        if info.is_ok_and(|i| i.ack_floor.stream_sequence == last) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("VITALS never drained");
}

/// news2.trend off: the readings below each open news2.high and nothing else.
const NO_TREND: &str = "[rules.\"news2.trend\"]\nenabled = false\nwindow = \"1s\"\n";

/// The fencing gap of stop 40 (docs/reliability.md, "Readings read again"): an engine that
/// reads `VITALS` again from its start (its consumer deleted or renamed; or a crash before a
/// backlog's readings were acknowledged, whose redelivery is the same thing in small) derives
/// again the alerts it already stored. It must write none of them again and go on: an alert it
/// had opened and resolved stays resolved (its trail unchanged, not refused by the fence, which
/// stopped the engine at every restart), and an alert still open is neither resolved by the
/// older readings that preceded it nor opened twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_reads_vitals_again_from_the_start_writes_no_alert_twice_and_goes_on() {
    read_again(NO_TREND, Duration::ZERO).await;
}

/// The same when the alerts were resolved longer ago than the horizon (here 2 s): with no
/// acknowledged reading, recovery hands every resolved alert over, not only the horizon's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_resolved_before_the_horizon_are_not_written_twice_either() {
    let short = format!("{NO_TREND}[scoring]\nhorizon = \"2s\"\nlateness = \"1s\"\n");
    read_again(&short, Duration::from_secs(3)).await;
}

/// Drains two patients' readings on an engine configured with `extra`, deletes the consumer,
/// waits `pause`, and drains them again on a second engine.
async fn read_again(extra: &str, pause: Duration) {
    let nats = NatsServer::start();
    let js = jetstream::new(nats.client().await);
    let mut engine = Engine::start(&nats, extra);
    engine.wait_ready().await;
    // patient-1: news2.high opens on the second of two readings of NEWS2 8 and resolves on a
    // reading after 15 min of NEWS2 0. patient-2: 16 min of NEWS2 0, then news2.high opens
    // and stays open.
    let first = [(1800, true), (1790, true), (1780, false), (800, false)];
    let second = [(1800, false), (800, false), (20, true), (10, true)];
    for (patient, readings) in [("patient-1", first), ("patient-2", second)] {
        for (n, (ago, high)) in (1..).zip(readings) {
            reading(&js, patient, n, ago, high).await;
        }
    }
    drained(&js, &mut engine).await;
    let trail = |js: jetstream::Context| async move {
        let all = all_messages(&js, "ALERTS").await;
        all.into_iter()
            .map(|m| {
                let d = &m["data"];
                let text = |k: &str| d[k].as_str().unwrap().to_string();
                let state = format!("{} {}", text("rule"), text("state"));
                (text("patientId"), state, d["version"].clone())
            })
            .collect::<Vec<_>>()
    };
    let before = trail(js.clone()).await;
    let states = |p: &str| {
        before
            .iter()
            .filter(|(id, ..)| id == p)
            .map(|(_, state, _)| state.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        states("patient-1"),
        ["news2.high open", "news2.high resolved"],
        "{before:?}"
    );
    assert_eq!(states("patient-2"), ["news2.high open"], "{before:?}");
    assert_eq!(engine.terminate().code(), Some(0));

    // What recovery bounds the resolved alerts it hands over by: when the last acknowledged
    // reading was stored (here the last of all), and once the consumer is gone (the stream
    // is delivered from its start), when the first was.
    let bus = vigil_streams::Bus::connect(&nats.url, &vigil_config::Config::default())
        .await
        .unwrap();
    let mut stream = js.get_stream("VITALS").await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let stored = |seq: u64| {
        let stream = stream.clone();
        async move {
            let t = stream.get_raw_message(seq).await.unwrap().time;
            i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap()
        }
    };
    let after = || async {
        let floor = bus.ack_floor("VITALS", "vigil-test", None).await.unwrap();
        let t = bus.delivered_again_after("VITALS", floor).await;
        t.unwrap().map(|t| t.millis())
    };
    assert_eq!(after().await, Some(stored(last).await));

    // The consumer is gone: the next engine drains VITALS again from its first reading.
    stream.delete_consumer("vigil-test").await.unwrap();
    assert_eq!(after().await, Some(stored(1).await));
    tokio::time::sleep(pause).await;
    let mut again = Engine::start(&nats, extra);
    again.wait_ready().await;
    drained(&js, &mut again).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(again.wait_exit(0).is_none(), "stopped: {:?}", again.log);
    assert_eq!(trail(js.clone()).await, before, "nothing written twice");
    let open = list_alerts(&again.addr, "admin-abc-token").await;
    let open: Vec<String> = open
        .iter()
        .map(|a| format!("{} {} {}", a["patientId"], a["rule"], a["state"]))
        .collect();
    assert_eq!(open, [r#""patient-2" "news2.high" "open""#]);

    // And it goes on: patient-1's next deterioration is a new alert.
    reading(&js, "patient-1", 5, 2, true).await;
    reading(&js, "patient-1", 6, 1, true).await;
    drained(&js, &mut again).await;
    let after = trail(js.clone()).await;
    assert_eq!(after[..before.len()], before[..]);
    let new: Vec<_> = after[before.len()..]
        .iter()
        .map(|(p, state, _)| format!("{p} {state}"))
        .collect();
    assert_eq!(new, ["patient-1 news2.high open"], "{after:?}");
}
