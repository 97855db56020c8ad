//! What the rules look at, computed once per decision: the canary's state,
//! the watched alarms that fire, cannot be read, have no data or are
//! suppressed, the canary's metrics, the bake-time check; and the bake
//! marks brought up to date with it.

use std::collections::BTreeSet;
use std::time::Duration;

use super::super::action::Hold;
use super::super::record::{Mark, Pause, StageRecord, StepMark};
use super::super::state::{
    AlarmReading, AlarmState, CanaryMetrics, CanarySnapshot, MetricsReading, Signals, StageSnapshot,
};
use super::super::trigger::Trigger;
use crate::config::ManagedStage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Stage,
    Canary,
}

/// A watched alarm in ALARM whose actions are not suppressed.
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
    Missing {
        api_name: String,
        stage_dimension: String,
    },
    TooFew(f64),
    Healthy,
    Unhealthy(CanaryMetrics),
}

impl Metrics {
    /// Why these metrics stop progression or promotion, if they do:
    /// unreadable, missing, or over the threshold.
    pub(super) fn hold(&self) -> Option<Hold> {
        match self {
            Self::Unreadable => Some(Hold::MetricsUnreadable),
            Self::Missing {
                api_name,
                stage_dimension,
            } => Some(Hold::CanaryMetricsMissing {
                api_name: api_name.clone(),
                stage_dimension: stage_dimension.clone(),
            }),
            Self::Unhealthy(m) => Some(Hold::CanaryUnhealthy {
                detail: format!("5XX rate {}/{}", m.errors_5xx, m.count),
            }),
            Self::NotNeeded | Self::TooFew(_) | Self::Healthy => None,
        }
    }
}

