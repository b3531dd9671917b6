//! GRIP instructions: a pure parser from a complete backend response to an [`Instruct`] (spec 4.2–4.4).
//!
//! Input is the backend's status, headers and whole body (the caller caps the body at 100 000 bytes). The
//! result says whether and how to hold the client, what to send it initially / on timeout / without a hold,
//! and the next and gone links. Errors name the header at fault and carry Pushpin's wording where the spec
//! quotes it; the caller answers 502 with them.
//!
//! Decisions where Pushpin is loose or silent:
//! * Grip-Timeout below 5 becomes 5 (Pushpin's effective minimum); the keep-alive timeout below 1 becomes 1.
//!   Timeouts above [`TIMEOUT_SECS_MAX`] (Pushpin's `int` range) are an error.
//! * Duplicate channel names keep the first entry; channels beyond `subscription_max` are dropped silently.
//!   The filter limit applies to JSON channels too, and a channel name must be non-empty.
//! * Header values, names and reasons that would let a backend inject lines (CR, LF, NUL) are an error, as
//!   are channel names and prev-ids containing control characters (they are echoed in `Grip-Last`).
//! * Grip-Keep-Alive data that decodes to nothing is an error: an empty chunk would end a chunked stream.
//!   A JSON keep-alive without content sets no keep-alive.
//! * `base64` keep-alive data and `*-bin` JSON fields must be valid standard base64 (Qt ignored garbage).
//! * In `application/grip-instruct`, JSON `null` is treated as an absent optional field; `response.headers`
//!   given as an object come out in key order (serde_json's map is sorted).
//! * Grip-Expose-Headers filters the backend's own headers; headers given in a JSON `response` are taken as
//!   they are (less Grip-* and Content-Length), as in Pushpin.
//! * Channels listed without a hold are returned in [`Instruct::unheld_channels`]: Pushpin still applies
//!   their response-content filters (build-id) to a no-hold response (spec 4.5).

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde_json::{Map, Value};

use super::params::{parse_item, parse_param, split_list};
use crate::http1::Header;

/// Largest `application/grip-instruct` body accepted before JSON parsing.
pub const INSTRUCT_BODY_MAX: usize = 100_000;
/// Largest timeout accepted anywhere (seconds); Pushpin parses timeouts as a C `int`.
pub const TIMEOUT_SECS_MAX: u64 = 2_147_483_647;
/// Most distinct subscription meta keys one instruct may set.
pub const META_ENTRIES_MAX: usize = 100;
/// Hold timeout when none is given (seconds).
pub const DEFAULT_HOLD_TIMEOUT_SECS: u64 = 55;
/// Shortest effective hold timeout (seconds); smaller values are raised to it.
pub const MIN_HOLD_TIMEOUT_SECS: u64 = 5;
/// Keep-alive period when none is given (seconds).
pub const DEFAULT_KEEP_ALIVE_TIMEOUT_SECS: u64 = 55;
/// Shortest effective keep-alive period (seconds).
pub const MIN_KEEP_ALIVE_TIMEOUT_SECS: u64 = 1;
/// Next-link refresh period when `rel=next` gives none (seconds).
pub const DEFAULT_NEXT_LINK_TIMEOUT_SECS: u64 = 120;

const CONTENT_TYPE_GRIP_INSTRUCT: &str = "application/grip-instruct";

/// How the client is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldMode {
    /// Long-poll: nothing is sent until a publish or the timeout.
    Response,
    /// The initial response streams, then published content is appended.
    Stream,
}

/// One channel to subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    pub prev_id: Option<String>,
    pub filters: Vec<String>,
}

/// When keep-alive data is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAliveMode {
    /// After `timeout_secs` without any data sent; the timer restarts after each message.
    Idle,
    /// Every `timeout_secs`, whatever else was sent.
    Interval,
}

