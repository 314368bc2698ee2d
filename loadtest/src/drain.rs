//! `drain`: watches the engine's durable consumer on each `--stream` until it has acknowledged
//! everything stored, and reports its events/s.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream;

use crate::Args;
use crate::report::{Report, print_report, stream_consumer_pending};

/// One stream's consumers together.
#[derive(Default)]
struct Progress {
    pending: u64,
    ack_pending: u64,
    /// The highest ack floor (stream sequence) of any of them.
    floor: u64,
    /// Messages they have acknowledged.
    acked: u64,
}

pub(crate) async fn run(args: &Args, js: jetstream::Context) -> anyhow::Result<()> {
    let mut targets = Vec::new();
    for name in &args.streams {
        let mut stream = js
            .get_stream(name)
            .await
            .with_context(|| format!("no {name} stream"))?;
        targets.push((name.clone(), stream.info().await?.state.last_sequence));
    }
    // The engine's consumer on each stream, or one per partition for a cluster of engines.
    let consumers: Vec<String> = match args.partitions {
        Some(n) => (0..n).map(|p| format!("{}-{p}", args.consumer)).collect(),
        None => vec![args.consumer.clone()],
    };
    // Wait for the engine's consumers to exist and to start moving.
    let mut start = None;
    // Messages already acknowledged when the clock started, per stream.
    let mut acked0: Vec<u64> = vec![0; targets.len()];
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if Instant::now() > deadline {
            bail!(
                "consumer {} did not finish within 10 minutes",
                args.consumer
            );
        }
        let mut done = true;
        for (i, (name, target)) in targets.iter().enumerate() {
            let mut total = Progress::default();
            let mut all_there = true;
            for consumer in &consumers {
                match stream_consumer_pending(&js, name, consumer).await {
                    Some((pending, ack_pending, floor, acked)) => {
                        total.pending += pending;
                        total.ack_pending += ack_pending;
                        total.floor = total.floor.max(floor);
                        total.acked += acked;
                    }
                    None => all_there = false,
                }
            }
            if !all_there {
                done = false;
                continue;
            }
            if start.is_none()
                && (total.floor > 0 || total.ack_pending > 0 || total.pending < *target)
            {
                start = Some(Instant::now());
                acked0[i] = total.acked;
            }
            done &= total.pending == 0 && total.ack_pending == 0 && total.floor > 0;
        }
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    let drained: u64 = targets
        .iter()
        .zip(&acked0)
        .map(|((_, target), acked)| target.saturating_sub(*acked))
        .sum();
    let report = Report::throughput("drain", args.patients, drained, elapsed);
    print_report(args, &report)
}
