//! The Prometheus text exposition format (version 0.0.4) of a metrics `Snapshot`, sans-IO.
//!
//! Pushpin's five handler metrics come first, under Pushpin's names and help texts (spec 7.3), so existing
//! dashboards keep working; holdfast's own follow, named in Prometheus style (`_total` counters, labels instead of
//! one metric per variant). Every name gets `prometheus_prefix` in front.

use std::fmt::Write;

use super::metrics::{Snapshot, LATENCY_BOUNDS_US};
use super::{BackendError, ConnType, Flow, Input, Transport};

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Whether `prefix` keeps every metric name valid (`[a-zA-Z_:][a-zA-Z0-9_:]*`; the names themselves are).
pub fn valid_prefix(prefix: &str) -> bool {
    let mut chars = prefix.chars();
    match chars.next() {
        None => true,
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        }
        Some(_) => false,
    }
}

/// The exposition for `s`, every metric name starting with `prefix`.
pub fn render(s: &Snapshot, prefix: &str) -> String {
    let mut out = Exposition {
        text: String::with_capacity(8 * 1024),
        prefix,
    };

    // Pushpin's five (spec 7.3), unlabelled.
    let pushpin: [(&str, &str, &str, u64); 5] = [
        (
            "request_received",
            "counter",
            "Number of requests received",
            s.requests,
        ),
        (
            "connection_connected",
            "gauge",
            "Number of concurrent connections",
            s.connections.iter().sum(),
        ),
        (
            "connection_minute",
            "counter",
            "Number of minutes clients have been connected",
            s.connection_minutes,
        ),
        (
            "message_received",
            "counter",
            "Number of messages received by the publish API",
            s.received.iter().sum(),
        ),
        (
            "message_sent",
            "counter",
            "Number of messages sent to clients",
            s.delivered.iter().sum(),
        ),
    ];
    for (name, kind, help, value) in pushpin {
        out.family(name, kind, help);
        out.sample(name, &[], value);
    }

    out.family(
        "connections",
        "gauge",
        "Open client connections by type (ws once the WebSocket handshake completed)",
    );
    for t in ConnType::ALL {
        out.sample(
            "connections",
            &[("type", t.as_str())],
            s.connections[t.index()],
        );
    }
    out.family(
        "held_connections",
        "gauge",
        "Client connections waiting for published messages, by mode",
    );
    for t in Transport::ALL {
        out.sample("held_connections", &[("mode", t.mode())], s.held[t.index()]);
    }
    out.family(
        "subscribed_channels",
        "gauge",
        "Channels with at least one listening connection",
    );
    out.sample("subscribed_channels", &[], s.subscribed_channels);
    out.family(
        "subscriptions",
        "gauge",
        "Connection-channel subscriptions, by mode",
    );
    for t in Transport::ALL {
        out.sample(
            "subscriptions",
            &[("mode", t.mode())],
            s.subscriptions[t.index()],
        );
    }

    out.family(
        "messages_received_total",
        "counter",
        "Published items accepted, by input",
    );
    for i in Input::ALL {
        out.sample(
            "messages_received_total",
            &[("input", i.as_str())],
            s.received[i.index()],
        );
    }
    out.family(
        "messages_delivered_total",
        "counter",
        "Published items handed to client connections (one per receiving connection), by transport",
    );
    for t in Transport::ALL {
        out.sample(
            "messages_delivered_total",
            &[("transport", t.as_str())],
            s.delivered[t.index()],
        );
    }
    out.family(
        "messages_dropped_total",
        "counter",
        "Published items or deliveries dropped, by reason",
    );
    out.sample(
        "messages_dropped_total",
        &[("reason", "inbox_full")],
        s.dropped_inbox,
    );
    out.sample(
        "messages_dropped_total",
        &[("reason", "hwm")],
        s.dropped_hwm,
    );
    out.family(
        "messages_invalid_total",
        "counter",
        "Published messages refused as invalid, by input",
    );
    for i in Input::ALL {
        out.sample(
            "messages_invalid_total",
            &[("input", i.as_str())],
            s.invalid[i.index()],
        );
    }
    out.family(
        "stats_events_dropped_total",
        "counter",
        "Stats socket events dropped because the ZeroMQ bridge's queue was full",
    );
    out.sample("stats_events_dropped_total", &[], s.stats_dropped);

    let flows: [(&str, &str, &[u64; 4]); 3] = [
        (
            "bytes_total",
            "Bytes read and written on client and backend sockets",
            &s.bytes,
        ),
        (
            "header_bytes_total",
            "The part of bytes_total that was HTTP heads",
            &s.header_bytes,
        ),
        (
            "websocket_messages_total",
            "WebSocket data messages",
            &s.ws_messages,
        ),
    ];
    for (name, help, values) in flows {
        out.family(name, "counter", help);
        for f in Flow::ALL {
            out.sample(
                name,
                &[("side", f.side()), ("direction", f.direction())],
                values[f.index()],
            );
        }
    }

    out.family(
        "backend_errors_total",
        "counter",
        "Failed backend exchanges, by kind",
    );
    for e in BackendError::ALL {
        out.sample(
            "backend_errors_total",
            &[("kind", e.as_str())],
            s.backend_errors[e.index()],
        );
    }

    out.latency(s);
    out.text
}

