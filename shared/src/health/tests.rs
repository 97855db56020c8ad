use super::*;
use proptest::prelude::*;

fn key() -> SignalKey {
    SignalKey::new(b"0123456789abcdef0123456789abcdef").unwrap()
}

fn event(issued_ms: u64) -> EdgeHealthEvent {
    EdgeHealthEvent {
        id: "e-1".into(),
        api: "shop".into(),
        stage: "prod".into(),
        release: "canary".into(),
        breach: BreachKind::ErrorRate,
        issued_ms,
        window_from_ms: issued_ms.saturating_sub(10_000),
        first_failure_ms: Some(issued_ms.saturating_sub(4_000)),
        canary: ReleaseFigures {
            requests: 40,
            errors: 20,
            p50_ms: 12,
            p99_ms: 40,
        },
        base: Some(ReleaseFigures {
            requests: 400,
            errors: 1,
            p50_ms: 11,
            p99_ms: 35,
        }),
        detail: "canary worse".into(),
    }
}

#[test]
fn round_trip_within_tolerance_either_way() {
    let s = sign(&key(), &event(1_000_000));
    assert!(s.header.starts_with("t=1000000,v1="));
    for now in [
        1_000_000 - SIGNAL_TOLERANCE_MS,
        1_000_000,
        1_000_000 + SIGNAL_TOLERANCE_MS,
    ] {
        assert_eq!(
            verify(&key(), Some(&s.header), s.body.as_bytes(), now).unwrap(),
            event(1_000_000)
        );
    }
}

#[test]
fn refuses_missing_malformed_stale_altered_and_foreign() {
    let s = sign(&key(), &event(1_000_000));
    let now = 1_000_000;
    assert_eq!(
        verify(&key(), None, s.body.as_bytes(), now),
        Err(SignalError::MissingSignature)
    );
    for bad in [
        "",
        "t=1",
        "v1=00",
        "t=x,v1=00",
        "t=1000000,v1=zz",
        "garbage",
    ] {
        assert_eq!(
            verify(&key(), Some(bad), s.body.as_bytes(), now),
            Err(SignalError::MalformedSignature),
            "{bad}"
        );
    }
    assert!(matches!(
        verify(
            &key(),
            Some(&s.header),
            s.body.as_bytes(),
            now + SIGNAL_TOLERANCE_MS + 1
        ),
        Err(SignalError::OutsideTolerance { .. })
    ));
    let altered = s.body.replace("\"errors\":20", "\"errors\":0");
    assert_eq!(
        verify(&key(), Some(&s.header), altered.as_bytes(), now),
        Err(SignalError::BadSignature)
    );
    let other = SignalKey::new(b"another secret of at least 32 bytes!").unwrap();
    assert_eq!(
        verify(&other, Some(&s.header), s.body.as_bytes(), now),
        Err(SignalError::BadSignature)
    );
    // The time in the header is signed: moving it breaks the MAC.
    let moved = s.header.replacen("t=1000000", "t=1000001", 1);
    assert_eq!(
        verify(&key(), Some(&moved), s.body.as_bytes(), now),
        Err(SignalError::BadSignature)
    );
    let big = vec![b' '; MAX_SIGNAL_BYTES + 1];
    assert_eq!(
        verify(&key(), Some(&s.header), &big, now),
        Err(SignalError::TooLarge(MAX_SIGNAL_BYTES + 1))
    );
}

#[test]
fn short_secrets_are_refused() {
    assert_eq!(
        SignalKey::new(b"short").unwrap_err(),
        SignalKeyError::TooShort(5)
    );
    assert_eq!(format!("{:?}", key()), "SignalKey(..)");
}

#[test]
fn a_body_signed_with_another_time_is_refused() {
    // Correctly signed at t, but the body says another time.
    let mut e = event(1_000_000);
    let s = sign(&key(), &e);
    e.issued_ms = 1_000_001;
    let body = serde_json::to_string(&e).unwrap();
    let mac_header = sign(&key(), &e)
        .header
        .replacen("t=1000001", "t=1000000", 1);
    assert_eq!(
        verify(&key(), Some(&mac_header), body.as_bytes(), 1_000_000),
        Err(SignalError::BadSignature)
    );
    assert!(verify(&key(), Some(&s.header), s.body.as_bytes(), 1_000_000).is_ok());
}

