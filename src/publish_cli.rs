//! `holdfast publish CHANNEL [CONTENT] [OPTIONS]`: publish through a control API, as Pushpin's
//! `pushpin-publish` does (spec section 5.5).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Map, Value};

use crate::http1::{parse_response_head, response_body_kind, BodyDecoder, ChunkLimits, HeadLimits};

pub const USAGE: &str = "\
Usage: holdfast publish CHANNEL [CONTENT] [OPTIONS]

Publish CONTENT (or @FILE, or standard input when CONTENT is absent or -) to CHANNEL through the
control API, as http-response, http-stream and ws-message formats at once.

Options:
  --id ID              item id
  --prev-id ID         previous item id
  --sender NAME        publish meta 'sender' (for skip-self filters)
  --code N             http-response status code (default 200)
  -H, --header 'K: V'  http-response header (repeatable)
  -M, --meta K=V       publish meta (repeatable)
  --hint               send hints instead of content
  --close              close streams and WebSockets (http-stream / ws-message action close)
  --patch              CONTENT is a JSON patch for the held response (http-response body-patch only)
  --no-seq             bypass the receivers' ordering buffer
  --no-eol             do not append a newline to HTTP content
  --spec URL           control API base (default $GRIP_URL, else http://localhost:5561)
  -u, --user USER:PASS Basic authentication
  -B, --bearer TOKEN   Bearer authentication
";

/// Largest response read back from the control API.
const RESPONSE_MAX: usize = 1024 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PublishOptions {
    pub channel: String,
    pub content: Option<String>,
    pub id: Option<String>,
    pub prev_id: Option<String>,
    pub sender: Option<String>,
    pub code: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub meta: Vec<(String, String)>,
    pub hint: bool,
    pub close: bool,
    pub patch: bool,
    pub no_seq: bool,
    pub no_eol: bool,
    pub spec: Option<String>,
    pub user: Option<String>,
    pub bearer: Option<String>,
}

pub fn parse_args(args: &[String]) -> Result<PublishOptions, String> {
    let mut o = PublishOptions::default();
    let mut positional = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg, None),
        };
        let mut value = || -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name {
            "--id" => o.id = Some(value()?),
            "--prev-id" => o.prev_id = Some(value()?),
            "--sender" => o.sender = Some(value()?),
            "--code" => {
                let v = value()?;
                let code: u16 = v
                    .parse()
                    .map_err(|_| format!("--code: not a number: {v}"))?;
                if code > 999 {
                    return Err("--code must be between 0 and 999".into());
                }
                o.code = Some(code);
            }
            "-H" | "--header" => {
                let v = value()?;
                let (k, val) = v
                    .split_once(':')
                    .ok_or_else(|| format!("--header: expected 'Name: value', got {v}"))?;
                o.headers
                    .push((k.trim().to_string(), val.trim().to_string()));
            }
            "-M" | "--meta" => {
                let v = value()?;
                let (k, val) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--meta: expected KEY=VALUE, got {v}"))?;
                o.meta.push((k.to_string(), val.to_string()));
            }
            "--hint" => o.hint = true,
            "--close" => o.close = true,
            "--patch" => o.patch = true,
            "--no-seq" => o.no_seq = true,
            "--no-eol" => o.no_eol = true,
            "--spec" => o.spec = Some(value()?),
            "-u" | "--user" => o.user = Some(value()?),
            "-B" | "--bearer" => o.bearer = Some(value()?),
            "-h" | "--help" => return Err(USAGE.to_string()),
            _ if arg.starts_with('-') && arg != "-" => {
                return Err(format!("unknown option: {arg}\n\n{USAGE}"))
            }
            _ => positional.push(arg.to_string()),
        }
        i += 1;
    }
    let mut positional = positional.into_iter();
    o.channel = positional
        .next()
        .ok_or_else(|| format!("missing CHANNEL\n\n{USAGE}"))?;
    o.content = positional.next();
    if let Some(extra) = positional.next() {
        return Err(format!("unexpected argument: {extra}"));
    }
    if o.hint && o.close {
        return Err("--hint and --close can't be combined".into());
    }
    Ok(o)
}

