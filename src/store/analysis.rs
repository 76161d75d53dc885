//! The analyses' SQL: aggregates and window functions over the encounters
//! in scope, so that only figures leave the database.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, Row, postgres::PgRow, query::Query};
use uuid::Uuid;

use crate::{
    domain::analysis::{Distribution, Scope, ScorecardFigures},
    error::Result,
};

/// The scope's conditions on `e` (encounter) and `t` (its touchpoint):
/// parameters $1 to $6.
const SCOPE: &str = "e.organisation_id = $1
    and e.occur_time >= $2 and e.occur_time < $3
    and ($4::uuid[] is null or e.touchpoint_id = any($4))
    and ($5::text is null or t.stage = $5)
    and ($6::text is null or e.channel = $6)";

/// The encounters in scope with their journey position fields.
const SCOPED: &str = "scoped as (
    select e.journey_id, e.touchpoint_id, e.occur_time, e.receive_seq, t.cycle_position
    from encounter e
    join touchpoint t on t.organisation_id = e.organisation_id and t.id = e.touchpoint_id
    where {SCOPE}
)";

fn scoped() -> String {
    SCOPED.replace("{SCOPE}", SCOPE)
}

fn bind_scope<'q>(
    query: Query<'q, Postgres, sqlx::postgres::PgArguments>,
    organisation_id: Uuid,
    scope: &'q Scope,
) -> Query<'q, Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(organisation_id)
        .bind(scope.start_time)
        .bind(scope.end_time)
        .bind(scope.touchpoint_ids.as_deref())
        .bind(scope.stage.map(|s| s.as_str()))
        .bind(scope.channel.map(|c| c.as_str()))
}

/// The start of the default range: midnight `days` days before today in
/// `time_zone`, as PostgreSQL's zone rules say.
pub async fn days_ago_midnight(
    connection: &mut PgConnection,
    time_zone: &str,
    days: i32,
) -> Result<DateTime<Utc>> {
    let start: DateTime<Utc> = sqlx::query_scalar(
        "select (date_trunc('day', now() at time zone $1) - make_interval(days => $2))
                at time zone $1",
    )
    .bind(time_zone)
    .bind(days)
    .fetch_one(connection)
    .await?;
    Ok(start)
}

/// Scorecard figures per touchpoint (`Some(id)`) and in total (`None`).
pub async fn scorecard(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
) -> Result<Vec<(Option<Uuid>, ScorecardFigures)>> {
    let sql = format!(
        "select e.touchpoint_id,
                count(*) as encounters,
                count(e.satisfaction) as rated,
                avg(e.satisfaction)::float8 as mean_satisfaction,
                count(*) filter (where e.satisfaction >= 4) as satisfied,
                count(*) filter (where e.satisfaction = 5) as top_box,
                count(*) filter (where e.failed) as failed,
                count(e.wait_seconds) as waits,
                percentile_cont(0.5) within group (order by e.wait_seconds) as wait_median,
                percentile_cont(0.9) within group (order by e.wait_seconds) as wait_p90,
                count(e.first_response_seconds) as responses,
                percentile_cont(0.5) within group (order by e.first_response_seconds)
                    as response_median,
                percentile_cont(0.9) within group (order by e.first_response_seconds)
                    as response_p90,
                coalesce(sum(length(e.outcomes) - length(replace(e.outcomes, 'm', ''))), 0)::int8
                    as met,
                coalesce(sum(length(e.outcomes) - length(replace(e.outcomes, 'v', ''))), 0)::int8
                    as violated
         from encounter e
         join touchpoint t on t.organisation_id = e.organisation_id and t.id = e.touchpoint_id
         where {SCOPE}
         group by grouping sets ((e.touchpoint_id), ())"
    );
    let rows = bind_scope(sqlx::query(&sql), organisation_id, scope)
        .fetch_all(connection)
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("touchpoint_id")?, scorecard_figures(row)?)))
        .collect()
}

