//! The replay report: per rule and for the profile as a whole (docs/replay.md defines each
//! figure).

use std::fmt::Write as _;

use serde::Serialize;

use crate::utility::{Utility, t_sepsis};
use crate::{Outcome, PROFILE, RULES, SLOTS, Skipped};

/// What one rule (or the whole profile) would have done.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleReport {
    pub rule: String,
    /// False when the profile switches the rule off (its figures are then empty).
    pub enabled: bool,
    /// Stays with at least one alert of the rule.
    pub patients_alerted: usize,
    /// Alerts of the rule (opened, or moved into the rule by an upgrade or downgrade).
    pub alerts: u64,
    /// Septic stays with an alert open at some row up to t_sepsis + 3, over septic stays.
    #[serde(serialize_with = "round_opt")]
    pub sensitivity: Option<f64>,
    /// Stays never labelled septic with no alert at all, over such stays.
    #[serde(serialize_with = "round_opt")]
    pub specificity: Option<f64>,
    /// Median hours from the first alert to the first `SepsisLabel = 1` row, over septic stays
    /// alerted at or before that row.
    #[serde(serialize_with = "round_opt")]
    pub median_lead_hours: Option<f64>,
    /// Septic stays whose first alert came 1 to 6 hours before their first labelled row, over
    /// septic stays: warned ahead, within the challenge's reward window (a prediction more than
    /// 6 h before the label earns nothing), and not merely alerted since admission.
    #[serde(serialize_with = "round_opt")]
    pub early_warning: Option<f64>,
    #[serde(serialize_with = "round_opt")]
    pub alerts_per_patient_day: Option<f64>,
    /// Alerts on stays never labelled septic, per patient-day of those stays: the false-alarm
    /// burden staff would carry (`None` without labels).
    #[serde(serialize_with = "round_opt")]
    pub false_alerts_per_patient_day: Option<f64>,
    /// The challenge's normalized utility (`None` without septic stays).
    #[serde(serialize_with = "round_opt")]
    pub utility: Option<f64>,
}

/// Row-level discrimination of the sepsis model's risk against `SepsisLabel`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScreenReport {
    /// Model name and version.
    pub model: String,
    /// Area under the ROC curve (ties count half).
    #[serde(serialize_with = "round")]
    pub auroc: f64,
    /// Average precision: the area under the precision-recall curve, stepwise.
    #[serde(serialize_with = "round")]
    pub auprc: f64,
    /// Calibration: the rows in ten bins of equal size by risk, lowest first, each with its
    /// mean risk and the share of its rows labelled septic (a well calibrated risk has the two
    /// equal).
    pub calibration: Vec<CalibrationBin>,
    /// The profile's open and clear risks on these stays, and the pair that would have served
    /// them best (`None` without septic stays, or when the rule does not open on one
    /// evaluation and clear at once).
    pub thresholds: Option<crate::thresholds::Thresholds>,
}

/// One bin of [`ScreenReport::calibration`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CalibrationBin {
    pub rows: usize,
    #[serde(serialize_with = "round")]
    pub mean_risk: f64,
    /// Share of the bin's rows with `SepsisLabel = 1`.
    #[serde(serialize_with = "round")]
    pub observed: f64,
}

/// Bins of the calibration curve.
const CALIBRATION_BINS: usize = 10;

/// `scored` (sorted by risk, highest first, as [`ranking`] leaves it) in
/// [`CALIBRATION_BINS`] bins of equal size, lowest risk first. Rows of one risk stay in one
/// bin, so a bin may be larger than its share; empty bins are left out.
pub fn calibration(scored: &[(f64, bool)]) -> Vec<CalibrationBin> {
    let n = scored.len();
    let mut bins = Vec::with_capacity(CALIBRATION_BINS);
    let mut start = 0;
    for k in 1..=CALIBRATION_BINS {
        let mut end = (n * k / CALIBRATION_BINS).max(start);
        while end > start && end < n && scored[end].0 == scored[end - 1].0 {
            end += 1;
        }
        if end == start {
            continue;
        }
        let rows = &scored[start..end];
        let (sum, positives) = rows
            .iter()
            .fold((0.0, 0usize), |(s, p), (r, y)| (s + r, p + usize::from(*y)));
        bins.push(CalibrationBin {
            rows: rows.len(),
            mean_risk: sum / rows.len() as f64,
            observed: positives as f64 / rows.len() as f64,
        });
        start = end;
    }
    bins.reverse();
    bins
}

