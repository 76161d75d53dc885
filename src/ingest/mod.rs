//! The ingestion pipeline shared by `RecordEncounter` and
//! `IngestEncounters`: one batch of checked encounters is resolved against
//! the organisation's touchpoints and standards, evaluated, stored once per
//! (source, external_id) and given recovery cases, in one transaction.

mod references;

pub mod group_commit;
pub mod rollup_applier;
pub mod statistics;
pub mod stream_budget;

use std::collections::HashMap;

use sqlx::PgPool;
use uuid::Uuid;

use references::{Reference, References};

use crate::{
    domain::{
        code::Lookup,
        encounter::{Context, Encounter, NewEncounter, PreparedEncounter, Unacceptable, prepare},
        pseudonym::pseudonym,
        recovery::describe,
    },
    error::{Error, Result},
    ingest::rollup_applier::RollupApplier,
    store::{self, encounter::StoredBatch, recovery::NewCase},
};

/// One encounter of a batch: checked, or the error its checks found. `field`
/// is its path in the request, for violations found later.
pub struct Item {
    pub field: String,
    pub encounter: Result<NewEncounter>,
}

/// What became of one encounter of a batch.
#[derive(Debug)]
pub enum Outcome {
    /// Stored now; `failed` says whether a recovery case was opened for it.
    Stored {
        id: Uuid,
        failed: bool,
    },
    /// Stored before with the same content.
    Duplicate {
        id: Uuid,
    },
    Rejected(Error),
}

/// What became of a batch.
#[derive(Debug)]
pub struct BatchOutcome {
    /// One per item, in the order given.
    pub outcomes: Vec<Outcome>,
    pub cases_opened: u64,
    /// For Origin::Calls, the stored or duplicate encounters as read back
    /// in the batch's transaction, by id.
    pub read_back: HashMap<Uuid, Encounter>,
}

/// Where a batch comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// RecordEncounter calls grouped by the group commit: the encounters
    /// stored or found are read back for their answers.
    Calls,
    /// One batch of an IngestEncounters stream.
    Stream,
}

/// What storing a batch needs; cloning it shares the references kept.
#[derive(Clone)]
pub struct Pipeline {
    pool: PgPool,
    rollups: RollupApplier,
    references: References,
}

impl Pipeline {
    pub fn new(pool: PgPool, rollups: RollupApplier) -> Self {
        Self {
            pool,
            rollups,
            references: References::default(),
        }
    }
}

/// Stores a batch atomically: its valid encounters are stored (or found
/// stored), its invalid ones are rejected and stored nowhere. A database
/// error fails the whole batch and stores nothing.
///
/// With the organisation kept from an earlier batch, the batch is stored in
/// one round trip that checks the organisation's version first; when that
/// moved, or nothing is kept yet, the organisation is read afresh in the
/// batch's transaction.
pub async fn ingest_batch(
    pipeline: &Pipeline,
    organisation_id: Uuid,
    items: Vec<Item>,
    origin: Origin,
) -> Result<BatchOutcome> {
    if let Some(kept) = pipeline.references.latest(organisation_id)
        && let Some(outcome) = ingest_kept(pipeline, organisation_id, &kept, &items, origin).await?
    {
        return Ok(outcome);
    }
    ingest_reading(pipeline, organisation_id, &items, origin).await
}

