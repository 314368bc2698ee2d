//! One WebSocket connection: subscriptions, snapshot-then-incremental alerts, coalesced patient
//! frames, commands, pings, and the slow-client rule (contracts.md §5).
//!
//! Two tasks per socket that end together (the shape of axum's chat example): the [`Reader`]
//! reads what the client sends, answers pings and malformed frames, and runs the client's
//! commands (up to 32 at once, each answered once its transition is stored); the writer, a
//! [`Session`], owns the subscription and everything fanned out to it, and is the only one to
//! write. The reader hands the writer what must be written or changed, in order, through a
//! bounded channel. So a command waiting for storage never holds back an alert. Answers can
//! come in another order than the commands were sent; their `id` tells them apart.
//!
//! Alert frames are never dropped: the writer reads them from a bounded broadcast, and a
//! client that falls `gateway.client_queue` frames behind (or blocks a write for 5 s, or leaves
//! a window of patient frames unconfirmed for 5 s) is closed with 1013; on reconnect it gets
//! a fresh snapshot. Patient frames arrive from the hub in one coalesced batch per
//! `gateway.patient_flush` and are written after any alert, page or reply, newest state per
//! patient; when they lag, the latest state is taken from the hub.
//!
//! Patient frames are paced by the client's reading ([`PatientWindow`]): every write of them
//! ends with a ping that carries the running count of patient frames written, and at most
//! [`PATIENT_WINDOW`] may be on their way before the client's pong confirms it has read up to
//! them. So however many patients change, at most a window of tiles sits in the socket's
//! buffers ahead of an alert, and the rest coalesce here (latest wins) instead of queueing in
//! the kernel, where an alert would wait behind seconds of tiles on a client that reads slowly.
//!
//! And they are paced by the gateway's budget ([`TileBudget`]): the connections on `patients`
//! share `gateway.patient_frames_per_second` equally. Paced by the clients' reading alone,
//! 1,000 dashboards of a 10,000-patient hospital read tiles as fast as the machine could write
//! them, and every alert waited for the CPU they took; within its share, a connection's
//! tiles coalesce as they do behind the window.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;
use vigil_engine::{CommandKind, Level};

use crate::error::{ErrorCode, GatewayError};
use crate::hub::{
    AlertEntry, Hub, PageEntry, PatientBatch, PatientFrame, Principal, ResourceFrame,
};
use crate::protocol::{ClientMessage, Command, Refused, Request, Subscribe};

/// The largest frame and message a client may send; beyond it the socket is closed with 1009.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// A write that takes longer than this means the client is not reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the closing frame gets to reach a client: a slow one must still learn it was
/// closed with 1013 (and resync), not see the socket drop (1006).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Client messages allowed per second, and the burst above that.
const RATE_PER_SEC: f64 = 20.0;
const RATE_BURST: f64 = 40.0;
/// What the reader may hand the writer before it waits (and so stops reading).
const READER_QUEUE: usize = 64;

/// Commands one socket may have under way; more are refused with `RATE_LIMITED`.
const MAX_COMMANDS_IN_FLIGHT: usize = 32;

/// Patient frames on their way to a client (written, their reading not yet confirmed by a
/// pong): about 20 KiB. An alert written now waits behind at most these in the socket's
/// buffers; a client reads at most this many tiles per round trip (64,000 a second at 1 ms).
const PATIENT_WINDOW: u64 = 64;
/// The fewest patient frames a connection's share of the budget holds, and so the most it
/// writes at once when its share is small: an alert that comes meanwhile waits behind at
/// most these in the socket. 16 against 64 (the window), two alternating pairs at 1,000
/// dashboards (`DASHBOARDS=1000 DURATION=20 scripts/bench live`): last-socket p99 186 and
/// 187 ms against 231 and 289 ms; the window stays 64 for a connection with the budget's
/// room (a window of 16 alone: 240 and 205 ms).
const BUDGET_CHUNK: u64 = 16;
/// Flushed batches of patient frames a connection may hold unwritten (2 s at the default
/// flush); when one more comes, it drops them and later takes the latest of every patient
/// from the hub instead. A snapshot costs a pass over the hub's every patient, under its
/// shards' locks: with 2 here, 1,000 slow dashboards took so many that ingest fell 15,000 to
/// 35,000 readings behind (`DASHBOARDS=1000 scripts/bench live`; with 8 and 32 it kept up).
const QUEUED_BATCHES: usize = 8;

/// What this connection asked for, narrowed to what its token allows.
struct Subscription {
    alerts: bool,
    patients: bool,
    resources: bool,
    pages: bool,
    /// Empty: every unit of the tenant (only for tokens without units).
    units: Vec<String>,
    patient_ids: Vec<String>,
    min_level: Level,
}

impl Subscription {
    fn unit_ok(&self, unit: Option<&str>) -> bool {
        self.units.is_empty() || unit.is_some_and(|u| self.units.iter().any(|x| x == u))
    }
    fn patient_ok(&self, patient: Option<&str>) -> bool {
        self.patient_ids.is_empty()
            || patient.is_some_and(|p| self.patient_ids.iter().any(|x| x == p))
    }
    fn alert_ok(&self, principal: &Principal, e: &AlertEntry) -> bool {
        e.tenant == principal.tenant
            && self.unit_ok(e.unit.as_deref())
            && self.patient_ok(e.patient.as_deref())
            && e.level >= self.min_level
    }
    fn resource_frame_ok(&self, principal: &Principal, f: &ResourceFrame) -> bool {
        f.tenant == principal.tenant && self.unit_ok(f.unit.as_deref())
    }
    fn patient_frame_ok(&self, principal: &Principal, f: &PatientFrame) -> bool {
        *f.tenant == *principal.tenant
            && self.unit_ok(Some(&f.unit_id))
            && self.patient_ok(Some(&f.patient_id))
    }
}

fn error_frame(hub: &Hub, id: Option<&str>, code: ErrorCode, message: impl Into<String>) -> String {
    hub.metrics.error(code);
    GatewayError::new(code, message).frame(id)
}

