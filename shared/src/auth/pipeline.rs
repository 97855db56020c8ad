//! The credential pipeline, once: select → parse → issuer → key → signature →
//! claims → scopes. The edge, the control API and the walkthrough all run it
//! through [`authenticate`]; what the policy cannot decide itself — which
//! issuers this request may use, where keys come from, what an API key
//! stands for — each supplies as a [`KeyProvider`], and the signature is
//! checked by a [`SignatureVerifier`] (WebCrypto at the edge,
//! [`super::NativeVerifier`] elsewhere). A provider may also offer a
//! [`TokenCache`] (with [`KeyProvider::issuer_named`] and
//! [`KeyProvider::key_epoch`]) so a token sent again is not checked again;
//! by default it offers none.
//!
//! ```
//! # #[cfg(feature = "native-verify")] {
//! use std::future::{ready, Future};
//! use tidegate_policy::auth::{
//!     authenticate, AuthRejection, AuthRequirement, CredentialHeaders, Identity, KeyProvider,
//!     Jwk, NativeVerifier, UnverifiedJwt,
//! };
//! use tidegate_policy::config::Issuer;
//!
//! /// No issuers and no API keys: every credential is refused.
//! struct Nothing;
//!
//! impl KeyProvider for Nothing {
//!     type Error = AuthRejection;
//!     fn issuer(&self, _: &UnverifiedJwt<'_>) -> Result<&Issuer, AuthRejection> {
//!         Err(AuthRejection::WrongIssuer)
//!     }
//!     fn signing_key(&self, _: &Issuer, _: Option<&str>, _: tidegate_policy::auth::Algorithm, _: u64)
//!         -> impl Future<Output = Result<Jwk, AuthRejection>> {
//!         ready(Err(AuthRejection::UnknownKey))
//!     }
//!     fn api_key(&self, _: &str, _: u64) -> impl Future<Output = Result<Identity, AuthRejection>> {
//!         ready(Err(AuthRejection::UnknownApiKey))
//!     }
//! }
//!
//! let headers = CredentialHeaders { api_key: Some("k"), ..CredentialHeaders::default() };
//! let outcome = authenticate(AuthRequirement::ApiKey, &[], headers, &Nothing, &NativeVerifier, 0);
//! let refused = futures_lite_block_on(outcome);
//! assert_eq!(refused, Err(AuthRejection::UnknownApiKey));
//! # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     let waker = std::task::Waker::noop();
//! #     let mut cx = std::task::Context::from_waker(waker);
//! #     let mut f = std::pin::pin!(f);
//! #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
//! # }
//! # }
//! ```

use std::cell::RefCell;
use std::future::Future;

use jsonwebtoken::jwk::Jwk;

use super::{
    authorize, select_credential, Algorithm, AuthRejection, AuthRequirement, Credential, Identity,
    InvalidRequest, SignatureVerifier, TokenCache, TokenCacheUse, TokenDigest, UnverifiedJwt,
    VerifiedToken, DEFAULT_MAX_TOKEN_BYTES,
};
use crate::config::Issuer;

/// What the pipeline asks its adapter for.
pub trait KeyProvider {
    /// The adapter's failures besides refusals (e.g. an unreadable key
    /// store); a refusal converts into it.
    type Error: From<AuthRejection>;

