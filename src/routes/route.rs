//! One route: its condition, options and targets (spec 3.2, 3.4), built from a tokenized line.
//!
//! Props may repeat: `header=` (route) and `sub=` (target) accumulate, every other prop keeps its
//! last value. Flags are set by their presence, whatever value follows them (Pushpin does the
//! same; a value on a flag draws a warning).

use super::tokenizer::Token;

/// Request protocol a route can be limited to (`proto=http|ws`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Http,
    Ws,
}

/// Where a target sends requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetKind {
    /// `host:port` or `[v6]:port`: an HTTP(S)/WS(S) backend. An IPv6 host is kept without brackets.
    Http { host: String, port: u16 },
    /// `test`: the built-in test handler.
    Test,
    /// `zhttp/<spec>`: ZHTTP stream-mode backend; holds `<spec>`.
    Zhttp(String),
    /// `zhttpreq/<spec>`: ZHTTP request-mode backend; holds `<spec>`.
    ZhttpReq(String),
}

/// One backend of a route, with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: TargetKind,
    pub ssl: bool,
    pub untrusted: bool,
    pub trust_connect_host: bool,
    pub insecure: bool,
    /// `host=h[:p]`: overrides the URI host and Host header sent to this target.
    pub host: Option<String>,
    /// `sub=chan` (repeatable): implicit subscriptions; empty values are dropped.
    pub subs: Vec<String>,
    pub over_http: bool,
    pub one_event: bool,
    /// `ipc_file_mode=` parsed as octal.
    pub ipc_file_mode: Option<u32>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    /// Option names this version does not know, kept so the caller can report them.
    pub unknown_options: Vec<String>,
}

impl Target {
    fn new(kind: TargetKind) -> Target {
        Target {
            kind,
            ssl: false,
            untrusted: false,
            trust_connect_host: false,
            insecure: false,
            host: None,
            subs: Vec::new(),
            over_http: false,
            one_event: false,
            ipc_file_mode: None,
            client_cert: None,
            client_key: None,
            unknown_options: Vec::new(),
        }
    }
}

/// One line of the routes file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Line number in its source (1 for a `--route` entry).
    pub line: usize,
    /// The explicit id, or one generated from the condition:
    /// `"<domain or *>,<http|ws|*>,<ssl|no-ssl|*>,<path_beg or *>"`. The ssl part reads the way it
    /// is meant (`ssl=yes` gives `ssl`); Pushpin writes these two strings the other way round.
    pub id: String,
    pub explicit_id: bool,
    /// The explicit id again, shared: stats events name a connection's route by it (spec 1.4 reports only
    /// routes with an explicit id), and sessions keep it without copying the text.
    pub stats_id: Option<std::sync::Arc<str>>,
    /// `None` for `*` (any host) and for id-only routes; otherwise the host, ASCII-lowercased.
    pub domain: Option<String>,
    /// The condition had no domain, only an id: reachable only through lookup by id.
    pub id_only: bool,
    pub proto: Option<Proto>,
    pub ssl: Option<bool>,
    pub path_beg: Option<String>,
    /// Bytes dropped from the front of the path (`path_rem=N`, or `path_beg`'s length under
    /// `replace_beg`).
    pub path_rem: usize,
    pub replace_beg: Option<String>,
    pub as_host: Option<String>,
    /// `header=Name:value` in file order; an empty value means "remove the header".
    pub headers: Vec<(String, String)>,
    pub no_grip: bool,
    pub debug: bool,
    pub aco: bool,
    pub orig_headers: bool,
    pub session: bool,
    pub sig_iss: Option<String>,
    /// Raw key text (`base64:`/`file:` forms are left to the caller, which knows the file's dir).
    pub sig_key: Option<String>,
    pub prefix: Option<String>,
    pub log_level: Option<u8>,
    /// `basic` or `extended` when given; see [`Route::jsonp_is_basic`] for the default.
    pub jsonp_mode: Option<String>,
    pub jsonp_cb: Option<String>,
    pub jsonp_body: Option<String>,
    pub jsonp_defcb: Option<String>,
    pub jsonp_defmethod: Option<String>,
    pub sockjs: Option<String>,
    pub sockjs_as_path: Option<String>,
    pub targets: Vec<Target>,
    /// Condition prop names this version does not know, kept so the caller can report them.
    pub unknown_props: Vec<String>,
}

