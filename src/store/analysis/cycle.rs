//! The MOT cycle: directly-follows pairs, start and end touchpoints, path
//! variants and conformance to the designed cycle.
//!
//! The journeys in scope are ordered once, in one window pass, into a
//! temporary table of steps that the figures are then read from: ordering
//! is what costs, and every figure needs the same order. For long scopes
//! the steps are those of the distinct paths of the journey rollups, each
//! weighted by the journeys that followed it.

use sqlx::{Executor, PgConnection, Row};
use uuid::Uuid;

use super::{
    journeys::{Journeys, paths_cte},
    scorecard::{SCOPE, bind_scope},
};
use crate::{
    domain::analysis::{Pair, Scope, percentile_seconds},
    error::Result,
};

/// Orders the journeys in scope into `mot_steps`, dropped at the end of
/// the transaction: per encounter its journey, touchpoint, place in the
/// journey, the next touchpoint and the seconds to it, whether its cycle
/// position falls behind one met before (out of designed order), and the
/// journeys it stands for (`weight`).
///
/// From the rollups, a "journey" of `mot_steps` is a distinct path
/// weighted by its journeys, and `seconds` is unknown: the pairs then come
/// from `journeys::rolled_pairs`.
pub async fn order_steps<'c>(
    connection: &'c mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
    source: Journeys<'_>,
) -> Result<Steps<'c>> {
    connection.execute("drop table if exists mot_steps").await?;
    match source {
        Journeys::Encounters => order_encounters(connection, organisation_id, scope).await?,
        Journeys::Rollups(_) => order_paths(connection, organisation_id, scope, source).await?,
    }
    connection.execute("analyze mot_steps").await?;
    Ok(Steps { connection })
}

/// The journeys in scope, ordered into `mot_steps` in the transaction of
/// `connection`: the figures that read the steps take this, so none can
/// run before the steps are made or outside the transaction they live in.
pub struct Steps<'c> {
    connection: &'c mut PgConnection,
}

impl Steps<'_> {
    /// The connection the steps live on, for statements beside them.
    pub fn connection(&mut self) -> &mut PgConnection {
        self.connection
    }
}

