//! What analyses share: the scope they look at, rates with their Wilson
//! intervals, and the rows they answer with.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    touchpoint::{Channel, Stage},
    violation::FieldViolation,
};

/// The days an analysis looks back when no start is given.
pub const DEFAULT_RANGE_DAYS: i32 = 30;
/// The path variants a MOT cycle shows when the caller asks for none.
pub const DEFAULT_VARIANTS: i64 = 10;
pub const MAX_VARIANTS: i64 = 100;
/// The most touchpoints a scope may name.
pub const MAX_SCOPE_TOUCHPOINTS: usize = 1000;
/// z for a 95% interval.
const Z_95: f64 = 1.959_963_984_540_054;

/// The encounters an analysis looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    /// `None`: every touchpoint.
    pub touchpoint_ids: Option<Vec<Uuid>>,
    pub stage: Option<Stage>,
    pub channel: Option<Channel>,
}

impl Scope {
    /// Whether the scope's touchpoint and stage filters keep `touchpoint`.
    pub fn names(&self, touchpoint: &super::touchpoint::Touchpoint) -> bool {
        self.touchpoint_ids
            .as_ref()
            .is_none_or(|ids| ids.contains(&touchpoint.id))
            && self.stage.is_none_or(|stage| stage == touchpoint.stage)
    }

    /// Whether the scope keeps every encounter of its range, so that its
    /// journeys are whole within it.
    pub fn is_whole_journeys(&self) -> bool {
        self.touchpoint_ids.is_none() && self.stage.is_none() && self.channel.is_none()
    }
}

/// Checks a time range; `start` defaults to `default_start`, `end` to now.
pub fn range(
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    default_start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), FieldViolation> {
    let end = end.unwrap_or(now);
    let start = start.unwrap_or(default_start);
    if end <= start {
        return Err(FieldViolation::new(
            "scope.end_time",
            format!(
                "must be after the start time {}, got {}",
                start.to_rfc3339(),
                end.to_rfc3339()
            ),
        ));
    }
    Ok((start, end))
}

/// How many path variants to show.
pub fn max_variants(requested: i32) -> Result<i64, FieldViolation> {
    match requested {
        n if n < 0 => Err(FieldViolation::new(
            "max_variants",
            format!("must not be negative, got {n}"),
        )),
        0 => Ok(DEFAULT_VARIANTS),
        n => Ok(i64::from(n).min(MAX_VARIANTS)),
    }
}

/// The pairs a MOT cycle lists when the caller names no number.
pub const DEFAULT_PAIRS: usize = 5000;
/// The most pairs a MOT cycle lists.
pub const MAX_PAIRS: usize = 20_000;

/// How many directly-follows pairs to list.
pub fn max_pairs(requested: i32) -> Result<usize, FieldViolation> {
    match requested {
        n if n < 0 => Err(FieldViolation::new(
            "max_pairs",
            format!("must not be negative, got {n}"),
        )),
        0 => Ok(DEFAULT_PAIRS),
        n => Ok((n as usize).min(MAX_PAIRS)),
    }
}

/// The least count of a pair listed.
pub fn min_pair_count(requested: i64) -> Result<i64, FieldViolation> {
    if requested < 0 {
        return Err(FieldViolation::new(
            "min_pair_count",
            format!("must not be negative, got {requested}"),
        ));
    }
    Ok(requested)
}

/// A share with its denominator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rate {
    pub numerator: i64,
    pub denominator: i64,
}

impl Rate {
    pub fn new(numerator: i64, denominator: i64) -> Self {
        Self {
            numerator,
            denominator,
        }
    }

    /// `None` when there is nothing to divide by.
    pub fn value(&self) -> Option<f64> {
        (self.denominator > 0).then(|| self.numerator as f64 / self.denominator as f64)
    }

    /// The 95% Wilson score interval: unlike the normal approximation it
    /// stays inside 0..1 and stays wide for small samples, where 1 bad score
    /// out of 5 is noise.
    pub fn wilson(&self) -> Option<(f64, f64)> {
        if self.denominator <= 0 {
            return None;
        }
        let n = self.denominator as f64;
        let p = self.numerator as f64 / n;
        let z2 = Z_95 * Z_95;
        let centre = p + z2 / (2.0 * n);
        let spread = Z_95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
        let denominator = 1.0 + z2 / n;
        // At 0 of n and n of n the bounds are exactly 0 and 1; computed,
        // they come out a rounding error away.
        let low = if self.numerator == 0 {
            0.0
        } else {
            ((centre - spread) / denominator).max(0.0)
        };
        let high = if self.numerator == self.denominator {
            1.0
        } else {
            ((centre + spread) / denominator).min(1.0)
        };
        Some((low, high))
    }
}

