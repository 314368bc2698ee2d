//! Cluster membership and partition ownership (docs/cluster.md), on NATS's own mechanisms: a
//! JetStream key-value bucket whose entries age out after `[cluster] failover`, written only
//! with revision checks, and the pinned consumers of each partition.
//!
//! Bucket `VIGIL_CLUSTER`:
//! - `members.{member}`: a live process's heartbeat (what it owns, where it listens), created
//!   when it joins (a name already held makes the newcomer a standby until it ages out) and
//!   updated every beat against its last revision;
//! - `partitions.{p}`: the member that owns partition `p`. It is claimed with a create (taken
//!   only when absent, deleted or aged out), renewed every beat against its last revision, and
//!   released with a delete against that revision once the engine has handed the partition
//!   over. A member that dies stops renewing, and its claims age out after `failover`.
//!
//! Which member should own which partition is a pure function of what every member reads from
//! the bucket ([`assign`]): the live members and the current claims. Every member computes it
//! alone; nobody elects anybody. The bucket's revisions make each claim exclusive, the pinned
//! consumers make delivery exclusive, and the fenced `ALERTS` writes make a paused old owner
//! harmless.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use vigil_config::ClusterConfig;

use crate::BusError;

/// The bucket of members and claims.
pub const BUCKET: &str = "VIGIL_CLUSTER";

/// A member's heartbeat, the value of `members.{member}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    pub member: String,
    /// The partitions it owns now.
    pub partitions: Vec<u32>,
    /// Where its gateway listens.
    pub listen: String,
    /// When it wrote this (RFC 3339, UTC).
    pub at: String,
    /// This run of the process: tells its own writes from another process's of the same name.
    #[serde(default)]
    pub instance: String,
}

/// Every live member's heartbeat in the bucket, by name.
///
/// # Errors
/// When the bucket cannot be read.
pub async fn members(js: &async_nats::jetstream::Context) -> Result<Vec<Heartbeat>, BusError> {
    let kv = js
        .get_key_value(BUCKET)
        .await
        .map_err(|e| bucket_error(format!("cannot open it: {e}")))?;
    let mut keys = kv
        .keys()
        .await
        .map_err(|e| bucket_error(format!("cannot list it: {e}")))?;
    let mut names = Vec::new();
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| bucket_error(format!("cannot list it: {e}")))?;
        if key.starts_with("members.") {
            names.push(key);
        }
    }
    let mut out = Vec::new();
    for key in names {
        let value = kv
            .get(&key)
            .await
            .map_err(|e| bucket_error(format!("cannot read {key}: {e}")))?;
        if let Some(beat) = value.and_then(|v| serde_json::from_slice::<Heartbeat>(&v).ok()) {
            out.push(beat);
        }
    }
    out.sort_by(|a, b| a.member.cmp(&b.member));
    Ok(out)
}

/// What this member holds, as the engine must act on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    /// Partitions whose claims this member holds.
    pub claimed: BTreeSet<u32>,
    /// Of those, the ones it should hand over (another member's fair share): the engine stops
    /// consuming them, then asks for their release.
    pub surplus: BTreeSet<u32>,
}

impl Ownership {
    /// The partitions the engine should run: claimed and not to be handed over.
    pub fn keep(&self) -> Vec<u32> {
        self.claimed.difference(&self.surplus).copied().collect()
    }
}

/// The fair assignment of `count` partitions over `members` (sorted, unique), keeping each
/// current claim (`current`: partition -> member) whose member is live and within its share.
/// Each member gets `count / n` partitions, the first `count % n` members in name order one
/// more; partitions that move go to the first member in a per-partition order (rendezvous
/// hashing) that has room. The same inputs give the same answer in every process.
pub fn assign(
    members: &[String],
    current: &BTreeMap<u32, String>,
    count: u32,
) -> BTreeMap<u32, String> {
    let mut owners = BTreeMap::new();
    if members.is_empty() {
        return owners;
    }
    let n = members.len();
    let count_usize = count as usize;
    let share = |i: usize| count_usize / n + usize::from(i < count_usize % n);
    let mut load = vec![0usize; n];
    let index: HashMap<&str, usize> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    for p in 0..count {
        if let Some(&i) = current.get(&p).and_then(|m| index.get(m.as_str()))
            && load[i] < share(i)
        {
            load[i] += 1;
            owners.insert(p, members[i].clone());
        }
    }
    for p in 0..count {
        if owners.contains_key(&p) {
            continue;
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(rendezvous(&members[i], p)));
        if let Some(&i) = order.iter().find(|&&i| load[i] < share(i)) {
            load[i] += 1;
            owners.insert(p, members[i].clone());
        }
    }
    owners
}

/// A member's weight for a partition: xxh3 of the name and the number.
fn rendezvous(member: &str, p: u32) -> u64 {
    let mut key = Vec::with_capacity(member.len() + 4);
    key.extend_from_slice(member.as_bytes());
    key.extend_from_slice(&p.to_be_bytes());
    xxhash_rust::xxh3::xxh3_64(&key)
}

fn bucket_error(reason: String) -> BusError {
    BusError::Stream {
        stream: format!("KV_{BUCKET}"),
        reason,
    }
}

/// The subject the owner of partition `p` answers forwarded commands on (core NATS
/// request/reply; only the member that runs the partition subscribes).
pub fn command_subject(p: u32) -> String {
    format!("vigil.commands.{p}")
}

