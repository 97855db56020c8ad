//! Migration from the `tidegate_*` stage variables earlier versions kept
//! their bookkeeping in. Read-only: Tidegate writes no stage variable any
//! more (AWS caps each value at 512 characters, and the user's
//! infrastructure-as-code owns the variables). The adapter reads an old
//! stage's variables once ([`LegacyBookkeeping::decode_or_pause`]), stores
//! [`LegacyBookkeeping::into_record`], and removes exactly the
//! [`VARIABLES`] this module names ([`cleanup_ops`]); the user's own
//! variables are never touched.
//!
//! # The old encoding
//! Every field is ASCII: numbers in decimal, free text (deployment ids, the
//! pause reason) escaped with `~XX` per UTF-8 byte outside
//! `[A-Za-z0-9-._/?#&=]`, fields separated by `,` and `:`. Parsing is
//! strict: a malformed value is a [`BookkeepingError`], never a panic.
//!
//! | variable | value | meaning |
//! |---|---|---|
//! | `tidegate_known_good` | `dep,ms` | last-known-good deployment, recorded at |
//! | `tidegate_live` | `dep,ms` | the stage's deployment, healthy since |
//! | `tidegate_step` | `dep,percent,ms` | the canary's current step, healthy since |
//! | `tidegate_last_action` | `ms` | last change Tidegate made to the stage |
//! | `tidegate_last_rollback` | `ms` | last canary removal or stage rollback |
//! | `tidegate_paused` | `ms,reason` | paused since, why |
//! | `tidegate_handled` | `key:ms,…` | per alarm (key: 16 hex of SHA-256 of the name), newest handled transition |
//! | `tidegate_history` | `ms:kind:dep,…` | recent actions, newest first |

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::action::ActionKind;
use super::patch::PatchOp;
use super::record::{self, Mark, StageRecord};

/// Most alarms whose last handled transition was remembered.
pub const HANDLED_MAX: usize = 32;
/// Most history entries kept.
pub const HISTORY_MAX: usize = 5;
/// Longest pause reason the old encoding kept, in characters.
pub const REASON_MAX_CHARS: usize = 120;

const KNOWN_GOOD: &str = "tidegate_known_good";
const LIVE: &str = "tidegate_live";
const STEP: &str = "tidegate_step";
const LAST_ACTION: &str = "tidegate_last_action";
const LAST_ROLLBACK: &str = "tidegate_last_rollback";
const PAUSED: &str = "tidegate_paused";
const HANDLED: &str = "tidegate_handled";
const HISTORY: &str = "tidegate_history";

/// Every variable name the old versions wrote (and the migration removes).
const VARIABLES: [&str; 8] = [
    KNOWN_GOOD,
    LIVE,
    STEP,
    LAST_ACTION,
    LAST_ROLLBACK,
    PAUSED,
    HANDLED,
    HISTORY,
];

/// The canary step being baked, as the old encoding kept it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegacyStepMark {
    /// The canary's deployment.
    pub deployment_id: String,
    /// Its traffic share.
    pub percent: f64,
    /// Healthy since (step start, or the last moment its health was in doubt).
    pub since_ms: u64,
}

/// Why and since when a stage is paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyPause {
    /// Paused at.
    pub since_ms: u64,
    /// Operator's reason (at most `REASON_MAX_CHARS`).
    pub reason: String,
}

/// One past action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyHistoryEntry {
    /// When.
    pub at_ms: u64,
    /// What.
    pub kind: ActionKind,
    /// The deployment it concerned (target of a rollback or promotion, the
    /// canary for a step or removal, the recorded one for known-good).
    pub deployment_id: String,
}

/// What an old version remembered about one managed stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LegacyBookkeeping {
    /// Last-known-good deployment and when it was recorded.
    pub known_good: Option<Mark>,
    /// The stage's deployment as last observed, and since when it has been
    /// continuously healthy.
    pub live: Option<Mark>,
    /// The canary step being baked.
    pub step: Option<LegacyStepMark>,
    /// Last change made to the stage (any action but recording known-good).
    pub last_action_ms: Option<u64>,
    /// Last canary removal or stage rollback.
    pub last_rollback_ms: Option<u64>,
    /// Set while automatic progression is paused.
    pub paused: Option<LegacyPause>,
    /// Alarm key (`alarm_key`) → timestamp of the newest handled transition.
    pub handled: BTreeMap<String, u64>,
    /// Recent actions, newest first, at most `HISTORY_MAX`.
    pub history: Vec<LegacyHistoryEntry>,
}

