//! bench-fanout: measures GRIP delivery through a proxy, in one of three scenarios.
//!
//! - `fanout`: holds `--subscribers` streams on one channel, primes them (publishes until every
//!   stream has received a message, so every subscription is live), then publishes `--publishes`
//!   messages flat out, one POST each (`--publish-parallel` POSTs in flight, 1 = sequential), and
//!   counts what every stream receives: deliveries/s, loss, publish-to-receive latency.
//! - `idle`: holds `--subscribers` streams, reports how fast they opened, writes `--ready-file`,
//!   keeps them until `--release-file` appears (or `--hold-max`), then closes them all.
//! - `longpoll`: `--clients` connections each long-polling its own channel `lp-<i>` and polling
//!   again as soon as a response arrives, while a publisher posts one response per channel per
//!   round (`--batch` items per POST) flat out; counts completed cycles.
//!
//! Streams live on one thread and one `mio::Poll`; at most `--concurrency` opens are in flight.
//! Publishers are blocking threads. Every phase has a deadline. One JSON line goes to stdout.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use holdfast_bench::grip::{message, publish_request, response_items, stream_items};
use holdfast_bench::hub::{
    nanos_since, open_streams, secs_between, us, Cpu, Hub, Kinds, Mode, Phase, Seen,
};
use holdfast_bench::{Options, ResponseFramer};

const STREAMS_MAX: usize = 60_000;
const PUBLISHES_MAX: u64 = 1_000_000;
/// Bits of the per-stream "which messages arrived" map; subscribers × publishes may not exceed it.
const SEEN_BITS_MAX: u64 = 1 << 30;
const CONCURRENCY_MAX: usize = 20_000;
/// Most attempts at opening one stream (`--open-attempts`).
const OPEN_ATTEMPTS_MAX: u32 = 10;
const PUBLISH_PARALLEL_MAX: usize = 64;
const BATCH_MAX: usize = 10_000;
/// Largest control API response read; its status is all that matters.
const REPLY_MAX: usize = 64 * 1024;
/// Priming publishes before giving up on streams that have not received one.
const PRIME_ROUNDS_MAX: u32 = 3;

const USAGE: &str = "usage: bench-fanout --scenario fanout|idle|longpoll --target IP:PORT
        [--control IP:PORT] [--path /stream] [--channel bench] [--subscribers 5000]
        [--publishes 200] [--publish-parallel 1] [--size 100] [--concurrency 1000]
        [--open-attempts 3] [--open-timeout 30] [--open-max 300] [--prime-timeout 30] [--quiet 5] [--drain-max 120]
        [--ready-file F] [--release-file F] [--hold-max 300]
        [--clients 500] [--duration 10] [--warmup 1] [--batch 100] [--round-gap 0] [--timeout 10]
        [--proxy-pid PID] [--clk-tck 100]";

// --- publishing ------------------------------------------------------------------------------

/// One POST to the control API on a fresh connection; the status of its answer.
fn post(addr: SocketAddr, request: &[u8], timeout: Duration) -> Result<u16, String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("publish connect: {}", e.kind()))?;
    let _ = s.set_nodelay(true);
    s.set_read_timeout(Some(timeout))
        .and_then(|()| s.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("publish socket: {}", e.kind()))?;
    s.write_all(request)
        .map_err(|e| format!("publish write: {}", e.kind()))?;
    let mut framer = ResponseFramer::new();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(0) => {
                return framer
                    .on_eof()
                    .map(|d| d.status)
                    .ok_or_else(|| "publish: closed before the answer".to_string())
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("publish read: {}", e.kind())),
        };
        got.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        let (used, done) = framer
            .feed(&got)
            .map_err(|e| format!("publish answer: {e}"))?;
        if let Some(d) = done {
            return Ok(d.status);
        }
        got.drain(..used.min(got.len()));
        if got.len() > REPLY_MAX {
            return Err("publish answer too large".to_string());
        }
    }
}

#[derive(Default)]
struct PublishTally {
    posts: u64,
    items: u64,
    failed: Kinds,
    first_sent: Option<Instant>,
    last_done: Option<Instant>,
}

impl PublishTally {
    fn merge(&mut self, other: PublishTally) {
        self.posts += other.posts;
        self.items += other.items;
        for (k, n) in other.failed.list {
            self.failed.add(&k, n);
        }
        self.first_sent = match (self.first_sent, other.first_sent) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_done = self.last_done.max(other.last_done);
    }