/// Everything the rules look at, computed once.
pub(super) struct View<'a> {
    pub(super) stage: &'a ManagedStage,
    pub(super) snap: &'a StageSnapshot,
    pub(super) record: &'a StageRecord,
    pub(super) signals: &'a Signals,
    pub(super) now: u64,
    pub(super) canary: Canary<'a>,
    /// The pause in force, if any.
    pub(super) paused: Option<&'a Pause>,
    /// Relevant alarms in ALARM: stage alarms, plus canary alarms while a
    /// canary is active (a canary alarm with no canary is stale).
    pub(super) firing: Vec<Firing<'a>>,
    /// Relevant alarms that could not be read.
    pub(super) unreadable: Vec<(&'a str, Role)>,
    /// Relevant alarms in INSUFFICIENT_DATA: no evidence either way.
    pub(super) no_evidence: Vec<(&'a str, Role)>,
    /// Relevant alarms in ALARM with their actions suppressed or muted.
    pub(super) suppressed: Vec<(&'a str, Role)>,
    pub(super) metrics: Metrics,
    /// `bake_time` shorter than a watched alarm needs to fire.
    pub(super) bake_too_short: Option<Hold>,
}

pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl<'a> View<'a> {
    pub(super) fn new(
        stage: &'a ManagedStage,
        snap: &'a StageSnapshot,
        record: &'a StageRecord,
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
        let mut no_evidence = Vec::new();
        let mut suppressed = Vec::new();
        let mut seen = BTreeSet::new();
        for (alarm, role) in watched {
            if !seen.insert(alarm.as_str()) {
                continue;
            }
            let reading = effective_reading(alarm, signals, trigger);
            match reading.state {
                AlarmState::Alarm if reading.suppressed => suppressed.push((alarm.as_str(), role)),
                AlarmState::Alarm => firing.push(Firing {
                    alarm,
                    role,
                    since_ms: reading.since_ms,
                    fresh: reading
                        .since_ms
                        .is_none_or(|s| !record.is_handled(alarm, s)),
                }),
                AlarmState::Unreadable => unreadable.push((alarm.as_str(), role)),
                AlarmState::InsufficientData => no_evidence.push((alarm.as_str(), role)),
                AlarmState::Ok => {}
            }
        }
        let metrics = if active {
            match &signals.canary_metrics {
                MetricsReading::DimensionMissing {
                    api_name,
                    stage_dimension,
                } => Metrics::Missing {
                    api_name: api_name.clone(),
                    stage_dimension: stage_dimension.clone(),
                },
                other => match other.sane() {
                    None => Metrics::Unreadable,
                    // u64 → f64 may round above 2^53; irrelevant for counts.
                    Some(m) if m.count < stage.min_requests as f64 => Metrics::TooFew(m.count),
                    Some(m) if m.error_rate() > stage.error_rate_threshold => Metrics::Unhealthy(m),
                    Some(_) => Metrics::Healthy,
                },
            }
        } else {
            Metrics::NotNeeded
        };
        Self {
            stage,
            snap,
            record,
            signals,
            now,
            canary,
            paused: record.pause_at(now),
            firing,
            unreadable,
            no_evidence,
            suppressed,
            metrics,
            bake_too_short: bake_too_short(stage, signals),
        }
    }

    pub(super) fn bake_ms(&self) -> u64 {
        millis(self.stage.bake_time)
    }

    /// When automatic rollbacks and progression may resume after the last
    /// rollback, if that is still in the future.
    pub(super) fn cooldown_until(&self) -> Option<u64> {
        let until = self
            .record
            .last_rollback_ms?
            .saturating_add(millis(self.stage.cooldown));
        (self.now < until).then_some(until)
    }

    /// Whether any alarm of `role` casts doubt on health: firing, unreadable,
    /// without data, or firing with its actions suppressed.
    fn doubt(&self, role: Option<Role>) -> bool {
        let matches = |r: Role| role.is_none_or(|want| want == r);
        self.firing.iter().any(|f| matches(f.role))
            || [&self.unreadable, &self.no_evidence, &self.suppressed]
                .iter()
                .any(|list| list.iter().any(|(_, r)| matches(*r)))
    }
}

/// The first watched alarm whose period × evaluation periods exceeds the
/// bake time.
fn bake_too_short(stage: &ManagedStage, signals: &Signals) -> Option<Hold> {
    let bake_ms = millis(stage.bake_time);
    stage
        .stage_alarms
        .iter()
        .chain(&stage.canary_alarms)
        .find_map(|alarm| {
            let needed_ms = signals.alarms.get(alarm)?.evaluation_ms?;
            (needed_ms > bake_ms).then(|| Hold::BakeTimeTooShort {
                alarm: alarm.clone(),
                bake_ms,
                needed_ms,
            })
        })
}

/// The reading that counts for `alarm`: the triggering event's state, unless
/// the read shows a newer state.
fn effective_reading(alarm: &str, signals: &Signals, trigger: &Trigger) -> AlarmReading {
    let read = signals.alarm(alarm);
    match trigger {
        Trigger::AlarmTransition(t) if t.alarm == alarm => match read.since_ms {
            Some(s) if s > t.timestamp_ms => read,
            _ => {
                let from_event = AlarmReading {
                    evaluation_ms: read.evaluation_ms,
                    ..AlarmReading::new(t.new_state, t.timestamp_ms)
                };
                if t.suppressed || read.suppressed {
                    from_event.suppressed()
                } else {
                    from_event
                }
            }
        },
        _ => read,
    }
}

/// When the canary on `snapshot` was first seen, as the record knows it
/// (`now_ms` for a canary the record has not seen yet). The metric window
/// starts no earlier.
pub fn canary_since(record: &StageRecord, snapshot: &StageSnapshot, now_ms: u64) -> u64 {
    match (&snapshot.canary, &record.step) {
        (Some(c), Some(s)) if s.deployment_id == c.deployment_id => s.canary_since_ms,
        _ => now_ms,
    }
}

/// Brings the bake marks up to date with what the stage shows: a new
/// deployment or canary step starts baking now, and doubt about health
/// (an alarm firing, unreadable, without data or suppressed; canary metrics
/// bad, missing or unreadable) restarts the bake. A promotion leftover the
/// stage no longer shows is forgotten.
pub(super) fn observe(v: &View<'_>, next: &mut StageRecord) {
    let dep = &v.snap.deployment_id;
    let live = match next.live.take() {
        Some(m) if m.deployment_id == *dep => m,
        _ => Mark::new(dep.clone(), v.now),
    };
    let stage_doubt = v.doubt(Some(Role::Stage));
    next.live = Some(Mark {
        at_ms: if stage_doubt { v.now } else { live.at_ms },
        ..live
    });

    next.step = match v.canary {
        Canary::Active(c) => {
            let canary_since_ms = canary_since(v.record, v.snap, v.now);
            let step = match next.step.take() {
                Some(s) if s.deployment_id == c.deployment_id && s.percent == c.percent_traffic => {
                    s
                }
                _ => StepMark {
                    deployment_id: c.deployment_id.clone(),
                    percent: c.percent_traffic,
                    since_ms: v.now,
                    canary_since_ms,
                },
            };
            let doubt = v.doubt(None)
                || matches!(
                    v.metrics,
                    Metrics::Unreadable | Metrics::Unhealthy(_) | Metrics::Missing { .. }
                );
            Some(StepMark {
                since_ms: if doubt { v.now } else { step.since_ms },
                ..step
            })
        }
        Canary::Absent | Canary::Leftover(_) => None,
    };

    let zeroed_still_there = match (&next.zeroed_canary, &v.snap.canary) {
        (Some(z), Some(c)) => *z == c.deployment_id,
        _ => false,
    };
    if !zeroed_still_there {
        next.zeroed_canary = None;
    }
    if next.paused.as_ref().is_some_and(|p| !p.holds_at(v.now)) {
        next.paused = None;
    }
}
