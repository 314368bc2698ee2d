//! The message bus behind one interface: NATS JetStream for `vigil run`, and an embedded
//! in-process bus for `vigil demo` (no services needed). Both hand the engine [`Delivery`]s and
//! take publishes; only JetStream persists anything.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::str::FromStr;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use vigil_config::NatsConfig;

use crate::metrics::IngestMetrics;
use crate::partition::Tokens;
use crate::reader::{PIN_GROUP, Reader};

/// The streams of contracts.md §2: name, subjects, and whether deletes and purges are denied.
pub const STREAMS: &[(&str, &str, bool)] = &[
    ("VITALS", "vitals.*.*", false),
    ("CHECKINS", "checkin.*.*", false),
    ("OCCUPANCY", "occupancy.*.*", false),
    ("ALERTS", "alerts.*.*", true),
    ("FLOW", "flow.*.*", false),
    ("DLQ", "dlq.>", false),
];

/// One partition of an inbound stream, as a cluster member consumes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub index: u32,
    /// How long the server keeps the partition pinned to a member that stopped pulling
    /// (`[cluster] failover`).
    pub pinned_for: Duration,
}

/// The durable consumer of an inbound stream, or of one partition of it (`vigil-engine-3`).
pub fn durable_of(consumer: &str, part: Option<u32>) -> String {
    match part {
        Some(p) => format!("{consumer}-{p}"),
        None => consumer.to_string(),
    }
}

/// The subject prefix of an inbound stream (`VITALS` -> `vitals`).
pub(crate) fn prefix_of(stream: &str) -> &'static str {
    INBOUND
        .iter()
        .find(|(name, _)| *name == stream)
        .map_or("", |(_, prefix)| prefix.trim_end_matches('.'))
}

/// What went wrong talking to the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    /// The configuration asks for what this NATS can never give (an address that is none,
    /// replicas a single server cannot hold): retrying cannot help, the operator must change it.
    #[error("{0}")]
    Config(String),
    #[error("cannot set up stream {stream}: {reason}")]
    Stream { stream: String, reason: String },
    #[error("cannot set up consumer {consumer}: {reason}")]
    Consumer { consumer: String, reason: String },
    #[error("publish to {subject} failed: {reason}")]
    Publish { subject: String, reason: String },
    /// The subject or a header is something NATS cannot carry: retrying cannot help.
    #[error("cannot publish to {subject:?}: {reason}")]
    Unpublishable { subject: String, reason: String },
    /// `ALERTS` refused a transition: its subject's last message is not the one this engine
    /// based the transition on (`Nats-Expected-Last-Subject-Sequence`), so another engine wrote
    /// it since. Retrying would write over a newer state.
    #[error("{subject} was written by another engine since: {reason}")]
    Fenced { subject: String, reason: String },
    #[error("acknowledgement failed: {0}")]
    Ack(String),
    #[error("the embedded bus has no consumer for {0}")]
    Closed(String),
}

/// Whether trying again can help: what decides between retrying and giving up (the error
/// domains of Arroyo's arroyo-rpc errors, reduced to what a bus caller must choose).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// NATS is away, slow or refused for now: retry with backoff.
    Transient,
    /// The request can never succeed as it is (a subject or header NATS cannot carry, a bus
    /// with no consumer left): retrying would spin forever.
    Permanent,
}

impl BusError {
    pub fn fault(&self) -> Fault {
        match self {
            BusError::Unpublishable { .. }
            | BusError::Fenced { .. }
            | BusError::Config(_)
            | BusError::Closed(_) => Fault::Permanent,
            BusError::Connect { .. }
            | BusError::Stream { .. }
            | BusError::Consumer { .. }
            | BusError::Publish { .. }
            | BusError::Ack(_) => Fault::Transient,
        }
    }
}

/// One inbound message, as either bus delivers it. JetStream messages are kept as they came:
/// subject, headers and sequence are read from them on demand, not copied per message.
pub enum Delivery {
    JetStream(Box<jetstream::Message>),
    Embedded {
        subject: String,
        payload: Bytes,
        content_type: Option<String>,
    },
}

impl Delivery {
    pub fn subject(&self) -> &str {
        match self {
            Delivery::JetStream(m) => m.subject.as_str(),
            Delivery::Embedded { subject, .. } => subject,
        }
    }

    pub fn payload(&self) -> &Bytes {
        match self {
            Delivery::JetStream(m) => &m.payload,
            Delivery::Embedded { payload, .. } => payload,
        }
    }

    pub fn content_type(&self) -> Option<&str> {
        /// Built at compile time: looking up by `&str` validates the name and allocates a
        /// copy of it for every message.
        const CONTENT_TYPE: async_nats::HeaderName =
            async_nats::HeaderName::from_static("Content-Type");
        match self {
            // A message has a few headers: comparing their names is cheaper than hashing
            // this one with the map's SipHash. The same equality the map's lookup uses.
            Delivery::JetStream(m) => m
                .headers
                .as_ref()?
                .iter()
                .find(|(name, _)| **name == CONTENT_TYPE)
                .and_then(|(_, values)| values.first())
                .map(|v| v.as_str()),
            Delivery::Embedded { content_type, .. } => content_type.as_deref(),
        }
    }

    /// The counters of a JetStream delivery (`None` on the embedded bus, or when the reply
    /// subject is not a JetStream acknowledgement subject).
    pub(crate) fn counters(&self) -> Option<Counters> {
        match self {
            Delivery::JetStream(m) => Counters::of(m.reply.as_deref()?),
            Delivery::Embedded { .. } => None,
        }
    }

    /// Sequence in the source stream (0 on the embedded bus).
    pub fn stream_seq(&self) -> u64 {
        self.counters().map_or(0, |c| c.stream_sequence)
    }