    fn note(&mut self, result: Result<u16, String>) {
        match result {
            Ok(200) => {}
            Ok(code) => self.failed.note(&format!("publish status {code}")),
            Err(kind) => self.failed.note(&kind),
        }
    }
}

struct Control {
    addr: SocketAddr,
    host: String,
    timeout: Duration,
}

/// Publishes `m` messages `0..publishes` on `channel`, seqs `lane, lane+lanes, ...`, one POST each.
fn publish_lane(
    ctl: Arc<Control>,
    epoch: Instant,
    channel: String,
    publishes: u64,
    size: usize,
    lane: u64,
    lanes: u64,
) -> PublishTally {
    let mut tally = PublishTally::default();
    let mut seq = lane;
    while seq < publishes {
        let now = Instant::now();
        tally.first_sent.get_or_insert(now);
        let content = message('m', seq, nanos_since(epoch, now), size);
        let body = stream_items(&channel, &[content]);
        let result = post(ctl.addr, &publish_request(&ctl.host, &body), ctl.timeout);
        tally.posts += 1;
        tally.items += 1;
        tally.note(result);
        tally.last_done = Some(Instant::now());
        seq += lanes;
    }
    tally
}

/// How the long-poll publisher paces itself.
struct Rounds {
    clients: usize,
    batch: usize,
    size: usize,
    /// Pause after each round; zero publishes flat out.
    gap: Duration,
}

/// Posts one response per channel `lp-0..clients`, `batch` items per POST, round after round,
/// until `stop` or `deadline`.
fn publish_rounds(
    ctl: Arc<Control>,
    epoch: Instant,
    rounds: Rounds,
    stop: Arc<AtomicBool>,
    deadline: Instant,
) -> PublishTally {
    let Rounds {
        clients,
        batch,
        size,
        gap,
    } = rounds;
    let mut tally = PublishTally::default();
    let channels: Vec<String> = (0..clients).map(|i| format!("lp-{i}")).collect();
    let mut seq = 0u64;
    'rounds: loop {
        for group in channels.chunks(batch.max(1)) {
            let now = Instant::now();
            if stop.load(Ordering::Relaxed) || now >= deadline {
                break 'rounds;
            }
            tally.first_sent.get_or_insert(now);
            let sent = nanos_since(epoch, now);
            let items: Vec<(String, String)> = group
                .iter()
                .map(|c| {
                    seq += 1;
                    (c.clone(), message('r', seq, sent, size))
                })
                .collect();
            let body = response_items(&items);
            let result = post(ctl.addr, &publish_request(&ctl.host, &body), ctl.timeout);
            let failed = !matches!(result, Ok(200));
            tally.posts += 1;
            tally.items += items.len() as u64;
            tally.note(result);
            tally.last_done = Some(Instant::now());
            if failed {
                // A control API that refuses should not be hammered in a tight loop.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if !gap.is_zero() {
            std::thread::sleep(gap.min(deadline.saturating_duration_since(Instant::now())));
        }
    }
    tally
}

// --- scenarios -------------------------------------------------------------------------------

struct Settings {
    target: SocketAddr,
    control: Option<SocketAddr>,
    path: String,
    channel: String,
    subscribers: usize,
    publishes: u64,
    publish_parallel: usize,
    size: usize,
    concurrency: usize,
    open_attempts: u32,
    open_timeout: Duration,
    open_max: Duration,
    prime_timeout: Duration,
    quiet: Duration,
    drain_max: Duration,
    ready_file: Option<String>,
    release_file: Option<String>,
    hold_max: Duration,
    clients: usize,
    duration: Duration,
    warmup: Duration,
    batch: usize,
    round_gap: Duration,
    timeout: Duration,
    cpu: Cpu,
    epoch: Instant,
}

fn stream_request(s: &Settings, channel: &str) -> Vec<u8> {
    format!(
        "GET {}?channel={} HTTP/1.1\r\nHost: {}\r\nUser-Agent: holdfast-bench\r\n\r\n",
        s.path, channel, s.target
    )
    .into_bytes()
}

