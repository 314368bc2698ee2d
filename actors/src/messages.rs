//! Every message the actors exchange, one of each for every kind of owner (patients, and the
//! practice's locations, providers and resources): a router takes its share of a batch
//! ([`Deliver`]) and hands each owner its part ([`Apply`]); commands, counts, passivation and
//! recovery have one message each.

use std::collections::HashSet;
use std::sync::Arc;

use actix::prelude::*;
use vigil_engine::{Alert, AlertCommand, CommandError, PatientView};

use crate::Receipt;
use crate::router::Routed;

/// A batch receipt travelling in a message. A message that is dropped before its handler
/// finished (its actor or arbiter stopped with it queued, or the handler panicked) calls
/// `on_lost`, which fails the batch: otherwise the dropped clone would count as applied and
/// the batch would be acknowledged with its events never applied.
pub(crate) struct Held {
    receipt: Receipt,
    on_lost: fn(&Receipt),
    applied: bool,
}

impl Held {
    pub(crate) fn new(receipt: Receipt, on_lost: fn(&Receipt)) -> Self {
        Self {
            receipt,
            on_lost,
            applied: false,
        }
    }

    pub(crate) fn receipt(&self) -> &Receipt {
        &self.receipt
    }

    /// Another hold on the same batch (for a message the handler sends on).
    pub(crate) fn share(&self) -> Self {
        Self::new(self.receipt.clone(), self.on_lost)
    }

    /// The handler finished: dropping this hold is the batch's progress, not a loss.
    pub(crate) fn applied(mut self) {
        self.applied = true;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if !self.applied {
            (self.on_lost)(&self.receipt);
        }
    }
}

/// Events of one batch, in stream order, with the batch's receipt.
pub(crate) struct Batch<T> {
    pub items: Vec<T>,
    pub held: Held,
    /// Recovery history: rebuild state, publish nothing.
    pub history: bool,
}

/// A router's share of a batch (`Deliver<Patient>` for a patient router).
pub(crate) struct Deliver<O: Routed>(pub Batch<O::Item>);

/// One owner's part of a batch.
pub(crate) struct Apply<O: Routed>(pub Batch<O::Item>);

impl<O: Routed> Message for Deliver<O> {
    type Result = ();
}

impl<O: Routed> Message for Apply<O> {
    type Result = ();
}

/// A person's command for an alert, to its router and then to its owner. The receipt travels
/// with the transition it causes and drops once `ALERTS` has stored it, so the caller can
/// answer only then.
pub(crate) struct Command(pub AlertCommand, pub Receipt);

impl Message for Command {
    type Result = Result<Alert, CommandError>;
}

/// A patient as `GET /api/patients/{patientId}` shows it: to the patient router of its
/// shard, then to the patient's actor. `None` when the patient has no live actor (never seen,
/// or passivated after `engine.passivate_after` without input).
pub(crate) struct View {
    pub tenant: String,
    pub patient_id: String,
}

impl Message for View {
    type Result = Option<PatientView>;
}

/// How many owners a router holds.
pub(crate) struct Count;

impl Message for Count {
    type Result = usize;
}

/// The owners `0` names stop and are forgotten: a cluster member handed their partitions
/// over. Answered with how many, once each has finished what it had queued.
pub(crate) struct Evict(pub crate::Within);

impl Message for Evict {
    type Result = usize;
}

/// An idle owner stops.
pub(crate) struct Passivate;

impl Message for Passivate {
    type Result = ();
}

/// Recovery for one router: the alerts `ALERTS` holds for its owners, and every open alert id
/// (a patient needs it to tell its own resolved alerts from open ones; empty for keepers).
/// Only the owners `within` names are reconciled (a cluster member recovering partitions it
/// took over while it runs others); `None`: every owner.
pub(crate) struct Recover {
    pub alerts: Vec<Alert>,
    pub open: Arc<HashSet<String>>,
    pub within: Option<crate::Within>,
}

impl Message for Recover {
    type Result = usize;
}

/// Recovery for one owner, after its history: install the alerts `ALERTS` holds for it.
pub(crate) struct Reconcile {
    pub alerts: Vec<Alert>,
    pub open: Arc<HashSet<String>>,
}

impl Message for Reconcile {
    type Result = usize;
}
