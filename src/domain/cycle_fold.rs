//! The MOT cycle folded from journeys one at a time: directly-follows
//! pairs with their waiting times, start and end touchpoints, path
//! variants, conformance to the designed cycle and journey throughput.
//!
//! The journeys arrive whole and in order (from the journey rollups, or
//! grouped from the encounters by the database), so the fold keeps nothing
//! per journey once it is counted. What it keeps grows with the answer: a
//! pair's distinct waiting times (for its exact median), the distinct
//! paths, and the distinct journey durations and lengths. A log whose
//! times repeat (second or day precision, a stay's lab tests on the same
//! day) holds few of them however many journeys it has.

use std::collections::HashMap;

use uuid::Uuid;

use super::analysis::{Pair, percentile_seconds};

/// One journey: its touchpoints in order and the seconds between each and
/// the next (one fewer than the touchpoints), and from its first to its
/// last encounter.
#[derive(Debug, Clone, Copy)]
pub struct Journey<'a> {
    pub touchpoints: &'a [Uuid],
    pub gaps: &'a [f64],
    pub duration: f64,
}

/// What the fold needs of a touchpoint: its place in the designed cycle
/// (0: none).
pub type CyclePositions = HashMap<Uuid, i32>;

/// Distinct values with how often each was seen, for exact percentiles.
#[derive(Debug, Default, Clone)]
struct Tally {
    /// By the value's bits: the fold sees only finite, non-negative values,
    /// whose bits order as the values do.
    seen: HashMap<u64, u64>,
    count: u64,
    sum: f64,
}

impl Tally {
    fn add(&mut self, value: f64) {
        // -0.0 and 0.0 are the same wait.
        let value = if value == 0.0 { 0.0 } else { value };
        *self.seen.entry(value.to_bits()).or_default() += 1;
        self.count += 1;
        self.sum += value;
    }

    fn mean(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        self.sum / self.count as f64
    }

    /// The distinct values, smallest first, with their counts.
    fn sorted(&self) -> Vec<(f64, u64)> {
        let mut values: Vec<(f64, u64)> = (self.seen.iter())
            .map(|(bits, n)| (f64::from_bits(*bits), *n))
            .collect();
        values.sort_by(|a, b| a.0.total_cmp(&b.0));
        values
    }

    /// The `q` quantile interpolated between the closest ranks, as
    /// PostgreSQL's `percentile_cont` and numpy's median compute it, of
    /// `sorted` (this tally's [`Self::sorted`]).
    fn percentile(&self, sorted: &[(f64, u64)], q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = q * (self.count - 1) as f64;
        let (lower, upper) = (rank.floor() as u64, rank.ceil() as u64);
        let (low, high) = (at_rank(sorted, lower), at_rank(sorted, upper));
        low + (high - low) * (rank - lower as f64)
    }
}

/// The value at `rank` (from 0) of the sorted distinct `values` with their
/// counts.
fn at_rank(values: &[(f64, u64)], rank: u64) -> f64 {
    let mut passed = 0;
    for (value, n) in values {
        passed += n;
        if rank < passed {
            return *value;
        }
    }
    values.last().map_or(0.0, |v| v.0)
}

#[derive(Debug, Default, Clone, Copy)]
struct TouchpointTally {
    starts: i64,
    ends: i64,
    encounters: i64,
    /// Journeys that met it at least once, and more than once.
    met: i64,
    revisited: i64,
}

/// The distribution of a count or a duration over journeys.
#[derive(Debug, Clone, PartialEq)]
pub struct Spread {
    pub p50: f64,
    pub p90: f64,
    pub mean: f64,
    pub max: f64,
}