    /// Messages still pending for the consumer after this one (consumer lag).
    pub fn pending(&self) -> u64 {
        self.counters().map_or(0, |c| c.pending)
    }

    /// Acknowledges this message and, under the consumer's ack-all policy, every one before it.
    ///
    /// # Errors
    /// [`BusError::Ack`] when NATS did not take the acknowledgement (it will redeliver).
    pub async fn ack(&self) -> Result<(), BusError> {
        match self {
            Delivery::JetStream(m) => m.ack().await.map_err(|e| BusError::Ack(e.to_string())),
            Delivery::Embedded { .. } => Ok(()),
        }
    }
}

/// The counters ingest reads from a JetStream delivery's reply subject: the same figures as
/// async-nats's `Message::info`, which also parses the stream and consumer names, the domain,
/// the delivery count and the publish time (nanoseconds to a date) of every message: about
/// 1,600 instructions a delivery, 4 % of what the engine spends on an event
/// (`scripts/bench instructions`), for the consumer sequence that the reader checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counters {
    pub stream_sequence: u64,
    pub consumer_sequence: u64,
    pub pending: u64,
}

impl Counters {
    /// Reads them from an acknowledgement subject of either form of ADR-15:
    /// `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`,
    /// or with `<domain>.<account hash>.` before the stream and 9 or more tokens in all after
    /// `$JS.ACK.` (those after `<pending>` are ignored). `None` for another token count or a
    /// counter that is not a number, as async-nats refuses them; a subject whose delivery
    /// count or time is not a number, which async-nats also refuses, is read all the same
    /// (nats-server never sends one, and these counters do not need them).
    pub(crate) fn of(reply: &str) -> Option<Counters> {
        let t = Tokens::<9>::of(reply.strip_prefix("$JS.ACK.")?);
        // The index of `<stream seq>`; `<consumer seq>` follows it and `<pending>` is 3 later.
        let first = match t.count {
            7 => 3,
            9.. => 5,
            _ => return None,
        };
        let counter = |i: usize| t.get(i)?.parse::<u64>().ok();
        Some(Counters {
            stream_sequence: counter(first)?,
            consumer_sequence: counter(first + 1)?,
            pending: counter(first + 3)?,
        })
    }
}

/// A bus, JetStream or embedded.
#[derive(Clone)]
pub enum Bus {
    JetStream(Box<JetStreamBus>),
    Embedded(EmbeddedBus),
}

#[derive(Clone)]
pub struct JetStreamBus {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub link: Arc<Link>,
}

/// Why a stream could not be created: [`BusError::Config`] when NATS says it never can be as
/// configured (replicas on a single server), [`BusError::Stream`] otherwise.
fn stream_error(
    name: &str,
    url: &str,
    replicas: usize,
    e: &jetstream::context::CreateStreamError,
) -> BusError {
    if let jetstream::context::CreateStreamErrorKind::JetStream(api) = e.kind()
        && api.error_code() == jetstream::ErrorCode::STREAM_REPLICAS_NOT_SUPPORTED
    {
        return BusError::Config(format!(
            "[cluster] replicas = {replicas} needs a NATS cluster with at least {replicas} \
             JetStream servers, and NATS at {} is a single server ({api}); set replicas = 1 or \
             point [nats] url at the cluster",
            redacted(url)
        ));
    }
    BusError::Stream {
        stream: name.into(),
        reason: e.to_string(),
    }
}

/// An inbound stream's partitions (`found`; `None`: not split) against the configuration's
/// (`wanted`; `None`: no `[cluster]`). They are fixed once the stream exists: a difference is
/// a start-up error naming both.
fn check_partitions(stream: &str, found: Option<u32>, wanted: Option<u32>) -> Result<(), BusError> {
    let shown = |n: Option<u32>| n.map_or_else(|| "not split (1)".to_string(), |n| n.to_string());
    if found == wanted {
        return Ok(());
    }
    let fix = match wanted {
        Some(_) => "set [cluster] partitions to the stream's number".to_string(),
        None => "add a [cluster] section with that number of partitions".to_string(),
    };
    Err(BusError::Config(format!(
        "stream {stream} exists with partitions {} but the configuration has {}{}: partitions \
         are fixed once the streams exist; {fix}",
        shown(found),
        shown(wanted),
        if wanted.is_some() {
            " ([cluster] partitions)"
        } else {
            " (no [cluster] section)"
        },
    )))
}

/// A failure to read `stream`.
fn read_error(stream: &str, reason: impl ToString) -> BusError {
    BusError::Stream {
        stream: stream.into(),
        reason: reason.to_string(),
    }
}

/// The handle of the existing stream `name`.
async fn stream_of(
    js: &jetstream::Context,
    name: &str,
) -> Result<jetstream::stream::Stream, BusError> {
    js.get_stream(name).await.map_err(|e| read_error(name, e))
}

/// The state of the connection to NATS, for `/metrics`. The client reconnects by itself (with
/// backoff, forever); the pull consumer, publishes and acknowledgements resume on the new
/// connection.
#[derive(Debug, Default)]
pub struct Link {
    connected: std::sync::atomic::AtomicBool,
    disconnects: std::sync::atomic::AtomicU64,
}

impl Link {
    fn on_event(&self, event: &async_nats::Event) {
        use std::sync::atomic::Ordering::Relaxed;
        match event {
            async_nats::Event::Connected => {
                self.connected.store(true, Relaxed);
                tracing::info!("connected to NATS");
            }
            async_nats::Event::Disconnected => {
                self.connected.store(false, Relaxed);
                self.disconnects.fetch_add(1, Relaxed);
                tracing::warn!("disconnected from NATS; reconnecting");
            }
            other => tracing::debug!(event = %other, "NATS client event"),
        }
    }

