//! Grip-Sig: the HS256 JWT that proves a request came through the proxy (spec 4.1, 10).
//!
//! Outgoing requests carry `Grip-Sig` signed with `sig_key`, claims `{"iss": sig_iss, "exp": now + 3600}`.
//! An incoming `Grip-Sig` that verifies with `upstream_key` marks the client as trusted (GRIP chaining).
//! Verification accepts HS256 only (never `none`, never an algorithm picked by the token), checks the MAC in
//! constant time, and requires an integer `exp` later than now. PEM keys (ES256/RS256) are refused for now.

use std::fmt;
use std::io::Read;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::instruct::decode_base64;

type HmacSha256 = Hmac<Sha256>;

/// Longest token `verify_grip_sig` looks at; a real Grip-Sig is about 150 bytes.
pub const GRIP_SIG_TOKEN_MAX: usize = 8192;
/// Largest key file `parse_key` reads.
pub const KEY_FILE_SIZE_MAX: usize = 65_536;

/// The value of the `Grip-Feature` request header.
pub const GRIP_FEATURES: &str = "status, session, link:next, link:gone, filter:skip-self, filter:skip-users, filter:require-sub, filter:build-id, filter:var-subst";

/// Base64url of `{"typ":"JWT","alg":"HS256"}`, the only header `make_grip_sig` writes.
const HS256_HEADER_B64: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9";

/// A signing / verification key.
#[derive(Clone, PartialEq, Eq)]
pub enum SigKey {
    /// HS256 shared secret (never empty when made by `parse_key`).
    Secret(Vec<u8>),
}

impl fmt::Debug for SigKey {
    // Keys must not end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigKey::Secret(k) => write!(f, "SigKey::Secret(<{} bytes>)", k.len()),
        }
    }
}

/// Parse a key setting: `base64:<b64>`, `file:<path>` or a literal secret.
///
/// A key file's contents are trimmed; PEM is refused (not supported yet), an even-length run of hex digits
/// is decoded, anything else is used as raw bytes.
pub fn parse_key(setting: &str) -> Result<SigKey, String> {
    if setting.is_empty() {
        return Err("key is empty".to_string());
    }
    if let Some(b64) = setting.strip_prefix("base64:") {
        let key = decode_base64(b64).ok_or_else(|| "key is not valid base64".to_string())?;
        if key.is_empty() {
            return Err("key is empty".to_string());
        }
        return Ok(SigKey::Secret(key));
    }
    if let Some(path) = setting.strip_prefix("file:") {
        return read_key_file(path).map(SigKey::Secret);
    }
    Ok(SigKey::Secret(setting.as_bytes().to_vec()))
}

fn read_key_file(path: &str) -> Result<Vec<u8>, String> {
    if path.is_empty() {
        return Err("key file path is empty".to_string());
    }
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open key file {path}: {e}"))?;
    let mut raw = Vec::new();
    let limit = u64::try_from(KEY_FILE_SIZE_MAX)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    file.take(limit)
        .read_to_end(&mut raw)
        .map_err(|e| format!("cannot read key file {path}: {e}"))?;
    if raw.len() > KEY_FILE_SIZE_MAX {
        return Err(format!(
            "key file {path} is larger than {KEY_FILE_SIZE_MAX} bytes"
        ));
    }
    let contents = raw.trim_ascii_compat();
    if contents.is_empty() {
        return Err(format!("key file {path} is empty"));
    }
    if contents.starts_with(b"-----BEGIN") {
        return Err("PEM keys (ES256/RS256) are not supported yet".to_string());
    }
    Ok(decode_hex(contents).unwrap_or_else(|| contents.to_vec()))
}

/// `[u8]::trim_ascii` is newer than the crate's minimum Rust version.
trait TrimAscii {
    fn trim_ascii_compat(&self) -> &[u8];
}

