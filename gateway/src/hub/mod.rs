//! The hub: what every connection shares. The alerts in scope for snapshots, one bounded
//! broadcast for alert frames and one for patient frames, the latest patient frame per patient
//! (so a lagging dashboard resyncs instead of missing a patient), the command port and counters.
//!
//! Layout: who a token speaks for ([`auth`]), what is stored and sent ([`store`]), the counters
//! and `/metrics` ([`metrics`]); this file is the fan-out, the commands and the engine's ports.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use dashmap::DashMap;
use rustc_hash::{FxBuildHasher, FxHashMap};
use tokio::sync::broadcast;
use vigil_config::{Config, Role};
use vigil_engine::practice::keeper::ResourceView;
use vigil_engine::{
    Alert, AlertCommand, AlertState, CommandError, CommandKind, PageState, PatientStatus, Timestamp,
};

mod auth;
mod metrics;
mod relay;
mod store;

pub use auth::Principal;
pub use metrics::GatewayMetrics;
pub use relay::RelayError;
#[cfg(test)]
pub(crate) use store::status_for_tests;
pub use store::{AlertEntry, PageEntry, PatientBatch, PatientFrame, ResourceFrame};
use store::{PatientKey, ResourceFrameJson};

use crate::error::ErrorCode;
use crate::protocol::Command;

/// A patient's view as `GET /api/patients/{patientId}` answers it (`PatientView` as JSON), or
/// `None` when no actor keeps the patient; `Err` says why it could not be asked.
pub type ViewFuture =
    Pin<Box<dyn Future<Output = Result<Option<serde_json::Value>, String>> + Send>>;

/// What a command or patient view is answered while no engine port is set yet.
const STARTING: &str = "the engine is starting; retry";

/// The port through which the gateway reaches the actors: commands to the actor that owns the
/// alert, and a patient's window from the actor that keeps the patient (in a cluster, over
/// NATS from the member that runs its partition).
pub trait CommandPort: Send + Sync + 'static {
    fn execute(
        &self,
        req: AlertCommand,
    ) -> Pin<Box<dyn Future<Output = Result<Alert, CommandError>> + Send>>;

    /// The patient `(tenant, patient_id)` as `GET /api/patients/{patientId}` shows it.
    fn patient(&self, tenant: String, patient_id: String) -> ViewFuture;
}

/// Extra `/metrics` text from the rest of the process (ingest counters).
/// Metrics of the rest of the engine (ingest, the NATS link), written into the same `/metrics`.
pub type MetricsSource = Arc<dyn prometheus_client::collector::Collector>;

/// Whether the engine can ingest and store right now; `Err` says why not. Asked on every
/// `/readyz`.
pub type ReadinessCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Reads every message stored on one `ALERTS` subject, oldest first (the audit trail).
pub type HistorySource = Arc<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<Vec<bytes::Bytes>, String>> + Send>>
        + Send
        + Sync,
>;

/// What `GET /api/cluster` answers for a cluster member: the members, their partitions and
/// their last heartbeats, as JSON (set once the process has joined).
pub type ClusterSource = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<serde_json::Value, String>> + Send>>
        + Send
        + Sync,
>;

