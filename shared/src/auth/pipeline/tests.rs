use std::cell::{Cell, RefCell};
use std::future::ready;

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

use super::*;
use crate::auth::{hash_key, ApiKeyStore, MalformedToken, NativeVerifier, TokenCacheSettings};
use crate::config::{parse, GatewayConfig};

const NOW_MS: u64 = 1_750_000_000_000;

const CONFIG: &str = r#"
    [api_keys]

    [[issuers]]
    name = "idp"
    issuer = "https://idp.example/"
    audiences = ["api"]
    algorithms = ["HS256"]
    jwks = { keys = [{ kty = "oct", k = "dGlkZWdhdGUtcGlwZWxpbmUtdGVzdC1zZWNyZXQtMDEyMzQ1Njc4OQ", kid = "1" }] }

    [[routes]]
    name = "orders"
    path = "/orders/*"
    upstream = "https://origin.example"
    auth = { require = "either", scopes = ["orders:read"] }

    [[issuers]]
    name = "other"
    issuer = "https://other.example/"
    audiences = ["reports"]
    algorithms = ["HS256"]
    jwks = { keys = [{ kty = "oct", k = "dGlkZWdhdGUtcGlwZWxpbmUtdGVzdC1zZWNyZXQtMDEyMzQ1Njc4OQ", kid = "1" }] }

    [[routes]]
    name = "reports"
    path = "/reports/*"
    upstream = "https://origin.example"
    auth = { require = "jwt", issuers = ["other"] }

    [[routes]]
    name = "admin"
    path = "/admin/*"
    upstream = "https://origin.example"
    auth = { require = "jwt", issuers = ["idp"], scopes = ["orders:admin"] }
"#;

/// Keys from the config's inline JWKS and one API-key record; counts calls.
struct Fixture {
    config: GatewayConfig,
    api_keys: ApiKeyStore,
    key_calls: Cell<u32>,
    /// The route requests go to (index into the config's routes).
    route: Cell<usize>,
    /// The time requests arrive at.
    now: Cell<u64>,
    /// The cache of verified tokens, when the test offers one.
    tokens: Option<RefCell<TokenCache>>,
    /// The epoch of every issuer's keys.
    epoch: Cell<u64>,
    /// What the pipeline reported about the cache, in order.
    uses: RefCell<Vec<TokenCacheUse>>,
}

impl Fixture {
    fn new() -> Self {
        let records = json!([
            {"id": "k1", "consumer": "acme", "sha256": hash_key("good-key"), "scopes": ["orders:read"]},
            {"id": "k2", "consumer": "bob", "sha256": hash_key("no-scope-key")},
        ]);
        Self {
            config: parse(CONFIG).unwrap(),
            api_keys: ApiKeyStore::from_json(&records.to_string()).unwrap(),
            key_calls: Cell::new(0),
            route: Cell::new(0),
            now: Cell::new(NOW_MS),
            tokens: None,
            epoch: Cell::new(1),
            uses: RefCell::new(Vec::new()),
        }
    }

    fn with_token_cache() -> Self {
        Self {
            tokens: Some(RefCell::new(TokenCache::new(Default::default()))),
            ..Self::new()
        }
    }

    fn run(&self, headers: CredentialHeaders<'_>) -> Result<Option<Identity>, AuthRejection> {
        let route = &self.config.routes[self.route.get()];
        let provider = Provider { fixture: self };
        let pipeline = authenticate(
            route.auth.requirement,
            &route.auth.scopes,
            headers,
            &provider,
            &NativeVerifier,
            self.now.get(),
        );
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let polled = std::pin::pin!(pipeline).poll(&mut cx);
        match polled {
            std::task::Poll::Ready(outcome) => outcome,
            std::task::Poll::Pending => panic!("every step here is ready at once"),
        }
    }
}

struct Provider<'a> {
    fixture: &'a Fixture,
}