/// Answers to "how likely are you to recommend us" (0 to 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Nps {
    pub respondents: i64,
    pub promoters: i64,
    pub detractors: i64,
}

impl Nps {
    /// Those who answered 7 or 8: counted only in the denominator.
    pub fn passives(&self) -> i64 {
        self.respondents - self.promoters - self.detractors
    }

    /// % promoters (9-10) - % detractors (0-6), -100 to 100.
    pub fn score(&self) -> Option<f64> {
        (self.respondents > 0)
            .then(|| 100.0 * (self.promoters - self.detractors) as f64 / self.respondents as f64)
    }
}

/// Measured seconds: how many, their median and 90th percentile.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Distribution {
    pub count: i64,
    pub median: Option<f64>,
    pub p90: Option<f64>,
    /// Read from histogram buckets (domain::histogram) rather than from
    /// every value: within 1/128 of the exact figure.
    pub approximate: bool,
}

impl Distribution {
    /// A distribution with its percentiles to the millisecond (see
    /// [`percentile_seconds`]).
    pub fn new(count: i64, median: Option<f64>, p90: Option<f64>, approximate: bool) -> Self {
        Self {
            count,
            median: median.map(percentile_seconds),
            p90: p90.map(percentile_seconds),
            approximate,
        }
    }
}

/// A percentile of seconds as shown: to the millisecond. Interpolating
/// between two whole seconds in binary floating point leaves noise in the
/// last digits (2224.2000000000007), which no reader of seconds needs.
pub fn percentile_seconds(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// The scorecard figures of one touchpoint, or of all of them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScorecardFigures {
    pub encounters: i64,
    pub rated: i64,
    pub mean_satisfaction: Option<f64>,
    pub satisfied: i64,
    pub top_box: i64,
    pub failed: i64,
    pub wait_seconds: Distribution,
    pub first_response_seconds: Distribution,
    pub met: i64,
    pub violated: i64,
}

impl ScorecardFigures {
    pub fn csat(&self) -> Rate {
        Rate::new(self.satisfied, self.rated)
    }

    pub fn top_box(&self) -> Rate {
        Rate::new(self.top_box, self.rated)
    }

    pub fn failure_rate(&self) -> Rate {
        Rate::new(self.failed, self.encounters)
    }

    pub fn compliance(&self) -> Rate {
        Rate::new(self.met, self.met + self.violated)
    }
}

/// A scorecard figure a trend follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrendFigure {
    Encounters,
    MeanSatisfaction,
    Csat,
    TopBox,
    FailureRate,
    WaitMedian,
    FirstResponseMedian,
    Compliance,
}

impl TrendFigure {
    /// Whether the figure is a median, which needs the measures sorted.
    pub fn needs_percentiles(self) -> bool {
        matches!(
            self,
            TrendFigure::WaitMedian | TrendFigure::FirstResponseMedian
        )
    }

    /// The figure's value and what it rests on; the value is `None` when
    /// there is nothing to compute it from.
    pub fn of(self, f: &ScorecardFigures) -> (Option<f64>, i64) {
        let share = |rate: Rate| (rate.value(), rate.denominator);
        match self {
            TrendFigure::Encounters => (Some(f.encounters as f64), f.encounters),
            TrendFigure::MeanSatisfaction => (f.mean_satisfaction, f.rated),
            TrendFigure::Csat => share(f.csat()),
            TrendFigure::TopBox => share(f.top_box()),
            TrendFigure::FailureRate => share(f.failure_rate()),
            TrendFigure::WaitMedian => (f.wait_seconds.median, f.wait_seconds.count),
            TrendFigure::FirstResponseMedian => (
                f.first_response_seconds.median,
                f.first_response_seconds.count,
            ),
            TrendFigure::Compliance => share(f.compliance()),
        }
    }
}

/// The length of a trend's buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Day,
    Week,
    Month,
}

/// The most buckets a trend has.
pub const MAX_BUCKETS: i64 = 1000;

/// About what a trend's point takes in an answer, at most: its time, value
/// and denominator with their tags.
const TREND_POINT_BYTES: usize = 32;
/// About what a trend's series takes besides its points: the touchpoint's
/// id and code.
const TREND_SERIES_BYTES: usize = 128;

