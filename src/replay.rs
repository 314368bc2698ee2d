//! `vigil replay`: the command-line face of `vigil-replay` (contracts.md §7).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use vigil_config::{CHARTED_PROFILE, Config};
use vigil_engine::Profiles;
use vigil_replay::{Options, Source};

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
    /// Draw lead times and alert burden to this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Write every score computed as NDJSON to this file.
    #[arg(long)]
    pub scores: Option<PathBuf>,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let profiles = Profiles::from_config(&cfg);
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
    let scores: Option<Box<dyn std::io::Write + Send>> = match &args.scores {
        Some(path) => Some(Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        ))),
        None => None,
    };
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
    let show = !args.json && std::io::stderr().is_terminal();
    let progress = show.then(|| Arc::new(AtomicUsize::new(0)));
    let done = Arc::new(AtomicBool::new(false));
    let bar = progress.clone().map(|p| {
        let done = done.clone();
        std::thread::spawn(move || progress_bar(&p, total, &done))
    });
    let result = vigil_replay::run(Options {
        source,
        settings,
        threads: args.threads,
        scores,
        progress,
    });
    done.store(true, Ordering::Relaxed);
    if let Some(bar) = bar {
        let _ = bar.join();
    }
    let report = result?;
    if let Some(path) = &args.plot {
        std::fs::write(path, vigil_replay::plot::svg(&report))
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

fn progress_bar(done_count: &AtomicUsize, total: usize, finished: &AtomicBool) {
    const WIDTH: usize = 40;
    loop {
        let over = finished.load(Ordering::Relaxed);
        let n = done_count.load(Ordering::Relaxed).min(total);
        let filled = (n * WIDTH).checked_div(total).unwrap_or(WIDTH);
        eprint!(
            "\r[{}{}] {:>3}%",
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            (n * 100).checked_div(total).unwrap_or(100)
        );
        if over {
            eprintln!();
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
