//! vigil-replay: runs recorded patients through the engine's own scoring and rules (the same
//! [`Patient`] the live actors own, not a copy) with an injected clock, as fast as the CPU
//! allows on every core, and reports what a threshold profile would have done.
//!
//! Dependency chain: `config` -> `engine` -> `streams` (decode) -> **`replay`** -> `vigil`.
//!
//! Two sources (contracts.md §7): a directory of PhysioNet/CinC 2019 `.psv` stays, and a file
//! of newline-delimited `VITALS` envelopes exactly as on the wire. See docs/replay.md for every
//! definition in the report.

pub mod events;
pub mod plot;
pub mod psv;
pub mod report;
pub mod thresholds;
pub mod utility;

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use serde::Serialize;
use vigil_engine::patient::features;
use vigil_engine::{Alert, Observed, Param, Patient, Rule, Settings, Timestamp};
use vigil_streams::vitals::check_vitals;

pub use report::{Report, RuleReport};

/// The rules the report lists (every rule the engine knows), in order; the profile as a whole
/// comes after them.
pub const RULES: &[Rule] = Rule::CLINICAL;
/// Index of the profile as a whole (every rule but the technical one) in per-rule arrays.
pub const PROFILE: usize = RULES.len();
const SLOTS: usize = RULES.len() + 1;

fn rule_index(rule: Rule) -> Option<usize> {
    RULES.iter().position(|r| *r == rule)
}

/// Technical alerts never count as predictions (scoring.md).
fn predicts(rule: usize) -> bool {
    RULES[rule].predicts()
}

/// Where the recorded patients come from.
#[derive(Debug, Clone)]
pub enum Source {
    Psv(PathBuf),
    Events(PathBuf),
}

/// A replay to run.
pub struct Options {
    pub source: Source,
    pub settings: Arc<Settings>,
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// Where `--scores` NDJSON goes.
    pub scores: Option<Box<dyn Write + Send>>,
    /// Where `--alerts` NDJSON goes: every alert transition, one `orchestration.alert.v1` data
    /// object per line.
    pub alerts: Option<Box<dyn Write + Send>>,
    /// Where `--features` CSV goes (psv replays): the header, then for every row of every stay
    /// `stay,hour,label,evaluated` (1 when the row had a reading the model is evaluated on)
    /// and the value of each of [`features::CANDIDATES`] after the row
    /// (`NaN` when missing). The training command reads it (docs/sepsis-screen.md).
    pub features: Option<Box<dyn Write + Send>>,
    /// `--predictions OUTDIR` (psv replays): one file per stay, named like its input, in the
    /// challenge's output layout (contracts.md section 7).
    pub predictions: Option<PathBuf>,
    /// Advanced as work finishes (stays, or bytes of the events file); indicatif draws it.
    pub progress: Option<indicatif::ProgressBar>,
}

/// Why a replay could not run at all (a bad file of a `.psv` directory is reported, not fatal).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} holds no .psv files")]
    NoStays(String),
    #[error("cannot write scores: {0}")]
    Scores(std::io::Error),
    #[error("cannot write alerts: {0}")]
    Alerts(std::io::Error),
    #[error("cannot write features: {0}")]
    Features(std::io::Error),
    #[error("cannot write predictions to {path}: {source}")]
    Predictions {
        path: String,
        source: std::io::Error,
    },
}

/// A `.psv` file that was skipped, with the line and the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub file: String,
    pub line: usize,
    pub error: String,
}

/// What one stay (or one recorded patient) produced; merged into the report.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Rows (psv) or events (NDJSON) of the stay.
    pub rows: usize,
    /// Hours the stay covers (patient-days = hours / 24).
    pub hours: f64,
    /// `SepsisLabel` per row, when the source has labels.
    pub labels: Option<Vec<bool>>,
    /// Hour of each row (for lead times).
    pub row_hours: Vec<i64>,
    /// Per row, the sepsis model's latest risk after it (0 before its first evaluation).
    pub risks: Vec<f64>,
    /// Per row, bit i set when an alert of rule i (bit [`PROFILE`]: of the profile) was open
    /// after it.
    pub masks: Vec<u16>,
    /// Alerts per rule: opened, or moved into that rule by an upgrade or downgrade.
    pub alerts: [u32; SLOTS],
    /// First row at which each rule had an open alert.
    pub first_row: [Option<usize>; SLOTS],
    /// Observations rejected (`VITAL_OUT_OF_RANGE`), never scored.
    pub rejected: usize,
    /// The columns Vigil reads that the stay's file does not have (psv: [`psv::Stay::absent`]).
    pub absent_columns: u32,
}

