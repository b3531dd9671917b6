//! Pure helpers that turn raw config strings into values: template variables, `port_offset`,
//! listen addresses, booleans, integers and log levels.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Longest listen address accepted (`[v6%scope]:port` fits easily).
pub const LISTEN_ADDR_MAX: usize = 64;
/// Most digits a port may have in a `tcp://host:PORT` spec.
const PORT_DIGITS_MAX: usize = 5;

/// The template variables of pushpin.conf values. A `None` variable is left unexpanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateVars {
    pub libdir: Option<String>,
    pub rundir: String,
    pub ipc_prefix: String,
    pub port_offset: u16,
}

/// Replace `{libdir}`, `{rundir}` and `{ipc_prefix}` in one pass, so that text substituted in is
/// never expanded again. Unknown `{x}` stays as written.
pub fn expand_templates(value: &str, vars: &TemplateVars) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(open) = rest.find('{') {
        let (before, from_brace) = rest.split_at(open);
        out.push_str(before);
        let replacement = from_brace.find('}').and_then(|close| {
            let name = from_brace.get(1..close)?;
            let text = match name {
                "libdir" => vars.libdir.as_deref()?,
                "rundir" => vars.rundir.as_str(),
                "ipc_prefix" => vars.ipc_prefix.as_str(),
                _ => return None,
            };
            Some((text, close))
        });
        match replacement {
            Some((text, close)) => {
                out.push_str(text);
                rest = from_brace.get(close + 1..).unwrap_or("");
            }
            None => {
                out.push('{');
                rest = from_brace.get(1..).unwrap_or("");
            }
        }
    }
    out.push_str(rest);
    out
}

/// Add `offset` to the port of every `tcp://host:PORT` in `value` (IPv6 hosts in brackets).
/// `ipc://` and anything without a numeric port are left alone.
pub fn apply_port_offset(value: &str, offset: u16) -> Result<String, String> {
    const SCHEME: &str = "tcp://";
    if offset == 0 {
        return Ok(value.to_string());
    }
    let mut out = String::with_capacity(value.len() + 4);
    let mut rest = value;
    while let Some(at) = rest.find(SCHEME) {
        let (before, spec) = rest.split_at(at);
        out.push_str(before);
        out.push_str(SCHEME);
        let after_scheme = spec.get(SCHEME.len()..).unwrap_or("");
        let host_len = if after_scheme.starts_with('[') {
            after_scheme.find(']').map_or(after_scheme.len(), |i| i + 1)
        } else {
            after_scheme
                .find(|c: char| c == ':' || c == '/' || c == ',' || c.is_whitespace())
                .unwrap_or(after_scheme.len())
        };
        let (host, tail) = after_scheme.split_at(host_len);
        out.push_str(host);
        rest = tail;
        let Some(port_text) = tail.strip_prefix(':') else {
            continue;
        };
        let digits = port_text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(port_text.len());
        if digits == 0 {
            continue;
        }
        let (port, tail) = port_text.split_at(digits);
        let shifted = if digits <= PORT_DIGITS_MAX {
            port.parse::<u32>()
                .ok()
                .and_then(|p| p.checked_add(u32::from(offset)))
                .filter(|p| *p <= u32::from(u16::MAX))
        } else {
            None
        };
        let Some(shifted) = shifted else {
            return Err(format!(
                "port {port} of tcp://{host} plus port_offset {offset} is not a valid port"
            ));
        };
        out.push(':');
        out.push_str(&shifted.to_string());
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

/// Parse `port`, `ipv4:port` or `[ipv6]:port` as used by `http_port` and `--port`. A bare port
/// listens on all IPv4 interfaces, as Pushpin does.
pub fn parse_listen_addr(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty listen address".to_string());
    }
    if s.len() > LISTEN_ADDR_MAX {
        return Err(format!(
            "listen address longer than {LISTEN_ADDR_MAX} bytes"
        ));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let port = parse_port(s)?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!(
            "invalid listen address {s:?}: expected [addr:]port"
        ));
    };
    let port = parse_port(port)?;
    let ip = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner
            .parse::<std::net::Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| format!("invalid IPv6 address {inner:?}"))?
    } else if host.contains(':') {
        return Err(format!("IPv6 address {host:?} must be written in brackets"));
    } else {
        host.parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| format!("invalid IP address {host:?} (host names are not resolved)"))?
    };
    Ok(SocketAddr::new(ip, port))
}