/// The MOT cycle's figures, folded.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleFigures {
    pub journeys: i64,
    pub encounters: i64,
    /// Most frequent first, then by touchpoint ids.
    pub pairs: Vec<Pair>,
    /// (touchpoint, journeys starting there, journeys ending there,
    /// encounters there), by touchpoint id.
    pub per_touchpoint: Vec<(Uuid, i64, i64, i64)>,
    pub variant_count: i64,
    /// The most frequent paths, then by their touchpoint ids.
    pub variants: Vec<(Vec<Uuid>, i64)>,
    /// Journeys meeting at least one touchpoint placed in the designed
    /// cycle, and of them those meeting one behind a place met before.
    pub comparable: i64,
    pub out_of_order: i64,
    /// Per touchpoint met: the journeys that met it.
    pub met: HashMap<Uuid, i64>,
    pub journeys_with_loops: i64,
    /// Per touchpoint: journeys that met it more than once, the most first.
    pub revisited: Vec<(Uuid, i64)>,
    /// Seconds from a journey's first encounter to its last.
    pub duration: Option<Spread>,
    pub encounters_per_journey: Option<Spread>,
}

/// The fold over a scope's journeys.
pub struct CycleFold<'p> {
    positions: &'p CyclePositions,
    /// Touchpoints by a dense index, so that paths and pairs hash small
    /// keys.
    index: HashMap<Uuid, u32>,
    ids: Vec<Uuid>,
    places: Vec<i32>,
    touchpoints: Vec<TouchpointTally>,
    pairs: HashMap<(u32, u32), Tally>,
    variants: HashMap<Box<[u32]>, i64>,
    journeys: i64,
    encounters: i64,
    comparable: i64,
    out_of_order: i64,
    looping: i64,
    durations: Tally,
    lengths: Tally,
    /// Scratch for one journey's path, reused.
    path: Vec<u32>,
    seen: Vec<u32>,
}

