//! The PhysioNet/CinC 2019 normalized utility, exactly as scoring.md describes it.
//!
//! Row convention (docs/replay.md): `t` is the 0-based index of the row within its stay (the
//! first data row is 0), one row per hour. For a septic stay `t_sepsis` = (index of the first
//! row labelled 1) + 6. Only differences of `t` enter the scores, except the clamp of the best
//! predictions at row 0.

const DT_EARLY: i64 = -12;
const DT_OPTIMAL: i64 = -6;
const DT_LATE: i64 = 3;
const U_FP: f64 = -0.05;

/// The utility of one row.
fn row(t: i64, t_sepsis: Option<i64>, positive: bool) -> f64 {
    let Some(ts) = t_sepsis else {
        return if positive { U_FP } else { 0.0 };
    };
    if t > ts + DT_LATE {
        return 0.0;
    }
    let early = t <= ts + DT_OPTIMAL;
    match (positive, early) {
        (true, true) => ((t - ts - DT_EARLY) as f64 / 6.0).max(U_FP),
        (true, false) => -((t - ts - DT_LATE) as f64) / 9.0,
        (false, true) => 0.0,
        (false, false) => -2.0 / 9.0 * (t - ts - DT_OPTIMAL) as f64,
    }
}

/// `t_sepsis` of a stay: first labelled row + 6, `None` for a stay that is not septic.
pub fn t_sepsis(labels: &[bool]) -> Option<i64> {
    labels
        .iter()
        .position(|&l| l)
        .map(|first| first as i64 - DT_OPTIMAL)
}

/// Each row's utility as a positive and as a negative prediction, in row order: what
/// [`stay_utility`] sums, for judging many predictions of one stay.
pub fn row_scores(labels: &[bool]) -> impl Iterator<Item = (f64, f64)> + '_ {
    let ts = t_sepsis(labels);
    (0..labels.len() as i64).map(move |t| (row(t, ts, true), row(t, ts, false)))
}

/// The observed utility of one stay's predictions, one per row.
pub fn stay_utility(labels: &[bool], predictions: &[bool]) -> f64 {
    row_scores(labels)
        .zip(predictions)
        .map(|((positive, negative), &p)| if p { positive } else { negative })
        .sum()
}

/// The stay's utility with no positive prediction (`U_none`) and with the best predictions
/// (`U_best`: rows `max(0, t_sepsis - 12)` to `t_sepsis + 3` of a septic stay).
pub fn stay_bounds(labels: &[bool]) -> (f64, f64) {
    let ts = t_sepsis(labels);
    let n = labels.len() as i64;
    let none: f64 = (0..n).map(|t| row(t, ts, false)).sum();
    let best: f64 = (0..n)
        .map(|t| {
            let positive = ts.is_some_and(|ts| t >= (ts + DT_EARLY).max(0) && t <= ts + DT_LATE);
            row(t, ts, positive)
        })
        .sum();
    (none, best)
}

/// Sums over stays and normalizes: `(U - U_none) / (U_best - U_none)`; `None` when no stay is
/// septic (the denominator is 0).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Utility {
    pub observed: f64,
    pub none: f64,
    pub best: f64,
}

impl Utility {
    pub fn add(&mut self, labels: &[bool], predictions: &[bool]) {
        let (none, best) = stay_bounds(labels);
        self.observed += stay_utility(labels, predictions);
        self.none += none;
        self.best += best;
    }

    pub fn merge(&mut self, other: &Utility) {
        self.observed += other.observed;
        self.none += other.none;
        self.best += other.best;
    }

    pub fn normalized(&self) -> Option<f64> {
        let d = self.best - self.none;
        (d.abs() > 1e-12).then(|| (self.observed - self.none) / d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &[u8]) -> Vec<bool> {
        v.iter().map(|&x| x == 1).collect()
    }

    #[test]
    fn published_worked_example() {
        // Labels 0,0,0,0,1,1 with predictions 0,0,1,1,1,1: U = 3.3889.
        let u = stay_utility(&b(&[0, 0, 0, 0, 1, 1]), &b(&[0, 0, 1, 1, 1, 1]));
        assert!((u - 3.3889).abs() < 5e-5, "{u}");
        // By hand: t_sepsis = 4 + 6 = 10; rows 2, 3, 4 score (t + 2) / 6; row 5 scores 8/9.
        let by_hand = 4.0 / 6.0 + 5.0 / 6.0 + 1.0 + 8.0 / 9.0;
        assert!((u - by_hand).abs() < 1e-12);
    }

    #[test]
    fn rows_of_a_septic_stay() {
        let ts = Some(20);
        // Positive: very early floors at -0.05, 12 h before scores 0, 6 h before scores 1.
        assert_eq!(row(0, ts, true), -0.05);
        assert_eq!(row(8, ts, true), 0.0);
        assert_eq!(row(14, ts, true), 1.0);
        // Between optimal and late: falls from 1 to 0 at t_sepsis + 3.
        assert!((row(15, ts, true) - 8.0 / 9.0).abs() < 1e-12);
        assert_eq!(row(23, ts, true), 0.0);
        // Negative: 0 up to the optimal time, then down to -2 at t_sepsis + 3.
        assert_eq!(row(14, ts, false), 0.0);
        assert!((row(23, ts, false) + 2.0).abs() < 1e-12);
        // After t_sepsis + 3 nothing counts.
        assert_eq!(row(24, ts, true), 0.0);
        assert_eq!(row(24, ts, false), 0.0);
    }

    #[test]
    fn stays_that_are_not_septic() {
        assert_eq!(stay_utility(&b(&[0, 0, 0]), &b(&[1, 0, 1])), -0.1);
        assert_eq!(stay_bounds(&b(&[0, 0, 0])), (0.0, 0.0));
    }

    #[test]
    fn normalization_maps_none_to_zero_and_best_to_one() {
        let labels = b(&[0, 0, 0, 0, 1, 1]);
        let (none, best) = stay_bounds(&labels);
        let mut u = Utility::default();
        u.add(&labels, &[false; 6]);
        assert_eq!(u.normalized(), Some(0.0));
        let mut u = Utility::default();
        // Best predictions: rows max(0, 10 - 12) = 0 to 13, i.e. every row here.
        u.add(&labels, &[true; 6]);
        assert!((u.observed - best).abs() < 1e-12);
        assert_eq!(u.normalized(), Some(1.0));
        assert!(none < 0.0, "missing the onset costs: {none}");
        assert_eq!(Utility::default().normalized(), None);
    }
}