impl KeyProvider for Provider<'_> {
    type Error = AuthRejection;

    fn issuer(&self, jwt: &UnverifiedJwt<'_>) -> Result<&Issuer, AuthRejection> {
        let config = &self.fixture.config;
        config.issuer_for_token(&config.routes[self.fixture.route.get()], jwt)
    }

    fn signing_key(
        &self,
        issuer: &Issuer,
        kid: Option<&str>,
        _alg: Algorithm,
        _now_ms: u64,
    ) -> impl Future<Output = Result<Jwk, AuthRejection>> {
        self.fixture.key_calls.set(self.fixture.key_calls.get() + 1);
        let crate::config::JwksSource::Inline(set) = &issuer.jwks else {
            return ready(Err(AuthRejection::KeysUnavailable));
        };
        let found = set
            .keys
            .iter()
            .find(|k| k.common.key_id.as_deref() == kid)
            .cloned();
        ready(found.ok_or(AuthRejection::UnknownKey))
    }

    fn api_key(
        &self,
        key: &str,
        now_ms: u64,
    ) -> impl Future<Output = Result<Identity, AuthRejection>> {
        ready(self.fixture.api_keys.authenticate(key, now_ms))
    }

    fn token_cache(&self) -> Option<&RefCell<TokenCache>> {
        self.fixture.tokens.as_ref()
    }

    fn issuer_named(&self, name: &str) -> Option<&Issuer> {
        let config = &self.fixture.config;
        let route = &config.routes[self.fixture.route.get()];
        config.route_issuers(route).find(|i| i.name == name)
    }

    fn key_epoch(&self, _issuer: &Issuer, _now_ms: u64) -> Option<u64> {
        Some(self.fixture.epoch.get())
    }

    fn note_token_cache(&self, used: TokenCacheUse) {
        self.fixture.uses.borrow_mut().push(used);
    }
}

