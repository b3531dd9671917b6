//! CPU time of a process tree from `/proc`, so a benchmark can charge a phase's CPU to the proxy
//! (every process under the one the harness started) and to itself.

use std::collections::HashMap;

/// Processes read from `/proc` at most; a tree bigger than this is not a proxy.
pub const PROCS_MAX: usize = 100_000;

/// The fields of `/proc/<pid>/stat` a CPU sample needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    pub ppid: u32,
    /// utime + stime + cutime + cstime, in clock ticks.
    pub ticks: u64,
}

/// Parses one `/proc/<pid>/stat` line. The command name may hold spaces and parentheses; the last
/// `") "` ends it.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let (head, rest) = text.rsplit_once(") ")?;
    let pid = head.split(" (").next()?.trim().parse().ok()?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    let ppid = fields.get(1)?.parse().ok()?;
    let mut ticks = 0u64;
    for i in 11..15 {
        let v: i64 = fields.get(i)?.parse().ok()?;
        ticks = ticks.saturating_add(u64::try_from(v).unwrap_or(0));
    }
    Some(Stat { pid, ppid, ticks })
}

/// Sums `ticks` over `root` and all its descendants among `stats`; `None` when root is absent.
pub fn tree_ticks(stats: &[Stat], root: u32) -> Option<u64> {
    let mut children: HashMap<u32, Vec<&Stat>> = HashMap::new();
    let mut root_stat = None;
    for s in stats {
        if s.pid == root {
            root_stat = Some(s);
        }
        children.entry(s.ppid).or_default().push(s);
    }
    let mut total = 0u64;
    let mut todo = vec![root_stat?];
    let mut seen = 0usize;
    while let Some(s) = todo.pop() {
        seen += 1;
        if seen > stats.len() {
            break; // a cycle cannot happen in /proc, but a hostile input could claim one
        }
        total = total.saturating_add(s.ticks);
        if let Some(kids) = children.get(&s.pid) {
            todo.extend(kids.iter().filter(|k| k.pid != s.pid));
        }
    }
    Some(total)
}

/// Every process's stat line now; processes that vanish while being read are skipped.
pub fn read_all() -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .take(PROCS_MAX)
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|t| parse_stat(&t))
        .collect()
}

/// CPU ticks of `/proc/self` (all threads, reaped children included).
pub fn self_ticks() -> Option<u64> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?).map(|s| s.ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "4242 (a) b (c)) S 4200 4242 4242 0 -1 4194304 100 0 0 0 17 5 3 2 20 0 1 0 \
1000 1000000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn parses_stat_lines() {
        assert_eq!(
            parse_stat(LINE),
            Some(Stat {
                pid: 4242,
                ppid: 4200,
                ticks: 17 + 5 + 3 + 2
            })
        );
        let cases = [
            "",
            "4242 (a) S",
            "x (a) S 1 1 1 0 -1 0 0 0 0 0 1 1 1 1",
            "4242 a S 1",
        ];
        for c in cases {
            assert_eq!(parse_stat(c), None, "{c:?}");
        }
    }

    #[test]
    fn sums_a_tree() {
        let s = |pid, ppid, ticks| Stat { pid, ppid, ticks };
        let stats = [
            s(1, 0, 1000),
            s(10, 1, 5),
            s(11, 10, 7),
            s(12, 10, 1),
            s(20, 1, 100),
        ];
        assert_eq!(tree_ticks(&stats, 10), Some(13));
        assert_eq!(tree_ticks(&stats, 11), Some(7));
        assert_eq!(tree_ticks(&stats, 1), Some(1113));
        assert_eq!(tree_ticks(&stats, 99), None);
        let looped = [s(5, 6, 1), s(6, 5, 1)];
        assert!(tree_ticks(&looped, 5).is_some());
    }

    #[test]
    fn reads_itself() {
        assert!(self_ticks().is_some());
        let all = read_all();
        assert!(all.iter().any(|s| s.pid == std::process::id()));
    }
}
