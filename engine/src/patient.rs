//! One patient's state: the chart of latest readings, latest labs, the NEWS2 risk rules and the
//! patient's alert. Owned by exactly one actor, so every change to it is serialized.

use vigil_config::Role;

use crate::alert::{Alert, AlertState, CommandError, CommandKind};
use crate::news2::{Chart, News2, Reading};
use crate::observation::{LabResult, Vitals};
use crate::rules::{News2Risk, Settings, Subject};
use crate::sepsis::{CriteriaScore, Labs, qsofa, sirs};
use crate::time::Timestamp;

/// What one observation produced.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The new score, or `None` for a reading older than the last score (it updates the chart
    /// but scores and alerts only move forward in event time).
    pub score: Option<News2>,
    /// qSOFA and SIRS at the same time as `score` (shown on dashboards; their rules come later).
    pub qsofa: Option<CriteriaScore>,
    pub sirs: Option<CriteriaScore>,
    /// The alert after each transition this observation caused, in order.
    pub alerts: Vec<Alert>,
}

/// A patient's live status as dashboards show it: the latest scores and vitals. Identifiers are
/// shared (`Arc<str>`), so an update per reading copies no strings.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientStatus {
    pub tenant: std::sync::Arc<str>,
    pub patient_id: std::sync::Arc<str>,
    pub unit_id: std::sync::Arc<str>,
    pub at: Timestamp,
    pub news2: Option<u8>,
    pub qsofa: Option<u8>,
    pub sirs: Option<u8>,
    /// The NEWS2 had missing parameters.
    pub partial: bool,
    pub vitals: Vitals,
}

/// Labs kept per code (latest by collection time); scored by the sepsis rules.
const MAX_LAB_CODES: usize = 32;

#[derive(Debug, Clone)]
pub struct Patient {
    pub tenant: String,
    pub patient_id: String,
    /// The unit of the latest observation.
    pub unit_id: String,
    pub chart: Chart,
    pub labs: Vec<(String, Reading<f64>)>,
    pub last_score: Option<News2>,
    risk: News2Risk,
}

impl Patient {
    pub fn new(tenant: &str, patient_id: &str, unit_id: &str) -> Self {
        Self {
            tenant: tenant.into(),
            patient_id: patient_id.into(),
            unit_id: unit_id.into(),
            chart: Chart::default(),
            labs: Vec::new(),
            last_score: None,
            risk: News2Risk::default(),
        }
    }

    /// Records a vitals observation made at `at` and, when it is the newest, scores and alerts.
    pub fn observe(
        &mut self,
        unit: &str,
        vitals: &Vitals,
        at: Timestamp,
        settings: &Settings,
    ) -> Observed {
        self.chart.record(vitals, at);
        if self.last_score.as_ref().is_some_and(|s| at < s.at) {
            return Observed::default();
        }
        if self.unit_id != unit {
            self.unit_id = unit.to_string();
        }
        let score = News2::score(&self.chart, at, settings.freshness);
        let subject = Subject {
            tenant: &self.tenant,
            patient: &self.patient_id,
            unit: &self.unit_id,
        };
        let alerts = self.risk.evaluate(subject, &score, settings);
        let q = qsofa(&self.chart, at, settings.sepsis);
        let s = sirs(&self.chart, self, at, settings.sepsis);
        self.last_score = Some(score.clone());
        Observed {
            score: Some(score),
            qsofa: Some(q),
            sirs: Some(s),
            alerts,
        }
    }

    /// Keeps the latest result per lab code (by collection time), at most `MAX_LAB_CODES` codes.
    pub fn record_lab(&mut self, lab: &LabResult, collected_at: Timestamp) {
        let reading = Reading {
            value: lab.value,
            at: collected_at,
        };
        if let Some((_, r)) = self.labs.iter_mut().find(|(c, _)| *c == lab.code) {
            if r.at <= collected_at {
                *r = reading;
            }
        } else if self.labs.len() < MAX_LAB_CODES {
            self.labs.push((lab.code.clone(), reading));
        }
    }

    pub fn lab(&self, code: &str) -> Option<Reading<f64>> {
        self.labs.iter().find(|(c, _)| c == code).map(|(_, r)| *r)
    }

    /// The patient's alert that is not resolved, if any.
    pub fn active_alert(&self) -> Option<&Alert> {
        self.risk.active_alert()
    }