    /// The client holds a connection to NATS now.
    pub fn is_connected(&self) -> bool {
        self.connected.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// `vigil_nats_connected` and `vigil_nats_disconnects_total`, once the engine has a link (0 and
/// 0 before: not connected yet).
#[derive(Debug, Default)]
pub struct LinkMetrics(pub Arc<std::sync::OnceLock<Arc<Link>>>);

impl prometheus_client::collector::Collector for LinkMetrics {
    fn encode(
        &self,
        mut e: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let link = self.0.get();
        crate::metrics::gauge(
            &mut e,
            "vigil_nats_connected",
            "1 while the engine holds a connection to NATS",
            link.map_or(0, |l| i64::from(l.connected.load(Relaxed))),
        )?;
        crate::metrics::counter(
            &mut e,
            "vigil_nats_disconnects",
            "Connections to NATS lost (each followed by reconnect attempts)",
            link.map_or(0, |l| l.disconnects.load(Relaxed)),
        )
    }
}

/// The servers of `url`: one address, or a comma-separated seed list of a NATS cluster
/// (contracts.md section 7); the client connects to any of them and learns the rest.
///
/// # Errors
/// [`BusError::Config`] naming the first entry that is not a server address, or saying the
/// list is empty.
pub fn server_list(url: &str) -> Result<Vec<async_nats::ServerAddr>, BusError> {
    let servers = url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<async_nats::ServerAddr>().map_err(|e| {
                BusError::Config(format!(
                    "[nats] url: {} is not a NATS server address: {e}",
                    redacted(s)
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err(BusError::Config(format!(
            "[nats] url: no NATS server address given in {:?}",
            redacted(url)
        )));
    }
    Ok(servers)
}

impl Bus {
    /// Connects to NATS and creates any missing stream of contracts.md §2: with
    /// `cfg.nats.max_age` retention and `cfg.replicas()` replicas, and in a cluster the inbound
    /// streams split into `[cluster] partitions` by a subject transform ([`crate::partition`]).
    ///
    /// # Errors
    /// [`BusError::Connect`] or [`BusError::Stream`] (retried by the caller), or
    /// [`BusError::Config`] when the URL or the replicas can never work, or a stream exists
    /// split into another number of partitions than the configuration's.
    pub async fn connect(url: &str, cfg: &vigil_config::Config) -> Result<Bus, BusError> {
        let servers = server_list(url)?;
        let link = Arc::new(Link::default());
        let events = link.clone();
        let client = async_nats::ConnectOptions::new()
            .name("vigil-engine")
            .event_callback(move |event| {
                let events = events.clone();
                async move { events.on_event(&event) }
            })
            // No retry on the first connect: the caller retries and reports each failure
            // ("connection refused" names the real problem); after that the client
            // reconnects by itself.
            .connection_timeout(Duration::from_secs(5))
            .connect(servers)
            .await
            .map_err(|e| BusError::Connect {
                url: redacted(url),
                reason: e.to_string(),
            })?;
        let js = jetstream::new(client.clone());
        let partitions = cfg.cluster.as_ref().map(|c| c.partitions);
        let replicas = cfg.replicas();
        for &(name, subjects, immutable) in STREAMS {
            let transform = partitions.and_then(|n| crate::partition::transform(name, n));
            let config = stream::Config {
                name: name.into(),
                subjects: vec![subjects.into()],
                storage: stream::StorageType::File,
                num_replicas: replicas,
                max_age: if immutable {
                    Duration::ZERO
                } else {
                    cfg.nats.max_age.as_std()
                },
                deny_delete: immutable,
                deny_purge: immutable,
                allow_direct: true,
                subject_transform: transform.map(|(source, destination)| {
                    stream::SubjectTransform {
                        source,
                        destination,
                    }
                }),
                ..Default::default()
            };
            let stream =
                tokio::time::timeout(Duration::from_secs(30), js.get_or_create_stream(config))
                    .await
                    .map_err(|_| BusError::Stream {
                        stream: name.into(),
                        reason: "timed out".into(),
                    })?
                    .map_err(|e| stream_error(name, url, replicas, &e))?;
            if crate::partition::splits(name) {
                let found = stream
                    .cached_info()
                    .config
                    .subject_transform
                    .as_ref()
                    .and_then(|t| crate::partition::partitions_in(&t.destination));
                check_partitions(name, found, partitions)?;
            }
        }
        link.connected
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(Bus::JetStream(Box::new(JetStreamBus { client, js, link })))
    }

    /// The NATS connection's state (none for the embedded bus).
    pub fn link(&self) -> Option<Arc<Link>> {
        match self {
            Bus::JetStream(b) => Some(b.link.clone()),
            Bus::Embedded(_) => None,
        }
    }

    /// An embedded bus whose `vitals.*`, `checkin.*` and `occupancy.*` publishes are delivered
    /// to the engine.
    pub fn embedded(capacity: usize) -> Bus {
        let inbound = INBOUND.map(|(stream, prefix)| {
            let (tx, rx) = mpsc::channel(capacity);
            EmbeddedInbound {
                stream,
                prefix,
                tx,
                rx: Mutex::new(Some(rx)),
            }
        });
        Bus::Embedded(EmbeddedBus {
            inbound: Arc::new(inbound),
            alerts: Arc::default(),
            kept: Arc::default(),
        })
    }

    /// Binds the durable pull consumer on an inbound `stream` (ack-all), or on one partition of
    /// it, and returns its deliveries. A partition's consumer is pinned (a JetStream priority
    /// group, ADR-42): the server hands its messages to one client at a time, and to another
    /// only once that one has stopped pulling for [`Part::pinned_for`] or unpinned. JetStream
    /// deliveries come through a [`Reader`]: in order, and a delivery lost on the way restarts
    /// the consumer at its ack floor instead of being acknowledged unapplied (counted in
    /// `metrics`).
    ///
    /// # Errors
    /// [`BusError::Consumer`] when the consumer cannot be created or started.
    pub async fn consume(
        &self,
        stream_name: &'static str,
        cfg: &NatsConfig,
        part: Option<Part>,
        metrics: Arc<IngestMetrics>,
    ) -> Result<std::pin::Pin<Box<dyn Stream<Item = Delivery> + Send>>, BusError> {
        match self {
            Bus::JetStream(b) => {
                let durable = durable_of(&cfg.consumer, part.map(|p| p.index));
                let stream =
                    b.js.get_stream(stream_name)
                        .await
                        .map_err(|e| BusError::Consumer {
                            consumer: durable.clone(),
                            reason: e.to_string(),
                        })?;
                let window = (cfg.batch * cfg.max_inflight_batches * 2).max(1024);
                let mut config = consumer::pull::Config {
                    durable_name: Some(durable.clone()),
                    ack_policy: consumer::AckPolicy::All,
                    ack_wait: cfg.ack_wait.as_std(),
                    max_ack_pending: i64::try_from(window).unwrap_or(i64::MAX),
                    ..Default::default()
                };
                if let Some(p) = part {
                    config.filter_subject =
                        crate::partition::filter(prefix_of(stream_name), p.index);
                    config.priority_policy = consumer::PriorityPolicy::PinnedClient;
                    config.priority_groups = vec![PIN_GROUP.into()];
                    config.priority_timeout = p.pinned_for;
                }
                let reader = Reader {
                    stream,
                    stream_name,
                    durable,
                    config,
                    batch: cfg.batch,
                    pinned: part.is_some(),
                    metrics,
                };
                Ok(Box::pin(reader.deliveries().await?))
            }
            Bus::Embedded(b) => {
                let rx = b
                    .inbound
                    .iter()
                    .find(|i| i.stream == stream_name)
                    .and_then(|i| i.rx.lock().ok()?.take())
                    .ok_or_else(|| BusError::Closed(format!("{stream_name} (already consumed)")))?;
                Ok(Box::pin(tokio_stream_from(rx)))
            }
        }
    }

    /// Waits until everything this process handed the client (acknowledgements included:
    /// they are publishes nobody waits for) has been written to NATS. Call before exiting,
    /// or the last acknowledgements die in the client's buffer and NATS redelivers what was
    /// already applied.
    ///
    /// With NATS away there is nothing to wait for: it answers at once, and NATS redelivers
    /// what those acknowledgements were for.
    ///
    /// # Errors
    /// [`BusError::Ack`] when NATS is away or the client could not write them.
    pub async fn flush(&self) -> Result<(), BusError> {
        match self {
            Bus::JetStream(b) if !b.link.is_connected() => {
                Err(BusError::Ack("NATS is away".into()))
            }
            Bus::JetStream(b) => b
                .client
                .flush()
                .await
                .map_err(|e| BusError::Ack(format!("flushing to NATS: {e}"))),
            Bus::Embedded(_) => Ok(()),
        }
    }

    /// Publishes and waits until the bus has it (JetStream: the stream's publish acknowledgement).
    ///
    /// # Errors
    /// [`BusError::Publish`] when it was not stored; the caller retries.
    pub async fn publish(
        &self,
        subject: String,
        headers: Vec<(&'static str, String)>,
        payload: Bytes,
    ) -> Result<(), BusError> {
        self.send(subject, headers, payload)
            .await?
            .stored()
            .await
            .map(|_| ())
    }

    /// Sends a message and returns without waiting for the stream to store it, so a publisher can
    /// keep many in flight while they stay in order on the connection. A `Nats-Msg-Id` header
    /// makes a retried publish be stored once.
    ///
    /// # Errors
    /// [`BusError::Publish`] when it could not be sent.
    pub async fn send(
        &self,
        subject: String,
        headers: Vec<(&'static str, String)>,
        payload: Bytes,
    ) -> Result<PendingPublish, BusError> {
        let unpublishable = |reason: String| BusError::Unpublishable {
            subject: subject.clone(),
            reason,
        };
        if !is_publish_subject(&subject) {
            return Err(unpublishable("not a valid NATS subject".into()));
        }
        // `HeaderMap::insert` panics on a line break: parse every value first, never panic.
        let mut values = Vec::with_capacity(headers.len());
        for (k, v) in &headers {
            let value = async_nats::HeaderValue::from_str(v).map_err(|e| {
                unpublishable(format!("header {k} {v:?} is not a valid value: {e}"))
            })?;
            values.push((*k, value));
        }
        match self {
            Bus::JetStream(b) => {
                let mut map = HeaderMap::new();
                for (k, value) in values {
                    map.insert(k, value);
                }
                let ack =
                    b.js.publish_with_headers(subject.clone(), map, payload)
                        .await
                        .map_err(|e| BusError::Publish {
                            subject: subject.clone(),
                            reason: e.to_string(),
                        })?;
                Ok(PendingPublish {
                    subject,
                    ack: Some(ack),
                })
            }
            Bus::Embedded(b) => {
                b.publish(subject.clone(), headers, payload).await?;
                Ok(PendingPublish { subject, ack: None })
            }
        }
    }
}

impl Bus {
    /// Every message stored on one `ALERTS` subject, oldest first: an alert's audit trail.
    /// JetStream: direct gets, one per message, from any replica. Embedded: the transitions
    /// published since the demo started.
    ///
    /// # Errors
    /// [`BusError::Stream`] when the stream cannot be read.
    pub async fn history(&self, subject: &str) -> Result<Vec<Bytes>, BusError> {
        match self {
            Bus::JetStream(b) => {
                let stream = stream_of(&b.js, "ALERTS").await?;
                let mut out = Vec::new();
                let mut next = None;
                loop {
                    match stream.direct_get_next_for_subject(subject, next).await {
                        Ok(m) => {
                            next = Some(m.sequence + 1);
                            out.push(m.payload);
                        }
                        Err(e) if e.kind() == jetstream::stream::DirectGetErrorKind::NotFound => {
                            return Ok(out);
                        }
                        Err(e) => return Err(read_error("ALERTS", e)),
                    }
                }
            }
            Bus::Embedded(b) => Ok(b
                .alerts
                .lock()
                .ok()
                .and_then(|m| m.get(subject).cloned())
                .unwrap_or_default()),
        }
    }
}

impl Bus {
    /// The sequence and `Nats-Msg-Id` of the last message on an `ALERTS` subject, read from
    /// the stream's leader (a replica may lag); `None` when the subject is empty or the bus is
    /// embedded. What tells a fenced retry whose first attempt was stored from a real fence.
    ///
    /// # Errors
    /// [`BusError::Stream`] when the stream cannot be read.
    pub async fn last_alert_message(
        &self,
        subject: &str,
    ) -> Result<Option<(u64, Option<String>)>, BusError> {
        let Bus::JetStream(b) = self else {
            return Ok(None);
        };
        let stream = stream_of(&b.js, "ALERTS").await?;
        match stream.get_last_raw_message_by_subject(subject).await {
            Ok(m) => Ok(Some((
                m.sequence,
                m.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_string()),
            ))),
            Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {
                Ok(None)
            }
            Err(e) => Err(read_error("ALERTS", e)),
        }
    }

    /// Releases partition `part` of `stream_name` at once rather than after the pin's time
    /// (a member handing the partition over has finished with it): the next member that pulls
    /// is pinned. Embedded: nothing to do.
    ///
    /// # Errors
    /// [`BusError::Consumer`] when the server does not take the request.
    pub async fn unpin(
        &self,
        stream_name: &str,
        consumer: &str,
        part: u32,
    ) -> Result<(), BusError> {
        let Bus::JetStream(b) = self else {
            return Ok(());
        };
        let durable = durable_of(consumer, Some(part));
        let err = |reason: String| BusError::Consumer {
            consumer: durable.clone(),
            reason,
        };
        let stream =
            b.js.get_stream(stream_name)
                .await
                .map_err(|e| err(e.to_string()))?;
        stream
            .unpin_consumer(&durable, PIN_GROUP)
            .await
            .map_err(|e| err(e.to_string()))
    }

    /// Every alert's current state, then each transition as `ALERTS` stores it, for as long as
    /// the stream lives: what lets a cluster member's gateway show the alerts the other members
    /// own (an ordered consumer: it starts again by itself after a gap or a reconnect).
    /// Embedded: an empty stream (one process owns everything).
    ///
    /// # Errors
    /// [`BusError::Stream`] when the stream cannot be read.
    pub async fn follow_alerts(
        &self,
    ) -> Result<std::pin::Pin<Box<dyn Stream<Item = Bytes> + Send>>, BusError> {
        let Bus::JetStream(b) = self else {
            return Ok(Box::pin(futures::stream::empty()));
        };
        let stream = stream_of(&b.js, "ALERTS").await?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: "alerts.>".into(),
                deliver_policy: consumer::DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await
            .map_err(|e| read_error("ALERTS", e))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| read_error("ALERTS", e))?;
        Ok(Box::pin(messages.filter_map(|m| async move {
            match m {
                Ok(m) => Some(m.payload.clone()),
                Err(e) => {
                    tracing::warn!(error = %e, "following ALERTS: hiccup; the client retries");
                    None
                }
            }
        })))
    }

    /// The last message of every `ALERTS` subject: each alert's current state, with its
    /// sequence (what the alert's next transition must follow). Recovery keeps the non-resolved
    /// ones. Embedded: none (the demo starts fresh).
    ///
    /// # Errors
    /// [`BusError::Stream`] when the stream cannot be read.
    pub async fn alert_states(&self) -> Result<Vec<StoredMessage>, BusError> {
        let Bus::JetStream(b) = self else {
            return Ok(Vec::new());
        };
        let (tx, mut rx) = mpsc::channel(4);
        let read = ordered_read(
            &b.js,
            "ALERTS",
            "alerts.>",
            consumer::DeliverPolicy::LastPerSubject,
            u64::MAX,
            tx,
        );
        let collect = async {
            let mut out = Vec::new();
            while let Some(chunk) = rx.recv().await {
                out.extend(chunk);
            }
            out
        };
        let (read, out) = tokio::join!(read, collect);
        read.map(|()| out)
    }

    /// The stream sequence up to which the durable consumer `consumer` (of partition `part`)
    /// of `stream_name` has acknowledged everything: 0 when it acknowledged nothing or does not
    /// exist (no consumer yet, one deleted or renamed: it delivers the stream from its start).
    /// Recovery reads it once per partition, before the consumers are bound, and hands it to
    /// [`Bus::acknowledged`] and [`Bus::delivered_again_after`]. Embedded: 0.
    ///
    /// # Errors
    /// [`BusError::Stream`] when the stream or the consumer cannot be read.
    pub async fn ack_floor(
        &self,
        stream_name: &'static str,
        consumer: &str,
        part: Option<u32>,
    ) -> Result<u64, BusError> {
        let Bus::JetStream(b) = self else {
            return Ok(0);
        };
        let stream = stream_of(&b.js, stream_name).await?;
        match stream.consumer_info(&durable_of(consumer, part)).await {
            Ok(info) => Ok(info.ack_floor.stream_sequence),
            Err(e) if e.kind() == jetstream::context::ConsumerInfoErrorKind::NotFound => Ok(0),
            Err(e) => Err(read_error(stream_name, e)),
        }
    }

    /// A time, on the server's clock, before which nothing of `stream_name` was stored that a
    /// durable consumer acknowledged up to `floor` (its [`Bus::ack_floor`]) will deliver again:
    /// when the message at `floor` was stored, or, when `floor` is 0 or that message is gone,
    /// when the stream's first message was; when the stream is empty, when its last one was.
    /// Embedded: `None`.
    ///
    /// # Errors
    /// [`BusError::Stream`] when the stream cannot be read.
    pub async fn delivered_again_after(
        &self,
        stream_name: &'static str,
        floor: u64,
    ) -> Result<Option<vigil_engine::Timestamp>, BusError> {
        let Bus::JetStream(b) = self else {
            return Ok(None);
        };
        let millis = |t: async_nats::datetime::DateTime| {
            let ms = t.unix_timestamp_nanos() / 1_000_000;
            vigil_engine::Timestamp::from_millis(i64::try_from(ms).unwrap_or(i64::MAX))
        };
        let stream = stream_of(&b.js, stream_name).await?;
        if floor > 0 {
            match stream.get_raw_message(floor).await {
                Ok(m) => return Ok(Some(millis(m.time))),
                Err(e) if e.kind() == jetstream::stream::RawMessageErrorKind::NoMessageFound => {}
                Err(e) => return Err(read_error(stream_name, e)),
            }
        }
        let state = stream
            .get_info()
            .await
            .map_err(|e| read_error(stream_name, e))?
            .state;
        Ok(Some(millis(if state.messages == 0 {
            state.last_timestamp
        } else {
            state.first_timestamp
        })))
    }

    /// Sends, in chunks to `out`, the messages of an inbound `stream_name` (`VITALS`,
    /// `CHECKINS`, `OCCUPANCY`) of partition `part` (every partition: `None`) of the last
    /// `horizon` that its durable consumer has already acknowledged (stream sequence at or
    /// below `floor`, its [`Bus::ack_floor`]), oldest first, as `(subject, payload, content
    /// type)`: what rebuilds the patient windows and the practice state after a restart. Later
    /// messages are redelivered by the durable consumer itself. Embedded: none.
    ///
    /// # Errors
    /// [`BusError::Stream`] when the stream cannot be read.
    pub async fn acknowledged(
        &self,
        stream_name: &'static str,
        part: Option<u32>,
        floor: u64,
        horizon: Duration,
        out: mpsc::Sender<Vec<StoredMessage>>,
    ) -> Result<(), BusError> {
        let Bus::JetStream(b) = self else {
            return Ok(());
        };
        if floor == 0 {
            return Ok(());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let start = now.saturating_sub(horizon);
        let start = async_nats::datetime::from_nanos(start.as_nanos() as i128)
            .map_err(|e| read_error(stream_name, e))?;
        let prefix = prefix_of(stream_name);
        let filter = match part {
            Some(p) => crate::partition::filter(prefix, p),
            None => format!("{prefix}.>"),
        };
        ordered_read(
            &b.js,
            stream_name,
            &filter,
            consumer::DeliverPolicy::ByStartTime { start_time: start },
            floor,
            out,
        )
        .await
    }
}

/// A stored message as recovery reads it: subject, payload, content type.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub subject: String,
    /// Its stream sequence.
    pub sequence: u64,
    pub payload: Bytes,
    pub content_type: Option<String>,
}

/// Reads a stream through an ordered consumer from `policy` until nothing is pending or the
/// stream sequence passes `until_seq`, sending the messages to `out` in chunks.
async fn ordered_read(
    js: &jetstream::Context,
    stream_name: &str,
    filter: &str,
    policy: consumer::DeliverPolicy,
    until_seq: u64,
    out: mpsc::Sender<Vec<StoredMessage>>,
) -> Result<(), BusError> {
    let stream = stream_of(js, stream_name).await?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: filter.into(),
            deliver_policy: policy,
            ..Default::default()
        })
        .await
        .map_err(|e| read_error(stream_name, e))?;
    const CHUNK: usize = 4096;
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut consumer = consumer;
    let pending = consumer
        .info()
        .await
        .map(|i| i.num_pending)
        .map_err(|e| read_error(stream_name, e))?;
    if pending == 0 {
        return Ok(());
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| read_error(stream_name, e))?;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(30), messages.next())
            .await
            .map_err(|_| read_error(stream_name, "timed out reading"))?;
        let Some(m) = next else { break };
        let m = m.map_err(|e| read_error(stream_name, e))?;
        let info = m.info().map_err(|e| read_error(stream_name, e))?;
        let (seq, left) = (info.stream_sequence, info.pending);
        if seq > until_seq {
            break;
        }
        let content_type = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Content-Type"))
            .map(|v| v.as_str().to_string());
        chunk.push(StoredMessage {
            subject: m.subject.to_string(),
            sequence: seq,
            payload: m.payload.clone(),
            content_type,
        });
        if chunk.len() == CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if out.send(full).await.is_err() {
                return Ok(());
            }
        }
        if left == 0 || seq == until_seq {
            break;
        }
    }
    if !chunk.is_empty() {
        let _ = out.send(chunk).await;
    }
    Ok(())
}

