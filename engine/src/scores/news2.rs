//! NEWS2 (Royal College of Physicians, 2017) exactly as `shared/scoring.md`: rounding, both SpO2
//! scales, freshness and partial scores. Band functions take already-rounded integers (tenths of a
//! degree for temperature) so every band edge is an exact integer comparison.

use serde::{Deserialize, Serialize};

use crate::observation::{Consciousness, Spo2Scale, Vitals};
use crate::time::Timestamp;

/// The seven NEWS2 parameters, in the order of the contract's `points` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Param {
    Rr,
    Spo2,
    Air,
    Sbp,
    Hr,
    Consciousness,
    Temp,
}

impl Param {
    pub const ALL: [Param; 7] = [
        Param::Rr,
        Param::Spo2,
        Param::Air,
        Param::Sbp,
        Param::Hr,
        Param::Consciousness,
        Param::Temp,
    ];

    /// Wire name (`rr`, `spo2`, `air`, ...).
    pub fn name(self) -> &'static str {
        Input::from(self).name()
    }

    /// How a clinician reads it in a message.
    pub fn label(self) -> &'static str {
        Input::from(self).label()
    }
}

/// Every input an explanation can name: the NEWS2 parameters, the other qSOFA/SIRS inputs, the
/// labs the rules score, and derived figures (`news2` for the trend, `silence` for signal loss).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Input {
    Rr,
    Spo2,
    Air,
    Sbp,
    Hr,
    Consciousness,
    Temp,
    Gcs,
    Paco2,
    Wbc,
    Bands,
    Lactate,
    News2,
    /// Minutes without any observation (signal loss).
    Silence,
    /// A sepsis model's feature (`lactate.latest`): its component carries a contribution, not
    /// points (docs/sepsis-screen.md).
    Feature(&'static str),
}

impl Serialize for Input {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<str>::deserialize(d)?;
        Input::ALL
            .into_iter()
            .find(|i| i.name() == name)
            .or_else(|| crate::patient::features::intern(&name).map(Input::Feature))
            .ok_or_else(|| serde::de::Error::custom(format!("unknown input `{name}`")))
    }
}

impl Input {
    /// How a clinician reads it in a message.
    pub fn label(self) -> &'static str {
        match self {
            Input::Rr => "RR",
            Input::Spo2 => "SpO2",
            Input::Air => "O2",
            Input::Sbp => "SBP",
            Input::Hr => "HR",
            Input::Consciousness => "ACVPU",
            Input::Temp => "Temp",
            Input::Gcs => "GCS",
            Input::Paco2 => "PaCO2",
            Input::Wbc => "WBC",
            Input::Bands => "Bands",
            Input::Lactate => "Lactate",
            Input::News2 => "NEWS2",
            Input::Silence => "Silence (min)",
            Input::Feature(name) => name,
        }
    }
}

impl Input {
    pub const ALL: [Input; 14] = [
        Input::Rr,
        Input::Spo2,
        Input::Air,
        Input::Sbp,
        Input::Hr,
        Input::Consciousness,
        Input::Temp,
        Input::Gcs,
        Input::Paco2,
        Input::Wbc,
        Input::Bands,
        Input::Lactate,
        Input::News2,
        Input::Silence,
    ];

    /// Wire name, as serialized (`rr`, `paco2`, `silence`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Input::Rr => "rr",
            Input::Spo2 => "spo2",
            Input::Air => "air",
            Input::Sbp => "sbp",
            Input::Hr => "hr",
            Input::Consciousness => "consciousness",
            Input::Temp => "temp",
            Input::Gcs => "gcs",
            Input::Paco2 => "paco2",
            Input::Wbc => "wbc",
            Input::Bands => "bands",
            Input::Lactate => "lactate",
            Input::News2 => "news2",
            Input::Silence => "silence",
            Input::Feature(name) => name,
        }
    }
}

impl From<Param> for Input {
    fn from(p: Param) -> Self {
        match p {
            Param::Rr => Input::Rr,
            Param::Spo2 => Input::Spo2,
            Param::Air => Input::Air,
            Param::Sbp => Input::Sbp,
            Param::Hr => Input::Hr,
            Param::Consciousness => Input::Consciousness,
            Param::Temp => Input::Temp,
        }
    }
}