    /// Applies a person's command to one of this patient's alerts.
    ///
    /// # Errors
    /// `NotFound` when the patient has no such alert; otherwise as [`Alert::command`].
    pub fn command(
        &mut self,
        alert_id: &str,
        kind: CommandKind,
        role: Role,
        by: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<Alert, CommandError> {
        let alert = self
            .risk
            .alert_mut()
            .filter(|a| a.alert_id == alert_id)
            .ok_or_else(|| CommandError::NotFound(alert_id.to_string()))?;
        alert.command(kind, role, by, reason, now)?;
        let alert = alert.clone();
        if alert.state == AlertState::Resolved {
            self.risk.resolved_by_person();
        }
        Ok(alert)
    }
}

impl Labs for Patient {
    fn lab(&self, code: &str) -> Option<Reading<f64>> {
        Patient::lab(self, code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Level;
    use crate::observation::Consciousness;

    fn t(min: i64) -> Timestamp {
        Timestamp::from_civil(2025, 11, 27, 9, 0, 0).plus_millis(min * 60_000)
    }

    fn base() -> Vitals {
        Vitals {
            hr: Some(70.0),
            rr: Some(16.0),
            spo2: Some(98.0),
            on_oxygen: Some(false),
            temp: Some(37.0),
            sbp: Some(120.0),
            consciousness: Some(Consciousness::A),
            ..Vitals::default()
        }
    }

    /// Full vitals whose NEWS2 is exactly `target` (0..=8) with no parameter scoring 3.
    fn v(target: u8) -> Vitals {
        let mut v = base();
        let mut left = target;
        type Step = (u8, fn(&mut Vitals));
        let steps: [Step; 5] = [
            (2, |v| v.rr = Some(22.0)),
            (2, |v| v.sbp = Some(95.0)),
            (2, |v| v.on_oxygen = Some(true)),
            (1, |v| v.hr = Some(95.0)),
            (1, |v| v.temp = Some(38.5)),
        ];
        for (pts, apply) in steps {
            if left >= pts {
                apply(&mut v);
                left -= pts;
            }
        }
        assert_eq!(left, 0, "cannot build score {target}");
        v
    }

    /// Full vitals scoring `target` (3..=11) where SpO2 91 scores 3.
    fn s3(target: u8) -> Vitals {
        Vitals {
            spo2: Some(91.0),
            ..v(target - 3)
        }
    }

    fn run(p: &mut Patient, s: &Settings, readings: &[(i64, Vitals)]) -> Vec<Alert> {
        let mut out = Vec::new();
        for (min, vitals) in readings {
            let o = p.observe("icu-3", vitals, t(*min), s);
            assert!(o.score.is_some());
            out.extend(o.alerts);
        }
        out
    }

    fn patient() -> Patient {
        Patient::new("clinic-abc", "patient-123", "icu-3")
    }

    #[test]
    fn high_needs_two_consecutive_scores() {
        let s = Settings::default();
        let mut p = patient();
        assert!(
            run(&mut p, &s, &[(0, v(4)), (2, v(8))])
                .iter()
                .all(|a| a.rule != "news2.high")
        );
        // 8 then 4 then 8: not consecutive.
        let mut q = patient();
        let a = run(&mut q, &s, &[(0, v(8)), (1, v(4)), (2, v(8))]);
        assert!(a.is_empty(), "{a:?}");
        let a = run(&mut q, &s, &[(3, v(7))]);
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].rule, a[0].level, a[0].state),
            ("news2.high", Level::Critical, AlertState::Open)
        );
    }

    #[test]
    fn contract_example_explanation() {
        let s = Settings {
            profile: "icu-default".into(),
            ..Settings::default()
        };
        let mut p = patient();
        run(&mut p, &s, &[(2, v(4))]);
        let v = Vitals {
            hr: Some(112.0),
            rr: Some(26.0),
            spo2: Some(91.0),
            on_oxygen: Some(false),
            temp: Some(37.0),
            sbp: Some(120.0),
            consciousness: Some(Consciousness::A),
            ..Vitals::default()
        };
        assert!(
            p.observe("icu-3", &v, t(12), &s)
                .alerts
                .iter()
                .all(|a| a.rule != "news2.high")
        );
        let a = p.observe("icu-3", &v, t(14), &s).alerts;
        let a = a.last().expect("alert");
        assert_eq!(a.rule, "news2.high");
        assert_eq!(
            a.message,
            "NEWS2 8 (high): RR 26 (3), SpO2 91 (3), HR 112 (2)"
        );
        assert_eq!(
            a.explanation.why,
            "NEWS2 aggregate 8 >= 7 (threshold profile icu-default)"
        );
        assert_eq!(
            a.explanation.why_now,
            "rose from 4 at 09:02 to 8 at 09:14; sustained over 2 readings"
        );
        assert_eq!(a.explanation.components.len(), 7);
        assert_eq!(a.meta.news2, Some(8));
        assert_eq!(a.escalation.policy, "critical-default");
        assert_eq!(a.escalation.targets, vec!["role:nurse@icu-3".to_string()]);
    }

