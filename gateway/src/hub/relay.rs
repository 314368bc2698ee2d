//! Patient and resource frames shared between cluster members (docs/cluster.md, "One view
//! from any door"). Each member scores only the patients and keeps only the resources of its
//! own partitions; a dashboard connected to it must still see every patient and resource of its
//! scope. So a member relays the frames it makes to the others, coalesced like the
//! connections' patient flushes, and answers a member that starts with every frame it holds.
//!
//! The hub only encodes and decodes: the cluster wiring carries the messages over NATS. A
//! relayed frame is stored as its author wrote it (the JSON is not made again) and replaces the
//! one held only when it is not older, so frames of a patient whose partition moved settle on
//! the newest whichever member sent them and in whatever order they came.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use vigil_engine::Timestamp;

use super::Hub;
use super::store::{PatientFrame, PatientKey, ResourceFrame};

/// Frames per relay message: about 300 bytes each, far below NATS's 1 MiB payload limit.
const FRAMES_PER_MESSAGE: usize = 500;

/// One relay message: patient and resource frames with what the hub keys and scopes them by.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Frames<'a> {
    #[serde(borrow, default)]
    patients: Vec<RelayedPatient<'a>>,
    #[serde(borrow, default)]
    resources: Vec<RelayedResource<'a>>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RelayedPatient<'a> {
    #[serde(borrow)]
    tenant: Cow<'a, str>,
    #[serde(borrow)]
    patient_id: Cow<'a, str>,
    #[serde(borrow)]
    unit_id: Cow<'a, str>,
    at: Timestamp,
    /// The `patient` frame as its author sends it to its own connections.
    #[serde(borrow)]
    frame: &'a RawValue,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RelayedResource<'a> {
    #[serde(borrow)]
    tenant: Cow<'a, str>,
    #[serde(borrow, default)]
    unit: Option<Cow<'a, str>>,
    #[serde(borrow)]
    key: Cow<'a, str>,
    at: Timestamp,
    #[serde(borrow)]
    frame: &'a RawValue,
}

/// What a relay message held that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not a frame relay message: {0}")]
pub struct RelayError(#[from] serde_json::Error);

/// Frames this process made since the last relay, latest of each.
#[derive(Default)]
pub(super) struct Outgoing {
    patients: rustc_hash::FxHashMap<PatientKey, Arc<PatientFrame>>,
    resources: std::collections::HashMap<(String, String), Arc<ResourceFrame>>,
}

impl Outgoing {
    pub(super) fn patient(&mut self, key: PatientKey, frame: Arc<PatientFrame>) {
        self.patients.insert(key, frame);
    }

    pub(super) fn resource(&mut self, key: (String, String), frame: Arc<ResourceFrame>) {
        self.resources.insert(key, frame);
    }
}

/// Encodes frames into messages of at most [`FRAMES_PER_MESSAGE`] frames each.
fn encode<'a>(
    patients: impl Iterator<Item = &'a PatientFrame>,
    resources: impl Iterator<Item = &'a ResourceFrame>,
) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut current = Frames::default();
    let mut flush = |current: &mut Frames<'_>, force: bool| {
        let n = current.patients.len() + current.resources.len();
        if n >= FRAMES_PER_MESSAGE || (force && n > 0) {
            if let Ok(bytes) = serde_json::to_vec(&*current) {
                messages.push(bytes);
            }
            *current = Frames::default();
        }
    };
    for f in patients {
        // A frame this process wrote is valid JSON; one that is not is left out, not relayed.
        let Ok(frame) = serde_json::from_str::<&RawValue>(f.json()) else {
            continue;
        };
        current.patients.push(RelayedPatient {
            tenant: Cow::Borrowed(&f.tenant),
            patient_id: Cow::Borrowed(&f.patient_id),
            unit_id: Cow::Borrowed(&f.unit_id),
            at: f.at,
            frame,
        });
        flush(&mut current, false);
    }
    for f in resources {
        let Ok(frame) = serde_json::from_str::<&RawValue>(&f.json) else {
            continue;
        };
        current.resources.push(RelayedResource {
            tenant: Cow::Borrowed(&f.tenant),
            unit: f.unit.as_deref().map(Cow::Borrowed),
            key: Cow::Borrowed(&f.key),
            at: f.at,
            frame,
        });
        flush(&mut current, false);
    }
    flush(&mut current, true);
    messages
}

