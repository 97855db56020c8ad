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