    #[test]
    fn medium_fires_on_two_scores_of_five_or_more() {
        let s = Settings::default();
        let mut p = patient();
        assert!(run(&mut p, &s, &[(0, v(5))]).is_empty());
        let a = run(&mut p, &s, &[(1, v(6))]);
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].rule, a[0].level), ("news2.medium", Level::Warning));
        // 6 then 8: medium at once (both >= 5), high once 8 is sustained: an upgrade, same alert.
        let mut q = patient();
        let a = run(&mut q, &s, &[(0, v(6)), (1, v(8)), (2, v(8))]);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].rule, "news2.medium");
        assert_eq!(a[1].rule, "news2.high");
        assert_eq!(a[0].alert_id, a[1].alert_id, "one alert per patient");
        assert_eq!(
            a[1].transition.reason,
            "upgraded from news2.medium to news2.high"
        );
        assert_eq!(a[1].transition.to, AlertState::Open);
        assert_eq!(a[1].version, 2);
    }

    #[test]
    fn single3_fires_on_one_score_below_five() {
        let s = Settings::default();
        let mut p = patient();
        let a = run(&mut p, &s, &[(0, s3(3))]);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].rule, "news2.single3");
        assert!(
            a[0].explanation
                .why
                .starts_with("SpO2 91 scores 3 with NEWS2 aggregate 3 < 5")
        );
        // A 4 without any parameter at 3 does not fire.
        let mut q = patient();
        assert!(run(&mut q, &s, &[(0, v(4))]).is_empty());
    }

    #[test]
    fn single3_upgrades_to_medium_when_sustained() {
        let s = Settings::default();
        let mut p = patient();
        let a = run(&mut p, &s, &[(0, s3(3)), (1, s3(6))]);
        assert_eq!(a.len(), 1);
        let b = run(&mut p, &s, &[(2, s3(6))]);
        assert_eq!(b.len(), 1);
        assert_eq!(
            (b[0].rule, b[0].alert_id.as_str()),
            ("news2.medium", a[0].alert_id.as_str())
        );
    }

    #[test]
    fn high_clears_after_fifteen_minutes_below_seven_and_downgrades() {
        let s = Settings::default();
        let mut p = patient();
        run(&mut p, &s, &[(0, v(8)), (1, v(8))]);
        // Below 7 from minute 2; at minute 16 only 14 min have passed.
        assert!(run(&mut p, &s, &[(2, v(6)), (10, v(6)), (16, v(6))]).is_empty());
        let a = run(&mut p, &s, &[(17, v(6))]);
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].rule, a[0].state), ("news2.medium", AlertState::Open));
        assert_eq!(
            a[0].transition.reason,
            "downgraded from news2.high to news2.medium"
        );
    }

    #[test]
    fn a_high_reading_restarts_the_clear_period() {
        let s = Settings::default();
        let mut p = patient();
        run(&mut p, &s, &[(0, v(8)), (1, v(8)), (2, v(2)), (10, v(8))]);
        // Absent again from 11: 15 min later is 26.
        assert!(run(&mut p, &s, &[(11, v(2)), (25, v(2))]).is_empty());
        let a = run(&mut p, &s, &[(26, v(2))]);
        assert_eq!(a[0].state, AlertState::Resolved);
        assert_eq!(
            a[0].transition.reason,
            "condition cleared: news2.high absent for 15 min"
        );
    }

    #[test]
    fn medium_resolves_after_fifteen_minutes_below_five() {
        let s = Settings::default();
        let mut p = patient();
        run(&mut p, &s, &[(0, v(5)), (1, v(5))]);
        assert!(run(&mut p, &s, &[(5, v(4)), (19, v(2))]).is_empty());
        let a = run(&mut p, &s, &[(20, v(0))]);
        assert_eq!(a[0].state, AlertState::Resolved);
        assert!(p.active_alert().is_none());
        // A new condition opens a new alert with a new id.
        let b = run(&mut p, &s, &[(30, v(6)), (31, v(6))]);
        assert_eq!(b.len(), 1);
        assert_ne!(b[0].alert_id, a[0].alert_id);
    }

    #[test]
    fn single3_clears_when_no_parameter_scores_three_for_fifteen_minutes() {
        let s = Settings::default();
        let mut p = patient();
        run(&mut p, &s, &[(0, s3(3))]);
        assert!(run(&mut p, &s, &[(1, v(2)), (15, v(2))]).is_empty());
        let a = run(&mut p, &s, &[(16, v(2))]);
        assert_eq!(a[0].state, AlertState::Resolved);
    }

    #[test]
    fn acknowledge_then_resolve_and_refusals() {
        let s = Settings::default();
        let mut p = patient();
        let id = run(&mut p, &s, &[(0, v(7)), (1, v(7))])[0].alert_id.clone();
        let err = p
            .command(&id, CommandKind::Ack, Role::Viewer, "u1", "", t(2))
            .expect_err("viewer");
        assert_eq!(err.code(), "FORBIDDEN");
        assert_eq!(
            p.active_alert().map(|a| a.version),
            Some(1),
            "refusal changes nothing"
        );
        let a = p
            .command(&id, CommandKind::Ack, Role::Nurse, "u1", "at bedside", t(2))
            .expect("ack");
        assert_eq!(a.state, AlertState::Acknowledged);
        assert_eq!(a.transition.from, Some(AlertState::Open));
        assert_eq!(a.transition.by, "u1");
        assert_eq!(a.transition.reason, "at bedside");
        let err = p
            .command(&id, CommandKind::Ack, Role::Nurse, "u2", "", t(3))
            .expect_err("twice");
        assert_eq!(err.code(), "INVALID_TRANSITION");
        let a = p
            .command(
                &id,
                CommandKind::Resolve,
                Role::Nurse,
                "u1",
                "treated",
                t(4),
            )
            .expect("resolve");
        assert_eq!((a.state, a.version), (AlertState::Resolved, 3));
        let err = p
            .command(&id, CommandKind::Ack, Role::Nurse, "u1", "", t(5))
            .expect_err("resolved");
        assert_eq!(err.code(), "INVALID_TRANSITION");
        let err = p
            .command("alert-nope", CommandKind::Ack, Role::Nurse, "u1", "", t(5))
            .expect_err("404");
        assert_eq!(err.code(), "ALERT_NOT_FOUND");
    }

    #[test]
    fn a_manual_resolve_needs_a_fresh_sustained_run() {
        let s = Settings::default();
        let mut p = patient();
        let id = run(&mut p, &s, &[(0, v(8)), (1, v(8))])[0].alert_id.clone();
        p.command(
            &id,
            CommandKind::Resolve,
            Role::Nurse,
            "u1",
            "treated",
            t(2),
        )
        .expect("resolve");
        assert!(
            run(&mut p, &s, &[(3, v(8))]).is_empty(),
            "one new score is not sustained"
        );
        let a = run(&mut p, &s, &[(4, v(8))]);
        assert_eq!(a.len(), 1);
        assert_ne!(a[0].alert_id, id);
    }

    #[test]
    fn acknowledged_alert_still_upgrades_and_auto_resolves() {
        let s = Settings::default();
        let mut p = patient();
        let id = run(&mut p, &s, &[(0, v(5)), (1, v(5))])[0].alert_id.clone();
        p.command(&id, CommandKind::Ack, Role::Nurse, "u1", "", t(2))
            .expect("ack");
        let a = run(&mut p, &s, &[(3, v(7)), (4, v(7))]);
        assert_eq!(
            (a[0].rule, a[0].state),
            ("news2.high", AlertState::Acknowledged)
        );
    }

    #[test]
    fn late_reading_updates_chart_without_scoring() {
        let s = Settings::default();
        let mut p = patient();
        run(&mut p, &s, &[(10, v(0))]);
        let o = p.observe("icu-3", &s3(9), t(5), &s);
        assert!(o.score.is_none() && o.alerts.is_empty());
    }

    #[test]
    fn disabled_rule_never_fires() {
        let mut s = Settings::default();
        s.single3.enabled = false;
        let mut p = patient();
        assert!(run(&mut p, &s, &[(0, s3(3)), (1, s3(3))]).is_empty());
    }

    #[test]
    fn observations_carry_qsofa_and_sirs_using_labs() {
        let s = Settings::default();
        let mut p = patient();
        p.record_lab(
            &LabResult {
                code: "wbc".into(),
                value: 14.0,
                unit: None,
            },
            t(0),
        );
        let v = Vitals {
            rr: Some(24.0),
            sbp: Some(95.0),
            hr: Some(110.0),
            temp: Some(38.6),
            ..base()
        };
        let o = p.observe("icu-3", &v, t(5), &s);
        assert_eq!(o.qsofa.map(|q| q.total), Some(2));
        assert_eq!(o.sirs.map(|q| (q.total, q.partial)), Some((4, false)));
    }

    #[test]
    fn labs_keep_latest_per_code() {
        let mut p = patient();
        let lab = |v| LabResult {
            code: "lactate".into(),
            value: v,
            unit: None,
        };
        p.record_lab(&lab(2.6), t(10));
        p.record_lab(&lab(1.0), t(5));
        assert_eq!(p.lab("lactate").map(|r| r.value), Some(2.6));
        p.record_lab(&lab(3.1), t(20));
        assert_eq!(p.lab("lactate").map(|r| r.value), Some(3.1));
    }
}
