//! `vigil replay --events FILE`: newline-delimited `VITALS` envelopes exactly as on the wire
//! (JSON, one event per line), decoded and validated by the same code as live ingest.
//!
//! Each worker streams the whole file and applies only the lines of its own patients (by a
//! hash of `patientId`, found with a byte search before any decoding), so every patient's
//! events are applied in file order by one thread, nothing is buffered beyond one line, and
//! the workers share nothing but the page cache.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use vigil_engine::{Patient, Settings, Timestamp};
use vigil_streams::VitalsEvent;
use vigil_streams::envelope::decode_recorded;

use crate::{AlertLog, Outcome, ReplayError, open_mask, write_score};

/// The `patientId` string value of a JSON line, found without decoding it.
fn patient_of(line: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\"patientId\"";
    let at = memchr::memmem::find(line, KEY)?;
    let rest = &line[at + KEY.len()..];
    let colon = memchr::memchr(b':', rest)?;
    let rest = &rest[colon + 1..];
    let open = memchr::memchr(b'"', rest)?;
    let rest = &rest[open + 1..];
    let close = memchr::memchr(b'"', rest)?;
    Some(&rest[..close])
}

fn owner(patient: Option<&[u8]>, threads: usize) -> usize {
    let Some(p) = patient else { return 0 };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in p {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % threads as u64) as usize
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
pub fn replay(
    file: &Path,
    settings: &Settings,
    threads: usize,
    scores: Option<mpsc::SyncSender<Vec<u8>>>,
    progress: Option<&Arc<AtomicUsize>>,
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
                let scores = scores.clone();
                scope.spawn(move || worker(file, w, threads, settings, scores, progress))
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
    drop(scores);
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

fn worker(
    file: &Path,
    me: usize,
    threads: usize,
    settings: &Settings,
    scores: Option<mpsc::SyncSender<Vec<u8>>>,
    progress: Option<&Arc<AtomicUsize>>,
) -> WorkerResult {
    let mut reader = BufReader::with_capacity(1 << 20, std::fs::File::open(file)?);
    let mut line = Vec::with_capacity(1024);
    let mut patients: HashMap<String, Tracked> = HashMap::new();
    let mut rejected: HashMap<&'static str, usize> = HashMap::new();
    let mut buf = Vec::new();
    let mut read = 0usize;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        read += n;
        if me == 0
            && let Some(p) = progress
            && read >= 1 << 20
        {
            p.fetch_add(read, Ordering::Relaxed);
            read = 0;
        }
        let text = line.trim_ascii();
        if text.is_empty() || owner(patient_of(text), threads) != me {
            continue;
        }
        let event = match decode_recorded(text) {
            Ok(e) => e,
            Err(r) => {
                *rejected.entry(r.code.as_str()).or_default() += 1;
                continue;
            }
        };
        let meta = event.meta();
        let key = format!("{}\u{0}{}", meta.tenant_id, meta.patient_id);
        let at = meta.occurred_at;
        let t = patients.entry(key).or_insert_with(|| Tracked {
            patient: Patient::new(&meta.tenant_id, &meta.patient_id, &meta.unit_id),
            log: AlertLog::default(),
            outcome: Outcome::default(),
            first: at,
            last: at,
        });
        t.first = t.first.min(at);
        t.last = t.last.max(at);
        t.outcome.rows += 1;
        // Time passes up to this event: signal loss fires when it would have.
        while let Some(due) = t.patient.next_tick(settings).filter(|d| *d <= at) {
            match t.patient.tick(
                due,
                due.plus_millis(-settings.signal_loss.window_ms),
                settings,
            ) {
                Some(alert) => t.log.record(&alert, &mut t.outcome),
                None => break,
            }
        }
        let unit = &event.meta().unit_id;
        let observed = match &event {
            VitalsEvent::Observation { vitals, meta } => {
                t.patient.observe(unit, vitals, meta.occurred_at, settings)
            }
            VitalsEvent::Lab {
                lab, collected_at, ..
            } => t.patient.record_lab(unit, lab, *collected_at, settings),
        };
        for a in &observed.alerts {
            t.log.record(a, &mut t.outcome);
        }
        if scores.is_some()
            && let Some(score) = &observed.score
        {
            write_score(
                &mut buf,
                &t.patient.patient_id,
                score,
                observed.qsofa.map(|q| q.total),
                observed.sirs.map(|s| s.total),
            );
            if buf.len() >= 1 << 16
                && let Some(tx) = &scores
            {
                let _ = tx.send(std::mem::take(&mut buf));
            }
        }
        let row = t.outcome.rows - 1;
        t.outcome.note_open(open_mask(&t.patient), row);
    }
    if let Some(tx) = &scores
        && !buf.is_empty()
    {
        let _ = tx.send(buf);
    }
    if let Some(p) = progress {
        p.fetch_add(read, Ordering::Relaxed);
    }
    let outcomes = patients
        .into_values()
        .map(|mut t| {
            t.outcome.hours = t.last.since(t.first) as f64 / 3_600_000.0;
            t.outcome
        })
        .collect();
    Ok((outcomes, rejected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_is_found_without_decoding() {
        let line = br#"{"eventId":"e1","data":{"patientId" : "p-7","unitId":"icu"}}"#;
        assert_eq!(patient_of(line), Some(&b"p-7"[..]));
        assert_eq!(patient_of(b"{}"), None);
        assert_eq!(owner(None, 4), 0);
        assert!(owner(Some(b"p-7"), 4) < 4);
    }
}
