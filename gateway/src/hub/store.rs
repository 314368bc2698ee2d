//! What the hub stores and hands to connections, each serialized once: alerts in scope
//! ([`AlertEntry`]), pages waiting for a receipt ([`PageEntry`]), and the latest state of each
//! patient ([`PatientFrame`]) and resource ([`ResourceFrame`]).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use vigil_engine::practice::keeper::ResourceView;
use vigil_engine::{Alert, AlertState, Level, Owner, Page, PatientStatus, Timestamp, Vitals};

use super::auth::Principal;

/// An alert as the gateway keeps and sends it: routing fields plus its JSON, serialized once.
#[derive(Debug)]
pub struct AlertEntry {
    pub alert_id: String,
    pub tenant: String,
    pub unit: Option<String>,
    pub patient: Option<String>,
    /// The actor that keeps the alert: where commands go.
    pub owner: Option<Owner>,
    pub level: Level,
    pub state: AlertState,
    pub version: u64,
    pub emitted_at: Timestamp,
    /// The current page, if any.
    pub page: Option<Page>,
    /// The `alert` frame, `{"type":"alert","alert":` + the alert's JSON + `}`: built once and
    /// shared by every connection that writes it (at 1,000 dashboards, a copy per connection
    /// of an 8 KiB sepsis alert was most of the gateway's memory traffic).
    frame: Utf8Bytes,
}

/// What an `alert` frame holds before the alert's JSON.
const ALERT_FRAME_HEAD: &str = r#"{"type":"alert","alert":"#;

impl AlertEntry {
    /// The entry of `alert`, whose `orchestration.alert.v1` data serializes to `json`.
    pub fn of(alert: &Alert, json: &str) -> Self {
        let mut frame = String::with_capacity(ALERT_FRAME_HEAD.len() + json.len() + 1);
        frame.push_str(ALERT_FRAME_HEAD);
        frame.push_str(json);
        frame.push('}');
        AlertEntry {
            alert_id: alert.alert_id.clone(),
            tenant: alert.tenant_id.clone(),
            unit: alert.unit_id.clone(),
            patient: alert.patient_id.clone(),
            owner: alert.owner(),
            level: alert.level,
            state: alert.state,
            version: alert.version,
            emitted_at: alert.emitted_at,
            page: alert.escalation.page.clone(),
            frame: frame.into(),
        }
    }

    /// The `orchestration.alert.v1` data as JSON.
    pub fn json(&self) -> &str {
        let frame = self.frame.as_str();
        frame
            .get(ALERT_FRAME_HEAD.len()..frame.len().saturating_sub(1))
            .unwrap_or_default()
    }

    /// The `alert` frame, shared.
    pub fn frame(&self) -> Utf8Bytes {
        self.frame.clone()
    }
}

/// A page waiting for its receipt: sent to every matching pager connection now, and to each
/// matching pager that connects while it waits.
#[derive(Debug)]
pub struct PageEntry {
    pub page: Page,
    /// The alert transition that issued (or re-sent) the page: the frame's `alert`, and the
    /// tenant and unit the page reaches. Shared with the hub's alerts, not copied: a page
    /// waits as long as nobody receipts it, and with no pager connected every open alert's
    /// page waits (an 8.5 KB sepsis alert each).
    pub(crate) alert: Arc<AlertEntry>,
    /// The `page` frame, built when a connection first gets the page and then shared by every
    /// connection that writes it.
    frame: OnceLock<Utf8Bytes>,
}

impl PageEntry {
    pub fn new(page: Page, alert: Arc<AlertEntry>) -> Self {
        PageEntry {
            page,
            alert,
            frame: OnceLock::new(),
        }
    }

