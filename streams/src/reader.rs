//! Reading one durable consumer of an inbound stream in order, with nothing skipped.
//!
//! The consumers acknowledge with ack-all (docs/ingest.md): acknowledging a message
//! acknowledges every message delivered before it. A message the server has delivered can still
//! die on the way to this process: on the NATS node that was relaying it when the node was lost,
//! or in a connection that broke. The server counts it as delivered, and the next ack-all would
//! acknowledge it unapplied.
//!
//! Every delivery carries its consumer sequence, which the server counts up by one for each
//! message it delivers on the consumer, so a message lost on the way shows as a jump. On a jump
//! the [`Reader`] hands on nothing more: it drops the message after the gap, waits until the
//! ingest loop has acknowledged everything handed on before it, and recreates the consumer right
//! after its ack floor. The lost messages are then delivered again at once, in order, followed by
//! everything after them. Every engine start opens its consumers the same way, which is also
//! where a partition's new owner picks up what its predecessor was delivered and never applied.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures::{Stream, StreamExt};

use crate::bus::{BusError, Counters, Delivery};
use crate::metrics::IngestMetrics;

/// The priority group of a partition's pinned consumer.
pub(crate) const PIN_GROUP: &str = "owner";

/// The longest a reader waits, after a gap, for what it handed on to be acknowledged before it
/// recreates the consumer anyway. What was not acknowledged by then is delivered again, and the
/// ingest loop's dedupe drops it.
const SETTLE: Duration = Duration::from_secs(5);

/// Attempts to reopen a consumer after a gap (backing off up to 2 s apart, about a minute in
/// all) before the reader gives up and its stream ends: the engine then stops and a supervisor
/// restarts it, and the restart opens the consumer at its ack floor as well.
const REOPEN_ATTEMPTS: u32 = 32;

/// One durable consumer as this process reads it.
pub(crate) struct Reader {
    pub stream: jetstream::stream::Stream,
    pub stream_name: &'static str,
    pub durable: String,
    pub config: consumer::pull::Config,
    pub batch: usize,
    /// Pulls in the pinned priority group (a cluster member's partition).
    pub pinned: bool,
    pub metrics: Arc<IngestMetrics>,
}

/// Where a reader stands: the consumer sequence it expects next (`None`: unknown, take the next
/// as it comes) and the stream sequence of the last message it handed on.
struct Position {
    next: Option<u64>,
    handed: u64,
}

/// What one delivery means for the order of a consumer's deliveries.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The next one: hand it on.
    InOrder,
    /// Not the next one: something between was delivered and lost (or delivered again).
    Gap { expected: u64, got: u64 },
}

/// Checks a delivery's consumer sequence against the one expected.
pub(crate) fn step(expected: Option<u64>, got: u64) -> Step {
    match expected {
        Some(expected) if got != expected => Step::Gap { expected, got },
        _ => Step::InOrder,
    }
}

impl Reader {
    /// Opens the consumer right after its ack floor and returns its deliveries, in order; the
    /// stream ends when the consumer is deleted or cannot be reopened after a gap.
    ///
    /// # Errors
    /// [`BusError::Consumer`] when the consumer cannot be opened.
    pub async fn deliveries(self) -> Result<impl Stream<Item = Delivery> + Send, BusError> {
        let messages = self.open().await?;
        let start = Position {
            next: Some(1),
            handed: 0,
        };
        // The state lives in a box and the rare paths' futures are boxed where they are
        // awaited (`next`): `unfold` moves its state into a new future per delivery, and the
        // reader, the consumer's stream and an unboxed reopen made that a copy of kilobytes.
        Ok(futures::stream::unfold(
            Box::new((self, Some(messages), start)),
            |mut state| async move {
                let (reader, messages, at) = &mut *state;
                let delivery = reader.next(messages, at).await?;
                Some((delivery, state))
            },
        ))
    }

    fn error(&self, reason: impl std::fmt::Display) -> BusError {
        BusError::Consumer {
            consumer: self.durable.clone(),
            reason: reason.to_string(),
        }
    }