impl Route {
    fn new(line: usize) -> Route {
        Route {
            line,
            id: String::new(),
            explicit_id: false,
            stats_id: None,
            domain: None,
            id_only: false,
            proto: None,
            ssl: None,
            path_beg: None,
            path_rem: 0,
            replace_beg: None,
            as_host: None,
            headers: Vec::new(),
            no_grip: false,
            debug: false,
            aco: false,
            orig_headers: false,
            session: false,
            sig_iss: None,
            sig_key: None,
            prefix: None,
            log_level: None,
            jsonp_mode: None,
            jsonp_cb: None,
            jsonp_body: None,
            jsonp_defcb: None,
            jsonp_defmethod: None,
            sockjs: None,
            sockjs_as_path: None,
            targets: Vec::new(),
            unknown_props: Vec::new(),
        }
    }

    /// JSON-P mode: extended unless `jsonp_mode=basic`.
    pub fn jsonp_is_basic(&self) -> bool {
        self.jsonp_mode.as_deref() == Some("basic")
    }

    /// `jsonp_defmethod`, or the mode's default (`POST` for basic, `GET` for extended).
    pub fn jsonp_default_method(&self) -> &str {
        match &self.jsonp_defmethod {
            Some(m) => m,
            None if self.jsonp_is_basic() => "POST",
            None => "GET",
        }
    }

    /// Whether the encoded request path starts with `path_beg` (always true without one).
    pub fn path_matches(&self, path: &str) -> bool {
        match &self.path_beg {
            Some(beg) => path.starts_with(beg.as_str()),
            None => true,
        }
    }

    /// Whether the condition accepts a request (domain aside).
    pub(super) fn condition_matches(&self, path: &str, ws: bool, tls: bool) -> bool {
        let proto_ok = match self.proto {
            None => true,
            Some(Proto::Http) => !ws,
            Some(Proto::Ws) => ws,
        };
        proto_ok && self.ssl.is_none_or(|s| s == tls) && self.path_matches(path)
    }

    /// Selection rank per spec 3.3, compared lexicographically: a rule with `proto`, then the
    /// longer `path_beg`, then a rule with `ssl`. (Pushpin's comparison lets an `ssl` rule with a
    /// shorter `path_beg` replace a longer one found earlier; this follows the documented order.)
    pub(super) fn specificity(&self) -> (bool, usize, bool) {
        (
            self.proto.is_some(),
            self.path_beg.as_ref().map_or(0, String::len),
            self.ssl.is_some(),
        )
    }

    /// Apply `path_rem` / `replace_beg` to a request target and return the new target.
    ///
    /// Works on the path of an origin-form (`/p?q`) or absolute-form (`http://h/p?q`) target and
    /// keeps the query. The path never comes back empty (`/` is used) and always starts with `/`.
    /// `*` and authority-form targets have no path and come back unchanged.
    pub fn rewrite_target(&self, target: &str) -> String {
        if self.path_rem == 0 && self.replace_beg.is_none() {
            return target.to_string();
        }
        let Some((head, path, query)) = split_target(target) else {
            return target.to_string();
        };

        let mut cut = self.path_rem.min(path.len());
        // path_rem counts bytes; never split a character of a (non-conforming) raw UTF-8 path.
        while !path.is_char_boundary(cut) {
            cut += 1;
        }
        let rest = path.get(cut..).unwrap_or("");
        let prepend = self.replace_beg.as_deref().unwrap_or("");

        let len = [prepend.len(), rest.len(), 1, query.len()]
            .iter()
            .fold(head.len(), |acc, n| acc.saturating_add(*n));
        let mut out = String::with_capacity(len);
        out.push_str(head);
        let has_slash = if prepend.is_empty() {
            rest.starts_with('/')
        } else {
            prepend.starts_with('/')
        };
        if !has_slash {
            out.push('/');
        }
        out.push_str(prepend);
        out.push_str(rest);
        out.push_str(query);
        out
    }
}