fn token(claims: serde_json::Value) -> String {
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("1".into());
    let secret = b"tidegate-pipeline-test-secret-0123456789";
    encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn claims(scope: &str) -> serde_json::Value {
    let now = NOW_MS / 1000;
    json!({"iss": "https://idp.example/", "aud": "api", "sub": "alice",
           "scope": scope, "iat": now - 10, "exp": now + 300})
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn a_valid_token_with_the_scope_is_its_identity() {
    let f = Fixture::new();
    let auth = bearer(&token(claims("orders:read")));
    let headers = CredentialHeaders {
        authorization: Some(&auth),
        ..CredentialHeaders::default()
    };
    let identity = f.run(headers).unwrap().unwrap();
    assert_eq!(identity.subject, "alice");
    assert_eq!(f.key_calls.get(), 1);
}

#[test]
fn scopes_are_checked_after_the_signature_for_tokens_and_keys() {
    let f = Fixture::new();
    let auth = bearer(&token(claims("other")));
    let headers = CredentialHeaders {
        authorization: Some(&auth),
        ..CredentialHeaders::default()
    };
    assert!(matches!(
        f.run(headers),
        Err(AuthRejection::InsufficientScope { .. })
    ));
    let headers = CredentialHeaders {
        api_key: Some("no-scope-key"),
        ..CredentialHeaders::default()
    };
    assert!(matches!(
        f.run(headers),
        Err(AuthRejection::InsufficientScope { .. })
    ));
    let headers = CredentialHeaders {
        api_key: Some("good-key"),
        ..CredentialHeaders::default()
    };
    assert_eq!(f.run(headers).unwrap().unwrap().subject, "acme");
}

#[test]
fn a_tampered_token_never_reaches_the_claims() {
    let f = Fixture::new();
    let good = token(claims("orders:read"));
    let (head, sig) = good.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let auth = bearer(&format!("{head}.{flipped}{}", &sig[1..]));
    let headers = CredentialHeaders {
        authorization: Some(&auth),
        ..CredentialHeaders::default()
    };
    assert_eq!(f.run(headers), Err(AuthRejection::BadSignature));
}

#[test]
fn repeated_authorization_is_refused_before_any_key_is_sought() {
    let f = Fixture::new();
    let auth = bearer(&token(claims("orders:read")));
    let headers = CredentialHeaders {
        authorization: Some(&auth),
        authorization_repeated: true,
        api_key: None,
    };
    assert_eq!(
        f.run(headers),
        Err(AuthRejection::InvalidRequest(
            InvalidRequest::RepeatedAuthorization
        ))
    );
    let joined = format!("{auth}, {auth}");
    let headers = CredentialHeaders {
        authorization: Some(&joined),
        ..CredentialHeaders::default()
    };
    assert_eq!(
        f.run(headers),
        Err(AuthRejection::InvalidRequest(
            InvalidRequest::RepeatedAuthorization
        ))
    );
    assert_eq!(f.key_calls.get(), 0);
}

#[test]
fn no_credential_is_missing_credentials_naming_what_the_route_takes() {
    let f = Fixture::new();
    assert_eq!(
        f.run(CredentialHeaders::default()),
        Err(AuthRejection::MissingCredentials {
            accepted: AuthRequirement::Either
        })
    );
}

#[test]
fn debug_never_shows_credentials() {
    let headers = CredentialHeaders {
        authorization: Some("Bearer secret-token"),
        authorization_repeated: false,
        api_key: Some("secret-key"),
    };
    let shown = format!("{headers:?}");
    assert!(!shown.contains("secret"), "{shown}");
}

// ------------------------------------------------- the token cache

fn headers_for(auth: &str) -> CredentialHeaders<'_> {
    CredentialHeaders {
        authorization: Some(auth),
        ..CredentialHeaders::default()
    }
}

#[test]
fn a_token_sent_again_is_not_checked_again() {
    let f = Fixture::with_token_cache();
    let auth = bearer(&token(claims("orders:read")));
    let first = f.run(headers_for(&auth)).unwrap().unwrap();
    let again = f.run(headers_for(&auth)).unwrap().unwrap();
    assert_eq!(first, again);
    assert_eq!(f.key_calls.get(), 1, "the second request sought no key");
    assert_eq!(*f.uses.borrow(), [TokenCacheUse::Miss, TokenCacheUse::Hit]);
}

#[test]
fn without_a_cache_every_token_is_checked_and_nothing_is_noted() {
    let f = Fixture::new();
    let auth = bearer(&token(claims("orders:read")));
    f.run(headers_for(&auth)).unwrap();
    f.run(headers_for(&auth)).unwrap();
    assert_eq!(f.key_calls.get(), 2);
    assert!(f.uses.borrow().is_empty());
}

#[test]
fn a_cached_token_past_exp_and_leeway_is_refused_as_without_the_cache() {
    let f = Fixture::with_token_cache();
    let mut short = claims("orders:read");
    short["exp"] = json!(NOW_MS / 1000 + 30);
    let auth = bearer(&token(short));
    f.run(headers_for(&auth)).unwrap();
    // exp is now + 30 s, the default leeway 60 s, the cache's TTL 5 min.
    f.now.set(NOW_MS + 89_999);
    assert!(f.run(headers_for(&auth)).is_ok());
    f.now.set(NOW_MS + 90_000);
    assert_eq!(f.run(headers_for(&auth)), Err(AuthRejection::Expired));
    assert_eq!(
        *f.uses.borrow(),
        [TokenCacheUse::Miss, TokenCacheUse::Hit, TokenCacheUse::Miss]
    );
}

#[test]
fn new_keys_send_a_cached_token_through_the_checks_again() {
    let f = Fixture::with_token_cache();
    let auth = bearer(&token(claims("orders:read")));
    f.run(headers_for(&auth)).unwrap();
    f.epoch.set(2);
    f.run(headers_for(&auth)).unwrap();
    assert_eq!(f.key_calls.get(), 2);
    f.run(headers_for(&auth)).unwrap();
    assert_eq!(f.key_calls.get(), 2, "remembered again under the new epoch");
}

#[test]
fn a_token_cached_on_one_route_is_refused_on_a_route_of_another_issuer() {
    let f = Fixture::with_token_cache();
    let auth = bearer(&token(claims("orders:read")));
    f.run(headers_for(&auth)).unwrap();
    f.route.set(1); // takes only issuer `other`
    assert_eq!(f.run(headers_for(&auth)), Err(AuthRejection::WrongIssuer));
    f.route.set(0);
    assert!(f.run(headers_for(&auth)).is_ok(), "still good where it was");
    assert_eq!(f.key_calls.get(), 1);
}

#[test]
fn scopes_are_checked_per_route_on_every_hit() {
    let f = Fixture::with_token_cache();
    let auth = bearer(&token(claims("orders:read")));
    f.run(headers_for(&auth)).unwrap();
    f.route.set(2); // same issuer, needs orders:admin
    assert!(matches!(
        f.run(headers_for(&auth)),
        Err(AuthRejection::InsufficientScope { .. })
    ));
    assert_eq!(f.uses.borrow().last(), Some(&TokenCacheUse::Hit));
}

#[test]
fn refusals_are_not_remembered() {
    let f = Fixture::with_token_cache();
    let good = token(claims("orders:read"));
    let (head, sig) = good.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let auth = bearer(&format!("{head}.{flipped}{}", &sig[1..]));
    for _ in 0..2 {
        assert_eq!(f.run(headers_for(&auth)), Err(AuthRejection::BadSignature));
    }
    assert_eq!(f.key_calls.get(), 2);
    assert!(f.tokens.as_ref().unwrap().borrow().is_empty());
}

/// [`authenticate_at_once`] on route `orders` (either, `orders:read`), with
/// API keys from memory and no cache of tokens.
fn at_once(f: &Fixture, headers: CredentialHeaders<'_>) -> Option<Option<Identity>> {
    let route = &f.config.routes[0];
    authenticate_at_once(
        route.auth.requirement,
        &route.auth.scopes,
        headers,
        |key| Some(f.api_keys.authenticate(key, NOW_MS)),
        None::<Remembered<'_, fn(&str) -> Option<u64>>>,
        NOW_MS,
    )
    .map(|found| found.identity)
}

/// [`authenticate_at_once`] on the fixture's route at its time, consulting
/// its cache of tokens as [`Provider`] offers it to the pipeline.
fn recalled(f: &Fixture, headers: CredentialHeaders<'_>) -> Option<AtOnce> {
    let route = &f.config.routes[f.route.get()];
    let provider = Provider { fixture: f };
    let remembered = f.tokens.as_ref().map(|cache| Remembered {
        cache,
        key_epoch: |name: &str| provider.key_epoch(provider.issuer_named(name)?, f.now.get()),
    });
    authenticate_at_once(
        route.auth.requirement,
        &route.auth.scopes,
        headers,
        |_| None,
        remembered,
        f.now.get(),
    )
}

#[test]
fn at_once_an_api_key_in_memory_is_the_identity_the_pipeline_gives() {
    let f = Fixture::new();
    let headers = || CredentialHeaders {
        api_key: Some("good-key"),
        ..CredentialHeaders::default()
    };
    let quick = at_once(&f, headers()).expect("resolved at once");
    assert_eq!(quick, f.run(headers()).unwrap());
    assert_eq!(quick.unwrap().subject, "acme");
}

#[test]
fn at_once_leaves_tokens_refusals_and_unresolved_keys_to_the_pipeline() {
    let f = Fixture::new();
    let token = bearer(&token(claims("orders:read")));
    // A bearer token needs a signature check.
    assert!(at_once(&f, headers_for(&token)).is_none());
    // Refusals: no credential, an unknown key, a key without the scope.
    assert!(at_once(&f, CredentialHeaders::default()).is_none());
    for key in ["unknown-key", "no-scope-key"] {
        let headers = CredentialHeaders {
            api_key: Some(key),
            ..CredentialHeaders::default()
        };
        assert!(at_once(&f, headers).is_none(), "{key}");
    }
    // A key the lookup leaves to an asynchronous store.
    let headers = CredentialHeaders {
        api_key: Some("good-key"),
        ..CredentialHeaders::default()
    };
    assert!(recalled(&f, headers).is_none());
    // A public route: no caller, whatever is sent.
    let public = CredentialHeaders {
        api_key: Some("good-key"),
        ..CredentialHeaders::default()
    };
    assert_eq!(
        authenticate_at_once(
            AuthRequirement::None,
            &[],
            public,
            |_| None,
            None::<Remembered<'_, fn(&str) -> Option<u64>>>,
            NOW_MS
        ),
        Some(AtOnce {
            identity: None,
            token_cache: None
        })
    );
}

#[test]
fn at_once_a_remembered_token_is_the_identity_the_pipeline_gives_as_a_hit() {
    let f = Fixture::with_token_cache();
    let auth = bearer(&token(claims("orders:read")));
    assert!(
        recalled(&f, headers_for(&auth)).is_none(),
        "not yet verified"
    );
    let verified = f.run(headers_for(&auth)).unwrap();
    let quick = recalled(&f, headers_for(&auth)).expect("remembered");
    assert_eq!(quick.identity, verified);
    assert_eq!(quick.token_cache, Some(TokenCacheUse::Hit));
    assert_eq!(f.key_calls.get(), 1);
    // The pipeline agrees, and calls it a hit too.
    assert_eq!(f.run(headers_for(&auth)).unwrap(), quick.identity);
    assert_eq!(f.uses.borrow().last(), Some(&TokenCacheUse::Hit));
}

#[test]
fn at_once_a_token_unknown_or_with_the_cache_off_or_absent_goes_the_full_way() {
    // Never sent before.
    let f = Fixture::with_token_cache();
    let auth = bearer(&token(claims("orders:read")));
    assert!(recalled(&f, headers_for(&auth)).is_none());
    // No cache offered.
    let f = Fixture::new();
    f.run(headers_for(&auth)).unwrap();
    assert!(recalled(&f, headers_for(&auth)).is_none());
    // A cache that is off (nothing in it either, but not even looked up).
    let f = Fixture {
        tokens: Some(RefCell::new(TokenCache::new(
            crate::auth::TokenCacheSettings {
                enabled: false,
                ..Default::default()
            },
        ))),
        ..Fixture::new()
    };
    f.run(headers_for(&auth)).unwrap();
    assert!(recalled(&f, headers_for(&auth)).is_none());
    // A cache borrowed elsewhere is a miss, never a panic.
    let f = Fixture::with_token_cache();
    f.run(headers_for(&auth)).unwrap();
    let held = f.tokens.as_ref().unwrap().borrow_mut();
    assert!(recalled(&f, headers_for(&auth)).is_none());
    drop(held);
    assert!(recalled(&f, headers_for(&auth)).is_some());
}

#[test]
fn at_once_an_expired_remembered_token_is_left_to_the_pipeline_to_refuse() {
    let f = Fixture::with_token_cache();
    let mut short = claims("orders:read");
    short["exp"] = json!(NOW_MS / 1000 + 30);
    let auth = bearer(&token(short));
    f.run(headers_for(&auth)).unwrap();
    // exp + the default leeway of 60 s is the first refused instant.
    f.now.set(NOW_MS + 89_999);
    assert!(recalled(&f, headers_for(&auth)).is_some());
    f.now.set(NOW_MS + 90_000);
    assert!(recalled(&f, headers_for(&auth)).is_none());
    assert!(
        f.tokens.as_ref().unwrap().borrow().is_empty(),
        "forgotten, as the pipeline forgets it"
    );
    assert_eq!(f.run(headers_for(&auth)), Err(AuthRejection::Expired));
}

#[test]
fn at_once_past_the_cache_ttl_the_token_is_checked_again() {
    let f = Fixture::with_token_cache();
    let auth = bearer(&token(claims("orders:read")));
    f.run(headers_for(&auth)).unwrap();
    // The default TTL is 5 minutes; the token lives 10.
    f.now.set(NOW_MS + 299_999);
    assert!(recalled(&f, headers_for(&auth)).is_some());
    f.now.set(NOW_MS + 300_000);
    assert!(recalled(&f, headers_for(&auth)).is_none());
}

#[test]
fn at_once_new_keys_another_issuer_or_a_missing_scope_go_the_full_way() {
    let f = Fixture::with_token_cache();
    let auth = bearer(&token(claims("orders:read")));
    f.run(headers_for(&auth)).unwrap();
    // A route of another issuer: the pipeline refuses it (WrongIssuer).
    f.route.set(1);
    assert!(recalled(&f, headers_for(&auth)).is_none());
    // A route of the same issuer needing a scope the token lacks: 403 there.
    f.route.set(2);
    assert!(recalled(&f, headers_for(&auth)).is_none());
    assert!(matches!(
        f.run(headers_for(&auth)),
        Err(AuthRejection::InsufficientScope { .. })
    ));
    // Still remembered for the route it suits.
    f.route.set(0);
    assert!(recalled(&f, headers_for(&auth)).is_some());
    // The issuer's keys changed: forgotten, checked in full again.
    f.epoch.set(2);
    assert!(recalled(&f, headers_for(&auth)).is_none());
    assert!(f.tokens.as_ref().unwrap().borrow().is_empty());
}

#[test]
fn at_once_repeated_authorization_and_over_long_tokens_go_the_full_way() {
    let f = Fixture::with_token_cache();
    let auth = bearer(&token(claims("orders:read")));
    f.run(headers_for(&auth)).unwrap();
    let repeated = CredentialHeaders {
        authorization: Some(&auth),
        authorization_repeated: true,
        ..CredentialHeaders::default()
    };
    assert!(recalled(&f, repeated).is_none());
    let long = format!("Bearer {}", "a".repeat(DEFAULT_MAX_TOKEN_BYTES + 1));
    assert!(recalled(&f, headers_for(&long)).is_none());
}

/// The fixture's keys as [`KeysAtOnce`] gives them: held (inline, fresh)
/// when `held`, else none (a key set still to fetch).
struct HeldKeys<'a> {
    provider: Provider<'a>,
    held: bool,
}

