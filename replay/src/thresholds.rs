//! The sepsis screen's open and clear risks on the replayed stays: the utility the profile's
//! pair gave them, and the pair of a grid that would have served them best (docs/replay.md).
//!
//! A hospital whose stays the model has not seen can find its risks sitting higher or lower
//! than the training hospital's (docs/sepsis-screen.md measured a factor of two between two
//! ICUs of one hospital); this is how it sees that on its own labelled stays, without
//! retraining. Each pair is judged on the risk after each row, as the alert rule reads it: open
//! at a risk at or above `open`, resolved at the first below `clear`. That is exactly the rule
//! when it opens on one evaluation and clears at once (`sustain = 1`, `clear = "0s"`, the
//! defaults); with other settings nothing is reported.

use serde::Serialize;
use vigil_engine::Settings;

use crate::Outcome;
use crate::report::round;
use crate::utility::{Utility, row_scores, stay_bounds};

/// The profile's pair and the best pair of the grid, with their normalized utility.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Thresholds {
    #[serde(serialize_with = "round")]
    pub open: f64,
    #[serde(serialize_with = "round")]
    pub clear: f64,
    #[serde(serialize_with = "round")]
    pub utility: f64,
    #[serde(serialize_with = "round")]
    pub best_open: f64,
    #[serde(serialize_with = "round")]
    pub best_clear: f64,
    #[serde(serialize_with = "round")]
    pub best_utility: f64,
}

/// Open risks tried: this many quantiles of the rows' risks, from the median to the 99.5th
/// percentile (the trainer's grid, training/sepsis/train.py), each to four decimals.
const QUANTILES: usize = 60;
const FROM: f64 = 0.5;
const TO: f64 = 0.995;
/// Each open risk with the clear risk at these shares of it.
const CLEAR_SHARES: [f64; 3] = [1.0, 0.85, 0.7];

/// `None` unless every stay is labelled and some is septic, and the profile's `sepsis.model`
/// is on, opens on one evaluation and clears at once. The grid's pairs are judged on
/// `threads` threads (the replay's `--threads`).
pub fn thresholds(settings: &Settings, outcomes: &[Outcome], threads: usize) -> Option<Thresholds> {
    let rule = &settings.model_rule;
    if !rule.enabled || rule.sustain != 1 || rule.clear_ms != Some(0) {
        return None;
    }
    let stays = Stays::new(outcomes)?;
    let own = settings.model_thresholds();
    let utility = stays.utility(own.open, own.clear)?;
    let pairs: Vec<(f64, f64)> = stays
        .grid()
        .into_iter()
        .flat_map(|open| CLEAR_SHARES.map(|share| (open, four_decimals(open * share))))
        .collect();
    // The profile's pair wins a tie, then the lowest open risk.
    let mut best = (utility, own.open, own.clear);
    for (u, (open, clear)) in stays.utilities(&pairs, threads).into_iter().zip(pairs) {
        if let Some(u) = u
            && u > best.0
        {
            best = (u, open, clear);
        }
    }
    Some(Thresholds {
        open: own.open,
        clear: own.clear,
        utility,
        best_open: best.1,
        best_clear: best.2,
        best_utility: best.0,
    })
}