/// A sent publish whose storage is not yet confirmed.
pub struct PendingPublish {
    subject: String,
    ack: Option<jetstream::context::PublishAckFuture>,
}

impl PendingPublish {
    /// Waits for the stream's acknowledgement: the message's stream sequence (`None` on the
    /// embedded bus, which has none).
    ///
    /// # Errors
    /// [`BusError::Fenced`] when the subject's last message was not the expected one,
    /// [`BusError::Publish`] when the stream did not store it otherwise.
    pub async fn stored(self) -> Result<Option<u64>, BusError> {
        match self.ack {
            Some(ack) => match ack.await {
                Ok(ack) => Ok(Some(ack.sequence)),
                Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => {
                    Err(BusError::Fenced {
                        subject: self.subject,
                        reason: e.to_string(),
                    })
                }
                Err(e) => Err(BusError::Publish {
                    subject: self.subject,
                    reason: e.to_string(),
                }),
            },
            None => Ok(None),
        }
    }
}

fn tokio_stream_from(mut rx: mpsc::Receiver<Delivery>) -> impl Stream<Item = Delivery> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The consumed streams and their subject prefixes.
const INBOUND: [(&str, &str); 3] = [
    ("VITALS", "vitals."),
    ("CHECKINS", "checkin."),
    ("OCCUPANCY", "occupancy."),
];

