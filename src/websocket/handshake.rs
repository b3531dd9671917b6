//! WebSocket opening handshakes (RFC 6455 section 4) in both directions, as pure functions over parsed heads.
//!
//! * Client → holdfast: [`check_upgrade`] validates an upgrade request and, when it fails, says how to refuse it
//!   ([`Reject`]); [`write_server_response`] writes the `101 Switching Protocols` head.
//! * holdfast → WebSocket backend (spec 6.1): [`client_key`] turns a nonce into `Sec-WebSocket-Key`,
//!   [`set_client_handshake_headers`] puts the handshake fields on the outgoing request, and
//!   [`check_server_response`] validates the backend's `101`.
//! * The GRIP extension (spec 6.1, 6.2): [`grip_extension`] reads the message prefix a backend selected, and
//!   [`remove_grip_extension`] takes it out of headers that go on to the client.
//!
//! Randomness stays with the caller: the key nonce is an argument, so this module is deterministic and tests
//! need no RNG. SHA-1 is implemented below (FIPS 180-4) because the crate has no SHA-1 dependency; here it
//! is only the handshake's proof of receipt, not a security primitive, and the FIPS test vectors cover it.
//!
//! Decisions:
//! * A missing `Sec-WebSocket-Version` is answered like an unsupported one, 426 with `Sec-WebSocket-Version: 13`.
//!   RFC 6455 4.2.2 prescribes that answer for a version the server does not understand. Clients that send no
//!   version at all speak a pre-RFC draft (hixie-76), and the header tells them what to speak instead.
//! * The version check comes before the key checks, so such a client learns about the version first.
//! * `Host` is not checked here: the session already refuses an HTTP/1.1 request without one.
//! * Offered subprotocols must be tokens (RFC 6455 4.1), and offered extensions must parse (RFC 6455 9.1).
//!   Either failing is a 400, though holdfast drops the client's extensions and negotiates none itself.
//! * A backend may only select what was offered: a subprotocol from the client's list, and no extension but
//!   `grip` (the only one holdfast sends). RFC 6455 4.1 makes the client fail the connection otherwise.
//! * [`grip_extension`] skips extension items that do not parse, so a malformed item disables GRIP without
//!   failing the handshake. A backend is trusted enough for that.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::grip::{parse_item, split_list};
use crate::http1::{
    header_value, is_hop_by_hop, remove_headers, set_header, write_response_head, Header,
    RequestHead, ResponseHead, Version,
};

/// RFC 6455 1.3: appended to the key before hashing; servers that do not know it cannot answer the handshake.
pub const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The only protocol version this module speaks (RFC 6455 4.1).
pub const WS_VERSION: &str = "13";
/// Length of a valid `Sec-WebSocket-Key`: base64 of 16 bytes, padding included.
pub const WS_KEY_MAX: usize = 24;
/// Length of `Sec-WebSocket-Accept`: base64 of a 20-byte SHA-1 digest.
pub const WS_ACCEPT_MAX: usize = 28;
/// Most subprotocols a client may offer; a longer list is refused (400).
pub const PROTOCOLS_MAX: usize = 32;
/// Most extensions a client may offer; a longer list is refused (400).
pub const EXTENSIONS_MAX: usize = 16;
/// Message prefix of `grip` without a `message-prefix` parameter (spec 6.1).
pub const DEFAULT_MESSAGE_PREFIX: &str = "m:";

const GRIP_EXTENSION: &str = "grip";
const MESSAGE_PREFIX_PARAM: &str = "message-prefix";
const SEC_WEBSOCKET_KEY: &str = "Sec-WebSocket-Key";
const SEC_WEBSOCKET_VERSION: &str = "Sec-WebSocket-Version";
const SEC_WEBSOCKET_PROTOCOL: &str = "Sec-WebSocket-Protocol";
const SEC_WEBSOCKET_EXTENSIONS: &str = "Sec-WebSocket-Extensions";
const SEC_WEBSOCKET_ACCEPT: &str = "Sec-WebSocket-Accept";

/// `Sec-WebSocket-Accept` for `key`: base64(SHA-1(key ‖ [`WS_GUID`])) (RFC 6455 4.2.2 item 5.4).
pub fn accept_key(key: &[u8]) -> [u8; WS_ACCEPT_MAX] {
    use sha1::Digest;
    let mut hash = sha1::Sha1::new();
    hash.update(key);
    hash.update(WS_GUID.as_bytes());
    let mut out = [0u8; WS_ACCEPT_MAX];
    // 20 bytes always encode to exactly 28 characters, so the buffer fits and the error arm is unreachable.
    let _ = STANDARD.encode_slice(hash.finalize(), &mut out);
    out
}

/// `Sec-WebSocket-Key` for a backend handshake. RFC 6455 4.1: the nonce "MUST be selected randomly for each
/// connection"; the caller supplies it so that this module stays deterministic.
pub fn client_key(nonce: &[u8; 16]) -> [u8; WS_KEY_MAX] {
    let mut out = [0u8; WS_KEY_MAX];
    // 16 bytes always encode to exactly 24 characters.
    let _ = STANDARD.encode_slice(nonce, &mut out);
    out
}