proptest! {
    #[test]
    fn verify_never_panics(header in ".{0,200}", body in proptest::collection::vec(any::<u8>(), 0..400), now in any::<u64>()) {
        let _ = verify(&key(), Some(&header), &body, now);
    }

    #[test]
    fn signed_events_verify(id in "[a-z0-9-]{1,40}", detail in ".{0,100}", t in 0u64..(1u64 << 50)) {
        let mut e = event(t);
        e.id = id;
        e.detail = detail;
        let s = sign(&key(), &e);
        prop_assert_eq!(verify(&key(), Some(&s.header), s.body.as_bytes(), t).unwrap(), e);
    }
}

// --- aggregation and judgement (issue 18) ---

/// A deterministic PRNG (splitmix64), so the simulations are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn latency(&mut self, base_ms: f64) -> u32 {
        // A floor plus an exponential tail.
        (base_ms + -15.0 * (1.0 - self.unit()).ln()) as u32
    }
}

/// What a simulated run saw.
struct Run {
    breaches: Vec<(u64, Judgement)>,
    first_failure_ms: Option<u64>,
}

/// 10 requests/s for `seconds`, a share of them to the canary; `canary_err`
/// gives the canary's 5xx probability at second `t`. One batch per second,
/// judged every second, as the Durable Object does.
fn simulate(
    seed: u64,
    seconds: u64,
    canary_share: impl Fn(u64) -> f64,
    base_err: f64,
    canary_err: impl Fn(u64) -> f64,
) -> Run {
    let settings = JudgeSettings::default();
    let mut rng = Rng(seed);
    let mut window = HealthWindow::new(settings.window_s);
    let start_ms = 1_700_000_000_000u64;
    let mut run = Run {
        breaches: Vec::new(),
        first_failure_ms: None,
    };
    for t in 0..seconds {
        let mut batch = OutcomeBatch::default();
        for k in 0..10 {
            let at = start_ms + t * 1_000 + k * 100;
            let canary = rng.unit() < canary_share(t);
            let err = if canary { canary_err(t) } else { base_err };
            let status = if rng.unit() < err { 503 } else { 200 };
            if canary && status == 503 && run.first_failure_ms.is_none() && canary_err(t) >= 1.0 {
                run.first_failure_ms = Some(at);
            }
            let class = if canary {
                ReleaseClass::Canary
            } else {
                ReleaseClass::Base
            };
            batch.record(class, status, at, rng.latency(20.0));
        }
        let now = start_ms + (t + 1) * 1_000;
        window.merge(&batch, now);
        let j = judge(&settings, &window, now);
        if matches!(j.verdict, Verdict::Breach(_)) {
            run.breaches.push((now, j));
        }
    }
    run
}

#[test]
fn healthy_canary_never_fires_over_ten_minutes() {
    for (share, err) in [(0.01, 0.01), (0.5, 0.01), (0.5, 0.03)] {
        for seed in 1..=10 {
            let run = simulate(seed, 600, |_| share, err, |_| err);
            println!(
                "healthy canary at {:.0}%, 5xx {:.0}% on both (seed {seed}, 600 s at 10 req/s, 600 judgements): {} breaches",
                share * 100.0,
                err * 100.0,
                run.breaches.len()
            );
            for (t, j) in &run.breaches {
                println!("  breach at {t}: {}", j.detail);
            }
            assert_eq!(run.breaches.len(), 0, "share {share}, seed {seed}");
        }
    }
}

#[test]
fn failing_canary_at_half_is_judged_within_two_seconds() {
    for seed in 1..=20 {
        // Healthy for two minutes, then every canary answer fails.
        let run = simulate(
            seed,
            180,
            |_| 0.5,
            0.01,
            |t| if t >= 120 { 1.0 } else { 0.01 },
        );
        let first = run.first_failure_ms.unwrap();
        for (at, j) in &run.breaches {
            assert!(*at > first, "breach before the failure: {}", j.detail);
        }
        let (at, j) = run.breaches.first().expect("a breach");
        println!(
            "seed {seed}: first failure {first}, breach judged at {at} (+{} ms): {}",
            at - first,
            j.detail
        );
        assert!(at - first <= 2_000, "judged {} ms after", at - first);
        assert_eq!(j.verdict, Verdict::Breach(BreachKind::ErrorRate));
        let event = j.event("id", "shop", "prod", "canary", *at).unwrap();
        assert_eq!(event.release, "canary");
        assert!(event.first_failure_ms.is_some());
        // A canary deployed after a minute of base traffic, failing from its first request.
        let share = |t| if t >= 60 { 0.5 } else { 0.0 };
        let run = simulate(seed, 90, share, 0.01, |_| 1.0);
        let first = run.first_failure_ms.unwrap();
        let (at, _) = run.breaches.first().expect("a breach");
        assert!(at - first <= 2_000, "fresh: judged {} ms after", at - first);
    }
}

