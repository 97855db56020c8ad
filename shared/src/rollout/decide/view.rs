//! What the rules look at, computed once per decision: the canary's state,
//! the watched alarms that fire or cannot be read, the canary's metrics; and
//! the bake marks brought up to date with it.

use std::time::Duration;

use super::super::bookkeeping::{Bookkeeping, Mark, StepMark};
use super::super::state::{
    AlarmReading, AlarmState, CanaryMetrics, CanarySnapshot, Signals, StageSnapshot,
};
use super::super::trigger::Trigger;
use crate::config::ManagedStage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Stage,
    Canary,
}

/// A watched alarm in ALARM.
pub(super) struct Firing<'a> {
    pub(super) alarm: &'a str,
    pub(super) role: Role,
    pub(super) since_ms: Option<u64>,
    /// Its transition has not been handled yet (unknown `since` counts as
    /// not handled: without it there is no way to tell).
    pub(super) fresh: bool,
}

pub(super) enum Canary<'a> {
    Absent,
    Active(&'a CanarySnapshot),
    Leftover(&'a CanarySnapshot),
}

pub(super) enum Metrics {
    NotNeeded,
    Unreadable,
    TooFew(f64),
    Healthy,
    Unhealthy(CanaryMetrics),
}

/// Everything the rules look at, computed once.
pub(super) struct View<'a> {
    pub(super) stage: &'a ManagedStage,
    pub(super) snap: &'a StageSnapshot,
    pub(super) book: &'a Bookkeeping,
    pub(super) signals: &'a Signals,
    pub(super) now: u64,
    pub(super) canary: Canary<'a>,
    /// Relevant alarms in ALARM: stage alarms, plus canary alarms while a
    /// canary is active (a canary alarm with no canary is stale).
    pub(super) firing: Vec<Firing<'a>>,
    /// Relevant alarms that could not be read.
    pub(super) unreadable: Vec<(&'a str, Role)>,
    pub(super) metrics: Metrics,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl<'a> View<'a> {
    pub(super) fn new(
        stage: &'a ManagedStage,
        snap: &'a StageSnapshot,
        book: &'a Bookkeeping,
        signals: &'a Signals,
        trigger: &Trigger,
        now: u64,
    ) -> Self {
        let canary = match &snap.canary {
            None => Canary::Absent,
            Some(c) if c.is_active(&snap.deployment_id) => Canary::Active(c),
            Some(c) => Canary::Leftover(c),
        };
        let active = matches!(canary, Canary::Active(_));
        let watched = stage.stage_alarms.iter().map(|a| (a, Role::Stage)).chain(
            stage
                .canary_alarms
                .iter()
                .filter(|_| active)
                .map(|a| (a, Role::Canary)),
        );
        let mut firing = Vec::new();
        let mut unreadable = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (alarm, role) in watched {
            if !seen.insert(alarm.as_str()) {
                continue;
            }
            let reading = effective_reading(alarm, signals, trigger);
            match reading.state {
                AlarmState::Alarm => firing.push(Firing {
                    alarm,
                    role,
                    since_ms: reading.since_ms,
                    fresh: reading.since_ms.is_none_or(|s| !book.is_handled(alarm, s)),
                }),
                AlarmState::Unreadable => unreadable.push((alarm.as_str(), role)),
                AlarmState::Ok | AlarmState::InsufficientData => {}
            }
        }
        let metrics = if active {
            match signals.sane_metrics() {
                None => Metrics::Unreadable,
                // u64 → f64 may round above 2^53; irrelevant for counts.
                Some(m) if m.count < stage.min_requests as f64 => Metrics::TooFew(m.count),
                Some(m) if m.error_rate() > stage.error_rate_threshold => Metrics::Unhealthy(m),
                Some(_) => Metrics::Healthy,
            }
        } else {
            Metrics::NotNeeded
        };
        Self {
            stage,
            snap,
            book,
            signals,
            now,
            canary,
            firing,
            unreadable,
            metrics,
        }
    }

    pub(super) fn bake_ms(&self) -> u64 {
        millis(self.stage.bake_time)
    }

    /// When automatic rollbacks and progression may resume after the last
    /// rollback, if that is still in the future.
    pub(super) fn cooldown_until(&self) -> Option<u64> {
        let until = self
            .book
            .last_rollback_ms?
            .saturating_add(millis(self.stage.cooldown));
        (self.now < until).then_some(until)
    }

    pub(super) fn exists(&self, deployment: &str) -> bool {
        self.signals.deployments.contains(deployment)
    }
}

/// The reading that counts for `alarm`: the triggering event's state, unless
/// the read shows a newer state.
fn effective_reading(alarm: &str, signals: &Signals, trigger: &Trigger) -> AlarmReading {
    let read = signals.alarm(alarm);
    match trigger {
        Trigger::AlarmTransition(t) if t.alarm == alarm => match read.since_ms {
            Some(s) if s > t.timestamp_ms => read,
            _ => AlarmReading::new(t.new_state, t.timestamp_ms),
        },
        _ => read,
    }
}

/// Brings the bake marks up to date with what the stage shows: a new
/// deployment or canary step starts baking now, and doubt about health
/// (an alarm firing or unreadable, canary metrics bad or unreadable)
/// restarts the bake.
pub(super) fn observe(v: &View<'_>, next: &mut Bookkeeping) {
    let dep = &v.snap.deployment_id;
    let live = match next.live.take() {
        Some(m) if m.deployment_id == *dep => m,
        _ => Mark::new(dep.clone(), v.now),
    };
    let stage_doubt = v.firing.iter().any(|f| f.role == Role::Stage)
        || v.unreadable.iter().any(|(_, r)| *r == Role::Stage);
    next.live = Some(Mark {
        at_ms: if stage_doubt { v.now } else { live.at_ms },
        ..live
    });

    next.step = match v.canary {
        Canary::Active(c) => {
            let step = match next.step.take() {
                Some(s) if s.deployment_id == c.deployment_id && s.percent == c.percent_traffic => {
                    s
                }
                _ => StepMark {
                    deployment_id: c.deployment_id.clone(),
                    percent: c.percent_traffic,
                    since_ms: v.now,
                },
            };
            let doubt = !v.firing.is_empty()
                || !v.unreadable.is_empty()
                || matches!(v.metrics, Metrics::Unreadable | Metrics::Unhealthy(_));
            Some(StepMark {
                since_ms: if doubt { v.now } else { step.since_ms },
                ..step
            })
        }
        Canary::Absent | Canary::Leftover(_) => None,
    };
}