/// Keep-alive data for a stream hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepAlive {
    /// Never empty.
    pub data: Vec<u8>,
    /// At least [`MIN_KEEP_ALIVE_TIMEOUT_SECS`].
    pub timeout_secs: u64,
    pub mode: KeepAliveMode,
}

/// A hold instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub mode: HoldMode,
    /// Unique names, at most `InstructLimits::subscription_max`; may be empty (Pushpin allows it).
    pub channels: Vec<Channel>,
    /// Effective timeout: at least [`MIN_HOLD_TIMEOUT_SECS`].
    pub timeout_secs: u64,
    pub keep_alive: Option<KeepAlive>,
    /// Subscription meta (Grip-Set-Meta / JSON `meta`), unique keys, later values replace earlier ones.
    pub meta: Vec<(String, String)>,
}

/// `Grip-Link: <url>; rel=next[; timeout=N]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextLink {
    /// As given; the caller resolves a relative URL against the request URL.
    pub url: String,
    pub timeout_secs: u64,
}

/// The parsed instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruct {
    pub hold: Option<Hold>,
    /// Status for the client (initial stream response, no-hold response, response-hold timeout).
    pub code: u16,
    pub reason: String,
    /// Headers for the client: no Grip-*, no Content-Length (the caller recomputes framing).
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
    pub next_link: Option<NextLink>,
    pub gone_link: Option<String>,
    /// Channels named when there is no hold (their response-content filters still apply).
    pub unheld_channels: Vec<Channel>,
}

/// Configurable bounds.
#[derive(Debug, Clone, Copy)]
pub struct InstructLimits {
    /// `connection_subscription_max`: channels beyond it are dropped.
    pub subscription_max: usize,
    /// Filters per channel; more is an error.
    pub filters_max: usize,
}

impl Default for InstructLimits {
    fn default() -> Self {
        InstructLimits {
            subscription_max: 20,
            filters_max: 5,
        }
    }
}

/// Why a response could not be taken as GRIP instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstructError {
    /// The header at fault, e.g. `"Grip-Hold"`; `None` for the grip-instruct body.
    pub header: Option<String>,
    pub message: String,
}

impl InstructError {
    fn header(name: &str, message: impl Into<String>) -> Self {
        InstructError {
            header: Some(name.to_string()),
            message: message.into(),
        }
    }

