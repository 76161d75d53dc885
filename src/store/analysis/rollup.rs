//! Scorecard figures read from the daily rollups (`encounter_day`,
//! `encounter_day_seconds`, folded in from `rollup_pending`) for the whole
//! days of a scope, and from the encounters themselves for the partial days
//! at its edges: long ranges cost thousands of rows, not millions.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, Postgres, Row, postgres::PgArguments, query::Query};
use uuid::Uuid;

use super::{
    figures::{
        COMPLIANCE, RESULTS, StandardCompliance, of_day_rows, of_encounters, scorecard_of_sums,
        standard_compliance,
    },
    scorecard::{NO_PERCENTILES, SCOPE, bind_scope, scorecard_figures},
};
use crate::{
    domain::{
        analysis::{Scope, ScorecardFigures},
        histogram::Histogram,
    },
    error::Result,
};

/// The whole days (in the organisation's zone) inside a scope's range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoveredDays {
    pub first_day: NaiveDate,
    /// The day after the last.
    pub end_day: NaiveDate,
    /// Where `first_day` starts and `end_day` starts.
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
}

/// The whole days of the scope's range in `time_zone`, or `None` when there
/// are none, or when a midnight at its edges does not exist in the zone (a
/// daylight-saving change at midnight): then the instants where days start
/// would not split the encounters the way the rollups' dates do.
pub async fn covered_days(
    connection: &mut PgConnection,
    scope: &Scope,
    time_zone: &str,
) -> Result<Option<CoveredDays>> {
    let row = sqlx::query(
        "with days as (
             select case when ($1 at time zone $3)::time = time '00:00'
                         then ($1 at time zone $3)::date
                         else ($1 at time zone $3)::date + 1 end as first_day,
                    ($2 at time zone $3)::date as end_day
         ), instants as (
             select first_day, end_day,
                    first_day::timestamp at time zone $3 as start_time,
                    end_day::timestamp at time zone $3 as end_time
             from days
         )
         select first_day, end_day, start_time, end_time,
                (start_time at time zone $3)::date = first_day
                and ((start_time - interval '1 microsecond') at time zone $3)::date < first_day
                and (end_time at time zone $3)::date = end_day
                and ((end_time - interval '1 microsecond') at time zone $3)::date < end_day
                    as exact
         from instants",
    )
    .bind(scope.start_time)
    .bind(scope.end_time)
    .bind(time_zone)
    .fetch_one(connection)
    .await?;
    let covered = CoveredDays {
        first_day: row.try_get("first_day")?,
        end_day: row.try_get("end_day")?,
        start_time: row.try_get("start_time")?,
        end_time: row.try_get("end_time")?,
    };
    let exact: bool = row.try_get("exact")?;
    Ok((exact && covered.first_day < covered.end_day).then_some(covered))
}

/// The rollups' conditions on `d`: parameters $1 and $4 to $6 as SCOPE's,
/// the days $7 to $8. The stage is looked up only when asked for: joining
/// every rollup row to its touchpoint costs more than the sums.
const DAY_SCOPE: &str = "d.organisation_id = $1
    and d.day >= $7 and d.day < $8
    and ($4::uuid[] is null or d.touchpoint_id = any($4))
    and ($5::text is null or d.touchpoint_id in (
        select s.id from touchpoint s where s.organisation_id = $1 and s.stage = $5))
    and ($6::text is null or d.channel = $6)";

/// The encounters in scope outside the covered days, $9 to $10.
fn edge_scope() -> String {
    format!("{SCOPE} and (e.occur_time < $9 or e.occur_time >= $10)")
}

fn bind_covered<'q>(
    query: Query<'q, Postgres, PgArguments>,
    organisation_id: Uuid,
    scope: &'q Scope,
    covered: &CoveredDays,
) -> Query<'q, Postgres, PgArguments> {
    bind_scope(query, organisation_id, scope)
        .bind(covered.first_day)
        .bind(covered.end_day)
        .bind(covered.start_time)
        .bind(covered.end_time)
}

