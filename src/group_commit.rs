//! Group commit for `RecordEncounter`: calls that arrive together are
//! stored together. Each call is queued; when its organisation has no batch
//! under way, whatever that organisation has queued is stored as one batch
//! of the ingestion pipeline, one transaction. Under light traffic a batch
//! holds one call and nothing waits; under heavy traffic the batches grow,
//! so the database sees fewer transactions and rollup statements (whose
//! cost is mostly per statement, not per row) and keeps up.
//!
//! Each call still gets its own answer: its encounter as stored, a
//! duplicate, or its own refusal. Calls of different organisations are
//! never stored in one transaction.

use std::collections::{HashMap, HashSet};

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::{
    domain::encounter::{Encounter, NewEncounter},
    error::{Error, Result},
    ingest::{Item, Outcome, ingest_batch},
};

/// Calls stored in one batch at most.
const MAX_GROUP: usize = 250;
/// Calls queued at most; a further call waits to be queued, within its
/// deadline.
const QUEUE_LENGTH: usize = 10_000;

/// What a recorded call gets back.
#[derive(Debug)]
pub struct Recorded {
    pub encounter: Encounter,
    /// Whether the same encounter was stored before.
    pub duplicate: bool,
}

struct Call {
    organisation_id: Uuid,
    encounter: NewEncounter,
    reply: oneshot::Sender<Result<Recorded>>,
}

/// The queue of `RecordEncounter` calls; cloning it shares the queue.
#[derive(Clone)]
pub struct GroupCommit {
    calls: mpsc::Sender<Call>,
}

impl GroupCommit {
    /// Starts the dispatcher on the current runtime. It stops when the last
    /// handle is dropped and every queued call has been answered.
    pub fn start(pool: PgPool) -> Self {
        let (calls, queue) = mpsc::channel(QUEUE_LENGTH);
        tokio::spawn(dispatch(pool, queue));
        Self { calls }
    }

    /// Stores one encounter for `organisation_id`, grouped with whatever
    /// other calls are waiting.
    pub async fn record(&self, organisation_id: Uuid, encounter: NewEncounter) -> Result<Recorded> {
        let (reply, answer) = oneshot::channel();
        self.calls
            .send(Call {
                organisation_id,
                encounter,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Error {
    Error::Unavailable {
        message: "the server is stopping; send the request again".to_owned(),
    }
}

/// Hands the queued calls to batches: one batch at a time per
/// organisation, since an organisation's batches add to the same rollup
/// rows and would wait on each other's locks anyway, and any number of
/// organisations at once, so that one organisation's slow batch holds up
/// no one else's calls. While an organisation's batch is under way, its
/// calls gather for the next.
async fn dispatch(pool: PgPool, mut queue: mpsc::Receiver<Call>) {
    let mut waiting: HashMap<Uuid, Vec<Call>> = HashMap::new();
    let mut busy: HashSet<Uuid> = HashSet::new();
    let (finished, mut done) = mpsc::unbounded_channel::<Uuid>();
    let mut open = true;
    while open || !busy.is_empty() {
        tokio::select! {
            call = queue.recv(), if open => match call {
                Some(call) => {
                    waiting.entry(call.organisation_id).or_default().push(call);
                    // Whatever else has arrived joins it.
                    while let Ok(call) = queue.try_recv() {
                        waiting.entry(call.organisation_id).or_default().push(call);
                    }
                }
                None => open = false,
            },
            Some(organisation_id) = done.recv() => {
                busy.remove(&organisation_id);
            }
        }
        let idle: Vec<Uuid> = waiting
            .keys()
            .filter(|id| !busy.contains(id))
            .copied()
            .collect();
        for organisation_id in idle {
            let Some(calls) = next_batch(&mut waiting, organisation_id) else {
                continue;
            };
            busy.insert(organisation_id);
            let (pool, finished) = (pool.clone(), finished.clone());
            tokio::spawn(async move {
                store(&pool, organisation_id, calls).await;
                let _ = finished.send(organisation_id);
            });
        }
    }
}

/// Up to MAX_GROUP of the organisation's waiting calls whose callers still
/// wait. A caller that gave up (its deadline passed, it hung up) before its
/// batch began has its encounter left unstored, as an unbatched call cut at
/// that point would.
fn next_batch(waiting: &mut HashMap<Uuid, Vec<Call>>, organisation_id: Uuid) -> Option<Vec<Call>> {
    let calls = waiting.get_mut(&organisation_id)?;
    calls.retain(|call| !call.reply.is_closed());
    let take = calls.len().min(MAX_GROUP);
    let batch: Vec<Call> = calls.drain(..take).collect();
    if calls.is_empty() {
        waiting.remove(&organisation_id);
    }
    (!batch.is_empty()).then_some(batch)
}

/// Stores one organisation's calls as one batch and answers each.
async fn store(pool: &PgPool, organisation_id: Uuid, calls: Vec<Call>) {
    let (items, replies): (Vec<Item>, Vec<_>) = calls
        .into_iter()
        .map(|call| {
            let item = Item {
                field: "encounter".to_owned(),
                encounter: Ok(call.encounter),
            };
            (item, call.reply)
        })
        .unzip();
    match ingest_batch(pool, organisation_id, items, true).await {
        Err(error) => {
            let error = error.shared();
            for reply in replies {
                // A caller that hung up meanwhile needs no answer.
                let _ = reply.send(Err(error.shared()));
            }
        }
        Ok(batch) => {
            for (outcome, reply) in batch.outcomes.into_iter().zip(replies) {
                let answer = match outcome {
                    Outcome::Stored { id, .. } => found(&batch.read_back, id, false),
                    Outcome::Duplicate { id } => found(&batch.read_back, id, true),
                    Outcome::Rejected(error) => Err(error),
                };
                let _ = reply.send(answer);
            }
        }
    }
}

fn found(read_back: &HashMap<Uuid, Encounter>, id: Uuid, duplicate: bool) -> Result<Recorded> {
    read_back
        .get(&id)
        .cloned()
        .map(|encounter| Recorded {
            encounter,
            duplicate,
        })
        // Stored and then gone within the transaction: only an erasure
        // running at the same time does that.
        .ok_or_else(|| Error::not_found("encounter", id.to_string()))
}
