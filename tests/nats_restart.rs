//! Issue 4's durability against the bus: nats-server (JetStream on disk) is restarted twice
//! while monitors stream vitals, once gracefully (SIGTERM) and once as a crash (SIGKILL). The engine reconnects by itself, and afterwards every
//! event is accounted for: each one stored once, applied once, acknowledged; every alert opened
//! exactly once, with a gap-free audit trail whose last entry is the engine's current state.
//! And deliveries lost on the way (a connection broken while the server was sending): they are
//! delivered again, never acknowledged unapplied by the ack-all of a later one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use async_nats::jetstream;
use common::link::LossyLink;
use common::ward::{T, Ward, publish_until_stored};
use common::*;

/// 40 patients, 80 rounds; the deteriorating ones turn about when the server goes down.
const WARD: Ward = Ward {
    patients: 40,
    rounds: 80,
    deteriorating: 8,
    turn: (20, 40),
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_during_a_stream_of_vitals_loses_no_event_and_no_transition() {
    let mut nats = NatsServer::start();
    let engine = Engine::start(&nats, "");
    engine.wait_ready().await;
    let publisher_client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(&nats.url)
        .await
        .unwrap();
    let js = jetstream::new(publisher_client);
    let load = tokio::spawn(WARD.monitors(js));

    // Into the stream, stop the server for two seconds, mid-flow; later crash it.
    for signal in ["TERM", "KILL"] {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!load.is_finished(), "the outage must fall inside the load");
        nats.stop(signal);
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Readiness means "can ingest and store now": not while NATS is away.
        let (status, body) = http_get(&engine.addr, "/readyz").await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("not connected to NATS"), "{body}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        nats.start_again();
    }
    tokio::time::timeout(Duration::from_secs(120), load)
        .await
        .expect("monitors finished publishing")
        .unwrap();

    // The engine reconnected and drains to the end by itself: nothing pending, unacknowledged,
    // lost or doubled.
    let js = jetstream::new(nats.client().await);
    WARD.assert_nothing_lost(&[&engine], &js).await;
    // The engine saw the outages and is connected again. The second outage can fall inside
    // the client's reconnect backoff from the first, so one disconnect may cover both (the
    // 503 "not connected" checked during each outage above shows both were seen).
    let log = engine.log.lock().unwrap().join("\n");
    assert!(
        engine.metric("vigil_nats_disconnects_total").await >= 1.0,
        "{log}"
    );
    assert_eq!(engine.metric("vigil_nats_connected").await, 1.0);
}

/// Publishes one NEWS2-0 reading for each of `patients` in `round`.
async fn round(js: &jetstream::Context, patients: usize, round: usize) {
    for p in 0..patients {
        let patient = format!("patient-{p}");
        let id = format!("{patient}-r{round}");
        let v = envelope(
            T,
            &id,
            "vitals.observation.v1",
            0,
            vitals_news2_0(&patient, "icu-3"),
        );
        publish_until_stored(js, &format!("vitals.{T}.{patient}"), &id, &v).await;
    }
}

/// The engine's `VITALS` consumer, as the server sees it.
async fn consumer_info(js: &jetstream::Context) -> jetstream::consumer::Info {
    js.get_stream("VITALS")
        .await
        .unwrap()
        .consumer_info("vigil-test")
        .await
        .unwrap()
}

/// Readings the server delivered and the connection lost: the server counts them delivered,
/// and the engine's next acknowledgement (ack-all) would acknowledge them unapplied. The
/// engine sees the jump in the consumer's delivery sequence, acknowledges nothing after it,
/// and restarts the consumer at its ack floor: every reading is applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_lost_on_the_way_are_delivered_again_not_acknowledged_unapplied() {
    const PATIENTS: usize = 20;
    let nats = NatsServer::start();
    let link = LossyLink::start(&nats.url).await;
    let engine = Engine::start_on(&link.url, "", "");
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);
    let ingested = || engine.metric("vigil_events_ingested_total{type=\"vitals.observation.v1\"}");

    round(&js, PATIENTS, 0).await;
    for _ in 0..100 {
        if ingested().await == PATIENTS as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ingested().await, PATIENTS as f64, "the first round arrived");

    // The server sends the second round; the link loses it; then the connection breaks.
    link.lose_from_server();
    round(&js, PATIENTS, 1).await;
    let mut delivered = 0;
    for _ in 0..100 {
        delivered = consumer_info(&js).await.delivered.consumer_sequence;
        if delivered >= 2 * PATIENTS as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        delivered,
        2 * PATIENTS as u64,
        "the server delivered the second round"
    );
    link.cut();

    // The third round arrives after the jump.
    round(&js, PATIENTS, 2).await;
    let total = (3 * PATIENTS) as f64;
    let mut drained = false;
    for _ in 0..300 {
        let info = consumer_info(&js).await;
        if info.num_pending == 0 && info.num_ack_pending == 0 && ingested().await == total {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = engine.log.lock().unwrap().join("\n");
    assert!(
        drained,
        "every reading applied and acknowledged; logs:\n{log}"
    );
    assert_eq!(ingested().await, total, "each reading applied exactly once");
    assert!(
        engine.metric("vigil_consumer_gaps_total").await >= 1.0,
        "{log}"
    );
    assert!(log.contains("deliveries were lost on the way"), "{log}");
    assert_eq!(http_get(&engine.addr, "/readyz").await.0, 200);
}