impl Outcome {
    /// Records `row` as the first row of every rule in `mask` that had none yet.
    fn note_open(&mut self, mask: u16, row: usize) {
        for (slot, first) in self.first_row.iter_mut().enumerate() {
            if mask & (1 << slot) != 0 && first.is_none() {
                *first = Some(row);
            }
        }
    }
}

/// Follows the alerts of one patient: which rule each active alert stands for.
#[derive(Default)]
struct AlertLog {
    /// (alert id, rule index) of every alert seen, with its current rule.
    current: Vec<(String, usize)>,
}

impl AlertLog {
    /// Counts a transition into `outcome` and writes it to `--alerts`.
    fn record(&mut self, alert: &Alert, outcome: &mut Outcome, lines: &mut Lines) {
        lines.write(|buf| {
            // An `Alert` is plain data: serializing it into a buffer cannot fail.
            if serde_json::to_writer(&mut *buf, alert).is_ok() {
                buf.push(b'\n');
            }
        });
        let Some(rule) = rule_index(alert.rule) else {
            return;
        };
        let entry = self
            .current
            .iter_mut()
            .find(|(id, _)| *id == alert.alert_id);
        let counted = match entry {
            Some((_, r)) if *r == rule => false,
            Some((_, r)) => {
                *r = rule;
                true
            }
            None => {
                self.current.push((alert.alert_id.clone(), rule));
                true
            }
        };
        if counted && alert.is_active() {
            outcome.alerts[rule] += 1;
            if predicts(rule) {
                outcome.alerts[PROFILE] += u32::from(alert.version == 1);
            }
        }
    }
}

/// The mask of rules with an open alert on `patient`.
fn open_mask(patient: &Patient) -> u16 {
    let mut mask = 0u16;
    for a in patient.active_alerts() {
        if let Some(i) = rule_index(a.rule) {
            mask |= 1 << i;
            if predicts(i) {
                mask |= 1 << PROFILE;
            }
        }
    }
    mask
}

/// One `--scores` line (contracts.md §7).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScoreLine<'a> {
    patient_id: &'a str,
    at: Timestamp,
    news2: ScoreNews2,
    qsofa: Option<u8>,
    sirs: Option<u8>,
}

#[derive(Serialize)]
struct ScoreNews2 {
    total: u8,
    points: Points,
    partial: bool,
    missing: Vec<&'static str>,
}

#[derive(Serialize)]
struct Points {
    rr: Option<u8>,
    spo2: Option<u8>,
    air: Option<u8>,
    sbp: Option<u8>,
    hr: Option<u8>,
    consciousness: Option<u8>,
    temp: Option<u8>,
}

/// Appends the score an observation computed, if any, as an NDJSON line to `out`.
pub fn write_score(out: &mut Vec<u8>, patient_id: &str, observed: &Observed) {
    let Some(score) = &observed.score else {
        return;
    };
    let line = ScoreLine {
        patient_id,
        at: score.at,
        news2: ScoreNews2 {
            total: score.total,
            points: Points {
                rr: score.points(Param::Rr),
                spo2: score.points(Param::Spo2),
                air: score.points(Param::Air),
                sbp: score.points(Param::Sbp),
                hr: score.points(Param::Hr),
                consciousness: score.points(Param::Consciousness),
                temp: score.points(Param::Temp),
            },
            partial: score.partial(),
            missing: score.missing.iter().map(|p| p.name()).collect(),
        },
        qsofa: observed.qsofa.map(|q| q.total),
        sirs: observed.sirs.map(|s| s.total),
    };
    if serde_json::to_writer(&mut *out, &line).is_ok() {
        out.push(b'\n');
    }
}