impl KeysAtOnce for HeldKeys<'_> {
    fn issuer(&self, jwt: &UnverifiedJwt<'_>) -> Result<&Issuer, AuthRejection> {
        self.provider.issuer(jwt)
    }

    fn signing_key_at_once(
        &self,
        issuer: &Issuer,
        kid: Option<&str>,
        alg: Algorithm,
        now_ms: u64,
    ) -> Option<Jwk> {
        if !self.held {
            return None;
        }
        let key = self.provider.signing_key(issuer, kid, alg, now_ms);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::pin::pin!(key).poll(&mut cx) {
            std::task::Poll::Ready(found) => found.ok(),
            std::task::Poll::Pending => None,
        }
    }

    fn key_epoch(&self, issuer: &Issuer, now_ms: u64) -> Option<u64> {
        self.provider.key_epoch(issuer, now_ms)
    }
}

/// [`authenticate_or_pend`] on the fixture's route at its time, with its
/// cache (if any) and its keys held or not.
fn pend_with(f: &Fixture, headers: CredentialHeaders<'_>, held: bool) -> Option<AtOnceStep> {
    let route = &f.config.routes[f.route.get()];
    let provider = Provider { fixture: f };
    let remembered = f.tokens.as_ref().map(|cache| Remembered {
        cache,
        key_epoch: |name: &str| provider.key_epoch(provider.issuer_named(name)?, f.now.get()),
    });
    let keys = HeldKeys {
        provider: Provider { fixture: f },
        held,
    };
    authenticate_or_pend(
        route.auth.requirement,
        &route.auth.scopes,
        headers,
        |key| Some(f.api_keys.authenticate(key, f.now.get())),
        remembered,
        Some(&keys),
        f.now.get(),
    )
}