    fn body(message: impl Into<String>) -> Self {
        InstructError {
            header: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for InstructError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InstructError {}

/// Standard reason phrase for `code`, `"Undefined Reason"` (Pushpin's text) when there is none.
pub fn reason_phrase(code: u16) -> &'static str {
    match crate::http1::reason_phrase(code) {
        "" => "Undefined Reason",
        phrase => phrase,
    }
}

/// True if the response should be interpreted as GRIP: Content-Type (before `;`, trimmed,
/// case-insensitive) is application/grip-instruct, or any header name starts with `Grip-`.
pub fn is_grip_response(headers: &[Header]) -> bool {
    headers.iter().any(|h| is_grip_name(&h.name)) || is_instruct_content(headers)
}

/// Parse a complete backend response (status line fields, headers, whole body).
pub fn parse_instruct(
    code: u16,
    reason: &str,
    headers: &[Header],
    body: &[u8],
    limits: &InstructLimits,
) -> Result<Instruct, InstructError> {
    // Headers are checked in Pushpin's order, so the first error reported is the same.
    let mut b = Builder {
        hold_mode: parse_hold(headers)?,
        channels: Vec::new(),
        timeout: None,
        keep_alive: None,
        meta: Vec::new(),
        code,
        reason: reason.to_string(),
        headers: Vec::new(),
        body: body.to_vec(),
    };
    for item in grip_list(headers, GRIP_CHANNEL)? {
        let channel = parse_channel_item(item, limits)?;
        b.add_channel(channel, limits);
    }
    b.timeout = parse_timeout(headers)?;
    let expose = grip_list(headers, GRIP_EXPOSE_HEADERS)?;
    b.keep_alive = parse_keep_alive(headers)?;
    parse_set_meta(headers, &mut b.meta)?;
    if let Some((status_code, status_reason)) = parse_status(headers)? {
        b.code = status_code;
        b.reason = status_reason;
    }
    let (next_link, gone_link) = parse_links(headers)?;

    b.headers = headers
        .iter()
        .filter(|h| keep_for_client(&h.name))
        .filter(|h| expose.is_empty() || expose.iter().any(|e| e.eq_ignore_ascii_case(&h.name)))
        .cloned()
        .collect();

    if is_instruct_content(headers) {
        if code != 200 {
            return Err(InstructError::header(
                "Content-Type",
                "response code for application/grip-instruct content must be 200",
            ));
        }
        apply_json(body, &mut b, limits)?;
    }

    check_reason(&b.reason)?;
    if b.reason.is_empty() {
        b.reason = reason_phrase(b.code).to_string();
    }
    Ok(b.finish(next_link, gone_link))
}

const GRIP_HOLD: &str = "Grip-Hold";
const GRIP_CHANNEL: &str = "Grip-Channel";
const GRIP_TIMEOUT: &str = "Grip-Timeout";
const GRIP_KEEP_ALIVE: &str = "Grip-Keep-Alive";
const GRIP_SET_META: &str = "Grip-Set-Meta";
const GRIP_STATUS: &str = "Grip-Status";
const GRIP_LINK: &str = "Grip-Link";
const GRIP_EXPOSE_HEADERS: &str = "Grip-Expose-Headers";

/// Everything gathered so far; JSON instructions overwrite parts of it.
struct Builder {
    hold_mode: Option<HoldMode>,
    channels: Vec<Channel>,
    timeout: Option<u64>,
    keep_alive: Option<KeepAlive>,
    meta: Vec<(String, String)>,
    code: u16,
    reason: String,
    headers: Vec<Header>,
    body: Vec<u8>,
}

impl Builder {
    fn add_channel(&mut self, channel: Channel, limits: &InstructLimits) {
        if self.channels.iter().any(|c| c.name == channel.name) {
            return;
        }
        if self.channels.len() < limits.subscription_max {
            self.channels.push(channel);
        }
    }

    fn finish(self, next_link: Option<NextLink>, gone_link: Option<String>) -> Instruct {
        let (hold, unheld_channels) = match self.hold_mode {
            Some(mode) => (
                Some(Hold {
                    mode,
                    channels: self.channels,
                    timeout_secs: self
                        .timeout
                        .unwrap_or(DEFAULT_HOLD_TIMEOUT_SECS)
                        .max(MIN_HOLD_TIMEOUT_SECS),
                    keep_alive: self.keep_alive,
                    meta: self.meta,
                }),
                Vec::new(),
            ),
            None => (None, self.channels),
        };
        Instruct {
            hold,
            code: self.code,
            reason: self.reason,
            headers: self.headers,
            body: self.body,
            next_link,
            gone_link,
            unheld_channels,
        }
    }
}

fn is_grip_name(name: &str) -> bool {
    name.as_bytes()
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"Grip-"))
}

fn keep_for_client(name: &str) -> bool {
    !is_grip_name(name) && !name.eq_ignore_ascii_case("Content-Length")
}

fn is_instruct_content(headers: &[Header]) -> bool {
    let Some(h) = headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Content-Type"))
    else {
        return false;
    };
    let media = h.value.split(|&c| c == b';').next().unwrap_or(&[]);
    std::str::from_utf8(media)
        .is_ok_and(|m| m.trim().eq_ignore_ascii_case(CONTENT_TYPE_GRIP_INSTRUCT))
}

/// The value of header `h` as text; Grip-* values must be UTF-8.
fn value_str<'a>(name: &str, h: &'a Header) -> Result<&'a str, InstructError> {
    std::str::from_utf8(&h.value)
        .map_err(|_| InstructError::header(name, format!("{name} is not valid UTF-8")))
}