/// Where every replayed stay starts: 2020-01-01T00:00:00Z plus the row's `ICULOS` hours.
pub fn stay_start() -> Timestamp {
    Timestamp::from_civil(2020, 1, 1, 0, 0, 0)
}

const HOUR_MS: i64 = 3_600_000;

/// The stay's `patient.admitted.v1`, as the psv replay derives it (contracts.md section 3):
/// admitted to the ICU at the stay's start (ICULOS 0), to the hospital `HospAdmTime` hours
/// before that, with `Age` in whole years (0..=130) and `Gender` 0 as female, 1 as male. None
/// when the stay has none of these columns; values outside the contract are left out.
pub fn admission_of(rows: &[psv::Row]) -> Option<vigil_engine::Admission> {
    let first = rows
        .iter()
        .find(|r| r.age.is_some() || r.gender.is_some() || r.hosp_adm_hours.is_some())?;
    let start = stay_start();
    Some(vigil_engine::Admission {
        admitted_at: start,
        hospital_admitted_at: first
            .hosp_adm_hours
            .filter(|h| h.abs() < 1e5)
            .map(|h| start.plus_millis((h * HOUR_MS as f64).round() as i64)),
        age: first
            .age
            .filter(|a| (0.0..=130.0).contains(a))
            .map(|a| a.round() as u8),
        sex: first.gender.and_then(|g| match g as i64 {
            0 if g == 0.0 => Some(vigil_engine::Sex::Female),
            1 if g == 1.0 => Some(vigil_engine::Sex::Male),
            _ => None,
        }),
    })
}

/// Runs one `.psv` stay through a fresh [`Patient`].
pub(crate) fn simulate_stay(
    patient_id: &str,
    rows: &[psv::Row],
    settings: &Settings,
    sinks: &mut Sinks,
) -> Outcome {
    let unit = "replay";
    let mut patient = Patient::new("replay", patient_id, unit);
    let mut log = AlertLog::default();
    let mut out = Outcome {
        rows: rows.len(),
        labels: rows
            .iter()
            .all(|r| r.label.is_some())
            .then(|| rows.iter().map(|r| r.label == Some(true)).collect()),
        row_hours: Vec::with_capacity(rows.len()),
        masks: Vec::with_capacity(rows.len()),
        risks: Vec::with_capacity(rows.len()),
        ..Outcome::default()
    };
    let start = stay_start();
    if let Some(admission) = admission_of(rows) {
        patient.admit(unit, admission, start);
    }
    for (i, row) in rows.iter().enumerate() {
        let at = start.plus_millis(row.hour * HOUR_MS);
        pass_time(
            &mut patient,
            at,
            settings,
            &mut log,
            &mut out,
            &mut sinks.alerts,
        );
        let v = &row.vitals;
        let any = [v.hr, v.rr, v.spo2, v.temp, v.sbp, v.dbp, v.map]
            .iter()
            .any(Option::is_some)
            || v.on_oxygen.is_some();
        let valid = any && check_vitals(v).is_ok();
        // The row's last reading evaluates the sepsis model, on everything the row holds.
        for (k, lab) in row.labs.iter().enumerate() {
            let last = !valid && k + 1 == row.labs.len();
            let o = patient.record_row_lab(unit, lab, at, at, settings, last);
            for a in &o.alerts {
                log.record(a, &mut out, &mut sinks.alerts);
            }
        }
        let mut evaluated = !row.labs.is_empty();
        if any {
            if !valid {
                out.rejected += 1;
            } else {
                evaluated = true;
                let o = patient.observe(unit, v, at, at, settings);
                for a in &o.alerts {
                    log.record(a, &mut out, &mut sinks.alerts);
                }
                sinks.scores.write(|buf| write_score(buf, patient_id, &o));
            }
        }
        if sinks.features.wanted() {
            let adm = patient.admission.as_ref().map(|(a, _)| a);
            let read = &mut sinks.read;
            sinks.plan.read(&patient.window, adm, at, read);
            let label = row.label.map_or("", |l| if l { "1" } else { "0" });
            sinks.features.write(|buf| {
                use std::io::Write as _;
                let evaluated = u8::from(evaluated);
                let _ = write!(buf, "{patient_id},{},{label},{evaluated}", row.hour);
                for v in read.iter() {
                    match v {
                        Some(v) => {
                            let _ = write!(buf, ",{}", v.value);
                        }
                        None => buf.extend_from_slice(b",NaN"),
                    }
                }
                buf.push(b'\n');
            });
        }
        let mask = open_mask(&patient);
        out.note_open(mask, i);
        out.masks.push(mask);
        out.risks.push(patient.last_risk.map_or(0.0, |(r, _)| r));
        out.row_hours.push(row.hour);
    }
    out.hours = rows.len() as f64;
    out
}