/// Checks that a trend of `buckets` buckets in `series` series (the total,
/// and each touchpoint's when asked for) fits in `budget` bytes, before it
/// is computed; the refusal says what to ask for instead.
pub fn check_trend_size(
    buckets: usize,
    series: usize,
    per_touchpoint: bool,
    budget: usize,
) -> Result<(), FieldViolation> {
    let bytes =
        series.saturating_mul(TREND_SERIES_BYTES + buckets.saturating_mul(TREND_POINT_BYTES));
    if bytes <= budget {
        return Ok(());
    }
    let points = buckets.saturating_mul(series);
    let field = if per_touchpoint {
        "per_touchpoint"
    } else {
        "granularity"
    };
    let narrow = if per_touchpoint {
        "ask by week or month, for fewer touchpoints (scope.touchpoint_codes or a stage), \
         for a shorter range, or in total"
    } else {
        "ask by week or month, or for a shorter range"
    };
    Err(FieldViolation::new(
        field,
        format!(
            "would give {points} points ({buckets} buckets in {series} series), about {bytes} \
             bytes: more than one answer holds ({budget} bytes); {narrow}"
        ),
    ))
}

impl Granularity {
    /// The unit PostgreSQL's date_trunc and intervals name it by.
    pub fn unit(self) -> &'static str {
        match self {
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
        }
    }

    /// Checks that a range cuts into at most [`MAX_BUCKETS`] buckets
    /// (counting generously: months as 28 days, and a partial bucket at
    /// each end).
    pub fn check_buckets(
        self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<(), FieldViolation> {
        let days = (end - start).num_days();
        let buckets = match self {
            Granularity::Day => days,
            Granularity::Week => days / 7,
            Granularity::Month => days / 28,
        } + 2;
        if buckets > MAX_BUCKETS {
            return Err(FieldViolation::new(
                "granularity",
                format!(
                    "cuts the range into about {buckets} buckets, more than {MAX_BUCKETS}: \
                     narrow the range or choose a longer granularity"
                ),
            ));
        }
        Ok(())
    }
}

/// The file format of an exported event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Csv,
    Xes,
}

/// Journeys a touchpoint's importance needs at least.
pub const MIN_IMPORTANCE_PAIRS: i64 = 3;

/// Where a touchpoint falls in the importance-performance matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quadrant {
    ConcentrateHere,
    KeepUpTheGoodWork,
    LowPriority,
    PossibleOverkill,
}

/// The quadrant of a touchpoint, the matrix split at `splits` (importance,
/// performance); values at a split count as high.
pub fn quadrant(importance: f64, performance: f64, splits: (f64, f64)) -> Quadrant {
    match (importance >= splits.0, performance >= splits.1) {
        (true, false) => Quadrant::ConcentrateHere,
        (true, true) => Quadrant::KeepUpTheGoodWork,
        (false, false) => Quadrant::LowPriority,
        (false, true) => Quadrant::PossibleOverkill,
    }
}

/// The splits of the matrix: the mean importance and mean performance of
/// the touchpoints placed, `None` when none is.
pub fn splits(placed: &[(f64, f64)]) -> Option<(f64, f64)> {
    if placed.is_empty() {
        return None;
    }
    let n = placed.len() as f64;
    Some((
        placed.iter().map(|p| p.0).sum::<f64>() / n,
        placed.iter().map(|p| p.1).sum::<f64>() / n,
    ))
}