/// The first header called `name`, as text.
fn first_value<'a>(headers: &'a [Header], name: &str) -> Result<Option<&'a str>, InstructError> {
    match headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)) {
        Some(h) => value_str(name, h).map(Some),
        None => Ok(None),
    }
}

/// The items of every header called `name`, each value split as a quote-aware comma list.
fn grip_list<'a>(headers: &'a [Header], name: &str) -> Result<Vec<&'a str>, InstructError> {
    let mut out = Vec::new();
    for h in headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)) {
        out.extend(split_list(value_str(name, h)?));
    }
    Ok(out)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

enum IntError {
    Invalid,
    Negative,
}

/// A decimal integer like Qt's `toInt`: optional sign, digits, within [`TIMEOUT_SECS_MAX`].
fn parse_int(s: &str) -> Result<u64, IntError> {
    let s = s.trim();
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..).unwrap_or("")),
        Some(b'+') => (false, s.get(1..).unwrap_or("")),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(IntError::Invalid);
    }
    let n: u64 = digits.parse().map_err(|_| IntError::Invalid)?;
    if n > TIMEOUT_SECS_MAX {
        return Err(IntError::Invalid);
    }
    if negative && n > 0 {
        return Err(IntError::Negative);
    }
    Ok(n)
}

fn parse_hold(headers: &[Header]) -> Result<Option<HoldMode>, InstructError> {
    match first_value(headers, GRIP_HOLD)? {
        None => Ok(None),
        Some("response") => Ok(Some(HoldMode::Response)),
        Some("stream") => Ok(Some(HoldMode::Stream)),
        Some(_) => Err(InstructError::header(
            GRIP_HOLD,
            "Grip-Hold must be set to either 'response' or 'stream'",
        )),
    }
}

/// Reject control characters that could end a header line or a `Grip-Last` value.
fn has_ctl(s: &str) -> bool {
    s.bytes().any(|c| c < 0x20 || c == 0x7f)
}

fn check_channel(channel: &Channel, limits: &InstructLimits) -> Result<(), String> {
    if channel.name.is_empty() {
        return Err("channel name cannot be empty".to_string());
    }
    if has_ctl(&channel.name) {
        return Err(format!(
            "channel name '{}' contains invalid characters",
            channel.name.escape_debug()
        ));
    }
    if channel.prev_id.as_deref().is_some_and(has_ctl) {
        return Err(format!(
            "prev-id for channel '{}' contains invalid characters",
            channel.name
        ));
    }
    if channel.filters.len() > limits.filters_max {
        return Err(format!("too many filters for channel '{}'", channel.name));
    }
    Ok(())
}

fn parse_channel_item(item: &str, limits: &InstructLimits) -> Result<Channel, InstructError> {
    let err = |m: String| InstructError::header(GRIP_CHANNEL, m);
    let (name, params) =
        parse_item(item).map_err(|m| err(format!("failed to parse Grip-Channel: {m}")))?;
    let channel = Channel {
        name,
        prev_id: param(&params, "prev-id").map(str::to_string),
        filters: params
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("filter"))
            .map(|(_, v)| v.clone())
            .collect(),
    };
    check_channel(&channel, limits).map_err(err)?;
    Ok(channel)
}

fn parse_timeout(headers: &[Header]) -> Result<Option<u64>, InstructError> {
    let Some(v) = first_value(headers, GRIP_TIMEOUT)? else {
        return Ok(None);
    };
    match parse_int(v) {
        Ok(n) => Ok(Some(n)),
        Err(IntError::Invalid) => Err(InstructError::header(
            GRIP_TIMEOUT,
            "failed to parse Grip-Timeout",
        )),
        Err(IntError::Negative) => Err(InstructError::header(
            GRIP_TIMEOUT,
            "Grip-Timeout has invalid value",
        )),
    }
}