    /// The trusted issuer `jwt` names, among those this request may use
    /// (a route's issuers at the edge, every issuer for the control API).
    fn issuer(&self, jwt: &UnverifiedJwt<'_>) -> Result<&Issuer, AuthRejection>;

    /// The key of `issuer` for `kid` and `alg` at `now_ms`, from wherever
    /// the adapter keeps the issuer's JWKS (fetched and cached under the
    /// issuer's `JwksCache` protocol, or inline in the config).
    fn signing_key(
        &self,
        issuer: &Issuer,
        kid: Option<&str>,
        alg: Algorithm,
        now_ms: u64,
    ) -> impl Future<Output = Result<Jwk, Self::Error>>;

    /// The identity an API key stands for at `now_ms`; an unknown,
    /// disabled or expired key is a refusal.
    fn api_key(
        &self,
        key: &str,
        now_ms: u64,
    ) -> impl Future<Output = Result<Identity, Self::Error>>;

    /// The cache of verified tokens to consult and fill, if the adapter
    /// keeps one (see [`TokenCache`] for when an entry is reused). Default:
    /// none, every token is checked in full. The pipeline never holds the
    /// borrow across an `await`, and skips the cache if it is borrowed.
    fn token_cache(&self) -> Option<&RefCell<TokenCache>> {
        None
    }

    /// The configured issuer called `name`, if this request may use it (as
    /// [`KeyProvider::issuer`] would have chosen it for a token of that
    /// issuer): how a cached token's issuer is checked against the route.
    /// Default: none, so no cached token is reused.
    fn issuer_named(&self, _name: &str) -> Option<&Issuer> {
        None
    }

    /// The epoch of `issuer`'s key set ([`JwksCache::key_epoch`]) if it is
    /// fresh at `now_ms`. The pipeline asks right after
    /// [`KeyProvider::signing_key`] returns, with no `await` between, so the
    /// answer is the epoch of the set that key came from. Default: none, so
    /// nothing is cached.
    ///
    /// [`JwksCache::key_epoch`]: super::JwksCache::key_epoch
    fn key_epoch(&self, _issuer: &Issuer, _now_ms: u64) -> Option<u64> {
        None
    }

    /// Told, for each bearer token while a cache is offered, whether a
    /// cached verification was reused (for the adapter's log). Default:
    /// ignored.
    fn note_token_cache(&self, _use: TokenCacheUse) {}
}

/// The headers a credential may come in, as the adapter read them.
#[derive(Clone, Copy, Default)]
pub struct CredentialHeaders<'a> {
    /// The `Authorization` value. Where several field lines arrive joined
    /// (workerd joins them with `", "`), the pipeline sees the comma.
    pub authorization: Option<&'a str>,
    /// More than one `Authorization` field line arrived (for adapters whose
    /// header map keeps them apart, as `http::HeaderMap` does).
    pub authorization_repeated: bool,
    /// The value of the configured API-key header.
    pub api_key: Option<&'a str>,
}

// Hand-written: the values are credentials and never go to a log.
impl std::fmt::Debug for CredentialHeaders<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialHeaders")
            .field("authorization", &self.authorization.map(|_| "<redacted>"))
            .field("authorization_repeated", &self.authorization_repeated)
            .field("api_key", &self.api_key.map(|_| "<redacted>"))
            .finish()
    }
}

/// The caller, for a route with `requirement` and `scopes`: `None` when the
/// route is public, or why the request is refused.
pub async fn authenticate<P: KeyProvider, V: SignatureVerifier>(
    requirement: AuthRequirement,
    scopes: &[String],
    headers: CredentialHeaders<'_>,
    provider: &P,
    verifier: &V,
    now_ms: u64,
) -> Result<Option<Identity>, P::Error> {
    let takes_tokens = matches!(requirement, AuthRequirement::Jwt | AuthRequirement::Either);
    if takes_tokens && headers.authorization_repeated {
        return Err(AuthRejection::InvalidRequest(InvalidRequest::RepeatedAuthorization).into());
    }
    let Some(credential) = select_credential(requirement, headers.authorization, headers.api_key)?
    else {
        return Ok(None);
    };
    let identity = match credential {
        Credential::ApiKey(key) => provider.api_key(key, now_ms).await?,
        Credential::Bearer(token) => bearer(token, provider, verifier, now_ms).await?,
    };
    authorize(&identity, scopes)?;
    Ok(Some(identity))
}

/// What [`authenticate_at_once`] may consult besides the request: the
/// isolate's cache of verified tokens and, for a remembered token's issuer,
/// the epoch of its key set.
pub struct Remembered<'a, E> {
    /// The cache (not consulted when off, or when already borrowed).
    pub cache: &'a RefCell<TokenCache>,
    /// For a remembered issuer's name: the epoch of its key set if this
    /// request may use that issuer and its keys are fresh at `now_ms`, as
    /// [`KeyProvider::issuer_named`] then [`KeyProvider::key_epoch`] answer
    /// it for [`authenticate`]; `None` otherwise.
    pub key_epoch: E,
}

/// The caller [`authenticate_at_once`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtOnce {
    /// `None` on a public route.
    pub identity: Option<Identity>,
    /// [`TokenCacheUse::Hit`] when a remembered bearer token stood in for
    /// its checks (what [`KeyProvider::note_token_cache`] would have been
    /// told); `None` for an API key or a public route.
    pub token_cache: Option<TokenCacheUse>,
}

