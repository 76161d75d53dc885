//! Journey outcomes (100 - 1 = 0), the guideline breakdown, compliance per
//! standard and recovery performance.

use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{
    figures::{COMPLIANCE, RESULTS, StandardCompliance, standard_compliance},
    journeys::{Journeys, paths_cte},
    scorecard::{SCOPE, bind_scope, exact_distribution},
};
use crate::{
    domain::{
        analysis::{Distribution, Scope},
        encounter::Situation,
    },
    error::Result,
    store::decode,
};

/// The encounters in scope with what the outcome analyses read.
fn scoped_outcomes() -> String {
    format!(
        "scoped as (
             select e.id, e.journey_id, e.touchpoint_id, e.failed, e.satisfaction,
                    e.situation, e.revision_ids, e.outcomes
             from encounter e
             join touchpoint t on t.organisation_id = e.organisation_id and t.id = e.touchpoint_id
             where {SCOPE}
         )"
    )
}

/// The CTE `journeys`: per journey in scope its failures, mean
/// satisfaction, a failed touchpoint (the failure's, when it is the only
/// one) and its judged encounters (rated, or with a standard met or
/// violated).
fn journeys_cte(source: Journeys<'_>) -> String {
    match source {
        Journeys::Encounters => format!(
            "{}, journeys as (
                 select journey_id, count(*) filter (where failed) as failures,
                        avg(satisfaction)::float8 as mean_satisfaction,
                        min(touchpoint_id::text) filter (where failed) as failed_at,
                        count(*) filter (where verdad_judged(satisfaction, outcomes)) as judged
                 from scoped
                 group by journey_id
             )",
            scoped_outcomes()
        ),
        // avg() divides numerics as this does: the figures match to the bit.
        Journeys::Rollups(_) => format!(
            "{paths}, journeys as (
                 select journey_id, failures,
                        (satisfaction_sum::numeric / nullif(rated, 0))::float8
                            as mean_satisfaction,
                        failed_at::text as failed_at, judged
                 from paths
             )",
            paths = paths_cte()
        ),
    }
}

/// What one group of journeys (perfect, flawed or unjudged) adds up to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JourneyGroupFigures {
    pub journeys: i64,
    pub scored: i64,
    pub mean_score: Option<f64>,
    pub with_feedback: i64,
    pub rated: i64,
    pub mean_overall: Option<f64>,
    pub satisfied: i64,
    pub respondents: i64,
    pub promoters: i64,
    pub detractors: i64,
}

/// The journeys in scope by their outcome.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JourneyGroups {
    /// Judged, and no encounter failed.
    pub perfect: JourneyGroupFigures,
    /// Some encounter failed.
    pub flawed: JourneyGroupFigures,
    /// Nothing to judge: no encounter rated, no standard met or violated.
    pub unjudged: JourneyGroupFigures,
}

/// The journeys in scope grouped by their outcome.
pub async fn journey_groups(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
    source: Journeys<'_>,
) -> Result<JourneyGroups> {
    // A journey's score is verdad_journey_score's (see domain::journey).
    let sql = format!(
        "with {}
         select case when j.failures > 0 then 'flawed'
                     when j.judged > 0 then 'perfect'
                     else 'unjudged' end as outcome,
                count(*) as journeys,
                count(verdad_journey_score(j.failures, j.mean_satisfaction)) as scored,
                avg(verdad_journey_score(j.failures, j.mean_satisfaction)) as mean_score,
                count(f.journey_id) as with_feedback,
                count(f.overall_satisfaction) as rated,
                avg(f.overall_satisfaction)::float8 as mean_overall,
                count(*) filter (where verdad_satisfied(f.overall_satisfaction)) as satisfied,
                count(f.likelihood_to_recommend) as respondents,
                count(*) filter (where verdad_promoter(f.likelihood_to_recommend)) as promoters,
                count(*) filter (where verdad_detractor(f.likelihood_to_recommend))
                    as detractors
         from journeys j
         left join journey_feedback f
           on f.organisation_id = $1 and f.journey_id = j.journey_id
         group by 1",
        journeys_cte(source)
    );
    let rows = source
        .bind(sqlx::query(&sql), organisation_id, scope)
        .fetch_all(connection)
        .await?;
    let mut groups = JourneyGroups::default();
    for row in &rows {
        let figures = JourneyGroupFigures {
            journeys: row.try_get("journeys")?,
            scored: row.try_get("scored")?,
            mean_score: row.try_get("mean_score")?,
            with_feedback: row.try_get("with_feedback")?,
            rated: row.try_get("rated")?,
            mean_overall: row.try_get("mean_overall")?,
            satisfied: row.try_get("satisfied")?,
            respondents: row.try_get("respondents")?,
            promoters: row.try_get("promoters")?,
            detractors: row.try_get("detractors")?,
        };
        match row.try_get::<&str, _>("outcome")? {
            "flawed" => groups.flawed = figures,
            "perfect" => groups.perfect = figures,
            _ => groups.unjudged = figures,
        }
    }
    Ok(groups)
}