/// Time passes up to `at` on the injected clock: the patient's timer fires (signal loss) when
/// it would have live.
fn pass_time(
    patient: &mut Patient,
    at: Timestamp,
    settings: &Settings,
    log: &mut AlertLog,
    out: &mut Outcome,
    alerts: &mut Lines,
) {
    while let Some(due) = patient.next_tick(settings).filter(|t| *t <= at) {
        let heard = due.plus_millis(-settings.signal_loss.window_ms);
        match patient.tick(due, heard, settings) {
            Some(alert) => log.record(&alert, out, alerts),
            None => break,
        }
    }
}

/// The `.psv` files of `dir`, sorted by name.
fn psv_files(dir: &Path) -> Result<Vec<PathBuf>, ReplayError> {
    let io = |source| ReplayError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        // `.PSV` too: a stay saved on Windows is not skipped unseen.
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("psv")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ReplayError::NoStays(dir.display().to_string()));
    }
    Ok(files)
}

fn threads(n: usize) -> usize {
    if n == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        n
    }
}

/// Hands finished chunks of NDJSON lines to a writer thread.
type LineTx = mpsc::SyncSender<Vec<u8>>;
type LineWriter = std::thread::JoinHandle<std::io::Result<()>>;

/// Where a worker's `--scores` and `--alerts` lines go: each gathered in its own buffer and
/// handed to its writer thread 64 KiB at a time, or (`.psv`) a whole stay at a time, so a
/// stay's lines are never split by another stay's.
pub(crate) struct Sinks {
    pub(crate) scores: Lines,
    pub(crate) alerts: Lines,
    /// `--features`: a CSV row per stay row, of [`features::CANDIDATES`].
    pub(crate) features: Lines,
    /// How a row reads every candidate at once (the engine's own evaluation path).
    plan: features::Plan,
    read: Vec<Option<features::Value>>,
}

impl Sinks {
    /// Sinks that hand over 64 KiB at a time; `by_stay`: only when flushed.
    fn new(outputs: &Outputs, by_stay: bool) -> Self {
        let chunk = if by_stay { usize::MAX } else { 1 << 16 };
        Self {
            scores: Lines::new(outputs.scores.clone(), chunk),
            alerts: Lines::new(outputs.alerts.clone(), chunk),
            features: Lines::new(outputs.features.clone(), chunk),
            plan: features::Plan::new(&features::candidates()),
            read: vec![None; features::CANDIDATES.len()],
        }
    }

    fn flush(&mut self) {
        self.scores.flush();
        self.alerts.flush();
        self.features.flush();
    }
}

/// The lines of one output, or nothing when the output was not asked for.
pub(crate) struct Lines {
    tx: Option<LineTx>,
    buf: Vec<u8>,
    /// Bytes gathered before they are handed over without a flush.
    chunk: usize,
}

impl Lines {
    fn new(tx: Option<LineTx>, chunk: usize) -> Self {
        Self {
            tx,
            buf: Vec::new(),
            chunk,
        }
    }

    /// This output was asked for.
    fn wanted(&self) -> bool {
        self.tx.is_some()
    }

    /// Appends what `line` writes, when this output is wanted.
    fn write(&mut self, line: impl FnOnce(&mut Vec<u8>)) {
        let Some(tx) = &self.tx else {
            return;
        };
        line(&mut self.buf);
        if self.buf.len() >= self.chunk {
            let _ = tx.send(std::mem::take(&mut self.buf));
        }
    }

    fn flush(&mut self) {
        if let Some(tx) = &self.tx
            && !self.buf.is_empty()
        {
            let _ = tx.send(std::mem::take(&mut self.buf));
        }
    }
}

