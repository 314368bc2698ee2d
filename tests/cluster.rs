//! Vigil on a 3-node NATS JetStream cluster (issue 14, item 7, first part): the harness's
//! cluster on loopback, the engine given the seed list and `[cluster] replicas = 3`, and a NATS
//! node lost while monitors stream vitals. NATS is the distributed part: every stream the
//! engine creates has three replicas, a surviving node takes over each stream the lost one
//! led, and the engine's client moves to a surviving node by itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use async_nats::jetstream;
use common::ward::Ward;
use common::*;

const WARD: Ward = Ward {
    patients: 30,
    rounds: 60,
    deteriorating: 6,
    turn: (15, 30),
};

/// The streams the engine creates at start.
const STREAMS: [&str; 6] = ["VITALS", "CHECKINS", "OCCUPANCY", "ALERTS", "FLOW", "DLQ"];

/// The cluster bucket's stream, where the member's claims live.
const BUCKET: &str = "KV_VIGIL_CLUSTER";

/// `kill -9` of the node that leads `VITALS` and the cluster bucket (and whatever else it led)
/// mid-flow, and of its restart afterwards: no reading lost or applied twice, every alert
/// opened once, every transition stored once and in order, and the member's partitions kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_node_lost_under_load_loses_no_event_and_no_transition() {
    let mut cluster = NatsCluster::start(3).await;
    // The default 16 partitions: 48 consumers, each of which may lose deliveries on the way
    // when the node relaying them dies; the engine must notice every such gap.
    //
    // `failover` outlasts NATS's own: a stream whose leader is lost elects a new one 4 to 9 s
    // after the leader's last heartbeat (nats-server's raft election timeout; 4.6 to 7.8 s
    // after the kill in runs of this test), and again when the first candidate's log was
    // behind. Meanwhile the bucket takes no write, so claims are not renewed, and with the
    // default 10 s a member could give them up (docs/cluster.md, "When something is lost").
    let engine = Engine::start_on(
        &cluster.url(),
        "",
        "[cluster]\nmember = \"solo\"\nreplicas = 3\nfailover = \"30s\"",
    );
    engine.wait_ready().await;

    let js = jetstream::new(cluster.client().await);
    let mut leader = String::new();
    for name in STREAMS {
        let mut stream = js.get_stream(name).await.unwrap();
        let info = stream.info().await.unwrap();
        assert_eq!(info.config.num_replicas, 3, "{name}");
        let placement = info.cluster.as_ref().expect("clustered");
        assert_eq!(
            placement.replicas.len(),
            2,
            "{name}: a leader and two followers"
        );
        if name == "VITALS" {
            leader = placement.leader.clone().expect("VITALS has a leader");
        }
    }

    // The loss takes the bucket's leader too, every run.
    lead_stream_on(&js, BUCKET, &leader).await;

    let load = tokio::spawn(WARD.monitors(js.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!load.is_finished(), "the loss must fall inside the load");
    let lost = cluster.index_of(&leader);
    let killed = std::time::Instant::now();
    cluster.kill9(lost);
    // A new leader of VITALS and of the bucket among the two survivors, asked with a short
    // timeout so that the time printed is the election's, not a request's.
    let probe = jetstream::context::ContextBuilder::new()
        .timeout(Duration::from_millis(250))
        .build(cluster.client().await);
    for stream in ["VITALS", BUCKET] {
        let moved = await_leader(&probe, stream, 300, |now| {
            now.is_some_and(|now| now != leader)
        })
        .await;
        assert!(moved, "no new {stream} leader after {leader} was lost");
        eprintln!(
            "{stream} led again {:.1} s after {leader} was killed",
            killed.elapsed().as_secs_f64()
        );
    }
    tokio::time::timeout(Duration::from_secs(120), load)
        .await
        .expect("monitors finished publishing")
        .unwrap();

    WARD.assert_nothing_lost(&[&engine], &js).await;
    // The lost node comes back and catches up; the engine does not notice.
    cluster.restart(lost);
    cluster.wait_for_jetstream().await;
    assert_eq!(http_get(&engine.addr, "/readyz").await.0, 200);
    let log = engine.log.lock().unwrap().join("\n");
    assert!(!log.contains("panicked"), "{log}");
    // The member kept its partitions through the loss: the cluster bucket's writes that
    // were in flight on the lost node are recognised as its own.
    assert!(!log.contains("lost partition"), "{log}");
    assert!(!log.contains("giving up every partition"), "{log}");
}
