//! Header rewriting at the proxy boundary (spec section 4.1): what the backend sees of a client request, and
//! what the client sees of a backend response.

use std::borrow::Cow;
use std::net::IpAddr;

use super::config::ProxyConfig;
use crate::config::{XffRule, XfpMode};
use crate::grip::GRIP_FEATURES;
use crate::http1::{
    connection_tokens, is_hop_by_hop, remove_headers, set_header, BodyKind, Header, RequestHead,
    ResponseHead, Version,
};
use crate::routes::{Route, Target, TargetKind};

/// The media type of WebSocket-over-HTTP bodies, compared whole (spec 6.2: a parameter makes it a mismatch).
pub const WEBSOCKET_EVENTS: &str = "application/websocket-events";

/// Prefix Pushpin uses to mark a copy of an original client header (route option `orig_headers`).
const ORIG_HEADER_MARK: &str = "eb9bf0f5-";

/// Everything the request rewriter needs to know about the request's origin.
pub struct RequestContext<'a> {
    pub cfg: &'a ProxyConfig,
    pub route: &'a Route,
    pub target: &'a Target,
    pub peer: IpAddr,
    /// The client connection is TLS (or claims so through X-Forwarded-Proto when that is accepted).
    pub tls: bool,
    pub body: BodyKind,
    /// The client proved itself with `upstream_key`: its Grip-* headers pass through and nothing is signed.
    pub trusted: bool,
    /// A fresh Grip-Sig token for this request (None: don't sign, e.g. `no_grip` routes).
    pub grip_sig: Option<&'a str>,
    /// (channel, last id) pairs: one `Grip-Last` header each, on requests retried after a hold.
    pub grip_last: &'a [(String, String)],
    /// The request is part of a client's WebSocket session (spec 6.1, 6.2); `None` for ordinary requests.
    pub ws: Option<WsForward<'a>>,
}

/// How a client's WebSocket handshake becomes a backend request.
#[derive(Debug, Clone, Copy)]
pub enum WsForward<'a> {
    /// Passthrough (spec 6.1): the backend gets a handshake of its own, with this key, offering the GRIP
    /// extension when `grip` is set. The client's extension offers are not forwarded: holdfast relays frames
    /// and negotiates no extension with either side.
    Handshake { key: &'a str, grip: bool },
    /// WebSocket-over-HTTP (spec 6.2): a POST whose body (`ctx.body`, a known length) holds events.
    OverHttp {
        connection_id: &'a str,
        /// Meta set by the backend with `Set-Meta-*`, echoed as `Meta-*`.
        meta: &'a [(String, String)],
        /// `Content-Bytes-Replayed`: content bytes re-sent after a partial acceptance.
        replayed: usize,
        grip: bool,
    },
}

/// Request fields WebSocket-over-HTTP replaces with its own (spec 6.2), besides hop-by-hop ones.
fn woh_replaced(name: &str) -> bool {
    [
        "Accept",
        "Connection-Id",
        "Content-Length",
        "Content-Type",
        "Sec-WebSocket-Extensions",
    ]
    .iter()
    .any(|r| name.eq_ignore_ascii_case(r))
        || starts_with_ignore_case(name, "Meta-")
}

