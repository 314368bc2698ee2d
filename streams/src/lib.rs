//! vigil-streams: the wire at the edges. Inbound messages decoded from JSON or MessagePack,
//! validated and turned into the engine's events (`vigil_engine::event`); the JetStream and
//! embedded buses behind one interface; the DLQ; the ingest loop with its ack strategy; and the
//! publishing of alert transitions.
//!
//! Dependency chain: `config` -> `engine` -> **`streams`** -> `vigil`. Translates wire shapes to
//! engine types and back; holds no clinical logic.
//!
//! Layout: the shared envelope and its rejection codes ([`envelope`]) with a fast path for
//! MessagePack envelopes of the usual shape (`msgpack`), one module per source
//! stream ([`vitals`] for `VITALS`; [`practice`] for `CHECKINS` and `OCCUPANCY`, whose events
//! share one decoder), the check-in desk that holds practice events for their schedule
//! ([`desk`]), the partitions of a cluster's streams ([`partition`]) and who owns them
//! ([`cluster`]), the ingest loop ([`ingest`], with [`dedupe`], [`receipt`] and [`metrics`]), the
//! buses ([`bus`], reading each durable consumer in order through a [`reader`]), and what goes out ([`output`] shapes it, [`outbox`] stores it in order).

pub mod bus;
pub mod cluster;
pub mod dedupe;
pub mod desk;
pub mod envelope;
pub mod ingest;
pub mod metrics;
mod msgpack;
pub mod outbox;
pub mod output;
pub mod partition;
pub mod practice;
pub mod reader;
pub mod receipt;
pub mod vitals;

pub use bus::{Bus, BusError, Delivery, Fault, Link, LinkMetrics, Part, redacted};
pub use envelope::{Encoding, RejectCode, Rejection};
pub use ingest::{Checkins, EventSink, Inbound, Ingest, Occupancy, Vitals, wall_clock};
pub use metrics::IngestMetrics;
pub use outbox::{OutMessage, Outbox};
pub use practice::decode_practice;
pub use receipt::{Receipt, batch_receipt};
pub use vitals::decode_vitals;
