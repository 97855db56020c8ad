//! Terminal output for the walkthrough, and the expectations it checks.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::gateway::{Gateway, Request, Response};
use tidegate_policy::auth::AuthRequirement;
use tidegate_policy::config::{format_duration, Route};
use tidegate_policy::throttle::LimitKey;

fn paint(code: &str, text: &str) -> String {
    static COLOR: OnceLock<bool> = OnceLock::new();
    if *COLOR.get_or_init(|| std::io::stdout().is_terminal()) {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// Bold text.
pub fn bold(text: &str) -> String {
    paint("1", text)
}

/// Dimmed text.
pub fn dim(text: &str) -> String {
    paint("2", text)
}

/// A status code, green, yellow or red.
pub fn status(code: u16) -> String {
    let color = match code {
        200..=399 => "32;1",
        400..=499 => "33;1",
        _ => "31;1",
    };
    paint(color, &code.to_string())
}

/// An indented line under a step.
pub fn line(text: &str) {
    println!("      {text}");
}

/// A dimmed, indented detail line.
pub fn detail(text: &str) {
    println!("        {}", dim(text));
}

/// Sends a request and prints `METHOD target -> status (facts)`.
pub fn send(gw: &mut Gateway, req: Request) -> Response {
    let r = gw.handle(&req);
    let (method, target, code, facts) = (req.method, &req.target, status(r.status), r.facts());
    line(&format!("{method} {target} -> {code} {facts}"));
    if let Some(challenge) = r.header("WWW-Authenticate") {
        detail(&format!("WWW-Authenticate: {challenge}"));
    }
    r
}

/// Moves the simulated clock and says why.
pub fn advance(gw: &mut Gateway, by: Duration, why: &str) {
    gw.advance(by);
    let (by, at) = (
        span(by),
        span(Duration::from_millis(gw.now_ms - gw.start_ms)),
    );
    line(&dim(&format!("clock +{by} -> T+{at} ({why})")));
}

/// Asks `issuer`'s JWKS cache for an ES256 key `kid` and prints its decision.
pub fn lookup(gw: &mut Gateway, issuer: &str, kid: &str) -> &'static str {
    let decision = gw.key_lookup(issuer, kid);
    line(&format!("lookup(kid {kid}) -> {}", bold(decision)));
    decision
}

/// A duration the way the config file writes it: `30s`, `1h30m`.
pub fn span(d: Duration) -> String {
    format_duration(d)
}

/// A short fingerprint of a secret: the first 8 hex digits of its SHA-256.
/// The only form in which the walkthrough ever shows a key or token.
pub fn fingerprint(secret: &[u8]) -> String {
    Sha256::digest(secret)
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Prints a route on two lines: name, methods, pattern; then auth, limits, cache.
pub fn route_summary(r: &Route) {
    let methods: Vec<&str> = r.methods.iter().map(|m| m.as_str()).collect();
    let auth = match r.auth.requirement {
        AuthRequirement::None => "public",
        AuthRequirement::Jwt => "jwt",
        AuthRequirement::ApiKey => "api key",
        AuthRequirement::Either => "jwt or api key",
    };
    let limits = r.rate_limit.iter().flat_map(|p| &p.limits).map(|l| {
        let key = match l.key {
            LimitKey::Subject => "subject",
            LimitKey::ApiKey => "api key",
            LimitKey::ClientIp => "client ip",
            LimitKey::Route => "route",
        };
        let (name, limit, period) = (&l.name, l.quota.limit, span(l.quota.period));
        format!("{name} {limit}/{period} per {key}")
    });
    let limits = limits.collect::<Vec<_>>().join(", ");
    let cache = r.cache.as_ref().map_or("off".to_owned(), |c| {
        let stale = [("swr", c.stale_while_revalidate), ("sie", c.stale_if_error)];
        let stale = stale.iter().filter(|(_, d)| !d.is_zero());
        let stale: String = stale.map(|(n, d)| format!(", {n} {}", span(*d))).collect();
        let scope = format!("{:?}", c.scope).to_lowercase();
        format!("{} {scope}{stale}", span(c.ttl))
    });
    let (name, methods) = (bold(&format!("{:<13}", r.name)), methods.join(","));
    let scopes = match r.auth.scopes.join(" ") {
        s if s.is_empty() => s,
        s => format!(", scopes {s}"),
    };
    line(&format!("{name} {methods:<15} {}", r.pattern));
    detail(&format!(
        "auth {auth}{scopes} | limits {limits} | cache {cache}"
    ));
}

/// One section's tally for the summary table.
struct Section {
    title: String,
    steps: usize,
    passed: usize,
    total: usize,
    result: String,
}

/// Every expectation the walkthrough checks, by section.
#[derive(Default)]
pub struct Checks {
    sections: Vec<Section>,
    failures: Vec<String>,
}

impl Checks {
    /// Starts section `n` of 5 and prints its heading.
    pub fn section(&mut self, title: &str) {
        let n = self.sections.len() + 1;
        println!("\n{}", paint("1;4", &format!("[{n}/5] {title}")));
        self.sections.push(Section {
            title: format!("{n}. {title}"),
            steps: 0,
            passed: 0,
            total: 0,
            result: String::new(),
        });
    }

    /// Starts the next numbered step of the section: `  3.2 text`.
    pub fn step(&mut self, text: &str) {
        let n = self.sections.len();
        let step = self.sections.last_mut().map_or(0, |s| {
            s.steps += 1;
            s.steps
        });
        println!(
            "\n  {} {}",
            paint("36;1", &format!("{n}.{step}")),
            bold(text)
        );
    }

    /// Records the one-line result of the current section.
    pub fn result(&mut self, text: impl Into<String>) {
        if let Some(s) = self.sections.last_mut() {
            s.result = text.into();
        }
    }

    /// Checks one expectation, prints ✓ or ✗, and returns whether it held.
    pub fn expect(&mut self, ok: bool, what: impl Into<String>) -> bool {
        let what = what.into();
        if let Some(s) = self.sections.last_mut() {
            s.total += 1;
            s.passed += usize::from(ok);
        }
        if ok {
            println!("        {} {what}", paint("32", "✓"));
        } else {
            println!("        {} {what}", paint("31;1", "✗ EXPECTED:"));
            self.failures.push(what);
        }
        ok
    }

    /// The expectations that failed.
    pub fn failures(&self) -> &[String] {
        &self.failures
    }

    /// Prints the summary table.
    pub fn print_summary(&self) {
        println!("\n{}", paint("1;4", "[5/5] Summary"));
        let width = self
            .sections
            .iter()
            .map(|s| s.title.len())
            .max()
            .unwrap_or(0);
        println!("  {:width$}  checks  result", "section");
        for s in &self.sections {
            let tally = format!("{}/{}", s.passed, s.total);
            let tally = if s.passed == s.total {
                paint("32", &format!("{tally:>6}"))
            } else {
                paint("31;1", &format!("{tally:>6}"))
            };
            println!("  {:width$}  {tally}  {}", s.title, s.result);
        }
        let passed: usize = self.sections.iter().map(|s| s.passed).sum();
        let total: usize = self.sections.iter().map(|s| s.total).sum();
        println!("  {:width$}  {:>6}", "all", format!("{passed}/{total}"));
    }
}
