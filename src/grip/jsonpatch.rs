//! RFC 6902 JSON Patch (with RFC 6901 JSON Pointers), for published `http-response` items whose
//! `body-patch` edits the held response's JSON body instead of replacing it. Pure functions.

use serde_json::Value;

/// Operations accepted in one patch: patches come from publishers, so their cost is bounded.
pub const PATCH_OPS_MAX: usize = 1000;

/// Apply `patch` (a JSON array of operations) to `doc`. All or nothing: on error `doc` is unchanged.
pub fn apply_patch(doc: &mut Value, patch: &Value) -> Result<(), String> {
    let ops = patch.as_array().ok_or("patch is not an array")?;
    if ops.len() > PATCH_OPS_MAX {
        return Err(format!("patch has more than {PATCH_OPS_MAX} operations"));
    }
    let mut work = doc.clone();
    for (i, op) in ops.iter().enumerate() {
        apply_op(&mut work, op).map_err(|e| format!("operation {i}: {e}"))?;
    }
    *doc = work;
    Ok(())
}

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), String> {
    let name = op.get("op").and_then(Value::as_str).ok_or("missing 'op'")?;
    let path = op
        .get("path")
        .and_then(Value::as_str)
        .ok_or("missing 'path'")?;
    let value = || op.get("value").cloned().ok_or("missing 'value'");
    let from = || {
        op.get("from")
            .and_then(Value::as_str)
            .ok_or("missing 'from'")
    };
    match name {
        "add" => add(doc, path, value()?),
        "remove" => remove(doc, path).map(|_| ()),
        "replace" => {
            let target = lookup_mut(doc, path)?;
            *target = value()?;
            Ok(())
        }
        "move" => {
            let from = from()?;
            if path.starts_with(from) && path[from.len()..].starts_with('/') {
                return Err("can't move a value into itself".into());
            }
            let v = remove(doc, from)?;
            add(doc, path, v)
        }
        "copy" => {
            let v = lookup(doc, from()?)?.clone();
            add(doc, path, v)
        }
        "test" => {
            if lookup(doc, path)? == &value()? {
                Ok(())
            } else {
                Err(format!("test failed at {path}"))
            }
        }
        other => Err(format!("unknown op '{other}'")),
    }
}

/// Split a pointer into its unescaped reference tokens (`~1` is `/`, `~0` is `~`).
fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| format!("bad pointer '{pointer}'"))?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn array_index(token: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    if allow_end && token == "-" {
        return Ok(len);
    }
    if token.is_empty()
        || (token.len() > 1 && token.starts_with('0'))
        || !token.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("bad array index '{token}'"));
    }
    let i: usize = token
        .parse()
        .map_err(|_| format!("bad array index '{token}'"))?;
    let max = if allow_end {
        len
    } else {
        len.saturating_sub(1)
    };
    if i > max || (!allow_end && len == 0) {
        return Err(format!("array index {i} out of range"));
    }
    Ok(i)
}

fn lookup<'a>(doc: &'a Value, pointer: &str) -> Result<&'a Value, String> {
    let mut cur = doc;
    for t in tokens(pointer)? {
        cur = match cur {
            Value::Object(m) => m.get(&t).ok_or_else(|| format!("no member '{t}'"))?,
            Value::Array(a) => &a[array_index(&t, a.len(), false)?],
            _ => return Err(format!("can't descend into a scalar at '{t}'")),
        };
    }
    Ok(cur)
}

fn lookup_mut<'a>(doc: &'a mut Value, pointer: &str) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for t in tokens(pointer)? {
        cur = match cur {
            Value::Object(m) => m.get_mut(&t).ok_or_else(|| format!("no member '{t}'"))?,
            Value::Array(a) => {
                let i = array_index(&t, a.len(), false)?;
                &mut a[i]
            }
            _ => return Err(format!("can't descend into a scalar at '{t}'")),
        };
    }
    Ok(cur)
}

/// The parent container of a pointer's target, and the last token.
fn parent_mut<'a>(doc: &'a mut Value, pointer: &str) -> Result<(&'a mut Value, String), String> {
    let mut toks = tokens(pointer)?;
    let last = toks.pop().ok_or("the whole document has no parent")?;
    let mut parent_ptr = String::new();
    for t in &toks {
        parent_ptr.push('/');
        parent_ptr.push_str(&t.replace('~', "~0").replace('/', "~1"));
    }
    Ok((lookup_mut(doc, &parent_ptr)?, last))
}

fn add(doc: &mut Value, pointer: &str, value: Value) -> Result<(), String> {
    if pointer.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = parent_mut(doc, pointer)?;
    match parent {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            let i = array_index(&last, a.len(), true)?;
            a.insert(i, value);
            Ok(())
        }
        _ => Err("can't add to a scalar".into()),
    }
}

