//! Where the journey analyses read the scope's journeys from: grouped from
//! the encounters in scope, or from the journey rollups (`journey_path`,
//! `journey_day_pair`, folded in from `rollup_pending`) for the journeys
//! wholly inside the scope's whole days, with the journeys at its edges
//! summarised from their encounters in scope.

use std::collections::HashMap;

use sqlx::{PgConnection, Postgres, Row, postgres::PgArguments, query::Query};
use uuid::Uuid;

use super::{rollup::CoveredDays, scorecard::bind_scope};
use crate::{
    domain::{
        analysis::{Pair, Scope, percentile_seconds},
        histogram::Histogram,
    },
    error::Result,
};

/// The source of a journey analysis.
#[derive(Debug, Clone, Copy)]
pub enum Journeys<'a> {
    /// Grouped from the encounters in scope: any scope, exact.
    Encounters,
    /// From the rollups: only for scopes without touchpoint, stage or
    /// channel filters, which would cut journeys apart.
    Rollups(&'a CoveredDays),
}

impl<'a> From<&'a Option<CoveredDays>> for Journeys<'a> {
    fn from(covered: &'a Option<CoveredDays>) -> Self {
        covered
            .as_ref()
            .map_or(Journeys::Encounters, Journeys::Rollups)
    }
}

impl Journeys<'_> {
    /// The number of the first parameter after the scope's.
    pub(super) fn next_parameter(self) -> usize {
        match self {
            Journeys::Encounters => 7,
            Journeys::Rollups(_) => 6,
        }
    }

    /// Binds the parameters the source's SQL reads: the scope's $1 to $6,
    /// or for the rollups $1 organisation, $2 to $3 the range, $4 to $5
    /// the covered days.
    pub(super) fn bind<'q>(
        self,
        query: Query<'q, Postgres, PgArguments>,
        organisation_id: Uuid,
        scope: &'q Scope,
    ) -> Query<'q, Postgres, PgArguments> {
        match self {
            Journeys::Encounters => bind_scope(query, organisation_id, scope),
            Journeys::Rollups(covered) => query
                .bind(organisation_id)
                .bind(scope.start_time)
                .bind(scope.end_time)
                .bind(covered.start_time)
                .bind(covered.end_time),
        }
    }
}

/// The CTE `paths`: a `journey_path` row per journey in scope. Those inside
/// the covered days come as the fold keeps them; those at the edges are
/// summarised from their encounters in the range by
/// `verdad_journey_summaries`, as the fold summarises a journey it reads
/// again.
const PATHS: &str = "paths as (
    select j.* from journey_path j
    where j.organisation_id = $1 and j.first_time >= $4 and j.last_time < $5
    union all
    select * from edge
)";

/// The CTE `edge`: the journeys in scope that are not wholly inside the
/// covered days, summarised from their encounters in the range.
const EDGE: &str = "edge as (
    select s.* from verdad_journey_summaries($1, array(
        select j.journey_id from journey_path j
        where j.organisation_id = $1 and j.first_time < $3 and j.last_time >= $2
          and not (j.first_time >= $4 and j.last_time < $5)), $2, $3) s
)";

/// `edge`, then `paths`, for a WITH clause.
pub(super) fn paths_cte() -> String {
    format!("{EDGE}, {PATHS}")
}

/// One pair's rows added up.
#[derive(Default)]
struct PairSums {
    count: i64,
    seconds: f64,
    /// (bucket floor, pairs)
    buckets: Vec<(i32, i64)>,
}

/// The directly-follows pairs from the rollups: the pair histograms of the
/// journeys starting on the covered days, less those of them that run past
/// the covered days, plus the pairs of the edge journeys' encounters in
/// scope. Medians come from the histograms and are marked approximate.
pub async fn rolled_pairs(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
    covered: &CoveredDays,
) -> Result<Vec<Pair>> {
    let sql = format!(
        "with {EDGE}, parts as (
             select from_touchpoint, to_touchpoint, bucket, pairs, seconds_sum
             from journey_day_pair
             where organisation_id = $1 and first_day >= $6 and first_day < $7
             union all
             select x.from_touchpoint, x.to_touchpoint, verdad_pair_bucket(x.seconds),
                    -1, -x.seconds
             from journey_path j
             cross join lateral verdad_journey_pairs(j.touchpoints, j.offsets) x
             where j.organisation_id = $1 and j.first_time >= $4 and j.first_time < $5
               and j.last_time >= $5
             union all
             select x.from_touchpoint, x.to_touchpoint, verdad_pair_bucket(x.seconds),
                    1, x.seconds
             from edge e
             cross join lateral verdad_journey_pairs(e.touchpoints, e.offsets) x
         )
         select from_touchpoint, to_touchpoint, bucket,
                sum(pairs)::int8 as pairs, sum(seconds_sum) as seconds_sum
         from parts
         group by from_touchpoint, to_touchpoint, bucket"
    );
    let rows = Journeys::Rollups(covered)
        .bind(sqlx::query(&sql), organisation_id, scope)
        .bind(covered.first_day)
        .bind(covered.end_day)
        .fetch_all(connection)
        .await?;
    let mut per_pair: HashMap<(Uuid, Uuid), PairSums> = HashMap::new();
    for row in &rows {
        let key = (
            row.try_get("from_touchpoint")?,
            row.try_get("to_touchpoint")?,
        );
        let pairs: i64 = row.try_get("pairs")?;
        let sums = per_pair.entry(key).or_default();
        sums.count += pairs;
        sums.seconds += row.try_get::<f64, _>("seconds_sum")?;
        sums.buckets.push((row.try_get("bucket")?, pairs));
    }
    let mut pairs: Vec<Pair> = per_pair
        .into_iter()
        .filter(|(_, sums)| sums.count > 0)
        .map(|((from, to), sums)| Pair {
            from,
            to,
            count: sums.count,
            mean_seconds: sums.seconds / sums.count as f64,
            median_seconds: percentile_seconds(
                Histogram::new(sums.buckets)
                    .percentile(0.5)
                    .unwrap_or_default(),
            ),
            median_approximate: true,
        })
        .collect();
    // As the exact pairs are ordered: PostgreSQL orders uuids by their
    // bytes, as Uuid does.
    pairs.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.from.cmp(&b.from))
            .then_with(|| a.to.cmp(&b.to))
    });
    Ok(pairs)
}
