//! The ingestion pipeline shared by `RecordEncounter` and
//! `IngestEncounters`: one batch of checked encounters is resolved against
//! the organisation's touchpoints and standards, evaluated, stored once per
//! (source, external_id) and given recovery cases, in one transaction.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    domain::{
        code::Lookup,
        encounter::{Context, Encounter, NewEncounter, PreparedEncounter, Unacceptable, prepare},
        pseudonym::pseudonym,
        recovery::describe,
        standard::Standard,
        touchpoint::Touchpoint,
    },
    error::{Error, Result},
    rollup_applier::RollupApplier,
    store::{self, recovery::NewCase},
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

/// Each organisation's touchpoints and standards as an ingest last read
/// them, under the organisation's `reference_version`. Every change to
/// either bumps the version in its own transaction, so a batch that reads
/// the version with its organisation knows whether what is kept is still
/// what it would read; two queries on every batch are saved while nothing
/// changes. One entry per organisation that ingested, replaced when its
/// version moves.
#[derive(Clone, Default)]
struct References {
    kept: Arc<Mutex<HashMap<Uuid, Arc<Reference>>>>,
}

struct Reference {
    version: i64,
    touchpoints: Touchpoints,
    standards: Vec<Standard>,
}

impl References {
    /// The organisation's touchpoints and standards as of `version`, read
    /// on `connection` unless kept.
    async fn get(
        &self,
        connection: &mut PgConnection,
        organisation_id: Uuid,
        version: i64,
    ) -> Result<Arc<Reference>> {
        if let Some(kept) = self.kept().get(&organisation_id)
            && kept.version == version
        {
            return Ok(kept.clone());
        }
        // Read after the version, in later statements: what is read is at
        // least as new as the version says, as it would be without keeping.
        let reference = Arc::new(Reference {
            version,
            touchpoints: Touchpoints::new(
                store::touchpoint::list_all(&mut *connection, organisation_id).await?,
            ),
            standards: store::standard::list_active(connection, organisation_id).await?,
        });
        let mut kept = self.kept();
        // A batch that read an older version does not replace a newer one.
        if kept
            .get(&organisation_id)
            .is_none_or(|k| k.version <= version)
        {
            kept.insert(organisation_id, reference.clone());
        }
        Ok(reference)
    }

