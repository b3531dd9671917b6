use super::*;

fn dir() -> PathBuf {
    // Not created: includes named by tests below are meant to be missing.
    PathBuf::from("/tmp/holdfast-config-tests-no-such-dir")
}

fn read(text: &str) -> (Settings, Vec<String>) {
    match Settings::from_text(text, "t.conf", &dir()) {
        Ok(r) => r,
        Err(e) => panic!("from_text failed: {e}\n{text}"),
    }
}

fn read_err(text: &str) -> ConfigError {
    match Settings::from_text(text, "t.conf", &dir()) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// Modelled on Pushpin's shipped examples/config/pushpin.conf, with a few values changed so
/// that each read is visible.
const FULL_CONF: &str = r#"[global]
include={libdir}/internal.conf

# directory to save runtime files
rundir=/var/run/pushpin

# prefix for zmq ipc specs
ipc_prefix=pp-

# port offset for zmq tcp specs and http control server
port_offset=10

# TTL (seconds) for connection stats
stats_connection_ttl=120

# whether to send individual connection stats
stats_connection_send=true

[runner]
# services to start
services=connmgr,proxy,handler

# plain HTTP port to listen on for client connections
http_port=7999, 127.0.0.1:8000, [::1]:8001

# list of HTTPS ports to listen on for client connections (you must have certs set)
#https_ports=443

# list of unix socket paths to listen on for client connections
#local_ports={rundir}/{ipc_prefix}server

# directory to save log files
logdir=log

# logging level. 2 = info, >2 = verbose
log_level=proxy:3,handler:2,connmgr:4

# client full request header must fit in this buffer
client_buffer_size=16384

# maximum number of client connections
client_maxconn=1000

# allow compression
allow_compression=false

[proxy]
# routes config file (path relative to location of this file)
routesfile=routes

# enable debug mode to get informative error responses
debug=true

# whether to use automatic CORS and JSON-P wrapping
auto_cross_origin=false

# whether to accept x-forwarded-proto
accept_x_forwarded_protocol=false

# whether to assert x-forwarded-proto
set_x_forwarded_protocol=proto-only

# how to treat x-forwarded-for. example: "truncate:0,append"
x_forwarded_for=truncate:0,append

# how to treat x-forwarded-for if grip-signed
x_forwarded_for_trusted=append

# the following headers must be marked in order to qualify as orig
orig_headers_need_mark=

# whether to accept Pushpin-Route header
accept_pushpin_route=false

# value to append to the CDN-Loop header
cdn_loop=

# include client IP address in logs
log_from=false

# include client user agent in logs
log_user_agent=false

# for signing proxied requests
sig_iss=pushpin

# for signing proxied requests. use "base64:" prefix for binary key
sig_key=changeme

# use this to allow grip to be forwarded upstream (e.g. to fanout.io)
upstream_key=

# for the sockjs iframe transport
sockjs_url=http://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js

# max open requests, divided across workers
max_open_requests=500

[handler]
# ipc permissions (octal)
#ipc_file_mode=777

# bind PULL for receiving publish commands
push_in_spec=tcp://127.0.0.1:5560

# list of bind SUB for receiving published messages
push_in_sub_specs=tcp://127.0.0.1:5562

# whether the above SUB socket should connect instead of bind
push_in_sub_connect=false

# addr/port to listen on for receiving publish commands via HTTP
push_in_http_addr=127.0.0.1
push_in_http_port=5561

# maximum headers and body size in bytes when receiving publish commands via HTTP
push_in_http_max_headers_size=10000
push_in_http_max_body_size=1000000

# bind PUB for sending stats (metrics, subscription info, etc)
stats_spec=ipc://{rundir}/{ipc_prefix}stats

# bind REP for responding to commands
command_spec=tcp://127.0.0.1:5563

# max messages per second
message_rate=2500

# max rate-limited messages
message_hwm=25000

# set to report blocks counts in stats (content size / block size)
#message_block_size=

# max time (milliseconds) for out-of-order messages to wait
message_wait=5000

# time (seconds) to cache message ids
id_cache_ttl=60

# whether to update sessions on first subscription
update_on_first_subscription=true

# max subscriptions per connection
connection_subscription_max=20

# time (seconds) to linger response mode subscriptions
subscription_linger=60

# TTL (seconds) for subscription stats
stats_subscription_ttl=60

# interval (seconds) to send report stats
stats_report_interval=10

# stats output format
stats_format=json

# prometheus
prometheus_port=9090
"#;

#[test]
fn realistic_full_config() {
    let (s, warnings) = read(FULL_CONF);
    assert_eq!(s.rundir, PathBuf::from("/var/run/pushpin"));
    assert_eq!(s.ipc_prefix, "pp-");
    assert_eq!(s.port_offset, 10);
    assert_eq!(
        s.http_ports,
        vec![
            "0.0.0.0:7999".parse().expect("addr"),
            "127.0.0.1:8000".parse().expect("addr"),
            "[::1]:8001".parse().expect("addr"),
        ]
    );
    assert_eq!(s.log_level, 3);
    assert_eq!(s.client_buffer_size, 16384);
    assert_eq!(s.client_maxconn, 1000);
    assert_eq!(s.routesfile, Some(dir().join("routes")));
    assert!(s.debug);
    assert_eq!(s.set_x_forwarded_protocol, XfpMode::ProtoOnly);
    assert_eq!(
        s.x_forwarded_for,
        vec![XffRule::Truncate(0), XffRule::Append]
    );
    assert_eq!(s.x_forwarded_for_trusted, vec![XffRule::Append]);
    assert!(s.orig_headers_need_mark.is_empty());
    assert_eq!(s.cdn_loop, None);
    assert_eq!(s.sig_key.as_deref(), Some("changeme"));
    assert_eq!(s.upstream_key, None);
    assert_eq!(s.max_open_requests, Some(500));
    assert_eq!(s.push_in_spec.as_deref(), Some("tcp://127.0.0.1:5570"));
    assert_eq!(
        s.push_in_sub_specs,
        vec!["tcp://127.0.0.1:5572".to_string()]
    );
    assert_eq!(s.command_spec.as_deref(), Some("tcp://127.0.0.1:5573"));
    assert_eq!(s.push_in_http_port, Some(5571));
    assert_eq!(
        s.stats_spec.as_deref(),
        Some("ipc:///var/run/pushpin/pp-stats")
    );
    assert_eq!(s.message_rate, Some(2500));
    assert_eq!(s.message_hwm, Some(25000));
    assert_eq!(s.message_block_size, None);
    assert_eq!(s.id_cache_ttl, 60);
    assert_eq!(s.stats_format, StatsFormat::Json);
    assert_eq!(s.prometheus_port.as_deref(), Some("9090"));
    // libdir is not set: the stock include is skipped; services, logdir and sockjs_url are
    // legacy or unsupported; false/empty unsupported keys stay quiet.
    assert_eq!(warnings.len(), 4, "{warnings:#?}");
    assert!(warnings[0].contains("libdir is not set"));
    assert!(warnings[1].starts_with("t.conf:21: [runner] services is not supported"));
    assert!(warnings[2].starts_with("t.conf:33: [runner] logdir is not supported"));
    assert!(warnings[3].starts_with("t.conf:94: [proxy] sockjs_url is not supported"));
}

#[test]
fn defaults_match_shipped_config() {
    let s = Settings::defaults();
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(s.config_file, None);
    assert_eq!(s.config_dir, cwd);
    assert_eq!(s.rundir, cwd.join("run"));
    assert_eq!(s.libdir, None);
    assert_eq!(s.ipc_prefix, "pushpin-");
    assert_eq!(s.port_offset, 0);
    assert_eq!(s.stats_connection_ttl, 120);
    assert!(s.stats_connection_send);
    assert_eq!(s.http_ports, vec!["0.0.0.0:7999".parse().expect("addr")]);
    assert!(s.https_ports.is_empty() && s.local_ports.is_empty());
    assert_eq!(s.log_level, 2);
    assert_eq!(s.client_buffer_size, 8192);
    assert_eq!(s.client_maxconn, 50000);
    assert!(!s.allow_compression);
    assert_eq!(s.routesfile, Some(cwd.join("routes")));
    assert!(!s.debug && !s.auto_cross_origin && !s.accept_x_forwarded_protocol);
    assert_eq!(s.set_x_forwarded_protocol, XfpMode::ProtoOnly);
    assert!(s.x_forwarded_for.is_empty() && s.x_forwarded_for_trusted.is_empty());
    assert!(!s.accept_pushpin_route && !s.log_from && !s.log_user_agent);
    assert_eq!(s.sig_iss, "pushpin");
    assert_eq!(s.sig_key.as_deref(), Some("changeme"));
    assert_eq!(s.upstream_key, None);
    assert_eq!(s.workers, None);
    assert_eq!(s.prometheus_port, None);
    assert_eq!(s.push_in_spec.as_deref(), Some("tcp://127.0.0.1:5560"));
    assert_eq!(
        s.push_in_sub_specs,
        vec!["tcp://127.0.0.1:5562".to_string()]
    );
    assert!(!s.push_in_sub_connect);
    assert_eq!(s.push_in_http_addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(s.push_in_http_port, Some(5561));
    assert_eq!(s.push_in_http_max_headers_size, 10_000);
    assert_eq!(s.push_in_http_max_body_size, 1_000_000);
    assert_eq!(
        s.stats_spec,
        Some(format!("ipc://{}/pushpin-stats", cwd.join("run").display()))
    );
    assert_eq!(s.command_spec.as_deref(), Some("tcp://127.0.0.1:5563"));
    assert_eq!(s.message_rate, Some(2500));
    assert_eq!(s.message_hwm, Some(25000));
    assert_eq!(s.message_block_size, None);
    assert_eq!(s.message_wait_ms, 5000);
    assert_eq!(s.id_cache_ttl, 60);
    assert!(s.update_on_first_subscription);
    assert_eq!(s.connection_subscription_max, 20);
    assert_eq!(s.subscription_linger, 60);
    assert_eq!(s.stats_subscription_ttl, 60);
    assert_eq!(s.stats_report_interval, 10);
    assert_eq!(s.stats_format, StatsFormat::Tnetstring);
    assert_eq!(s.client_idle_timeout_ms, 60_000);
    assert_eq!(s.client_request_timeout_ms, 30_000);
    assert_eq!(s.client_max_body_size, None);
    assert_eq!(s.backend_connect_timeout_ms, 10_000);
    assert_eq!(s.backend_response_timeout_ms, 60_000);
    assert_eq!(s.backend_idle_timeout_ms, 60_000);
    assert_eq!(s.backend_pool_max_idle, 64);
    assert_eq!(s.backend_pool_idle_ms, 30_000);
    assert_eq!(s.shutdown_grace_ms, 10_000);
    assert_eq!(s.routes_check_interval_ms, 1000);

    let (_, warnings) = Settings::from_text(SHIPPED_CONFIG, "shipped", &cwd).expect("shipped");
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn absent_keys_take_code_defaults() {
    let (s, warnings) = read("");
    assert!(warnings.is_empty());
    let mut want = Settings::code_defaults(&dir());
    want.config_file = Some(dir().join("t.conf"));
    assert_eq!(s, want);
    // Where code and shipped defaults differ (spec section 2).
    assert!(s.http_ports.is_empty());
    assert_eq!(s.set_x_forwarded_protocol, XfpMode::None);
    assert_eq!(s.sig_key, None);
    assert_eq!(s.push_in_http_port, None);
    assert_eq!(s.message_rate, None);
    assert_eq!(s.message_hwm, None);
    assert_eq!(s.id_cache_ttl, 0);
    assert_eq!(s.push_in_spec, None);
    assert_eq!(s.stats_spec, None);

    // Empty values read as absent.
    let (s, _) = read("[runner]\nclient_maxconn=\n[handler]\nupdate_on_first_subscription=\n");
    assert_eq!(s.client_maxconn, 50000);
    assert!(s.update_on_first_subscription);
}

#[test]
fn templates_and_port_offset() {
    let (s, _) = read(
        "[global]\nrundir=rt\nlibdir=/opt/pp\nipc_prefix=x-\nport_offset=100\n\
         [handler]\npush_in_spec=tcp://*:5560\n\
         push_in_sub_specs=tcp://127.0.0.1:5562, ipc://{rundir}/{ipc_prefix}sub,tcp://[::1]:7000\n\
         stats_spec=ipc://{rundir}/{ipc_prefix}stats\n\
         command_spec=ipc://{libdir}/{nope}cmd\n\
         push_in_http_port=5561\n\
         [runner]\nhttp_port=7999\nlocal_ports={rundir}/{ipc_prefix}server\n",
    );
    let rundir = dir().join("rt");
    assert_eq!(s.rundir, rundir);
    assert_eq!(s.libdir, Some(PathBuf::from("/opt/pp")));
    assert_eq!(s.push_in_spec.as_deref(), Some("tcp://*:5660"));
    assert_eq!(
        s.push_in_sub_specs,
        vec![
            "tcp://127.0.0.1:5662".to_string(),
            format!("ipc://{}/x-sub", rundir.display()),
            "tcp://[::1]:7100".to_string(),
        ]
    );
    assert_eq!(
        s.stats_spec,
        Some(format!("ipc://{}/x-stats", rundir.display()))
    );
    assert_eq!(s.command_spec.as_deref(), Some("ipc:///opt/pp/{nope}cmd"));
    assert_eq!(s.push_in_http_port, Some(5661));
    assert_eq!(s.http_ports, vec!["0.0.0.0:7999".parse().expect("addr")]);
    assert_eq!(
        s.local_ports,
        vec![format!("{}/x-server", rundir.display())]
    );

    // Command-line overrides replace the file's values before anything is resolved.
    let opts = LoadOptions {
        ipc_prefix: Some("3-".to_string()),
        port_offset: Some(30),
    };
    let (s, _) = Settings::from_text_with(
        "[global]\nipc_prefix=x-\nport_offset=100\n[handler]\npush_in_spec=tcp://*:5560\n\
         push_in_http_port=5561\nstats_spec=ipc://{rundir}/{ipc_prefix}stats\n",
        "t.conf",
        &dir(),
        &opts,
    )
    .expect("overrides");
    assert_eq!((s.ipc_prefix.as_str(), s.port_offset), ("3-", 30));
    assert_eq!(s.push_in_spec.as_deref(), Some("tcp://*:5590"));
    assert_eq!(s.push_in_http_port, Some(5591));
    assert_eq!(
        s.stats_spec,
        Some(format!("ipc://{}/3-stats", dir().join("run").display()))
    );

    let (s, _) = read("[global]\nport_offset=5\n[handler]\npush_in_http_port=-1\n");
    assert_eq!(s.push_in_http_port, None);
    let (s, _) =
        read("[global]\nipc_prefix=\n[handler]\nstats_spec=ipc://{rundir}/{ipc_prefix}s\n");
    assert_eq!(s.ipc_prefix, "", "an empty ipc_prefix is kept");
    assert_eq!(
        s.stats_spec,
        Some(format!("ipc://{}/s", dir().join("run").display()))
    );

    let e = read_err("[global]\nport_offset=10\n[handler]\n\npush_in_spec=tcp://h:65530\n");
    assert_eq!((e.line, e.file.as_str()), (5, "t.conf"));
    let e = read_err("[global]\nport_offset=10\n[handler]\npush_in_http_port=65530\n");
    assert_eq!(e.line, 4);
}

#[test]
fn rundir_fallback_and_paths() {
    let (s, warnings) = read("[runner]\nrundir=/srv/run\n");
    assert_eq!(s.rundir, PathBuf::from("/srv/run"));
    assert_eq!(
        warnings,
        vec!["t.conf:2: [runner] rundir is deprecated, use [global] rundir".to_string()]
    );
    let (s, warnings) = read("[global]\nrundir=/a\n[runner]\nrundir=/b\n");
    assert_eq!(s.rundir, PathBuf::from("/a"));
    assert!(warnings.is_empty());

    let (s, _) = read(
        "[proxy]\nroutesfile=/etc/routes\nsig_key=file:keys/sig.pem\nupstream_key=base64:aGk=\n",
    );
    assert_eq!(s.routesfile, Some(PathBuf::from("/etc/routes")));
    assert_eq!(
        s.sig_key,
        Some(format!("file:{}", dir().join("keys/sig.pem").display()))
    );
    assert_eq!(s.upstream_key.as_deref(), Some("base64:aGk="));
    let (s, _) = read("[proxy]\nsig_key=\" spaced key \"\n");
    assert_eq!(
        s.sig_key.as_deref(),
        Some(" spaced key "),
        "quoted blanks are kept"
    );
    let (s, _) = read("[proxy]\nsig_key=file:/abs/key\n");
    assert_eq!(s.sig_key.as_deref(), Some("file:/abs/key"));
}

#[test]
fn value_readings_table() {
    let (s, _) = read(
        "[proxy]\nset_x_forwarded_protocol=true\nworkers=4\nprometheus_port=9000\n\
         prometheus_prefix=proxy_\n[handler]\nprometheus_prefix=handler_\n\
         message_rate=-1\nmessage_hwm=0\nmessage_block_size=0\n\
         push_in_http_addr=[::1]\n[runner]\nlog_level=4\n\
         [holdfast]\nclient_max_body_size=1048576\nbackend_pool_max_idle=8\n",
    );
    assert_eq!(s.set_x_forwarded_protocol, XfpMode::Both);
    assert_eq!(s.workers, Some(4));
    assert_eq!(s.prometheus_port.as_deref(), Some("9000"));
    assert_eq!(s.prometheus_prefix, "handler_");
    assert_eq!(s.message_rate, None);
    assert_eq!(s.message_hwm, Some(0));
    assert_eq!(s.message_block_size, None);
    assert_eq!(s.push_in_http_addr, "::1".parse::<IpAddr>().expect("ip"));
    assert_eq!(s.log_level, 4);
    assert_eq!(s.client_max_body_size, Some(1_048_576));
    assert_eq!(s.backend_pool_max_idle, 8);

    for (value, want) in [
        ("proto-only", XfpMode::ProtoOnly),
        ("false", XfpMode::None),
        ("TRUE", XfpMode::None),
        ("", XfpMode::None),
    ] {
        let (s, _) = read(&format!("[proxy]\nset_x_forwarded_protocol={value}\n"));
        assert_eq!(s.set_x_forwarded_protocol, want, "{value:?}");
    }
    for (value, want) in [
        ("yes", true),
        ("No", false),
        ("1", true),
        ("0", false),
        ("TRUE", true),
    ] {
        let (s, _) = read(&format!("[proxy]\ndebug={value}\n"));
        assert_eq!(s.debug, want, "{value:?}");
    }
    let (s, _) = read("[runner]\nlog_level=condure:4\n");
    assert_eq!(s.log_level, 2, "other services' levels do not apply");
    let (s, _) = read("[proxy]\nx_forwarded_for=\"truncate:2\" , append\n");
    assert_eq!(
        s.x_forwarded_for,
        vec![XffRule::Truncate(2), XffRule::Append]
    );
}

#[test]
fn type_errors_name_file_and_line() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "[runner]\nclient_maxconn=abc\n",
            2,
            "[runner] client_maxconn: expected",
        ),
        ("[runner]\n\nclient_maxconn=-5\n", 3, "non-negative"),
        ("[runner]\nclient_maxconn=0\n", 2, "at least 1"),
        ("[runner]\nclient_buffer_size=0\n", 2, "at least 1"),
        (
            "[runner]\nhttp_port=7999,localhost:80\n",
            2,
            "[runner] http_port",
        ),
        ("[runner]\nlog_level=verbose\n", 2, "log level"),
        ("[global]\nport_offset=70000\n", 2, "port_offset"),
        ("[proxy]\ndebug=maybe\n", 2, "true or false"),
        (
            "[proxy]\nx_forwarded_for=truncate:0,prepend\n",
            2,
            "\"prepend\"",
        ),
        ("[proxy]\nx_forwarded_for=truncate:-1\n", 2, "truncate:N"),
        ("[proxy]\nworkers=0\n", 2, "from 1 to"),
        ("[proxy]\nworkers=100000\n", 2, "from 1 to"),
        ("[proxy]\nsig_key=file:\n", 2, "without a path"),
        ("[handler]\nmessage_rate=-2\n", 2, "-1 or a non-negative"),
        (
            "[handler]\npush_in_http_port=70000\n",
            2,
            "not a valid port",
        ),
        ("[handler]\npush_in_http_addr=localhost\n", 2, "IP address"),
        ("[handler]\nstats_format=xml\n", 2, "tnetstring or json"),
        (
            "[holdfast]\nshutdown_grace_ms=1.5\n",
            2,
            "[holdfast] shutdown_grace_ms",
        ),
        (
            "[global]\nstats_connection_ttl=99999999999999999999\n",
            2,
            "integer",
        ),
    ];
    for (text, line, reason) in cases {
        let e = read_err(text);
        assert_eq!(e.file, "t.conf", "{text:?}");
        assert_eq!(e.line, *line, "{text:?}: {e}");
        assert!(e.reason.contains(reason), "{text:?}: {e}");
        assert!(e.to_string().starts_with(&format!("t.conf:{line}: ")));
    }
}

