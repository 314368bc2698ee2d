//! qSOFA (Sepsis-3, 2016) and SIRS (1992 consensus) exactly as `shared/scoring.md`, from the
//! patient's chart and latest labs. Values are rounded as for NEWS2 (rates and pressures to
//! whole numbers, temperature to tenths) before the strict or inclusive comparisons.
//!
//! A criterion none of whose inputs has a fresh value is *missing*: it scores 0 and the score
//! is partial. A criterion with one of several inputs fresh is evaluated on what is there (SIRS
//! "RR > 20 or PaCO2 < 32" is met by RR alone); the absent inputs are still listed.

use crate::observation::Consciousness;
use crate::scores::news2::{
    Chart, Component, ComponentValue, Input, Measured, Reading, round_whole,
};
use crate::time::Timestamp;

/// Freshness limits in milliseconds (scoring.md: vitals 15 min, consciousness 4 h, labs 24 h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SepsisFreshness {
    pub vitals_ms: i64,
    pub consciousness_ms: i64,
    pub labs_ms: i64,
    /// Lactate for `sepsis.sirs_lactate` (scoring.md: 6 h).
    pub lactate_ms: i64,
}

impl Default for SepsisFreshness {
    fn default() -> Self {
        Self {
            vitals_ms: 15 * 60_000,
            consciousness_ms: 4 * 3_600_000,
            labs_ms: 24 * 3_600_000,
            lactate_ms: 6 * 3_600_000,
        }
    }
}

/// The inputs of qSOFA and SIRS, in the order `missing` lists them.
pub(crate) const INPUTS: [&str; 8] = [
    "rr",
    "sbp",
    "mentation",
    "temp",
    "hr",
    "paco2",
    "wbc",
    "bands",
];

/// A score out of its criteria, with what could not be evaluated. `Copy` and allocation-free:
/// it is computed on every reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CriteriaScore {
    pub total: u8,
    /// Bit i set: input `INPUTS[i]` had no fresh value.
    missing: u8,
    /// True when at least one criterion had none of its inputs.
    pub partial: bool,
}

impl CriteriaScore {
    const fn new() -> Self {
        Self {
            total: 0,
            missing: 0,
            partial: false,
        }
    }

    /// Positive at >= 2 for both qSOFA and SIRS.
    pub fn positive(&self) -> bool {
        self.total >= 2
    }

    /// Names of the inputs with no fresh value (`rr`, `sbp`, `mentation`, `temp`, `hr`,
    /// `paco2`, `wbc`, `bands`).
    pub fn missing(&self) -> Vec<&'static str> {
        (0..INPUTS.len())
            .filter(|i| self.missing & (1 << i) != 0)
            .map(|i| INPUTS[i])
            .collect()
    }
}

/// Latest lab values by code, as the patient keeps them.
pub trait Labs {
    fn lab(&self, code: &str) -> Option<Reading<f64>>;
}

struct Inputs {
    at: Timestamp,
    f: SepsisFreshness,
}

impl Inputs {
    fn fresh<T: Copy>(&self, r: Option<Reading<T>>, limit: i64) -> Option<T> {
        r.filter(|r| self.at.since(r.at) <= limit).map(|r| r.value)
    }
    /// A scored vital's rounded value, when fresh.
    fn rounded(&self, r: Option<Measured>, limit: i64) -> Option<i64> {
        r.filter(|r| self.at.since(r.at) <= limit)
            .map(|r| r.rounded)
    }
    fn vital(&self, r: Option<Measured>) -> Option<i64> {
        self.rounded(r, self.f.vitals_ms)
    }
}