impl Hub {
    /// From now on, every frame this process makes is kept for [`Hub::take_relay`] (a cluster
    /// member relays its frames to the others).
    pub fn start_relaying(&self) {
        self.relaying.store(true, Relaxed);
    }

    /// Keeps a frame this process made for the next relay, while relaying.
    pub(super) fn relay_out(&self, keep: impl FnOnce(&mut Outgoing)) {
        if self.relaying.load(Relaxed)
            && let Ok(mut out) = self.relay.lock()
        {
            keep(&mut out);
        }
    }

    /// The frames this process made since the last call, as relay messages.
    pub fn take_relay(&self) -> Vec<Vec<u8>> {
        let Ok(out) = self.relay.lock().map(|mut out| std::mem::take(&mut *out)) else {
            return Vec::new();
        };
        encode(
            out.patients.values().map(|f| &**f),
            out.resources.values().map(|f| &**f),
        )
    }

    /// Every frame this process made that it still holds, as relay messages: the answer to a
    /// member that starts and has seen none of them.
    pub fn local_frames(&self) -> Vec<Vec<u8>> {
        let patients: Vec<Arc<PatientFrame>> = self
            .patients
            .iter()
            .filter(|f| f.is_local())
            .map(|f| f.value().clone())
            .collect();
        let resources: Vec<Arc<ResourceFrame>> = self
            .resources
            .iter()
            .filter(|f| !f.relayed)
            .map(|f| f.value().clone())
            .collect();
        encode(
            patients.iter().map(|f| &**f),
            resources.iter().map(|f| &**f),
        )
    }

    /// Takes another member's relay message: each frame not older than the one held replaces
    /// it and goes to the connections like a frame of this process's own. Returns how many
    /// frames were taken.
    ///
    /// # Errors
    /// [`RelayError`] when the message is not a relay message; nothing of it is taken.
    pub fn accept_relayed(&self, payload: &[u8]) -> Result<usize, RelayError> {
        let frames: Frames<'_> = serde_json::from_slice(payload)?;
        let mut taken = 0;
        for p in frames.patients {
            let key: PatientKey = (p.tenant.into(), p.patient_id.into());
            if self.patients.get(&key).is_some_and(|held| held.at > p.at) {
                continue;
            }
            let frame = Arc::new(PatientFrame::relayed(
                key.0.clone(),
                key.1.clone(),
                p.unit_id.into(),
                p.at,
                p.frame.get().to_string(),
            ));
            self.store_patient(key, frame);
            taken += 1;
        }
        for r in frames.resources {
            let key = (r.tenant.to_string(), r.key.to_string());
            if self.resources.get(&key).is_some_and(|held| held.at > r.at) {
                continue;
            }
            let frame = Arc::new(ResourceFrame {
                tenant: key.0.clone(),
                unit: r.unit.map(String::from),
                key: key.1.clone(),
                at: r.at,
                relayed: true,
                json: r.frame.get().to_string(),
            });
            self.store_resource(key, frame);
            taken += 1;
        }
        self.metrics.relayed_frames.fetch_add(taken as u64, Relaxed);
        Ok(taken)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use vigil_engine::PatientStatus;

    fn hub() -> Arc<Hub> {
        let text =
            "[[auth.tokens]]\ntoken = \"admin-token\"\ntenant = \"clinic-abc\"\nrole = \"admin\"\n";
        let cfg = vigil_config::Config::from_toml(text, "test").unwrap();
        Hub::new(&cfg, Vec::new())
    }

    fn status(patient: &str, at_ms: i64, news2: u8) -> PatientStatus {
        crate::hub::store::status_for_tests("clinic-abc", patient, at_ms, news2)
    }

    fn held_json(hub: &Hub, patient: &str) -> serde_json::Value {
        let key: PatientKey = ("clinic-abc".into(), patient.into());
        serde_json::from_str(hub.patients.get(&key).unwrap().json()).unwrap()
    }

    /// The drain's path: a frame nothing else holds is rescored where it lies (its JSON made
    /// again on demand); one a batch, a connection's flush or the relay can see is replaced.
    #[test]
    fn a_frame_nobody_holds_is_updated_where_it_lies() {
        let key: PatientKey = ("clinic-abc".into(), "patient-1".into());
        let h = hub();
        h.publish_patient(status("patient-1", 1_000, 3));
        let first = Arc::as_ptr(&*h.patients.get(&key).unwrap());
        assert_eq!(held_json(&h, "patient-1")["news2"], 3);
        h.publish_patient(status("patient-1", 2_000, 9));
        assert_eq!(Arc::as_ptr(&*h.patients.get(&key).unwrap()), first);
        assert_eq!(
            held_json(&h, "patient-1")["news2"],
            9,
            "the JSON is made again"
        );
        assert_eq!(
            h.patients.get(&key).unwrap().at,
            Timestamp::from_millis(2_000)
        );
        // A frame someone holds (a flushed batch, a snapshot) keeps what it showed.
        let held = h.patients.get(&key).unwrap().clone();
        h.publish_patient(status("patient-1", 3_000, 5));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(held.json()).unwrap()["news2"],
            9
        );
        assert_eq!(held_json(&h, "patient-1")["news2"], 5);
        drop(held);
        // With a connection subscribed, every update goes to its next flush.
        let mut rx = h.patient_tx.subscribe();
        h.publish_patient(status("patient-1", 4_000, 6));
        h.flush_patients();
        let batch = rx.try_recv().unwrap();
        let sent: serde_json::Value = serde_json::from_str(batch[0].json()).unwrap();
        assert_eq!(sent["news2"], 6);
        // A relayed frame is replaced by this process's own.
        let there = hub();
        there.start_relaying();
        there.publish_patient(status("patient-1", 5_000, 2));
        let relayed = hub();
        relayed.accept_relayed(&there.take_relay()[0]).unwrap();
        relayed.publish_patient(status("patient-1", 6_000, 4));
        assert!(relayed.patients.get(&key).unwrap().is_local());
        assert_eq!(held_json(&relayed, "patient-1")["news2"], 4);
    }