/// One directly-follows pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub from: Uuid,
    pub to: Uuid,
    pub count: i64,
    pub mean_seconds: f64,
    pub median_seconds: f64,
    /// The median was read from buckets (domain::histogram).
    pub median_approximate: bool,
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    #[test]
    fn a_trend_too_large_for_one_answer_is_refused_with_what_to_narrow() {
        let budget = 4 * 1024 * 1024;
        assert!(check_trend_size(1000, 1, false, budget).is_ok());
        assert!(check_trend_size(365, 300, true, budget).is_ok());
        let refused = check_trend_size(365, 2001, true, budget).unwrap_err();
        assert_eq!(refused.field, "per_touchpoint");
        assert!(
            refused.description.contains("730365 points"),
            "{}",
            refused.description
        );
        assert!(refused.description.contains("by week or month"));
        let refused = check_trend_size(1000, 1, false, 10_000).unwrap_err();
        assert_eq!(refused.field, "granularity");
    }

    #[test]
    fn percentiles_of_seconds_lose_their_float_noise() {
        assert_eq!(percentile_seconds(2224.2000000000007), 2224.2);
        assert_eq!(percentile_seconds(0.1 + 0.2).to_string(), "0.3");
        assert_eq!(percentile_seconds(86_400.0 * 365.0), 31_536_000.0);
        let d = Distribution::new(3, Some(200.49999999999997), Some(280.00000000000006), false);
        assert_eq!((d.median, d.p90), (Some(200.5), Some(280.0)));
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-4
    }

    #[test]
    fn wilson_matches_worked_examples() {
        // 1 of 5: p = 0.2, interval 0.0362 to 0.6245.
        let (low, high) = Rate::new(1, 5).wilson().unwrap();
        assert!(close(low, 0.0362) && close(high, 0.6245), "{low} {high}");
        // 0 of 10: 0 to 0.2775.
        let (low, high) = Rate::new(0, 10).wilson().unwrap();
        assert!(close(low, 0.0) && close(high, 0.2775), "{low} {high}");
        // 50 of 100: 0.4038 to 0.5962.
        let (low, high) = Rate::new(50, 100).wilson().unwrap();
        assert!(close(low, 0.4038) && close(high, 0.5962), "{low} {high}");
        assert_eq!(Rate::new(0, 3).wilson().unwrap().0, 0.0);
        assert_eq!(Rate::new(3, 3).wilson().unwrap().1, 1.0);
        assert_eq!(Rate::new(0, 0).wilson(), None);
        assert_eq!(Rate::new(0, 0).value(), None);
        assert_eq!(Rate::new(1, 4).value(), Some(0.25));
    }

    #[test]
    fn nps_is_promoters_minus_detractors_over_everyone() {
        // 5 promoters, 3 passives, 2 detractors: 50% - 20% = 30.
        let nps = Nps {
            respondents: 10,
            promoters: 5,
            detractors: 2,
        };
        assert_eq!(nps.passives(), 3);
        assert_eq!(nps.score(), Some(30.0));
        assert_eq!(Nps::default().score(), None);
    }

    #[test]
    fn ranges_default_and_must_not_be_empty() {
        let now = Utc::now();
        let default_start = now - Duration::days(30);
        assert_eq!(
            range(None, None, default_start, now).unwrap(),
            (default_start, now)
        );
        let err = range(Some(now), Some(now), default_start, now).unwrap_err();
        assert_eq!(err.field, "scope.end_time");
    }

    #[test]
    fn trend_figures_read_the_scorecard() {
        let f = ScorecardFigures {
            encounters: 4,
            rated: 3,
            mean_satisfaction: Some(4.0),
            satisfied: 2,
            top_box: 1,
            failed: 1,
            ..ScorecardFigures::default()
        };
        assert_eq!(TrendFigure::Encounters.of(&f), (Some(4.0), 4));
        assert_eq!(TrendFigure::MeanSatisfaction.of(&f), (Some(4.0), 3));
        assert_eq!(TrendFigure::FailureRate.of(&f), (Some(0.25), 4));
        assert_eq!(TrendFigure::WaitMedian.of(&f), (None, 0));
        assert_eq!(TrendFigure::Compliance.of(&f), (None, 0));
    }

    #[test]
    fn a_trend_has_at_most_1000_buckets() {
        let start = Utc::now();
        assert!(
            Granularity::Day
                .check_buckets(start, start + Duration::days(998))
                .is_ok()
        );
        assert!(
            Granularity::Day
                .check_buckets(start, start + Duration::days(1000))
                .is_err()
        );
        assert!(
            Granularity::Week
                .check_buckets(start, start + Duration::days(1000))
                .is_ok()
        );
    }

    #[test]
    fn quadrants_split_at_the_means() {
        let placed = [(1.0, 3.0), (-1.0, 3.0), (0.5, 5.0), (-0.5, 5.0)];
        let split = splits(&placed).unwrap();
        assert_eq!(split, (0.0, 4.0));
        assert_eq!(quadrant(1.0, 3.0, split), Quadrant::ConcentrateHere);
        assert_eq!(quadrant(0.5, 5.0, split), Quadrant::KeepUpTheGoodWork);
        assert_eq!(quadrant(-1.0, 3.0, split), Quadrant::LowPriority);
        assert_eq!(quadrant(-0.5, 5.0, split), Quadrant::PossibleOverkill);
        assert_eq!(quadrant(0.0, 4.0, split), Quadrant::KeepUpTheGoodWork);
        assert_eq!(splits(&[]), None);
    }

    #[test]
    fn variants_default_to_10_and_stop_at_100() {
        assert_eq!(max_pairs(0).unwrap(), DEFAULT_PAIRS);
        assert_eq!(max_pairs(7).unwrap(), 7);
        assert_eq!(max_pairs(i32::MAX).unwrap(), MAX_PAIRS);
        assert!(max_pairs(-1).is_err());
        assert!(min_pair_count(-1).is_err());
        assert_eq!(min_pair_count(3).unwrap(), 3);
        assert_eq!(max_variants(0).unwrap(), 10);
        assert_eq!(max_variants(1000).unwrap(), 100);
        assert!(max_variants(-1).is_err());
    }
}
