//! The outbox: publishes engine outputs (alert transitions, dead letters) in order, many in
//! flight, and holds each message's batch receipt until the stream has stored it, so the input
//! batch that caused it is acknowledged only after its outputs are durable.
//!
//! A publish that fails is retried with backoff until it is stored: outputs are never dropped.
//! The queue in front is bounded; callers that find it full wait (see `vigil-actors`).
//!
//! An alert's transitions are fenced: each is published with
//! `Nats-Expected-Last-Subject-Sequence` set to the sequence of the alert's last transition this
//! engine stored (or recovered), so `ALERTS` refuses it when another engine has written the
//! alert since. A paused or disconnected engine that comes back after its work moved cannot
//! write over a newer state; the refusal ends the publisher with [`OutboxError::Fenced`], and
//! the engine stops (a supervisor restarts it, and recovery reads the newer state).
//!
//! A message that can never be published (a header or subject NATS cannot carry: input
//! validation should have made that impossible) ends the publisher with
//! [`OutboxError::Unpublishable`] instead of retrying forever. A message dropped before it was
//! stored, for whatever reason (the publisher ended, the queue was closed), fails its batch
//! receipt, so the input that caused it is never acknowledged: NATS redelivers it to the next
//! engine process.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::bus::{Bus, BusError, Fault, PendingPublish};
use crate::receipt::{Receipt, fail};

/// One message to publish.
pub struct OutMessage {
    pub subject: String,
    pub headers: Vec<(&'static str, String)>,
    pub payload: Bytes,
    /// Dropped once the message is stored.
    pub receipt: Option<Receipt>,
    pub order: Order,
}

/// How a message is ordered against the others of its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Only needs to be stored (dead letters).
    Any,
    /// Stored after every earlier message of its subject, even across a lost connection (flow
    /// updates).
    Subject,
    /// As [`Order::Subject`], and only right after the subject's last message this engine
    /// stored or recovered (an alert's transitions): `first` for an alert's first transition
    /// (its subject must be empty), `last` for its final one (nothing follows it).
    Fenced { first: bool, last: bool },
}

impl Order {
    fn ordered(self) -> bool {
        self != Order::Any
    }
}

impl OutMessage {
    /// The message is durably stored: its part of the batch is done.
    fn stored(mut self) {
        self.receipt = None;
    }
}

impl Drop for OutMessage {
    /// Dropped while still holding its receipt: never stored, so its batch must not be
    /// acknowledged.
    fn drop(&mut self) {
        if let Some(receipt) = &self.receipt {
            fail(receipt);
        }
    }
}

/// Why the publisher stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// A message NATS can never accept; retrying cannot help. An engine bug: input validation
    /// must keep such text out of subjects and headers.
    #[error("unpublishable output on {subject}: {reason}")]
    Unpublishable { subject: String, reason: String },
    /// `ALERTS` refused an alert's transition: another engine wrote the alert since this one
    /// last did. This engine's view of its work is stale; it must stop writing.
    #[error("fenced: {0}")]
    Fenced(String),
}

/// What the publisher is asked to do, in queue order.
enum Job {
    Publish(OutMessage),
    /// Subjects and the sequence of their last stored message, as recovery read them.
    Follow(Vec<(String, u64)>),
    /// Answered once every message queued before it is stored.
    Settled(tokio::sync::oneshot::Sender<()>),
}

/// Handle for queueing outputs; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Job>,
}

impl Outbox {
    /// Starts the publisher task. It ends with `Ok` once every `Outbox` clone is dropped and the
    /// queue is drained and stored; with an error when a message can never be published.
    pub fn start(
        bus: Bus,
        capacity: usize,
        in_flight: usize,
    ) -> (Outbox, JoinHandle<Result<(), OutboxError>>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let task = tokio::spawn(publish_loop(bus, rx, in_flight.max(1)));
        (Outbox { tx }, task)
    }

    /// Queues without waiting; gives the message back when the queue is full.
    ///
    /// # Errors
    /// The message itself, when the queue is full or the publisher has stopped.
    #[allow(clippy::result_large_err)]
    pub fn try_send(&self, m: OutMessage) -> Result<(), OutMessage> {
        match self.tx.try_send(Job::Publish(m)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job)) => {
                match job {
                    Job::Publish(m) => Err(m),
                    // Only the publish just sent can come back.
                    Job::Follow(_) | Job::Settled(_) => Ok(()),
                }
            }
        }
    }

    /// Queues, waiting for room. When the publisher has stopped the message is dropped, which
    /// fails its batch (never acknowledged, redelivered after a restart).
    pub async fn send(&self, m: OutMessage) {
        if let Err(mpsc::error::SendError(Job::Publish(m))) = self.tx.send(Job::Publish(m)).await {
            tracing::error!(subject = %m.subject, "outbox closed; output not published, its input stays unacknowledged");
        }
    }

    /// Waits until every message queued before this call is stored (a cluster member hands a
    /// partition over only once everything its owners produced is in the streams). Returns at
    /// once when the publisher has stopped: what it did not store fails its batch.
    pub async fn settled(&self) {
        let (done, stored) = tokio::sync::oneshot::channel();
        if self.tx.send(Job::Settled(done)).await.is_ok() {
            let _ = stored.await;
        }
    }

    /// The fences of recovered alerts: each subject's next transition must follow the
    /// sequence given. Queued like a publish, so it applies to every transition sent after it.
    pub async fn follow(&self, subjects: Vec<(String, u64)>) {
        let _ = self.tx.send(Job::Follow(subjects)).await;
    }
}