/// Rounds half away from zero to a whole number, after snapping binary noise (e.g.
/// `20.499999999` from a float that was meant to be 20.5) at the sixth decimal.
pub fn round_whole(v: f64) -> i64 {
    ((v * 1e6).round() / 1e6).round() as i64
}

/// Rounds to tenths, half away from zero, returned as an integer count of tenths (38.05 -> 381).
pub fn round_tenths(v: f64) -> i64 {
    ((v * 1e7).round() / 1e6).round() as i64
}

/// Respiration rate /min: <=8 3; 9-11 1; 12-20 0; 21-24 2; >=25 3.
pub fn rr_points(rr: i64) -> u8 {
    match rr {
        ..=8 => 3,
        9..=11 => 1,
        12..=20 => 0,
        21..=24 => 2,
        _ => 3,
    }
}

/// SpO2 % on the given scale; on scale 2 the points above 92 depend on supplemental oxygen.
pub fn spo2_points(spo2: i64, scale: Spo2Scale, on_oxygen: bool) -> u8 {
    match scale {
        Spo2Scale::Scale1 => match spo2 {
            ..=91 => 3,
            92..=93 => 2,
            94..=95 => 1,
            _ => 0,
        },
        Spo2Scale::Scale2 => match spo2 {
            ..=83 => 3,
            84..=85 => 2,
            86..=87 => 1,
            88..=92 => 0,
            _ if !on_oxygen => 0,
            93..=94 => 1,
            95..=96 => 2,
            _ => 3,
        },
    }
}

/// Air 0, supplemental oxygen 2.
pub fn air_points(on_oxygen: bool) -> u8 {
    if on_oxygen { 2 } else { 0 }
}

/// Systolic BP mmHg: <=90 3; 91-100 2; 101-110 1; 111-219 0; >=220 3.
pub fn sbp_points(sbp: i64) -> u8 {
    match sbp {
        ..=90 => 3,
        91..=100 => 2,
        101..=110 => 1,
        111..=219 => 0,
        _ => 3,
    }
}

/// Pulse /min: <=40 3; 41-50 1; 51-90 0; 91-110 1; 111-130 2; >=131 3.
pub fn hr_points(hr: i64) -> u8 {
    match hr {
        ..=40 => 3,
        41..=50 => 1,
        51..=90 => 0,
        91..=110 => 1,
        111..=130 => 2,
        _ => 3,
    }
}

/// A 0; new confusion, V, P or U 3.
pub fn consciousness_points(c: Consciousness) -> u8 {
    if c == Consciousness::A { 0 } else { 3 }
}

/// Temperature in tenths of a degree C: <=35.0 3; 35.1-36.0 1; 36.1-38.0 0; 38.1-39.0 1; >=39.1 2.
pub fn temp_points(tenths: i64) -> u8 {
    match tenths {
        ..=350 => 3,
        351..=360 => 1,
        361..=380 => 0,
        381..=390 => 1,
        _ => 2,
    }
}

/// NEWS2 risk band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Low,
    LowMedium,
    Medium,
    High,
}

/// A reading of one parameter with the time it was observed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading<T> {
    pub value: T,
    pub at: Timestamp,
}

/// A scored measurement on the chart: the value as sent, when it was observed, and the value
/// the scores band, rounded as scoring.md rounds it ([`round_whole`]; [`round_tenths`] for the
/// temperature) once, when it was charted, instead of by each score that reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    pub value: f64,
    pub at: Timestamp,
    /// Whole units; tenths of a degree for the temperature.
    pub rounded: i64,
}

/// The rounded values of one reading's scored measurements ([`Measured::rounded`]): what the
/// chart keeps and the patient window's rows store, computed once per reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rounded {
    pub rr: Option<i64>,
    pub spo2: Option<i64>,
    pub sbp: Option<i64>,
    pub hr: Option<i64>,
    /// Tenths of a degree.
    pub temp: Option<i64>,
    pub gcs: Option<i64>,
}

impl Rounded {
    pub fn of(v: &Vitals) -> Rounded {
        Rounded {
            rr: v.rr.map(round_whole),
            spo2: v.spo2.map(round_whole),
            sbp: v.sbp.map(round_whole),
            hr: v.hr.map(round_whole),
            temp: v.temp.map(round_tenths),
            gcs: v.gcs.map(round_whole),
        }
    }
}

