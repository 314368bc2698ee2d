//! Several engine processes sharing the inbound streams by partitions (issue 14; docs/cluster.md),
//! against a real nats-server 2.11+ and the real binary: the stored subjects carry the partition
//! NATS computes and the engine agrees with it; partitions are fixed once the streams exist;
//! engines that join share the partitions fairly, a fourth process joining three under load
//! takes its share with every reading applied exactly once; `kill -9` of an owner mid-escalation moves its
//! partitions to the survivors, whose escalation fires on time with no alert opened twice; a
//! paused owner that comes back after its partitions moved writes nothing over the new owner;
//! a member cut off from NATS gives its partitions up in time, and one whose bucket has no
//! leader keeps them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use common::ward::{Ward, alert_trail, assert_in_order};
use common::*;
use futures::StreamExt;
use serde_json::Value;
use vigil_streams::partition::partition_of;

const T: &str = "clinic-abc";

/// A cluster member's config: `member`, `partitions`, a short failover, and escalation in
/// seconds (level 2 eight seconds after opening).
fn member(name: &str, partitions: u32) -> String {
    format!(
        r#"
[cluster]
member = "{name}"
partitions = {partitions}
failover = "3s"

[[escalation.policies]]
name = "critical-default"
match = {{ level = "critical" }}
ack_expiry = "30m"
page_receipt_timeout = "60s"
levels = [
  {{ after = "0s", targets = ["nurse"] }},
  {{ after = "8s", targets = ["charge_nurse"] }},
  {{ after = "60s", targets = ["rapid_response"] }},
]
"#
    )
}

fn start(nats: &NatsServer, name: &str, partitions: u32) -> Engine {
    Engine::start_on(&nats.url, "", &member(name, partitions))
}

