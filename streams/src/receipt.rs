//! Batch receipts: how the consumer learns that every event of a batch has been applied and
//! every output it caused is durably published, before it acknowledges the batch to NATS.
//!
//! A batch gets one [`BatchReceipt`]; each event handed to an actor carries a clone, and each
//! output (alert transition, dead letter) carries one until its publish is acknowledged. When the
//! last clone drops, the batch is done. No counter to forget to decrement.
//!
//! A holder that cannot finish its part (an output dropped unpublished, because the outbox
//! stopped) marks the receipt failed with [`fail`]. The batch's receiver then resolves to an
//! error, and the consumer must never acknowledge that batch: NATS redelivers it.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// A type-erased receipt, as actors and publishers hold it.
pub type Receipt = Arc<dyn Any + Send + Sync>;

/// Resolves `Ok` once every clone of its receipt is dropped with nothing failed; `Err` when a
/// holder failed its part (see [`fail`]).
pub type BatchDone = oneshot::Receiver<()>;

struct Done {
    tx: Mutex<Option<oneshot::Sender<()>>>,
    failed: AtomicBool,
}

impl Drop for Done {
    fn drop(&mut self) {
        if let Ok(mut tx) = self.tx.lock()
            && let Some(tx) = tx.take()
            && !self.failed.load(Ordering::Acquire)
        {
            let _ = tx.send(());
        }
        // Failed: the sender drops unsent, so the receiver sees an error.
    }
}

/// Creates a batch receipt and the future that resolves once every clone of it is dropped.
pub fn batch_receipt() -> (Receipt, BatchDone) {
    let (tx, rx) = oneshot::channel();
    let done = Done {
        tx: Mutex::new(Some(tx)),
        failed: AtomicBool::new(false),
    };
    (Arc::new(done), rx)
}

/// Marks the batch of `receipt` failed: its part of the work will never be done (an output was
/// dropped unpublished). The batch must not be acknowledged.
pub fn fail(receipt: &Receipt) {
    if let Some(done) = receipt.downcast_ref::<Done>() {
        done.failed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn completes_when_the_last_clone_drops() {
        let (r, mut rx) = batch_receipt();
        let a = r.clone();
        drop(r);
        assert!(rx.try_recv().is_err(), "still held");
        drop(a);
        assert!(rx.await.is_ok());
    }

    #[tokio::test]
    async fn a_failed_holder_fails_the_batch() {
        let (r, rx) = batch_receipt();
        let a = r.clone();
        fail(&a);
        drop(a);
        drop(r);
        assert!(rx.await.is_err(), "a failed batch must not look done");
    }
}
