//! The edge's breach event and its signature: an HMAC-SHA256 over the
//! timestamp and the exact body (`t=<ms>,v1=<hex>`, the scheme of Stripe's
//! and GitHub's webhooks), so the Lambda checks authenticity and age before
//! it parses anything. Replays inside the tolerance carry the same `id`: the
//! receiver remembers ids for [`SIGNAL_TOLERANCE_MS`] and acts once.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The request header that carries the signature.
pub const SIGNATURE_HEADER: &str = "tidegate-signature";
/// How far the signature's time may be from the receiver's clock, either
/// way (5 minutes, as Stripe's default).
pub const SIGNAL_TOLERANCE_MS: u64 = 300_000;
/// Largest body accepted, in bytes.
pub const MAX_SIGNAL_BYTES: usize = 16_384;
/// Shortest secret accepted, in bytes.
const MIN_SECRET_BYTES: usize = 32;
/// Longest field accepted in an event (ids, names, labels, detail).
const MAX_FIELD_CHARS: usize = 1_024;

/// The HMAC key shared by the edge and the Lambda.
#[derive(Clone)]
pub struct SignalKey(Vec<u8>);

impl std::fmt::Debug for SignalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.write_str("SignalKey(..)")
    }
}

/// Why a secret cannot be a [`SignalKey`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalKeyError {
    /// Shorter than 32 bytes.
    #[error("the health signal secret has {0} bytes; it needs at least 32 (e.g. `openssl rand -base64 48`)")]
    TooShort(usize),
}

impl SignalKey {
    /// A key from `secret` (at least 32 bytes).
    pub fn new(secret: &[u8]) -> Result<Self, SignalKeyError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SignalKeyError::TooShort(secret.len()));
        }
        Ok(Self(secret.to_vec()))
    }

    fn mac(&self, timestamp_ms: u64, body: &[u8]) -> Hmac<Sha256> {
        let mut m = crate::mac::hmac_sha256(&self.0);
        m.update(timestamp_ms.to_string().as_bytes());
        m.update(b".");
        m.update(body);
        m
    }
}

/// Which test a release failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreachKind {
    /// The canary's 5xx rate is worse than the base's by more than the
    /// configured margin, and significantly so.
    ErrorRate,
    /// The canary's p99 latency is worse than the base's by more than the
    /// configured factor, with enough samples.
    Latency,
    /// No attribution: the stage as a whole is over its fixed 5xx threshold.
    StageErrorRate,
}

impl BreachKind {
    /// The name used in JSON, logs and the audit record.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ErrorRate => "error_rate",
            Self::Latency => "latency",
            Self::StageErrorRate => "stage_error_rate",
        }
    }
}

/// What the edge saw of one release over the judged window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReleaseFigures {
    /// Responses counted.
    pub requests: u64,
    /// Of which 5xx (the origin's, or the edge's own 502/504 for it).
    pub errors: u64,
    /// Median latency, ms (the histogram bucket's upper bound).
    pub p50_ms: u32,
    /// 99th percentile latency, ms (the histogram bucket's upper bound).
    pub p99_ms: u32,
}

impl ReleaseFigures {
    /// 5xx per response, 0 when there were none.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

/// One breach, as the edge reports it to the rollback Lambda.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeHealthEvent {
    /// Unique per event; a replay carries the same one.
    pub id: String,
    /// The REST API, as the Lambda's `[[rollback.stages]]` names it.
    pub api: String,
    /// The stage.
    pub stage: String,
    /// The release judged bad: the attribution header's canary value, or
    /// `stage` when there is no attribution.
    pub release: String,
    /// The test it failed.
    pub breach: BreachKind,
    /// When the edge judged, ms since the epoch (also in the signature).
    pub issued_ms: u64,
    /// Start of the judged window, ms since the epoch.
    pub window_from_ms: u64,
    /// The first 5xx (or over-latency response) of the release in the
    /// window, for the time from the first failure to the removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure_ms: Option<u64>,
    /// The release's figures over the window.
    pub canary: ReleaseFigures,
    /// The base's figures over the same window (none without attribution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<ReleaseFigures>,
    /// The judgement in words, for the audit record and the history.
    pub detail: String,
}

