//! The publish item schema (spec 5.2): one channel plus up to three formats (`http-response`,
//! `http-stream`, `ws-message`), validated once, before anything is delivered.
//!
//! Error reasons are Pushpin's own strings, because publishers see them in the control API's 400
//! body. Where Pushpin accepts something that would break a client connection later (a header name
//! that is not a token, CR/LF in a header value or reason, an oversized WebSocket control payload,
//! invalid base64, an empty channel) this parser refuses it with a reason in the same style.
//!
//! The `json` flag mirrors Pushpin's distinction between JSON input (a `QVariantMap`) and
//! tnetstring input (a `QVariantHash`): `body-bin`/`content-bin` are base64 text only in JSON;
//! from tnetstring, `ws-message` `content-bin` is raw bytes and the `http-*` `*-bin` keys are not
//! consulted at all, exactly as in Pushpin.

use std::collections::HashMap;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

use super::value::Value;

/// RFC 6455 5.5: "All control frames MUST have a payload length of 125 bytes or less".
pub const WS_CONTROL_PAYLOAD_MAX: usize = 125;
/// RFC 6455 5.5.1: a close payload is a 2-byte code plus the reason, within the 125-byte limit.
pub const WS_CLOSE_REASON_MAX: usize = WS_CONTROL_PAYLOAD_MAX - 2;
/// Highest status code a publish may set (spec 5.2: 0–999).
pub const HTTP_CODE_MAX: u16 = 999;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Send,
    Hint,
    Close,
    Refresh,
}

/// `http-response`. For actions other than `Send` only `action` is meaningful.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponseFormat {
    pub action: Action,
    /// 200 unless given.
    pub code: u16,
    /// `None` (absent or empty): use the standard phrase for `code`.
    pub reason: Option<String>,
    /// Names are valid tokens; values contain no CR, LF or NUL.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Exactly one of `body` and `body_patch` is set when `action` is `Send`.
    pub body: Option<Vec<u8>>,
    /// The `body-patch` list (RFC 6902 operations), not yet checked operation by operation.
    pub body_patch: Option<serde_json::Value>,
    /// `None`: deliver regardless of the subscription's filters. `Some(list)`, even an empty one:
    /// deliver only where the subscription's content filters equal `list` (Pushpin's
    /// `haveContentFilters`).
    pub content_filters: Option<Vec<String>>,
}

/// `http-stream`. `content` is empty unless `action` is `Send`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpStreamFormat {
    pub action: Action,
    pub content: Vec<u8>,
    /// As in `HttpResponseFormat::content_filters`.
    pub content_filters: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsType {
    Text,
    Binary,
    Ping,
    Pong,
}

/// `ws-message`. `kind`/`content` matter for `Send` (ping and pong content is at most
/// `WS_CONTROL_PAYLOAD_MAX` bytes); `close_code`/`close_reason` for `Close` (reason at most
/// `WS_CLOSE_REASON_MAX` bytes). Text content is passed through as published, unchecked for UTF-8.
#[derive(Debug, Clone, PartialEq)]
pub struct WsMessageFormat {
    pub action: Action,
    pub kind: WsType,
    pub content: Vec<u8>,
    pub close_code: Option<u16>,
    pub close_reason: Option<String>,
    /// As in `HttpResponseFormat::content_filters`.
    pub content_filters: Option<Vec<String>>,
}

/// One validated publish item; at least one format is present.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub channel: String,
    pub id: Option<String>,
    pub prev_id: Option<String>,
    pub http_response: Option<HttpResponseFormat>,
    pub http_stream: Option<HttpStreamFormat>,
    pub ws_message: Option<WsMessageFormat>,
    /// Unique keys, in input order (JSON objects arrive sorted by key).
    pub meta: Vec<(String, String)>,
    pub size: Option<u64>,
    pub no_seq: bool,
}

const ITEM: &str = "publish item object";
const HTTP_RESPONSE: &str = "'http-response'";
const HTTP_STREAM: &str = "'http-stream'";
const WS_MESSAGE: &str = "'ws-message'";

/// Validates one publish item.
///
/// `json` says the value came from JSON (then `*-bin` fields are base64 text); from tnetstring,
/// `ws-message` `content-bin` is raw bytes. `channel_override` is the SUB socket's first frame: when
/// non-empty it replaces the payload's channel, which then need not be present.
///
/// Formats may sit inside `formats` or, when `formats` is absent, at the top level (legacy). An
/// invalid `action` yields an empty reason, as Pushpin does (spec Appendix D #8).
pub fn parse_item(v: &Value, json: bool, channel_override: Option<&str>) -> Result<Item, String> {
    if !v.is_map() {
        return Err(format!("{ITEM} is not an object"));
    }

    let channel = match channel_override.filter(|c| !c.is_empty()) {
        Some(c) => c.to_owned(),
        None => required_string(v, ITEM, "channel")?,
    };
    if channel.is_empty() {
        return Err(invalid_value(ITEM, "channel"));
    }
    let id = optional_string(v, ITEM, "id")?;
    let prev_id = optional_string(v, ITEM, "prev-id")?;

    let formats = match v.get("formats") {
        None | Some(Value::Null) => v,
        Some(f) if f.is_map() => f,
        Some(_) => return Err(wrong_type(ITEM, "formats")),
    };
    let (vresp, vstream, vws) = (
        formats.get("http-response"),
        formats.get("http-stream"),
        formats.get("ws-message"),
    );
    // Pushpin only checks that `formats` is non-empty; a map holding only unknown formats would
    // publish nothing while reporting success, so it is refused too.
    if vresp.is_none() && vstream.is_none() && vws.is_none() {
        return Err("no formats specified".to_owned());
    }
    let http_response = vresp.map(|f| parse_http_response(f, json)).transpose()?;
    let http_stream = vstream.map(|f| parse_http_stream(f, json)).transpose()?;
    let ws_message = vws.map(|f| parse_ws_message(f, json)).transpose()?;

    let meta = match v.get("meta") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Map(entries)) => parse_meta(entries)?,
        Some(_) => return Err(wrong_type(ITEM, "meta")),
    };

    let size = match v.get("size") {
        None => None,
        Some(s) => {
            let n = s.as_int().ok_or_else(|| wrong_type(ITEM, "size"))?;
            Some(u64::try_from(n).map_err(|_| invalid_value(ITEM, "size"))?)
        }
    };

    let no_seq = match v.get("no-seq") {
        None => false,
        Some(b) => b.as_bool().ok_or_else(|| wrong_type(ITEM, "no-seq"))?,
    };

    Ok(Item {
        channel,
        id,
        prev_id,
        http_response,
        http_stream,
        ws_message,
        meta,
        size,
        no_seq,
    })
}

