//! The route table: which configured route a request goes to.

use std::collections::BTreeMap;

use super::method::Method;
use super::pattern::{split_path, RoutePattern, Segment};
use crate::problem::Problem;

/// Number of methods, i.e. the size of per-method lookup tables.
const METHODS: usize = Method::ALL.len();

/// Bit set of every method: what an "any method" route allows.
const ALL_METHODS: u8 = (1 << METHODS) - 1;

/// The outcome of matching a request against a [`RouteTable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMatch {
    /// A route matched path and method.
    Matched {
        /// Position of the route in the list the table was built from.
        index: usize,
        /// Captured `{name}` segments, raw (still percent-encoded), in pattern order.
        params: Vec<(String, String)>,
    },
    /// Some route matched the path, but none the method: answer 405.
    MethodNotAllowed {
        /// The methods the path accepts, in [`Method::ALL`] order, for `Allow`.
        allowed: Vec<Method>,
    },
    /// No route matched the path: answer 404.
    NotFound,
}

impl RouteMatch {
    /// The problem to answer with: `None` for a match, otherwise 404 or 405.
    /// The 405 detail lists the allowed methods; neither echoes the path.
    pub fn to_problem(&self) -> Option<Problem> {
        match self {
            RouteMatch::Matched { .. } => None,
            RouteMatch::MethodNotAllowed { allowed } => Some(
                Problem::new(405, "method-not-allowed", "Method not allowed").with_detail(format!(
                    "This path accepts only: {}.",
                    allow_header_value(allowed)
                )),
            ),
            RouteMatch::NotFound => Some(
                Problem::new(404, "route-not-found", "No route matches")
                    .with_detail("No configured route matches this path."),
            ),
        }
    }
}

impl RouteMatch {
    /// The `Allow` header value to send with a 405 (e.g. `GET, HEAD`);
    /// `None` for any other outcome.
    pub fn allow_header(&self) -> Option<String> {
        match self {
            RouteMatch::MethodNotAllowed { allowed } => Some(allow_header_value(allowed)),
            RouteMatch::Matched { .. } | RouteMatch::NotFound => None,
        }
    }
}

/// The value of an `Allow` header for these methods, e.g. `GET, HEAD`.
pub fn allow_header_value(allowed: &[Method]) -> String {
    allowed
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Routes compiled for matching. Build once per config, match per request.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<(Vec<Method>, RoutePattern)>,
    nodes: Vec<Node>,
}

/// A trie node; children are indices into `RouteTable::nodes`.
#[derive(Debug, Clone, Default)]
struct Node {
    literals: BTreeMap<String, usize>,
    any: Option<usize>,
    /// Routes whose pattern ends exactly here.
    end: Terminal,
    /// Routes whose trailing `*` starts here.
    rest: Terminal,
}

/// The routes reaching one terminal, summarised for O(1) merging.
#[derive(Debug, Clone, Copy, Default)]
struct Terminal {
    /// Per method (by [`Method::index`]), the lowest route index allowing it.
    first: [Option<usize>; METHODS],
    /// Union of the methods allowed; 0 if no route ends here.
    allowed: u8,
}

impl Terminal {
    fn add(&mut self, index: usize, mask: u8) {
        for m in Method::ALL {
            if mask & m.bit() != 0 {
                if let Some(slot) = self.first.get_mut(m.index()) {
                    if slot.is_none() {
                        *slot = Some(index);
                    }
                }
            }
        }
        self.allowed |= mask;
    }

    fn merge(&mut self, other: &Terminal) {
        for (mine, theirs) in self.first.iter_mut().zip(other.first) {
            *mine = match (*mine, theirs) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        self.allowed |= other.allowed;
    }

    fn first_for(&self, method: Method) -> Option<usize> {
        self.first.get(method.index()).copied().flatten()
    }
}

impl RouteTable {
    /// Compiles routes, in priority order: `(methods, pattern)` where an
    /// empty `methods` list means any method.
    pub fn new(routes: impl IntoIterator<Item = (Vec<Method>, RoutePattern)>) -> Self {
        let mut table = Self {
            routes: routes.into_iter().collect(),
            nodes: vec![Node::default()],
        };
        for index in 0..table.routes.len() {
            table.insert(index);
        }
        table
    }

