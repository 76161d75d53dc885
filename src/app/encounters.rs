//! Encounters: recorded one by one (grouped into batches by the group
//! commit), streamed in batches, read, listed, and erased per customer.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{App, Caller, ListRequest, Operation, Parsed, access::permit, named_touchpoint};
use crate::{
    app::lanes::Work,
    auth::key_cache::KeyWatch,
    domain::{
        code::Lookup,
        encounter::{Encounter, EncounterFilter, NewEncounter},
        paging::{Listing, PageToken},
        pseudonym::pseudonym,
    },
    error::{Error, Result},
    ingest::{BatchOutcome, Item, Origin, group_commit::Recorded, ingest_batch},
    store::{self, encounter::Erased, encounter::Position},
    telemetry::meters,
};

/// The most encounters one batch of a stream may hold.
pub const MAX_BATCH: usize = 5000;

/// An encounters list's filters: the touchpoint is still to be found and
/// the customer reference to be hashed with the organisation's key.
#[derive(Debug, Clone)]
pub struct EncountersFilter {
    pub filter: EncounterFilter,
    pub touchpoint: Option<Lookup>,
    pub customer_ref: Option<String>,
}

/// A stream of batches under way: whose it is, whether its key still
/// holds, and which batch comes next.
pub struct IngestStream {
    org: Uuid,
    key: KeyWatch,
    batch_index: i32,
}

impl IngestStream {
    /// The index of the batch stored next.
    pub fn batch_index(&self) -> i32 {
        self.batch_index
    }
}

impl App {
    pub async fn record_encounter(
        &self,
        caller: &Caller,
        new: Parsed<NewEncounter>,
    ) -> Result<Recorded> {
        let org = permit(caller, Operation::RecordEncounter)?;
        // Refused before it reaches a batch: counted here.
        let new = new.inspect_err(|_| meters::encounters(0, 0, 1, 0))?;
        self.group_commit.record(org, new).await
    }

    /// Begins a stream of batches for `caller`, whose key is watched from
    /// now on: a revocation ends the stream at its next batch.
    pub fn begin_ingest(&self, caller: &Caller) -> Result<IngestStream> {
        let org = permit(caller, Operation::IngestEncounters)?;
        Ok(IngestStream {
            org,
            key: self.keys.watch(self.pool.clone(), *caller),
            batch_index: 0,
        })
    }

    /// Stores the next batch of `stream` in a transaction of its own.
    /// `parse` checks one encounter as sent, given its path in the request
    /// and the time it arrived; it runs once the batch holds a lane.
    pub async fn ingest_batch<E>(
        &self,
        stream: &mut IngestStream,
        batch: Vec<E>,
        parse: impl Fn(&str, E, DateTime<Utc>) -> Parsed<NewEncounter>,
    ) -> Result<BatchOutcome> {
        let batch_index = stream.batch_index;
        if batch.len() > MAX_BATCH {
            return Err(Error::invalid(
                "encounters",
                format!(
                    "must have at most {MAX_BATCH} entries per batch, got {} in batch {batch_index}; \
                     the batches before it are stored",
                    batch.len()
                ),
            ));
        }
        // Held until the batch is stored; meanwhile the stream is not read.
        let _lane = self.stream_lanes.enter(Work::StreamBatch).await?;
        let now = Utc::now();
        let items = batch
            .into_iter()
            .enumerate()
            .map(|(index, encounter)| {
                let field = format!("encounters[{index}]");
                let checked = parse(&field, encounter, now);
                Item {
                    field,
                    encounter: checked,
                }
            })
            .collect();
        // The bulk lane for the database's part only: the checks above run
        // beside whatever holds it.
        let outcome = {
            let _bulk = self.bulk.enter(Work::StreamBatch).await?;
            // Last, so that no batch waiting for its lanes outlives a
            // revocation.
            stream.key.check().await?;
            ingest_batch(&self.pipeline, stream.org, items, Origin::Stream).await?
        };
        stream.batch_index = batch_index.saturating_add(1);
        Ok(outcome)
    }

    pub async fn get_encounter(&self, caller: &Caller, id: Parsed<Uuid>) -> Result<Encounter> {
        let org = permit(caller, Operation::GetEncounter)?;
        let id = id?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let encounter = store::encounter::get(&mut tx, org, id)
            .await?
            .ok_or_else(|| Error::not_found("encounter", id.to_string()))?;
        tx.commit().await?;
        Ok(encounter)
    }

    pub async fn list_encounters(
        &self,
        caller: &Caller,
        request: Parsed<ListRequest<EncountersFilter>>,
    ) -> Result<Listing<Encounter>> {
        let org = permit(caller, Operation::ListEncounters)?;
        let ListRequest {
            size,
            filter:
                EncountersFilter {
                    filter,
                    touchpoint,
                    customer_ref,
                },
            page_token,
        } = request?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let filter = EncounterFilter {
            touchpoint_id: named_touchpoint(&mut tx, org, touchpoint.as_ref()).await?,
            ..filter
        };
        let filter = match customer_ref {
            None => filter,
            Some(reference) => {
                match store::organisation::existing_customer_key(&mut tx, org).await? {
                    Some(key) => EncounterFilter {
                        customer_hash: Some(pseudonym(&key, &reference)),
                        ..filter
                    },
                    // No customer reference was ever stored: nothing matches.
                    None => {
                        tx.commit().await?;
                        return Ok(Listing::empty(self.tokens.query(org, "")));
                    }
                }
            }
        };
        let query = self.tokens.query(org, &filter.fingerprint());
        let after = PageToken::decode(&page_token, &query)?.map(|t| from_token(t.after));
        let rows = store::encounter::list(&mut tx, org, &filter, after, size + 1).await?;
        tx.commit().await?;
        let rows = rows
            .into_iter()
            .map(|(position, e)| (to_token(position), e))
            .collect();
        Ok(Listing::new(rows, size, query))
    }

    /// Erases every encounter, journey and recovery case of the customer
    /// `reference` names.
    pub async fn erase_customer(
        &self,
        caller: &Caller,
        reference: Parsed<String>,
    ) -> Result<Erased> {
        let org = permit(caller, Operation::EraseCustomer)?;
        let reference = reference?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let erased = match store::organisation::existing_customer_key(&mut tx, org).await? {
            Some(key) => {
                store::encounter::erase_customer(&mut tx, org, &pseudonym(&key, &reference)).await?
            }
            None => Erased::default(),
        };
        tx.commit().await?;
        meters::rollups_applied(erased.rollup_changes);
        tracing::info!(
            organisation = %org,
            encounters = erased.encounters,
            journeys = erased.journeys,
            "erased a customer's journeys"
        );
        Ok(erased)
    }
}

/// A page position as the 16 bytes a page token carries: the time in
/// microseconds and the arrival number, both big-endian.
fn to_token(position: Position) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&position.occur_time.timestamp_micros().to_be_bytes());
    bytes[8..].copy_from_slice(&position.seq.to_be_bytes());
    Uuid::from_bytes(bytes)
}

fn from_token(after: Uuid) -> Position {
    let bytes = after.as_bytes();
    let mut micros = [0u8; 8];
    let mut seq = [0u8; 8];
    micros.copy_from_slice(&bytes[..8]);
    seq.copy_from_slice(&bytes[8..]);
    Position {
        occur_time: DateTime::from_timestamp_micros(i64::from_be_bytes(micros))
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
        seq: i64::from_be_bytes(seq),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_positions_survive_the_token() {
        let position = Position {
            occur_time: DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap(),
            seq: 42,
        };
        assert_eq!(from_token(to_token(position)), position);
    }
}