fn parse_http_response(f: &Value, json: bool) -> Result<HttpResponseFormat, String> {
    let pn = HTTP_RESPONSE;
    if !f.is_map() {
        return Err(format!("{pn} is not an object"));
    }
    let mut out = HttpResponseFormat {
        action: parse_action(f, pn)?,
        code: 200,
        reason: None,
        headers: Vec::new(),
        body: None,
        body_patch: None,
        content_filters: None,
    };
    if out.action != Action::Send {
        return Ok(out);
    }

    if let Some(c) = f.get("code") {
        let c = c.as_int().ok_or_else(|| wrong_type(pn, "code"))?;
        out.code = u16::try_from(c)
            .ok()
            .filter(|c| *c <= HTTP_CODE_MAX)
            .ok_or_else(|| invalid_value(pn, "code"))?;
    }

    out.reason = optional_string(f, pn, "reason")?.filter(|r| !r.is_empty());
    if let Some(r) = &out.reason {
        // The reason goes into the status line: RFC 9112 reason-phrase is HTAB / SP / VCHAR /
        // obs-text, so no other control characters.
        if r.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(invalid_value(pn, "reason"));
        }
    }

    if let Some(h) = f.get("headers") {
        out.headers = parse_headers(h, pn)?;
    }

    out.content_filters = parse_content_filters(f, pn)?;

    // Precedence as in Pushpin: body-bin (JSON only), then body, then body-patch.
    if let (true, Some(b)) = (json, f.get("body-bin")) {
        out.body = Some(base64_field(b, pn, "body-bin")?);
    } else if let Some(b) = f.get("body") {
        out.body = Some(bytes_field(b, pn, "body")?);
    } else if let Some(p) = f.get("body-patch") {
        if p.as_list().is_none() {
            return Err(wrong_type(pn, "body-patch"));
        }
        out.body_patch = Some(p.to_json());
    } else if json {
        return Err(format!(
            "{pn} does not contain 'body', 'body-bin', or 'body-patch'"
        ));
    } else {
        return Err(format!("{pn} does not contain 'body' or 'body-patch'"));
    }
    Ok(out)
}

fn parse_http_stream(f: &Value, json: bool) -> Result<HttpStreamFormat, String> {
    let pn = HTTP_STREAM;
    if !f.is_map() {
        return Err(format!("{pn} is not an object"));
    }
    let mut out = HttpStreamFormat {
        action: parse_action(f, pn)?,
        content: Vec::new(),
        content_filters: None,
    };
    if out.action != Action::Send {
        return Ok(out);
    }

    out.content_filters = parse_content_filters(f, pn)?;

    if let (true, Some(b)) = (json, f.get("content-bin")) {
        out.content = base64_field(b, pn, "content-bin")?;
    } else if let Some(c) = f.get("content") {
        out.content = bytes_field(c, pn, "content")?;
    } else if json {
        return Err(format!("{pn} does not contain 'content' or 'content-bin'"));
    } else {
        return Err(format!("{pn} does not contain 'content'"));
    }
    Ok(out)
}

fn parse_ws_message(f: &Value, json: bool) -> Result<WsMessageFormat, String> {
    let pn = WS_MESSAGE;
    if !f.is_map() {
        return Err(format!("{pn} is not an object"));
    }
    let mut out = WsMessageFormat {
        action: parse_action(f, pn)?,
        kind: WsType::Text,
        content: Vec::new(),
        close_code: None,
        close_reason: None,
        content_filters: None,
    };
    match out.action {
        Action::Send => parse_ws_send(f, json, &mut out)?,
        Action::Close => parse_ws_close(f, &mut out)?,
        Action::Hint | Action::Refresh => {}
    }
    Ok(out)
}

fn parse_ws_send(f: &Value, json: bool, out: &mut WsMessageFormat) -> Result<(), String> {
    let pn = WS_MESSAGE;
    let kind = match f.get("type") {
        None | Some(Value::Null) => None,
        Some(Value::Bytes(t)) => Some(match t.as_slice() {
            b"text" => WsType::Text,
            b"binary" => WsType::Binary,
            b"ping" => WsType::Ping,
            b"pong" => WsType::Pong,
            _ => return Err(format!("{pn} contains 'type' with unknown value")),
        }),
        Some(_) => return Err(wrong_type(pn, "type")),
    };

    out.content_filters = parse_content_filters(f, pn)?;

    let key = if let Some(b) = f.get("content-bin") {
        out.content = if json {
            base64_field(b, pn, "content-bin")?
        } else {
            bytes_field(b, pn, "content-bin")?
        };
        out.kind = kind.unwrap_or(WsType::Binary);
        "content-bin"
    } else if let Some(c) = f.get("content") {
        out.content = bytes_field(c, pn, "content")?;
        out.kind = kind.unwrap_or(WsType::Text);
        "content"
    } else {
        match kind {
            Some(k @ (WsType::Ping | WsType::Pong)) => out.kind = k,
            _ => return Err(format!("{pn} does not contain 'content' or 'content-bin'")),
        }
        "content"
    };

    if matches!(out.kind, WsType::Ping | WsType::Pong) && out.content.len() > WS_CONTROL_PAYLOAD_MAX
    {
        return Err(invalid_value(pn, key));
    }
    Ok(())
}

fn parse_ws_close(f: &Value, out: &mut WsMessageFormat) -> Result<(), String> {
    let pn = WS_MESSAGE;
    if let Some(c) = f.get("code") {
        let c = c.as_int().ok_or_else(|| wrong_type(pn, "code"))?;
        out.close_code = Some(u16::try_from(c).map_err(|_| invalid_value(pn, "code"))?);
    }
    out.close_reason = optional_string(f, pn, "reason")?.filter(|r| !r.is_empty());
    if out
        .close_reason
        .as_ref()
        .is_some_and(|r| r.len() > WS_CLOSE_REASON_MAX)
    {
        return Err(invalid_value(pn, "reason"));
    }
    Ok(())
}

fn parse_action(f: &Value, pn: &str) -> Result<Action, String> {
    match f.get("action") {
        None | Some(Value::Null) => Ok(Action::Send),
        Some(Value::Bytes(a)) => match a.as_slice() {
            b"send" => Ok(Action::Send),
            b"hint" => Ok(Action::Hint),
            b"close" => Ok(Action::Close),
            b"refresh" => Ok(Action::Refresh),
            // Pushpin fails here without setting a message, so the API answers
            // `Invalid format: ` (spec Appendix D #8); publishers may match on it.
            _ => Err(String::new()),
        },
        Some(_) => Err(wrong_type(pn, "action")),
    }
}