/// One offered or selected extension: its name and `;` parameters (values unquoted, `""` for a bare name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub name: String,
    pub params: Vec<(String, String)>,
}

/// A valid upgrade request, ready for the proxy to open the backend side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientUpgrade {
    /// The client's `Sec-WebSocket-Key`, exactly [`WS_KEY_MAX`] characters of base64 of 16 bytes.
    pub key: String,
    /// Offered subprotocols in order, from every `Sec-WebSocket-Protocol` line; each is a token.
    pub protocols: Vec<String>,
    /// Offered extensions in order, from every `Sec-WebSocket-Extensions` line.
    pub extensions: Vec<Extension>,
}

impl ClientUpgrade {
    /// The `Sec-WebSocket-Accept` value that answers this request.
    pub fn accept(&self) -> [u8; WS_ACCEPT_MAX] {
        accept_key(self.key.as_bytes())
    }
}

/// Why an upgrade request is refused, and how to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    /// 400, or 426 for a missing or unsupported version.
    pub code: u16,
    /// One line, fit for a plain-text body.
    pub reason: &'static str,
    /// Add `Sec-WebSocket-Version: 13` to the answer (RFC 6455 4.2.2, set together with 426).
    pub version_header: bool,
}

impl Reject {
    fn bad(reason: &'static str) -> Self {
        Reject {
            code: 400,
            reason,
            version_header: false,
        }
    }

    fn version(reason: &'static str) -> Self {
        Reject {
            code: 426,
            reason,
            version_header: true,
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.reason)
    }
}

impl std::error::Error for Reject {}

/// Validate a client's upgrade request (RFC 6455 4.2.1). The caller has already seen `Upgrade: websocket`
/// (that is how it chose a WebSocket route); this checks the rest, in the order the RFC lists it.
pub fn check_upgrade(head: &RequestHead) -> Result<ClientUpgrade, Reject> {
    // RFC 6455 4.2.1 item 1: "An HTTP/1.1 or higher GET request".
    if head.method != "GET" {
        return Err(Reject::bad("WebSocket upgrade requires a GET request"));
    }
    if head.version != Version::Http11 {
        return Err(Reject::bad("WebSocket upgrade requires HTTP/1.1"));
    }
    // Item 3: "An |Upgrade| header field containing the value "websocket", treated as an ASCII
    // case-insensitive value."
    if !head.has_token("upgrade", "websocket") {
        return Err(Reject::bad("Upgrade header does not contain websocket"));
    }
    // Item 4: "A |Connection| header field that includes the token "Upgrade", treated as an ASCII
    // case-insensitive value."
    if !head.has_token("connection", "upgrade") {
        return Err(Reject::bad("Connection header does not contain upgrade"));
    }
    // Item 6 with 4.2.2: a version the server does not understand gets 426 and the versions it does.
    let mut versions = head
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(SEC_WEBSOCKET_VERSION));
    match (versions.next(), versions.next()) {
        (None, _) => return Err(Reject::version("missing Sec-WebSocket-Version")),
        (Some(v), None) if v.value == WS_VERSION.as_bytes() => {}
        _ => return Err(Reject::version("unsupported Sec-WebSocket-Version")),
    }
    let key = check_key(&head.headers)?;
    let protocols = offered_protocols(&head.headers)?;
    let extensions = parse_extensions(&head.headers)
        .map_err(|()| Reject::bad("malformed Sec-WebSocket-Extensions"))?;
    if extensions.len() > EXTENSIONS_MAX {
        return Err(Reject::bad("too many Sec-WebSocket-Extensions"));
    }
    Ok(ClientUpgrade {
        key,
        protocols,
        extensions,
    })
}

/// Item 5: "A |Sec-WebSocket-Key| header field with a base64-encoded value that, when decoded, is 16 bytes in
/// length." Two key lines would leave the answer ambiguous, so they are refused too.
fn check_key(headers: &[Header]) -> Result<String, Reject> {
    let mut keys = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(SEC_WEBSOCKET_KEY));
    let key = match (keys.next(), keys.next()) {
        (None, _) => return Err(Reject::bad("missing Sec-WebSocket-Key")),
        (Some(k), None) => k.value.as_slice(),
        (Some(_), Some(_)) => return Err(Reject::bad("more than one Sec-WebSocket-Key")),
    };
    // The length check first bounds the decode; the strict engine refuses non-canonical padding bits.
    let mut nonce = [0u8; 18];
    let decoded = if key.len() == WS_KEY_MAX {
        STANDARD.decode_slice(key, &mut nonce).ok()
    } else {
        None
    };
    match (decoded, std::str::from_utf8(key)) {
        (Some(16), Ok(key)) => Ok(key.to_string()),
        _ => Err(Reject::bad("Sec-WebSocket-Key is not base64 of 16 bytes")),
    }
}