/// The latest reading of every parameter NEWS2 needs (and the pressures shown on dashboards).
/// A reading replaces the one before only when it was observed at the same time or later.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chart {
    pub rr: Option<Measured>,
    pub spo2: Option<Measured>,
    pub spo2_scale: Option<Reading<Spo2Scale>>,
    pub on_oxygen: Option<Reading<bool>>,
    pub sbp: Option<Measured>,
    pub dbp: Option<Reading<f64>>,
    pub map: Option<Reading<f64>>,
    pub hr: Option<Measured>,
    pub temp: Option<Measured>,
    pub consciousness: Option<Reading<Consciousness>>,
    pub gcs: Option<Measured>,
}

fn keep_latest<T: Copy>(slot: &mut Option<Reading<T>>, value: Option<T>, at: Timestamp) -> bool {
    if let Some(value) = value
        && slot.is_none_or(|r| r.at <= at)
    {
        *slot = Some(Reading { value, at });
        return true;
    }
    false
}

fn keep_measured(
    slot: &mut Option<Measured>,
    value: Option<f64>,
    rounded: Option<i64>,
    at: Timestamp,
) -> bool {
    if let (Some(value), Some(rounded)) = (value, rounded)
        && slot.is_none_or(|r| r.at <= at)
    {
        *slot = Some(Measured { value, at, rounded });
        return true;
    }
    false
}

impl Chart {
    /// Records every measurement present in `v`, observed at `at`. Returns true when any
    /// parameter's latest reading changed (a reading older than the chart's changes nothing).
    pub fn record(&mut self, v: &Vitals, at: Timestamp) -> bool {
        self.record_rounded(v, &Rounded::of(v), at)
    }

    /// [`Chart::record`] with `v`'s measurements already rounded (`Rounded::of(v)`).
    pub fn record_rounded(&mut self, v: &Vitals, rounded: &Rounded, at: Timestamp) -> bool {
        // The scale travels with the SpO2 reading it qualifies (default scale 1).
        let scale = v
            .spo2
            .map(|_| v.spo2_scale.unwrap_or_default())
            .or(v.spo2_scale);
        let changed = [
            keep_measured(&mut self.rr, v.rr, rounded.rr, at),
            keep_measured(&mut self.spo2, v.spo2, rounded.spo2, at),
            keep_latest(&mut self.spo2_scale, scale, at),
            keep_latest(&mut self.on_oxygen, v.on_oxygen, at),
            keep_measured(&mut self.sbp, v.sbp, rounded.sbp, at),
            keep_latest(&mut self.dbp, v.dbp, at),
            keep_latest(&mut self.map, v.map, at),
            keep_measured(&mut self.hr, v.hr, rounded.hr, at),
            keep_measured(&mut self.temp, v.temp, rounded.temp, at),
            keep_latest(&mut self.consciousness, v.consciousness, at),
            keep_measured(&mut self.gcs, v.gcs, rounded.gcs, at),
        ];
        changed.contains(&true)
    }

    /// The latest value of every measurement, as a `vitals` object for dashboards.
    pub fn latest(&self) -> Vitals {
        Vitals {
            hr: self.hr.map(|r| r.value),
            rr: self.rr.map(|r| r.value),
            spo2: self.spo2.map(|r| r.value),
            spo2_scale: self.spo2_scale.map(|r| r.value),
            on_oxygen: self.on_oxygen.map(|r| r.value),
            temp: self.temp.map(|r| r.value),
            sbp: self.sbp.map(|r| r.value),
            dbp: self.dbp.map(|r| r.value),
            map: self.map.map(|r| r.value),
            consciousness: self.consciousness.map(|r| r.value),
            gcs: self.gcs.map(|r| r.value),
        }
    }
}

/// Freshness limits in milliseconds (scoring.md: vitals 15 min, consciousness 4 h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    pub vitals_ms: i64,
    pub consciousness_ms: i64,
}

impl Default for Freshness {
    fn default() -> Self {
        Self {
            vitals_ms: 15 * 60_000,
            consciousness_ms: 4 * 3_600_000,
        }
    }
}

/// The value a component shows: whole numbers stay whole, temperature keeps one decimal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ComponentValue {
    Whole(i64),
    Decimal(f64),
    Text(&'static str),
}

