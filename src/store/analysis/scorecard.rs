//! The scope every analysis reads, and the scorecard: the figures of the
//! encounters in scope, in total, per touchpoint and per bucket of time.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, Row, postgres::PgRow, query::Query};
use uuid::Uuid;

use crate::{
    domain::analysis::{Distribution, Scope, ScorecardFigures},
    error::Result,
};

/// Has every statement of the rest of the transaction planned for its
/// parameters. After five runs of a prepared statement PostgreSQL may keep
/// a generic plan, which cannot tell a day from a year: the whole-year
/// scorecard's edge rows then came by scanning every encounter of the
/// year (1 s instead of 0.1 s), on whichever pooled connection had run the
/// statement five times. Planning the analyses' statements afresh costs
/// well under a millisecond each.
pub async fn plan_for_parameters(connection: &mut PgConnection) -> Result<()> {
    sqlx::query("set local plan_cache_mode = force_custom_plan")
        .execute(connection)
        .await?;
    Ok(())
}

/// The scope's conditions on `e` (encounter) and `t` (its touchpoint):
/// parameters $1 to $6.
pub(super) const SCOPE: &str = "e.organisation_id = $1
    and e.occur_time >= $2 and e.occur_time < $3
    and ($4::uuid[] is null or e.touchpoint_id = any($4))
    and ($5::text is null or t.stage = $5)
    and ($6::text is null or e.channel = $6)";

pub(super) fn bind_scope<'q>(
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

/// The scorecard's percentiles: sorting is what costs.
const PERCENTILES: &str = "
    percentile_cont(0.5) within group (order by e.wait_seconds) as wait_median,
    percentile_cont(0.9) within group (order by e.wait_seconds) as wait_p90,
    percentile_cont(0.5) within group (order by e.first_response_seconds) as response_median,
    percentile_cont(0.9) within group (order by e.first_response_seconds) as response_p90";

/// The same columns when no figure asked for needs them.
pub(super) const NO_PERCENTILES: &str = "
    null::float8 as wait_median, null::float8 as wait_p90,
    null::float8 as response_median, null::float8 as response_p90";

/// Scorecard figures per touchpoint (`Some(id)`) and in total (`None`).
pub async fn scorecard(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
) -> Result<Vec<(Option<Uuid>, ScorecardFigures)>> {
    let sql = format!(
        "select e.touchpoint_id, {}, {PERCENTILES}
         from encounter e
         join touchpoint t on t.organisation_id = e.organisation_id and t.id = e.touchpoint_id
         where {SCOPE}
         group by grouping sets ((e.touchpoint_id), ())",
        super::figures::scorecard_of_encounters()
    );
    let rows = bind_scope(sqlx::query(&sql), organisation_id, scope)
        .fetch_all(connection)
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("touchpoint_id")?, scorecard_figures(row)?)))
        .collect()
}

/// A distribution PostgreSQL computed from every value: the columns of its
/// count, median and 90th percentile.
pub(super) fn exact_distribution(
    row: &PgRow,
    count: &str,
    median: &str,
    p90: &str,
) -> Result<Distribution> {
    Ok(Distribution::new(
        row.try_get(count)?,
        row.try_get(median)?,
        row.try_get(p90)?,
        false,
    ))
}

pub(super) fn scorecard_figures(row: &PgRow) -> Result<ScorecardFigures> {
    Ok(ScorecardFigures {
        encounters: row.try_get("encounters")?,
        rated: row.try_get("rated")?,
        mean_satisfaction: row.try_get("mean_satisfaction")?,
        satisfied: row.try_get("satisfied")?,
        top_box: row.try_get("top_box")?,
        failed: row.try_get("failed")?,
        wait_seconds: exact_distribution(row, "waits", "wait_median", "wait_p90")?,
        first_response_seconds: exact_distribution(
            row,
            "responses",
            "response_median",
            "response_p90",
        )?,
        met: row.try_get("met")?,
        violated: row.try_get("violated")?,
    })
}

/// The starts of the buckets of `unit` ('day', 'week' or 'month') in
/// `time_zone` that the scope's range touches.
pub async fn bucket_starts(
    connection: &mut PgConnection,
    scope: &Scope,
    unit: &str,
    time_zone: &str,
) -> Result<Vec<DateTime<Utc>>> {
    let starts: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "select b at time zone $4
         from generate_series(date_trunc($3, $1 at time zone $4),
                              ($2 at time zone $4) - interval '1 microsecond',
                              ('1 ' || $3)::interval) as b",
    )
    .bind(scope.start_time)
    .bind(scope.end_time)
    .bind(unit)
    .bind(time_zone)
    .fetch_all(connection)
    .await?;
    Ok(starts)
}

/// Scorecard figures per bucket, in total (`None`) and, when asked, per
/// touchpoint; the percentiles only `with_percentiles`.
pub async fn scorecard_buckets(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
    unit: &str,
    time_zone: &str,
    per_touchpoint: bool,
    with_percentiles: bool,
) -> Result<Vec<(DateTime<Utc>, Option<Uuid>, ScorecardFigures)>> {
    let percentiles = if with_percentiles {
        PERCENTILES
    } else {
        NO_PERCENTILES
    };
    let sets = if per_touchpoint {
        "(e.bucket, e.touchpoint_id), (e.bucket)"
    } else {
        "(e.bucket)"
    };
    let sql = format!(
        "select e.bucket,
                {} as touchpoint_id,
                {}, {percentiles}
         from (
             select date_trunc($7, e.occur_time at time zone $8) at time zone $8 as bucket,
                    e.*
             from encounter e
             join touchpoint t
               on t.organisation_id = e.organisation_id and t.id = e.touchpoint_id
             where {SCOPE}
         ) e
         group by grouping sets ({sets})",
        if per_touchpoint {
            "e.touchpoint_id"
        } else {
            "null::uuid"
        },
        super::figures::scorecard_of_encounters()
    );
    let rows = bind_scope(sqlx::query(&sql), organisation_id, scope)
        .bind(unit)
        .bind(time_zone)
        .fetch_all(connection)
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("bucket")?,
                row.try_get("touchpoint_id")?,
                scorecard_figures(row)?,
            ))
        })
        .collect()
}