/// The pending token of a new bearer token (panics otherwise).
fn pending(f: &Fixture, auth: &str) -> Box<PendingToken> {
    match pend_with(f, headers_for(auth), true) {
        Some(AtOnceStep::NeedsSignature(pending)) => pending,
        other => panic!("expected a pending signature check, got {other:?}"),
    }
}

/// What the native verifier says of `pending`'s signature.
fn natively_valid(pending: &PendingToken) -> bool {
    pending
        .signature_check()
        .is_ok_and(|check| check.verify_natively().is_ok())
}

#[test]
fn pend_a_new_token_checked_then_finished_is_the_pipelines_caller_and_is_remembered_as_it_would_be()
{
    let f = Fixture::with_token_cache();
    let auth = bearer(&token(claims("orders:read")));
    let pending = pending(&f, &auth);
    assert!(natively_valid(&pending));
    let verified = pending.finish(true, NOW_MS).expect("valid");
    assert_eq!(verified.token_cache(), Some(TokenCacheUse::Miss));
    // Nothing remembered before the caller answers.
    assert!(f.tokens.as_ref().unwrap().borrow().is_empty());

    // The pipeline, on a fixture of its own, finds the same caller.
    let full = Fixture::with_token_cache();
    let expected = full.run(headers_for(&auth)).unwrap().unwrap();
    assert_eq!(verified.identity(), &expected);
    assert_eq!(*full.uses.borrow(), [TokenCacheUse::Miss]);

    let found = verified.remember(f.tokens.as_ref().unwrap(), NOW_MS);
    assert_eq!(found.identity.as_ref(), Some(&expected));
    assert_eq!(found.token_cache, Some(TokenCacheUse::Miss));
    // Remembered as the pipeline remembers it: the next request is a hit,
    // on the fast path and on the full one, until the same instant.
    assert_eq!(f.tokens.as_ref().unwrap().borrow().len(), 1);
    f.now.set(NOW_MS + 299_999);
    full.now.set(NOW_MS + 299_999);
    let hit = recalled(&f, headers_for(&auth)).expect("a hit");
    assert_eq!(hit.token_cache, Some(TokenCacheUse::Hit));
    assert_eq!(hit.identity, Some(expected.clone()));
    assert_eq!(recalled(&full, headers_for(&auth)), Some(hit));
    f.now.set(NOW_MS + 300_000);
    full.now.set(NOW_MS + 300_000);
    assert!(recalled(&f, headers_for(&auth)).is_none());
    assert!(recalled(&full, headers_for(&auth)).is_none());
}