#[test]
fn unknown_and_unsupported_key_warnings() {
    let (_, warnings) = read(
        "stray=1\n[proxy]\ndebugg=true\nsockjs_url=http://x/sockjs.js\n\
         auto_cross_origin=false\norig_headers_need_mark=\nupdates_check=off\n\
         condure_in_specs=ipc://{rundir}/x\nhandler_inspect_spec=ipc://x\nstats_spec=ipc://y\n\
         [handler]\nproxy_accept_spec=ipc://z\nshare_all=true\nstate_spec=\n\
         [Proxy]\ndebug=true\n[runner]\nallow_compression=true\nhttps_ports=443\n",
    );
    assert_eq!(
        warnings,
        vec![
            "t.conf:1: unknown key [General] stray, ignored",
            "t.conf:3: unknown key [proxy] debugg, ignored",
            "t.conf:4: [proxy] sockjs_url is not supported by holdfast yet, ignored",
            "t.conf:13: [handler] share_all is not supported by holdfast yet, ignored",
            "t.conf:16: unknown key [Proxy] debug, ignored",
            "t.conf:18: [runner] allow_compression is not supported by holdfast yet, ignored",
            "t.conf:19: [runner] https_ports is not supported by holdfast yet, ignored",
        ]
    );
    // Every unsupported key is listed, and none is also claimed as supported.
    for (section, key) in UNSUPPORTED_KEYS {
        assert_eq!(classify(section, key), KeyKind::Unsupported);
        let claimed = SUPPORTED_KEYS
            .iter()
            .any(|(s, keys)| s == section && keys.contains(key));
        assert!(!claimed, "[{section}] {key}");
    }
    let (s, _) = read("[runner]\nhttps_ports=443,8443\n");
    assert_eq!(s.https_ports, vec!["443".to_string(), "8443".to_string()]);
}

