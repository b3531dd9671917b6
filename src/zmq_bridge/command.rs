//! The command socket's ZRPC protocol (spec 1.3), sans-IO: a request frame in, a decoded call or a ready
//! failure out; replies encoded as plain tnetstrings. Nothing here trusts the frame: any malformed request
//! becomes a `bad-request` answer (with the request's `id` when that much could be read), never a panic.

use crate::publish::{parse_items, tnetstring, Item, Value};

/// A command the bridge carries out.
#[derive(Debug)]
pub enum Call {
    /// Which of these connection ids are still connected.
    ConnCheck {
        ids: Vec<String>,
    },
    GetZmqUris,
    /// Forget every channel's last id (as `POST /recover`).
    Recover,
    /// Make WebSocket-over-HTTP connections ask their backend now: one by id, or every one on a channel.
    Refresh(RefreshOf),
    Publish(Vec<Item>),
}

#[derive(Debug, PartialEq, Eq)]
pub enum RefreshOf {
    Connection(String),
    Channel(String),
}

/// A request that will be answered with `success: false`.
#[derive(Debug, PartialEq)]
pub struct Failure {
    pub condition: &'static str,
    pub value: Option<Value>,
}

impl Failure {
    fn bad_request(why: &str) -> Failure {
        Failure {
            condition: "bad-request",
            value: Some(Value::Bytes(why.as_bytes().to_vec())),
        }
    }
}

/// A decoded request: the `id` to echo, and the call or why it can't be made.
#[derive(Debug)]
pub struct Request {
    pub id: Option<Value>,
    pub method: String,
    pub call: Result<Call, Failure>,
}

/// Decode one request frame.
pub fn parse_request(frame: &[u8]) -> Request {
    let mut req = Request {
        id: None,
        method: String::new(),
        call: Err(Failure::bad_request("request is not a tnetstring")),
    };
    let value = match tnetstring::decode_all(frame) {
        Ok(v) => v,
        Err(e) => {
            req.call = Err(Failure::bad_request(&format!(
                "request is not a tnetstring: {e}"
            )));
            return req;
        }
    };
    if !value.is_map() {
        req.call = Err(Failure::bad_request("request is not a dict"));
        return req;
    }
    req.id = value.get("id").cloned();
    let Some(method) = value.get("method").and_then(Value::as_str) else {
        req.call = Err(Failure::bad_request("request has no method"));
        return req;
    };
    req.method = method.to_string();
    let args = match value.get("args") {
        None | Some(Value::Null) => None,
        Some(a) if a.is_map() => Some(a),
        Some(_) => {
            req.call = Err(Failure::bad_request("args is not a dict"));
            return req;
        }
    };
    req.call = decode_call(method, args);
    req
}

fn decode_call(method: &str, args: Option<&Value>) -> Result<Call, Failure> {
    let arg = |name: &str| args.and_then(|a| a.get(name));
    match method {
        "conncheck" => {
            let Some(list) = arg("ids").and_then(Value::as_list) else {
                return Err(Failure::bad_request("args.ids is not a list"));
            };
            let ids = list
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| Failure::bad_request("args.ids holds a non-string"))?;
            Ok(Call::ConnCheck { ids })
        }
        "get-zmq-uris" => Ok(Call::GetZmqUris),
        "recover" => Ok(Call::Recover),
        "refresh" => {
            if let Some(cid) = arg("cid") {
                let cid = cid
                    .as_str()
                    .ok_or_else(|| Failure::bad_request("args.cid is not a string"))?;
                return Ok(Call::Refresh(RefreshOf::Connection(cid.to_string())));
            }
            if let Some(channel) = arg("channel") {
                let channel = channel
                    .as_str()
                    .ok_or_else(|| Failure::bad_request("args.channel is not a string"))?;
                return Ok(Call::Refresh(RefreshOf::Channel(channel.to_string())));
            }
            Err(Failure::bad_request("args has neither cid nor channel"))
        }
        "publish" => {
            let empty = Value::Map(Vec::new());
            let items = parse_items(args.unwrap_or(&empty), false).map_err(|e| Failure {
                condition: "bad-request",
                value: Some(Value::Bytes(e.into_bytes())),
            })?;
            Ok(Call::Publish(items))
        }
        _ => Err(Failure {
            condition: "method-not-found",
            value: None,
        }),
    }
}

/// `{id, success: true, value}`.
pub fn success(id: Option<&Value>, value: Value) -> Vec<u8> {
    let mut fields = Vec::with_capacity(3);
    if let Some(id) = id {
        fields.push((b"id".to_vec(), id.clone()));
    }
    fields.push((b"success".to_vec(), Value::Bool(true)));
    fields.push((b"value".to_vec(), value));
    encode(Value::Map(fields))
}

/// `{id, success: false, condition, value?}`.
pub fn failure(id: Option<&Value>, f: &Failure) -> Vec<u8> {
    let mut fields = Vec::with_capacity(4);
    if let Some(id) = id {
        fields.push((b"id".to_vec(), id.clone()));
    }
    fields.push((b"success".to_vec(), Value::Bool(false)));
    fields.push((
        b"condition".to_vec(),
        Value::Bytes(f.condition.as_bytes().to_vec()),
    ));
    if let Some(v) = &f.value {
        fields.push((b"value".to_vec(), v.clone()));
    }
    encode(Value::Map(fields))
}

