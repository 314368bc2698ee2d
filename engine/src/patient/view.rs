//! A patient as `GET /api/patients/{patientId}` shows it (contracts.md section 6): the current
//! scores with their times, and the window's series, each point with its own time.
//!
//! The series are what the window holds (window.rs): one point per minute with data over the
//! horizon. A vital's point is the minute's latest sample, at that sample's time, rounded as the
//! scores round it; the NEWS2 point is the lowest NEWS2 scored in that minute (what the trend
//! rule compares against). Labs are every result held per code, by collection time.

use serde::Serialize;

use crate::observation::Vitals;
use crate::patient::Patient;
use crate::patient::window::Field;
use crate::time::Timestamp;

/// One value at one time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point<T> {
    pub at: Timestamp,
    pub value: T,
}

/// The latest NEWS2.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct News2Now {
    pub total: u8,
    pub partial: bool,
    pub single3: bool,
    pub at: Timestamp,
}

/// The current scores, each with the time it was scored at; `None` until first scored.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scores {
    pub news2: Option<News2Now>,
    pub qsofa: Option<Point<u8>>,
    pub sirs: Option<Point<u8>>,
    /// The sepsis model's risk (0..1), rounded to four decimals.
    pub sepsis_risk: Option<Point<f64>>,
}

/// One lab code's results held, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabSeries {
    pub code: String,
    pub results: Vec<Point<f64>>,
}

/// The window's series, oldest first. Temperatures in degrees C (tenths), consciousness as
/// its AVPU letter (`C` new confusion), oxygen as whether it was given.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Series {
    pub news2: Vec<Point<u8>>,
    pub hr: Vec<Point<i16>>,
    pub rr: Vec<Point<i16>>,
    pub spo2: Vec<Point<i16>>,
    pub sbp: Vec<Point<i16>>,
    pub temp: Vec<Point<f64>>,
    pub gcs: Vec<Point<i16>>,
    pub consciousness: Vec<Point<&'static str>>,
    pub on_oxygen: Vec<Point<bool>>,
}

/// What `GET /api/patients/{patientId}` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PatientView {
    pub patient_id: String,
    pub unit_id: String,
    /// The bed the newest vitals named (`null` when no monitor names one).
    pub bed_id: Option<String>,
    /// The newest event time the window holds.
    pub newest_at: Option<Timestamp>,
    /// How far back the series reach from the newest event (the window's horizon).
    pub horizon_minutes: i64,
    pub scores: Scores,
    /// The latest reading of every measurement (the chart the scores read).
    pub vitals: Vitals,
    pub series: Series,
    pub labs: Vec<LabSeries>,
}

/// Four decimals: 0.0312 is 3.12 %, and no float noise reaches a client.
pub fn round_risk(r: f64) -> f64 {
    (r * 10_000.0).round() / 10_000.0
}

const AVPU: [&str; 5] = ["A", "C", "V", "P", "U"];

