//! Log set-up: `env_logger` with Pushpin's levels (0 error … 4 trace), `RUST_LOG` taking precedence, and
//! Pushpin's line shape: `[LEVEL] YYYY-MM-DD HH:MM:SS.mmm message`.
//!
//! Workers never write to the log file themselves: a line goes into a shared in-memory buffer and a writer
//! thread flushes it every `FLUSH_EVERY`, so an access-log line per request costs no system call on the hot path.
//! Policy when the writer falls behind: the buffer is capped at `LOG_BUFFER_MAX`; lines beyond it are dropped,
//! counted, and the count is reported in the log as soon as there is room again.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Bytes of log held in memory before lines are dropped.
const LOG_BUFFER_MAX: usize = 4 * 1024 * 1024;
/// Capacity a log buffer keeps between bursts (there are two): enough for about 100 access-log lines per
/// flush without regrowing, small beside an idle proxy's few MiB (at 64 KiB the pair kept 2 % of it).
const LOG_BUFFER_KEEP: usize = 16 * 1024;
/// How often the writer thread flushes.
const FLUSH_EVERY: Duration = Duration::from_millis(20);

struct Shared {
    pending: Mutex<Vec<u8>>,
    dropped: AtomicU64,
    out: Mutex<Box<dyn Write + Send>>,
}

static SINK: OnceLock<Arc<Shared>> = OnceLock::new();

/// What env_logger writes records into.
struct BufferedSink(Arc<Shared>);

impl Shared {
    /// Queue bytes for the writer thread, or count them dropped when it has fallen too far behind.
    fn append(&self, buf: &[u8]) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.len() + buf.len() > LOG_BUFFER_MAX {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            pending.extend_from_slice(buf);
        }
    }
}

impl Write for BufferedSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // Deliberately nothing: the writer thread flushes on its own schedule.
        Ok(())
    }
}

/// Write out everything buffered so far (also called at exit).
pub fn flush() {
    if let Some(shared) = SINK.get() {
        write_pending(shared);
    }
}

thread_local! {
    /// The writer thread's side of the double buffer: swapped with the shared one at each flush, so neither
    /// ever shrinks and regrows (no reallocation and copying on the workers' logging path).
    static SPARE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// This thread's last formatted second, so a log line formats only its milliseconds.
    static LAST_SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    /// This thread's buffer for `info_line`.
    static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn write_pending(shared: &Shared) {
    let data = SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        spare.clear();
        let mut pending = shared.pending.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::swap(&mut *pending, &mut *spare);
        // Once a burst is over, give its memory back: 15,000 held streams ending at once log about 2 MB,
        // which both buffers would otherwise keep for the life of the process. Each buffer passes here
        // empty every other flush, so both shrink within two quiet flushes.
        if pending.capacity() > LOG_BUFFER_KEEP && spare.len() < LOG_BUFFER_KEEP / 4 {
            pending.shrink_to(LOG_BUFFER_KEEP);
        }
        std::mem::take(&mut *spare)
    });
    let dropped = shared.dropped.swap(0, Ordering::Relaxed);
    let mut out = shared.out.lock().unwrap_or_else(|p| p.into_inner());
    // If the log destination itself fails there is nowhere left to report it.
    let _ = out.write_all(&data);
    if dropped > 0 {
        let line = format!(
            "[WARN] {} log: {dropped} lines dropped because the log writer fell behind\n",
            timestamp(SystemTime::now())
        );
        let _ = out.write_all(line.as_bytes());
    }
    let _ = out.flush();
    drop(out);
    SPARE.with(|spare| *spare.borrow_mut() = data);
}

use crate::config::level_filter;

pub fn init(level: u8, logfile: Option<&Path>) -> Result<(), String> {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level_filter(level));
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    let out: Box<dyn Write + Send> = match logfile {
        Some(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("{}: cannot open log file: {e}", path.display()))?,
        ),
        None => Box::new(std::io::stderr()),
    };
    let shared = Arc::new(Shared {
        pending: Mutex::new(Vec::new()),
        dropped: AtomicU64::new(0),
        out: Mutex::new(out),
    });
    let _ = SINK.set(Arc::clone(&shared));
    let writer = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || loop {
            std::thread::sleep(FLUSH_EVERY);
            write_pending(&writer);
        })
        .map_err(|e| format!("logging: cannot start the writer thread: {e}"))?;
    builder.target(env_logger::Target::Pipe(Box::new(BufferedSink(shared))));
    builder.format(|out, record| {
        let level = match record.level() {
            log::Level::Error => "ERR",
            log::Level::Warn => "WARN",
            log::Level::Info => "INFO",
            log::Level::Debug => "DEBUG",
            log::Level::Trace => "TRACE",
        };
        writeln!(
            out,
            "[{level}] {} {}",
            timestamp(SystemTime::now()),
            record.args()
        )
    });
    builder.try_init().map_err(|e| format!("logging: {e}"))
}

