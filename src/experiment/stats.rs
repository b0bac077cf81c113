//! The small statistics gilscope reports: medians with their spread over
//! repeated rounds, percentiles of latencies, and a histogram of GIL hold
//! spans that stays the same size however many hand-overs a run has.

/// The median of `values` (the upper middle one), None when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

/// The `p`th percentile (0–100) of sorted `values`, nearest rank.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// A figure measured over rounds: its median, least and most.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Spread> {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        Some(Spread {
            median: median(&finite)?,
            min: finite.iter().copied().fold(f64::INFINITY, f64::min),
            max: finite.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// Durations (ns) in log-spaced buckets, 32 a decade from 1 µs to 1,000 s:
/// the median or p90 of millions of GIL holds to within 4 %, in 7 KB.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

const PER_DECADE: f64 = 32.0;
const DECADES: usize = 9;
const FLOOR_NS: f64 = 1_000.0;

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; DECADES * PER_DECADE as usize + 1], total: 0 }
    }
}

impl Histogram {
    pub fn add(&mut self, ns: u64) {
        let x = (ns as f64).max(FLOOR_NS);
        let bucket = ((x / FLOOR_NS).log10() * PER_DECADE) as usize;
        let last = self.counts.len() - 1;
        self.counts[bucket.min(last)] += 1;
        self.total += 1;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `p`th percentile (0–100), at the middle of its bucket.
    pub fn percentile_ns(&self, p: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(FLOOR_NS * 10f64.powf((bucket as f64 + 0.5) / PER_DECADE));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_is_the_median_and_the_extremes() {
        let s = Spread::of(&[1.0, 3.0, 2.0, f64::NAN]);
        assert_eq!(s, Some(Spread { median: 2.0, min: 1.0, max: 3.0 }));
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&[7], 99.0), Some(7));
    }

    #[test]
    fn the_histogram_finds_the_median_hold_to_within_a_few_per_cent() {
        let mut h = Histogram::default();
        for i in 0..1000u64 {
            h.add(4_000_000 + i * 2_000); // 4.0 – 6.0 ms
        }
        let median = h.percentile_ns(50.0).unwrap_or(0.0);
        assert!((median / 5_000_000.0 - 1.0).abs() < 0.04, "median {median}");
        assert_eq!(h.count(), 1000);
    }
}