fn control(s: &Settings) -> Result<Arc<Control>, String> {
    let addr = s.control.ok_or("--control is required for this scenario")?;
    Ok(Arc::new(Control {
        addr,
        host: addr.to_string(),
        timeout: Duration::from_secs(10),
    }))
}

fn fanout(s: &Settings) -> Result<String, String> {
    let ctl = control(s)?;
    let seen_bits = (s.subscribers as u64).saturating_mul(s.publishes);
    if seen_bits > SEEN_BITS_MAX {
        return Err(format!(
            "--subscribers x --publishes must be at most {SEEN_BITS_MAX}"
        ));
    }
    let request = stream_request(s, &s.channel);
    let mut hub = Hub::new(
        Mode::Streams,
        s.target,
        vec![request],
        s.subscribers,
        s.concurrency,
        s.epoch,
    )
    .map_err(|e| e.to_string())?;
    hub.open_attempts = s.open_attempts;
    let opened = open_streams(&mut hub, s.open_max, s.open_timeout)?;
    eprintln!(
        "bench-fanout: {} of {} streams open",
        hub.ctx.live, s.subscribers
    );

    // Prime: publish until every open stream has received something, so the measurement does not
    // race subscriptions that the proxy has not finished setting up.
    let mut rounds = 0;
    let prime_started = Instant::now();
    while rounds < PRIME_ROUNDS_MAX && hub.ctx.primed < hub.ctx.live {
        let body = stream_items(&s.channel, &[format!("p {rounds}\n")]);
        let result = post(ctl.addr, &publish_request(&ctl.host, &body), ctl.timeout);
        if !matches!(result, Ok(200)) {
            return Err(format!("priming publish failed: {result:?}"));
        }
        rounds += 1;
        let deadline = Instant::now() + s.prime_timeout;
        hub.run_until(deadline, s.open_timeout, |h| h.ctx.primed >= h.ctx.live)
            .map_err(|e| format!("poll failed: {e}"))?;
    }
    let prime_s = prime_started.elapsed().as_secs_f64();
    let unprimed = hub.ctx.live.saturating_sub(hub.ctx.primed);
    let live_at_start = hub.ctx.live;
    let drops_before = hub.ctx.drops.total;
    eprintln!(
        "bench-fanout: primed in {rounds} round(s), {prime_s:.2}s; {unprimed} stream(s) unprimed; publishing {}",
        s.publishes
    );

    hub.ctx.seen = Some(Seen::new(s.subscribers, s.publishes));
    let cpu_start = s.cpu.sample();
    let lanes = s.publish_parallel as u64;
    let mut publishers: Vec<JoinHandle<PublishTally>> = Vec::new();
    for lane in 0..lanes {
        let ctl = Arc::clone(&ctl);
        let (epoch, channel, publishes, size) = (s.epoch, s.channel.clone(), s.publishes, s.size);
        let handle = std::thread::Builder::new()
            .name(format!("publish-{lane}"))
            .spawn(move || publish_lane(ctl, epoch, channel, publishes, size, lane, lanes))
            .map_err(|e| e.to_string())?;
        publishers.push(handle);
    }
    let expected = (live_at_start as u64).saturating_mul(s.publishes);
    // Publishing itself is bounded by the POST timeouts; the drain after it by --drain-max.
    let hard_deadline = Instant::now()
        + s.drain_max
        + Duration::from_secs(s.publishes.saturating_mul(20).min(86_400));
    let mut published_at: Option<Instant> = None;
    let quiet = s.quiet;
    let drain_max = s.drain_max;
    let complete = hub
        .run_until(hard_deadline, s.open_timeout, |h| {
            let now = Instant::now();
            if published_at.is_none() && publishers.iter().all(|p| p.is_finished()) {
                published_at = Some(now);
            }
            h.deliveries_done(expected, published_at, now, quiet, drain_max)
        })
        .map_err(|e| format!("poll failed: {e}"))?;
    let cpu_end = s.cpu.sample();
    let mut tally = PublishTally::default();
    for p in publishers {
        match p.join() {
            Ok(t) => tally.merge(t),
            Err(_) => return Err("a publisher thread panicked".to_string()),
        }
    }
    let seen = hub.ctx.seen.take().ok_or("lost the delivery map")?;
    let window = secs_between(tally.first_sent, seen.last_at);
    let rate = if window > 0.0 {
        seen.unique as f64 / window
    } else {
        0.0
    };
    let (cpu_json, proxy_cpu) = s.cpu.json(cpu_start, cpu_end);
    let cpu_per = match proxy_cpu {
        Some(c) if seen.unique > 0 => format!("{:.2}", c * 1e6 / seen.unique as f64),
        _ => "null".to_string(),
    };
    let mut out = String::from("{\"scenario\":\"fanout\",");
    out.push_str(&opened);
    let _ = write!(
        out,
        ",\"prime_rounds\":{rounds},\"prime_s\":{prime_s:.3},\"unprimed\":{unprimed},\
\"streams_measured\":{live_at_start},\"publishes\":{},\"publish_parallel\":{},\"size\":{},\
\"posts\":{},\"publish_errors\":{},\"publish_error_kinds\":{},\"publish_s\":{:.3},\
\"expected\":{expected},\"received\":{},\"lost\":{},\"duplicates\":{},\"unknown\":{},\
\"other_lines\":{},\"dropped_streams\":{},\"drop_kinds\":{},\"delivery_window_s\":{window:.3},\
\"deliveries_per_s\":{rate:.1},\"p50_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1},\
\"complete\":{},{cpu_json},\"proxy_cpu_us_per_delivery\":{cpu_per}}}",
        s.publishes,
        s.publish_parallel,
        s.size,
        tally.posts,
        tally.failed.total,
        tally.failed.json(),
        secs_between(tally.first_sent, tally.last_done),
        seen.unique,
        expected.saturating_sub(seen.unique),
        seen.duplicates,
        seen.unknown,
        hub.ctx.other_lines,
        hub.ctx.drops.total.saturating_sub(drops_before),
        hub.ctx.drops.json(),
        us(seen.hist.quantile(0.5)),
        us(seen.hist.quantile(0.99)),
        us(seen.hist.max()),
        complete && seen.unique >= expected,
    );
    hub.close_all();
    Ok(out)
}