/// [`authenticate`] without waiting, for the edge's synchronous fast path:
/// the caller when it is known at once and holds the route's `scopes`: none
/// on a public route; an API key that `lookup` resolves at once (a key set
/// held in memory); a bearer token `remembered` holds and may reuse at
/// `now_ms` under the same rules as [`authenticate`] (its window, the
/// cache's TTL, this request's issuers, the key epoch). `None` when
/// [`authenticate`] must run instead: a token not remembered (its signature
/// needs a verifier), or not reusable (expired, keys changed or stale,
/// another issuer), a key `lookup` leaves to an asynchronous store (it
/// returns `None`), and every refusal, which the full pipeline renders. A
/// remembered entry that can never be used again is forgotten here as
/// [`authenticate`] would.
pub fn authenticate_at_once<E>(
    requirement: AuthRequirement,
    scopes: &[String],
    headers: CredentialHeaders<'_>,
    lookup: impl FnOnce(&str) -> Option<Result<Identity, AuthRejection>>,
    remembered: Option<Remembered<'_, E>>,
    now_ms: u64,
) -> Option<AtOnce>
where
    E: FnOnce(&str) -> Option<u64>,
{
    let takes_tokens = matches!(requirement, AuthRequirement::Jwt | AuthRequirement::Either);
    if takes_tokens && headers.authorization_repeated {
        return None;
    }
    let (identity, token_cache) =
        match select_credential(requirement, headers.authorization, headers.api_key).ok()? {
            None => {
                return Some(AtOnce {
                    identity: None,
                    token_cache: None,
                })
            }
            Some(Credential::Bearer(token)) => {
                let remembered = remembered.filter(|r| usable(r.cache))?;
                let digest = digest_of(token)?;
                let identity = recall(remembered.cache, &digest, now_ms, remembered.key_epoch)?;
                (identity, Some(TokenCacheUse::Hit))
            }
            Some(Credential::ApiKey(key)) => (lookup(key)?.ok()?, None),
        };
    authorize(&identity, scopes).ok()?;
    Some(AtOnce {
        identity: Some(identity),
        token_cache,
    })
}

/// Whether `cache` is on (and not borrowed elsewhere).
fn usable(cache: &RefCell<TokenCache>) -> bool {
    cache.try_borrow().is_ok_and(|c| c.is_enabled())
}

/// The digest a token is remembered under; `None` for a token over the
/// parser's bound, which is refused at once and never hashed.
fn digest_of(token: &str) -> Option<TokenDigest> {
    (token.len() <= DEFAULT_MAX_TOKEN_BYTES).then(|| TokenDigest::of(token))
}

/// The identity `cache` remembers for `digest`, if it may stand in for the
/// token's checks at `now_ms` ([`TokenCache::lookup`]): the one reuse rule of
/// [`authenticate`] and [`authenticate_at_once`]. A borrowed cache is a miss.
fn recall(
    cache: &RefCell<TokenCache>,
    digest: &TokenDigest,
    now_ms: u64,
    key_epoch: impl FnOnce(&str) -> Option<u64>,
) -> Option<Identity> {
    cache
        .try_borrow_mut()
        .ok()
        .and_then(|mut cache| cache.lookup(digest, now_ms, key_epoch))
}

/// The caller a bearer token stands for: remembered in the provider's
/// [`TokenCache`], or checked in full (and then remembered).
async fn bearer<P: KeyProvider, V: SignatureVerifier>(
    token: &str,
    provider: &P,
    verifier: &V,
    now_ms: u64,
) -> Result<Identity, P::Error> {
    // The cache is asked for again after the `await`s rather than held
    // across them: a `&RefCell` would make the future `!Send` (the Lambda
    // needs `Send` futures, even with no cache). An over-long token is
    // refused by the parser at once: it is not hashed first.
    let digest = provider.token_cache().and_then(|_| digest_of(token));
    if let (Some(digest), Some(cache)) = (&digest, provider.token_cache()) {
        let hit = recall(cache, digest, now_ms, |name| {
            provider.key_epoch(provider.issuer_named(name)?, now_ms)
        });
        let used = if hit.is_some() {
            TokenCacheUse::Hit
        } else {
            TokenCacheUse::Miss
        };
        provider.note_token_cache(used);
        if let Some(identity) = hit {
            return Ok(identity);
        }
    }
    let jwt = UnverifiedJwt::parse(token, DEFAULT_MAX_TOKEN_BYTES)?;
    let issuer = provider.issuer(&jwt)?;
    let jwk = provider
        .signing_key(issuer, jwt.kid(), jwt.alg(), now_ms)
        .await?;
    // Before the verifier's `await`: the epoch of the set `jwk` came from.
    let key_epoch = digest.and_then(|_| provider.key_epoch(issuer, now_ms));
    let verified = jwt
        .signature_check(&issuer.policy, &jwk)?
        .verify_with(verifier)
        .await?;
    let window = verified.validity();
    let identity = verified.identity(now_ms)?;
    if let (Some(cache), Some(digest), Some(key_epoch), Some(window)) =
        (provider.token_cache(), digest, key_epoch, window)
    {
        if let Ok(mut cache) = cache.try_borrow_mut() {
            let remembered = VerifiedToken {
                issuer: issuer.name.clone(),
                identity: identity.clone(),
                window,
                key_epoch,
            };
            cache.insert(digest, remembered, now_ms);
        }
    }
    Ok(identity)
}

#[cfg(all(test, feature = "native-verify"))]
mod tests;
