//! The outbox: publishes engine outputs (alert transitions, dead letters) in order, many in
//! flight, and holds each message's batch receipt until the stream has stored it, so the input
//! batch that caused it is acknowledged only after its outputs are durable.
//!
//! A publish that fails is retried with backoff until it is stored: outputs are never dropped.
//! The queue in front is bounded; callers that find it full wait (see `vigil-actors`).
//!
//! A message that can never be published (a header or subject NATS cannot carry: input
//! validation should have made that impossible) ends the publisher with
//! [`OutboxError::Unpublishable`] instead of retrying forever. A message dropped before it was
//! stored, for whatever reason (the publisher ended, the queue was closed), fails its batch
//! receipt, so the input that caused it is never acknowledged: NATS redelivers it to the next
//! engine process.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::bus::{Bus, Fault};
use crate::receipt::{Receipt, fail};

/// One message to publish.
pub struct OutMessage {
    pub subject: String,
    pub headers: Vec<(&'static str, String)>,
    pub payload: Bytes,
    /// Dropped once the message is stored.
    pub receipt: Option<Receipt>,
    /// Stored after every earlier `ordered` message of its subject, even across a lost
    /// connection (an alert's transitions). Others only need to be stored (dead letters).
    pub ordered: bool,
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
}

/// Handle for queueing outputs; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<OutMessage>,
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
        self.tx.try_send(m).map_err(|e| match e {
            mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => m,
        })
    }

    /// Queues, waiting for room. When the publisher has stopped the message is dropped, which
    /// fails its batch (never acknowledged, redelivered after a restart).
    pub async fn send(&self, m: OutMessage) {
        if let Err(e) = self.tx.send(m).await {
            tracing::error!(subject = %e.0.subject, "outbox closed; output not published, its input stays unacknowledged");
        }
    }
}

async fn publish_loop(
    bus: Bus,
    mut rx: mpsc::Receiver<OutMessage>,
    in_flight: usize,
) -> Result<(), OutboxError> {
    let mut pending = FuturesOrdered::new();
    // Subjects with an ordered message in flight. An ordered message waits until the one before
    // it on its subject is stored: if a connection drops with both in flight, the first can be
    // lost while the second reaches the server, and its retry would then land after it. An
    // alert's subject must hold its transitions in order (its history, and recovery's
    // last-per-subject read, rely on it).
    let mut subjects: HashSet<String> = HashSet::new();
    let mut open = true;
    while open || !pending.is_empty() {
        tokio::select! {
            m = rx.recv(), if open && pending.len() < in_flight => match m {
                Some(m) => {
                    while m.ordered && subjects.contains(&m.subject) {
                        match pending.next().await {
                            Some(Some(stored)) => subjects.remove(&stored),
                            Some(None) => false,
                            None => break,
                        };
                    }
                    if m.ordered {
                        subjects.insert(m.subject.clone());
                    }
                    let mut sent = send_with_retry(&bus, &m).await?;
                    let bus = bus.clone();
                    pending.push_back(async move {
                        let mut backoff = Duration::from_millis(100);
                        while let Err(e) = sent.stored().await {
                            tracing::warn!(error = %e, "publish not stored; sending again");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                            // Sent once already, so it is publishable.
                            sent = send_with_retry(&bus, &m).await.ok()?;
                        }
                        let subject = m.ordered.then(|| m.subject.clone());
                        m.stored();
                        subject
                    });
                }
                None => open = false,
            },
            Some(stored) = pending.next(), if !pending.is_empty() => {
                if let Some(subject) = stored {
                    subjects.remove(&subject);
                }
            }
        }
    }
    Ok(())
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
            ordered: true,
        }
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
