//! Several limits on one request, e.g. 10/s *and* 10,000/day.
//!
//! All-or-nothing: a request is admitted only if every limit admits it, and a
//! request one limit denies consumes nothing from any of them (otherwise a
//! client hammering the per-second limit would drain its daily quota with
//! requests it never got served).
//!
//! When the limits live in different Durable Objects the adapter cannot check
//! them atomically; it checks them one by one and [`super::refund`]s the
//! admitted ones if a later one denies.

use std::time::Duration;

use super::gcra::{check, normalize, GcraState, LimitDecision, Quota};

/// One limit to check: its quota, its stored state and what this request
/// costs under it (limits of one route may weigh a request differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitInput {
    /// The quota, with any per-caller override already applied.
    pub quota: Quota,
    /// The state loaded from storage (`Default` when there is none).
    pub state: GcraState,
    /// The units this request costs under this limit.
    pub cost: u64,
}

impl LimitInput {
    /// A limit with `quota`, stored `state` and request `cost`.
    pub const fn new(quota: Quota, state: GcraState, cost: u64) -> Self {
        Self { quota, state, cost }
    }
}

/// The combined outcome of checking several limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiDecision {
    /// Whether every limit admits the request.
    pub allowed: bool,
    /// On deny, the longest wait among the denying limits (after it, the
    /// others only have more room). `None` when admitted, or when some
    /// denying limit can never admit this cost.
    pub retry_after: Option<Duration>,
    /// Per limit, in input order. `allowed` says whether that limit alone
    /// admits; `remaining`/`reset_after` describe the state actually stored.
    pub decisions: Vec<LimitDecision>,
    /// Per limit, in input order: the state to store. On deny, each is the
    /// input state, [`normalize`]d (equal to it unless a stricter quota left
    /// it beyond this one's tolerance).
    pub states: Vec<GcraState>,
}

impl MultiDecision {
    /// Index of the limit to advertise in the `RateLimit` header: see
    /// [`most_restrictive`].
    pub fn most_restrictive(&self) -> Option<usize> {
        most_restrictive(&self.decisions)
    }
}

/// Checks a request at `now_ms` against every limit, each at its own cost.
///
/// An empty list admits.
pub fn check_all(limits: &[LimitInput], now_ms: u64) -> MultiDecision {
    let results: Vec<(LimitDecision, GcraState)> = limits
        .iter()
        .map(|l| check(l.state, now_ms, l.cost, &l.quota))
        .collect();
    let allowed = results.iter().all(|(d, _)| d.allowed);

    if allowed {
        let (decisions, states) = results.into_iter().unzip();
        return MultiDecision {
            allowed,
            retry_after: None,
            decisions,
            states,
        };
    }

    // Some limit denied: nothing is consumed anywhere. Limits that would have
    // admitted report their untouched state.
    let mut retry_after = Some(Duration::ZERO);
    let mut decisions = Vec::with_capacity(limits.len());
    for (l, (decision, _)) in limits.iter().zip(results) {
        if decision.allowed {
            let (untouched, _) = check(l.state, now_ms, 0, &l.quota);
            decisions.push(LimitDecision {
                allowed: true,
                ..untouched
            });
        } else {
            retry_after = match (retry_after, decision.retry_after) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
            decisions.push(decision);
        }
    }
    MultiDecision {
        allowed,
        retry_after,
        decisions,
        states: limits
            .iter()
            .map(|l| normalize(l.state, now_ms, &l.quota))
            .collect(),
    }
}

/// The [`MultiDecision`] for limits checked one by one, each against its own
/// stored state, as an adapter does when every limit lives in its own Durable
/// Object: admitted iff every limit admitted, and on a denial the longest wait
/// among the denying limits (`None` if one of them can never admit).
///
/// Two-phase protocol: check each limit with [`check`](super::check) (which
/// consumes on admit); if any denied, [`refund`](super::refund) the admitted
/// ones and pass, for those, the decision after the refund (a cost-0 check,
/// marked `allowed`), so the result equals what [`check_all`] would have
/// said. `states` are the states now stored, in the same order.
pub fn combine(decisions: Vec<LimitDecision>, states: Vec<GcraState>) -> MultiDecision {
    let allowed = decisions.iter().all(|d| d.allowed);
    let retry_after = if allowed {
        None
    } else {
        decisions
            .iter()
            .filter(|d| !d.allowed)
            .try_fold(Duration::ZERO, |longest, d| {
                d.retry_after.map(|wait| longest.max(wait))
            })
    };
    MultiDecision {
        allowed,
        retry_after,
        decisions,
        states,
    }
}