/// Per touchpoint: the journeys in scope whose only failed encounter
/// happened there.
pub async fn single_failures(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
    source: Journeys<'_>,
) -> Result<Vec<(Uuid, i64)>> {
    let sql = format!(
        "with {}
         select failed_at::uuid as touchpoint_id, count(*) as journeys
         from journeys
         where failures = 1
         group by failed_at",
        journeys_cte(source)
    );
    let rows = source
        .bind(sqlx::query(&sql), organisation_id, scope)
        .fetch_all(connection)
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("touchpoint_id")?, row.try_get("journeys")?)))
        .collect()
}

/// One situation's figures (`None`: ordinary contacts).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SituationFigures {
    pub encounters: i64,
    pub failed: i64,
    pub rated: i64,
    pub mean_satisfaction: Option<f64>,
    pub satisfied: i64,
}

pub async fn situations(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
) -> Result<Vec<(Option<Situation>, SituationFigures)>> {
    let sql = format!(
        "with {}
         select situation, count(*) as encounters,
                count(*) filter (where failed) as failed,
                count(satisfaction) as rated,
                avg(satisfaction)::float8 as mean_satisfaction,
                count(*) filter (where verdad_satisfied(satisfaction)) as satisfied
         from scoped
         group by situation",
        scoped_outcomes()
    );
    let rows = bind_scope(sqlx::query(&sql), organisation_id, scope)
        .fetch_all(connection)
        .await?;
    rows.iter()
        .map(|row| {
            let situation: Option<String> = row.try_get("situation")?;
            Ok((
                situation.as_deref().map(decode).transpose()?,
                SituationFigures {
                    encounters: row.try_get("encounters")?,
                    failed: row.try_get("failed")?,
                    rated: row.try_get("rated")?,
                    mean_satisfaction: row.try_get("mean_satisfaction")?,
                    satisfied: row.try_get("satisfied")?,
                },
            ))
        })
        .collect()
}

/// Met and violated results per standard in scope.
pub async fn compliance(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
) -> Result<Vec<StandardCompliance>> {
    let sql = format!(
        "with {}, results as ({}) {COMPLIANCE}",
        scoped_outcomes(),
        RESULTS.replace("{encounters}", "scoped")
    );
    let rows = bind_scope(sqlx::query(&sql), organisation_id, scope)
        .fetch_all(connection)
        .await?;
    standard_compliance(&rows)
}

/// What the recovery of the cases opened in scope came to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoveryFigures {
    pub opened: i64,
    pub resolved: i64,
    pub resolved_in_time: i64,
    pub seconds_to_resolve: Distribution,
    pub follow_ups: i64,
    pub mean_original: Option<f64>,
    pub mean_follow_up: Option<f64>,
    pub improved: i64,
    pub acknowledged_in_time: i64,
    pub seconds_to_acknowledge: Distribution,
    pub escalated: i64,
    pub escalations: i64,
}