/// RFC 6455 4.1: each subprotocol is a non-empty token; repeated lines form one list (RFC 9110 5.3).
fn offered_protocols(headers: &[Header]) -> Result<Vec<String>, Reject> {
    let mut out = Vec::new();
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(SEC_WEBSOCKET_PROTOCOL))
    {
        for item in h.value.split(|&b| b == b',') {
            let item = trim_ows(item);
            // RFC 9110 5.6.1: empty list elements are ignored.
            if item.is_empty() {
                continue;
            }
            let Some(token) = std::str::from_utf8(item).ok().filter(|t| is_token(t)) else {
                return Err(Reject::bad(
                    "Sec-WebSocket-Protocol is not a list of tokens",
                ));
            };
            if out.len() == PROTOCOLS_MAX {
                return Err(Reject::bad("too many Sec-WebSocket-Protocol values"));
            }
            out.push(token.to_string());
        }
    }
    Ok(out)
}

/// Every extension of every `Sec-WebSocket-Extensions` line, or `Err` at the first malformed one.
/// RFC 6455 9.1: `extension-token *( ";" extension-param )`, params `token [ "=" (token | quoted-string) ]`.
/// Values are not held to the token rule: `grip`'s `message-prefix="m:"` is not a token.
fn parse_extensions(headers: &[Header]) -> Result<Vec<Extension>, ()> {
    let mut out = Vec::new();
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(SEC_WEBSOCKET_EXTENSIONS))
    {
        let value = std::str::from_utf8(&h.value).map_err(|_| ())?;
        for item in split_list(value) {
            out.push(parse_extension(item).ok_or(())?);
        }
    }
    Ok(out)
}

fn parse_extension(item: &str) -> Option<Extension> {
    let (name, params) = parse_item(item).ok()?;
    if !is_token(&name) || params.iter().any(|(k, _)| !is_token(k)) {
        return None;
    }
    Some(Extension { name, params })
}

/// The message prefix of the `grip` extension in `headers` (every `Sec-WebSocket-Extensions` line), or `None`
/// when the backend did not select it (GRIP is then off for the connection, spec 6.1).
///
/// `grip` alone selects [`DEFAULT_MESSAGE_PREFIX`]; `grip; message-prefix=VALUE` selects VALUE, a token or a
/// quoted string, possibly empty (then every message passes). A bare `message-prefix` parameter counts as
/// empty. Names compare case-insensitively; the first `grip` item wins; items that do not parse are skipped.
pub fn grip_extension(headers: &[Header]) -> Option<String> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(SEC_WEBSOCKET_EXTENSIONS))
        .filter_map(|h| std::str::from_utf8(&h.value).ok())
        .flat_map(split_list)
        .filter_map(parse_extension)
        .find(|ext| ext.name.eq_ignore_ascii_case(GRIP_EXTENSION))
        .map(|ext| {
            ext.params
                .into_iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(MESSAGE_PREFIX_PARAM))
                .map_or_else(|| DEFAULT_MESSAGE_PREFIX.to_string(), |(_, v)| v)
        })
}

/// Take the `grip` extension out of `headers` before they go to the client (spec 6.2 step 1): other extension
/// items stay as written, and a `Sec-WebSocket-Extensions` line left empty is removed.
///
/// This is the WebSocket-over-HTTP behaviour. A passthrough session (spec 6.1) removes the backend's
/// `Sec-WebSocket-Extensions` altogether, since holdfast negotiates no extension with the client.
pub fn remove_grip_extension(headers: &mut Vec<Header>) {
    headers.retain_mut(|h| {
        if !h.name.eq_ignore_ascii_case(SEC_WEBSOCKET_EXTENSIONS) {
            return true;
        }
        // A line that is not UTF-8 cannot be split safely; it cannot name grip for `grip_extension` either.
        let Ok(value) = std::str::from_utf8(&h.value) else {
            return true;
        };
        let items = split_list(value);
        let count = items.len();
        let kept: Vec<&str> = items
            .into_iter()
            .filter(|item| {
                parse_extension(item)
                    .is_none_or(|ext| !ext.name.eq_ignore_ascii_case(GRIP_EXTENSION))
            })
            .collect();
        if kept.is_empty() {
            return false;
        }
        // Rewrite only a line that named grip, so other lines reach the client byte for byte.
        if kept.len() != count {
            h.value = kept.join(", ").into_bytes();
        }
        true
    });
}

/// Write the `101 Switching Protocols` head that completes a client's handshake: `Upgrade: websocket`,
/// `Connection: Upgrade`, `Sec-WebSocket-Accept`, `Sec-WebSocket-Protocol` when one was selected, then `extra`.
///
/// `extra` is typically the backend's answer (spec 6.1/6.2 forward its other headers). Fields this head sets
/// itself, hop-by-hop fields and body framing (`Content-Length`; a 101 has no body) are left out of it.
/// Whether `Sec-WebSocket-Extensions` passes is the caller's choice (see [`remove_grip_extension`]).
/// Names and values are written verbatim: they must come from a parsed head or pass the http1 validators.
pub fn write_server_response(
    out: &mut Vec<u8>,
    accept: &[u8; WS_ACCEPT_MAX],
    protocol: Option<&str>,
    extra: &[Header],
) {
    let mut headers = Vec::with_capacity(4 + extra.len());
    headers.push(Header::new("Upgrade", b"websocket"));
    headers.push(Header::new("Connection", b"Upgrade"));
    headers.push(Header::new(SEC_WEBSOCKET_ACCEPT, accept));
    if let Some(p) = protocol {
        headers.push(Header::new(SEC_WEBSOCKET_PROTOCOL, p.as_bytes()));
    }
    headers.extend(
        extra
            .iter()
            .filter(|h| {
                !is_hop_by_hop(&h.name)
                    && ![
                        SEC_WEBSOCKET_ACCEPT,
                        SEC_WEBSOCKET_PROTOCOL,
                        "Content-Length",
                    ]
                    .iter()
                    .any(|n| h.name.eq_ignore_ascii_case(n))
            })
            .cloned(),
    );
    write_response_head(out, Version::Http11, 101, "Switching Protocols", &headers);
}