/// A `tidegate_*` variable that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookkeepingError {
    /// The value does not have the expected form.
    #[error("stage variable `{name}` = {value:?} is malformed: expected {expected}")]
    Malformed {
        /// Variable name.
        name: &'static str,
        /// The value (cut to 64 characters).
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// The value holds more entries than this version keeps.
    #[error("stage variable `{name}` has {found} entries; expected at most {max}")]
    TooMany {
        /// Variable name.
        name: &'static str,
        /// Entries found.
        found: usize,
        /// Most allowed.
        max: usize,
    },
}

/// The key an alarm's handled transitions are remembered under: 16 hex
/// digits of SHA-256 of its name (names are up to 255 characters; variable
/// values are short).
pub fn alarm_key(alarm: &str) -> String {
    let digest = Sha256::digest(alarm.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl LegacyBookkeeping {
    /// Timestamp of the newest handled transition of `alarm`.
    pub fn handled_through(&self, alarm: &str) -> Option<u64> {
        self.handled.get(&alarm_key(alarm)).copied()
    }

    /// Whether the transition of `alarm` at `at_ms` (or an older one) was
    /// already handled: alarm transitions are ordered in time, so anything not
    /// newer than the last handled one is a duplicate or stale.
    pub fn is_handled(&self, alarm: &str, at_ms: u64) -> bool {
        self.handled_through(alarm).is_some_and(|t| at_ms <= t)
    }

    /// Records the transition of `alarm` at `at_ms` as handled. Keeps the
    /// newest `HANDLED_MAX` alarms.
    pub fn mark_handled(&mut self, alarm: &str, at_ms: u64) {
        let entry = self.handled.entry(alarm_key(alarm)).or_insert(at_ms);
        *entry = (*entry).max(at_ms);
        while self.handled.len() > HANDLED_MAX {
            let oldest = self
                .handled
                .iter()
                .min_by_key(|(k, t)| (**t, (*k).clone()))
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.handled.remove(&k),
                None => break,
            };
        }
    }

    /// Adds an action to the front of the history, keeping `HISTORY_MAX`.
    pub fn push_history(&mut self, at_ms: u64, kind: ActionKind, deployment_id: &str) {
        self.history.insert(
            0,
            LegacyHistoryEntry {
                at_ms,
                kind,
                deployment_id: deployment_id.to_owned(),
            },
        );
        self.history.truncate(HISTORY_MAX);
    }

    /// A pause with `reason` cut to `REASON_MAX_CHARS`.
    pub fn pause(since_ms: u64, reason: &str) -> LegacyPause {
        LegacyPause {
            since_ms,
            reason: reason.chars().take(REASON_MAX_CHARS).collect(),
        }
    }

    /// The `tidegate_*` variables that represent this bookkeeping, as the old
    /// versions wrote them (for tests of the migration).
    #[cfg(test)]
    pub(crate) fn encode(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut put = |name: &str, value: String| {
            out.insert(name.to_owned(), value);
        };
        if let Some(m) = &self.known_good {
            put(
                KNOWN_GOOD,
                format!("{},{}", escape(&m.deployment_id), m.at_ms),
            );
        }
        if let Some(m) = &self.live {
            put(LIVE, format!("{},{}", escape(&m.deployment_id), m.at_ms));
        }
        if let Some(s) = &self.step {
            put(
                STEP,
                format!("{},{},{}", escape(&s.deployment_id), s.percent, s.since_ms),
            );
        }
        if let Some(t) = self.last_action_ms {
            put(LAST_ACTION, t.to_string());
        }
        if let Some(t) = self.last_rollback_ms {
            put(LAST_ROLLBACK, t.to_string());
        }
        if let Some(p) = &self.paused {
            put(PAUSED, format!("{},{}", p.since_ms, escape(&p.reason)));
        }
        if !self.handled.is_empty() {
            let v: Vec<String> = self
                .handled
                .iter()
                .map(|(k, t)| format!("{k}:{t}"))
                .collect();
            put(HANDLED, v.join(","));
        }
        if !self.history.is_empty() {
            let v: Vec<String> = self
                .history
                .iter()
                .map(|h| {
                    format!(
                        "{}:{}:{}",
                        h.at_ms,
                        h.kind.as_str(),
                        escape(&h.deployment_id)
                    )
                })
                .collect();
            put(HISTORY, v.join(","));
        }
        out
    }

    /// Reads the bookkeeping from a stage's variables (other variables are
    /// ignored). Strict: the first malformed value is an error.
    pub fn decode(variables: &BTreeMap<String, String>) -> Result<Self, BookkeepingError> {
        let (book, errors) = Self::decode_fields(variables);
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(book),
        }
    }

    /// Reads what can be read, for a stage whose bookkeeping is partly
    /// malformed (hand-edited, or written by an incompatible version). Fields
    /// that fail are left empty and, if any failed, the stage is paused (an
    /// operator must look before progression resumes; rollbacks still
    /// happen). The errors are returned for logging; the next bookkeeping
    /// write replaces the bad values.
    pub fn decode_or_pause(
        variables: &BTreeMap<String, String>,
        now_ms: u64,
    ) -> (Self, Vec<BookkeepingError>) {
        let (mut book, errors) = Self::decode_fields(variables);
        if let Some(first) = errors.first() {
            if book.paused.is_none() {
                book.paused = Some(Self::pause(
                    now_ms,
                    &format!("bookkeeping unreadable: {first}"),
                ));
            }
        }
        (book, errors)
    }

    /// The record this bookkeeping becomes. Handled transitions were keyed
    /// by a hash of the alarm name; they are matched back to the `watched`
    /// alarms (others are dropped). History entries are returned separately
    /// for the adapter's history store.
    pub fn into_record<'a>(
        self,
        watched: impl IntoIterator<Item = &'a String>,
    ) -> (StageRecord, Vec<LegacyHistoryEntry>) {
        let mut handled = BTreeMap::new();
        for alarm in watched {
            if let Some(t) = self.handled.get(&alarm_key(alarm)) {
                handled.insert(alarm.clone(), *t);
            }
        }
        let paused = self
            .paused
            .map(|p| record::Pause::new(p.since_ms, "", &p.reason, None));
        let step = self.step.map(|s| record::StepMark {
            deployment_id: s.deployment_id,
            percent: s.percent,
            since_ms: s.since_ms,
            canary_since_ms: s.since_ms,
        });
        let record = StageRecord {
            known_good: self
                .known_good
                .map(|m| record::Mark::new(m.deployment_id, m.at_ms)),
            previous_known_good: None,
            live: self
                .live
                .map(|m| record::Mark::new(m.deployment_id, m.at_ms)),
            step,
            last_action_ms: self.last_action_ms,
            last_rollback_ms: self.last_rollback_ms,
            paused,
            handled,
            zeroed_canary: None,
            approval: None,
            canary_plan: None,
        };
        (record, self.history)
    }
}

