//! vigil-streams: the wire at the edges. Inbound messages decoded from JSON or MessagePack,
//! validated and turned into the engine's events (`vigil_engine::event`); the JetStream and embedded buses behind one interface; the DLQ;
//! the ingest loop with its ack strategy; and the publishing of alert transitions.
//!
//! Dependency chain: `config` -> `engine` -> **`streams`** -> `vigil`. Translates wire shapes to
//! engine types and back; holds no clinical logic.

pub mod bus;
pub mod dedupe;
pub mod desk;
pub mod envelope;
pub mod ingest;
pub mod metrics;
pub mod outbox;
pub mod output;
pub mod practice;
pub mod receipt;

pub use bus::{Bus, BusError, Delivery, Fault, Link, LinkMetrics, redacted};
pub use envelope::{Encoding, RejectCode, Rejection, decode_vitals};
pub use ingest::{Checkins, EventSink, Inbound, Ingest, Occupancy, Vitals, wall_clock};
pub use metrics::IngestMetrics;
pub use outbox::{OutMessage, Outbox};
pub use practice::decode_practice;
pub use receipt::{Receipt, batch_receipt};