/// Waits until each engine runs `shares[i]` partitions and is ready.
async fn wait_shares(engines: &[&Engine], shares: &[u64]) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(40) {
        let mut now = Vec::new();
        for e in engines {
            let ready = http_get(&e.addr, "/readyz").await.0 == 200;
            let owned = e.metric("vigil_cluster_partitions_owned").await as u64;
            now.push(if ready { owned } else { u64::MAX });
        }
        if now == shares {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs: Vec<String> = engines
        .iter()
        .map(|e| e.log.lock().unwrap().join("\n"))
        .collect();
    panic!(
        "shares never became {shares:?}; logs:\n{}",
        logs.join("\n----\n")
    );
}

/// The `n` partitions `name` holds, as its heartbeat in the cluster bucket says (it says so
/// at the member's next beat after the claims).
async fn partitions_of(js: &jetstream::Context, name: &str, n: usize) -> BTreeSet<u32> {
    let kv = js.get_key_value("VIGIL_CLUSTER").await.unwrap();
    let started = Instant::now();
    loop {
        let beat = kv
            .get(format!("members.{name}"))
            .await
            .unwrap()
            .expect("a heartbeat");
        let v: Value = serde_json::from_slice(&beat).unwrap();
        let held: BTreeSet<u32> = v["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_u64().unwrap() as u32)
            .collect();
        if held.len() == n {
            return held;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name}'s heartbeat says {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every stored subject of a stream, oldest first.
async fn stored_subjects(js: &jetstream::Context, stream: &str) -> Vec<String> {
    let mut s = js.get_stream(stream).await.unwrap();
    let last = s.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        out.push(s.get_raw_message(seq).await.unwrap().subject.to_string());
    }
    out
}

/// Waits for `engine` to stop by itself at start, non-zero, having logged `says`.
fn assert_refused_at_start(mut engine: Engine, says: &str) {
    let exit = engine.wait_exit(15).expect("the engine stopped by itself");
    assert!(!exit.success());
    let log = engine.log.lock().unwrap().join("\n");
    assert!(log.contains(says), "{log}");
}

/// Each alert's transitions stored once and in order; each patient's rule opened once.
fn assert_consistent(trail: &BTreeMap<String, Vec<Value>>) {
    let mut opened = BTreeSet::new();
    for (id, steps) in trail {
        assert_in_order(id, steps);
        let key = (
            steps[0]["patientId"].as_str().unwrap_or("").to_string(),
            steps[0]["rule"].as_str().unwrap().to_string(),
        );
        assert!(opened.insert(key.clone()), "{key:?} opened twice");
    }
}

/// The stream subject transform puts each message under the partition NATS computes, which
/// the engine computes the same way: a patient's readings by tenant and patient, the practice
/// streams by tenant. Each partition has its pinned consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_subjects_carry_the_partition_the_engine_computes() {
    let nats = NatsServer::start();
    let engine = start(&nats, "solo", 8);
    engine.wait_ready().await;
    let js = jetstream::new(nats.client().await);
    let mut published = Vec::new();
    for tenant in [T, "clinic-other"] {
        for p in 0..40 {
            let patient = format!("patient-{p}");
            let v = envelope(
                tenant,
                &format!("{tenant}-{p}"),
                "vitals.observation.v1",
                0,
                vitals_news2_0(&patient, "icu-3"),
            );
            publish_json(&js, &format!("vitals.{tenant}.{patient}"), &v).await;
            published.push((tenant, patient));
        }
    }
    let subjects = stored_subjects(&js, "VITALS").await;
    assert_eq!(subjects.len(), published.len());
    let mut used = BTreeSet::new();
    for (subject, (tenant, patient)) in subjects.iter().zip(&published) {
        let p = partition_of(&[tenant, patient], 8);
        used.insert(p);
        assert_eq!(*subject, format!("vitals.{p}.{tenant}.{patient}"));
    }
    assert_eq!(used.len(), 8, "80 patients spread over all 8 partitions");
    for tenant in [T, "clinic-other", "a", "clinic-xyz-42"] {
        publish_raw(
            &js,
            &format!("checkin.{tenant}.appt-1"),
            &[],
            b"{}".to_vec(),
        )
        .await;
    }
    let checkins = stored_subjects(&js, "CHECKINS").await;
    for (subject, tenant) in checkins
        .iter()
        .zip([T, "clinic-other", "a", "clinic-xyz-42"])
    {
        let p = partition_of(&[tenant], 8);
        assert_eq!(*subject, format!("checkin.{p}.{tenant}.appt-1"));
    }
    // One pinned consumer per partition and stream.
    for stream in ["VITALS", "CHECKINS", "OCCUPANCY"] {
        let s = js.get_stream(stream).await.unwrap();
        for p in 0..8 {
            let mut c: jetstream::consumer::PullConsumer =
                s.get_consumer(&format!("vigil-test-{p}")).await.unwrap();
            let info = c.info().await.unwrap();
            assert_eq!(
                info.config.priority_policy,
                jetstream::consumer::PriorityPolicy::PinnedClient,
                "{stream} partition {p}"
            );
            assert_eq!(
                info.config.filter_subject,
                format!("{}.{p}.>", stream_prefix(stream))
            );
        }
    }
    // Every reading applied once, the rejected check-ins dead-lettered.
    for _ in 0..100 {
        if engine
            .metric("vigil_events_ingested_total{type=\"vitals.observation.v1\"}")
            .await
            == 80.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        engine
            .metric("vigil_events_ingested_total{type=\"vitals.observation.v1\"}")
            .await,
        80.0
    );
    assert_eq!(engine.metric("vigil_cluster_partitions_owned").await, 8.0);
}

fn stream_prefix(stream: &str) -> &'static str {
    match stream {
        "VITALS" => "vitals",
        "CHECKINS" => "checkin",
        _ => "occupancy",
    }
}

/// The number of partitions is fixed once the streams exist: an engine configured otherwise
/// stops at start naming both numbers, whether the streams were split or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_are_fixed_once_the_streams_exist() {
    let nats = NatsServer::start();
    let mut single = Engine::start(&nats, "");
    single.wait_ready().await;
    let (status, body) = http_json(
        &single.addr,
        "GET",
        "/api/cluster",
        Some("admin-abc-token"),
        "",
    )
    .await;
    assert_eq!(
        (status, body),
        (200, serde_json::json!({"clustered": false, "members": []}))
    );
    assert_eq!(single.metric("vigil_cluster_partitions_owned").await, 1.0);
    assert!(single.terminate().success());
    assert_refused_at_start(
        start(&nats, "a", 8),
        "stream VITALS exists with partitions not split (1) but the configuration has 8",
    );

    let nats = NatsServer::start();
    let mut eight = start(&nats, "a", 8);
    eight.wait_ready().await;
    assert!(eight.terminate().success());
    assert_refused_at_start(
        start(&nats, "a", 4),
        "stream VITALS exists with partitions 8 but the configuration has 4",
    );
    assert_refused_at_start(
        Engine::start(&nats, ""),
        "exists with partitions 8 but the configuration has not split (1)",
    );
}

