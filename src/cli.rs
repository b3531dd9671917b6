//! Command-line arguments, parsed by hand (Pushpin's flags, in both `--flag value` and `--flag=value` forms).

use std::path::PathBuf;

pub const USAGE: &str = "\
holdfast: a realtime reverse proxy speaking GRIP (a drop-in replacement for Pushpin)

Usage:
  holdfast [OPTIONS]
  holdfast publish CHANNEL [CONTENT] [OPTIONS]   (see holdfast publish --help)

Options:
  --config FILE        pushpin.conf to read (default: ./config/pushpin.conf, ./pushpin.conf,
                       ./examples/config/pushpin.conf, /etc/pushpin/pushpin.conf, else built-in defaults)
  --port [ADDR:]PORT   listen here instead of [runner] http_port
  --route LINE         a routes-file line; repeatable; replaces the routes file
  --workers N          worker threads (default: [proxy] workers, else the number of CPUs)
  --log-level N        0 error, 1 warn, 2 info, 3 debug, 4 trace (default: [runner] log_level, else 2)
  --loglevel N         same as --log-level
  --logfile FILE       append the log to FILE instead of standard error
  --verbose            same as --log-level 3
  -h, --help           show this text
  -V, --version        show the version
";

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Options {
    pub config: Option<PathBuf>,
    pub port: Option<String>,
    pub routes: Vec<String>,
    pub workers: Option<usize>,
    pub log_level: Option<u8>,
    pub log_file: Option<PathBuf>,
    pub help: bool,
    pub version: bool,
}

/// Parse arguments (without the program name).
pub fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let takes_value = matches!(
            name,
            "--config"
                | "--port"
                | "--route"
                | "--workers"
                | "--log-level"
                | "--loglevel"
                | "--logfile"
        );
        let value = if takes_value {
            match inline {
                Some(v) => Some(v),
                None => {
                    i += 1;
                    Some(
                        args.get(i)
                            .cloned()
                            .ok_or_else(|| format!("{name} needs a value"))?,
                    )
                }
            }
        } else if inline.is_some() {
            return Err(format!("{name} takes no value"));
        } else {
            None
        };
        match (name, value) {
            ("--config", Some(v)) => o.config = Some(PathBuf::from(v)),
            ("--port", Some(v)) => o.port = Some(v),
            ("--route", Some(v)) => o.routes.push(v),
            ("--workers", Some(v)) => {
                let n: usize = v
                    .parse()
                    .map_err(|_| format!("--workers: not a number: {v}"))?;
                if n == 0 || n > 1024 {
                    return Err("--workers must be between 1 and 1024".into());
                }
                o.workers = Some(n);
            }
            ("--log-level" | "--loglevel", Some(v)) => {
                o.log_level = Some(
                    v.parse()
                        .map_err(|_| format!("{name}: not a number: {v}"))?,
                )
            }
            ("--logfile", Some(v)) => o.log_file = Some(PathBuf::from(v)),
            ("--verbose", None) => o.log_level = Some(o.log_level.unwrap_or(0).max(3)),
            ("-h" | "--help", None) => o.help = true,
            ("-V" | "--version", None) => o.version = true,
            _ => return Err(format!("unknown option: {arg} (see --help)")),
        }
        i += 1;
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn both_value_forms_and_repeats() {
        let o = parse(&args(&[
            "--config=/etc/p.conf",
            "--port",
            "127.0.0.1:8000",
            "--route",
            "* test",
            "--route=a.test 127.0.0.1:1",
            "--workers",
            "3",
            "--verbose",
        ]))
        .unwrap();
        assert_eq!(o.config, Some(PathBuf::from("/etc/p.conf")));
        assert_eq!(o.port.as_deref(), Some("127.0.0.1:8000"));
        assert_eq!(o.routes, vec!["* test", "a.test 127.0.0.1:1"]);
        assert_eq!(o.workers, Some(3));
        assert_eq!(o.log_level, Some(3));
    }

    #[test]
    fn errors_name_the_option() {
        for (input, needle) in [
            (&["--bogus"][..], "unknown option: --bogus"),
            (&["--config"][..], "--config needs a value"),
            (&["--workers", "x"][..], "--workers: not a number"),
            (&["--workers", "0"][..], "between 1 and 1024"),
            (&["--help=1"][..], "takes no value"),
        ] {
            let err = parse(&args(input)).unwrap_err();
            assert!(err.contains(needle), "{input:?}: {err}");
        }
    }
}
