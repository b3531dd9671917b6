//! The file side of configuration: finding pushpin.conf, reading it with a size cap, and
//! resolving `[global] include`.
//!
//! Include rules: the path is template-expanded (a bare `internal.conf` means
//! `{libdir}/internal.conf`, as in Pushpin) and resolved against the including file's folder.
//! The main file's keys win over included ones. A missing include file is only a warning:
//! Pushpin's own include names its internal.conf, whose socket specs holdfast does not need.
//! Unlike Pushpin, included files may include further files, up to `INCLUDE_DEPTH_MAX` levels;
//! a file that includes itself, directly or not, is an error.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::error::{escape_text, ConfigError};
use super::ini::{Ini, CONFIG_TEXT_MAX};
use super::settings::{base_vars, build, LoadOptions, Settings};
use super::values::{expand_templates, TemplateVars};

/// Most nested include files below the main file.
pub const INCLUDE_DEPTH_MAX: usize = 4;

/// Where a missing `--config` is looked for, relative to the working directory, in order.
const LOCAL_CONFIG_PATHS: &[&str] = &[
    "config/pushpin.conf",
    "pushpin.conf",
    "examples/config/pushpin.conf",
];
/// The system config folder searched last.
const SYSTEM_CONFIG_DIR: &str = "/etc/pushpin";

/// Search path when --config is absent: ./config/pushpin.conf, ./pushpin.conf,
/// ./examples/config/pushpin.conf, /etc/pushpin/pushpin.conf. Returns the first that exists.
pub fn find_config_file(cwd: &Path) -> Option<PathBuf> {
    find_config_in(cwd, Path::new(SYSTEM_CONFIG_DIR))
}

fn find_config_in(cwd: &Path, system_dir: &Path) -> Option<PathBuf> {
    LOCAL_CONFIG_PATHS
        .iter()
        .map(|p| cwd.join(p))
        .chain(std::iter::once(system_dir.join("pushpin.conf")))
        .find(|p| p.is_file())
}

/// Read a config file as UTF-8 text, refusing anything but a regular file of at most
/// `CONFIG_TEXT_MAX` bytes (so a FIFO or /dev/zero cannot hang or exhaust the loader).
fn read_config_text(path: &Path, name: &str) -> Result<String, ConfigError> {
    let fail = |reason: String| ConfigError::new(name, 0, reason);
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".to_string()));
    }
    if meta.len() > CONFIG_TEXT_MAX as u64 {
        return Err(fail(format!("larger than {CONFIG_TEXT_MAX} bytes")));
    }
    let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let mut bytes = Vec::new();
    // The file may grow between the size check and the read; the cap holds either way.
    file.take(CONFIG_TEXT_MAX as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if bytes.len() > CONFIG_TEXT_MAX {
        return Err(fail(format!("larger than {CONFIG_TEXT_MAX} bytes")));
    }
    String::from_utf8(bytes).map_err(|_| fail("not valid UTF-8".to_string()))
}

pub(super) fn load(
    path: &Path,
    opts: &LoadOptions,
) -> Result<(Settings, Vec<String>), ConfigError> {
    let name = path.display().to_string();
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        let cwd = std::env::current_dir()
            .map_err(|e| ConfigError::new(&name, 0, format!("no working directory: {e}")))?;
        cwd.join(path)
    };
    let text = read_config_text(&absolute, &name)?;
    let dir = absolute
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    from_text_inner(&text, &name, &dir, Some(&absolute), opts)
}

/// `main_path` is the main file's real path when known (for cycle detection and
/// `Settings::config_file`); otherwise `dir/file` stands for it.
pub(super) fn from_text_inner(
    text: &str,
    file: &str,
    dir: &Path,
    main_path: Option<&Path>,
    opts: &LoadOptions,
) -> Result<(Settings, Vec<String>), ConfigError> {
    let mut warnings = Vec::new();
    let mut ini = Ini::parse(text, file)?;
    let base = base_vars(&ini, dir, opts, &mut warnings)?;
    let main_path = main_path.map_or_else(|| dir.join(file), Path::to_path_buf);
    let mut chain = vec![std::fs::canonicalize(&main_path).unwrap_or_else(|_| main_path.clone())];
    resolve_includes(&mut ini, file, dir, &base.vars, &mut chain, &mut warnings)?;
    let settings = build(&ini, base, Some(main_path), dir, &mut warnings)?;
    Ok((settings, warnings))
}