#[test]
fn pend_a_remembered_token_is_known_at_once_as_a_hit() {
    let f = Fixture::with_token_cache();
    let auth = bearer(&token(claims("orders:read")));
    f.run(headers_for(&auth)).unwrap();
    let Some(AtOnceStep::Known(found)) = pend_with(&f, headers_for(&auth), true) else {
        panic!("a hit");
    };
    assert_eq!(found.token_cache, Some(TokenCacheUse::Hit));
    assert_eq!(Some(found), recalled(&f, headers_for(&auth)));
}

#[test]
fn pend_a_bad_signature_is_left_to_the_pipeline_and_nothing_is_remembered() {
    let f = Fixture::with_token_cache();
    let good = token(claims("orders:read"));
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("1".into());
    let forged = encode(
        &header,
        &claims("orders:read"),
        &EncodingKey::from_secret(b"not-the-issuers-secret-0123456789abcdef"),
    )
    .unwrap();
    assert_ne!(good, forged);
    let auth = bearer(&forged);
    let pending = pending(&f, &auth);
    assert!(!natively_valid(&pending));
    assert!(pending.finish(false, NOW_MS).is_none());
    assert!(f.tokens.as_ref().unwrap().borrow().is_empty());
    assert_eq!(f.run(headers_for(&auth)), Err(AuthRejection::BadSignature));
}

