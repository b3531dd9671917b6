//! The loaded route table and route selection (spec 3.2 duplicates/ids, 3.3 selection, 3.5 CLI).
//!
//! Policy when input is bad: a line that can't be understood (tokenizer error, bad target, bad
//! value of a known prop, control character, a limit exceeded) fails the whole load with an error
//! naming the line, so a typo never silently drops a route. Lines Pushpin skips with a warning
//! (no targets, no domain and no id, duplicate condition) are skipped with a warning here too;
//! unknown props/options and duplicate ids keep the line and warn.

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::route::{route_from_tokens, shown, Proto, Route, TargetKind};
use super::tokenizer::tokenize_line;
use super::Target;

/// Largest routes text accepted, in bytes.
pub const ROUTES_FILE_LEN_MAX: usize = 16 * 1024 * 1024;
/// Most routes in one table.
pub const ROUTES_MAX: usize = 100_000;
/// Longest host lowercased on the stack during selection; longer ones (never valid DNS names,
/// which stop at 253) are lowercased on the heap.
const HOST_STACK_LEN_MAX: usize = 255;

/// A routes line that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutesError {
    /// File path, or `--route #N` for a command-line entry.
    pub source: String,
    /// 1-based line number; 0 when the problem is the text as a whole.
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for RoutesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.source, self.line, self.reason)
    }
}

impl std::error::Error for RoutesError {}

/// What a request looks like to route selection.
#[derive(Debug, Clone, Copy)]
pub struct RouteQuery<'a> {
    /// Request host without port, any case.
    pub host: &'a str,
    /// Encoded path, without the query.
    pub path: &'a str,
    pub ws: bool,
    pub tls: bool,
    /// `Pushpin-Route` value when the client may choose the route.
    pub route_id: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdSlot {
    One(usize),
    /// Two routes claimed this id; Pushpin makes it unusable rather than guess.
    Shared,
}

/// Routes grouped for lookup. Indices point into `routes`, which keeps file order.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    /// Exact-host rules, keyed by ASCII-lowercased domain, each list in file order.
    by_domain: HashMap<String, Vec<usize>>,
    /// `*` rules in file order.
    any_domain: Vec<usize>,
    /// Explicit ids only.
    by_id: HashMap<String, IdSlot>,
}

impl RouteTable {
    /// Parse a whole routes file. `source` names it in messages. Returns the table and the
    /// warnings, each `"<source>:<line>: <reason>"`.
    pub fn parse(text: &str, source: &str) -> Result<(RouteTable, Vec<String>), RoutesError> {
        if text.len() > ROUTES_FILE_LEN_MAX {
            return Err(RoutesError {
                source: source.to_string(),
                line: 0,
                reason: format!("routes text larger than {ROUTES_FILE_LEN_MAX} bytes"),
            });
        }
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut loader = Loader::default();
        for (i, raw) in text.split('\n').enumerate() {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            loader.add_line(line, source, i.saturating_add(1))?;
        }
        Ok((loader.table, loader.warnings))
    }

    /// Build from `--route` entries; entry `i` is reported as `--route #<i+1>`, line 1.
    pub fn from_lines(lines: &[String]) -> Result<(RouteTable, Vec<String>), RoutesError> {
        let mut loader = Loader::default();
        for (i, line) in lines.iter().enumerate() {
            let source = format!("--route #{}", i.saturating_add(1));
            loader.add_line(line, &source, 1)?;
        }
        Ok((loader.table, loader.warnings))
    }

    /// Pick the route for a request (spec 3.3).
    ///
    /// With `route_id`: the explicit id's route if its `path_beg` matches, else `None` (no
    /// fallback). Otherwise: the exact-host rules if the host has any, else the `*` rules (no
    /// fallback from the host's rules to `*`); the most specific match wins (proto, then longer
    /// `path_beg`, then ssl). Two different conditions that both match never rank equal, and
    /// duplicate conditions are dropped at load, so "first in file wins ties" holds trivially.
    pub fn select(&self, q: &RouteQuery) -> Option<&Route> {
        if let Some(id) = q.route_id {
            return match self.by_id.get(id)? {
                IdSlot::One(i) => self.routes.get(*i).filter(|r| r.path_matches(q.path)),
                IdSlot::Shared => None,
            };
        }
        let list = self.domain_rules(q.host).unwrap_or(&self.any_domain);
        let mut best: Option<(&Route, (bool, usize, bool))> = None;
        for r in list.iter().filter_map(|&i| self.routes.get(i)) {
            if !r.condition_matches(q.path, q.ws, q.tls) {
                continue;
            }
            let rank = r.specificity();
            if best.is_none_or(|(_, b)| rank > b) {
                best = Some((r, rank));
            }
        }
        best.map(|(r, _)| r)
    }

