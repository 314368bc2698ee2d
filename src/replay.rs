//! `vigil replay`: the command-line face of `vigil-replay` (contracts.md §7).

use std::path::PathBuf;

use anyhow::{Context, bail};
use vigil_config::{CHARTED_PROFILE, Config};
use vigil_replay::{Options, Source};

/// The most worker threads `--threads` takes.
const MAX_THREADS: u64 = 256;

/// `vigil replay` (contracts.md §7).
#[derive(clap::Args)]
pub struct Args {
    /// Directory of PhysioNet/CinC 2019 `.psv` stays.
    #[arg(long, conflicts_with = "events", required_unless_present = "events")]
    pub psv: Option<PathBuf>,
    /// File of newline-delimited VITALS envelopes (JSON), as on the wire.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Configuration file (threshold profiles, rules).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Threshold profile (default: `charted` for --psv, the base profile for --events).
    #[arg(long)]
    pub profile: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Draw lead times, alert burden and (with the sepsis model on labelled stays) its
    /// calibration curve to this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Write every score computed as NDJSON to this file.
    #[arg(long)]
    pub scores: Option<PathBuf>,
    /// Write every alert transition (an `orchestration.alert.v1` data object per line) to this file.
    #[arg(long)]
    pub alerts: Option<PathBuf>,
    /// Write every stay row's model features as CSV to this file (psv replays; what the
    /// training command reads: docs/sepsis-screen.md).
    #[arg(long, requires = "psv")]
    pub features: Option<PathBuf>,
    /// Write one file per stay, in the PhysioNet challenge's output layout, to this directory
    /// (psv replays; contracts.md section 7).
    #[arg(long, requires = "psv")]
    pub predictions: Option<PathBuf>,
    /// Worker threads (0: one per core; at most 256: each `--events` worker reads the whole
    /// file, and more workers than cores only take turns).
    #[arg(
        long,
        default_value_t = 0,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=MAX_THREADS)
    )]
    pub threads: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let profiles = crate::engine::profiles(&cfg)?;
    let (source, default_profile) = match (args.psv, args.events) {
        (Some(dir), None) => (Source::Psv(dir), CHARTED_PROFILE.to_string()),
        (None, Some(file)) => (Source::Events(file), profiles.base().profile.clone()),
        _ => bail!("give exactly one of --psv DIR or --events FILE.ndjson"),
    };
    let name = args.profile.unwrap_or(default_profile);
    let Some(settings) = profiles.named(&name).cloned() else {
        bail!(
            "no threshold profile `{name}`; known profiles: {}",
            profiles.names().join(", ")
        );
    };
    let scores = create(args.scores.as_deref())?;
    let alerts = create(args.alerts.as_deref())?;
    let features = create(args.features.as_deref())?;
    let total = match &source {
        Source::Psv(dir) => std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "psv"))
            .count(),
        Source::Events(file) => std::fs::metadata(file)
            .with_context(|| format!("cannot read {}", file.display()))?
            .len() as usize,
    };
    // indicatif draws only on a terminal (stderr), at most a few times a second.
    let progress = (!args.json).then(|| {
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "[{bar:40}] {percent:>3}%  {elapsed} (eta {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("#>-"),
        );
        bar
    });
    let result = vigil_replay::run(Options {
        source,
        settings,
        threads: args.threads,
        scores,
        alerts,
        features,
        predictions: args.predictions,
        progress: progress.clone(),
    });
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let report = result?;
    if let Some(path) = &args.plot {
        std::fs::write(path, vigil_replay::plot::svg(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    if report.stays == 0 {
        bail!("nothing was replayed");
    }
    Ok(())
}

/// An output file, created before anything runs (so a bad path fails at once), buffered.
fn create(
    path: Option<&std::path::Path>,
) -> anyhow::Result<Option<Box<dyn std::io::Write + Send>>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(Some(Box::new(std::io::BufWriter::with_capacity(
        1 << 20,
        file,
    ))))
}