/// One consumed stream of the embedded bus: a bounded channel to the engine.
struct EmbeddedInbound {
    stream: &'static str,
    prefix: &'static str,
    tx: mpsc::Sender<Delivery>,
    rx: Mutex<Option<mpsc::Receiver<Delivery>>>,
}

/// The embedded bus: `vitals.*`, `checkin.*` and `occupancy.*` go to the engine through
/// bounded channels (publishers wait when one is full). Alert transitions are kept in memory
/// per subject (the demo's audit trail, up to [`EMBEDDED_ALERT_MESSAGES`] messages); dead
/// letters and flow updates are accepted and not kept.
#[derive(Clone)]
pub struct EmbeddedBus {
    inbound: Arc<[EmbeddedInbound; 3]>,
    alerts: Arc<Mutex<std::collections::HashMap<String, Vec<Bytes>>>>,
    kept: Arc<std::sync::atomic::AtomicUsize>,
}

/// Most alert transitions the embedded bus keeps; later ones are not kept (the demo logs it).
pub const EMBEDDED_ALERT_MESSAGES: usize = 1_000_000;

impl EmbeddedBus {
    async fn publish(
        &self,
        subject: String,
        headers: Vec<(&'static str, String)>,
        payload: Bytes,
    ) -> Result<(), BusError> {
        if let Some(inbound) = self.inbound.iter().find(|i| subject.starts_with(i.prefix)) {
            let content_type = headers
                .into_iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Content-Type"))
                .map(|(_, v)| v);
            let d = Delivery::Embedded {
                subject,
                payload,
                content_type,
            };
            return inbound
                .tx
                .send(d)
                .await
                .map_err(|e| BusError::Closed(e.0.subject().to_string()));
        }
        if subject.starts_with("alerts.") {
            use std::sync::atomic::Ordering::Relaxed;
            let n = self.kept.fetch_add(1, Relaxed);
            if n == EMBEDDED_ALERT_MESSAGES {
                tracing::warn!("the embedded bus keeps no more alert history (limit reached)");
            }
            if n < EMBEDDED_ALERT_MESSAGES
                && let Ok(mut m) = self.alerts.lock()
            {
                m.entry(subject).or_default().push(payload);
            }
        }
        Ok(())
    }
}

/// `url` (or a comma-separated seed list) with any user and password replaced by `***`, for
/// logs and `/readyz`: `nats://***@10.0.0.1:4222`.
pub fn redacted(url: &str) -> String {
    url.split(',')
        .map(|u| match (u.find("://"), u.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}***{}", &u[..scheme + 3], &u[at..])
            }
            _ => u.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A subject NATS accepts for a publish: dot-separated non-empty tokens of printable, non-space
/// characters, no wildcards.
fn is_publish_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.split('.').all(|t| {
            !t.is_empty()
                && t != "*"
                && t != ">"
                && t.chars().all(|c| !c.is_whitespace() && !c.is_control())
        })
}

#[cfg(test)]
mod subject_tests {
    use super::*;