/// Writes `text` to `path` so that a reader never sees half of it.
fn write_atomically(path: &str, text: &str) -> Result<(), String> {
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {path}: {e}"))
}

fn idle(s: &Settings) -> Result<String, String> {
    let request = stream_request(s, &s.channel);
    let mut hub = Hub::new(
        Mode::Streams,
        s.target,
        vec![request],
        s.subscribers,
        s.concurrency,
        s.epoch,
    )
    .map_err(|e| e.to_string())?;
    let cpu_start = s.cpu.sample();
    let opened = open_streams(&mut hub, s.open_max, s.open_timeout)?;
    let cpu_end = s.cpu.sample();
    let held = hub.ctx.live;
    eprintln!("bench-fanout: holding {held} of {} streams", s.subscribers);
    let (cpu_json, _) = s.cpu.json(cpu_start, cpu_end);
    let summary = format!("{{\"scenario\":\"idle\",{opened},\"held\":{held},{cpu_json}}}");
    if let Some(path) = &s.ready_file {
        write_atomically(path, &summary)?;
    }
    let drops_before = hub.ctx.drops.total;
    let release = s.release_file.clone();
    let deadline = Instant::now() + s.hold_max;
    let mut next_check = Instant::now();
    let released = hub
        .run_until(deadline, s.open_timeout, |_| {
            let now = Instant::now();
            if now < next_check {
                return false;
            }
            next_check = now + Duration::from_millis(50);
            release
                .as_deref()
                .is_some_and(|p| std::path::Path::new(p).exists())
        })
        .map_err(|e| format!("poll failed: {e}"))?;
    let still = hub.ctx.live;
    hub.close_all();
    let summary = summary.trim_end_matches('}');
    Ok(format!(
        "{summary},\"released_by_file\":{released},\"dropped_while_held\":{},\"drop_kinds\":{},\
\"held_at_release\":{still}}}",
        hub.ctx.drops.total.saturating_sub(drops_before),
        hub.ctx.drops.json(),
    ))
}

