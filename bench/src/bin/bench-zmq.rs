//! bench-zmq: measures how fast a proxy takes published items in over ZeroMQ and delivers them to
//! held HTTP streams.
//!
//! Opens `--streams` held streams through the proxy (the `hub` client that bench-fanout uses),
//! then publishes over the proxy's ZeroMQ input named by `--socket`:
//! - `pull`: a PUSH socket connects to the proxy's PULL (`push_in_spec`); one frame per item,
//!   `J` + JSON naming the channel;
//! - `sub`: an XPUB socket connects to the proxy's bound SUB (`push_in_sub_specs`); two frames per
//!   item, the channel and `J` + JSON. Nothing is published before the proxy's subscription for
//!   every channel in use has arrived on the XPUB, so no item is lost to a subscription that is
//!   still on its way.
//!
//! With `--channels one` every stream listens on one channel and every item goes to all of them;
//! with `distinct` stream i listens on `z<i>-` and item k goes to stream `k % streams` alone.
//!
//! Before measuring, a priming item is published (again every second) until every stream has
//! received one. Then `--items` items (`m <seq> <sent_ns> <padding>` lines) are sent flat out by
//! one thread, each stamped just before it is handed to the socket. The run ends when every stream
//! has every item meant for it, or `--quiet` seconds pass with no delivery after the last send, or
//! `--drain-max` after it. One JSON line goes to stdout.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use holdfast_bench::grip::{zmq_stream_frame, zmq_stream_frame_into};
use holdfast_bench::hub::{nanos_since, open_streams, secs_between, us, Cpu, Hub, Mode, Seen};
use holdfast_bench::Options;

const STREAMS_MAX: usize = 20_000;
const ITEMS_MAX: u64 = 10_000_000;
/// Bits of the "which items arrived" map; streams × items may not exceed it (one channel).
const SEEN_BITS_MAX: u64 = 1 << 31;
const CONCURRENCY_MAX: usize = 20_000;
const OPEN_ATTEMPTS_MAX: u32 = 10;
const SIZE_MAX: usize = 16 * 1024;
/// How often an unanswered priming item is published again.
const PRIME_EVERY: Duration = Duration::from_secs(1);
/// How long a PUSH or XPUB socket may keep unsent items when it closes.
const LINGER_MS: i32 = 1000;

const USAGE: &str = "usage: bench-zmq --target IP:PORT --socket pull|sub --spec tcp://IP:PORT
        [--channels one|distinct] [--streams 1000] [--items 10000] [--size 100]
        [--path /stream] [--channel bench] [--concurrency 1000] [--open-attempts 3]
        [--open-timeout 30] [--open-max 300] [--prime-timeout 60] [--quiet 30] [--drain-max 300]
        [--proxy-pid PID] [--clk-tck 100]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    Pull,
    Sub,
}

impl Input {
    fn as_str(self) -> &'static str {
        match self {
            Input::Pull => "pull",
            Input::Sub => "sub",
        }
    }
}

struct Settings {
    target: SocketAddr,
    input: Input,
    spec: String,
    distinct: bool,
    streams: usize,
    items: u64,
    size: usize,
    path: String,
    channel: String,
    concurrency: usize,
    open_attempts: u32,
    open_timeout: Duration,
    open_max: Duration,
    prime_timeout: Duration,
    quiet: Duration,
    drain_max: Duration,
    cpu: Cpu,
    epoch: Instant,
}

impl Settings {
    /// The channel stream `idx` listens on.
    fn channel_of(&self, idx: usize) -> String {
        if self.distinct {
            // The trailing `-` keeps one channel from being a prefix of another: ZeroMQ
            // subscriptions match prefixes.
            format!("z{idx}-")
        } else {
            self.channel.clone()
        }
    }

    fn channels(&self) -> Vec<String> {
        if self.distinct {
            (0..self.streams).map(|i| self.channel_of(i)).collect()
        } else {
            vec![self.channel.clone()]
        }
    }
}

/// The publishing side: a PUSH or an XPUB socket, connected.
struct Publisher {
    input: Input,
    sock: zmq::Socket,
}

