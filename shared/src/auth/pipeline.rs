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
    InvalidRequest, IssuerPolicy, SignatureCheck, SignatureOutcome, SignatureVerifier, TokenCache,
    TokenCacheUse, TokenDigest, UnverifiedJwt, VerifiedSignature, VerifiedToken,
    DEFAULT_MAX_TOKEN_BYTES,
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
/// [`authenticate`] would. [`authenticate_or_pend`] also prepares the
/// signature check of a token not remembered.
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
    let step = authenticate_or_pend(
        requirement,
        scopes,
        headers,
        lookup,
        remembered,
        None::<&NoKeys>,
        now_ms,
    )?;
    match step {
        AtOnceStep::Known(found) => Some(found),
        AtOnceStep::NeedsSignature(_) => None,
    }
}

/// What [`authenticate_or_pend`] may consult to prepare a bearer token's
/// signature check without waiting: what [`KeyProvider::issuer`],
/// [`KeyProvider::signing_key`] and [`KeyProvider::key_epoch`] give
/// [`authenticate`], answered only when no I/O is needed.
pub trait KeysAtOnce {
    /// The trusted issuer `jwt` names, among those this request may use
    /// (as [`KeyProvider::issuer`]).
    fn issuer(&self, jwt: &UnverifiedJwt<'_>) -> Result<&Issuer, AuthRejection>;

    /// The key [`KeyProvider::signing_key`] would return at `now_ms` with no
    /// I/O and no change to the adapter's state (the issuer's key set held
    /// and fresh: [`JwksCache::key_at_once`]); `None` when it would fetch,
    /// refresh, wait or refuse.
    ///
    /// [`JwksCache::key_at_once`]: super::JwksCache::key_at_once
    fn signing_key_at_once(
        &self,
        issuer: &Issuer,
        kid: Option<&str>,
        alg: Algorithm,
        now_ms: u64,
    ) -> Option<Jwk>;

    /// As [`KeyProvider::key_epoch`]: asked right after
    /// [`KeysAtOnce::signing_key_at_once`] found the key.
    fn key_epoch(&self, issuer: &Issuer, now_ms: u64) -> Option<u64>;
}

/// No keys: [`authenticate_at_once`] never prepares a signature check.
enum NoKeys {}

impl KeysAtOnce for NoKeys {
    fn issuer(&self, _: &UnverifiedJwt<'_>) -> Result<&Issuer, AuthRejection> {
        match *self {}
    }

    fn signing_key_at_once(
        &self,
        _: &Issuer,
        _: Option<&str>,
        _: Algorithm,
        _: u64,
    ) -> Option<Jwk> {
        match *self {}
    }