fn parse_headers(h: &Value, pn: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    match h {
        Value::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let pair = item
                    .as_list()
                    .ok_or("headers contains element with wrong type")?;
                let [name, value] = pair else {
                    return Err("headers contains list with wrong number of elements".to_owned());
                };
                let name = name
                    .as_bytes()
                    .ok_or("header contains name element with wrong type")?;
                let value = value
                    .as_bytes()
                    .ok_or("header contains value element with wrong type")?;
                let name =
                    header_name(name).ok_or("header contains name element with invalid value")?;
                if !header_value_ok(value) {
                    return Err("header contains value element with invalid value".to_owned());
                }
                out.push((name, value.to_vec()));
            }
            Ok(out)
        }
        Value::Map(entries) => {
            let mut out: Vec<(String, Vec<u8>)> = Vec::with_capacity(entries.len());
            let mut seen = HashMap::new();
            for (key, value) in entries {
                let value = value.as_bytes().ok_or_else(|| {
                    format!("headers contains '{}' with wrong type", printable(key))
                })?;
                let name = header_name(key).ok_or_else(|| {
                    format!("headers contains '{}' with invalid name", printable(key))
                })?;
                if !header_value_ok(value) {
                    return Err(format!("headers contains '{name}' with invalid value"));
                }
                // A map has unique keys: a repeated tnetstring key replaces the earlier one.
                upsert(&mut out, &mut seen, name, value.to_vec());
            }
            Ok(out)
        }
        _ => Err(wrong_type(pn, "headers")),
    }
}

/// RFC 9110 5.1: field-name = token; tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" /
/// "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
fn header_name(name: &[u8]) -> Option<String> {
    let tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    if name.is_empty() || !name.iter().all(tchar) {
        return None;
    }
    std::str::from_utf8(name).ok().map(str::to_owned)
}