    /// Adds route `index` to the trie. Indices are inserted in increasing
    /// order, so the first index a terminal sees for a method is its lowest.
    fn insert(&mut self, index: usize) {
        let Some((methods, pattern)) = self.routes.get(index) else {
            return;
        };
        let mask = if methods.is_empty() {
            ALL_METHODS
        } else {
            methods.iter().fold(0, |acc, m| acc | m.bit())
        };
        let rest = pattern.has_rest();
        let segments = pattern.segments().to_vec();
        let mut node = 0;
        for seg in &segments {
            node = self.child(node, seg);
        }
        if let Some(n) = self.nodes.get_mut(node) {
            if rest {
                n.rest.add(index, mask);
            } else {
                n.end.add(index, mask);
            }
        }
    }

    /// The child of `node` for `seg`, created if missing.
    fn child(&mut self, node: usize, seg: &Segment) -> usize {
        let fresh = self.nodes.len();
        let Some(n) = self.nodes.get_mut(node) else {
            return node;
        };
        let slot = match seg {
            Segment::Literal(lit) => *n.literals.entry(lit.clone()).or_insert(fresh),
            Segment::Param(_) | Segment::Any => *n.any.get_or_insert(fresh),
        };
        if slot == fresh {
            self.nodes.push(Node::default());
        }
        slot
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the table has no routes (every request is `NotFound`).
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The pattern of route `index`.
    pub fn pattern(&self, index: usize) -> Option<&RoutePattern> {
        self.routes.get(index).map(|(_, p)| p)
    }

    /// The methods of route `index` (empty = any).
    pub fn methods(&self, index: usize) -> Option<&[Method]> {
        self.routes.get(index).map(|(m, _)| m.as_slice())
    }

    /// Finds the route for a request.
    ///
    /// Routes are tried in config order and the FIRST match wins. Rather than
    /// testing every route in turn, the table is a trie over path segments: each
    /// node has its literal children in a `BTreeMap`, one child for "any single
    /// segment" (`{name}` and `*` share it; captures are per route), and two
    /// terminals, for routes that end at the node and for routes whose trailing
    /// `*` starts there. Matching walks the trie along the request path and keeps,
    /// per method, the lowest route index seen at any terminal it reaches, so its
    /// cost depends on the path's depth (and the branching it meets), not on how
    /// many routes there are. Every trie node is visited at most once per lookup.
    ///
    /// `HEAD`: a route that allows HEAD (or any method) wins; only if no route
    /// for the path does, the request goes to the first route allowing `GET`, as
    /// HTTP lets a server answer HEAD like GET. `Allow` lists include HEAD
    /// whenever they include GET.
    ///
    /// Paths are matched raw: no percent-decoding, so `/a%2Fb` is one segment,
    /// and anything from `?` on is ignored. Absurd paths (see
    /// [`MAX_PATH_LEN`](super::MAX_PATH_LEN),
    /// [`MAX_PATH_SEGMENTS`](super::MAX_PATH_SEGMENTS)) are `NotFound`.
    pub fn match_request(&self, method: Method, path: &str) -> RouteMatch {
        let Some(segs) = split_path(path) else {
            return RouteMatch::NotFound;
        };
        let found = self.collect(&segs);
        if found.allowed == 0 {
            return RouteMatch::NotFound;
        }
        let chosen = found.first_for(method).or_else(|| {
            if method == Method::Head {
                found.first_for(Method::Get)
            } else {
                None
            }
        });
        match chosen {
            Some(index) => {
                // The trie found it, so the pattern matches; extract captures.
                match self.pattern(index).and_then(|p| p.match_segments(&segs)) {
                    Some(params) => RouteMatch::Matched { index, params },
                    None => RouteMatch::NotFound,
                }
            }
            None => RouteMatch::MethodNotAllowed {
                allowed: allowed_methods(found.allowed),
            },
        }
    }

    /// Walks the trie along `segs`, merging every terminal reached.
    fn collect(&self, segs: &[&str]) -> Terminal {
        let mut found = Terminal::default();
        let mut stack = vec![(0usize, 0usize)];
        while let Some((id, depth)) = stack.pop() {
            let Some(node) = self.nodes.get(id) else {
                continue;
            };
            // A trailing `*` matches whatever is left, even nothing.
            found.merge(&node.rest);
            let Some(seg) = segs.get(depth) else {
                found.merge(&node.end);
                continue;
            };
            let next = depth.saturating_add(1);
            if let Some(&child) = node.literals.get(*seg) {
                stack.push((child, next));
            }
            if let (Some(child), false) = (node.any, seg.is_empty()) {
                stack.push((child, next));
            }
        }
        found
    }
}

/// Methods in a bit set, plus HEAD whenever GET is there (HEAD falls back to GET).
fn allowed_methods(mut bits: u8) -> Vec<Method> {
    if bits & Method::Get.bit() != 0 {
        bits |= Method::Head.bit();
    }
    Method::ALL
        .into_iter()
        .filter(|m| bits & m.bit() != 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use Method::*;

    fn table(routes: &[(&[Method], &str)]) -> RouteTable {
        RouteTable::new(
            routes
                .iter()
                .map(|(m, p)| (m.to_vec(), RoutePattern::parse(p).unwrap())),
        )
    }

    fn matched(index: usize, params: &[(&str, &str)]) -> RouteMatch {
        RouteMatch::Matched {
            index,
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// The obvious matcher: try every route in order. Written independently
    /// of `RoutePattern::match_segments` so the proptest checks both.
    fn linear(routes: &[(Vec<Method>, RoutePattern)], method: Method, path: &str) -> RouteMatch {
        let Some(segs) = split_path(path) else {
            return RouteMatch::NotFound;
        };
        type Hit<'a> = (usize, &'a Vec<Method>, Vec<(String, String)>);
        let hits: Vec<Hit<'_>> = routes
            .iter()
            .enumerate()
            .filter_map(|(i, (methods, pat))| naive_match(pat, &segs).map(|p| (i, methods, p)))
            .collect();
        if hits.is_empty() {
            return RouteMatch::NotFound;
        }
        let allows = |ms: &Vec<Method>, m: Method| ms.is_empty() || ms.contains(&m);
        let pick = hits
            .iter()
            .find(|(_, ms, _)| allows(ms, method))
            .or_else(|| {
                (method == Head)
                    .then(|| hits.iter().find(|(_, ms, _)| allows(ms, Get)))
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
        if allowed.contains(&Get) {
            allowed.push(Head);
        }
        allowed.sort();
        allowed.dedup();
        RouteMatch::MethodNotAllowed { allowed }
    }

    fn naive_match(pat: &RoutePattern, segs: &[&str]) -> Option<Vec<(String, String)>> {
        let text = pat.to_string();
        let parts: Vec<&str> = if text == "/" {
            vec![]
        } else {
            text[1..].split('/').collect()
        };
        let (fixed, rest) = match parts.split_last() {
            Some((&"*", init)) => (init, true),
            _ => (&parts[..], false),
        };
        if segs.len() < fixed.len() || (!rest && segs.len() != fixed.len()) {
            return None;
        }
        let mut params = vec![];
        for (p, s) in fixed.iter().zip(segs) {
            if *p == "*" {
                if s.is_empty() {
                    return None;
                }
            } else if p.starts_with('{') {
                if s.is_empty() {
                    return None;
                }
                params.push((p[1..p.len() - 1].to_owned(), s.to_string()));
            } else if p != s {
                return None;
            }
        }
        Some(params)
    }

    #[test]
    fn first_match_wins_in_list_order() {
        let t = table(&[
            (&[Get], "/users/{id}"),
            (&[Get], "/users/me"),
            (&[], "/users/*"),
        ]);
        assert_eq!(
            t.match_request(Get, "/users/me"),
            matched(0, &[("id", "me")])
        );
        assert_eq!(t.match_request(Post, "/users/me"), matched(2, &[]));
        assert_eq!(t.match_request(Get, "/users"), matched(2, &[]));

        let t = table(&[(&[Get], "/users/me"), (&[Get], "/users/{id}")]);
        assert_eq!(t.match_request(Get, "/users/me"), matched(0, &[]));
        assert_eq!(t.match_request(Get, "/users/7"), matched(1, &[("id", "7")]));
    }

    #[test]
    fn rest_route_earlier_in_list_beats_deeper_routes() {
        let t = table(&[(&[], "/api/*"), (&[Get], "/api/users/{id}")]);
        assert_eq!(t.match_request(Get, "/api/users/1"), matched(0, &[]));
        assert_eq!(t.match_request(Get, "/api"), matched(0, &[]));
        assert_eq!(t.match_request(Get, "/apix"), RouteMatch::NotFound);
    }

    #[test]
    fn method_not_allowed_lists_union_with_head() {
        let t = table(&[
            (&[Get], "/items/{id}"),
            (&[Put, Delete], "/items/{item}"),
            (&[Post], "/items"),
        ]);
        assert_eq!(
            t.match_request(Post, "/items/1"),
            RouteMatch::MethodNotAllowed {
                allowed: vec![Get, Head, Put, Delete]
            }
        );
        assert_eq!(
            t.match_request(Delete, "/items/1"),
            matched(1, &[("item", "1")])
        );
        assert_eq!(
            t.match_request(Get, "/items"),
            RouteMatch::MethodNotAllowed {
                allowed: vec![Post]
            }
        );
        assert_eq!(t.match_request(Get, "/nothing"), RouteMatch::NotFound);
    }

    #[test]
    fn head_falls_back_to_get_only_without_a_head_route() {
        let t = table(&[(&[Get], "/a"), (&[Head], "/a"), (&[Get], "/b")]);
        assert_eq!(t.match_request(Head, "/a"), matched(1, &[]));
        assert_eq!(t.match_request(Head, "/b"), matched(2, &[]));
        let t = table(&[(&[Post], "/c")]);
        assert_eq!(
            t.match_request(Head, "/c"),
            RouteMatch::MethodNotAllowed {
                allowed: vec![Post]
            }
        );
    }

    #[test]
    fn paths_are_raw_and_query_is_ignored() {
        let t = table(&[(&[Get], "/files/{name}"), (&[Get], "/a%2Fb")]);
        assert_eq!(
            t.match_request(Get, "/files/a%2Fb"),
            matched(0, &[("name", "a%2Fb")])
        );
        assert_eq!(t.match_request(Get, "/a%2Fb?x=/y"), matched(1, &[]));
        assert_eq!(t.match_request(Get, "/a/b"), RouteMatch::NotFound);
        assert_eq!(t.match_request(Get, "/files/"), RouteMatch::NotFound);
        assert_eq!(
            t.match_request(Get, "/files/x?"),
            matched(0, &[("name", "x")])
        );
    }

    #[test]
    fn absurd_paths_are_not_found() {
        let t = table(&[(&[], "/*")]);
        assert_eq!(t.match_request(Get, "/"), matched(0, &[]));
        assert_eq!(t.match_request(Get, ""), RouteMatch::NotFound);
        assert_eq!(t.match_request(Get, "*"), RouteMatch::NotFound);
        assert_eq!(t.match_request(Get, "http://x/"), RouteMatch::NotFound);
        let deep = "/a".repeat(100_000);
        assert_eq!(t.match_request(Get, &deep), RouteMatch::NotFound);
        let long = format!("/{}", "a".repeat(1 << 20));
        assert_eq!(t.match_request(Get, &long), RouteMatch::NotFound);
    }

    #[test]
    fn empty_table_finds_nothing() {
        let t = RouteTable::new([]);
        assert!(t.is_empty());
        assert_eq!(t.match_request(Get, "/"), RouteMatch::NotFound);
    }

    #[test]
    fn accessors() {
        let t = table(&[(&[Get], "/a/{b}")]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.pattern(0).unwrap().to_string(), "/a/{b}");
        assert_eq!(t.methods(0), Some(&[Get][..]));
        assert_eq!(t.pattern(1), None);
    }

    #[test]
    fn problems_for_misses() {
        let p = RouteMatch::MethodNotAllowed {
            allowed: vec![Get, Head],
        }
        .to_problem()
        .unwrap();
        assert_eq!(p.status, 405);
        assert_eq!(
            p.detail.as_deref(),
            Some("This path accepts only: GET, HEAD.")
        );
        assert_eq!(RouteMatch::NotFound.to_problem().unwrap().status, 404);
        assert_eq!(matched(0, &[]).to_problem(), None);
        assert_eq!(allow_header_value(&[]), "");
    }

    #[test]
    fn allow_header_only_for_405() {
        let not_allowed = RouteMatch::MethodNotAllowed {
            allowed: vec![Get, Head],
        };
        assert_eq!(not_allowed.allow_header().as_deref(), Some("GET, HEAD"));
        assert_eq!(RouteMatch::NotFound.allow_header(), None);
        assert_eq!(matched(0, &[]).allow_header(), None);
    }

    #[test]
    fn many_routes_still_match_correctly() {
        let routes: Vec<(Vec<Method>, RoutePattern)> = (0..1000)
            .map(|i| {
                (
                    vec![Get],
                    RoutePattern::parse(&format!("/svc{i}/items/{{id}}")).unwrap(),
                )
            })
            .collect();
        let t = RouteTable::new(routes.clone());
        for i in [0, 499, 999] {
            let path = format!("/svc{i}/items/x");
            assert_eq!(t.match_request(Get, &path), linear(&routes, Get, &path));
            assert_eq!(t.match_request(Get, &path), matched(i, &[("id", "x")]));
        }
        // Lookups touch only the nodes along the path, not all 1,000 routes.
        let segs = split_path("/svc999/items/x").unwrap();
        assert!(t.collect(&segs).allowed != 0);
    }

    fn method_strategy() -> impl Strategy<Value = Method> {
        prop::sample::select(Method::ALL.to_vec())
    }

    /// Small alphabets so random routes and paths actually collide.
    fn pattern_strategy() -> impl Strategy<Value = RoutePattern> {
        let seg = prop_oneof![
            prop::sample::select(vec!["a", "b", "c%2F"]).prop_map(str::to_owned),
            Just("{p}".to_owned()),
            Just("*".to_owned()),
        ];
        prop::collection::vec(seg, 0..4).prop_map(|segs| {
            // Number the params so names stay unique.
            let segs: Vec<String> = segs
                .into_iter()
                .enumerate()
                .map(|(i, s)| if s == "{p}" { format!("{{p{i}}}") } else { s })
                .collect();
            RoutePattern::parse(&format!("/{}", segs.join("/"))).unwrap()
        })
    }

    fn path_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::collection::vec(prop::sample::select(vec!["a", "b", "c%2F", "", "d"]), 0..6)
                .prop_map(|s| format!("/{}", s.join("/"))),
            "\\PC{0,30}",
            "[/ab?%]{0,12}",
        ]
    }

    proptest! {
        #[test]
        fn trie_agrees_with_linear_matcher(
            routes in prop::collection::vec(
                (prop::collection::vec(method_strategy(), 0..3), pattern_strategy()),
                0..12,
            ),
            requests in prop::collection::vec((method_strategy(), path_strategy()), 1..16),
        ) {
            let t = RouteTable::new(routes.clone());
            for (method, path) in requests {
                prop_assert_eq!(
                    t.match_request(method, &path),
                    linear(&routes, method, &path),
                    "{} {}", method, path
                );
            }
        }

        #[test]
        fn arbitrary_paths_never_panic(path in "\\PC{0,200}", method in method_strategy()) {
            let t = table(&[(&[Get], "/a/{b}/*"), (&[], "/*/x"), (&[Post], "/")]);
            let _ = t.match_request(method, &path);
        }
    }
}