/// The texts a component can show (oxygen status, ACVPU, a model feature with no value).
const COMPONENT_TEXTS: [&str; 8] = ["air", "oxygen", "A", "C", "V", "P", "U", "missing"];

impl<'de> Deserialize<'de> for ComponentValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire<'a> {
            Whole(i64),
            Decimal(f64),
            #[serde(borrow)]
            Text(std::borrow::Cow<'a, str>),
        }
        Ok(match Wire::deserialize(d)? {
            Wire::Whole(v) => ComponentValue::Whole(v),
            Wire::Decimal(v) => ComponentValue::Decimal(v),
            Wire::Text(t) => ComponentValue::Text(
                COMPONENT_TEXTS
                    .iter()
                    .find(|x| **x == t)
                    .copied()
                    .ok_or_else(|| serde::de::Error::custom(format!("unknown value `{t}`")))?,
            ),
        })
    }
}

impl std::fmt::Display for ComponentValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ComponentValue::Whole(v) => write!(f, "{v}"),
            ComponentValue::Decimal(v) => f.write_str(&decimal(*v)),
            ComponentValue::Text(v) => f.write_str(v),
        }
    }
}

/// A measured value as clinicians write it: at least one decimal (`2.0`, `38.5`), more only
/// when the value has them (`12.35`).
pub fn decimal(v: f64) -> String {
    if ((v * 10.0).round() - v * 10.0).abs() < 1e-9 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// One scored input: its rounded value, points and observation time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub name: Input,
    pub value: ComponentValue,
    pub points: u8,
    pub observed_at: Timestamp,
    /// A model feature's contribution to the risk, in log-odds (additive to the contract;
    /// `points` is 0 for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contribution: Option<f64>,
}

/// A NEWS2 score computed at `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct News2 {
    pub at: Timestamp,
    pub total: u8,
    /// Every fresh parameter, in `Param::ALL` order.
    pub components: Vec<Component>,
    /// Parameters with no fresh reading: they scored 0 and make the score partial.
    pub missing: Vec<Param>,
}

impl News2 {
    /// Scores `chart` at `at`, using each parameter's latest reading within its freshness limit.
    pub fn score(chart: &Chart, at: Timestamp, freshness: Freshness) -> News2 {
        let fresh = |r_at: Timestamp, limit: i64| at.since(r_at) <= limit;
        let vit = freshness.vitals_ms;
        let on_oxygen = chart.on_oxygen.filter(|r| fresh(r.at, vit));
        let mut components = Vec::with_capacity(7);
        let mut missing = Vec::new();
        for param in Param::ALL {
            let component = match param {
                Param::Rr => chart.rr.filter(|r| fresh(r.at, vit)).map(|r| {
                    let v = r.rounded;
                    (ComponentValue::Whole(v), rr_points(v), r.at)
                }),
                Param::Spo2 => chart.spo2.filter(|r| fresh(r.at, vit)).map(|r| {
                    let v = r.rounded;
                    let scale = chart.spo2_scale.map(|s| s.value).unwrap_or_default();
                    // Unknown oxygen status scores as air (the lower points) and `air` is missing.
                    let o2 = on_oxygen.is_some_and(|o| o.value);
                    (ComponentValue::Whole(v), spo2_points(v, scale, o2), r.at)
                }),
                Param::Air => on_oxygen.map(|r| {
                    let text = if r.value { "oxygen" } else { "air" };
                    (ComponentValue::Text(text), air_points(r.value), r.at)
                }),
                Param::Sbp => chart.sbp.filter(|r| fresh(r.at, vit)).map(|r| {
                    let v = r.rounded;
                    (ComponentValue::Whole(v), sbp_points(v), r.at)
                }),
                Param::Hr => chart.hr.filter(|r| fresh(r.at, vit)).map(|r| {
                    let v = r.rounded;
                    (ComponentValue::Whole(v), hr_points(v), r.at)
                }),
                Param::Consciousness => chart
                    .consciousness
                    .filter(|r| fresh(r.at, freshness.consciousness_ms))
                    .map(|r| {
                        let c = r.value;
                        (
                            ComponentValue::Text(c.code()),
                            consciousness_points(c),
                            r.at,
                        )
                    }),
                Param::Temp => chart.temp.filter(|r| fresh(r.at, vit)).map(|r| {
                    let tenths = r.rounded;
                    (
                        ComponentValue::Decimal(tenths as f64 / 10.0),
                        temp_points(tenths),
                        r.at,
                    )
                }),
            };
            match component {
                Some((value, points, observed_at)) => components.push(Component {
                    name: param.into(),
                    value,
                    points,
                    observed_at,
                    contribution: None,
                }),
                None => missing.push(param),
            }
        }
        let total = components.iter().map(|c| c.points).sum();
        News2 {
            at,
            total,
            components,
            missing,
        }
    }

