//! A fixed-size latency histogram with log-linear buckets: every power of two is split into
//! `SUB_BUCKETS` equal parts, so any recorded value is known to within 1/64 (about 1.6 %) and memory
//! stays at `BUCKETS` counters however long the run.

/// Bits of precision below the leading one.
const SUB_BITS: u32 = 6;
const SUB_BUCKETS: usize = 1 << SUB_BITS;
/// Values below `SUB_BUCKETS` get one bucket each; each power of two above gets `SUB_BUCKETS`.
pub const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB_BUCKETS;

#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn index_of(value: u64) -> usize {
    if value < SUB_BUCKETS as u64 {
        return value as usize;
    }
    let exp = 63 - value.leading_zeros();
    let shift = exp - SUB_BITS;
    // `mantissa` keeps the leading one, so it lies in [SUB_BUCKETS, 2 * SUB_BUCKETS).
    let mantissa = (value >> shift) as usize;
    (shift as usize + 1) * SUB_BUCKETS + (mantissa - SUB_BUCKETS)
}

/// The smallest value of bucket `index` and the bucket's width.
fn bounds_of(index: usize) -> (u64, u64) {
    let group = index / SUB_BUCKETS;
    if group == 0 {
        return (index as u64, 1);
    }
    let shift = (group - 1) as u32;
    let mantissa = (SUB_BUCKETS + index % SUB_BUCKETS) as u64;
    (mantissa << shift, 1u64 << shift)
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max: 0,
        }
    }

    pub fn record(&mut self, value: u64) {
        if let Some(c) = self.counts.get_mut(index_of(value)) {
            *c = c.saturating_add(1);
        }
        self.total = self.total.saturating_add(1);
        self.max = self.max.max(value);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
        self.total = self.total.saturating_add(other.total);
        self.max = self.max.max(other.max);
    }

    pub fn clear(&mut self) {
        self.counts.fill(0);
        self.total = 0;
        self.max = 0;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0.0..=1.0): the middle of the bucket holding that rank, never above
    /// the largest value recorded. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        let rank = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (index, count) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(*count);
            if seen >= rank {
                let (low, width) = bounds_of(index);
                return (low + (width - 1) / 2).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_falls_inside_its_bucket() {
        let mut probes: Vec<u64> = (0..5000).collect();
        for exp in 6..64 {
            let p = 1u64 << exp;
            probes.extend([p - 1, p, p + 1, p + p / 3]);
        }
        probes.push(u64::MAX);
        for v in probes {
            let i = index_of(v);
            assert!(i < BUCKETS, "{v} -> {i}");
            let (low, width) = bounds_of(i);
            assert!(
                low <= v && v - low < width,
                "{v} in bucket {i} = [{low}, +{width})"
            );
            assert!(width == 1 || (width as f64) / (low as f64) <= 1.0 / 64.0 + 1e-12);
        }
    }

    #[test]
    fn indices_are_monotonic() {
        let mut last = 0;
        for v in (0..200_000u64).step_by(7) {
            let i = index_of(v);
            assert!(i >= last);
            last = i;
        }
    }

    #[test]
    fn quantiles_of_uniform_values() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        let cases = [
            (0.5, 50_000.0),
            (0.99, 99_000.0),
            (0.0, 1.0),
            (1.0, 100_000.0),
        ];
        for (q, want) in cases {
            let got = h.quantile(q) as f64;
            assert!(
                (got - want).abs() / want <= 0.02,
                "q={q}: got {got}, want {want}"
            );
        }
        assert_eq!(h.max(), 100_000);
        assert_eq!(h.count(), 100_000);
    }

    #[test]
    fn merge_and_clear() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record(10);
        b.record(1_000_000);
        b.record(20);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.max(), 1_000_000);
        assert_eq!(a.quantile(0.5), 20);
        a.clear();
        assert_eq!((a.count(), a.max(), a.quantile(0.5)), (0, 0, 0));
    }
}
