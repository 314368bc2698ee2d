//! The sepsis model: a glass-box additive model (an Explainable Boosting Machine, interpretml)
//! evaluated natively. Its risk is the logistic of an intercept plus one looked-up score per
//! term: a feature's contribution curve, or a table over a pair of features. Every term's
//! contribution is exact and shown to the clinician (docs/sepsis-screen.md).
//!
//! A model file is two lines: `vigil-model 1 sha256=<hex>`, then one line of JSON whose bytes
//! hash to `<hex>`. The JSON names the model and its version, what it was trained on, its
//! features (see [`crate::patient::features`]), the intercept, the open and clear thresholds
//! chosen out of fold, the terms (per feature of the term its cut points; the scores, row-major,
//! index 0 for missing, then one per bin, then one for unseen), and `checks`: rows of feature
//! values with the sum the trainer computed for them, which loading repeats. A file that fails
//! any of this is refused whole.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::observation::Admission;
use crate::patient::features::{Carry, Feature, Plan, Value};
use crate::patient::window::Window;
use crate::time::Timestamp;

/// The first line's start.
const HEADER: &str = "vigil-model 1 sha256=";
/// How far a check's sum may stray: the file keeps scores to 6 decimals.
const CHECK_TOLERANCE: f64 = 1e-3;

/// The model shipped in the repository, built into the binary (`training/sepsis/README.md`
/// says how it was made).
pub const BUILT_IN: &str = include_str!("../../models/sepsis.vmodel");

/// Why a model file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ModelError(pub String);

fn refuse(why: impl Into<String>) -> ModelError {
    ModelError(why.into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct File {
    name: String,
    version: String,
    kind: String,
    trained_on: serde_json::Value,
    citation: String,
    features: Vec<String>,
    intercept: f64,
    threshold: FileThreshold,
    #[serde(default)]
    cross_validation: serde_json::Value,
    terms: Vec<FileTerm>,
    checks: Vec<FileCheck>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileThreshold {
    open: f64,
    clear: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTerm {
    features: Vec<String>,
    cuts: Vec<Vec<f64>>,
    scores: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCheck {
    values: Vec<Option<f64>>,
    logit: f64,
}

/// One term: a feature's curve or a pair's table.
#[derive(Debug, Clone, PartialEq)]
struct Term {
    /// Index into the model's features, and its cut points.
    first: (usize, Box<[f64]>),
    /// A pair's second feature and its cut points.
    second: Option<(usize, Box<[f64]>)>,
    /// Row-major over `cuts.len() + 3` per feature.
    scores: Box<[f64]>,
}

/// interpret's binning: 0 missing, then 1 + the number of cut points at or below `v` (the
/// last, `cuts.len() + 2`, is for values never seen, which no finite value reaches).
fn bin(cuts: &[f64], v: f64) -> usize {
    if v.is_nan() {
        0
    } else {
        1 + cuts.partition_point(|c| *c <= v)
    }
}

/// [`bin`], tried first at `guess` (the bin this term gave the patient's last evaluation: its
/// features move little from one to the next), which is then the bin found. The cut points
/// rise strictly, so a bin `b >= 1` holds `v` exactly when `cuts[b - 2] <= v < cuts[b - 1]`
/// (either bound absent at the ends): two comparisons instead of a search.
fn bin_from(cuts: &[f64], v: f64, guess: &mut u8) -> usize {
    let b = usize::from(*guess);
    let holds = if v.is_nan() {
        b == 0
    } else {
        (1..=cuts.len() + 1).contains(&b)
            && (b == 1 || cuts.get(b - 2).is_some_and(|c| *c <= v))
            && cuts.get(b - 1).is_none_or(|c| v < *c)
    };
    if holds {
        return b;
    }
    let found = bin(cuts, v);
    // A bin past 255 (more cut points than any trained model has) is searched every time.
    *guess = u8::try_from(found).unwrap_or(0);
    found
}

impl Term {
    /// The features it reads (one or two).
    fn features(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.first.0).chain(self.second.as_ref().map(|s| s.0))
    }

    /// The score of the term for the features' values (`value` of a feature's index; NaN:
    /// missing).
    fn score(&self, value: impl Fn(usize) -> f64) -> f64 {
        self.score_from(value, &mut [0; 2])
    }

    /// [`Term::score`], each feature's bin tried first at its `guesses` ([`bin_from`]).
    fn score_from(&self, value: impl Fn(usize) -> f64, guesses: &mut [u8; 2]) -> f64 {
        let [first, second] = guesses;
        let mut index = bin_from(&self.first.1, value(self.first.0), first);
        if let Some((f, cuts)) = &self.second {
            index = index * (cuts.len() + 3) + bin_from(cuts, value(*f), second);
        }
        self.scores.get(index).copied().unwrap_or(0.0)
    }
}

/// The open and clear thresholds a model was tuned with (risk, 0..1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub open: f64,
    pub clear: f64,
}

/// A loaded model. See the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub name: String,
    pub version: String,
    /// One line on what it was trained on (dataset, stays, folds).
    pub trained_on: String,
    pub features: Vec<Feature>,
    /// How one evaluation reads them (each series once).
    plan: Plan,
    /// The features' names, interned (explanations name them).
    pub names: Vec<&'static str>,
    intercept: f64,
    terms: Vec<Term>,
    pub thresholds: Thresholds,
}

/// One feature's part in a risk: its value and time, and its contribution in log-odds (its
/// own curve plus half of each pair it is in, so the parts and the intercept sum to the logit).
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub feature: usize,
    pub value: Option<Value>,
    pub contribution: f64,
}

/// A model's risk for one patient at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct Risk {
    pub at: Timestamp,
    pub logit: f64,
    /// The logistic of `logit`, 0..1.
    pub risk: f64,
    /// Each feature's value and observation time, if any, in the model's feature order.
    read: Vec<Option<Value>>,
}

