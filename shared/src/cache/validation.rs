//! Validators: revalidating stored entries with the origin (RFC 9111 §4.3)
//! and answering clients' conditional requests from the cache (RFC 9110
//! §13).
//!
//! - [`revalidation_headers`]: the `If-None-Match` / `If-Modified-Since` to
//!   send for a stale or `no-cache` entry.
//! - [`not_modified_matches`]: whether the origin's 304 is about this entry
//!   (§4.3.4), and [`refresh_headers`] to update it (§3.2).
//! - [`client_condition`]: whether a client's `If-None-Match` (weak
//!   comparison) or `If-Modified-Since` is met by an entry, and
//!   [`not_modified_headers`] for the 304 the edge then sends.
//!
//! ```
//! use tidegate_policy::cache::{client_condition, ClientCondition};
//! use tidegate_policy::cache::ResponseHeaders;
//! let entry = vec![("etag".to_owned(), "\"v1\"".to_owned())];
//! let request = vec![("if-none-match".to_owned(), "W/\"v1\", \"v0\"".to_owned())];
//! assert_eq!(
//!     client_condition(&request, ResponseHeaders::origin(&entry)),
//!     ClientCondition::NotModified
//! );
//! ```

use super::freshness::{is_internal, Lifetimes, ResponseHeaders};
use super::http_date::parse_http_date;
use super::{header_values, Headers};

/// Most entity-tags read from one field: a longer list is garbage.
const MAX_TAGS: usize = 64;

/// An entity-tag (RFC 9110 §8.8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityTag<'a> {
    /// `W/` prefixed.
    pub weak: bool,
    /// The quoted part, quotes excluded.
    pub opaque: &'a str,
}

impl EntityTag<'_> {
    /// The weak comparison: opaque tags equal, weakness ignored.
    pub fn weak_eq(&self, other: &EntityTag<'_>) -> bool {
        self.opaque == other.opaque
    }

    /// The strong comparison: both strong and equal.
    pub fn strong_eq(&self, other: &EntityTag<'_>) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }
}

/// Parses one entity-tag; `None` for anything else.
pub fn parse_entity_tag(value: &str) -> Option<EntityTag<'_>> {
    let value = value.trim_matches([' ', '\t']);
    let (weak, rest) = match value.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let opaque = rest.strip_prefix('"')?.strip_suffix('"')?;
    let valid = opaque
        .bytes()
        .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80);
    valid.then_some(EntityTag { weak, opaque })
}

/// An `If-None-Match`-style list: `*`, or entity-tags.
enum TagList<'a> {
    Any,
    Tags(Vec<EntityTag<'a>>),
}

fn parse_tag_list<'a>(values: impl Iterator<Item = &'a str>) -> TagList<'a> {
    let mut tags = Vec::new();
    for value in values {
        if value.trim() == "*" {
            return TagList::Any;
        }
        let mut rest = value;
        while tags.len() < MAX_TAGS {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                break;
            }
            let start = usize::from(rest.starts_with("W/")).saturating_mul(2);
            let Some(after_quote) = rest.get(start.saturating_add(1)..) else {
                break;
            };
            let Some(close) = after_quote.find('"') else {
                break;
            };
            let end = start.saturating_add(close).saturating_add(2);
            let (tag, tail) = rest.split_at_checked(end).unwrap_or((rest, ""));
            match parse_entity_tag(tag) {
                Some(t) => tags.push(t),
                None => break,
            }
            rest = tail;
        }
    }
    TagList::Tags(tags)
}

/// The conditional headers that revalidate a stored entry: `If-None-Match`
/// with its `ETag`, `If-Modified-Since` with its `Last-Modified` (§4.3.1).
/// Empty when it has no validator.
pub fn revalidation_headers(entry: ResponseHeaders<'_>) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(2);
    if let Some(etag) = entry
        .first("etag")
        .filter(|e| parse_entity_tag(e).is_some())
    {
        out.push(("if-none-match".to_owned(), etag.trim().to_owned()));
    }
    if let Some(modified) = entry
        .first("last-modified")
        .filter(|m| parse_http_date(m).is_some())
    {
        out.push(("if-modified-since".to_owned(), modified.trim().to_owned()));
    }
    out
}

/// Request headers that make a request conditional; replaced by the
/// entry's own when the edge revalidates it.
pub const CONDITIONAL_REQUEST_HEADERS: [&str; 5] = [
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
];

/// Whether a 304 the origin sent to a revalidation is about the stored
/// entry (§4.3.4): its strong `ETag` equals the entry's, or failing one,
/// its `Last-Modified` does, or it carries no validator at all.
pub fn not_modified_matches(entry: ResponseHeaders<'_>, not_modified: &Headers) -> bool {
    let theirs = super::first_header(not_modified, "etag").and_then(parse_entity_tag);
    let ours = entry.first("etag").and_then(parse_entity_tag);
    if let Some(theirs) = theirs {
        return ours.is_some_and(|ours| ours.weak_eq(&theirs));
    }
    match super::first_header(not_modified, "last-modified") {
        Some(modified) => entry.first("last-modified") == Some(modified),
        None => true,
    }
}

