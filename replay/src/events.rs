//! `vigil replay --events FILE`: newline-delimited `VITALS` envelopes exactly as on the wire
//! (JSON, one event per line), decoded and validated by the same code as live ingest.
//!
//! Each worker streams the whole file through its own buffer and applies only the lines of its
//! own patients (by a hash of `patientId`, found with a byte search before any decoding where
//! the line's bytes leave no doubt, by decoding it where they do), so every patient's events
//! are applied in file order by one thread, lines are read in place (never copied), and the
//! workers share nothing but the page cache.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use rustc_hash::FxHashMap;
use vigil_engine::Reading;
use vigil_engine::{Patient, Settings, Timestamp};
use vigil_streams::envelope::RejectCode;
use vigil_streams::vitals::decode_recorded;

use crate::{AlertLog, Outcome, Outputs, ReplayError, Sinks, open_mask, pass_time, write_score};

/// Picks the worker of each line: by the `patientId` the line's bytes show where they can
/// only mean one thing, and by decoding the line where they could mean another.
struct Router {
    needle: memchr::memmem::Finder<'static>,
    threads: usize,
}

impl Router {
    fn new(threads: usize) -> Self {
        Self {
            needle: memchr::memmem::Finder::new(b"\"patientId\""),
            threads,
        }
    }

    /// The `patientId` of `line` read from its bytes, when it holds the key exactly once and
    /// no escape: a valid line's `data.patientId` is then that key (a key or string written
    /// with escapes, a second `"patientId"` in another object or as a value, are not).
    fn plain_patient<'l>(&self, line: &'l [u8]) -> Option<&'l [u8]> {
        if memchr::memchr(b'\\', line).is_some() {
            return None;
        }
        let mut found = self.needle.find_iter(line);
        let at = found.next()?;
        if found.next().is_some() {
            return None;
        }
        let rest = line[at + self.needle.needle().len()..].trim_ascii_start();
        let rest = rest.strip_prefix(b":")?.trim_ascii_start();
        let rest = rest.strip_prefix(b"\"")?;
        let close = memchr::memchr(b'"', rest)?;
        Some(&rest[..close])
    }

    /// The worker of `line`: one per patient, so that a patient's lines are applied in file
    /// order by one thread whatever other keys they carry or however they write its id. A
    /// line that does not decode goes to worker 0, which refuses it once.
    fn owner(&self, line: &[u8]) -> usize {
        if self.threads == 1 {
            return 0;
        }
        let decoded;
        let patient = match self.plain_patient(line) {
            Some(p) => p,
            None => match decode_recorded(line) {
                Ok(event) => {
                    decoded = event;
                    decoded.patient_id.as_bytes()
                }
                Err(_) => return 0,
            },
        };
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in patient {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        (h % self.threads as u64) as usize
    }
}

struct Tracked {
    patient: Patient,
    log: AlertLog,
    outcome: Outcome,
    first: Timestamp,
    last: Timestamp,
}

/// Replays the file; returns one outcome per patient and the rejected lines by code.
///
/// # Errors
/// [`ReplayError::Io`] when the file cannot be read.
pub(crate) fn replay(
    file: &Path,
    settings: &Settings,
    threads: usize,
    outputs: &Outputs,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<(Vec<Outcome>, Rejected), ReplayError> {
    let io = |source| ReplayError::Io {
        path: file.display().to_string(),
        source,
    };
    // Fail before starting workers when the file cannot be opened.
    std::fs::File::open(file).map_err(io)?;
    let results: Vec<WorkerResult> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|w| {
                let sinks = Sinks::new(outputs, false);
                scope.spawn(move || worker(file, w, threads, settings, sinks, progress))
            })
            .collect();
        workers
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("replay worker failed")))
            })
            .collect()
    });
    let mut outcomes = Vec::new();
    let mut rejected: HashMap<&'static str, usize> = HashMap::new();
    for r in results {
        let (o, rej) = r.map_err(io)?;
        outcomes.extend(o);
        for (code, n) in rej {
            *rejected.entry(code).or_default() += n;
        }
    }
    let mut rejected: Vec<(String, usize)> = rejected
        .into_iter()
        .map(|(c, n)| (c.to_string(), n))
        .collect();
    rejected.sort();
    Ok((outcomes, rejected))
}

