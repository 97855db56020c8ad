//! Small readers shared by every section: durations, ranges, URLs, names.

use super::*;

/// An optional setting's outcome: absent is `Some(None)`, valid is
/// `Some(Some(v))`, present but invalid is `None`.
pub(super) fn optional<T>(value: Option<Option<T>>) -> Option<Option<T>> {
    match value {
        None => Some(None),
        Some(inner) => inner.map(Some),
    }
}

/// Collects `Some` values; `None` if any is `None`. Consumes the whole iterator
/// first so every item reports its own problems.
pub(super) fn collect<T>(items: impl Iterator<Item = Option<T>>) -> Option<Vec<T>> {
    let all: Vec<Option<T>> = items.collect();
    all.into_iter().collect()
}

pub(super) fn non_empty(c: &mut Collector, path: &str, text: &str) -> Option<String> {
    if text.trim().is_empty() {
        c.push(path, Kind::Missing("a non-empty value"));
        None
    } else {
        Some(text.to_owned())
    }
}

pub(super) fn in_range(
    c: &mut Collector,
    path: &str,
    value: u64,
    min: u64,
    max: u64,
    expected: &'static str,
) -> Option<u64> {
    if (min..=max).contains(&value) {
        Some(value)
    } else {
        c.push(
            path,
            Kind::OutOfRange {
                value: value.to_string(),
                expected,
            },
        );
        None
    }
}

pub(super) fn duration_in(
    c: &mut Collector,
    path: &str,
    text: &DurationText,
    (min, max, expected): (Duration, Duration, &'static str),
) -> Option<Duration> {
    match duration::parse_duration(&text.0) {
        Ok(d) if d >= min && d <= max => Some(d),
        Ok(_) => {
            c.push(
                path,
                Kind::OutOfRange {
                    value: text.0.clone(),
                    expected,
                },
            );
            None
        }
        Err(reason) => {
            c.push(
                path,
                Kind::Duration {
                    value: text.0.clone(),
                    reason,
                },
            );
            None
        }
    }
}

pub(super) fn opt_duration(
    c: &mut Collector,
    path: &str,
    text: Option<&DurationText>,
    default: Duration,
    range: (Duration, Duration, &'static str),
) -> Option<Duration> {
    match text {
        None => Some(default),
        Some(text) => duration_in(c, path, text, range),
    }
}

pub(super) fn url(c: &mut Collector, path: &str, text: &str) -> Option<Url> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
            Some(url)
        }
        Ok(_) => {
            c.push(
                path,
                Kind::Url {
                    value: text.to_owned(),
                    reason: "expected an http:// or https:// URL with a host".into(),
                },
            );
            None
        }
        Err(e) => {
            c.push(
                path,
                Kind::Url {
                    value: text.to_owned(),
                    reason: format!("{e}; expected e.g. \"https://origin.example.com\""),
                },
            );
            None
        }
    }
}

/// A URL a secret travels to (or with): https, or http only for localhost
/// (tests and the demo). `what` names the secret in the error.
pub(super) fn local_or_https(
    c: &mut Collector,
    path: &str,
    text: &UrlText,
    what: &str,
) -> Option<Url> {
    let url = url(c, path, &text.0)?;
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if url.scheme() == "https" || local {
        return Some(url);
    }
    c.push(
        path,
        Kind::Url {
            value: text.0.clone(),
            reason: format!(
                "{what} must not travel in clear text: https (http is allowed only for localhost)"
            ),
        },
    );
    None
}

/// A header name (RFC 9110 token), lowercased.
pub(super) fn header_name(c: &mut Collector, path: &str, name: &str) -> Option<String> {
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !name.is_empty() && name.len() <= 256 && name.bytes().all(is_tchar) {
        Some(name.to_ascii_lowercase())
    } else {
        c.push(
            path,
            Kind::NotOneOf {
                value: name.to_owned(),
                expected: "a header name (letters, digits and -)".into(),
            },
        );
        None
    }
}

pub(super) fn has_pattern_chars(text: &str) -> bool {
    text.contains(['*', '{', '}', '?', '#'])
}

/// Reports every name used more than once.
pub(super) fn unique<'a>(
    c: &mut Collector,
    what: &'static str,
    names: impl Iterator<Item = (String, &'a str)>,
) {
    let mut first: BTreeMap<&str, String> = BTreeMap::new();
    for (path, name) in names {
        match first.get(name) {
            Some(first_path) => c.push(
                path,
                Kind::Duplicate {
                    what,
                    name: name.to_owned(),
                    first: first_path.clone(),
                },
            ),
            None => {
                first.insert(name, path);
            }
        }
    }
}

pub(super) fn list_or_none(names: &[String]) -> String {
    let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}