    #[test]
    fn frames_made_here_reach_another_member_as_they_were_written() {
        let (here, there) = (hub(), hub());
        here.start_relaying();
        here.publish_patient(status("patient-1", 1_000, 7));
        let messages = here.take_relay();
        assert_eq!(messages.len(), 1);
        assert!(here.take_relay().is_empty(), "taken once");
        assert_eq!(there.accept_relayed(&messages[0]).unwrap(), 1);
        assert_eq!(
            held_json(&there, "patient-1"),
            held_json(&here, "patient-1")
        );
        assert_eq!(held_json(&there, "patient-1")["news2"], 7);
        // A relayed frame is not relayed again, and not answered to a starting member.
        there.start_relaying();
        assert!(there.take_relay().is_empty());
        assert!(there.local_frames().is_empty());
    }

    #[test]
    fn an_older_frame_never_replaces_a_newer_one() {
        let (old_owner, new_owner, door) = (hub(), hub(), hub());
        for h in [&old_owner, &new_owner] {
            h.start_relaying();
        }
        old_owner.publish_patient(status("patient-1", 1_000, 3));
        new_owner.publish_patient(status("patient-1", 2_000, 9));
        let newer = new_owner.take_relay();
        let older = old_owner.take_relay();
        door.accept_relayed(&newer[0]).unwrap();
        assert_eq!(door.accept_relayed(&older[0]).unwrap(), 0);
        assert_eq!(held_json(&door, "patient-1")["news2"], 9);
    }

    #[test]
    fn many_frames_are_split_into_messages_of_bounded_size() {
        let (here, there) = (hub(), hub());
        for i in 0..(FRAMES_PER_MESSAGE + 1) {
            here.publish_patient(status(&format!("patient-{i}"), 1_000, 1));
        }
        let all = here.local_frames();
        assert_eq!(all.len(), 2);
        let taken: usize = all.iter().map(|m| there.accept_relayed(m).unwrap()).sum();
        assert_eq!(taken, FRAMES_PER_MESSAGE + 1);
        assert_eq!(there.metrics.relayed_frames.load(Relaxed), taken as u64);
    }

    #[test]
    fn a_message_that_is_no_relay_is_refused_whole() {
        let there = hub();
        for bad in [
            &b"not json"[..],
            br#"{"patients":[{"tenant":"t"}]}"#,
            br#"{"patients":[],"extra":1}"#,
            br#"{"patients":[{"tenant":"t","patientId":"p","unitId":"u","at":"yesterday","frame":{}}]}"#,
        ] {
            assert!(there.accept_relayed(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(there.patients.is_empty());
    }
}