/// A person's command about an alert, forwarded by the member the person is connected to, to
/// the member that owns the alert's partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardedCommand {
    pub tenant: String,
    /// `patient`, `location`, `provider` or `resource`.
    pub owner_kind: String,
    pub owner_id: String,
    pub alert_id: String,
    /// `ack`, `resolve`, `snooze`, `receipt` or `decline`.
    pub kind: String,
    #[serde(default)]
    pub snooze_millis: i64,
    #[serde(default)]
    pub page_id: String,
    pub role: vigil_config::Role,
    pub by: String,
    #[serde(default)]
    pub reason: String,
    /// When the person sent it (ms since the epoch).
    pub at: i64,
}

/// The owner's answer: the alert as the command left it, or the refusal's code and message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ForwardedReply {
    Alert(Box<vigil_engine::Alert>),
    Error { code: String, message: String },
}

impl From<&vigil_engine::AlertCommand> for ForwardedCommand {
    fn from(c: &vigil_engine::AlertCommand) -> Self {
        use vigil_engine::{CommandKind, Owner};
        let (owner_kind, owner_id) = match &c.owner {
            Owner::Patient(id) => ("patient", id),
            Owner::Location(id) => ("location", id),
            Owner::Provider(id) => ("provider", id),
            Owner::Resource(id) => ("resource", id),
        };
        let (kind, snooze_millis) = match c.kind {
            CommandKind::Ack => ("ack", 0),
            CommandKind::Resolve => ("resolve", 0),
            CommandKind::Snooze { millis } => ("snooze", millis),
            CommandKind::Receipt => ("receipt", 0),
            CommandKind::Decline => ("decline", 0),
        };
        ForwardedCommand {
            tenant: c.tenant.clone(),
            owner_kind: owner_kind.into(),
            owner_id: owner_id.clone(),
            alert_id: c.alert_id.clone(),
            kind: kind.into(),
            snooze_millis,
            page_id: c.page_id.clone(),
            role: c.role,
            by: c.by.clone(),
            reason: c.reason.clone(),
            at: c.at.0,
        }
    }
}

impl ForwardedCommand {
    /// The command again, as the owner's actors take it.
    ///
    /// # Errors
    /// Names the owner kind or command kind this engine does not know.
    pub fn into_command(self) -> Result<vigil_engine::AlertCommand, String> {
        use vigil_engine::{CommandKind, Owner};
        let owner = match self.owner_kind.as_str() {
            "patient" => Owner::Patient(self.owner_id),
            "location" => Owner::Location(self.owner_id),
            "provider" => Owner::Provider(self.owner_id),
            "resource" => Owner::Resource(self.owner_id),
            other => return Err(format!("unknown owner kind `{other}`")),
        };
        let kind = match self.kind.as_str() {
            "ack" => CommandKind::Ack,
            "resolve" => CommandKind::Resolve,
            "snooze" => CommandKind::Snooze {
                millis: self.snooze_millis,
            },
            "receipt" => CommandKind::Receipt,
            "decline" => CommandKind::Decline,
            other => return Err(format!("unknown command `{other}`")),
        };
        Ok(vigil_engine::AlertCommand {
            tenant: self.tenant,
            owner,
            alert_id: self.alert_id,
            kind,
            page_id: self.page_id,
            role: self.role,
            by: self.by,
            reason: self.reason,
            at: vigil_engine::Timestamp(self.at),
        })
    }
}

/// How long a forwarded command may take to be answered by the partition's owner.
const FORWARD_WAIT: Duration = Duration::from_secs(5);

/// Sends `req` to the owner of partition `p` and waits at most [`FORWARD_WAIT`].
///
/// # Errors
/// The owner's refusal, or `UNAVAILABLE` saying to retry when nobody owns the partition this
/// moment, the owner does not answer in time, or its answer cannot be read.
pub async fn forward(
    bus: &crate::Bus,
    p: u32,
    req: &vigil_engine::AlertCommand,
) -> Result<vigil_engine::Alert, vigil_engine::CommandError> {
    use vigil_engine::CommandError;
    let crate::Bus::JetStream(nats) = bus else {
        return Err(CommandError::Unavailable(
            "the embedded bus has no other engine to forward to".into(),
        ));
    };
    let client = &nats.client;
    let moving = |why: &str| {
        CommandError::Unavailable(format!(
            "the alert's partition {p} {why}; it may be moving between engines: retry"
        ))
    };
    let body = serde_json::to_vec(&ForwardedCommand::from(req)).unwrap_or_default();
    let reply = ask(
        client,
        command_subject(p),
        body,
        "has no owner this moment; nothing was changed",
    )
    .await
    .map_err(|why| moving(&why))?;
    match serde_json::from_slice::<ForwardedReply>(&reply.payload) {
        Ok(ForwardedReply::Alert(a)) => Ok(*a),
        Ok(ForwardedReply::Error { code, message }) => Err(CommandError::forwarded(&code, message)),
        Err(e) => Err(moving(&format!(
            "answered what this engine cannot read ({e})"
        ))),
    }
}

/// Sends one request to a partition's owner and waits at most [`FORWARD_WAIT`]; `Err` says
/// what happened (`no_owner` when nobody answers the subject), to follow "the partition".
async fn ask(
    client: &async_nats::Client,
    subject: String,
    body: Vec<u8>,
    no_owner: &str,
) -> Result<async_nats::Message, String> {
    match tokio::time::timeout(FORWARD_WAIT, client.request(subject, body.into())).await {
        Err(_) => Err("did not answer within 5 s".into()),
        Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
            Err(no_owner.into())
        }
        Ok(Err(e)) => Err(format!("could not be reached ({e})")),
        Ok(Ok(m)) => Ok(m),
    }
}

