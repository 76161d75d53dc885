//! Storing a batch of encounters: idempotent on the sender's key, with
//! the recovery cases of those that failed, in one statement.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    domain::{encounter::PreparedEncounter, evaluation::Observation},
    error::{Error, Result},
    store::recovery::NewCase,
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