fn remove(doc: &mut Value, pointer: &str) -> Result<Value, String> {
    let (parent, last) = parent_mut(doc, pointer)?;
    match parent {
        Value::Object(m) => m.remove(&last).ok_or_else(|| format!("no member '{last}'")),
        Value::Array(a) => {
            let i = array_index(&last, a.len(), false)?;
            Ok(a.remove(i))
        }
        _ => Err("can't remove from a scalar".into()),
    }
}

/// Patch a response body: parse it as JSON, apply the patch, serialise it again, keeping a trailing
/// `\n` or `\r\n` the original had (as Pushpin does).
pub fn patch_body(body: &[u8], patch: &Value) -> Result<Vec<u8>, String> {
    let (json, eol): (&[u8], &[u8]) = if let Some(b) = body.strip_suffix(b"\r\n") {
        (b, b"\r\n")
    } else if let Some(b) = body.strip_suffix(b"\n") {
        (b, b"\n")
    } else {
        (body, b"")
    };
    let mut doc: Value =
        serde_json::from_slice(json).map_err(|e| format!("body is not JSON: {e}"))?;
    apply_patch(&mut doc, patch)?;
    let mut out = serde_json::to_vec(&doc).map_err(|e| e.to_string())?;
    out.extend_from_slice(eol);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc6902_appendix_a_examples() {
        let cases = [
            (
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/baz", "value": "qux"}]),
                json!({"baz": "qux", "foo": "bar"}),
            ),
            (
                json!({"foo": ["bar", "baz"]}),
                json!([{"op": "add", "path": "/foo/1", "value": "qux"}]),
                json!({"foo": ["bar", "qux", "baz"]}),
            ),
            (
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "remove", "path": "/baz"}]),
                json!({"foo": "bar"}),
            ),
            (
                json!({"foo": ["bar", "qux", "baz"]}),
                json!([{"op": "remove", "path": "/foo/1"}]),
                json!({"foo": ["bar", "baz"]}),
            ),
            (
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "replace", "path": "/baz", "value": "boo"}]),
                json!({"baz": "boo", "foo": "bar"}),
            ),
            (
                json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
                json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]),
                json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
            ),
            (
                json!({"foo": ["all", "grass", "cows", "eat"]}),
                json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}]),
                json!({"foo": ["all", "cows", "eat", "grass"]}),
            ),
            (
                json!({"foo": ["bar"]}),
                json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}]),
                json!({"foo": ["bar", ["abc", "def"]]}),
            ),
            (
                json!({"/": 9, "~1": 10}),
                json!([{"op": "test", "path": "/~01", "value": 10}]),
                json!({"/": 9, "~1": 10}),
            ),
            (
                json!({"a": 1}),
                json!([{"op": "copy", "from": "/a", "path": "/b"}]),
                json!({"a": 1, "b": 1}),
            ),
        ];
        for (doc, patch, want) in cases {
            let mut d = doc.clone();
            apply_patch(&mut d, &patch).unwrap_or_else(|e| panic!("{patch}: {e}"));
            assert_eq!(d, want, "{patch}");
        }
    }

    #[test]
    fn errors_leave_the_document_unchanged() {
        for patch in [
            json!([{"op": "add", "path": "/a", "value": 1}, {"op": "test", "path": "/a", "value": 2}]),
            json!([{"op": "remove", "path": "/missing"}]),
            json!([{"op": "add", "path": "/arr/5", "value": 1}]),
            json!([{"op": "replace", "path": "/arr/01", "value": 1}]),
            json!([{"op": "move", "from": "/obj", "path": "/obj/inner"}]),
            json!([{"op": "frobnicate", "path": "/a"}]),
            json!([{"op": "add", "path": "no-slash", "value": 1}]),
            json!({"op": "add"}),
        ] {
            let mut doc = json!({"arr": [1], "obj": {}});
            let before = doc.clone();
            assert!(apply_patch(&mut doc, &patch).is_err(), "{patch}");
            assert_eq!(doc, before);
        }
    }

    #[test]
    fn body_patch_keeps_the_line_ending() {
        let patch = json!([{"op": "replace", "path": "/n", "value": 2}]);
        assert_eq!(
            patch_body(b"{\"n\":1}\r\n", &patch).unwrap(),
            b"{\"n\":2}\r\n"
        );
        assert_eq!(patch_body(b"{\"n\":1}\n", &patch).unwrap(), b"{\"n\":2}\n");
        assert_eq!(patch_body(b"{\"n\":1}", &patch).unwrap(), b"{\"n\":2}");
        assert!(patch_body(b"not json", &patch).is_err());
    }
}