fn longpoll(s: &Settings) -> Result<String, String> {
    let ctl = control(s)?;
    let requests: Vec<Vec<u8>> = (0..s.clients)
        .map(|i| stream_request(s, &format!("lp-{i}")))
        .collect();
    let mut hub = Hub::new(
        Mode::Polls,
        s.target,
        requests,
        s.clients,
        s.clients,
        s.epoch,
    )
    .map_err(|e| e.to_string())?;
    // Every client connects and sends its first poll before publishing starts.
    let ready_by = Instant::now() + s.open_max;
    hub.run_until(ready_by, s.timeout, |h| {
        h.next >= h.conns.len() && h.conns.iter().all(|c| c.phase == Phase::Waiting)
    })
    .map_err(|e| format!("poll failed: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let end = start + s.warmup + s.duration;
    let publisher = {
        let (ctl, stop, epoch) = (Arc::clone(&ctl), Arc::clone(&stop), s.epoch);
        let rounds = Rounds {
            clients: s.clients,
            batch: s.batch,
            size: s.size,
            gap: s.round_gap,
        };
        std::thread::Builder::new()
            .name("publish".to_string())
            .spawn(move || publish_rounds(ctl, epoch, rounds, stop, end))
            .map_err(|e| e.to_string())?
    };
    hub.run_until(start + s.warmup, s.timeout, |_| false)
        .map_err(|e| format!("poll failed: {e}"))?;
    hub.ctx.measuring = true;
    let errors_before = hub.ctx.poll_errors.total;
    let cpu_start = s.cpu.sample();
    let window_start = Instant::now();
    hub.run_until(end, s.timeout, |_| false)
        .map_err(|e| format!("poll failed: {e}"))?;
    let window = window_start.elapsed().as_secs_f64();
    hub.ctx.measuring = false;
    let cpu_end = s.cpu.sample();
    stop.store(true, Ordering::Relaxed);
    let tally = publisher
        .join()
        .map_err(|_| "the publisher thread panicked".to_string())?;
    let waiting = hub
        .conns
        .iter()
        .filter(|c| c.phase == Phase::Waiting)
        .count();
    hub.close_all();
    let rate = if window > 0.0 {
        hub.ctx.cycles as f64 / window
    } else {
        0.0
    };
    let (cpu_json, proxy_cpu) = s.cpu.json(cpu_start, cpu_end);
    let cpu_per = match proxy_cpu {
        Some(c) if hub.ctx.cycles > 0 => format!("{:.2}", c * 1e6 / hub.ctx.cycles as f64),
        _ => "null".to_string(),
    };
    let post_s = secs_between(tally.first_sent, tally.last_done);
    Ok(format!(
        "{{\"scenario\":\"longpoll\",\"clients\":{},\"batch\":{},\"window_s\":{window:.3},\
\"round_gap_s\":{:.3},\"cycles\":{},\"cycles_per_s\":{rate:.1},\"errors\":{},\"errors_in_window\":{},\"error_kinds\":{},\
\"p50_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1},\"posts\":{},\"items\":{},\"posts_per_s\":{:.1},\
\"publish_errors\":{},\"publish_error_kinds\":{},\"waiting_at_end\":{waiting},{cpu_json},\
\"proxy_cpu_us_per_cycle\":{cpu_per}}}",
        s.clients,
        s.batch,
        s.round_gap.as_secs_f64(),
        hub.ctx.cycles,
        hub.ctx.poll_errors.total,
        hub.ctx.poll_errors.total.saturating_sub(errors_before),
        hub.ctx.poll_errors.json(),
        us(hub.ctx.poll_hist.quantile(0.5)),
        us(hub.ctx.poll_hist.quantile(0.99)),
        us(hub.ctx.poll_hist.max()),
        tally.posts,
        tally.items,
        if post_s > 0.0 {
            tally.posts as f64 / post_s
        } else {
            0.0
        },
        tally.failed.total,
        tally.failed.json(),
    ))
}

// --- command line ----------------------------------------------------------------------------

fn addr(opts: &Options, name: &str) -> Result<Option<SocketAddr>, String> {
    opts.value(name)
        .map(|t| {
            t.parse()
                .map_err(|_| format!("{name} must be IP:PORT, not {t:?}"))
        })
        .transpose()
}

fn plain(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 128
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
}

fn run() -> Result<(), String> {
    let valued = [
        "--scenario",
        "--target",
        "--control",
        "--path",
        "--channel",
        "--subscribers",
        "--publishes",
        "--publish-parallel",
        "--size",
        "--concurrency",
        "--open-attempts",
        "--open-timeout",
        "--open-max",
        "--prime-timeout",
        "--quiet",
        "--drain-max",
        "--ready-file",
        "--release-file",
        "--hold-max",
        "--clients",
        "--duration",
        "--warmup",
        "--batch",
        "--round-gap",
        "--timeout",
        "--proxy-pid",
        "--clk-tck",
    ];
    let opts = Options::parse(std::env::args().skip(1), &valued, &["--help"])
        .map_err(|e| format!("{e}\n{USAGE}"))?;
    if opts.flag("--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let num = |name: &str, default: usize| -> Result<usize, String> {
        opts.number(name, default).map_err(|e| e.to_string())
    };
    let target = addr(&opts, "--target")?.ok_or(format!("--target is required\n{USAGE}"))?;
    let path = opts.value("--path").unwrap_or("/stream").to_string();
    let channel = opts.value("--channel").unwrap_or("bench").to_string();
    if !path.starts_with('/') || !plain(&path) || !plain(&channel) || channel.contains('/') {
        return Err("--path and --channel must be plain names (letters, digits, -_./)".to_string());
    }
    let settings = Settings {
        target,
        control: addr(&opts, "--control")?,
        path,
        channel,
        subscribers: num("--subscribers", 5000)?,
        publishes: opts
            .number("--publishes", 200u64)
            .map_err(|e| e.to_string())?,
        publish_parallel: num("--publish-parallel", 1)?,
        size: num("--size", 100)?,
        concurrency: num("--concurrency", 1000)?,
        open_attempts: opts
            .number("--open-attempts", 3u32)
            .map_err(|e| e.to_string())?,
        open_timeout: opts.seconds("--open-timeout", 30.0)?,
        open_max: opts.seconds("--open-max", 300.0)?,
        prime_timeout: opts.seconds("--prime-timeout", 30.0)?,
        quiet: opts.seconds("--quiet", 5.0)?,
        drain_max: opts.seconds("--drain-max", 120.0)?,
        ready_file: opts.value("--ready-file").map(str::to_string),
        release_file: opts.value("--release-file").map(str::to_string),
        hold_max: opts.seconds("--hold-max", 300.0)?,
        clients: num("--clients", 500)?,
        duration: opts.seconds("--duration", 10.0)?,
        warmup: opts.seconds("--warmup", 1.0)?,
        batch: num("--batch", 100)?,
        round_gap: opts.seconds("--round-gap", 0.0)?,
        timeout: opts.seconds("--timeout", 10.0)?,
        cpu: Cpu::from_options(&opts)?,
        epoch: Instant::now(),
    };
    let s = &settings;
    if s.subscribers == 0
        || s.subscribers > STREAMS_MAX
        || s.clients == 0
        || s.clients > STREAMS_MAX
    {
        return Err(format!(
            "--subscribers and --clients must be 1..={STREAMS_MAX}"
        ));
    }
    if s.publishes == 0 || s.publishes > PUBLISHES_MAX {
        return Err(format!("--publishes must be 1..={PUBLISHES_MAX}"));
    }
    if s.publish_parallel == 0 || s.publish_parallel > PUBLISH_PARALLEL_MAX {
        return Err(format!(
            "--publish-parallel must be 1..={PUBLISH_PARALLEL_MAX}"
        ));
    }
    if s.concurrency == 0 || s.concurrency > CONCURRENCY_MAX {
        return Err(format!("--concurrency must be 1..={CONCURRENCY_MAX}"));
    }
    if s.open_attempts == 0 || s.open_attempts > OPEN_ATTEMPTS_MAX {
        return Err(format!("--open-attempts must be 1..={OPEN_ATTEMPTS_MAX}"));
    }
    if s.batch == 0 || s.batch > BATCH_MAX {
        return Err(format!("--batch must be 1..={BATCH_MAX}"));
    }
    if s.open_timeout.is_zero() || s.timeout.is_zero() || s.duration.is_zero() {
        return Err("--open-timeout, --timeout and --duration must be above 0".to_string());
    }
    let line = match opts.value("--scenario") {
        Some("fanout") => fanout(s)?,
        Some("idle") => idle(s)?,
        Some("longpoll") => longpoll(s)?,
        _ => {
            return Err(format!(
                "--scenario must be fanout, idle or longpoll\n{USAGE}"
            ))
        }
    };
    println!("{line}");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-fanout: {e}");
            ExitCode::FAILURE
        }
    }
}
