//! An alert over time and its pages: the deadlines it wakes its owner for ([`Alert::advance`]
//! applies those that passed, in order), the re-page after a severity upgrade, and a pager's
//! receipt or decline of its current page. The policy rules are in [`super::escalation`].

use std::sync::Arc;

use super::command::CommandError;
use super::escalation::{Escalation, MINUTE, Page, PageState, Policy, minutes};
use super::record::{Alert, AlertState, ENGINE};
use crate::time::Timestamp;

/// What a deadline does when it passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    SnoozeEnd,
    AckExpiry,
    Escalate,
    Resend,
}

impl Alert {
    /// The earliest deadline of this alert, if any: what its owner's timer must wake for.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.due().map(|(at, _)| at)
    }

    fn due(&self) -> Option<(Timestamp, Due)> {
        let e = &self.escalation;
        let candidates = match self.state {
            AlertState::Resolved => return None,
            AlertState::Snoozed => [self.snoozed_until.map(|t| (t, Due::SnoozeEnd)), None],
            AlertState::Acknowledged => [self.ack_expires_at.map(|t| (t, Due::AckExpiry)), None],
            AlertState::Open => [
                e.next_at.map(|t| (t, Due::Escalate)),
                e.page
                    .as_ref()
                    .and_then(|p| p.resend_at(e.receipt_timeout()))
                    .map(|t| (t, Due::Resend)),
            ],
        };
        candidates.into_iter().flatten().min_by_key(|(t, _)| *t)
    }

    /// Applies every deadline that has passed by `now`, earliest first; returns the alert after
    /// each transition. `holds` tells whether the alert's condition is still present (an
    /// expired acknowledgement re-pages only then; otherwise it is renewed quietly).
    pub fn advance(&mut self, now: Timestamp, holds: bool) -> Vec<Alert> {
        let mut out = Vec::new();
        // Bounded: each step moves a deadline forward or removes it.
        for _ in 0..64 {
            let Some((deadline, due)) = self.due().filter(|(t, _)| *t <= now) else {
                break;
            };
            let alert_id = self.alert_id.clone();
            let unit = self.unit_id.clone();
            let unit = unit.as_deref();
            let e = &mut self.escalation;
            let (to, reason) = match due {
                Due::SnoozeEnd => {
                    self.snoozed_until = None;
                    e.go_to(1, deadline, &alert_id, unit, now);
                    let reason = format!(
                        "snooze ended: escalation restarted at level 1 ({})",
                        e.targets.join(", ")
                    );
                    (AlertState::Open, reason)
                }
                Due::AckExpiry => {
                    let expiry = e.ack_expiry();
                    if !holds {
                        // The condition is clearing: keep the acknowledgement, look again later.
                        self.ack_expires_at = Some(deadline.plus_millis(expiry));
                        continue;
                    }
                    self.ack_expires_at = None;
                    let level = e.level;
                    e.go_to(
                        level,
                        deadline.plus_millis(-e.after(level)),
                        &alert_id,
                        unit,
                        now,
                    );
                    let reason = format!(
                        "acknowledgement expired after {} min with the condition still present: \
                         paged again at level {level} ({})",
                        expiry / MINUTE,
                        e.targets.join(", ")
                    );
                    (AlertState::Open, reason)
                }
                Due::Escalate => {
                    let next = e.level + 1;
                    let waited = e.after(next);
                    let since = e.since;
                    e.go_to(next, since, &alert_id, unit, now);
                    let reason = format!(
                        "not acknowledged within {}: escalated to level {next} ({})",
                        minutes(waited),
                        e.targets.join(", ")
                    );
                    (AlertState::Open, reason)
                }
                Due::Resend => {
                    let timeout = e.receipt_timeout();
                    let Some(page) = e.page.as_mut() else { break };
                    page.attempts += 1;
                    page.sent_at = now;
                    let reason = format!(
                        "page {} not receipted within {}: sent again (attempt {})",
                        page.page_id,
                        minutes(timeout),
                        page.attempts
                    );
                    (AlertState::Open, reason)
                }
            };
            self.transition(to, ENGINE, now, reason);
            out.push(self.clone());
        }
        out
    }

    /// Re-pages under a new policy after a severity upgrade; returns the state the upgrade
    /// transition goes to. A snoozed alert is woken (a worsening patient is not kept quiet); an
    /// acknowledged alert stays acknowledged, but the new policy's first level is paged.
    pub(crate) fn upgrade_policy(
        &mut self,
        policy: Option<&Arc<Policy>>,
        at: Timestamp,
    ) -> AlertState {
        let pages = self.escalation.pages;
        let mut e = Escalation::start(policy, &self.alert_id, self.unit_id.as_deref(), at, pages);
        if self.state == AlertState::Acknowledged {
            e.next_at = None;
        }
        self.escalation = e;
        if self.state == AlertState::Snoozed {
            self.snoozed_until = None;
            return AlertState::Open;
        }
        self.state
    }

    /// The page `page_id` if it is this alert's current page.
    fn current_page(&self, page_id: &str, action: &'static str) -> Result<&Page, CommandError> {
        let page = self
            .escalation
            .page
            .as_ref()
            .ok_or_else(|| CommandError::PageNotFound(page_id.to_string()))?;
        if page.page_id != page_id {
            return Err(CommandError::InvalidTransition {
                action,
                state: "superseded",
            });
        }
        Ok(page)
    }

    /// A pager confirms it received `page_id`: `sent` -> `delivered`. Returns false (and changes
    /// nothing) when the page was already delivered, accepted or declined.
    ///
    /// # Errors
    /// `INVALID_TRANSITION` for a superseded page or a resolved alert.
    pub fn receipt(
        &mut self,
        page_id: &str,
        by: &str,
        at: Timestamp,
    ) -> Result<bool, CommandError> {
        if self.state == AlertState::Resolved {
            return Err(CommandError::InvalidTransition {
                action: "receipt a page of",
                state: "resolved",
            });
        }
        if self.current_page(page_id, "receipt")?.state != PageState::Sent {
            return Ok(false);
        }
        if let Some(p) = self.escalation.page.as_mut() {
            p.state = PageState::Delivered;
            p.by = Some(by.to_string());
            p.at = Some(at);
        }
        let state = self.state;
        self.transition(state, by, at, format!("page {page_id} delivered to {by}"));
        Ok(true)
    }

    /// A pager declines `page_id`: the alert escalates to the next level at once (at the last
    /// level, that level is paged again so that another holder of the role can take it).
    ///
    /// # Errors
    /// `INVALID_TRANSITION` unless the alert is open and the page is its current one, not yet
    /// accepted or declined.
    pub fn decline(
        &mut self,
        page_id: &str,
        by: &str,
        reason: &str,
        at: Timestamp,
    ) -> Result<(), CommandError> {
        if self.state != AlertState::Open {
            return Err(CommandError::InvalidTransition {
                action: "decline a page of",
                state: self.state.as_str(),
            });
        }
        let page = self.current_page(page_id, "decline")?;
        if matches!(page.state, PageState::Accepted | PageState::Declined) {
            return Err(CommandError::InvalidTransition {
                action: "decline",
                state: page.state.as_str(),
            });
        }
        if let Some(p) = self.escalation.page.as_mut() {
            p.state = PageState::Declined;
            p.by = Some(by.to_string());
            p.at = Some(at);
        }
        let alert_id = self.alert_id.clone();
        let unit = self.unit_id.clone();
        let e = &mut self.escalation;
        let next = (e.level + 1).min(e.last_level());
        let since = at.plus_millis(-e.after(next));
        e.go_to(next, since, &alert_id, unit.as_deref(), at);
        let why = if reason.is_empty() {
            String::new()
        } else {
            format!(" ({reason})")
        };
        let reason = format!(
            "page {page_id} declined by {by}{why}: paged level {next} ({})",
            e.targets.join(", ")
        );
        self.transition(AlertState::Open, by, at, reason);
        Ok(())
    }

    /// Bookkeeping of a person's acknowledgement: escalation stops, the acknowledgement expires
    /// after the policy's `ack_expiry`, and the current page counts as accepted.
    pub(crate) fn on_acknowledged(&mut self, by: &str, at: Timestamp) {
        self.escalation.next_at = None;
        self.snoozed_until = None;
        self.ack_expires_at = self
            .escalation
            .snapshot
            .as_ref()
            .map(|p| at.plus_millis(p.ack_expiry_ms));
        if let Some(p) = self.escalation.page.as_mut()
            && matches!(p.state, PageState::Sent | PageState::Delivered)
        {
            p.state = PageState::Accepted;
            p.by = Some(by.to_string());
            p.at = Some(at);
        }
    }

    /// Bookkeeping of a snooze until `until`: escalation and acknowledgement expiry pause.
    pub(crate) fn on_snoozed(&mut self, until: Timestamp) {
        self.escalation.next_at = None;
        self.ack_expires_at = None;
        self.snoozed_until = Some(until);
    }

    /// Bookkeeping of a resolve: nothing is scheduled any more.
    pub(crate) fn on_resolved(&mut self) {
        self.escalation.next_at = None;
        self.ack_expires_at = None;
        self.snoozed_until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::command::{CommandKind, MAX_SNOOZE_MS};
    use crate::alert::escalation::{Policies, page_alert};
    use crate::alert::record::Explanation;
    use vigil_config::{Category, Level, Role, Rule};

    const T0: Timestamp = Timestamp(1_764_234_840_000); // 2025-11-27T09:14:00Z

    fn at(min: i64) -> Timestamp {
        T0.plus_millis(min * MINUTE)
    }

    fn secs(s: i64) -> Timestamp {
        T0.plus_millis(s * 1000)
    }

    fn alert_with(policies: &Policies, level: Level, category: Category) -> Alert {
        let id = crate::alert::alert_id("t1", "p1", Rule::News2High, T0);
        Alert {
            escalation: Escalation::start(
                policies.select(level, category),
                &id,
                Some("icu-3"),
                T0,
                0,
            ),
            alert_id: id,
            tenant_id: "t1".into(),
            category,
            level,
            patient_id: Some("p1".into()),
            unit_id: Some("icu-3".into()),
            explanation: Explanation {
                profile: "default".into(),
                ..Explanation::default()
            },
            ..Alert::opening(Rule::News2High, T0, T0)
        }
    }

    fn critical() -> Alert {
        alert_with(
            &Policies::default(),
            Level::Critical,
            Category::Deterioration,
        )
    }

    fn page_id(a: &Alert) -> String {
        a.escalation
            .page
            .as_ref()
            .map(|p| p.page_id.clone())
            .unwrap_or_default()
    }

    fn page_state(a: &Alert) -> Option<PageState> {
        a.escalation.page.as_ref().map(|p| p.state)
    }

    fn ack(a: &mut Alert, minute: i64) {
        a.command(CommandKind::Ack, Role::Nurse, "nurse-1", "", at(minute))
            .expect("ack");
    }

    #[test]
    fn critical_pages_the_nurse_then_charge_nurse_then_rapid_response() {
        let mut a = critical();
        assert_eq!(a.escalation.policy, "critical-default");
        assert_eq!(
            (a.escalation.level, a.escalation.targets.clone()),
            (1, vec!["role:nurse@icu-3".to_string()])
        );
        assert_eq!(
            a.escalation.next_at,
            Some(at(5)),
            "contract example: opened 09:14, next 09:19"
        );
        assert_eq!(page_state(&a), Some(PageState::Sent));
        // Receipted, so no resend noise in between.
        assert!(
            a.receipt(&page_id(&a), "pager-1", secs(10))
                .expect("receipt")
        );
        assert!(a.advance(at(5).plus_millis(-1), true).is_empty(), "not yet");
        let out = a.advance(at(5), true);
        assert_eq!(out.len(), 1);
        let l2 = &out[0];
        assert_eq!((l2.state, l2.escalation.level), (AlertState::Open, 2));
        assert_eq!(
            l2.escalation.targets,
            vec!["role:charge_nurse@icu-3".to_string()]
        );
        assert_eq!(l2.transition.from, Some(AlertState::Open));
        assert_eq!(
            l2.transition.reason,
            "not acknowledged within 5 min: escalated to level 2 (role:charge_nurse@icu-3)"
        );
        assert_eq!(
            l2.escalation.next_at,
            Some(at(10)),
            "after counts from the opening"
        );
        assert_ne!(
            page_id(l2),
            page_id(&critical()),
            "a new page for the new level"
        );
        a.receipt(&page_id(&a), "pager-2", at(5)).expect("receipt");
        let l3 = a.advance(at(10), true).pop().expect("level 3");
        assert_eq!(l3.escalation.level, 3);
        assert_eq!(
            l3.escalation.targets,
            vec!["role:rapid_response@icu-3".to_string()]
        );
        assert_eq!(l3.escalation.next_at, None, "last level");
    }

    #[test]
    fn a_timer_for_a_superseded_escalation_does_nothing() {
        let mut a = critical();
        ack(&mut a, 4);
        let version = a.version;
        assert_eq!(a.escalation.next_at, None, "acknowledging stops escalation");
        assert_eq!(page_state(&a), Some(PageState::Accepted));
        assert!(
            a.advance(at(5), true).is_empty(),
            "the 09:19 timer finds nothing due"
        );
        assert!(a.advance(at(10), true).is_empty());
        assert_eq!(a.version, version);
        a.command(CommandKind::Resolve, Role::Nurse, "nurse-1", "", at(11))
            .expect("resolve");
        assert_eq!(a.next_deadline(), None);
        assert!(a.advance(at(600), true).is_empty(), "nothing after resolve");
    }

    #[test]
    fn deadlines_missed_while_down_fire_at_once_in_order() {
        let mut a = critical();
        a.receipt(&page_id(&a), "pager-1", secs(5))
            .expect("receipt");
        // The engine was down from 09:15 to 09:40: both levels are due on recovery.
        let out = a.advance(at(26), true);
        let levels: Vec<u32> = out.iter().map(|x| x.escalation.level).collect();
        assert_eq!(levels[..2], [2, 3]);
        assert!(
            out.iter().skip(2).all(|x| x.escalation.level == 3),
            "then resends of the level-3 page"
        );
        assert_eq!(a.escalation.level, 3);
    }

    #[test]
    fn an_unreceipted_page_is_sent_again_after_the_receipt_timeout() {
        let mut a = critical();
        assert_eq!(a.next_deadline(), Some(secs(60)));
        let out = a.advance(secs(60), true);
        assert_eq!(out.len(), 1);
        let p = out[0].escalation.page.as_ref().expect("page");
        assert_eq!(
            (p.attempts, p.state, p.sent_at),
            (2, PageState::Sent, secs(60))
        );
        assert!(
            out[0]
                .transition
                .reason
                .contains("not receipted within 1 min: sent again (attempt 2)"),
            "{}",
            out[0].transition.reason
        );
        assert!(
            a.receipt(&page_id(&a), "pager-1", secs(70))
                .expect("receipt")
        );
        assert_eq!(page_state(&a), Some(PageState::Delivered));
        assert_eq!(
            a.transition.reason,
            format!("page {} delivered to pager-1", page_id(&a))
        );
        assert!(
            !a.receipt(&page_id(&a), "pager-2", secs(71))
                .expect("second receipt"),
            "already delivered: no change"
        );
        assert_eq!(
            a.next_deadline(),
            Some(at(5)),
            "no more resends, escalation still due"
        );
    }

    #[test]
    fn decline_jumps_a_level_at_once() {
        let mut a = critical();
        let first = page_id(&a);
        a.decline(&first, "charge-1", "in theatre", at(1))
            .expect("decline");
        assert_eq!(a.escalation.level, 2);
        assert_eq!(
            a.transition.reason,
            format!(
                "page {first} declined by charge-1 (in theatre): paged level 2 (role:charge_nurse@icu-3)"
            )
        );
        assert_eq!(
            a.escalation.next_at,
            Some(at(6)),
            "level 3 keeps its 5 min spacing"
        );
        let err = a.decline(&first, "x", "", at(2)).expect_err("superseded");
        assert_eq!(err.code(), "INVALID_TRANSITION");
        let second = page_id(&a);
        a.decline(&second, "y", "", at(2)).expect("decline level 2");
        assert_eq!(a.escalation.level, 3);
        let third = page_id(&a);
        a.decline(&third, "z", "", at(3))
            .expect("decline at the last level");
        assert_eq!(a.escalation.level, 3, "the last level is paged again");
        assert_ne!(page_id(&a), third);
        ack(&mut a, 4);
        let err = a
            .decline(&page_id(&a), "z", "", at(5))
            .expect_err("acknowledged");
        assert_eq!(err.code(), "INVALID_TRANSITION");
        assert_eq!(
            a.receipt("page-unknown-1", "z", at(5))
                .expect_err("unknown")
                .code(),
            "INVALID_TRANSITION"
        );
    }

    #[test]
    fn a_snooze_ends_back_in_open_with_escalation_restarting() {
        let mut a = critical();
        a.decline(&page_id(&a), "n", "", at(1)).expect("to level 2");
        a.command(
            CommandKind::Snooze {
                millis: 30 * MINUTE,
            },
            Role::Nurse,
            "nurse-1",
            "comfort care",
            at(2),
        )
        .expect("snooze");
        assert_eq!(a.state, AlertState::Snoozed);
        assert_eq!(a.transition.reason, "snoozed for 30 min: comfort care");
        assert_eq!(a.snoozed_until, Some(at(32)));
        assert_eq!(
            a.next_deadline(),
            Some(at(32)),
            "no escalation or resend while snoozed"
        );
        let err = a
            .command(
                CommandKind::Snooze {
                    millis: 10 * MINUTE,
                },
                Role::Nurse,
                "n",
                "",
                at(3),
            )
            .expect_err("snoozed twice");
        assert_eq!(err.code(), "INVALID_TRANSITION");
        for bad in [0, 999, MAX_SNOOZE_MS + 1] {
            let mut b = critical();
            let err = b
                .command(
                    CommandKind::Snooze { millis: bad },
                    Role::Nurse,
                    "n",
                    "",
                    at(1),
                )
                .expect_err("bad minutes");
            assert_eq!(err.code(), "BAD_REQUEST");
            assert_eq!(b.version, 1);
        }
        assert!(a.advance(at(31), true).is_empty());
        let back = a.advance(at(32), true).pop().expect("snooze end");
        assert_eq!(
            (back.state, back.transition.from),
            (AlertState::Open, Some(AlertState::Snoozed))
        );
        assert_eq!(back.escalation.level, 1, "escalation restarts");
        assert_eq!(back.escalation.next_at, Some(at(37)));
        assert_eq!(back.snoozed_until, None);
        assert!(back.transition.reason.starts_with("snooze ended"));
    }

    #[test]
    fn an_expired_acknowledgement_repages_while_the_condition_holds() {
        let mut a = critical();
        a.advance(at(5), true); // level 2
        ack(&mut a, 6);
        assert_eq!(a.ack_expires_at, Some(at(36)), "critical: 30 min");
        // The condition is clearing at expiry: the acknowledgement is renewed quietly.
        assert!(a.advance(at(36), false).is_empty());
        assert_eq!(a.ack_expires_at, Some(at(66)));
        let out = a.advance(at(66), true);
        let re = out.first().expect("re-page");
        assert_eq!(
            (re.transition.from, re.state),
            (Some(AlertState::Acknowledged), AlertState::Open)
        );
        assert_eq!(re.escalation.level, 2, "at the current level");
        assert_eq!(re.escalation.next_at, Some(at(71)), "then on up the policy");
        assert!(
            re.transition
                .reason
                .starts_with("acknowledgement expired after 30 min")
        );
        assert_eq!(page_state(re), Some(PageState::Sent));
    }

    #[test]
    fn policies_from_the_file_replace_built_ins_and_come_first() {
        let text = r#"
[[escalation.policies]]
name = "critical-default"
match = { level = "critical" }
page_receipt_timeout = "30s"
levels = [ { after = "0s", targets = ["nurse"] }, { after = "2s", targets = ["charge_nurse"] } ]

[[escalation.policies]]
name = "sepsis-team"
match = { category = "sepsis" }
levels = [ { after = "0s", targets = ["physician", "rapid_response"] } ]
"#;
        let config = vigil_config::Config::from_toml(text, "t.toml").expect("config");
        let p = Policies::from_config(&config.escalation);
        let names: Vec<&str> = p.names().collect();
        assert_eq!(
            names,
            [
                "critical-default",
                "sepsis-team",
                "delay-default",
                "warning-default"
            ]
        );
        let crit = p
            .select(Level::Critical, Category::Deterioration)
            .expect("critical");
        assert_eq!(
            (
                crit.levels[1].after_ms,
                crit.page_receipt_timeout_ms,
                crit.ack_expiry_ms
            ),
            (2000, 30_000, 30 * MINUTE)
        );
        assert_eq!(
            p.select(Level::Critical, Category::Sepsis)
                .map(|x| x.name.as_str()),
            Some("critical-default"),
            "first match wins"
        );
        let sepsis = p.select(Level::Warning, Category::Sepsis).expect("sepsis");
        assert_eq!(sepsis.name, "sepsis-team");
        assert_eq!(sepsis.ack_expiry_ms, 60 * MINUTE);
        let a = alert_with(&p, Level::Warning, Category::Sepsis);
        assert_eq!(
            a.escalation.targets,
            ["role:physician@icu-3", "role:rapid_response@icu-3"]
        );
        assert_eq!(a.escalation.next_at, None, "single level");
        let d = Policies::default();
        assert_eq!(
            d.select(Level::Warning, Category::Delay)
                .map(|x| x.name.as_str()),
            Some("delay-default")
        );
        assert_eq!(
            d.select(Level::Warning, Category::Technical)
                .map(|x| x.name.as_str()),
            Some("warning-default")
        );
        let info = alert_with(&d, Level::Info, Category::Technical);
        assert_eq!(
            (
                info.escalation.policy.as_str(),
                info.escalation.level,
                info.next_deadline()
            ),
            ("none", 0, None)
        );
    }

    #[test]
    fn warning_default_spacing_and_the_snapshot_outlives_config() {
        let mut a = alert_with(
            &Policies::default(),
            Level::Warning,
            Category::Deterioration,
        );
        a.receipt(&page_id(&a), "p", secs(1)).expect("receipt");
        assert_eq!(a.escalation.next_at, Some(at(15)));
        a.receipt(&page_id(&a), "p", secs(2)).expect("again");
        let l2 = a.advance(at(15), true).pop().expect("level 2");
        assert_eq!(l2.escalation.targets, ["role:charge_nurse@icu-3"]);
        a.receipt(&page_id(&a), "p", at(15)).expect("receipt");
        let l3 = a.advance(at(30), true).pop().expect("level 3");
        assert_eq!(l3.escalation.targets, ["role:physician@icu-3"]);
        let snap = l3.escalation.snapshot.as_ref().expect("snapshot");
        assert_eq!(snap.ack_expiry_ms, 60 * MINUTE);
        let json = serde_json::to_value(&l3).expect("json");
        assert_eq!(
            json["escalation"]["snapshot"]["levels"][2]["targets"][0],
            "physician"
        );
        assert_eq!(json["escalation"]["page"]["state"], "sent");
        assert_eq!(json["escalation"]["nextAt"], serde_json::Value::Null);
    }

    #[test]
    fn page_ids_name_their_alert() {
        let a = critical();
        assert_eq!(page_alert(&page_id(&a)), Some(a.alert_id.clone()));
        for bad in ["alert-1", "page-", "page-abc", "page-abc-x"] {
            assert_eq!(page_alert(bad), None, "{bad}");
        }
    }

    #[test]
    fn pages_reach_their_roles_and_matching_pagers() {
        let a = critical();
        let p = a.escalation.page.as_ref().expect("page");
        assert!(p.reaches(Role::Nurse, &[]));
        assert!(!p.reaches(Role::ChargeNurse, &[]));
        assert!(
            p.reaches(Role::Pager, &[]),
            "a pager without page_roles takes every role"
        );
        assert!(p.reaches(Role::Pager, &[Role::Nurse, Role::Physician]));
        assert!(!p.reaches(Role::Pager, &[Role::RapidResponse]));
        assert!(!p.reaches(Role::Viewer, &[]));
    }
}
