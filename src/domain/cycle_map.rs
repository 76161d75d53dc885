//! The MOT cycle as a map: which pairs a readable picture keeps, which run
//! against the designed order, and where journeys wait the most.

use std::collections::HashMap;

use uuid::Uuid;

use super::{analysis::Pair, violation::FieldViolation};

/// The share of transitions a drawn pair carries at least, unless asked.
pub const DEFAULT_MIN_SHARE: f64 = 0.01;
pub const DEFAULT_MAX_TOUCHPOINTS: usize = 40;
pub const MAX_TOUCHPOINTS: usize = 150;
/// What an SVG draws at most: a map people can read, and one the server
/// lays out in well under a second (`diagram::svg` refuses more than about
/// a second's work). Text formats draw all that is kept.
pub const SVG_MAX_TOUCHPOINTS: usize = 40;
pub const SVG_MAX_PAIRS: usize = 100;
/// Bottlenecks a cycle lists.
pub const BOTTLENECKS: usize = 10;

/// The form a diagram is drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Dot,
    Svg,
    Mermaid,
}

impl Format {
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Dot => "text/vnd.graphviz",
            Format::Svg => "image/svg+xml",
            Format::Mermaid => "text/vnd.mermaid",
        }
    }
}

/// Checks a minimum pair share: 0 to 1, 0.01 when unset.
pub fn parse_min_share(field: &str, share: Option<f64>) -> Result<f64, FieldViolation> {
    match share {
        None => Ok(DEFAULT_MIN_SHARE),
        Some(share) if (0.0..=1.0).contains(&share) => Ok(share),
        Some(share) => Err(FieldViolation::new(
            field,
            format!("must be between 0 and 1, got {share}"),
        )),
    }
}

/// Checks a touchpoint cap: 0 means 40, at most 150, negative refused.
pub fn parse_max_touchpoints(field: &str, requested: i32) -> Result<usize, FieldViolation> {
    match requested {
        0 => Ok(DEFAULT_MAX_TOUCHPOINTS),
        n if n < 0 => Err(FieldViolation::new(
            field,
            format!("must not be negative, got {n}"),
        )),
        n => Ok(usize::try_from(n)
            .unwrap_or(MAX_TOUCHPOINTS)
            .min(MAX_TOUCHPOINTS)),
    }
}

/// What a picture keeps of the pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept<'a> {
    /// The touchpoints drawn, the busiest first.
    pub touchpoints: Vec<Uuid>,
    /// The pairs drawn, most frequent first.
    pub pairs: Vec<&'a Pair>,
}

/// Keeps the pairs carrying at least `min_share` of `transitions`, then of
/// their touchpoints the `max_touchpoints` busiest (by the transitions of
/// the kept pairs in and out of each), of the pairs those between kept
/// touchpoints, and of those the `max_pairs` most frequent, with the
/// touchpoints they join.
pub fn prune(
    pairs: &[Pair],
    transitions: i64,
    min_share: f64,
    max_touchpoints: usize,
    max_pairs: usize,
) -> Kept<'_> {
    let floor = min_share * transitions as f64;
    let shared: Vec<&Pair> = pairs
        .iter()
        .filter(|p| p.count > 0 && p.count as f64 >= floor)
        .collect();
    let mut traffic: HashMap<Uuid, i64> = HashMap::new();
    for pair in &shared {
        *traffic.entry(pair.from).or_default() += pair.count;
        if pair.to != pair.from {
            *traffic.entry(pair.to).or_default() += pair.count;
        }
    }
    let mut touchpoints: Vec<(Uuid, i64)> = traffic.into_iter().collect();
    touchpoints.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    touchpoints.truncate(max_touchpoints);
    let touchpoints: Vec<Uuid> = touchpoints.into_iter().map(|(id, _)| id).collect();
    let mut kept: Vec<&Pair> = shared
        .into_iter()
        .filter(|p| touchpoints.contains(&p.from) && touchpoints.contains(&p.to))
        .collect();
    kept.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.from.cmp(&b.from))
            .then(a.to.cmp(&b.to))
    });
    kept.truncate(max_pairs);
    let touchpoints = touchpoints
        .into_iter()
        .filter(|id| kept.iter().any(|p| p.from == *id || p.to == *id))
        .collect();
    Kept {
        touchpoints,
        pairs: kept,
    }
}