impl<'p> CycleFold<'p> {
    pub fn new(positions: &'p CyclePositions) -> Self {
        CycleFold {
            positions,
            index: HashMap::new(),
            ids: Vec::new(),
            places: Vec::new(),
            touchpoints: Vec::new(),
            pairs: HashMap::new(),
            variants: HashMap::new(),
            journeys: 0,
            encounters: 0,
            comparable: 0,
            out_of_order: 0,
            looping: 0,
            durations: Tally::default(),
            lengths: Tally::default(),
            path: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn intern(&mut self, id: Uuid) -> u32 {
        if let Some(index) = self.index.get(&id) {
            return *index;
        }
        let index = self.ids.len() as u32;
        self.index.insert(id, index);
        self.ids.push(id);
        self.places
            .push(self.positions.get(&id).copied().unwrap_or_default());
        self.touchpoints.push(TouchpointTally::default());
        index
    }

    /// Counts one journey. An empty one counts for nothing.
    pub fn add(&mut self, journey: Journey<'_>) {
        let steps = journey.touchpoints;
        let mut path = std::mem::take(&mut self.path);
        path.clear();
        path.extend(steps.iter().map(|id| self.intern(*id)));
        let (Some(&first), Some(&last)) = (path.first(), path.last()) else {
            self.path = path;
            return;
        };
        self.journeys += 1;
        self.encounters += steps.len() as i64;
        self.touchpoints[first as usize].starts += 1;
        self.touchpoints[last as usize].ends += 1;

        let (mut highest, mut placed, mut behind) = (0, false, false);
        for (i, &step) in path.iter().enumerate() {
            self.touchpoints[step as usize].encounters += 1;
            let place = self.places[step as usize];
            if place > 0 {
                placed = true;
                behind |= place < highest;
            }
            highest = highest.max(place);
            if let (Some(&next), Some(&gap)) = (path.get(i + 1), journey.gaps.get(i)) {
                self.pairs.entry((step, next)).or_default().add(gap);
            }
        }
        self.comparable += i64::from(placed);
        self.out_of_order += i64::from(behind);

        let mut seen = std::mem::take(&mut self.seen);
        seen.clear();
        seen.extend_from_slice(&path);
        seen.sort_unstable();
        let mut looped = false;
        for run in seen.chunk_by(|a, b| a == b) {
            let tally = &mut self.touchpoints[run[0] as usize];
            tally.met += 1;
            if run.len() > 1 {
                tally.revisited += 1;
                looped = true;
            }
        }
        self.looping += i64::from(looped);
        self.seen = seen;

        match self.variants.get_mut(path.as_slice()) {
            Some(journeys) => *journeys += 1,
            None => {
                self.variants.insert(path.as_slice().into(), 1);
            }
        }
        self.path = path;
        self.durations.add(journey.duration.max(0.0));
        self.lengths.add(steps.len() as f64);
    }

    /// The figures, with the `max_variants` most frequent paths.
    pub fn finish(self, max_variants: usize) -> CycleFigures {
        let ids = &self.ids;
        let mut pairs: Vec<Pair> = (self.pairs.iter())
            .map(|(&(from, to), tally)| Pair {
                from: ids[from as usize],
                to: ids[to as usize],
                count: tally.count as i64,
                mean_seconds: tally.mean(),
                median_seconds: percentile_seconds(tally.percentile(&tally.sorted(), 0.5)),
                median_approximate: false,
            })
            .collect();
        // As PostgreSQL orders them: uuids by their bytes, as Uuid does.
        pairs.sort_by(|a, b| {
            (b.count.cmp(&a.count))
                .then_with(|| a.from.cmp(&b.from))
                .then_with(|| a.to.cmp(&b.to))
        });

        let mut per_touchpoint: Vec<(Uuid, i64, i64, i64)> = (ids.iter())
            .zip(&self.touchpoints)
            .map(|(id, t)| (*id, t.starts, t.ends, t.encounters))
            .collect();
        per_touchpoint.sort_by_key(|t| t.0);
        let met = (ids.iter().zip(&self.touchpoints))
            .map(|(id, t)| (*id, t.met))
            .collect();
        let mut revisited: Vec<(Uuid, i64)> = (ids.iter().zip(&self.touchpoints))
            .filter(|(_, t)| t.revisited > 0)
            .map(|(id, t)| (*id, t.revisited))
            .collect();
        revisited.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

        let variant_count = self.variants.len() as i64;
        let path_ids = |path: &[u32]| path.iter().map(|i| ids[*i as usize]).collect::<Vec<_>>();
        let mut variants: Vec<(Vec<Uuid>, i64)> = (self.variants.iter())
            .map(|(path, n)| (path_ids(path), *n))
            .collect();
        let by_rank =
            |a: &(Vec<Uuid>, i64), b: &(Vec<Uuid>, i64)| b.1.cmp(&a.1).then(a.0.cmp(&b.0));
        if max_variants < variants.len() {
            variants.select_nth_unstable_by(max_variants, by_rank);
            variants.truncate(max_variants);
        }
        variants.sort_by(by_rank);

        let spread_of = |tally: &Tally| {
            (tally.count > 0).then(|| {
                let sorted = tally.sorted();
                Spread {
                    p50: tally.percentile(&sorted, 0.5),
                    p90: tally.percentile(&sorted, 0.9),
                    mean: tally.mean(),
                    max: tally.percentile(&sorted, 1.0),
                }
            })
        };
        CycleFigures {
            journeys: self.journeys,
            encounters: self.encounters,
            pairs,
            per_touchpoint,
            variant_count,
            variants,
            comparable: self.comparable,
            out_of_order: self.out_of_order,
            met,
            journeys_with_loops: self.looping,
            revisited,
            duration: spread_of(&self.durations),
            encounters_per_journey: spread_of(&self.lengths),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    /// Folds journeys given as (touchpoints, times in seconds).
    fn fold(
        positions: &CyclePositions,
        journeys: &[(&[u128], &[f64])],
        top: usize,
    ) -> CycleFigures {
        let mut fold = CycleFold::new(positions);
        for (steps, times) in journeys {
            let ids: Vec<Uuid> = steps.iter().map(|n| id(*n)).collect();
            let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
            fold.add(Journey {
                touchpoints: &ids,
                gaps: &gaps,
                duration: times.last().unwrap() - times[0],
            });
        }
        fold.finish(top)
    }

    #[test]
    fn pairs_count_every_step_with_exact_mean_and_median() {
        let figures = fold(
            &CyclePositions::new(),
            &[
                (&[1, 2, 3], &[0.0, 10.0, 40.0]),
                (&[1, 2], &[0.0, 20.0]),
                (&[1, 2, 2], &[0.0, 60.0, 60.0]),
                (&[1, 2], &[0.0, 30.0]),
            ],
            10,
        );
        assert_eq!((figures.journeys, figures.encounters), (4, 10));
        let first = &figures.pairs[0];
        assert_eq!((first.from, first.to, first.count), (id(1), id(2), 4));
        assert_eq!(first.mean_seconds, 30.0);
        // 10, 20, 30, 60: between the middle two.
        assert_eq!(first.median_seconds, 25.0);
        assert_eq!(figures.pairs.len(), 3);
        assert_eq!(
            figures.pairs[1..]
                .iter()
                .map(|p| (p.from, p.to))
                .collect::<Vec<_>>(),
            [(id(2), id(2)), (id(2), id(3))]
        );
        assert_eq!(figures.per_touchpoint[0], (id(1), 4, 0, 4));
        assert_eq!(figures.per_touchpoint[1], (id(2), 0, 3, 5));
        assert_eq!(figures.journeys_with_loops, 1);
        assert_eq!(figures.revisited, [(id(2), 1)]);
        assert_eq!(figures.met[&id(2)], 4);
    }

    #[test]
    fn variants_rank_by_journeys_then_path_and_count_every_distinct_path() {
        let figures = fold(
            &CyclePositions::new(),
            &[
                (&[2, 1], &[0.0, 1.0]),
                (&[1, 2], &[0.0, 1.0]),
                (&[3], &[0.0]),
                (&[1, 2], &[0.0, 1.0]),
            ],
            2,
        );
        assert_eq!(figures.variant_count, 3);
        assert_eq!(
            figures.variants,
            [(vec![id(1), id(2)], 2), (vec![id(2), id(1)], 1)]
        );
    }

    #[test]
    fn a_journey_is_out_of_order_when_it_meets_a_place_behind_one_met_before() {
        let positions: CyclePositions = [(id(1), 10), (id(2), 20), (id(3), 30)].into();
        let figures = fold(
            &positions,
            &[
                (&[1, 9, 2, 3], &[0.0, 1.0, 2.0, 3.0]),
                (&[2, 1], &[0.0, 1.0]),
                (&[9, 9], &[0.0, 1.0]),
                (&[3, 3], &[0.0, 1.0]),
            ],
            10,
        );
        assert_eq!((figures.comparable, figures.out_of_order), (3, 1));
    }

    #[test]
    fn throughput_is_the_spread_of_durations_and_lengths() {
        let journeys: Vec<(Vec<u128>, Vec<f64>)> = (1..=10)
            .map(|n| (vec![1; n], (0..n).map(|i| (i * 60) as f64).collect()))
            .collect();
        let borrowed: Vec<(&[u128], &[f64])> = journeys
            .iter()
            .map(|(s, t)| (s.as_slice(), t.as_slice()))
            .collect();
        let figures = fold(&CyclePositions::new(), &borrowed, 1);
        let lengths = figures.encounters_per_journey.unwrap();
        assert_eq!(lengths.p50, 5.5);
        assert_eq!(lengths.p90, 9.1);
        assert_eq!(lengths.mean, 5.5);
        assert_eq!(lengths.max, 10.0);
        let duration = figures.duration.unwrap();
        assert_eq!(duration.p50, 270.0);
        assert_eq!(duration.max, 540.0);
    }

    #[test]
    fn nothing_folded_is_nothing_found() {
        let figures = fold(&CyclePositions::new(), &[], 10);
        assert_eq!(figures.journeys, 0);
        assert!(figures.pairs.is_empty() && figures.variants.is_empty());
        assert!(figures.duration.is_none());
    }

    #[test]
    fn percentiles_interpolate_between_repeated_values() {
        let mut tally = Tally::default();
        for v in [5.0, 5.0, 5.0, 7.0] {
            tally.add(v);
        }
        let sorted = tally.sorted();
        assert_eq!(tally.percentile(&sorted, 0.5), 5.0);
        assert_eq!(tally.percentile(&sorted, 1.0), 7.0);
        assert_eq!(tally.percentile(&sorted, 0.0), 5.0);
        // Rank 2.7 of 5, 5, 5, 7: 5 + 0.7 * 2.
        assert!((tally.percentile(&sorted, 0.9) - 6.4).abs() < 1e-12);
    }
}
