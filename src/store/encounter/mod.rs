//! Encounters: batch inserts that are idempotent on the sender's key, and
//! reads with the evaluation each encounter was given on arrival.

mod erase;
mod insert;

pub use erase::{Erased, erase_customer};
pub use insert::{StoredBatch, StoredKey, store_batch};

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row, postgres::PgRow};
use uuid::Uuid;

use super::{decode, standard::revisions};
use crate::{
    domain::{
        encounter::{Encounter, EncounterFilter},
        evaluation::{Measurements, Observation, Outcome, StandardResult},
        journey::JourneySummary,
        standard::{StandardRevision, TouchpointRef},
    },
    error::{Error, Result},
};

/// The columns every read selects, with the touchpoint's code.
const SELECT: &str = r#"
    select e.id, e.receive_seq, e.receive_time, e.touchpoint_id, t.code as touchpoint_code,
           e.journey_id, e.customer_hash is not null as has_customer_ref, e.occur_time,
           e.channel, e.wait_seconds, e.first_response_seconds, e.duration_seconds,
           e.satisfaction, e.effort, e.situation, e.staff_ref, e.comment,
           e.observations::text as observations, e.attributes::text as attributes, e.source,
           e.external_id, e.failed, e.low_satisfaction, e.revision_ids, e.outcomes
    from encounter e
    join touchpoint t on t.organisation_id = e.organisation_id and t.id = e.touchpoint_id
"#;

/// An encounter row before its revisions are looked up.
struct EncounterRow {
    seq: i64,
    encounter: Encounter,
    revision_ids: Vec<Uuid>,
    outcomes: String,
}

fn read_row(row: &PgRow) -> Result<EncounterRow> {
    let channel: String = row.try_get("channel")?;
    let situation: Option<String> = row.try_get("situation")?;
    let observations: Option<String> = row.try_get("observations")?;
    let attributes: Option<String> = row.try_get("attributes")?;
    let id: Uuid = row.try_get("id")?;
    let encounter = Encounter {
        id,
        touchpoint: TouchpointRef {
            id: row.try_get("touchpoint_id")?,
            code: row.try_get("touchpoint_code")?,
        },
        journey_id: row.try_get("journey_id")?,
        has_customer_ref: row.try_get("has_customer_ref")?,
        occur_time: row.try_get("occur_time")?,
        channel: decode(&channel)?,
        measurements: Measurements {
            wait_seconds: row
                .try_get::<Option<i32>, _>("wait_seconds")?
                .map(i64::from),
            first_response_seconds: row
                .try_get::<Option<i32>, _>("first_response_seconds")?
                .map(i64::from),
            duration_seconds: row
                .try_get::<Option<i32>, _>("duration_seconds")?
                .map(i64::from),
            satisfaction: row
                .try_get::<Option<i16>, _>("satisfaction")?
                .map(i32::from),
            effort: row.try_get::<Option<i16>, _>("effort")?.map(i32::from),
        },
        situation: situation.as_deref().map(decode).transpose()?,
        staff_ref: row.try_get("staff_ref")?,
        comment: row.try_get("comment")?,
        observations: parse_observations(id, observations.as_deref())?,
        attributes: parse_attributes(id, attributes.as_deref())?,
        source: row.try_get("source")?,
        external_id: row.try_get("external_id")?,
        failed: row.try_get("failed")?,
        low_satisfaction: row.try_get("low_satisfaction")?,
        results: Vec::new(),
        receive_time: row.try_get("receive_time")?,
    };
    Ok(EncounterRow {
        seq: row.try_get("receive_seq")?,
        encounter,
        revision_ids: row.try_get("revision_ids")?,
        outcomes: row.try_get("outcomes")?,
    })
}

fn parse_observations(id: Uuid, json: Option<&str>) -> Result<Vec<Observation>> {
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let bad = || Error::internal(format!("encounter {id} has malformed observations"));
    let values: Vec<serde_json::Value> = serde_json::from_str(json).map_err(|_| bad())?;
    values
        .into_iter()
        .map(|v| {
            let observation = || {
                Some(Observation {
                    standard_code: v.get("standard_code")?.as_str()?.to_owned(),
                    met: v.get("met")?.as_bool()?,
                    note: v.get("note")?.as_str()?.to_owned(),
                })
            };
            observation().ok_or_else(bad)
        })
        .collect()
}

fn parse_attributes(id: Uuid, json: Option<&str>) -> Result<BTreeMap<String, String>> {
    match json {
        None => Ok(BTreeMap::new()),
        Some(json) => serde_json::from_str(json)
            .map_err(|_| Error::internal(format!("encounter {id} has malformed attributes"))),
    }
}