async fn order_encounters(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
) -> Result<()> {
    let sql = format!(
        "create temporary table mot_steps on commit drop as
         select journey_id, touchpoint_id, position, length, next_touchpoint, seconds,
                cycle_position > 0 and cycle_position < highest_before as out_of_order,
                1::int8 as weight
         from (
             select e.journey_id, e.touchpoint_id, t.cycle_position,
                    row_number() over w as position,
                    count(*) over (partition by e.journey_id) as length,
                    lead(e.touchpoint_id) over w as next_touchpoint,
                    extract(epoch from lead(e.occur_time) over w - e.occur_time)::float8
                        as seconds,
                    max(t.cycle_position) over (w rows between unbounded preceding
                                                  and 1 preceding) as highest_before
             from encounter e
             join touchpoint t
               on t.organisation_id = e.organisation_id and t.id = e.touchpoint_id
             where {SCOPE}
             window w as (partition by e.journey_id order by e.occur_time, e.receive_seq)
         ) ordered"
    );
    bind_scope(sqlx::query(&sql), organisation_id, scope)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

async fn order_paths(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
    source: Journeys<'_>,
) -> Result<()> {
    let paths = paths_cte();
    let sql = format!(
        "create temporary table mot_steps on commit drop as
         with {paths}, variants as (
             select touchpoints, count(*) as weight,
                    (row_number() over ())::text as journey_id
             from paths
             group by touchpoints
         )
         select v.journey_id, s.touchpoint_id, s.position,
                cardinality(v.touchpoints)::int8 as length,
                v.touchpoints[s.position + 1] as next_touchpoint,
                null::float8 as seconds,
                t.cycle_position > 0
                and t.cycle_position < max(t.cycle_position) over (
                    partition by v.journey_id order by s.position
                    rows between unbounded preceding and 1 preceding) as out_of_order,
                v.weight
         from variants v
         cross join lateral unnest(v.touchpoints) with ordinality as s(touchpoint_id, position)
         join touchpoint t on t.organisation_id = $1 and t.id = s.touchpoint_id"
    );
    source
        .bind(sqlx::query(&sql), organisation_id, scope)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// The directly-follows pairs, a journey's encounters ordered by time and
/// ties by arrival. Durations are absolute time differences, so
/// daylight-saving changes do not bend them.
pub async fn pairs(steps: &mut Steps<'_>) -> Result<Vec<Pair>> {
    let rows = sqlx::query(
        "select touchpoint_id, next_touchpoint, count(*) as count,
                avg(seconds) as mean_seconds,
                percentile_cont(0.5) within group (order by seconds) as median_seconds
         from mot_steps
         where next_touchpoint is not null
         group by touchpoint_id, next_touchpoint
         order by count desc, touchpoint_id, next_touchpoint",
    )
    .fetch_all(&mut *steps.connection)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Pair {
                from: row.try_get("touchpoint_id")?,
                to: row.try_get("next_touchpoint")?,
                count: row.try_get("count")?,
                mean_seconds: row.try_get("mean_seconds")?,
                median_seconds: percentile_seconds(row.try_get("median_seconds")?),
                median_approximate: false,
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

pub async fn ends(steps: &mut Steps<'_>) -> Result<Ends> {
    let rows = sqlx::query(
        "select touchpoint_id,
                coalesce(sum(weight) filter (where position = 1), 0)::int8 as starts,
                coalesce(sum(weight) filter (where position = length), 0)::int8 as ends,
                sum(weight)::int8 as encounters
         from mot_steps
         group by touchpoint_id",
    )
    .fetch_all(&mut *steps.connection)
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
pub async fn variants(steps: &mut Steps<'_>, limit: i64) -> Result<(i64, Vec<(Vec<Uuid>, i64)>)> {
    let rows = sqlx::query(
        "with paths as (
             select array_agg(touchpoint_id order by position) as path,
                    max(weight) as weight
             from mot_steps
             group by journey_id
         )
         select path, sum(weight)::int8 as journeys, count(*) over () as variants
         from paths
         group by path
         order by journeys desc, path
         limit $1",
    )
    .bind(limit)
    .fetch_all(&mut *steps.connection)
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
    /// Per routine key touchpoint in scope: journeys that never met it. An
    /// exceptional one (a complaint desk) is not expected in every journey.
    pub skipped: Vec<(Uuid, i64)>,
    pub journeys_with_loops: i64,
    /// Per touchpoint: journeys that met it more than once.
    pub revisited: Vec<(Uuid, i64)>,
}

pub async fn conformance(
    steps: &mut Steps<'_>,
    organisation_id: Uuid,
    scope: &Scope,
) -> Result<ConformanceCounts> {
    let row = sqlx::query(
        "select coalesce(sum(weight), 0)::int8 as comparable,
                coalesce(sum(weight) filter (where out_of_order), 0)::int8 as out_of_order
         from (
             select s.journey_id, max(s.weight) as weight,
                    bool_or(coalesce(s.out_of_order, false)) as out_of_order
             from mot_steps s
             join touchpoint t on t.organisation_id = $1 and t.id = s.touchpoint_id
             where t.cycle_position > 0
             group by s.journey_id
         ) journeys",
    )
    .bind(organisation_id)
    .fetch_one(&mut *steps.connection)
    .await?;
    let comparable: i64 = row.try_get("comparable")?;
    let out_of_order: i64 = row.try_get("out_of_order")?;

    let rows = sqlx::query(
        "with journeys as (select sum(weight) as total from mot_steps where position = 1),
              met as (
                  select touchpoint_id, sum(weight) as journeys
                  from (select distinct journey_id, touchpoint_id, weight from mot_steps) m
                  group by touchpoint_id
              )
         select k.id,
                (coalesce((select total from journeys), 0) - coalesce(m.journeys, 0))::int8
                    as skipped
         from touchpoint k
         left join met m on m.touchpoint_id = k.id
         where k.organisation_id = $1 and k.is_key and k.archive_time is null
           and k.occurrence = 'routine'
           and ($2::uuid[] is null or k.id = any($2))
           and ($3::text is null or k.stage = $3)
         order by skipped desc, k.id",
    )
    .bind(organisation_id)
    .bind(scope.touchpoint_ids.as_deref())
    .bind(scope.stage.map(|s| s.as_str()))
    .fetch_all(&mut *steps.connection)
    .await?;
    let skipped = rows
        .iter()
        .map(|row| Ok((row.try_get("id")?, row.try_get("skipped")?)))
        .collect::<Result<Vec<_>>>()?;

    let rows = sqlx::query(
        "with repeats as (
             select journey_id, touchpoint_id, max(weight) as weight from mot_steps
             group by journey_id, touchpoint_id
             having count(*) > 1
         )
         select touchpoint_id, sum(weight)::int8 as journeys,
                (select coalesce(sum(weight), 0)::int8
                 from (select distinct journey_id, weight from repeats) looping) as looping
         from repeats
         group by touchpoint_id
         order by journeys desc, touchpoint_id",
    )
    .fetch_all(&mut *steps.connection)
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
