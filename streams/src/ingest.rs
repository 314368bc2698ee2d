//! The ingest loop of each consumed stream (`VITALS`, `CHECKINS`, `OCCUPANCY`): pull, decode,
//! validate, dedupe, dead-letter, hand off, acknowledge. One loop, generic over the stream's
//! decoding ([`Inbound`]) and over where its events go ([`EventSink`]).
//!
//! Ack strategy (docs/ingest.md): the consumer is durable with ack policy *all*. Messages are
//! taken in batches of what is ready (up to `nats.batch`). Each batch has a receipt; every event
//! handed to a patient actor and every output it causes carries a clone, and the batch's last
//! message is acknowledged only when all clones are gone, i.e. when every event is applied and
//! every alert transition and dead letter is stored. Batches are acknowledged strictly in order,
//! and at most `nats.max_inflight_batches` are in flight, which bounds every queue behind it.
//! After a crash NATS redelivers everything after the last acknowledged batch: at-least-once,
//! with duplicates absorbed by the `(tenantId, eventId)` dedupe and by `Nats-Msg-Id` on outputs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use futures::stream::FuturesOrdered;
use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use vigil_config::Config;
use vigil_engine::{PracticeEvent, Reading, Timestamp};

use crate::bus::Delivery;
use crate::dedupe::{Dedupe, Fingerprint, Fingerprinter};
use crate::envelope::{Encoding, Rejection};
use crate::metrics::{IngestMetrics, stream_index, type_index};
use crate::outbox::Outbox;
use crate::output::dead_letter;
use crate::practice::decode_practice;
use crate::receipt::{Receipt, batch_receipt};
use crate::vitals::decode_vitals;

/// A consumed stream: its name and how its messages decode.
pub trait Inbound: Send + Sync + 'static {
    type Event: Send + 'static;
    /// The stream's name (`VITALS`): DLQ subject, metrics label.
    const STREAM: &'static str;
    /// Decodes and validates one message; `now` is the engine clock for the skew check.
    ///
    /// # Errors
    /// The [`Rejection`] that goes to the DLQ.
    fn decode(
        subject: &str,
        payload: &[u8],
        encoding: Encoding,
        now: Timestamp,
    ) -> Result<Self::Event, Rejection>;
    /// `(tenantId, eventId, eventType)`: the dedupe key and the metrics label.
    fn key(event: &Self::Event) -> (&str, &str, &'static str);
}

/// `VITALS`: vitals, labs and admissions.
pub struct Vitals;

impl Inbound for Vitals {
    type Event = Reading<'static>;
    const STREAM: &'static str = "VITALS";

    fn decode(s: &str, p: &[u8], e: Encoding, now: Timestamp) -> Result<Self::Event, Rejection> {
        decode_vitals(s, p, e, now).map(Reading::into_owned)
    }

    fn key(event: &Self::Event) -> (&str, &str, &'static str) {
        (
            &event.meta.tenant_id,
            &event.meta.event_id,
            event.event_type(),
        )
    }
}

/// `CHECKINS`: appointments, check-ins and status changes.
pub struct Checkins;

/// `OCCUPANCY`: chair and room occupancy, provider status.
pub struct Occupancy;

macro_rules! practice_inbound {
    ($t:ty, $name:literal) => {
        impl Inbound for $t {
            type Event = PracticeEvent;
            const STREAM: &'static str = $name;

            fn decode(
                s: &str,
                p: &[u8],
                e: Encoding,
                now: Timestamp,
            ) -> Result<PracticeEvent, Rejection> {
                decode_practice($name, s, p, e, now)
            }

            fn key(event: &PracticeEvent) -> (&str, &str, &'static str) {
                (
                    &event.meta.tenant_id,
                    &event.meta.event_id,
                    event.event_type(),
                )
            }
        }
    };
}

practice_inbound!(Checkins, "CHECKINS");
practice_inbound!(Occupancy, "OCCUPANCY");

/// Chunks being decoded ahead of the one being handed off.
const DECODE_AHEAD: usize = 4;

/// A chunk with each message decoded (or rejected) and fingerprinted for the dedupe, ready to
/// be applied in order.
struct Decoded<E> {
    chunk: Vec<Delivery>,
    results: Vec<Result<(Fingerprint, E), Rejection>>,
    permit: OwnedSemaphorePermit,
    started: Instant,
}

fn decode_chunk<I: Inbound>(
    chunk: Vec<Delivery>,
    permit: OwnedSemaphorePermit,
    metrics: &IngestMetrics,
    fingerprints: Fingerprinter,
) -> Decoded<I::Event> {
    let started = Instant::now();
    let now = wall_clock();
    // One clock read per message: each one's end is the next one's start.
    let mut t0 = started;
    let results = chunk
        .iter()
        .map(|d| {
            let r = Encoding::from_content_type(d.content_type())
                .and_then(|enc| I::decode(d.subject(), d.payload(), enc, now))
                .map(|event| {
                    let (tenant, event_id, event_type) = I::key(&event);
                    let fingerprint = fingerprints.of(tenant, event_id);
                    (type_index(event_type), fingerprint, event)
                });
            let t1 = Instant::now();
            let elapsed = t1.duration_since(t0).as_nanos() as u64;
            t0 = t1;
            r.map(|(i, fingerprint, event)| {
                metrics.decode_ns[i].fetch_add(elapsed, Relaxed);
                (fingerprint, event)
            })
        })
        .collect();
    Decoded {
        chunk,
        results,
        permit,
        started,
    }
}