#[test]
fn debian_internal_conf_keys_are_known() {
    let path = Path::new("/usr/lib/pushpin/internal.conf");
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let ini = Ini::parse(&text, "internal.conf").expect("internal.conf parses");
    assert!(!ini.is_empty());
    for (section, key, _, line) in ini.keys() {
        assert_eq!(
            classify(section, key),
            KeyKind::Ignored,
            "internal.conf:{line} [{section}] {key}"
        );
    }
}

/// xorshift64: deterministic, dependency-free pseudo-random numbers.
use crate::test_rng::XorShift64 as Rng;

const PIECES: &[&str] = &[
    "[",
    "]",
    "[global]",
    "[proxy]",
    "[handler]",
    "[runner]",
    "[holdfast]",
    "[General]",
    "=",
    "\n",
    "\r\n",
    ",",
    "\"",
    "\\",
    "\\x",
    "\\0",
    ";",
    "#",
    " ",
    "\t",
    "{rundir}",
    "{libdir}",
    "{ipc_prefix}",
    "{",
    "}",
    "tcp://",
    "ipc://",
    ":",
    "-1",
    "0",
    "1",
    "65535",
    "70000",
    "99999999999999999999",
    "true",
    "no",
    "truncate:",
    "append",
    "include",
    "port_offset",
    "http_port",
    "log_level",
    "proxy:",
    "x_forwarded_for",
    "push_in_http_port",
    "sig_key",
    "file:",
    "rundir",
    "workers",
    "message_block_size",
    "stats_format",
    "json",
    "[::1]",
    "127.0.0.1",
    "é",
    "\u{feff}",
    "\0",
    "@@",
    "@String(",
];

