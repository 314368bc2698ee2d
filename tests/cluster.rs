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

/// `kill -9` of the node that leads `VITALS` (and of whatever else it led) mid-flow, and of
/// another node's restart afterwards: no reading lost or applied twice, every alert opened
/// once, every transition stored once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_node_lost_under_load_loses_no_event_and_no_transition() {
    let mut cluster = NatsCluster::start(3).await;
    // The default 16 partitions: 48 consumers, each of which may lose deliveries on the way
    // when the node relaying them dies; the engine must notice every such gap.
    let engine = Engine::start_on(
        &cluster.url(),
        "",
        "[cluster]\nmember = \"solo\"\nreplicas = 3",
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

    let load = tokio::spawn(WARD.monitors(js.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!load.is_finished(), "the loss must fall inside the load");
    let lost = cluster.index_of(&leader);
    cluster.kill9(lost);
    // A new VITALS leader among the two survivors.
    let mut moved = None;
    for _ in 0..200 {
        if let Ok(mut s) = js.get_stream("VITALS").await
            && let Ok(info) = s.info().await
            && let Some(now) = info.cluster.as_ref().and_then(|c| c.leader.clone())
            && now != leader
        {
            moved = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        moved.is_some(),
        "no new VITALS leader after {leader} was lost"
    );
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