/// Headers a 304 never updates in a stored entry (§3.2): the framing and
/// the per-hop ones. Its `Age` is kept: storing the refreshed entry counts
/// it into the new initial age, then drops it.
fn never_updated(name: &str) -> bool {
    name.eq_ignore_ascii_case("content-length")
        || name.eq_ignore_ascii_case("x-cache-status")
        || is_internal(name)
        || crate::route::is_hop_by_hop(name)
}

/// The origin headers of an entry after a 304 (§3.2): each field the 304
/// carries replaces the entry's field of that name, except framing and
/// hop-by-hop ones. `entry` is in origin form
/// ([`super::freshness::origin_headers`]).
pub fn refresh_headers(entry: &Headers, not_modified: &Headers) -> Vec<(String, String)> {
    let hop = crate::route::connection_tokens(not_modified);
    let updates: Vec<&(String, String)> = not_modified
        .iter()
        .filter(|(n, _)| !never_updated(n) && !hop.contains(&n.to_ascii_lowercase()))
        .collect();
    let replaced = |name: &str| updates.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut out: Vec<(String, String)> = entry
        .iter()
        .filter(|(n, _)| !replaced(n))
        .cloned()
        .collect();
    out.extend(updates.into_iter().cloned());
    out
}

/// Whether an entry refreshed by a 304 is worth writing back to the
/// cache. Not when it can never be used without revalidation (`no-cache`,
/// or a zero lifetime and no stale window: every use revalidates anyway)
/// and the 304 changed nothing but `Date` and `Age`: the next use would
/// revalidate the old copy just the same, so the write (a whole-body copy)
/// buys nothing. `before` and `after` are in origin form.
pub fn refresh_worth_storing(before: &Headers, after: &Headers, lifetimes: &Lifetimes) -> bool {
    // Stale windows count as use too: a refresh restarts them.
    let never_usable = lifetimes.always_revalidate
        || (lifetimes.fresh.is_zero()
            && lifetimes.stale_while_revalidate.is_zero()
            && lifetimes.stale_if_error.is_zero());
    if !never_usable {
        return true;
    }
    let significant = |h: &Headers| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = h
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("date") && !n.eq_ignore_ascii_case("age"))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        v.sort();
        v
    };
    significant(before) != significant(after)
}

/// What a client's conditional request gets from a stored entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCondition {
    /// No condition the cache evaluates: serve the entry.
    None,
    /// The condition holds (the client's copy is current): a 304.
    NotModified,
    /// The condition fails: serve the entry in full.
    Modified,
}

/// Evaluates a GET or HEAD request's `If-None-Match` (weak comparison,
/// RFC 9110 §13.1.2) or, without one, its `If-Modified-Since` (§13.1.3)
/// against an entry. The entry's last modification is its
/// `Last-Modified`, else its `Date` (RFC 9111 §4.3.2); an invalid date is
/// ignored.
pub fn client_condition(request: &Headers, entry: ResponseHeaders<'_>) -> ClientCondition {
    let mut inm = header_values(request, "if-none-match").peekable();
    if inm.peek().is_some() {
        let matched = match parse_tag_list(inm) {
            TagList::Any => true,
            TagList::Tags(tags) => entry
                .first("etag")
                .and_then(parse_entity_tag)
                .is_some_and(|ours| tags.iter().any(|t| t.weak_eq(&ours))),
        };
        return match matched {
            true => ClientCondition::NotModified,
            false => ClientCondition::Modified,
        };
    }
    let Some(since) = super::first_header(request, "if-modified-since").and_then(parse_http_date)
    else {
        return ClientCondition::None;
    };
    let modified = entry
        .first("last-modified")
        .or_else(|| entry.first("date"))
        .and_then(parse_http_date);
    match modified {
        Some(m) if m <= since => ClientCondition::NotModified,
        Some(_) => ClientCondition::Modified,
        None => ClientCondition::None,
    }
}

/// Fields a 304 carries (RFC 9110 §15.4.5), plus `Last-Modified` when
/// there is no `ETag` to guide caches.
const NOT_MODIFIED_FIELDS: [&str; 6] = [
    "cache-control",
    "content-location",
    "date",
    "etag",
    "expires",
    "vary",
];

/// The headers of a 304 answered from an entry, from its served headers
/// (origin form, with `Age` and `X-Cache-Status`).
pub fn not_modified_headers(served: &Headers) -> Vec<(String, String)> {
    let has_etag = super::has_header(served, "etag");
    served
        .iter()
        .filter(|(n, _)| {
            NOT_MODIFIED_FIELDS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(n))
                || n.eq_ignore_ascii_case("age")
                || n.eq_ignore_ascii_case(super::freshness::CACHE_STATUS_HEADER)
                || (!has_etag && n.eq_ignore_ascii_case("last-modified"))
                || n.eq_ignore_ascii_case("cdn-cache-control")
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests;