/// Resolve the `cstring` escapes Pushpin knows (`\\`, `\r`, `\n`, `\xHH`); any other escaped character is
/// dropped (spec 4.3). `None` for a trailing `\` or a bad `\x`.
fn unescape_cstring(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let e = *b.get(i)?;
        i += 1;
        match e {
            b'\\' => out.push(b'\\'),
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b'x' => {
                let hi = hex_digit(*b.get(i)?)?;
                let lo = hex_digit(*b.get(i + 1)?)?;
                i += 2;
                out.push(hi << 4 | lo);
            }
            _ => {}
        }
    }
    Some(out)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Standard-alphabet base64 that accepts input with or without padding.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    BASE64_LENIENT.decode(s.trim()).ok()
}

fn parse_keep_alive(headers: &[Header]) -> Result<Option<KeepAlive>, InstructError> {
    let err = |m: String| InstructError::header(GRIP_KEEP_ALIVE, m);
    let Some(v) = first_value(headers, GRIP_KEEP_ALIVE)? else {
        return Ok(None);
    };
    if v.trim().is_empty() {
        return Ok(None);
    }
    let (raw, params) =
        parse_item(v).map_err(|m| err(format!("failed to parse Grip-Keep-Alive: {m}")))?;
    if raw.is_empty() {
        return Err(err("Grip-Keep-Alive cannot be empty".to_string()));
    }
    let mode = match param(&params, "mode") {
        None | Some("") | Some("idle") => KeepAliveMode::Idle,
        Some("interval") => KeepAliveMode::Interval,
        Some(m) => return Err(err(format!("no such Grip-Keep-Alive mode '{m}'"))),
    };
    let timeout_secs = match param(&params, "timeout") {
        None => DEFAULT_KEEP_ALIVE_TIMEOUT_SECS,
        Some(t) => match parse_int(t) {
            Ok(n) => n,
            Err(IntError::Invalid) => {
                return Err(err(
                    "failed to parse Grip-Keep-Alive timeout value".to_string()
                ))
            }
            Err(IntError::Negative) => {
                return Err(err("Grip-Keep-Alive timeout has invalid value".to_string()))
            }
        },
    }
    .max(MIN_KEEP_ALIVE_TIMEOUT_SECS);
    let data = match param(&params, "format") {
        None | Some("") | Some("raw") => raw.into_bytes(),
        Some("cstring") => unescape_cstring(&raw)
            .ok_or_else(|| err("failed to parse Grip-Keep-Alive cstring format".to_string()))?,
        Some("base64") => decode_base64(&raw)
            .ok_or_else(|| err("failed to parse Grip-Keep-Alive base64 format".to_string()))?,
        Some(f) => return Err(err(format!("no such Grip-Keep-Alive format '{f}'"))),
    };
    if data.is_empty() {
        return Err(err("Grip-Keep-Alive cannot be empty".to_string()));
    }
    Ok(Some(KeepAlive {
        data,
        timeout_secs,
        mode,
    }))
}

fn set_meta(meta: &mut Vec<(String, String)>, key: String, value: String) -> Result<(), String> {
    if let Some(slot) = meta.iter_mut().find(|(k, _)| *k == key) {
        slot.1 = value;
        return Ok(());
    }
    if meta.len() >= META_ENTRIES_MAX {
        return Err(format!(
            "too many meta entries (at most {META_ENTRIES_MAX})"
        ));
    }
    meta.push((key, value));
    Ok(())
}

fn parse_set_meta(
    headers: &[Header],
    meta: &mut Vec<(String, String)>,
) -> Result<(), InstructError> {
    let err = |m: String| InstructError::header(GRIP_SET_META, m);
    for item in grip_list(headers, GRIP_SET_META)? {
        // Only the leading `key=value` counts; parameters after it are ignored, as in Pushpin.
        let (first, _) =
            parse_item(item).map_err(|m| err(format!("failed to parse Grip-Set-Meta: {m}")))?;
        if first.is_empty() {
            return Err(err("Grip-Set-Meta cannot be empty".to_string()));
        }
        let (key, value) =
            parse_param(&first).map_err(|m| err(format!("failed to parse Grip-Set-Meta: {m}")))?;
        set_meta(meta, key, value).map_err(err)?;
    }
    Ok(())
}

