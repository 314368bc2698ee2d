//! The gateway's counters and `/metrics`: one prometheus-client registry per scrape over the
//! gateway's own figures and every other source of the process (ingest, the NATS link).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use vigil_engine::AlertState;

use super::{Hub, MetricsSource};
use crate::error::ErrorCode;

/// Gateway counters.
#[derive(Debug, Default)]
pub struct GatewayMetrics {
    pub connected: AtomicU64,
    pub connections_total: AtomicU64,
    pub rejected_unauthorized: AtomicU64,
    pub rejected_capacity: AtomicU64,
    pub slow_client_closes: AtomicU64,
    /// TCP connections open now (HTTP and WebSocket), and the most allowed.
    pub open_connections: AtomicU64,
    pub open_connections_limit: AtomicU64,
    /// Connections closed at accept because `open_connections_limit` was reached.
    pub refused_connections: AtomicU64,
    /// Connections closed because their request headers did not arrive in time.
    pub header_timeouts: AtomicU64,
    /// Connections without a request yet, closed to make room for newer ones.
    pub evicted_pending: AtomicU64,
    /// Accepts that failed (out of file descriptors, and the like).
    pub accept_errors: AtomicU64,
    /// WebSockets closed for never subscribing, and for not answering a ping.
    pub idle_closes: AtomicU64,
    pub ping_timeouts: AtomicU64,
    /// WebSockets closed (1009) for a frame or message over 64 KiB.
    pub oversize_closes: AtomicU64,
    /// Requests refused (431) for a line and headers over 64 KiB.
    pub oversize_heads: AtomicU64,
    pub alert_frames: AtomicU64,
    pub patient_frames: AtomicU64,
    /// Flushes that sent a batch of patient updates to the connections.
    pub patient_batches: AtomicU64,
    pub resource_frames: AtomicU64,
    pub page_frames: AtomicU64,
    pub commands_ok: AtomicU64,
    /// `GET /api/patients/{patientId}` answered with a patient.
    pub patient_views: AtomicU64,
    /// Patient and resource frames taken from other cluster members.
    pub relayed_frames: AtomicU64,
    /// Frame relay messages from other cluster members that could not be read.
    pub relay_errors: AtomicU64,
    /// Error frames and HTTP errors, by [`ErrorCode::index`].
    pub errors: [AtomicU64; ErrorCode::ALL.len()],
}

impl GatewayMetrics {
    pub fn error(&self, code: ErrorCode) {
        self.errors[code.index()].fetch_add(1, Relaxed);
    }
}