/// The publish request body for these options and content.
pub fn build_body(o: &PublishOptions, content: &[u8]) -> Result<Value, String> {
    let text = String::from_utf8(content.to_vec()).ok();
    let with_eol = |c: &[u8]| {
        let mut v = c.to_vec();
        if !o.no_eol {
            v.push(b'\n');
        }
        v
    };
    let put_bytes =
        |obj: &mut Map<String, Value>, key: &str, bytes: &[u8]| match std::str::from_utf8(bytes) {
            Ok(s) => {
                obj.insert(key.to_string(), Value::String(s.to_string()));
            }
            Err(_) => {
                let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
                obj.insert(format!("{key}-bin"), Value::String(b64));
            }
        };
    let mut formats = Map::new();
    if o.patch {
        let patch: Value = serde_json::from_slice(content)
            .map_err(|e| format!("--patch: content is not JSON: {e}"))?;
        let mut r = Map::new();
        r.insert("body-patch".into(), patch);
        if let Some(code) = o.code {
            r.insert("code".into(), json!(code));
        }
        formats.insert("http-response".into(), Value::Object(r));
    } else if o.hint {
        for f in ["http-response", "http-stream", "ws-message"] {
            formats.insert(f.into(), json!({"action": "hint"}));
        }
    } else if o.close {
        formats.insert("http-stream".into(), json!({"action": "close"}));
        formats.insert("ws-message".into(), json!({"action": "close"}));
    } else {
        let mut r = Map::new();
        r.insert("code".into(), json!(o.code.unwrap_or(200)));
        if !o.headers.is_empty() {
            let headers: Vec<Value> = o.headers.iter().map(|(k, v)| json!([k, v])).collect();
            r.insert("headers".into(), Value::Array(headers));
        }
        put_bytes(&mut r, "body", &with_eol(content));
        formats.insert("http-response".into(), Value::Object(r));
        let mut s = Map::new();
        put_bytes(&mut s, "content", &with_eol(content));
        formats.insert("http-stream".into(), Value::Object(s));
        let mut w = Map::new();
        match text {
            Some(t) => w.insert("content".into(), Value::String(t)),
            None => w.insert(
                "content-bin".into(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(content)),
            ),
        };
        formats.insert("ws-message".into(), Value::Object(w));
    }
    let mut item = Map::new();
    item.insert("channel".into(), Value::String(o.channel.clone()));
    if let Some(id) = &o.id {
        item.insert("id".into(), Value::String(id.clone()));
    }
    if let Some(prev) = &o.prev_id {
        item.insert("prev-id".into(), Value::String(prev.clone()));
    }
    let mut meta = Map::new();
    if let Some(sender) = &o.sender {
        meta.insert("sender".into(), Value::String(sender.clone()));
    }
    for (k, v) in &o.meta {
        meta.insert(k.clone(), Value::String(v.clone()));
    }
    if !meta.is_empty() {
        item.insert("meta".into(), Value::Object(meta));
    }
    if o.no_seq {
        item.insert("no-seq".into(), Value::Bool(true));
    }
    item.insert("formats".into(), Value::Object(formats));
    Ok(json!({ "items": [Value::Object(item)] }))
}

/// Run the subcommand; returns the process exit code.
pub fn run(args: &[String]) -> i32 {
    let o = match parse_args(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    match publish(&o) {
        Ok(message) => {
            println!("{message}");
            0
        }
        Err(e) => {
            eprintln!("holdfast publish: {e}");
            1
        }
    }
}

fn read_content(o: &PublishOptions) -> Result<Vec<u8>, String> {
    match o.content.as_deref() {
        Some(c) if c.starts_with('@') => {
            std::fs::read(&c[1..]).map_err(|e| format!("{}: {e}", &c[1..]))
        }
        Some("-") | None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .take(16 * 1024 * 1024)
                .read_to_end(&mut buf)
                .map_err(|e| format!("reading standard input: {e}"))?;
            Ok(buf)
        }
        Some(c) => Ok(c.as_bytes().to_vec()),
    }
}