/// Split a request target into (scheme+authority, path, `?query`). `None` when it has no path to
/// rewrite (`*`, authority-form).
fn split_target(target: &str) -> Option<(&str, &str, &str)> {
    let head_len = if target.is_empty() || target.starts_with('/') {
        0
    } else {
        let scheme_end = target.find("://")?;
        let scheme = target.get(..scheme_end)?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return None;
        }
        let auth_start = scheme_end + 3;
        let after = target.get(auth_start..)?;
        auth_start + after.find(['/', '?']).unwrap_or(after.len())
    };
    let head = target.get(..head_len)?;
    let rest = target.get(head_len..)?;
    let qpos = rest.find('?').unwrap_or(rest.len());
    Some((head, rest.get(..qpos)?, rest.get(qpos..)?))
}

/// Build a route from a tokenized line with at least two tokens. `Err` holds a one-line reason;
/// `warn` receives reasons for things that are kept but look wrong.
pub(super) fn route_from_tokens(
    tokens: &[Token],
    line: usize,
    warn: &mut dyn FnMut(String),
) -> Result<Route, String> {
    let Some((cond, targets)) = tokens.split_first() else {
        return Err("empty line".to_string());
    };
    let mut r = Route::new(line);
    let mut explicit_id: Option<&str> = None;
    let mut path_rem: Option<usize> = None;

    for (name, value) in &cond.props {
        let value = value.as_str();
        match name.as_str() {
            "proto" => {
                r.proto = Some(match value {
                    "http" => Proto::Http,
                    "ws" => Proto::Ws,
                    _ => {
                        return Err(format!(
                            "proto must be 'http' or 'ws', not '{}'",
                            shown(value)
                        ))
                    }
                })
            }
            "ssl" => {
                r.ssl = Some(match value {
                    "yes" => true,
                    "no" => false,
                    _ => return Err(format!("ssl must be 'yes' or 'no', not '{}'", shown(value))),
                })
            }
            "id" => explicit_id = Some(value).filter(|v| !v.is_empty()),
            "path_beg" => {
                if value.is_empty() {
                    return Err("path_beg cannot be empty".to_string());
                }
                r.path_beg = Some(value.to_string());
            }
            "sig_iss" => r.sig_iss = Some(value.to_string()),
            "sig_key" => r.sig_key = Some(value.to_string()),
            "prefix" => r.prefix = Some(value.to_string()),
            "as_host" => r.as_host = host_value("as_host", value)?,
            "path_rem" => {
                path_rem =
                    Some(parse_decimal(value).ok_or_else(|| {
                        format!("path_rem must be a number, not '{}'", shown(value))
                    })?)
            }
            "replace_beg" => r.replace_beg = Some(value.to_string()),
            "jsonp_mode" => {
                if value != "basic" && value != "extended" {
                    return Err(format!(
                        "jsonp_mode must be 'basic' or 'extended', not '{}'",
                        shown(value)
                    ));
                }
                r.jsonp_mode = Some(value.to_string());
            }
            "jsonp_cb" => r.jsonp_cb = Some(value.to_string()),
            "jsonp_body" => r.jsonp_body = Some(value.to_string()),
            "jsonp_defcb" => r.jsonp_defcb = Some(value.to_string()),
            "jsonp_defmethod" => r.jsonp_defmethod = Some(value.to_string()),
            "sockjs" => r.sockjs = Some(value.to_string()),
            "sockjs_as_path" => r.sockjs_as_path = Some(value.to_string()),
            "header" => r.headers.push(parse_header(value)?),
            "log_level" => {
                r.log_level = Some(parse_decimal(value).ok_or_else(|| {
                    format!("log_level must be a number 0-255, not '{}'", shown(value))
                })?)
            }
            "orig_headers" => r.orig_headers = flag(name, value, warn),
            "debug" => r.debug = flag(name, value, warn),
            "aco" => r.aco = flag(name, value, warn),
            "session" => r.session = flag(name, value, warn),
            "no_grip" => r.no_grip = flag(name, value, warn),
            _ => {
                warn(format!("unknown route prop '{}' ignored", shown(name)));
                r.unknown_props.push(name.clone());
            }
        }
    }

    // replace_beg wins over path_rem whatever their order, as in Pushpin.
    r.path_rem = match (&r.replace_beg, &r.path_beg) {
        (Some(_), beg) => beg.as_ref().map_or(0, String::len),
        (None, _) => path_rem.unwrap_or(0),
    };

    match cond.value.as_str() {
        "" => r.id_only = true,
        "*" => {}
        d => r.domain = Some(d.to_ascii_lowercase()),
    }
    match explicit_id {
        Some(id) => {
            r.id = id.to_string();
            r.explicit_id = true;
            r.stats_id = Some(std::sync::Arc::from(id));
        }
        None => r.id = generated_id(&r),
    }

    for t in targets {
        r.targets.push(target_from_token(t, warn)?);
    }
    Ok(r)
}

