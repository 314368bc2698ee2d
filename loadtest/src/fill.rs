//! `fill` stores the workload in `VITALS` for drain benchmarks; `export` writes the same
//! workload as newline-delimited JSON envelopes, the form `vigil replay --events` reads.

use std::time::Instant;

use anyhow::Context;
use async_nats::jetstream;

use crate::envelope::{Envelope, fixed, msgpack, reading};
use crate::publish::Publisher;
use crate::report::{Report, print_report};
use crate::{Args, acuity};

pub(crate) async fn fill(args: &Args, js: jetstream::Context) -> anyhow::Result<()> {
    // The engine creates VITALS at start; create it the same way if the engine has not run yet.
    js.get_or_create_stream(jetstream::stream::Config {
        name: "VITALS".into(),
        subjects: vec!["vitals.*.*".into()],
        storage: jetstream::stream::StorageType::File,
        allow_direct: true,
        ..Default::default()
    })
    .await
    .context("cannot create VITALS")?;
    let mut publisher = Publisher::new(js, args.in_flight);
    let start = Instant::now();
    let mut workload = FillWorkload::new(args);
    while let Some((subject, payload)) = workload.next_reading(|env| {
        (
            format!("vitals.{}.{}", env.tenant_id, env.data.patient_id),
            msgpack(env),
        )
    }) {
        publisher.publish(subject, payload).await?;
    }
    publisher.report(args, "fill", args.patients, start).await
}

/// The `fill` and `export` workload: `--events` readings for `--patients` patients, one per
/// patient per minute of event time ending now, one patient in twenty alternating 30 sick
/// minutes and 30 well ones (so alerts open and clear), and with `--end-sick` every patient's
/// last two readings sick. With `--acuity-mix`, the readings come from [`acuity::Mix`] instead.
struct FillWorkload<'a> {
    args: &'a Args,
    mix: Option<acuity::Mix>,
    names: Vec<String>,
    readings: u64,
    base: chrono::DateTime<chrono::Utc>,
    run: String,
    next: u64,
}

impl<'a> FillWorkload<'a> {
    fn new(args: &'a Args) -> Self {
        let patients = args.patients.max(1) as u64;
        let readings = args.events.div_ceil(patients);
        Self {
            args,
            mix: args.acuity_mix.then(acuity::Mix::default),
            names: (0..patients).map(|i| format!("lt-{i}")).collect(),
            readings,
            base: chrono::Utc::now() - chrono::Duration::minutes(readings as i64 + 1),
            run: format!("{:x}", std::process::id()),
            next: 0,
        }
    }

    /// The next reading, encoded by `encode`.
    fn next_reading<T>(&mut self, encode: impl FnOnce(&Envelope<'_>) -> T) -> Option<T> {
        let i = self.next;
        if i >= self.args.events {
            return None;
        }
        self.next += 1;
        let patients = self.names.len() as u64;
        let p = i % patients;
        let minute = i / patients;
        let ending_sick = self.args.end_sick && minute + 2 >= self.readings;
        let sick = (p % 20 == 0 && (minute / 30) % 2 == 0) || ending_sick;
        let at = self.base + chrono::Duration::minutes(minute as i64);
        let patient = &self.names[p as usize];
        let event_id = format!("fill-{}-{i}", self.run);
        let values = match &mut self.mix {
            Some(mix) if !ending_sick => mix.reading(acuity::Acuity::of_patient(p)),
            _ => fixed(sick),
        };
        let env = reading(&self.args.tenant, patient, event_id, at, values);
        Some(encode(&env))
    }
}

/// Writes the fill workload as JSON lines, the form `vigil replay --events` reads.
pub(crate) fn export(args: &Args) -> anyhow::Result<()> {
    use std::io::Write;
    let out: Box<dyn Write> = if args.out == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::File::create(&args.out)
                .with_context(|| format!("cannot create {}", args.out))?,
        )
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    let start = Instant::now();
    let mut workload = FillWorkload::new(args);
    let mut written = 0u64;
    while let Some(line) = workload.next_reading(|env| serde_json::to_vec(env)) {
        out.write_all(&line?)?;
        out.write_all(b"\n")?;
        written += 1;
    }
    out.flush()?;
    let elapsed = start.elapsed().as_secs_f64();
    let report = Report::throughput("export", args.patients, written, elapsed);
    if args.out == "-" {
        // The events went to standard output: keep the report off it.
        eprintln!("exported {written} events in {elapsed:.2} s");
        Ok(())
    } else {
        print_report(args, &report)
    }
}