impl LegacyBookkeeping {
    /// Whether a stage's variables hold any old bookkeeping.
    pub fn present(variables: &BTreeMap<String, String>) -> bool {
        VARIABLES.iter().any(|v| variables.contains_key(*v))
    }

    /// The `UpdateStage` operations that remove the old bookkeeping
    /// variables present in `variables` (and nothing else).
    pub fn cleanup_ops(variables: &BTreeMap<String, String>) -> Vec<PatchOp> {
        VARIABLES
            .iter()
            .filter(|v| variables.contains_key(**v))
            .map(|v| PatchOp::remove(format!("/variables/{v}")))
            .collect()
    }

    fn decode_fields(variables: &BTreeMap<String, String>) -> (Self, Vec<BookkeepingError>) {
        let mut errors = Vec::new();
        let get = |name: &str| variables.get(name).map(String::as_str);
        let known_good = field(&mut errors, get(KNOWN_GOOD), |v| parse_mark(KNOWN_GOOD, v));
        let live = field(&mut errors, get(LIVE), |v| parse_mark(LIVE, v));
        let step = field(&mut errors, get(STEP), parse_step);
        let last_action_ms = field(&mut errors, get(LAST_ACTION), |v| parse_ms(LAST_ACTION, v));
        let last_rollback_ms = field(&mut errors, get(LAST_ROLLBACK), |v| {
            parse_ms(LAST_ROLLBACK, v)
        });
        let paused = field(&mut errors, get(PAUSED), parse_pause);
        let handled = field(&mut errors, get(HANDLED), parse_handled).unwrap_or_default();
        let history = field(&mut errors, get(HISTORY), parse_history).unwrap_or_default();
        let book = Self {
            known_good,
            live,
            step,
            last_action_ms,
            last_rollback_ms,
            paused,
            handled,
            history,
        };
        (book, errors)
    }
}