#[test]
fn random_inputs_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let supported: Vec<&str> = SUPPORTED_KEYS
        .iter()
        .flat_map(|(_, keys)| keys.iter().copied())
        .collect();
    for round in 0..4000 {
        let mut text = String::new();
        if round % 2 == 0 {
            // Token soup.
            for _ in 0..rng.below(120) {
                match rng.below(4) {
                    0 => text.push_str(supported[rng.below(supported.len())]),
                    1 => text.push(char::from_u32(rng.below(0x250) as u32).unwrap_or('?')),
                    _ => text.push_str(PIECES[rng.below(PIECES.len())]),
                }
            }
        } else {
            // Mutations of a realistic file.
            text.push_str(FULL_CONF);
            for _ in 0..1 + rng.below(8) {
                let mut at = rng.below(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                let piece = PIECES[rng.below(PIECES.len())];
                if rng.below(2) == 0 {
                    text.insert_str(at, piece);
                } else {
                    let mut end = (at + rng.below(16)).min(text.len());
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    text.replace_range(at..end, piece);
                }
            }
        }
        let _ = Ini::parse(&text, "fuzz.conf");
        if let Ok((s, _)) = Settings::from_text(&text, "fuzz.conf", &dir()) {
            // Whatever was accepted is internally consistent.
            assert!(s.client_buffer_size > 0 && s.client_maxconn > 0);
            assert!(s.workers.is_none_or(|w| (1..=WORKERS_MAX).contains(&w)));
            assert!(s.message_block_size != Some(0));
        }
    }
}

#[test]
fn handler_ipc_file_mode_is_octal() {
    let (s, warnings) = read("[handler]\nipc_file_mode=660\n");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(s.ipc_file_mode, Some(0o660));
    assert_eq!(read("").0.ipc_file_mode, None);
    for bad in ["8", "rw", "-1", "77777"] {
        let text = format!("[handler]\nipc_file_mode={bad}\n");
        let err = read_err(&text).to_string();
        assert!(err.contains("ipc_file_mode"), "{bad}: {err}");
    }
}