fn parse_port(s: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid port {s:?}"));
    }
    s.parse::<u16>()
        .map_err(|_| format!("port {s} out of range"))
}

/// Map Pushpin log_level (0 error, 1 warn, 2 info, 3 debug, 4+ trace) to a `log` filter.
pub fn level_filter(level: u8) -> log::LevelFilter {
    match level {
        0 => log::LevelFilter::Error,
        1 => log::LevelFilter::Warn,
        2 => log::LevelFilter::Info,
        3 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

/// `true/false`, `1/0`, `yes/no`, any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim();
    for t in ["true", "1", "yes"] {
        if s.eq_ignore_ascii_case(t) {
            return Some(true);
        }
    }
    for f in ["false", "0", "no"] {
        if s.eq_ignore_ascii_case(f) {
            return Some(false);
        }
    }
    None
}

/// A decimal integer with an optional sign, as Qt's `toInt` reads it.
pub fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

/// Names under which a `name:level` entry of `[runner] log_level` concerns holdfast's work.
const LOG_LEVEL_SERVICES: &[&str] = &["proxy", "handler", "pushpin-proxy", "pushpin-handler"];

/// `[runner] log_level`: items that are a bare level or `name:level`. The highest of the bare
/// levels and the proxy/handler entries wins; `None` when no item applies. Levels above 255
/// saturate (they all mean trace).
pub fn parse_log_level(items: &[String]) -> Result<Option<u8>, String> {
    let mut best: Option<u8> = None;
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (service, level) = match item.split_once(':') {
            Some((name, level)) => (Some(name.trim()), level),
            None => (None, item),
        };
        let level = match parse_int(level) {
            Some(n) if n >= 0 => u8::try_from(n).unwrap_or(u8::MAX),
            _ => return Err(format!("invalid log level {item:?}")),
        };
        let applies = service.is_none_or(|name| LOG_LEVEL_SERVICES.contains(&name));
        if applies {
            best = Some(best.map_or(level, |b| b.max(level)));
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(libdir: Option<&str>, offset: u16) -> TemplateVars {
        TemplateVars {
            libdir: libdir.map(str::to_string),
            rundir: "/run/hf".to_string(),
            ipc_prefix: "pp-".to_string(),
            port_offset: offset,
        }
    }

    #[test]
    fn templates_table() {
        let v = vars(Some("/usr/lib/pushpin"), 0);
        let cases: &[(&str, &str)] = &[
            ("ipc://{rundir}/{ipc_prefix}stats", "ipc:///run/hf/pp-stats"),
            ("{libdir}/internal.conf", "/usr/lib/pushpin/internal.conf"),
            ("{unknown}/x", "{unknown}/x"),
            ("{rundir", "{rundir"),
            ("}{rundir}{", "}/run/hf{"),
            ("{{rundir}}", "{/run/hf}"),
            ("no templates", "no templates"),
            ("", ""),
            ("{}", "{}"),
            ("é{rundir}é", "é/run/hfé"),
        ];
        for (input, want) in cases {
            assert_eq!(expand_templates(input, &v), *want, "{input:?}");
        }
        // An unset libdir is left for the caller to notice.
        assert_eq!(
            expand_templates("{libdir}/internal.conf", &vars(None, 0)),
            "{libdir}/internal.conf"
        );
        // Substituted text is not expanded again.
        let mut tricky = vars(Some("{rundir}"), 0);
        tricky.rundir = "{libdir}".to_string();
        assert_eq!(
            expand_templates("{libdir}|{rundir}", &tricky),
            "{rundir}|{libdir}"
        );
    }

    #[test]
    fn port_offset_table() {
        let cases: &[(&str, u16, &str)] = &[
            ("tcp://127.0.0.1:5560", 10, "tcp://127.0.0.1:5570"),
            ("tcp://*:5562", 1, "tcp://*:5563"),
            ("tcp://[::1]:5560", 5, "tcp://[::1]:5565"),
            ("tcp://host:5560/path", 2, "tcp://host:5562/path"),
            ("tcp://a:1,tcp://b:2", 100, "tcp://a:101,tcp://b:102"),
            ("ipc:///run/pushpin-stats", 10, "ipc:///run/pushpin-stats"),
            ("tcp://noport", 10, "tcp://noport"),
            ("tcp://host:", 10, "tcp://host:"),
            ("tcp://host:abc", 10, "tcp://host:abc"),
            ("tcp://127.0.0.1:5560", 0, "tcp://127.0.0.1:5560"),
            ("tcp://", 3, "tcp://"),
            ("tcp://[::1", 3, "tcp://[::1"),
            ("x tcp://h:65535", 0, "x tcp://h:65535"),
        ];
        for (input, offset, want) in cases {
            assert_eq!(
                apply_port_offset(input, *offset).as_deref(),
                Ok(*want),
                "{input:?} + {offset}"
            );
        }
        assert!(apply_port_offset("tcp://h:65535", 1).is_err());
        assert!(apply_port_offset("tcp://h:999999", 1).is_err());
    }

    #[test]
    fn listen_addr_table() {
        let ok: &[(&str, &str)] = &[
            ("7999", "0.0.0.0:7999"),
            (" 7999 ", "0.0.0.0:7999"),
            ("0", "0.0.0.0:0"),
            ("127.0.0.1:7999", "127.0.0.1:7999"),
            ("0.0.0.0:80", "0.0.0.0:80"),
            ("[::1]:7999", "[::1]:7999"),
            ("[::]:443", "[::]:443"),
        ];
        for (input, want) in ok {
            assert_eq!(
                parse_listen_addr(input).map(|a| a.to_string()).as_deref(),
                Ok(*want),
                "{input:?}"
            );
        }
        let bad = [
            "",
            "65536",
            "+80",
            "-1",
            "localhost:80",
            "::1:80",
            "[::1]",
            "[::1]:",
            "1.2.3.4:",
            ":80",
            "1.2.3.4:+80",
            "[1.2.3.4]:80",
            "1.2.3.4:99999",
            "abc",
        ];
        for input in bad {
            assert!(parse_listen_addr(input).is_err(), "{input:?} accepted");
        }
        assert!(parse_listen_addr(&"1".repeat(LISTEN_ADDR_MAX + 1)).is_err());
    }

    #[test]
    fn level_filter_table() {
        use log::LevelFilter as L;
        let cases = [
            (0, L::Error),
            (1, L::Warn),
            (2, L::Info),
            (3, L::Debug),
            (4, L::Trace),
            (255, L::Trace),
        ];
        for (n, want) in cases {
            assert_eq!(level_filter(n), want, "{n}");
        }
    }

    #[test]
    fn bool_and_int_tables() {
        let bools = [
            ("true", Some(true)),
            ("TRUE", Some(true)),
            ("Yes", Some(true)),
            ("1", Some(true)),
            ("false", Some(false)),
            ("No", Some(false)),
            ("0", Some(false)),
            ("on", None),
            ("", None),
            ("2", None),
        ];
        for (s, want) in bools {
            assert_eq!(parse_bool(s), want, "{s:?}");
        }
        let ints = [
            ("0", Some(0)),
            ("-1", Some(-1)),
            ("+5", Some(5)),
            (" 42 ", Some(42)),
            ("abc", None),
            ("1.5", None),
            ("", None),
            ("-", None),
            ("99999999999999999999", None),
        ];
        for (s, want) in ints {
            assert_eq!(parse_int(s), want, "{s:?}");
        }
    }

    #[test]
    fn log_level_table() {
        type Case<'a> = (&'a [&'a str], Result<Option<u8>, ()>);
        let cases: &[Case] = &[
            (&["2"], Ok(Some(2))),
            (&[], Ok(None)),
            (&["condure:4"], Ok(None)),
            (&["proxy:3", "handler:1"], Ok(Some(3))),
            (&["1", "handler:4", "connmgr:5"], Ok(Some(4))),
            (&["pushpin-proxy:3"], Ok(Some(3))),
            (&["1000"], Ok(Some(255))),
            (&["-1"], Err(())),
            (&["proxy:x"], Err(())),
            (&["x"], Err(())),
        ];
        for (items, want) in cases {
            let items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
            assert_eq!(parse_log_level(&items).map_err(|_| ()), *want, "{items:?}");
        }
    }
}