fn window_with(cells: &[(ReleaseClass, u64, u16, u64)], now_ms: u64) -> HealthWindow {
    let mut window = HealthWindow::new(60);
    let mut batch = OutcomeBatch::default();
    for &(class, latency, status, count) in cells {
        for i in 0..count {
            batch.record(class, status, now_ms - 5_000 + i, latency as u32);
        }
    }
    window.merge(&batch, now_ms);
    window
}

#[test]
fn a_handful_of_errors_at_low_traffic_does_not_fire() {
    let now = 9_000_000;
    let w = window_with(
        &[
            (ReleaseClass::Base, 20, 200, 500),
            (ReleaseClass::Canary, 20, 503, 4),
            (ReleaseClass::Canary, 20, 200, 3),
        ],
        now,
    );
    let j = judge(&JudgeSettings::default(), &w, now);
    assert_eq!(j.verdict, Verdict::Healthy, "{}", j.detail);
    assert!(j.event("id", "a", "s", "canary", now).is_none());
    // Four errors in eight: under the minimum of five errors, judged healthy.
    let w = window_with(
        &[
            (ReleaseClass::Base, 20, 200, 500),
            (ReleaseClass::Canary, 20, 503, 4),
            (ReleaseClass::Canary, 20, 200, 4),
        ],
        now,
    );
    let j = judge(&JudgeSettings::default(), &w, now);
    assert_eq!(j.verdict, Verdict::Healthy, "{}", j.detail);
}

#[test]
fn slow_canary_is_a_latency_breach() {
    let now = 9_000_000;
    let w = window_with(
        &[
            (ReleaseClass::Base, 20, 200, 200),
            (ReleaseClass::Canary, 200, 200, 200),
        ],
        now,
    );
    let j = judge(&JudgeSettings::default(), &w, now);
    assert_eq!(
        j.verdict,
        Verdict::Breach(BreachKind::Latency),
        "{}",
        j.detail
    );
    assert_eq!((j.canary.p99_ms, j.base.p99_ms), (200, 20));
}

#[test]
fn unattributed_traffic_has_a_fixed_threshold() {
    let now = 9_000_000;
    let w = window_with(
        &[
            (ReleaseClass::Unattributed, 20, 200, 15),
            (ReleaseClass::Unattributed, 20, 502, 15),
        ],
        now,
    );
    let j = judge(&JudgeSettings::default(), &w, now);
    assert_eq!(j.verdict, Verdict::Breach(BreachKind::StageErrorRate));
    let e = j.event("id", "shop", "prod", "canary", now).unwrap();
    assert_eq!(
        (e.release.as_str(), e.canary.errors, e.base),
        ("stage", 15, None)
    );
    // Below the minimum sample: nothing.
    let w = window_with(&[(ReleaseClass::Unattributed, 20, 502, 10)], now);
    assert_eq!(
        judge(&JudgeSettings::default(), &w, now).verdict,
        Verdict::Undecided
    );
}

#[test]
fn canary_without_base_uses_the_fixed_threshold() {
    let now = 9_000_000;
    let w = window_with(&[(ReleaseClass::Canary, 20, 500, 12)], now);
    let j = judge(&JudgeSettings::default(), &w, now);
    assert_eq!(j.verdict, Verdict::Breach(BreachKind::ErrorRate));
    assert!(j
        .event("id", "a", "s", "canary", now)
        .unwrap()
        .base
        .is_none());
}

#[test]
fn window_forgets_old_seconds_and_refuses_far_future_ones() {
    let mut w = HealthWindow::new(10);
    let mut batch = OutcomeBatch::default();
    batch.record(ReleaseClass::Base, 200, 100_000, 5);
    batch.record(ReleaseClass::Base, 200, 200_000, 5);
    batch.record(ReleaseClass::Base, 200, 109_000, 5);
    w.merge(&batch, 110_000);
    assert_eq!(w.figures(ReleaseClass::Base, 10, 110_000).requests, 1);
    assert_eq!(w.held_seconds(), 1);
    w.expire(200_000);
    assert_eq!(w.held_seconds(), 0);
}