/// Answers the commands other members forward for `owned` partitions, with this member's
/// actors (`execute`), until aborted (before the engine stops). Embedded: nothing to answer.
pub async fn answer_commands<F>(bus: &crate::Bus, owned: Vec<u32>, execute: F)
where
    F: Fn(
            vigil_engine::AlertCommand,
        ) -> std::pin::Pin<
            Box<
                dyn std::future::Future<
                        Output = Result<vigil_engine::Alert, vigil_engine::CommandError>,
                    > + Send,
            >,
        > + Send
        + Sync
        + 'static,
{
    let subjects = owned.iter().map(|&p| command_subject(p)).collect();
    let execute = std::sync::Arc::new(execute);
    answer(bus, subjects, move |payload: Bytes| {
        let execute = execute.clone();
        async move {
            let answer = match serde_json::from_slice::<ForwardedCommand>(&payload)
                .map_err(|e| e.to_string())
                .and_then(ForwardedCommand::into_command)
            {
                Err(e) => ForwardedReply::Error {
                    code: "BAD_REQUEST".into(),
                    message: format!("a forwarded command this engine cannot read: {e}"),
                },
                Ok(req) => match execute(req).await {
                    Ok(a) => ForwardedReply::Alert(Box::new(a)),
                    Err(e) => ForwardedReply::Error {
                        code: e.code().into(),
                        message: e.to_string(),
                    },
                },
            };
            serde_json::to_vec(&answer).unwrap_or_default()
        }
    })
    .await;
}

/// The subject the owner of partition `p` answers patient views on (`GET
/// /api/patients/{patientId}` asked on another member; core NATS request/reply).
pub fn view_subject(p: u32) -> String {
    format!("vigil.patients.{p}")
}

/// A patient view asked of the member that keeps the patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewRequest {
    pub tenant: String,
    pub patient_id: String,
}

/// The keeper's answer: the view (`null` when it keeps no window for the patient), or why not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ViewReply {
    View(Option<serde_json::Value>),
    Error(String),
}

/// Asks the owner of partition `p` for a patient's view, waiting at most [`FORWARD_WAIT`].
///
/// # Errors
/// Why it could not be asked (nobody owns the partition this moment, no answer in time, an
/// answer this engine cannot read), in words that say to retry.
pub async fn forward_view(
    bus: &crate::Bus,
    p: u32,
    req: &ViewRequest,
) -> Result<Option<serde_json::Value>, String> {
    let crate::Bus::JetStream(nats) = bus else {
        return Err("the embedded bus has no other engine to ask".into());
    };
    let moving = |why: &str| {
        format!("the patient's partition {p} {why}; it may be moving between engines: retry")
    };
    let body = serde_json::to_vec(req).unwrap_or_default();
    let reply = ask(
        &nats.client,
        view_subject(p),
        body,
        "has no owner this moment",
    )
    .await
    .map_err(|why| moving(&why))?;
    match serde_json::from_slice::<ViewReply>(&reply.payload) {
        Ok(ViewReply::View(v)) => Ok(v),
        Ok(ViewReply::Error(why)) => Err(why),
        Err(e) => Err(moving(&format!(
            "answered what this engine cannot read ({e})"
        ))),
    }
}

/// Answers the patient views other members ask of `owned` partitions with `view`, until
/// aborted. Embedded: nothing to answer.
pub async fn answer_views<F, Fut>(bus: &crate::Bus, owned: Vec<u32>, view: F)
where
    F: Fn(String, String) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Option<serde_json::Value>, String>> + Send + 'static,
{
    let subjects = owned.iter().map(|&p| view_subject(p)).collect();
    let view = std::sync::Arc::new(view);
    answer(bus, subjects, move |payload: Bytes| {
        let view = view.clone();
        async move {
            let answer = match serde_json::from_slice::<ViewRequest>(&payload) {
                Err(e) => ViewReply::Error(format!("a view request this engine cannot read: {e}")),
                Ok(req) => match view(req.tenant, req.patient_id).await {
                    Ok(v) => ViewReply::View(v),
                    Err(why) => ViewReply::Error(why),
                },
            };
            serde_json::to_vec(&answer).unwrap_or_default()
        }
    })
    .await;
}

/// Serves core NATS requests on `subjects`: each request is answered, on its own task, with
/// what `handle` makes of its payload. Runs until aborted.
async fn answer<F, Fut>(bus: &crate::Bus, subjects: Vec<String>, handle: F)
where
    F: Fn(Bytes) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Vec<u8>> + Send + 'static,
{
    let crate::Bus::JetStream(nats) = bus else {
        return;
    };
    let client = nats.client.clone();
    let mut subscriptions = Vec::new();
    for subject in subjects {
        match client.subscribe(subject.clone()).await {
            Ok(s) => subscriptions.push(s),
            Err(e) => {
                tracing::error!(subject, error = %e, "cannot answer requests on this subject")
            }
        }
    }
    let mut requests = futures::stream::select_all(subscriptions);
    while let Some(m) = requests.next().await {
        let Some(reply_to) = m.reply.clone() else {
            continue;
        };
        let client = client.clone();
        let answer = handle(m.payload);
        tokio::spawn(async move {
            let body = answer.await;
            if let Err(e) = client.publish(reply_to, body.into()).await {
                tracing::warn!(error = %e, "cannot answer a request from another member; it retries");
            }
        });
    }
}

/// Where a member relays the patient and resource frames it makes (core NATS: live state,
/// nothing stored; every member listens to every other's).
pub fn frames_subject(member: &str) -> String {
    format!("vigil.frames.{member}")
}

/// Where a starting member asks the others for every frame they hold; the body is its name.
const FRAMES_ASK: &str = "vigil.frames-ask";

/// Where the frames asked for by `member` are answered.
fn frames_answer_subject(member: &str) -> String {
    format!("vigil.frames-answer.{member}")
}

