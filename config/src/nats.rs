//! `[nats]`: the connection to NATS JetStream and how the engine consumes and retains streams.

use serde::Deserialize;

use crate::Duration;

/// Connection to NATS JetStream and how the engine consumes and retains streams.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// Server URL; required by `vigil run` (file, `VIGIL_NATS_URL` or `--nats-url`).
    pub url: Option<String>,
    /// Durable pull consumer name on `VITALS`; engines sharing a name share the work.
    pub consumer: String,
    /// Most messages the consumer hands to the patient shards in one batch.
    pub batch: usize,
    /// `batch` times this is the most messages handed off but not yet acknowledged; it bounds
    /// every queue between NATS and the actors.
    pub max_inflight_batches: usize,
    /// How long NATS waits for an acknowledgement before redelivering.
    pub ack_wait: Duration,
    /// Retention of the input streams (`0s`: keep everything). ALERTS is never aged out.
    pub max_age: Duration,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: None,
            consumer: "vigil-engine".into(),
            batch: 4096,
            max_inflight_batches: 8,
            ack_wait: Duration::from_secs(30),
            max_age: Duration::from_secs(0),
        }
    }
}
