//! HTTP dates (RFC 9110 §5.6.7): `Date`, `Expires`, `Last-Modified`,
//! `If-Modified-Since`.
//!
//! A recipient must accept all three formats: the preferred IMF-fixdate and
//! the obsolete RFC 850 and asctime forms. Anything else is `None`, which
//! each caller turns into what its RFC says (an invalid `Expires` means
//! "already expired", an invalid `If-Modified-Since` is ignored).
//!
//! ```
//! use tidegate_policy::cache::parse_http_date;
//! let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT");
//! assert_eq!(t, Some(784_111_777));
//! assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), t);
//! assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), t);
//! assert_eq!(parse_http_date("0"), None);
//! ```

use crate::auth::timestamp::{days_from_civil, days_in_month};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Seconds since the Unix epoch of an HTTP date, or `None` when `value` is
/// not one (leading and trailing whitespace allowed; the weekday is not
/// checked against the date, as most caches do).
pub fn parse_http_date(value: &str) -> Option<i64> {
    let value = value.trim_matches([' ', '\t']);
    if value.len() > 64 || !value.is_ascii() {
        return None;
    }
    let parts: Vec<&str> = value.split([' ', ',']).filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        [_, day, month, year, time, "GMT"] if year.len() == 4 => {
            date(year.parse().ok()?, month, day, time)
        }
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        [_, dmy, time, "GMT"] => {
            let mut it = dmy.split('-');
            let (day, month, year) = (it.next()?, it.next()?, it.next()?);
            if it.next().is_some() || year.len() != 2 {
                return None;
            }
            let yy: i64 = digits(year)?;
            // RFC 9110: a two-digit year more than 50 years ahead is in the past.
            let year = if yy >= 70 { 1900 + yy } else { 2000 + yy };
            date(year, month, day, time)
        }
        // asctime: Sun Nov  6 08:49:37 1994
        [_, month, day, time, year] if year.len() == 4 => {
            date(year.parse().ok()?, month, day, time)
        }
        _ => None,
    }
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn date(year: i64, month: &str, day: &str, time: &str) -> Option<i64> {
    let month = MONTHS.iter().position(|m| *m == month)?;
    let day = digits(day)?;
    let mut hms = time.split(':');
    let (h, m, s) = (
        digits(hms.next()?)?,
        digits(hms.next()?)?,
        digits(hms.next()?)?,
    );
    let month = i64::try_from(month).ok()?.checked_add(1)?;
    let month_days = days_in_month(year, month);
    if hms.next().is_some() || !(1..=month_days).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    if year < 1 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + h * 3_600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn three_formats() {
        let t = Some(784_111_777);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), t);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), t);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), t);
        assert_eq!(parse_http_date("  Thu, 01 Jan 1970 00:00:00 GMT "), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT"),
            Some(1_835_481_599)
        );
        assert_eq!(parse_http_date("Thursday, 01-Jan-70 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Friday, 01-Jan-49 00:00:00 GMT"),
            parse_http_date("Fri, 01 Jan 2049 00:00:00 GMT")
        );
    }

    #[test]
    fn garbage() {
        for bad in [
            "",
            "0",
            "-1",
            "yesterday",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Wed, 31 Feb 2024 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37:01 GMT",
            "Sun, -6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "Sün, 06 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,80}") {
            let _ = parse_http_date(&s);
        }

        #[test]
        fn round_trips_every_day(days in 0i64..200_000, secs in 0i64..86_400) {
            let t = days * 86_400 + secs;
            let (y, m, d) = civil_from_days(days);
            let text = format!(
                "Mon, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
                MONTHS[(m - 1) as usize], secs / 3600, secs / 60 % 60, secs % 60
            );
            prop_assert_eq!(parse_http_date(&text), Some(t));
        }
    }

    fn civil_from_days(z: i64) -> (i64, i64, i64) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (yoe + era * 400 + i64::from(m <= 2), m, d)
    }
}
