use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::throttle::{check_all, combine, LimitInput, MultiDecision};

const NOW: u64 = 1_700_000_000_000;

fn step(state: Option<GcraState>, now: u64, op: &LimiterOp) -> (LimiterReply, GcraState) {
    apply(state, now, op)
}

#[test]
fn check_and_refund_are_gcra() {
    let quota = Quota::per_second(2);
    let check_op = LimiterOp::Check { quota, cost: 1 };
    let (a, s) = step(None, NOW, &check_op);
    let (b, s) = step(Some(s), NOW, &check_op);
    let (c, s) = step(Some(s), NOW, &check_op);
    assert!(a.decision.unwrap().allowed && b.decision.unwrap().allowed);
    assert!(!c.decision.unwrap().allowed);
    let (r, s) = step(Some(s), NOW, &LimiterOp::Refund { quota, cost: 1 });
    let d = r.decision.unwrap();
    assert!(d.allowed);
    assert_eq!(d.remaining, 1);
    let (again, _) = step(Some(s), NOW, &check_op);
    assert!(again.decision.unwrap().allowed);
}

#[test]
fn peek_changes_nothing_and_reports_absence() {
    let (reply, state) = step(None, NOW, &LimiterOp::Peek);
    assert_eq!(reply.decision, None);
    assert!(!reply.stored);
    assert_eq!(state, GcraState::default());
}

#[test]
fn a_lease_is_a_slice_of_the_schedule() {
    let quota = Quota::per_second(10);
    let op = LimiterOp::Lease {
        quota,
        cost: 1,
        want: 4,
        returns: Vec::new(),
        lead_ms: 0,
    };
    let (reply, state) = step(None, NOW, &op);
    let grant = reply.lease.unwrap();
    let t = 100_000_000;
    assert_eq!(grant.units, 4);
    assert_eq!(grant.start_ns, NOW * 1_000_000);
    assert_eq!(grant.end_ns, grant.start_ns + 4 * t);
    assert_eq!(state.tat_ns, grant.end_ns);
    let d = reply.decision.unwrap();
    assert!(d.allowed);
    assert_eq!(d.remaining, 6, "the whole slice is gone from the object");
    // As many as fit, at least the cost.
    let big = LimiterOp::Lease {
        quota,
        cost: 2,
        want: 100,
        returns: Vec::new(),
        lead_ms: 0,
    };
    let (reply, state) = step(Some(state), NOW, &big);
    assert_eq!(reply.lease.unwrap().units, 6);
    let (reply, _) = step(Some(state), NOW, &big);
    assert!(!reply.decision.unwrap().allowed);
    assert_eq!(reply.lease, None);
}

#[test]
fn a_slice_goes_back_only_from_the_top() {
    let quota = Quota::per_second(10);
    let lease = |returns| LimiterOp::Lease {
        quota,
        cost: 1,
        want: 3,
        returns,
        lead_ms: 0,
    };
    let (a, s) = step(None, NOW, &lease(Vec::new()));
    let (b, s) = step(Some(s), NOW, &lease(Vec::new()));
    let (a, b) = (a.lease.unwrap(), b.lease.unwrap());
    // `a` is under `b`: taking it back would slide `b` over slots in use.
    let (_, s2) = step(
        Some(s),
        NOW,
        &LimiterOp::Return {
            quota,
            returns: vec![a.unused()],
        },
    );
    assert_eq!(s2, s);
    // `b` then `a`, both unused: the schedule is back to empty (now).
    let (reply, s3) = step(
        Some(s),
        NOW,
        &LimiterOp::Return {
            quota,
            returns: vec![b.unused(), a.unused()],
        },
    );
    assert_eq!(s3.tat_ns, NOW * 1_000_000);
    assert_eq!(reply.decision.unwrap().remaining, 10);
    // Partly used: only the tail goes back.
    let used = LeaseReturn {
        used_ns: b.start_ns + 100_000_000,
        ..b.unused()
    };
    let (_, s4) = step(
        Some(s),
        NOW,
        &LimiterOp::Return {
            quota,
            returns: vec![used],
        },
    );
    assert_eq!(s4.tat_ns, b.start_ns + 100_000_000);
}

#[test]
fn give_back_only_when_some_limit_refuses() {
    assert_eq!(give_back(&[true, true]), [false, false]);
    assert_eq!(give_back(&[true, false, true]), [true, false, true]);
    assert_eq!(give_back(&[]), Vec::<bool>::new());
}

#[test]
fn a_sparse_key_gets_a_slice_ahead_of_now() {
    // 1,000,000 per hour: T = 3.6 ms; a 250 ms lead spans 69 slots and is
    // far under an eighth of the hour's tolerance.
    let quota = Quota::new(1_000_000, Duration::from_secs(3_600));
    let lease = |lead_ms| LimiterOp::Lease {
        quota,
        cost: 1,
        want: 10,
        returns: Vec::new(),
        lead_ms,
    };
    let (led, _) = step(None, NOW, &lease(250));
    let grant = led.lease.unwrap();
    assert_eq!(u128::from(grant.start_ns), ms_to_ns(NOW + 250));
    let (packed, _) = step(None, NOW, &lease(0));
    assert_eq!(u128::from(packed.lease.unwrap().start_ns), ms_to_ns(NOW));
    // A key whose slots are longer than the lead (100 per hour) or whose
    // tolerance is short (10 per second) gets no lead.
    assert_eq!(
        lead_for(250, &Quota::new(100, Duration::from_secs(3_600))),
        0
    );
    assert_eq!(lead_for(250, &Quota::per_second(10)), 0);
    // A plain check (want = cost) is never led.
    let plain = LimiterOp::Lease {
        quota,
        cost: 1,
        want: 1,
        returns: Vec::new(),
        lead_ms: 250,
    };
    let (reply, state) = step(None, NOW, &plain);
    assert!(reply
        .lease
        .is_none_or(|g| u128::from(g.start_ns) == ms_to_ns(NOW)));
    assert!(u128::from(state.tat_ns) <= ms_to_ns(NOW) + quota.emission_interval_ns());
}