pub struct Hub {
    tokens: HashMap<String, Principal>,
    pub(crate) alerts: DashMap<String, Arc<AlertEntry>>,
    pub(crate) alert_tx: broadcast::Sender<Arc<AlertEntry>>,
    /// Fx hashing: written for every scored batch of every patient (the engine's identifiers,
    /// as in the actors' routers), where SipHash was a visible share of ingest CPU.
    pub(crate) patients: DashMap<PatientKey, Arc<PatientFrame>, FxBuildHasher>,
    /// Pages waiting for a receipt, by page id.
    pub(crate) pages: DashMap<String, Arc<PageEntry>>,
    pub(crate) page_tx: broadcast::Sender<Arc<PageEntry>>,
    /// Coalesced patient frames, one batch per `gateway.patient_flush` (see
    /// [`Hub::flush_patients`]).
    pub(crate) patient_tx: broadcast::Sender<PatientBatch>,
    /// Connections subscribed to `patients`: they share `gateway.patient_frames_per_second`
    /// ([`Hub::patient_share`]).
    pub(crate) patient_connections: AtomicU64,
    /// Patients updated since the last flush, latest state each; filled only while some
    /// connection listens.
    dirty_patients: std::sync::Mutex<FxHashMap<PatientKey, Arc<PatientFrame>>>,
    /// The latest `resource` frame of each provider, resource and waiting area.
    pub(crate) resources: DashMap<(String, String), Arc<ResourceFrame>>,
    pub(crate) resource_tx: broadcast::Sender<Arc<ResourceFrame>>,
    /// Frames this process made since the last relay to the other cluster members, kept only
    /// while `relaying` ([`Hub::start_relaying`]); the flag spares the lock on every update
    /// of a process that relays nothing.
    relay: std::sync::Mutex<relay::Outgoing>,
    relaying: AtomicBool,
    /// Set once the actors exist (the hub is built first so health probes answer at once), and
    /// again each time a cluster member restarts its engine for a new set of partitions.
    commands: std::sync::RwLock<Option<Arc<dyn CommandPort>>>,
    pub metrics: GatewayMetrics,
    pub(crate) ready: AtomicBool,
    /// What else readiness needs (the NATS link, the engine's tasks); set once at start.
    readiness: std::sync::OnceLock<ReadinessCheck>,
    /// What the engine is doing while not started (connecting, recovering, stopping).
    starting: std::sync::Mutex<String>,
    pub(crate) extra_metrics: Vec<MetricsSource>,
    /// Where `GET /api/alerts/{id}/history` reads the audit trail (set once at start).
    pub(crate) history: std::sync::OnceLock<HistorySource>,
    /// Where `GET /api/cluster` reads the membership (set once, by a cluster member).
    pub(crate) cluster: std::sync::OnceLock<ClusterSource>,
    pub(crate) config: vigil_config::GatewayConfig,
    /// Resolved alerts are kept this long so late commands get INVALID_TRANSITION, not 404.
    resolved_retention_ms: i64,
    resolved_seen: AtomicU64,
    /// Flipped once at shutdown: every session closes with 1001.
    pub(crate) shutdown: tokio::sync::watch::Sender<bool>,
}

