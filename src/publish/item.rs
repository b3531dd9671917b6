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
    // The response and WebSocket formats are boxed: most items carry one format, and a smaller item is
    // cheaper to move through the ZeroMQ bridge, the sequencer and its `Arc`.
    pub http_response: Option<Box<HttpResponseFormat>>,
    pub http_stream: Option<HttpStreamFormat>,
    pub ws_message: Option<Box<WsMessageFormat>>,
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
    let http_response = vresp
        .map(|f| parse_http_response(f, json).map(Box::new))
        .transpose()?;
    let http_stream = vstream.map(|f| parse_http_stream(f, json)).transpose()?;
    let ws_message = vws
        .map(|f| parse_ws_message(f, json).map(Box::new))
        .transpose()?;

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
#[path = "item_tests.rs"]
mod tests;
