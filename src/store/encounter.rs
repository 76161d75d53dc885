//! Encounters: batch inserts that are idempotent on the sender's key, and
//! reads with the evaluation each encounter was given on arrival.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row, postgres::PgRow};
use uuid::Uuid;

use super::{decode, recovery::NewCase, standard::revisions};
use crate::{
    domain::{
        encounter::{Encounter, EncounterFilter, PreparedEncounter},
        evaluation::{Measurements, Observation, Outcome, StandardResult},
        journey::JourneySummary,
        standard::{StandardRevision, TouchpointRef},
    },
    error::{Error, Result},
};

/// What storing a batch did.
pub struct StoredBatch {
    /// The encounters stored now, with the time each was received.
    pub inserted: HashMap<Uuid, DateTime<Utc>>,
    /// Of the others, those whose key was stored before: replays or
    /// conflicts, for the caller to tell apart.
    pub known: Vec<StoredKey>,
}

/// A stored encounter's key and content digest.
pub struct StoredKey {
    pub id: Uuid,
    pub source: String,
    pub external_id: String,
    pub content_hash: Vec<u8>,
}

/// Stores the encounters whose (source, external_id) the organisation has
/// not stored yet, in the order given (which is the order Verdad received
/// them), and opens the `cases` of those stored now, due `deadline_seconds`
/// later, in one statement (see the migration `ingest_in_one_round_trip`).
///
/// Given an `expected_version`, it runs as a transaction of its own on
/// `executor` and first checks that the organisation's reference_version
/// is still that: `Ok(None)` if it moved, with nothing written. Without
/// one, the caller's transaction has read the organisation.
pub async fn store_batch<'c, E>(
    executor: E,
    organisation_id: Uuid,
    expected_version: Option<i64>,
    encounters: &[&PreparedEncounter],
    cases: &[NewCase],
    deadline_seconds: i64,
) -> Result<Option<StoredBatch>>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    // A batch with nothing to insert still has its version checked: the
    // refusals it holds were decided with what the caller kept.
    if encounters.is_empty() && expected_version.is_none() {
        return Ok(Some(StoredBatch {
            inserted: HashMap::new(),
            known: Vec::new(),
        }));
    }
    let n = encounters.len();
    let mut ids = Vec::with_capacity(n);
    let mut touchpoint_ids = Vec::with_capacity(n);
    let mut journey_ids = Vec::with_capacity(n);
    let mut customer_hashes = Vec::with_capacity(n);
    let mut occur_times = Vec::with_capacity(n);
    let mut channels = Vec::with_capacity(n);
    let mut waits = Vec::with_capacity(n);
    let mut first_responses = Vec::with_capacity(n);
    let mut durations = Vec::with_capacity(n);
    let mut satisfactions = Vec::with_capacity(n);
    let mut efforts = Vec::with_capacity(n);
    let mut situations = Vec::with_capacity(n);
    let mut staff_refs = Vec::with_capacity(n);
    let mut comments = Vec::with_capacity(n);
    let mut observations = Vec::with_capacity(n);
    let mut attributes = Vec::with_capacity(n);
    let mut sources = Vec::with_capacity(n);
    let mut external_ids = Vec::with_capacity(n);
    let mut content_hashes = Vec::with_capacity(n);
    let mut failed = Vec::with_capacity(n);
    let mut low_satisfaction = Vec::with_capacity(n);
    let mut revision_ids = Vec::with_capacity(n);
    let mut outcomes = Vec::with_capacity(n);
    for e in encounters {
        let m = &e.measurements;
        ids.push(e.id);
        touchpoint_ids.push(e.touchpoint_id);
        journey_ids.push(e.journey_id.as_str());
        customer_hashes.push(e.customer_hash.as_deref());
        occur_times.push(e.occur_time);
        channels.push(e.channel.as_str());
        waits.push(m.wait_seconds.map(seconds_column));
        first_responses.push(m.first_response_seconds.map(seconds_column));
        durations.push(m.duration_seconds.map(seconds_column));
        satisfactions.push(m.satisfaction.map(score_column));
        efforts.push(m.effort.map(score_column));
        situations.push(e.situation.map(|s| s.as_str()));
        staff_refs.push(e.staff_ref.as_deref());
        comments.push(e.comment.as_str());
        observations.push(observations_json(&e.observations));
        attributes.push(attributes_json(&e.attributes));
        sources.push(e.source.as_str());
        external_ids.push(e.external_id.as_str());
        content_hashes.push(&e.content_hash[..]);
        failed.push(e.evaluation.failed());
        low_satisfaction.push(e.evaluation.low_satisfaction());
        revision_ids.push(uuid_array_literal(
            e.evaluation.results.iter().map(|r| r.revision_id),
        ));
        outcomes.push(
            e.evaluation
                .results
                .iter()
                .map(|r| r.outcome.letter())
                .collect::<String>(),
        );
    }
    let case_ids: Vec<Uuid> = cases.iter().map(|_| Uuid::now_v7()).collect();
    let case_encounters: Vec<Uuid> = cases.iter().map(|c| c.encounter_id).collect();
    // Reasons never hold a line break (they are built from codes and
    // numbers), so each case's list travels as one line-separated text.
    let case_reasons: Vec<String> = cases.iter().map(|c| c.failure_reasons.join("\n")).collect();
    let case_satisfactions: Vec<Option<i16>> = cases
        .iter()
        .map(|c| c.original_satisfaction.and_then(|s| i16::try_from(s).ok()))
        .collect();
    let rows: Vec<StoredRow> = match sqlx::query_as(
        r#"select stored_id, stored_receive_time, stored_source, stored_external_id,
                  stored_content_hash
           from verdad_store_encounters($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                                        $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
                                        $23, $24, $25, $26, $27, $28, $29, $30)"#,
    )
    .bind(organisation_id)
    .bind(expected_version)
    .bind(deadline_seconds as f64)
    .bind(&ids)
    .bind(&touchpoint_ids)
    .bind(&journey_ids)
    .bind(&customer_hashes)
    .bind(&occur_times)
    .bind(&channels)
    .bind(&waits)
    .bind(&first_responses)
    .bind(&durations)
    .bind(&satisfactions)
    .bind(&efforts)
    .bind(&situations)
    .bind(&staff_refs)
    .bind(&comments)
    .bind(&observations)
    .bind(&attributes)
    .bind(&sources)
    .bind(&external_ids)
    .bind(&content_hashes)
    .bind(&failed)
    .bind(&low_satisfaction)
    .bind(&revision_ids)
    .bind(&outcomes)
    .bind(&case_ids)
    .bind(&case_encounters)
    .bind(&case_reasons)
    .bind(&case_satisfactions)
    .fetch_all(executor)
    .await
    {
        Ok(rows) => rows,
        Err(error)
            if error
                .as_database_error()
                .and_then(|e| e.code())
                .is_some_and(|code| code == VERSION_MOVED) =>
        {
            return Ok(None);
        }
        Err(error) => return Err(error.into()),
    };
    let mut stored = StoredBatch {
        inserted: HashMap::new(),
        known: Vec::new(),
    };
    for (id, receive_time, source, external_id, content_hash) in rows {
        match (receive_time, source, external_id, content_hash) {
            (Some(received), ..) => {
                stored.inserted.insert(id, received);
            }
            (None, Some(source), Some(external_id), Some(content_hash)) => {
                stored.known.push(StoredKey {
                    id,
                    source,
                    external_id,
                    content_hash,
                })
            }
            _ => return Err(Error::internal("verdad_store_encounters gave an empty row")),
        }
    }
    Ok(Some(stored))
}