    pub fn partial(&self) -> bool {
        !self.missing.is_empty()
    }

    /// True when any single parameter scores 3.
    pub fn any_three(&self) -> bool {
        self.components.iter().any(|c| c.points == 3)
    }

    pub fn points(&self, param: Param) -> Option<u8> {
        self.components
            .iter()
            .find(|c| c.name == Input::from(param))
            .map(|c| c.points)
    }

    /// The risk band of scoring.md.
    pub fn risk(&self) -> Risk {
        match self.total {
            7.. => Risk::High,
            5..=6 => Risk::Medium,
            _ if self.any_three() => Risk::LowMedium,
            _ => Risk::Low,
        }
    }

    /// `RR 26 (3), SpO2 91 (3), HR 112 (2)`: the scoring parameters, most points first.
    pub fn scoring_summary(&self) -> String {
        let mut scoring: Vec<&Component> =
            self.components.iter().filter(|c| c.points > 0).collect();
        scoring.sort_by_key(|c| std::cmp::Reverse(c.points));
        let parts: Vec<String> = scoring
            .iter()
            .map(|c| format!("{} {} ({})", c.name.label(), c.value, c.points))
            .collect();
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts `f` over inclusive `(from, to, points)` bands, checking both edges of each band.
    fn bands(f: impl Fn(i64) -> u8, table: &[(i64, i64, u8)]) {
        for &(lo, hi, points) in table {
            assert_eq!(f(lo), points, "lower edge {lo}");
            assert_eq!(f(hi), points, "upper edge {hi}");
        }
    }

    #[test]
    fn respiration_rate_band_edges() {
        bands(
            rr_points,
            &[
                (0, 8, 3),
                (9, 11, 1),
                (12, 20, 0),
                (21, 24, 2),
                (25, 200, 3),
            ],
        );
    }

    #[test]
    fn spo2_scale1_band_edges() {
        for o2 in [false, true] {
            bands(
                |v| spo2_points(v, Spo2Scale::Scale1, o2),
                &[(0, 91, 3), (92, 93, 2), (94, 95, 1), (96, 100, 0)],
            );
        }
    }

    #[test]
    fn spo2_scale2_band_edges_on_air() {
        bands(
            |v| spo2_points(v, Spo2Scale::Scale2, false),
            &[
                (0, 83, 3),
                (84, 85, 2),
                (86, 87, 1),
                (88, 92, 0),
                (93, 100, 0),
            ],
        );
    }

    #[test]
    fn spo2_scale2_band_edges_on_oxygen() {
        bands(
            |v| spo2_points(v, Spo2Scale::Scale2, true),
            &[
                (0, 83, 3),
                (84, 85, 2),
                (86, 87, 1),
                (88, 92, 0),
                (93, 94, 1),
                (95, 96, 2),
                (97, 100, 3),
            ],
        );
    }

    #[test]
    fn air_or_oxygen() {
        assert_eq!(air_points(false), 0);
        assert_eq!(air_points(true), 2);
    }

    #[test]
    fn systolic_bp_band_edges() {
        bands(
            sbp_points,
            &[
                (0, 90, 3),
                (91, 100, 2),
                (101, 110, 1),
                (111, 219, 0),
                (220, 300, 3),
            ],
        );
    }

    #[test]
    fn pulse_band_edges() {
        bands(
            hr_points,
            &[
                (0, 40, 3),
                (41, 50, 1),
                (51, 90, 0),
                (91, 110, 1),
                (111, 130, 2),
                (131, 300, 3),
            ],
        );
    }

    #[test]
    fn consciousness_points_acvpu() {
        assert_eq!(consciousness_points(Consciousness::A), 0);
        for c in [
            Consciousness::C,
            Consciousness::V,
            Consciousness::P,
            Consciousness::U,
        ] {
            assert_eq!(consciousness_points(c), 3, "{c:?}");
        }
    }

    #[test]
    fn temperature_band_edges_in_tenths() {
        bands(
            temp_points,
            &[
                (250, 350, 3),
                (351, 360, 1),
                (361, 380, 0),
                (381, 390, 1),
                (391, 450, 2),
            ],
        );
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(round_whole(20.5), 21);
        assert_eq!(round_whole(20.49), 20);
        assert_eq!(round_whole(90.5), 91);
        assert_eq!(round_whole(24.4999), 24);
        // Binary noise around a half is snapped at the sixth decimal first.
        assert_eq!(round_whole(24.49999999999), 25);
        assert_eq!(round_tenths(38.05), 381);
        assert_eq!(round_tenths(38.04), 380);
        assert_eq!(round_tenths(35.05), 351);
        assert_eq!(round_tenths(36.04), 360);
        assert_eq!(round_tenths(39.05), 391);
    }

    #[test]
    fn rounding_moves_values_across_band_edges() {
        // 20.5 rounds to 21 (2 points), 20.4 to 20 (0 points).
        assert_eq!(rr_points(round_whole(20.5)), 2);
        assert_eq!(rr_points(round_whole(20.4)), 0);
        // 38.05 rounds to 38.1 (1 point); 38.04 to 38.0 (0 points).
        assert_eq!(temp_points(round_tenths(38.05)), 1);
        assert_eq!(temp_points(round_tenths(38.04)), 0);
        // 90.5 rounds to 91 (hr 1 point, sbp 2 points).
        assert_eq!(hr_points(round_whole(90.5)), 1);
        assert_eq!(sbp_points(round_whole(90.5)), 2);
    }

    fn t(min: i64) -> Timestamp {
        Timestamp::from_civil(2025, 11, 27, 9, 0, 0).plus_millis(min * 60_000)
    }

    fn full_vitals() -> Vitals {
        Vitals {
            hr: Some(112.0),
            rr: Some(26.0),
            spo2: Some(91.0),
            spo2_scale: Some(Spo2Scale::Scale1),
            on_oxygen: Some(false),
            temp: Some(37.0),
            sbp: Some(120.0),
            consciousness: Some(Consciousness::A),
            ..Vitals::default()
        }
    }

    #[test]
    fn contract_example_scores_eight_and_high() {
        let mut chart = Chart::default();
        chart.record(&full_vitals(), t(14));
        let s = News2::score(&chart, t(14), Freshness::default());
        assert_eq!(s.total, 8);
        assert!(!s.partial());
        assert_eq!(s.risk(), Risk::High);
        assert_eq!(s.scoring_summary(), "RR 26 (3), SpO2 91 (3), HR 112 (2)");
    }

    #[test]
    fn missing_parameters_make_a_partial_score() {
        let mut chart = Chart::default();
        chart.record(
            &Vitals {
                hr: Some(135.0),
                ..Vitals::default()
            },
            t(0),
        );
        let s = News2::score(&chart, t(0), Freshness::default());
        assert_eq!(s.total, 3);
        assert!(s.partial());
        assert_eq!(s.missing.len(), 6);
        assert_eq!(s.risk(), Risk::LowMedium);
    }

    #[test]
    fn freshness_limit_edges() {
        let mut chart = Chart::default();
        chart.record(&full_vitals(), t(0));
        let f = Freshness::default();
        // Exactly 15 min old: still fresh. One millisecond more: missing.
        assert_eq!(News2::score(&chart, t(15), f).total, 8);
        let stale = News2::score(&chart, t(15).plus_millis(1), f);
        assert_eq!(stale.total, 0);
        assert!(stale.missing.contains(&Param::Rr));
        // Consciousness keeps for 4 h.
        assert!(!stale.missing.contains(&Param::Consciousness));
        let later = News2::score(&chart, t(240).plus_millis(1), f);
        assert!(later.missing.contains(&Param::Consciousness));
    }

    /// The chart rounds each measurement once, when it is charted: what every score bands is
    /// the value rounded as scoring.md rounds it, at the band edges and for values no monitor
    /// sends (negative, huge, not finite), and a later reading replaces both.
    #[test]
    fn a_charted_measurement_carries_its_rounding() {
        let values = [
            20.5,
            20.49,
            24.49999999999,
            38.05,
            38.04,
            35.05,
            90.5,
            -0.5,
            -20.5,
            0.0,
            -0.0,
            1e300,
            -1e300,
            4.6e9,
            f64::INFINITY,
            f64::NAN,
        ];
        for (i, v) in values.into_iter().enumerate() {
            let mut chart = Chart::default();
            let reading = Vitals {
                rr: Some(v),
                spo2: Some(v),
                sbp: Some(v),
                hr: Some(v),
                temp: Some(v),
                gcs: Some(v),
                ..Vitals::default()
            };
            chart.record(
                &Vitals {
                    hr: Some(1.0),
                    ..Vitals::default()
                },
                t(0),
            );
            chart.record(&reading, t(1));
            let whole = round_whole(v);
            for m in [chart.rr, chart.spo2, chart.sbp, chart.hr, chart.gcs] {
                let m = m.expect("charted");
                assert_eq!(m.rounded, whole, "value {i}: {v}");
                assert_eq!(m.value.to_bits(), v.to_bits(), "value {i}");
            }
            assert_eq!(chart.temp.map(|m| m.rounded), Some(round_tenths(v)), "{v}");
            assert_eq!(Rounded::of(&reading).temp, Some(round_tenths(v)), "{v}");
        }
        // The band edges reach the score through the charted rounding, and a later reading
        // replaces the rounding with the value.
        let mut chart = Chart::default();
        for (minute, rr, temp, points) in [(0, 20.5, 38.05, (2, 1)), (1, 20.4, 38.04, (0, 0))] {
            let reading = Vitals {
                rr: Some(rr),
                temp: Some(temp),
                ..Vitals::default()
            };
            chart.record(&reading, t(minute));
            let s = News2::score(&chart, t(minute), Freshness::default());
            assert_eq!(
                (s.points(Param::Rr), s.points(Param::Temp)),
                (Some(points.0), Some(points.1))
            );
        }
    }

    #[test]
    fn older_reading_never_replaces_newer() {
        let mut chart = Chart::default();
        chart.record(
            &Vitals {
                hr: Some(80.0),
                ..Vitals::default()
            },
            t(10),
        );
        chart.record(
            &Vitals {
                hr: Some(140.0),
                ..Vitals::default()
            },
            t(5),
        );
        assert_eq!(chart.hr.map(|r| r.value), Some(80.0));
    }

    #[test]
    fn scale2_unknown_oxygen_scores_as_air_and_flags_missing() {
        let mut chart = Chart::default();
        let v = Vitals {
            spo2: Some(97.0),
            spo2_scale: Some(Spo2Scale::Scale2),
            ..Vitals::default()
        };
        chart.record(&v, t(0));
        let s = News2::score(&chart, t(0), Freshness::default());
        assert_eq!(s.points(Param::Spo2), Some(0));
        assert!(s.missing.contains(&Param::Air));
        chart.record(
            &Vitals {
                on_oxygen: Some(true),
                ..Vitals::default()
            },
            t(1),
        );
        let s = News2::score(&chart, t(1), Freshness::default());
        assert_eq!(s.points(Param::Spo2), Some(3));
        assert_eq!(s.points(Param::Air), Some(2));
    }

    #[test]
    fn risk_bands() {
        let mk = |total: u8, three: bool| News2 {
            at: t(0),
            total,
            components: vec![Component {
                name: Input::Hr,
                value: ComponentValue::Whole(0),
                points: if three { 3 } else { 0 },
                observed_at: t(0),
                contribution: None,
            }],
            missing: vec![],
        };
        assert_eq!(mk(4, false).risk(), Risk::Low);
        assert_eq!(mk(3, true).risk(), Risk::LowMedium);
        assert_eq!(mk(4, true).risk(), Risk::LowMedium);
        assert_eq!(mk(5, true).risk(), Risk::Medium);
        assert_eq!(mk(6, false).risk(), Risk::Medium);
        assert_eq!(mk(7, false).risk(), Risk::High);
        assert_eq!(mk(20, false).risk(), Risk::High);
    }
}