fn publish(o: &PublishOptions) -> Result<String, String> {
    let spec = o
        .spec
        .clone()
        .or_else(|| std::env::var("GRIP_URL").ok())
        .unwrap_or_else(|| "http://localhost:5561".into());
    let Some(rest) = spec.strip_prefix("http://") else {
        if spec.starts_with("https://") {
            return Err("https control URLs need TLS, which holdfast does not have yet".into());
        }
        return Err(format!(
            "{spec}: only http:// control URLs are supported (ZeroMQ publishing is not built yet)"
        ));
    };
    // File content is sent as is; inline and stdin content get the end-of-line unless --no-eol.
    let mut content = read_content(o)?;
    let from_file = o.content.as_deref().is_some_and(|c| c.starts_with('@'));
    if o.content.is_none() || o.content.as_deref() == Some("-") {
        while content.last() == Some(&b'\n') {
            content.pop();
        }
    }
    let opts_for_body = PublishOptions {
        no_eol: o.no_eol || from_file,
        ..o.clone()
    };
    let body =
        serde_json::to_vec(&build_body(&opts_for_body, &content)?).map_err(|e| e.to_string())?;
    let (authority, base_path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let addr = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let sock_addr = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&sock_addr, IO_TIMEOUT).map_err(|e| format!("{addr}: {e}"))?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).ok();
    stream.set_write_timeout(Some(IO_TIMEOUT)).ok();
    let mut req = format!(
        "POST {base_path}/publish/ HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(user) = &o.user {
        let b64 = base64::engine::general_purpose::STANDARD.encode(user.as_bytes());
        req.push_str(&format!("Authorization: Basic {b64}\r\n"));
    } else if let Some(token) = &o.bearer {
        req.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .map_err(|e| e.to_string())?;
    stream.write_all(&body).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream
        .take(RESPONSE_MAX as u64)
        .read_to_end(&mut raw)
        .map_err(|e| format!("reading the answer: {e}"))?;
    let (head, used) = parse_response_head(&raw, &HeadLimits::default())
        .map_err(|e| format!("bad answer from {addr}: {e}"))?
        .ok_or_else(|| format!("{addr} closed the connection without an answer"))?;
    let kind = response_body_kind(&head, "POST").map_err(|e| e.to_string())?;
    let mut dec = BodyDecoder::new(kind, ChunkLimits::default());
    let mut text = Vec::new();
    let mut input = &raw[used..];
    while let Ok(step) = dec.decode(input) {
        text.extend_from_slice(&input[step.data.clone()]);
        input = &input[step.consumed..];
        if step.done || step.consumed == 0 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&text).trim_end().to_string();
    if head.code == 200 {
        Ok(text)
    } else {
        Err(format!("{} {}: {text}", head.code, head.reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::parse_publish_body;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_parse_like_pushpin_publish() {
        let o = parse_args(&args(&[
            "chan",
            "hi",
            "--id",
            "2",
            "--prev-id=1",
            "-H",
            "X-A: b",
            "-M",
            "k=v",
            "--sender",
            "me",
            "--code",
            "201",
        ]))
        .unwrap();
        assert_eq!(o.channel, "chan");
        assert_eq!(o.content.as_deref(), Some("hi"));
        assert_eq!(o.id.as_deref(), Some("2"));
        assert_eq!(o.prev_id.as_deref(), Some("1"));
        assert_eq!(o.headers, vec![("X-A".to_string(), "b".to_string())]);
        assert_eq!(o.meta, vec![("k".to_string(), "v".to_string())]);
        assert_eq!(o.code, Some(201));
        assert!(parse_args(&args(&[]))
            .unwrap_err()
            .contains("missing CHANNEL"));
        assert!(parse_args(&args(&["c", "--bogus"]))
            .unwrap_err()
            .contains("unknown option"));
        assert!(parse_args(&args(&["c", "--hint", "--close"])).is_err());
    }

    #[test]
    fn body_carries_all_three_formats_and_parses_as_a_publish() {
        let o = parse_args(&args(&[
            "chan", "hello", "--id", "7", "--sender", "me", "-H", "X-A: b",
        ]))
        .unwrap();
        let body = build_body(&o, b"hello").unwrap();
        let items = parse_publish_body(&serde_json::to_vec(&body).unwrap()).unwrap();
        let item = &items[0];
        assert_eq!(item.channel, "chan");
        assert_eq!(item.id.as_deref(), Some("7"));
        assert_eq!(item.meta, vec![("sender".to_string(), "me".to_string())]);
        let r = item.http_response.as_ref().unwrap();
        assert_eq!(r.body.as_deref(), Some(&b"hello\n"[..]));
        assert_eq!(r.headers, vec![("X-A".to_string(), b"b".to_vec())]);
        assert_eq!(item.http_stream.as_ref().unwrap().content, b"hello\n");
        assert_eq!(item.ws_message.as_ref().unwrap().content, b"hello");
    }

    #[test]
    fn close_and_hint_set_actions() {
        use crate::publish::Action;
        let o = parse_args(&args(&["chan", "--close"])).unwrap();
        let items = parse_publish_body(&serde_json::to_vec(&build_body(&o, b"").unwrap()).unwrap())
            .unwrap();
        assert_eq!(items[0].http_stream.as_ref().unwrap().action, Action::Close);
        assert!(items[0].http_response.is_none());
        let o = parse_args(&args(&["chan", "--hint"])).unwrap();
        let items = parse_publish_body(&serde_json::to_vec(&build_body(&o, b"").unwrap()).unwrap())
            .unwrap();
        assert_eq!(
            items[0].http_response.as_ref().unwrap().action,
            Action::Hint
        );
    }

    #[test]
    fn binary_content_goes_base64() {
        let o = parse_args(&args(&["chan", "--no-eol"])).unwrap();
        let body = build_body(&o, &[0xff, 0x00]).unwrap();
        let items = parse_publish_body(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(
            items[0].http_stream.as_ref().unwrap().content,
            vec![0xff, 0x00]
        );
    }
}