fn name_is(h: &Header, name: &str) -> bool {
    h.name.eq_ignore_ascii_case(name)
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Whether the client says, through X-Forwarded-Proto/-Protocol, that its original connection was TLS.
pub fn forwarded_tls(head: &RequestHead) -> bool {
    ["X-Forwarded-Proto", "X-Forwarded-Protocol"]
        .iter()
        .any(|name| {
            head.header_str(name)
                .map(|v| {
                    let v = v.trim();
                    v.eq_ignore_ascii_case("https") || v.eq_ignore_ascii_case("wss")
                })
                .unwrap_or(false)
        })
}

/// The request head sent to the backend, serialised. The target is the route-rewritten origin-form target.
pub fn backend_request(head: &RequestHead, ctx: &RequestContext, out: &mut Vec<u8>) {
    let cfg = ctx.cfg;
    let listed = connection_tokens(&head.headers);
    let mut headers = HeaderList::borrowed(head.headers.iter().filter(|h| {
        let n = h.name.as_str();
        !(is_hop_by_hop(n)
            || listed.iter().any(|t| t.eq_ignore_ascii_case(n))
            || n.eq_ignore_ascii_case("Expect")
            || n.eq_ignore_ascii_case("Content-Length") && ctx.body != BodyKind::None
            || (!ctx.trusted && starts_with_ignore_case(n, "Grip-"))
            || (cfg.accept_pushpin_route && n.eq_ignore_ascii_case("Pushpin-Route"))
            || (!ctx.route.orig_headers && starts_with_ignore_case(n, ORIG_HEADER_MARK))
            || (cfg.xfp_enabled()
                && (n.eq_ignore_ascii_case("X-Forwarded-Proto")
                    || n.eq_ignore_ascii_case("X-Forwarded-Protocol")))
            // GRIP routes must see uncompressed responses: instructions and held bodies are parsed and
            // published data is appended to them. Pushpin strips it the same way.
            || (!ctx.route.no_grip && n.eq_ignore_ascii_case("Accept-Encoding"))
            || match ctx.ws {
                None => false,
                Some(WsForward::Handshake { .. }) => {
                    n.eq_ignore_ascii_case("Sec-WebSocket-Key")
                        || n.eq_ignore_ascii_case("Sec-WebSocket-Extensions")
                }
                Some(WsForward::OverHttp { .. }) => woh_replaced(n),
            })
    }));

    if ctx.route.orig_headers {
        for h in head
            .headers
            .iter()
            .filter(|h| !starts_with_ignore_case(&h.name, ORIG_HEADER_MARK))
        {
            headers.push_owned(format!("{ORIG_HEADER_MARK}{}", h.name), h.value.clone());
        }
    }

    // Host: the route's as_host, else the target's host=, else the client's, else the target address.
    let host_override = ctx.route.as_host.as_deref().or(ctx.target.host.as_deref());
    if let Some(host) = host_override {
        headers.set("Host", Cow::Borrowed(host.as_bytes()));
    } else if !headers.contains("Host") {
        if let TargetKind::Http { host, port } = &ctx.target.kind {
            let value = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            headers.set("Host", Cow::Owned(value.into_bytes()));
        }
    }

    if !cfg.x_forwarded_for.is_empty() {
        let existing = head
            .headers
            .iter()
            .filter(|h| name_is(h, "X-Forwarded-For"))
            .map(|h| h.value.as_slice());
        match x_forwarded_for_value(existing, &cfg.x_forwarded_for, ctx.peer) {
            Some(v) => headers.set("X-Forwarded-For", Cow::Owned(v.into_bytes())),
            None => headers.remove("X-Forwarded-For"),
        }
    }

    if ctx.tls {
        let scheme: &'static [u8] = if is_websocket_upgrade(head) {
            b"wss"
        } else {
            b"https"
        };
        match cfg.set_x_forwarded_protocol {
            XfpMode::None => {}
            XfpMode::ProtoOnly => headers.set("X-Forwarded-Proto", Cow::Borrowed(scheme)),
            XfpMode::Both => {
                headers.set("X-Forwarded-Proto", Cow::Borrowed(scheme));
                headers.set("X-Forwarded-Protocol", Cow::Borrowed(scheme));
            }
        }
    }

    if let Some(cdn) = &cfg.cdn_loop {
        let mut values: Vec<String> = head
            .headers
            .iter()
            .filter(|h| name_is(h, "CDN-Loop"))
            .map(|h| String::from_utf8_lossy(&h.value).into_owned())
            .collect();
        values.push(cdn.clone());
        headers.set("CDN-Loop", Cow::Owned(values.join(", ").into_bytes()));
    }

    for (name, value) in &ctx.route.headers {
        if value.is_empty() {
            headers.remove(name);
        } else {
            headers.set(name, Cow::Borrowed(value.as_bytes()));
        }
    }

    if let Some(token) = ctx.grip_sig {
        headers.set("Grip-Sig", Cow::Borrowed(token.as_bytes()));
        headers.set("Grip-Feature", Cow::Borrowed(GRIP_FEATURES.as_bytes()));
    }
    for (channel, last_id) in ctx.grip_last {
        headers.push_owned(
            "Grip-Last".into(),
            format!("{channel}; last-id={last_id}").into_bytes(),
        );
    }

    let mut method = head.method.as_str();
    match ctx.ws {
        None => {}
        Some(WsForward::Handshake { key, grip }) => {
            headers.push("Upgrade", b"websocket");
            headers.push("Connection", b"Upgrade");
            headers.push("Sec-WebSocket-Key", key.as_bytes());
            if grip {
                headers.push("Sec-WebSocket-Extensions", b"grip");
            }
        }
        Some(WsForward::OverHttp {
            connection_id,
            meta,
            replayed,
            grip,
        }) => {
            method = "POST";
            if grip {
                headers.push("Sec-WebSocket-Extensions", b"grip");
            }
            headers.push("Accept", WEBSOCKET_EVENTS.as_bytes());
            headers.push("Connection-Id", connection_id.as_bytes());
            headers.push("Content-Type", WEBSOCKET_EVENTS.as_bytes());
            for (name, value) in meta {
                headers.push_owned(format!("Meta-{name}"), value.as_bytes().to_vec());
            }
            if replayed > 0 {
                headers.push_owned(
                    "Content-Bytes-Replayed".into(),
                    replayed.to_string().into_bytes(),
                );
            }
        }
    }

    match ctx.body {
        BodyKind::Length(n) => {
            headers.set("Content-Length", Cow::Owned(n.to_string().into_bytes()))
        }
        BodyKind::Chunked => headers.set("Transfer-Encoding", Cow::Borrowed(b"chunked")),
        BodyKind::None | BodyKind::CloseDelimited => {}
    }

    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    if ctx.route.path_rem == 0 && ctx.route.replace_beg.is_none() && head.target.starts_with('/') {
        // The common case: the target goes to the backend as the client wrote it.
        out.extend_from_slice(head.target.as_bytes());
    } else {
        out.extend_from_slice(origin_form(&ctx.route.rewrite_target(&head.target)).as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    headers.write(out);
}

/// A status code as three ASCII digits (codes are 100..=999 here; anything else is written in full).
fn push_code(out: &mut Vec<u8>, code: u16) {
    if (100..=999).contains(&code) {
        out.extend_from_slice(&[
            b'0' + (code / 100) as u8,
            b'0' + (code / 10 % 10) as u8,
            b'0' + (code % 10) as u8,
        ]);
    } else {
        out.extend_from_slice(code.to_string().as_bytes());
    }
}

/// Header fields being rewritten: borrowed from the parsed head where unchanged, so forwarding a request or
/// response copies each byte once (into the output) instead of cloning every name and value first. `set`
/// and `remove` behave as `http1::set_header` / `remove_headers`.
/// Room for the fields the rewriter may add to a head. The list is sized to the head plus this,
/// which keeps a typical list under glibc's 1 KiB large-bin threshold: a larger request makes
/// malloc consolidate its fast bins on every exchange, which measurably slowed proxying.
const HEADER_LIST_SPARE: usize = 6;

struct HeaderList<'a> {
    fields: Vec<(Cow<'a, str>, Cow<'a, [u8]>)>,
}

impl<'a> HeaderList<'a> {
    fn borrowed(headers: impl Iterator<Item = &'a Header>) -> HeaderList<'a> {
        // Room for the fields the rewriter adds, so the list is allocated once.
        let (low, high) = headers.size_hint();
        let mut fields = Vec::with_capacity(high.unwrap_or(low) + HEADER_LIST_SPARE);
        fields.extend(headers.map(|h| {
            (
                Cow::Borrowed(h.name.as_str()),
                Cow::Borrowed(h.value.as_slice()),
            )
        }));
        HeaderList { fields }
    }

    fn contains(&self, name: &str) -> bool {
        self.fields
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Replace the first field of that name (keeping its position and spelling) and drop the others; append
    /// when there is none.
    fn set(&mut self, name: &'a str, value: Cow<'a, [u8]>) {
        match self
            .fields
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(first) => {
                self.fields[first].1 = value;
                let mut index = 0;
                self.fields.retain(|(n, _)| {
                    let keep = index <= first || !n.eq_ignore_ascii_case(name);
                    index += 1;
                    keep
                });
            }
            None => self.fields.push((Cow::Borrowed(name), value)),
        }
    }

    fn remove(&mut self, name: &str) {
        self.fields.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    fn push(&mut self, name: &'a str, value: &'a [u8]) {
        self.fields
            .push((Cow::Borrowed(name), Cow::Borrowed(value)));
    }

    fn push_owned(&mut self, name: String, value: Vec<u8>) {
        self.fields.push((Cow::Owned(name), Cow::Owned(value)));
    }

    /// The fields and the blank line that ends the head.
    fn write(&self, out: &mut Vec<u8>) {
        for (name, value) in &self.fields {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// The X-Forwarded-For value after applying `rules` to the existing values; `None` means no header.
fn x_forwarded_for_value<'v>(
    existing: impl Iterator<Item = &'v [u8]>,
    rules: &[XffRule],
    peer: IpAddr,
) -> Option<String> {
    let mut entries: Vec<String> = existing
        .flat_map(|v| {
            String::from_utf8_lossy(v)
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
        .collect();
    for rule in rules {
        match *rule {
            XffRule::Truncate(n) => {
                if entries.len() > n {
                    entries.drain(..entries.len() - n);
                }
            }
            XffRule::Append => entries.push(peer.to_string()),
        }
    }
    (!entries.is_empty()).then(|| entries.join(", "))
}

/// Apply the `x_forwarded_for` rules to the request's X-Forwarded-For values. No rules: header untouched.
pub fn apply_x_forwarded_for(headers: &mut Vec<Header>, rules: &[XffRule], peer: IpAddr) {
    if rules.is_empty() {
        return;
    }
    let existing: Vec<Vec<u8>> = headers
        .iter()
        .filter(|h| name_is(h, "X-Forwarded-For"))
        .map(|h| h.value.clone())
        .collect();
    match x_forwarded_for_value(existing.iter().map(|v| v.as_slice()), rules, peer) {
        Some(v) => set_header(headers, "X-Forwarded-For", v.as_bytes()),
        None => remove_headers(headers, "X-Forwarded-For"),
    }
}

/// Turn an absolute-form target (`http://host/path?q`) into origin-form (`/path?q`).
pub fn origin_form(target: &str) -> String {
    if target.starts_with('/') {
        return target.to_string();
    }
    if let Some(rest) = target.find("://").map(|i| &target[i + 3..]) {
        return match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => rest[i..].to_string(),
            Some(i) => format!("/{}", &rest[i..]),
            None => "/".to_string(),
        };
    }
    target.to_string()
}

/// Whether the request asks to switch to WebSocket.
pub fn is_websocket_upgrade(head: &RequestHead) -> bool {
    head.header_str("Upgrade")
        .map(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
        })
        .unwrap_or(false)
}

/// The host (without port) and encoded path (without query) a request is routed by.
/// Borrowed from the head; the host keeps its case (route lookup ignores case).
pub fn route_key(head: &RequestHead) -> (&str, &str) {
    let target = head.target.as_str();
    let (authority, path) = if let Some(i) = target.find("://") {
        let rest = &target[i + 3..];
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let path = &rest[end..];
        (
            Some(&rest[..end]),
            if path.starts_with('/') { path } else { "/" },
        )
    } else {
        (None, target)
    };
    let host_port = authority
        .map(|a| a.rsplit('@').next().unwrap_or(a))
        .or_else(|| head.header_str("Host").map(str::trim))
        .unwrap_or_default();
    let path = path.split('?').next().unwrap_or("/");
    (strip_port(host_port), path)
}

fn strip_port(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host_port.rfind(':') {
        Some(i) if host_port[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &host_port[..i],
        _ => host_port,
    }
}

/// How the response body is framed toward the client, given how the backend framed it.
pub fn client_framing(backend: BodyKind, client_version: Version) -> BodyKind {
    match (backend, client_version) {
        (BodyKind::None, _) => BodyKind::None,
        (BodyKind::Length(n), _) => BodyKind::Length(n),
        // Re-chunk so an HTTP/1.1 client keeps its connection even when the backend closes to end the body.
        (BodyKind::Chunked | BodyKind::CloseDelimited, Version::Http11) => BodyKind::Chunked,
        (BodyKind::Chunked | BodyKind::CloseDelimited, Version::Http10) => BodyKind::CloseDelimited,
    }
}

/// The response head sent to the client, serialised.
pub fn client_response(
    resp: &ResponseHead,
    framing: BodyKind,
    keep_alive: bool,
    client_version: Version,
    out: &mut Vec<u8>,
) {
    let listed = connection_tokens(&resp.headers);
    let mut headers = HeaderList::borrowed(resp.headers.iter().filter(|h| {
        let n = h.name.as_str();
        !(is_hop_by_hop(n) || listed.iter().any(|t| t.eq_ignore_ascii_case(n)))
    }));
    match framing {
        BodyKind::Chunked => {
            headers.remove("Content-Length");
            headers.push("Transfer-Encoding", b"chunked");
        }
        BodyKind::CloseDelimited => headers.remove("Content-Length"),
        BodyKind::Length(_) | BodyKind::None => {}
    }
    if !keep_alive {
        headers.push("Connection", b"close");
    } else if client_version == Version::Http10 {
        headers.push("Connection", b"keep-alive");
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    push_code(out, resp.code);
    out.push(b' ');
    out.extend_from_slice(resp.reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    headers.write(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_form_table() {
        for (input, want) in [
            ("/a/b?c", "/a/b?c"),
            ("http://h.test/a?b", "/a?b"),
            ("http://h.test", "/"),
            ("http://h.test?x=1", "/?x=1"),
            ("*", "*"),
        ] {
            assert_eq!(origin_form(input), want, "{input}");
        }
    }

    #[test]
    fn strip_port_table() {
        for (input, want) in [
            ("example.test:8080", "example.test"),
            ("example.test", "example.test"),
            ("[::1]:80", "::1"),
            ("[::1]", "::1"),
            ("", ""),
        ] {
            assert_eq!(strip_port(input), want, "{input}");
        }
    }

    #[test]
    fn x_forwarded_for_rules() {
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        let cases: &[(&[XffRule], Option<&str>, Option<&str>)] = &[
            (&[XffRule::Append], None, Some("10.0.0.9")),
            (
                &[XffRule::Append],
                Some("1.1.1.1, 2.2.2.2"),
                Some("1.1.1.1, 2.2.2.2, 10.0.0.9"),
            ),
            (
                &[XffRule::Truncate(1), XffRule::Append],
                Some("1.1.1.1, 2.2.2.2"),
                Some("2.2.2.2, 10.0.0.9"),
            ),
            (&[XffRule::Truncate(0)], Some("1.1.1.1"), None),
            (&[], Some("1.1.1.1"), Some("1.1.1.1")),
        ];
        for (rules, input, want) in cases {
            let mut headers = Vec::new();
            if let Some(v) = input {
                headers.push(Header {
                    name: "X-Forwarded-For".into(),
                    value: v.as_bytes().to_vec(),
                });
            }
            apply_x_forwarded_for(&mut headers, rules, peer);
            let got = headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("X-Forwarded-For"))
                .map(|h| String::from_utf8(h.value.clone()).unwrap());
            assert_eq!(got.as_deref(), *want, "{rules:?} {input:?}");
        }
    }

    fn forwarded(head: &[u8], routes: &str, ws: Option<WsForward>, body: BodyKind) -> String {
        let cfg = ProxyConfig::from_settings(&crate::config::Settings::defaults()).unwrap();
        let (table, _) = crate::routes::RouteTable::parse(routes, "test").unwrap();
        let route = &table.routes()[0];
        let (head, _) = crate::http1::parse_request_head(head, &cfg.client_head)
            .unwrap()
            .unwrap();
        let ctx = RequestContext {
            cfg: &cfg,
            route,
            target: &route.targets[0],
            peer: "10.0.0.9".parse().unwrap(),
            tls: false,
            body,
            trusted: false,
            grip_sig: Some("tok"),
            grip_last: &[],
            ws,
        };
        let mut out = Vec::new();
        backend_request(&head, &ctx, &mut out);
        String::from_utf8(out).unwrap()
    }

    const CLIENT_HANDSHAKE: &[u8] =
        b"GET /chat?x=1 HTTP/1.1\r\nHost: h.test\r\nUpgrade: websocket\r\n\
        Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Extensions: permessage-deflate\r\nCookie: a=b\r\nMeta-User: mallory\r\n\r\n";

    fn fields(text: &str) -> Vec<(String, String)> {
        text.split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(": "))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
            .collect()
    }

    fn values<'f>(fields: &'f [(String, String)], name: &str) -> Vec<&'f str> {
        fields
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn passthrough_handshake_gets_its_own_key_and_offers_only_grip() {
        let ws = WsForward::Handshake {
            key: "AAAAAAAAAAAAAAAAAAAAAA==",
            grip: true,
        };
        let text = forwarded(
            CLIENT_HANDSHAKE,
            "* 127.0.0.1:1\n",
            Some(ws),
            BodyKind::None,
        );
        assert!(text.starts_with("GET /chat?x=1 HTTP/1.1\r\n"), "{text}");
        let f = fields(&text);
        assert_eq!(
            values(&f, "sec-websocket-key"),
            ["AAAAAAAAAAAAAAAAAAAAAA=="]
        );
        assert_eq!(values(&f, "sec-websocket-extensions"), ["grip"]);
        assert_eq!(values(&f, "upgrade"), ["websocket"]);
        assert_eq!(values(&f, "connection"), ["Upgrade"]);
        assert_eq!(values(&f, "sec-websocket-protocol"), ["chat, superchat"]);
        assert_eq!(values(&f, "sec-websocket-version"), ["13"]);
        assert_eq!(values(&f, "grip-sig"), ["tok"]);
        assert_eq!(values(&f, "cookie"), ["a=b"]);
    }

    #[test]
    fn passthrough_handshake_without_grip_offers_no_extension() {
        let ws = WsForward::Handshake {
            key: "AAAAAAAAAAAAAAAAAAAAAA==",
            grip: false,
        };
        let text = forwarded(
            CLIENT_HANDSHAKE,
            "* 127.0.0.1:1\n",
            Some(ws),
            BodyKind::None,
        );
        assert!(
            values(&fields(&text), "sec-websocket-extensions").is_empty(),
            "{text}"
        );
    }

    #[test]
    fn over_http_request_is_a_post_of_events_with_meta_and_connection_id() {
        let meta = [("User".to_string(), "alice".to_string())];
        let ws = WsForward::OverHttp {
            connection_id: "cid-1",
            meta: &meta,
            replayed: 7,
            grip: true,
        };
        let text = forwarded(
            CLIENT_HANDSHAKE,
            "* 127.0.0.1:1,over_http\n",
            Some(ws),
            BodyKind::Length(6),
        );
        assert!(text.starts_with("POST /chat?x=1 HTTP/1.1\r\n"), "{text}");
        let f = fields(&text);
        assert_eq!(values(&f, "content-type"), [WEBSOCKET_EVENTS]);
        assert_eq!(values(&f, "accept"), [WEBSOCKET_EVENTS]);
        assert_eq!(values(&f, "connection-id"), ["cid-1"]);
        assert_eq!(values(&f, "content-length"), ["6"]);
        assert_eq!(values(&f, "content-bytes-replayed"), ["7"]);
        // The client's own Meta-* claims never reach the backend; only the backend's meta does.
        assert_eq!(values(&f, "meta-user"), ["alice"]);
        assert_eq!(values(&f, "sec-websocket-extensions"), ["grip"]);
        assert!(values(&f, "upgrade").is_empty() && values(&f, "connection").is_empty());
        assert_eq!(
            values(&f, "sec-websocket-key"),
            ["dGhlIHNhbXBsZSBub25jZQ=="]
        );
        assert_eq!(values(&f, "grip-sig"), ["tok"]);
    }
}