    /// (Re)creates the consumer right after its ack floor and starts pulling.
    ///
    /// The consumer's owner before (this process before a restart or a gap, or a partition's
    /// previous cluster member) may have had messages delivered and never applied: the server
    /// would redeliver them only after `ack_wait`, and the first ack-all of a later message
    /// would acknowledge them unapplied. Recreating the consumer at the floor delivers them
    /// again at once (recovery has read everything up to it).
    async fn open(&self) -> Result<consumer::pull::Stream, BusError> {
        let mut config = self.config.clone();
        match self.stream.consumer_info(&self.durable).await {
            Ok(info) => {
                let floor = info.ack_floor.stream_sequence;
                self.stream
                    .delete_consumer(&self.durable)
                    .await
                    .map_err(|e| self.error(e))?;
                config.deliver_policy = consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: floor + 1,
                };
            }
            Err(e) if e.kind() == jetstream::context::ConsumerInfoErrorKind::NotFound => {}
            Err(e) => return Err(self.error(e)),
        }
        let consumer: consumer::PullConsumer = self
            .stream
            .create_consumer(config)
            .await
            .map_err(|e| self.error(e))?;
        let mut messages = consumer.stream().max_messages_per_batch(self.batch);
        if self.pinned {
            messages = messages.group(PIN_GROUP);
        }
        messages.messages().await.map_err(|e| self.error(e))
    }

    /// The next delivery in order, reopening the consumer after a gap; `None` when the
    /// consumer is gone for good.
    async fn next(
        &self,
        messages: &mut Option<consumer::pull::Stream>,
        at: &mut Position,
    ) -> Option<Delivery> {
        loop {
            let Some(open) = messages.as_mut() else {
                *messages = Some(Box::pin(self.reopen()).await?);
                *at = Position {
                    next: Some(1),
                    handed: 0,
                };
                continue;
            };
            let message = match open.next().await? {
                Ok(m) => m,
                // A deleted consumer never comes back by itself: the stream ends (the engine
                // then stops, unready, and exits non-zero) instead of warning forever while
                // nothing is ingested and /readyz says 200.
                Err(e) if e.kind() == consumer::pull::MessagesErrorKind::ConsumerDeleted => {
                    self.metrics.consumers_deleted.fetch_add(1, Relaxed);
                    tracing::error!(stream = self.stream_name, consumer = %self.durable, "the durable consumer was deleted; ingest of this stream stops");
                    return None;
                }
                Err(e) => {
                    tracing::warn!(stream = self.stream_name, error = %e, "consumer hiccup; the client retries");
                    continue;
                }
            };
            let Some(counters) = message.reply.as_deref().and_then(Counters::of) else {
                // Not a JetStream delivery's reply subject: nothing to check it by.
                at.next = None;
                return Some(Delivery::JetStream(Box::new(message)));
            };
            match step(at.next, counters.consumer_sequence) {
                Step::InOrder => {
                    at.next = Some(counters.consumer_sequence + 1);
                    at.handed = counters.stream_sequence;
                    return Some(Delivery::JetStream(Box::new(message)));
                }
                Step::Gap { expected, got } => {
                    self.metrics.consumer_gaps.fetch_add(1, Relaxed);
                    tracing::warn!(
                        stream = self.stream_name,
                        consumer = %self.durable,
                        expected,
                        got,
                        "deliveries were lost on the way (a NATS node or connection was lost); nothing after them is acknowledged, and the consumer restarts at its ack floor"
                    );
                    drop(message);
                    *messages = None;
                    Box::pin(self.settle(at.handed)).await;
                }
            }
        }
    }

    /// Waits until the consumer's ack floor reaches `handed` (the ingest loop has applied and
    /// acknowledged everything handed on), at most [`SETTLE`].
    async fn settle(&self, handed: u64) {
        let deadline = Instant::now() + SETTLE;
        while Instant::now() < deadline {
            match self.stream.consumer_info(&self.durable).await {
                Ok(info) if info.ack_floor.stream_sequence >= handed => return,
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        tracing::warn!(
            stream = self.stream_name,
            consumer = %self.durable,
            "what was handed on before the gap was not all acknowledged within {SETTLE:?}; the rest is delivered again and dropped as duplicates"
        );
    }

    /// Reopens the consumer at its ack floor, retrying with backoff; `None` after
    /// [`REOPEN_ATTEMPTS`] failures.
    async fn reopen(&self) -> Option<consumer::pull::Stream> {
        let mut wait = Duration::from_millis(50);
        for attempt in 1..=REOPEN_ATTEMPTS {
            match self.open().await {
                Ok(messages) => return Some(messages),
                Err(e) => {
                    tracing::warn!(stream = self.stream_name, attempt, error = %e, "cannot reopen the consumer at its ack floor; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
        tracing::error!(stream = self.stream_name, consumer = %self.durable, "the consumer could not be reopened after a gap; ingest of this stream stops, and what was not acknowledged is redelivered to the next start");
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_sequence_is_in_order() {
        assert_eq!(step(Some(1), 1), Step::InOrder);
        assert_eq!(step(Some(42), 42), Step::InOrder);
    }

    #[test]
    fn a_jump_forward_is_a_gap() {
        assert_eq!(
            step(Some(4), 6),
            Step::Gap {
                expected: 4,
                got: 6
            }
        );
    }

    #[test]
    fn a_step_back_is_a_gap_too() {
        // A consumer leader that lost the newest delivered count restarts lower: what follows
        // may repeat or skip, so the reader restarts at the floor rather than guess.
        assert_eq!(
            step(Some(10), 7),
            Step::Gap {
                expected: 10,
                got: 7
            }
        );
    }

    #[test]
    fn an_unknown_position_takes_whatever_comes() {
        assert_eq!(step(None, 99), Step::InOrder);
    }
}