/// The header that fences a publish on its subject's last message.
const EXPECTED_LAST: &str = "Nats-Expected-Last-Subject-Sequence";

async fn publish_loop(
    bus: Bus,
    mut rx: mpsc::Receiver<Job>,
    in_flight: usize,
) -> Result<(), OutboxError> {
    let mut pending = FuturesOrdered::new();
    // Subjects with an ordered message in flight. An ordered message waits until the one before
    // it on its subject is stored: if a connection drops with both in flight, the first can be
    // lost while the second reaches the server, and its retry would then land after it. An
    // alert's subject must hold its transitions in order (its history, and recovery's
    // last-per-subject read, rely on it).
    let mut subjects: HashSet<String> = HashSet::new();
    // Each fenced subject's last stored sequence; forgotten after its last transition.
    let mut fences: HashMap<String, u64> = HashMap::new();
    let mut open = true;
    while open || !pending.is_empty() {
        tokio::select! {
            job = rx.recv(), if open && pending.len() < in_flight => match job {
                Some(Job::Follow(known)) => fences.extend(known),
                Some(Job::Settled(done)) => {
                    while let Some(stored) = pending.next().await {
                        match stored {
                            Ok(stored) => settle(stored, &mut subjects, &mut fences),
                            Err(fenced) => return Err(fenced),
                        }
                    }
                    let _ = done.send(());
                }
                Some(Job::Publish(mut m)) => {
                    while m.order.ordered() && subjects.contains(&m.subject) {
                        match pending.next().await {
                            Some(Ok(stored)) => settle(stored, &mut subjects, &mut fences),
                            Some(Err(fenced)) => return Err(fenced),
                            None => break,
                        };
                    }
                    if m.order.ordered() {
                        subjects.insert(m.subject.clone());
                    }
                    if let Order::Fenced { first, .. } = m.order {
                        let expected = if first { Some(0) } else { fences.get(&m.subject).copied() };
                        if let Some(seq) = expected {
                            m.headers.push((EXPECTED_LAST, seq.to_string()));
                        }
                    }
                    let sent = send_with_retry(&bus, &m).await?;
                    pending.push_back(store(bus.clone(), m, sent));
                }
                None => open = false,
            },
            Some(stored) = pending.next(), if !pending.is_empty() => match stored {
                Ok(stored) => settle(stored, &mut subjects, &mut fences),
                Err(fenced) => return Err(fenced),
            }
        }
    }
    Ok(())
}

/// Waits until `m` (already `sent`) is stored, sending it again with backoff while it is not;
/// what it frees once stored. `Err` when `ALERTS` fenced it; `Ok(None)` when it could not be
/// sent again (dropped: its batch fails).
async fn store(bus: Bus, m: OutMessage, mut sent: PendingPublish) -> Result<Stored, OutboxError> {
    let mut backoff = Duration::from_millis(100);
    let seq = loop {
        let failure = match sent.stored().await {
            Ok(seq) => break seq,
            // NATS checks the fence before it recognises a retry as a duplicate: a retry whose
            // first attempt was stored (its acknowledgement lost) is refused too. The subject's
            // last message tells: ours, or another engine's.
            Err(BusError::Fenced { subject, reason }) => match stored_already(&bus, &m).await {
                Ok(Some(seq)) => break Some(seq),
                Ok(None) => {
                    tracing::error!(%subject, %reason, "another engine wrote this alert since: this engine's view is stale, the outbox stops");
                    return Err(OutboxError::Fenced(format!("{subject}: {reason}")));
                }
                // Not known yet whether the first attempt was stored: send it again and see.
                Err(e) => e,
            },
            Err(e) => e,
        };
        tracing::warn!(error = %failure, "publish not stored; sending again");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
        // Sent once already, so it is publishable; the same `Nats-Msg-Id`, so a first attempt
        // that was stored is not stored twice.
        match send_with_retry(&bus, &m).await {
            Ok(again) => sent = again,
            Err(_) => return Ok(None),
        }
    };
    let stored = m.order.ordered().then(|| (m.subject.clone(), m.order, seq));
    m.stored();
    Ok(stored)
}

/// The stream sequence of `m` when the last message on its subject is `m` itself (the same
/// `Nats-Msg-Id`): a first attempt that was stored.
async fn stored_already(bus: &Bus, m: &OutMessage) -> Result<Option<u64>, BusError> {
    let id = m
        .headers
        .iter()
        .find(|(k, _)| *k == "Nats-Msg-Id")
        .map(|(_, v)| v.as_str());
    Ok(match bus.last_alert_message(&m.subject).await? {
        Some((seq, Some(last))) if Some(last.as_str()) == id => Some(seq),
        _ => None,
    })
}