/// Parses an optional variable, collecting its error.
fn field<T>(
    errors: &mut Vec<BookkeepingError>,
    value: Option<&str>,
    parse: impl Fn(&str) -> Result<T, BookkeepingError>,
) -> Option<T> {
    match value.map(parse) {
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            errors.push(e);
            None
        }
        None => None,
    }
}

fn malformed(name: &'static str, value: &str, expected: &'static str) -> BookkeepingError {
    BookkeepingError::Malformed {
        name,
        value: value.chars().take(64).collect(),
        expected,
    }
}

/// Canonical decimal: digits only, no sign, no leading zero (except "0").
fn parse_u64(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical {
        s.parse().ok()
    } else {
        None
    }
}

fn parse_ms(name: &'static str, v: &str) -> Result<u64, BookkeepingError> {
    parse_u64(v)
        .ok_or_else(|| malformed(name, v, "milliseconds since the epoch, e.g. 1700000000000"))
}

fn parse_mark(name: &'static str, v: &str) -> Result<Mark, BookkeepingError> {
    const EXPECTED: &str = "`deployment,ms`, e.g. `a1b2c3,1700000000000`";
    let (dep, at) = v
        .split_once(',')
        .ok_or_else(|| malformed(name, v, EXPECTED))?;
    let deployment_id = unescape(dep).filter(|d| !d.is_empty());
    match (deployment_id, parse_u64(at)) {
        (Some(deployment_id), Some(at_ms)) => Ok(Mark {
            deployment_id,
            at_ms,
        }),
        _ => Err(malformed(name, v, EXPECTED)),
    }
}

fn parse_step(v: &str) -> Result<LegacyStepMark, BookkeepingError> {
    const EXPECTED: &str = "`deployment,percent,ms`, e.g. `a1b2c3,25,1700000000000`";
    let mut parts = v.split(',');
    let (Some(dep), Some(pct), Some(at), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(STEP, v, EXPECTED));
    };
    let deployment_id = unescape(dep).filter(|d| !d.is_empty());
    let percent = parse_percent(pct);
    match (deployment_id, percent, parse_u64(at)) {
        (Some(deployment_id), Some(percent), Some(since_ms)) => Ok(LegacyStepMark {
            deployment_id,
            percent,
            since_ms,
        }),
        _ => Err(malformed(STEP, v, EXPECTED)),
    }
}

/// A finite percentage in [0, 100], in plain decimal notation.
fn parse_percent(s: &str) -> Option<f64> {
    let plain = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let p: f64 = if plain { s.parse().ok()? } else { return None };
    (p.is_finite() && (0.0..=100.0).contains(&p)).then_some(p)
}

fn parse_pause(v: &str) -> Result<LegacyPause, BookkeepingError> {
    const EXPECTED: &str = "`ms,reason` with the reason ~XX-escaped";
    let (at, reason) = v
        .split_once(',')
        .ok_or_else(|| malformed(PAUSED, v, EXPECTED))?;
    match (parse_u64(at), unescape(reason)) {
        (Some(since_ms), Some(reason)) if reason.chars().count() <= REASON_MAX_CHARS => {
            Ok(LegacyPause { since_ms, reason })
        }
        _ => Err(malformed(PAUSED, v, EXPECTED)),
    }
}

fn parse_handled(v: &str) -> Result<BTreeMap<String, u64>, BookkeepingError> {
    const EXPECTED: &str = "`key:ms,…` with 16 lower-case hex digits per key";
    let entries: Vec<&str> = v.split(',').collect();
    if entries.len() > HANDLED_MAX {
        return Err(BookkeepingError::TooMany {
            name: HANDLED,
            found: entries.len(),
            max: HANDLED_MAX,
        });
    }
    let mut out = BTreeMap::new();
    for e in entries {
        let (key, at) = e
            .split_once(':')
            .ok_or_else(|| malformed(HANDLED, v, EXPECTED))?;
        let key_ok = key.len() == 16
            && key
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let at = parse_u64(at).filter(|_| key_ok);
        match at {
            Some(at) if out.insert(key.to_owned(), at).is_none() => {}
            _ => return Err(malformed(HANDLED, v, EXPECTED)),
        }
    }
    Ok(out)
}