#[test]
fn ops_round_trip_as_json() {
    let op = LimiterOp::Lease {
        quota: Quota::per_minute(5),
        cost: 1,
        want: 2,
        returns: vec![LeaseReturn {
            start_ns: 1,
            end_ns: 3,
            used_ns: 2,
        }],
        lead_ms: 250,
    };
    let text = serde_json::to_string(&op).unwrap();
    assert!(text.contains("\"op\":\"lease\""));
    assert_eq!(serde_json::from_str::<LimiterOp>(&text).unwrap(), op);
    // A `check` from before leases still parses.
    let old =
        r#"{"op":"check","quota":{"limit":1,"period":{"secs":1,"nanos":0},"burst":1},"cost":1}"#;
    assert!(matches!(
        serde_json::from_str::<LimiterOp>(old),
        Ok(LimiterOp::Check { .. })
    ));
}

fn quota() -> impl Strategy<Value = Quota> {
    (1_u64..20, 1_u64..120, 1_u64..40).prop_map(|(limit, secs, burst)| {
        Quota::new(limit, Duration::from_secs(secs)).with_burst(burst)
    })
}

/// Two-phase over separate objects, as the edge runs it.
fn two_phase(
    limits: &[(Quota, GcraState, u64)],
    now: u64,
    lease: bool,
) -> (MultiDecision, Vec<GcraState>) {
    let first: Vec<(LimiterReply, GcraState)> = limits
        .iter()
        .map(|(quota, state, cost)| {
            let op = if lease {
                LimiterOp::Lease {
                    quota: *quota,
                    cost: *cost,
                    want: *cost,
                    returns: Vec::new(),
                    lead_ms: 0,
                }
            } else {
                LimiterOp::Check {
                    quota: *quota,
                    cost: *cost,
                }
            };
            apply(Some(*state), now, &op)
        })
        .collect();
    let admitted: Vec<bool> = first
        .iter()
        .map(|(r, _)| r.decision.is_some_and(|d| d.allowed))
        .collect();
    let mut decisions = Vec::new();
    let mut states = Vec::new();
    for ((limit, (reply, state)), back) in limits.iter().zip(first).zip(give_back(&admitted)) {
        let (quota, _, cost) = *limit;
        let (reply, state) = match (back, reply.lease) {
            (false, _) => (reply, state),
            (true, Some(grant)) => apply(
                Some(state),
                now,
                &LimiterOp::Return {
                    quota,
                    returns: vec![grant.unused()],
                },
            ),
            (true, None) => apply(Some(state), now, &LimiterOp::Refund { quota, cost }),
        };
        decisions.push(reply.decision.unwrap_or_else(|| panic!("no decision")));
        states.push(state);
    }
    let combined = combine(decisions, states.clone());
    (combined, states)
}

proptest! {
    #[test]
    fn two_phase_equals_check_all(
        limits in proptest::collection::vec((quota(), 0_u64..200_000, 1_u64..4), 1..4),
        lease in any::<bool>(),
    ) {
        let limits: Vec<(Quota, GcraState, u64)> = limits
            .into_iter()
            .map(|(q, ahead_ms, cost)| {
                let cost = cost.min(q.burst);
                (q, GcraState { tat_ns: (NOW + ahead_ms) * 1_000_000 }, cost)
            })
            .collect();
        let inputs: Vec<LimitInput> =
            limits.iter().map(|(q, s, c)| LimitInput::new(*q, *s, *c)).collect();
        let want = check_all(&inputs, NOW);
        let (got, states) = two_phase(&limits, NOW, lease);
        prop_assert_eq!(got.allowed, want.allowed);
        prop_assert_eq!(got.retry_after, want.retry_after);
        prop_assert_eq!(&got.decisions, &want.decisions);
        // Equivalent states: the same TAT once an idle past is read as now.
        let now_ns = NOW * 1_000_000;
        for (a, b) in states.iter().zip(&want.states) {
            prop_assert_eq!(a.tat_ns.max(now_ns), b.tat_ns.max(now_ns));
        }
    }

    #[test]
    fn apply_never_panics(
        tat in any::<u64>(),
        now in any::<u64>(),
        limit in any::<u64>(),
        burst in any::<u64>(),
        nanos in any::<u64>(),
        cost in any::<u64>(),
        want in any::<u64>(),
        r in any::<(u64, u64, u64)>(),
        which in 0_u8..5,
    ) {
        let quota = Quota { limit, burst, period: Duration::from_nanos(nanos) };
        let returns = vec![LeaseReturn { start_ns: r.0, end_ns: r.1, used_ns: r.2 }];
        let op = match which {
            0 => LimiterOp::Check { quota, cost },
            1 => LimiterOp::Refund { quota, cost },
            2 => LimiterOp::Peek,
            3 => LimiterOp::Lease { quota, cost, want, returns, lead_ms: want % 300 },
            _ => LimiterOp::Return { quota, returns },
        };
        let stored = (tat != 0).then_some(GcraState { tat_ns: tat });
        let (reply, next) = apply(stored, now, &op);
        prop_assert_eq!(reply.tat_ns, next.tat_ns);
    }
}
