//! `vigil-loadtest`: drives Vigil like a hospital does and reports what it measured.
//!
//! Modes (subcommands; the options may come before or after them):
//! - `live` (default, contracts.md §7): simulated monitors publish MessagePack vitals at `--rate`
//!   for `--patients` patients; sentinel patients deteriorate at `--triggers` per second, and a
//!   WebSocket client times each publish-to-alert round trip with an HDR histogram. With
//!   `--dashboards N`, N more sockets subscribe to `alerts` and `patients` as staff dashboards
//!   do; each sentinel alert is also timed to the last of them (`dashboards.rs`).
//! - `fill`: stores `--events` vitals for `--patients` patients in `VITALS` (one reading per
//!   patient per minute of event time, some patients deteriorating), for drain benchmarks.
//! - `bare`: a bare async-nats pull consumer that only acknowledges (ack-all per batch), reading
//!   the whole stored `VITALS`: the ceiling the engine is compared with.
//! - `clinic`: stores a clinic network's day of practice events in `CHECKINS` and `OCCUPANCY`:
//!   `--providers` providers (ten per location) with 24 appointments each and `--chairs`
//!   chairs; per appointment its schedule, check-in, start, chair occupied, provider busy,
//!   completion, chair cleaning and provider available (8 events, MessagePack). The day is
//!   compressed into the last half hour of event time (a slot a minute), so a drain measures
//!   throughput, not delay alerts.
//! - `export`: writes the `fill` workload (the same patients, readings and deteriorations) as
//!   newline-delimited JSON envelopes to `--out`, the form `vigil replay --events` reads; needs
//!   no NATS.
//! - `drain`: watches the engine's durable consumer (`--consumer`) on each `--stream` until
//!   it has acknowledged everything stored, and reports its events/s.
//!
//! Layout: one file per mode (`live.rs` with `dashboards.rs`, `fill.rs` for `fill` and
//! `export`, `bare.rs`, `drain.rs`, `clinic.rs`), and what they share: the envelopes
//! (`envelope.rs`, `acuity.rs` for the acuity mix), publishing (`publish.rs`) and the report
//! (`report.rs`).

use anyhow::Context;
use async_nats::jetstream;
use clap::{Parser, Subcommand};

mod acuity;
mod bare;
mod clinic;
mod dashboards;
mod drain;
mod envelope;
mod fill;
mod live;
mod publish;
mod report;

pub(crate) use report::{Latency, latency_of, opened_alert_patient};

#[derive(Subcommand, Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Vitals at `--rate`, sentinel alerts timed to the WebSocket (the default).
    Live,
    /// Store `--events` vitals in `VITALS`.
    Fill,
    /// A bare consumer of the stored `VITALS` that only acknowledges.
    Bare,
    /// Time the engine's consumer until it has acknowledged everything stored.
    Drain,
    /// Store a clinic network's day in `CHECKINS` and `OCCUPANCY`.
    Clinic,
    /// Write the fill workload as JSON lines to `--out` (no NATS).
    Export,
}