fn encode(v: Value) -> Vec<u8> {
    let mut out = Vec::new();
    tnetstring::encode(&v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(bytes: &[u8]) -> Value {
        tnetstring::decode_all(bytes).unwrap()
    }

    fn req(v: Value) -> Request {
        let mut b = Vec::new();
        tnetstring::encode(&v, &mut b);
        parse_request(&b)
    }

    fn map(pairs: &[(&str, Value)]) -> Value {
        Value::Map(
            pairs
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.clone()))
                .collect(),
        )
    }

    fn s(x: &str) -> Value {
        Value::Bytes(x.as_bytes().to_vec())
    }

    #[test]
    fn methods_decode_with_their_arguments() {
        let r = req(map(&[
            ("id", s("7")),
            ("method", s("conncheck")),
            ("args", map(&[("ids", Value::List(vec![s("a"), s("b")]))])),
        ]));
        assert_eq!(r.id, Some(s("7")));
        assert!(matches!(r.call, Ok(Call::ConnCheck { ids }) if ids == ["a", "b"]));
        let r = req(map(&[("method", s("get-zmq-uris"))]));
        assert!(r.id.is_none());
        assert!(matches!(r.call, Ok(Call::GetZmqUris)));
        assert!(matches!(
            req(map(&[("method", s("recover")), ("from", s("me"))])).call,
            Ok(Call::Recover)
        ));
        let r = req(map(&[
            ("method", s("refresh")),
            ("args", map(&[("cid", s("c-1"))])),
        ]));
        assert!(matches!(r.call, Ok(Call::Refresh(RefreshOf::Connection(c))) if c == "c-1"));
        let r = req(map(&[
            ("method", s("refresh")),
            ("args", map(&[("channel", s("news"))])),
        ]));
        assert!(matches!(r.call, Ok(Call::Refresh(RefreshOf::Channel(c))) if c == "news"));
        let item = map(&[
            ("channel", s("c")),
            (
                "formats",
                map(&[("http-stream", map(&[("content", s("x"))]))]),
            ),
        ]);
        let r = req(map(&[
            ("method", s("publish")),
            ("args", map(&[("items", Value::List(vec![item]))])),
        ]));
        assert!(matches!(r.call, Ok(Call::Publish(items)) if items[0].channel == "c"));
    }

    #[test]
    fn bad_requests_say_why_and_keep_the_id_when_readable() {
        let r = req(map(&[("id", s("9")), ("method", s("refresh"))]));
        assert_eq!(r.id, Some(s("9")));
        assert_eq!(r.call.unwrap_err().condition, "bad-request");
        let r = req(map(&[
            ("id", s("9")),
            ("method", s("conncheck")),
            ("args", map(&[("ids", s("notalist"))])),
        ]));
        assert_eq!(r.call.unwrap_err().condition, "bad-request");
        let r = req(map(&[("method", s("publish")), ("args", map(&[]))]));
        let f = r.call.unwrap_err();
        assert_eq!(f.condition, "bad-request");
        assert_eq!(
            f.value,
            Some(s("Invalid format: object does not contain 'items'"))
        );
        let r = req(map(&[("method", s("publish")), ("args", s("x"))]));
        assert_eq!(r.call.unwrap_err().condition, "bad-request");
        let r = req(map(&[("id", s("3")), ("method", s("no-such"))]));
        let f = r.call.unwrap_err();
        assert_eq!(f.condition, "method-not-found");
        assert_eq!(f.value, None);
    }

    #[test]
    fn a_declared_length_past_the_payload_is_a_bad_request_not_a_crash() {
        // The frame that takes Pushpin 1.36's handler down.
        for frame in [
            &b"99999:{6:method,7:recover,}"[..],
            b"40:6:method,7:recover,}",
            b"",
            b"}",
            b"3:abc]",
            b"0:}trailing",
        ] {
            let r = parse_request(frame);
            assert_eq!(r.call.unwrap_err().condition, "bad-request", "{frame:?}");
        }
    }

    #[test]
    fn replies_are_plain_tnetstrings_echoing_the_id() {
        let ok = reply(&success(Some(&s("r-1")), Value::Null));
        assert_eq!(ok.get("id"), Some(&s("r-1")));
        assert_eq!(ok.get("success"), Some(&Value::Bool(true)));
        assert_eq!(ok.get("value"), Some(&Value::Null));
        let f = Failure {
            condition: "method-not-found",
            value: None,
        };
        let err = reply(&failure(Some(&s("r-2")), &f));
        assert_eq!(err.get("success"), Some(&Value::Bool(false)));
        assert_eq!(err.get("condition"), Some(&s("method-not-found")));
        assert_eq!(err.get("value"), None);
        let anon = reply(&failure(None, &Failure::bad_request("x")));
        assert_eq!(anon.get("id"), None);
        assert_eq!(anon.get("value"), Some(&s("x")));
    }
}