/// Put the handshake fields on a request to a WebSocket backend (spec 6.1): `Upgrade`, `Connection`,
/// `Sec-WebSocket-Version`, `Sec-WebSocket-Key`, replacing any the client sent. The client's extensions are
/// replaced by `grip` when `grip` is set (they are dropped otherwise). `Sec-WebSocket-Protocol` is left as is:
/// the client's offer is forwarded.
pub fn set_client_handshake_headers(headers: &mut Vec<Header>, key: &[u8; WS_KEY_MAX], grip: bool) {
    set_header(headers, "Upgrade", b"websocket");
    set_header(headers, "Connection", b"Upgrade");
    set_header(headers, SEC_WEBSOCKET_VERSION, WS_VERSION.as_bytes());
    set_header(headers, SEC_WEBSOCKET_KEY, key);
    remove_headers(headers, SEC_WEBSOCKET_EXTENSIONS);
    if grip {
        headers.push(Header::new(
            SEC_WEBSOCKET_EXTENSIONS,
            GRIP_EXTENSION.as_bytes(),
        ));
    }
}

/// What a backend's valid `101` selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAccept {
    /// The selected subprotocol, one of those offered.
    pub protocol: Option<String>,
    /// GRIP's message prefix when the backend selected the `grip` extension (see [`grip_extension`]).
    pub grip_prefix: Option<String>,
}