/// CR or LF would split the header into a second line (response splitting); NUL is refused by
/// HTTP parsers downstream.
fn header_value_ok(value: &[u8]) -> bool {
    !value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

fn parse_content_filters(f: &Value, pn: &str) -> Result<Option<Vec<String>>, String> {
    let Some(v) = f.get("content-filters") else {
        return Ok(None);
    };
    let list = v
        .as_list()
        .ok_or_else(|| wrong_type(pn, "content-filters"))?;
    list.iter()
        .map(|e| {
            e.as_str()
                .map(str::to_owned)
                .ok_or_else(|| "content-filters contains element with wrong type".to_owned())
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn parse_meta(entries: &[(Vec<u8>, Value)]) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(entries.len());
    let mut seen = HashMap::new();
    for (key, value) in entries {
        let bytes = value
            .as_bytes()
            .ok_or_else(|| format!("'meta' contains '{}' with wrong type", printable(key)))?;
        let invalid = || format!("'meta' contains '{}' with invalid value", printable(key));
        let key = std::str::from_utf8(key).map_err(|_| invalid())?;
        let value = std::str::from_utf8(bytes).map_err(|_| invalid())?;
        upsert(&mut out, &mut seen, key.to_owned(), value.to_owned());
    }
    Ok(out)
}

/// Appends `(key, value)`, or replaces the value of an earlier equal key in place, keeping first
/// positions. The index map keeps a hostile map with many repeated keys linear.
fn upsert<V>(out: &mut Vec<(String, V)>, seen: &mut HashMap<String, usize>, key: String, value: V) {
    match seen.get(&key).and_then(|&i| out.get_mut(i)) {
        Some(slot) => slot.1 = value,
        None => {
            seen.insert(key.clone(), out.len());
            out.push((key, value));
        }
    }
}

/// Absent or null: `None` (Pushpin treats a JSON null like a missing optional field).
fn optional_string(obj: &Value, pn: &str, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => string_field(v, pn, key).map(Some),
    }
}

fn required_string(obj: &Value, pn: &str, key: &str) -> Result<String, String> {
    match obj.get(key) {
        None => Err(format!("{pn} does not contain '{key}'")),
        Some(v) => string_field(v, pn, key),
    }
}

fn string_field(v: &Value, pn: &str, key: &str) -> Result<String, String> {
    let bytes = v.as_bytes().ok_or_else(|| wrong_type(pn, key))?;
    String::from_utf8(bytes.to_vec()).map_err(|_| invalid_value(pn, key))
}

fn bytes_field(v: &Value, pn: &str, key: &str) -> Result<Vec<u8>, String> {
    v.as_bytes()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| wrong_type(pn, key))
}

/// Lenient like Qt's `fromBase64`, which Pushpin uses: whitespace (line-wrapped output) is
/// ignored, padding is optional and the URL-safe alphabet is accepted. Anything else that is not
/// base64 is an error rather than silently dropped.
fn base64_field(v: &Value, pn: &str, key: &str) -> Result<Vec<u8>, String> {
    const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

    let text = v.as_bytes().ok_or_else(|| wrong_type(pn, key))?;
    let compact: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(&compact)
        .or_else(|_| URL_SAFE.decode(&compact))
        .map_err(|_| invalid_value(pn, key))
}

fn wrong_type(pn: &str, key: &str) -> String {
    format!("{pn} contains '{key}' with wrong type")
}

fn invalid_value(pn: &str, key: &str) -> String {
    format!("{pn} contains '{key}' with invalid value")
}

/// A key echoed in an error message, kept to one printable line.
fn printable(key: &[u8]) -> String {
    String::from_utf8_lossy(key)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_value(text: &str) -> Value {
        Value::from_json(&serde_json::from_str(text).expect("test JSON"))
    }

    /// The item as JSON input.
    fn from_json(text: &str) -> Result<Item, String> {
        parse_item(&json_value(text), true, None)
    }

    /// The same structure as tnetstring input: strings become byte strings, as on the wire.
    fn from_tnet(text: &str) -> Result<Item, String> {
        parse_item(&json_value(text), false, None)
    }

    fn stream(item: &Item) -> &HttpStreamFormat {
        item.http_stream.as_ref().expect("http-stream")
    }

    fn response(item: &Item) -> &HttpResponseFormat {
        item.http_response.as_ref().expect("http-response")
    }

    fn ws(item: &Item) -> &WsMessageFormat {
        item.ws_message.as_ref().expect("ws-message")
    }

    // Pushpin's publishitemtest, in both styles.
    #[test]
    fn parse_item_both_styles() {
        let text = r#"{"channel":"apple","id":"item1","prev-id":"item0",
            "meta":{"foo":"bar","bar":"baz"},
            "formats":{"http-stream":{"content":"hello world"}}}"#;
        for (style, got) in [("json", from_json(text)), ("tnet", from_tnet(text))] {
            let item = got.unwrap_or_else(|e| panic!("{style}: {e}"));
            assert_eq!(item.channel, "apple");
            assert_eq!(item.id.as_deref(), Some("item1"));
            assert_eq!(item.prev_id.as_deref(), Some("item0"));
            assert_eq!(
                item.meta,
                vec![
                    ("bar".to_owned(), "baz".to_owned()),
                    ("foo".to_owned(), "bar".to_owned())
                ]
            );
            assert_eq!(stream(&item).content, b"hello world");
            assert_eq!(stream(&item).action, Action::Send);
            assert!(item.http_response.is_none() && item.ws_message.is_none());
            assert_eq!(item.size, None);
            assert!(!item.no_seq);
        }
    }

    #[test]
    fn full_item_every_field() {
        let item = from_json(
            r#"{"channel":"c","size":12,"no-seq":true,"formats":{
                "http-response":{"code":404,"reason":"Nope","headers":{"X-A":"1","Content-Type":"text/plain"},
                    "body":"gone\n","content-filters":["build-id"]},
                "http-stream":{"content-bin":"AAH/","content-filters":[]},
                "ws-message":{"type":"binary","content":"m"}}}"#,
        )
        .unwrap();
        assert_eq!(item.size, Some(12));
        assert!(item.no_seq);
        assert_eq!(
            response(&item),
            &HttpResponseFormat {
                action: Action::Send,
                code: 404,
                reason: Some("Nope".to_owned()),
                headers: vec![
                    ("Content-Type".to_owned(), b"text/plain".to_vec()),
                    ("X-A".to_owned(), b"1".to_vec()),
                ],
                body: Some(b"gone\n".to_vec()),
                body_patch: None,
                content_filters: Some(vec!["build-id".to_owned()]),
            }
        );
        assert_eq!(
            stream(&item),
            &HttpStreamFormat {
                action: Action::Send,
                content: vec![0, 1, 0xff],
                content_filters: Some(vec![]),
            }
        );
        assert_eq!(ws(&item).kind, WsType::Binary);
        assert_eq!(ws(&item).content, b"m");
        assert_eq!(ws(&item).content_filters, None);
    }

    // Pushpin's publishformattest response cases.
    #[test]
    fn response_format_defaults_and_list_headers() {
        for parse in [from_json, from_tnet] {
            let item = parse(
                r#"{"channel":"c","formats":{"http-response":{"code":200,"reason":"OK",
                "headers":[["Content-Type","text/plain"],["Set-Cookie","a=1"],["Set-Cookie","b=2"]],
                "body":"hello world"}}}"#,
            )
            .unwrap();
            let r = response(&item);
            assert_eq!((r.code, r.reason.as_deref()), (200, Some("OK")));
            assert_eq!(
                r.headers,
                vec![
                    ("Content-Type".to_owned(), b"text/plain".to_vec()),
                    ("Set-Cookie".to_owned(), b"a=1".to_vec()),
                    ("Set-Cookie".to_owned(), b"b=2".to_vec()),
                ]
            );
            assert_eq!(r.body.as_deref(), Some(&b"hello world"[..]));

            let item = parse(
                r#"{"channel":"c","formats":{"http-response":{"body":"other fields implied"}}}"#,
            )
            .unwrap();
            let r = response(&item);
            assert_eq!((r.code, r.reason.as_deref()), (200, None));
            assert!(r.headers.is_empty());
            assert_eq!(r.content_filters, None);
            assert_eq!(r.body.as_deref(), Some(&b"other fields implied"[..]));
        }
    }

    #[test]
    fn response_code_and_reason_table() {
        type Case<'a> = (&'a str, Result<(u16, Option<&'a str>), &'a str>);
        let cases: &[Case] = &[
            (r#""code":0"#, Ok((0, None))),
            (r#""code":999"#, Ok((999, None))),
            (r#""code":201.0"#, Ok((201, None))),
            (r#""code":200,"reason":"""#, Ok((200, None))),
            (r#""code":200,"reason":null"#, Ok((200, None))),
            (
                r#""reason":"Fine\tthanks""#,
                Ok((200, Some("Fine\tthanks"))),
            ),
            (
                r#""code":1000"#,
                Err("'http-response' contains 'code' with invalid value"),
            ),
            (
                r#""code":-1"#,
                Err("'http-response' contains 'code' with invalid value"),
            ),
            (
                r#""code":"200""#,
                Err("'http-response' contains 'code' with wrong type"),
            ),
            (
                r#""code":200.5"#,
                Err("'http-response' contains 'code' with wrong type"),
            ),
            (
                r#""code":null"#,
                Err("'http-response' contains 'code' with wrong type"),
            ),
            (
                r#""code":true"#,
                Err("'http-response' contains 'code' with wrong type"),
            ),
            (
                r#""reason":5"#,
                Err("'http-response' contains 'reason' with wrong type"),
            ),
            (
                r#""reason":"a\r\nX-Evil: 1""#,
                Err("'http-response' contains 'reason' with invalid value"),
            ),
            (
                r#""reason":"a\u0000""#,
                Err("'http-response' contains 'reason' with invalid value"),
            ),
        ];
        for (fields, want) in cases {
            let text = format!(
                r#"{{"channel":"c","formats":{{"http-response":{{{fields},"body":"x"}}}}}}"#
            );
            let got = from_json(&text).map(|i| {
                let r = response(&i);
                (r.code, r.reason.clone())
            });
            let want = want
                .map(|(c, r)| (c, r.map(str::to_owned)))
                .map_err(str::to_owned);
            assert_eq!(got, want, "{fields}");
        }
    }

    #[test]
    fn response_headers_table() {
        type Case<'a> = (&'a str, Result<Vec<(&'a str, &'a str)>, &'a str>);
        let cases: &[Case] = &[
            (r#"[]"#, Ok(vec![])),
            (r#"{}"#, Ok(vec![])),
            (r#"[["A","1"],["A","2"]]"#, Ok(vec![("A", "1"), ("A", "2")])),
            (r#"{"X-Y":"z"}"#, Ok(vec![("X-Y", "z")])),
            (
                r#"[["!#$%&'*+-.^_`|~09azAZ",""]]"#,
                Ok(vec![("!#$%&'*+-.^_`|~09azAZ", "")]),
            ),
            (r#"{"A":"tab\tok"}"#, Ok(vec![("A", "tab\tok")])),
            (
                r#""Content-Type: x""#,
                Err("'http-response' contains 'headers' with wrong type"),
            ),
            (
                r#"null"#,
                Err("'http-response' contains 'headers' with wrong type"),
            ),
            (
                r#"["A","1"]"#,
                Err("headers contains element with wrong type"),
            ),
            (
                r#"[["A"]]"#,
                Err("headers contains list with wrong number of elements"),
            ),
            (
                r#"[["A","1","2"]]"#,
                Err("headers contains list with wrong number of elements"),
            ),
            (
                r#"[[1,"1"]]"#,
                Err("header contains name element with wrong type"),
            ),
            (
                r#"[["A",1]]"#,
                Err("header contains value element with wrong type"),
            ),
            (
                r#"[["Bad Name","1"]]"#,
                Err("header contains name element with invalid value"),
            ),
            (
                r#"[["","1"]]"#,
                Err("header contains name element with invalid value"),
            ),
            (
                r#"[["A:","1"]]"#,
                Err("header contains name element with invalid value"),
            ),
            (
                r#"[["A","1\r\nSet-Cookie: x"]]"#,
                Err("header contains value element with invalid value"),
            ),
            (
                r#"[["A","1\n"]]"#,
                Err("header contains value element with invalid value"),
            ),
            (r#"{"A":1}"#, Err("headers contains 'A' with wrong type")),
            (r#"{"A":null}"#, Err("headers contains 'A' with wrong type")),
            (
                r#"{"A\r\nB":"1"}"#,
                Err("headers contains 'A??B' with invalid name"),
            ),
            (
                r#"{"A":"x\u0000"}"#,
                Err("headers contains 'A' with invalid value"),
            ),
        ];
        for (headers, want) in cases {
            let text = format!(
                r#"{{"channel":"c","formats":{{"http-response":{{"headers":{headers},"body":"x"}}}}}}"#
            );
            let got = from_json(&text).map(|i| response(&i).headers.clone());
            let want = want
                .clone()
                .map(|hs| {
                    hs.into_iter()
                        .map(|(n, v)| (n.to_owned(), v.as_bytes().to_vec()))
                        .collect::<Vec<_>>()
                })
                .map_err(str::to_owned);
            assert_eq!(got, want, "{headers}");
        }
    }

    #[test]
    fn tnetstring_header_map_duplicates_keep_the_last() {
        let headers = Value::Map(vec![
            (b"A".to_vec(), Value::Bytes(b"1".to_vec())),
            (b"B".to_vec(), Value::Bytes(b"2".to_vec())),
            (b"A".to_vec(), Value::Bytes(b"3".to_vec())),
        ]);
        let item = Value::Map(vec![
            (b"channel".to_vec(), Value::Bytes(b"c".to_vec())),
            (
                b"http-response".to_vec(),
                Value::Map(vec![
                    (b"headers".to_vec(), headers),
                    (b"body".to_vec(), Value::Bytes(vec![0xff])),
                ]),
            ),
        ]);
        let item = parse_item(&item, false, None).unwrap();
        assert_eq!(
            response(&item).headers,
            vec![
                ("A".to_owned(), b"3".to_vec()),
                ("B".to_owned(), b"2".to_vec())
            ]
        );
        assert_eq!(response(&item).body.as_deref(), Some(&[0xffu8][..]));
    }

    #[test]
    fn many_repeated_map_keys_stay_linear() {
        let n = 60_000;
        let repeated = |value: &[u8]| {
            Value::Map(
                (0..n)
                    .map(|i| {
                        (
                            format!("K{}", i % 2).into_bytes(),
                            Value::Bytes(value.to_vec()),
                        )
                    })
                    .collect(),
            )
        };
        let item = Value::Map(vec![
            (b"channel".to_vec(), Value::Bytes(b"c".to_vec())),
            (b"meta".to_vec(), repeated(b"m")),
            (
                b"http-response".to_vec(),
                Value::Map(vec![
                    (b"headers".to_vec(), repeated(b"h")),
                    (b"body".to_vec(), Value::Bytes(vec![])),
                ]),
            ),
        ]);
        let item = parse_item(&item, false, None).unwrap();
        assert_eq!(item.meta.len(), 2);
        assert_eq!(response(&item).headers.len(), 2);
    }

    #[test]
    fn response_body_variants() {
        let patch_text = r#"[{"op":"replace","path":"/a","value":1}]"#;
        type Case<'a> = (&'a str, bool, Result<(Option<&'a [u8]>, bool), String>);
        let cases: &[Case] = &[
            (r#""body":"b""#, true, Ok((Some(b"b"), false))),
            (r#""body-bin":"AP8=""#, true, Ok((Some(b"\x00\xff"), false))),
            (r#""body-bin":"AP8""#, true, Ok((Some(b"\x00\xff"), false))),
            (
                r#""body-bin":"AP\n8=""#,
                true,
                Ok((Some(b"\x00\xff"), false)),
            ),
            (r#""body-bin":"_-8=""#, true, Ok((Some(b"\xff\xef"), false))),
            (r#""body-bin":"""#, true, Ok((Some(b""), false))),
            // body-bin wins over body, body over body-patch (Pushpin's order).
            (
                r#""body-bin":"eA==","body":"y""#,
                true,
                Ok((Some(b"x"), false)),
            ),
            (
                &format!(r#""body":"y","body-patch":{patch_text}"#),
                true,
                Ok((Some(b"y"), false)),
            ),
            (
                &format!(r#""body-patch":{patch_text}"#),
                true,
                Ok((None, true)),
            ),
            (
                &format!(r#""body-patch":{patch_text}"#),
                false,
                Ok((None, true)),
            ),
            // From tnetstring, body-bin is not a body field at all.
            (
                r#""body-bin":"eA==","body":"y""#,
                false,
                Ok((Some(b"y"), false)),
            ),
            (
                r#""body-bin":"eA==""#,
                false,
                Err("'http-response' does not contain 'body' or 'body-patch'".into()),
            ),
            (
                r#""code":200"#,
                true,
                Err("'http-response' does not contain 'body', 'body-bin', or 'body-patch'".into()),
            ),
            (
                r#""body":5"#,
                true,
                Err("'http-response' contains 'body' with wrong type".into()),
            ),
            (
                r#""body":null"#,
                true,
                Err("'http-response' contains 'body' with wrong type".into()),
            ),
            (
                r#""body-bin":5"#,
                true,
                Err("'http-response' contains 'body-bin' with wrong type".into()),
            ),
            (
                r#""body-bin":"not base64!""#,
                true,
                Err("'http-response' contains 'body-bin' with invalid value".into()),
            ),
            (
                r#""body-patch":{"op":"add"}"#,
                true,
                Err("'http-response' contains 'body-patch' with wrong type".into()),
            ),
        ];
        for (fields, json, want) in cases {
            let text = format!(r#"{{"channel":"c","formats":{{"http-response":{{{fields}}}}}}}"#);
            let got = parse_item(&json_value(&text), *json, None).map(|i| {
                let r = response(&i).clone();
                (r.body, r.body_patch)
            });
            match (got, want) {
                (Ok((body, patch)), Ok((want_body, want_patch))) => {
                    assert_eq!(body.as_deref(), *want_body, "{fields}");
                    assert_eq!(patch.is_some(), *want_patch, "{fields}");
                    if let Some(p) = patch {
                        assert_eq!(
                            p,
                            serde_json::from_str::<serde_json::Value>(patch_text).unwrap()
                        );
                    }
                }
                (got, want) => assert_eq!(got.map(|_| ()), want.clone().map(|_| ()), "{fields}"),
            }
        }
    }

    #[test]
    fn non_send_actions_skip_the_content_fields() {
        for action in ["hint", "close", "refresh"] {
            let text = format!(
                r#"{{"channel":"c","formats":{{"http-response":{{"action":"{action}"}},
                "http-stream":{{"action":"{action}"}},"ws-message":{{"action":"{action}"}}}}}}"#
            );
            let item = from_json(&text).unwrap_or_else(|e| panic!("{action}: {e}"));
            let want = match action {
                "hint" => Action::Hint,
                "close" => Action::Close,
                _ => Action::Refresh,
            };
            assert_eq!(response(&item).action, want);
            assert_eq!(response(&item).body, None);
            assert_eq!(stream(&item).action, want);
            assert!(stream(&item).content.is_empty());
            assert_eq!(ws(&item).action, want);
        }
    }

    #[test]
    fn action_table() {
        let cases: &[(&str, Result<Action, &str>)] = &[
            (r#""send""#, Ok(Action::Send)),
            (r#"null"#, Ok(Action::Send)),
            (r#""hint""#, Ok(Action::Hint)),
            // Pushpin's quirk: no reason at all (the API says `Invalid format: `).
            (r#""publish""#, Err("")),
            (r#""""#, Err("")),
            (r#""SEND""#, Err("")),
            (
                r#"1"#,
                Err("'http-stream' contains 'action' with wrong type"),
            ),
        ];
        for (action, want) in cases {
            let text = format!(
                r#"{{"channel":"c","formats":{{"http-stream":{{"action":{action},"content":"x"}}}}}}"#
            );
            let got = from_json(&text).map(|i| stream(&i).action);
            assert_eq!(got, want.map_err(str::to_owned), "{action}");
        }
    }

    #[test]
    fn stream_format_table() {
        type Case<'a> = (&'a str, bool, Result<&'a [u8], &'a str>);
        let cases: &[Case] = &[
            (r#""content":"hello world""#, true, Ok(b"hello world")),
            (r#""content":"""#, true, Ok(b"")),
            (r#""content-bin":"aGk=""#, true, Ok(b"hi")),
            (r#""content-bin":"aGk=","content":"no""#, true, Ok(b"hi")),
            (r#""content-bin":"aGk=","content":"yes""#, false, Ok(b"yes")),
            (
                r#""content-bin":"aGk=""#,
                false,
                Err("'http-stream' does not contain 'content'"),
            ),
            (
                r#""content-filters":[]"#,
                true,
                Err("'http-stream' does not contain 'content' or 'content-bin'"),
            ),
            (
                r#""content":["x"]"#,
                true,
                Err("'http-stream' contains 'content' with wrong type"),
            ),
            (
                r#""content-bin":1"#,
                true,
                Err("'http-stream' contains 'content-bin' with wrong type"),
            ),
            (
                r#""content-bin":"a=b""#,
                true,
                Err("'http-stream' contains 'content-bin' with invalid value"),
            ),
            (
                r#""content":"x","content-filters":"build-id""#,
                true,
                Err("'http-stream' contains 'content-filters' with wrong type"),
            ),
            (
                r#""content":"x","content-filters":["a",1]"#,
                true,
                Err("content-filters contains element with wrong type"),
            ),
        ];
        for (fields, json, want) in cases {
            let text = format!(r#"{{"channel":"c","formats":{{"http-stream":{{{fields}}}}}}}"#);
            let got =
                parse_item(&json_value(&text), *json, None).map(|i| stream(&i).content.clone());
            assert_eq!(
                got,
                want.map(<[u8]>::to_vec).map_err(str::to_owned),
                "{fields}"
            );
        }
    }

    #[test]
    fn content_filters_absent_empty_and_listed_differ() {
        let get = |fields: &str| {
            let text = format!(
                r#"{{"channel":"c","formats":{{"http-stream":{{"content":"x"{fields}}}}}}}"#
            );
            from_json(&text).map(|i| stream(&i).content_filters.clone())
        };
        assert_eq!(get(""), Ok(None));
        assert_eq!(get(r#","content-filters":[]"#), Ok(Some(vec![])));
        assert_eq!(
            get(r#","content-filters":["build-id","var-subst"]"#),
            Ok(Some(vec!["build-id".to_owned(), "var-subst".to_owned()]))
        );
    }

    // Pushpin's publishformattest WebSocket cases, plus the error texts.
    #[test]
    fn ws_send_table() {
        let long = "a".repeat(WS_CONTROL_PAYLOAD_MAX + 1);
        let max = "a".repeat(WS_CONTROL_PAYLOAD_MAX);
        type Case = (String, bool, Result<(WsType, Vec<u8>), &'static str>);
        let cases: Vec<Case> = vec![
            (
                r#""content":"hello world""#.into(),
                true,
                Ok((WsType::Text, b"hello world".to_vec())),
            ),
            (
                r#""type":"binary","content":"hello world""#.into(),
                true,
                Ok((WsType::Binary, b"hello world".to_vec())),
            ),
            (
                r#""content-bin":"aGk=""#.into(),
                true,
                Ok((WsType::Binary, b"hi".to_vec())),
            ),
            (
                r#""type":"text","content-bin":"aGk=""#.into(),
                true,
                Ok((WsType::Text, b"hi".to_vec())),
            ),
            // From tnetstring, content-bin is the raw bytes.
            (
                r#""content-bin":"hello world""#.into(),
                false,
                Ok((WsType::Binary, b"hello world".to_vec())),
            ),
            (r#""type":"ping""#.into(), true, Ok((WsType::Ping, vec![]))),
            (
                r#""type":"pong","content":"p""#.into(),
                true,
                Ok((WsType::Pong, b"p".to_vec())),
            ),
            (
                format!(r#""type":"ping","content":"{max}""#),
                true,
                Ok((WsType::Ping, max.clone().into_bytes())),
            ),
            (
                r#""type":null,"content":"t""#.into(),
                true,
                Ok((WsType::Text, b"t".to_vec())),
            ),
            (
                format!(r#""type":"ping","content":"{long}""#),
                true,
                Err("'ws-message' contains 'content' with invalid value"),
            ),
            (
                r#""type":"text""#.into(),
                true,
                Err("'ws-message' does not contain 'content' or 'content-bin'"),
            ),
            (
                r#""type":"binary""#.into(),
                false,
                Err("'ws-message' does not contain 'content' or 'content-bin'"),
            ),
            (
                r#""content-filters":[]"#.into(),
                true,
                Err("'ws-message' does not contain 'content' or 'content-bin'"),
            ),
            (
                r#""type":"close","content":"x""#.into(),
                true,
                Err("'ws-message' contains 'type' with unknown value"),
            ),
            (
                r#""type":"""#.into(),
                true,
                Err("'ws-message' contains 'type' with unknown value"),
            ),
            (
                r#""type":1,"content":"x""#.into(),
                true,
                Err("'ws-message' contains 'type' with wrong type"),
            ),
            (
                r#""content":1"#.into(),
                true,
                Err("'ws-message' contains 'content' with wrong type"),
            ),
            (
                r#""content-bin":1"#.into(),
                true,
                Err("'ws-message' contains 'content-bin' with wrong type"),
            ),
            (
                r#""content-bin":1"#.into(),
                false,
                Err("'ws-message' contains 'content-bin' with wrong type"),
            ),
            (
                r#""content-bin":"%%%""#.into(),
                true,
                Err("'ws-message' contains 'content-bin' with invalid value"),
            ),
            (
                r#""content":"x","content-filters":{}"#.into(),
                true,
                Err("'ws-message' contains 'content-filters' with wrong type"),
            ),
        ];
        for (fields, json, want) in cases {
            let text = format!(r#"{{"channel":"c","formats":{{"ws-message":{{{fields}}}}}}}"#);
            let got = parse_item(&json_value(&text), json, None).map(|i| {
                let w = ws(&i);
                (w.kind, w.content.clone())
            });
            assert_eq!(got, want.map_err(str::to_owned), "{fields}");
        }
    }

    #[test]
    fn ws_close_table() {
        let long = "r".repeat(WS_CLOSE_REASON_MAX + 1);
        type Case = (
            String,
            Result<(Option<u16>, Option<&'static str>), &'static str>,
        );
        let cases: Vec<Case> = vec![
            (String::new(), Ok((None, None))),
            (r#","code":1001"#.into(), Ok((Some(1001), None))),
            (
                r#","code":4001,"reason":"pubclose""#.into(),
                Ok((Some(4001), Some("pubclose"))),
            ),
            (r#","code":0,"reason":"""#.into(), Ok((Some(0), None))),
            (
                r#","code":-1"#.into(),
                Err("'ws-message' contains 'code' with invalid value"),
            ),
            (
                r#","code":65536"#.into(),
                Err("'ws-message' contains 'code' with invalid value"),
            ),
            (
                r#","code":"1000""#.into(),
                Err("'ws-message' contains 'code' with wrong type"),
            ),
            (
                r#","reason":7"#.into(),
                Err("'ws-message' contains 'reason' with wrong type"),
            ),
            (
                format!(r#","reason":"{long}""#),
                Err("'ws-message' contains 'reason' with invalid value"),
            ),
        ];
        for (fields, want) in cases {
            let text = format!(
                r#"{{"channel":"c","formats":{{"ws-message":{{"action":"close"{fields}}}}}}}"#
            );
            let got = from_json(&text).map(|i| {
                let w = ws(&i);
                (w.close_code, w.close_reason.clone())
            });
            let want = want
                .map(|(c, r)| (c, r.map(str::to_owned)))
                .map_err(str::to_owned);
            assert_eq!(got, want, "{fields}");
        }
    }

    #[test]
    fn item_level_errors_table() {
        let ok_formats = r#""formats":{"http-stream":{"content":"x"}}"#;
        let cases: Vec<(String, &str)> = vec![
            ("[]".into(), "publish item object is not an object"),
            (r#""c""#.into(), "publish item object is not an object"),
            (
                format!("{{{ok_formats}}}"),
                "publish item object does not contain 'channel'",
            ),
            (
                format!(r#"{{"channel":7,{ok_formats}}}"#),
                "publish item object contains 'channel' with wrong type",
            ),
            (
                format!(r#"{{"channel":null,{ok_formats}}}"#),
                "publish item object contains 'channel' with wrong type",
            ),
            (
                format!(r#"{{"channel":"",{ok_formats}}}"#),
                "publish item object contains 'channel' with invalid value",
            ),
            (
                format!(r#"{{"channel":"c","id":1,{ok_formats}}}"#),
                "publish item object contains 'id' with wrong type",
            ),
            (
                format!(r#"{{"channel":"c","prev-id":[],{ok_formats}}}"#),
                "publish item object contains 'prev-id' with wrong type",
            ),
            (r#"{"channel":"c"}"#.into(), "no formats specified"),
            (
                r#"{"channel":"c","formats":{}}"#.into(),
                "no formats specified",
            ),
            (
                r#"{"channel":"c","formats":{"sse":{}}}"#.into(),
                "no formats specified",
            ),
            // Top-level formats are ignored once `formats` is present.
            (
                r#"{"channel":"c","formats":{},"http-stream":{"content":"x"}}"#.into(),
                "no formats specified",
            ),
            (
                r#"{"channel":"c","formats":[]}"#.into(),
                "publish item object contains 'formats' with wrong type",
            ),
            (
                r#"{"channel":"c","formats":{"http-response":"x"}}"#.into(),
                "'http-response' is not an object",
            ),
            (
                r#"{"channel":"c","formats":{"http-stream":null}}"#.into(),
                "'http-stream' is not an object",
            ),
            (
                r#"{"channel":"c","formats":{"ws-message":[]}}"#.into(),
                "'ws-message' is not an object",
            ),
            // Formats are checked in a fixed order: response, stream, ws.
            (
                r#"{"channel":"c","formats":{"ws-message":{"type":1},"http-response":{"code":"x"}}}"#
                    .into(),
                "'http-response' contains 'code' with wrong type",
            ),
            (
                format!(r#"{{"channel":"c","meta":[],{ok_formats}}}"#),
                "publish item object contains 'meta' with wrong type",
            ),
            (
                format!(r#"{{"channel":"c","meta":{{"user":1}},{ok_formats}}}"#),
                "'meta' contains 'user' with wrong type",
            ),
            (
                format!(r#"{{"channel":"c","meta":{{"a\nb":null}},{ok_formats}}}"#),
                "'meta' contains 'a?b' with wrong type",
            ),
            (
                format!(r#"{{"channel":"c","size":"1",{ok_formats}}}"#),
                "publish item object contains 'size' with wrong type",
            ),
            (
                format!(r#"{{"channel":"c","size":1.5,{ok_formats}}}"#),
                "publish item object contains 'size' with wrong type",
            ),
            (
                format!(r#"{{"channel":"c","size":-1,{ok_formats}}}"#),
                "publish item object contains 'size' with invalid value",
            ),
            (
                format!(r#"{{"channel":"c","no-seq":1,{ok_formats}}}"#),
                "publish item object contains 'no-seq' with wrong type",
            ),
            (
                format!(r#"{{"channel":"c","no-seq":"true",{ok_formats}}}"#),
                "publish item object contains 'no-seq' with wrong type",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(from_json(&text), Err(want.to_owned()), "json {text}");
            assert_eq!(from_tnet(&text), Err(want.to_owned()), "tnet {text}");
        }
    }

    #[test]
    fn optional_fields_accept_null() {
        let item = from_json(
            r#"{"channel":"c","id":null,"prev-id":null,"meta":null,"formats":null,
            "http-stream":{"content":"x"}}"#,
        )
        .unwrap();
        assert_eq!((&item.id, &item.prev_id), (&None, &None));
        assert!(item.meta.is_empty());
        assert_eq!(stream(&item).content, b"x");
    }

    #[test]
    fn legacy_top_level_formats() {
        let text = r#"{"channel":"c","http-stream":{"content":"s"},
            "http-response":{"body":"r"},"ws-message":{"content":"w"}}"#;
        for parse in [from_json, from_tnet] {
            let item = parse(text).unwrap();
            assert_eq!(stream(&item).content, b"s");
            assert_eq!(response(&item).body.as_deref(), Some(&b"r"[..]));
            assert_eq!(ws(&item).content, b"w");
        }
    }

    #[test]
    fn channel_override_from_sub_frame() {
        let payload = json_value(r#"{"formats":{"http-stream":{"content":"x"}}}"#);
        assert_eq!(
            parse_item(&payload, true, Some("sub")).unwrap().channel,
            "sub"
        );
        assert_eq!(
            parse_item(&payload, true, None),
            Err("publish item object does not contain 'channel'".to_owned())
        );

        let with_channel =
            json_value(r#"{"channel":"inner","formats":{"http-stream":{"content":"x"}}}"#);
        assert_eq!(
            parse_item(&with_channel, false, Some("outer"))
                .unwrap()
                .channel,
            "outer"
        );
        // An empty first frame falls back to the payload's channel, as in Pushpin.
        assert_eq!(
            parse_item(&with_channel, false, Some("")).unwrap().channel,
            "inner"
        );
        // With an override the payload's channel is not read at all (Pushpin does the same).
        let bad = json_value(r#"{"channel":7,"formats":{"http-stream":{"content":"x"}}}"#);
        assert_eq!(parse_item(&bad, true, Some("sub")).unwrap().channel, "sub");
    }

    #[test]
    fn meta_and_size() {
        let item = from_json(
            r#"{"channel":"c","meta":{"sender":"u1","skip_users":"a,b"},"size":0,"no-seq":false,
            "http-stream":{"content":"x"}}"#,
        )
        .unwrap();
        assert_eq!(
            item.meta,
            vec![
                ("sender".to_owned(), "u1".to_owned()),
                ("skip_users".to_owned(), "a,b".to_owned())
            ]
        );
        assert_eq!(item.size, Some(0));
        assert!(!item.no_seq);

        // tnetstring maps may repeat keys and carry non-UTF-8 bytes.
        let meta = |entries: Vec<(Vec<u8>, Value)>| {
            Value::Map(vec![
                (b"channel".to_vec(), Value::Bytes(b"c".to_vec())),
                (b"meta".to_vec(), Value::Map(entries)),
                (
                    b"http-stream".to_vec(),
                    Value::Map(vec![(b"content".to_vec(), Value::Bytes(vec![]))]),
                ),
            ])
        };
        let dup = meta(vec![
            (b"k".to_vec(), Value::Bytes(b"1".to_vec())),
            (b"k".to_vec(), Value::Bytes(b"2".to_vec())),
        ]);
        assert_eq!(
            parse_item(&dup, false, None).unwrap().meta,
            vec![("k".to_owned(), "2".to_owned())]
        );
        let bad_value = meta(vec![(b"k".to_vec(), Value::Bytes(vec![0xff]))]);
        assert_eq!(
            parse_item(&bad_value, false, None),
            Err("'meta' contains 'k' with invalid value".to_owned())
        );
        let bad_key = meta(vec![(vec![b'k', 0xff], Value::Bytes(vec![]))]);
        assert_eq!(
            parse_item(&bad_key, false, None),
            Err("'meta' contains 'k\u{fffd}' with invalid value".to_owned())
        );
    }

    #[test]
    fn tnetstring_non_utf8_strings_are_invalid_values() {
        let item = |channel: Vec<u8>, id: Vec<u8>| {
            Value::Map(vec![
                (b"channel".to_vec(), Value::Bytes(channel)),
                (b"id".to_vec(), Value::Bytes(id)),
                (
                    b"http-stream".to_vec(),
                    Value::Map(vec![(b"content".to_vec(), Value::Bytes(vec![0xff]))]),
                ),
            ])
        };
        assert_eq!(
            parse_item(&item(vec![0xc3], b"i".to_vec()), false, None),
            Err("publish item object contains 'channel' with invalid value".to_owned())
        );
        assert_eq!(
            parse_item(&item(b"c".to_vec(), vec![0xc3]), false, None),
            Err("publish item object contains 'id' with invalid value".to_owned())
        );
        let ok = parse_item(&item(b"c".to_vec(), b"i".to_vec()), false, None).unwrap();
        assert_eq!(stream(&ok).content, vec![0xff]);
    }

    #[test]
    fn body_patch_from_tnetstring_becomes_json() {
        let op = Value::Map(vec![
            (b"op".to_vec(), Value::Bytes(b"add".to_vec())),
            (b"path".to_vec(), Value::Bytes(b"/n".to_vec())),
            (b"value".to_vec(), Value::Int(3)),
        ]);
        let item = Value::Map(vec![
            (b"channel".to_vec(), Value::Bytes(b"c".to_vec())),
            (
                b"http-response".to_vec(),
                Value::Map(vec![(b"body-patch".to_vec(), Value::List(vec![op]))]),
            ),
        ]);
        let item = parse_item(&item, false, None).unwrap();
        assert_eq!(
            response(&item).body_patch,
            Some(serde_json::json!([{"op": "add", "path": "/n", "value": 3}]))
        );
    }
}