/// The writer threads' channels, cloned into every worker.
#[derive(Clone, Default)]
struct Outputs {
    scores: Option<LineTx>,
    alerts: Option<LineTx>,
    features: Option<LineTx>,
}

/// Starts a writer: one thread that writes chunks of lines as they come.
fn line_writer(out: Option<Box<dyn Write + Send>>) -> (Option<LineTx>, Option<LineWriter>) {
    let Some(mut w) = out else {
        return (None, None);
    };
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(256);
    let handle = std::thread::spawn(move || {
        for chunk in rx {
            w.write_all(&chunk)?;
        }
        w.flush()
    });
    (Some(tx), Some(handle))
}

/// Waits for a writer to finish; its error as `wrap` says.
fn join_writer(
    writer: Option<LineWriter>,
    wrap: fn(std::io::Error) -> ReplayError,
) -> Result<(), ReplayError> {
    match writer.map(std::thread::JoinHandle::join) {
        None => Ok(()),
        Some(Ok(r)) => r.map_err(wrap),
        Some(Err(_)) => Err(wrap(std::io::Error::other("writer thread failed"))),
    }
}

/// Runs a replay and builds its report.
///
/// # Errors
/// [`ReplayError`] when the source cannot be read at all or the scores cannot be written.
pub fn run(options: Options) -> Result<Report, ReplayError> {
    let started = Instant::now();
    let settings = options.settings.clone();
    let threads = threads(options.threads);
    let (scores, score_writer) = line_writer(options.scores);
    let (alerts, alert_writer) = line_writer(options.alerts);
    let features = match options.features {
        Some(mut w) => {
            let mut header = String::from("stay,hour,label,evaluated");
            for name in features::CANDIDATES {
                header.push(',');
                header.push_str(name);
            }
            header.push('\n');
            w.write_all(header.as_bytes())
                .map_err(ReplayError::Features)?;
            Some(w)
        }
        None => None,
    };
    let (features, feature_writer) = line_writer(features);
    let outputs = Outputs {
        scores,
        alerts,
        features,
    };
    let progress = options.progress.as_ref();
    let ran = match &options.source {
        Source::Psv(dir) => psv_files(dir).and_then(|files| {
            if let Some(out) = &options.predictions {
                std::fs::create_dir_all(out).map_err(|source| ReplayError::Predictions {
                    path: out.display().to_string(),
                    source,
                })?;
            }
            let predictions = options.predictions.as_deref();
            let (outcomes, skipped) =
                replay_psv(&files, &settings, threads, &outputs, predictions, progress)?;
            Ok(("psv", outcomes, skipped, Vec::new()))
        }),
        Source::Events(file) => events::replay(file, &settings, threads, &outputs, progress)
            .map(|(outcomes, rejected)| ("events", outcomes, Vec::new(), rejected)),
    };
    // The writers end when every sender is gone.
    drop(outputs);
    join_writer(score_writer, ReplayError::Scores)?;
    join_writer(alert_writer, ReplayError::Alerts)?;
    join_writer(feature_writer, ReplayError::Features)?;
    let (kind, outcomes, skipped, rejected_codes) = ran?;
    Ok(Report::build(
        kind,
        &settings,
        &outcomes,
        skipped,
        rejected_codes,
        threads,
        started.elapsed().as_secs_f64(),
    ))
}

/// Writes one stay's predictions in the challenge's layout: `PredictedProbability|PredictedLabel`,
/// then per row the model's risk and 1 where an alert of the profile was open.
fn write_predictions(path: &Path, outcome: &Outcome) -> std::io::Result<()> {
    let mut text = String::with_capacity(16 * (outcome.masks.len() + 1));
    text.push_str("PredictedProbability|PredictedLabel\n");
    for (risk, mask) in outcome.risks.iter().zip(&outcome.masks) {
        let label = u8::from(mask & (1 << PROFILE) != 0);
        let _ = writeln!(text, "{risk:.4}|{label}");
    }
    std::fs::write(path, text)
}