    /// One server, a seed list (spaces and a trailing comma allowed), and what is refused:
    /// nothing given, or an entry that is no address (named, its credentials hidden).
    #[test]
    fn a_seed_list_is_every_server_of_it() {
        assert_eq!(server_list("nats://127.0.0.1:4222").expect("one").len(), 1);
        let seeds = server_list("nats://10.0.0.1:4222, nats://10.0.0.2:4222,nats://10.0.0.3:4222,")
            .expect("three");
        let ports: Vec<u16> = seeds.iter().map(|s| s.port()).collect();
        assert_eq!(ports, [4222, 4222, 4222]);
        assert_eq!(seeds[1].host(), "10.0.0.2");
        for empty in ["", " , "] {
            let e = server_list(empty).expect_err("empty").to_string();
            assert!(e.contains("no NATS server address"), "{e}");
        }
        let e = server_list("nats://h1:4222,nats://u:pw@h2:99999")
            .expect_err("a bad port")
            .to_string();
        assert!(
            e.contains("nats://***@h2:99999") && !e.contains("pw"),
            "{e}"
        );
        assert!(e.contains("not a NATS server address"), "{e}");
    }

    #[test]
    fn credentials_never_reach_logs() {
        assert_eq!(redacted("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(
            redacted("nats://vigil:s3cret@10.0.0.1:4222"),
            "nats://***@10.0.0.1:4222"
        );
        assert_eq!(
            redacted("nats://a:b@h1:4222,nats://h2:4222,tls://t@h3:4222"),
            "nats://***@h1:4222,nats://h2:4222,tls://***@h3:4222"
        );
    }

    #[test]
    fn publish_subjects_are_checked_token_by_token() {
        assert!(is_publish_subject("alerts.clinic-abc.alert-0001"));
        assert!(is_publish_subject("dlq.VITALS"));
        for bad in [
            "", "a..b", ".a", "a.", "a.*.b", "a.>", "a b", "a\r\nb", "a\u{0}b",
        ] {
            assert!(!is_publish_subject(bad), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_header_with_a_line_break_is_an_error_not_a_panic() {
        let bus = Bus::embedded(4);
        let e = bus
            .send(
                "flow.t.p".into(),
                vec![("Nats-Msg-Id", "t-flow-x\r\nInjected: 1".into())],
                Bytes::new(),
            )
            .await
            .err()
            .expect("refused");
        assert!(matches!(e, BusError::Unpublishable { .. }), "{e}");
        assert_eq!(e.fault(), Fault::Permanent, "never retried");
        let e = bus
            .send("flow.t.bad id".into(), Vec::new(), Bytes::new())
            .await
            .err()
            .expect("refused");
        assert!(matches!(e, BusError::Unpublishable { .. }), "{e}");
    }
}

#[cfg(test)]
mod counters_tests {
    use proptest::prelude::*;

    use super::*;

    /// async-nats's reading of the same subject, through a message of a client that never
    /// connects (a context is needed to build a JetStream message; nothing is sent).
    fn info_of(context: &jetstream::Context, reply: &str) -> Option<Counters> {
        let message = jetstream::Message {
            message: async_nats::Message {
                subject: "vitals.t1.p1".into(),
                reply: Some(reply.into()),
                payload: Bytes::new(),
                headers: None,
                status: None,
                description: None,
                length: 0,
            },
            context: context.clone(),
        };
        message.info().ok().map(|i| Counters {
            stream_sequence: i.stream_sequence,
            consumer_sequence: i.consumer_sequence,
            pending: i.pending,
        })
    }

    /// One client for every case: it never connects (nothing listens on port 1).
    static CONTEXT: std::sync::LazyLock<(tokio::runtime::Runtime, jetstream::Context)> =
        std::sync::LazyLock::new(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            let context = runtime.block_on(async {
                let client = async_nats::ConnectOptions::new()
                    .retry_on_initial_connect()
                    .connect("127.0.0.1:1")
                    .await
                    .expect("a client that connects later");
                jetstream::new(client)
            });
            (runtime, context)
        });

    #[test]
    fn both_forms_of_the_subject() {
        let short = Counters::of("$JS.ACK.VITALS.vigil-vitals.1.2041.17.1764583200000000000.99")
            .expect("the 7-token form");
        assert_eq!(
            short,
            Counters {
                stream_sequence: 2041,
                consumer_sequence: 17,
                pending: 99
            }
        );
        let long = Counters::of(
            "$JS.ACK._.ABCHASH.VITALS.vigil-vitals.3.2041.17.1764583200000000000.0.x7",
        )
        .expect("the form with a domain and an account hash");
        assert_eq!(
            long,
            Counters {
                stream_sequence: 2041,
                consumer_sequence: 17,
                pending: 0
            }
        );
        for other in [
            "",
            "_INBOX.abc.def",
            "$JS.ACK.VITALS.c.1.2.3.4",
            "$JS.ACK.VITALS.c.1.2.3.4.5.6",
            "$JS.ACK.VITALS.c.1.x.3.4.5",
            "$JS.ACK.VITALS.c.1.2..4.5",
            "$JS.ACK.VITALS.c.1.2.3.4.-5",
        ] {
            assert_eq!(Counters::of(other), None, "{other}");
        }
    }

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_-]{1,12}"
    }

    /// A counter's token: mostly a number, sometimes something async-nats refuses.
    fn counter() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => any::<u64>().prop_map(|n| n.to_string()),
            1 => Just(String::new()),
            1 => "[a-z+-]{1,3}[0-9]{0,3}",
            1 => Just("18446744073709551616".to_string()),
        ]
    }