fn check_reason(reason: &str) -> Result<(), InstructError> {
    if reason
        .bytes()
        .any(|c| (c < 0x20 && c != b'\t') || c == 0x7f)
    {
        return Err(InstructError::body(
            "status reason contains invalid characters",
        ));
    }
    Ok(())
}

fn parse_status(headers: &[Header]) -> Result<Option<(u16, String)>, InstructError> {
    let Some(v) = first_value(headers, GRIP_STATUS)? else {
        return Ok(None);
    };
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let (code_str, reason) = match v.find(' ') {
        Some(at) => (v.get(..at).unwrap_or(""), v.get(at + 1..).unwrap_or("")),
        None => (v, ""),
    };
    let code = match parse_int(code_str) {
        Ok(n) if n <= 999 => n as u16,
        _ => {
            return Err(InstructError::header(
                GRIP_STATUS,
                "Grip-Status contains invalid status code",
            ))
        }
    };
    check_reason(reason).map_err(|e| InstructError::header(GRIP_STATUS, e.message))?;
    Ok(Some((code, reason.to_string())))
}

type Links = (Option<NextLink>, Option<String>);

fn parse_links(headers: &[Header]) -> Result<Links, InstructError> {
    let err = |m: &str| InstructError::header(GRIP_LINK, m);
    let mut next = None;
    let mut gone = None;
    for item in grip_list(headers, GRIP_LINK)? {
        let (target, params) =
            parse_item(item).map_err(|m| err(&format!("failed to parse Grip-Link value: {m}")))?;
        // A bare `<url>` carries no relation; Pushpin skips it.
        if params.is_empty() {
            continue;
        }
        let url = target
            .strip_prefix('<')
            .and_then(|t| t.strip_suffix('>'))
            .filter(|u| !u.is_empty())
            .ok_or_else(|| err("failed to parse Grip-Link value"))?;
        if url.bytes().any(|c| c <= b' ' || c == 0x7f) {
            return Err(err("Grip-Link contains invalid link"));
        }
        let rel = param(&params, "rel").unwrap_or("");
        if rel.eq_ignore_ascii_case("next") {
            let timeout_secs = match param(&params, "timeout") {
                None => DEFAULT_NEXT_LINK_TIMEOUT_SECS,
                Some(t) => match parse_int(t) {
                    Ok(n) => n,
                    Err(IntError::Invalid) => {
                        return Err(err("failed to parse Grip-Link timeout value"))
                    }
                    Err(IntError::Negative) => {
                        return Err(err("Grip-Link timeout has invalid value"))
                    }
                },
            };
            next = Some(NextLink {
                url: url.to_string(),
                timeout_secs,
            });
        } else if rel.eq_ignore_ascii_case("gone") {
            gone = Some(url.to_string());
        }
    }
    Ok((next, gone))
}

// ---- application/grip-instruct ----

/// An optional member; JSON `null` counts as absent.
fn member<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn wrong_type(parent: &str, key: &str) -> InstructError {
    InstructError::body(format!("{parent} contains '{key}' with wrong type"))
}

fn opt_string<'a>(
    obj: &'a Map<String, Value>,
    parent: &str,
    key: &str,
) -> Result<Option<&'a str>, InstructError> {
    match member(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(wrong_type(parent, key)),
    }
}