/// Three engines share eight partitions; a fourth joins while monitors stream and takes a fair
/// share, handed over cleanly: every reading is applied exactly once over the four, every
/// alert opened once, every transition stored once and in order; the partitions that stay run
/// on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_joins_under_load_takes_its_share_and_nothing_is_applied_twice() {
    let nats = NatsServer::start();
    let a = start(&nats, "engine-a", 8);
    let b = start(&nats, "engine-b", 8);
    let c = start(&nats, "engine-c", 8);
    wait_shares(&[&a, &b, &c], &[3, 3, 2]).await;
    let recoveries = |e: &Engine| {
        let log = e.log.lock().unwrap();
        log.iter()
            .filter(|l| l.contains("recovery finished"))
            .count()
    };
    let old = [&a, &b, &c];
    let recovered_before = old.map(recoveries);
    let mut handovers_before = Vec::new();
    for e in old {
        handovers_before.push(e.metric("vigil_cluster_handovers_total").await);
    }
    let js = jetstream::new(nats.client().await);
    let ward = Ward {
        patients: 30,
        rounds: 60,
        deteriorating: 6,
        turn: (15, 30),
    };
    let load = tokio::spawn(ward.monitors(js.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!load.is_finished(), "the join must fall inside the load");
    let d = start(&nats, "engine-d", 8);
    tokio::time::timeout(Duration::from_secs(120), load)
        .await
        .expect("monitors finished publishing")
        .unwrap();
    wait_shares(&[&a, &b, &c, &d], &[2, 2, 2, 2]).await;
    ward.assert_nothing_lost(&[&a, &b, &c, &d], &js).await;
    let names = ["engine-a", "engine-b", "engine-c", "engine-d"];
    let mut held = BTreeSet::new();
    for name in names {
        let mine = partitions_of(&js, name, 2).await;
        assert_eq!(mine.len(), 2, "{name}");
        assert!(held.is_disjoint(&mine), "a partition held twice");
        held.extend(mine);
    }
    assert_eq!(held.len(), 8);
    // Any member answers for the whole cluster; only an admin may ask.
    let (status, cluster) =
        http_json(&d.addr, "GET", "/api/cluster", Some("admin-abc-token"), "").await;
    assert_eq!(status, 200, "{cluster}");
    assert_eq!(cluster["clustered"], true);
    assert_eq!(cluster["member"], "engine-d");
    assert_eq!(cluster["partitions"], 8);
    let members = cluster["members"].as_array().unwrap();
    let listed: Vec<&str> = members
        .iter()
        .map(|m| m["member"].as_str().unwrap())
        .collect();
    assert_eq!(listed, names);
    for m in members {
        assert_eq!(m["partitions"].as_array().unwrap().len(), 2, "{m}");
        assert!(m["lastHeartbeat"].as_str().unwrap().ends_with('Z'), "{m}");
        assert!(
            m["listen"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{m}"
        );
    }
    let (status, body) =
        http_json(&a.addr, "GET", "/api/cluster", Some("nurse-icu3-token"), "").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "FORBIDDEN");
    // The join moved only the newcomer's share: engine-a and engine-b each gave one
    // partition, in one hand-over; engine-c, already at its share, gave none.
    for (e, (before, gave)) in old
        .into_iter()
        .zip(handovers_before.into_iter().zip([1.0, 1.0, 0.0]))
    {
        let log = e.log.lock().unwrap().join("\n");
        assert!(gave == 0.0 || log.contains("released partition"), "{log}");
        assert_eq!(
            e.metric("vigil_cluster_handovers_total").await,
            before + gave,
            "{log}"
        );
    }
    // The partitions that stayed ran on: no old member recovered anything again.
    assert_eq!(
        old.map(recoveries),
        recovered_before,
        "{}",
        a.log.lock().unwrap().join("\n")
    );
}