    /// The route with this explicit id, unless the id is shared by several routes.
    pub fn by_id(&self, id: &str) -> Option<&Route> {
        match self.by_id.get(id)? {
            IdSlot::One(i) => self.routes.get(*i),
            IdSlot::Shared => None,
        }
    }

    /// Number of routes loaded (including id-only ones).
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// All routes in file order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Each distinct `zhttp/` and `zhttpreq/` target once (first occurrence), in file order: the
    /// sockets the ZMQ side has to bind.
    pub fn zhttp_targets(&self) -> Vec<&Target> {
        let mut out: Vec<&Target> = Vec::new();
        for t in self.routes.iter().flat_map(|r| r.targets.iter()) {
            let is_zhttp = matches!(t.kind, TargetKind::Zhttp(_) | TargetKind::ZhttpReq(_));
            if is_zhttp && !out.iter().any(|o| o.kind == t.kind) {
                out.push(t);
            }
        }
        out
    }

    /// The exact-host rule list for `host`, compared ASCII-case-insensitively without allocating
    /// for real host names.
    fn domain_rules(&self, host: &str) -> Option<&Vec<usize>> {
        if self.by_domain.is_empty() {
            return None;
        }
        if !host.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.by_domain.get(host);
        }
        let mut buf = [0u8; HOST_STACK_LEN_MAX];
        match buf.get_mut(..host.len()) {
            Some(dst) => {
                dst.copy_from_slice(host.as_bytes());
                dst.make_ascii_lowercase();
                // ASCII lowercasing keeps valid UTF-8 valid.
                let lower = std::str::from_utf8(dst).ok()?;
                self.by_domain.get(lower)
            }
            None => self.by_domain.get(&host.to_ascii_lowercase()),
        }
    }
}

/// What makes two lines duplicates: (lowercased domain or `None` for `*`, proto, ssl, path_beg).
type ConditionKey = (Option<String>, Option<Proto>, Option<bool>, Option<String>);

/// Accumulates a table line by line.
#[derive(Default)]
struct Loader {
    table: RouteTable,
    warnings: Vec<String>,
    /// Conditions already loaded, so a duplicate is found without scanning the domain's list.
    conditions: HashSet<ConditionKey>,
}

impl Loader {
    fn add_line(&mut self, line: &str, source: &str, line_no: usize) -> Result<(), RoutesError> {
        let err = |reason: String| RoutesError {
            source: source.to_string(),
            line: line_no,
            reason,
        };
        // A CR, NUL or other control character could end up inside a header we send.
        if let Some(c) = line.chars().find(|c| c.is_control() && *c != '\t') {
            return Err(err(format!("control character U+{:04X} in line", c as u32)));
        }
        let tokens = tokenize_line(line).map_err(err)?;
        if tokens.is_empty() {
            return Ok(());
        }
        let warnings = &mut self.warnings;
        let mut warn = |reason: String| warnings.push(format!("{source}:{line_no}: {reason}"));
        if tokens.len() < 2 {
            warn("must specify condition and at least one target; line skipped".to_string());
            return Ok(());
        }
        let route = route_from_tokens(&tokens, line_no, &mut warn).map_err(err)?;
        if route.id_only && !route.explicit_id {
            warn("condition has no domain or id; line skipped".to_string());
            return Ok(());
        }
        if self.table.routes.len() >= ROUTES_MAX {
            return Err(err(format!("more than {ROUTES_MAX} routes")));
        }
        if !route.id_only {
            let key = (
                route.domain.clone(),
                route.proto,
                route.ssl,
                route.path_beg.clone(),
            );
            if !self.conditions.insert(key) {
                warn("skipping duplicate condition".to_string());
                return Ok(());
            }
        }
        insert(&mut self.table, route, &mut warn);
        Ok(())
    }
}

