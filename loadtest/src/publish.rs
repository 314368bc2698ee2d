//! Publishing to JetStream with a bounded number of acknowledgements in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use async_nats::jetstream;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use crate::Args;
use crate::envelope::msgpack_headers;
use crate::report::{Report, print_report};

pub(crate) type AckFuture = std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>;

/// Publishes with up to `--in-flight` acknowledgements outstanding.
pub(crate) struct Publisher {
    js: jetstream::Context,
    pending: FuturesUnordered<AckFuture>,
    limit: usize,
    pub(crate) acked: Arc<AtomicU64>,
    pub(crate) failed: u64,
}

impl Publisher {
    pub(crate) fn new(js: jetstream::Context, limit: usize) -> Self {
        Self {
            js,
            pending: FuturesUnordered::new(),
            limit: limit.max(1),
            acked: Arc::new(AtomicU64::new(0)),
            failed: 0,
        }
    }

    pub(crate) async fn publish(&mut self, subject: String, payload: Bytes) -> anyhow::Result<()> {
        while self.pending.len() >= self.limit {
            self.reap_one().await;
        }
        let ack = self
            .js
            .publish_with_headers(subject, msgpack_headers(), payload)
            .await?;
        self.pending
            .push(Box::pin(async move { ack.await.is_ok() }));
        Ok(())
    }

    async fn reap_one(&mut self) {
        match self.pending.next().await {
            Some(true) => {
                self.acked.fetch_add(1, Relaxed);
            }
            Some(false) => self.failed += 1,
            None => {}
        }
    }

    pub(crate) async fn finish(&mut self) {
        while !self.pending.is_empty() {
            self.reap_one().await;
        }
    }

    /// Waits for every publish and prints what was stored since `start`.
    pub(crate) async fn report(
        &mut self,
        args: &Args,
        mode: &'static str,
        patients: usize,
        start: Instant,
    ) -> anyhow::Result<()> {
        self.finish().await;
        let elapsed = start.elapsed().as_secs_f64();
        let stored = self.acked.load(Relaxed);
        let report = Report {
            publish_failures: self.failed,
            ..Report::throughput(mode, patients, stored, elapsed)
        };
        print_report(args, &report)
    }
}