/// One criterion: each input's verdict (`None` when the input is missing).
fn criterion(score: &mut CriteriaScore, inputs: &[(&'static str, Option<bool>)]) {
    let mut any_present = false;
    let mut met = false;
    for (name, verdict) in inputs {
        match verdict {
            Some(v) => {
                any_present = true;
                met |= *v;
            }
            None => {
                let bit = INPUTS.iter().position(|n| n == name).unwrap_or(0);
                score.missing |= 1 << bit;
            }
        }
    }
    if met {
        score.total += 1;
    }
    if !any_present {
        score.partial = true;
    }
}

/// qSOFA: RR >= 22; systolic BP <= 100; altered mentation (consciousness not A, or GCS < 15).
pub fn qsofa(chart: &Chart, at: Timestamp, f: SepsisFreshness) -> CriteriaScore {
    let i = Inputs { at, f };
    let mut s = CriteriaScore::new();
    criterion(&mut s, &[("rr", i.vital(chart.rr).map(|v| v >= 22))]);
    criterion(&mut s, &[("sbp", i.vital(chart.sbp).map(|v| v <= 100))]);
    let acvpu = i
        .fresh(chart.consciousness, f.consciousness_ms)
        .map(|c| c != Consciousness::A);
    let gcs = i.rounded(chart.gcs, f.consciousness_ms).map(|g| g < 15);
    let mentation = match (acvpu, gcs) {
        (None, None) => None,
        (a, g) => Some(a.unwrap_or(false) || g.unwrap_or(false)),
    };
    criterion(&mut s, &[("mentation", mentation)]);
    s
}

/// SIRS: temperature > 38.0 or < 36.0; HR > 90; RR > 20 or PaCO2 < 32; WBC > 12 or < 4 (10^9/L)
/// or bands > 10 %.
pub fn sirs(chart: &Chart, labs: &impl Labs, at: Timestamp, f: SepsisFreshness) -> CriteriaScore {
    let i = Inputs { at, f };
    let lab = |code| i.fresh(labs.lab(code), f.labs_ms);
    let mut s = CriteriaScore::new();
    let temp = i
        .vital(chart.temp)
        .map(|tenths| !(360..=380).contains(&tenths));
    criterion(&mut s, &[("temp", temp)]);
    criterion(&mut s, &[("hr", i.vital(chart.hr).map(|v| v > 90))]);
    criterion(
        &mut s,
        &[
            ("rr", i.vital(chart.rr).map(|v| v > 20)),
            ("paco2", lab("paco2").map(|v| round_whole(v) < 32)),
        ],
    );
    criterion(
        &mut s,
        &[
            ("wbc", lab("wbc").map(|v| !(4.0..=12.0).contains(&v))),
            ("bands", lab("bands").map(|v| v > 10.0)),
        ],
    );
    s
}

/// One explanation component: the input's shown value, whether it met its criterion (1 point)
/// and when it was observed.
fn component(name: Input, value: ComponentValue, met: bool, at: Timestamp) -> Component {
    Component {
        name,
        value,
        points: u8::from(met),
        observed_at: at,
        contribution: None,
    }
}

fn whole(r: Measured) -> ComponentValue {
    ComponentValue::Whole(r.rounded)
}

/// Every fresh qSOFA input with its value and point, for explanations.
pub fn qsofa_components(chart: &Chart, at: Timestamp, f: SepsisFreshness) -> Vec<Component> {
    let fresh = |r: &Measured, limit: i64| at.since(r.at) <= limit;
    let mut out = Vec::with_capacity(4);
    if let Some(r) = chart.rr.filter(|r| fresh(r, f.vitals_ms)) {
        out.push(component(Input::Rr, whole(r), r.rounded >= 22, r.at));
    }
    if let Some(r) = chart.sbp.filter(|r| fresh(r, f.vitals_ms)) {
        out.push(component(Input::Sbp, whole(r), r.rounded <= 100, r.at));
    }
    if let Some(r) = chart
        .consciousness
        .filter(|r| at.since(r.at) <= f.consciousness_ms)
    {
        out.push(component(
            Input::Consciousness,
            ComponentValue::Text(r.value.code()),
            r.value != Consciousness::A,
            r.at,
        ));
    }
    if let Some(r) = chart.gcs.filter(|r| fresh(r, f.consciousness_ms)) {
        out.push(component(Input::Gcs, whole(r), r.rounded < 15, r.at));
    }
    out
}

/// Every fresh SIRS input with its value and point, for explanations.
pub fn sirs_components(
    chart: &Chart,
    labs: &impl Labs,
    at: Timestamp,
    f: SepsisFreshness,
) -> Vec<Component> {
    let vital = |r: Option<Measured>| r.filter(|r| at.since(r.at) <= f.vitals_ms);
    let lab = |code| labs.lab(code).filter(|r| at.since(r.at) <= f.labs_ms);
    let mut out = Vec::with_capacity(6);
    if let Some(r) = vital(chart.temp) {
        let tenths = r.rounded;
        let shown = ComponentValue::Decimal(tenths as f64 / 10.0);
        out.push(component(
            Input::Temp,
            shown,
            !(360..=380).contains(&tenths),
            r.at,
        ));
    }
    if let Some(r) = vital(chart.hr) {
        out.push(component(Input::Hr, whole(r), r.rounded > 90, r.at));
    }
    if let Some(r) = vital(chart.rr) {
        out.push(component(Input::Rr, whole(r), r.rounded > 20, r.at));
    }
    if let Some(r) = lab("paco2") {
        let v = round_whole(r.value);
        out.push(component(
            Input::Paco2,
            ComponentValue::Whole(v),
            v < 32,
            r.at,
        ));
    }
    if let Some(r) = lab("wbc") {
        let met = !(4.0..=12.0).contains(&r.value);
        out.push(component(
            Input::Wbc,
            ComponentValue::Decimal(r.value),
            met,
            r.at,
        ));
    }
    if let Some(r) = lab("bands") {
        out.push(component(
            Input::Bands,
            ComponentValue::Decimal(r.value),
            r.value > 10.0,
            r.at,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::Vitals;

    fn t(min: i64) -> Timestamp {
        Timestamp::from_civil(2025, 11, 27, 9, 0, 0).plus_millis(min * 60_000)
    }

    #[derive(Default)]
    struct LabMap(Vec<(&'static str, f64)>);

    impl Labs for LabMap {
        fn lab(&self, code: &str) -> Option<Reading<f64>> {
            self.0
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, v)| Reading {
                    value: *v,
                    at: t(0),
                })
        }
    }

    fn chart(v: Vitals) -> Chart {
        let mut c = Chart::default();
        c.record(&v, t(0));
        c
    }

    fn q(v: Vitals) -> CriteriaScore {
        qsofa(&chart(v), t(0), SepsisFreshness::default())
    }

    fn s(v: Vitals, labs: &[(&'static str, f64)]) -> CriteriaScore {
        sirs(
            &chart(v),
            &LabMap(labs.to_vec()),
            t(0),
            SepsisFreshness::default(),
        )
    }

    #[test]
    fn qsofa_edges() {
        assert_eq!(
            q(Vitals {
                rr: Some(21.0),
                ..Vitals::default()
            })
            .total,
            0
        );
        assert_eq!(
            q(Vitals {
                rr: Some(22.0),
                ..Vitals::default()
            })
            .total,
            1
        );
        assert_eq!(
            q(Vitals {
                rr: Some(21.5),
                ..Vitals::default()
            })
            .total,
            1,
            "21.5 rounds to 22"
        );
        assert_eq!(
            q(Vitals {
                sbp: Some(101.0),
                ..Vitals::default()
            })
            .total,
            0
        );
        assert_eq!(
            q(Vitals {
                sbp: Some(100.0),
                ..Vitals::default()
            })
            .total,
            1
        );
        assert_eq!(
            q(Vitals {
                gcs: Some(15.0),
                ..Vitals::default()
            })
            .total,
            0
        );
        assert_eq!(
            q(Vitals {
                gcs: Some(14.0),
                ..Vitals::default()
            })
            .total,
            1
        );
        assert_eq!(
            q(Vitals {
                consciousness: Some(Consciousness::A),
                ..Vitals::default()
            })
            .total,
            0
        );
        for c in [
            Consciousness::C,
            Consciousness::V,
            Consciousness::P,
            Consciousness::U,
        ] {
            assert_eq!(
                q(Vitals {
                    consciousness: Some(c),
                    gcs: Some(15.0),
                    ..Vitals::default()
                })
                .total,
                1
            );
        }
        let all = q(Vitals {
            rr: Some(22.0),
            sbp: Some(100.0),
            gcs: Some(14.0),
            ..Vitals::default()
        });
        assert_eq!((all.total, all.positive(), all.partial), (3, true, false));
        let two = q(Vitals {
            rr: Some(22.0),
            sbp: Some(100.0),
            consciousness: Some(Consciousness::A),
            ..Vitals::default()
        });
        assert!(
            two.positive()
                && !q(Vitals {
                    rr: Some(22.0),
                    ..Vitals::default()
                })
                .positive()
        );
    }

    #[test]
    fn qsofa_missing_inputs_make_it_partial() {
        let s = q(Vitals {
            rr: Some(30.0),
            ..Vitals::default()
        });
        assert_eq!(s.missing(), vec!["sbp", "mentation"]);
        assert!(s.partial);
    }

    #[test]
    fn sirs_temperature_edges() {
        for (temp, points) in [
            (36.0, 0),
            (35.9, 1),
            (38.0, 0),
            (38.1, 1),
            (38.04, 0),
            (38.05, 1),
            (35.95, 0),
        ] {
            assert_eq!(
                s(
                    Vitals {
                        temp: Some(temp),
                        ..Vitals::default()
                    },
                    &[]
                )
                .total,
                points,
                "temp {temp}"
            );
        }
    }

    #[test]
    fn sirs_heart_rate_and_respiration_edges() {
        assert_eq!(
            s(
                Vitals {
                    hr: Some(90.0),
                    ..Vitals::default()
                },
                &[]
            )
            .total,
            0
        );
        assert_eq!(
            s(
                Vitals {
                    hr: Some(91.0),
                    ..Vitals::default()
                },
                &[]
            )
            .total,
            1
        );
        assert_eq!(
            s(
                Vitals {
                    rr: Some(20.0),
                    ..Vitals::default()
                },
                &[]
            )
            .total,
            0
        );
        assert_eq!(
            s(
                Vitals {
                    rr: Some(21.0),
                    ..Vitals::default()
                },
                &[]
            )
            .total,
            1
        );
        assert_eq!(s(Vitals::default(), &[("paco2", 32.0)]).total, 0);
        assert_eq!(s(Vitals::default(), &[("paco2", 31.0)]).total, 1);
        // RR or PaCO2 is one criterion: both met still count once.
        assert_eq!(
            s(
                Vitals {
                    rr: Some(25.0),
                    ..Vitals::default()
                },
                &[("paco2", 28.0)]
            )
            .total,
            1
        );
    }

    #[test]
    fn sirs_white_cell_and_band_edges() {
        for (wbc, points) in [(12.0, 0), (12.1, 1), (4.0, 0), (3.9, 1)] {
            assert_eq!(
                s(Vitals::default(), &[("wbc", wbc)]).total,
                points,
                "wbc {wbc}"
            );
        }
        assert_eq!(s(Vitals::default(), &[("bands", 10.0)]).total, 0);
        assert_eq!(s(Vitals::default(), &[("bands", 10.5)]).total, 1);
        assert_eq!(
            s(Vitals::default(), &[("wbc", 15.0), ("bands", 20.0)]).total,
            1
        );
    }

    #[test]
    fn sirs_partial_only_when_a_whole_criterion_is_missing() {
        let v = Vitals {
            temp: Some(38.5),
            hr: Some(100.0),
            rr: Some(22.0),
            ..Vitals::default()
        };
        let without_labs = s(v.clone(), &[]);
        assert_eq!(without_labs.total, 3);
        assert!(without_labs.partial, "no WBC and no bands");
        assert_eq!(without_labs.missing(), vec!["paco2", "wbc", "bands"]);
        let with_wbc = s(v, &[("wbc", 13.0)]);
        assert_eq!((with_wbc.total, with_wbc.partial), (4, false));
    }

    #[test]
    fn stale_inputs_are_missing() {
        let c = chart(Vitals {
            rr: Some(30.0),
            hr: Some(120.0),
            ..Vitals::default()
        });
        let f = SepsisFreshness::default();
        assert_eq!(qsofa(&c, t(15), f).total, 1);
        assert_eq!(qsofa(&c, t(15).plus_millis(1), f).total, 0);
        let labs = LabMap(vec![("wbc", 20.0)]);
        assert_eq!(
            sirs(&c, &labs, t(24 * 60), f).missing(),
            vec!["rr", "temp", "hr", "paco2", "bands"]
        );
        assert!(
            sirs(&c, &labs, t(24 * 60).plus_millis(1), f)
                .missing()
                .contains(&"wbc")
        );
    }
}