#[test]
fn histogram_quantiles_are_bucket_bounds() {
    let mut h = LatencyHistogram::default();
    assert_eq!(h.quantile_ms(0.99), 0);
    for ms in [0, 1, 4, 9, 100, 1_000_000] {
        h.record(ms);
    }
    assert_eq!(h.total(), 6);
    assert_eq!(h.quantile_ms(0.0), 1);
    assert_eq!(h.quantile_ms(0.5), 5);
    assert_eq!(h.quantile_ms(1.0), 120_000);
    let wire: Vec<u32> = h.clone().into();
    assert_eq!(wire.len(), LATENCY_BUCKETS);
    assert!(serde_json::from_str::<LatencyHistogram>(&format!("{:?}", vec![1; 40])).is_err());
}

#[test]
fn delivery_and_cooldown() {
    assert_eq!(delivery_of(Some(200)), Delivery::Delivered);
    assert_eq!(delivery_of(Some(429)), Delivery::Retry);
    assert_eq!(delivery_of(Some(404)), Delivery::GiveUp);
    let delays: Vec<u64> = (1..=MAX_SIGNAL_ATTEMPTS)
        .filter_map(retry_delay_ms)
        .collect();
    assert_eq!(delays, [500, 1_000, 2_000, 4_000, 8_000]);
    assert_eq!(
        release_of(BreachKind::StageErrorRate),
        ReleaseClass::Unattributed
    );
    let mut c = Cooldown::new(10);
    c.mark(ReleaseClass::Unattributed, 5);
    assert!(c.allows(ReleaseClass::Canary, 6) && !c.allows(ReleaseClass::Unattributed, 6));
}

#[test]
fn z_statistic_is_zero_when_undefined() {
    let f = |requests, errors| ReleaseFigures {
        requests,
        errors,
        ..ReleaseFigures::default()
    };
    assert_eq!(two_proportion_z(&f(0, 0), &f(10, 1)), 0.0);
    assert_eq!(two_proportion_z(&f(10, 10), &f(10, 10)), 0.0);
    assert_eq!(two_proportion_z(&f(10, 0), &f(10, 0)), 0.0);
    let z = two_proportion_z(&f(100, 20), &f(100, 2));
    assert!((z - 4.07).abs() < 0.01, "{z}");
}

#[test]
fn series_has_one_point_per_second_with_traffic() {
    let mut w = HealthWindow::new(10);
    let mut batch = OutcomeBatch::default();
    // Second 100: two canary answers, one a 503; second 103: one base answer;
    // second 90 is outside the window at 109.5 s.
    batch.record(ReleaseClass::Canary, 200, 100_100, 7);
    batch.record(ReleaseClass::Canary, 503, 100_900, 40);
    batch.record(ReleaseClass::Base, 200, 103_000, 12);
    batch.record(ReleaseClass::Canary, 200, 90_000, 5);
    w.merge(&batch, 109_500);
    assert_eq!(
        w.series(ReleaseClass::Canary, 109_500),
        vec![SecondPoint {
            at_ms: 100_000,
            requests: 2,
            errors_5xx: 1,
            p99_ms: 50,
        }]
    );
    let base = w.series(ReleaseClass::Base, 109_500);
    assert_eq!(
        (base.len(), base[0].at_ms, base[0].errors_5xx),
        (1, 103_000, 0)
    );
    assert!(w.series(ReleaseClass::Unattributed, 109_500).is_empty());
    // Later, second 100 has left the window: only 103 stays.
    assert!(w.series(ReleaseClass::Canary, 110_000).is_empty());
    assert_eq!(w.series(ReleaseClass::Base, 112_999).len(), 1);
    assert!(w.series(ReleaseClass::Base, 113_000).is_empty());
}

