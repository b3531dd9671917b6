//! The holdfast process under test, and one-shot runs of the binary.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{free_port, unique_dir, wait_until, write_atomic, START_TIMEOUT};

pub struct Holdfast {
    child: Option<Child>,
    pub dir: PathBuf,
    pub port: u16,
    pub control_port: u16,
    log_path: PathBuf,
}

/// Base configuration; `extra_ini` lines override or extend it key by key.
fn compose_ini(port: u16, control_port: u16, extra: &str) -> String {
    let mut sections: Vec<(String, Vec<(String, String)>)> = vec![
        (
            "runner".into(),
            vec![("http_port".into(), format!("127.0.0.1:{port}"))],
        ),
        ("proxy".into(), vec![("routesfile".into(), "routes".into())]),
        (
            "handler".into(),
            vec![
                ("push_in_http_addr".into(), "127.0.0.1".into()),
                ("push_in_http_port".into(), control_port.to_string()),
            ],
        ),
    ];
    let mut current = String::from("runner");
    for line in extra.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_string();
            continue;
        }
        let (k, v) = line.split_once('=').expect("extra ini lines are key=value");
        let idx = match sections.iter().position(|(s, _)| *s == current) {
            Some(i) => i,
            None => {
                sections.push((current.clone(), Vec::new()));
                sections.len() - 1
            }
        };
        let keys = &mut sections[idx].1;
        match keys.iter_mut().find(|(key, _)| key == k.trim()) {
            Some(slot) => slot.1 = v.trim().to_string(),
            None => keys.push((k.trim().to_string(), v.trim().to_string())),
        }
    }
    let mut out = String::new();
    for (name, keys) in sections {
        out.push_str(&format!("[{name}]\n"));
        for (k, v) in keys {
            out.push_str(&format!("{k}={v}\n"));
        }
        out.push('\n');
    }
    out
}

impl Holdfast {
    /// Start holdfast with these routes-file lines and extra INI (`[section]` / `key=value` lines).
    pub fn start(routes: &[&str], extra_ini: &str) -> Holdfast {
        Holdfast::start_with(routes, extra_ini, &[])
    }

    /// As `start`, with extra command-line arguments.
    pub fn start_with(routes: &[&str], extra_ini: &str, args: &[&str]) -> Holdfast {
        let mut last = String::new();
        // A port picked as free may be taken by a concurrent test before holdfast binds it: try again.
        for _ in 0..4 {
            match Holdfast::try_start(routes, extra_ini, args) {
                Ok(h) => return h,
                Err(log) if log.contains("cannot listen") => last = log,
                Err(log) => panic!("holdfast did not start:\n{log}"),
            }
        }
        panic!("holdfast could not bind its ports:\n{last}");
    }

    fn try_start(routes: &[&str], extra_ini: &str, args: &[&str]) -> Result<Holdfast, String> {
        let dir = unique_dir("hf");
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let port = free_port();
        let control_port = free_port();
        std::fs::write(
            dir.join("pushpin.conf"),
            compose_ini(port, control_port, extra_ini),
        )
        .expect("write config");
        let mut routes_text = routes.join("\n");
        routes_text.push('\n');
        std::fs::write(dir.join("routes"), routes_text).expect("write routes");
        let log_path = dir.join("holdfast.log");
        let log = std::fs::File::create(&log_path).expect("create log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_holdfast"));
        cmd.arg("--config").arg(dir.join("pushpin.conf"));
        if !args.iter().any(|a| a.starts_with("--log-level")) {
            cmd.arg("--log-level").arg("3");
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log);
        let child = cmd.spawn().expect("spawn holdfast");
        // `--port` replaces the configured listener: wait on that one instead.
        let port_arg = args
            .iter()
            .position(|a| *a == "--port")
            .and_then(|i| args.get(i + 1).copied())
            .or_else(|| args.iter().find_map(|a| a.strip_prefix("--port=")));
        let port = port_arg
            .and_then(|p| p.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or(port);
        let mut h = Holdfast {
            child: Some(child),
            dir,
            port,
            control_port,
            log_path,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = h.try_wait() {
                let log = h.log();
                return Err(format!("exited early with {status}:\n{log}"));
            }
            if h.log().contains("started ") {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!("not started after {START_TIMEOUT:?}:\n{}", h.log()));
            }
            thread::sleep(Duration::from_millis(10));
        }
        // Workers are up; the listener accepts once they poll.
        let addr = h.addr();
        if !wait_until(START_TIMEOUT, || {
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
        }) {
            return Err(format!("port {port} does not accept:\n{}", h.log()));
        }
        Ok(h)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn routes_path(&self) -> PathBuf {
        self.dir.join("routes")
    }

    pub fn write_routes(&self, lines: &[&str]) {
        let mut text = lines.join("\n");
        text.push('\n');
        write_atomic(&self.routes_path(), &text);
    }

    /// Everything holdfast wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Wait until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().contains(needle))
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    pub fn sighup(&self) {
        self.signal("HUP");
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Wait for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Still running (no panic, no abort)?
    pub fn alive(&mut self) -> bool {
        self.try_wait().is_none()
    }

    /// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
    pub fn vm_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| {
                let rest = l.strip_prefix(field)?.strip_prefix(':')?;
                rest.trim().trim_end_matches("kB").trim().parse().ok()
            })
            .unwrap_or_else(|| panic!("{field} not in /proc status"))
    }
}

impl Drop for Holdfast {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        if thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let from = lines.len().saturating_sub(150);
            eprintln!(
                "---- holdfast log (last {} lines) ----\n{}\n----",
                lines.len() - from,
                lines[from..].join("\n")
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run the binary to completion with these arguments (for --help, --version, config errors).
pub fn run_holdfast(args: &[&str], cwd: &Path, timeout: Duration) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_holdfast"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn holdfast");
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("holdfast {args:?} did not exit within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fresh temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let d = unique_dir("tmp");
        std::fs::create_dir_all(&d).expect("create temp dir");
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