    fn kept(&self) -> MutexGuard<'_, HashMap<Uuid, Arc<Reference>>> {
        // The map holds whole entries only; a panic elsewhere while it was
        // locked leaves it usable.
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Stores a batch atomically: its valid encounters are stored (or found
/// stored), its invalid ones are rejected and stored nowhere. A database
/// error fails the whole batch and stores nothing.
pub async fn ingest_batch(
    pipeline: &Pipeline,
    organisation_id: Uuid,
    items: Vec<Item>,
    origin: Origin,
) -> Result<BatchOutcome> {
    let mut tx = store::begin_for(&pipeline.pool, organisation_id).await?;
    let found = store::organisation::get_for_ingest(&mut tx, organisation_id)
        .await?
        .ok_or_else(|| Error::not_found("organisation", organisation_id.to_string()))?;
    let organisation = found.organisation;
    let reference = pipeline
        .references
        .get(&mut tx, organisation_id, found.reference_version)
        .await?;
    let touchpoints = &reference.touchpoints;
    let context = Context {
        standards: &reference.standards,
        failure_threshold: organisation.failure_threshold,
    };
    let needs_key = items
        .iter()
        .any(|i| matches!(&i.encounter, Ok(e) if e.customer_ref.is_some()));
    let customer_key = match (needs_key, found.customer_key) {
        (false, _) => None,
        (true, Some(key)) => Some(key),
        (true, None) => Some(store::organisation::customer_key(&mut tx, organisation_id).await?),
    };

    // Prepare every item; the first of several items with one key is the
    // one inserted, the others are compared with it.
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(items.len());
    let mut prepared: Vec<(usize, PreparedEncounter)> = Vec::new();
    let mut first_with_key: HashMap<(String, String), usize> = HashMap::new();
    let mut same_as: Vec<(usize, usize)> = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let encounter = match item.encounter {
            Ok(encounter) => encounter,
            Err(error) => {
                outcomes.push(Some(Outcome::Rejected(error)));
                continue;
            }
        };
        let customer_hash = match (&encounter.customer_ref, &customer_key) {
            (Some(reference), Some(key)) => Some(pseudonym(key, reference)),
            _ => None,
        };
        let result = touchpoints
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

    let to_insert: Vec<&PreparedEncounter> = firsts.iter().map(|(_, e)| e).collect();
    let inserted = store::encounter::insert_new(&mut tx, organisation_id, &to_insert).await?;

    // Encounters whose key was stored before: replays or conflicts.
    let known: Vec<(&str, &str)> = firsts
        .iter()
        .filter(|(_, e)| !inserted.contains_key(&e.id))
        .map(|(_, e)| (e.source.as_str(), e.external_id.as_str()))
        .collect();
    let stored: HashMap<(String, String), (Uuid, Vec<u8>)> =
        store::encounter::find_keys(&mut tx, organisation_id, &known)
            .await?
            .into_iter()
            .map(|k| ((k.source, k.external_id), (k.id, k.content_hash)))
            .collect();

    let mut settled: HashMap<usize, (Uuid, [u8; 32])> = HashMap::new();
    let mut cases = Vec::new();
    for (index, encounter) in &firsts {
        let outcome = if inserted.contains_key(&encounter.id) {
            let failed = encounter.evaluation.failed();
            if failed {
                cases.push(NewCase {
                    encounter_id: encounter.id,
                    touchpoint_id: encounter.touchpoint_id,
                    journey_id: &encounter.journey_id,
                    failure_reasons: encounter.evaluation.causes.iter().map(describe).collect(),
                    original_satisfaction: encounter.measurements.satisfaction,
                });
            }
            settled.insert(*index, (encounter.id, encounter.content_hash));
            Outcome::Stored {
                id: encounter.id,
                failed,
            }
        } else {
            let key = (encounter.source.clone(), encounter.external_id.clone());
            match stored.get(&key) {
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

    let cases_opened = store::recovery::open(
        &mut tx,
        organisation_id,
        &cases,
        organisation.recovery_deadline_seconds,
    )
    .await?;
    let read_back = if origin == Origin::Calls {
        // What was inserted now is known without reading it; only replays
        // of earlier encounters are read.
        let mut read_back: HashMap<Uuid, Encounter> = firsts
            .iter()
            .filter_map(|(_, e)| {
                let received = *inserted.get(&e.id)?;
                let touchpoint = touchpoints.find(&Lookup::Id(e.touchpoint_id)).ok()?;
                Some((e.id, e.stored(&touchpoint.code, received)))
            })
            .collect();
        let replayed: Vec<Uuid> = settled
            .values()
            .map(|(id, _)| *id)
            .filter(|id| !read_back.contains_key(id))
            .collect();
        for encounter in store::encounter::get_many(&mut tx, organisation_id, &replayed).await? {
            read_back.insert(encounter.id, encounter);
        }
        read_back
    } else {
        HashMap::new()
    };
    if inserted.is_empty() {
        // Nothing new: not even the customer key a rejected item made.
        tx.rollback().await?;
    } else {
        tx.commit().await?;
        pipeline.rollups.changed(organisation_id);
    }
    count_outcomes(&outcomes, cases_opened);
    Ok(BatchOutcome {
        outcomes: outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Outcome::Rejected(Error::internal("item not settled"))))
            .collect(),
        cases_opened,
        read_back,
    })
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
    crate::meters::encounters(stored, duplicates, rejected, cases_opened);
}

fn conflict(encounter: &PreparedEncounter) -> Error {
    Error::AlreadyExists {
        resource: "encounter",
        field: "source/external_id",
        value: format!("{}/{}", encounter.source, encounter.external_id),
    }
}

/// The organisation's touchpoints by id and by lowercase code.
struct Touchpoints {
    all: Vec<Touchpoint>,
    by_id: HashMap<Uuid, usize>,
    by_code: HashMap<String, usize>,
}

impl Touchpoints {
    fn new(all: Vec<Touchpoint>) -> Self {
        let by_id = all.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
        let by_code = all
            .iter()
            .enumerate()
            .map(|(i, t)| (t.code.to_ascii_lowercase(), i))
            .collect();
        Self {
            all,
            by_id,
            by_code,
        }
    }

    fn find(&self, lookup: &Lookup) -> Result<&Touchpoint> {
        let index = match lookup {
            Lookup::Id(id) => self.by_id.get(id),
            Lookup::Code(code) => self.by_code.get(&code.to_ascii_lowercase()),
        };
        index
            .and_then(|&i| self.all.get(i))
            .ok_or_else(|| Error::not_found("touchpoint", lookup.to_string()))
    }
}