/// Why a backend's handshake answer is not a valid `101`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendHandshakeError {
    /// Not 101: the caller relays the response to the client as the rejection (spec 6.1).
    Status(u16),
    MissingUpgrade,
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Accept` is absent or does not match the key sent.
    BadAccept,
    /// More than one subprotocol, or one the client did not offer.
    BadProtocol,
    /// An extension other than `grip`, or an extension list that does not parse.
    BadExtensions,
}

impl fmt::Display for BackendHandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendHandshakeError::Status(code) => {
                write!(f, "backend answered the WebSocket handshake with {code}")
            }
            BackendHandshakeError::MissingUpgrade => {
                f.write_str("backend 101 has no Upgrade: websocket")
            }
            BackendHandshakeError::MissingConnectionUpgrade => {
                f.write_str("backend 101 has no Connection: upgrade")
            }
            BackendHandshakeError::BadAccept => {
                f.write_str("backend 101 has a missing or wrong Sec-WebSocket-Accept")
            }
            BackendHandshakeError::BadProtocol => {
                f.write_str("backend 101 selected a subprotocol that was not offered")
            }
            BackendHandshakeError::BadExtensions => {
                f.write_str("backend 101 selected an extension other than grip")
            }
        }
    }
}

impl std::error::Error for BackendHandshakeError {}

/// Validate a backend's answer to a handshake that sent `key` and offered `offered_protocols` (RFC 6455 4.1,
/// "the client MUST validate the server's response as follows").
pub fn check_server_response(
    head: &ResponseHead,
    key: &str,
    offered_protocols: &[String],
) -> Result<ServerAccept, BackendHandshakeError> {
    // 4.1 item 1: "If the status code received from the server is not 101, the client handles the response
    // per HTTP procedures."
    if head.code != 101 {
        return Err(BackendHandshakeError::Status(head.code));
    }
    // Item 2: "If the response lacks an |Upgrade| header field or the |Upgrade| header field contains a value
    // that is not an ASCII case-insensitive match for the value "websocket", the client MUST _Fail the
    // WebSocket Connection_."
    if !head.has_token("upgrade", "websocket") {
        return Err(BackendHandshakeError::MissingUpgrade);
    }
    // Item 3: the same for |Connection| and "Upgrade".
    if !head.has_token("connection", "upgrade") {
        return Err(BackendHandshakeError::MissingConnectionUpgrade);
    }
    // Item 4: the accept value must be the base64-encoded SHA-1 of the key and the GUID, "ignoring any
    // leading and trailing whitespace" (the head parser already trimmed it).
    if header_value(&head.headers, SEC_WEBSOCKET_ACCEPT)
        != Some(accept_key(key.as_bytes()).as_slice())
    {
        return Err(BackendHandshakeError::BadAccept);
    }
    // Item 5: an extension "not present in the client's handshake" fails the connection; holdfast offers grip.
    let extensions =
        parse_extensions(&head.headers).map_err(|()| BackendHandshakeError::BadExtensions)?;
    if extensions
        .iter()
        .any(|e| !e.name.eq_ignore_ascii_case(GRIP_EXTENSION))
    {
        return Err(BackendHandshakeError::BadExtensions);
    }
    // Item 6: a subprotocol "that was not present in the client's handshake" fails the connection.
    let protocol = selected_protocol(&head.headers, offered_protocols)?;
    Ok(ServerAccept {
        protocol,
        grip_prefix: grip_extension(&head.headers),
    })
}

fn selected_protocol(
    headers: &[Header],
    offered: &[String],
) -> Result<Option<String>, BackendHandshakeError> {
    let mut lines = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(SEC_WEBSOCKET_PROTOCOL));
    let line = match (lines.next(), lines.next()) {
        (None, _) => return Ok(None),
        (Some(_), Some(_)) => return Err(BackendHandshakeError::BadProtocol),
        (Some(line), None) => line,
    };
    match std::str::from_utf8(&line.value) {
        Ok(p) if offered.iter().any(|o| o == p) => Ok(Some(p.to_string())),
        _ => Err(BackendHandshakeError::BadProtocol),
    }
}

/// RFC 9110 5.6.2 token.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

/// Strip SP / HTAB from both ends (RFC 9110 5.6.3 OWS).
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |p| p + 1);
    bytes.get(start..end).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::{parse_request_head, parse_response_head, HeadLimits};
    use crate::test_rng::XorShift64 as Rng;

    /// RFC 6455 1.3's worked example.
    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    /// A valid upgrade request; table cases edit it by replacing the first occurrence of a string.
    const REQUEST: &str =
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    /// A valid answer to it.
    const RESPONSE: &str =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

    fn edit(base: &str, from: &str, to: &str) -> String {
        assert!(base.contains(from), "{from:?}");
        base.replacen(from, to, 1)
    }

    fn request(from: &str, to: &str) -> RequestHead {
        let text = edit(REQUEST, from, to);
        let parsed = parse_request_head(text.as_bytes(), &HeadLimits::default());
        parsed.expect("parses").expect("complete").0
    }

    fn response(from: &str, to: &str) -> ResponseHead {
        let text = edit(RESPONSE, from, to);
        let parsed = parse_response_head(text.as_bytes(), &HeadLimits::default());
        parsed.expect("parses").expect("complete").0
    }

    /// Header fields as (name, value) pairs.
    type Fields<'a> = &'a [(&'a str, &'a str)];

    fn hs(list: &[(&str, &str)]) -> Vec<Header> {
        list.iter()
            .map(|(n, v)| Header::new(n, v.as_bytes()))
            .collect()
    }
    #[test]
    fn accept_and_client_keys() {
        assert_eq!(&accept_key(KEY.as_bytes()), ACCEPT.as_bytes());
        assert_eq!(&client_key(b"the sample nonce"), KEY.as_bytes());
        assert_eq!(&client_key(&[0; 16]), b"AAAAAAAAAAAAAAAAAAAAAA==");
    }

    #[test]
    fn check_upgrade_rejections() {
        const VERSION: &str = "Sec-WebSocket-Version: 13\r\n";
        const KEY_LINE: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        const GET: &str = "WebSocket upgrade requires a GET request";
        const UPGRADE: &str = "Upgrade header does not contain websocket";
        const CONNECTION: &str = "Connection header does not contain upgrade";
        const NO_VERSION: &str = "missing Sec-WebSocket-Version";
        const BAD_VERSION: &str = "unsupported Sec-WebSocket-Version";
        const BAD_KEY: &str = "Sec-WebSocket-Key is not base64 of 16 bytes";
        const BAD_PROTOCOL: &str = "Sec-WebSocket-Protocol is not a list of tokens";
        const BAD_EXTENSIONS: &str = "malformed Sec-WebSocket-Extensions";
        let many_protocols = format!(
            "\r\nSec-WebSocket-Protocol: {}\r\n\r\n",
            ["p"; PROTOCOLS_MAX + 1].join(",")
        );
        let many_extensions = format!(
            "\r\nSec-WebSocket-Extensions: {}\r\n\r\n",
            ["e"; EXTENSIONS_MAX + 1].join(",")
        );
        let cases: &[(&str, &str, u16, &str)] = &[
            ("GET", "POST", 400, GET),
            ("GET", "get", 400, GET),
            (
                "HTTP/1.1",
                "HTTP/1.0",
                400,
                "WebSocket upgrade requires HTTP/1.1",
            ),
            ("Upgrade: websocket", "Upgrade: h2c", 400, UPGRADE),
            ("Upgrade: websocket\r\n", "", 400, UPGRADE),
            (
                "Connection: Upgrade",
                "Connection: keep-alive",
                400,
                CONNECTION,
            ),
            (
                "Connection: Upgrade",
                "Connection: upgraded",
                400,
                CONNECTION,
            ),
            (VERSION, "", 426, NO_VERSION),
            ("Version: 13", "Version: 8", 426, BAD_VERSION),
            ("Version: 13", "Version: 13, 8", 426, BAD_VERSION),
            ("Version: 13", "Version: 013", 426, BAD_VERSION),
            (
                VERSION,
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n",
                426,
                BAD_VERSION,
            ),
            // The version is checked before the key.
            ("Version: 13", "Version: 12\r\nX: 1", 426, BAD_VERSION),
            (KEY_LINE, "", 400, "missing Sec-WebSocket-Key"),
            (
                "\r\n\r\n",
                "\r\nSec-WebSocket-Key: abc\r\n\r\n",
                400,
                "more than one Sec-WebSocket-Key",
            ),
            // 15 bytes.
            (KEY, "AAAAAAAAAAAAAAAAAAAA", 400, BAD_KEY),
            // 17 bytes in 24 characters.
            (KEY, "AAAAAAAAAAAAAAAAAAAAAAA=", 400, BAD_KEY),
            // 16 bytes without the padding.
            (KEY, "AAAAAAAAAAAAAAAAAAAAAA", 400, BAD_KEY),
            // Non-zero padding bits.
            (KEY, "dGhlIHNhbXBsZSBub25jZR==", 400, BAD_KEY),
            (KEY, "dGhlIHNhbXBsZSBub25j!Q==", 400, BAD_KEY),
            (
                KEY,
                "dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==",
                400,
                BAD_KEY,
            ),
            (KEY, "test", 400, BAD_KEY),
            (
                "\r\n\r\n",
                "\r\nSec-WebSocket-Protocol: chat, bad proto\r\n\r\n",
                400,
                BAD_PROTOCOL,
            ),
            (
                "\r\n\r\n",
                "\r\nSec-WebSocket-Protocol: \"chat\"\r\n\r\n",
                400,
                BAD_PROTOCOL,
            ),
            (
                "\r\n\r\n",
                "\r\nSec-WebSocket-Protocol: a;b\r\n\r\n",
                400,
                BAD_PROTOCOL,
            ),
            (
                "\r\n\r\n",
                &many_protocols,
                400,
                "too many Sec-WebSocket-Protocol values",
            ),
            (
                "\r\n\r\n",
                "\r\nSec-WebSocket-Extensions: a; =b\r\n\r\n",
                400,
                BAD_EXTENSIONS,
            ),
            (
                "\r\n\r\n",
                "\r\nSec-WebSocket-Extensions: x; y=\"open\r\n\r\n",
                400,
                BAD_EXTENSIONS,
            ),
            (
                "\r\n\r\n",
                "\r\nSec-WebSocket-Extensions: bad name\r\n\r\n",
                400,
                BAD_EXTENSIONS,
            ),
            (
                "\r\n\r\n",
                "\r\nSec-WebSocket-Extensions: \"q\"\r\n\r\n",
                400,
                BAD_EXTENSIONS,
            ),
            (
                "\r\n\r\n",
                &many_extensions,
                400,
                "too many Sec-WebSocket-Extensions",
            ),
        ];
        for (from, to, code, reason) in cases {
            let want = Reject {
                code: *code,
                reason,
                version_header: *code == 426,
            };
            assert_eq!(
                check_upgrade(&request(from, to)),
                Err(want),
                "{from:?} -> {to:?}"
            );
            assert!(!want.to_string().contains('\n'));
        }
        // The limits themselves are fine.
        let most = format!(
            "\r\nSec-WebSocket-Protocol: {}\r\nSec-WebSocket-Extensions: {}\r\n\r\n",
            ["p"; PROTOCOLS_MAX].join(","),
            ["e"; EXTENSIONS_MAX].join(",")
        );
        let up = check_upgrade(&request("\r\n\r\n", &most)).expect("valid");
        assert_eq!(
            (up.protocols.len(), up.extensions.len()),
            (PROTOCOLS_MAX, EXTENSIONS_MAX)
        );
        // obs-text (RFC 9110 5.5) gets through the head parser but cannot be split safely.
        let mut head = request("X", "X");
        head.headers
            .push(Header::new("Sec-WebSocket-Extensions", b"\xff"));
        assert_eq!(
            check_upgrade(&head).map_err(|r| r.reason),
            Err(BAD_EXTENSIONS)
        );
    }

    #[test]
    fn check_upgrade_accepts() {
        let ext = |name: &str, params: &[(&str, &str)]| Extension {
            name: name.to_string(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        const END: &str = "\r\n\r\n";
        let cases: Vec<(&str, &str, &[&str], Vec<Extension>)> = vec![
            ("Host", "Host", &[], vec![]),
            ("Connection: Upgrade", "Connection: keep-alive, Upgrade", &[], vec![]),
            ("Connection: Upgrade", "connection: keep-alive\r\nConnection: upgrade", &[], vec![]),
            ("Upgrade: websocket", "upgrade: WebSocket", &[], vec![]),
            ("Upgrade: websocket", "Upgrade: foo/2, websocket", &[], vec![]),
            ("Version: 13", "version:   13  ", &[], vec![]),
            (
                END,
                "\r\nSec-WebSocket-Protocol: chat, superchat\r\nX: 1\r\nsec-websocket-protocol: v2.json ,, \r\n\r\n",
                &["chat", "superchat", "v2.json"],
                vec![],
            ),
            (
                END,
                "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo\r\n\
                 Sec-WebSocket-Extensions: grip; message-prefix=\"a,b\"\r\n\r\n",
                &[],
                vec![
                    ext("permessage-deflate", &[("client_max_window_bits", "")]),
                    ext("x-foo", &[]),
                    ext("grip", &[("message-prefix", "a,b")]),
                ],
            ),
        ];
        for (from, to, protocols, extensions) in cases {
            let up = check_upgrade(&request(from, to)).expect("valid");
            assert_eq!(up.key, KEY);
            assert_eq!(&up.accept(), ACCEPT.as_bytes());
            assert_eq!(up.protocols, *protocols, "{to:?}");
            assert_eq!(up.extensions, extensions, "{to:?}");
        }
    }

    #[test]
    fn grip_extension_table() {
        const NAME: &str = "Sec-WebSocket-Extensions";
        let cases: &[(Fields, Option<&str>)] = &[
            (&[], None),
            (&[("X-Other", "grip")], None),
            (&[(NAME, "grip")], Some("m:")),
            (&[("sec-websocket-extensions", " GRIP ")], Some("m:")),
            (&[(NAME, "grip; message-prefix=\"\"")], Some("")),
            (&[(NAME, "grip; message-prefix")], Some("")),
            (&[(NAME, "grip; message-prefix=abc")], Some("abc")),
            (&[(NAME, "grip; Message-Prefix=z; other=1")], Some("z")),
            (&[(NAME, "grip;other=1")], Some("m:")),
            (
                &[(NAME, "permessage-deflate, grip; message-prefix=\"x:\"")],
                Some("x:"),
            ),
            (&[(NAME, "grip; message-prefix=\"a,b\"")], Some("a,b")),
            (&[(NAME, "grip; message-prefix=\"a;b\"; x=1")], Some("a;b")),
            (&[(NAME, "grip; message-prefix=\"q\\\"x\"")], Some("q\"x")),
            // A quoted comma does not start an item: this `grip` is inside a parameter value.
            (&[(NAME, "foo; x=\"a, grip\", bar")], None),
            (
                &[
                    (NAME, "permessage-deflate"),
                    (NAME, "grip; message-prefix=p:"),
                ],
                Some("p:"),
            ),
            (&[(NAME, "grip, grip; message-prefix=x")], Some("m:")),
            (&[(NAME, "gripx, xgrip")], None),
            // Items that do not parse are skipped.
            (&[(NAME, "grip; message-prefix=\"open")], None),
            (&[(NAME, "grip; =x, grip; message-prefix=ok")], Some("ok")),
        ];
        for (headers, want) in cases {
            let got = grip_extension(&hs(headers));
            assert_eq!(got.as_deref(), *want, "{headers:?}");
        }
        let not_utf8 = [Header::new(NAME, b"grip; message-prefix=\xff")];
        assert_eq!(grip_extension(&not_utf8), None);
    }

    #[test]
    fn remove_grip_extension_table() {
        const NAME: &str = "Sec-WebSocket-Extensions";
        let cases: &[(Fields, Fields)] = &[
            (&[("X", "1"), (NAME, "grip")], &[("X", "1")]),
            (
                &[(NAME, "permessage-deflate,  grip; message-prefix=\"a,b\"")],
                &[(NAME, "permessage-deflate")],
            ),
            // Lines without grip stay byte for byte.
            (
                &[(NAME, "a;x=1,b"), ("sec-websocket-extensions", "GRIP")],
                &[(NAME, "a;x=1,b")],
            ),
            (
                &[(NAME, "x, grip, y; k=\"v\""), ("Y", "2")],
                &[(NAME, "x, y; k=\"v\""), ("Y", "2")],
            ),
            // Items that do not parse are not grip, and stay.
            (&[(NAME, "grip; =x, grip")], &[(NAME, "grip; =x")]),
            (&[(NAME, " , ")], &[]),
            (&[("Other", "grip")], &[("Other", "grip")]),
        ];
        for (input, want) in cases {
            let mut h = hs(input);
            remove_grip_extension(&mut h);
            assert_eq!(h, hs(want), "{input:?}");
            assert_eq!(grip_extension(&h), None, "{input:?}");
        }
    }

    #[test]
    fn server_response_bytes() {
        let accept = accept_key(KEY.as_bytes());
        let mut out = Vec::new();
        let extra = hs(&[
            ("Set-Cookie", "a=1"),
            ("Connection", "close"),
            ("Content-Length", "0"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"),
            ("Sec-WebSocket-Accept", "forged"),
            ("sec-websocket-protocol", "other"),
            ("Sec-WebSocket-Extensions", "x"),
        ]);
        write_server_response(&mut out, &accept, Some("chat"), &extra);
        let want = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\
                    Set-Cookie: a=1\r\nSec-WebSocket-Extensions: x\r\n\r\n";
        assert_eq!(String::from_utf8(out).expect("ascii"), want);

        // Appends; the result is what a client-side check accepts.
        let mut out = b"prefix".to_vec();
        write_server_response(&mut out, &accept, None, &[]);
        assert_eq!(out.strip_prefix(b"prefix"), Some(RESPONSE.as_bytes()));
    }

    #[test]
    fn client_handshake_headers() {
        let key = client_key(b"the sample nonce");
        let mut h = hs(&[
            ("Host", "backend"),
            ("upgrade", "websocket"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-WebSocket-Key", "client-key"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Protocol", "chat"),
            ("Sec-WebSocket-Extensions", "permessage-deflate"),
        ]);
        let mut without = h.clone();
        set_client_handshake_headers(&mut h, &key, true);
        let want = [
            ("Host", "backend"),
            ("upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Protocol", "chat"),
            ("Sec-WebSocket-Extensions", "grip"),
        ];
        assert_eq!(h, hs(&want));
        set_client_handshake_headers(&mut without, &key, false);
        assert_eq!(without, hs(&want[..6]));
        let mut empty = Vec::new();
        set_client_handshake_headers(&mut empty, &key, true);
        let want = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Extensions", "grip"),
        ];
        assert_eq!(empty, hs(&want));
    }

    #[test]
    fn check_server_response_table() {
        use BackendHandshakeError as E;
        const ACCEPT_LINE: &str = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
        const END: &str = "\r\n\r\n";
        type Want = Result<(Option<&'static str>, Option<&'static str>), E>;
        let cases: &[(&str, &str, Want)] = &[
            (END, END, Ok((None, None))),
            (END, "\r\nSec-WebSocket-Extensions: grip\r\n\r\n", Ok((None, Some("m:")))),
            (
                END,
                "\r\nSec-WebSocket-Extensions: grip; message-prefix=\"\"\r\nSec-WebSocket-Protocol: v2\r\n\r\n",
                Ok((Some("v2"), Some(""))),
            ),
            ("Upgrade: websocket", "upgrade: WebSocket", Ok((None, None))),
            ("Connection: Upgrade", "connection: keep-alive, upgrade", Ok((None, None))),
            ("Accept: ", "Accept:   ", Ok((None, None))),
            ("101 Switching Protocols", "400 Bad Request", Err(E::Status(400))),
            ("101 Switching Protocols", "200 OK", Err(E::Status(200))),
            ("Upgrade: websocket\r\n", "", Err(E::MissingUpgrade)),
            ("Upgrade: websocket", "Upgrade: h2c", Err(E::MissingUpgrade)),
            ("Connection: Upgrade\r\n", "", Err(E::MissingConnectionUpgrade)),
            (ACCEPT_LINE, "", Err(E::BadAccept)),
            (ACCEPT, KEY, Err(E::BadAccept)),
            (ACCEPT, "S3PPLMBITXAQ9KYGZZHZRBK+XOO=", Err(E::BadAccept)),
            (END, "\r\nSec-WebSocket-Protocol: other\r\n\r\n", Err(E::BadProtocol)),
            (END, "\r\nSec-WebSocket-Protocol: chat, v2\r\n\r\n", Err(E::BadProtocol)),
            (
                END,
                "\r\nSec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
                Err(E::BadProtocol),
            ),
            (END, "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n", Err(E::BadExtensions)),
            (END, "\r\nSec-WebSocket-Extensions: grip, x\r\n\r\n", Err(E::BadExtensions)),
            (END, "\r\nSec-WebSocket-Extensions: grip; message-prefix=\"a\r\n\r\n", Err(E::BadExtensions)),
        ];
        let offered = ["chat".to_string(), "v2".to_string()];
        for (from, to, want) in cases {
            let got = check_server_response(&response(from, to), KEY, &offered);
            let want = want.clone().map(|(protocol, grip)| ServerAccept {
                protocol: protocol.map(str::to_string),
                grip_prefix: grip.map(str::to_string),
            });
            assert_eq!(got, want, "{from:?} -> {to:?}");
            if let Err(e) = got {
                assert!(!e.to_string().contains('\n'));
            }
        }
        // Nothing offered: any selected subprotocol is refused.
        let head = response(END, "\r\nSec-WebSocket-Protocol: chat\r\n\r\n");
        assert_eq!(check_server_response(&head, KEY, &[]), Err(E::BadProtocol));
    }

    #[test]
    fn random_header_values_never_panic() {
        const ALPHABET: &[u8] = b"grip;,=\" \\\tmessage-prefix:xa\xff\xc3\xa9";
        const NAMES: [&str; 3] = [
            "Sec-WebSocket-Extensions",
            "Sec-WebSocket-Protocol",
            "Sec-WebSocket-Key",
        ];
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..5000 {
            let mut headers = Vec::new();
            for _ in 0..rng.below(4) {
                let len = rng.below(40);
                let value = (0..len)
                    .map(|_| ALPHABET[rng.below(ALPHABET.len())])
                    .collect();
                let name = NAMES[rng.below(NAMES.len())].to_string();
                headers.push(Header { name, value });
            }
            let prefix = grip_extension(&headers);
            let mut stripped = headers.clone();
            remove_grip_extension(&mut stripped);
            assert_eq!(grip_extension(&stripped), None, "{headers:?}");
            if prefix.is_none() {
                // No parsable grip item: only extension lines that hold no item at all go.
                let mut want = headers.clone();
                want.retain(|h| {
                    !h.name.eq_ignore_ascii_case(SEC_WEBSOCKET_EXTENSIONS)
                        || std::str::from_utf8(&h.value).map_or(true, |v| !split_list(v).is_empty())
                });
                assert_eq!(stripped, want);
            }
            let mut head = request("X", "X");
            head.headers.retain(|h| h.name != "Sec-WebSocket-Key");
            head.headers.extend(headers);
            if let Ok(up) = check_upgrade(&head) {
                assert_eq!(up.key.len(), WS_KEY_MAX);
                assert!(up.protocols.len() <= PROTOCOLS_MAX);
                assert!(up.extensions.len() <= EXTENSIONS_MAX);
            }
        }
    }
}