fn four_decimals(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

/// Every row of every stay with its risk and its utility as a positive and as a negative
/// prediction, stay after stay.
struct Stays {
    rows: Vec<Row>,
    spans: Vec<Span>,
    /// The stays' utility with no positive row and with the best (`observed` unused).
    bounds: Utility,
}

/// One stay's rows in [`Stays::rows`], with its highest risk and its utility with no alert:
/// what it scores for every open risk above that, without reading its rows again.
struct Span {
    end: usize,
    highest: f64,
    quiet: f64,
}

struct Row {
    risk: f64,
    positive: f64,
    negative: f64,
}

impl Stays {
    /// `None` when some stay lacks labels or none is septic (no utility to normalize).
    fn new(outcomes: &[Outcome]) -> Option<Stays> {
        let mut stays = Stays {
            rows: Vec::with_capacity(outcomes.iter().map(|o| o.rows).sum()),
            spans: Vec::with_capacity(outcomes.len()),
            bounds: Utility::default(),
        };
        for o in outcomes {
            let labels = o.labels.as_deref()?;
            let (none, best) = stay_bounds(labels);
            stays.bounds.none += none;
            stays.bounds.best += best;
            let (mut highest, mut quiet) = (f64::NEG_INFINITY, 0.0);
            for (&risk, (positive, negative)) in o.risks.iter().zip(row_scores(labels)) {
                highest = highest.max(risk);
                quiet += negative;
                stays.rows.push(Row {
                    risk,
                    positive,
                    negative,
                });
            }
            stays.spans.push(Span {
                end: stays.rows.len(),
                highest,
                quiet,
            });
        }
        stays.bounds.normalized().is_some().then_some(stays)
    }

    /// The normalized utility of the alerts `open` and `clear` give (`Some` whenever
    /// [`Stays::new`] gave the stays).
    fn utility(&self, open: f64, clear: f64) -> Option<f64> {
        let mut observed = 0.0;
        let mut start = 0;
        for span in &self.spans {
            if span.highest < open {
                observed += span.quiet;
            } else {
                let mut on = false;
                for row in &self.rows[start..span.end] {
                    on = if on {
                        row.risk >= clear
                    } else {
                        row.risk >= open
                    };
                    observed += if on { row.positive } else { row.negative };
                }
            }
            start = span.end;
        }
        Utility {
            observed,
            ..self.bounds
        }
        .normalized()
    }

    /// [`Stays::utility`] of each pair, in order, the pairs shared among `threads` threads.
    fn utilities(&self, pairs: &[(f64, f64)], threads: usize) -> Vec<Option<f64>> {
        let chunk = pairs.len().div_ceil(threads.max(1)).max(1);
        std::thread::scope(|scope| {
            let parts: Vec<_> = pairs
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|&(open, clear)| self.utility(open, clear))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|part| {
                    // `utility` indexes only the rows `new` laid out: it cannot panic.
                    part.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
                })
                .collect()
        })
    }

    /// The open risks to try, lowest first, none of them 0.
    fn grid(&self) -> Vec<f64> {
        let mut risks: Vec<f64> = self.rows.iter().map(|r| r.risk).collect();
        risks.sort_by(f64::total_cmp);
        let Some(last) = risks.len().checked_sub(1) else {
            return Vec::new();
        };
        let mut grid: Vec<f64> = (0..QUANTILES)
            .map(|k| FROM + (TO - FROM) * k as f64 / (QUANTILES - 1) as f64)
            .map(|q| four_decimals(risks[(q * last as f64).round() as usize]))
            .filter(|&open| open > 0.0)
            .collect();
        grid.dedup();
        grid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::utility::Utility;

    /// A labelled stay with the risk after each row.
    fn stay(labels: &[u8], risks: &[f64]) -> Outcome {
        Outcome {
            rows: labels.len(),
            labels: Some(labels.iter().map(|&l| l == 1).collect()),
            risks: risks.to_vec(),
            ..Outcome::default()
        }
    }

    /// What the report's own utility gives for the alerts of `open` and `clear`.
    fn by_masks(outcomes: &[Outcome], open: f64, clear: f64) -> f64 {
        let mut u = Utility::default();
        for o in outcomes {
            let mut on = false;
            let predictions: Vec<bool> = o
                .risks
                .iter()
                .map(|&r| {
                    on = if on { r >= clear } else { r >= open };
                    on
                })
                .collect();
            u.add(o.labels.as_deref().expect("labelled"), &predictions);
        }
        u.normalized().expect("a septic stay")
    }

    fn settings(open: f64, clear: f64) -> Settings {
        let mut s = Settings::default();
        s.model_rule.risk = Some(open);
        s.model_rule.clear_risk = Some(clear);
        s
    }

    /// A septic stay whose risk rises 8 h before its label, and one never septic whose risk
    /// wavers at 0.04 to 0.05; the profile's 0.03 alerts both.
    fn ward() -> Vec<Outcome> {
        let mut labels = vec![0u8; 20];
        labels[14..].fill(1);
        let mut risks = vec![0.01; 20];
        risks[6..].fill(0.2);
        let quiet = [0.0, 0.01, 0.04, 0.05, 0.045, 0.02, 0.05, 0.01];
        vec![stay(&labels, &risks), stay(&[0; 8], &quiet)]
    }

    #[test]
    fn each_pair_scores_as_the_report_scores_its_alerts() {
        let ward = ward();
        let t = thresholds(&settings(0.03, 0.02), &ward, 2).expect("a septic stay");
        assert_eq!((t.open, t.clear), (0.03, 0.02));
        assert!((t.utility - by_masks(&ward, 0.03, 0.02)).abs() < 1e-12);
        // Open at 0.05: the quiet stay's alert opens at its fourth row and, clearing below
        // 0.045, closes at its sixth (0.02) to open again at its seventh; clearing below
        // 0.02, it stays open until its eighth. Each stay starts closed.
        let stays = Stays::new(&ward).expect("a septic stay");
        for (open, clear) in [
            (0.05, 0.045),
            (0.05, 0.02),
            (0.05, 0.05),
            (0.2, 0.0),
            (0.3, 0.3),
        ] {
            let u = stays.utility(open, clear).expect("a septic stay");
            assert!(
                (u - by_masks(&ward, open, clear)).abs() < 1e-12,
                "{open} {clear}"
            );
        }
        assert!(stays.utility(0.05, 0.02) < stays.utility(0.05, 0.045));
    }

    #[test]
    fn the_best_pair_spares_the_stay_that_is_never_septic() {
        let ward = ward();
        let t = thresholds(&settings(0.03, 0.02), &ward, 2).expect("a septic stay");
        // Any open risk above 0.05 and up to 0.2 alerts the septic stay alone, from its
        // seventh row, as early as the profile's pair.
        assert!(t.best_open > 0.05 && t.best_open <= 0.2, "{t:?}");
        assert!(t.best_clear <= t.best_open, "{t:?}");
        assert!(t.best_utility > t.utility, "{t:?}");
        assert!((t.best_utility - by_masks(&ward, t.best_open, t.best_clear)).abs() < 1e-12);
        let septic_alone = by_masks(&ward[..1], 0.03, 0.02);
        assert!(septic_alone > 0.0);
        // With the quiet stay spared, the utility is the septic stay's alone (the quiet stay
        // adds nothing to U_best or U_none).
        assert!((t.best_utility - septic_alone).abs() < 1e-12, "{t:?}");
    }

    #[test]
    fn nothing_to_report_without_labels_septic_stays_or_the_plain_rule() {
        let ward = ward();
        let mut unlabelled = ward.clone();
        unlabelled[1].labels = None;
        assert_eq!(thresholds(&settings(0.03, 0.02), &unlabelled, 2), None);
        assert_eq!(thresholds(&settings(0.03, 0.02), &ward[1..], 2), None);
        let mut sustained = settings(0.03, 0.02);
        sustained.model_rule.sustain = 2;
        assert_eq!(thresholds(&sustained, &ward, 2), None);
        let mut slow = settings(0.03, 0.02);
        slow.model_rule.clear_ms = Some(60_000);
        assert_eq!(thresholds(&slow, &ward, 2), None);
        let mut off = settings(0.03, 0.02);
        off.model_rule.enabled = false;
        assert_eq!(thresholds(&off, &ward, 2), None);
        assert!(thresholds(&settings(0.03, 0.02), &[], 2).is_none());
    }
}
