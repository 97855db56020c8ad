//! `tracestate` (W3C Trace Context §3.3), cleaned and bounded.

/// The header name.
pub const TRACESTATE_HEADER: &str = "tracestate";
/// Most list members passed on (the spec's maximum).
pub const MAX_TRACESTATE_MEMBERS: usize = 32;
/// Longest `tracestate` passed on: the spec's suggested minimum to propagate.
pub const MAX_TRACESTATE_LEN: usize = 512;
/// Members longer than this go first when the list must be truncated.
const LONG_MEMBER: usize = 128;

/// A valid `tracestate` list, ready to pass on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceState(String);

impl TraceState {
    /// The list in `value` (all `tracestate` headers joined by `,`), or
    /// `None` when it holds an invalid member or a key twice (the spec lets
    /// a vendor drop such a list whole), or no member at all. Empty members
    /// are dropped. Over 32 members or 512 characters, it is truncated as
    /// the spec says: members over 128 characters go first, then members
    /// from the end.
    pub fn parse(value: &str) -> Option<Self> {
        let mut members: Vec<&str> = Vec::new();
        let mut keys: Vec<&str> = Vec::new();
        for member in value.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            let (key, val) = member.split_once('=')?;
            if !is_key(key) || !is_value(val) || keys.contains(&key) {
                return None;
            }
            // Far more than the spec allows: not worth reading on.
            if members.len() >= 4 * MAX_TRACESTATE_MEMBERS {
                return None;
            }
            keys.push(key);
            members.push(member);
        }
        members.truncate(MAX_TRACESTATE_MEMBERS);
        let len = |m: &[&str]| m.iter().map(|s| s.len()).sum::<usize>() + m.len().saturating_sub(1);
        while len(&members) > MAX_TRACESTATE_LEN {
            match members.iter().rposition(|m| m.len() > LONG_MEMBER) {
                Some(i) => {
                    members.remove(i);
                }
                None => {
                    members.pop();
                }
            }
        }
        (!members.is_empty()).then(|| Self(members.join(",")))
    }

    /// The value to send.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `simple-key` or `tenant-id@system-id`.
fn is_key(key: &str) -> bool {
    let rest = |s: &str| {
        s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
        })
    };
    match key.split_once('@') {
        None => {
            key.len() <= 256
                && key.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
                && rest(key)
        }
        Some((tenant, system)) => {
            (1..=241).contains(&tenant.len())
                && tenant
                    .as_bytes()
                    .first()
                    .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && rest(tenant)
                && (1..=14).contains(&system.len())
                && system
                    .as_bytes()
                    .first()
                    .is_some_and(u8::is_ascii_lowercase)
                && rest(system)
        }
    }
}

/// 0 to 256 printable ASCII characters but `,` and `=`, not ending in a space.
fn is_value(value: &str) -> bool {
    value.len() <= 256
        && value
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
        && !value.ends_with(' ')
}