/// The most restrictive decision: denied before admitted, then the lowest
/// `remaining`, then the longest `reset_after`. `None` for an empty slice.
pub fn most_restrictive(decisions: &[LimitDecision]) -> Option<usize> {
    decisions
        .iter()
        .enumerate()
        .min_by(|(_, a), (_, b)| {
            a.allowed
                .cmp(&b.allowed)
                .then(a.remaining.cmp(&b.remaining))
                .then(b.reset_after.cmp(&a.reset_after))
        })
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throttle::gcra::refund;
    use proptest::prelude::*;

    const NOW: u64 = 1_700_000_000_000;

    fn fresh(quotas: &[Quota]) -> Vec<(Quota, GcraState)> {
        quotas.iter().map(|q| (*q, GcraState::default())).collect()
    }

    /// The limits at one cost each, as `check_all` takes them.
    fn inputs(limits: &[(Quota, GcraState)], cost: u64) -> Vec<LimitInput> {
        limits
            .iter()
            .map(|(q, s)| LimitInput::new(*q, *s, cost))
            .collect()
    }

    #[test]
    fn each_limit_charges_its_own_cost() {
        // 10/s at cost 1 and 10/s at cost 5: the second allows two requests.
        let limits = [
            LimitInput::new(Quota::per_second(10), GcraState::default(), 1),
            LimitInput::new(Quota::per_second(10), GcraState::default(), 5),
        ];
        let d = check_all(&limits, NOW);
        assert!(d.allowed);
        assert_eq!(d.decisions[0].remaining, 9);
        assert_eq!(d.decisions[1].remaining, 5);
        let mut next = limits;
        for (l, s) in next.iter_mut().zip(&d.states) {
            l.state = *s;
        }
        let d = check_all(&next, NOW);
        assert!(d.allowed);
        assert_eq!(d.decisions[1].remaining, 0);
        for (l, s) in next.iter_mut().zip(&d.states) {
            l.state = *s;
        }
        let d = check_all(&next, NOW);
        assert!(!d.allowed);
        assert!(d.decisions[0].allowed, "the cheap limit alone would admit");
        assert_eq!(d.decisions[0].remaining, 8, "and is not charged");
        assert_eq!(d.retry_after, Some(Duration::from_millis(500)));
    }

    #[test]
    fn combine_matches_check_all() {
        let quotas = [Quota::per_second(1), Quota::per_minute(2)];
        let mut limits = fresh(&quotas);
        let one_by_one = |limits: &[(Quota, GcraState)]| {
            let results: Vec<(LimitDecision, GcraState)> =
                limits.iter().map(|(q, s)| check(*s, NOW, 1, q)).collect();
            let denied = results.iter().any(|(d, _)| !d.allowed);
            let (decisions, states): (Vec<_>, Vec<_>) = results
                .into_iter()
                .zip(limits)
                .map(|((d, s), (q, _))| match (denied, d.allowed) {
                    (true, true) => {
                        let back = refund(s, NOW, 1, q);
                        let (peek, _) = check(back, NOW, 0, q);
                        (
                            LimitDecision {
                                allowed: true,
                                ..peek
                            },
                            back,
                        )
                    }
                    _ => (d, s),
                })
                .unzip();
            combine(decisions, states)
        };
        for _ in 0..3 {
            let atomic = check_all(&inputs(&limits, 1), NOW);
            let phased = one_by_one(&limits);
            assert_eq!(phased, atomic);
            for (l, s) in limits.iter_mut().zip(&atomic.states) {
                l.1 = *s;
            }
        }
        // A limit that can never admit the cost takes the retry hint away.
        let never = LimitDecision {
            retry_after: None,
            ..check(GcraState::default(), NOW, 2, &Quota::per_second(1)).0
        };
        let wait = check(limits[0].1, NOW, 1, &quotas[0]).0;
        assert!(!never.allowed && !wait.allowed && wait.retry_after.is_some());
        assert_eq!(combine(vec![wait, never], Vec::new()).retry_after, None);
        assert_eq!(combine(Vec::new(), Vec::new()), check_all(&[], NOW));
    }

    #[test]
    fn empty_admits() {
        let d = check_all(&[], NOW);
        assert!(d.allowed);
        assert_eq!(d.most_restrictive(), None);
    }

    #[test]
    fn per_second_and_per_day() {
        let quotas = [Quota::per_second(10), Quota::per_day(15)];
        let mut limits = fresh(&quotas);
        let mut admitted = 0;
        for ms in [
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000,
        ] {
            let d = check_all(&inputs(&limits, 1), NOW + ms);
            if d.allowed {
                admitted += 1;
            }
            for (l, s) in limits.iter_mut().zip(&d.states) {
                l.1 = *s;
            }
        }
        // 10 in the first second, then the daily 15 caps the second burst at 5.
        assert_eq!(admitted, 15);
        let d = check_all(&inputs(&limits, 1), NOW + 5_000);
        assert!(!d.allowed);
        assert_eq!(d.most_restrictive(), Some(1));
        assert!(d.decisions[0].allowed);
        assert!(!d.decisions[1].allowed);
        assert_eq!(d.retry_after, d.decisions[1].retry_after);
    }

    #[test]
    fn denied_request_consumes_nothing() {
        let quotas = [Quota::per_second(10), Quota::per_second(1)];
        let limits = fresh(&quotas);
        let d = check_all(&inputs(&limits, 2), NOW);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, None, "cost 2 never fits burst 1");
        assert_eq!(d.states, vec![GcraState::default(); 2]);
        assert_eq!(d.decisions[0].remaining, 10);
    }

    #[test]
    fn retry_after_is_the_longest_wait() {
        let quotas = [Quota::per_second(1), Quota::per_minute(1)];
        let mut limits = fresh(&quotas);
        let d = check_all(&inputs(&limits, 1), NOW);
        for (l, s) in limits.iter_mut().zip(&d.states) {
            l.1 = *s;
        }
        let d = check_all(&inputs(&limits, 1), NOW);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(Duration::from_secs(60)));
    }

    #[test]
    fn most_restrictive_prefers_denied_then_lowest_remaining() {
        let base = LimitDecision {
            allowed: true,
            limit: 10,
            window: Duration::from_secs(1),
            remaining: 5,
            reset_after: Duration::from_secs(1),
            retry_after: None,
        };
        let low = LimitDecision {
            remaining: 2,
            ..base
        };
        let low_longer = LimitDecision {
            reset_after: Duration::from_secs(9),
            ..low
        };
        let denied = LimitDecision {
            allowed: false,
            remaining: 3,
            ..base
        };
        assert_eq!(most_restrictive(&[base, low, low_longer]), Some(2));
        assert_eq!(most_restrictive(&[base, low, denied]), Some(2));
    }

    fn arb_quota() -> impl Strategy<Value = Quota> {
        (1u64..10, 1u64..3_000, 1u64..10)
            .prop_map(|(l, p, b)| Quota::new(l, Duration::from_millis(p)).with_burst(b))
    }

    proptest! {
        #[test]
        fn a_denied_request_changes_no_state(
            quotas in proptest::collection::vec(arb_quota(), 1..4),
            arrivals in proptest::collection::vec((0u64..50, 1u64..4), 1..80),
        ) {
            let mut limits = fresh(&quotas);
            let mut at = NOW;
            for (gap, cost) in arrivals {
                at += gap;
                let d = check_all(&inputs(&limits, cost), at);
                prop_assert_eq!(d.decisions.len(), limits.len());
                if !d.allowed {
                    let before: Vec<GcraState> = limits.iter().map(|l| l.1).collect();
                    prop_assert_eq!(&d.states, &before);
                    prop_assert!(d.decisions.iter().any(|x| !x.allowed));
                }
                for (l, s) in limits.iter_mut().zip(&d.states) {
                    l.1 = *s;
                }
            }
        }

        /// The two-phase path (check one, refund it when another denies)
        /// ends in the same states as the atomic check_all.
        #[test]
        fn two_phase_refund_matches_atomic(
            quotas in proptest::collection::vec(arb_quota(), 1..4),
            cost in 1u64..4,
            pre in proptest::collection::vec(0u64..5, 1..4),
        ) {
            let mut limits = fresh(&quotas);
            for ((q, s), n) in limits.iter_mut().zip(pre.iter().chain(std::iter::repeat(&0))) {
                for _ in 0..*n {
                    *s = check(*s, NOW, 1, q).1;
                }
            }
            let atomic = check_all(&inputs(&limits, cost), NOW);
            let mut phased: Vec<GcraState> = Vec::new();
            let mut denied = false;
            for (q, s) in &limits {
                let (d, next) = check(*s, NOW, cost, q);
                if !d.allowed { denied = true; break; }
                phased.push(next);
            }
            if denied {
                for (i, s) in phased.iter_mut().enumerate() {
                    *s = refund(*s, NOW, cost, &limits[i].0);
                }
                for (i, s) in phased.iter().enumerate() {
                    prop_assert_eq!(check(*s, NOW, 1, &limits[i].0).0,
                                    check(limits[i].1, NOW, 1, &limits[i].0).0);
                }
            } else {
                prop_assert_eq!(phased, atomic.states);
            }
            prop_assert_eq!(atomic.allowed, !denied);
        }
    }
}