/// A signed event: send `body` with `header` as [`SIGNATURE_HEADER`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEvent {
    /// The JSON body.
    pub body: String,
    /// The signature header's value, `t=<ms>,v1=<hex>`.
    pub header: String,
}

/// Why an event is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// No signature header.
    #[error("no `{SIGNATURE_HEADER}` header: edge health events must be signed")]
    MissingSignature,
    /// The header is not `t=<ms>,v1=<hex>`.
    #[error("the `{SIGNATURE_HEADER}` header is not `t=<ms>,v1=<hex>`")]
    MalformedSignature,
    /// The body is over [`MAX_SIGNAL_BYTES`].
    #[error("the event has {0} bytes; at most {MAX_SIGNAL_BYTES} are accepted")]
    TooLarge(usize),
    /// Signed too long ago, or too far ahead (clock skew over the tolerance).
    #[error("the event was signed {skew_ms} ms away from this clock; at most {SIGNAL_TOLERANCE_MS} ms are accepted (a replay, or clocks out of sync)")]
    OutsideTolerance {
        /// The distance between the signature's time and now.
        skew_ms: u64,
    },
    /// The MAC does not match: altered, or another secret.
    #[error("the event's signature does not match (altered, or the edge and the Lambda have different secrets)")]
    BadSignature,
    /// Signed correctly, but not an event of this version.
    #[error("the signed body is not an edge health event: {0}")]
    BadBody(String),
    /// The body's `issued_ms` is not the signature's time.
    #[error("the event's issued_ms is not its signature's time")]
    TimestampMismatch,
}

/// Signs `event`.
pub fn sign(key: &SignalKey, event: &EdgeHealthEvent) -> SignedEvent {
    // Serialising a struct of strings and numbers cannot fail.
    let body = serde_json::to_string(event).unwrap_or_default();
    let mac = key
        .mac(event.issued_ms, body.as_bytes())
        .finalize()
        .into_bytes();
    SignedEvent {
        header: format!("t={},v1={}", event.issued_ms, hex(&mac)),
        body,
    }
}

/// The event in `body` if `header` signs it with `key` and its time is
/// within [`SIGNAL_TOLERANCE_MS`] of `now_ms`. Size, age and signature are
/// checked (the MAC in constant time) before the body is parsed.
pub fn verify(
    key: &SignalKey,
    header: Option<&str>,
    body: &[u8],
    now_ms: u64,
) -> Result<EdgeHealthEvent, SignalError> {
    let header = header.ok_or(SignalError::MissingSignature)?;
    if body.len() > MAX_SIGNAL_BYTES {
        return Err(SignalError::TooLarge(body.len()));
    }
    let (t, mac) = parse_header(header)?;
    let skew_ms = now_ms.abs_diff(t);
    if skew_ms > SIGNAL_TOLERANCE_MS {
        return Err(SignalError::OutsideTolerance { skew_ms });
    }
    key.mac(t, body)
        .verify_slice(&mac)
        .map_err(|_| SignalError::BadSignature)?;
    let event: EdgeHealthEvent =
        serde_json::from_slice(body).map_err(|e| SignalError::BadBody(e.to_string()))?;
    if event.issued_ms != t {
        return Err(SignalError::TimestampMismatch);
    }
    let fields = [
        &event.id,
        &event.api,
        &event.stage,
        &event.release,
        &event.detail,
    ];
    if event.id.is_empty() || fields.iter().any(|f| f.chars().count() > MAX_FIELD_CHARS) {
        return Err(SignalError::BadBody(format!(
            "id must be non-empty and every text field at most {MAX_FIELD_CHARS} characters"
        )));
    }
    Ok(event)
}

fn parse_header(header: &str) -> Result<(u64, Vec<u8>), SignalError> {
    let mut t = None;
    let mut mac = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) if t.is_none() => t = v.parse::<u64>().ok(),
            Some(("v1", v)) if mac.is_none() => mac = unhex(v),
            // Later versions may add schemes; unknown ones are skipped.
            Some(_) => {}
            None => return Err(SignalError::MalformedSignature),
        }
    }
    match (t, mac) {
        (Some(t), Some(mac)) => Ok((t, mac)),
        _ => Err(SignalError::MalformedSignature),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || text.len() > 128 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some((digit(*hi)? * 16 + digit(*lo)?) as u8),
            _ => None,
        })
        .collect()
}
