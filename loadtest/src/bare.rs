//! `bare`: a bare async-nats pull consumer that only acknowledges (ack-all per batch), reading
//! the whole stored `VITALS`: the ceiling the engine is compared with.

use std::time::Instant;

use anyhow::Context;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;

use crate::Args;
use crate::report::{Report, print_report};

pub(crate) async fn run(args: &Args, js: jetstream::Context) -> anyhow::Result<()> {
    let mut stream = js.get_stream("VITALS").await.context("no VITALS stream")?;
    let target = stream.info().await?.state.last_sequence;
    let name = format!("bare-{}", std::process::id());
    let c: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(name.clone()),
            ack_policy: consumer::AckPolicy::All,
            max_ack_pending: (args.batch * 32) as i64,
            ..Default::default()
        })
        .await?;
    let mut messages = c
        .stream()
        .max_messages_per_batch(512)
        .messages()
        .await?
        .ready_chunks(512);
    let start = Instant::now();
    let mut count = 0u64;
    while let Some(batch) = messages.next().await {
        let mut last_seq = 0;
        let mut last = None;
        for m in batch.into_iter().flatten() {
            count += 1;
            last_seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
            if let Some(n) = args.ack_every
                && (count % n == 0 || last_seq >= target)
            {
                m.ack().await.map_err(|e| anyhow::anyhow!("ack: {e}"))?;
                continue;
            }
            last = Some(m);
        }
        if args.ack_every.is_none()
            && let Some(m) = last
        {
            m.ack().await.map_err(|e| anyhow::anyhow!("ack: {e}"))?;
        }
        if last_seq >= target {
            break;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _ = stream.delete_consumer(&name).await;
    let report = Report::throughput("bare", args.patients, count, elapsed);
    print_report(args, &report)
}