    fn key_epoch(&self, _: &Issuer, _: u64) -> Option<u64> {
        match *self {}
    }
}

/// What [`authenticate_or_pend`] answers when it does not decline.
#[derive(Debug)]
pub enum AtOnceStep {
    /// The caller is known at once (as [`authenticate_at_once`]).
    Known(AtOnce),
    /// A bearer token whose every check but the signature can be made at
    /// once: check [`PendingToken::signature_check`], then
    /// [`PendingToken::finish`] with the answer.
    NeedsSignature(Box<PendingToken>),
}

/// [`authenticate_at_once`], and for a bearer token not remembered whose
/// issuer's key `keys` holds ([`KeysAtOnce`]), the token parsed, its issuer
/// chosen, its key found and every check before the signature passed, as
/// [`authenticate`] runs them: [`AtOnceStep::NeedsSignature`], owning all
/// it needs (and the token's digest, so it is never hashed twice).
/// `None`: [`authenticate`] must run (a key to fetch or refresh, a
/// refusal, an asynchronous key store...). Pure: `now_ms` is the only
/// clock; never panics.
pub fn authenticate_or_pend<E, K>(
    requirement: AuthRequirement,
    scopes: &[String],
    headers: CredentialHeaders<'_>,
    lookup: impl FnOnce(&str) -> Option<Result<Identity, AuthRejection>>,
    remembered: Option<Remembered<'_, E>>,
    keys: Option<&K>,
    now_ms: u64,
) -> Option<AtOnceStep>
where
    E: FnOnce(&str) -> Option<u64>,
    K: KeysAtOnce,
{
    let takes_tokens = matches!(requirement, AuthRequirement::Jwt | AuthRequirement::Either);
    if takes_tokens && headers.authorization_repeated {
        return None;
    }
    let (identity, token_cache) =
        match select_credential(requirement, headers.authorization, headers.api_key).ok()? {
            None => {
                return Some(AtOnceStep::Known(AtOnce {
                    identity: None,
                    token_cache: None,
                }))
            }
            Some(Credential::Bearer(token)) => {
                let (cache, key_epoch) = match remembered {
                    Some(r) if usable(r.cache) => (Some(r.cache), Some(r.key_epoch)),
                    _ => (None, None),
                };
                // As `bearer`: hashed only when a cache is offered, and an
                // over-long token is never hashed.
                let digest = cache.and_then(|_| digest_of(token));
                if let (Some(cache), Some(digest), Some(key_epoch)) = (cache, &digest, key_epoch) {
                    if let Some(identity) = recall(cache, digest, now_ms, key_epoch) {
                        authorize(&identity, scopes).ok()?;
                        return Some(AtOnceStep::Known(AtOnce {
                            identity: Some(identity),
                            token_cache: Some(TokenCacheUse::Hit),
                        }));
                    }
                }
                return pend(token, scopes, keys?, digest, now_ms).map(AtOnceStep::NeedsSignature);
            }
            Some(Credential::ApiKey(key)) => (lookup(key)?.ok()?, None),
        };
    authorize(&identity, scopes).ok()?;
    Some(AtOnceStep::Known(AtOnce {
        identity: Some(identity),
        token_cache,
    }))
}

/// `bearer`'s steps up to the signature, with no waiting: `None` for
/// anything it would refuse or need I/O for.
fn pend<K: KeysAtOnce>(
    token: &str,
    scopes: &[String],
    keys: &K,
    digest: Option<TokenDigest>,
    now_ms: u64,
) -> Option<Box<PendingToken>> {
    let jwt = UnverifiedJwt::parse(token, DEFAULT_MAX_TOKEN_BYTES).ok()?;
    let issuer = keys.issuer(&jwt).ok()?;
    let jwk = keys.signing_key_at_once(issuer, jwt.kid(), jwt.alg(), now_ms)?;
    // As `bearer`: the epoch of the set `jwk` came from, read right after it.
    let key_epoch = digest.and_then(|_| keys.key_epoch(issuer, now_ms));
    // Every check before the signature; a refusal is the full path's.
    jwt.signature_check(&issuer.policy, &jwk).ok()?;
    Some(Box::new(PendingToken {
        jwt: jwt.into_owned(),
        issuer: issuer.name.clone(),
        policy: issuer.policy.clone(),
        jwk,
        scopes: scopes.to_vec(),
        digest,
        key_epoch,
    }))
}

/// A bearer token whose every check but the signature passed
/// ([`authenticate_or_pend`]), owning what the rest of [`authenticate`]
/// needs, so it may wait for a verifier outside any future.
pub struct PendingToken {
    jwt: UnverifiedJwt<'static>,
    /// The configured issuer's name.
    issuer: String,
    policy: IssuerPolicy,
    jwk: Jwk,
    /// The route's scopes.
    scopes: Vec<String>,
    /// The token's digest, when a cache is offered.
    digest: Option<TokenDigest>,
    /// The epoch of the key set `jwk` came from, when a cache is offered.
    key_epoch: Option<u64>,
}

// Never print the token.
impl std::fmt::Debug for PendingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingToken")
            .field("jwt", &self.jwt)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl PendingToken {
    /// The signature check to answer (its key's fingerprint, signing
    /// input, signature and algorithm). Its checks passed when this token
    /// was prepared; `Err` is not expected.
    pub fn signature_check(&self) -> Result<SignatureCheck<'_>, AuthRejection> {
        self.jwt.signature_check(&self.policy, &self.jwk)
    }

