//! `--name value`, `--name=value` and bare `--flag` options; nothing positional.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How many arguments a command line may have; the bench tools take a handful.
pub const ARGS_MAX: usize = 64;
/// Longest duration option the tools accept, in seconds.
const SECONDS_MAX: f64 = 24.0 * 3600.0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError {
    TooMany,
    Unknown(String),
    MissingValue(String),
    UnexpectedValue(String),
    BadValue { name: String, value: String },
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::TooMany => write!(f, "more than {ARGS_MAX} arguments"),
            ArgError::Unknown(a) => write!(f, "unknown argument {a:?}"),
            ArgError::MissingValue(n) => write!(f, "{n} needs a value"),
            ArgError::UnexpectedValue(n) => write!(f, "{n} takes no value"),
            ArgError::BadValue { name, value } => write!(f, "{name}: cannot use {value:?}"),
        }
    }
}

impl std::error::Error for ArgError {}

/// Parsed options. `valued` names take a value, `flags` do not.
#[derive(Debug, Default)]
pub struct Options {
    values: Vec<(String, String)>,
    flags: Vec<String>,
}

impl Options {
    pub fn parse<I>(argv: I, valued: &[&str], flags: &[&str]) -> Result<Options, ArgError>
    where
        I: IntoIterator<Item = String>,
    {
        let mut out = Options::default();
        let mut it = argv.into_iter();
        let mut seen = 0usize;
        while let Some(arg) = it.next() {
            seen += 1;
            if seen > ARGS_MAX {
                return Err(ArgError::TooMany);
            }
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            if valued.contains(&name.as_str()) {
                let value = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .ok_or_else(|| ArgError::MissingValue(name.clone()))?,
                };
                out.values.push((name, value));
            } else if flags.contains(&name.as_str()) {
                if inline.is_some() {
                    return Err(ArgError::UnexpectedValue(name));
                }
                out.flags.push(name);
            } else {
                return Err(ArgError::Unknown(arg));
            }
        }
        Ok(out)
    }

    /// The last value given for `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|n| n == name)
    }

    /// The value of `name` as a duration in (fractional) seconds, `default` when not given; at most a day.
    pub fn seconds(&self, name: &str, default: f64) -> Result<Duration, String> {
        let s: f64 = self.number(name, default).map_err(|e| e.to_string())?;
        if !(0.0..=SECONDS_MAX).contains(&s) {
            return Err(format!("{name} must be between 0 and {SECONDS_MAX}"));
        }
        Ok(Duration::from_secs_f64(s))
    }

    /// The value of `name` parsed as `T`, or `default` when it was not given.
    pub fn number<T: FromStr>(&self, name: &str, default: T) -> Result<T, ArgError> {
        match self.value(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| ArgError::BadValue {
                name: name.to_string(),
                value: v.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, ArgError> {
        Options::parse(
            args.iter().map(|s| s.to_string()),
            &["--port", "--threads"],
            &["--quiet"],
        )
    }

    #[test]
    fn parses_each_form() {
        let o = parse(&["--port", "80", "--threads=3", "--quiet"]).unwrap();
        assert_eq!(o.number("--port", 0u16).unwrap(), 80);
        assert_eq!(o.number("--threads", 1usize).unwrap(), 3);
        assert!(o.flag("--quiet"));
        let o = parse(&[]).unwrap();
        assert_eq!(o.number("--port", 7u16).unwrap(), 7);
        assert!(!o.flag("--quiet"));
    }

    #[test]
    fn rejects_bad_input() {
        let cases: &[(&[&str], ArgError)] = &[
            (&["--nope"], ArgError::Unknown("--nope".into())),
            (&["--port"], ArgError::MissingValue("--port".into())),
            (&["--quiet=1"], ArgError::UnexpectedValue("--quiet".into())),
            (&["x"], ArgError::Unknown("x".into())),
        ];
        for (args, want) in cases {
            assert_eq!(parse(args).unwrap_err(), *want, "{args:?}");
        }
        let o = parse(&["--port", "http"]).unwrap();
        assert!(matches!(
            o.number("--port", 0u16),
            Err(ArgError::BadValue { .. })
        ));
        let many: Vec<&str> = vec!["--quiet"; ARGS_MAX + 1];
        assert_eq!(parse(&many).unwrap_err(), ArgError::TooMany);
    }
}
