//! Start-up, the control thread (signals, routes reloads) and shutdown.
//!
//! Threads: N workers (each a `reactor::Worker`), and the main thread, which after start-up only waits for
//! signals, watches the routes file, re-resolves backend host names, and hands new route tables to the workers
//! through their inboxes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use mio::Poll;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cli::Options;
use crate::config::{find_config_file, parse_listen_addr, Settings};
use crate::control::ControlLimits;
use crate::grip::Sequencer;
use crate::proxy::{ProxyConfig, Router};
use crate::reactor::{Inbox, ListenerKind, Shared, Worker, WorkerMsg, WorkerSetup};
use crate::routes::RouteTable;
use crate::stats::{prometheus, Metrics, MinuteCounter};

/// Listen backlog: connections the kernel queues before holdfast accepts them (the kernel caps it at
/// `net.core.somaxconn`). Bursts of a thousand concurrent opens must not overflow it.
const LISTEN_BACKLOG: i32 = 4096;

/// A non-blocking listener with SO_REUSEADDR and a deep backlog. With `reuse_port`, each worker gets a
/// listening socket of its own on the same address and the kernel spreads new connections across them
/// (a shared socket lets whichever worker wakes first take most of them).
fn listen(addr: SocketAddr, reuse_port: bool) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Messages queued per worker inbox before senders are refused.
const INBOX_CAP: usize = 4096;
/// How often the control thread wakes to check signals and the routes file.
const CONTROL_TICK: Duration = Duration::from_millis(50);
/// How often backend host names are resolved again.
const RESOLVE_EVERY: Duration = Duration::from_secs(30);

/// Where routes come from: `--route` lines (fixed) or a file (watched).
enum RoutesSource {
    Lines(Vec<String>),
    File(PathBuf),
    None,
}

/// Everything decided before the workers start.
pub struct Startup {
    pub settings: Settings,
    pub warnings: Vec<String>,
    routes: RoutesSource,
    pub listen: Vec<SocketAddr>,
    pub workers: usize,
    /// Where the Prometheus endpoint listens (`prometheus_port`), if anywhere.
    pub metrics: Option<SocketAddr>,
}

/// ZeroMQ keys that a build without the `zmq` feature cannot honour.
#[cfg(not(feature = "zmq"))]
fn zmq_keys(s: &Settings) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut note = |set: bool, key: &'static str| {
        if set {
            keys.push(key);
        }
    };
    note(s.push_in_spec.is_some(), "push_in_spec");
    note(!s.push_in_sub_specs.is_empty(), "push_in_sub_specs");
    note(s.command_spec.is_some(), "command_spec");
    note(s.stats_spec.is_some(), "stats_spec");
    keys
}

/// Read the configuration as the command line says. Errors name the file, line and reason.
pub fn prepare(opts: &Options) -> Result<Startup, String> {
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?;
    let (settings, warnings) = match &opts.config {
        Some(path) => Settings::load(path).map_err(|e| e.to_string())?,
        None => match find_config_file(&cwd) {
            Some(path) => Settings::load(&path).map_err(|e| e.to_string())?,
            None => (Settings::defaults(), Vec::new()),
        },
    };
    let routes = if !opts.routes.is_empty() {
        RoutesSource::Lines(opts.routes.clone())
    } else if let Some(path) = &settings.routesfile {
        RoutesSource::File(path.clone())
    } else {
        RoutesSource::None
    };
    let listen = match &opts.port {
        Some(p) => vec![parse_listen_addr(p).map_err(|e| format!("--port: {e}"))?],
        None => settings.http_ports.clone(),
    };
    if listen.is_empty() {
        return Err("no server ports configured: set [runner] http_port or pass --port".into());
    }
    let workers = opts
        .workers
        .or(settings.workers)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .clamp(1, 1024);
    let metrics = match &settings.prometheus_port {
        Some(spec) => Some(metrics_addr(spec)?),
        None => None,
    };
    if !prometheus::valid_prefix(&settings.prometheus_prefix) {
        return Err(format!(
            "prometheus_prefix {:?}: metric names allow only letters, digits, '_' and ':' (not a digit first)",
            settings.prometheus_prefix
        ));
    }
    Ok(Startup {
        settings,
        warnings,
        routes,
        listen,
        workers,
        metrics,
    })
}

