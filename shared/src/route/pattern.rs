//! Route patterns: `/users/{id}`, `/files/*/meta`, `/static/*`.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest pattern accepted, in bytes. Far beyond any real route.
pub const MAX_PATTERN_LEN: usize = 1024;

/// Most segments a pattern may have.
pub const MAX_PATTERN_SEGMENTS: usize = 64;

/// Longest request path (query excluded) that is matched at all, in bytes;
/// longer paths are `NotFound` without being split.
pub const MAX_PATH_LEN: usize = 8192;

/// Most segments a request path may have to be matched at all. Larger than
/// [`MAX_PATTERN_SEGMENTS`], so every pattern can still match.
pub const MAX_PATH_SEGMENTS: usize = 256;

/// One segment of a [`RoutePattern`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Matches exactly this text.
    Literal(String),
    /// Matches one non-empty segment, captured under this name.
    Param(String),
    /// Matches one non-empty segment, not captured (`*` before the end).
    Any,
}

/// A parsed route pattern.
///
/// A pattern is an absolute path of `/`-separated segments:
///
/// - a literal segment matches exactly that text (case-sensitive, compared
///   with the raw, still percent-encoded request path);
/// - `{name}` matches exactly one non-empty segment and captures it as `name`;
/// - `*` in the middle matches exactly one non-empty segment without capturing;
/// - a trailing `*` matches the rest of the path, zero or more segments, so
///   `/static/*` matches `/static`, `/static/` and `/static/a/b.css`.
///
/// `/` alone matches only the root. Empty segments (`//`, a trailing `/`) are
/// rejected: patterns match paths exactly, so `/users` does not match
/// `/users/`; use `/users/*` to match everything below.
///
/// `Display` prints the pattern exactly as it was written, so config files
/// round-trip; serde uses the same string form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoutePattern {
    segments: Vec<Segment>,
    rest: bool,
}

/// Why a route pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The pattern is the empty string.
    #[error("route pattern is empty; expected an absolute path such as `/users/{{id}}`")]
    Empty,
    /// The pattern does not start with `/`.
    #[error("route pattern must start with `/` (an absolute path such as `/users/{{id}}`)")]
    NotAbsolute,
    /// The pattern is longer than [`MAX_PATTERN_LEN`].
    #[error("route pattern is {len} bytes long; expected at most {max}")]
    TooLong {
        /// Length of the pattern in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The pattern has more than [`MAX_PATTERN_SEGMENTS`] segments.
    #[error("route pattern has more than {max} segments")]
    TooManySegments {
        /// The limit.
        max: usize,
    },
    /// A segment is empty (`//`, or a trailing `/`).
    #[error(
        "route pattern has an empty segment at position {position} (`//` or a trailing `/`); \
         patterns match paths exactly, use a trailing `/*` to match everything below a path"
    )]
    EmptySegment {
        /// 1-based position of the empty segment.
        position: usize,
    },
    /// A `{}` parameter without a name.
    #[error("route parameter has no name; expected `{{name}}` with a name such as `id`")]
    EmptyParamName,
    /// A parameter name that is not `[A-Za-z_][A-Za-z0-9_]*`.
    #[error(
        "route parameter name `{name}` is invalid; expected a letter or `_` followed by \
         letters, digits or `_`"
    )]
    InvalidParamName {
        /// The offending name.
        name: String,
    },
    /// The same parameter name appears twice.
    #[error("route parameter `{name}` appears more than once; parameter names must be unique")]
    DuplicateParam {
        /// The repeated name.
        name: String,
    },
    /// `*`, `{` or `}` inside a literal segment, e.g. `/a*b` or `/x{y}`.
    #[error(
        "route segment `{segment}` mixes literal text with `*`, `{{` or `}}`; a wildcard must \
         be a whole segment `*` and a parameter a whole segment `{{name}}`"
    )]
    MixedSegment {
        /// The offending segment.
        segment: String,
    },
    /// A literal `.` or `..` segment, which URL parsing normalises away.
    #[error(
        "route segment `{segment}` is a dot segment, which never reaches the gateway; remove it"
    )]
    DotSegment {
        /// The offending segment.
        segment: String,
    },
    /// A literal segment holds a character that cannot appear raw in a URL path.
    #[error(
        "route segment `{segment}` contains {ch:?}, which cannot appear raw in a URL path; \
         write it percent-encoded as it appears on the wire (e.g. `%20` for a space)"
    )]
    InvalidLiteralChar {
        /// The offending segment.
        segment: String,
        /// The offending character.
        ch: char,
    },
}

