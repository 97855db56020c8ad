//! The fast path's signature step: a new bearer token whose every check but
//! the signature passed, verified by JS with WebCrypto and resumed by one
//! synchronous call; and the verification handed to the full path when the
//! fast path declines after it.

use std::cell::Cell;

use tidegate_policy::auth::{PendingToken, TokenDigest, VerifiedBearer, DEFAULT_MAX_TOKEN_BYTES};
use tidegate_policy::config::Route;
use wasm_bindgen::prelude::*;
use worker::js_sys::{Object, Uint8Array};

use super::{Caller, Planned};
use crate::config::Gateway;
use crate::flow::now_ms;

thread_local! {
    /// Bearer tokens this isolate verified on the fast path and answered,
    /// and those it verified but then left to the full path (a lease with
    /// no room), which verifies them again (`GET {admin}/stats/fast-path`,
    /// for tests and benchmarks).
    static VERIFIED: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    /// Verifications the full path took over from the fast path instead of
    /// verifying again.
    static TAKEN_OVER: Cell<u64> = const { Cell::new(0) };
}

/// Most verifications held for the full path at once: each is taken by its
/// request's full path moments later; past the bound (full paths that never
/// came) the map starts over, and a request whose entry went verifies again.
const MAX_HANDED_OVER: usize = 256;

/// How many verifications the full path took over from the fast path.
pub(super) fn taken_over_count() -> u64 {
    TAKEN_OVER.with(Cell::get)
}

/// The fast path's verification of this request's bearer token, handed
/// over when the fast path verified it and then declined (a lease with no
/// room): the full path's authentication takes it instead of verifying
/// again, if the token's times still pass. Its log line then says what the
/// full path's own check would (`auth_cache: "miss"` with a cache).
pub fn take_handed_over(
    gw: &Gateway,
    route: &Route,
    token: &str,
    now: u64,
) -> Option<VerifiedBearer> {
    let mut map = gw.handed_over.try_borrow_mut().ok()?;
    if map.is_empty() || token.len() > DEFAULT_MAX_TOKEN_BYTES {
        return None;
    }
    let verified = map.remove(&(TokenDigest::of(token), route.name.clone()))?;
    drop(map);
    verified.still_valid(now).then(|| {
        TAKEN_OVER.with(|n| n.set(n.get().saturating_add(1)));
        verified
    })
}

/// How many new bearer tokens this isolate verified on the fast path and
/// answered there, and how many it verified and then declined.
pub(super) fn verified_counts() -> (u64, u64) {
    VERIFIED.with(Cell::get)
}

/// Counts one verified token, answered or declined.
fn count_verified(answered: bool) {
    VERIFIED.with(|n| super::count_outcome(n, answered));
}

/// A planned request whose bearer token needs only its signature checked
/// (`tidegate_policy::auth::authenticate_or_pend`), with the `CryptoKey`
/// already imported in this isolate: JS awaits `crypto.subtle.verify` with
/// [`Self::algorithm`], [`Self::key`], [`Self::signature`] and
/// [`Self::data`], then hands the answer to [`Self::resume`].
#[wasm_bindgen]
pub struct FastVerify {
    /// The request as the plan read it.
    pub(super) planned: Planned,
    /// The token, every check but the signature passed.
    pub(super) pending: Box<PendingToken>,
    /// The imported `CryptoKey`.
    pub(super) key: JsValue,
    /// WebCrypto's `verify` parameters.
    pub(super) algorithm: Object,
    /// The decoded signature.
    pub(super) signature: Uint8Array,
    /// The signing input.
    pub(super) data: Uint8Array,
}

#[wasm_bindgen]
impl FastVerify {
    /// The imported `CryptoKey`.
    #[wasm_bindgen(getter)]
    pub fn key(&self) -> JsValue {
        self.key.clone()
    }

    /// WebCrypto's `verify` parameters for the token's algorithm.
    #[wasm_bindgen(getter)]
    pub fn algorithm(&self) -> Object {
        self.algorithm.clone()
    }

    /// The decoded signature.
    #[wasm_bindgen(getter)]
    pub fn signature(&self) -> Uint8Array {
        self.signature.clone()
    }

    /// The signed bytes (`base64url(header) "." base64url(claims)`).
    #[wasm_bindgen(getter)]
    pub fn data(&self) -> Uint8Array {
        self.data.clone()
    }

    /// The rest of the plan once WebCrypto answered `valid` (`false` also
    /// when it threw): the claims, the identity and the scopes as the full
    /// path checks them (`PendingToken::finish`), then the next step (a
    /// [`super::FastProxy`] or a [`super::FastLookup`]), the token
    /// remembered as the full path remembers it once its request is
    /// answered here. `undefined`: the full path (which checks the token
    /// again and renders any refusal; nothing was charged or remembered).
    pub fn resume(self, valid: bool) -> JsValue {
        let Self {
            planned, pending, ..
        } = self;
        let started = planned.started;
        // The full path checks the claims and remembers the token at the
        // time its authentication began.
        let Some(verified) = pending.finish(valid, started) else {
            return JsValue::UNDEFINED;
        };
        let auth_ms = now_ms().saturating_sub(started);
        planned
            .next(Caller::Verified(verified, auth_ms))
            .unwrap_or(JsValue::UNDEFINED)
    }
}

impl Caller {
    /// The request was answered on the fast path: a newly verified token is
    /// remembered, as the full path would remember it, and counted.
    pub(super) fn admitted(self, gw: &Gateway, started: u64) {
        if let Self::Verified(verified, _) = self {
            count_verified(true);
            verified.remember(&gw.tokens, started);
        }
    }

    /// The fast path declined after all (a lease with no room, no fresh
    /// cache entry): a newly verified token's verification is handed to
    /// the full path, which takes it instead of verifying again.
    pub(super) fn declined(self, gw: &Gateway, route: &Route) {
        let Self::Verified(verified, _) = self else {
            return;
        };
        count_verified(false);
        if let (Some(digest), Ok(mut map)) = (verified.digest(), gw.handed_over.try_borrow_mut()) {
            if map.len() >= MAX_HANDED_OVER {
                map.clear();
            }
            map.insert((digest, route.name.clone()), verified);
        }
    }
}
