//! Routes file loading and selection: every loaded route must be reachable by its own condition.
#![no_main]

use holdfast::routes::{tokenize_line, Proto, Route, RouteQuery, RouteTable};
use libfuzzer_sys::fuzz_target;

/// Selection rank per spec 3.3, recomputed from public fields.
fn rank(r: &Route) -> (bool, usize, bool) {
    let path_len = r.path_beg.as_ref().map_or(0, String::len);
    (r.proto.is_some(), path_len, r.ssl.is_some())
}

fn query<'a>(host: &'a str, path: &'a str, ws: bool, tls: bool, id: Option<&'a str>) -> RouteQuery<'a> {
    RouteQuery { host, path, ws, tls, route_id: id }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let body = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let lines: Vec<_> = body.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let tokenized: Vec<_> = lines.iter().map(|l| tokenize_line(l)).collect();
    let Ok((table, warnings)) = RouteTable::parse(&text, "fuzz") else { return };
    assert!(tokenized.iter().all(Result::is_ok), "a loaded file tokenizes line by line");
    assert!(table.len() <= lines.len() && warnings.iter().all(|w| !w.contains('\n')));
    for r in table.routes().iter().filter(|r| !r.id_only) {
        // No control character reaches a domain, so "\0" never hits a domain list.
        let host = r.domain.as_deref().map_or("\0".to_string(), str::to_ascii_uppercase);
        let path = r.path_beg.as_deref().unwrap_or("/");
        let q = query(&host, path, r.proto == Some(Proto::Ws), r.ssl == Some(true), None);
        let best = table.select(&q).expect("a route's own condition selects some route");
        assert!(best.domain == r.domain && best.path_matches(path) && rank(best) >= rank(r));
    }
    for r in table.routes().iter().filter(|r| r.explicit_id) {
        let Some(by_id) = table.by_id(&r.id) else { continue };
        let q = query("x", by_id.path_beg.as_deref().unwrap_or("/"), true, false, Some(&r.id));
        assert!(std::ptr::eq(table.select(&q).expect("id lookup"), by_id));
    }
});