/// The cases opened in the scope's range at its touchpoints (stage and
/// channel as their encounters'; a deviation case, which has no encounter,
/// is in no channel), and whether they were acknowledged within
/// `acknowledge_seconds` of opening.
pub async fn recovery(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
    acknowledge_seconds: i64,
) -> Result<RecoveryFigures> {
    let sql = "
        with cases as (
            select c.status, c.open_time, c.due_time, c.resolve_time,
                   c.original_satisfaction, c.follow_up_satisfaction, c.escalation_level,
                   extract(epoch from c.resolve_time - c.open_time)::float8 as seconds,
                   extract(epoch from c.acknowledge_time - c.open_time)::float8
                       as acknowledge_seconds
            from recovery_case c
            left join encounter e
              on e.organisation_id = c.organisation_id and e.id = c.encounter_id
            join touchpoint t on t.organisation_id = c.organisation_id and t.id = c.touchpoint_id
            where c.organisation_id = $1
              and c.open_time >= $2 and c.open_time < $3
              and ($4::uuid[] is null or c.touchpoint_id = any($4))
              and ($5::text is null or t.stage = $5)
              and ($6::text is null or e.channel = $6)
        ), follow_ups as (
            select * from cases
            where original_satisfaction is not null and follow_up_satisfaction is not null
        )
        select count(*) as opened,
               count(*) filter (where status = 'resolved') as resolved,
               count(*) filter (where resolve_time <= due_time) as resolved_in_time,
               count(seconds) as timed,
               percentile_cont(0.5) within group (order by seconds) as median_seconds,
               percentile_cont(0.9) within group (order by seconds) as p90_seconds,
               (select count(*) from follow_ups) as follow_ups,
               (select avg(original_satisfaction)::float8 from follow_ups) as mean_original,
               (select avg(follow_up_satisfaction)::float8 from follow_ups) as mean_follow_up,
               (select count(*) from follow_ups
                where follow_up_satisfaction > original_satisfaction) as improved,
               count(*) filter (where acknowledge_seconds <= $7) as acknowledged_in_time,
               count(acknowledge_seconds) as acknowledged,
               percentile_cont(0.5) within group (order by acknowledge_seconds)
                   as median_acknowledge,
               percentile_cont(0.9) within group (order by acknowledge_seconds)
                   as p90_acknowledge,
               count(*) filter (where escalation_level > 0) as escalated,
               coalesce(sum(escalation_level), 0)::int8 as escalations
        from cases";
    let row = bind_scope(sqlx::query(sql), organisation_id, scope)
        .bind(acknowledge_seconds as f64)
        .fetch_one(connection)
        .await?;
    Ok(RecoveryFigures {
        opened: row.try_get("opened")?,
        resolved: row.try_get("resolved")?,
        resolved_in_time: row.try_get("resolved_in_time")?,
        seconds_to_resolve: exact_distribution(&row, "timed", "median_seconds", "p90_seconds")?,
        follow_ups: row.try_get("follow_ups")?,
        mean_original: row.try_get("mean_original")?,
        mean_follow_up: row.try_get("mean_follow_up")?,
        improved: row.try_get("improved")?,
        acknowledged_in_time: row.try_get("acknowledged_in_time")?,
        seconds_to_acknowledge: exact_distribution(
            &row,
            "acknowledged",
            "median_acknowledge",
            "p90_acknowledge",
        )?,
        escalated: row.try_get("escalated")?,
        escalations: row.try_get("escalations")?,
    })
}

/// The bucket bounds of first-response times, in seconds.
pub const FIRST_RESPONSE_BOUNDS: [i64; 6] = [5, 10, 15, 30, 60, 300];

/// First responses at the first contact of each journey in scope.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FirstImpressionFigures {
    pub journeys: i64,
    pub first_response: Distribution,
    /// Journeys per bucket: below 5, 5 to 10, ... 300 or more.
    pub buckets: Vec<i64>,
    pub within_window: i64,
    /// Per touchpoint: journeys that met it within the window.
    pub touchpoints_in_window: Vec<(Uuid, i64)>,
}