/// The SQLSTATE verdad_store_encounters raises when the organisation's
/// reference_version is not the one expected.
const VERSION_MOVED: &str = "VRD01";

/// A row of verdad_store_encounters: an encounter stored now (id and
/// receive time) or stored before (id, source, external_id, content hash).
type StoredRow = (
    Uuid,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
);

/// Checks keep the database's columns in range; these casts cannot fail on
/// checked values and saturate otherwise, which the table's checks refuse.
fn seconds_column(seconds: i64) -> i32 {
    i32::try_from(seconds).unwrap_or(i32::MAX)
}

fn score_column(score: i32) -> i16 {
    i16::try_from(score).unwrap_or(i16::MAX)
}

/// `{a,b,c}`: a PostgreSQL array literal, cast to uuid[] in SQL. Arrays of
/// arrays cannot be unnested row by row, so each row's array travels as text.
fn uuid_array_literal(ids: impl Iterator<Item = Uuid>) -> String {
    let mut literal = String::from("{");
    for (i, id) in ids.enumerate() {
        if i > 0 {
            literal.push(',');
        }
        literal.push_str(&id.to_string());
    }
    literal.push('}');
    literal
}

fn observations_json(observations: &[Observation]) -> Option<String> {
    if observations.is_empty() {
        return None;
    }
    let list: Vec<serde_json::Value> = observations
        .iter()
        .map(|o| {
            serde_json::json!({
                "standard_code": o.standard_code,
                "met": o.met,
                "note": o.note,
            })
        })
        .collect();
    Some(serde_json::Value::Array(list).to_string())
}

fn attributes_json(attributes: &BTreeMap<String, String>) -> Option<String> {
    if attributes.is_empty() {
        return None;
    }
    serde_json::to_string(attributes).ok()
}

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

/// What an erasure deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    pub encounters: i64,
    pub journeys: i64,
    pub journey_feedback: i64,
    pub recovery_cases: i64,
    /// Pending rollup changes of the erased journeys, folded in.
    pub rollup_changes: u64,
}

/// Deletes every journey an encounter with `customer_hash` belongs to: its
/// encounters, their recovery cases and the journey's feedback.
pub async fn erase_customer(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    customer_hash: &[u8],
) -> Result<Erased> {
    let journeys: Vec<String> = sqlx::query_scalar!(
        r#"select distinct journey_id as "journey_id!" from encounter
           where organisation_id = $1 and customer_hash = $2"#,
        organisation_id,
        customer_hash,
    )
    .fetch_all(&mut *connection)
    .await?;
    if journeys.is_empty() {
        return Ok(Erased::default());
    }
    let recovery_cases = sqlx::query!(
        "delete from recovery_case where organisation_id = $1 and journey_id = any($2)",
        organisation_id,
        &journeys,
    )
    .execute(&mut *connection)
    .await?
    .rows_affected();
    let journey_feedback = sqlx::query!(
        "delete from journey_feedback where organisation_id = $1 and journey_id = any($2)",
        organisation_id,
        &journeys,
    )
    .execute(&mut *connection)
    .await?
    .rows_affected();
    let encounters = sqlx::query!(
        "delete from encounter where organisation_id = $1 and journey_id = any($2)",
        organisation_id,
        &journeys,
    )
    .execute(&mut *connection)
    .await?
    .rows_affected();
    // Nothing summarised from the erased journeys outlives the erasure.
    let rollup_changes =
        super::rollup_queue::apply_journeys(&mut *connection, organisation_id, &journeys).await?;
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Ok(Erased {
        rollup_changes,
        encounters: count(encounters),
        journeys: count(journeys.len() as u64),
        journey_feedback: count(journey_feedback),
        recovery_cases: count(recovery_cases),
    })
}