#[derive(Parser, Debug)]
#[command(name = "vigil-loadtest", version, about = "Load tester for Vigil")]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) mode: Option<Mode>,
    #[arg(global = true, long, default_value = "nats://127.0.0.1:4222")]
    pub(crate) nats_url: String,
    /// Gateway WebSocket URL (live mode), e.g. ws://127.0.0.1:8080/ws
    #[arg(global = true, long)]
    pub(crate) ws_url: Option<String>,
    /// Bearer token of the tenant under test (live mode).
    #[arg(global = true, long)]
    pub(crate) token: Option<String>,
    #[arg(global = true, long, default_value = "loadtest")]
    pub(crate) tenant: String,
    #[arg(global = true, long, default_value_t = 10_000)]
    pub(crate) patients: usize,
    /// Background vitals per second, all patients together (live mode).
    #[arg(global = true, long, default_value_t = 10_000.0)]
    pub(crate) rate: f64,
    /// Seconds to run (live mode).
    #[arg(global = true, long, default_value_t = 30)]
    pub(crate) duration: u64,
    /// Deteriorating sentinel patients per second whose alerts are timed (live mode).
    #[arg(global = true, long, default_value_t = 20.0)]
    pub(crate) triggers: f64,
    /// Staff dashboards (live mode): sockets subscribed to `alerts` and `patients`; every one
    /// must receive every sentinel alert, which is timed to the last of them.
    #[arg(global = true, long, default_value_t = 0)]
    pub(crate) dashboards: usize,
    /// Events to store (fill mode).
    #[arg(global = true, long, default_value_t = 2_000_000)]
    pub(crate) events: u64,
    /// The engine's durable consumer on VITALS (live: lag; drain: progress).
    #[arg(global = true, long, default_value = "vigil-engine")]
    pub(crate) consumer: String,
    /// Messages per pull request and per acknowledgement (bare mode). 512 is the bare
    /// consumer's best on this machine (256: -25 %, 1024 and 2048: slower and erratic).
    #[arg(global = true, long, default_value_t = 512)]
    pub(crate) batch: usize,
    /// Bare mode: acknowledge every Nth message (ack-all) instead of each batch's last.
    #[arg(global = true, long)]
    pub(crate) ack_every: Option<u64>,
    /// Fill and export: a ward that is not calm (acuity.rs): 70 % stable, 20 % unwell, 10 %
    /// very unwell patients, every reading noisy, each vital present with probability 0.7.
    #[arg(global = true, long)]
    pub(crate) acuity_mix: bool,
    /// Fill mode: every patient's last two readings score NEWS2 8, so each ends with an open
    /// critical alert once the engine has drained the stream (the recovery benchmark).
    #[arg(global = true, long)]
    pub(crate) end_sick: bool,
    /// Publish acknowledgements kept in flight.
    #[arg(global = true, long, default_value_t = 4096)]
    pub(crate) in_flight: usize,
    /// Providers (clinic mode).
    #[arg(global = true, long, default_value_t = 5_000)]
    pub(crate) providers: usize,
    /// Chairs and rooms (clinic mode).
    #[arg(global = true, long, default_value_t = 20_000)]
    pub(crate) chairs: usize,
    /// A cluster of engines (`[cluster] partitions`). Drain mode: wait for the consumers of
    /// every partition, `{consumer}-0` to `{consumer}-{N-1}`, instead of `{consumer}`. Live
    /// mode: report the latency of each partition as well.
    #[arg(global = true, long)]
    pub(crate) partitions: Option<u32>,
    /// Streams whose consumer `drain` waits for (repeat the flag for several).
    #[arg(global = true, long = "stream", default_values_t = ["VITALS".to_string()])]
    pub(crate) streams: Vec<String>,
    /// The file `export` writes (`-` for standard output).
    #[arg(global = true, long, default_value = "-")]
    pub(crate) out: String,
    /// Print the report as JSON.
    #[arg(global = true, long)]
    pub(crate) json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.mode.unwrap_or(Mode::Live) {
        Mode::Live => live::run(&args, connect(&args).await?).await,
        Mode::Fill => fill::fill(&args, connect(&args).await?).await,
        Mode::Bare => bare::run(&args, connect(&args).await?).await,
        Mode::Drain => drain::run(&args, connect(&args).await?).await,
        Mode::Clinic => clinic::run(&args, connect(&args).await?).await,
        Mode::Export => fill::export(&args),
    }
}

async fn connect(args: &Args) -> anyhow::Result<jetstream::Context> {
    let client = async_nats::connect(&args.nats_url)
        .await
        .with_context(|| format!("cannot connect to NATS at {}", args.nats_url))?;
    Ok(jetstream::new(client))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Report, print_report};

    #[test]
    fn a_live_run_whose_alerts_never_arrived_is_a_failure_not_a_figure() {
        let args = Args::parse_from(["vigil-loadtest", "live", "--tenant", "clinic-abc"]);
        let mut r = Report::throughput("live", 10, 100, 1.0);
        r.alerts_expected = 201;
        let e = print_report(&args, &r).expect_err("0 of 201 timed");
        assert!(
            e.to_string()
                .contains("201 of 201 sentinel alerts never reached"),
            "{e}"
        );
        assert!(e.to_string().contains("clinic-abc"), "{e}");
        r.alerts_received = 201;
        assert!(print_report(&args, &r).is_ok());
    }

    #[test]
    fn modes_are_subcommands_with_options_before_or_after_them() {
        let a = Args::parse_from(["vigil-loadtest", "drain", "--consumer", "c1"]);
        assert_eq!((a.mode, a.consumer.as_str()), (Some(Mode::Drain), "c1"));
        let a = Args::parse_from(["vigil-loadtest", "--events", "5", "fill", "--acuity-mix"]);
        assert_eq!(
            (a.mode, a.events, a.acuity_mix),
            (Some(Mode::Fill), 5, true)
        );
        assert_eq!(
            Args::parse_from(["vigil-loadtest"]).mode,
            None,
            "live by default"
        );
        assert!(Args::try_parse_from(["vigil-loadtest", "dance"]).is_err());
    }
}
