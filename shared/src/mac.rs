//! The one HMAC-SHA256 constructor of the crate's signed tokens (browser
//! sessions, the edge's health events).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// An HMAC-SHA256 keyed with `secret`. HMAC takes keys of any length, so
/// `new_from_slice` cannot fail; the fallback only keeps this panic-free.
pub(crate) fn hmac_sha256(secret: &[u8]) -> Hmac<Sha256> {
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => Hmac::<Sha256>::new(&Default::default()),
    }
}
