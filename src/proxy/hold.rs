//! A held client connection (GRIP `Grip-Hold: response` or `stream`), sans-IO.
//!
//! The session hands published items to `deliver`, time to `on_time`, and drains bytes with `pump`. Nothing here
//! touches a socket or the worker's channel index: the session reports subscription changes to the worker.
//!
//! Delivery policy (holdfast's default; Pushpin's `message_rate`/`message_hwm` apply on top when set):
//! * Each held connection queues at most `HELD_QUEUE_MAX` published messages that it has not yet encoded.
//!   Messages are encoded into the connection's write queue only while that queue holds less than
//!   `OUT_QUEUE_MAX` bytes, so a slow client cannot make us buffer without bound.
//! * When the message queue is full, the oldest queued message is dropped: counted per connection and in the
//!   worker's statistics, and logged once per connection.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::OUT_QUEUE_MAX;
use super::rewrite;
use crate::buf::OutBuf;
use crate::grip::{HoldMode, Instruct, KeepAlive, KeepAliveMode};
use crate::http1::{
    remove_headers, set_header, BodyEncoder, BodyKind, Header, ResponseHead, Version,
};
use crate::publish::{Action, Item};

/// Published messages a held connection may queue before the oldest is dropped.
pub const HELD_QUEUE_MAX: usize = 1024;

/// One channel of a hold, with the name as published to (route prefix applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldChannel {
    pub name: String,
    /// The name as the backend gave it (without the route prefix), for `Grip-Last`.
    pub backend_name: String,
    /// The prev-id the backend gave, then the id of each item delivered.
    pub last_id: Option<String>,
    pub filters: Vec<String>,
    /// Implicit `sub=` channels are not affected by instructions.
    pub implicit: bool,
    /// A message for this channel was sent since the last next-link refresh check.
    pub active: bool,
    /// The backend named a prev-id: items must follow on from `last_id` (else the hold retries).
    pub sequenced: bool,
}

/// What a stream hold hands on when its response continues with a next link.
pub struct StreamParts {
    /// The client body framing, mid-response.
    pub encoder: BodyEncoder,
    pub keep_alive_conn: bool,
    pub code: u16,
    /// `Grip-Last` entries for the next-link request.
    pub grip_last: Vec<(String, String)>,
}

/// What happened when the hold was given time or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still held.
    Held,
    /// The response is complete (a published response, the timeout response, or a closed stream).
    Finished,
    /// A published hint asks for the original request to be made again (response holds), or for the
    /// next link to be fetched (stream holds).
    Retry,
}

/// How a published item is addressed to this hold.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub item: Arc<Item>,
    pub channel: usize,
}

pub struct Hold {
    pub mode: HoldMode,
    pub channels: Vec<HeldChannel>,
    meta: Vec<(String, String)>,
    client_version: Version,
    keep_alive_conn: bool,
    /// The response used at timeout (response mode), and as the base of a published response.
    code: u16,
    reason: String,
    headers: Vec<Header>,
    body: Vec<u8>,
    timeout_at: Option<Instant>,
    encoder: Option<BodyEncoder>,
    keep_alive: Option<KeepAlive>,
    keep_alive_at: Option<Instant>,
    queue: VecDeque<Delivery>,
    pub dropped: u64,
    pub delivered: u64,
    finished: bool,
    retry: bool,
}

impl Hold {
    /// Start holding. For a stream hold the initial response head and body are appended to `out` at once.
    pub fn start(
        instruct: Instruct,
        prefix: &str,
        implicit: &[String],
        client_version: Version,
        keep_alive_conn: bool,
        now: Instant,
        out: &mut OutBuf,
    ) -> Option<Hold> {
        Hold::begin(
            instruct,
            prefix,
            implicit,
            client_version,
            keep_alive_conn,
            None,
            now,
            out,
        )
    }