    /// The `page` frame: `{"type":"page","pageId":..,"alert":..}`.
    pub fn frame(&self) -> Utf8Bytes {
        self.frame
            .get_or_init(|| {
                let json = self.alert.json();
                let mut frame = String::with_capacity(json.len() + 64);
                frame.push_str(r#"{"type":"page","pageId":"#);
                frame.push_str(&serde_json::to_string(&self.page.page_id).unwrap_or_default());
                frame.push_str(r#","alert":"#);
                frame.push_str(json);
                frame.push('}');
                frame.into()
            })
            .clone()
    }

    /// True when a connection of this principal should get the page.
    pub fn reaches(&self, p: &Principal) -> bool {
        p.covers(&self.alert.tenant, self.alert.unit.as_deref())
            && self.page.reaches(p.role, &p.page_roles)
    }
}

/// `(tenant, patientId)`.
pub(super) type PatientKey = (Arc<str>, Arc<str>);

/// Patients' latest states as one flush hands them to the connections.
pub type PatientBatch = Arc<Vec<Arc<PatientFrame>>>;

/// The latest live state of one patient. A frame this process scored is serialized once, on
/// first demand by a subscribed connection, so patients nobody watches cost no JSON; a frame
/// relayed from the cluster member that scored it arrives serialized.
#[derive(Debug)]
pub struct PatientFrame {
    pub tenant: Arc<str>,
    pub patient_id: Arc<str>,
    pub unit_id: Arc<str>,
    /// The time of the reading it shows: a relayed frame older than the one held is dropped.
    pub at: Timestamp,
    body: PatientBody,
    /// A newer frame of the patient took its place in the hub: connections that have not
    /// written this one yet skip it (the newer one comes in a later flush), or, holding it in
    /// a snapshot, write the hub's latest instead.
    superseded: AtomicBool,
}

#[derive(Debug)]
enum PatientBody {
    Scored(Box<PatientStatus>, std::sync::OnceLock<Utf8Bytes>),
    Relayed(Utf8Bytes),
}

impl PatientFrame {
    pub fn new(state: PatientStatus) -> Self {
        Self {
            tenant: state.tenant.clone(),
            patient_id: state.patient_id.clone(),
            unit_id: state.unit_id.clone(),
            at: state.at,
            body: PatientBody::Scored(Box::new(state), std::sync::OnceLock::new()),
            superseded: AtomicBool::new(false),
        }
    }

    /// A frame another cluster member scored, with its `patient` frame as that member wrote it.
    pub fn relayed(
        tenant: Arc<str>,
        patient_id: Arc<str>,
        unit_id: Arc<str>,
        at: Timestamp,
        json: String,
    ) -> Self {
        Self {
            tenant,
            patient_id,
            unit_id,
            at,
            body: PatientBody::Relayed(json.into()),
            superseded: AtomicBool::new(false),
        }
    }

    /// Puts `state` in place of a frame this process scored, in its allocations (the drain
    /// updates every patient at every reading); gives `state` back for a relayed frame.
    pub fn rescore(&mut self, state: PatientStatus) -> Option<PatientStatus> {
        let PatientBody::Scored(held, json) = &mut self.body else {
            return Some(state);
        };
        self.unit_id = state.unit_id.clone();
        self.at = state.at;
        **held = state;
        json.take();
        None
    }

    pub fn supersede(&self) {
        self.superseded.store(true, Relaxed);
    }

    pub fn is_superseded(&self) -> bool {
        self.superseded.load(Relaxed)
    }

    /// Scored by this process (not relayed from another member).
    pub fn is_local(&self) -> bool {
        matches!(self.body, PatientBody::Scored(..))
    }

    pub fn json(&self) -> &str {
        self.shared_json()
    }

    /// The `patient` frame's text, shared: every connection writes the same bytes.
    pub fn text(&self) -> Utf8Bytes {
        self.shared_json().clone()
    }

    fn shared_json(&self) -> &Utf8Bytes {
        match &self.body {
            PatientBody::Relayed(json) => json,
            PatientBody::Scored(p, json) => json.get_or_init(|| {
                let frame = PatientFrameJson {
                    r#type: "patient",
                    patient_id: &p.patient_id,
                    unit_id: &p.unit_id,
                    bed_id: p.bed_id.as_deref(),
                    at: p.at,
                    news2: p.news2,
                    qsofa: p.qsofa,
                    sirs: p.sirs,
                    partial: p.partial,
                    single3: p.single3,
                    sepsis_risk: p.sepsis_risk.map(vigil_engine::patient::view::round_risk),
                    vitals: &p.vitals,
                };
                serde_json::to_string(&frame).unwrap_or_default().into()
            }),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PatientFrameJson<'a> {
    r#type: &'static str,
    patient_id: &'a str,
    unit_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    bed_id: Option<&'a str>,
    at: Timestamp,
    news2: Option<u8>,
    qsofa: Option<u8>,
    sirs: Option<u8>,
    partial: bool,
    single3: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sepsis_risk: Option<f64>,
    vitals: &'a Vitals,
}

/// The latest live state of one provider, chair or room, or waiting area: its `resource`
/// frame, serialized once.
#[derive(Debug)]
pub struct ResourceFrame {
    pub tenant: String,
    pub unit: Option<String>,
    /// `{kind}:{id}`: providers, resources and locations are keyed apart.
    pub key: String,
    /// When its state was last computed: a relayed frame older than the one held is dropped.
    pub at: Timestamp,
    /// Relayed from the cluster member that keeps the resource (not kept by this process).
    pub relayed: bool,
    pub json: String,
}

#[derive(Serialize)]
pub(super) struct ResourceFrameJson<'a> {
    pub(super) r#type: &'static str,
    #[serde(flatten)]
    pub(super) view: &'a ResourceView,
}

/// A patient of `tenant` in icu-3 with a NEWS2 and nothing else (the hub's and the
/// connections' tests).
#[cfg(test)]
pub(crate) fn status_for_tests(
    tenant: &str,
    patient: &str,
    at_ms: i64,
    news2: u8,
) -> PatientStatus {
    PatientStatus {
        tenant: tenant.into(),
        patient_id: patient.into(),
        unit_id: "icu-3".into(),
        bed_id: None,
        at: Timestamp::from_millis(at_ms),
        news2: Some(news2),
        qsofa: None,
        sirs: None,
        partial: false,
        single3: false,
        sepsis_risk: None,
        vitals: Default::default(),
    }
}