/// Whether going from a touchpoint at designed position `from` to one at
/// `to` runs against the designed order: both have a place in it (above
/// 0), and the second comes earlier.
pub fn against_design(from: i32, to: i32) -> bool {
    from > 0 && to > 0 && to < from
}

/// The pairs with the most waiting in all (count times median seconds),
/// most first, at most `n`; pairs without waiting are none.
pub fn bottlenecks(pairs: &[Pair], n: usize) -> Vec<(&Pair, f64)> {
    let mut waits: Vec<(&Pair, f64)> = pairs
        .iter()
        .map(|p| (p, p.count as f64 * p.median_seconds))
        .filter(|(_, total)| total.is_finite() && *total > 0.0)
        .collect();
    waits.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then(a.0.from.cmp(&b.0.from))
            .then(a.0.to.cmp(&b.0.to))
    });
    waits.truncate(n);
    waits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(from: u128, to: u128, count: i64, median: f64) -> Pair {
        Pair {
            from: Uuid::from_u128(from),
            to: Uuid::from_u128(to),
            count,
            mean_seconds: median,
            median_seconds: median,
            median_approximate: false,
        }
    }

    #[test]
    fn pruning_keeps_the_shares_asked_for_and_the_busiest_touchpoints() {
        let pairs = vec![
            pair(1, 2, 50, 60.0),
            pair(2, 3, 30, 60.0),
            pair(3, 3, 15, 10.0),
            pair(3, 4, 4, 10.0),
            pair(4, 5, 1, 10.0),
        ];
        let all = prune(&pairs, 100, 0.0, 40, usize::MAX);
        assert_eq!(all.pairs.len(), 5);
        assert_eq!(all.touchpoints.len(), 5);
        // 5% of 100 transitions: the pairs of 4 and 1 go, and so do 4 and 5.
        let shared = prune(&pairs, 100, 0.05, 40, usize::MAX);
        assert_eq!(
            shared.pairs.iter().map(|p| p.count).collect::<Vec<_>>(),
            [50, 30, 15]
        );
        assert_eq!(shared.touchpoints.len(), 3);
        assert!(shared.pairs.iter().all(|p| p.count >= 5));
        // Two touchpoints: the busiest (2 with 80 transitions in and out,
        // then 1 with 50; 3 has 49, its repeat counted once), and only the
        // pair between them.
        let capped = prune(&pairs, 100, 0.0, 2, usize::MAX);
        assert_eq!(capped.touchpoints, [Uuid::from_u128(2), Uuid::from_u128(1)]);
        assert_eq!(capped.pairs.len(), 1, "{capped:?}");
        assert!(capped.pairs.iter().all(|p| {
            capped.touchpoints.contains(&p.from) && capped.touchpoints.contains(&p.to)
        }));
        // The two most frequent pairs, and the three touchpoints they join.
        let few = prune(&pairs, 100, 0.0, 40, 2);
        assert_eq!(
            few.pairs.iter().map(|p| p.count).collect::<Vec<_>>(),
            [50, 30]
        );
        assert_eq!(few.touchpoints.len(), 3);
    }

    #[test]
    fn only_a_step_back_between_designed_places_runs_against_the_design() {
        assert!(against_design(30, 20));
        assert!(!against_design(20, 30));
        assert!(!against_design(20, 20));
        assert!(!against_design(0, 20));
        assert!(!against_design(30, 0));
    }

    #[test]
    fn bottlenecks_are_the_most_waiting_in_all() {
        let pairs = vec![
            pair(1, 2, 100, 10.0),
            pair(2, 3, 2, 3600.0),
            pair(3, 4, 50, 0.0),
        ];
        let found = bottlenecks(&pairs, 10);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].1, 7200.0);
        assert_eq!(found[1].1, 1000.0);
        assert_eq!(bottlenecks(&pairs, 1).len(), 1);
    }

    #[test]
    fn settings_are_checked() {
        assert_eq!(parse_min_share("s", None).unwrap(), DEFAULT_MIN_SHARE);
        assert!(parse_min_share("s", Some(1.5)).is_err());
        assert!(parse_min_share("s", Some(f64::NAN)).is_err());
        assert_eq!(parse_max_touchpoints("m", 0).unwrap(), 40);
        assert_eq!(parse_max_touchpoints("m", 1000).unwrap(), MAX_TOUCHPOINTS);
        assert!(parse_max_touchpoints("m", -1).is_err());
    }
}