    /// Continue a client response that is already streaming (a next link answered with a stream hold):
    /// no head is written; the instruction's body goes out through the response's own framing.
    #[allow(clippy::too_many_arguments)]
    pub fn resume(
        instruct: Instruct,
        prefix: &str,
        implicit: &[String],
        client_version: Version,
        keep_alive_conn: bool,
        encoder: BodyEncoder,
        now: Instant,
        out: &mut OutBuf,
    ) -> Option<Hold> {
        Hold::begin(
            instruct,
            prefix,
            implicit,
            client_version,
            keep_alive_conn,
            Some(encoder),
            now,
            out,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn begin(
        instruct: Instruct,
        prefix: &str,
        implicit: &[String],
        client_version: Version,
        keep_alive_conn: bool,
        continued: Option<BodyEncoder>,
        now: Instant,
        out: &mut OutBuf,
    ) -> Option<Hold> {
        let hold = instruct.hold?;
        let mut channels: Vec<HeldChannel> = hold
            .channels
            .into_iter()
            .map(|c| HeldChannel {
                name: format!("{prefix}{}", c.name),
                backend_name: c.name,
                sequenced: c.prev_id.is_some(),
                last_id: c.prev_id,
                filters: c.filters,
                implicit: false,
                active: false,
            })
            .collect();
        for sub in implicit {
            if !channels.iter().any(|c| &c.name == sub) {
                channels.push(HeldChannel {
                    name: sub.clone(),
                    backend_name: sub.clone(),
                    last_id: None,
                    filters: Vec::new(),
                    implicit: true,
                    active: false,
                    sequenced: false,
                });
            }
        }
        let mut h = Hold {
            mode: hold.mode,
            channels,
            meta: hold.meta,
            client_version,
            keep_alive_conn,
            code: instruct.code,
            reason: instruct.reason,
            headers: instruct.headers,
            body: instruct.body,
            timeout_at: None,
            encoder: None,
            keep_alive: None,
            keep_alive_at: None,
            queue: VecDeque::new(),
            dropped: 0,
            delivered: 0,
            finished: false,
            retry: false,
        };
        match hold.mode {
            HoldMode::Response => {
                h.timeout_at = Some(now + Duration::from_secs(hold.timeout_secs));
            }
            HoldMode::Stream if continued.is_some() => {
                let mut enc = continued?;
                let body = std::mem::take(&mut h.body);
                let _ = enc.encode(&body, out.vec());
                h.encoder = Some(enc);
                if let Some(ka) = hold.keep_alive {
                    h.keep_alive_at = Some(now + Duration::from_secs(ka.timeout_secs));
                    h.keep_alive = Some(ka);
                }
            }
            HoldMode::Stream => {
                let head = ResponseHead {
                    version: Version::Http11,
                    code: h.code,
                    reason: h.reason.clone(),
                    headers: std::mem::take(&mut h.headers),
                };
                let body = std::mem::take(&mut h.body);
                let (enc, keep_alive_conn) =
                    begin_stream(&head, &body, client_version, h.keep_alive_conn, out);
                h.keep_alive_conn = keep_alive_conn;
                h.encoder = Some(enc);
                if let Some(ka) = hold.keep_alive {
                    h.keep_alive_at = Some(now + Duration::from_secs(ka.timeout_secs));
                    h.keep_alive = Some(ka);
                }
            }
        }
        Some(h)
    }

    /// `Grip-Last` entries for a retried request: channels with a known last id (backend names).
    pub fn grip_last(&self) -> Vec<(String, String)> {
        self.channels
            .iter()
            .filter(|c| !c.implicit)
            .filter_map(|c| {
                c.last_id
                    .as_ref()
                    .map(|id| (c.backend_name.clone(), id.clone()))
            })
            .collect()
    }

    /// End a stream hold so its response can continue elsewhere (a next-link fetch). Queued messages are
    /// dropped: the next link's response is expected to cover them (it is asked with `Grip-Last`).
    pub fn into_stream_parts(mut self) -> Option<StreamParts> {
        if self.mode != HoldMode::Stream || self.finished {
            return None;
        }
        let grip_last = self.grip_last();
        Some(StreamParts {
            encoder: self.encoder.take()?,
            keep_alive_conn: self.keep_alive_conn,
            code: self.code,
            grip_last,
        })
    }

    /// Whether every channel had a message since the last call; clears the marks (next-link refresh).
    pub fn take_all_active(&mut self) -> bool {
        let all = self.channels.iter().all(|c| c.active);
        for c in &mut self.channels {
            c.active = false;
        }
        all
    }

    /// Append bytes of the stream's initial body (relayed after the head, see the session's
    /// pre-stream phase) in the response's framing.
    pub fn encode_body(&mut self, data: &[u8], out: &mut OutBuf) {
        if let Some(enc) = &mut self.encoder {
            let _ = enc.encode(data, out.vec());
        }
    }

    pub fn client_version(&self) -> Version {
        self.client_version
    }

    /// Whether the connection may carry another request once this hold finishes.
    pub fn keep_alive_conn(&self) -> bool {
        self.keep_alive_conn
    }

    /// The HTTP status sent to the client (for the access log).
    pub fn status(&self) -> u16 {
        self.code
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Queue a published item for this hold (written by `pump`), if its format and filters say it is for
    /// us. `subscribed` answers whether the connection listens on a channel (for `require-sub`). Returns
    /// whether the hold took it: a new message, or a gap in `prev-id` that makes the hold ask again.
    pub fn deliver(
        &mut self,
        item: &Arc<Item>,
        channel: &str,
        subscribed: &dyn Fn(&str) -> bool,
    ) -> bool {
        let Some(taken) = self.accept(item, channel, subscribed) else {
            return false;
        };
        if let Some(idx) = taken {
            if self.queue.len() >= HELD_QUEUE_MAX {
                self.queue.pop_front();
                self.dropped += 1;
            }
            self.queue.push_back(Delivery {
                item: Arc::clone(item),
                channel: idx,
            });
        }
        true
    }

    /// As `deliver` followed by `pump`, but when nothing waits ahead of the item and `out` has room it is
    /// encoded into `out` at once: no `Arc` clone and no queue entry. The `Arc`'s counter is shared by every
    /// worker delivering the item, so at a thousand subscribers of one channel a clone per subscriber kept
    /// one cache line bouncing between the cores.
    pub fn deliver_into(
        &mut self,
        item: &Arc<Item>,
        channel: &str,
        subscribed: &dyn Fn(&str) -> bool,
        out: &mut OutBuf,
    ) -> bool {
        if !self.queue.is_empty() || self.retry || out.len() >= OUT_QUEUE_MAX {
            return self.deliver(item, channel, subscribed);
        }
        let Some(taken) = self.accept(item, channel, subscribed) else {
            return false;
        };
        if let Some(idx) = taken {
            self.send(item, idx, out);
        }
        true
    }

    /// Whether this hold takes `item` on `channel`: `None` if not, `Some(None)` if its `prev-id` shows a gap
    /// (the hold is then marked to retry), `Some(Some(index))` of the channel to send it on.
    fn accept(
        &mut self,
        item: &Item,
        channel: &str,
        subscribed: &dyn Fn(&str) -> bool,
    ) -> Option<Option<usize>> {
        if self.finished {
            return None;
        }
        let idx = self.channels.iter().position(|c| c.name == channel)?;
        let wanted = match self.mode {
            HoldMode::Response => item.http_response.is_some(),
            HoldMode::Stream => item.http_stream.is_some(),
        };
        if !wanted || !self.passes_filters(idx, item, subscribed) {
            return None;
        }
        if !item.no_seq && self.channels[idx].sequenced {
            if let (Some(prev), Some(last)) = (&item.prev_id, &self.channels[idx].last_id) {
                if prev != last {
                    // Spec 4.8: this hold missed something between its last id and this item. A
                    // response hold makes its request again, a stream fetches its next link (both
                    // with Grip-Last), so the backend fills the gap.
                    self.retry = true;
                    return Some(None);
                }
            }
        }
        Some(Some(idx))
    }

    /// Encode one accepted item into `out` and note its id as the channel's last.
    fn send(&mut self, item: &Item, channel: usize, out: &mut OutBuf) {
        match self.mode {
            HoldMode::Response => self.send_published_response(item, channel, out),
            HoldMode::Stream => self.send_stream_item(item, channel, out),
        }
        if let Some(id) = &item.id {
            self.channels[channel].last_id = Some(id.clone());
        }
        self.channels[channel].active = true;
    }

    fn passes_filters(
        &self,
        channel: usize,
        item: &Item,
        subscribed: &dyn Fn(&str) -> bool,
    ) -> bool {
        let content_filters = match self.mode {
            HoldMode::Response => item
                .http_response
                .as_ref()
                .and_then(|f| f.content_filters.as_ref()),
            HoldMode::Stream => item
                .http_stream
                .as_ref()
                .and_then(|f| f.content_filters.as_ref()),
        };
        crate::grip::passes_filters(
            &self.channels[channel].filters,
            &self.meta,
            item,
            content_filters,
            subscribed,
        )
    }

    /// Apply the channel's content-rewriting filters (`var-subst`) to a message.
    fn rewrite_content<'a>(&self, channel: usize, content: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        if !self.channels[channel]
            .filters
            .iter()
            .any(|f| f == "var-subst")
        {
            return std::borrow::Cow::Borrowed(content);
        }
        std::borrow::Cow::Owned(var_subst(content, &self.meta))
    }

    /// Encode queued messages into `out` (while it has room) and handle the ones that end the hold.
    pub fn pump(&mut self, out: &mut OutBuf) -> Outcome {
        while !self.finished && !self.retry && out.len() < OUT_QUEUE_MAX {
            let Some(d) = self.queue.pop_front() else {
                break;
            };
            self.send(&d.item, d.channel, out);
        }
        if self.finished {
            Outcome::Finished
        } else if self.retry {
            self.retry = false;
            self.queue.clear();
            Outcome::Retry
        } else {
            Outcome::Held
        }
    }

    fn send_published_response(&mut self, item: &Item, channel: usize, out: &mut OutBuf) {
        let Some(f) = &item.http_response else {
            return;
        };
        match f.action {
            Action::Send => {}
            Action::Hint => {
                self.retry = true;
                return;
            }
            // Closes and refreshes don't apply to response holds.
            Action::Close | Action::Refresh => return,
        }
        let mut headers = self.headers.clone();
        for (name, value) in &f.headers {
            if name.len() >= 5 && name[..5].eq_ignore_ascii_case("grip-") {
                continue;
            }
            set_header(&mut headers, name, value);
        }
        let body = match (&f.body, &f.body_patch) {
            (Some(body), _) => body.clone(),
            // body-patch edits the held response's own JSON body.
            (None, Some(patch)) => match crate::grip::patch_body(&self.body, patch) {
                Ok(patched) => patched,
                Err(e) => {
                    log::debug!("hold: body-patch not applied, message skipped: {e}");
                    return;
                }
            },
            (None, None) => Vec::new(),
        };
        let body = self.rewrite_content(channel, &body).into_owned();
        let code = f.code;
        let reason = f
            .reason
            .clone()
            .unwrap_or_else(|| crate::grip::reason_phrase(code).to_string());
        self.code = code;
        self.write_full_response(code, &reason, headers, &body, out);
        self.delivered += 1;
    }

    fn send_stream_item(&mut self, item: &Item, channel: usize, out: &mut OutBuf) {
        let Some(f) = &item.http_stream else { return };
        match f.action {
            Action::Send => {
                let content = self.rewrite_content(channel, &f.content);
                if let Some(enc) = &mut self.encoder {
                    let _ = enc.encode(&content, out.vec());
                }
                self.delivered += 1;
                if let (Some(ka), Some(at)) = (&self.keep_alive, &mut self.keep_alive_at) {
                    if ka.mode == KeepAliveMode::Idle {
                        // Idle mode: a message resets the keep-alive timer. The reset is applied in on_time.
                        *at = Instant::now().max(*at);
                    }
                }
            }
            Action::Close => self.end_stream(out),
            // A hint on a stream asks for the next link (the session ignores it without one).
            Action::Hint => self.retry = true,
            Action::Refresh => {}
        }
    }

    fn end_stream(&mut self, out: &mut OutBuf) {
        if let Some(enc) = &mut self.encoder {
            let _ = enc.finish(out.vec());
        }
        self.finished = true;
    }

    fn write_full_response(
        &mut self,
        code: u16,
        reason: &str,
        mut headers: Vec<Header>,
        body: &[u8],
        out: &mut OutBuf,
    ) {
        remove_headers(&mut headers, "Content-Length");
        remove_headers(&mut headers, "Transfer-Encoding");
        headers.push(Header::new(
            "Content-Length",
            body.len().to_string().as_bytes(),
        ));
        let head = ResponseHead {
            version: Version::Http11,
            code,
            reason: reason.to_string(),
            headers,
        };
        let (keep_alive, version) = (self.keep_alive_conn, self.client_version);
        out.push_head(|v| {
            rewrite::client_response(
                &head,
                BodyKind::Length(body.len() as u64),
                keep_alive,
                version,
                v,
            )
        });
        out.extend(body);
        self.finished = true;
    }

    /// End the hold now (the server is shutting down): a response hold answers with its timeout response, a
    /// stream ends cleanly.
    pub fn finish_now(&mut self, out: &mut OutBuf) {
        if self.finished {
            return;
        }
        match self.mode {
            HoldMode::Response => {
                let headers = self.headers.clone();
                let body = std::mem::take(&mut self.body);
                let (code, reason) = (self.code, self.reason.clone());
                self.keep_alive_conn = false;
                self.write_full_response(code, &reason, headers, &body, out);
            }
            HoldMode::Stream => {
                self.keep_alive_conn = false;
                self.end_stream(out);
            }
        }
    }

    /// The next time `on_time` has something to do.
    pub fn deadline(&self) -> Option<Instant> {
        match (self.timeout_at, self.keep_alive_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Handle timers: the response-hold timeout (answer with the original response) and stream keep-alives.
    pub fn on_time(&mut self, now: Instant, last_write: Instant, out: &mut OutBuf) -> Outcome {
        if self.finished {
            return Outcome::Finished;
        }
        if let Some(at) = self.timeout_at {
            if now >= at {
                self.timeout_at = None;
                let headers = self.headers.clone();
                let body = std::mem::take(&mut self.body);
                let (code, reason) = (self.code, self.reason.clone());
                self.write_full_response(code, &reason, headers, &body, out);
                return Outcome::Finished;
            }
        }
        if let (Some(ka), Some(at)) = (&self.keep_alive, self.keep_alive_at) {
            let period = Duration::from_secs(ka.timeout_secs);
            let due = match ka.mode {
                // Idle: only when nothing was written for a whole period.
                KeepAliveMode::Idle => at.max(last_write + period),
                KeepAliveMode::Interval => at,
            };
            if now >= due {
                if let Some(enc) = &mut self.encoder {
                    let _ = enc.encode(&ka.data, out.vec());
                }
                self.keep_alive_at = Some(now + period);
            } else {
                self.keep_alive_at = Some(due);
            }
        }
        Outcome::Held
    }
}

/// Start a streamed client response: the head (no `Content-Length`; chunked for HTTP/1.1, close-delimited
/// for HTTP/1.0) and the first body bytes. Returns the body encoder to continue with, and whether the
/// connection may carry another request afterwards (a close-delimited stream ends it).
pub fn begin_stream(
    head: &ResponseHead,
    body: &[u8],
    client_version: Version,
    keep_alive: bool,
    out: &mut OutBuf,
) -> (BodyEncoder, bool) {
    let framing = match client_version {
        Version::Http11 => BodyKind::Chunked,
        Version::Http10 => BodyKind::CloseDelimited,
    };
    let keep_alive_conn = keep_alive && framing == BodyKind::Chunked;
    // client_response drops Content-Length and Transfer-Encoding for these framings.
    out.push_head(|v| rewrite::client_response(head, framing, keep_alive_conn, client_version, v));
    let mut enc = BodyEncoder::new(framing);
    // Encoding into a fresh chunked/close-delimited encoder can't fail.
    let _ = enc.encode(body, out.vec());
    (enc, keep_alive_conn)
}

/// `var-subst`: replace `%(name)s` with the subscription meta value `name` (empty if unset); `%%` is `%`.
fn var_subst(content: &[u8], meta: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len());
    let mut i = 0;
    while i < content.len() {
        if content[i] == b'%' {
            if content.get(i + 1) == Some(&b'%') {
                out.push(b'%');
                i += 2;
                continue;
            }
            if content.get(i + 1) == Some(&b'(') {
                if let Some(close) = content[i + 2..].iter().position(|&b| b == b')') {
                    let name_end = i + 2 + close;
                    if content.get(name_end + 1) == Some(&b's') {
                        let name = &content[i + 2..name_end];
                        if let Some((_, v)) = meta.iter().find(|(k, _)| k.as_bytes() == name) {
                            out.extend_from_slice(v.as_bytes());
                        }
                        i = name_end + 2;
                        continue;
                    }
                }
            }
        }
        out.push(content[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grip::{parse_instruct, InstructLimits};
    use crate::publish::parse_publish_body;

    fn instruct(headers: &[(&str, &str)], body: &str) -> Instruct {
        let headers: Vec<Header> = headers
            .iter()
            .map(|(n, v)| Header::new(n, v.as_bytes()))
            .collect();
        parse_instruct(
            200,
            "OK",
            &headers,
            body.as_bytes(),
            &InstructLimits::default(),
        )
        .unwrap()
    }

    fn items(json: &str) -> Vec<Arc<Item>> {
        parse_publish_body(json.as_bytes())
            .unwrap()
            .into_iter()
            .map(Arc::new)
            .collect()
    }

    /// A hold for an HTTP/1.1 client with no prefix or implicit channels, keep-alive on.
    fn start(inst: Instruct, now: Instant, out: &mut OutBuf) -> Hold {
        Hold::start(inst, "", &[], Version::Http11, true, now, out).unwrap()
    }

    /// A stream hold on channel `c`, its head already written and cleared from `out`.
    fn stream_on_c(now: Instant, out: &mut OutBuf) -> Hold {
        let inst = instruct(&[("Grip-Hold", "stream"), ("Grip-Channel", "c")], "");
        let h = start(inst, now, out);
        out.clear();
        h
    }

    fn text(out: &OutBuf) -> String {
        String::from_utf8_lossy(out.data()).into_owned()
    }

    #[test]
    fn stream_hold_sends_head_then_published_chunks_then_close() {
        let now = Instant::now();
        let mut out = OutBuf::new();
        let inst = instruct(
            &[
                ("Grip-Hold", "stream"),
                ("Grip-Channel", "c"),
                ("Content-Type", "text/plain"),
            ],
            "opened\n",
        );
        let mut h = start(inst, now, &mut out);
        let head = text(&out);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Transfer-Encoding: chunked\r\n"));
        assert!(!head.contains("Content-Length"));
        assert!(head.ends_with("\r\n\r\n7\r\nopened\n\r\n"), "{head}");
        out.clear();
        for item in items(
            r#"{"items":[{"channel":"c","formats":{"http-stream":{"content":"one\n"}}},{"channel":"c","formats":{"http-stream":{"action":"close"}}}]}"#,
        ) {
            assert!(h.deliver(&item, "c", &|_| false));
        }
        assert_eq!(h.pump(&mut out), Outcome::Finished);
        assert_eq!(text(&out), "4\r\none\n\r\n0\r\n\r\n");
    }

    #[test]
    fn deliver_into_writes_at_once_unless_something_waits_ahead_or_out_is_full() {
        let now = Instant::now();
        let mut out = OutBuf::new();
        let mut h = stream_on_c(now, &mut out);
        let its = items(
            r#"{"items":[{"channel":"c","id":"1","formats":{"http-stream":{"content":"a"}}},
            {"channel":"c","formats":{"http-stream":{"content":"b"}}},
            {"channel":"c","formats":{"http-stream":{"content":"c"}}},
            {"channel":"other","formats":{"http-stream":{"content":"x"}}},
            {"channel":"c","formats":{"http-response":{"body":"x"}}}]}"#,
        );
        assert!(h.deliver_into(&its[0], "c", &|_| false, &mut out));
        assert_eq!(text(&out), "1\r\na\r\n", "written at once");
        assert_eq!(h.channels[0].last_id.as_deref(), Some("1"));
        // Not this hold's channel, or not its format: refused, nothing written.
        assert!(!h.deliver_into(&its[3], "other", &|_| false, &mut out));
        assert!(!h.deliver_into(&its[4], "c", &|_| false, &mut out));
        // Something queued ahead: the next one queues behind it, and order holds.
        assert!(h.deliver(&its[1], "c", &|_| false));
        assert!(h.deliver_into(&its[2], "c", &|_| false, &mut out));
        assert_eq!(text(&out), "1\r\na\r\n");
        assert_eq!(h.pump(&mut out), Outcome::Held);
        assert_eq!(text(&out), "1\r\na\r\n1\r\nb\r\n1\r\nc\r\n");
        // A full output buffer: queued, and written by pump once there is room.
        let mut full = OutBuf::new();
        full.vec().resize(OUT_QUEUE_MAX, b'.');
        assert!(h.deliver_into(&its[1], "c", &|_| false, &mut full));
        assert_eq!(full.len(), OUT_QUEUE_MAX);
        out.clear();
        assert_eq!(h.pump(&mut out), Outcome::Held);
        assert_eq!(text(&out), "1\r\nb\r\n");
    }

    #[test]
    fn a_stream_handed_to_a_next_link_continues_in_the_same_framing() {
        let now = Instant::now();
        let mut out = OutBuf::new();
        let inst = instruct(
            &[("Grip-Hold", "stream"), ("Grip-Channel", "a; prev-id=5")],
            "first\n",
        );
        let h = start(inst, now, &mut out);
        let parts = h.into_stream_parts().expect("a live stream has parts");
        assert_eq!(parts.grip_last, vec![("a".to_string(), "5".to_string())]);
        out.clear();
        let next = instruct(
            &[("Grip-Hold", "stream"), ("Grip-Channel", "b")],
            "second\n",
        );
        let mut h = Hold::resume(
            next,
            "",
            &[],
            Version::Http11,
            parts.keep_alive_conn,
            parts.encoder,
            now,
            &mut out,
        )
        .unwrap();
        // No second head: only the body, as one more chunk of the same response.
        assert_eq!(text(&out), "7\r\nsecond\n\r\n");
        assert_eq!(h.channels.len(), 1);
        assert_eq!(h.channels[0].name, "b");
        out.clear();
        for item in
            items(r#"{"items":[{"channel":"b","formats":{"http-stream":{"content":"x"}}}]}"#)
        {
            assert!(h.deliver(&item, "b", &|_| false));
        }
        assert_eq!(h.pump(&mut out), Outcome::Held);
        assert!(h.take_all_active(), "b had a message");
        assert!(!h.take_all_active(), "the marks are cleared");
    }

    #[test]
    fn an_item_that_skips_past_the_holds_prev_id_asks_for_a_retry() {
        let now = Instant::now();
        let mut out = OutBuf::new();
        let inst = instruct(
            &[("Grip-Hold", "response"), ("Grip-Channel", "c; prev-id=41")],
            "",
        );
        let mut h = start(inst, now, &mut out);
        let skip = &items(
            r#"{"items":[{"channel":"c","id":"43","prev-id":"42","formats":{"http-response":{"body":"x"}}}]}"#,
        )[0];
        assert!(h.deliver(skip, "c", &|_| false));
        assert_eq!(h.pump(&mut out), Outcome::Retry);
        assert!(out.is_empty());
        let next = &items(
            r#"{"items":[{"channel":"c","id":"42","prev-id":"41","formats":{"http-response":{"body":"y"}}}]}"#,
        )[0];
        assert!(h.deliver(next, "c", &|_| false));
        assert_eq!(
            h.pump(&mut out),
            Outcome::Finished,
            "the follow-on item is delivered"
        );
        assert!(text(&out).ends_with("\r\n\r\ny"));
    }

    #[test]
    fn a_hint_on_a_stream_clears_its_queue_and_asks_for_the_next_link() {
        let now = Instant::now();
        let mut out = OutBuf::new();
        let mut h = stream_on_c(now, &mut out);
        for item in items(
            r#"{"items":[{"channel":"c","formats":{"http-stream":{"action":"hint"}}},{"channel":"c","formats":{"http-stream":{"content":"later"}}}]}"#,
        ) {
            assert!(h.deliver(&item, "c", &|_| false));
        }
        assert_eq!(h.pump(&mut out), Outcome::Retry);
        assert!(out.is_empty(), "{}", text(&out));
        assert_eq!(h.pump(&mut out), Outcome::Held, "the queue was cleared");
    }

    #[test]
    fn response_hold_answers_with_the_publish_overlaid_on_the_original() {
        let now = Instant::now();
        let mut out = OutBuf::new();
        let inst = instruct(
            &[
                ("Grip-Hold", "response"),
                ("Grip-Channel", "c"),
                ("X-Orig", "1"),
                ("X-Pub", "old"),
            ],
            "timeout body\n",
        );
        let mut h = start(inst, now, &mut out);
        assert!(
            out.is_empty(),
            "nothing is sent until a publish or the timeout"
        );
        let item = &items(
            r#"{"items":[{"channel":"c","formats":{"http-response":{"code":203,"headers":{"X-Pub":"new"},"body":"hi\n"}}}]}"#,
        )[0];
        assert!(h.deliver(item, "c", &|_| false));
        assert_eq!(h.pump(&mut out), Outcome::Finished);
        let t = text(&out);
        assert!(
            t.starts_with("HTTP/1.1 203 Non-Authoritative Information\r\n"),
            "{t}"
        );
        assert!(
            t.contains("X-Orig: 1\r\n") && t.contains("X-Pub: new\r\n") && !t.contains("old"),
            "{t}"
        );
        assert!(t.ends_with("Content-Length: 3\r\n\r\nhi\n"), "{t}");
    }

    #[test]
    fn body_patch_edits_the_held_json_body() {
        let now = Instant::now();
        let mut out = OutBuf::new();
        let inst = instruct(
            &[("Grip-Hold", "response"), ("Grip-Channel", "c")],
            "{\"n\":1,\"items\":[]}\n",
        );
        let mut h = start(inst, now, &mut out);
        let patch = r#"{"items":[{"channel":"c","formats":{"http-response":{"body-patch":[
            {"op":"replace","path":"/n","value":2},{"op":"add","path":"/items/-","value":"x"}]}}}]}"#;
        let item = &items(patch)[0];
        assert!(h.deliver(item, "c", &|_| false));
        assert_eq!(h.pump(&mut out), Outcome::Finished);
        let t = text(&out);
        assert!(t.ends_with("\r\n\r\n{\"items\":[\"x\"],\"n\":2}\n"), "{t}");
    }

    #[test]
    fn response_hold_times_out_with_the_original_response() {
        let now = Instant::now();
        let mut out = OutBuf::new();
        let inst = instruct(
            &[
                ("Grip-Hold", "response"),
                ("Grip-Channel", "c"),
                ("Grip-Timeout", "7"),
            ],
            "nothing\n",
        );
        let mut h = Hold::start(inst, "", &[], Version::Http11, false, now, &mut out).unwrap();
        assert_eq!(h.deadline(), Some(now + Duration::from_secs(7)));
        assert_eq!(
            h.on_time(now + Duration::from_secs(6), now, &mut out),
            Outcome::Held
        );
        assert_eq!(
            h.on_time(now + Duration::from_secs(7), now, &mut out),
            Outcome::Finished
        );
        let t = text(&out);
        assert!(
            t.starts_with("HTTP/1.1 200 OK\r\n") && t.contains("Connection: close\r\n"),
            "{t}"
        );
        assert!(
            t.contains("Content-Length: 8\r\n") && t.ends_with("\r\n\r\nnothing\n"),
            "{t}"
        );
    }

    #[test]
    fn keep_alive_is_sent_when_idle() {
        let now = Instant::now();
        let mut out = OutBuf::new();
        let inst = instruct(
            &[
                ("Grip-Hold", "stream"),
                ("Grip-Channel", "c"),
                ("Grip-Keep-Alive", ":\\n\\n; format=cstring; timeout=3"),
            ],
            "",
        );
        let mut h = start(inst, now, &mut out);
        out.clear();
        assert_eq!(h.deadline(), Some(now + Duration::from_secs(3)));
        // Something was written at +2 s: idle mode waits a full period after it.
        h.on_time(
            now + Duration::from_secs(3),
            now + Duration::from_secs(2),
            &mut out,
        );
        assert!(out.is_empty());
        h.on_time(
            now + Duration::from_secs(5),
            now + Duration::from_secs(2),
            &mut out,
        );
        assert_eq!(text(&out), "3\r\n:\n\n\r\n");
    }

    #[test]
    fn wrong_format_and_filters_are_not_delivered() {
        let now = Instant::now();
        let mut out = OutBuf::new();
        let inst = instruct(
            &[
                ("Grip-Hold", "stream"),
                ("Grip-Channel", "c; filter=skip-self"),
                ("Grip-Set-Meta", "user=alice"),
            ],
            "",
        );
        let mut h = Hold::start(inst, "p-", &[], Version::Http11, true, now, &mut out).unwrap();
        let list = items(
            r#"{"items":[
            {"channel":"p-c","formats":{"http-response":{"body":"x"}}},
            {"channel":"p-c","meta":{"sender":"alice"},"formats":{"http-stream":{"content":"mine"}}},
            {"channel":"p-c","meta":{"sender":"bob"},"formats":{"http-stream":{"content":"bob's"}}},
            {"channel":"c","formats":{"http-stream":{"content":"unprefixed"}}}]}"#,
        );
        let got: Vec<bool> = list
            .iter()
            .map(|i| h.deliver(i, &i.channel, &|_| false))
            .collect();
        assert_eq!(got, vec![false, false, true, false]);
    }

    #[test]
    fn a_full_queue_drops_the_oldest() {
        let now = Instant::now();
        let mut out = OutBuf::new();
        let mut h = stream_on_c(now, &mut out);
        let item =
            &items(r#"{"items":[{"channel":"c","formats":{"http-stream":{"content":"m"}}}]}"#)[0];
        for _ in 0..HELD_QUEUE_MAX + 5 {
            h.deliver(item, "c", &|_| false);
        }
        assert_eq!(h.dropped, 5);
    }

    #[test]
    fn var_subst_table() {
        let meta = vec![("name".to_string(), "ann".to_string())];
        for (input, want) in [
            ("hi %(name)s!", "hi ann!"),
            ("100%%", "100%"),
            ("%(missing)s.", "."),
            ("%(unterminated", "%(unterminated"),
            ("%(name)x", "%(name)x"),
        ] {
            assert_eq!(
                String::from_utf8(var_subst(input.as_bytes(), &meta)).unwrap(),
                want,
                "{input}"
            );
        }
    }
}