fn parse_history(v: &str) -> Result<Vec<LegacyHistoryEntry>, BookkeepingError> {
    const EXPECTED: &str = "`ms:kind:deployment,…`, newest first";
    let entries: Vec<&str> = v.split(',').collect();
    if entries.len() > HISTORY_MAX {
        return Err(BookkeepingError::TooMany {
            name: HISTORY,
            found: entries.len(),
            max: HISTORY_MAX,
        });
    }
    entries
        .into_iter()
        .map(|e| {
            let mut parts = e.split(':');
            let (Some(at), Some(kind), Some(dep), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(malformed(HISTORY, v, EXPECTED));
            };
            match (parse_u64(at), ActionKind::from_str_opt(kind), unescape(dep)) {
                (Some(at_ms), Some(kind), Some(deployment_id)) => Ok(LegacyHistoryEntry {
                    at_ms,
                    kind,
                    deployment_id,
                }),
                _ => Err(malformed(HISTORY, v, EXPECTED)),
            }
        })
        .collect()
}

/// Bytes kept as they are; everything else becomes `~XX`.
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'/' | b'?' | b'#' | b'&' | b'=')
}

/// Escapes free text as the old versions did: `~XX` (upper-case hex) per
/// UTF-8 byte outside `[A-Za-z0-9-._/?#&=]`.
#[cfg(test)]
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if is_plain(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("~{b:02X}"));
        }
    }
    out
}