impl TrimAscii for Vec<u8> {
    fn trim_ascii_compat(&self) -> &[u8] {
        let start = self.iter().position(|c| !c.is_ascii_whitespace());
        let end = self.iter().rposition(|c| !c.is_ascii_whitespace());
        match (start, end) {
            (Some(s), Some(e)) => self.get(s..=e).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// Decode an even-length string of hex digits; `None` if it is anything else.
fn decode_hex(s: &[u8]) -> Option<Vec<u8>> {
    if s.is_empty() || s.len() % 2 != 0 {
        return None;
    }
    s.chunks_exact(2)
        .map(|pair| {
            let hi = (*pair.first()? as char).to_digit(16)?;
            let lo = (*pair.get(1)? as char).to_digit(16)?;
            u8::try_from(hi << 4 | lo).ok()
        })
        .collect()
}

fn secret(key: &SigKey) -> &[u8] {
    match key {
        SigKey::Secret(k) => k,
    }
}

/// HMAC-SHA256 over `data`; `None` only if the MAC rejects the key, which HMAC never does.
fn mac_for(key: &[u8], data: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(data);
    Some(mac)
}

/// HS256 JWT with header `{"typ":"JWT","alg":"HS256"}` and claims `{"iss": iss, "exp": exp}`.
pub fn make_grip_sig(iss: &str, key: &SigKey, exp_unix: u64) -> String {
    let claims = format!("{{\"iss\":{},\"exp\":{}}}", Value::from(iss), exp_unix);
    let mut token = String::with_capacity(HS256_HEADER_B64.len() + claims.len() * 2 + 48);
    token.push_str(HS256_HEADER_B64);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims.as_bytes(), &mut token);
    let sig = mac_for(secret(key), token.as_bytes())
        .map(|m| m.finalize().into_bytes().to_vec())
        .unwrap_or_default();
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, &mut token);
    token
}

/// Tokens remembered per thread; a proxy signs with one key or a few (per-route keys).
const SIG_CACHE_MAX: usize = 8;

/// A remembered token: issuer, key, expiry, token.
type CachedSig = (String, SigKey, u64, std::rc::Rc<str>);

thread_local! {
    static SIG_CACHE: std::cell::RefCell<Vec<CachedSig>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Seconds since the Unix epoch, for JWT claims.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `make_grip_sig`, remembered per thread for the same issuer, key and expiry. `exp` moves once a second, so
/// at thousands of requests a second nearly every request reuses the token instead of computing an HMAC.
pub fn cached_grip_sig(iss: &str, key: &SigKey, exp_unix: u64) -> std::rc::Rc<str> {
    SIG_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((_, _, _, token)) = cache
            .iter()
            .find(|(i, k, e, _)| *e == exp_unix && i == iss && k == key)
        {
            return token.clone();
        }
        let token: std::rc::Rc<str> = make_grip_sig(iss, key, exp_unix).into();
        cache.retain(|(i, k, _, _)| !(i == iss && k == key));
        if cache.len() >= SIG_CACHE_MAX {
            cache.remove(0);
        }
        cache.push((iss.to_string(), key.clone(), exp_unix, token.clone()));
        token
    })
}

/// Verify an incoming Grip-Sig: HS256, valid signature, integer `exp` > `now_unix`.
pub fn verify_grip_sig(token: &str, key: &SigKey, now_unix: u64) -> bool {
    verify(token, key, now_unix).is_some()
}