impl RoutePattern {
    /// Parses a pattern; see [`RoutePattern`] for the syntax.
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        if pattern.is_empty() {
            return Err(PatternError::Empty);
        }
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(PatternError::TooLong {
                len: pattern.len(),
                max: MAX_PATTERN_LEN,
            });
        }
        let body = pattern.strip_prefix('/').ok_or(PatternError::NotAbsolute)?;
        if body.is_empty() {
            return Ok(Self {
                segments: Vec::new(),
                rest: false,
            });
        }
        let parts: Vec<&str> = body.split('/').collect();
        if parts.len() > MAX_PATTERN_SEGMENTS {
            return Err(PatternError::TooManySegments {
                max: MAX_PATTERN_SEGMENTS,
            });
        }
        let last = parts.len().saturating_sub(1);
        let mut segments = Vec::with_capacity(parts.len());
        let mut names = BTreeSet::new();
        let mut rest = false;
        for (i, part) in parts.into_iter().enumerate() {
            match parse_segment(part, i.saturating_add(1))? {
                Segment::Any if i == last => rest = true,
                Segment::Param(name) => {
                    if !names.insert(name.clone()) {
                        return Err(PatternError::DuplicateParam { name });
                    }
                    segments.push(Segment::Param(name));
                }
                seg => segments.push(seg),
            }
        }
        Ok(Self { segments, rest })
    }

    /// The segments before any trailing `*`.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether the pattern ends in `*` and so matches any rest of the path.
    pub fn has_rest(&self) -> bool {
        self.rest
    }

    /// The names of the captured parameters, in order.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// The leading literal segments as a path (`/api/v1` for
    /// `/api/v1/{id}/*`, empty for `/{id}`), e.g. to check that a route's
    /// `strip_prefix` is a prefix of every path it matches.
    pub fn literal_prefix(&self) -> String {
        let mut out = String::new();
        for seg in &self.segments {
            match seg {
                Segment::Literal(lit) => {
                    out.push('/');
                    out.push_str(lit);
                }
                _ => break,
            }
        }
        out
    }

    /// Matches a raw request path (anything from `?` on is ignored) and
    /// returns the captured parameters, still percent-encoded, in pattern
    /// order. `None` if the path does not match or is over the size limits.
    pub fn match_path(&self, path: &str) -> Option<Vec<(String, String)>> {
        self.match_segments(&split_path(path)?)
    }

    /// Matches an already split path (see [`split_path`]).
    pub(crate) fn match_segments(&self, segs: &[&str]) -> Option<Vec<(String, String)>> {
        let fits = if self.rest {
            segs.len() >= self.segments.len()
        } else {
            segs.len() == self.segments.len()
        };
        if !fits {
            return None;
        }
        let mut params = Vec::new();
        for (pat, seg) in self.segments.iter().zip(segs) {
            match pat {
                Segment::Literal(lit) if lit == seg => {}
                Segment::Param(name) if !seg.is_empty() => {
                    params.push((name.clone(), (*seg).to_owned()));
                }
                Segment::Any if !seg.is_empty() => {}
                _ => return None,
            }
        }
        Some(params)
    }
}