/// Three engines; `kill -9` of one while its critical alerts wait for their second level: the
/// survivors take its partitions within the failover, recover its alerts, and escalate them on
/// time, with no alert opened twice and no transition stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_killed_mid_escalation_is_replaced_and_its_alerts_escalate_on_time() {
    let nats = NatsServer::start();
    let mut a = start(&nats, "engine-a", 6);
    let b = start(&nats, "engine-b", 6);
    let c = start(&nats, "engine-c", 6);
    wait_shares(&[&a, &b, &c], &[2, 2, 2]).await;
    let js = jetstream::new(nats.client().await);
    let of_a = partitions_of(&js, "engine-a", 2).await;
    let patients: Vec<String> = (0..12).map(|p| format!("patient-{p}")).collect();
    let on_a: Vec<&String> = patients
        .iter()
        .filter(|p| of_a.contains(&partition_of(&[T, p], 6)))
        .collect();
    assert!(!on_a.is_empty(), "some patients live on engine-a");
    for p in &patients {
        make_critical(&js, T, p).await;
    }
    // Every patient's critical alert is open (level 1) before the kill.
    let started = Instant::now();
    let opened = loop {
        let t = alert_trail(&js).await;
        let open: BTreeMap<String, Value> = t
            .values()
            .filter(|s| s[0]["rule"] == "news2.high")
            .map(|s| {
                (
                    s[0]["patientId"].as_str().unwrap().to_string(),
                    s[0].clone(),
                )
            })
            .collect();
        if open.len() == patients.len() {
            break open;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "alerts not opened: {t:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    a.kill9();
    wait_shares(&[&b, &c], &[3, 3]).await;
    // Each of engine-a's alerts escalates to level 2 from a survivor: at its deadline (8 s
    // after it opened) or, if that passed during the hand-over, at once; never later than
    // failover (3 s) plus 5 s after the deadline.
    let deadline_of = |a: &Value| {
        chrono::DateTime::parse_from_rfc3339(a["transition"]["at"].as_str().unwrap()).unwrap()
            + chrono::Duration::seconds(8)
    };
    let started = Instant::now();
    loop {
        let t = alert_trail(&js).await;
        let mut escalated = 0;
        for p in &on_a {
            let first = &opened[p.as_str()];
            let steps = &t[first["alertId"].as_str().unwrap()];
            if let Some(l2) = steps
                .iter()
                .find(|s| s["escalation"]["level"].as_u64() == Some(2))
            {
                let at =
                    chrono::DateTime::parse_from_rfc3339(l2["transition"]["at"].as_str().unwrap())
                        .unwrap();
                let due = deadline_of(first);
                assert!(
                    at <= due + chrono::Duration::seconds(8),
                    "{p}: level 2 at {at}, due {due}"
                );
                escalated += 1;
            }
        }
        if escalated == on_a.len() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "engine-a's alerts did not escalate: {escalated} of {}; logs: {}\n----\n{}",
            on_a.len(),
            b.log.lock().unwrap().join("\n"),
            c.log.lock().unwrap().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let t = alert_trail(&js).await;
    assert_consistent(&t);
    let highs = t.values().filter(|s| s[0]["rule"] == "news2.high").count();
    assert_eq!(highs, patients.len(), "one news2.high per patient");
    for e in [&b, &c] {
        let log = e.log.lock().unwrap().join("\n");
        assert!(!log.contains("panicked"), "{log}");
    }
}

/// An owner paused (SIGSTOP) longer than the failover loses its partitions to the other
/// member, which escalates its alert; when it comes back it writes nothing over the newer
/// state: it gives its partitions up (or is fenced by `ALERTS` and stops), and the audit trail
/// stays one transition per version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_that_comes_back_writes_nothing_over_the_new_owner() {
    let nats = NatsServer::start();
    let mut a = start(&nats, "engine-a", 4);
    let b = start(&nats, "engine-b", 4);
    wait_shares(&[&a, &b], &[2, 2]).await;
    let js = jetstream::new(nats.client().await);
    let of_a = partitions_of(&js, "engine-a", 2).await;
    let patient = (0..100)
        .map(|p| format!("patient-{p}"))
        .find(|p| of_a.contains(&partition_of(&[T, p], 4)))
        .unwrap();
    make_critical(&js, T, &patient).await;
    let started = Instant::now();
    let id = loop {
        if let Some(s) = alert_trail(&js)
            .await
            .values()
            .find(|s| s[0]["rule"] == "news2.high")
        {
            break s[0]["alertId"].as_str().unwrap().to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no alert");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    a.signal("STOP");
    wait_shares(&[&b], &[4]).await;
    // engine-b escalates the alert at its deadline while engine-a is frozen.
    let started = Instant::now();
    while !alert_trail(&js).await[&id]
        .iter()
        .any(|s| s["escalation"]["level"].as_u64() == Some(2))
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "engine-b did not escalate"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.signal("CONT");
    // engine-a's own timer for that deadline has passed too: whatever it tries is refused.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let log = a.log.lock().unwrap().join("\n");
    // It stays up: a refused write (fenced) or its lapsed claims make it give its
    // partitions up, not exit.
    assert!(a.wait_exit(1).is_none(), "engine-a exited: {log}");
    assert!(
        log.contains("giving up every partition") || log.contains("lost partition"),
        "engine-a did not give its partitions up: {log}"
    );
    let t = alert_trail(&js).await;
    assert_consistent(&t);
    let levels: Vec<u64> = t[&id]
        .iter()
        .filter_map(|s| s["escalation"]["level"].as_u64())
        .collect();
    assert_eq!(
        levels.iter().filter(|l| **l == 2).count(),
        1,
        "one escalation to level 2: {levels:?}"
    );
    // It joins again and gets its fair share back from engine-b.
    wait_shares(&[&a, &b], &[2, 2]).await;
    let log = a.log.lock().unwrap().join("\n");
    eprintln!(
        "engine-a displaced: {}; heartbeat aged out: {}",
        log.contains("displaced: "),
        log.contains("giving up every partition and joining again")
    );
}

/// A second process started with a member name a live process holds waits as a standby (not
/// ready, saying why) and takes over once the first is gone: never two owners of one name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_with_the_same_member_name_waits_as_a_standby() {
    let nats = NatsServer::start();
    let mut first = start(&nats, "engine-a", 4);
    wait_shares(&[&first], &[4]).await;
    let second = start(&nats, "engine-a", 4);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = http_get(&second.addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("standby"), "{body}");
    first.kill9();
    wait_shares(&[&second], &[4]).await;
    let mut names = jetstream::new(nats.client().await)
        .get_key_value("VIGIL_CLUSTER")
        .await
        .unwrap()
        .keys()
        .await
        .unwrap();
    let mut members = Vec::new();
    while let Some(Ok(k)) = names.next().await {
        if k.starts_with("members.") {
            members.push(k);
        }
    }
    assert_eq!(members, vec!["members.engine-a".to_string()]);
}

/// One view from any door: a nurse connected to engine-a is paged for, and acknowledges, an
/// alert engine-b owns; the HTTP mirror on engine-a resolves another. Only engine-b writes
/// them. With engine-b gone and its partitions not yet moved, a command is refused at once
/// with UNAVAILABLE, saying to retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_on_one_member_acknowledges_an_alert_another_member_owns() {
    let nats = NatsServer::start();
    let a = start(&nats, "engine-a", 4);
    let mut b = start(&nats, "engine-b", 4);
    wait_shares(&[&a, &b], &[2, 2]).await;
    let js = jetstream::new(nats.client().await);
    let of_b = partitions_of(&js, "engine-b", 2).await;
    let on_b: Vec<String> = (0..200)
        .map(|p| format!("patient-{p}"))
        .filter(|p| of_b.contains(&partition_of(&[T, p], 4)))
        .take(3)
        .collect();
    let mut nurse = Client::connect(&a.ws_url("nurse-icu3-token")).await;
    nurse.subscribe(&["alerts", "pages"]).await;
    make_critical(&js, T, &on_b[0]).await;
    let page = nurse.next_of("page", 15).await;
    let id = page["alert"]["alertId"].as_str().unwrap().to_string();
    assert_eq!(page["alert"]["patientId"], on_b[0].as_str(), "{page}");
    nurse
        .send(serde_json::json!({"type": "ack", "id": "c1", "alertId": id, "reason": "at bedside"}))
        .await;
    let acked = nurse.next_of("result", 10).await;
    assert_eq!(acked["alert"]["state"], "acknowledged", "{acked}");
    assert_eq!(
        a.metric("vigil_cluster_forwarded_commands_total").await,
        1.0
    );
    // engine-b's own view has it too: it applied it.
    let (_, on_b_view) =
        http_json(&b.addr, "GET", "/api/alerts", Some("admin-abc-token"), "").await;
    let held = on_b_view["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["alertId"] == id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(held["state"], "acknowledged");
    // The patient's window, asked on engine-a, comes from engine-b's actor; out of scope it
    // is not found there either.
    let window = format!("/api/patients/{}", on_b[0]);
    let (status, view) = http_json(&a.addr, "GET", &window, Some("nurse-icu3-token"), "").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["patientId"], on_b[0].as_str(), "{view}");
    assert_eq!(view["scores"]["news2"]["total"], 8, "{view}");
    assert_eq!(view["series"]["hr"][0]["value"], 112, "{view}");
    let (status, _) = http_json(&a.addr, "GET", &window, Some("nurse-ward9-token"), "").await;
    assert_eq!(status, 404);

    make_critical(&js, T, &on_b[1]).await;
    let second = loop {
        let f = nurse.next_of("alert", 15).await;
        if f["alert"]["patientId"] == on_b[1].as_str() {
            break f["alert"]["alertId"].as_str().unwrap().to_string();
        }
    };
    let path = format!("/api/alerts/{second}/resolve");
    let (status, body) = http_json(&a.addr, "POST", &path, Some("viewer-icu3-token"), "").await;
    assert_eq!(
        status, 403,
        "the owner's refusal comes back with its code: {body}"
    );
    assert_eq!(body["code"], "FORBIDDEN");
    let (status, body) = http_json(&a.addr, "POST", &path, Some("admin-abc-token"), "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["alert"]["state"], "resolved", "{body}");

    // Every transition was written once, by the owner.
    assert_consistent(&alert_trail(&js).await);

    make_critical(&js, T, &on_b[2]).await;
    let third = loop {
        let f = nurse.next_of("alert", 15).await;
        if f["alert"]["patientId"] == on_b[2].as_str() {
            break f["alert"]["alertId"].as_str().unwrap().to_string();
        }
    };
    b.kill9();
    let path = format!("/api/alerts/{third}/ack");
    let started = Instant::now();
    let (status, body) = http_json(&a.addr, "POST", &path, Some("admin-abc-token"), "").await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "answered within 5 s"
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "UNAVAILABLE");
    assert!(
        body["message"].as_str().unwrap().contains("retry"),
        "{body}"
    );
    // So is a patient view of a partition nobody runs this moment.
    let (status, body) = http_json(&a.addr, "GET", &window, Some("admin-abc-token"), "").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("retry"),
        "{body}"
    );
}

