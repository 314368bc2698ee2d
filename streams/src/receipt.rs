//! Batch receipts: how the consumer learns that every event of a batch has been applied and
//! every output it caused is durably published, before it acknowledges the batch to NATS.
//!
//! A batch gets one [`BatchReceipt`]; each event handed to an actor carries a clone, and each
//! output (alert transition, dead letter) carries one until its publish is acknowledged. When the
//! last clone drops, the batch is done. No counter to forget to decrement.

use std::any::Any;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// A type-erased receipt, as actors and publishers hold it.
pub type Receipt = Arc<dyn Any + Send + Sync>;

struct Done(Mutex<Option<oneshot::Sender<()>>>);

impl Drop for Done {
    fn drop(&mut self) {
        if let Ok(mut tx) = self.0.lock()
            && let Some(tx) = tx.take()
        {
            let _ = tx.send(());
        }
    }
}

/// Creates a batch receipt and the future that resolves once every clone of it is dropped.
pub fn batch_receipt() -> (Receipt, oneshot::Receiver<()>) {
    let (tx, rx) = oneshot::channel();
    (Arc::new(Done(Mutex::new(Some(tx)))), rx)
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
}