impl Model {
    /// The model built into the binary.
    ///
    /// # Errors
    /// Never for a released binary: a test loads it.
    pub fn built_in() -> Result<Model, ModelError> {
        Model::parse(BUILT_IN)
    }

    /// The built-in model, parsed once per process and shared.
    ///
    /// # Panics
    /// Never for a released binary: a test loads the built-in model.
    #[allow(clippy::expect_used)]
    pub fn shared_built_in() -> std::sync::Arc<Model> {
        static MODEL: std::sync::OnceLock<std::sync::Arc<Model>> = std::sync::OnceLock::new();
        MODEL
            .get_or_init(|| {
                std::sync::Arc::new(Model::built_in().expect("the built-in model loads (tested)"))
            })
            .clone()
    }

    /// Reads a model file's text, checking its checksum, its features, its terms' shapes and
    /// its checks.
    ///
    /// # Errors
    /// A sentence naming the first problem.
    pub fn parse(text: &str) -> Result<Model, ModelError> {
        let (first, rest) = text
            .split_once('\n')
            .ok_or_else(|| refuse("not a Vigil model file: no second line"))?;
        let digest = first.trim_end().strip_prefix(HEADER).ok_or_else(|| {
            refuse(format!(
                "not a Vigil model file: the first line is not `{HEADER}<hex>`"
            ))
        })?;
        let body = rest.strip_suffix('\n').unwrap_or(rest);
        let actual = checksum(body);
        if actual != digest {
            return Err(refuse(format!(
                "checksum mismatch: the file says sha256 {digest}, its body hashes to {actual} (truncated or edited?)"
            )));
        }
        let file: File =
            serde_json::from_str(body).map_err(|e| refuse(format!("malformed: {e}")))?;
        if file.kind != "ebm" {
            return Err(refuse(format!(
                "unknown model kind `{}` (this build serves `ebm`)",
                file.kind
            )));
        }
        let features = file
            .features
            .iter()
            .map(|f| Feature::parse(f).map_err(refuse))
            .collect::<Result<Vec<_>, _>>()?;
        let index = |name: &str| {
            file.features.iter().position(|f| f == name).ok_or_else(|| {
                refuse(format!(
                    "a term names `{name}`, which is not among the model's features"
                ))
            })
        };
        let mut terms = Vec::with_capacity(file.terms.len());
        for (i, t) in file.terms.iter().enumerate() {
            if t.features.is_empty() || t.features.len() > 2 || t.cuts.len() != t.features.len() {
                return Err(refuse(format!(
                    "term {i}: {} features with {} cut lists (one or two of each, as many of each)",
                    t.features.len(),
                    t.cuts.len()
                )));
            }
            if t.cuts.iter().flatten().any(|c| !c.is_finite())
                || t.cuts.iter().any(|c| c.windows(2).any(|w| w[0] >= w[1]))
            {
                return Err(refuse(format!(
                    "term {i}: cut points must be finite and rising"
                )));
            }
            let scores = flatten(&t.scores)
                .ok_or_else(|| refuse(format!("term {i}: scores are not numbers")))?;
            let expected: usize = t.cuts.iter().map(|c| c.len() + 3).product();
            if scores.len() != expected {
                return Err(refuse(format!(
                    "term {i} ({}): {} scores where its cut points need {expected}",
                    t.features.join(" x "),
                    scores.len()
                )));
            }
            let first = (index(&t.features[0])?, t.cuts[0].clone().into_boxed_slice());
            let second = match (t.features.get(1), t.cuts.get(1)) {
                (Some(f), Some(cuts)) => Some((index(f)?, cuts.clone().into_boxed_slice())),
                _ => None,
            };
            terms.push(Term {
                first,
                second,
                scores: scores.into_boxed_slice(),
            });
        }
        let th = file.threshold;
        if !(0.0 < th.clear && th.clear <= th.open && th.open < 1.0) {
            return Err(refuse(format!(
                "threshold: need 0 < clear <= open < 1, got open {} and clear {}",
                th.open, th.clear
            )));
        }
        let names = file
            .features
            .iter()
            .map(|f| {
                crate::patient::features::intern(f)
                    .ok_or_else(|| refuse(format!("too many distinct feature names to keep `{f}`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let model = Model {
            names,
            name: file.name,
            version: file.version,
            trained_on: summary(&file.trained_on),
            plan: Plan::new(&features),
            features,
            intercept: file.intercept,
            terms,
            thresholds: Thresholds {
                open: th.open,
                clear: th.clear,
            },
        };
        let _ = (file.citation, file.cross_validation);
        if file.checks.is_empty() {
            return Err(refuse(
                "no checks: a model must carry rows to verify its evaluation",
            ));
        }
        for (i, check) in file.checks.iter().enumerate() {
            if check.values.len() != model.features.len() {
                return Err(refuse(format!(
                    "check {i}: {} values for {} features",
                    check.values.len(),
                    model.features.len()
                )));
            }
            let values: Vec<f64> = check.values.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
            let logit = model.logit(&values);
            if (logit - check.logit).abs() > CHECK_TOLERANCE {
                return Err(refuse(format!(
                    "check {i}: evaluates to {logit:.6} where the trainer computed {:.6}",
                    check.logit
                )));
            }
        }
        Ok(model)
    }

    /// The sum of the intercept and every term for `values` (in feature order; NaN missing).
    pub fn logit(&self, values: &[f64]) -> f64 {
        self.logit_of(|f| values.get(f).copied().unwrap_or(f64::NAN))
    }

    /// The logit for the features' values as `value` gives them by index.
    fn logit_of(&self, value: impl Fn(usize) -> f64 + Copy) -> f64 {
        self.intercept + self.terms.iter().map(|t| t.score(value)).sum::<f64>()
    }

    /// [`Model::logit_of`], each term's bins tried first where they were for the patient's
    /// last evaluation (`bins`, two per term, kept in its [`Carry`]): the same sum, in the
    /// same order, bit for bit.
    fn logit_from(&self, value: impl Fn(usize) -> f64 + Copy, bins: &mut Vec<[u8; 2]>) -> f64 {
        bins.resize(self.terms.len(), [0; 2]);
        self.intercept
            + self
                .terms
                .iter()
                .zip(bins.iter_mut())
                .map(|(t, guesses)| t.score_from(value, guesses))
                .sum::<f64>()
    }

    /// The longest span of rows any feature reads (checked against a profile's horizon).
    pub fn longest_row_span_ms(&self) -> i64 {
        self.features
            .iter()
            .filter_map(Feature::row_span_ms)
            .max()
            .unwrap_or(0)
    }

    /// The risk for a patient at `at`, with the features' values it was computed from.
    pub fn evaluate(&self, window: &Window, admission: Option<&Admission>, at: Timestamp) -> Risk {
        self.evaluate_carried(window, admission, at, None)
    }

    /// [`Model::evaluate`], keeping in `carry` what the patient's next evaluation can reuse
    /// ([`Carry`]): the same risk, bit for bit.
    pub fn evaluate_carried(
        &self,
        window: &Window,
        admission: Option<&Admission>,
        at: Timestamp,
        carry: Option<&mut Carry>,
    ) -> Risk {
        let mut read: Vec<Option<Value>> = vec![None; self.features.len()];
        let logit = match carry {
            Some(carry) => {
                self.plan
                    .read_carried(window, admission, at, &mut read, Some(&mut *carry));
                self.logit_from(|f| value_of(&read, f), carry.bins())
            }
            None => {
                self.plan.read(window, admission, at, &mut read);
                self.logit_of(|f| value_of(&read, f))
            }
        };
        Risk {
            at,
            logit,
            risk: 1.0 / (1.0 + (-logit).exp()),
            read,
        }
    }

    /// Every feature's contribution to `risk`, largest first: what an alert's explanation
    /// lists. Computed only when an alert opens.
    pub fn contributions(&self, risk: &Risk) -> Vec<Contribution> {
        let mut parts = vec![0.0; self.features.len()];
        for t in &self.terms {
            let share = t.score(|f| value_of(&risk.read, f)) / t.features().count() as f64;
            for f in t.features() {
                if let Some(part) = parts.get_mut(f) {
                    *part += share;
                }
            }
        }
        let mut contributions: Vec<Contribution> = risk
            .read
            .iter()
            .zip(parts)
            .enumerate()
            .map(|(feature, (value, contribution))| Contribution {
                feature,
                value: *value,
                contribution,
            })
            .collect();
        contributions.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
        contributions
    }
}

/// A feature's value as the terms read it: NaN when missing.
fn value_of(read: &[Option<Value>], feature: usize) -> f64 {
    read.get(feature)
        .copied()
        .flatten()
        .map_or(f64::NAN, |v| v.value)
}

/// The sha256 of a model file's body, in lower-case hex: what its first line must name.
pub fn checksum(body: &str) -> String {
    Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Scores as nested arrays (a curve, or a pair's rows), flattened row-major.
fn flatten(v: &serde_json::Value) -> Option<Vec<f64>> {
    match v {
        serde_json::Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    serde_json::Value::Number(n) => out.push(n.as_f64()?),
                    serde_json::Value::Array(_) => out.extend(flatten(item)?),
                    _ => return None,
                }
            }
            Some(out)
        }
        _ => None,
    }
}

/// `trainedOn` in one line: its dataset and counts.
fn summary(v: &serde_json::Value) -> String {
    let get = |k: &str| {
        v.get(k)
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
    };
    match (get("dataset"), get("stays"), get("folds")) {
        (Some(d), Some(s), Some(f)) => format!("{d}, {s} stays, {f}-fold cross-validation"),
        (Some(d), _, _) => d,
        _ => v.to_string(),
    }
}

/// A two-feature model for tests: `hr.latest` (cuts 90, 120: -0.5, 0.4, 1.0; missing 0.1) and
/// the pair with `lactate.latest` (hr >= 100 and lactate >= 2: +0.6; hr < 100 and lactate >= 2:
/// +0.2; hr >= 100 and lactate < 2: -0.2), intercept -2, open 0.3, clear 0.2.
#[cfg(test)]
#[allow(clippy::expect_used)]
pub(crate) fn test_model() -> Model {
    Model::parse(&tests::file(tests::BODY)).expect("test model")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small model file, hashed as the trainer hashes it.
    pub(crate) fn file(body: &str) -> String {
        format!("{HEADER}{}\n{body}\n", checksum(body))
    }

    pub(crate) const BODY: &str = r#"{"name":"t","version":"1","kind":"ebm","trainedOn":{"dataset":"unit test","stays":2,"folds":2},"citation":"none","features":["hr.latest","lactate.latest"],"intercept":-2.0,"threshold":{"open":0.3,"clear":0.2},"terms":[{"features":["hr.latest"],"cuts":[[90.0,120.0]],"scores":[0.1,-0.5,0.4,1.0,0.0]},{"features":["hr.latest","lactate.latest"],"cuts":[[100.0],[2.0]],"scores":[[0,0,0,0],[0,0,0.2,0],[0,-0.2,0.6,0],[0,0,0,0]]}],"checks":[{"values":[95.0,3.0],"logit":-1.4},{"values":[null,null],"logit":-1.9}]}"#;

    #[test]
    fn terms_bin_as_interpret_does_missing_first_and_cut_points_upward() {
        let m = Model::parse(&file(BODY)).expect("model");
        let l = |hr: f64, lac: f64| m.logit(&[hr, lac]);
        // hr < 90: bin 1 (-0.5); 90 <= hr < 120: bin 2 (0.4); hr >= 120: bin 3 (1.0).
        assert_eq!(l(89.9, f64::NAN), -2.0 - 0.5);
        assert_eq!(l(90.0, f64::NAN), -2.0 + 0.4);
        assert_eq!(l(119.9, f64::NAN), -2.0 + 0.4);
        assert_eq!(l(120.0, f64::NAN), -2.0 + 1.0);
        assert_eq!(l(f64::NAN, f64::NAN), -2.0 + 0.1);
        // The pair: hr >= 100 and lactate >= 2 adds 0.6; hr < 100 and lactate >= 2 adds 0.2.
        assert!((l(100.0, 2.0) - (-2.0 + 0.4 + 0.6)).abs() < 1e-12);
        assert!((l(99.0, 2.0) - (-2.0 + 0.4 + 0.2)).abs() < 1e-12);
        assert!((l(100.0, 1.9) - (-2.0 + 0.4 - 0.2)).abs() < 1e-12);
        assert_eq!(
            m.thresholds,
            Thresholds {
                open: 0.3,
                clear: 0.2
            }
        );
        assert_eq!(m.trained_on, "unit test, 2 stays, 2-fold cross-validation");
    }

    #[test]
    fn contributions_sum_to_the_logit_and_come_largest_first() {
        use crate::observation::{LabResult, Vitals};
        let m = Model::parse(&file(BODY)).expect("model");
        let mut w = Window::default();
        let s = crate::settings::WindowSettings::default();
        let at = Timestamp::from_civil(2025, 11, 27, 9, 0, 0);
        w.record(
            &Vitals {
                hr: Some(125.0),
                ..Vitals::default()
            },
            at,
            s,
        );
        let lab = LabResult {
            code: "lactate".into(),
            value: 3.1,
            unit: None,
        };
        w.record_lab(&lab, at.plus_millis(-600_000), s);
        let r = m.evaluate(&w, None, at);
        assert!((r.logit - (-2.0 + 1.0 + 0.6)).abs() < 1e-12);
        assert!((r.risk - 1.0 / (1.0 + (0.4f64).exp())).abs() < 1e-12);
        let contributions = m.contributions(&r);
        let sum: f64 = contributions.iter().map(|c| c.contribution).sum();
        assert!((sum - 1.6).abs() < 1e-12);
        assert_eq!(contributions[0].feature, 0, "hr: 1.0 + 0.3");
        assert!((contributions[0].contribution - 1.3).abs() < 1e-12);
        assert!((contributions[1].contribution - 0.3).abs() < 1e-12);
        assert_eq!(
            contributions[1].value.map(|v| v.observed_at),
            Some(Some(at.plus_millis(-600_000)))
        );
    }

    #[test]
    fn a_bad_file_is_refused_whole_with_the_reason() {
        let good = file(BODY);
        assert!(Model::parse(&good).is_ok());
        let cases: Vec<(String, &str)> = vec![
            (good[..good.len() / 2].to_string(), "checksum mismatch"),
            (good.replacen("-2.0", "-2.5", 1), "checksum mismatch"),
            ("".into(), "no second line"),
            ("vigil-model 2\n{}\n".into(), "first line"),
            (file("{"), "malformed"),
            (file(&BODY.replace("\"kind\":\"ebm\"", "\"kind\":\"gbm\"")), "unknown model kind"),
            (file(&BODY.replace("\"hr.latest\",\"lactate", "\"Heart.latest\",\"lactate")), "unknown source"),
            (file(&BODY.replace("[0.1,-0.5,0.4,1.0,0.0]", "[0.1,-0.5,0.4,1.0]")), "4 scores where its cut points need 5"),
            (file(&BODY.replace("[[90.0,120.0]]", "[[120.0,90.0]]")), "rising"),
            (file(&BODY.replace("\"logit\":-1.4", "\"logit\":-1.0")), "check 0"),
            (file(&BODY.replace("\"open\":0.3", "\"open\":0.1")), "clear <= open"),
            (file(&BODY.replace(",\"checks\":[{\"values\":[95.0,3.0],\"logit\":-1.4},{\"values\":[null,null],\"logit\":-1.9}]", ",\"checks\":[]")), "no checks"),
            (file(&BODY.replace("\"citation\":\"none\"", "\"citation\":\"none\",\"extra\":1")), "unknown field"),
        ];
        for (text, says) in cases {
            let e = Model::parse(&text).expect_err(says);
            assert!(e.0.contains(says), "{says}: {e}");
        }
    }

    #[test]
    fn a_bin_tried_first_at_a_guess_is_the_bin_searched() {
        let cuts = [-1.5, 0.0, 2.0, 2.5, 90.0];
        let values = [
            f64::NAN,
            f64::NEG_INFINITY,
            -1e9,
            -1.5,
            -1.4999,
            -0.0,
            0.0,
            1.0,
            2.0,
            2.4999999999999996,
            2.5,
            89.9,
            90.0,
            1e9,
            f64::INFINITY,
        ];
        for cuts in [&cuts[..], &cuts[..1], &[]] {
            for v in values {
                for guess in 0..=u8::MAX {
                    let mut g = guess;
                    let b = bin_from(cuts, v, &mut g);
                    assert_eq!(b, bin(cuts, v), "{cuts:?} {v} from {guess}");
                    assert_eq!(usize::from(g), b, "the guess becomes the bin");
                }
            }
        }
        // More cut points than a bin fits in a byte: searched every time, never a wrong guess.
        let many: Vec<f64> = (0..400).map(f64::from).collect();
        let mut g = 7;
        assert_eq!(bin_from(&many, 300.5, &mut g), 302);
        assert_eq!(g, 0);
        assert_eq!(bin_from(&many, 300.5, &mut g), 302);
    }

    /// A patient's risk through its carry (settled rows and the terms' last bins) is the risk
    /// read afresh, bit for bit, at every minute of six hours and more of noisy readings, with
    /// gaps and labs among them.
    #[test]
    fn a_carried_risk_is_a_fresh_risk() {
        use crate::observation::{LabResult, Vitals};
        use crate::settings::WindowSettings;
        let m = Model::built_in().expect("built-in model");
        let s = WindowSettings::default();
        let mut window = Window::default();
        let mut carry = Carry::default();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut noise = |span: f64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 10_000) as f64 / 10_000.0 * span
        };
        for minute in 0..500i64 {
            let at = Timestamp::from_millis(1_764_000_000_000 + minute * 60_000);
            if minute % 97 == 50 {
                continue;
            }
            let vitals = Vitals {
                hr: Some(60.0 + noise(80.0)),
                rr: Some(10.0 + noise(20.0)),
                spo2: Some(86.0 + noise(14.0)),
                sbp: Some(80.0 + noise(80.0)),
                temp: (minute % 5 == 0).then(|| 35.5 + noise(4.0)),
                ..Vitals::default()
            };
            window.record(&vitals, at, s);
            if minute % 61 == 7 {
                let lab = LabResult {
                    code: "lactate".into(),
                    value: 0.5 + noise(6.0),
                    unit: None,
                };
                window.record_lab(&lab, at, s);
            }
            let carried = m.evaluate_carried(&window, None, at, Some(&mut carry));
            let fresh = m.evaluate(&window, None, at);
            assert_eq!(
                carried.logit.to_bits(),
                fresh.logit.to_bits(),
                "minute {minute}"
            );
            assert_eq!(carried, fresh, "minute {minute}");
        }
    }

    #[test]
    fn the_built_in_model_loads_and_passes_its_checks() {
        let m = Model::built_in().expect("built-in model");
        assert_eq!(m.name, "vigil-sepsis-ebm");
        assert!(!m.features.is_empty());
        assert!(
            m.longest_row_span_ms() <= 6 * 3_600_000,
            "fits the default horizon"
        );
    }
}