#[test]
fn stage_health_carries_every_release_and_reads_back() {
    let now = 9_000_000;
    let w = window_with(
        &[
            (ReleaseClass::Base, 20, 200, 50),
            (ReleaseClass::Canary, 20, 503, 10),
        ],
        now,
    );
    let health = StageHealth::of("shop", "prod", Some(&w), &JudgeSettings::default(), now);
    assert_eq!(health.window_s, 60);
    assert_eq!(health.window_from_ms(), now - 59_000);
    let kinds: Vec<_> = health.releases.iter().map(|r| r.release).collect();
    assert_eq!(kinds, ReleaseClass::ALL.to_vec());
    let canary = health.release(ReleaseClass::Canary).unwrap();
    assert_eq!((canary.figures.requests, canary.figures.errors), (10, 10));
    assert_eq!(canary.points.iter().map(|p| p.requests).sum::<u32>(), 10);
    assert!(matches!(
        health.judgement.as_ref().map(|j| j.verdict),
        Some(Verdict::Breach(BreachKind::ErrorRate))
    ));
    // Before the first batch: no judgement, no releases.
    let empty = StageHealth::of("shop", "prod", None, &JudgeSettings::default(), now);
    assert!(empty.judgement.is_none() && empty.releases.is_empty());
    let json = serde_json::to_string(&empty).unwrap();
    assert!(!json.contains("releases"), "{json}");
    assert_eq!(serde_json::from_str::<StageHealth>(&json).unwrap(), empty);
}

#[test]
fn the_report_fixture_reads() {
    // The Worker's answer as it is on the wire, older fields only included.
    let report: ReleasesReport =
        serde_json::from_str(include_str!("../../tests/fixtures/health/releases.json")).unwrap();
    assert_eq!(report.stages.len(), 2);
    let shop = report.stage("shop", "prod").unwrap();
    let health = shop.health.as_ref().unwrap();
    let canary = health.release(ReleaseClass::Canary).unwrap();
    assert_eq!(canary.points.len(), 3);
    assert_eq!(canary.points[2].errors_5xx, 4);
    let signal = health.last_signal.as_ref().unwrap();
    assert_eq!(
        (signal.delivery, signal.last_status),
        (Delivery::Delivered, Some(202))
    );
    let old = report
        .stage("legacy", "prod")
        .unwrap()
        .health
        .as_ref()
        .unwrap();
    assert!(old.releases.is_empty() && old.window_s == 0);
    assert!(report.stage("shop", "beta").is_none());
}

fn class() -> impl Strategy<Value = ReleaseClass> {
    prop_oneof![
        Just(ReleaseClass::Canary),
        Just(ReleaseClass::Base),
        Just(ReleaseClass::Unattributed)
    ]
}

proptest! {
    #[test]
    fn batches_round_trip_and_stay_bounded(
        cells in proptest::collection::vec((class(), 0u64..200_000, 100u16..600, 0u32..100_000), 0..300)
    ) {
        let mut batch = OutcomeBatch::default();
        for (c, at, status, latency) in cells {
            batch.record(c, status, at, latency);
        }
        prop_assert!(batch.len() <= MAX_BATCH_CELLS);
        let json = serde_json::to_string(&batch).unwrap();
        prop_assert_eq!(serde_json::from_str::<OutcomeBatch>(&json).unwrap(), batch);
    }

    #[test]
    fn window_and_judge_never_panic(
        window_s in 0u64..1_000,
        cells in proptest::collection::vec((class(), any::<u64>(), any::<u16>(), any::<u32>()), 0..100),
        now in any::<u64>(),
        z in -10.0f64..10.0,
        margin in -1.0f64..2.0,
    ) {
        let mut w = HealthWindow::new(window_s);
        let mut batch = OutcomeBatch::default();
        for (c, at, status, latency) in cells {
            batch.record(c, status, at, latency);
        }
        w.merge(&batch, now);
        prop_assert!(w.held_seconds() as u64 <= w.window_s() + FUTURE_SLACK_S + 1);
        let settings = JudgeSettings { window_s, fast_window_s: window_s / 3, critical_z: z, error_margin: margin, ..JudgeSettings::default() };
        let j = judge(&settings, &w, now);
        let _ = j.event("id", "a", "s", "canary", now);
        for c in ReleaseClass::ALL {
            let series = w.series(c, now);
            prop_assert!(series.len() as u64 <= w.window_s() + FUTURE_SLACK_S + 1);
            prop_assert!(series.windows(2).all(|p| p[0].at_ms < p[1].at_ms));
        }
        let health = StageHealth::of("a", "s", Some(&w), &settings, now);
        let _ = health.window_from_ms();
    }

    #[test]
    fn arbitrary_batch_json_never_panics(text in ".{0,300}") {
        let _ = serde_json::from_str::<OutcomeBatch>(&text);
    }
}
