//! The outbox: publishes engine outputs (alert transitions, dead letters) in order, many in
//! flight, and holds each message's batch receipt until the stream has stored it, so the input
//! batch that caused it is acknowledged only after its outputs are durable.
//!
//! A publish that fails is retried with backoff until it is stored: outputs are never dropped.
//! The queue in front is bounded; callers that find it full wait (see `vigil-actors`).

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::bus::Bus;
use crate::receipt::Receipt;

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

/// Handle for queueing outputs; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<OutMessage>,
}

impl Outbox {
    /// Starts the publisher task. It ends once every `Outbox` clone is dropped and the queue is
    /// drained and stored.
    pub fn start(bus: Bus, capacity: usize, in_flight: usize) -> (Outbox, JoinHandle<()>) {
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

    /// Queues, waiting for room.
    pub async fn send(&self, m: OutMessage) {
        if let Err(e) = self.tx.send(m).await {
            tracing::error!(subject = %e.0.subject, "outbox closed; output not published");
        }
    }
}

async fn publish_loop(bus: Bus, mut rx: mpsc::Receiver<OutMessage>, in_flight: usize) {
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
                    let mut sent = send_with_retry(&bus, &m).await;
                    let bus = bus.clone();
                    pending.push_back(async move {
                        let mut backoff = Duration::from_millis(100);
                        while let Err(e) = sent.stored().await {
                            tracing::warn!(error = %e, "publish not stored; sending again");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                            sent = send_with_retry(&bus, &m).await;
                        }
                        m.ordered.then_some(m.subject)
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
}

async fn send_with_retry(bus: &Bus, m: &OutMessage) -> crate::bus::PendingPublish {
    let mut backoff = Duration::from_millis(100);
    loop {
        match bus
            .send(m.subject.clone(), m.headers.clone(), m.payload.clone())
            .await
        {
            Ok(p) => return p,
            Err(e) => {
                tracing::warn!(error = %e, "publish failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