impl Publisher {
    fn connect(ctx: &zmq::Context, input: Input, spec: &str) -> Result<Publisher, String> {
        let zerr = |e: zmq::Error| format!("{} socket {spec}: {e}", input.as_str());
        let sock = match input {
            Input::Pull => ctx.socket(zmq::PUSH).map_err(zerr)?,
            Input::Sub => {
                let s = ctx.socket(zmq::XPUB).map_err(zerr)?;
                // A PUB side drops what exceeds its high-water mark; unbounded, it keeps all.
                s.set_sndhwm(0).map_err(zerr)?;
                s
            }
        };
        sock.set_linger(LINGER_MS).map_err(zerr)?;
        sock.connect(spec).map_err(zerr)?;
        Ok(Publisher { input, sock })
    }

    /// Sends one `http-stream` item; blocks while a PUSH socket's queue is full.
    fn send(&self, channel: &str, content: &str) -> Result<(), zmq::Error> {
        match self.input {
            Input::Pull => self.sock.send(zmq_stream_frame(Some(channel), content), 0),
            Input::Sub => self.sock.send_multipart(
                [channel.as_bytes().to_vec(), zmq_stream_frame(None, content)],
                0,
            ),
        }
    }

    /// Sends one measured item, `message('m', seq, sent_ns, size)` as an `http-stream` item, built in
    /// `buf` (reused) and copied into the socket's own message.
    fn send_item(
        &self,
        buf: &mut Vec<u8>,
        channel: &str,
        seq: u64,
        sent_ns: u64,
        size: usize,
    ) -> Result<(), zmq::Error> {
        match self.input {
            Input::Pull => {
                zmq_stream_frame_into(buf, Some(channel), 'm', seq, sent_ns, size);
                self.sock.send(&buf[..], 0)
            }
            Input::Sub => {
                zmq_stream_frame_into(buf, None, 'm', seq, sent_ns, size);
                self.sock.send(channel.as_bytes(), zmq::SNDMORE)?;
                self.sock.send(&buf[..], 0)
            }
        }
    }

    /// XPUB only: reads the subscription messages that have arrived and adds the subscribed
    /// channels to `subscribed`.
    fn take_subscriptions(&self, subscribed: &mut std::collections::HashSet<Vec<u8>>) {
        loop {
            match self.sock.recv_bytes(zmq::DONTWAIT) {
                Ok(frame) => match frame.split_first() {
                    Some((1, name)) => {
                        subscribed.insert(name.to_vec());
                    }
                    Some((0, name)) => {
                        subscribed.remove(name);
                    }
                    _ => {}
                },
                Err(zmq::Error::EINTR) => continue,
                Err(_) => return,
            }
        }
    }
}