fn generated_id(r: &Route) -> String {
    let domain = r.domain.as_deref().unwrap_or("*");
    let proto = match r.proto {
        Some(Proto::Http) => "http",
        Some(Proto::Ws) => "ws",
        None => "*",
    };
    let ssl = match r.ssl {
        Some(true) => "ssl",
        Some(false) => "no-ssl",
        None => "*",
    };
    let path = r.path_beg.as_deref().unwrap_or("*");
    format!("{domain},{proto},{ssl},{path}")
}

fn target_from_token(t: &Token, warn: &mut dyn FnMut(String)) -> Result<Target, String> {
    let v = t.value.as_str();
    let kind = if v == "test" {
        TargetKind::Test
    } else if let Some(spec) = v.strip_prefix("zhttpreq/") {
        TargetKind::ZhttpReq(zhttp_spec(v, spec)?)
    } else if let Some(spec) = v.strip_prefix("zhttp/") {
        TargetKind::Zhttp(zhttp_spec(v, spec)?)
    } else {
        let (host, port) = parse_host_port(v)?;
        TargetKind::Http { host, port }
    };
    let mut target = Target::new(kind);

    for (name, value) in &t.props {
        let value = value.as_str();
        match name.as_str() {
            "ssl" => target.ssl = flag(name, value, warn),
            "untrusted" => target.untrusted = flag(name, value, warn),
            "trust_connect_host" => target.trust_connect_host = flag(name, value, warn),
            "insecure" => target.insecure = flag(name, value, warn),
            "over_http" => target.over_http = flag(name, value, warn),
            "one_event" => target.one_event = flag(name, value, warn),
            "host" => target.host = host_value("host", value)?,
            "sub" => {
                if !value.is_empty() {
                    target.subs.push(value.to_string());
                }
            }
            "ipc_file_mode" => {
                let mode = parse_octal_mode(value).ok_or_else(|| {
                    format!(
                        "ipc_file_mode must be an octal mode up to 7777, not '{}'",
                        shown(value)
                    )
                })?;
                target.ipc_file_mode = Some(mode);
            }
            "client_cert" => target.client_cert = Some(value.to_string()).filter(|v| !v.is_empty()),
            "client_key" => target.client_key = Some(value.to_string()).filter(|v| !v.is_empty()),
            _ => {
                warn(format!(
                    "unknown option '{}' on target '{}' ignored",
                    shown(name),
                    shown(v)
                ));
                target.unknown_options.push(name.clone());
            }
        }
    }
    Ok(target)
}

fn zhttp_spec(target: &str, spec: &str) -> Result<String, String> {
    if spec.is_empty() {
        return Err(format!("target '{}' has an empty spec", shown(target)));
    }
    Ok(spec.to_string())
}

/// `host:port` or `[v6]:port`.
fn parse_host_port(v: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = v.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(format!("target '{}' has '[' without ']'", shown(v)));
        };
        let Some(port) = after.strip_prefix(':') else {
            return Err(format!("target '{}' needs ':port' after ']'", shown(v)));
        };
        (host, port)
    } else {
        match v.split_once(':') {
            Some(hp) => hp,
            None => {
                return Err(format!(
                    "target '{}' bad format: expected host:port, [v6]:port, test, zhttp/<spec> \
                     or zhttpreq/<spec>",
                    shown(v)
                ))
            }
        }
    };
    if host.is_empty()
        || host
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(format!("target '{}' has an invalid host", shown(v)));
    }
    match parse_decimal::<u16>(port) {
        Some(p) if p >= 1 => Ok((host.to_string(), p)),
        _ => Err(format!("target '{}' has an invalid port", shown(v))),
    }
}