struct Exposition<'a> {
    text: String,
    prefix: &'a str,
}

impl Exposition<'_> {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let p = self.prefix;
        // Writing to a String cannot fail.
        let _ = write!(
            self.text,
            "# HELP {p}{name} {help}\n# TYPE {p}{name} {kind}\n"
        );
    }

    /// One sample. Label values here are fixed words that need no escaping.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = write!(self.text, "{}{name}", self.prefix);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{v}\"");
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// The publish-to-write latency histogram: cumulative buckets in seconds, `+Inf`, sum and count.
    fn latency(&mut self, s: &Snapshot) {
        let name = "publish_latency_seconds";
        self.family(
            name,
            "histogram",
            "Time from accepting a published item to queueing it on a client connection, per delivery",
        );
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (i, bound) in LATENCY_BOUNDS_US.iter().enumerate() {
            cumulative += s.latency_buckets[i];
            self.sample(&bucket, &[("le", &seconds(*bound))], cumulative);
        }
        cumulative += s.latency_buckets[LATENCY_BOUNDS_US.len()];
        // The +Inf bucket is the count by definition, even if a scrape raced an observation between buckets.
        self.sample(&bucket, &[("le", "+Inf")], cumulative.max(s.latency_count));
        self.sample(&format!("{name}_sum"), &[], seconds(s.latency_sum_us));
        self.sample(&format!("{name}_count"), &[], s.latency_count);
    }
}