async fn recv_or_wait<T: Clone>(rx: &mut Option<broadcast::Receiver<T>>) -> Result<T, RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Why the writer closes a socket: the close code and the reason the client reads.
type Closing = (u16, &'static str);

const TOO_SLOW: Closing = (
    close_code::AGAIN,
    "too slow for alerts; reconnect for a fresh snapshot",
);
const SHUTTING_DOWN: Closing = (close_code::AWAY, "gateway shutting down");

/// What the reader hands the writer, in the order the client's frames caused it.
enum FromReader {
    /// A frame to write: an answer, an error, a pong.
    Frame(String),
    /// A `subscribe` to apply (the writer owns the subscription).
    Subscribe(Subscribe),
    /// The client closed: finish the closing handshake and end.
    Closed,
    /// The client broke a rule the reader enforces: close with this.
    Close(Closing),
}

/// When the client was last heard from (any frame, pongs included), in nanoseconds since the
/// session started: written by the reader, read by the writer's liveness check. Nanoseconds,
/// not milliseconds: a pong on loopback can come back within the millisecond of its ping, and
/// a truncated time would then look older than the ping it answers.
struct Heard {
    start: Instant,
    nanos: AtomicU64,
}

impl Heard {
    fn now(&self) {
        let nanos = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.nanos.store(nanos, Relaxed);
    }

    fn at(&self) -> Instant {
        self.start + Duration::from_nanos(self.nanos.load(Relaxed))
    }
}

/// The running count of patient frames the latest pong says the client has read (written by
/// the reader, read by the writer, which it wakes).
#[derive(Default)]
struct Confirmed {
    frames: AtomicU64,
    pong: Notify,
}

impl Confirmed {
    /// A pong's payload: an 8-byte big-endian count is the writer's (any other, such as the
    /// empty payload of a liveness ping's pong, is not).
    fn pong(&self, payload: &[u8]) {
        if let Ok(count) = <[u8; 8]>::try_from(payload) {
            self.frames.store(u64::from_be_bytes(count), Relaxed);
            self.pong.notify_one();
        }
    }
}

/// The writer's side of the patient frames' pacing (see the module documentation).
struct PatientWindow {
    confirmed: Arc<Confirmed>,
    /// Patient frames written so far.
    written: u64,
    /// Of those, the frames the client confirmed reading.
    read: u64,
    /// When the window was found full.
    full_since: Option<Instant>,
}

impl PatientWindow {
    fn new(confirmed: Arc<Confirmed>) -> Self {
        PatientWindow {
            confirmed,
            written: 0,
            read: 0,
            full_since: None,
        }
    }

    /// How many more patient frames may be written now. A count beyond what was written (a
    /// pong the client made up) and one below what was read (a pong that came late) change
    /// nothing.
    fn room(&mut self, now: Instant) -> usize {
        let count = self.confirmed.frames.load(Relaxed);
        if count <= self.written {
            self.read = self.read.max(count);
        }
        let room = PATIENT_WINDOW.saturating_sub(self.written - self.read);
        if room == 0 {
            self.full_since.get_or_insert(now);
        } else {
            self.full_since = None;
        }
        usize::try_from(room).unwrap_or(usize::MAX)
    }

    /// When a client that has not confirmed a full window by then is taken for one that
    /// stopped reading: [`WRITE_TIMEOUT`] after the window filled, as for a blocked write (every
    /// WebSocket client answers a ping while it reads; RFC 6455 section 5.5.2).
    fn unread_deadline(&self) -> Instant {
        self.full_since.unwrap_or_else(Instant::now) + WRITE_TIMEOUT
    }

    /// Counts `n` frames written; returns the ping payload that asks the client to confirm them.
    fn wrote(&mut self, n: usize) -> bytes::Bytes {
        self.written += n as u64;
        bytes::Bytes::copy_from_slice(&self.written.to_be_bytes())
    }
}

/// A connection's share of `gateway.patient_frames_per_second` (see the module
/// documentation): a token bucket that fills at the share's rate, holding at most a quarter
/// second of it and never less than [`BUDGET_CHUNK`], so a connection with a small share
/// writes its tiles a chunk at a time, not one per wake-up.
struct TileBudget {
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

impl TileBudget {
    fn new(now: Instant) -> Self {
        TileBudget {
            tokens: BUDGET_CHUNK as f64,
            at: now,
        }
    }

    fn most(rate: f64) -> f64 {
        (rate / 4.0).max(BUDGET_CHUNK as f64)
    }

    /// How many patient frames the share allows now, at `rate` a second (none: no limit).
    fn room(&mut self, now: Instant, rate: Option<f64>) -> usize {
        let Some(rate) = rate else {
            return usize::MAX;
        };
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(Self::most(rate));
        self.at = now;
        self.tokens.max(0.0) as usize
    }

    fn spend(&mut self, n: usize) {
        self.tokens -= n as f64;
    }

    /// When the share, at `rate`, next allows a chunk of frames.
    fn refilled_at(&self, rate: Option<f64>) -> Instant {
        let Some(rate) = rate.filter(|r| *r > 0.0) else {
            return self.at;
        };
        let short = (BUDGET_CHUNK as f64 - self.tokens).max(0.0);
        self.at + Duration::from_secs_f64((short / rate).min(60.0))
    }
}

/// One connection counted among those subscribed to `patients` while it lives.
struct PatientShare(Arc<Hub>);

impl PatientShare {
    fn new(hub: &Arc<Hub>) -> Self {
        hub.patient_connections.fetch_add(1, Relaxed);
        PatientShare(hub.clone())
    }
}

impl Drop for PatientShare {
    fn drop(&mut self) {
        self.0.patient_connections.fetch_sub(1, Relaxed);
    }
}

/// Patient frames still to write to one connection: the hub's flushed batches as they came
/// (shared, not copied: at 1,000 connections, copying each batch's frames into each
/// connection's own map took the gateway's whole thread), or, when the client fell behind by
/// more than [`QUEUED_BATCHES`] of them, the hub's latest frame of every patient in scope,
/// taken when the next frame can be written. Latest wins: a batch's frame a newer one replaced
/// is skipped, a snapshot's is written as the hub's latest ([`Origin`]); a frame outside the
/// subscription is skipped.
#[derive(Default)]
struct PatientsDue {
    batches: VecDeque<PatientBatch>,
    /// Frames of the front batch already looked at.
    at: usize,
    /// The latest frames of the patients in scope, taken from the hub's store.
    snapshot: Vec<Arc<PatientFrame>>,
    /// A snapshot is to be taken before anything newer is written.
    resync: bool,
}

impl PatientsDue {
    fn is_empty(&self) -> bool {
        self.batches.is_empty() && self.snapshot.is_empty() && !self.resync
    }

    fn clear(&mut self) {
        *self = PatientsDue::default();
    }

    /// A flush's batch. A connection that already holds [`QUEUED_BATCHES`] unwritten, or is
    /// to take a snapshot, does not keep it: the snapshot will hold what it holds.
    fn push(&mut self, batch: PatientBatch) {
        if self.resync {
            return;
        }
        if self.batches.len() >= QUEUED_BATCHES {
            self.resync();
        } else {
            self.batches.push_back(batch);
        }
    }

    /// From now on, take the latest of every patient from the hub (on subscribe, and when the
    /// connection fell behind).
    fn resync(&mut self) {
        self.batches.clear();
        self.at = 0;
        self.resync = true;
    }

    /// The next frame to look at, oldest first, and where it was taken from; `take_snapshot`
    /// gives the hub's latest frames when one is due.
    fn next(
        &mut self,
        take_snapshot: impl FnOnce() -> Vec<Arc<PatientFrame>>,
    ) -> Option<(Arc<PatientFrame>, Origin)> {
        if let Some(f) = self.snapshot.pop() {
            return Some((f, Origin::Snapshot));
        }
        if self.resync {
            self.resync = false;
            self.snapshot = take_snapshot();
            return self.snapshot.pop().map(|f| (f, Origin::Snapshot));
        }
        loop {
            let batch = self.batches.front()?;
            // A replaced frame is passed over where it lies: a clone and drop of every frame
            // of every batch, on counts that 1,000 connections share, was three quarters of
            // the work here (perf annotate) when most of them are replaced before their turn.
            while let Some(f) = batch.get(self.at) {
                self.at += 1;
                if !f.is_superseded() {
                    return Some((f.clone(), Origin::Batch));
                }
            }
            self.batches.pop_front();
            self.at = 0;
        }
    }
}

/// Where a due patient frame was taken from, which decides what a newer frame of its patient
/// means for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A flushed batch: a newer frame comes in a later batch, so a replaced one is skipped.
    Batch,
    /// The hub, when the connection resynced: no batch brings what replaced it, so the hub's
    /// latest is written instead. A connection writing a snapshot slowly (its share of the
    /// budget, or a slow reader) writes every patient's latest once, rather than skipping
    /// nearly all of them and taking the snapshot again.
    Snapshot,
}

/// Serves one upgraded connection until it closes, the client is too slow, or shutdown.
pub async fn run(ws: WebSocket, principal: Principal, hub: Arc<Hub>) {
    hub.metrics.connected.fetch_add(1, Relaxed);
    hub.metrics.connections_total.fetch_add(1, Relaxed);
    let (tx, rx) = ws.split();
    let heard = Arc::new(Heard {
        start: Instant::now(),
        nanos: AtomicU64::new(0),
    });
    let (to_writer, from_reader) = mpsc::channel(READER_QUEUE);
    let confirmed = Arc::new(Confirmed::default());
    let reader = Reader {
        hub: hub.clone(),
        principal: principal.clone(),
        tokens: RATE_BURST,
        refilled: Instant::now(),
        commands: FuturesUnordered::new(),
        to_writer,
        heard: heard.clone(),
        confirmed: confirmed.clone(),
    };
    let mut reading = tokio::spawn(reader.run(rx));
    let session = Session::new(hub.clone(), principal, confirmed);
    // The writer ends when the reader does (its channel closes) or on its own (a slow client,
    // shutdown). In the second case it sent a close frame, and the reader reads on until the
    // client's own close (the closing handshake): a socket dropped while the client's pongs
    // still arrive would answer them with a reset, and the client's system would discard the
    // close frame, 1013 and all, before the client read it.
    session.run(tx, from_reader, &heard).await;
    if tokio::time::timeout(CLOSE_TIMEOUT, &mut reading)
        .await
        .is_err()
    {
        reading.abort();
    }
    hub.metrics.connected.fetch_sub(1, Relaxed);
}

/// The receive half: what the client sends, and the commands it started.
struct Reader {
    hub: Arc<Hub>,
    principal: Principal,
    tokens: f64,
    refilled: Instant,
    /// Commands under way, each resolving to the frame that answers it (none for a quiet
    /// receipt).
    commands: FuturesUnordered<BoxFuture<'static, Option<String>>>,
    to_writer: mpsc::Sender<FromReader>,
    heard: Arc<Heard>,
    confirmed: Arc<Confirmed>,
}

impl Reader {
    async fn run(mut self, mut rx: SplitStream<WebSocket>) {
        loop {
            let out = tokio::select! {
                biased;
                msg = rx.next() => {
                    self.heard.now();
                    match msg {
                        // Nothing is started for a socket being closed.
                        Some(Ok(Message::Text(text))) if !self.to_writer.is_closed() => {
                            self.on_text(text.as_str())
                        }
                        Some(Ok(Message::Binary(_))) => Some(FromReader::Frame(error_frame(
                            &self.hub,
                            None,
                            ErrorCode::BadRequest,
                            "binary frames are not supported; send JSON text",
                        ))),
                        Some(Ok(Message::Close(_))) => {
                            let _ = self.to_writer.send(FromReader::Closed).await;
                            return;
                        }
                        Some(Err(e)) if too_large(&e) => {
                            // A frame or message over 64 KiB: refused, counted, closed with 1009.
                            self.hub.metrics.oversize_closes.fetch_add(1, Relaxed);
                            let close = (close_code::SIZE, "message larger than 64 KiB");
                            let _ = self.to_writer.send(FromReader::Close(close)).await;
                            return;
                        }
                        None | Some(Err(_)) => return,
                        Some(Ok(Message::Pong(payload))) => {
                            self.confirmed.pong(&payload);
                            None
                        }
                        // Pings are answered by the WebSocket layer.
                        Some(Ok(_)) => None,
                    }
                },
                Some(reply) = self.commands.next(), if !self.commands.is_empty() => {
                    reply.map(FromReader::Frame)
                }
            };
            // Once the writer has ended, what comes is read and dropped until the client's
            // close.
            if let Some(out) = out {
                let _ = self.to_writer.send(out).await;
            }
        }
    }

    fn rate_ok(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * RATE_PER_SEC).min(RATE_BURST);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn on_text(&mut self, text: &str) -> Option<FromReader> {
        let decoded = ClientMessage::decode(text);
        let id = match &decoded {
            Ok((id, _)) | Err(Refused { id, .. }) => id.clone(),
        };
        if !self.rate_ok() {
            return Some(FromReader::Frame(error_frame(
                &self.hub,
                id.as_deref(),
                ErrorCode::RateLimited,
                "more than 20 messages per second; slow down",
            )));
        }
        match decoded {
            Ok((_, Request::Ping)) => Some(FromReader::Frame(r#"{"type":"pong"}"#.to_string())),
            Ok((_, Request::Subscribe(sub))) => Some(FromReader::Subscribe(sub)),
            Ok((id, Request::Command(c))) => {
                // The contract's receipt and decline carry no `id`: without one, only an error
                // is answered.
                let paging = matches!(c.kind, CommandKind::Receipt | CommandKind::Decline);
                let quiet = paging && id.is_none();
                self.command(c, id, quiet).map(FromReader::Frame)
            }
            Err(Refused { id, message }) => Some(FromReader::Frame(error_frame(
                &self.hub,
                id.as_deref(),
                ErrorCode::BadRequest,
                message,
            ))),
        }
    }

    /// Starts a command beside the reading; its answer (`result` or `error`, none for a
    /// `quiet` success) is handed to the writer when it completes. Returns the refusal when
    /// too many are under way.
    fn command(&mut self, c: Command, id: Option<String>, quiet: bool) -> Option<String> {
        if self.commands.len() >= MAX_COMMANDS_IN_FLIGHT {
            return Some(error_frame(
                &self.hub,
                id.as_deref(),
                ErrorCode::RateLimited,
                format!("more than {MAX_COMMANDS_IN_FLIGHT} commands under way; wait for answers"),
            ));
        }
        let (hub, principal) = (self.hub.clone(), self.principal.clone());
        self.commands.push(Box::pin(async move {
            let id = id.as_deref();
            match hub.command(&principal, c).await {
                Ok(_) if quiet => None,
                Ok(alert) => {
                    let alert = serde_json::to_value(&alert).unwrap_or_default();
                    Some(
                        json!({"type": "result", "id": id, "ok": true, "alert": alert}).to_string(),
                    )
                }
                Err(e) => Some(GatewayError::from(&e).frame(id)),
            }
        }));
        None
    }
}

/// Whether a read failed because the client sent a frame or message over [`MAX_MESSAGE`].
fn too_large(e: &axum::Error) -> bool {
    let inner = std::error::Error::source(e);
    matches!(
        inner.and_then(|i| i.downcast_ref::<tokio_tungstenite::tungstenite::Error>()),
        Some(tokio_tungstenite::tungstenite::Error::Capacity(_))
    )
}

/// The send half: the subscription and everything fanned out to it.
struct Session {
    hub: Arc<Hub>,
    principal: Principal,
    sub: Option<Subscription>,
    alerts: Option<broadcast::Receiver<Arc<AlertEntry>>>,
    patients: Option<broadcast::Receiver<PatientBatch>>,
    resources: Option<broadcast::Receiver<Arc<ResourceFrame>>>,
    pages: Option<broadcast::Receiver<Arc<PageEntry>>>,
    /// Page sends (id, attempt) already written to this connection.
    pages_sent: HashMap<String, u32>,
    /// Versions sent in the snapshot: older broadcast copies are skipped.
    snapshot_versions: HashMap<String, u64>,
    patients_due: PatientsDue,
    pending_resources: HashMap<String, Arc<ResourceFrame>>,
    window: PatientWindow,
    budget: TileBudget,
    /// Held while subscribed to `patients`: counts this connection among those sharing the
    /// budget.
    share: Option<PatientShare>,
}

impl Session {
    /// A connection's writer before its first `subscribe`; `confirmed` is what its reader
    /// records of the client's pongs.
    fn new(hub: Arc<Hub>, principal: Principal, confirmed: Arc<Confirmed>) -> Self {
        Session {
            hub,
            principal,
            sub: None,
            alerts: None,
            patients: None,
            resources: None,
            pages: None,
            pages_sent: HashMap::new(),
            snapshot_versions: HashMap::new(),
            patients_due: PatientsDue::default(),
            pending_resources: HashMap::new(),
            window: PatientWindow::new(confirmed),
            budget: TileBudget::new(Instant::now()),
            share: None,
        }
    }

    async fn run(
        mut self,
        mut tx: SplitSink<WebSocket, Message>,
        mut from_reader: mpsc::Receiver<FromReader>,
        heard: &Heard,
    ) {
        let hub = self.hub.clone();
        let mut shutdown = hub.shutdown.subscribe();
        let mut flush = tokio::time::interval(
            hub.config
                .patient_flush
                .as_std()
                .max(Duration::from_millis(10)),
        );
        // Frames to write: patient tiles are the hub's own text, shared (no copy per socket).
        let mut out: Vec<Utf8Bytes> = Vec::new();
        // Liveness: a socket that never subscribes is closed after `idle_timeout` of silence;
        // one silent for `ping_interval` is pinged, and closed if still silent after another.
        let idle_timeout = hub.config.idle_timeout.as_std();
        let ping_interval = hub.config.ping_interval.as_std();
        let mut pinged: Option<Instant> = None;
        let mut liveness = tokio::time::interval(Duration::from_millis(
            (idle_timeout.min(ping_interval).as_millis() as u64 / 4).clamp(25, 1000),
        ));
        liveness.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let close: Option<Closing> = loop {
            out.clear();
            let mut ping = false;
            let mut confirm: Option<bytes::Bytes> = None;
            let due = !self.patients_due.is_empty();
            let share = hub.patient_share();
            let (window_room, budget_room) = if due {
                let now = Instant::now();
                (self.window.room(now), self.budget.room(now, share))
            } else {
                (0, 0)
            };
            let room = window_room.min(budget_room);
            let waiting = due && window_room == 0;
            let over_budget = due && window_room > 0 && budget_room == 0;
            // Biased, in this order: what the reader hands on, alerts and pages before patient
            // tiles. Patient frames are written last, as many as the window and the connection's
            // share of the budget allow: a socket that is behind with them still gets an alert
            // after at most a window, and their backlog coalesces (latest wins) instead of
            // queueing.
            tokio::select! {
                biased;
                r = from_reader.recv() => match r {
                    Some(FromReader::Frame(f)) => out.push(f.into()),
                    Some(FromReader::Subscribe(sub)) => self.subscribe(sub, &mut out),
                    Some(FromReader::Closed) => {
                        // The WebSocket layer queued the reply; send it, so a normal disconnect
                        // is a clean close (1000 echoed), not a dropped socket (1006).
                        let _ = tokio::time::timeout(Duration::from_secs(1), tx.close()).await;
                        break None;
                    }
                    Some(FromReader::Close(closing)) => break Some(closing),
                    // The reader ended: the client is gone.
                    None => break None,
                },
                _ = liveness.tick() => {
                    let heard_at = heard.at();
                    if pinged.is_some_and(|at| heard_at >= at) {
                        pinged = None;
                    }
                    let silent = heard_at.elapsed();
                    if self.sub.is_none() && silent >= idle_timeout {
                        hub.metrics.idle_closes.fetch_add(1, Relaxed);
                        break Some((close_code::POLICY, "no subscribe and nothing sent: closed as idle"));
                    }
                    match pinged {
                        Some(at) if at.elapsed() >= ping_interval => {
                            hub.metrics.ping_timeouts.fetch_add(1, Relaxed);
                            break Some((close_code::ERROR, "no answer to ping: closed as unresponsive"));
                        }
                        None if silent >= ping_interval => {
                            pinged = Some(Instant::now());
                            ping = true;
                        }
                        _ => {}
                    }
                },
                r = recv_or_wait(&mut self.alerts) => match r {
                    Ok(entry) => {
                        self.on_alert(&entry, &mut out);
                        // Batch whatever else is ready into the same write.
                        let mut lagged = false;
                        for _ in 0..256 {
                            let Some(rx) = self.alerts.as_mut() else { break };
                            match rx.try_recv() {
                                Ok(e) => self.on_alert(&e, &mut out),
                                Err(broadcast::error::TryRecvError::Lagged(_)) => { lagged = true; break; }
                                Err(_) => break,
                            }
                        }
                        if lagged {
                            break Some(TOO_SLOW);
                        }
                    }
                    Err(RecvError::Lagged(_)) => break Some(TOO_SLOW),
                    Err(RecvError::Closed) => break Some(SHUTTING_DOWN),
                },
                r = recv_or_wait(&mut self.pages) => match r {
                    Ok(page) => self.on_page(&page, &mut out),
                    // Pages are never dropped: a pager too slow for them reconnects and gets every
                    // page still waiting.
                    Err(RecvError::Lagged(_)) => {
                        break Some((close_code::AGAIN, "too slow for pages; reconnect to get every waiting page"));
                    }
                    Err(RecvError::Closed) => break Some(SHUTTING_DOWN),
                },
                r = recv_or_wait(&mut self.patients) => match r {
                    Ok(batch) => self.on_patients(batch),
                    Err(RecvError::Lagged(_)) => self.resync_patients(),
                    Err(RecvError::Closed) => self.patients = None,
                },
                r = recv_or_wait(&mut self.resources) => match r {
                    Ok(frame) => self.on_resource(frame),
                    Err(RecvError::Lagged(_)) => self.resync_resources(),
                    Err(RecvError::Closed) => self.resources = None,
                },
                _ = flush.tick(), if !self.pending_resources.is_empty() => {
                    hub.metrics.resource_frames.fetch_add(self.pending_resources.len() as u64, Relaxed);
                    out.extend(self.pending_resources.drain().map(|(_, f)| f.json.clone().into()));
                },
                _ = shutdown.changed() => break Some(SHUTTING_DOWN),
                () = std::future::ready(()), if room > 0 => {
                    let n = self.take_patients(room, &mut out);
                    if n > 0 {
                        self.budget.spend(n);
                        hub.metrics.patient_frames.fetch_add(n as u64, Relaxed);
                        confirm = Some(self.window.wrote(n));
                    }
                },
                // A full window opens with the client's pong; without one in time, the client
                // is too slow, as one whose write blocks is.
                () = self.window.confirmed.pong.notified(), if waiting => {},
                () = tokio::time::sleep_until(self.budget.refilled_at(share).into()), if over_budget => {},
                () = tokio::time::sleep_until(self.window.unread_deadline().into()), if waiting => {
                    break Some(TOO_SLOW);
                },
            }
            if !out.is_empty() || ping {
                let write = async {
                    if ping {
                        tx.feed(Message::Ping(bytes::Bytes::new())).await?;
                    }
                    for frame in out.drain(..) {
                        tx.feed(Message::Text(frame)).await?;
                    }
                    if let Some(count) = confirm {
                        tx.feed(Message::Ping(count)).await?;
                    }
                    tx.flush().await
                };
                match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break None,
                    Err(_) => break Some(TOO_SLOW),
                }
            }
        };
        if let Some((code, reason)) = close {
            if code == close_code::AGAIN {
                hub.metrics.slow_client_closes.fetch_add(1, Relaxed);
            }
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, tx.send(Message::Close(Some(frame)))).await;
        }
    }

    fn subscribe(&mut self, req: Subscribe, out: &mut Vec<Utf8Bytes>) {
        let hub = self.hub.clone();
        let id = req.id.as_deref();
        if req.channels.is_empty() {
            out.push(
                error_frame(
                    &hub,
                    id,
                    ErrorCode::BadRequest,
                    "`channels` must name at least one channel",
                )
                .into(),
            );
            return;
        }
        if let Some(c) = req
            .channels
            .iter()
            .find(|c| !["alerts", "patients", "resources", "pages"].contains(&c.as_str()))
        {
            out.push(
                error_frame(
                    &hub,
                    id,
                    ErrorCode::BadRequest,
                    format!("unknown channel `{c}`"),
                )
                .into(),
            );
            return;
        }
        let p = &self.principal;
        let units = if p.units.is_empty() {
            req.units
        } else if req.units.is_empty() {
            p.units.clone()
        } else if let Some(u) = req.units.iter().find(|u| !p.units.contains(u)) {
            out.push(
                error_frame(
                    &hub,
                    id,
                    ErrorCode::Forbidden,
                    format!("unit `{u}` is not covered by this token"),
                )
                .into(),
            );
            return;
        } else {
            req.units
        };
        let has = |c: &str| req.channels.iter().any(|x| x == c);
        let sub = Subscription {
            alerts: has("alerts"),
            patients: has("patients"),
            resources: has("resources"),
            pages: has("pages"),
            units,
            patient_ids: req.patients,
            min_level: req.min_level.unwrap_or(Level::Info),
        };
        out.push(json!({"type": "subscribed", "id": id}).to_string().into());
        // Subscribe to the broadcast first, then read the store: nothing falls in between, and
        // copies older than the snapshot's are skipped by version.
        self.alerts = sub.alerts.then(|| hub.alert_tx.subscribe());
        self.snapshot_versions.clear();
        if sub.alerts {
            let mut entries = hub.alerts_in_scope(&self.principal, None);
            entries.retain(|e| sub.alert_ok(&self.principal, e));
            for e in &entries {
                self.snapshot_versions.insert(e.alert_id.clone(), e.version);
            }
            out.push(Hub::alerts_json(r#""type":"snapshot","#, &entries).into());
        }
        self.patients = sub.patients.then(|| hub.patient_tx.subscribe());
        self.patients_due.clear();
        if !sub.patients {
            self.share = None;
        } else if self.share.is_none() {
            self.share = Some(PatientShare::new(&hub));
        }
        self.resources = sub.resources.then(|| hub.resource_tx.subscribe());
        self.pending_resources.clear();
        // Pages: subscribe first, then send every page still waiting for a receipt.
        self.pages = sub.pages.then(|| hub.page_tx.subscribe());
        self.pages_sent.clear();
        let waiting = if sub.pages {
            hub.pending_pages(&self.principal)
        } else {
            Vec::new()
        };
        self.sub = Some(sub);
        for page in &waiting {
            self.on_page(page, out);
        }
        if self.patients.is_some() {
            self.resync_patients();
        }
        if self.resources.is_some() {
            self.resync_resources();
        }
    }

    fn on_resource(&mut self, f: Arc<ResourceFrame>) {
        if let Some(sub) = &self.sub
            && sub.resources
            && sub.resource_frame_ok(&self.principal, &f)
        {
            self.pending_resources.insert(f.key.clone(), f);
        }
    }

    /// Every resource's latest frame in scope: on subscribe (the front desk's starting
    /// picture) and after lagging behind.
    fn resync_resources(&mut self) {
        let Some(sub) = &self.sub else { return };
        for f in self.hub.resources.iter() {
            if sub.resource_frame_ok(&self.principal, f.value()) {
                self.pending_resources
                    .insert(f.key.clone(), f.value().clone());
            }
        }
    }

    fn on_alert(&mut self, e: &AlertEntry, out: &mut Vec<Utf8Bytes>) {
        let Some(sub) = &self.sub else { return };
        if !sub.alert_ok(&self.principal, e) {
            return;
        }
        if let Some(&v) = self.snapshot_versions.get(&e.alert_id) {
            if e.version <= v {
                return;
            }
            self.snapshot_versions.remove(&e.alert_id);
        }
        self.hub.metrics.alert_frames.fetch_add(1, Relaxed);
        out.push(e.frame());
    }

    /// A flush's batch, kept as it is: its frames are looked at only when they can be written.
    fn on_patients(&mut self, batch: PatientBatch) {
        if self.sub.is_some() {
            self.patients_due.push(batch);
        }
    }

    /// Moves at most `n` patient frames due to `out`, each the latest of its patient and in
    /// scope; returns how many.
    fn take_patients(&mut self, n: usize, out: &mut Vec<Utf8Bytes>) -> usize {
        let Some(sub) = &self.sub else { return 0 };
        let (hub, principal) = (&self.hub, &self.principal);
        let mut taken = 0;
        while taken < n {
            let Some((f, origin)) = self.patients_due.next(|| {
                hub.patients
                    .iter()
                    .filter(|f| sub.patient_frame_ok(principal, f.value()))
                    .map(|f| f.value().clone())
                    .collect()
            }) else {
                break;
            };
            let f = match origin {
                _ if !f.is_superseded() => f,
                Origin::Batch => continue,
                Origin::Snapshot => {
                    match hub.patients.get(&(f.tenant.clone(), f.patient_id.clone())) {
                        Some(latest) => latest.clone(),
                        None => continue,
                    }
                }
            };
            if !sub.patient_frame_ok(principal, &f) {
                continue;
            }
            out.push(f.text());
            taken += 1;
        }
        taken
    }

    fn resync_patients(&mut self) {
        self.patients_due.resync();
    }

    fn on_page(&mut self, page: &PageEntry, out: &mut Vec<Utf8Bytes>) {
        if !self.sub.as_ref().is_some_and(|s| s.pages) || !page.reaches(&self.principal) {
            return;
        }
        let sent = self
            .pages_sent
            .entry(page.page.page_id.clone())
            .or_insert(0);
        if *sent >= page.page.attempts {
            return;
        }
        *sent = page.page.attempts;
        if self.pages_sent.len() > 4096 {
            let hub = self.hub.clone();
            self.pages_sent.retain(|id, _| hub.pages.contains_key(id));
        }
        self.hub.metrics.page_frames.fetch_add(1, Relaxed);
        out.push(page.frame());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::future::Future;
    use std::pin::Pin;

    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
    use vigil_config::Config;
    use vigil_engine::{Alert, CommandError};

    use super::*;
    use crate::hub::CommandPort;
    use vigil_engine::AlertCommand;

    struct NoCommands;

    impl CommandPort for NoCommands {
        fn execute(
            &self,
            req: AlertCommand,
        ) -> Pin<Box<dyn Future<Output = Result<Alert, CommandError>> + Send>> {
            Box::pin(async move { Err(CommandError::NotFound(req.alert_id)) })
        }

        /// `patient-1` is kept in icu-3 and `patient-2` in ward-9, both of tenant t1.
        fn patient(&self, tenant: String, patient_id: String) -> crate::ViewFuture {
            let unit = match (tenant.as_str(), patient_id.as_str()) {
                ("t1", "patient-1") => Some("icu-3"),
                ("t1", "patient-2") => Some("ward-9"),
                _ => None,
            };
            Box::pin(async move {
                Ok(unit.map(|u| serde_json::json!({"patientId": patient_id, "unitId": u})))
            })
        }
    }

    fn hub(client_queue: usize) -> Arc<Hub> {
        hub_with(client_queue, Arc::new(NoCommands))
    }

    fn hub_with(client_queue: usize, commands: Arc<dyn CommandPort>) -> Arc<Hub> {
        hub_of(&format!("client_queue = {client_queue}"), commands)
    }

    /// A hub with `gateway` as its `[gateway]` section and a nurse's token of `icu-3`.
    fn hub_of(gateway: &str, commands: Arc<dyn CommandPort>) -> Arc<Hub> {
        let text = format!(
            "[gateway]\n{gateway}\n[[auth.tokens]]\ntoken = \"nurse-token\"\n\
             tenant = \"t1\"\nrole = \"nurse\"\nunits = [\"icu-3\"]\n"
        );
        let hub = Hub::new(&Config::from_toml(&text, "test").unwrap(), Vec::new());
        hub.set_commands(commands);
        hub
    }

    /// Commands that never finish: their transition is never stored.
    struct NeverStored;

    impl CommandPort for NeverStored {
        fn execute(
            &self,
            _: AlertCommand,
        ) -> Pin<Box<dyn Future<Output = Result<Alert, CommandError>> + Send>> {
            Box::pin(std::future::pending())
        }

        fn patient(&self, _: String, _: String) -> crate::ViewFuture {
            Box::pin(async { Err("the engine does not answer".to_string()) })
        }
    }

    #[tokio::test]
    async fn a_patient_view_is_shown_only_within_the_token_s_units() {
        let hub = hub(8);
        let nurse = hub.authenticate("nurse-token").unwrap().clone();
        let view = hub.patient_view(&nurse, "patient-1").await.unwrap();
        assert_eq!(view["unitId"], "icu-3");
        // Kept, but in a unit outside the token: not found, as an unknown patient is.
        for unknown in ["patient-2", "patient-3"] {
            let e = hub.patient_view(&nurse, unknown).await.unwrap_err();
            assert_eq!(e.code, crate::ErrorCode::PatientNotFound, "{unknown}");
            assert!(e.message.contains(unknown), "{}", e.message);
        }
        // An engine that cannot be asked is UNAVAILABLE, with its reason.
        let hub = hub_with(8, Arc::new(NeverStored));
        let e = hub.patient_view(&nurse, "patient-1").await.unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::Unavailable);
        assert!(e.message.contains("does not answer"), "{}", e.message);
    }

    #[test]
    fn a_pong_within_the_millisecond_of_its_ping_counts_as_an_answer() {
        // The session started 0.7 ms ago; a ping goes out now and its pong comes straight back.
        let heard = Heard {
            start: Instant::now() - Duration::from_micros(700),
            nanos: AtomicU64::new(0),
        };
        let pinged = Instant::now();
        heard.now();
        assert!(heard.at() >= pinged, "the pong looks older than its ping");
    }

    #[tokio::test]
    async fn a_command_waiting_for_storage_does_not_hold_back_alerts() {
        let hub = hub_with(64, Arc::new(NeverStored));
        hub.set_ready(true);
        let first = alert(0);
        hub.publish_alert(&first);
        let mut c = connect(&hub).await;
        subscribe_alerts(&mut c).await;
        let ack = json!({"type": "ack", "id": "c1", "alertId": first.alert_id});
        c.send(Message::text(ack.to_string())).await.unwrap();
        // The ack is still under way; new alerts reach the dashboard all the same.
        let next = alert(1);
        hub.publish_alert(&next);
        let f = tokio::time::timeout(std::time::Duration::from_secs(5), next_json(&mut c))
            .await
            .expect("the alert was held back behind the command");
        assert_eq!(f["type"], "alert");
        assert_eq!(f["alert"]["alertId"], next.alert_id.as_str());
    }

    #[test]
    fn an_alert_frame_is_built_once_and_holds_the_alert_s_json() {
        let a = alert(7);
        let json = serde_json::to_string(&a).unwrap();
        let entry = AlertEntry::of(&a, &json);
        assert_eq!(entry.json(), json, "the data as the engine serialized it");
        let frame: serde_json::Value = serde_json::from_str(entry.frame().as_str()).unwrap();
        let data: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(frame, json!({"type": "alert", "alert": data}));
        // Every connection writes the same bytes, not a copy of its own.
        assert_eq!(
            entry.frame().as_str().as_ptr(),
            entry.frame().as_str().as_ptr()
        );
    }

    #[test]
    fn a_waiting_page_shares_its_alert_and_builds_its_frame_once() {
        let hub = hub(16);
        let mut a = alert(8);
        a.escalation.page = Some(vigil_engine::Page {
            page_id: "page-8-1".into(),
            level: 1,
            targets: vec!["role:nurse@icu-3".into()],
            state: vigil_engine::PageState::Sent,
            sent_at: a.emitted_at,
            attempts: 1,
            by: None,
            at: None,
        });
        hub.publish_alert(&a);
        let nurse = hub.authenticate("nurse-token").unwrap().clone();
        let pending = hub.pending_pages(&nurse);
        let [page] = pending.as_slice() else {
            panic!("one page waits, not {}", pending.len());
        };
        // The page holds the hub's entry of the alert, not a copy of its JSON.
        let held = hub.alerts.get(&a.alert_id).unwrap().clone();
        assert!(Arc::ptr_eq(&page.alert, &held));
        let frame: serde_json::Value = serde_json::from_str(page.frame().as_str()).unwrap();
        let data: serde_json::Value = serde_json::from_str(held.json()).unwrap();
        assert_eq!(
            frame,
            json!({"type": "page", "pageId": "page-8-1", "alert": data})
        );
        // Every pager connection writes the same bytes.
        assert_eq!(
            page.frame().as_str().as_ptr(),
            page.frame().as_str().as_ptr()
        );
    }

    fn alert(n: u64) -> Alert {
        use vigil_engine::{Patient, Settings, Timestamp, Vitals};
        let mut p = Patient::new("t1", &format!("p{n}"), "icu-3");
        let v = Vitals {
            hr: Some(140.0),
            rr: Some(30.0),
            spo2: Some(85.0),
            ..Vitals::default()
        };
        let s = Settings::default();
        p.observe("icu-3", &v, Timestamp(1000), Timestamp(1000), &s);
        p.observe("icu-3", &v, Timestamp(2000), Timestamp(2000), &s)
            .alerts
            .pop()
            .expect("alert")
    }

    #[tokio::test]
    async fn a_new_command_port_replaces_the_old_one() {
        let h = hub_with(8, Arc::new(NeverStored));
        h.set_ready(true);
        let a = alert(1);
        h.publish_alert(&a);
        h.set_commands(Arc::new(NoCommands));
        let principal = h.authenticate("nurse-token").unwrap().clone();
        let ack = crate::protocol::Command {
            kind: vigil_engine::CommandKind::Ack,
            target: a.alert_id.clone(),
            reason: String::new(),
        };
        let r = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            h.command(&principal, ack),
        )
        .await
        .expect("the new port answers; the old one never would");
        assert!(matches!(r, Err(CommandError::NotFound(_))), "{r:?}");
    }

    #[test]
    fn readiness_needs_a_finished_start_and_a_passing_check() {
        let h = hub(8);
        let e = h.readiness().expect_err("not started");
        assert_eq!(e, "starting");
        h.set_starting("recovering");
        assert_eq!(h.readiness(), Err("recovering".into()));
        h.set_ready(true);
        assert_eq!(h.readiness(), Ok(()));
        let link_up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let up = link_up.clone();
        h.set_readiness(Arc::new(move || {
            if up.load(std::sync::atomic::Ordering::Relaxed) {
                Ok(())
            } else {
                Err("not connected to NATS".into())
            }
        }));
        assert_eq!(h.readiness(), Ok(()));
        link_up.store(false, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(h.readiness(), Err("not connected to NATS".into()));
    }

    type Client = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

    /// A real WebSocket: the gateway's own accept loop and routes on a loopback port, and a
    /// tungstenite client with the nurse's token.
    async fn connect(hub: &Arc<Hub>) -> Client {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(crate::server::serve(
            listener,
            hub.clone(),
            std::future::pending(),
        ));
        let url = format!("ws://{addr}/ws?token=nurse-token");
        tokio_tungstenite::connect_async(url).await.unwrap().0
    }

    /// Subscribes to `alerts` and reads the `subscribed` and `snapshot` frames.
    async fn subscribe_alerts(c: &mut Client) {
        subscribe_to(c, r#"["alerts"]"#).await;
    }

    /// Subscribes to `channels` (a JSON array with `alerts` in it) and reads the answer and the
    /// snapshot.
    async fn subscribe_to(c: &mut Client, channels: &str) {
        let sub = format!(r#"{{"type":"subscribe","id":"s1","channels":{channels}}}"#);
        c.send(Message::text(sub)).await.unwrap();
        assert_eq!(next_json(c).await["type"], "subscribed");
        assert_eq!(next_json(c).await["type"], "snapshot");
    }

    async fn next_json(c: &mut Client) -> serde_json::Value {
        loop {
            match c.next().await.expect("frame").expect("ok") {
                Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                _ => continue,
            }
        }
    }

    #[test]
    fn the_patient_window_opens_as_far_as_the_client_confirms() {
        let confirmed = Arc::new(Confirmed::default());
        let mut w = PatientWindow::new(confirmed.clone());
        let now = Instant::now();
        assert_eq!(w.room(now), 64);
        assert_eq!(&w.wrote(40)[..], &40u64.to_be_bytes());
        assert_eq!(w.room(now), 24);
        assert_eq!(&w.wrote(24)[..], &64u64.to_be_bytes());
        assert_eq!(w.room(now), 0, "a full window");
        assert_eq!(w.unread_deadline(), now + WRITE_TIMEOUT);
        // A liveness ping's empty pong, or any payload but a count, confirms nothing.
        confirmed.pong(b"");
        confirmed.pong(b"1234567");
        assert_eq!(w.room(now), 0);
        // The pong to the first write's ping: its 40 frames were read.
        confirmed.pong(&40u64.to_be_bytes());
        assert_eq!(w.room(now), 40);
        // An older count coming late does not take the window back.
        confirmed.pong(&10u64.to_be_bytes());
        assert_eq!(w.room(now), 40);
        // A count beyond what was written (a made-up pong) confirms nothing.
        confirmed.pong(&1_000u64.to_be_bytes());
        assert_eq!(w.room(now), 40);
        confirmed.pong(&64u64.to_be_bytes());
        assert_eq!(w.room(now), 64);
        // The deadline runs from when the window was found full again.
        let later = now + Duration::from_secs(3);
        w.wrote(64);
        assert_eq!(w.room(later), 0);
        assert_eq!(w.unread_deadline(), later + WRITE_TIMEOUT);
    }

    fn patient_status(n: usize, news2: u8) -> vigil_engine::PatientStatus {
        let at_ms = 1_000 * i64::from(news2);
        crate::hub::status_for_tests("t1", &format!("p{n}"), at_ms, news2)
    }

    fn batch(ids: std::ops::Range<usize>) -> PatientBatch {
        Arc::new(
            ids.map(|n| Arc::new(PatientFrame::new(patient_status(n, 1))))
                .collect(),
        )
    }

    #[test]
    fn a_connection_far_behind_takes_the_latest_from_the_hub_instead_of_every_batch() {
        let mut due = PatientsDue::default();
        assert!(due.is_empty());
        let no_snapshot = || -> Vec<Arc<PatientFrame>> { panic!("no snapshot is due") };
        // Batches are kept as they came and read in order.
        due.push(batch(0..2));
        due.push(batch(2..3));
        let ids: Vec<String> = std::iter::from_fn(|| due.next(no_snapshot))
            .map(|(f, origin)| {
                assert_eq!(origin, Origin::Batch);
                f.patient_id.to_string()
            })
            .collect();
        assert_eq!(ids, ["p0", "p1", "p2"]);
        assert!(due.is_empty());
        // One batch more than a connection may hold: they are dropped, a snapshot is due, and
        // batches that come before it is taken are not kept (it will hold their frames).
        for n in 0..=QUEUED_BATCHES {
            due.push(batch(n..n + 1));
        }
        due.push(batch(100..101));
        assert!(due.batches.is_empty() && due.resync && !due.is_empty());
        let (first, origin) = due
            .next(|| vec![Arc::new(PatientFrame::new(patient_status(7, 2)))])
            .unwrap();
        assert_eq!((&*first.patient_id, origin), ("p7", Origin::Snapshot));
        // Batches after the snapshot are kept again.
        due.push(batch(8..9));
        let (next, origin) = due.next(no_snapshot).unwrap();
        assert_eq!((&*next.patient_id, origin), ("p8", Origin::Batch));
        assert!(due.next(no_snapshot).is_none());
    }

    #[test]
    fn a_snapshot_s_frame_replaced_before_it_is_written_is_written_as_the_hub_s_latest() {
        let hub = hub(8);
        let _listening = hub.patient_tx.subscribe();
        for n in 0..3 {
            hub.publish_patient(patient_status(n, 1));
        }
        let principal = hub.authenticate("nurse-token").unwrap().clone();
        let mut session = Session::new(hub.clone(), principal, Arc::default());
        session.sub = Some(Subscription {
            alerts: false,
            patients: true,
            resources: false,
            pages: false,
            units: Vec::new(),
            patient_ids: Vec::new(),
            min_level: Level::Info,
        });
        let news2 = |out: &[Utf8Bytes]| -> Vec<u64> {
            out.iter()
                .map(|t| {
                    serde_json::from_str::<serde_json::Value>(t.as_str()).unwrap()["news2"]
                        .as_u64()
                        .unwrap()
                })
                .collect()
        };
        // A resync: the snapshot holds the three patients' first states; one is written.
        session.patients_due.resync();
        let mut out = Vec::new();
        assert_eq!(session.take_patients(1, &mut out), 1);
        assert_eq!(news2(&out), [1]);
        // The other two change before the connection can write them (its share, or a slow
        // reader): their latest states are written, not skipped for a batch that this
        // connection, resyncing, does not keep.
        for n in 0..3 {
            hub.publish_patient(patient_status(n, 2));
        }
        out.clear();
        assert_eq!(session.take_patients(10, &mut out), 2);
        assert_eq!(news2(&out), [2, 2]);
    }

    #[test]
    fn a_frame_is_superseded_when_the_hub_holds_a_newer_one() {
        let hub = hub(8);
        let _listening = hub.patient_tx.subscribe();
        hub.publish_patient(patient_status(1, 1));
        let key: (Arc<str>, Arc<str>) = ("t1".into(), "p1".into());
        let first = hub.patients.get(&key).unwrap().clone();
        assert!(!first.is_superseded());
        hub.publish_patient(patient_status(1, 2));
        assert!(first.is_superseded());
        assert!(!hub.patients.get(&key).unwrap().is_superseded());
    }

    /// `patients` patients change `rounds` times (NEWS2 1, 2, ...), each round flushed and
    /// followed by `pause`; then an alert opens.
    async fn change_then_alert(hub: &Hub, patients: usize, rounds: u8, pause: Duration) {
        for news2 in 1..=rounds {
            for n in 0..patients {
                hub.publish_patient(patient_status(n, news2));
            }
            hub.flush_patients();
            tokio::time::sleep(pause).await;
        }
        hub.publish_alert(&alert(0));
    }

    /// Reads until every one of `patients` shows NEWS2 `last` and the alert came, checking
    /// that every ping counts the tiles before it: (tiles read, tiles read before the alert).
    async fn read_latest_and_alert(c: &mut Client, patients: usize, last: u64) -> (u64, u64) {
        let (mut tiles, mut before_alert) = (0u64, None);
        let mut latest = HashMap::new();
        while latest.values().filter(|n| **n == last).count() < patients || before_alert.is_none() {
            let m = tokio::time::timeout(Duration::from_secs(10), c.next())
                .await
                .expect("frames keep coming while the client reads")
                .unwrap()
                .unwrap();
            match m {
                Message::Text(t) => {
                    let f: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                    match f["type"].as_str() {
                        Some("patient") => {
                            tiles += 1;
                            let id = f["patientId"].as_str().unwrap().to_string();
                            latest.insert(id, f["news2"].as_u64().unwrap());
                        }
                        Some("alert") => before_alert = Some(tiles),
                        other => panic!("unexpected frame {other:?}"),
                    }
                }
                Message::Ping(count) if !count.is_empty() => {
                    assert_eq!(
                        &count[..],
                        &tiles.to_be_bytes(),
                        "a ping counts the tiles before it"
                    );
                }
                _ => {}
            }
        }
        (tiles, before_alert.unwrap_or_default())
    }

    #[tokio::test]
    async fn an_alert_waits_behind_at_most_a_window_of_patient_frames() {
        let hub = hub(4096);
        let mut c = connect(&hub).await;
        subscribe_to(&mut c, r#"["alerts","patients"]"#).await;
        // 2,000 patients change twice while the dashboard reads nothing; then an alert opens.
        const PATIENTS: usize = 2_000;
        change_then_alert(&hub, PATIENTS, 2, Duration::from_millis(150)).await;
        // The alert comes behind at most a window of tiles, not behind every tile written
        // while the client was not reading; every ping's count is the tiles read so far; and
        // reading on, the client gets every patient's latest state, and of the first states
        // only the window written before they were replaced.
        let (tiles, before_alert) = read_latest_and_alert(&mut c, PATIENTS, 2).await;
        assert!(
            before_alert <= PATIENT_WINDOW,
            "the alert came after {before_alert} patient frames"
        );
        assert!(
            tiles <= PATIENTS as u64 + PATIENT_WINDOW,
            "{tiles} patient frames for {PATIENTS} patients' latest states"
        );
        assert_eq!(hub.metrics.slow_client_closes.load(Relaxed), 0);
    }

    #[test]
    fn a_tile_budget_fills_at_its_rate_holding_a_quarter_second_and_at_least_a_chunk() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut b = TileBudget::new(t0);
        assert_eq!(b.room(t0, None), usize::MAX, "no limit");
        assert_eq!(b.room(t0, Some(40.0)), 16, "a chunk to start with");
        b.spend(16);
        assert_eq!(b.room(t0, Some(40.0)), 0);
        let refilled = b.refilled_at(Some(40.0)).duration_since(t0);
        assert!(
            refilled.abs_diff(Duration::from_millis(400)) < Duration::from_micros(10),
            "a chunk at 40 a second takes 400 ms, not {refilled:?}"
        );
        assert_eq!(b.room(at(200), Some(40.0)), 8);
        b.spend(8);
        assert_eq!(b.room(at(225), Some(40.0)), 1);
        // Idle a minute: a chunk, not a minute's worth (a quarter second of 40 is less).
        assert_eq!(b.room(at(60_225), Some(40.0)), 16);
        // A larger share holds a quarter second of itself.
        assert_eq!(b.room(at(120_000), Some(100.0)), 25);
        assert_eq!(b.room(at(180_000), Some(100_000.0)), 25_000);
        assert!(
            b.refilled_at(Some(100_000.0)) <= at(180_000),
            "a chunk is there"
        );
        assert_eq!(b.refilled_at(None), at(180_000), "no limit: now");
    }

    #[tokio::test]
    async fn tiles_beyond_a_connection_s_share_coalesce_and_alerts_do_not_wait_for_them() {
        // 200 frames a second for the one connection on `patients`.
        const SHARE: u64 = 200;
        let hub = hub_of(
            &format!("patient_frames_per_second = {SHARE}"),
            Arc::new(NoCommands),
        );
        let mut c = connect(&hub).await;
        subscribe_to(&mut c, r#"["alerts","patients"]"#).await;
        assert_eq!(hub.patient_connections.load(Relaxed), 1);
        assert!(
            hub.render_metrics()
                .contains("vigil_ws_patient_connections 1")
        );
        // 400 patients change three times, then an alert opens.
        const PATIENTS: usize = 400;
        let start = Instant::now();
        change_then_alert(&hub, PATIENTS, 3, Duration::from_millis(20)).await;
        let (tiles, before_alert) = read_latest_and_alert(&mut c, PATIENTS, 3).await;
        let elapsed = start.elapsed().as_secs_f64();
        // The alert did not wait for the tiles over the share; every patient's latest state
        // came; and no faster than the share (a window to start, the share since, one window
        // of slack): without the budget the 400 latest states come at once.
        assert!(before_alert <= PATIENT_WINDOW, "{before_alert}");
        let most = 2.0 * PATIENT_WINDOW as f64 + SHARE as f64 * elapsed;
        assert!(
            (tiles as f64) <= most,
            "{tiles} tiles in {elapsed:.2} s, more than {most:.0} at {SHARE} a second"
        );
        drop(c);
        let gone = Instant::now();
        while hub.patient_connections.load(Relaxed) > 0 {
            assert!(
                gone.elapsed() < Duration::from_secs(10),
                "the share is given back"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_dashboard_that_stops_reading_patient_frames_is_closed_with_1013() {
        let hub = hub(4096);
        let mut c = connect(&hub).await;
        c.send(Message::text(
            r#"{"type":"subscribe","id":"s1","channels":["patients"]}"#,
        ))
        .await
        .unwrap();
        assert_eq!(next_json(&mut c).await["type"], "subscribed");
        for n in 0..200 {
            hub.publish_patient(patient_status(n, 1));
        }
        hub.flush_patients();
        // The client reads nothing (so it answers no ping) for longer than a write may block.
        tokio::time::sleep(WRITE_TIMEOUT + Duration::from_millis(500)).await;
        assert_eq!(hub.metrics.slow_client_closes.load(Relaxed), 1);
        let (mut tiles, mut code) = (0, None);
        while let Some(Ok(m)) = c.next().await {
            match m {
                Message::Text(_) => tiles += 1,
                Message::Close(f) => {
                    code = f.map(|f| u16::from(f.code));
                    break;
                }
                _ => {}
            }
        }
        assert_eq!(code, Some(1013));
        assert_eq!(
            tiles, PATIENT_WINDOW,
            "one window was written, then nothing"
        );
    }

    #[tokio::test]
    async fn a_client_too_slow_for_alerts_is_closed_with_1013() {
        let hub = hub(8);
        let mut c = connect(&hub).await;
        subscribe_alerts(&mut c).await;
        // 200 alerts at once overrun an 8-frame queue before the session can drain it.
        for n in 0..200 {
            hub.publish_alert(&alert(n));
        }
        let mut code = None;
        while let Some(Ok(m)) = c.next().await {
            if let Message::Close(f) = m {
                code = f.map(|f| u16::from(f.code));
                break;
            }
        }
        assert_eq!(code, Some(1013));
        assert_eq!(hub.metrics.slow_client_closes.load(Relaxed), 1);
    }

    #[tokio::test]
    async fn a_client_that_keeps_up_gets_every_alert_after_the_snapshot() {
        let hub = hub(4096);
        hub.publish_alert(&alert(0));
        let mut c = connect(&hub).await;
        c.send(Message::text(
            r#"{"type":"subscribe","id":"s1","channels":["alerts"],"minLevel":"critical"}"#,
        ))
        .await
        .unwrap();
        assert_eq!(next_json(&mut c).await["type"], "subscribed");
        let snap = next_json(&mut c).await;
        assert_eq!(snap["alerts"].as_array().unwrap().len(), 1);
        for n in 1..=50 {
            hub.publish_alert(&alert(n));
        }
        for n in 1..=50 {
            let f = next_json(&mut c).await;
            assert_eq!(f["type"], "alert");
            assert_eq!(f["alert"]["patientId"], format!("p{n}"));
        }
    }
}
