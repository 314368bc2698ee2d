//! `[gateway]`: the WebSocket and HTTP gateway.

use serde::Deserialize;

use crate::Duration;

/// The WebSocket and HTTP gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Address the gateway listens on.
    pub listen: String,
    /// Alert frames a client may fall behind before it is closed with 1013 and must resync.
    pub client_queue: usize,
    /// Most simultaneous WebSocket connections; further upgrades get 503.
    pub max_connections: usize,
    /// How often coalesced `patient` frames are flushed to a client.
    pub patient_flush: Duration,
    /// `patient` frames the gateway writes a second, all connections together, shared equally
    /// among the connections subscribed to `patients`; what a connection cannot write in its
    /// share coalesces (latest wins). Tiles, paced only by the clients' reading, otherwise take
    /// whatever CPU the machine has, and alerts wait for it. 0: no limit.
    pub patient_frames_per_second: u64,
    /// Most open TCP connections, HTTP and WebSocket together; a connection beyond it is closed
    /// as soon as it is accepted (and counted). Unset: the process's open-file limit less a
    /// reserve for NATS, files and the staff already connected (an eighth of the limit, at
    /// least 64), so a flood of idle sockets cannot take the engine's last file descriptors.
    pub max_open_connections: Option<usize>,
    /// How long a client may take to send a request's headers, the WebSocket upgrade included;
    /// a connection that sends nothing is closed after it.
    pub header_timeout: Duration,
    /// A WebSocket that has not subscribed and sent nothing for this long is closed (1008).
    pub idle_timeout: Duration,
    /// A WebSocket not heard from for this long is pinged, and closed (1011) when it has not
    /// answered after as long again: a frozen client is noticed even while its socket buffers
    /// still take what is written.
    pub ping_interval: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            client_queue: 4096,
            max_connections: 10_000,
            patient_flush: Duration::from_millis(250),
            patient_frames_per_second: 100_000,
            max_open_connections: None,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(30),
        }
    }
}