/// Rows of SELECT as encounters with their evaluations.
async fn encounters(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    rows: &[PgRow],
) -> Result<Vec<Encounter>> {
    let rows = rows.iter().map(read_row).collect::<Result<Vec<_>>>()?;
    Ok(with_results(connection, organisation_id, rows)
        .await?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}

/// Turns rows into encounters with their evaluations, looking up every
/// revision they point at in one query.
async fn with_results(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    rows: Vec<EncounterRow>,
) -> Result<Vec<(i64, Encounter)>> {
    let wanted: HashSet<Uuid> = rows
        .iter()
        .flat_map(|r| r.revision_ids.iter().copied())
        .collect();
    let wanted: Vec<Uuid> = wanted.into_iter().collect();
    let found = revisions(connection, organisation_id, &wanted).await?;
    rows.into_iter()
        .map(|row| {
            let mut encounter = row.encounter;
            encounter.results = results(encounter.id, &row.revision_ids, &row.outcomes, &found)?;
            Ok((row.seq, encounter))
        })
        .collect()
}

fn results(
    id: Uuid,
    revision_ids: &[Uuid],
    outcomes: &str,
    found: &HashMap<Uuid, StandardRevision>,
) -> Result<Vec<StandardResult>> {
    revision_ids
        .iter()
        .zip(outcomes.chars())
        .map(|(revision_id, letter)| {
            let revision = found.get(revision_id).ok_or_else(|| {
                Error::internal(format!(
                    "encounter {id} points at missing revision {revision_id}"
                ))
            })?;
            let outcome = Outcome::from_letter(letter).ok_or_else(|| {
                Error::internal(format!("encounter {id} has unknown outcome {letter:?}"))
            })?;
            Ok(StandardResult {
                standard_id: revision.standard_id,
                revision_id: *revision_id,
                code: revision.code.clone(),
                severity: revision.severity,
                rule: revision.rule,
                outcome,
            })
        })
        .collect()
}

/// One encounter by id.
pub async fn get(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    id: Uuid,
) -> Result<Option<Encounter>> {
    Ok(get_many(connection, organisation_id, &[id]).await?.pop())
}

/// The encounters with the given ids, in no particular order.
pub async fn get_many(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Encounter>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("{SELECT} where e.organisation_id = $1 and e.id = any($2)");
    let rows = sqlx::query(&sql)
        .bind(organisation_id)
        .bind(ids)
        .fetch_all(&mut *connection)
        .await?;
    encounters(connection, organisation_id, &rows).await
}

/// Where a page of encounters starts: after the encounter that happened at
/// `occur_time` and arrived as `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub occur_time: DateTime<Utc>,
    pub seq: i64,
}

/// A page of encounters, newest first (by occur_time, then by arrival).
pub async fn list(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    filter: &EncounterFilter,
    after: Option<Position>,
    limit: i64,
) -> Result<Vec<(Position, Encounter)>> {
    let sql = format!(
        "{SELECT}
         where e.organisation_id = $1
           and ($2::timestamptz is null or e.occur_time >= $2)
           and ($3::timestamptz is null or e.occur_time < $3)
           and ($4::uuid is null or e.touchpoint_id = $4)
           and ($5::text is null or e.journey_id = $5)
           and ($6::text is null or e.situation = $6)
           and ($7::text is null or e.channel = $7)
           and (not $8 or e.failed)
           and ($9::bytea is null or e.customer_hash = $9)
           and ($10::timestamptz is null or (e.occur_time, e.receive_seq) < ($10, $11))
         order by e.occur_time desc, e.receive_seq desc
         limit $12"
    );
    let rows = sqlx::query(&sql)
        .bind(organisation_id)
        .bind(filter.start_time)
        .bind(filter.end_time)
        .bind(filter.touchpoint_id)
        .bind(filter.journey_id.as_deref())
        .bind(filter.situation.map(|s| s.as_str()))
        .bind(filter.channel.map(|c| c.as_str()))
        .bind(filter.failed_only)
        .bind(filter.customer_hash.as_deref())
        .bind(after.map(|p| p.occur_time))
        .bind(after.map_or(0, |p| p.seq))
        .bind(limit)
        .fetch_all(&mut *connection)
        .await?;
    let rows = rows.iter().map(read_row).collect::<Result<Vec<_>>>()?;
    let encounters = with_results(connection, organisation_id, rows).await?;
    Ok(encounters
        .into_iter()
        .map(|(seq, e)| {
            (
                Position {
                    occur_time: e.occur_time,
                    seq,
                },
                e,
            )
        })
        .collect())
}

/// The first `limit` encounters of a journey in the order they happened,
/// ties in the order they arrived.
pub async fn journey(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    journey_id: &str,
    limit: i64,
) -> Result<Vec<Encounter>> {
    let sql = format!(
        "{SELECT}
         where e.organisation_id = $1 and e.journey_id = $2
         order by e.occur_time, e.receive_seq
         limit $3"
    );
    let rows = sqlx::query(&sql)
        .bind(organisation_id)
        .bind(journey_id)
        .bind(limit)
        .fetch_all(&mut *connection)
        .await?;
    encounters(connection, organisation_id, &rows).await
}

/// What all encounters of a journey add up to.
pub async fn journey_summary(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    journey_id: &str,
) -> Result<JourneySummary> {
    let row = sqlx::query!(
        r#"select count(*) as "encounters!", count(*) filter (where failed) as "failed!",
                  count(satisfaction) as "rated!", avg(satisfaction)::float8 as mean,
                  min(occur_time) as start_time, max(occur_time) as end_time
           from encounter
           where organisation_id = $1 and journey_id = $2"#,
        organisation_id,
        journey_id,
    )
    .fetch_one(connection)
    .await?;
    Ok(JourneySummary {
        encounter_count: row.encounters,
        failed_count: row.failed,
        rated_count: row.rated,
        mean_satisfaction: row.mean,
        start_time: row.start_time,
        end_time: row.end_time,
    })
}