/// Reverses the old encoding's escaping; `None` for anything it cannot produce
/// (bare separators, bad `~` sequences, lower-case hex, invalid UTF-8).
pub fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'~' {
            let hex = b.get(i + 1..i + 3)?;
            let byte = hex
                .iter()
                .try_fold(0u8, |acc, h| Some(acc * 16 + upper_hex(*h)?))?;
            if is_plain(byte) {
                return None; // not canonical
            }
            out.push(byte);
            i += 3;
        } else if is_plain(c) {
            out.push(c);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

fn upper_hex(h: u8) -> Option<u8> {
    match h {
        b'0'..=b'9' => Some(h - b'0'),
        b'A'..=b'F' => Some(h - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn sample() -> LegacyBookkeeping {
        let mut b = LegacyBookkeeping {
            known_good: Some(Mark::new("abc123", 1_700_000_000_000)),
            live: Some(Mark::new("def456", 1_700_000_100_000)),
            step: Some(LegacyStepMark {
                deployment_id: "ghi789".into(),
                percent: 12.5,
                since_ms: 1_700_000_200_000,
            }),
            last_action_ms: Some(1_700_000_300_000),
            last_rollback_ms: Some(0),
            paused: Some(LegacyBookkeeping::pause(
                5,
                "investigating INC-42, ~slow, 100% sure: üñí",
            )),
            ..LegacyBookkeeping::default()
        };
        b.mark_handled("orders-prod-5xx", 1_700_000_400_000);
        b.push_history(1_700_000_300_000, ActionKind::RollbackStage, "abc123");
        b
    }

    #[test]
    fn round_trips_and_uses_only_allowed_characters() {
        let b = sample();
        let enc = b.encode();
        assert_eq!(enc.len(), 8);
        for (k, v) in &enc {
            assert!(VARIABLES.contains(&k.as_str()));
            assert!(!v.is_empty());
            assert!(
                v.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-._~:/?#&=,".contains(&c)),
                "{k}={v}"
            );
        }
        assert_eq!(enc[KNOWN_GOOD], "abc123,1700000000000");
        assert_eq!(enc[STEP], "ghi789,12.5,1700000200000");
        assert!(enc[PAUSED].starts_with("5,investigating~20INC-42~2C~20~7Eslow"));
        assert_eq!(LegacyBookkeeping::decode(&enc), Ok(b));
    }

    #[test]
    fn empty_and_foreign_variables() {
        assert_eq!(
            LegacyBookkeeping::decode(&BTreeMap::new()),
            Ok(LegacyBookkeeping::default())
        );
        assert!(LegacyBookkeeping::default().encode().is_empty());
        let v = vars(&[("backend", "https://x"), ("tidegate_future", "???")]);
        assert_eq!(
            LegacyBookkeeping::decode(&v),
            Ok(LegacyBookkeeping::default())
        );
    }

    #[test]
    fn strict_parsing_rejects_bad_values() {
        for (name, value) in [
            (KNOWN_GOOD, "abc123"),
            (KNOWN_GOOD, ",123"),
            (KNOWN_GOOD, "abc,+12"),
            (KNOWN_GOOD, "abc,012"),
            (KNOWN_GOOD, "abc,99999999999999999999999"),
            (KNOWN_GOOD, "a b,1"),
            (LIVE, "abc,-1"),
            (STEP, "abc,5,1,extra"),
            (STEP, "abc,NaN,1"),
            (STEP, "abc,inf,1"),
            (STEP, "abc,101,1"),
            (STEP, "abc,1e2,1"),
            (LAST_ACTION, ""),
            (LAST_ROLLBACK, "1.5"),
            (PAUSED, "12"),
            (PAUSED, "12,bad~zz"),
            (PAUSED, "12,~41"),
            (PAUSED, "12,~FF"),
            (HANDLED, "0123456789abcdef"),
            (HANDLED, "0123456789ABCDEF:1"),
            (HANDLED, "0123456789abcdef:1,0123456789abcdef:2"),
            (HISTORY, "1:explode:abc"),
            (HISTORY, "1:rollback_stage"),
        ] {
            let err = LegacyBookkeeping::decode(&vars(&[(name, value)])).unwrap_err();
            assert!(
                matches!(err, BookkeepingError::Malformed { name: n, .. } if n == name),
                "{name}={value}: {err:?}"
            );
            assert!(err.to_string().contains("expected"), "{err}");
        }
        let many = ["1:promote_canary:a"; HISTORY_MAX + 1].join(",");
        assert!(matches!(
            LegacyBookkeeping::decode(&vars(&[(HISTORY, &many)])),
            Err(BookkeepingError::TooMany {
                found: 6,
                max: 5,
                ..
            })
        ));
    }

    #[test]
    fn migrates_into_a_record() {
        let b = sample();
        let watched = ["orders-prod-5xx".to_owned(), "other-alarm".to_owned()];
        let (record, history) = b.clone().into_record(&watched);
        assert_eq!(record.known_good, b.known_good);
        assert_eq!(record.live, b.live);
        assert_eq!(
            record.handled_through("orders-prod-5xx"),
            Some(1_700_000_400_000)
        );
        assert_eq!(record.handled.len(), 1, "unwatched hashes are dropped");
        let step = record.step.unwrap();
        assert_eq!(
            (step.percent, step.canary_since_ms),
            (12.5, 1_700_000_200_000)
        );
        assert_eq!(record.paused.unwrap().reason, b.paused.unwrap().reason);
        assert_eq!(history.len(), 1);
    }

    #[test]
    fn cleanup_removes_only_the_old_variables() {
        let mut v = sample().encode();
        v.insert("backend".into(), "https://x".into());
        v.insert("tidegate_future".into(), "kept".into());
        assert!(LegacyBookkeeping::present(&v));
        let ops = LegacyBookkeeping::cleanup_ops(&v);
        assert_eq!(ops.len(), VARIABLES.len());
        assert!(ops
            .iter()
            .all(|o| o.op == crate::rollout::PatchOpKind::Remove
                && VARIABLES
                    .iter()
                    .any(|n| o.path == format!("/variables/{n}"))));
        let user = vars(&[("backend", "https://x")]);
        assert!(
            !LegacyBookkeeping::present(&user) && LegacyBookkeeping::cleanup_ops(&user).is_empty()
        );
    }

    #[test]
    fn decode_or_pause_keeps_good_fields_and_pauses() {
        let v = vars(&[(KNOWN_GOOD, "abc,1"), (LIVE, "garbage")]);
        let (b, errors) = LegacyBookkeeping::decode_or_pause(&v, 99);
        assert_eq!(errors.len(), 1);
        assert_eq!(b.known_good, Some(Mark::new("abc", 1)));
        assert_eq!(b.live, None);
        let p = b.paused.unwrap();
        assert_eq!(p.since_ms, 99);
        assert!(p
            .reason
            .starts_with("bookkeeping unreadable: stage variable `tidegate_live`"));
        assert!(p.reason.chars().count() <= REASON_MAX_CHARS);
        // An existing pause is kept.
        let v = vars(&[(PAUSED, "7,ops"), (LIVE, "garbage")]);
        let (b, _) = LegacyBookkeeping::decode_or_pause(&v, 99);
        assert_eq!(
            b.paused,
            Some(LegacyPause {
                since_ms: 7,
                reason: "ops".into()
            })
        );
    }

    #[test]
    fn handled_transitions_are_a_watermark_per_alarm() {
        let mut b = LegacyBookkeeping::default();
        assert!(!b.is_handled("a", 10));
        b.mark_handled("a", 10);
        assert!(b.is_handled("a", 10));
        assert!(b.is_handled("a", 9));
        assert!(!b.is_handled("a", 11));
        assert!(!b.is_handled("b", 10));
        b.mark_handled("a", 5); // never moves back
        assert_eq!(b.handled_through("a"), Some(10));
        for i in 0..100u64 {
            b.mark_handled(&format!("alarm-{i}"), 1_000 + i);
        }
        assert_eq!(b.handled.len(), HANDLED_MAX);
        assert!(b.is_handled("alarm-99", 1_099));
        assert!(!b.is_handled("a", 10), "the oldest are dropped first");
        assert!(b.encode()[HANDLED].len() < 1_024);
    }

    #[test]
    fn history_is_bounded_newest_first() {
        let mut b = LegacyBookkeeping::default();
        for i in 0..10 {
            b.push_history(i, ActionKind::SetCanaryPercent, "d");
        }
        assert_eq!(b.history.len(), HISTORY_MAX);
        assert_eq!(b.history.first().map(|h| h.at_ms), Some(9));
    }

    #[test]
    fn alarm_keys_are_16_hex() {
        let k = alarm_key("orders-api-prod-5xx-rate");
        assert_eq!(k.len(), 16);
        assert!(k.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(k, alarm_key("orders-api-prod-5xx-rat"));
    }

    fn arb_book() -> impl Strategy<Value = LegacyBookkeeping> {
        let mark = (".{1,12}", any::<u64>()).prop_map(|(d, t)| Mark::new(d, t));
        (
            proptest::option::of(mark.clone()),
            proptest::option::of(mark),
            proptest::option::of((".{1,12}", 0u32..=1000, any::<u64>())),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
            proptest::option::of((any::<u64>(), ".{0,40}")),
            proptest::collection::vec((".{1,20}", any::<u64>()), 0..40),
            proptest::collection::vec((any::<u64>(), 0usize..5, ".{0,10}"), 0..8),
        )
            .prop_map(|(kg, live, step, la, lr, paused, handled, history)| {
                let mut b = LegacyBookkeeping {
                    known_good: kg,
                    live,
                    step: step.map(|(d, p, t)| LegacyStepMark {
                        deployment_id: d,
                        percent: f64::from(p) / 10.0,
                        since_ms: t,
                    }),
                    last_action_ms: la,
                    last_rollback_ms: lr,
                    paused: paused.map(|(t, r)| LegacyBookkeeping::pause(t, &r)),
                    ..LegacyBookkeeping::default()
                };
                for (a, t) in handled {
                    b.mark_handled(&a, t);
                }
                for (t, k, d) in history.into_iter().rev() {
                    let kind = [
                        ActionKind::RemoveCanary,
                        ActionKind::RollbackStage,
                        ActionKind::SetCanaryPercent,
                        ActionKind::PromoteCanary,
                        ActionKind::RecordKnownGood,
                    ]
                    .get(k)
                    .copied()
                    .unwrap_or(ActionKind::RemoveCanary);
                    b.push_history(t, kind, &d);
                }
                b
            })
    }

    proptest! {
        #[test]
        fn any_bookkeeping_round_trips(b in arb_book()) {
            let enc = b.encode();
            for v in enc.values() {
                prop_assert!(!v.is_empty());
                prop_assert!(v.bytes().all(|c| c.is_ascii_alphanumeric() || b"-._~:/?#&=,".contains(&c)));
            }
            prop_assert_eq!(LegacyBookkeeping::decode(&enc), Ok(b));
        }

        #[test]
        fn decode_never_panics(values in proptest::collection::vec((0usize..8, ".{0,60}"), 0..10)) {
            let v: BTreeMap<String, String> = values
                .into_iter()
                .map(|(i, s)| (VARIABLES[i].to_owned(), s))
                .collect();
            let _ = LegacyBookkeeping::decode(&v);
            let (_, errors) = LegacyBookkeeping::decode_or_pause(&v, 1);
            prop_assert_eq!(errors.is_empty(), LegacyBookkeeping::decode(&v).is_ok());
        }

        #[test]
        fn escape_round_trips(s in ".{0,50}") {
            prop_assert_eq!(unescape(&escape(&s)), Some(s));
        }
    }
}