    /// Ours and async-nats's counters are the same, or async-nats refused the subject only for
    /// a token these counters do not read: with the delivery count and the time made numbers,
    /// it reads the same counters.
    fn agrees(context: &jetstream::Context, reply: &str) -> Result<(), TestCaseError> {
        let ours = Counters::of(reply);
        let theirs = info_of(context, reply);
        if ours == theirs {
            return Ok(());
        }
        prop_assert!(
            ours.is_some(),
            "async-nats reads {theirs:?} from {reply}, we nothing"
        );
        let mut tokens: Vec<&str> = reply["$JS.ACK.".len()..].split('.').collect();
        let stream_sequence = if tokens.len() == 7 { 3 } else { 5 };
        tokens[stream_sequence - 1] = "1";
        tokens[stream_sequence + 2] = "0";
        let mended = format!("$JS.ACK.{}", tokens.join("."));
        prop_assert_eq!(ours, info_of(context, &mended), "{} (as {})", reply, mended);
        Ok(())
    }

    proptest! {
        /// The same counters as async-nats reads, or none where it refuses the subject (but for
        /// the tokens these counters skip, see `agrees`): any number of tokens, either form,
        /// numbers up to `u64::MAX` and tokens that are not numbers where the counters are.
        #[test]
        fn the_counters_are_async_nats_s(
            domain in prop::option::of(name()),
            account in name(),
            stream in name(),
            consumer in name(),
            delivered in any::<u32>(),
            stream_sequence in counter(),
            consumer_sequence in counter(),
            published in 0u64..4_000_000_000_000_000_000,
            pending in counter(),
            long in any::<bool>(),
            tail in prop::collection::vec(name(), 0..3),
            cut in 0usize..14,
        ) {
            let context = &CONTEXT.1;
            let mut tokens = Vec::new();
            if long {
                tokens.push(domain.unwrap_or_else(|| "_".into()));
                tokens.push(account);
            }
            tokens.extend([
                stream,
                consumer,
                delivered.to_string(),
                stream_sequence,
                consumer_sequence,
                published.to_string(),
                pending,
            ]);
            tokens.extend(tail);
            let whole = format!("$JS.ACK.{}", tokens.join("."));
            agrees(context, &whole)?;
            tokens.truncate(cut);
            agrees(context, &format!("$JS.ACK.{}", tokens.join(".")))?;
        }
    }
}