fn replay_psv(
    files: &[PathBuf],
    settings: &Settings,
    threads: usize,
    outputs: &Outputs,
    predictions: Option<&Path>,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<(Vec<Outcome>, Vec<Skipped>), ReplayError> {
    let next = AtomicUsize::new(0);
    let skipped = Mutex::new(Vec::new());
    let failed: Mutex<Option<ReplayError>> = Mutex::new(None);
    let mut outcomes = Vec::with_capacity(files.len());
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let mut sinks = Sinks::new(outputs, true);
                let (next, skipped, failed) = (&next, &skipped, &failed);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(i) else { break };
                        let name = path.display().to_string();
                        let parsed = std::fs::read_to_string(path)
                            .map_err(|e| psv::PsvError {
                                line: 0,
                                reason: format!("cannot read: {e}"),
                            })
                            .and_then(|text| psv::parse(&text));
                        match parsed {
                            Ok(stay) => {
                                let id = path
                                    .file_stem()
                                    .map_or_else(|| name.clone(), |s| s.to_string_lossy().into());
                                let mut outcome =
                                    simulate_stay(&id, &stay.rows, settings, &mut sinks);
                                outcome.absent_columns = stay.absent;
                                sinks.flush();
                                if let (Some(dir), Some(file)) = (predictions, path.file_name()) {
                                    let out = dir.join(file);
                                    if let Err(source) = write_predictions(&out, &outcome)
                                        && let Ok(mut f) = failed.lock()
                                    {
                                        f.get_or_insert(ReplayError::Predictions {
                                            path: out.display().to_string(),
                                            source,
                                        });
                                    }
                                }
                                mine.push(outcome);
                            }
                            Err(e) => {
                                if let Ok(mut s) = skipped.lock() {
                                    s.push(Skipped {
                                        file: name,
                                        line: e.line,
                                        error: e.reason,
                                    });
                                }
                            }
                        }
                        if let Some(p) = progress {
                            p.inc(1);
                        }
                    }
                    mine
                })
            })
            .collect();
        for w in workers {
            if let Ok(mine) = w.join() {
                outcomes.extend(mine);
            }
        }
    });
    if let Some(e) = failed.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut skipped = skipped.into_inner().unwrap_or_default();
    skipped.sort_by(|a, b| a.file.cmp(&b.file));
    Ok((outcomes, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(extra: &str) -> Vec<psv::Row> {
        psv::parse(&format!(
            "HR|Age|Gender|HospAdmTime|ICULOS\n{extra}\n80|NaN|NaN|NaN|2\n"
        ))
        .expect("psv")
        .rows
    }

    #[test]
    fn every_psv_file_is_a_stay_whatever_the_case_of_its_extension() {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["b.psv", "A.PSV", "c.Psv", "notes.txt", "psv"] {
            std::fs::write(dir.path().join(name), "HR|ICULOS\n80|1\n").expect("write");
        }
        let files = psv_files(dir.path()).expect("stays");
        let names: Vec<_> = files
            .iter()
            .filter_map(|f| f.file_name()?.to_str())
            .collect();
        assert_eq!(names, ["A.PSV", "b.psv", "c.Psv"]);
    }

    #[test]
    fn the_psv_replay_derives_the_admission_from_age_gender_and_hospadmtime() {
        let a = admission_of(&rows("80|67.4|0|-6.5|1")).expect("an admission");
        assert_eq!(a.admitted_at, stay_start());
        assert_eq!(
            a.hospital_admitted_at,
            Some(stay_start().plus_millis(-6 * HOUR_MS - HOUR_MS / 2))
        );
        assert_eq!((a.age, a.sex), (Some(67), Some(vigil_engine::Sex::Female)));
        let a = admission_of(&rows("80|130|1|0|1")).expect("an admission");
        assert_eq!((a.age, a.sex), (Some(130), Some(vigil_engine::Sex::Male)));
        // Outside the contract: left out, not guessed.
        let a = admission_of(&rows("80|131|2|NaN|1")).expect("an admission");
        assert_eq!((a.age, a.sex, a.hospital_admitted_at), (None, None, None));
        // No such columns: none, and the stay is scored as before.
        let plain = psv::parse("HR|ICULOS\n80|1\n").expect("psv").rows;
        assert!(admission_of(&plain).is_none());
    }
}