fn verify(token: &str, key: &SigKey, now_unix: u64) -> Option<()> {
    if token.len() > GRIP_SIG_TOKEN_MAX {
        return None;
    }
    let mut parts = token.split('.');
    let (header_b64, claims_b64, sig_b64) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    // The algorithm is ours to choose: the token's header only has to agree with it.
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_b64).ok()?).ok()?;
    if header.get("alg")?.as_str()? != "HS256" {
        return None;
    }
    let sig = URL_SAFE_NO_PAD.decode(sig_b64).ok()?;
    let signed_len = header_b64
        .len()
        .checked_add(1)?
        .checked_add(claims_b64.len())?;
    let signed = token.get(..signed_len)?;
    mac_for(secret(key), signed.as_bytes())?
        .verify_slice(&sig)
        .ok()?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims_b64).ok()?).ok()?;
    let exp = claims.as_object()?.get("exp")?.as_u64()?;
    (exp > now_unix).then_some(())
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    #[test]
    fn cached_tokens_equal_fresh_ones_and_follow_the_expiry() {
        let key = SigKey::Secret(b"k".to_vec());
        let a = cached_grip_sig("pushpin", &key, 100);
        assert_eq!(&*a, make_grip_sig("pushpin", &key, 100));
        assert_eq!(cached_grip_sig("pushpin", &key, 100), a);
        let b = cached_grip_sig("pushpin", &key, 101);
        assert_ne!(a, b);
        assert_eq!(&*b, make_grip_sig("pushpin", &key, 101));
        let other = SigKey::Secret(b"other".to_vec());
        assert_eq!(
            &*cached_grip_sig("pushpin", &other, 101),
            make_grip_sig("pushpin", &other, 101)
        );
        assert_eq!(
            &*cached_grip_sig("x", &key, 101),
            make_grip_sig("x", &key, 101)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn key(k: &str) -> SigKey {
        SigKey::Secret(k.as_bytes().to_vec())
    }

    fn b64(data: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(data)
    }

    /// A token built without `make_grip_sig`: the JSON is written out and the MAC computed here.
    fn independent_token(header: &str, claims: &str, secret: &[u8]) -> String {
        let signing_input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
        let mut mac = HmacSha256::new_from_slice(secret).unwrap();
        mac.update(signing_input.as_bytes());
        format!("{signing_input}.{}", b64(&mac.finalize().into_bytes()))
    }

    #[test]
    fn make_matches_independent_computation() {
        let want = independent_token(
            r#"{"typ":"JWT","alg":"HS256"}"#,
            r#"{"iss":"pushpin","exp":1700003600}"#,
            b"changeme",
        );
        assert_eq!(make_grip_sig("pushpin", &key("changeme"), NOW + 3600), want);
        // The same token computed by Python's hmac/hashlib/base64 modules.
        assert_eq!(
            want,
            "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJwdXNocGluIiwiZXhwIjoxNzAwMDAzNjAwfQ.\
             peoNzXovaO7IPyWazCP8fxwN-UW2nMVvWdjJusj1PiU"
        );
        assert!(verify_grip_sig(&want, &key("changeme"), NOW));
    }

    #[test]
    fn make_escapes_iss() {
        let token = make_grip_sig("a\"b\\c\n", &key("k"), 5);
        let claims = token.split('.').nth(1).unwrap();
        let claims = URL_SAFE_NO_PAD.decode(claims).unwrap();
        assert_eq!(claims, br#"{"iss":"a\"b\\c\n","exp":5}"#);
        assert!(verify_grip_sig(&token, &key("k"), 4));
    }

    #[test]
    fn round_trip_and_expiry() {
        let k = key("secret");
        let token = make_grip_sig("holdfast", &k, NOW + 3600);
        assert!(verify_grip_sig(&token, &k, NOW));
        assert!(verify_grip_sig(&token, &k, NOW + 3599));
        assert!(
            !verify_grip_sig(&token, &k, NOW + 3600),
            "exp must be strictly later"
        );
        assert!(!verify_grip_sig(&token, &k, NOW + 10_000));
        assert!(!verify_grip_sig(&token, &key("other"), NOW));
        assert!(!verify_grip_sig(&token, &SigKey::Secret(Vec::new()), NOW));
    }

    #[test]
    fn accepts_other_libraries_tokens() {
        // Header members in another order, extra claims, no typ.
        let k = b"shared";
        for (header, claims) in [
            (
                r#"{"alg":"HS256","typ":"JWT"}"#,
                r#"{"exp":1700000100,"iss":"x","iat":1}"#,
            ),
            (r#"{"alg":"HS256"}"#, r#"{"exp":1700000100}"#),
        ] {
            let token = independent_token(header, claims, k);
            assert!(
                verify_grip_sig(&token, &SigKey::Secret(k.to_vec()), NOW),
                "{header} {claims}"
            );
        }
    }

    #[test]
    fn rejects_bad_tokens() {
        let k = b"shared";
        let sk = SigKey::Secret(k.to_vec());
        let good = independent_token(r#"{"typ":"JWT","alg":"HS256"}"#, r#"{"exp":1700000100}"#, k);
        assert!(verify_grip_sig(&good, &sk, NOW));
        let (signing_input, sig) = good.rsplit_once('.').unwrap();
        let header_b64 = signing_input.split('.').next().unwrap();

        let mut tampered_sig = sig.to_string().into_bytes();
        tampered_sig[3] = if tampered_sig[3] == b'A' { b'B' } else { b'A' };
        let tampered_sig = format!(
            "{signing_input}.{}",
            String::from_utf8(tampered_sig).unwrap()
        );
        let forged_payload = format!("{header_b64}.{}.{sig}", b64(br#"{"exp":9999999999}"#));

        let unsigned = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(br#"{"exp":1700000100}"#)
        );
        let none_signed = independent_token(r#"{"alg":"none"}"#, r#"{"exp":1700000100}"#, k);
        let hs512 = independent_token(r#"{"alg":"HS512"}"#, r#"{"exp":1700000100}"#, k);
        let lower = independent_token(r#"{"alg":"hs256"}"#, r#"{"exp":1700000100}"#, k);
        let no_alg = independent_token(r#"{"typ":"JWT"}"#, r#"{"exp":1700000100}"#, k);
        let alg_num = independent_token(r#"{"alg":256}"#, r#"{"exp":1700000100}"#, k);
        let no_exp = independent_token(r#"{"alg":"HS256"}"#, r#"{"iss":"x"}"#, k);
        let exp_str = independent_token(r#"{"alg":"HS256"}"#, r#"{"exp":"1700000100"}"#, k);
        let exp_float = independent_token(r#"{"alg":"HS256"}"#, r#"{"exp":1700000100.5}"#, k);
        let exp_neg = independent_token(r#"{"alg":"HS256"}"#, r#"{"exp":-1}"#, k);
        let claims_array = independent_token(r#"{"alg":"HS256"}"#, r#"[1700000100]"#, k);
        let header_not_json = independent_token("HS256", r#"{"exp":1700000100}"#, k);
        let claims_not_json = independent_token(r#"{"alg":"HS256"}"#, "exp", k);
        let padded = format!("{good}=");
        let extra_part = format!("{good}.x");
        let long = format!("{good}{}", "A".repeat(GRIP_SIG_TOKEN_MAX));

        let cases: Vec<(&str, &str)> = vec![
            ("tampered signature", &tampered_sig),
            ("forged payload", &forged_payload),
            ("alg none, empty signature", &unsigned),
            ("alg none, signed", &none_signed),
            ("HS512", &hs512),
            ("lowercase alg", &lower),
            ("no alg", &no_alg),
            ("numeric alg", &alg_num),
            ("no exp", &no_exp),
            ("string exp", &exp_str),
            ("float exp", &exp_float),
            ("negative exp", &exp_neg),
            ("claims not an object", &claims_array),
            ("header not JSON", &header_not_json),
            ("claims not JSON", &claims_not_json),
            ("padding", &padded),
            ("four parts", &extra_part),
            ("too long", &long),
            ("empty", ""),
            ("dots", ".."),
            ("one part", "abc"),
            ("two parts", "abc.def"),
            ("not base64", "!!!.???.***"),
            ("non-ASCII", "é.é.é"),
        ];
        for (what, token) in cases {
            assert!(!verify_grip_sig(token, &sk, NOW), "{what} accepted");
        }
    }

    #[test]
    fn never_panics_on_random_tokens() {
        let k = key("k");
        let good = make_grip_sig("iss", &k, NOW + 60);
        let alphabet: Vec<char> = "AZaz09-_.=+/é\u{0} ".chars().collect();
        let mut rng = crate::test_rng::XorShift64(0x0dd_b1a5_e5ba_d5ee);
        let mut step = || rng.next();
        for n in 0..4000 {
            let token: String = if n % 2 == 0 {
                let len = (step() % 80) as usize;
                (0..len)
                    .map(|_| alphabet[(step() % alphabet.len() as u64) as usize])
                    .collect()
            } else {
                // Flip one character of a valid token: must never verify.
                let mut chars: Vec<char> = good.chars().collect();
                let at = (step() % chars.len() as u64) as usize;
                let replacement = alphabet[(step() % alphabet.len() as u64) as usize];
                if chars[at] == replacement {
                    continue;
                }
                chars[at] = replacement;
                let token: String = chars.into_iter().collect();
                assert!(
                    !verify_grip_sig(&token, &k, NOW) || token == good,
                    "mutant {token} verified"
                );
                token
            };
            let _ = verify_grip_sig(&token, &k, NOW);
        }
    }

    #[test]
    fn parse_key_table() {
        let dir = std::env::temp_dir().join(format!("holdfast-grip-sig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, contents: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, contents).unwrap();
            format!("file:{}", path.display())
        };
        let hex = file("hex", b"  00ff10Ab\n");
        let odd_hex = file("odd-hex", b"abc\n");
        let raw = file("raw", b"\tmy secret\r\n");
        let pem = file(
            "pem",
            b"\n-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n",
        );
        let blank = file("blank", b" \n\t ");
        let big = file("big", &vec![b'z'; KEY_FILE_SIZE_MAX + 1]);
        let at_max = file("at-max", &vec![b'z'; KEY_FILE_SIZE_MAX]);
        let missing = format!("file:{}", dir.join("missing").display());

        let cases: Vec<(&str, Result<Vec<u8>, &str>)> = vec![
            ("changeme", Ok(b"changeme".to_vec())),
            ("base64:aGVsbG8=", Ok(b"hello".to_vec())),
            ("base64:aGVsbG8", Ok(b"hello".to_vec())),
            ("base64:", Err("key is empty")),
            ("base64:***", Err("key is not valid base64")),
            ("", Err("key is empty")),
            (&hex, Ok(vec![0x00, 0xff, 0x10, 0xab])),
            (&odd_hex, Ok(b"abc".to_vec())),
            (&raw, Ok(b"my secret".to_vec())),
            (&pem, Err("PEM keys (ES256/RS256) are not supported yet")),
            (&blank, Err("is empty")),
            (&big, Err("is larger than 65536 bytes")),
            (&at_max, Ok(vec![b'z'; KEY_FILE_SIZE_MAX])),
            (&missing, Err("cannot open key file")),
            ("file:", Err("key file path is empty")),
            // Only the exact prefixes are special.
            ("Base64:aGk=", Ok(b"Base64:aGk=".to_vec())),
        ];
        for (setting, want) in cases {
            match (parse_key(setting), want) {
                (Ok(SigKey::Secret(got)), Ok(w)) => assert_eq!(got, w, "setting {setting}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "setting {setting}: {e}"),
                (got, want) => panic!("setting {setting}: got {got:?}, want {want:?}"),
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn debug_hides_the_secret() {
        let shown = format!("{:?}", key("hunter2"));
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("7 bytes"));
    }

    #[test]
    fn features_list_matches_spec() {
        let items: Vec<&str> = GRIP_FEATURES.split(", ").collect();
        assert_eq!(items.len(), 9);
        assert_eq!(items[2..4], ["link:next", "link:gone"]);
    }
}
