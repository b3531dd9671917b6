//! A small dynamic value that both publish encodings (JSON and tnetstring) decode into, so one item
//! parser serves the HTTP control API, the command socket and the PULL/SUB inputs.
//!
//! Strings are kept as bytes: tnetstring has no text type, and Pushpin treats JSON strings and
//! tnetstring byte strings alike. Maps keep their entries in input order; on duplicate keys the last
//! entry wins (`get` searches from the end), which is what both serde_json and Pushpin's hash do.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A decoded JSON or tnetstring value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Map(Vec<(Vec<u8>, Value)>),
}

impl Value {
    /// Converts a serde_json value. JSON strings become their UTF-8 bytes; numbers that fit an `i64`
    /// become `Int`, every other number becomes `Float`.
    ///
    /// Recursion follows the input's nesting, which serde_json's parser caps at 128 levels.
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => Value::Bytes(s.as_bytes().to_vec()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(m) => Value::Map(
                m.iter()
                    .map(|(k, v)| (k.as_bytes().to_vec(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Parses JSON text straight into a `Value`, with the result `from_json` would give for the same
    /// text (maps sorted by key, the last of duplicate keys kept) but without building a
    /// `serde_json::Value` first: the ZeroMQ inputs parse every published item this way, and the
    /// intermediate tree (a B-tree per object, every string allocated twice) was a fifth of their cost.
    pub fn parse_json(text: &[u8]) -> Result<Value, serde_json::Error> {
        serde_json::from_slice::<FromJson>(text).map(|v| v.0)
    }

    /// Converts to serde_json, the way Pushpin turns tnetstring data "JSON style": byte strings are
    /// read as UTF-8 (invalid sequences replaced), and a non-finite float, which JSON cannot carry,
    /// becomes `null`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Bytes(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => serde_json::Value::Object(
                m.iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// The value under `key` if this is a map (last duplicate wins).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m
                .iter()
                .rev()
                .find(|(k, _)| k.as_slice() == key.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn is_map(&self) -> bool {
        matches!(self, Value::Map(_))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as text, if it is one and is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// An integer, also accepting a float with no fractional part (JSON publishers such as
    /// JavaScript ones may send `200.0`) when it fits an `i64`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            // The bounds are exact powers of two, so the comparison itself is exact.
            Value::Float(f) if f.is_finite() && f.fract() == 0.0 => {
                if *f >= -9_223_372_036_854_775_808.0 && *f < 9_223_372_036_854_775_808.0 {
                    Some(*f as i64)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Vec<u8>, Value)]> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
}

/// `Value`'s JSON deserialization (serde_json's own nesting limit of 128 levels applies).
struct FromJson(Value);

impl<'de> Deserialize<'de> for FromJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor).map(FromJson)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Bytes(s.as_bytes().to_vec()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::Bytes(s.into_bytes()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(FromJson(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::List(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out: Vec<(Vec<u8>, Value)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let FromJson(v) = map.next_value()?;
            out.push((key.into_bytes(), v));
        }
        // As serde_json's map would hold them: sorted by key, the last of duplicates kept (reversed
        // first, so the stable sort puts the last occurrence of a key at the head of its run).
        if out.windows(2).any(|w| w[0].0 >= w[1].0) {
            out.reverse();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out.dedup_by(|later, first| later.0 == first.0);
        }
        Ok(Value::Map(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::Map(
            entries
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn from_json_maps_every_kind() {
        let j: serde_json::Value = serde_json::from_str(
            r#"{"n":null,"t":true,"i":-5,"big":18446744073709551615,"f":1.5,"whole":2.0,"s":"h\u00e9","l":[1,"a"],"m":{"k":"v"}}"#,
        )
        .unwrap();
        let v = Value::from_json(&j);
        let cases: &[(&str, Value)] = &[
            ("n", Value::Null),
            ("t", Value::Bool(true)),
            ("i", Value::Int(-5)),
            ("big", Value::Float(18446744073709551615.0)),
            ("f", Value::Float(1.5)),
            ("whole", Value::Float(2.0)),
            ("s", Value::Bytes("hé".as_bytes().to_vec())),
            (
                "l",
                Value::List(vec![Value::Int(1), Value::Bytes(b"a".to_vec())]),
            ),
            ("m", map(&[("k", Value::Bytes(b"v".to_vec()))])),
        ];
        for (key, want) in cases {
            assert_eq!(v.get(key), Some(want), "key {key}");
        }
        assert_eq!(v.get("absent"), None);
    }

    #[test]
    fn parse_json_gives_what_from_json_gives() {
        let texts = [
            r#"{"n":null,"t":true,"i":-5,"big":18446744073709551615,"f":1.5,"whole":2.0,"s":"h\u00e9","l":[1,"a"],"m":{"k":"v"}}"#,
            // Unsorted keys and duplicates, at the top and nested: sorted, the last duplicate kept.
            r#"{"z":1,"a":2,"z":3,"m":{"b":[{"y":1,"x":2,"y":3}],"a":"q\"\n"},"a":[]}"#,
            r#"[9223372036854775807,9223372036854775808,-9223372036854775808,1.5e300,-0.0,"",{}]"#,
            r#""just a string""#,
            "17",
        ];
        for text in texts {
            let j: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                Value::parse_json(text.as_bytes()).unwrap(),
                Value::from_json(&j),
                "{text}"
            );
        }
        let v = Value::parse_json(br#"{"k":1,"k":2,"a":0}"#).unwrap();
        assert_eq!(
            v.as_map()
                .map(|m| m.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()),
            Some(vec![b"a".to_vec(), b"k".to_vec()])
        );
        assert_eq!(v.get("k"), Some(&Value::Int(2)));
    }

    #[test]
    fn parse_json_refuses_what_serde_json_refuses() {
        let bad: [&[u8]; 6] = [
            b"",
            b"{",
            br#"{"a":}"#,
            b"[1,]",
            br#"{"a":1} x"#,
            b"\"\xff\"",
        ];
        for text in bad {
            assert!(Value::parse_json(text).is_err(), "{text:?}");
        }
        // serde_json's nesting limit (128) holds for the direct parse too.
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(Value::parse_json(deep.as_bytes()).is_err());
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(Value::parse_json(ok.as_bytes()).is_ok());
    }

    #[test]
    fn get_prefers_the_last_duplicate_and_needs_a_map() {
        let v = Value::Map(vec![
            (b"k".to_vec(), Value::Int(1)),
            (b"k".to_vec(), Value::Int(2)),
        ]);
        assert_eq!(v.get("k"), Some(&Value::Int(2)));
        assert_eq!(Value::List(vec![]).get("k"), None);
        assert_eq!(Value::Bytes(b"k".to_vec()).get("k"), None);
    }

    #[test]
    fn accessors() {
        assert_eq!(Value::Bytes(b"ok".to_vec()).as_str(), Some("ok"));
        assert_eq!(Value::Bytes(vec![0xff]).as_str(), None);
        assert_eq!(Value::Bytes(vec![0xff]).as_bytes(), Some(&[0xffu8][..]));
        assert_eq!(Value::Int(1).as_str(), None);
        assert_eq!(Value::Bool(false).as_bool(), Some(false));
        assert_eq!(Value::Int(0).as_bool(), None);
        assert!(Value::Map(vec![]).is_map());
        assert!(!Value::List(vec![]).is_map());
        assert!(Value::Null.is_null());
        assert_eq!(
            Value::List(vec![Value::Null]).as_list().map(|l| l.len()),
            Some(1)
        );
        assert_eq!(Value::Map(vec![]).as_map().map(|m| m.len()), Some(0));
    }

    #[test]
    fn as_int_table() {
        let cases: &[(Value, Option<i64>)] = &[
            (Value::Int(7), Some(7)),
            (Value::Int(i64::MIN), Some(i64::MIN)),
            (Value::Float(200.0), Some(200)),
            (Value::Float(-3.0), Some(-3)),
            (Value::Float(2.5), None),
            (Value::Float(f64::NAN), None),
            (Value::Float(f64::INFINITY), None),
            (Value::Float(9.3e18), None),
            (Value::Float(-9_223_372_036_854_775_808.0), Some(i64::MIN)),
            (Value::Bytes(b"1".to_vec()), None),
            (Value::Bool(true), None),
            (Value::Null, None),
        ];
        for (v, want) in cases {
            assert_eq!(v.as_int(), *want, "{v:?}");
        }
    }

    #[test]
    fn to_json_table() {
        let cases: &[(Value, &str)] = &[
            (Value::Null, "null"),
            (Value::Bool(true), "true"),
            (Value::Int(-1), "-1"),
            (Value::Float(0.5), "0.5"),
            (Value::Float(f64::NAN), "null"),
            (Value::Bytes(b"a\"b".to_vec()), r#""a\"b""#),
            (Value::Bytes(vec![b'x', 0xff]), "\"x\u{fffd}\""),
            (Value::List(vec![Value::Int(1), Value::Null]), "[1,null]"),
            (
                map(&[("op", Value::Bytes(b"add".to_vec()))]),
                r#"{"op":"add"}"#,
            ),
        ];
        for (v, want) in cases {
            assert_eq!(serde_json::to_string(&v.to_json()).unwrap(), *want, "{v:?}");
        }
    }

    #[test]
    fn json_round_trip_through_value() {
        let text = r#"[{"op":"replace","path":"/a/0","value":{"x":[1,2.5,"s",null,false]}}]"#;
        let j: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(Value::from_json(&j).to_json(), j);
    }
}