/// What a member's frames are, to the relay: the gateway's hub behind it.
pub trait FrameRelay: Send + Sync + 'static {
    /// The frames made since the last call, as relay messages.
    fn take(&self) -> Vec<Vec<u8>>;
    /// Every frame this member made that it still holds, as relay messages.
    fn all(&self) -> Vec<Vec<u8>>;
    /// Another member's relay message.
    fn accept(&self, payload: &[u8]);
}

/// Relays patient and resource frames between `member` and the others until aborted: every
/// `every` what this member made goes out on [`frames_subject`], what the others send comes
/// in, and at start it asks the others for everything they hold (and answers them the same).
/// Embedded: nothing to relay.
pub async fn relay_frames(
    bus: &crate::Bus,
    member: &str,
    every: Duration,
    frames: impl FrameRelay,
) {
    let crate::Bus::JetStream(nats) = bus else {
        return;
    };
    let client = nats.client.clone();
    let own = frames_subject(member);
    let mut incoming = loop {
        let subscribed = async {
            let others = client.subscribe(frames_subject("*")).await?;
            let answers = client.subscribe(frames_answer_subject(member)).await?;
            let asks = client.subscribe(FRAMES_ASK).await?;
            client.flush().await.map_err(std::io::Error::other)?;
            client
                .publish(FRAMES_ASK, member.to_string().into())
                .await
                .map_err(std::io::Error::other)?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(futures::stream::select_all([
                others, answers, asks,
            ]))
        };
        match subscribed.await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot relay frames to the other members yet; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                for message in frames.take() {
                    if let Err(e) = client.publish(own.clone(), message.into()).await {
                        tracing::debug!(error = %e, "a frame relay message was not sent; the next update sends the patient again");
                    }
                }
            }
            m = incoming.next() => {
                let Some(m) = m else { return };
                if m.subject.as_str() == FRAMES_ASK {
                    let asker = String::from_utf8_lossy(&m.payload).into_owned();
                    if asker != member && vigil_config::is_token(&asker) {
                        for message in frames.all() {
                            let _ = client.publish(frames_answer_subject(&asker), message.into()).await;
                        }
                    }
                } else if m.subject.as_str() != own {
                    frames.accept(&m.payload);
                }
            }
        }
    }
}

/// The membership task's handle: what it holds, and where to ask for releases.
pub struct Membership {
    pub ownership: watch::Receiver<Ownership>,
    release: mpsc::Sender<(Vec<u32>, tokio::sync::oneshot::Sender<()>)>,
    task: tokio::task::JoinHandle<Result<(), BusError>>,
    stop: watch::Sender<bool>,
}

/// The cluster bucket, created when missing (history 1, entries aged out after `failover`).
async fn bucket(
    js: &async_nats::jetstream::Context,
    cluster: &ClusterConfig,
) -> Result<kv::Store, BusError> {
    if let Ok(kv) = js.get_key_value(BUCKET).await {
        return Ok(kv);
    }
    js.create_key_value(kv::Config {
        bucket: BUCKET.into(),
        description: "Vigil cluster members and partition claims (docs/cluster.md)".into(),
        history: 1,
        max_age: cluster.failover.as_std(),
        num_replicas: cluster.replicas,
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| bucket_error(format!("cannot create it: {e}")))
}

/// A token for this run of the process: its id and the time it started.
fn instance_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}-{nanos:x}", std::process::id())
}

/// The longest one beat's request to the bucket may take: half a beat, so that the beat goes
/// on (and gives up claims in time) while NATS does not answer.
fn request_wait(failover: Duration) -> Duration {
    beat(failover) / 2
}

/// Whether a write to the bucket was answered "no responders": the bucket's stream has no
/// leader at this moment (its leader's node was lost and the others are electing one, which
/// nats-server does 4 to 9 s after the lost leader's last heartbeat), or this member's NATS
/// node is cut off from the others. A write that is not answered at all is a timeout, not this.
fn no_leader(e: &kv::UpdateError) -> bool {
    use async_nats::jetstream::context::{PublishError, PublishErrorKind};
    e.kind() == kv::UpdateErrorKind::Other
        && std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<PublishError>())
            .is_some_and(|p| p.kind() == PublishErrorKind::StreamNotFound)
}

/// The claims to give up: those not renewed for three quarters of `failover`, unless the
/// bucket's last answer was that it has no leader. Then nobody can write any claim, so nobody
/// can take these: they are renewed once the bucket is led again or, if they aged out
/// meanwhile, that renewal fails on the revision and they are dropped then. Until that beat
/// the pinned consumers and the fenced `ALERTS` writes keep this member from doing harm, as
/// for a paused one. A member cut off from NATS gets no answer at all: it gives them up in time.
fn unrenewed(
    claims: &BTreeMap<u32, (u64, Instant)>,
    failover: Duration,
    leaderless: bool,
) -> Vec<u32> {
    if leaderless {
        return Vec::new();
    }
    let limit = failover * 3 / 4;
    claims
        .iter()
        .filter(|(_, (_, renewed))| renewed.elapsed() > limit)
        .map(|(&p, _)| p)
        .collect()
}

/// How often a member writes its heartbeat and renews its claims: four times per failover.
fn beat(failover: Duration) -> Duration {
    (failover / 4).max(Duration::from_millis(250))
}

struct Member {
    kv: kv::Store,
    name: String,
    /// This run of the process (see [`Heartbeat::instance`]).
    instance: String,
    count: u32,
    failover: Duration,
    listen: String,
    /// The revision of this member's heartbeat.
    heartbeat: u64,
    /// Claimed partitions: the claim's revision and when it was last renewed.
    claims: BTreeMap<u32, (u64, Instant)>,
    /// The bucket's last answer to a write of this member was that it has no leader (see
    /// [`no_leader`]): nobody can write a claim, so nobody can take this member's.
    leaderless: bool,
    /// Every key of the bucket: value and when it was last seen written (local time: no clock
    /// of another machine is compared with ours).
    view: HashMap<String, (Bytes, Instant)>,
    ownership: watch::Sender<Ownership>,
}

