//! The MOT cycle: directly-follows pairs, start and end touchpoints, path
//! variants and conformance to the designed cycle.

use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{bind_scope, scoped};
use crate::{domain::analysis::Scope, error::Result};

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