/// `header=Name:value`: the name is what precedes the first ':'; leading blanks of the value
/// are dropped.
fn parse_header(s: &str) -> Result<(String, String), String> {
    let Some((name, value)) = s.split_once(':') else {
        return Err(format!(
            "header must use format 'name:value', not '{}'",
            shown(s)
        ));
    };
    // RFC 9110 5.1: field-name = token; anything else would corrupt the request we send.
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(format!(
            "header name '{}' is not a valid token",
            shown(name)
        ));
    }
    let value = value.trim_start_matches([' ', '\t']);
    Ok((name.to_string(), value.to_string()))
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A host value (`as_host`, target `host=`): empty means unset; whitespace can't be in one.
fn host_value(prop: &str, value: &str) -> Result<Option<String>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    if value
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(format!("{prop} '{}' is not a valid host", shown(value)));
    }
    Ok(Some(value.to_string()))
}

fn flag(name: &str, value: &str, warn: &mut dyn FnMut(String)) -> bool {
    if !value.is_empty() {
        warn(format!(
            "'{}' is a flag; value '{}' ignored and the flag set",
            shown(name),
            shown(value)
        ));
    }
    true
}

/// Plain decimal digits only: no sign, no spaces.
fn parse_decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Highest file mode accepted (all permission bits plus setuid/setgid/sticky).
const IPC_FILE_MODE_MAX: u32 = 0o7777;

fn parse_octal_mode(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= IPC_FILE_MODE_MAX)
}

/// Longest piece of input echoed back in a message.
const SHOWN_LEN_MAX: usize = 80;

/// Input echoed in a message, cut short so a hostile value can't flood the log.
pub(super) fn shown(s: &str) -> std::borrow::Cow<'_, str> {
    if s.len() <= SHOWN_LEN_MAX {
        return s.into();
    }
    let mut end = SHOWN_LEN_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", s.get(..end).unwrap_or("")).into()
}

#[cfg(test)]
mod tests {
    use super::super::tokenizer::tokenize_line;
    use super::*;

    fn build(line: &str) -> (Result<Route, String>, Vec<String>) {
        let tokens = tokenize_line(line).expect("test line tokenizes");
        let mut warnings = Vec::new();
        let r = route_from_tokens(&tokens, 7, &mut |w| warnings.push(w));
        (r, warnings)
    }

    fn ok(line: &str) -> Route {
        match build(line) {
            (Ok(r), _) => r,
            (Err(e), _) => panic!("line {line:?} rejected: {e}"),
        }
    }