impl Membership {
    /// Joins the cluster: creates the bucket when missing, and this member's heartbeat. While
    /// another live process holds the same member name, this one waits as a standby (saying so
    /// in `waiting`) until that name ages out.
    ///
    /// # Errors
    /// When the bucket cannot be created or read.
    pub async fn join(
        js: &async_nats::jetstream::Context,
        cluster: &ClusterConfig,
        listen: String,
        waiting: impl Fn(String),
    ) -> Result<Membership, BusError> {
        // Retried until it works: on a cluster that has just started the bucket's stream may
        // have no leader yet ("no responders"), and members starting together race to create it.
        let kv = loop {
            match bucket(js, cluster).await {
                Ok(kv) => break kv,
                Err(e) => {
                    waiting(format!("cannot use {BUCKET} yet: {e}; retrying"));
                    tokio::time::sleep(beat(cluster.failover.as_std())).await;
                }
            }
        };
        let (ownership, rx) = watch::channel(Ownership::default());
        let mut member = Member {
            kv,
            name: cluster.member.clone(),
            instance: instance_id(),
            count: cluster.partitions,
            failover: cluster.failover.as_std(),
            listen,
            heartbeat: 0,
            claims: BTreeMap::new(),
            leaderless: false,
            view: HashMap::new(),
            ownership,
        };
        let key = member.member_key(&member.name);
        loop {
            match member.kv.create(&key, member.heartbeat_value()).await {
                Ok(rev) => {
                    member.heartbeat = rev;
                    break;
                }
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    let why = format!(
                        "standby: cluster member {} is held by another live process; waiting \
                         until it stops (at most {} after it does)",
                        member.name,
                        vigil_config::Duration::from_millis(
                            u64::try_from(member.failover.as_millis()).unwrap_or(u64::MAX)
                        ),
                    );
                    waiting(why);
                    tokio::time::sleep(beat(member.failover)).await;
                }
                Err(e) => {
                    waiting(format!("cannot write {key} in {BUCKET} yet: {e}; retrying"));
                    tokio::time::sleep(beat(member.failover)).await;
                }
            }
        }
        tracing::info!(member = %member.name, partitions = member.count, "joined the cluster");
        let mut watcher = member
            .kv
            .watch_all()
            .await
            .map_err(|e| bucket_error(format!("cannot watch it: {e}")))?;
        // What the bucket holds now (the watch sends it first), then a first beat: the engine
        // starts with this member's claims rather than with none.
        while let Ok(Some(Ok(entry))) =
            tokio::time::timeout(Duration::from_millis(200), watcher.next()).await
        {
            member.seen(entry);
        }
        member.tick().await;
        let (release, releases) = mpsc::channel(4);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(member.run(watcher, releases, stopped));
        Ok(Membership {
            ownership: rx,
            release,
            task,
            stop,
        })
    }

    /// Releases `parts` (the engine has stopped consuming them and flushed what it produced)
    /// and waits until their claims are deleted.
    pub async fn release(&self, parts: Vec<u32>) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.release.send((parts, done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Leaves the cluster: every claim and the heartbeat deleted, so the others take over at
    /// their next beat instead of after `failover`. Call once the engine has stopped.
    pub async fn leave(self) {
        self.stop.send_replace(true);
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cluster membership ended with an error"),
            Err(e) => tracing::warn!(error = %e, "cluster membership task failed"),
        }
    }

    /// Resolves if the membership task ends by itself, with why.
    pub async fn ended(&mut self) -> String {
        match (&mut self.task).await {
            Ok(Ok(())) => "the cluster membership ended".into(),
            Ok(Err(e)) => format!("the cluster membership stopped: {e}"),
            Err(e) => format!("the cluster membership task failed: {e}"),
        }
    }
}

impl Member {
    fn member_key(&self, name: &str) -> String {
        format!("members.{name}")
    }

    fn heartbeat_value(&self) -> Bytes {
        let beat = Heartbeat {
            member: self.name.clone(),
            partitions: self.claims.keys().copied().collect(),
            listen: self.listen.clone(),
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            instance: self.instance.clone(),
        };
        Bytes::from(serde_json::to_vec(&beat).unwrap_or_default())
    }

    /// The members heard from within `failover`, sorted, this one included.
    fn live_members(&self) -> Vec<String> {
        let mut live: BTreeSet<String> = self
            .view
            .iter()
            .filter(|(_, (_, seen))| seen.elapsed() < self.failover)
            .filter_map(|(key, _)| key.strip_prefix("members.").map(str::to_string))
            .collect();
        live.insert(self.name.clone());
        live.into_iter().collect()
    }

    /// Current claims as the bucket shows them: partition -> member.
    fn current_claims(&self) -> BTreeMap<u32, String> {
        let mut current: BTreeMap<u32, String> = self
            .view
            .iter()
            .filter(|(_, (_, seen))| seen.elapsed() < self.failover)
            .filter_map(|(key, (value, _))| {
                let p = key.strip_prefix("partitions.")?.parse().ok()?;
                let owner = String::from_utf8_lossy(value);
                let member = owner.split(' ').next().unwrap_or_default().to_string();
                Some((p, member))
            })
            .collect();
        for &p in self.claims.keys() {
            current.insert(p, self.name.clone());
        }
        current
    }