/// AUROC and average precision of `scores` against `labels`; `None` without both classes.
pub fn ranking(scored: &mut [(f64, bool)]) -> Option<(f64, f64)> {
    let positives = scored.iter().filter(|(_, y)| *y).count();
    let negatives = scored.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    // Highest score first; a run of equal scores is one threshold.
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0usize, 0usize);
    let (mut auc, mut ap) = (0.0, 0.0);
    let mut i = 0;
    while i < scored.len() {
        let mut j = i;
        let (mut run_tp, mut run_fp) = (0, 0);
        while j < scored.len() && scored[j].0 == scored[i].0 {
            if scored[j].1 {
                run_tp += 1;
            } else {
                run_fp += 1;
            }
            j += 1;
        }
        // ROC: each negative of the run against the positives ranked above it, ties counting
        // half: the pairs in the right order.
        auc += run_fp as f64 * (tp as f64 + run_tp as f64 / 2.0);
        tp += run_tp;
        fp += run_fp;
        if run_tp > 0 {
            ap += run_tp as f64 / positives as f64 * (tp as f64 / (tp + fp) as f64);
        }
        i = j;
    }
    Some((auc / (positives as f64 * negatives as f64), ap))
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub source: String,
    pub profile: String,
    pub stays: usize,
    /// Rows (psv) or events (NDJSON) replayed.
    pub rows: usize,
    pub septic_stays: Option<usize>,
    /// Stays with a `SepsisLabel` on every row. The figures that need labels are given only
    /// when every stay has them; the text report says when some do and some do not.
    pub labelled_stays: usize,
    #[serde(serialize_with = "round")]
    pub patient_days: f64,
    pub threads: usize,
    #[serde(serialize_with = "round")]
    pub seconds: f64,
    #[serde(serialize_with = "round")]
    pub rows_per_second: f64,
    pub skipped: Vec<Skipped>,
    /// Observations rejected, by code (never scored).
    pub rejected: Vec<(String, usize)>,
    /// The columns Vigil reads that some stays' files lack (psv), with how many stays lack
    /// each, in [`crate::psv::read_columns`]'s order: their rows are scored without them.
    pub absent_columns: Vec<(String, usize)>,
    pub rules: Vec<RuleReport>,
    /// Every deterioration and sepsis rule together.
    pub overall: RuleReport,
    /// How the sepsis model's risk ranks the rows (labelled psv replays with `sepsis.model`
    /// on; `None` otherwise).
    pub screen: Option<ScreenReport>,
    /// Lead times of the profile, for the plot (not in the JSON).
    #[serde(skip)]
    pub lead_hours: Vec<f64>,
}

/// Figures in the JSON report keep 6 significant digits: a sum of hours over 24 is
/// `137.5`, not `137.5000000000048` (binary floating point noise nobody should read).
fn significant(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let digits = 6 - 1 - v.abs().log10().floor() as i32;
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}

pub(crate) fn round<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(significant(*v))
}

fn round_opt<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_some(&significant(*v)),
        None => s.serialize_none(),
    }
}

/// Hours before the first labelled row that count as an early warning (inclusive).
const EARLY_MIN_H: i64 = 1;
const EARLY_MAX_H: i64 = 6;

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

