//! vigil-streams: the wire at the edges. The event envelope and `VITALS` types decoded from JSON
//! or MessagePack and validated; the JetStream and embedded buses behind one interface; the DLQ;
//! the ingest loop with its ack strategy; and the publishing of alert transitions.
//!
//! Dependency chain: `config` -> `engine` -> **`streams`** -> `vigil`. Translates wire shapes to
//! engine types and back; holds no clinical logic.

pub mod bus;
pub mod dedupe;
pub mod envelope;
pub mod ingest;
pub mod metrics;
pub mod outbox;
pub mod output;
pub mod practice;
pub mod receipt;

pub use bus::{Bus, BusError, Delivery, Fault, Link, LinkMetrics, redacted};
pub use envelope::{Encoding, EventMeta, RejectCode, Rejection, VitalsEvent, decode_vitals};
pub use ingest::{Checkins, EventSink, Inbound, Occupancy, Vitals, run as run_ingest, wall_clock};
pub use metrics::IngestMetrics;
pub use outbox::{OutMessage, Outbox};
pub use practice::{PracticeEvent, PracticeMeta, decode_practice};
pub use receipt::{Receipt, batch_receipt};