/// A non-negative integer member (integral floats accepted), at most `max`.
fn opt_uint(
    obj: &Map<String, Value>,
    parent: &str,
    key: &str,
    max: u64,
) -> Result<Option<u64>, InstructError> {
    let Some(v) = member(obj, key) else {
        return Ok(None);
    };
    let Value::Number(n) = v else {
        return Err(wrong_type(parent, key));
    };
    let invalid = || InstructError::body(format!("{parent} contains '{key}' with invalid value"));
    let value = if let Some(u) = n.as_u64() {
        u
    } else if n.as_i64().is_some() {
        return Err(invalid());
    } else {
        match n.as_f64() {
            Some(f) if f.is_finite() && f.fract() == 0.0 => {
                if f < 0.0 || f > max as f64 {
                    return Err(invalid());
                }
                f as u64
            }
            _ => return Err(wrong_type(parent, key)),
        }
    };
    if value > max {
        return Err(invalid());
    }
    Ok(Some(value))
}

fn apply_json(body: &[u8], b: &mut Builder, limits: &InstructLimits) -> Result<(), InstructError> {
    if body.len() > INSTRUCT_BODY_MAX {
        return Err(InstructError::body(format!(
            "application/grip-instruct content too large (over {INSTRUCT_BODY_MAX} bytes)"
        )));
    }
    let doc: Value = serde_json::from_slice(body).map_err(|_| {
        InstructError::body("failed to parse application/grip-instruct content as JSON")
    })?;
    let Value::Object(root) = doc else {
        return Err(InstructError::body("instruct must be an object"));
    };
    if let Some(hold) = member(&root, "hold") {
        let Value::Object(hold) = hold else {
            return Err(wrong_type("instruct", "hold"));
        };
        apply_json_hold(hold, b, limits)?;
    }
    // The instruct body replaces the real response's content even when it has no `response`.
    b.headers.clear();
    b.body.clear();
    if let Some(resp) = member(&root, "response") {
        let Value::Object(resp) = resp else {
            return Err(wrong_type("instruct", "response"));
        };
        apply_json_response(resp, b)?;
    }
    Ok(())
}

fn apply_json_hold(
    hold: &Map<String, Value>,
    b: &mut Builder,
    limits: &InstructLimits,
) -> Result<(), InstructError> {
    b.hold_mode = match opt_string(hold, "hold", "mode")? {
        None | Some("response") => Some(HoldMode::Response),
        Some("stream") => Some(HoldMode::Stream),
        Some(_) => {
            return Err(InstructError::body(
                "hold 'mode' must be set to either 'response' or 'stream'",
            ))
        }
    };
    let channels = match member(hold, "channels") {
        None => return Err(InstructError::body("hold does not contain 'channels'")),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(wrong_type("hold", "channels")),
    };
    for v in channels {
        let channel = parse_json_channel(v)?;
        check_channel(&channel, limits).map_err(InstructError::body)?;
        b.add_channel(channel, limits);
    }
    if let Some(t) = opt_uint(hold, "hold", "timeout", TIMEOUT_SECS_MAX)? {
        b.timeout = Some(t);
    }
    match member(hold, "keep-alive") {
        None => {}
        Some(Value::Object(ka)) => b.keep_alive = parse_json_keep_alive(ka)?,
        Some(_) => return Err(wrong_type("hold", "keep-alive")),
    }
    match member(hold, "meta") {
        None => {}
        Some(Value::Object(meta)) => {
            for (k, v) in meta {
                let Value::String(v) = v else {
                    return Err(InstructError::body(format!(
                        "'meta' contains '{k}' with wrong type"
                    )));
                };
                set_meta(&mut b.meta, k.clone(), v.clone()).map_err(InstructError::body)?;
            }
        }
        Some(_) => return Err(wrong_type("hold", "meta")),
    }
    Ok(())
}