impl Report {
    pub fn build(
        source: &str,
        settings: &vigil_engine::Settings,
        outcomes: &[Outcome],
        skipped: Vec<Skipped>,
        mut rejected: Vec<(String, usize)>,
        threads: usize,
        seconds: f64,
    ) -> Report {
        let rows: usize = outcomes.iter().map(|o| o.rows).sum();
        // A sum of no floats is -0.0, which prints as `-0.0 patient-days`; adding 0.0 makes it 0.
        let hours: f64 = outcomes.iter().map(|o| o.hours).sum::<f64>() + 0.0;
        let patient_days = hours / 24.0;
        let labelled = !outcomes.is_empty() && outcomes.iter().all(|o| o.labels.is_some());
        let septic = |o: &Outcome| o.labels.as_deref().and_then(|l| l.iter().position(|&x| x));
        let septic_stays = outcomes.iter().filter(|o| septic(o).is_some()).count();
        let rejected_rows: usize = outcomes.iter().map(|o| o.rejected).sum();
        if rejected_rows > 0 {
            rejected.push(("VITAL_OUT_OF_RANGE".into(), rejected_rows));
        }
        let mut lead_hours = Vec::new();
        let mut reports: Vec<RuleReport> = (0..SLOTS)
            .map(|slot| {
                let bit = 1u16 << slot;
                let alerted = outcomes
                    .iter()
                    .filter(|o| o.first_row[slot].is_some())
                    .count();
                let alerts: u64 = outcomes.iter().map(|o| u64::from(o.alerts[slot])).sum();
                let mut detected = 0;
                let mut quiet = 0;
                let mut leads = Vec::new();
                let mut early = 0;
                let mut utility = Utility::default();
                let (mut false_alerts, mut healthy_hours) = (0u64, 0.0);
                for o in outcomes {
                    let Some(labels) = o.labels.as_deref() else {
                        continue;
                    };
                    let predictions: Vec<bool> = o.masks.iter().map(|m| m & bit != 0).collect();
                    utility.add(labels, &predictions);
                    match septic(o) {
                        Some(first) => {
                            let last = t_sepsis(labels).map_or(0, |t| t + 3).max(0) as usize;
                            if predictions.iter().take(last + 1).any(|&p| p) {
                                detected += 1;
                            }
                            if let Some(row) = o.first_row[slot].filter(|r| *r <= first) {
                                let lead = o.row_hours[first] - o.row_hours[row];
                                leads.push(lead as f64);
                                early += usize::from((EARLY_MIN_H..=EARLY_MAX_H).contains(&lead));
                            }
                        }
                        None => {
                            quiet += usize::from(o.first_row[slot].is_none());
                            false_alerts += u64::from(o.alerts[slot]);
                            healthy_hours += o.hours;
                        }
                    }
                }
                if slot == PROFILE {
                    lead_hours = leads.clone();
                }
                let healthy = outcomes.len() - septic_stays;
                let enabled = slot == PROFILE || settings.rule(RULES[slot]).enabled;
                let labelled = labelled && enabled;
                RuleReport {
                    enabled,
                    rule: if slot == PROFILE {
                        "profile".into()
                    } else {
                        RULES[slot].name().into()
                    },
                    patients_alerted: alerted,
                    alerts,
                    sensitivity: if labelled {
                        ratio(detected, septic_stays)
                    } else {
                        None
                    },
                    specificity: if labelled {
                        ratio(quiet, healthy)
                    } else {
                        None
                    },
                    median_lead_hours: median(&mut leads),
                    early_warning: if labelled {
                        ratio(early, septic_stays)
                    } else {
                        None
                    },
                    alerts_per_patient_day: (patient_days > 0.0)
                        .then(|| alerts as f64 / patient_days),
                    false_alerts_per_patient_day: (labelled && healthy_hours > 0.0)
                        .then(|| false_alerts as f64 / (healthy_hours / 24.0)),
                    utility: if labelled { utility.normalized() } else { None },
                }
            })
            .collect();
        let overall = reports.pop().unwrap_or_else(|| RuleReport {
            rule: "profile".into(),
            enabled: true,
            patients_alerted: 0,
            alerts: 0,
            sensitivity: None,
            specificity: None,
            median_lead_hours: None,
            early_warning: None,
            alerts_per_patient_day: None,
            false_alerts_per_patient_day: None,
            utility: None,
        });
        let screen = (labelled && settings.model_rule.enabled)
            .then(|| {
                let mut scored: Vec<(f64, bool)> = outcomes
                    .iter()
                    .filter_map(|o| o.labels.as_deref().map(|l| (o, l)))
                    .flat_map(|(o, l)| o.risks.iter().copied().zip(l.iter().copied()))
                    .collect();
                ranking(&mut scored).map(|r| (r, calibration(&scored)))
            })
            .flatten()
            .map(|((auroc, auprc), calibration)| ScreenReport {
                model: format!("{} {}", settings.model.name, settings.model.version),
                auroc,
                auprc,
                calibration,
                thresholds: crate::thresholds::thresholds(settings, outcomes, threads),
            });
        let absent_columns = crate::psv::read_columns()
            .enumerate()
            .filter_map(|(i, column)| {
                let lacking = outcomes
                    .iter()
                    .filter(|o| o.absent_columns & 1 << i != 0)
                    .count();
                (lacking > 0).then(|| (column.to_string(), lacking))
            })
            .collect();
        Report {
            screen,
            absent_columns,
            source: source.into(),
            profile: settings.profile.clone(),
            stays: outcomes.len(),
            rows,
            septic_stays: labelled.then_some(septic_stays),
            labelled_stays: outcomes.iter().filter(|o| o.labels.is_some()).count(),
            patient_days,
            threads,
            seconds,
            rows_per_second: if seconds > 0.0 {
                rows as f64 / seconds
            } else {
                0.0
            },
            skipped,
            rejected,
            rules: reports,
            overall,
            lead_hours,
        }
    }

