//! `drain`: watches the engine's durable consumer on each `--stream` until it has acknowledged
//! everything stored, and reports its events/s.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream;

use crate::Args;
use crate::report::{Report, print_report, stream_consumer_pending};

pub(crate) async fn run(args: &Args, js: jetstream::Context) -> anyhow::Result<()> {
    let mut targets = Vec::new();
    for name in &args.streams {
        let mut stream = js
            .get_stream(name)
            .await
            .with_context(|| format!("no {name} stream"))?;
        targets.push((name.clone(), stream.info().await?.state.last_sequence));
    }
    // Wait for the engine's consumers to exist and to start moving.
    let mut start = None;
    let mut floors0: Vec<u64> = vec![0; targets.len()];
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
            let Some((pending, ack_pending, floor)) =
                stream_consumer_pending(&js, name, &args.consumer).await
            else {
                done = false;
                continue;
            };
            if start.is_none() && (floor > 0 || ack_pending > 0 || pending < *target) {
                start = Some(Instant::now());
                floors0[i] = floor;
            }
            done &= floor >= *target && ack_pending == 0;
        }
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    let drained: u64 = targets
        .iter()
        .zip(&floors0)
        .map(|((_, target), floor)| target - floor)
        .sum();
    let report = Report::throughput("drain", args.patients, drained, elapsed);
    print_report(args, &report)
}