/// Dedupes, dead-letters and hands off one decoded chunk, then queues its acknowledgement.
/// Returns `false` when the acknowledger has stopped.
async fn apply<I: Inbound, S: EventSink<Event = I::Event>>(
    decoded: Decoded<I::Event>,
    dedupe: &mut Dedupe,
    sink: &mut S,
    outbox: &Outbox,
    metrics: &IngestMetrics,
    ack_tx: &mpsc::Sender<InFlight>,
) -> bool {
    let Decoded {
        mut chunk,
        results,
        permit,
        started,
    } = decoded;
    let (receipt, done) = batch_receipt();
    for (d, result) in chunk.iter().zip(results) {
        let result = result.and_then(|(fingerprint, event)| {
            let event_type = I::key(&event).2;
            if !dedupe.first_time(fingerprint) {
                metrics.duplicates.fetch_add(1, Relaxed);
                return Ok(());
            }
            metrics.events[type_index(event_type)].fetch_add(1, Relaxed);
            sink.accept(event, d)
        });
        if let Err(rejection) = result {
            metrics.dead_letter(rejection.code);
            tracing::debug!(subject = %d.subject(), code = rejection.code.as_str(), "dead-lettered");
            outbox
                .send(dead_letter(I::STREAM, d, &rejection, receipt.clone()))
                .await;
        }
    }
    if let Some(last) = chunk.last() {
        metrics.consumer_lag[stream_index(I::STREAM)].store(last.pending(), Relaxed);
    }
    sink.dispatch(receipt).await;
    match chunk.pop() {
        Some(last) => ack_tx
            .send(InFlight {
                last,
                done,
                started,
                permit,
            })
            .await
            .is_ok(),
        None => true,
    }
}

/// A batch between hand-off and acknowledgement.
struct InFlight {
    /// The batch's last message: acknowledging it acknowledges the batch (ack-all).
    last: Delivery,
    /// Resolves when every event is applied and every output stored.
    done: oneshot::Receiver<()>,
    started: Instant,
    /// One permit per message of the batch, returned once it is acknowledged.
    permit: OwnedSemaphorePermit,
}

/// Acknowledgements are sent at most this often (each one acknowledges everything before it).
const ACK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(1);

/// Where decoded events go (the actors). The loop calls `accept` for each new event in stream
/// order, then `dispatch` once per chunk.
pub trait EventSink: Send + 'static {
    type Event;
    /// Takes one new (deduplicated) event. A refusal (e.g. `INVALID_TRANSITION`) is
    /// dead-lettered with `origin`'s bytes; nothing else changes.
    ///
    /// # Errors
    /// The [`Rejection`] for the DLQ.
    fn accept(&mut self, event: Self::Event, origin: &Delivery) -> Result<(), Rejection>;
    /// Hands on everything accepted since the last call; `receipt` is held until all of it is
    /// applied and its outputs stored. Returns once accepted, waiting while queues are full.
    fn dispatch(&mut self, receipt: Receipt) -> impl Future<Output = ()> + Send;
}

/// A batch's outputs were lost before they were stored (the outbox stopped): acknowledging stops
/// for good, so NATS redelivers that batch and everything after it to the next engine process.
fn batch_failed(stream: &str) {
    tracing::error!(
        stream,
        "a batch's outputs were not stored; acknowledgements stop and ingest ends, unacknowledged events are redelivered"
    );
}

/// The engine's wall clock, for the clock-skew check.
pub fn wall_clock() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Timestamp::from_millis(ms)
}

/// What every consumer of one engine shares: where its outputs go, its counters, and how it
/// consumes (`nats.batch`, `nats.max_inflight_batches`, `engine.dedupe_capacity`).
#[derive(Clone)]
pub struct Ingest {
    pub outbox: Outbox,
    pub metrics: Arc<IngestMetrics>,
    pub batch: usize,
    pub max_inflight_batches: usize,
    pub dedupe_capacity: usize,
}

impl Ingest {
    pub fn new(outbox: Outbox, metrics: Arc<IngestMetrics>, cfg: &Config) -> Self {
        Self {
            outbox,
            metrics,
            batch: cfg.nats.batch,
            max_inflight_batches: cfg.nats.max_inflight_batches,
            dedupe_capacity: cfg.engine.dedupe_capacity,
        }
    }