/// Merge the file named by `ini`'s `[global] include` (and its own includes) under `ini`.
/// `chain` holds the canonical paths of the files being read, main file first.
fn resolve_includes(
    ini: &mut Ini,
    file: &str,
    dir: &Path,
    vars: &TemplateVars,
    chain: &mut Vec<PathBuf>,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let Some(value) = ini.get("global", "include").map(str::trim) else {
        return Ok(());
    };
    if value.is_empty() {
        return Ok(());
    }
    let line = ini.location("global", "include").map_or(0, |(_, l)| l);
    let err = |reason: String| ConfigError::new(file, line, reason);
    let written = if value == "internal.conf" {
        "{libdir}/internal.conf"
    } else {
        value
    };
    let expanded = expand_templates(written, vars);
    if vars.libdir.is_none() && expanded.contains("{libdir}") {
        warnings.push(format!(
            "{file}:{line}: include {}: [global] libdir is not set, skipped",
            escape_text(value)
        ));
        return Ok(());
    }
    let path = dir.join(&expanded);
    let shown = escape_text(&path.display().to_string());
    match std::fs::metadata(&path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            warnings.push(format!("{file}:{line}: include {shown} not found, skipped"));
            return Ok(());
        }
        Err(e) => return Err(err(format!("include {shown}: {e}"))),
    }
    let canonical =
        std::fs::canonicalize(&path).map_err(|e| err(format!("include {shown}: {e}")))?;
    if chain.contains(&canonical) {
        let mut names: Vec<String> = chain.iter().map(|p| p.display().to_string()).collect();
        names.push(canonical.display().to_string());
        return Err(err(format!("include cycle: {}", names.join(" -> "))));
    }
    // `chain` holds the main file plus every include being read.
    if chain.len() > INCLUDE_DEPTH_MAX {
        return Err(err(format!(
            "include {shown}: includes nested deeper than {INCLUDE_DEPTH_MAX} levels"
        )));
    }
    let text = read_config_text(&path, &shown)?;
    let mut included = Ini::parse(&text, &shown)?;
    // Like Qt's QFileInfo::absoluteDir: a symlinked include's neighbours are the link's.
    let included_dir = path
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    chain.push(canonical);
    let nested = resolve_includes(&mut included, &shown, &included_dir, vars, chain, warnings);
    chain.pop();
    nested?;
    ini.merge_under(included);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh folder under /tmp, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("holdfast-config-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).expect("create temp dir");
            TempDir(path)
        }

        fn write(&self, rel: &str, text: &str) -> PathBuf {
            let path = self.0.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("create parent");
            }
            std::fs::write(&path, text).expect("write file");
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn load(path: &Path) -> Result<(Settings, Vec<String>), ConfigError> {
        super::load(path, &LoadOptions::default())
    }

    fn load_ok(path: &Path) -> (Settings, Vec<String>) {
        match load(path) {
            Ok(r) => r,
            Err(e) => panic!("load {} failed: {e}", path.display()),
        }
    }

    #[test]
    fn find_config_file_order() {
        let cwd = TempDir::new("find-cwd");
        let system = TempDir::new("find-sys");
        assert_eq!(find_config_in(&cwd.0, &system.0), None);

        let candidates = [
            system.write("pushpin.conf", ""),
            cwd.write("examples/config/pushpin.conf", ""),
            cwd.write("pushpin.conf", ""),
            cwd.write("config/pushpin.conf", ""),
        ];
        // Each file written outranks the ones before it; remove from the front to walk back.
        assert_eq!(
            find_config_in(&cwd.0, &system.0).as_ref(),
            candidates.last()
        );
        for i in (1..candidates.len()).rev() {
            std::fs::remove_file(&candidates[i]).expect("remove");
            assert_eq!(
                find_config_in(&cwd.0, &system.0).as_ref(),
                candidates.get(i - 1)
            );
        }
        // A folder named pushpin.conf is not a config file.
        std::fs::remove_file(&candidates[0]).expect("remove");
        std::fs::create_dir_all(cwd.0.join("pushpin.conf")).expect("mkdir");
        assert_eq!(find_config_in(&cwd.0, &system.0), None);
    }

    #[test]
    fn include_merges_under_main_and_resolves_relative_to_includer() {
        let dir = TempDir::new("include");
        dir.write(
            "sub/inc.conf",
            "[global]\ninclude=deeper/inner.conf\n[proxy]\ndebug=true\nsig_iss=from-include\n",
        );
        dir.write(
            "sub/deeper/inner.conf",
            "[proxy]\nsig_iss=from-inner\naccept_pushpin_route=true\n",
        );
        let main = dir.write(
            "pushpin.conf",
            "[global]\ninclude=sub/inc.conf\n[proxy]\nsig_iss=from-main\n",
        );
        let (s, warnings) = load_ok(&main);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(s.sig_iss, "from-main");
        assert!(s.debug);
        assert!(s.accept_pushpin_route);
        assert_eq!(s.config_file.as_deref(), Some(main.as_path()));
        assert_eq!(s.config_dir, dir.0);
    }

    #[test]
    fn internal_conf_uses_libdir_and_missing_include_warns() {
        let dir = TempDir::new("libdir");
        dir.write(
            "lib/internal.conf",
            "[proxy]\ncondure_in_specs=ipc://{rundir}/{ipc_prefix}condure-out\n\
             stats_spec=ipc://{rundir}/{ipc_prefix}proxy-stats\n\
             [handler]\nproxy_inspect_spec=ipc://{rundir}/{ipc_prefix}inspect\n\
             stats_spec=ipc://{rundir}/from-include\n",
        );
        let main = dir.write(
            "pushpin.conf",
            "[global]\nlibdir=lib\ninclude=internal.conf\n[handler]\nstats_spec=ipc://{rundir}/{ipc_prefix}stats\n",
        );
        let (s, warnings) = load_ok(&main);
        assert!(
            warnings.is_empty(),
            "internal keys are silent: {warnings:?}"
        );
        assert_eq!(
            s.stats_spec,
            Some(format!(
                "ipc://{}/pushpin-stats",
                dir.0.join("run").display()
            ))
        );
        assert_eq!(s.libdir, Some(dir.0.join("lib")));

        let main = dir.write("missing.conf", "[global]\ninclude=nope.conf\n");
        let (_, warnings) = load_ok(&main);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("missing.conf:2: include"),
            "{warnings:?}"
        );
        assert!(warnings[0].contains("not found, skipped"), "{warnings:?}");

        // No libdir: Pushpin's stock include is skipped with a warning.
        let main = dir.write("nolib.conf", "[global]\ninclude={libdir}/internal.conf\n");
        let (_, warnings) = load_ok(&main);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("libdir is not set"), "{warnings:?}");
    }

    #[test]
    fn symlinked_include_resolves_next_to_the_link() {
        let dir = TempDir::new("symlink");
        dir.write("real/inc.conf", "[global]\ninclude=next.conf\n");
        dir.write("real/next.conf", "[proxy]\nsig_iss=beside-target\n");
        dir.write("links/next.conf", "[proxy]\nsig_iss=beside-link\n");
        std::os::unix::fs::symlink(dir.0.join("real/inc.conf"), dir.0.join("links/inc.conf"))
            .expect("symlink");
        let main = dir.write("main.conf", "[global]\ninclude=links/inc.conf\n");
        let (s, _) = load_ok(&main);
        assert_eq!(s.sig_iss, "beside-link");
    }

    #[test]
    fn include_cycles_are_errors() {
        let dir = TempDir::new("cycle");
        let own = dir.write("self.conf", "[global]\ninclude=self.conf\n");
        let e = load(&own).expect_err("self include must fail");
        assert!(e.reason.contains("include cycle"), "{e}");
        assert_eq!(e.line, 2);

        dir.write("a.conf", "[global]\ninclude=b.conf\n");
        dir.write("b.conf", "\n[global]\ninclude=./a.conf\n");
        let e = load(&dir.0.join("a.conf")).expect_err("a<->b must fail");
        assert!(e.reason.contains("include cycle"), "{e}");
        assert!(e.file.ends_with("b.conf"), "{e}");
        assert_eq!(e.line, 3);
    }

    #[test]
    fn include_depth_is_capped() {
        let dir = TempDir::new("depth");
        // main -> 1 -> 2 -> ... -> n
        let chain = |dir: &TempDir, n: usize| {
            for i in 1..=n {
                let body = if i < n {
                    format!("[global]\ninclude={}.conf\n", i + 1)
                } else {
                    "[proxy]\ndebug=true\n".to_string()
                };
                dir.write(&format!("{i}.conf"), &body);
            }
            dir.write("main.conf", "[global]\ninclude=1.conf\n")
        };
        let main = chain(&dir, INCLUDE_DEPTH_MAX);
        let (s, _) = load_ok(&main);
        assert!(s.debug, "the deepest allowed include is read");

        let main = chain(&dir, INCLUDE_DEPTH_MAX + 1);
        let e = load(&main).expect_err("too deep must fail");
        assert!(e.reason.contains("nested deeper"), "{e}");
    }

    #[test]
    fn include_errors_in_included_file_name_that_file() {
        let dir = TempDir::new("incerr");
        dir.write("inc.conf", "[proxy]\ndebug=maybe\n");
        let main = dir.write("main.conf", "[global]\ninclude=inc.conf\n");
        let e = load(&main).expect_err("bad bool must fail");
        assert!(e.file.ends_with("inc.conf"), "{e}");
        assert_eq!(e.line, 2);

        dir.write("broken.conf", "[proxy\n");
        let main = dir.write("main2.conf", "[global]\ninclude=broken.conf\n");
        let e = load(&main).expect_err("bad syntax must fail");
        assert!(e.file.ends_with("broken.conf"), "{e}");
        assert_eq!(e.line, 1);

        // An include that is a folder is an error, not a hang or a warning.
        std::fs::create_dir_all(dir.0.join("folder.conf")).expect("mkdir");
        let main = dir.write("main3.conf", "[global]\ninclude=folder.conf\n");
        let e = load(&main).expect_err("folder include must fail");
        assert!(e.reason.contains("not a regular file"), "{e}");
    }

    #[test]
    fn file_size_cap_and_encoding() {
        let dir = TempDir::new("size");
        let mut big = String::from("[proxy]\n");
        while big.len() <= CONFIG_TEXT_MAX {
            big.push_str("# padding padding padding padding padding padding padding\n");
        }
        let path = dir.write("big.conf", &big);
        let e = load(&path).expect_err("big file must fail");
        assert_eq!(e.line, 0);
        assert!(e.reason.contains("larger than"), "{e}");

        let path = dir.0.join("latin1.conf");
        std::fs::write(&path, b"[proxy]\nsig_iss=\xe9\n").expect("write");
        let e = load(&path).expect_err("non-UTF-8 must fail");
        assert!(e.reason.contains("UTF-8"), "{e}");

        let e = load(&dir.0.join("absent.conf")).expect_err("absent must fail");
        assert!(e.reason.contains("cannot read"), "{e}");
        assert!(e
            .to_string()
            .starts_with(&dir.0.join("absent.conf").display().to_string()));
    }

    #[test]
    fn debian_package_files_load_when_installed() {
        // Real-world sample: only when Debian's pushpin package is present on this machine.
        let path = Path::new("/etc/pushpin/pushpin.conf");
        if !path.is_file() {
            return;
        }
        let (s, warnings) = load_ok(path);
        assert_eq!(s.http_ports, vec!["0.0.0.0:7999".parse().expect("addr")]);
        assert_eq!(s.rundir, PathBuf::from("/var/run/pushpin"));
        assert_eq!(s.push_in_http_port, Some(5561));
        assert_eq!(s.routesfile, Some(PathBuf::from("/etc/pushpin/routes")));
        for w in &warnings {
            assert!(!w.contains("unknown key"), "{w}");
        }
    }

    /// Regression (fuzz/corpus/config_file/crash-7497…-include-path-newline): an escaped newline in an include
    /// path must not split a warning or an error into several log lines.
    #[test]
    fn include_paths_with_control_characters_stay_on_one_line() {
        let dir = std::path::Path::new("/nonexistent-dir");
        let (_, warnings) =
            Settings::from_text("[global]\ninclude=a\\nb\n", "fuzz.conf", dir).unwrap();
        assert!(!warnings.is_empty());
        assert!(
            warnings
                .iter()
                .all(|w| !w.contains('\n') && !w.contains('\r')),
            "{warnings:?}"
        );
        let err = Settings::from_text(
            "[global]\ninclude=\"/etc/passwd/x\\ny\"\n",
            "fuzz.conf",
            dir,
        )
        .unwrap_err();
        assert!(!err.to_string().contains('\n'), "{err}");
        let (_, warnings) = Settings::from_text("[proxy]\na\rb=1\n", "fuzz.conf", dir).unwrap();
        assert!(warnings.iter().all(|w| !w.contains('\r')), "{warnings:?}");
    }
}