/// What a stored ordered message frees: the next message of its subject, and (fenced) the
/// sequence the next transition must follow.
type Stored = Option<(String, Order, Option<u64>)>;

fn settle(stored: Stored, subjects: &mut HashSet<String>, fences: &mut HashMap<String, u64>) {
    let Some((subject, order, seq)) = stored else {
        return;
    };
    if let Order::Fenced { last, .. } = order {
        match seq {
            Some(seq) if !last => {
                fences.insert(subject.clone(), seq);
            }
            _ => {
                fences.remove(&subject);
            }
        }
    }
    subjects.remove(&subject);
}

/// Sends `m`, retrying while the bus cannot take it; an error only when it never can.
async fn send_with_retry(
    bus: &Bus,
    m: &OutMessage,
) -> Result<crate::bus::PendingPublish, OutboxError> {
    let mut backoff = Duration::from_millis(100);
    loop {
        match bus
            .send(m.subject.clone(), m.headers.clone(), m.payload.clone())
            .await
        {
            Ok(p) => return Ok(p),
            Err(e) if e.fault() == Fault::Permanent => {
                let (subject, reason) = (m.subject.clone(), e.to_string());
                tracing::error!(%subject, %reason, "output can never be published; the outbox stops");
                return Err(OutboxError::Unpublishable { subject, reason });
            }
            Err(e) => {
                tracing::warn!(error = %e, "publish failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::batch_receipt;

    fn message(subject: &str, receipt: Receipt) -> OutMessage {
        OutMessage {
            subject: subject.into(),
            headers: vec![("Content-Type", "application/json".into())],
            payload: Bytes::from_static(b"{}"),
            receipt: Some(receipt),
            order: Order::Fenced {
                first: true,
                last: false,
            },
        }
    }

    /// `settled` answers only once every message queued before it is stored: their receipts
    /// are gone by then.
    #[tokio::test]
    async fn settled_waits_for_everything_queued_before_it() {
        let (outbox, task) = Outbox::start(Bus::embedded(16), 64, 4);
        let mut waits = Vec::new();
        for i in 0..20 {
            let (receipt, done) = batch_receipt();
            outbox
                .send(message(&format!("alerts.t.a{i}"), receipt))
                .await;
            waits.push(done);
        }
        outbox.settled().await;
        for done in &mut waits {
            assert_eq!(done.try_recv(), Ok(()), "stored before settled answered");
        }
        drop(outbox);
        assert!(matches!(task.await, Ok(Ok(()))), "the outbox ends cleanly");
    }

    /// A stored transition moves its alert's fence to its sequence; the last one (resolved)
    /// and one stored without a sequence (the embedded bus) forget it; other orders never
    /// touch the fences; each frees its subject for the next message.
    #[test]
    fn settling_a_stored_message_moves_or_forgets_its_fence() {
        let mut subjects = HashSet::new();
        let mut fences = HashMap::new();
        let fenced = |last| Order::Fenced { first: false, last };
        let mut store = |subject: &str, order, seq| {
            subjects.insert(subject.to_string());
            settle(
                Some((subject.to_string(), order, seq)),
                &mut subjects,
                &mut fences,
            );
            assert!(subjects.is_empty(), "{subject} freed");
            fences.clone()
        };
        assert_eq!(store("alerts.t.a", fenced(false), Some(7))["alerts.t.a"], 7);
        assert_eq!(store("alerts.t.a", fenced(false), Some(9))["alerts.t.a"], 9);
        assert_eq!(store("flow.t.p", Order::Subject, Some(10)).len(), 1);
        assert!(store("alerts.t.a", fenced(true), Some(11)).is_empty());
        store("alerts.t.b", fenced(false), Some(12));
        assert!(store("alerts.t.b", fenced(false), None).is_empty());
    }

    #[tokio::test]
    async fn a_stored_output_completes_its_batch() {
        let (outbox, task) = Outbox::start(Bus::embedded(4), 4, 4);
        let (receipt, done) = batch_receipt();
        outbox.send(message("alerts.t.alert-1", receipt)).await;
        assert!(done.await.is_ok());
        drop(outbox);
        assert!(task.await.expect("joined").is_ok());
    }

    #[tokio::test]
    async fn an_unpublishable_output_stops_the_outbox_and_fails_its_batch() {
        let (outbox, task) = Outbox::start(Bus::embedded(4), 4, 4);
        let (receipt, done) = batch_receipt();
        outbox.send(message("alerts.t.bad id", receipt)).await;
        let ended = task.await.expect("joined");
        assert!(
            matches!(ended, Err(OutboxError::Unpublishable { .. })),
            "{ended:?}"
        );
        assert!(done.await.is_err(), "its input must never be acknowledged");
        // Later outputs find the outbox closed: their batches fail too, never look done.
        let (receipt, done) = batch_receipt();
        outbox.send(message("alerts.t.alert-2", receipt)).await;
        assert!(done.await.is_err());
    }
}