#[test]
fn pend_claims_and_scopes_are_checked_after_the_signature_and_refusals_go_the_full_way() {
    let now = NOW_MS / 1000;
    let f = Fixture::with_token_cache();
    let mut expired = claims("orders:read");
    expired["exp"] = json!(now - 3600);
    let mut audience = claims("orders:read");
    audience["aud"] = json!("elsewhere");
    let mut no_sub = claims("orders:read");
    no_sub.as_object_mut().unwrap().remove("sub");
    for (claims, refusal) in [
        (expired, AuthRejection::Expired),
        (audience, AuthRejection::WrongAudience),
        (no_sub, MalformedToken::MissingClaim("sub").into()),
    ] {
        let auth = bearer(&token(claims));
        let pending = pending(&f, &auth);
        assert!(natively_valid(&pending));
        assert!(pending.finish(true, NOW_MS).is_none(), "{refusal:?}");
        assert_eq!(f.run(headers_for(&auth)), Err(refusal));
    }
    // A valid token without the route's scope: 403 from the pipeline, and
    // the fast path remembers nothing (the pipeline then does, as ever).
    f.route.set(2);
    let auth = bearer(&token(claims("orders:read")));
    let pending = pending(&f, &auth);
    assert!(pending.finish(true, NOW_MS).is_none());
    assert!(f.tokens.as_ref().unwrap().borrow().is_empty());
    assert!(matches!(
        f.run(headers_for(&auth)),
        Err(AuthRejection::InsufficientScope { .. })
    ));
}