    /// Consumes `inbound` into `sink` until it ends or `shutdown` resolves, then finishes
    /// every batch in flight and acknowledges it before returning.
    pub async fn run<I: Inbound, S: EventSink<Event = I::Event>>(
        &self,
        inbound: Pin<Box<dyn Stream<Item = Delivery> + Send>>,
        sink: S,
        shutdown: impl Future<Output = ()>,
    ) {
        run::<I, S>(inbound, sink, self.clone(), shutdown).await;
    }
}

async fn run<I: Inbound, S: EventSink<Event = I::Event>>(
    inbound: Pin<Box<dyn Stream<Item = Delivery> + Send>>,
    mut sink: S,
    ingest: Ingest,
    shutdown: impl Future<Output = ()>,
) {
    let Ingest {
        outbox,
        metrics,
        batch,
        max_inflight_batches,
        dedupe_capacity,
    } = ingest;
    // In flight is bounded by messages, not batches: at live rates a batch holds a message or
    // two, and a bound of 16 tiny batches would stall the consumer for nothing.
    let window = batch
        .saturating_mul(max_inflight_batches)
        .clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(window));
    let (ack_tx, mut ack_rx) = mpsc::channel::<InFlight>(window);
    let ack_metrics = metrics.clone();
    let acker = tokio::spawn(async move {
        let mut last_ack: Option<Instant> = None;
        while let Some(InFlight {
            last: mut newest,
            done,
            started,
            permit,
        }) = ack_rx.recv().await
        {
            if done.await.is_err() {
                batch_failed(I::STREAM);
                break;
            }
            let mut applied = vec![(started, permit)];
            // Coalesce: one ack-all at most every ACK_INTERVAL covers every batch finished in the
            // meantime. At low rates batches hold a few messages each, and acking each of them
            // would cost nats-server more than the events themselves.
            if let Some(wait) = last_ack.map(|t| ACK_INTERVAL.saturating_sub(t.elapsed()))
                && !wait.is_zero()
            {
                tokio::time::sleep(wait).await;
            }
            let mut failed = false;
            while let Ok(next) = ack_rx.try_recv() {
                if next.done.await.is_err() {
                    // Acknowledge what finished before it, never it nor anything after it.
                    failed = true;
                    break;
                }
                newest = next.last;
                applied.push((next.started, next.permit));
            }
            last_ack = Some(Instant::now());
            match newest.ack().await {
                Ok(()) => {
                    ack_metrics
                        .batches_acked
                        .fetch_add(applied.len() as u64, Relaxed);
                    for (started, _) in &applied {
                        ack_metrics.batch_apply.record(started.elapsed());
                    }
                }
                Err(e) => {
                    ack_metrics.ack_failures.fetch_add(1, Relaxed);
                    tracing::warn!(error = %e, "batch acknowledgement failed; NATS will redeliver it");
                }
            }
            if failed {
                batch_failed(I::STREAM);
                break;
            }
        }
        // Ending here closes the channel: the loop below stops taking new batches.
    });
    let mut dedupe = Dedupe::new(dedupe_capacity);
    let fingerprints = Fingerprinter::default();
    let mut chunks = inbound.ready_chunks(batch.max(1));
    // Chunks are decoded in parallel on the runtime's workers (decoding is most of the per-event
    // work) and come back in order; dedupe, dead letters and hand-off stay serial, in order.
    let mut decoding = FuturesOrdered::new();
    tokio::pin!(shutdown);
    let mut open = true;
    let decode = |chunk: Vec<Delivery>| {
        let permits = permits.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            // Taken here, not in the loop, so the loop never blocks on the window.
            let permit = permits.acquire_many_owned(chunk.len() as u32).await?;
            Ok::<_, tokio::sync::AcquireError>(decode_chunk::<I>(
                chunk,
                permit,
                &metrics,
                fingerprints,
            ))
        })
    };
    while open || !decoding.is_empty() {
        tokio::select! {
            biased;
            () = &mut shutdown, if open => {
                open = false;
                // What NATS has already delivered to this process is work in flight too: what
                // is ready now (nothing is waited for) is applied and acknowledged with the
                // rest, instead of waiting for `ack_wait` or the next start.
                while let Some(Some(chunk)) = chunks.next().now_or_never() {
                    decoding.push_back(decode(chunk));
                }
            }
            Some(decoded) = decoding.next(), if !decoding.is_empty() => {
                let Ok(Ok(decoded)) = decoded else {
                    // Skipping the chunk would let the next ack-all acknowledge it unapplied:
                    // stop consuming instead; NATS redelivers everything not yet acknowledged.
                    tracing::error!(stream = I::STREAM, "a decode task failed; ingest stops, unacknowledged events are redelivered");
                    break;
                };
                if !apply::<I, S>(decoded, &mut dedupe, &mut sink, &outbox, &metrics, &ack_tx).await {
                    break;
                }
            }
            c = chunks.next(), if open && decoding.len() < DECODE_AHEAD => match c {
                Some(chunk) => decoding.push_back(decode(chunk)),
                None => open = false,
            },
        }
    }
    drop(ack_tx);
    let _ = acker.await;
}
