//! Merging into `Vary` (RFC 9110 §12.5.5).

/// `existing` (the response's `Vary`, if any) with every field name of `add`
/// that it does not already list (names compare case-insensitively). A
/// `Vary: *` stays `*`: it already varies on everything.
pub fn merge_vary(existing: Option<&str>, add: &str) -> String {
    let existing = existing.map(str::trim).filter(|v| !v.is_empty());
    let Some(existing) = existing else {
        return add.to_owned();
    };
    let listed: Vec<&str> = existing
        .split(',')
        .map(|t| t.trim_matches([' ', '\t']))
        .filter(|t| !t.is_empty())
        .collect();
    if listed.contains(&"*") {
        return "*".to_owned();
    }
    let mut out = existing.to_owned();
    for name in add.split(',').map(|t| t.trim_matches([' ', '\t'])) {
        if !name.is_empty() && !listed.iter().any(|l| l.eq_ignore_ascii_case(name)) {
            out.push_str(", ");
            out.push_str(name);
        }
    }
    out
}