pub async fn first_impressions(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
    window_seconds: i64,
    source: Journeys<'_>,
) -> Result<FirstImpressionFigures> {
    let window = format!("${}", source.next_parameter());
    // `firsts`: per journey the first encounter's first response; `early`:
    // per journey the touchpoints met within the window of its start.
    let journeys = match source {
        Journeys::Encounters => format!(
            "scoped as (
                 select e.journey_id, e.touchpoint_id, e.occur_time, e.receive_seq,
                        e.first_response_seconds
                 from encounter e
                 join touchpoint t
                   on t.organisation_id = e.organisation_id and t.id = e.touchpoint_id
                 where {SCOPE}
             ), firsts as (
                 select distinct on (journey_id) journey_id, first_response_seconds
                 from scoped
                 order by journey_id, occur_time, receive_seq
             ), early as (
                 select s.journey_id, s.touchpoint_id
                 from scoped s
                 join (select journey_id, min(occur_time) as start_time
                       from scoped group by journey_id) j
                   on j.journey_id = s.journey_id
                 where s.occur_time <= j.start_time + make_interval(secs => {window}::float8)
             )"
        ),
        Journeys::Rollups(_) => format!(
            "{paths}, firsts as (
                 select journey_id, first_response as first_response_seconds from paths
             ), early as (
                 -- Every journey meets its first touchpoint at offset 0;
                 -- only the few whose second encounter falls within the
                 -- window are unnested for the rest.
                 select p.journey_id, p.touchpoints[1] as touchpoint_id from paths p
                 union all
                 select p.journey_id, s.touchpoint_id
                 from paths p
                 cross join lateral unnest(p.touchpoints[2:], p.offsets[2:])
                     as s(touchpoint_id, offset_seconds)
                 where p.offsets[2] <= {window}::float8
                   and s.offset_seconds <= {window}::float8
             )",
            paths = paths_cte()
        ),
    };
    let buckets: Vec<String> = std::iter::once(0)
        .chain(FIRST_RESPONSE_BOUNDS)
        .zip(FIRST_RESPONSE_BOUNDS.iter().map(|b| Some(*b)).chain([None]))
        .enumerate()
        .map(|(i, (low, high))| match high {
            Some(high) => format!(
                "count(*) filter (where first_response_seconds >= {low} \
                 and first_response_seconds < {high}) as b{i}"
            ),
            None => format!("count(*) filter (where first_response_seconds >= {low}) as b{i}"),
        })
        .collect();
    let sql = format!(
        "with {journeys}
         select count(*) as journeys, count(first_response_seconds) as measured,
                percentile_cont(0.5) within group (order by first_response_seconds) as median,
                percentile_cont(0.9) within group (order by first_response_seconds) as p90,
                count(*) filter (where first_response_seconds <= {window}::int8) as within_window,
                {}
         from firsts",
        buckets.join(", ")
    );
    let row = source
        .bind(sqlx::query(&sql), organisation_id, scope)
        .bind(window_seconds)
        .fetch_one(&mut *connection)
        .await?;
    let bucket_counts = (0..=FIRST_RESPONSE_BOUNDS.len())
        .map(|i| row.try_get(format!("b{i}").as_str()))
        .collect::<Result<Vec<i64>, _>>()?;
    let mut figures = FirstImpressionFigures {
        journeys: row.try_get("journeys")?,
        first_response: exact_distribution(&row, "measured", "median", "p90")?,
        buckets: bucket_counts,
        within_window: row.try_get("within_window")?,
        touchpoints_in_window: Vec::new(),
    };

    let sql = format!(
        "with {journeys}
         select touchpoint_id, count(distinct journey_id) as journeys
         from early
         group by touchpoint_id"
    );
    let rows = source
        .bind(sqlx::query(&sql), organisation_id, scope)
        .bind(window_seconds)
        .fetch_all(connection)
        .await?;
    figures.touchpoints_in_window = rows
        .iter()
        .map(|row| Ok((row.try_get("touchpoint_id")?, row.try_get("journeys")?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(figures)
}

/// Per touchpoint: journeys that rate both it and the whole journey, and
/// the correlation of the two ratings across them.
pub async fn importance(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
    source: Journeys<'_>,
) -> Result<Vec<(Uuid, i64, Option<f64>)>> {
    // `rated`: per journey and touchpoint the mean rating given there.
    let rated = match source {
        Journeys::Encounters => format!(
            "rated as (
                 select e.journey_id, e.touchpoint_id,
                        avg(e.satisfaction)::float8 as satisfaction
                 from encounter e
                 join touchpoint t
                   on t.organisation_id = e.organisation_id and t.id = e.touchpoint_id
                 where {SCOPE} and e.satisfaction is not null
                 group by e.journey_id, e.touchpoint_id
             )"
        ),
        // Only journeys with an overall rating can pair: the others are
        // not unnested at all.
        Journeys::Rollups(_) => format!(
            "{paths}, rated as (
                 select p.journey_id, s.touchpoint_id,
                        avg(s.satisfaction)::float8 as satisfaction
                 from paths p
                 cross join lateral unnest(p.touchpoints, p.satisfactions)
                     as s(touchpoint_id, satisfaction)
                 where s.satisfaction is not null
                   and p.journey_id in (
                       select journey_id from journey_feedback
                       where organisation_id = $1 and overall_satisfaction is not null)
                 group by p.journey_id, s.touchpoint_id
             )",
            paths = paths_cte()
        ),
    };
    let sql = format!(
        "with {rated}
         select r.touchpoint_id, count(*) as pairs,
                corr(r.satisfaction, f.overall_satisfaction) as importance
         from rated r
         join journey_feedback f on f.organisation_id = $1 and f.journey_id = r.journey_id
         where f.overall_satisfaction is not null
         group by r.touchpoint_id"
    );
    let rows = source
        .bind(sqlx::query(&sql), organisation_id, scope)
        .fetch_all(connection)
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("touchpoint_id")?,
                row.try_get("pairs")?,
                row.try_get("importance")?,
            ))
        })
        .collect()
}