/// One worker's patients and its rejected lines by code.
type WorkerResult = Result<(Vec<Outcome>, HashMap<&'static str, usize>), std::io::Error>;
/// Rejected lines by code, sorted by code.
pub type Rejected = Vec<(String, usize)>;

/// Bytes a worker reads at a time. Far above the contract's 64 KiB limit, so a buffer full
/// of one unfinished line holds a line that is too large whatever its end.
const READ_CHUNK: usize = 1 << 20;

fn worker(
    file: &Path,
    me: usize,
    threads: usize,
    settings: &Settings,
    sinks: Sinks,
    progress: Option<&indicatif::ProgressBar>,
) -> WorkerResult {
    let mut file = std::fs::File::open(file)?;
    let mut w = Worker {
        me,
        router: Router::new(threads),
        settings,
        patients: FxHashMap::default(),
        key: String::new(),
        rejected: HashMap::new(),
        sinks,
    };
    let mut buf = vec![0u8; READ_CHUNK];
    // `buf[..filled]` holds bytes read and not yet applied; `skipping` while the rest of an
    // oversized line is discarded.
    let mut filled = 0;
    let mut skipping = false;
    // Whether the file's first bytes were looked at for a byte order mark.
    let mut opened = false;
    loop {
        let n = match file.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if me == 0
            && let Some(p) = progress
        {
            p.inc(n as u64);
        }
        filled += n;
        let mut start = 0;
        if !opened {
            // A byte order mark (some tools write one) is not part of the first event. The
            // first bytes may be the start of one: read on.
            let bom = crate::psv::BOM.as_bytes();
            if n > 0 && filled < bom.len() && bom.starts_with(&buf[..filled]) {
                continue;
            }
            if buf[..filled].starts_with(bom) {
                start = bom.len();
            }
            opened = true;
        }
        while let Some(nl) = memchr::memchr(b'\n', &buf[start..filled]) {
            if !skipping {
                w.apply(&buf[start..start + nl]);
            }
            skipping = false;
            start += nl + 1;
        }
        if n == 0 {
            if !skipping && start < filled {
                w.apply(&buf[start..filled]);
            }
            break;
        }
        if start == 0 && filled == buf.len() {
            // A whole buffer without a line end: the line is too large. Worker 0 counts it
            // once (its patient is unknown); every worker skips to its end.
            if !skipping && me == 0 {
                w.reject(RejectCode::PayloadTooLarge);
            }
            skipping = true;
            filled = 0;
            continue;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
    }
    w.finish()
}

/// One worker's patients and what it has written and rejected.
struct Worker<'s> {
    me: usize,
    router: Router,
    settings: &'s Settings,
    /// `tenantId NUL patientId` -> the patient. Boxed, so the table stays small and a resize
    /// moves pointers, not windows.
    patients: FxHashMap<String, Box<Tracked>>,
    /// Reused to build the key of each event's patient.
    key: String,
    rejected: HashMap<&'static str, usize>,
    sinks: Sinks,
}

impl Tracked {
    fn new(event: &Reading<'_>) -> Self {
        Self {
            patient: Patient::new(&event.meta.tenant_id, &event.patient_id, &event.unit_id),
            log: AlertLog::default(),
            outcome: Outcome::default(),
            first: event.meta.occurred_at,
            last: event.meta.occurred_at,
        }
    }

    /// Applies one of this patient's events, after the time that passed before it.
    fn apply(&mut self, event: &Reading<'_>, settings: &Settings, sinks: &mut Sinks) {
        let at = event.meta.occurred_at;
        self.first = self.first.min(at);
        self.last = self.last.max(at);
        self.outcome.rows += 1;
        pass_time(
            &mut self.patient,
            at,
            settings,
            &mut self.log,
            &mut self.outcome,
            &mut sinks.alerts,
        );
        // The replay's clock is the events' own: `now` is the event time.
        let observed = self.patient.apply(event, at, settings);
        for a in &observed.alerts {
            self.log.record(a, &mut self.outcome, &mut sinks.alerts);
        }
        let patient_id = &self.patient.patient_id;
        sinks
            .scores
            .write(|buf| write_score(buf, patient_id, &observed));
        let row = self.outcome.rows - 1;
        self.outcome.note_open(open_mask(&self.patient), row);
    }
}

impl Worker<'_> {
    fn reject(&mut self, code: RejectCode) {
        *self.rejected.entry(code.as_str()).or_default() += 1;
    }

    /// Applies one line when its patient is this worker's.
    fn apply(&mut self, line: &[u8]) {
        let text = line.trim_ascii();
        if text.is_empty() || self.router.owner(text) != self.me {
            return;
        }
        let event = match decode_recorded(text) {
            Ok(e) => e,
            Err(r) => return self.reject(r.code),
        };
        self.key.clear();
        self.key.push_str(&event.meta.tenant_id);
        self.key.push('\0');
        self.key.push_str(&event.patient_id);
        match self.patients.get_mut(self.key.as_str()) {
            Some(t) => t.apply(&event, self.settings, &mut self.sinks),
            None => {
                let mut t = Box::new(Tracked::new(&event));
                t.apply(&event, self.settings, &mut self.sinks);
                self.patients.insert(self.key.clone(), t);
            }
        }
    }

    fn finish(mut self) -> WorkerResult {
        self.sinks.flush();
        let outcomes = self
            .patients
            .into_values()
            .map(|t| {
                let mut outcome = t.outcome;
                outcome.hours = t.last.since(t.first) as f64 / 3_600_000.0;
                outcome
            })
            .collect();
        Ok((outcomes, self.rejected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_is_found_without_decoding_where_the_bytes_leave_no_doubt() {
        let router = Router::new(4);
        let line = br#"{"eventId":"e1","data":{"patientId" : "p-7","unitId":"icu"}}"#;
        assert_eq!(router.plain_patient(line), Some(&b"p-7"[..]));
        assert_eq!(router.plain_patient(b"{}"), None);
        // The key twice, or once as a value besides: the bytes alone cannot say which.
        assert_eq!(
            router.plain_patient(br#"{"producer":"patientId","data":{"patientId":"p-7"}}"#),
            None
        );
        assert_eq!(
            router.plain_patient(br#"{"data":{"extra":{"patientId":"m-1"},"patientId":"p-7"}}"#),
            None
        );
        // Any escape: a key or an id may be written with one.
        assert_eq!(
            router.plain_patient(br#"{"data":{"patientId":"p\u002d7"}}"#),
            None
        );
        assert_eq!(router.plain_patient(br#"{"data":{"patientId":5}}"#), None);
        // A line that does not decode goes to worker 0; one that does, by its patient.
        assert_eq!(router.owner(b"{}"), 0);
        assert!(router.owner(line) < 4);
    }

    /// `file` replayed with the default settings on `threads` threads.
    fn replayed(file: &Path, threads: usize) -> (Vec<Outcome>, Rejected) {
        replay(
            file,
            &Settings::default(),
            threads,
            &Outputs::default(),
            None,
        )
        .expect("replay")
    }

    fn line(i: usize, patient: &str) -> String {
        format!(
            r#"{{"eventId":"e{i}","eventType":"vitals.observation.v1","eventVersion":"1","occurredAt":"2025-11-27T09:{:02}:{:02}Z","producer":"mon-1","tenantId":"t1","data":{{"patientId":"{patient}","unitId":"icu-3","hr":70,"rr":16,"spo2":98,"onOxygen":false,"temp":37.0,"sbp":120,"consciousness":"A"}}}}"#,
            (i / 60) % 60,
            i % 60
        )
    }

    /// Lines that straddle reads, a line longer than a whole read, invalid UTF-8 and a last line
    /// without its end: every line is applied or rejected exactly once, on any thread count.
    #[test]
    fn every_line_is_applied_or_rejected_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("events.ndjson");
        let mut text = Vec::new();
        let events = 3 * READ_CHUNK / 280;
        for i in 0..events {
            text.extend_from_slice(line(i, &format!("p-{}", i % 7)).as_bytes());
            text.push(b'\n');
            if i == events / 2 {
                // Longer than a read buffer: rejected once (by worker 0, as its patientId is
                // never read), and the lines after it still applied.
                text.extend_from_slice(b"{\"patientId\":\"p-1\",\"pad\":\"");
                text.resize(text.len() + READ_CHUNK + 10, b'x');
                text.extend_from_slice(b"\"}\n");
                text.extend_from_slice(b"{\"eventId\":\"\xff\xfe\"}\n");
            }
        }
        text.extend_from_slice(line(events, "p-last").as_bytes());
        std::fs::write(&file, &text).expect("write");
        for threads in [1, 2, 3] {
            let (outcomes, rejected) = replayed(&file, threads);
            let applied: usize = outcomes.iter().map(|o| o.rows).sum();
            assert_eq!(applied, events + 1, "{threads} threads");
            assert_eq!(outcomes.len(), 8, "{threads} threads");
            assert_eq!(
                rejected,
                vec![
                    ("DECODE_FAILED".to_string(), 1),
                    ("PAYLOAD_TOO_LARGE".to_string(), 1)
                ],
                "{threads} threads"
            );
        }
    }

    /// `text`, 40 lines of eight patients, replayed on one to four threads: every line
    /// applied, each patient's five in one window.
    fn assert_eight_patients_of_five_rows(text: &str) {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("events.ndjson");
        std::fs::write(&file, text).expect("write");
        for threads in [1, 2, 3, 4] {
            let (outcomes, rejected) = replayed(&file, threads);
            assert!(rejected.is_empty(), "{rejected:?}");
            let mut rows: Vec<usize> = outcomes.iter().map(|o| o.rows).collect();
            rows.sort_unstable();
            assert_eq!(rows, [5; 8], "{threads} threads");
        }
    }

    /// A patient whose id some lines write with escapes is one patient, with one window, on
    /// any thread count.
    #[test]
    fn an_id_written_with_escapes_is_the_same_patient() {
        let mut text = String::new();
        for i in 0..40 {
            // Every other round of the eight patients writes `p-3` as `p\u002d3`.
            let patient = match (i / 8) % 2 {
                0 => format!("p-{}", i % 8),
                _ => format!("p\\u002d{}", i % 8),
            };
            text.push_str(&line(i, &patient));
            text.push('\n');
        }
        assert!(text.contains(r#""patientId":"p\u002d3","#), "{text}");
        assert_eight_patients_of_five_rows(&text);
    }

    /// A patient's lines that carry another `"patientId"` before the patient's own (an
    /// object a producer added, a value) are that patient's, with one window, on any thread
    /// count.
    #[test]
    fn another_patient_id_in_a_line_does_not_split_the_patient() {
        let mut text = String::new();
        for i in 0..40 {
            let plain = line(i, &format!("p-{}", i % 8));
            let line = match (i / 8) % 4 {
                0 => plain,
                1 => plain.replacen(
                    r#""data":{"#,
                    &format!(r#""data":{{"source":{{"patientId":"mrn-{i}"}},"#),
                    1,
                ),
                2 => plain.replacen(r#""producer":"mon-1""#, r#""producer":"patientId""#, 1),
                _ => plain.replacen(r#""unitId":"icu-3""#, r#""unitId":"icu\u002d3""#, 1),
            };
            text.push_str(&line);
            text.push('\n');
        }
        assert!(text.contains(r#""source":{"patientId":"mrn-8"},"patientId":"p-0""#));
        assert_eight_patients_of_five_rows(&text);
    }

    /// A file that starts with a byte order mark loses no event to it; one anywhere else is
    /// what it is, a line that is not JSON.
    #[test]
    fn a_byte_order_mark_at_the_start_is_not_part_of_the_first_event() {
        let dir = tempfile::tempdir().expect("temp dir");
        let run = |text: String| {
            let file = dir.path().join("events.ndjson");
            std::fs::write(&file, text).expect("write");
            let (outcomes, rejected) = replayed(&file, 2);
            (outcomes.iter().map(|o| o.rows).sum::<usize>(), rejected)
        };
        let bom = "\u{feff}";
        let lines = format!("{}\r\n{}\r\n", line(0, "p-1"), line(1, "p-2"));
        assert_eq!(run(format!("{bom}{lines}")), (2, vec![]));
        assert_eq!(run(format!("{bom}{}", line(0, "p-1"))), (1, vec![]));
        // The mark alone, or a file of a line end: nothing to apply, nothing refused.
        assert_eq!(run(bom.to_string()), (0, vec![]));
        assert_eq!(run("\n".to_string()), (0, vec![]));
        assert_eq!(
            run(format!("{lines}{bom}{}", line(2, "p-3"))),
            (2, vec![("DECODE_FAILED".to_string(), 1)])
        );
    }
}