/// Stores the batch against the organisation as kept, in one statement
/// that is a transaction of its own; `None` if what is kept is out of date
/// (nothing was written) or lacks the customer key the batch needs.
async fn ingest_kept(
    pipeline: &Pipeline,
    organisation_id: Uuid,
    kept: &Reference,
    items: &[Item],
    origin: Origin,
) -> Result<Option<BatchOutcome>> {
    if needs_customer_key(items) && kept.customer_key.is_none() {
        return Ok(None);
    }
    let planned = plan(items, kept, kept.customer_key.as_deref());
    let Some(stored) = store(
        &pipeline.pool,
        organisation_id,
        kept,
        Some(kept.version),
        &planned,
    )
    .await?
    else {
        return Ok(None);
    };
    if !stored.inserted.is_empty() {
        pipeline
            .rollups
            .changed(organisation_id, stored.inserted.len());
    }
    let replayed = replayed(&planned, &stored);
    let replays = if origin == Origin::Calls && !replayed.is_empty() {
        read_replays(pipeline, organisation_id, &replayed).await
    } else {
        Ok(Vec::new())
    };
    Ok(Some(match replays {
        Ok(replays) => settle(planned, &stored, kept, origin, replays),
        // The batch is stored; only the calls that replayed an earlier
        // encounter (and wrote nothing) go without it.
        Err(error) => {
            let mut outcome = settle(planned, &stored, kept, origin, Vec::new());
            for item in &mut outcome.outcomes {
                if let Outcome::Duplicate { id } = item
                    && replayed.contains(id)
                {
                    *item = Outcome::Rejected(error.shared());
                }
            }
            outcome
        }
    }))
}

/// The earlier encounters a batch stored outside a transaction replayed,
/// read in a transaction of their own.
async fn read_replays(
    pipeline: &Pipeline,
    organisation_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Encounter>> {
    let mut tx = store::begin_for(&pipeline.pool, organisation_id).await?;
    let replays = store::encounter::get_many(&mut tx, organisation_id, ids).await?;
    tx.commit().await?;
    Ok(replays)
}

/// Stores the batch in a transaction that reads the organisation first
/// (and keeps it for the batches after), making its customer key if the
/// batch needs one.
async fn ingest_reading(
    pipeline: &Pipeline,
    organisation_id: Uuid,
    items: &[Item],
    origin: Origin,
) -> Result<BatchOutcome> {
    let mut tx = store::begin_for(&pipeline.pool, organisation_id).await?;
    let found = store::organisation::get_for_ingest(&mut tx, organisation_id)
        .await?
        .ok_or_else(|| Error::not_found("organisation", organisation_id.to_string()))?;
    let reference = pipeline
        .references
        .get(&mut tx, organisation_id, found)
        .await?;
    let customer_key = match (needs_customer_key(items), &reference.customer_key) {
        (false, _) => None,
        (true, Some(key)) => Some(key.clone()),
        (true, None) => Some(store::organisation::customer_key(&mut tx, organisation_id).await?),
    };
    let planned = plan(items, &reference, customer_key.as_deref());
    let stored = store(&mut *tx, organisation_id, &reference, None, &planned)
        .await?
        .ok_or_else(|| Error::internal("a batch without a version to check was refused"))?;
    let replayed = replayed(&planned, &stored);
    let replays = if origin == Origin::Calls {
        store::encounter::get_many(&mut tx, organisation_id, &replayed).await?
    } else {
        Vec::new()
    };
    if stored.inserted.is_empty() {
        // Nothing new: not even the customer key a rejected item made.
        tx.rollback().await?;
    } else {
        tx.commit().await?;
        pipeline
            .rollups
            .changed(organisation_id, stored.inserted.len());
    }
    Ok(settle(planned, &stored, &reference, origin, replays))
}

fn needs_customer_key(items: &[Item]) -> bool {
    items
        .iter()
        .any(|i| matches!(&i.encounter, Ok(e) if e.customer_ref.is_some()))
}

/// A batch's items checked against one view of the organisation.
struct Planned {
    /// One per item; `None` for those whose fate the database decides.
    outcomes: Vec<Option<Outcome>>,
    /// The first item of each key, to insert.
    firsts: Vec<(usize, PreparedEncounter)>,
    /// Later items with a key of `firsts`, compared with the first.
    repeats: Vec<(usize, PreparedEncounter)>,
    /// Each repeat's first, by item index.
    same_as_first: HashMap<usize, usize>,
}

/// Prepares every item; the first of several items with one key is the one
/// inserted, the others are compared with it. Items are cloned rather
/// than taken, so that a batch whose kept organisation turns out out of
/// date can be prepared again.
fn plan(items: &[Item], reference: &Reference, customer_key: Option<&[u8]>) -> Planned {
    let context = Context {
        standards: &reference.standards,
        failure_threshold: reference.organisation.failure_threshold,
    };
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(items.len());
    let mut prepared: Vec<(usize, PreparedEncounter)> = Vec::new();
    let mut first_with_key: HashMap<(String, String), usize> = HashMap::new();
    let mut same_as: Vec<(usize, usize)> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let encounter = match &item.encounter {
            Ok(encounter) => encounter.clone(),
            Err(error) => {
                outcomes.push(Some(Outcome::Rejected(error.shared())));
                continue;
            }
        };
        let customer_hash = match (&encounter.customer_ref, customer_key) {
            (Some(reference), Some(key)) => Some(pseudonym(key, reference)),
            _ => None,
        };
        let result = reference
            .touchpoints
            .find(&encounter.touchpoint)
            .and_then(|touchpoint| {
                prepare(&item.field, encounter, touchpoint, customer_hash, &context).map_err(
                    |unacceptable| match unacceptable {
                        Unacceptable::Invalid(violations) => Error::InvalidArgument(violations),
                        Unacceptable::Refused(refusal) => refusal.into(),
                    },
                )
            });
        match result {
            Err(error) => outcomes.push(Some(Outcome::Rejected(error))),
            Ok(encounter) => {
                let key = (encounter.source.clone(), encounter.external_id.clone());
                match first_with_key.get(&key) {
                    Some(&first) => same_as.push((index, first)),
                    None => {
                        first_with_key.insert(key, index);
                    }
                }
                outcomes.push(None);
                prepared.push((index, encounter));
            }
        }
    }
    let same_as_first: HashMap<usize, usize> = same_as.iter().copied().collect();
    let (firsts, repeats): (Vec<_>, Vec<_>) = prepared
        .into_iter()
        .partition(|(index, _)| !same_as_first.contains_key(index));
    Planned {
        outcomes,
        firsts,
        repeats,
        same_as_first,
    }
}