    async fn run(
        mut self,
        mut watcher: kv::Watch,
        mut releases: mpsc::Receiver<(Vec<u32>, tokio::sync::oneshot::Sender<()>)>,
        mut stopped: watch::Receiver<bool>,
    ) -> Result<(), BusError> {
        let mut ticks = tokio::time::interval(beat(self.failover));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                entry = watcher.next() => match entry {
                    Some(Ok(entry)) => self.seen(entry),
                    Some(Err(e)) => tracing::warn!(error = %e, "cluster watch hiccup"),
                    None => {
                        watcher = self.kv.watch_all().await
                            .map_err(|e| bucket_error(format!("cannot watch it again: {e}")))?;
                    }
                },
                Some((parts, done)) = releases.recv() => {
                    self.release(&parts).await;
                    let _ = done.send(());
                }
                _ = ticks.tick() => self.tick().await,
                // A claim's own deadline, not the next beat: given up on time even between beats.
                () = tokio::time::sleep_until(self.renewal_due()),
                    if !self.claims.is_empty() && !self.leaderless => {
                    self.expire_unrenewed();
                }
            }
        }
        let all: Vec<u32> = self.claims.keys().copied().collect();
        self.release(&all).await;
        let key = self.member_key(&self.name);
        if let Err(e) = self
            .kv
            .delete_expect_revision(&key, Some(self.heartbeat))
            .await
        {
            tracing::warn!(error = %e, "cannot delete this member's heartbeat; it ages out");
        }
        tracing::info!(member = %self.name, "left the cluster");
        Ok(())
    }

    /// A claim's value: the member and this run of it.
    fn claim_value(&self) -> Bytes {
        Bytes::from(format!("{} {}", self.name, self.instance))
    }

    /// The revision of `key` when its current value is this run's own (a heartbeat or a
    /// claim), else `None`.
    async fn own_revision(&self, key: &str) -> Option<u64> {
        let entry = self.kv.entry(key).await.ok()??;
        if entry.operation != kv::Operation::Put {
            return None;
        }
        let ours = if key.starts_with("members.") {
            serde_json::from_slice::<Heartbeat>(&entry.value)
                .is_ok_and(|h| h.instance == self.instance)
        } else {
            entry.value == self.claim_value()
        };
        ours.then_some(entry.revision)
    }

    fn seen(&mut self, entry: kv::Entry) {
        match entry.operation {
            kv::Operation::Put => {
                self.view.insert(entry.key, (entry.value, Instant::now()));
            }
            kv::Operation::Delete | kv::Operation::Purge => {
                self.view.remove(&entry.key);
            }
        }
    }

    /// Notes the bucket's answer to a write (`None`: no answer in time). Only a "no leader"
    /// answer keeps unrenewed claims; any other answer, or none, ends that.
    fn heard(&mut self, answer: Option<&Result<u64, kv::UpdateError>>) {
        let leaderless = matches!(answer, Some(Err(e)) if no_leader(e));
        if leaderless && !self.leaderless && !self.claims.is_empty() {
            tracing::warn!(member = %self.name, "the cluster bucket has no leader (a NATS node lost, an election under way): nobody can write a claim, so this member keeps its partitions and renews them once the bucket is led again");
        }
        self.leaderless = leaderless;
    }

    /// When the least recently renewed claim must be given up if it is not renewed by then.
    fn renewal_due(&self) -> tokio::time::Instant {
        let oldest = self.claims.values().map(|(_, renewed)| *renewed).min();
        tokio::time::Instant::from_std(oldest.unwrap_or_else(Instant::now) + self.failover * 3 / 4)
    }

    /// Gives up every claim not renewed for three quarters of `failover`, on this process's
    /// own clock: a member cut off from NATS stops consuming its partitions before their
    /// claims age out and another member takes them. See [`unrenewed`] for the exception.
    fn expire_unrenewed(&mut self) {
        let stale = unrenewed(&self.claims, self.failover, self.leaderless);
        if stale.is_empty() {
            return;
        }
        for p in &stale {
            tracing::error!(partition = p, member = %self.name, "lost partition: its claim was not renewed for three quarters of failover (NATS away?); this member stops consuming it before the claim ages out");
            self.claims.remove(p);
        }
        self.publish();
    }

    /// One beat: heartbeat, renewals, then claims of this member's fair share and the surplus
    /// it should hand over. Each request waits at most [`request_wait`], so that a NATS that
    /// does not answer cannot stall the beat past the claims' expiry.
    async fn tick(&mut self) {
        self.expire_unrenewed();
        let wait = request_wait(self.failover);
        let key = self.member_key(&self.name);
        let heartbeat = tokio::time::timeout(
            wait,
            self.kv.update(&key, self.heartbeat_value(), self.heartbeat),
        )
        .await;
        let Ok(heartbeat) = heartbeat else {
            tracing::warn!(
                "heartbeat not written: NATS did not answer within {wait:?}; retrying next beat"
            );
            self.heard(None);
            self.expire_unrenewed();
            self.renew().await;
            self.expire_unrenewed();
            return;
        };
        self.heard(Some(&heartbeat));
        // The bucket is led and answers: the claims are renewed next, or dropped on their
        // revisions, rather than given up unasked (one kept while the bucket had no leader
        // may be older than three quarters of failover and still this member's).
        let led = match &heartbeat {
            Ok(_) => true,
            Err(e) => e.kind() == kv::UpdateErrorKind::WrongLastRevision,
        };
        match heartbeat {
            Ok(rev) => self.heartbeat = rev,
            Err(e)
                if e.kind() == kv::UpdateErrorKind::WrongLastRevision
                    && let Some(rev) = self.own_revision(&key).await =>
            {
                // Our own last write, whose acknowledgement was lost.
                self.heartbeat = rev;
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                // Our heartbeat aged out (a pause, a long disconnection), and our claims with
                // it: they may be another member's now. This one owns nothing until it has
                // joined again and claimed afresh.
                tracing::error!(member = %self.name, "this member was silent longer than failover: its heartbeat aged out; giving up every partition and joining again");
                self.claims.clear();
                self.publish();
                match self.kv.create(&key, self.heartbeat_value()).await {
                    Ok(rev) => self.heartbeat = rev,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot join again yet; retrying next beat")
                    }
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat not written; retrying next beat"),
        }
        if !led {
            self.expire_unrenewed();
        }
        self.renew().await;
        self.expire_unrenewed();
        let live = self.live_members();
        let target = assign(&live, &self.current_claims(), self.count);
        let claims = target
            .iter()
            .filter(|(p, owner)| **owner == self.name && !self.claims.contains_key(p))
            .map(|(&p, _)| {
                let kv = self.kv.clone();
                let value = self.claim_value();
                async move { (p, kv.create(format!("partitions.{p}"), value).await) }
            });
        let Ok(claimed) = tokio::time::timeout(wait, futures::future::join_all(claims)).await
        else {
            tracing::warn!("claims not written: NATS did not answer within {wait:?}");
            return;
        };
        for (p, result) in claimed {
            match result {
                Ok(rev) => {
                    tracing::info!(partition = p, member = %self.name, "claimed partition");
                    self.claims.insert(p, (rev, Instant::now()));
                }
                // Held: by this run when an earlier claim's answer was lost (it is ours
                // then), else by its owner, who hands it over, or until it ages out.
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    if let Some(rev) = self.own_revision(&format!("partitions.{p}")).await {
                        tracing::info!(partition = p, member = %self.name, "claimed partition (an earlier claim's answer was lost)");
                        self.claims.insert(p, (rev, Instant::now()));
                    }
                }
                Err(e) => tracing::warn!(partition = p, error = %e, "claim not written"),
            }
        }
        self.publish_with(&target);
    }

    /// Renews every claim against its revision. A claim whose revision moved was taken by
    /// another member (ours aged out): it is dropped at once. One not renewed for three
    /// quarters of `failover` (NATS away) is given up before it can age out under us.
    async fn renew(&mut self) {
        // All at once: one round trip per beat, however many partitions, so a loaded machine
        // does not stretch a beat past the failover.
        let renewals = self.claims.iter().map(|(&p, &(rev, _))| {
            let kv = self.kv.clone();
            let value = self.claim_value();
            async move { (p, kv.update(format!("partitions.{p}"), value, rev).await) }
        });
        let wait = request_wait(self.failover);
        let Ok(results) = tokio::time::timeout(wait, futures::future::join_all(renewals)).await
        else {
            tracing::warn!("claims not renewed: NATS did not answer within {wait:?}");
            self.heard(None);
            return;
        };
        if let Some((_, result)) = results.first() {
            self.heard(Some(result));
        }
        let mut lost = Vec::new();
        let mut wrong = Vec::new();
        for (p, result) in results {
            let Some((rev, renewed)) = self.claims.get_mut(&p) else {
                continue;
            };
            match result {
                Ok(new) => {
                    *rev = new;
                    *renewed = Instant::now();
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    wrong.push(p);
                }
                // Given up by `expire_unrenewed` if this lasts.
                Err(e) => tracing::warn!(partition = p, error = %e, "claim not renewed"),
            }
        }
        // A moved revision may be this member's own renewal whose acknowledgement was lost
        // (a NATS node lost mid-write): the claim is still ours then.
        for p in wrong {
            match self.own_revision(&format!("partitions.{p}")).await {
                Some(rev) => {
                    if let Some((held, _)) = self.claims.get_mut(&p) {
                        *held = rev;
                    }
                }
                None => lost.push(p),
            }
        }
        for p in lost {
            tracing::error!(partition = p, member = %self.name, "lost partition: its claim aged out or moved; this member stops consuming it");
            self.claims.remove(&p);
        }
    }

    async fn release(&mut self, parts: &[u32]) {
        let deletes = parts.iter().filter_map(|p| {
            let (rev, _) = self.claims.remove(p)?;
            let kv = self.kv.clone();
            Some(async move {
                (
                    *p,
                    kv.delete_expect_revision(format!("partitions.{p}"), Some(rev))
                        .await,
                )
            })
        });
        for (p, result) in futures::future::join_all(deletes.collect::<Vec<_>>()).await {
            match result {
                Ok(()) => tracing::info!(partition = p, member = %self.name, "released partition"),
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "release not written; the claim ages out")
                }
            }
        }
        self.publish();
    }

    fn publish(&self) {
        let target = assign(&self.live_members(), &self.current_claims(), self.count);
        self.publish_with(&target);
    }

    fn publish_with(&self, target: &BTreeMap<u32, String>) {
        let claimed: BTreeSet<u32> = self.claims.keys().copied().collect();
        let surplus = claimed
            .iter()
            .copied()
            .filter(|p| target.get(p).is_some_and(|owner| *owner != self.name))
            .collect();
        self.ownership.send_if_modified(|o| {
            let next = Ownership { claimed, surplus };
            let changed = *o != next;
            *o = next;
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    fn shares(a: &BTreeMap<u32, String>) -> BTreeMap<String, usize> {
        let mut s = BTreeMap::new();
        for m in a.values() {
            *s.entry(m.clone()).or_default() += 1;
        }
        s
    }

    #[test]
    fn every_partition_gets_one_owner_in_fair_shares() {
        let members = names(&["a", "b", "c"]);
        let a = assign(&members, &BTreeMap::new(), 16);
        assert_eq!(a.len(), 16);
        let s = shares(&a);
        assert_eq!(s.values().copied().collect::<Vec<_>>(), vec![6, 5, 5]);
        assert_eq!(s["a"], 6, "the extra partition goes to the first name");
        // Alone: everything.
        let a = assign(&names(&["solo"]), &BTreeMap::new(), 16);
        assert_eq!(shares(&a)["solo"], 16);
        // Nobody: nothing.
        assert!(assign(&[], &BTreeMap::new(), 16).is_empty());
        // More members than partitions: one each, the rest none.
        let a = assign(&names(&["a", "b", "c"]), &BTreeMap::new(), 2);
        assert_eq!(a.len(), 2);
        assert_eq!(shares(&a).values().sum::<usize>(), 2);
    }

    #[test]
    fn a_join_moves_only_the_newcomers_share() {
        let before = assign(&names(&["a", "b"]), &BTreeMap::new(), 16);
        let after = assign(&names(&["a", "b", "c"]), &before, 16);
        let moved = (0..16).filter(|p| before[p] != after[p]).count();
        assert_eq!(moved, 5, "c takes 5 and nothing else moves");
        assert!(
            (0..16).all(|p| before[&p] == after[&p] || after[&p] == "c"),
            "moved partitions go to the newcomer"
        );
        assert_eq!(shares(&after)["c"], 5);
    }

    #[test]
    fn a_loss_moves_only_the_lost_members_partitions() {
        let before = assign(&names(&["a", "b", "c"]), &BTreeMap::new(), 16);
        let after = assign(&names(&["a", "c"]), &before, 16);
        for p in 0..16 {
            if before[&p] != "b" {
                assert_eq!(before[&p], after[&p], "partition {p} of a survivor stays");
            } else {
                assert_ne!(after[&p], "b");
            }
        }
        assert_eq!(
            shares(&after).values().copied().collect::<Vec<_>>(),
            vec![8, 8]
        );
    }

    #[test]
    fn the_same_view_gives_the_same_answer() {
        let members = names(&["x", "y", "z", "w"]);
        let current: BTreeMap<u32, String> = [(0, "z".to_string()), (5, "gone".to_string())].into();
        assert_eq!(
            assign(&members, &current, 32),
            assign(&members, &current, 32)
        );
        // A claim of a member that is not live is not kept for it.
        assert!(assign(&members, &current, 32).values().all(|m| m != "gone"));
        assert_eq!(assign(&members, &current, 32)[&0], "z");
    }

    #[test]
    fn a_forwarded_command_arrives_as_it_was_sent() {
        use vigil_engine::{AlertCommand, CommandKind, Owner, Timestamp};
        for (owner, kind) in [
            (Owner::Patient("p1".into()), CommandKind::Ack),
            (Owner::Location("w1".into()), CommandKind::Resolve),
            (
                Owner::Provider("dr1".into()),
                CommandKind::Snooze { millis: 900_000 },
            ),
            (Owner::Resource("chair-2".into()), CommandKind::Receipt),
            (Owner::Patient("p2".into()), CommandKind::Decline),
        ] {
            let c = AlertCommand {
                tenant: "t1".into(),
                owner,
                alert_id: "alert-1".into(),
                kind,
                page_id: "page-alert-1-1".into(),
                role: vigil_config::Role::ChargeNurse,
                by: "bo".into(),
                reason: "seen".into(),
                at: Timestamp(1_700_000_000_000),
            };
            let wire = serde_json::to_vec(&ForwardedCommand::from(&c)).unwrap_or_default();
            let back: ForwardedCommand = serde_json::from_slice(&wire).expect("decodes");
            assert_eq!(back.into_command(), Ok(c));
        }
        let mut odd = ForwardedCommand::from(&AlertCommand {
            tenant: "t1".into(),
            owner: Owner::Patient("p1".into()),
            alert_id: "a".into(),
            kind: CommandKind::Ack,
            page_id: String::new(),
            role: vigil_config::Role::Nurse,
            by: "n".into(),
            reason: String::new(),
            at: Timestamp(0),
        });
        odd.kind = "launch".into();
        assert_eq!(odd.into_command(), Err("unknown command `launch`".into()));
    }

    #[test]
    fn a_claim_unrenewed_for_three_quarters_of_failover_is_given_up_unless_the_bucket_has_no_leader()
     {
        let failover = Duration::from_secs(10);
        let now = Instant::now();
        let ago = |ms| now.checked_sub(Duration::from_millis(ms)).expect("uptime");
        let claims = BTreeMap::from([(0, (1, now)), (1, (2, ago(7_400))), (2, (3, ago(7_600)))]);
        assert_eq!(unrenewed(&claims, failover, false), vec![2]);
        assert_eq!(unrenewed(&claims, failover, true), Vec::<u32>::new());
        let old = BTreeMap::from([(3, (4, ago(60_000)))]);
        assert_eq!(unrenewed(&old, failover, true), Vec::<u32>::new());
        assert_eq!(unrenewed(&old, failover, false), vec![3]);
    }

    #[test]
    fn only_no_responders_says_the_bucket_has_no_leader() {
        use async_nats::jetstream::context::{PublishError, PublishErrorKind as K};
        let answer = |kind| kv::UpdateError::from(PublishError::new(kind));
        assert!(no_leader(&answer(K::StreamNotFound)));
        for kind in [K::TimedOut, K::BrokenPipe, K::WrongLastSequence, K::Other] {
            assert!(!no_leader(&answer(kind)), "{kind:?}");
        }
        for kind in [kv::UpdateErrorKind::TimedOut, kv::UpdateErrorKind::Other] {
            assert!(!no_leader(&kv::UpdateError::new(kind)), "{kind:?}");
        }
    }

    #[test]
    fn ownership_keeps_what_is_not_surplus() {
        let o = Ownership {
            claimed: [1, 2, 3].into(),
            surplus: [2].into(),
        };
        assert_eq!(o.keep(), vec![1, 3]);
    }
}