/// What the publishing thread did.
struct Sent {
    items: u64,
    errors: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

/// Sends the items, then hands the socket back: closing it before the proxy has read everything
/// would discard what is still queued in it once its linger runs out.
fn publish(
    p: Publisher,
    channels: Vec<String>,
    items: u64,
    size: usize,
    epoch: Instant,
) -> (Sent, Publisher) {
    let mut sent = Sent {
        items: 0,
        errors: 0,
        first: None,
        last: None,
    };
    let mut buf = Vec::new();
    for seq in 0..items {
        let now = Instant::now();
        sent.first.get_or_insert(now);
        let channel = channels
            .get((seq % channels.len().max(1) as u64) as usize)
            .map_or("", String::as_str);
        match p.send_item(&mut buf, channel, seq, nanos_since(epoch, now), size) {
            Ok(()) => sent.items += 1,
            Err(_) => sent.errors += 1,
        }
    }
    sent.last = Some(Instant::now());
    (sent, p)
}

fn run_bench(s: &Settings) -> Result<String, String> {
    let channels = s.channels();
    let seen_bits = if s.distinct {
        s.items
    } else {
        (s.streams as u64).saturating_mul(s.items)
    };
    if seen_bits > SEEN_BITS_MAX {
        return Err(format!(
            "--streams x --items must be at most {SEEN_BITS_MAX}"
        ));
    }
    let ctx = zmq::Context::new();
    let publisher = Publisher::connect(&ctx, s.input, &s.spec)?;

    let requests: Vec<Vec<u8>> = if s.distinct {
        (0..s.streams)
            .map(|i| stream_request(s, &s.channel_of(i)))
            .collect()
    } else {
        vec![stream_request(s, &s.channel)]
    };
    let mut hub = Hub::new(
        Mode::Streams,
        s.target,
        requests,
        s.streams,
        s.concurrency,
        s.epoch,
    )
    .map_err(|e| e.to_string())?;
    hub.open_attempts = s.open_attempts;
    let opened = open_streams(&mut hub, s.open_max, s.open_timeout)?;
    eprintln!("bench-zmq: {} of {} streams open", hub.ctx.live, s.streams);

    // SUB: wait until the proxy has subscribed to every channel in use.
    let sub_started = Instant::now();
    let mut subscribed = std::collections::HashSet::new();
    let mut sub_complete = true;
    if s.input == Input::Sub {
        let wanted: Vec<Vec<u8>> = channels.iter().map(|c| c.as_bytes().to_vec()).collect();
        sub_complete = hub
            .run_until(sub_started + s.prime_timeout, s.open_timeout, |_| {
                publisher.take_subscriptions(&mut subscribed);
                wanted.iter().all(|c| subscribed.contains(c))
            })
            .map_err(|e| format!("poll failed: {e}"))?;
        eprintln!(
            "bench-zmq: {} of {} channel subscriptions arrived in {:.2}s",
            wanted.iter().filter(|c| subscribed.contains(*c)).count(),
            wanted.len(),
            sub_started.elapsed().as_secs_f64()
        );
    }
    let subscribe_s = sub_started.elapsed().as_secs_f64();

    // Prime: until every open stream has received an item, so no stream is still being set up.
    let prime_started = Instant::now();
    let prime_deadline = prime_started + s.prime_timeout;
    let mut rounds = 0u32;
    while hub.ctx.primed < hub.ctx.live && Instant::now() < prime_deadline {
        let line = format!("p {rounds}\n");
        for (i, channel) in channels.iter().enumerate() {
            // Distinct channels: only the streams still waiting need another priming item.
            let waiting = !s.distinct || hub.conns.get(i).is_some_and(|c| !c.primed);
            if waiting {
                publisher
                    .send(channel, &line)
                    .map_err(|e| format!("priming send failed: {e}"))?;
            }
        }
        rounds += 1;
        let until = (Instant::now() + PRIME_EVERY).min(prime_deadline);
        hub.run_until(until, s.open_timeout, |h| h.ctx.primed >= h.ctx.live)
            .map_err(|e| format!("poll failed: {e}"))?;
    }
    let prime_s = prime_started.elapsed().as_secs_f64();
    let unprimed = hub.ctx.live.saturating_sub(hub.ctx.primed);
    let live_at_start = hub.ctx.live;
    let drops_before = hub.ctx.drops.total;
    eprintln!(
        "bench-zmq: primed in {rounds} round(s), {prime_s:.2}s; {unprimed} stream(s) unprimed; \
sending {} items over {}",
        s.items,
        s.input.as_str()
    );
    // Late priming items must not count as measured deliveries: they are `p` lines, not `m`.

    let seen = if s.distinct {
        Seen::routed(s.streams, s.items)
    } else {
        Seen::new(s.streams, s.items)
    };
    let expected = if s.distinct {
        // Items for a stream that is not open cannot arrive.
        (0..s.items)
            .filter(|k| {
                let idx = (k % s.streams as u64) as usize;
                hub.conns
                    .get(idx)
                    .is_some_and(|c| c.phase == holdfast_bench::hub::Phase::Open)
            })
            .count() as u64
    } else {
        seen.expected(live_at_start)
    };
    hub.ctx.seen = Some(seen);
    let cpu_start = s.cpu.sample();
    let sender: JoinHandle<(Sent, Publisher)> = {
        let (items, size, epoch) = (s.items, s.size, s.epoch);
        let channels = channels.clone();
        std::thread::Builder::new()
            .name("zmq-publish".to_string())
            .spawn(move || publish(publisher, channels, items, size, epoch))
            .map_err(|e| e.to_string())?
    };
    let hard_deadline = Instant::now() + s.drain_max + Duration::from_secs(600);
    let mut sent_at: Option<Instant> = None;
    let (quiet, drain_max) = (s.quiet, s.drain_max);
    let complete = hub
        .run_until(hard_deadline, s.open_timeout, |h| {
            let now = Instant::now();
            if sent_at.is_none() && sender.is_finished() {
                sent_at = Some(now);
            }
            h.deliveries_done(expected, sent_at, now, quiet, drain_max)
        })
        .map_err(|e| format!("poll failed: {e}"))?;
    let cpu_end = s.cpu.sample();
    let (sent, publisher) = sender
        .join()
        .map_err(|_| "the publishing thread panicked".to_string())?;
    // The run is over: whatever the proxy has not read by now is not waited for.
    let _ = publisher.sock.set_linger(0);
    drop(publisher);
    let seen = hub.ctx.seen.take().ok_or("lost the delivery map")?;
    let window = secs_between(sent.first, seen.last_at);
    let per_s = |n: u64| {
        if window > 0.0 {
            n as f64 / window
        } else {
            0.0
        }
    };
    let send_s = secs_between(sent.first, sent.last);
    let (cpu_json, proxy_cpu) = s.cpu.json(cpu_start, cpu_end);
    let cpu_per_item = match proxy_cpu {
        Some(c) if sent.items > 0 => format!("{:.2}", c * 1e6 / sent.items as f64),
        _ => "null".to_string(),
    };
    let cpu_per_delivery = match proxy_cpu {
        Some(c) if seen.unique > 0 => format!("{:.3}", c * 1e6 / seen.unique as f64),
        _ => "null".to_string(),
    };
    let all_done = complete && seen.unique >= expected;
    let mut out = String::from("{\"scenario\":\"zmq\",");
    let _ = write!(
        out,
        "\"socket\":\"{}\",\"channels\":\"{}\",",
        s.input.as_str(),
        if s.distinct { "distinct" } else { "one" }
    );
    out.push_str(&opened);
    let _ = write!(
        out,
        ",\"subscribe_s\":{subscribe_s:.3},\"subscriptions_complete\":{sub_complete},\
\"prime_rounds\":{rounds},\"prime_s\":{prime_s:.3},\"unprimed\":{unprimed},\
\"streams_measured\":{live_at_start},\"items\":{},\"size\":{},\"sent\":{},\"send_errors\":{},\
\"send_s\":{send_s:.3},\"send_per_s\":{:.1},\"expected\":{expected},\"received\":{},\"lost\":{},\
\"duplicates\":{},\"misrouted\":{},\"unknown\":{},\"other_lines\":{},\"dropped_streams\":{},\
\"drop_kinds\":{},\"first_delivery_s\":{:.3},\"window_s\":{window:.3},\"items_per_s\":{:.1},\"deliveries_per_s\":{:.1},\
\"p50_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1},\"complete\":{all_done},{cpu_json},\
\"proxy_cpu_us_per_item\":{cpu_per_item},\"proxy_cpu_us_per_delivery\":{cpu_per_delivery}}}",
        s.items,
        s.size,
        sent.items,
        sent.errors,
        if send_s > 0.0 {
            sent.items as f64 / send_s
        } else {
            0.0
        },
        seen.unique,
        expected.saturating_sub(seen.unique),
        seen.duplicates,
        seen.misrouted,
        seen.unknown,
        hub.ctx.other_lines,
        hub.ctx.drops.total.saturating_sub(drops_before),
        hub.ctx.drops.json(),
        secs_between(sent.first, seen.first_at),
        per_s(sent.items),
        per_s(seen.unique),
        us(seen.hist.quantile(0.5)),
        us(seen.hist.quantile(0.99)),
        us(seen.hist.max()),
    );
    hub.close_all();
    Ok(out)
}

fn stream_request(s: &Settings, channel: &str) -> Vec<u8> {
    format!(
        "GET {}?channel={} HTTP/1.1\r\nHost: {}\r\nUser-Agent: holdfast-bench\r\n\r\n",
        s.path, channel, s.target
    )
    .into_bytes()
}

// --- command line ----------------------------------------------------------------------------

fn plain(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 128
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
}

fn parse_settings() -> Result<Option<Settings>, String> {
    let valued = [
        "--target",
        "--socket",
        "--spec",
        "--channels",
        "--streams",
        "--items",
        "--size",
        "--path",
        "--channel",
        "--concurrency",
        "--open-attempts",
        "--open-timeout",
        "--open-max",
        "--prime-timeout",
        "--quiet",
        "--drain-max",
        "--proxy-pid",
        "--clk-tck",
    ];
    let opts = Options::parse(std::env::args().skip(1), &valued, &["--help"])
        .map_err(|e| format!("{e}\n{USAGE}"))?;
    if opts.flag("--help") {
        println!("{USAGE}");
        return Ok(None);
    }
    let num = |name: &str, default: usize| -> Result<usize, String> {
        opts.number(name, default).map_err(|e| e.to_string())
    };
    let target: SocketAddr = opts
        .value("--target")
        .ok_or(format!("--target is required\n{USAGE}"))?
        .parse()
        .map_err(|_| "--target must be IP:PORT".to_string())?;
    let input = match opts.value("--socket") {
        Some("pull") => Input::Pull,
        Some("sub") => Input::Sub,
        _ => return Err(format!("--socket must be pull or sub\n{USAGE}")),
    };
    let spec = opts
        .value("--spec")
        .ok_or(format!("--spec is required\n{USAGE}"))?
        .to_string();
    if !(spec.starts_with("tcp://") || spec.starts_with("ipc://")) {
        return Err("--spec must be a tcp:// or ipc:// endpoint".to_string());
    }
    let distinct = match opts.value("--channels").unwrap_or("one") {
        "one" => false,
        "distinct" => true,
        other => return Err(format!("--channels must be one or distinct, not {other:?}")),
    };
    let path = opts.value("--path").unwrap_or("/stream").to_string();
    let channel = opts.value("--channel").unwrap_or("bench").to_string();
    if !path.starts_with('/') || !plain(&path) || !plain(&channel) || channel.contains('/') {
        return Err("--path and --channel must be plain names (letters, digits, -_./)".to_string());
    }
    let s = Settings {
        target,
        input,
        spec,
        distinct,
        streams: num("--streams", 1000)?,
        items: opts
            .number("--items", 10_000u64)
            .map_err(|e| e.to_string())?,
        size: num("--size", 100)?,
        path,
        channel,
        concurrency: num("--concurrency", 1000)?,
        open_attempts: opts
            .number("--open-attempts", 3u32)
            .map_err(|e| e.to_string())?,
        open_timeout: opts.seconds("--open-timeout", 30.0)?,
        open_max: opts.seconds("--open-max", 300.0)?,
        prime_timeout: opts.seconds("--prime-timeout", 60.0)?,
        quiet: opts.seconds("--quiet", 30.0)?,
        drain_max: opts.seconds("--drain-max", 300.0)?,
        cpu: Cpu::from_options(&opts)?,
        epoch: Instant::now(),
    };
    if s.streams == 0 || s.streams > STREAMS_MAX {
        return Err(format!("--streams must be 1..={STREAMS_MAX}"));
    }
    if s.items == 0 || s.items > ITEMS_MAX {
        return Err(format!("--items must be 1..={ITEMS_MAX}"));
    }
    if s.size > SIZE_MAX {
        return Err(format!("--size must be at most {SIZE_MAX}"));
    }
    if s.concurrency == 0 || s.concurrency > CONCURRENCY_MAX {
        return Err(format!("--concurrency must be 1..={CONCURRENCY_MAX}"));
    }
    if s.open_attempts == 0 || s.open_attempts > OPEN_ATTEMPTS_MAX {
        return Err(format!("--open-attempts must be 1..={OPEN_ATTEMPTS_MAX}"));
    }
    if s.open_timeout.is_zero() {
        return Err("--open-timeout must be above 0".to_string());
    }
    Ok(Some(s))
}

fn main() -> ExitCode {
    let result = parse_settings().and_then(|s| match s {
        Some(s) => run_bench(&s).map(|line| println!("{line}")),
        None => Ok(()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-zmq: {e}");
            ExitCode::FAILURE
        }
    }
}