/// Parses one segment; `position` is 1-based, for error messages.
fn parse_segment(part: &str, position: usize) -> Result<Segment, PatternError> {
    if part.is_empty() {
        return Err(PatternError::EmptySegment { position });
    }
    if part == "*" {
        return Ok(Segment::Any);
    }
    if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
        if name.is_empty() {
            return Err(PatternError::EmptyParamName);
        }
        if !is_param_name(name) {
            return Err(PatternError::InvalidParamName {
                name: name.to_owned(),
            });
        }
        return Ok(Segment::Param(name.to_owned()));
    }
    if part.contains(['*', '{', '}']) {
        return Err(PatternError::MixedSegment {
            segment: part.to_owned(),
        });
    }
    if part == "." || part == ".." {
        return Err(PatternError::DotSegment {
            segment: part.to_owned(),
        });
    }
    if let Some(ch) = part.chars().find(|&c| !is_path_char(c)) {
        return Err(PatternError::InvalidLiteralChar {
            segment: part.to_owned(),
            ch,
        });
    }
    Ok(Segment::Literal(part.to_owned()))
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn is_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// RFC 3986 `pchar` (plus `%` of percent-encoding), minus `*` which is
/// reserved for wildcards. Anything else is percent-encoded by clients and
/// URL parsers, so a literal holding it could never match.
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.'
                | '_'
                | '~'
                | '%'
                | '!'
                | '$'
                | '&'
                | '\''
                | '('
                | ')'
                | '+'
                | ','
                | ';'
                | '='
                | ':'
                | '@'
        )
}

/// Splits a raw request path into segments for matching.
///
/// Anything from the first `?` or `#` on is dropped (callers should pass the
/// path only, but we stay robust). The path must start with `/`; `/` is zero
/// segments and `/a/` is `["a", ""]`. Paths over [`MAX_PATH_LEN`] bytes or
/// [`MAX_PATH_SEGMENTS`] segments give `None`, so a hostile client cannot
/// make us allocate in proportion to its input.
pub fn split_path(path: &str) -> Option<Vec<&str>> {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    let path = path.get(..end)?;
    if path.len() > MAX_PATH_LEN {
        return None;
    }
    let body = path.strip_prefix('/')?;
    let mut segs = Vec::new();
    if body.is_empty() {
        return Some(segs);
    }
    for seg in body.split('/') {
        if segs.len() >= MAX_PATH_SEGMENTS {
            return None;
        }
        segs.push(seg);
    }
    Some(segs)
}

impl FromStr for RoutePattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for RoutePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() && !self.rest {
            return f.write_str("/");
        }
        for seg in &self.segments {
            match seg {
                Segment::Literal(lit) => write!(f, "/{lit}")?,
                Segment::Param(name) => write!(f, "/{{{name}}}")?,
                Segment::Any => f.write_str("/*")?,
            }
        }
        if self.rest {
            f.write_str("/*")?;
        }
        Ok(())
    }
}