impl Hub {
    pub fn new(config: &Config, extra_metrics: Vec<MetricsSource>) -> Arc<Hub> {
        let tokens = config
            .auth
            .tokens
            .iter()
            .map(|t| {
                let principal = Principal {
                    tenant: t.tenant.clone(),
                    role: t.role,
                    units: t.units.clone(),
                    name: t
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("{}:{}", t.role.as_str(), t.tenant)),
                    page_roles: t.page_roles.clone(),
                };
                (t.token.clone(), principal)
            })
            .collect();
        let cap = config.gateway.client_queue;
        Arc::new(Hub {
            tokens,
            alerts: DashMap::new(),
            alert_tx: broadcast::channel(cap).0,
            patients: DashMap::with_hasher(FxBuildHasher),
            patient_tx: broadcast::channel(cap).0,
            patient_connections: AtomicU64::new(0),
            dirty_patients: std::sync::Mutex::default(),
            resources: DashMap::new(),
            resource_tx: broadcast::channel(cap).0,
            relay: std::sync::Mutex::default(),
            relaying: AtomicBool::new(false),
            pages: DashMap::new(),
            page_tx: broadcast::channel(cap).0,
            commands: std::sync::RwLock::new(None),
            metrics: GatewayMetrics::default(),
            ready: AtomicBool::new(false),
            readiness: std::sync::OnceLock::new(),
            starting: std::sync::Mutex::new("starting".into()),
            extra_metrics,
            history: std::sync::OnceLock::new(),
            cluster: std::sync::OnceLock::new(),
            config: config.gateway.clone(),
            resolved_retention_ms: 3_600_000,
            resolved_seen: AtomicU64::new(0),
            shutdown: tokio::sync::watch::channel(false).0,
        })
    }

    pub fn authenticate(&self, token: &str) -> Option<&Principal> {
        self.tokens.get(token)
    }

    /// Closes every WebSocket session (1001, going away).
    pub fn close_all(&self) {
        self.shutdown.send_replace(true);
    }

    /// Sets where commands go, replacing the port of an engine that stopped. Until the first
    /// call commands are answered `UNAVAILABLE`.
    pub fn set_commands(&self, port: Arc<dyn CommandPort>) {
        if let Ok(mut commands) = self.commands.write() {
            *commands = Some(port);
        }
    }

    /// Sets where the audit trail is read from (once; later calls are ignored).
    pub fn set_history(&self, source: HistorySource) {
        let _ = self.history.set(source);
    }

    /// Sets where `GET /api/cluster` reads the membership (once; later calls are ignored).
    pub fn set_cluster(&self, source: ClusterSource) {
        let _ = self.cluster.set(source);
    }

    /// Marks the engine started: recovery finished, consumers bound. `/readyz` answers 200 from
    /// then on while the readiness check passes.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Relaxed);
    }

    /// Sets what readiness needs beyond a finished start (once; later calls are ignored).
    pub fn set_readiness(&self, check: ReadinessCheck) {
        let _ = self.readiness.set(check);
    }

    /// `Ok` when the engine can ingest and store now, else why not (what `/readyz` says).
    ///
    /// # Errors
    /// The reason, in words an operator can act on.
    pub fn readiness(&self) -> Result<(), String> {
        if let Some(Err(why)) = self.readiness.get().map(|check| check()) {
            return Err(why);
        }
        if !self.ready.load(Relaxed) {
            let starting = self
                .starting
                .lock()
                .map_or_else(|_| "starting".to_string(), |s| s.clone());
            return Err(starting);
        }
        Ok(())
    }

    /// What `/readyz` says while the engine is not started: connecting to NATS (and why it
    /// cannot yet), recovering, or shutting down.
    pub fn set_starting(&self, what: impl Into<String>) {
        if let Ok(mut s) = self.starting.lock() {
            *s = what.into();
        }
    }

    /// Records an alert transition and pushes it to every subscribed connection in scope.
    /// An older version than the one held is ignored (outputs may race with command replies).
    pub fn publish_alert(&self, alert: &Alert) {
        // A version already held is dropped before it is serialized: a cluster member's hub
        // gets each of its own engine's transitions a second time from `ALERTS`.
        if self
            .alerts
            .get(&alert.alert_id)
            .is_some_and(|held| held.version >= alert.version)
        {
            return;
        }
        self.publish_alert_json(alert, &serde_json::to_string(alert).unwrap_or_default());
    }

    /// [`Hub::publish_alert`] with the alert already serialized (`json` is `alert` as JSON):
    /// the engine serializes each transition once for `ALERTS` and the dashboards.
    pub fn publish_alert_json(&self, alert: &Alert, json: &str) {
        let entry = Arc::new(AlertEntry::of(alert, json));
        let previous_page = match self.alerts.entry(alert.alert_id.clone()) {
            dashmap::Entry::Occupied(mut o) => {
                if o.get().version >= entry.version {
                    return;
                }
                o.insert(entry.clone())
                    .page
                    .as_ref()
                    .map(|p| p.page_id.clone())
            }
            dashmap::Entry::Vacant(v) => {
                v.insert(entry.clone());
                None
            }
        };
        let _ = self.alert_tx.send(entry.clone());
        self.track_page(&entry, previous_page);
        if alert.state == AlertState::Resolved
            && self.resolved_seen.fetch_add(1, Relaxed) % 1024 == 1023
        {
            self.prune_resolved(alert.emitted_at);
        }
    }

    /// Keeps the pending-page table in step with an alert transition, and sends a `page` frame
    /// when the transition issued or re-sent a page. A page waits while the alert is open or
    /// acknowledged (an upgrade pages an acknowledged alert) and the page is not yet receipted.
    fn track_page(&self, entry: &Arc<AlertEntry>, previous: Option<String>) {
        let current = entry.page.as_ref().map(|p| p.page_id.as_str());
        if let Some(prev) = previous.as_deref()
            && Some(prev) != current
        {
            self.pages.remove(prev);
        }
        let Some(page) = &entry.page else { return };
        let waiting = page.state == PageState::Sent
            && matches!(entry.state, AlertState::Open | AlertState::Acknowledged);
        if !waiting {
            self.pages.remove(&page.page_id);
            return;
        }
        let sent_before = self.pages.get(&page.page_id).map_or(0, |p| p.page.attempts);
        if sent_before >= page.attempts {
            return;
        }
        let pending = Arc::new(PageEntry::new(page.clone(), entry.clone()));
        self.pages.insert(page.page_id.clone(), pending.clone());
        let _ = self.page_tx.send(pending);
    }

    /// Pages waiting for a receipt that a connection of `principal` should get.
    pub fn pending_pages(&self, principal: &Principal) -> Vec<Arc<PageEntry>> {
        let mut v: Vec<Arc<PageEntry>> = self
            .pages
            .iter()
            .map(|e| e.value().clone())
            .filter(|e| e.reaches(principal))
            .collect();
        v.sort_by_key(|e| e.page.sent_at);
        v
    }

    fn prune_resolved(&self, now: Timestamp) {
        let keep = self.resolved_retention_ms;
        self.alerts
            .retain(|_, e| e.state != AlertState::Resolved || now.since(e.emitted_at) < keep);
    }

    /// Records a patient's latest state. Connections get it with the next
    /// [`Hub::flush_patients`], coalesced with every other update of that patient since the
    /// last one (latest wins).
    pub fn publish_patient(&self, state: PatientStatus) {
        let key: PatientKey = (state.tenant.clone(), state.patient_id.clone());
        let Some(state) = self.rescore_held(&key, state) else {
            return;
        };
        let frame = Arc::new(PatientFrame::new(state));
        self.relay_out(|out| out.patient(key.clone(), frame.clone()));
        self.store_patient(key, frame);
    }

    /// Puts `state` in place of the patient's held frame, in its allocations, when nothing
    /// else can see the change: no connection waits for a flush, nothing is relayed, no batch
    /// still holds the frame. Gives `state` back otherwise.
    fn rescore_held(&self, key: &PatientKey, state: PatientStatus) -> Option<PatientStatus> {
        if self.patient_tx.receiver_count() > 0 || self.relaying.load(Relaxed) {
            return Some(state);
        }
        let Some(mut held) = self.patients.get_mut(key) else {
            return Some(state);
        };
        match Arc::get_mut(&mut held) {
            Some(frame) => frame.rescore(state),
            None => Some(state),
        }
    }

    /// Holds `frame` as the patient's latest and queues it for the connections' next flush.
    fn store_patient(&self, key: PatientKey, frame: Arc<PatientFrame>) {
        if self.patient_tx.receiver_count() > 0
            && let Ok(mut dirty) = self.dirty_patients.lock()
        {
            dirty.insert(key.clone(), frame.clone());
        }
        if let Some(older) = self.patients.insert(key, frame) {
            older.supersede();
        }
    }

    /// The patient frames a second one connection subscribed to `patients` may write: its
    /// equal share of `gateway.patient_frames_per_second`; none without a limit.
    pub(crate) fn patient_share(&self) -> Option<f64> {
        let budget = self.config.patient_frames_per_second;
        let connections = self.patient_connections.load(Relaxed).max(1);
        (budget > 0).then(|| budget as f64 / connections as f64)
    }

    /// Sends every patient updated since the last call to the connections, as one batch. The
    /// gateway calls it every `gateway.patient_flush`: one wake-up per connection per flush
    /// instead of one per patient update, which at 10,000 updates/s and 1,000 dashboards was
    /// ten million wake-ups a second, enough to starve ingest.
    pub fn flush_patients(&self) {
        let batch: Vec<Arc<PatientFrame>> = match self.dirty_patients.lock() {
            Ok(mut dirty) if !dirty.is_empty() => {
                std::mem::take(&mut *dirty).into_values().collect()
            }
            _ => return,
        };
        self.metrics.patient_batches.fetch_add(1, Relaxed);
        let _ = self.patient_tx.send(Arc::new(batch));
    }

    /// Records a provider's, resource's or waiting area's latest state; connections coalesce
    /// these (latest wins), like patient frames.
    pub fn publish_resource(&self, view: &ResourceView) {
        let key = format!("{}:{}", view.kind.as_str(), view.resource_id);
        let json = serde_json::to_string(&ResourceFrameJson {
            r#type: "resource",
            view,
        })
        .unwrap_or_default();
        let frame = Arc::new(ResourceFrame {
            tenant: view.tenant.clone(),
            unit: view.unit_id.clone(),
            key: key.clone(),
            at: view.at,
            relayed: false,
            json,
        });
        let key = (view.tenant.clone(), key);
        self.relay_out(|out| out.resource(key.clone(), frame.clone()));
        self.store_resource(key, frame);
    }

    /// Holds `frame` as the resource's latest and sends it to the connections.
    fn store_resource(&self, key: (String, String), frame: Arc<ResourceFrame>) {
        self.resources.insert(key, frame.clone());
        if self.resource_tx.receiver_count() > 0 {
            let _ = self.resource_tx.send(frame);
        }
    }

    /// Applies a person's command through the actor that owns the alert: the one path for the
    /// WebSocket and the HTTP mirror. An alert of another tenant or of a unit outside the
    /// token does not exist for the caller (`ALERT_NOT_FOUND`). `Receipt` and `Decline` name
    /// a page (`target`); the others name an alert.
    ///
    /// # Errors
    /// The engine's refusal, with the contract's code; `FORBIDDEN` for a page addressed to
    /// another role.
    pub async fn command(&self, principal: &Principal, c: Command) -> Result<Alert, CommandError> {
        // Refused up front while nothing can be stored: the client retries, nothing changed.
        let result = match self.readiness() {
            Err(why) => Err(CommandError::Unavailable(format!(
                "commands cannot be stored now ({why}); nothing was changed, retry"
            ))),
            Ok(()) => {
                self.route_command(principal, c.kind, &c.target, c.reason)
                    .await
            }
        };
        match &result {
            Ok(_) => {
                self.metrics.commands_ok.fetch_add(1, Relaxed);
            }
            Err(e) => self.metrics.error(ErrorCode::from(e)),
        }
        result
    }

    async fn route_command(
        &self,
        principal: &Principal,
        kind: CommandKind,
        target: &str,
        reason: String,
    ) -> Result<Alert, CommandError> {
        let paging = matches!(kind, CommandKind::Receipt | CommandKind::Decline);
        let (alert_id, page_id) = if paging {
            let alert = vigil_engine::alert::page_alert(target)
                .ok_or_else(|| CommandError::PageNotFound(target.to_string()))?;
            (alert, target.to_string())
        } else {
            (target.to_string(), String::new())
        };
        let not_found = || {
            if paging {
                CommandError::PageNotFound(target.to_string())
            } else {
                CommandError::NotFound(target.to_string())
            }
        };
        let entry = self.alert_for(principal, &alert_id).ok_or_else(not_found)?;
        if paging && principal.role != Role::Admin {
            let page = entry.page.as_ref().filter(|p| p.page_id == page_id);
            if let Some(p) = page
                && !p.reaches(principal.role, &principal.page_roles)
            {
                return Err(CommandError::Forbidden {
                    role: principal.role.as_str(),
                    action: kind.verb(),
                    category: "other roles'",
                });
            }
        }
        let owner = entry.owner.clone().ok_or_else(not_found)?;
        let req = AlertCommand {
            tenant: entry.tenant.clone(),
            owner,
            alert_id,
            kind,
            page_id,
            role: principal.role,
            by: principal.name.clone(),
            reason,
            at: crate::now(),
        };
        let Some(port) = self.port() else {
            return Err(CommandError::Unavailable(STARTING.into()));
        };
        port.execute(req).await
    }

    /// The engine's port, once the actors exist (see [`Hub::set_commands`]).
    fn port(&self) -> Option<Arc<dyn CommandPort>> {
        self.commands.read().ok().and_then(|c| c.clone())
    }

    /// The patient's current scores and window series (`GET /api/patients/{patientId}`), if
    /// the patient is kept by an engine and its unit is in the principal's scope. A patient of
    /// another tenant or of a unit outside the token does not exist for the caller.
    ///
    /// # Errors
    /// `PATIENT_NOT_FOUND`, or `UNAVAILABLE` while the engine is starting or the patient's
    /// engine cannot be asked.
    pub async fn patient_view(
        &self,
        principal: &Principal,
        patient_id: &str,
    ) -> Result<serde_json::Value, crate::GatewayError> {
        use crate::GatewayError;
        let not_found = || {
            GatewayError::new(
                ErrorCode::PatientNotFound,
                format!(
                    "patient {patient_id} not found (no engine keeps a window for it in your scope)"
                ),
            )
        };
        let Some(port) = self.port() else {
            return Err(GatewayError::new(ErrorCode::Unavailable, STARTING));
        };
        let view = port
            .patient(principal.tenant.clone(), patient_id.to_string())
            .await
            .map_err(|why| GatewayError::new(ErrorCode::Unavailable, why))?
            .ok_or_else(not_found)?;
        let unit = view.get("unitId").and_then(|u| u.as_str());
        if !principal.covers(&principal.tenant, unit) {
            return Err(not_found());
        }
        Ok(view)
    }

    /// The alerts this principal may see, in `state` (or every non-resolved one), oldest first.
    pub fn alerts_in_scope(
        &self,
        principal: &Principal,
        state: Option<AlertState>,
    ) -> Vec<Arc<AlertEntry>> {
        let mut v: Vec<Arc<AlertEntry>> = self
            .alerts
            .iter()
            .map(|e| e.value().clone())
            .filter(|e| principal.covers(&e.tenant, e.unit.as_deref()))
            .filter(|e| match state {
                Some(s) => e.state == s,
                None => e.state != AlertState::Resolved,
            })
            .collect();
        v.sort_by_key(|e| e.emitted_at);
        v
    }

    /// `{"alerts":[alert, ...]}` from entries whose JSON is already serialized, with `prefix`
    /// fields before the array (e.g. `"type":"snapshot",`).
    pub(crate) fn alerts_json(prefix: &str, entries: &[Arc<AlertEntry>]) -> String {
        let mut out = String::with_capacity(
            16 + prefix.len() + entries.iter().map(|e| e.json().len() + 1).sum::<usize>(),
        );
        out.push('{');
        out.push_str(prefix);
        out.push_str(r#""alerts":["#);
        for (i, e) in entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(e.json());
        }
        out.push_str("]}");
        out
    }

    /// The alert's routing entry, if this principal may see it.
    pub(crate) fn alert_for(
        &self,
        principal: &Principal,
        alert_id: &str,
    ) -> Option<Arc<AlertEntry>> {
        self.alerts
            .get(alert_id)
            .map(|e| e.value().clone())
            .filter(|e| principal.covers(&e.tenant, e.unit.as_deref()))
    }
}