    /// The report for people: a header, a table, the skipped files.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let unit = if self.source == "psv" {
            "rows"
        } else {
            "events"
        };
        let _ = writeln!(
            s,
            "vigil replay ({}): {} stays, {} {unit}, {:.1} patient-days, profile {}",
            self.source, self.stays, self.rows, self.patient_days, self.profile
        );
        let _ = writeln!(
            s,
            "{:.2} s on {} threads ({:.0} {unit}/s)",
            self.seconds, self.threads, self.rows_per_second
        );
        if let Some(n) = self.septic_stays {
            let _ = writeln!(s, "septic stays (SepsisLabel): {n}");
        } else if self.labelled_stays > 0 {
            let _ = writeln!(
                s,
                "labels: {} of {} stays have a SepsisLabel on every row; sensitivity, \
                 specificity, lead, early warning, false alerts and utility need all of them",
                self.labelled_stays, self.stays
            );
        }
        if let Some(m) = &self.screen {
            let _ = writeln!(
                s,
                "sepsis model {}: row-level AUROC {:.3}, AUPRC {:.3}",
                m.model, m.auroc, m.auprc
            );
            let bins: Vec<String> = m
                .calibration
                .iter()
                .map(|b| format!("{:.3}/{:.3}", b.mean_risk, b.observed))
                .collect();
            let _ = writeln!(
                s,
                "calibration, tenths of the rows by risk (mean risk/share septic): {}",
                bins.join(" ")
            );
            if let Some(t) = &m.thresholds {
                let _ = writeln!(
                    s,
                    "thresholds: the profile's open {} / clear {} give utility {:.3} on these \
                     stays; the best of the grid here, open {} / clear {}, {:.3} (chosen on \
                     these stays: it flatters them)",
                    t.open, t.clear, t.utility, t.best_open, t.best_clear, t.best_utility
                );
            }
        }
        let _ = writeln!(
            s,
            "\n{:<22} {:>8} {:>8} {:>7} {:>7} {:>9} {:>7} {:>10} {:>9} {:>8}",
            "rule",
            "alerted",
            "alerts",
            "sens",
            "spec",
            "lead(h)",
            "early",
            "alerts/pd",
            "false/pd",
            "utility"
        );
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}%", v * 100.0));
        let num = |v: Option<f64>, d: usize| v.map_or("-".to_string(), |v| format!("{v:.d$}"));
        for r in self.rules.iter().chain(std::iter::once(&self.overall)) {
            if !r.enabled {
                let _ = writeln!(s, "{:<22} {:>8}", r.rule, "off");
                continue;
            }
            let _ = writeln!(
                s,
                "{:<22} {:>8} {:>8} {:>7} {:>7} {:>9} {:>7} {:>10} {:>9} {:>8}",
                r.rule,
                r.patients_alerted,
                r.alerts,
                pct(r.sensitivity),
                pct(r.specificity),
                num(r.median_lead_hours, 1),
                pct(r.early_warning),
                num(r.alerts_per_patient_day, 2),
                num(r.false_alerts_per_patient_day, 2),
                num(r.utility, 3)
            );
        }
        for (code, n) in &self.rejected {
            let _ = writeln!(s, "\nrejected {code}: {n}");
        }
        if !self.absent_columns.is_empty() {
            let _ = writeln!(
                s,
                "\ncolumns Vigil reads that stays lack (scored as not measured):"
            );
            for (column, n) in &self.absent_columns {
                let _ = writeln!(s, "  {column}: {n} of {} stays", self.stays);
            }
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(s, "\nskipped {} file(s):", self.skipped.len());
            for k in &self.skipped {
                let _ = writeln!(s, "  {} line {}: {}", k.file, k.line, k.error);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    /// A replay where some stays lack a label on some row says so, instead of leaving every
    /// figure that needs labels out without a word.
    #[test]
    fn stays_without_every_label_are_named() {
        let settings = vigil_engine::Settings::default();
        let stay = |labels: Option<Vec<bool>>| crate::Outcome {
            rows: 2,
            hours: 1.0,
            labels,
            ..crate::Outcome::default()
        };
        let some = [stay(Some(vec![false, true])), stay(None)];
        let r = super::Report::build("psv", &settings, &some, Vec::new(), Vec::new(), 2, 0.0);
        assert_eq!((r.septic_stays, r.labelled_stays), (None, 1));
        assert!(
            r.to_text().contains("labels: 1 of 2 stays"),
            "{}",
            r.to_text()
        );
        let all = [
            stay(Some(vec![false, true])),
            stay(Some(vec![false, false])),
        ];
        let r = super::Report::build("psv", &settings, &all, Vec::new(), Vec::new(), 2, 0.0);
        assert_eq!((r.septic_stays, r.labelled_stays), (Some(1), 2));
        assert!(!r.to_text().contains("labels:"), "{}", r.to_text());
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["labelledStays"], 2);
    }

    /// A replay with nothing in it reports zeros, not `-0.0` patient-days.
    #[test]
    fn an_empty_replay_reports_zero_patient_days() {
        let settings = vigil_engine::Settings::default();
        let r = super::Report::build("events", &settings, &[], Vec::new(), Vec::new(), 2, 0.0);
        assert_eq!(r.patient_days.to_bits(), 0.0f64.to_bits());
        assert!(
            r.to_text().contains("0 stays, 0 events, 0.0 patient-days"),
            "{}",
            r.to_text()
        );
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["patientDays"].to_string(), "0.0");
    }

    #[test]
    fn ranking_counts_ordered_pairs_and_steps_precision_over_recall() {
        // The positive at 0.9 outranks both negatives, the one at 0.7 one of them: 3 of 4.
        let mut v = vec![(0.9, true), (0.8, false), (0.7, true), (0.1, false)];
        let (auroc, auprc) = super::ranking(&mut v).expect("both classes");
        assert!((auroc - 0.75).abs() < 1e-12);
        // Precision 1 at recall 1/2, then 2/3 at recall 1 (as scikit-learn's average precision).
        assert!((auprc - (0.5 + 0.5 * 2.0 / 3.0)).abs() < 1e-12);
        // Ties count half, and a tie is one threshold.
        let mut tied = vec![(0.5, true), (0.5, false), (0.5, false), (0.5, true)];
        assert_eq!(super::ranking(&mut tied), Some((0.5, 0.5)));
        let mut perfect = vec![(0.2, false), (0.9, true)];
        assert_eq!(super::ranking(&mut perfect), Some((1.0, 1.0)));
        assert_eq!(super::ranking(&mut [(0.3, true)]), None);
    }

    #[test]
    fn calibration_bins_tenths_of_the_rows_lowest_first_keeping_ties_together() {
        // 20 rows, risks 0.00..0.19 highest first; the top two rows septic.
        let mut v: Vec<(f64, bool)> = (0..20).map(|i| (f64::from(i) / 100.0, i >= 18)).collect();
        super::ranking(&mut v).expect("both classes");
        let bins = super::calibration(&v);
        assert_eq!(bins.len(), 10);
        assert!(bins.iter().all(|b| b.rows == 2));
        assert!((bins[0].mean_risk - 0.005).abs() < 1e-12, "lowest first");
        assert!((bins[9].mean_risk - 0.185).abs() < 1e-12);
        assert_eq!(bins[9].observed, 1.0);
        assert!(bins[..9].iter().all(|b| b.observed == 0.0));
        // One risk for every row: a single bin, never a tie split across two.
        let mut same: Vec<(f64, bool)> = (0..20).map(|i| (0.5, i == 0)).collect();
        super::ranking(&mut same).expect("both classes");
        let bins = super::calibration(&same);
        assert_eq!(bins.len(), 1);
        assert_eq!((bins[0].rows, bins[0].observed), (20, 0.05));
        assert!(super::calibration(&[]).is_empty());
        assert_eq!(super::ranking(&mut []), None);
    }

    use super::*;

    #[test]
    fn json_figures_carry_no_floating_point_noise() {
        assert_eq!(significant(137.500_000_000_004_8), 137.5);
        assert_eq!(significant(0.123_456_789), 0.123_457);
        assert_eq!(significant(1_234_567.8), 1_234_570.0);
        assert_eq!(significant(0.0), 0.0);
        assert_eq!(significant(-2.000_000_000_01), -2.0);
        let json = serde_json::json!({"v": significant(3.0 * 0.1)}).to_string();
        assert_eq!(json, r#"{"v":0.3}"#);
    }

    /// A stay whose rows are all `label` with `alerts` profile alerts over `hours`.
    fn stay(labels: &[bool], alerts: u32, hours: f64) -> Outcome {
        let mut o = Outcome {
            rows: labels.len(),
            hours,
            labels: Some(labels.to_vec()),
            row_hours: (1..=labels.len() as i64).collect(),
            masks: vec![0; labels.len()],
            ..Outcome::default()
        };
        o.alerts[PROFILE] = alerts;
        if alerts > 0 {
            o.first_row[PROFILE] = Some(0);
            o.masks = vec![1 << PROFILE; labels.len()];
        }
        o
    }

    #[test]
    fn false_alerts_count_only_stays_never_labelled() {
        let outcomes = [
            stay(&[false, true], 5, 48.0),
            stay(&[false, false], 2, 12.0),
            stay(&[false, false], 0, 12.0),
        ];
        let settings = vigil_engine::Settings::default();
        let r = Report::build("psv", &settings, &outcomes, vec![], vec![], 1, 1.0);
        // 2 alerts over the 24 h of the two stays never labelled.
        assert_eq!(r.overall.false_alerts_per_patient_day, Some(2.0));
        // 7 alerts over 72 h.
        assert_eq!(r.overall.alerts_per_patient_day, Some(7.0 / 3.0));
        assert_eq!(r.overall.specificity, Some(0.5));
        // The septic stay's alert came 1 h before its label: an early warning.
        assert_eq!(r.overall.early_warning, Some(1.0));
        // Alerted from 7 h before the label: not early; 6 h before: early.
        let late_label = |alert_row: usize| {
            let mut labels = vec![false; 8];
            labels[7] = true;
            let mut o = stay(&labels, 1, 8.0);
            o.first_row[PROFILE] = Some(alert_row);
            o
        };
        for (row, early) in [(0, 0.0), (1, 1.0), (6, 1.0), (7, 0.0)] {
            let r = Report::build("psv", &settings, &[late_label(row)], vec![], vec![], 1, 1.0);
            assert_eq!(r.overall.early_warning, Some(early), "alert at row {row}");
        }
        let unlabelled = [Outcome {
            labels: None,
            ..stay(&[false], 1, 24.0)
        }];
        let r = Report::build("events", &settings, &unlabelled, vec![], vec![], 1, 1.0);
        assert_eq!(r.overall.false_alerts_per_patient_day, None);
    }
}