/// Reads frames until `client` has seen a `patient` frame of each of `patients` and the
/// `resource` frame of `resource`, at most `secs`; what is still missing.
async fn missing_frames(
    client: &mut Client,
    patients: &[String],
    resource: &str,
    secs: u64,
) -> BTreeSet<String> {
    let mut missing: BTreeSet<String> = patients.iter().cloned().collect();
    missing.insert(resource.to_string());
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !missing.is_empty() && Instant::now() < deadline {
        let Some(f) = client.next(1).await else {
            continue;
        };
        match f["type"].as_str() {
            Some("patient") => missing.remove(f["patientId"].as_str().unwrap_or_default()),
            Some("resource") => missing.remove(f["resourceId"].as_str().unwrap_or_default()),
            _ => false,
        };
    }
    missing
}

/// One view from any door for patients and resources too: a dashboard on one member gets the
/// `patient` frames of the patients another member scores and the `resource` frames of the
/// clinic another member keeps, live and in the starting picture of a dashboard that connects
/// later; a member that starts afterwards shows them as well (it asks the others for what they
/// hold).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_on_any_member_sees_every_patient_and_resource_of_its_scope() {
    let nats = NatsServer::start();
    let a = start(&nats, "engine-a", 4);
    let b = start(&nats, "engine-b", 4);
    wait_shares(&[&a, &b], &[2, 2]).await;
    let js = jetstream::new(nats.client().await);
    // The member that keeps the clinic's practice partition scores the patients chosen here
    // too; the dashboard connects to the other.
    let clinic = partition_of(&[T], 4);
    let of_a = partitions_of(&js, "engine-a", 2).await;
    let (keeper, door) = if of_a.contains(&clinic) {
        (of_a, &b)
    } else {
        (partitions_of(&js, "engine-b", 2).await, &a)
    };
    let patients: Vec<String> = (0..200)
        .map(|p| format!("patient-{p}"))
        .filter(|p| keeper.contains(&partition_of(&[T, p], 4)))
        .take(3)
        .collect();
    let mut live = Client::connect(&door.ws_url("admin-abc-token")).await;
    live.subscribe(&["patients", "resources"]).await;
    for p in &patients {
        let v = envelope(
            T,
            &format!("{p}-r0"),
            "vitals.observation.v1",
            0,
            vitals_news2_0(p, "icu-3"),
        );
        publish_json(&js, &format!("vitals.{T}.{p}"), &v).await;
    }
    let status = envelope(
        T,
        "prov-77-s1",
        "provider.status.update.v1",
        0,
        serde_json::json!({"providerId": "prov-77", "status": "available", "locationId": "room-3",
                           "effectiveAt": chrono::Utc::now().to_rfc3339()}),
    );
    publish_json(&js, &format!("occupancy.{T}.prov-77"), &status).await;
    let logs = || {
        format!(
            "{}\n----\n{}",
            a.log.lock().unwrap().join("\n"),
            b.log.lock().unwrap().join("\n")
        )
    };
    let missing = missing_frames(&mut live, &patients, "prov-77", 15).await;
    assert!(
        missing.is_empty(),
        "live frames missing: {missing:?}; logs:\n{}",
        logs()
    );

    // A dashboard that connects now gets them in its starting picture.
    let mut later = Client::connect(&door.ws_url("admin-abc-token")).await;
    later.subscribe(&["patients", "resources"]).await;
    let missing = missing_frames(&mut later, &patients, "prov-77", 5).await;
    assert!(missing.is_empty(), "starting picture lacks {missing:?}");
    // Another tenant's token sees none of them.
    let mut other = Client::connect(&door.ws_url("admin-other-token")).await;
    other.subscribe(&["patients", "resources"]).await;
    other.none_of("patient", 1).await;
    other.none_of("resource", 1).await;

    // A member that starts now asks the others for what they hold.
    let c = start(&nats, "engine-c", 4);
    wait_shares(&[&a, &b, &c], &[2, 1, 1]).await;
    let mut third = Client::connect(&c.ws_url("admin-abc-token")).await;
    third.subscribe(&["patients", "resources"]).await;
    let missing = missing_frames(&mut third, &patients, "prov-77", 10).await;
    assert!(missing.is_empty(), "the new member lacks {missing:?}");
    assert!(door.metric("vigil_cluster_relayed_frames_total").await >= 4.0);
    assert_eq!(door.metric("vigil_cluster_relay_errors_total").await, 0.0);
}