    fn http(host: &str, port: u16) -> TargetKind {
        TargetKind::Http {
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn condition_props() {
        let r = ok(
            "Example.COM,proto=ws,ssl=yes,path_beg=/x,id=abc,sig_iss=iss,sig_key=base64:a2V5,\
            prefix=p-,orig_headers,as_host=other:81,path_rem=3,debug,aco,jsonp_mode=basic,\
            jsonp_cb=cb,jsonp_body=b,jsonp_defcb=dcb,jsonp_defmethod=PUT,session,sockjs=/s,\
            sockjs_as_path=/sp,no_grip,log_level=4 localhost:80",
        );
        assert_eq!(r.line, 7);
        assert_eq!(r.domain.as_deref(), Some("example.com"));
        assert!(!r.id_only);
        assert_eq!(r.proto, Some(Proto::Ws));
        assert_eq!(r.ssl, Some(true));
        assert_eq!(r.path_beg.as_deref(), Some("/x"));
        assert_eq!(r.id, "abc");
        assert!(r.explicit_id);
        assert_eq!(r.sig_iss.as_deref(), Some("iss"));
        assert_eq!(r.sig_key.as_deref(), Some("base64:a2V5"));
        assert_eq!(r.prefix.as_deref(), Some("p-"));
        assert!(r.orig_headers && r.debug && r.aco && r.session && r.no_grip);
        assert_eq!(r.as_host.as_deref(), Some("other:81"));
        assert_eq!(r.path_rem, 3);
        assert_eq!(r.replace_beg, None);
        assert_eq!(r.jsonp_mode.as_deref(), Some("basic"));
        assert!(r.jsonp_is_basic());
        assert_eq!(r.jsonp_cb.as_deref(), Some("cb"));
        assert_eq!(r.jsonp_body.as_deref(), Some("b"));
        assert_eq!(r.jsonp_defcb.as_deref(), Some("dcb"));
        assert_eq!(r.jsonp_defmethod.as_deref(), Some("PUT"));
        assert_eq!(r.jsonp_default_method(), "PUT");
        assert_eq!(r.sockjs.as_deref(), Some("/s"));
        assert_eq!(r.sockjs_as_path.as_deref(), Some("/sp"));
        assert_eq!(r.log_level, Some(4));
        assert!(r.unknown_props.is_empty());
        assert_eq!(r.targets.len(), 1);
        assert_eq!(r.targets[0].kind, http("localhost", 80));
    }

    #[test]
    fn defaults() {
        let r = ok("* localhost:80");
        assert_eq!(r.domain, None);
        assert!(!r.id_only && !r.explicit_id);
        assert_eq!(r.id, "*,*,*,*");
        assert_eq!((r.proto, r.ssl, r.path_beg.as_deref()), (None, None, None));
        assert_eq!(r.path_rem, 0);
        assert!(!(r.orig_headers || r.debug || r.aco || r.session || r.no_grip));
        assert!(r.headers.is_empty());
        assert!(!r.jsonp_is_basic());
        assert_eq!(r.jsonp_default_method(), "GET");
        let basic = ok("*,jsonp_mode=basic localhost:80");
        assert_eq!(basic.jsonp_default_method(), "POST");
        let t = &r.targets[0];
        assert!(!(t.ssl || t.untrusted || t.trust_connect_host || t.insecure));
        assert!(!(t.over_http || t.one_event));
        assert_eq!((&t.host, t.ipc_file_mode), (&None, None));
        assert!(t.subs.is_empty() && t.unknown_options.is_empty());
    }

    #[test]
    fn generated_ids() {
        let cases = [
            ("* a:1", "*,*,*,*"),
            ("example.com a:1", "example.com,*,*,*"),
            ("example.com,proto=http a:1", "example.com,http,*,*"),
            ("example.com,proto=ws a:1", "example.com,ws,*,*"),
            ("*,ssl=yes a:1", "*,*,ssl,*"),
            ("*,ssl=no a:1", "*,*,no-ssl,*"),
            ("*,path_beg=/api a:1", "*,*,*,/api"),
            (
                "Ex.org,proto=ws,ssl=no,path_beg=/w a:1",
                "ex.org,ws,no-ssl,/w",
            ),
            ("*,id= a:1", "*,*,*,*"),
        ];
        for (line, id) in cases {
            let r = ok(line);
            assert_eq!(r.id, id, "line {line:?}");
            assert!(!r.explicit_id, "line {line:?}");
        }
    }

    #[test]
    fn id_only_condition() {
        let r = ok("id=foo a:1");
        assert!(r.id_only);
        assert_eq!(r.domain, None);
        assert_eq!(r.id, "foo");
        assert!(r.explicit_id);
    }

    #[test]
    fn single_valued_props_last_wins() {
        let r = ok("*,proto=http,proto=ws,prefix=a,prefix=b,id=x,id=y a:1");
        assert_eq!(r.proto, Some(Proto::Ws));
        assert_eq!(r.prefix.as_deref(), Some("b"));
        assert_eq!(r.id, "y");
        let t = ok("* a:1,host=h1,host=h2").targets.remove(0);
        assert_eq!(t.host.as_deref(), Some("h2"));
    }

    #[test]
    fn headers() {
        let r = ok(
            r#"*,header=X-Route:hello,header="X-Two:  a b",header=User-Agent:,header=X-Eq:a=b:c a:1"#,
        );
        assert_eq!(
            r.headers,
            vec![
                ("X-Route".to_string(), "hello".to_string()),
                ("X-Two".to_string(), "a b".to_string()),
                ("User-Agent".to_string(), String::new()),
                ("X-Eq".to_string(), "a=b:c".to_string()),
            ]
        );
    }

    #[test]
    fn path_rewrite_props() {
        let r = ok("*,path_beg=/api/,replace_beg=/v2/ a:1");
        assert_eq!((r.path_rem, r.replace_beg.as_deref()), (5, Some("/v2/")));
        // replace_beg wins whatever the order.
        let r = ok("*,replace_beg=/v2/,path_beg=/api/,path_rem=1 a:1");
        assert_eq!(r.path_rem, 5);
        // Without path_beg it only prepends.
        let r = ok("*,replace_beg=/x a:1");
        assert_eq!(r.path_rem, 0);
        let r = ok("*,path_rem=0 a:1");
        assert_eq!(r.path_rem, 0);
    }

    #[test]
    fn targets() {
        let r = ok(
            "* a:1 [::1]:8080 test zhttp/tcp://127.0.0.1:10000 zhttpreq/ipc://x b.example:65535",
        );
        let kinds: Vec<_> = r.targets.iter().map(|t| t.kind.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                http("a", 1),
                http("::1", 8080),
                TargetKind::Test,
                TargetKind::Zhttp("tcp://127.0.0.1:10000".to_string()),
                TargetKind::ZhttpReq("ipc://x".to_string()),
                http("b.example", 65535),
            ]
        );
    }

    #[test]
    fn target_options() {
        let r = ok("* h:443,ssl,untrusted,trust_connect_host,insecure,host=api.example:8443,sub=a,sub=,sub=b,\
            over_http,one_event,client_cert=/c.pem,client_key=/k.pem zhttp/ipc://z,ipc_file_mode=0660");
        let t = &r.targets[0];
        assert!(t.ssl && t.untrusted && t.trust_connect_host && t.insecure);
        assert!(t.over_http && t.one_event);
        assert_eq!(t.host.as_deref(), Some("api.example:8443"));
        assert_eq!(t.subs, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(t.client_cert.as_deref(), Some("/c.pem"));
        assert_eq!(t.client_key.as_deref(), Some("/k.pem"));
        assert_eq!(r.targets[1].ipc_file_mode, Some(0o660));
    }

    #[test]
    fn comma_after_target_is_an_option() {
        let (r, warnings) = build("* a:1,b:2");
        let r = r.expect("accepted");
        assert_eq!(r.targets.len(), 1);
        assert_eq!(r.targets[0].kind, http("a", 1));
        assert_eq!(r.targets[0].unknown_options, vec!["b:2".to_string()]);
        assert_eq!(
            warnings,
            vec!["unknown option 'b:2' on target 'a:1' ignored".to_string()]
        );
    }

    #[test]
    fn soft_problems_warn() {
        let (r, warnings) = build("*,bogus,debug=no a:1,over_http=1");
        let r = r.expect("accepted");
        assert_eq!(r.unknown_props, vec!["bogus".to_string()]);
        assert!(r.debug);
        assert!(r.targets[0].over_http);
        assert_eq!(
            warnings,
            vec![
                "unknown route prop 'bogus' ignored".to_string(),
                "'debug' is a flag; value 'no' ignored and the flag set".to_string(),
                "'over_http' is a flag; value '1' ignored and the flag set".to_string(),
            ]
        );
    }

    #[test]
    fn hard_errors() {
        let cases: &[(&str, &str)] = &[
            ("*,proto=tcp a:1", "proto must be 'http' or 'ws'"),
            ("*,proto a:1", "proto must be"),
            ("*,ssl=maybe a:1", "ssl must be 'yes' or 'no'"),
            ("*,path_beg= a:1", "path_beg cannot be empty"),
            ("*,path_beg a:1", "path_beg cannot be empty"),
            ("*,path_rem=x a:1", "path_rem must be a number"),
            ("*,path_rem=-1 a:1", "path_rem must be a number"),
            (
                "*,path_rem=99999999999999999999999 a:1",
                "path_rem must be a number",
            ),
            ("*,log_level=256 a:1", "log_level must be"),
            ("*,jsonp_mode=fancy a:1", "jsonp_mode must be"),
            ("*,header=NoColon a:1", "header must use format"),
            ("*,header=:v a:1", "header name '' is not a valid token"),
            (r#"*,header="Bad Name:v" a:1"#, "is not a valid token"),
            (r#"*,as_host="a b" a:1"#, "is not a valid host"),
            ("* localhost", "bad format"),
            ("* ,ssl", "bad format"),
            ("* a:0", "invalid port"),
            ("* a:65536", "invalid port"),
            ("* a:", "invalid port"),
            ("* a:+80", "invalid port"),
            ("* a:b:80", "invalid port"),
            ("* :80", "invalid host"),
            ("* ::1:80", "invalid host"),
            ("* [::1]", "needs ':port'"),
            ("* [::1:80", "without ']'"),
            ("* []:80", "invalid host"),
            ("* [::1]:x", "invalid port"),
            ("* zhttp/", "empty spec"),
            ("* zhttpreq/", "empty spec"),
            ("* zhttp/x,ipc_file_mode=8", "ipc_file_mode must be"),
            ("* zhttp/x,ipc_file_mode=17777", "ipc_file_mode must be"),
            (r#"* a:1,host="x y""#, "is not a valid host"),
        ];
        for (line, reason) in cases {
            match build(line).0 {
                Err(e) => assert!(e.contains(reason), "line {line:?}: got {e:?}"),
                Ok(r) => panic!("line {line:?} accepted as {r:?}"),
            }
        }
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let line = format!("* {}", "x".repeat(1000));
        let e = build(&line).0.expect_err("no port");
        assert!(e.len() < 300, "message of {} bytes", e.len());
        assert!(e.contains("..."));
    }

    fn rewrite(line: &str, target: &str) -> String {
        ok(line).rewrite_target(target)
    }

    #[test]
    fn rewrite_targets() {
        let cases = [
            // No rewrite configured: untouched.
            ("*,path_beg=/api a:1", "/api/x?q", "/api/x?q"),
            // path_rem.
            ("*,path_rem=4 a:1", "/api/x", "/x"),
            ("*,path_rem=4 a:1", "/api/x?a=1&b", "/x?a=1&b"),
            // Whole path removed: "/" with the query kept.
            ("*,path_rem=4 a:1", "/api", "/"),
            ("*,path_rem=4 a:1", "/api?q=1", "/?q=1"),
            ("*,path_rem=100 a:1", "/api?q=1", "/?q=1"),
            // Removal leaving no leading slash gets one.
            ("*,path_rem=5 a:1", "/api/x", "/x"),
            // replace_beg keeps the query.
            (
                "*,path_beg=/api/,replace_beg=/v2/ a:1",
                "/api/items?x=1",
                "/v2/items?x=1",
            ),
            ("*,path_beg=/api,replace_beg=/ a:1", "/api", "/"),
            ("*,path_beg=/api,replace_beg=/ a:1", "/api/x", "//x"),
            ("*,path_beg=/api,replace_beg= a:1", "/api/x", "/x"),
            ("*,path_beg=/api,replace_beg= a:1", "/api", "/"),
            ("*,path_beg=/old,replace_beg=new a:1", "/old/x", "/new/x"),
            ("*,replace_beg=/pre a:1", "/x", "/pre/x"),
            // Absolute-form: only the path part changes.
            (
                "*,path_rem=4 a:1",
                "http://h:8080/api/x?q",
                "http://h:8080/x?q",
            ),
            ("*,path_rem=4 a:1", "https://h/api", "https://h/"),
            ("*,path_rem=4 a:1", "http://h?q", "http://h/?q"),
            (
                "*,path_beg=/a,replace_beg=/b a:1",
                "http://h/a/c",
                "http://h/b/c",
            ),
            // No path to rewrite.
            ("*,path_rem=4 a:1", "*", "*"),
            ("*,path_rem=4 a:1", "", "/"),
            ("*,path_rem=4 a:1", "h:443", "h:443"),
            // A multi-byte char is never split.
            ("*,path_rem=2 a:1", "/éx", "/x"),
        ];
        for (line, target, want) in cases {
            assert_eq!(rewrite(line, target), want, "{line:?} on {target:?}");
        }
    }
}