/// `prometheus_port`: `port` listens on every IPv4 interface (as `http_port` does, and as Pushpin does with a
/// bare port), `addr:port` on that address. Pushpin's `ipc://path` (a Unix socket) is refused: holdfast's
/// metrics endpoint is TCP only.
fn metrics_addr(spec: &str) -> Result<SocketAddr, String> {
    if spec.trim().starts_with("ipc://") {
        return Err(format!(
            "prometheus_port {spec:?}: ipc:// (Unix socket) endpoints are not supported; use [addr:]port"
        ));
    }
    parse_listen_addr(spec).map_err(|e| format!("prometheus_port: {e}"))
}

fn load_routes(source: &RoutesSource) -> Result<(RouteTable, Vec<String>), String> {
    match source {
        RoutesSource::Lines(lines) => RouteTable::from_lines(lines).map_err(|e| e.to_string()),
        RoutesSource::File(path) => {
            let text = read_limited(path)?;
            RouteTable::parse(&text, &path.display().to_string()).map_err(|e| e.to_string())
        }
        RoutesSource::None => Ok((RouteTable::default(), Vec::new())),
    }
}

/// Routes files larger than this are refused rather than read into memory.
const ROUTES_FILE_MAX: u64 = 16 * 1024 * 1024;

fn read_limited(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > ROUTES_FILE_MAX {
        return Err(format!(
            "{}: larger than {ROUTES_FILE_MAX} bytes",
            path.display()
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn build_router(source: &RoutesSource) -> Result<Router, String> {
    let (table, warnings) = load_routes(source)?;
    for w in warnings {
        log::warn!("routes: {w}");
    }
    let (router, warnings) = Router::new(table)?;
    for w in warnings {
        log::warn!("{w}");
    }
    Ok(router)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

struct WorkerHandle {
    inbox: Arc<Inbox<WorkerMsg>>,
    thread: JoinHandle<()>,
}

/// Run until SIGINT/SIGTERM. Returns when every worker has stopped.
pub fn run(startup: Startup) -> Result<(), String> {
    let s = &startup.settings;
    for w in &startup.warnings {
        log::warn!("config: {w}");
    }
    #[cfg(not(feature = "zmq"))]
    {
        let ignored = zmq_keys(s);
        if !ignored.is_empty() {
            log::warn!(
                "config: this holdfast was built without ZeroMQ (cargo feature `zmq`); ignoring {}",
                ignored.join(", ")
            );
        }
    }
    match &startup.routes {
        RoutesSource::None => {
            log::warn!("no routes file and no --route: every request will get 502 Route not found")
        }
        RoutesSource::File(p) => log::info!("routes: {}", p.display()),
        RoutesSource::Lines(l) => log::info!("routes: {} from the command line", l.len()),
    }
    let router = Arc::new(build_router(&startup.routes)?);

    let mut listeners = Vec::new();
    for addr in &startup.listen {
        // SO_REUSEPORT would let a second server share the port silently: probe with a plain bind first so an
        // address in use still fails start-up, as it does for Pushpin.
        drop(
            std::net::TcpListener::bind(addr)
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?,
        );
        let l = listen(*addr, true).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        log::info!(
            "listening on {}",
            l.local_addr().map(|a| a.to_string()).unwrap_or_default()
        );
        listeners.push(l);
    }

    let shared = Arc::new(Shared {
        cfg: ProxyConfig::from_settings(s)?,
        conns: AtomicUsize::new(0),
        max_conns: s.client_maxconn.max(1),
        next_conn_id: AtomicU64::new(1),
        pool_max_idle: s.backend_pool_max_idle,
        pool_idle_timeout: Duration::from_millis(s.backend_pool_idle_ms),
        message_rate: s.message_rate,
        message_hwm: s.message_hwm,
        update_on_first_subscription: s.update_on_first_subscription,
        subscription_linger: Duration::from_secs(s.subscription_linger),
        inboxes: OnceLock::new(),
        stats: Metrics::default(),
        sequencer: Mutex::new(Sequencer::new(
            Duration::from_millis(s.message_wait_ms),
            Duration::from_secs(s.id_cache_ttl),
        )),
        channel_workers: Mutex::new(HashMap::new()),
        bridge: OnceLock::new(),
        bridge_resync: AtomicBool::new(false),
        instance_id: format!("holdfast_{}", std::process::id()),
        report_connections: AtomicBool::new(false),
        report_messages: AtomicBool::new(false),
        prometheus_prefix: s.prometheus_prefix.clone(),
        control_limits: ControlLimits {
            max_headers_size: s.push_in_http_max_headers_size,
            max_body_size: s.push_in_http_max_body_size,
        },
    });

    let mut control = match s.push_in_http_port {
        Some(port) => {
            let addr = SocketAddr::new(s.push_in_http_addr, port);
            let l = listen(addr, false)
                .map_err(|e| format!("cannot listen on {addr} (control API): {e}"))?;
            log::info!("control API on {addr}");
            Some(mio::net::TcpListener::from_std(l))
        }
        None => None,
    };

    // The bridge binds its sockets (a busy address fails start-up) and must exist before the workers start.
    #[cfg(feature = "zmq")]
    let bridge = crate::zmq_bridge::start(s, Arc::clone(&shared))?;

    let mut metrics = match startup.metrics {
        Some(addr) => {
            let l = listen(addr, false)
                .map_err(|e| format!("cannot listen on {addr} (prometheus_port): {e}"))?;
            log::info!("Prometheus metrics on {addr}");
            Some(mio::net::TcpListener::from_std(l))
        }
        None => None,
    };

    // Register for signals before the workers start, so an early SIGTERM is not lost.
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(|e| format!("signals: {e}"))?;

    let mut workers = Vec::new();
    // Client workers, plus one more that serves only the control API: publishing stays responsive however
    // busy the client workers are writing to their subscribers.
    let control_worker = control.is_some() as usize;
    for id in 0..startup.workers + control_worker {
        let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
        let waker =
            mio::Waker::new(poll.registry(), mio::Token(0)).map_err(|e| format!("waker: {e}"))?;
        let inbox = Inbox::new(INBOX_CAP, waker);
        let mut mine = Vec::new();
        if id < startup.workers {
            for l in &listeners {
                // Worker 0 takes the sockets bound above (which also proved the addresses are free); the
                // others bind their own on the same addresses.
                let own = if id == 0 {
                    l.try_clone().map_err(|e| format!("listener: {e}"))?
                } else {
                    let addr = l.local_addr().map_err(|e| format!("listener: {e}"))?;
                    listen(addr, true).map_err(|e| format!("cannot listen on {addr}: {e}"))?
                };
                mine.push((mio::net::TcpListener::from_std(own), ListenerKind::Client));
            }
        } else if let Some(l) = control.take() {
            mine.push((l, ListenerKind::Control));
        }
        // Scrapes go to the control API's worker when there is one (it is the least busy), else to worker 0.
        let metrics_here = if control_worker > 0 {
            id == startup.workers
        } else {
            id == 0
        };
        if metrics_here {
            if let Some(l) = metrics.take() {
                mine.push((l, ListenerKind::Metrics));
            }
        }
        let worker = Worker::new(WorkerSetup {
            id,
            poll,
            inbox: Arc::clone(&inbox),
            listeners: mine,
            router: Arc::clone(&router),
            shared: Arc::clone(&shared),
            workers: startup.workers,
        })
        .map_err(|e| format!("worker {id}: {e}"))?;
        let thread = std::thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || worker.run())
            .map_err(|e| format!("spawning worker {id}: {e}"))?;
        workers.push(WorkerHandle { inbox, thread });
    }
    drop(listeners);
    let _ = shared
        .inboxes
        .set(workers.iter().map(|w| Arc::clone(&w.inbox)).collect());
    log::info!(
        "started {} workers{}",
        startup.workers,
        if control_worker > 0 {
            " and the control API thread"
        } else {
            ""
        }
    );

    control_loop(&startup, &mut signals, &workers, router, &shared);

    let grace = Duration::from_millis(startup.settings.shutdown_grace_ms);
    for w in &workers {
        if w.inbox.push(WorkerMsg::Shutdown { grace }).is_err() {
            log::error!("a worker inbox is full; it will stop at its next message drain");
        }
    }
    for w in workers {
        if w.thread.join().is_err() {
            log::error!("a worker thread panicked");
        }
    }
    #[cfg(feature = "zmq")]
    if let Some(b) = bridge {
        b.stop();
    }
    log::info!("stopped");
    Ok(())
}

/// Wait for a stop signal, reloading routes on SIGHUP or when the routes file changes.
fn control_loop(
    startup: &Startup,
    signals: &mut Signals,
    workers: &[WorkerHandle],
    initial: Arc<Router>,
    shared: &Shared,
) {
    let routes_path = match &startup.routes {
        RoutesSource::File(p) => Some(p.clone()),
        _ => None,
    };
    let check_every = Duration::from_millis(startup.settings.routes_check_interval_ms.max(50));
    let mut last_mtime = routes_path.as_deref().and_then(modified);
    let mut next_check = Instant::now() + check_every;
    let mut next_resolve = Instant::now() + RESOLVE_EVERY;
    let mut current = initial;
    let mut minutes = MinuteCounter::default();
    let mut last_tick = Instant::now();
    loop {
        let mut reload = false;
        for sig in signals.pending() {
            match sig {
                SIGHUP => {
                    log::info!("SIGHUP: reloading routes");
                    reload = true;
                }
                _ => {
                    log::info!("signal {sig}: stopping");
                    return;
                }
            }
        }
        let now = Instant::now();
        shared.expire_sequencer(now);
        // Pushpin's connection_minute: open client connections integrated over time, sampled every tick.
        let done = minutes.advance(
            shared.stats.open_connections(),
            now.saturating_duration_since(last_tick),
        );
        last_tick = now;
        if done > 0 {
            shared
                .stats
                .connection_minutes
                .fetch_add(done, std::sync::atomic::Ordering::Relaxed);
        }
        if now >= next_check {
            next_check = now + check_every;
            if let Some(path) = &routes_path {
                let mtime = modified(path);
                if mtime != last_mtime {
                    last_mtime = mtime;
                    log::info!("routes: {} changed; reloading", path.display());
                    reload = true;
                }
            }
        }
        let mut resolve = false;
        if now >= next_resolve {
            next_resolve = now + RESOLVE_EVERY;
            resolve = current.addresses_changed();
        }
        if reload || resolve {
            match build_router(&startup.routes) {
                Ok(router) => {
                    let router = Arc::new(router);
                    log::info!("routes: loaded {} routes", router.table().len());
                    for w in workers {
                        if w.inbox
                            .push(WorkerMsg::Router(Arc::clone(&router)))
                            .is_err()
                        {
                            log::error!("routes: a worker inbox is full; it keeps its old routes until the next reload");
                        }
                    }
                    current = router;
                }
                Err(e) => log::error!("routes: {e}; keeping the previous routes"),
            }
        }
        std::thread::sleep(CONTROL_TICK);
    }
}