impl Hub {
    /// The OpenMetrics text of `/metrics`: the gateway's own metrics and every other source.
    pub fn render_metrics(&self) -> String {
        let m = &self.metrics;
        let load = |a: &AtomicU64| a.load(Relaxed);
        let mut open = [0u64; 3];
        for e in self.alerts.iter() {
            if e.state != AlertState::Resolved {
                open[e.level as usize] += 1;
            }
        }
        let scrape = Scrape {
            gauges: vec![
                (
                    "vigil_ws_connected",
                    "WebSocket sessions open now",
                    load(&m.connected),
                ),
                (
                    "vigil_ws_patient_connections",
                    "WebSocket sessions subscribed to patients, which share gateway.patient_frames_per_second",
                    load(&self.patient_connections),
                ),
                (
                    "vigil_http_open_connections",
                    "TCP connections open now, HTTP and WebSocket",
                    load(&m.open_connections),
                ),
                (
                    "vigil_http_open_connections_limit",
                    "The most TCP connections the gateway keeps open",
                    load(&m.open_connections_limit),
                ),
            ],
            counters: vec![
                (
                    "vigil_ws_connections",
                    "WebSocket sessions opened",
                    load(&m.connections_total),
                ),
                (
                    "vigil_ws_rejected_unauthorized",
                    "Requests refused for a missing or unknown token",
                    load(&m.rejected_unauthorized),
                ),
                (
                    "vigil_ws_rejected_capacity",
                    "WebSocket upgrades refused above gateway.max_connections",
                    load(&m.rejected_capacity),
                ),
                (
                    "vigil_ws_slow_client_closes",
                    "WebSockets closed with 1013, too slow for their alerts",
                    load(&m.slow_client_closes),
                ),
                (
                    "vigil_ws_idle_closes",
                    "WebSockets closed with 1008, never subscribed",
                    load(&m.idle_closes),
                ),
                (
                    "vigil_ws_ping_timeouts",
                    "WebSockets closed with 1011, no answer to a ping",
                    load(&m.ping_timeouts),
                ),
                (
                    "vigil_ws_oversize_closes",
                    "WebSockets closed with 1009, a message over 64 KiB",
                    load(&m.oversize_closes),
                ),
                (
                    "vigil_http_oversize_heads",
                    "Requests answered 431, a head over 64 KiB",
                    load(&m.oversize_heads),
                ),
                (
                    "vigil_http_refused_connections",
                    "Connections closed at accept, the open-connection cap reached",
                    load(&m.refused_connections),
                ),
                (
                    "vigil_http_header_timeouts",
                    "Connections closed, request headers not in within gateway.header_timeout",
                    load(&m.header_timeouts),
                ),
                (
                    "vigil_http_evicted_pending",
                    "Connections without a request yet, closed to make room for newer ones",
                    load(&m.evicted_pending),
                ),
                (
                    "vigil_http_accept_errors",
                    "Accepts that failed (out of file descriptors and the like)",
                    load(&m.accept_errors),
                ),
                (
                    "vigil_ws_alert_frames",
                    "alert frames written",
                    load(&m.alert_frames),
                ),
                (
                    "vigil_ws_patient_frames",
                    "patient frames written",
                    load(&m.patient_frames),
                ),
                (
                    "vigil_ws_patient_batches",
                    "coalesced batches of patient updates handed to the connections",
                    load(&m.patient_batches),
                ),
                (
                    "vigil_ws_resource_frames",
                    "resource frames written",
                    load(&m.resource_frames),
                ),
                (
                    "vigil_ws_page_frames",
                    "page frames written",
                    load(&m.page_frames),
                ),
                (
                    "vigil_commands_ok",
                    "Commands applied and stored",
                    load(&m.commands_ok),
                ),
                (
                    "vigil_patient_views",
                    "Patients shown by GET /api/patients/{patientId}",
                    load(&m.patient_views),
                ),
                (
                    "vigil_cluster_relayed_frames",
                    "Patient and resource frames taken from other cluster members",
                    load(&m.relayed_frames),
                ),
                (
                    "vigil_cluster_relay_errors",
                    "Frame relay messages from other cluster members that could not be read",
                    load(&m.relay_errors),
                ),
            ],
            errors: std::array::from_fn(|i| load(&m.errors[i])),
            open,
        };
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(scrape));
        for source in &self.extra_metrics {
            registry.register_collector(Box::new(Shared(source.clone())));
        }
        let mut out = String::with_capacity(8192);
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

/// The gateway's metrics as read at one scrape.
#[derive(Debug)]
struct Scrape {
    gauges: Vec<(&'static str, &'static str, u64)>,
    counters: Vec<(&'static str, &'static str, u64)>,
    /// By [`ErrorCode::index`].
    errors: [u64; ErrorCode::ALL.len()],
    /// Non-resolved alerts by level (info, warning, critical).
    open: [u64; 3],
}

impl prometheus_client::collector::Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, v) in &self.gauges {
            let g = ConstGauge::new(i64::try_from(*v).unwrap_or(i64::MAX));
            g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        for (name, help, v) in &self.counters {
            let c = ConstCounter::new(*v);
            c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        let mut errors = e.encode_descriptor(
            "vigil_ws_errors",
            "error frames and HTTP errors answered, by code",
            None,
            MetricType::Counter,
        )?;
        for code in ErrorCode::ALL {
            let labels = [("code", code.as_str())];
            ConstCounter::new(self.errors[code.index()]).encode(errors.encode_family(&labels)?)?;
        }
        let mut open = e.encode_descriptor(
            "vigil_alerts_open",
            "Alerts not resolved, by level",
            None,
            MetricType::Gauge,
        )?;
        for (i, level) in ["info", "warning", "critical"].into_iter().enumerate() {
            let labels = [("level", level)];
            let n = i64::try_from(self.open[i]).unwrap_or(i64::MAX);
            ConstGauge::new(n).encode(open.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// A metrics source the hub keeps, lent to each scrape's registry.
#[derive(Debug)]
struct Shared(MetricsSource);

impl prometheus_client::collector::Collector for Shared {
    fn encode(&self, e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(e)
    }
}