impl Patient {
    /// This patient as `GET /api/patients/{patientId}` shows it; `horizon_ms` is the window's
    /// horizon under the patient's settings.
    pub fn view(&self, horizon_ms: i64) -> PatientView {
        let w = &self.window;
        let whole = |field: Field| -> Vec<Point<i16>> {
            w.samples(field, i64::MIN, i64::MAX)
                .map(|(value, at)| Point { at, value })
                .collect()
        };
        let series = Series {
            news2: w
                .news2_series()
                .map(|(value, at)| Point { at, value })
                .collect(),
            hr: whole(Field::Hr),
            rr: whole(Field::Rr),
            spo2: whole(Field::Spo2),
            sbp: whole(Field::Sbp),
            temp: w
                .samples(Field::Temp, i64::MIN, i64::MAX)
                .map(|(tenths, at)| Point {
                    at,
                    value: f64::from(tenths) / 10.0,
                })
                .collect(),
            gcs: whole(Field::Gcs),
            consciousness: w
                .samples(Field::Consciousness, i64::MIN, i64::MAX)
                .map(|(code, at)| Point {
                    at,
                    value: AVPU.get(code as usize).copied().unwrap_or("A"),
                })
                .collect(),
            on_oxygen: w
                .samples(Field::Oxygen, i64::MIN, i64::MAX)
                .map(|(code, at)| Point {
                    at,
                    value: code == 1,
                })
                .collect(),
        };
        let labs = w
            .lab_codes()
            .map(|code| LabSeries {
                code: code.to_string(),
                results: w
                    .lab_history(code)
                    .map(|r| Point {
                        at: r.at,
                        value: r.value,
                    })
                    .collect(),
            })
            .collect();
        PatientView {
            patient_id: self.patient_id.clone(),
            unit_id: self.unit_id.clone(),
            bed_id: self.bed_id.clone(),
            newest_at: w.newest(),
            horizon_minutes: horizon_ms.div_euclid(60_000),
            scores: Scores {
                news2: self.last_score.map(|s| News2Now {
                    total: s.total,
                    partial: s.partial,
                    single3: s.single3,
                    at: s.at,
                }),
                qsofa: self.last_qsofa.map(|(q, at)| Point { at, value: q.total }),
                sirs: self.last_sirs.map(|(s, at)| Point { at, value: s.total }),
                sepsis_risk: self.last_risk.map(|(r, at)| Point {
                    at,
                    value: round_risk(r),
                }),
            },
            vitals: w.chart.latest(),
            series,
            labs,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::observation::{Consciousness, LabResult};
    use crate::settings::Settings;

    const T0: i64 = 1_764_230_400_000; // 2025-11-27T08:00:00Z

    fn vitals(hr: f64, rr: f64, temp: f64) -> Vitals {
        Vitals {
            hr: Some(hr),
            rr: Some(rr),
            spo2: Some(96.0),
            on_oxygen: Some(false),
            temp: Some(temp),
            sbp: Some(120.0),
            consciousness: Some(Consciousness::A),
            ..Vitals::default()
        }
    }

    fn observe(p: &mut Patient, after_ms: i64, v: &Vitals, s: &Settings) {
        let at = Timestamp::from_millis(T0 + after_ms);
        p.observe("icu-3", v, at, at, s);
    }

    fn since_t0<T: Copy>(points: &[Point<T>]) -> Vec<(i64, T)> {
        points
            .iter()
            .map(|p| (p.at.millis() - T0, p.value))
            .collect()
    }

    #[test]
    fn the_view_holds_every_minute_with_its_own_times_and_the_latest_scores() {
        let s = Settings::default();
        let mut p = Patient::new("clinic-abc", "patient-1", "icu-3");
        // Two readings in the first minute (the later one shows), one two minutes on.
        observe(&mut p, 5_000, &vitals(80.0, 14.0, 37.04), &s);
        observe(&mut p, 40_000, &vitals(131.0, 25.0, 38.96), &s);
        observe(&mut p, 150_000, &vitals(90.0, 16.0, 37.0), &s);
        let lab = LabResult {
            code: "lactate".into(),
            value: 2.6,
            unit: Some("mmol/L".into()),
        };
        let now = Timestamp::from_millis(T0 + 150_000);
        p.record_lab("icu-3", &lab, Timestamp::from_millis(T0 + 100_000), now, &s);
        let v = p.view(s.window.horizon_ms);
        assert_eq!(
            (v.patient_id.as_str(), v.unit_id.as_str()),
            ("patient-1", "icu-3")
        );
        assert_eq!(v.horizon_minutes, 360);
        assert_eq!(since_t0(&v.series.hr), [(40_000, 131), (150_000, 90)]);
        assert_eq!(since_t0(&v.series.rr), [(40_000, 25), (150_000, 16)]);
        assert_eq!(since_t0(&v.series.temp), [(40_000, 39.0), (150_000, 37.0)]);
        assert_eq!(
            since_t0(&v.series.consciousness),
            [(40_000, "A"), (150_000, "A")]
        );
        assert_eq!(
            since_t0(&v.series.on_oxygen),
            [(40_000, false), (150_000, false)]
        );
        // NEWS2 per minute is the lowest scored in it: the first reading's 0, not the
        // second's 3 + 3 + 1 + 2 (RR 25, HR 131, temperature 39.0: 9).
        assert_eq!(since_t0(&v.series.news2), [(5_000, 0), (150_000, 0)]);
        let news2 = v.scores.news2.unwrap();
        assert_eq!((news2.total, news2.at.millis() - T0), (0, 150_000));
        assert!(!news2.single3 && !news2.partial);
        assert_eq!(
            v.scores.qsofa.map(|q| (q.value, q.at.millis() - T0)),
            Some((0, 150_000))
        );
        assert_eq!(v.newest_at.map(|t| t.millis() - T0), Some(150_000));
        assert_eq!(v.labs.len(), 1);
        assert_eq!(v.labs[0].code, "lactate");
        assert_eq!(since_t0(&v.labs[0].results), [(100_000, 2.6)]);
        assert_eq!(v.vitals.hr, Some(90.0));
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["series"]["onOxygen"][0]["value"], false);
        assert_eq!(json["scores"]["news2"]["single3"], false);
        assert_eq!(json["series"]["hr"][0]["at"], "2025-11-27T08:00:40Z");
        assert_eq!(json["patientId"], "patient-1");
    }

    #[test]
    fn single3_marks_a_score_with_one_parameter_at_3() {
        let s = Settings::default();
        let mut p = Patient::new("clinic-abc", "patient-1", "icu-3");
        // RR 25 scores 3 on its own, everything else 0: NEWS2 3 with the single-3 mark.
        observe(&mut p, 0, &vitals(80.0, 25.0, 37.0), &s);
        let now = p.view(s.window.horizon_ms).scores.news2.unwrap();
        assert_eq!((now.total, now.single3), (3, true));
        // RR 24 scores 2: no parameter at 3.
        observe(&mut p, 60_000, &vitals(80.0, 24.0, 37.0), &s);
        let now = p.view(s.window.horizon_ms).scores.news2.unwrap();
        assert_eq!((now.total, now.single3), (2, false));
    }

    #[test]
    fn a_patient_never_scored_has_no_scores_and_empty_series() {
        let p = Patient::new("clinic-abc", "patient-1", "icu-3");
        let v = p.view(3_600_000);
        assert_eq!(v.horizon_minutes, 60);
        assert!(v.scores.news2.is_none() && v.scores.sepsis_risk.is_none());
        assert!(v.series.news2.is_empty() && v.series.hr.is_empty() && v.labs.is_empty());
    }

    #[test]
    fn risks_are_rounded_to_four_decimals() {
        assert_eq!(round_risk(0.031_249_999), 0.0312);
        assert_eq!(round_risk(0.031_25), 0.0313);
        assert_eq!(round_risk(0.0), 0.0);
        assert_eq!(round_risk(1.0), 1.0);
    }
}