fn scorecard_figures(row: &PgRow) -> Result<ScorecardFigures> {
    Ok(ScorecardFigures {
        encounters: row.try_get("encounters")?,
        rated: row.try_get("rated")?,
        mean_satisfaction: row.try_get("mean_satisfaction")?,
        satisfied: row.try_get("satisfied")?,
        top_box: row.try_get("top_box")?,
        failed: row.try_get("failed")?,
        wait_seconds: Distribution {
            count: row.try_get("waits")?,
            median: row.try_get("wait_median")?,
            p90: row.try_get("wait_p90")?,
        },
        first_response_seconds: Distribution {
            count: row.try_get("responses")?,
            median: row.try_get("response_median")?,
            p90: row.try_get("response_p90")?,
        },
        met: row.try_get("met")?,
        violated: row.try_get("violated")?,
    })
}

/// One directly-follows pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub from: Uuid,
    pub to: Uuid,
    pub count: i64,
    pub mean_seconds: f64,
    pub median_seconds: f64,
}

/// The directly-follows pairs of the journeys in scope, a journey's
/// encounters ordered by time and ties by arrival. Durations are absolute
/// time differences, so daylight-saving changes do not bend them.
pub async fn pairs(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
) -> Result<Vec<Pair>> {
    let sql = format!(
        "with {}, steps as (
             select touchpoint_id,
                    lead(touchpoint_id) over w as next_touchpoint,
                    extract(epoch from lead(occur_time) over w - occur_time)::float8 as seconds
             from scoped
             window w as (partition by journey_id order by occur_time, receive_seq)
         )
         select touchpoint_id, next_touchpoint, count(*) as count,
                avg(seconds) as mean_seconds,
                percentile_cont(0.5) within group (order by seconds) as median_seconds
         from steps
         where next_touchpoint is not null
         group by touchpoint_id, next_touchpoint
         order by count desc, touchpoint_id, next_touchpoint",
        scoped()
    );
    let rows = bind_scope(sqlx::query(&sql), organisation_id, scope)
        .fetch_all(connection)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Pair {
                from: row.try_get("touchpoint_id")?,
                to: row.try_get("next_touchpoint")?,
                count: row.try_get("count")?,
                mean_seconds: row.try_get("mean_seconds")?,
                median_seconds: row.try_get("median_seconds")?,
            })
        })
        .collect()
}

/// Journeys and encounters in scope, and per touchpoint the journeys that
/// start and end there.
pub struct Ends {
    pub journeys: i64,
    pub encounters: i64,
    /// (touchpoint, journeys starting there, journeys ending there)
    pub per_touchpoint: Vec<(Uuid, i64, i64)>,
}

pub async fn ends(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
) -> Result<Ends> {
    let sql = format!(
        "with {}, placed as (
             select journey_id, touchpoint_id,
                    row_number() over (partition by journey_id
                                       order by occur_time, receive_seq) as position,
                    count(*) over (partition by journey_id) as length
             from scoped
         )
         select touchpoint_id,
                count(*) filter (where position = 1) as starts,
                count(*) filter (where position = length) as ends,
                count(*) as encounters
         from placed
         group by touchpoint_id",
        scoped()
    );
    let rows = bind_scope(sqlx::query(&sql), organisation_id, scope)
        .fetch_all(connection)
        .await?;
    let mut result = Ends {
        journeys: 0,
        encounters: 0,
        per_touchpoint: Vec::with_capacity(rows.len()),
    };
    for row in &rows {
        let starts: i64 = row.try_get("starts")?;
        result.journeys += starts;
        result.encounters += row.try_get::<i64, _>("encounters")?;
        result
            .per_touchpoint
            .push((row.try_get("touchpoint_id")?, starts, row.try_get("ends")?));
    }
    Ok(result)
}