    /// What [`authenticate`] does once the verifier answered `valid`, at
    /// `now_ms`: the claims, the identity, the route's scopes. `None` (the
    /// full path, which checks again and renders the refusal) for an
    /// invalid signature or any refusal. Nothing is remembered yet:
    /// [`VerifiedBearer::remember`] does, once the caller answers.
    pub fn finish(self, valid: bool, now_ms: u64) -> Option<VerifiedBearer> {
        let outcome = if valid {
            SignatureOutcome::Valid
        } else {
            SignatureOutcome::Invalid
        };
        let verified = self.signature_check().ok()?.conclude(outcome).ok()?;
        let (identity, memo) =
            accept(verified, &self.issuer, self.digest, self.key_epoch, now_ms).ok()?;
        authorize(&identity, &self.scopes).ok()?;
        Some(VerifiedBearer {
            identity,
            memo,
            token_cache: self.digest.map(|_| TokenCacheUse::Miss),
        })
    }
}

/// A bearer token found valid by [`PendingToken::finish`].
#[derive(Debug)]
pub struct VerifiedBearer {
    identity: Identity,
    /// What the cache is to remember.
    memo: Option<(TokenDigest, VerifiedToken)>,
    /// [`TokenCacheUse::Miss`] when a cache was offered (what
    /// [`KeyProvider::note_token_cache`] is told for a token checked in
    /// full).
    token_cache: Option<TokenCacheUse>,
}

impl VerifiedBearer {
    /// The caller.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// [`TokenCacheUse::Miss`] when a cache was offered, as the full path
    /// notes a token checked in full; `None` otherwise.
    pub fn token_cache(&self) -> Option<TokenCacheUse> {
        self.token_cache
    }

    /// The digest the token is to be remembered under, when it is to be
    /// (a cache offered, the key set fresh, a validity window): what a
    /// caller may key the verification by to hand it to a later step of
    /// the same request.
    pub fn digest(&self) -> Option<TokenDigest> {
        self.memo.as_ref().map(|(digest, _)| *digest)
    }

    /// Whether the token's times still pass at `now_ms` (its validity
    /// window, exact to the millisecond as the claim checks): a
    /// verification handed to a later step is used only then. `false` when
    /// there is nothing to remember ([`VerifiedBearer::digest`] is `None`).
    pub fn still_valid(&self, now_ms: u64) -> bool {
        self.memo
            .as_ref()
            .is_some_and(|(_, token)| token.window.contains(now_ms))
    }

    /// Remembers the token in `cache` as [`authenticate`] does after a
    /// check in full (same digest, window, key epoch, time), for a request
    /// that is answered; the caller as [`authenticate_at_once`] reports it.
    pub fn remember(self, cache: &RefCell<TokenCache>, now_ms: u64) -> AtOnce {
        remember(cache, self.memo, now_ms);
        AtOnce {
            identity: Some(self.identity),
            token_cache: self.token_cache,
        }
    }
}

/// The claims of a token with a valid signature at `now_ms`, and what a
/// cache is to remember of it (with a digest, a key epoch and a window):
/// the one path from a valid signature to an identity, for [`authenticate`]
/// and [`PendingToken::finish`].
fn accept(
    verified: VerifiedSignature<'_>,
    issuer: &str,
    digest: Option<TokenDigest>,
    key_epoch: Option<u64>,
    now_ms: u64,
) -> Result<(Identity, Option<(TokenDigest, VerifiedToken)>), AuthRejection> {
    let window = verified.validity();
    let identity = verified.identity(now_ms)?;
    let memo = match (digest, key_epoch, window) {
        (Some(digest), Some(key_epoch), Some(window)) => Some((
            digest,
            VerifiedToken {
                issuer: issuer.to_owned(),
                identity: identity.clone(),
                window,
                key_epoch,
            },
        )),
        _ => None,
    };
    Ok((identity, memo))
}

/// Puts `memo` into `cache` (skipped if the cache is borrowed).
fn remember(cache: &RefCell<TokenCache>, memo: Option<(TokenDigest, VerifiedToken)>, now_ms: u64) {
    if let (Some((digest, token)), Ok(mut cache)) = (memo, cache.try_borrow_mut()) {
        cache.insert(digest, token, now_ms);
    }
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
    let (identity, memo) = accept(verified, &issuer.name, digest, key_epoch, now_ms)?;
    if let Some(cache) = provider.token_cache() {
        remember(cache, memo, now_ms);
    }
    Ok(identity)
}

#[cfg(all(test, feature = "native-verify"))]
mod tests;