/// UTC wall-clock time as `YYYY-MM-DD HH:MM:SS.mmm`.
fn timestamp(t: SystemTime) -> String {
    let mut out = Vec::with_capacity(24);
    push_timestamp(t, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends `YYYY-MM-DD HH:MM:SS.mmm` without allocating (the second is formatted once per second).
fn push_timestamp(t: SystemTime, out: &mut Vec<u8>) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    LAST_SECOND.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != secs {
            *last = (secs, format_second(secs));
        }
        out.extend_from_slice(last.1.as_bytes());
    });
    let ms = d.subsec_millis();
    out.extend_from_slice(&[
        b'.',
        b'0' + (ms / 100) as u8,
        b'0' + (ms / 10 % 10) as u8,
        b'0' + (ms % 10) as u8,
    ]);
}

/// Writes one info line straight into the log buffer, in the same format as the logger's, for the
/// per-request access line: going through the `log` facade and env_logger's formatter cost about a
/// tenth of the proxy's CPU per request. Callers check `log::log_enabled!` first; without the
/// buffered sink (tests, or before `init`) the line goes through `log` as usual.
pub fn info_line(args: std::fmt::Arguments<'_>) {
    let Some(shared) = SINK.get() else {
        log::info!("{args}");
        return;
    };
    LINE.with(|line| {
        let Ok(mut line) = line.try_borrow_mut() else {
            return;
        };
        line.clear();
        // Sized once, at the first line (before any burst), so the buffer does not regrow into a slab that
        // a burst's connections fill and then leave to it alone (see `crate::memory`).
        line.reserve(LINE_FIRST);
        line.extend_from_slice(b"[INFO] ");
        push_timestamp(SystemTime::now(), &mut line);
        line.push(b' ');
        let _ = line.write_fmt(args);
        line.push(b'\n');
        shared.append(&line);
        if line.capacity() > LINE_KEEP_MAX {
            *line = Vec::new();
        }
    });
}

/// Capacity of a thread's line buffer: room for an access-log line with a long path.
const LINE_FIRST: usize = 1024;

/// A formatted line longer than this does not keep its buffer.
const LINE_KEEP_MAX: usize = 4096;

/// `YYYY-MM-DD HH:MM:SS` for seconds since the Unix epoch.
fn format_second(secs: u64) -> String {
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{day:02} {:02}:{:02}:{:02}",
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's well-known algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Warnings about a flood (drops, bad input) are written at most once a second each: `allow` says whether
/// this one may be.
#[derive(Debug, Default, Clone, Copy)]
pub struct WarnLimit {
    last: Option<std::time::Instant>,
}

impl WarnLimit {
    pub fn allow(&mut self, now: std::time::Instant) -> bool {
        if self
            .last
            .is_some_and(|at| now.saturating_duration_since(at) < Duration::from_secs(1))
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_flood_warning_is_allowed_once_a_second() {
        let t0 = std::time::Instant::now();
        let mut w = WarnLimit::default();
        assert!(w.allow(t0));
        assert!(!w.allow(t0 + Duration::from_millis(999)));
        assert!(w.allow(t0 + Duration::from_secs(1)));
        assert!(!w.allow(t0 + Duration::from_millis(1500)));
    }

    #[test]
    fn timestamps_are_utc_dates() {
        for (secs, want) in [
            (0u64, "1970-01-01 00:00:00.000"),
            (951_782_400, "2000-02-29 00:00:00.000"),
            (1_795_834_439, "2026-11-28 02:53:59.000"),
        ] {
            assert_eq!(timestamp(UNIX_EPOCH + Duration::from_secs(secs)), want);
        }
    }
}