/// The most frequent paths (touchpoint ids in order) with their journeys,
/// and how many distinct paths there are.
pub async fn variants(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
    limit: i64,
) -> Result<(i64, Vec<(Vec<Uuid>, i64)>)> {
    let sql = format!(
        "with {}, paths as (
             select array_agg(touchpoint_id order by occur_time, receive_seq) as path
             from scoped
             group by journey_id
         )
         select path, count(*) as journeys, count(*) over () as variants
         from paths
         group by path
         order by journeys desc, path
         limit $7",
        scoped()
    );
    let rows = bind_scope(sqlx::query(&sql), organisation_id, scope)
        .bind(limit)
        .fetch_all(connection)
        .await?;
    let variants = match rows.first() {
        Some(row) => row.try_get("variants")?,
        None => 0,
    };
    let top = rows
        .iter()
        .map(|row| Ok((row.try_get("path")?, row.try_get("journeys")?)))
        .collect::<Result<Vec<_>>>()?;
    Ok((variants, top))
}

/// What conformance to the designed cycle counts.
pub struct ConformanceCounts {
    /// Journeys meeting at least one touchpoint with a cycle position.
    pub comparable: i64,
    pub in_designed_order: i64,
    /// Per key touchpoint in scope: journeys that never met it.
    pub skipped: Vec<(Uuid, i64)>,
    pub journeys_with_loops: i64,
    /// Per touchpoint: journeys that met it more than once.
    pub revisited: Vec<(Uuid, i64)>,
}

pub async fn conformance(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
) -> Result<ConformanceCounts> {
    let order_sql = format!(
        "with {}, positioned as (
             select journey_id, cycle_position,
                    lag(cycle_position) over (partition by journey_id
                                              order by occur_time, receive_seq) as previous
             from scoped
             where cycle_position > 0
         )
         select count(distinct journey_id) as comparable,
                count(distinct journey_id) filter (where previous > cycle_position)
                    as out_of_order
         from positioned",
        scoped()
    );
    let row = bind_scope(sqlx::query(&order_sql), organisation_id, scope)
        .fetch_one(&mut *connection)
        .await?;
    let comparable: i64 = row.try_get("comparable")?;
    let out_of_order: i64 = row.try_get("out_of_order")?;

    let skipped_sql = format!(
        "with {}, journeys as (select count(distinct journey_id) as total from scoped)
         select k.id, (select total from journeys) - count(distinct s.journey_id) as skipped
         from touchpoint k
         left join scoped s on s.touchpoint_id = k.id
         where k.organisation_id = $1 and k.is_key and k.archive_time is null
           and ($4::uuid[] is null or k.id = any($4))
           and ($5::text is null or k.stage = $5)
         group by k.id
         order by skipped desc, k.id",
        scoped()
    );
    let rows = bind_scope(sqlx::query(&skipped_sql), organisation_id, scope)
        .fetch_all(&mut *connection)
        .await?;
    let skipped = rows
        .iter()
        .map(|row| Ok((row.try_get("id")?, row.try_get("skipped")?)))
        .collect::<Result<Vec<_>>>()?;

    let loops_sql = format!(
        "with {}, repeats as (
             select journey_id, touchpoint_id from scoped
             group by journey_id, touchpoint_id
             having count(*) > 1
         )
         select touchpoint_id, count(*) as journeys,
                (select count(distinct journey_id) from repeats) as looping
         from repeats
         group by touchpoint_id
         order by journeys desc, touchpoint_id",
        scoped()
    );
    let rows = bind_scope(sqlx::query(&loops_sql), organisation_id, scope)
        .fetch_all(&mut *connection)
        .await?;
    let journeys_with_loops = match rows.first() {
        Some(row) => row.try_get("looping")?,
        None => 0,
    };
    let revisited = rows
        .iter()
        .map(|row| Ok((row.try_get("touchpoint_id")?, row.try_get("journeys")?)))
        .collect::<Result<Vec<_>>>()?;

    Ok(ConformanceCounts {
        comparable,
        in_designed_order: comparable - out_of_order,
        skipped,
        journeys_with_loops,
        revisited,
    })
}