/// A member cut off from NATS longer than `failover` gives its partitions up before its
/// claims age out (before another member could take them and fence it), and takes a fair share
/// again once NATS is back; the other member runs every partition meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cut_off_from_nats_gives_its_partitions_up_in_time_and_comes_back() {
    let nats = NatsServer::start();
    let link = common::link::LossyLink::start(&nats.url).await;
    let mut a = Engine::start_on(&link.url, "", &member("engine-a", 4));
    let b = start(&nats, "engine-b", 4);
    wait_shares(&[&a, &b], &[2, 2]).await;
    let js = jetstream::new(nats.client().await);
    let of_a = partitions_of(&js, "engine-a", 2).await;

    let log = a.log.clone();
    let log = move || log.lock().unwrap().join("\n");
    let cut = Instant::now();
    link.down();
    // engine-a gives its claims up within failover (3 s; they age out after it), on its own
    // clock, without hearing from NATS, and its engine stops consuming them.
    let mut gave_up = None;
    while cut.elapsed() < Duration::from_secs(10) {
        if log().contains("lost partition") {
            gave_up = Some(cut.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gave_up = gave_up.unwrap_or_else(|| panic!("engine-a kept its partitions: {}", log()));
    assert!(
        gave_up < Duration::from_secs(3),
        "gave up after {gave_up:?}, not before its claims aged out (3 s): {}",
        log()
    );
    let mut owned = 2.0;
    for _ in 0..150 {
        owned = a.metric("vigil_cluster_partitions_owned").await;
        if owned == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(owned, 0.0, "engine-a still runs partitions: {}", log());
    // engine-b takes them once they age out.
    wait_shares(&[&b], &[4]).await;
    assert_eq!(partitions_of(&js, "engine-b", 4).await.len(), 4);
    assert!(of_a.is_subset(&partitions_of(&js, "engine-b", 4).await));

    link.up();
    wait_shares(&[&a, &b], &[2, 2]).await;
    assert!(a.wait_exit(0).is_none(), "engine-a stayed up: {}", log());
}

/// The cluster bucket answering "no responders" (its stream has no leader, as while NATS elects
/// one after losing a node; here the stream is gone) takes no partition from its member, past
/// three quarters of failover and past failover: nobody can write a claim then. The engine
/// runs on and alerts. When there is a bucket again, the member's claims fail on their
/// revisions, and it joins again and claims afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_without_a_leader_takes_no_partition_from_its_member() {
    let nats = NatsServer::start();
    let a = start(&nats, "engine-a", 4);
    wait_shares(&[&a], &[4]).await;
    let js = jetstream::new(nats.client().await);
    let log = a.log.clone();
    let log = move || log.lock().unwrap().join("\n");

    js.delete_stream("KV_VIGIL_CLUSTER").await.unwrap();
    // Twice the 3 s failover: before, the member gave every claim up at 2.25 s.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        log().contains("the cluster bucket has no leader"),
        "{}",
        log()
    );
    assert!(!log().contains("lost partition"), "{}", log());
    assert_eq!(a.metric("vigil_cluster_partitions_owned").await, 4.0);
    make_critical(&js, T, "no-bucket").await;
    let started = Instant::now();
    while !alert_trail(&js)
        .await
        .values()
        .any(|s| s[0]["rule"] == "news2.high" && s[0]["patientId"] == "no-bucket")
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no alert while the bucket had no leader: {}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A bucket again, empty: the old claims' revisions are gone.
    js.create_key_value(jetstream::kv::Config {
        bucket: "VIGIL_CLUSTER".into(),
        history: 1,
        max_age: Duration::from_secs(3),
        ..Default::default()
    })
    .await
    .unwrap();
    let started = Instant::now();
    while !log().contains("joining again") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "engine-a did not notice the new bucket: {}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_shares(&[&a], &[4]).await;
    assert_eq!(partitions_of(&js, "engine-a", 4).await.len(), 4);
    assert!(!log().contains("panicked"), "{}", log());
}