/// Stores the planned batch's first items with the recovery cases of those
/// that failed (opened only for the ones stored now). Given an
/// `expected_version`, that is checked first: `None` if it moved.
async fn store<'c, E>(
    executor: E,
    organisation_id: Uuid,
    reference: &Reference,
    expected_version: Option<i64>,
    planned: &Planned,
) -> Result<Option<StoredBatch>>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    let to_insert: Vec<&PreparedEncounter> = planned.firsts.iter().map(|(_, e)| e).collect();
    let cases: Vec<NewCase> = to_insert
        .iter()
        .filter(|e| e.evaluation.failed())
        .map(|e| NewCase {
            encounter_id: e.id,
            failure_reasons: e.evaluation.causes.iter().map(describe).collect(),
            original_satisfaction: e.measurements.satisfaction,
        })
        .collect();
    store::encounter::store_batch(
        executor,
        organisation_id,
        expected_version,
        &to_insert,
        &cases,
        reference.organisation.recovery_deadline_seconds,
    )
    .await
}

/// The ids of earlier encounters the batch replays, to read back.
fn replayed(planned: &Planned, stored: &StoredBatch) -> Vec<Uuid> {
    let known = known_by_key(stored);
    let mut ids: Vec<Uuid> = planned
        .firsts
        .iter()
        .filter(|(_, e)| !stored.inserted.contains_key(&e.id))
        .filter_map(|(_, e)| {
            known
                .get(&(e.source.as_str(), e.external_id.as_str()))
                .filter(|(_, hash)| hash[..] == e.content_hash[..])
                .map(|(id, _)| *id)
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The keys stored before, with each one's id and content digest.
fn known_by_key(stored: &StoredBatch) -> HashMap<(&str, &str), (Uuid, &[u8])> {
    stored
        .known
        .iter()
        .map(|k| {
            (
                (k.source.as_str(), k.external_id.as_str()),
                (k.id, &k.content_hash[..]),
            )
        })
        .collect()
}

/// Each item's outcome from what the database did with the batch.
fn settle(
    planned: Planned,
    stored: &StoredBatch,
    reference: &Reference,
    origin: Origin,
    replays: Vec<Encounter>,
) -> BatchOutcome {
    let Planned {
        mut outcomes,
        firsts,
        repeats,
        same_as_first,
    } = planned;
    let known = known_by_key(stored);
    let mut settled: HashMap<usize, (Uuid, [u8; 32])> = HashMap::new();
    for (index, encounter) in &firsts {
        let outcome = if stored.inserted.contains_key(&encounter.id) {
            settled.insert(*index, (encounter.id, encounter.content_hash));
            Outcome::Stored {
                id: encounter.id,
                failed: encounter.evaluation.failed(),
            }
        } else {
            let key = (encounter.source.as_str(), encounter.external_id.as_str());
            match known.get(&key) {
                Some((id, hash)) if hash[..] == encounter.content_hash[..] => {
                    settled.insert(*index, (*id, encounter.content_hash));
                    Outcome::Duplicate { id: *id }
                }
                Some(_) => Outcome::Rejected(conflict(encounter)),
                // Inserted by nobody and found nowhere: only a concurrent
                // erasure between the two statements does that.
                None => Outcome::Rejected(Error::internal(format!(
                    "encounter {}/{} was neither inserted nor found",
                    encounter.source, encounter.external_id
                ))),
            }
        };
        outcomes[*index] = Some(outcome);
    }
    for (index, encounter) in &repeats {
        let first = same_as_first.get(index).copied().unwrap_or(*index);
        let outcome = match settled.get(&first) {
            Some((id, hash)) if hash[..] == encounter.content_hash[..] => {
                Outcome::Duplicate { id: *id }
            }
            _ => Outcome::Rejected(conflict(encounter)),
        };
        outcomes[*index] = Some(outcome);
    }
    // A case is opened with each failed encounter stored now.
    let cases_opened = firsts
        .iter()
        .filter(|(_, e)| e.evaluation.failed() && stored.inserted.contains_key(&e.id))
        .count() as u64;
    let read_back = if origin == Origin::Calls {
        // What was inserted now is known without reading it; only replays
        // of earlier encounters were read.
        let mut read_back: HashMap<Uuid, Encounter> = firsts
            .iter()
            .filter_map(|(_, e)| {
                let received = *stored.inserted.get(&e.id)?;
                let touchpoint = reference
                    .touchpoints
                    .find(&Lookup::Id(e.touchpoint_id))
                    .ok()?;
                Some((e.id, e.stored(&touchpoint.code, received)))
            })
            .collect();
        for encounter in replays {
            read_back.insert(encounter.id, encounter);
        }
        read_back
    } else {
        HashMap::new()
    };
    count_outcomes(&outcomes, cases_opened);
    if cases_opened > 0 {
        // Their recovery_case.opened events are in the outbox now.
        crate::webhooks::wake();
    }
    BatchOutcome {
        outcomes: outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Outcome::Rejected(Error::internal("item not settled"))))
            .collect(),
        cases_opened,
        read_back,
    }
}

/// Counts a settled batch's outcomes in the metrics.
fn count_outcomes(outcomes: &[Option<Outcome>], cases_opened: u64) {
    let (mut stored, mut duplicates, mut rejected) = (0, 0, 0);
    for outcome in outcomes.iter().flatten() {
        match outcome {
            Outcome::Stored { .. } => stored += 1,
            Outcome::Duplicate { .. } => duplicates += 1,
            Outcome::Rejected(_) => rejected += 1,
        }
    }
    crate::telemetry::meters::encounters(stored, duplicates, rejected, cases_opened);
}

fn conflict(encounter: &PreparedEncounter) -> Error {
    Error::AlreadyExists {
        resource: "encounter",
        field: "source/external_id",
        value: format!("{}/{}", encounter.source, encounter.external_id),
    }
}
