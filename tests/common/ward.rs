//! A ward of monitors streaming vitals through an outage, and the accounting afterwards:
//! every reading stored once, applied once and acknowledged; every alert opened exactly once,
//! with a gap-free audit trail whose last entry is the engine's current state.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use serde_json::Value;

use super::{
    Engine, all_messages, envelope, http_get, list_alerts, vitals_news2_0, vitals_news2_8,
};

pub const T: &str = "clinic-abc";

/// `patients` monitors each sending `rounds` readings (a round every 60 ms); the patients
/// below `deteriorating` go from NEWS2 0 to 8, the even ones from round `turn.0` and the odd
/// ones from round `turn.1`.
#[derive(Debug, Clone, Copy)]
pub struct Ward {
    pub patients: usize,
    pub rounds: usize,
    pub deteriorating: usize,
    pub turn: (usize, usize),
}

/// A monitor gateway's publish: retried until JetStream stores it, with `Nats-Msg-Id` so a retry
/// whose first attempt was stored is not stored twice.
pub async fn publish_until_stored(js: &jetstream::Context, subject: &str, id: &str, body: &Value) {
    let payload = serde_json::to_vec(body).unwrap();
    loop {
        let mut h = async_nats::HeaderMap::new();
        h.insert("Nats-Msg-Id", id);
        let sent = js
            .publish_with_headers(subject.to_string(), h, payload.clone().into())
            .await;
        if let Ok(ack) = sent
            && ack.await.is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Ward {
    pub fn total(&self) -> u64 {
        (self.patients * self.rounds) as u64
    }

    fn turn_of(&self, p: usize) -> usize {
        if p % 2 == 0 { self.turn.0 } else { self.turn.1 }
    }

    /// Streams every round, each reading retried until stored.
    pub async fn monitors(self, js: jetstream::Context) {
        for round in 0..self.rounds {
            for p in 0..self.patients {
                let patient = format!("patient-{p}");
                let data = if p < self.deteriorating && round >= self.turn_of(p) {
                    vitals_news2_8(&patient, "icu-3")
                } else {
                    vitals_news2_0(&patient, "icu-3")
                };
                let id = format!("{patient}-r{round}");
                let v = envelope(T, &id, "vitals.observation.v1", 0, data);
                publish_until_stored(&js, &format!("vitals.{T}.{patient}"), &id, &v).await;
            }
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    }

    /// Waits for the engines to drain `VITALS` (consumer `vigil-test`, or one per partition in
    /// a cluster), then checks that nothing was lost or doubled: each reading stored once and
    /// applied once by one engine, and what [`Ward::assert_alerts_once`] checks.
    pub async fn assert_nothing_lost(&self, engines: &[&Engine], js: &jetstream::Context) {
        self.assert_alerts_once(engines, js).await;
        let mut ingested = 0.0;
        for engine in engines {
            ingested += engine
                .metric("vigil_events_ingested_total{type=\"vitals.observation.v1\"}")
                .await;
        }
        assert_eq!(
            ingested,
            self.total() as f64,
            "every reading applied exactly once; logs:\n{}",
            logs(engines)
        );
    }

    /// Waits for the engines to drain `VITALS`, then checks the outputs, whatever happened to
    /// the deliveries on the way (an engine killed mid-stream applies some readings twice: once
    /// before the crash, unacknowledged, and once redelivered): each reading stored once,
    /// nothing dead-lettered, each deteriorating patient's `news2.high` and `news2.trend`
    /// opened once and no other alert, every alert's transitions stored once and in order, the
    /// last of them the current state an engine holds.
    pub async fn assert_alerts_once(&self, engines: &[&Engine], js: &jetstream::Context) {
        self.await_drained(engines, js).await;
        let mut dlq = js.get_stream("DLQ").await.unwrap();
        let dead = dlq.info().await.unwrap().state.messages;
        assert_eq!(dead, 0, "nothing dead-lettered");
        let mut current: BTreeMap<String, Value> = BTreeMap::new();
        for engine in engines {
            engine.wait_ready().await;
            let (_, metrics) = http_get(&engine.addr, "/metrics").await;
            for line in metrics
                .lines()
                .filter(|l| l.starts_with("vigil_dlq_total{"))
            {
                assert!(line.ends_with(" 0"), "nothing dead-lettered: {line}");
            }
            for a in list_alerts(&engine.addr, "admin-abc-token").await {
                let id = a["alertId"].as_str().unwrap().to_string();
                let newer = current
                    .get(&id)
                    .is_none_or(|held| held["version"].as_u64() < a["version"].as_u64());
                if newer {
                    current.insert(id, a);
                }
            }
        }

        // Every alert transition is on ALERTS once, in order, and the last is the current state.
        let trail = alert_trail(js).await;
        // Per patient, each rule's alert opened once (the risk family ends at news2.high; the
        // rise from 0 to 8 is also a news2.trend), whatever the outage did to deliveries.
        let mut opened: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for steps in trail.values() {
            let patient = steps[0]["patientId"].as_str().unwrap().to_string();
            let rule = steps.last().unwrap()["rule"].as_str().unwrap().to_string();
            assert!(
                opened
                    .entry(patient.clone())
                    .or_default()
                    .insert(rule.clone()),
                "{patient} has two {rule} alerts"
            );
        }
        let expected: BTreeMap<String, BTreeSet<String>> = (0..self.deteriorating)
            .map(|p| {
                let rules = ["news2.high", "news2.trend"].map(String::from);
                (format!("patient-{p}"), rules.into())
            })
            .collect();
        assert_eq!(
            opened, expected,
            "exactly the deteriorating patients' alerts"
        );
        for (id, steps) in &trail {
            assert_in_order(id, steps);
            let now = &current[id];
            let last = steps.last().unwrap();
            assert_eq!(last["version"], now["version"], "alert {id}");
            assert_eq!(last["state"], now["state"], "alert {id}");
        }
    }

    /// Each reading stored once, and the engines' durable consumers (`vigil-test`, or one per
    /// partition in a cluster) with nothing pending or unacknowledged; at most a minute.
    async fn await_drained(&self, engines: &[&Engine], js: &jetstream::Context) {
        let mut vitals = js.get_stream("VITALS").await.unwrap();
        assert_eq!(
            vitals.info().await.unwrap().state.messages,
            self.total(),
            "each reading stored once"
        );
        for _ in 0..600 {
            let mut names = vitals.consumer_names();
            let mut all = 0;
            let mut done = 0;
            while let Some(Ok(name)) = names.next().await {
                // The engines' durable consumers; recovery's ordered readers come and go.
                if !name.starts_with("vigil-test") {
                    continue;
                }
                all += 1;
                // Right after a NATS node is lost, a consumer may be electing its leader: ask
                // again at the next round instead of failing.
                let Ok(mut consumer) = vitals
                    .get_consumer::<jetstream::consumer::pull::Config>(&name)
                    .await
                else {
                    continue;
                };
                if let Ok(info) = consumer.info().await
                    && info.num_pending == 0
                    && info.num_ack_pending == 0
                {
                    done += 1;
                }
            }
            if all > 0 && done == all {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the engines did not resume consuming; logs:\n{}",
            logs(engines)
        );
    }
}

/// The engines' logs, one after the other.
fn logs(engines: &[&Engine]) -> String {
    engines
        .iter()
        .map(|e| e.log.lock().unwrap().join("\n"))
        .collect::<Vec<_>>()
        .join("\n----\n")
}

/// Every alert's transitions on `ALERTS`, by alert id, in stored order.
pub async fn alert_trail(js: &jetstream::Context) -> BTreeMap<String, Vec<Value>> {
    let mut trail: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for m in all_messages(js, "ALERTS").await {
        let alert = m["data"].clone();
        trail
            .entry(alert["alertId"].as_str().unwrap().to_string())
            .or_default()
            .push(alert);
    }
    trail
}

/// One alert's transitions (`steps`, in stored order): versions 1, 2, 3, ..., each stored once,
/// all of them of the one opening (`openedAt` never moves: an engine that opened the alert
/// again would write another).
pub fn assert_in_order(id: &str, steps: &[Value]) {
    for step in steps {
        assert_eq!(
            step["openedAt"], steps[0]["openedAt"],
            "alert {id}: one opening, {steps:?}"
        );
    }
    let versions: Vec<u64> = steps
        .iter()
        .map(|a| a["version"].as_u64().unwrap())
        .collect();
    assert_eq!(
        versions,
        (1..=versions.len() as u64).collect::<Vec<_>>(),
        "alert {id}: every transition stored once, in order"
    );
}
