//! Route matching: a table built from fuzzed routes, matched against fuzzed
//! requests, must agree with a plain first-match-wins scan of the routes
//! (`RoutePattern::match_path`, no trie), including 405 `Allow` lists and the
//! HEAD-as-GET fallback.
//!
//! Input: one route per line (`METHODS PATTERN`, methods comma-separated,
//! `*` for any), an empty line, then one request per line (`METHOD PATH`).
//! Lines that do not parse are skipped; patterns are parsed either way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidegate_policy::route::{Method, RouteMatch, RoutePattern, RouteTable};

type Route = (Vec<Method>, RoutePattern);

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (route_lines, request_lines) = text.split_once("\n\n").unwrap_or((&text, ""));
    let routes: Vec<Route> = route_lines.lines().filter_map(route).collect();
    let table = RouteTable::new(routes.clone());
    assert_eq!(table.len(), routes.len());
    for line in request_lines.lines() {
        let (method, path) = line.split_once(' ').unwrap_or(("GET", line));
        let Ok(method) = method.parse::<Method>() else {
            continue;
        };
        let got = table.match_request(method, path);
        let want = linear(&routes, method, path);
        assert_eq!(got, want, "{method} {path:?}");
        let _ = got.to_problem();
        let _ = got.allow_header();
    }
});

fn route(line: &str) -> Option<Route> {
    let (methods, pattern) = line.split_once(' ')?;
    let pattern = RoutePattern::parse(pattern).ok()?;
    // Display gives the pattern back in a form that parses to the same.
    let shown = pattern.to_string();
    assert_eq!(
        RoutePattern::parse(&shown).as_ref(),
        Ok(&pattern),
        "{shown:?}"
    );
    let methods = if methods == "*" {
        Vec::new()
    } else {
        methods
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<Method>, _>>()
            .ok()?
    };
    Some((methods, pattern))
}

/// Config order, first match wins; 405 lists every method of every route
/// matching the path (HEAD whenever GET).
fn linear(routes: &[Route], method: Method, path: &str) -> RouteMatch {
    let hits: Vec<(usize, &Vec<Method>, Vec<(String, String)>)> = routes
        .iter()
        .enumerate()
        .filter_map(|(i, (methods, p))| p.match_path(path).map(|params| (i, methods, params)))
        .collect();
    if hits.is_empty() {
        return RouteMatch::NotFound;
    }
    let allows = |ms: &Vec<Method>, m: Method| ms.is_empty() || ms.contains(&m);
    let pick = hits
        .iter()
        .find(|(_, ms, _)| allows(ms, method))
        .or_else(|| {
            (method == Method::Head)
                .then(|| hits.iter().find(|(_, ms, _)| allows(ms, Method::Get)))
                .flatten()
        });
    if let Some((index, _, params)) = pick {
        return RouteMatch::Matched {
            index: *index,
            params: params.clone(),
        };
    }
    let mut allowed: Vec<Method> = hits
        .iter()
        .flat_map(|(_, ms, _)| ms.iter().copied())
        .collect();
    if allowed.contains(&Method::Get) {
        allowed.push(Method::Head);
    }
    allowed.sort_by_key(|m| Method::ALL.iter().position(|a| a == m));
    allowed.dedup();
    RouteMatch::MethodNotAllowed { allowed }
}