impl Serialize for RoutePattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RoutePattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for RoutePattern {
    fn schema_name() -> Cow<'static, str> {
        "RoutePattern".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "Absolute path pattern: literal segments, `{name}` (one segment, captured), \
                            `*` (one segment) and a trailing `*` (the rest of the path).",
            "pattern": "^/",
            "maxLength": MAX_PATTERN_LEN
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> RoutePattern {
        RoutePattern::parse(s).unwrap()
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_segment_kinds() {
        let pat = p("/users/{id}/*/files/*");
        assert_eq!(
            pat.segments(),
            &[
                Segment::Literal("users".into()),
                Segment::Param("id".into()),
                Segment::Any,
                Segment::Literal("files".into()),
            ]
        );
        assert!(pat.has_rest());
        assert_eq!(pat.param_names().collect::<Vec<_>>(), ["id"]);
        assert_eq!(pat.literal_prefix(), "/users");
        assert_eq!(p("/{a}").literal_prefix(), "");
        assert_eq!(p("/").literal_prefix(), "");
    }

    #[test]
    fn root_and_bare_rest() {
        assert!(p("/").segments().is_empty());
        assert!(!p("/").has_rest());
        assert!(p("/*").has_rest());
        assert_eq!(p("/").match_path("/"), Some(vec![]));
        assert_eq!(p("/").match_path("/a"), None);
        assert_eq!(p("/*").match_path("/"), Some(vec![]));
        assert_eq!(p("/*").match_path("/a/b/"), Some(vec![]));
    }

    #[test]
    fn literal_matching_is_exact_and_raw() {
        let pat = p("/a%2Fb/c");
        assert!(pat.match_path("/a%2Fb/c").is_some());
        assert!(pat.match_path("/a/b/c").is_none());
        assert!(p("/Users").match_path("/users").is_none());
        assert!(p("/users").match_path("/users/").is_none());
        assert!(p("/users").match_path("/users?x=1").is_some());
        assert!(p("/users").match_path("/users#frag").is_some());
    }

    #[test]
    fn params_capture_one_non_empty_segment() {
        let pat = p("/users/{id}/posts/{post_id}");
        assert_eq!(
            pat.match_path("/users/42/posts/a%20b"),
            Some(params(&[("id", "42"), ("post_id", "a%20b")]))
        );
        assert_eq!(pat.match_path("/users//posts/1"), None);
        assert_eq!(pat.match_path("/users/1/2/posts/1"), None);
        assert_eq!(p("/a/*/c").match_path("/a/b/c"), Some(vec![]));
        assert_eq!(p("/a/*/c").match_path("/a//c"), None);
    }

    #[test]
    fn trailing_rest_matches_zero_or_more() {
        let pat = p("/static/*");
        for ok in ["/static", "/static/", "/static/a/b.css", "/static//x"] {
            assert!(pat.match_path(ok).is_some(), "{ok}");
        }
        for bad in ["/", "/staticx", "/other/static"] {
            assert!(pat.match_path(bad).is_none(), "{bad}");
        }
        assert_eq!(
            p("/u/{id}/*").match_path("/u/7/x/y"),
            Some(params(&[("id", "7")]))
        );
    }

    #[test]
    fn rejects_bad_patterns_with_reasons() {
        use PatternError::*;
        let cases: Vec<(String, PatternError)> = vec![
            ("".into(), Empty),
            ("users".into(), NotAbsolute),
            ("*".into(), NotAbsolute),
            ("/a//b".into(), EmptySegment { position: 2 }),
            ("/a/".into(), EmptySegment { position: 2 }),
            ("//".into(), EmptySegment { position: 1 }),
            ("/{}".into(), EmptyParamName),
            ("/{1a}".into(), InvalidParamName { name: "1a".into() }),
            ("/{a-b}".into(), InvalidParamName { name: "a-b".into() }),
            ("/{a{b}".into(), InvalidParamName { name: "a{b".into() }),
            ("/{a}/{a}".into(), DuplicateParam { name: "a".into() }),
            (
                "/a*b".into(),
                MixedSegment {
                    segment: "a*b".into(),
                },
            ),
            (
                "/x{y}".into(),
                MixedSegment {
                    segment: "x{y}".into(),
                },
            ),
            (
                "/{y}x".into(),
                MixedSegment {
                    segment: "{y}x".into(),
                },
            ),
            (
                "/{y".into(),
                MixedSegment {
                    segment: "{y".into(),
                },
            ),
            (
                "/y}".into(),
                MixedSegment {
                    segment: "y}".into(),
                },
            ),
            (
                "/**".into(),
                MixedSegment {
                    segment: "**".into(),
                },
            ),
            (
                "/a/..".into(),
                DotSegment {
                    segment: "..".into(),
                },
            ),
            (
                "/./a".into(),
                DotSegment {
                    segment: ".".into(),
                },
            ),
            (
                "/a b".into(),
                InvalidLiteralChar {
                    segment: "a b".into(),
                    ch: ' ',
                },
            ),
            (
                "/caf\u{e9}".into(),
                InvalidLiteralChar {
                    segment: "caf\u{e9}".into(),
                    ch: '\u{e9}',
                },
            ),
            (
                "/a?b".into(),
                InvalidLiteralChar {
                    segment: "a?b".into(),
                    ch: '?',
                },
            ),
            (
                "/a\r\n".into(),
                InvalidLiteralChar {
                    segment: "a\r\n".into(),
                    ch: '\r',
                },
            ),
            (
                format!("/{}", "a".repeat(MAX_PATTERN_LEN)),
                TooLong {
                    len: MAX_PATTERN_LEN + 1,
                    max: MAX_PATTERN_LEN,
                },
            ),
            (
                "/a".repeat(MAX_PATTERN_SEGMENTS + 1),
                TooManySegments {
                    max: MAX_PATTERN_SEGMENTS,
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(RoutePattern::parse(&input), Err(want), "{input:?}");
        }
    }

    #[test]
    fn error_messages_say_what_is_expected() {
        let msg = RoutePattern::parse("/a*b").unwrap_err().to_string();
        assert!(msg.contains("whole segment `*`"), "{msg}");
        assert!(msg.contains("`{name}`"), "{msg}");
        let msg = RoutePattern::parse("x").unwrap_err().to_string();
        assert!(msg.contains("must start with `/`"), "{msg}");
    }

    #[test]
    fn limits_are_inclusive() {
        let long = format!("/{}", "a".repeat(MAX_PATTERN_LEN - 1));
        assert!(RoutePattern::parse(&long).is_ok());
        assert!(RoutePattern::parse(&"/a".repeat(MAX_PATTERN_SEGMENTS)).is_ok());
    }

    #[test]
    fn display_and_serde_round_trip() {
        for s in [
            "/",
            "/*",
            "/a",
            "/a/{b}/*/c/*",
            "/{x_1}/*",
            "/a%2F:@!$&'()+,;=~-._",
        ] {
            assert_eq!(p(s).to_string(), s);
            let json = serde_json::to_string(&p(s)).unwrap();
            assert_eq!(serde_json::from_str::<RoutePattern>(&json).unwrap(), p(s));
        }
        let err = serde_json::from_str::<RoutePattern>(r#""/a*b""#).unwrap_err();
        assert!(err.to_string().contains("mixes literal text"), "{err}");
    }

    #[test]
    fn split_path_bounds_and_shapes() {
        assert_eq!(split_path("/"), Some(vec![]));
        assert_eq!(split_path("/a/"), Some(vec!["a", ""]));
        assert_eq!(split_path("//a"), Some(vec!["", "a"]));
        assert_eq!(split_path("/a?b/c"), Some(vec!["a"]));
        assert_eq!(split_path(""), None);
        assert_eq!(split_path("a/b"), None);
        assert_eq!(split_path("*"), None);
        assert!(split_path(&"/a".repeat(MAX_PATH_SEGMENTS)).is_some());
        assert_eq!(split_path(&"/a".repeat(MAX_PATH_SEGMENTS + 1)), None);
        assert_eq!(split_path(&format!("/{}", "a".repeat(MAX_PATH_LEN))), None);
    }

    fn segment_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9%:@._~-]{1,6}".prop_filter("dot segment", |s| s != "." && s != ".."),
            "[A-Za-z_][A-Za-z0-9_]{0,5}".prop_map(|n| format!("{{{n}}}")),
            Just("*".to_owned()),
        ]
    }

    proptest! {
        #[test]
        fn valid_patterns_round_trip(segs in prop::collection::vec(segment_strategy(), 0..8)) {
            let text = format!("/{}", segs.join("/"));
            match RoutePattern::parse(&text) {
                Ok(pat) => {
                    prop_assert_eq!(pat.to_string(), text.clone());
                    prop_assert_eq!(RoutePattern::parse(&pat.to_string()), Ok(pat));
                }
                // Random names can repeat; nothing else may fail.
                Err(e) => prop_assert!(matches!(e, PatternError::DuplicateParam { .. }), "{text}: {e}"),
            }
        }

        #[test]
        fn arbitrary_text_never_panics_and_round_trips_if_accepted(s in "\\PC{0,40}|[/a{}*.%]{0,20}") {
            if let Ok(pat) = RoutePattern::parse(&s) {
                prop_assert_eq!(pat.to_string(), s);
            }
        }

        #[test]
        fn arbitrary_paths_never_panic(path in "\\PC{0,60}|[/a?#%]{0,30}") {
            let _ = p("/a/{b}/*").match_path(&path);
            let _ = p("/*").match_path(&path);
        }
    }
}
