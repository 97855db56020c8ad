//! `traceparent` (W3C Trace Context §3.2).

use std::fmt::Write as _;

/// The header name.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Length of a version-00 `traceparent`: `vv-<32 hex>-<16 hex>-ff`.
const V00_LEN: usize = 55;

/// A parsed, valid `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace id; never all zero.
    pub trace_id: [u8; 16],
    /// The caller's span id; never all zero.
    pub parent_id: [u8; 8],
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
}

/// Why a `traceparent` is invalid (the edge then starts a new trace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TraceParentError {
    /// Version `ff`, which the spec forbids.
    #[error("version ff is invalid")]
    ForbiddenVersion,
    /// Wrong length for its version, or a field not where it must be.
    #[error("wrong length or layout")]
    Layout,
    /// A field is not lower-case hex.
    #[error("a field is not lower-case hex")]
    NotHex,
    /// The trace id is all zeroes.
    #[error("the trace id is all zeroes")]
    ZeroTraceId,
    /// The parent id is all zeroes.
    #[error("the parent id is all zeroes")]
    ZeroParentId,
}

impl TraceParent {
    /// Parses a `traceparent` strictly: version 00 must be exactly 55
    /// characters; a higher version is read by the forward-compatibility
    /// rule (its first 55 characters as version 00, then nothing or `-`
    /// and more).
    pub fn parse(s: &str) -> Result<Self, TraceParentError> {
        let b = s.as_bytes();
        let version = b.get(0..2).ok_or(TraceParentError::Layout)?;
        let version = hex_u8(version).ok_or(TraceParentError::NotHex)?;
        if version == 0xff {
            return Err(TraceParentError::ForbiddenVersion);
        }
        match (version, b.len()) {
            (0, V00_LEN) => {}
            (0, _) => return Err(TraceParentError::Layout),
            (_, n) if n == V00_LEN => {}
            (_, n) if n > V00_LEN && b.get(V00_LEN) == Some(&b'-') => {}
            _ => return Err(TraceParentError::Layout),
        }
        if b.get(2) != Some(&b'-') || b.get(35) != Some(&b'-') || b.get(52) != Some(&b'-') {
            return Err(TraceParentError::Layout);
        }
        let mut trace_id = [0u8; 16];
        hex_into(b.get(3..35), &mut trace_id)?;
        let mut parent_id = [0u8; 8];
        hex_into(b.get(36..52), &mut parent_id)?;
        let flags = b
            .get(53..55)
            .and_then(hex_u8)
            .ok_or(TraceParentError::NotHex)?;
        if trace_id == [0; 16] {
            return Err(TraceParentError::ZeroTraceId);
        }
        if parent_id == [0; 8] {
            return Err(TraceParentError::ZeroParentId);
        }
        Ok(Self {
            trace_id,
            parent_id,
            flags,
        })
    }
}

/// Two lower-case hex digits.
fn hex_u8(pair: &[u8]) -> Option<u8> {
    match pair {
        [hi, lo] => Some((nibble(*hi)? << 4) | nibble(*lo)?),
        _ => None,
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn hex_into(src: Option<&[u8]>, out: &mut [u8]) -> Result<(), TraceParentError> {
    let src = src.ok_or(TraceParentError::Layout)?;
    if src.len() != out.len() * 2 {
        return Err(TraceParentError::Layout);
    }
    for (byte, pair) in out.iter_mut().zip(src.chunks(2)) {
        *byte = hex_u8(pair).ok_or(TraceParentError::NotHex)?;
    }
    Ok(())
}

/// Lower-case hex of `bytes`.
pub(super) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}