/// How many encounters the covered days hold in scope.
pub async fn covered_encounters(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
    covered: &CoveredDays,
) -> Result<i64> {
    let sql = format!(
        "select coalesce(sum(d.encounters), 0)::int8
         from encounter_day d
         where {DAY_SCOPE}"
    );
    let row = bind_covered(sqlx::query(&sql), organisation_id, scope, covered)
        .fetch_one(connection)
        .await?;
    Ok(row.try_get(0)?)
}

/// How the figures are grouped: by trend bucket (`unit` 'day', 'week' or
/// 'month' in `time_zone`) or not, and by touchpoint besides the total.
#[derive(Debug, Clone, Copy)]
pub struct Grouping<'a> {
    pub buckets: Option<(&'a str, &'a str)>,
    pub per_touchpoint: bool,
}

/// One group's figures: its bucket start (with buckets) and touchpoint
/// (`None`: the total).
pub type GroupFigures = (Option<DateTime<Utc>>, Option<Uuid>, ScorecardFigures);

/// Scorecard figures of the scope, grouped as asked; wait and response
/// percentiles read from the histograms when `with_percentiles`.
pub async fn figures(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
    covered: &CoveredDays,
    grouping: Grouping<'_>,
    with_percentiles: bool,
) -> Result<Vec<GroupFigures>> {
    let parts = sql_parts(grouping);
    let SqlParts {
        day_bucket,
        edge_bucket,
        day_touchpoint,
        edge_touchpoint,
        sets,
    } = &parts;
    let edges = edge_scope();
    let (day_figures, edge_figures, sums) = (of_day_rows(), of_encounters(), scorecard_of_sums());
    let sql = format!(
        "with parts as (
             select {day_bucket} as bucket, {day_touchpoint} as touchpoint_id, {day_figures}
             from encounter_day d
             where {DAY_SCOPE}
             union all
             select {edge_bucket}, {edge_touchpoint}, {edge_figures}
             from encounter e
             join touchpoint t on t.organisation_id = e.organisation_id and t.id = e.touchpoint_id
             where {edges}
             group by 1, 2
         )
         select bucket, touchpoint_id, {sums}, {NO_PERCENTILES}
         from parts
         group by grouping sets ({sets})
         having sum(encounters) > 0"
    );
    let mut query = bind_covered(sqlx::query(&sql), organisation_id, scope, covered);
    if let Some((unit, zone)) = grouping.buckets {
        query = query.bind(unit).bind(zone);
    }
    let rows = query.fetch_all(&mut *connection).await?;
    let mut groups = Vec::with_capacity(rows.len());
    for row in &rows {
        groups.push((
            row.try_get("bucket")?,
            row.try_get("touchpoint_id")?,
            scorecard_figures(row)?,
        ));
    }
    if with_percentiles {
        let histograms = histograms(
            connection,
            organisation_id,
            scope,
            covered,
            grouping,
            &parts,
        )
        .await?;
        for (bucket, touchpoint, figures) in &mut groups {
            if let Some(h) = histograms.get(&(*bucket, *touchpoint, Measure::Wait)) {
                figures.wait_seconds = h.distribution();
            }
            if let Some(h) = histograms.get(&(*bucket, *touchpoint, Measure::Response)) {
                figures.first_response_seconds = h.distribution();
            }
        }
    }
    Ok(groups)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Measure {
    Wait,
    Response,
}

/// The bucket and touchpoint columns of the day and edge rows, and the
/// grouping sets, as `figures` builds them.
struct SqlParts {
    day_bucket: &'static str,
    edge_bucket: &'static str,
    day_touchpoint: &'static str,
    edge_touchpoint: &'static str,
    sets: &'static str,
}