#[test]
fn pend_declines_keys_not_held_another_issuer_bad_tokens_and_repeated_headers() {
    let f = Fixture::with_token_cache();
    let auth = bearer(&token(claims("orders:read")));
    // The issuer's keys are not held (a fetch is due): the full path.
    assert!(pend_with(&f, headers_for(&auth), false).is_none());
    // A route of another issuer: WrongIssuer, the pipeline's to render.
    f.route.set(1);
    assert!(pend_with(&f, headers_for(&auth), true).is_none());
    f.route.set(0);
    // Malformed, over the size bound, an unknown kid.
    assert!(pend_with(&f, headers_for("Bearer a.b.c"), true).is_none());
    let long = format!("Bearer {}", "a".repeat(DEFAULT_MAX_TOKEN_BYTES + 1));
    assert!(pend_with(&f, headers_for(&long), true).is_none());
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("2".into());
    let secret = b"tidegate-pipeline-test-secret-0123456789";
    let unknown = encode(
        &header,
        &claims("orders:read"),
        &EncodingKey::from_secret(secret),
    )
    .unwrap();
    assert!(pend_with(&f, headers_for(&bearer(&unknown)), true).is_none());
    let repeated = CredentialHeaders {
        authorization: Some(&auth),
        authorization_repeated: true,
        ..CredentialHeaders::default()
    };
    assert!(pend_with(&f, repeated, true).is_none());
    // Nothing was looked at or remembered by any of it.
    assert!(f.tokens.as_ref().unwrap().borrow().is_empty());
    // API keys and public routes are as authenticate_at_once answers them.
    let key = CredentialHeaders {
        api_key: Some("good-key"),
        ..CredentialHeaders::default()
    };
    let Some(AtOnceStep::Known(found)) = pend_with(&f, key, true) else {
        panic!("an API key in memory is known at once");
    };
    assert_eq!(found.identity, f.run(key).unwrap());
}

#[test]
fn pend_with_the_cache_off_a_new_token_is_checked_and_nothing_is_noted_or_remembered() {
    let f = Fixture::with_token_cache();
    // An offered but disabled cache is as none.
    let off = TokenCacheSettings {
        enabled: false,
        ..TokenCacheSettings::default()
    };
    let f = Fixture {
        tokens: Some(RefCell::new(TokenCache::new(off))),
        ..f
    };
    let auth = bearer(&token(claims("orders:read")));
    let verified = pending(&f, &auth).finish(true, NOW_MS).expect("valid");
    assert_eq!(verified.token_cache(), None);
    let found = verified.remember(f.tokens.as_ref().unwrap(), NOW_MS);
    assert_eq!(found.token_cache, None);
    assert!(f.tokens.as_ref().unwrap().borrow().is_empty());
    // No cache offered at all: the same.
    let none = Fixture::new();
    let verified = pending(&none, &auth).finish(true, NOW_MS).expect("valid");
    assert_eq!(verified.token_cache(), None);
}

#[test]
fn a_verified_bearer_handed_on_names_its_digest_and_holds_only_inside_its_window() {
    let f = Fixture::with_token_cache();
    let raw = token(claims("orders:read"));
    let verified = pending(&f, &bearer(&raw))
        .finish(true, NOW_MS)
        .expect("valid");
    assert_eq!(verified.digest(), Some(TokenDigest::of(&raw)));
    assert!(verified.still_valid(NOW_MS));
    // exp is now + 300 s, the default leeway 60 s.
    assert!(verified.still_valid(NOW_MS + 359_999));
    assert!(!verified.still_valid(NOW_MS + 360_000));
    // Without a cache there is nothing to key it by, nor to hand on.
    let none = Fixture::new();
    let verified = pending(&none, &bearer(&raw))
        .finish(true, NOW_MS)
        .expect("valid");
    assert_eq!(verified.digest(), None);
    assert!(!verified.still_valid(NOW_MS));
}