fn parse_json_channel(v: &Value) -> Result<Channel, InstructError> {
    let Value::Object(c) = v else {
        return Err(InstructError::body("channel is not an object"));
    };
    let name = match c.get("name") {
        None | Some(Value::Null) => {
            return Err(InstructError::body("channel does not contain 'name'"))
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(wrong_type("channel", "name")),
    };
    let prev_id = opt_string(c, "channel", "prev-id")?.map(str::to_string);
    let mut filters = Vec::new();
    match member(c, "filters") {
        None => {}
        Some(Value::Array(list)) => {
            for f in list {
                let Value::String(f) = f else {
                    return Err(InstructError::body(
                        "filters contains value with wrong type",
                    ));
                };
                filters.push(f.clone());
            }
        }
        Some(_) => return Err(wrong_type("channel", "filters")),
    }
    Ok(Channel {
        name,
        prev_id,
        filters,
    })
}

/// JSON keep-alive: never reset by activity (spec 4.4), hence `Interval`.
fn parse_json_keep_alive(ka: &Map<String, Value>) -> Result<Option<KeepAlive>, InstructError> {
    let data = if let Some(bin) = opt_string(ka, "keep-alive", "content-bin")? {
        decode_base64(bin).ok_or_else(|| {
            InstructError::body("keep-alive contains 'content-bin' with invalid value")
        })?
    } else {
        opt_string(ka, "keep-alive", "content")?
            .unwrap_or("")
            .as_bytes()
            .to_vec()
    };
    let timeout_secs = opt_uint(ka, "keep-alive", "timeout", TIMEOUT_SECS_MAX)?
        .unwrap_or(DEFAULT_KEEP_ALIVE_TIMEOUT_SECS)
        .max(MIN_KEEP_ALIVE_TIMEOUT_SECS);
    if data.is_empty() {
        return Ok(None);
    }
    Ok(Some(KeepAlive {
        data,
        timeout_secs,
        mode: KeepAliveMode::Interval,
    }))
}

/// RFC 9110 5.1 token characters.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

fn push_json_header(b: &mut Builder, name: &str, value: &str) -> Result<(), InstructError> {
    if !is_token(name) {
        return Err(InstructError::body(format!(
            "header name '{}' is invalid",
            name.escape_debug()
        )));
    }
    if value.bytes().any(|c| c == b'\r' || c == b'\n' || c == 0) {
        return Err(InstructError::body(format!(
            "header '{name}' contains invalid characters"
        )));
    }
    if keep_for_client(name) {
        b.headers.push(Header::new(name, value.as_bytes()));
    }
    Ok(())
}

fn apply_json_response(resp: &Map<String, Value>, b: &mut Builder) -> Result<(), InstructError> {
    if let Some(code) = opt_uint(resp, "response", "code", 999)? {
        b.code = code as u16;
        // A code given here makes the backend's (or Grip-Status's) reason meaningless.
        b.reason.clear();
    }
    if let Some(reason) = opt_string(resp, "response", "reason")? {
        if !reason.is_empty() {
            b.reason = reason.to_string();
        }
    }
    match member(resp, "headers") {
        None => {}
        Some(Value::Array(list)) => {
            for h in list {
                let Value::Array(pair) = h else {
                    return Err(InstructError::body(
                        "headers contains element with wrong type",
                    ));
                };
                let [name, value] = pair.as_slice() else {
                    return Err(InstructError::body(
                        "headers contains list with wrong number of elements",
                    ));
                };
                let Value::String(name) = name else {
                    return Err(InstructError::body(
                        "header contains name element with wrong type",
                    ));
                };
                let Value::String(value) = value else {
                    return Err(InstructError::body(
                        "header contains value element with wrong type",
                    ));
                };
                push_json_header(b, name, value)?;
            }
        }
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let Value::String(value) = value else {
                    return Err(InstructError::body(format!(
                        "headers contains '{name}' with wrong type"
                    )));
                };
                push_json_header(b, name, value)?;
            }
        }
        Some(_) => return Err(wrong_type("response", "headers")),
    }
    if let Some(bin) = opt_string(resp, "response", "body-bin")? {
        b.body = decode_base64(bin).ok_or_else(|| {
            InstructError::body("response contains 'body-bin' with invalid value")
        })?;
    } else if let Some(body) = opt_string(resp, "response", "body")? {
        b.body = body.as_bytes().to_vec();
    }
    Ok(())
}

#[cfg(test)]
mod tests;