fn sql_parts(grouping: Grouping<'_>) -> SqlParts {
    let (day_bucket, edge_bucket) = match grouping.buckets {
        Some(_) => (
            "date_trunc($11, d.day::timestamp) at time zone $12",
            "date_trunc($11, e.occur_time at time zone $12) at time zone $12",
        ),
        None => ("null::timestamptz", "null::timestamptz"),
    };
    let (day_touchpoint, edge_touchpoint, sets) = if grouping.per_touchpoint {
        (
            "d.touchpoint_id",
            "e.touchpoint_id",
            "(bucket, touchpoint_id), (bucket)",
        )
    } else {
        // The touchpoint column is null throughout but still selected, so
        // it must be grouped by too.
        ("null::uuid", "null::uuid", "(bucket, touchpoint_id)")
    };
    SqlParts {
        day_bucket,
        edge_bucket,
        day_touchpoint,
        edge_touchpoint,
        sets,
    }
}

type HistogramKey = (Option<DateTime<Utc>>, Option<Uuid>, Measure);

/// The wait and response histograms per group: the day histograms plus the
/// edge encounters put into the same buckets by `verdad_seconds_bucket`.
async fn histograms(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
    covered: &CoveredDays,
    grouping: Grouping<'_>,
    parts: &SqlParts,
) -> Result<HashMap<HistogramKey, Histogram>> {
    let SqlParts {
        day_bucket,
        edge_bucket,
        day_touchpoint,
        edge_touchpoint,
        ..
    } = parts;
    let edges = edge_scope();
    let sql = format!(
        "with parts as (
             select {day_bucket} as bucket, {day_touchpoint} as touchpoint_id,
                    d.measure, d.bucket as seconds, d.encounters
             from encounter_day_seconds d
             where {DAY_SCOPE}
             union all
             select {edge_bucket}, {edge_touchpoint}, m.measure,
                    verdad_seconds_bucket(m.seconds), 1
             from encounter e
             join touchpoint t on t.organisation_id = e.organisation_id and t.id = e.touchpoint_id
             cross join lateral (
                 values ('wait', e.wait_seconds), ('response', e.first_response_seconds)
             ) as m(measure, seconds)
             where {edges} and m.seconds is not null
         )
         select bucket, touchpoint_id, measure, seconds, sum(encounters)::int8 as encounters
         from parts
         group by bucket, touchpoint_id, measure, seconds"
    );
    let mut query = bind_covered(sqlx::query(&sql), organisation_id, scope, covered);
    if let Some((unit, zone)) = grouping.buckets {
        query = query.bind(unit).bind(zone);
    }
    let rows = query.fetch_all(connection).await?;
    let mut buckets: HashMap<HistogramKey, Vec<(i32, i64)>> = HashMap::new();
    for row in &rows {
        let measure = match row.try_get::<&str, _>("measure")? {
            "wait" => Measure::Wait,
            _ => Measure::Response,
        };
        let bucket = row.try_get("bucket")?;
        let touchpoint: Option<Uuid> = row.try_get("touchpoint_id")?;
        let count = (row.try_get("seconds")?, row.try_get("encounters")?);
        // The totals are summed here: a second grouping set in SQL costs
        // more than adding up a few thousand buckets.
        if touchpoint.is_some() {
            buckets
                .entry((bucket, None, measure))
                .or_default()
                .push(count);
        }
        buckets
            .entry((bucket, touchpoint, measure))
            .or_default()
            .push(count);
    }
    Ok(buckets
        .into_iter()
        .map(|(key, counts)| (key, Histogram::new(counts)))
        .collect())
}

/// Met and violated results per standard: the covered days' rollups and the
/// edge encounters' results.
pub async fn compliance(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
    covered: &CoveredDays,
) -> Result<Vec<StandardCompliance>> {
    let edges = edge_scope();
    let sql = format!(
        "with edge as (
             select e.revision_ids, e.outcomes
             from encounter e
             join touchpoint t on t.organisation_id = e.organisation_id and t.id = e.touchpoint_id
             where {edges}
         ), results as (
             select d.revision_id, d.met, d.violated
             from encounter_day_standard d
             where {DAY_SCOPE}
             union all
             {}
         ) {COMPLIANCE}",
        RESULTS.replace("{encounters}", "edge")
    );
    let rows = bind_covered(sqlx::query(&sql), organisation_id, scope, covered)
        .fetch_all(connection)
        .await?;
    standard_compliance(&rows)
}
