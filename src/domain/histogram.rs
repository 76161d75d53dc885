//! Histograms of seconds, as the daily rollups keep them: percentiles of long
//! ranges are read from these instead of sorting every encounter.
//!
//! Buckets are exact below 128 s. From 2^k on (k >= 7) they are 2^(k-6)
//! wide, 64 per doubling, so a bucket's midpoint is within 1/128 of every
//! value in it. The SQL function `verdad_seconds_bucket` computes the same
//! buckets; an api test checks the two agree.

use super::analysis::Distribution;

/// Below this every value has a bucket of its own.
const EXACT_BELOW: i32 = 128;

/// The lowest value of `seconds`' bucket.
pub fn bucket_floor(seconds: i32) -> i32 {
    if seconds < EXACT_BELOW {
        seconds
    } else {
        seconds - seconds % bucket_width(seconds)
    }
}

/// How many whole seconds the bucket of `seconds` spans.
pub fn bucket_width(seconds: i32) -> i32 {
    if seconds < EXACT_BELOW {
        1
    } else {
        let power = 31 - seconds.leading_zeros() as i32;
        1 << (power - 6)
    }
}

/// The value a bucket stands for: its only value when exact, otherwise the
/// middle of the whole seconds it spans.
fn representative(floor: i32) -> f64 {
    f64::from(floor) + f64::from(bucket_width(floor) - 1) / 2.0
}

/// Counts per bucket floor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// (bucket floor, count), ascending by floor, counts above zero.
    buckets: Vec<(i32, i64)>,
}

impl Histogram {
    /// From (bucket floor, count) pairs in any order, a floor possibly more
    /// than once; zero counts (left by erased encounters) are dropped.
    pub fn new(mut pairs: Vec<(i32, i64)>) -> Self {
        pairs.sort_unstable_by_key(|&(floor, _)| floor);
        let mut buckets: Vec<(i32, i64)> = Vec::with_capacity(pairs.len());
        for (floor, count) in pairs {
            match buckets.last_mut() {
                Some(last) if last.0 == floor => last.1 += count,
                _ => buckets.push((floor, count)),
            }
        }
        buckets.retain(|&(_, count)| count > 0);
        Self { buckets }
    }

    pub fn count(&self) -> i64 {
        self.buckets.iter().map(|&(_, count)| count).sum()
    }

    /// The value at 0-based rank `rank` of the sorted values.
    fn value_at(&self, rank: i64) -> Option<f64> {
        let mut below = 0;
        for &(floor, count) in &self.buckets {
            below += count;
            if rank < below {
                return Some(representative(floor));
            }
        }
        None
    }

    /// The continuous percentile `p` (0 to 1), interpolated between ranks as
    /// PostgreSQL's `percentile_cont`; `None` when empty.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = p.clamp(0.0, 1.0) * (count - 1) as f64;
        let lower = rank.floor();
        let low = self.value_at(lower as i64)?;
        let high = self.value_at(rank.ceil() as i64)?;
        Some(low + (rank - lower) * (high - low))
    }

    /// Count, median and 90th percentile, marked as read from buckets.
    pub fn distribution(&self) -> Distribution {
        Distribution::new(
            self.count(),
            self.percentile(0.5),
            self.percentile(0.9),
            true,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_below_128_and_64_per_doubling_above() {
        assert_eq!(bucket_floor(0), 0);
        assert_eq!(bucket_floor(127), 127);
        assert_eq!(bucket_floor(128), 128);
        assert_eq!(bucket_floor(129), 128);
        assert_eq!(bucket_floor(255), 254);
        assert_eq!(bucket_floor(256), 256);
        assert_eq!(bucket_floor(259), 256);
        assert_eq!(bucket_floor(260), 260);
        assert_eq!(bucket_floor(511), 508);
        assert_eq!(bucket_floor(604_800), 598_016);
        assert_eq!(bucket_width(598_016), 8192);
        assert_eq!(bucket_floor(i32::MAX), 2_130_706_432);
    }

    #[test]
    fn every_value_is_within_1_in_128_of_its_bucket_midpoint() {
        for seconds in (0..70_000).chain([604_799, 604_800, 1 << 30]) {
            let floor = bucket_floor(seconds);
            assert!(floor <= seconds && seconds < floor + bucket_width(floor));
            let error = (representative(floor) - f64::from(seconds)).abs();
            assert!(
                error <= f64::from(seconds.max(1)) / 128.0,
                "{seconds} is {error} from its bucket's midpoint"
            );
        }
    }

    #[test]
    fn exact_buckets_give_percentile_cont() {
        // percentile_cont over 10, 12, 18: median 12; p90 at rank 1.8 is
        // 12 + 0.8 * 6 = 16.8.
        let histogram = Histogram::new(vec![(18, 1), (10, 1), (12, 1)]);
        assert_eq!(histogram.percentile(0.5), Some(12.0));
        let p90 = histogram.percentile(0.9).unwrap_or_default();
        assert!((p90 - 16.8).abs() < 1e-9);
        // Two middle values: their mean.
        let histogram = Histogram::new(vec![(10, 2), (20, 1), (20, 1)]);
        assert_eq!(histogram.percentile(0.5), Some(15.0));
    }

    #[test]
    fn wide_buckets_stand_for_their_midpoint() {
        // 600 lies in [600, 608): width 8, midpoint 603.5.
        assert_eq!(bucket_floor(600), 600);
        let histogram = Histogram::new(vec![(600, 3)]);
        assert_eq!(histogram.percentile(0.5), Some(603.5));
    }

    #[test]
    fn empty_and_zero_counts_have_no_percentiles() {
        let histogram = Histogram::new(vec![(5, 0)]);
        assert_eq!(histogram.count(), 0);
        assert_eq!(histogram.percentile(0.5), None);
        let d = histogram.distribution();
        assert_eq!((d.count, d.median, d.p90), (0, None, None));
    }
}
