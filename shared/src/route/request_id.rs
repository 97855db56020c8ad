//! The request id.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The header carrying the request id, both from clients and to origins.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest incoming request id that is reused.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A validated request id: one opaque string per request, in every log
/// line, problem body and forwarded request, so a request can be traced end
/// to end.
///
/// body and forwarded request, so a request can be traced end to end.
///
/// A well-formed incoming `x-request-id` is reused (a client or an upstream
/// proxy may already have assigned one). Anything else is replaced by a fresh
/// UUID v4 built from random bytes the caller supplies (this crate has no
/// randomness of its own). "Well-formed" is deliberately narrow, 1 to 128
/// characters from `[A-Za-z0-9._:-]`, so an id can never inject a header,
/// forge a log line or smuggle markup.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

/// Why a string is not a valid request id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestIdError {
    /// The id is empty.
    #[error("request id is empty; expected 1 to 128 characters from [A-Za-z0-9._:-]")]
    Empty,
    /// The id is longer than [`MAX_REQUEST_ID_LEN`].
    #[error("request id is longer than 128 characters")]
    TooLong,
    /// The id has a character outside `[A-Za-z0-9._:-]`.
    #[error("request id may only contain characters from [A-Za-z0-9._:-]")]
    InvalidChar,
}

impl RequestId {
    /// Validates an incoming id.
    pub fn parse(s: &str) -> Result<Self, RequestIdError> {
        if s.is_empty() {
            return Err(RequestIdError::Empty);
        }
        if s.len() > MAX_REQUEST_ID_LEN {
            return Err(RequestIdError::TooLong);
        }
        if !s.bytes().all(is_id_byte) {
            return Err(RequestIdError::InvalidChar);
        }
        Ok(Self(s.to_owned()))
    }

    /// A fresh UUID v4 (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`, lower-case)
    /// from 16 random bytes; the version and variant bits are overwritten.
    pub fn from_random(mut bytes: [u8; 16]) -> Self {
        if let Some(b) = bytes.get_mut(6) {
            *b = (*b & 0x0f) | 0x40;
        }
        if let Some(b) = bytes.get_mut(8) {
            *b = (*b & 0x3f) | 0x80;
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(36);
        for (i, b) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out.push('-');
            }
            for nibble in [b >> 4, b & 0x0f] {
                if let Some(&c) = HEX.get(usize::from(nibble)) {
                    out.push(char::from(c));
                }
            }
        }
        Self(out)
    }

    /// The incoming id if it is valid, otherwise a fresh one from `random`.
    pub fn reuse_or_generate(incoming: Option<&str>, random: [u8; 16]) -> Self {
        incoming
            .and_then(|s| Self::parse(s).ok())
            .unwrap_or_else(|| Self::from_random(random))
    }

    /// Like [`reuse_or_generate`](Self::reuse_or_generate), taking the first
    /// `x-request-id` (name compared case-insensitively) from a header list.
    pub fn from_headers(headers: &[(String, String)], random: [u8; 16]) -> Self {
        let incoming = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(REQUEST_ID_HEADER))
            .map(|(_, value)| value.as_str());
        Self::reuse_or_generate(incoming, random)
    }

    /// The id as text; always a valid header value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `[A-Za-z0-9._:-]`.
fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for RequestId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reuses_valid_incoming_ids() {
        for ok in ["abc", "A-1_b.c:d", &"x".repeat(128)] {
            assert_eq!(RequestId::reuse_or_generate(Some(ok), [0; 16]).as_str(), ok);
        }
    }

    #[test]
    fn replaces_invalid_incoming_ids() {
        let fresh = RequestId::from_random([0xab; 16]);
        for bad in [
            "",
            "a b",
            "a\r\nx-evil: 1",
            "<script>",
            "caf\u{e9}",
            &"x".repeat(129),
        ] {
            assert_eq!(
                RequestId::reuse_or_generate(Some(bad), [0xab; 16]),
                fresh,
                "{bad:?}"
            );
        }
        assert_eq!(RequestId::reuse_or_generate(None, [0xab; 16]), fresh);
        assert_eq!(RequestId::parse(""), Err(RequestIdError::Empty));
        assert_eq!(
            RequestId::parse(&"x".repeat(129)),
            Err(RequestIdError::TooLong)
        );
        assert_eq!(RequestId::parse("a\n"), Err(RequestIdError::InvalidChar));
    }

    #[test]
    fn generates_uuid_v4() {
        assert_eq!(
            RequestId::from_random([0; 16]).as_str(),
            "00000000-0000-4000-8000-000000000000"
        );
        assert_eq!(
            RequestId::from_random([0xff; 16]).as_str(),
            "ffffffff-ffff-4fff-bfff-ffffffffffff"
        );
        let id = RequestId::from_random(
            *b"\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef",
        );
        assert_eq!(id.as_str(), "01234567-89ab-4def-8123-456789abcdef");
        // A generated id is itself a valid incoming id.
        assert_eq!(RequestId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn reads_header_case_insensitively() {
        let headers = vec![
            ("Accept".to_owned(), "*/*".to_owned()),
            ("X-Request-ID".to_owned(), "req-1".to_owned()),
            ("x-request-id".to_owned(), "req-2".to_owned()),
        ];
        assert_eq!(RequestId::from_headers(&headers, [0; 16]).as_str(), "req-1");
        assert_eq!(
            RequestId::from_headers(&[], [0; 16]).as_str(),
            "00000000-0000-4000-8000-000000000000"
        );
    }

    #[test]
    fn serde_validates() {
        let id = RequestId::parse("abc").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""abc""#);
        assert!(serde_json::from_str::<RequestId>(r#""a\r\nb""#).is_err());
    }

    proptest! {
        #[test]
        fn never_accepts_unsafe_characters(s in "\\PC{0,20}[\r\n\0 ,;\"<>]\\PC{0,20}") {
            prop_assert!(RequestId::parse(&s).is_err());
        }

        #[test]
        fn accepted_ids_are_exactly_the_safe_ones(s in "\\PC{0,140}|[A-Za-z0-9._:-]{0,140}") {
            let valid = !s.is_empty() && s.len() <= 128 && s.bytes().all(is_id_byte);
            prop_assert_eq!(RequestId::parse(&s).is_ok(), valid);
            let id = RequestId::reuse_or_generate(Some(&s), [7; 16]);
            prop_assert!(!id.as_str().contains(['\r', '\n']));
        }

        #[test]
        fn generated_ids_are_valid_uuid_v4(bytes in any::<[u8; 16]>()) {
            let id = RequestId::from_random(bytes);
            let s = id.as_str();
            prop_assert_eq!(s.len(), 36);
            prop_assert_eq!(&s[14..15], "4");
            prop_assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"));
            prop_assert!(RequestId::parse(s).is_ok());
        }
    }
}
