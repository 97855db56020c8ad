//! The session cookie's `Set-Cookie` and `Cookie` header handling.

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tidegate_session";

/// `Set-Cookie` for session `token`, living `max_age_secs`: HttpOnly (no
/// script reads it), Secure, SameSite=Strict (no other site's page sends
/// it), Path=/ (every page of the control API, under any prefix).
pub fn set_cookie(token: &str, max_age_secs: u64) -> String {
    format!("{SESSION_COOKIE}={token}; Max-Age={max_age_secs}; Path=/; HttpOnly; Secure; SameSite=Strict")
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Strict")
}

/// The value of cookie `name` in a `Cookie` header (`a=1; b=2`).
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}