/// Add a route whose condition is not a duplicate: to its domain list (unless id-only) and to
/// the id index.
fn insert(t: &mut RouteTable, route: Route, warn: &mut dyn FnMut(String)) {
    let index = t.routes.len();
    if !route.id_only {
        match &route.domain {
            Some(d) => t.by_domain.entry(d.clone()).or_default().push(index),
            None => t.any_domain.push(index),
        }
    }
    if route.explicit_id {
        match t.by_id.get_mut(&route.id) {
            Some(slot) => {
                *slot = IdSlot::Shared;
                warn(format!(
                    "route id '{}' used more than once; lookup by this id disabled",
                    shown(&route.id)
                ));
            }
            None => {
                t.by_id.insert(route.id.clone(), IdSlot::One(index));
            }
        }
    }
    t.routes.push(route);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (RouteTable, Vec<String>) {
        match RouteTable::parse(text, "routes") {
            Ok(t) => t,
            Err(e) => panic!("rejected: {e}"),
        }
    }

    fn query<'a>(host: &'a str, path: &'a str) -> RouteQuery<'a> {
        RouteQuery {
            host,
            path,
            ws: false,
            tls: false,
            route_id: None,
        }
    }

    /// The port of the chosen route's first target: the tests give each line its own port.
    fn pick(t: &RouteTable, q: RouteQuery) -> Option<u16> {
        let r = t.select(&q)?;
        match r.targets.first().map(|t| &t.kind) {
            Some(TargetKind::Http { port, .. }) => Some(*port),
            other => panic!("unexpected target {other:?}"),
        }
    }

    #[test]
    fn host_rules_do_not_fall_back_to_any() {
        let (t, w) = load("* h:1\nexample.com,path_beg=/api h:2\n");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(pick(&t, query("example.com", "/api/x")), Some(2));
        assert_eq!(pick(&t, query("EXAMPLE.Com", "/api")), Some(2));
        // The host has rules, none match: no fallback to `*`.
        assert_eq!(pick(&t, query("example.com", "/other")), None);
        assert_eq!(pick(&t, query("other.com", "/api")), Some(1));
        // Exact match only: no suffix or wildcard matching.
        assert_eq!(pick(&t, query("www.example.com", "/api")), Some(1));
        assert_eq!(pick(&t, query("", "/")), Some(1));
    }

    #[test]
    fn no_any_rules_means_no_match() {
        let (t, _) = load("example.com h:1\n");
        assert_eq!(pick(&t, query("example.com", "/")), Some(1));
        assert_eq!(pick(&t, query("example.org", "/")), None);
        let empty = RouteTable::default();
        assert!(empty.is_empty());
        assert_eq!(pick(&empty, query("example.com", "/")), None);
    }

    #[test]
    fn specificity_order() {
        let text = "\
*,path_beg=/long/path h:1
*,proto=ws h:2
*,path_beg=/a h:3
*,path_beg=/a/b h:4
*,path_beg=/x h:5
*,path_beg=/x,ssl=yes h:6
*,path_beg=/yy h:7
*,path_beg=/y,ssl=yes h:8
*,path_beg=/z/zz,ssl=no h:9
*,path_beg=/z h:10
";
        let (t, w) = load(text);
        assert!(w.is_empty(), "{w:?}");
        let ws = |path| RouteQuery {
            ws: true,
            ..query("h", path)
        };
        let tls = |path| RouteQuery {
            tls: true,
            ..query("h", path)
        };
        let cases = [
            // proto beats a longer path_beg.
            (ws("/long/path/x"), Some(2)),
            (query("h", "/long/path/x"), Some(1)),
            // Longer path_beg wins, whichever comes first in the file.
            (query("h", "/a/b/c"), Some(4)),
            (query("h", "/a/c"), Some(3)),
            (query("h", "/z/zz"), Some(9)),
            (tls("/z/zz"), Some(10)),
            // Same path_beg: the rule with ssl wins when it matches.
            (tls("/x"), Some(6)),
            (query("h", "/x"), Some(5)),
            // ssl does not outrank a longer path_beg.
            (tls("/yy"), Some(7)),
            (tls("/y"), Some(8)),
            (query("h", "/y"), None),
            // Plain prefix compare, not segment aware; encoded paths compared as given.
            (query("h", "/ab"), Some(3)),
            (query("h", "/%61"), None),
            (ws("/anything"), Some(2)),
        ];
        for (q, want) in cases {
            assert_eq!(pick(&t, q), want, "{q:?}");
        }
    }

    #[test]
    fn proto_and_ssl_conditions() {
        let (t, _) = load("*,proto=http h:1\n*,proto=ws,ssl=yes h:2\n");
        let q = |ws, tls| RouteQuery {
            ws,
            tls,
            ..query("h", "/")
        };
        assert_eq!(pick(&t, q(false, false)), Some(1));
        assert_eq!(pick(&t, q(false, true)), Some(1));
        assert_eq!(pick(&t, q(true, true)), Some(2));
        assert_eq!(pick(&t, q(true, false)), None);
    }

    #[test]
    fn duplicate_condition_skipped_first_wins() {
        let text = "\
example.com,path_beg=/a h:1
EXAMPLE.com,path_beg=/a,id=dup h:2
example.com,path_beg=/a,proto=http h:3
* h:4
*,id=other h:5
";
        let (t, w) = load(text);
        assert_eq!(
            w,
            vec![
                "routes:2: skipping duplicate condition".to_string(),
                "routes:5: skipping duplicate condition".to_string(),
            ]
        );
        assert_eq!(t.len(), 3);
        assert_eq!(pick(&t, query("example.com", "/a")), Some(3));
        let ws = RouteQuery {
            ws: true,
            ..query("example.com", "/a")
        };
        assert_eq!(pick(&t, ws), Some(1));
        assert_eq!(pick(&t, query("x", "/")), Some(4));
        // A skipped line's id is not registered.
        assert!(t.by_id("dup").is_none() && t.by_id("other").is_none());
    }

    #[test]
    fn lookup_by_id() {
        let text = "\
example.com,id=foo,path_beg=/api h:1
* h:2
id=bar h:3
,id=baz,proto=ws h:4
example.com,path_beg=/gen h:5
";
        let (t, w) = load(text);
        assert!(w.is_empty(), "{w:?}");
        let by_id = |id, path| RouteQuery {
            route_id: Some(id),
            ..query("unrelated.host", path)
        };
        assert_eq!(pick(&t, by_id("foo", "/api/x")), Some(1));
        // The id's route must also match the path; no fallback to normal lookup.
        assert_eq!(pick(&t, by_id("foo", "/x")), None);
        assert_eq!(pick(&t, by_id("missing", "/")), None);
        // Generated ids are not looked up.
        assert_eq!(pick(&t, by_id("example.com,*,*,/gen", "/gen")), None);
        assert_eq!(pick(&t, by_id("*,*,*,*", "/")), None);
        // Id-only routes: reachable by id, never by host.
        assert_eq!(pick(&t, by_id("bar", "/")), Some(3));
        assert_eq!(pick(&t, by_id("baz", "/")), Some(4));
        assert_eq!(pick(&t, query("anything", "/")), Some(2));
        let (only, _) = load("id=bar h:3\n");
        assert_eq!(pick(&only, query("anything", "/")), None);
        assert_eq!(only.len(), 1);
        assert!(only.routes()[0].id_only);
    }

    #[test]
    fn duplicate_id_disables_id_lookup() {
        let (t, w) = load("a.com,id=x h:1\nb.com,id=x h:2\n");
        assert_eq!(
            w,
            vec![
                "routes:2: route id 'x' used more than once; lookup by this id disabled"
                    .to_string()
            ]
        );
        let q = RouteQuery {
            route_id: Some("x"),
            ..query("a.com", "/")
        };
        assert_eq!(pick(&t, q), None);
        assert!(t.by_id("x").is_none());
        // Both stay reachable by host.
        assert_eq!(pick(&t, query("a.com", "/")), Some(1));
        assert_eq!(pick(&t, query("b.com", "/")), Some(2));
    }

    #[test]
    fn skipped_lines_warn() {
        let text = "\
# comment

   \t
example.com
id=foo
,debug h:1
\"\" h:1
* h:9
";
        let (t, w) = load(text);
        assert_eq!(
            w,
            vec![
                "routes:4: must specify condition and at least one target; line skipped"
                    .to_string(),
                "routes:5: must specify condition and at least one target; line skipped"
                    .to_string(),
                "routes:6: condition has no domain or id; line skipped".to_string(),
                "routes:7: condition has no domain or id; line skipped".to_string(),
            ]
        );
        assert_eq!(t.len(), 1);
        assert_eq!(t.routes()[0].line, 8);
    }

    #[test]
    fn warnings_carry_source_and_line() {
        let (t, w) = load("\n*,bogus h:1,b:2\n");
        assert_eq!(t.len(), 1);
        assert_eq!(
            w,
            vec![
                "routes:2: unknown route prop 'bogus' ignored".to_string(),
                "routes:2: unknown option 'b:2' on target 'h:1' ignored".to_string(),
            ]
        );
    }

    #[test]
    fn errors_carry_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("# c\n\n* h:1\n* \"h:2\n", 4, "unterminated quote"),
            ("* h:1\n*,path_beg=/a \"x\\n\"\n", 2, "bad escape"),
            ("* h:1,\n", 1, "expecting prop"),
            ("a.com,=x h:1\n", 1, "empty prop name"),
            ("\n\n\na.com h\n", 4, "bad format"),
            ("a.com h:99999\n", 1, "invalid port"),
            ("a.com,path_rem=x h:1\n", 1, "path_rem must be a number"),
            ("* zhttp/x,ipc_file_mode=9\n", 1, "ipc_file_mode"),
            ("* h:1\r\n* h:2,\r\n", 2, "expecting prop"),
            ("*,header=\"X:a\rb\" h:1\n", 1, "control character U+000D"),
            ("* h:1\x00\n", 1, "control character U+0000"),
        ];
        for (text, line, reason) in cases {
            match RouteTable::parse(text, "/etc/routes") {
                Err(e) => {
                    assert_eq!(
                        (e.source.as_str(), e.line),
                        ("/etc/routes", *line),
                        "{text:?}"
                    );
                    assert!(e.reason.contains(reason), "{text:?}: {e}");
                    assert_eq!(e.to_string(), format!("/etc/routes:{line}: {}", e.reason));
                }
                Ok(t) => panic!("{text:?} accepted: {t:?}"),
            }
        }
    }

    #[test]
    fn file_text_details() {
        // BOM, CRLF, no trailing newline.
        let (t, w) = load("\u{feff}* h:1\r\na.com h:2");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(t.len(), 2);
        assert_eq!(t.routes()[1].line, 2);
        let big = "#".repeat(ROUTES_FILE_LEN_MAX + 1);
        let e = RouteTable::parse(&big, "f").expect_err("too big");
        assert_eq!(e.line, 0);
    }

    #[test]
    fn route_count_limit() {
        let lines: String = (0..ROUTES_MAX)
            .map(|i| format!("*,path_beg=/{i} h:1\n"))
            .collect();
        let (t, w) = load(&lines);
        assert_eq!((t.len(), w.len()), (ROUTES_MAX, 0));
        assert_eq!(pick(&t, query("x", "/99999/a")), Some(1));
        let e = RouteTable::parse(&format!("{lines}* h:1\n"), "f").expect_err("one too many");
        assert_eq!(e.line, ROUTES_MAX + 1);
    }

    #[test]
    fn command_line_routes() {
        let lines = vec![
            "* h:1".to_string(),
            "a.com h:2".to_string(),
            "* h:3".to_string(),
        ];
        let (t, w) = RouteTable::from_lines(&lines).expect("accepted");
        assert_eq!(t.len(), 2);
        assert_eq!(
            w,
            vec!["--route #3:1: skipping duplicate condition".to_string()]
        );
        assert_eq!(pick(&t, query("a.com", "/")), Some(2));
        assert_eq!(pick(&t, query("b.com", "/")), Some(1));

        let bad = vec!["* h:1".to_string(), "* h:x".to_string()];
        let e = RouteTable::from_lines(&bad).expect_err("bad port");
        assert_eq!((e.source.as_str(), e.line), ("--route #2", 1));
        assert!(
            e.to_string().starts_with("--route #2:1: target 'h:x'"),
            "{e}"
        );

        let (empty, w) = RouteTable::from_lines(&[]).expect("empty is fine");
        assert!(empty.is_empty() && w.is_empty());
    }

    #[test]
    fn long_mixed_case_host() {
        let host = format!("{}.example", "a".repeat(300));
        let (t, _) = load(&format!("{host} h:1\n"));
        let upper = host.to_ascii_uppercase();
        assert_eq!(pick(&t, query(&upper, "/")), Some(1));
        assert_eq!(pick(&t, query("Ä.example", "/")), None);
        let (t, _) = load("ä.example h:1\n");
        assert_eq!(pick(&t, query("ä.EXAMPLE", "/")), Some(1));
    }

    #[test]
    fn zhttp_targets_listed_once() {
        let text = "\
a.com zhttp/tcp://127.0.0.1:9000 h:1
b.com zhttpreq/ipc://w zhttp/tcp://127.0.0.1:9000,ipc_file_mode=600 test
";
        let (t, _) = load(text);
        let kinds: Vec<_> = t.zhttp_targets().iter().map(|t| t.kind.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                TargetKind::Zhttp("tcp://127.0.0.1:9000".to_string()),
                TargetKind::ZhttpReq("ipc://w".to_string()),
            ]
        );
    }

    #[test]
    fn failover_targets_in_order() {
        let (t, _) = load("* a:1 b:2,ssl test\n");
        let r = t.select(&query("x", "/")).expect("match");
        assert_eq!(r.targets.len(), 3);
        assert!(r.targets[1].ssl);
        assert_eq!(r.targets[2].kind, TargetKind::Test);
    }

    /// xorshift64: deterministic pseudo-random input without a dependency.
    use crate::test_rng::XorShift64 as Rng;

    const PIECES: &[&str] = &[
        " ",
        " ",
        "\t",
        ",",
        ",",
        "=",
        "\"",
        "\\",
        "#",
        ":",
        "[",
        "]",
        "/",
        "*",
        "é",
        "a",
        "x.com",
        "X.COM",
        "1",
        "80",
        "65535",
        "99999",
        "test",
        "zhttp/",
        "zhttpreq/",
        "ipc://s",
        "proto=",
        "http",
        "ws",
        "ssl",
        "=yes",
        "=no",
        "path_beg=/",
        "/a",
        "id=",
        "header=X:",
        "path_rem=",
        "replace_beg=/",
        "as_host=",
        "host=",
        "sub=",
        "ipc_file_mode=",
        "777",
        "log_level=",
        "over_http",
        "debug",
        "\\\\",
        "\\\"",
        "\r",
        "\0",
        "-",
    ];

    fn random_line(rng: &mut Rng) -> String {
        let n = rng.below(24);
        let mut s = String::new();
        for _ in 0..n {
            s.push_str(PIECES[rng.below(PIECES.len())]);
        }
        s
    }

    const CONDITIONS: &[&str] = &["*", "x.com", "X.COM", "", "\"a b\"", "id=i1"];
    const CONDITION_PROPS: &[&str] = &[
        ",proto=http",
        ",proto=ws",
        ",ssl=yes",
        ",ssl=no",
        ",path_beg=/a",
        ",path_beg=/",
        ",path_beg=/a/b",
        ",id=i1",
        ",id=i2",
        ",path_rem=2",
        ",replace_beg=/r",
        ",replace_beg=",
        ",header=X:v",
        ",debug",
        ",bogus",
    ];
    const TARGETS: &[&str] = &[
        " h:1",
        " [::1]:2",
        " test",
        " zhttp/ipc://z",
        " h:1,ssl",
        " h:1,sub=c",
        " h:1,b:2",
    ];

    /// A line that is mostly well formed, so that tables get loaded and queried.
    fn structured_line(rng: &mut Rng) -> String {
        let mut s = CONDITIONS[rng.below(CONDITIONS.len())].to_string();
        for _ in 0..rng.below(5) {
            s.push_str(CONDITION_PROPS[rng.below(CONDITION_PROPS.len())]);
        }
        for _ in 0..rng.below(4) {
            s.push_str(TARGETS[rng.below(TARGETS.len())]);
        }
        if rng.below(8) == 0 {
            s.push_str(PIECES[rng.below(PIECES.len())]);
        }
        s
    }

    /// Selection by a linear scan over all routes, as a reference for the indexed lookup.
    fn naive_select<'t>(t: &'t RouteTable, q: &RouteQuery) -> Option<&'t Route> {
        let host = q.host.to_ascii_lowercase();
        let for_host = |r: &&Route| r.domain.as_deref() == Some(host.as_str());
        let host_has_rules = t.routes().iter().any(|r| for_host(&r));
        let mut best: Option<&Route> = None;
        for r in t.routes() {
            let in_list = if host_has_rules {
                for_host(&r)
            } else {
                r.domain.is_none() && !r.id_only
            };
            if !in_list || !r.condition_matches(q.path, q.ws, q.tls) {
                continue;
            }
            if best.is_none_or(|b| r.specificity() > b.specificity()) {
                best = Some(r);
            }
        }
        best
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut accepted_lines = 0;
        let mut loaded_tables = 0;
        let mut selected = 0;
        for _ in 0..4000 {
            let line = random_line(&mut rng);
            if let Ok(tokens) = tokenize_line(&line) {
                accepted_lines += 1;
                assert!(tokens
                    .iter()
                    .all(|t| t.props.iter().all(|(n, _)| !n.is_empty())));
            }
        }
        for _ in 0..1500 {
            let structured = rng.below(4) != 0;
            let lines: Vec<String> = (0..rng.below(8))
                .map(|_| {
                    if structured {
                        structured_line(&mut rng)
                    } else {
                        random_line(&mut rng)
                    }
                })
                .collect();
            let text = lines.join("\n");
            if let Ok((t, _)) = RouteTable::parse(&text, "fuzz") {
                if !t.is_empty() {
                    loaded_tables += 1;
                }
                for r in t.routes() {
                    assert!(!r.targets.is_empty());
                    for target in ["/", "", "*", "/a/b?c", "http://h/a?x", "/é"] {
                        let out = r.rewrite_target(target);
                        let rewrites = r.path_rem > 0 || r.replace_beg.is_some();
                        if rewrites && target.starts_with('/') {
                            assert!(out.starts_with('/'), "{target:?} -> {out:?}");
                        }
                    }
                }
                for _ in 0..4 {
                    let host = ["x.com", "X.cOm", "y.com", "a b", ""][rng.below(5)];
                    let path = ["/", "/a", "/a/b/c", "/r", "", "*"][rng.below(6)];
                    let id = ["i1", "i2", "x"][rng.below(3)];
                    let q = RouteQuery {
                        host,
                        path,
                        ws: rng.below(2) == 0,
                        tls: rng.below(2) == 0,
                        route_id: Some(id).filter(|_| rng.below(3) == 0),
                    };
                    let got = t.select(&q);
                    if q.route_id.is_none() {
                        let want = naive_select(&t, &q);
                        assert_eq!(got.map(|r| r.line), want.map(|r| r.line), "{q:?}\n{text}");
                    }
                    if let Some(r) = got {
                        selected += 1;
                        assert!(r.path_matches(q.path));
                        if q.route_id.is_none() {
                            assert!(!r.id_only);
                        }
                    }
                }
            }
            let _ = RouteTable::from_lines(&lines);
        }
        // The generator must reach both outcomes for the test to mean anything.
        assert!(
            accepted_lines > 500 && accepted_lines < 4000,
            "{accepted_lines}"
        );
        assert!(loaded_tables > 300, "{loaded_tables}");
        assert!(selected > 300, "{selected}");
    }
}
