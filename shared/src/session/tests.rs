use super::*;

fn key() -> SessionKey {
    SessionKey::new(b"0123456789abcdef0123456789abcdef").unwrap()
}

#[test]
fn round_trip_and_expiry() {
    let t = issue(
        &key(),
        &SessionClaims::new("jwt:https%3A//i/:alice", 1_000, 3_600_000, "n"),
    );
    let c = verify(&key(), &t, 1_000).unwrap();
    assert_eq!(c.sub, "jwt:https%3A//i/:alice");
    assert_eq!(c.exp_ms, 3_601_000);
    assert_eq!(
        verify(&key(), &t, 3_601_000),
        Err(SessionError::Expired { exp_ms: 3_601_000 })
    );
    assert!(SessionError::Expired { exp_ms: 1 }
        .to_string()
        .contains("sign in again"));
}

#[test]
fn tampering_and_other_keys_are_refused() {
    let t = issue(&key(), &SessionClaims::new("key:ops", 0, 60_000, "n"));
    let other = SessionKey::new(&[7u8; 32]).unwrap();
    assert_eq!(verify(&other, &t, 1), Err(SessionError::BadSignature));
    // Claims swapped for an admin's, signature kept.
    let forged_claims = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&SessionClaims::new("key:root", 0, u64::MAX, "n")).unwrap());
    let mut parts: Vec<&str> = t.split('.').collect();
    parts[1] = &forged_claims;
    assert_eq!(
        verify(&key(), &parts.join("."), 1),
        Err(SessionError::BadSignature)
    );
    for bad in [
        "",
        "v1",
        "v1.a",
        "v2.a.b",
        "v1.a.b.c",
        "v1.a.!!",
        &"x".repeat(5000),
    ] {
        assert!(verify(&key(), bad, 1).is_err(), "{bad}");
    }
}

#[test]
fn short_secrets_are_refused_and_never_printed() {
    assert_eq!(
        SessionKey::new(b"short").unwrap_err(),
        SessionKeyError::TooShort(5)
    );
    assert_eq!(format!("{:?}", key()), "SessionKey(..)");
}

#[test]
fn csrf_is_tied_to_the_session() {
    let a = issue(&key(), &SessionClaims::new("key:ops", 0, 60_000, "a"));
    let b = issue(&key(), &SessionClaims::new("key:ops", 0, 60_000, "b"));
    let ta = csrf_token(&key(), &a);
    assert!(check_csrf(&key(), &a, Some(&ta)).is_ok());
    assert_eq!(
        check_csrf(&key(), &b, Some(&ta)),
        Err(SessionError::CsrfMismatch)
    );
    assert_eq!(check_csrf(&key(), &a, None), Err(SessionError::CsrfMissing));
    assert_eq!(
        check_csrf(&key(), &a, Some("")),
        Err(SessionError::CsrfMissing)
    );
    assert_eq!(
        check_csrf(&key(), &a, Some("%%")),
        Err(SessionError::CsrfMismatch)
    );
}

#[test]
fn cookies() {
    let c = set_cookie("v1.a.b", 3600);
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=3600",
    ] {
        assert!(c.contains(attr), "{c}");
    }
    assert!(clear_cookie().contains("Max-Age=0"));
    assert_eq!(
        cookie_value("a=1; tidegate_session=v1.x.y; b=2", SESSION_COOKIE),
        Some("v1.x.y")
    );
    assert_eq!(cookie_value("tidegate_sessionx=1", SESSION_COOKIE), None);
}