/// Microseconds as decimal seconds, exactly (no float rounding): 250 → `0.00025`, 1_000_000 → `1`.
fn seconds(us: u64) -> String {
    let frac = us % 1_000_000;
    if frac == 0 {
        return (us / 1_000_000).to_string();
    }
    let digits = format!("{frac:06}");
    format!("{}.{}", us / 1_000_000, digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    type Labels = BTreeMap<String, String>;

    /// The exposition read back: family types and help, and every sample by name and labels. Panics on any
    /// line the text format does not allow, or a sample whose family has no `# TYPE` before it.
    struct Parsed {
        types: HashMap<String, String>,
        helps: HashMap<String, String>,
        samples: Vec<(String, Labels, String)>,
    }

    fn parse(text: &str) -> Parsed {
        let mut p = Parsed {
            types: HashMap::new(),
            helps: HashMap::new(),
            samples: Vec::new(),
        };
        assert!(text.ends_with('\n'), "the last line ends with a newline");
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("HELP name text");
                assert!(p.helps.insert(name.into(), help.into()).is_none(), "{name}");
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                assert!(p.types.insert(name.into(), kind.into()).is_none(), "{name}");
                continue;
            }
            assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
            let (series, value) = line.rsplit_once(' ').expect("sample value");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => {
                    let body = rest.strip_suffix('}').expect("closing brace");
                    let mut labels = Labels::new();
                    for pair in body.split(',') {
                        let (k, v) = pair.split_once('=').expect("label=value");
                        let v = v
                            .strip_prefix('"')
                            .and_then(|v| v.strip_suffix('"'))
                            .expect("quoted label value");
                        labels.insert(k.into(), v.into());
                    }
                    (n.to_string(), labels)
                }
                None => (series.to_string(), Labels::new()),
            };
            assert!(valid_prefix(&name), "metric name {name:?}");
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|f| p.types.get(*f).is_some_and(|k| k == "histogram"))
                .unwrap_or(&name)
                .to_string();
            assert!(
                p.types.contains_key(&family),
                "{name} has no TYPE before it"
            );
            value.parse::<f64>().expect("numeric value");
            p.samples.push((name, labels, value.to_string()));
        }
        p
    }

    impl Parsed {
        fn value(&self, name: &str, labels: &[(&str, &str)]) -> String {
            let want: Labels = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let hits: Vec<_> = self
                .samples
                .iter()
                .filter(|(n, l, _)| n == name && *l == want)
                .collect();
            assert_eq!(hits.len(), 1, "{name} {labels:?}");
            hits[0].2.clone()
        }

        fn num(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
            self.value(name, labels).parse().expect("integer value")
        }

        /// The label sets of every sample of `name`, as `k=v` strings.
        fn label_sets(&self, name: &str) -> Vec<String> {
            self.samples
                .iter()
                .filter(|(n, _, _)| n == name)
                .map(|(_, l, _)| {
                    l.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect()
        }
    }

    /// A snapshot where every field has a distinct value, so a value rendered under the wrong name shows.
    fn distinct() -> Snapshot {
        let mut s = Snapshot {
            requests: 11,
            connections: [12, 13],
            connection_minutes: 14,
            held: [15, 16, 17],
            subscribed_channels: 18,
            subscriptions: [19, 20, 21],
            received: [22, 23, 24, 25],
            delivered: [26, 27, 28],
            dropped_inbox: 29,
            dropped_hwm: 30,
            invalid: [31, 32, 33, 34],
            stats_dropped: 35,
            bytes: [36, 37, 38, 39],
            header_bytes: [40, 41, 42, 43],
            ws_messages: [44, 45, 46, 47],
            backend_errors: [48, 49, 50],
            ..Snapshot::default()
        };
        s.latency_buckets[0] = 2; // ≤ 100 µs
        s.latency_buckets[3] = 3; // ≤ 1 ms
        s.latency_buckets[LATENCY_BOUNDS_US.len()] = 1; // above 5 s
        s.latency_count = 6;
        s.latency_sum_us = 7_250_500;
        s
    }

    #[test]
    fn pushpins_five_metrics_keep_their_names_types_and_help() {
        let p = parse(&render(&distinct(), ""));
        for (name, kind, help, value) in [
            (
                "request_received",
                "counter",
                "Number of requests received",
                11,
            ),
            (
                "connection_connected",
                "gauge",
                "Number of concurrent connections",
                12 + 13,
            ),
            (
                "connection_minute",
                "counter",
                "Number of minutes clients have been connected",
                14,
            ),
            (
                "message_received",
                "counter",
                "Number of messages received by the publish API",
                22 + 23 + 24 + 25,
            ),
            (
                "message_sent",
                "counter",
                "Number of messages sent to clients",
                26 + 27 + 28,
            ),
        ] {
            assert_eq!(p.types[name], kind, "{name}");
            assert_eq!(p.helps[name], help, "{name}");
            assert_eq!(p.num(name, &[]), value, "{name}");
        }
    }

    #[test]
    fn labelled_metrics_carry_each_value_under_its_own_labels() {
        let p = parse(&render(&distinct(), ""));
        assert_eq!(p.num("connections", &[("type", "http")]), 12);
        assert_eq!(p.num("connections", &[("type", "ws")]), 13);
        assert_eq!(p.num("held_connections", &[("mode", "response")]), 15);
        assert_eq!(p.num("held_connections", &[("mode", "stream")]), 16);
        assert_eq!(p.num("held_connections", &[("mode", "ws")]), 17);
        assert_eq!(p.num("subscribed_channels", &[]), 18);
        assert_eq!(p.num("subscriptions", &[("mode", "ws")]), 21);
        assert_eq!(p.num("messages_received_total", &[("input", "http")]), 22);
        assert_eq!(
            p.num("messages_received_total", &[("input", "zmq-command")]),
            25
        );
        assert_eq!(
            p.num("messages_delivered_total", &[("transport", "http-stream")]),
            27
        );
        assert_eq!(
            p.num("messages_dropped_total", &[("reason", "inbox_full")]),
            29
        );
        assert_eq!(p.num("messages_dropped_total", &[("reason", "hwm")]), 30);
        assert_eq!(
            p.num("messages_invalid_total", &[("input", "zmq-pull")]),
            32
        );
        assert_eq!(p.num("stats_events_dropped_total", &[]), 35);
        let flow = |side, dir| [("side", side), ("direction", dir)];
        assert_eq!(p.num("bytes_total", &flow("client", "received")), 36);
        assert_eq!(p.num("bytes_total", &flow("backend", "sent")), 39);
        assert_eq!(p.num("header_bytes_total", &flow("client", "sent")), 41);
        assert_eq!(
            p.num("websocket_messages_total", &flow("backend", "received")),
            46
        );
        assert_eq!(p.num("backend_errors_total", &[("kind", "connect")]), 48);
        assert_eq!(p.num("backend_errors_total", &[("kind", "timeout")]), 49);
        assert_eq!(
            p.num("backend_errors_total", &[("kind", "bad_gateway")]),
            50
        );
        assert_eq!(
            p.label_sets("messages_delivered_total"),
            [
                "transport=http-response",
                "transport=http-stream",
                "transport=ws-message"
            ]
        );
        assert_eq!(
            p.label_sets("bytes_total"),
            [
                "direction=received,side=client",
                "direction=sent,side=client",
                "direction=received,side=backend",
                "direction=sent,side=backend"
            ]
        );
    }

    #[test]
    fn the_latency_histogram_is_cumulative_in_seconds_and_ends_with_inf() {
        let p = parse(&render(&distinct(), ""));
        assert_eq!(p.types["publish_latency_seconds"], "histogram");
        let b = "publish_latency_seconds_bucket";
        assert_eq!(p.num(b, &[("le", "0.0001")]), 2);
        assert_eq!(p.num(b, &[("le", "0.00025")]), 2);
        assert_eq!(p.num(b, &[("le", "0.001")]), 5);
        assert_eq!(p.num(b, &[("le", "5")]), 5);
        assert_eq!(p.num(b, &[("le", "+Inf")]), 6);
        assert_eq!(p.value("publish_latency_seconds_sum", &[]), "7.2505");
        assert_eq!(p.num("publish_latency_seconds_count", &[]), 6);
        let les = p.label_sets(b);
        assert_eq!(les.len(), LATENCY_BOUNDS_US.len() + 1);
        assert_eq!(les.last().map(String::as_str), Some("le=+Inf"));
        let counts: Vec<u64> = p
            .samples
            .iter()
            .filter(|(n, _, _)| n == b)
            .map(|(_, _, v)| v.parse().unwrap())
            .collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    }

    #[test]
    fn the_prefix_goes_in_front_of_every_name() {
        let text = render(&distinct(), "holdfast_");
        let p = parse(&text);
        assert_eq!(p.num("holdfast_request_received", &[]), 11);
        assert_eq!(
            p.helps["holdfast_message_sent"],
            "Number of messages sent to clients"
        );
        assert_eq!(p.num("holdfast_publish_latency_seconds_count", &[]), 6);
        assert!(p.samples.iter().all(|(n, _, _)| n.starts_with("holdfast_")));
        assert!(p.types.keys().all(|n| n.starts_with("holdfast_")));
    }

    #[test]
    fn prefixes_that_would_break_metric_names_are_recognised() {
        for ok in ["", "pushpin_", "a", "_x", "ns:sub_"] {
            assert!(valid_prefix(ok), "{ok:?}");
        }
        for bad in ["1x", "a-b", "a b", "é", "x{"] {
            assert!(!valid_prefix(bad), "{bad:?}");
        }
    }

    #[test]
    fn seconds_are_exact_decimals() {
        assert_eq!(seconds(0), "0");
        assert_eq!(seconds(100), "0.0001");
        assert_eq!(seconds(250), "0.00025");
        assert_eq!(seconds(1_000_000), "1");
        assert_eq!(seconds(5_000_001), "5.000001");
    }
}
