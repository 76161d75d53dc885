//! The core: every use case, whichever door it came through.
//!
//! A use case is a plain async method of [`App`]. It takes the caller (the
//! organisation and role its key gives), asks [`access::permit`] whether
//! that role may act, owns the transaction, and returns domain values or
//! the crate's error. Doors (`crate::grpc`, the command line) convert what
//! a caller sent into domain values and call one method each.
//!
//! What a caller sent arrives as a [`Parsed`] value: the door's conversion
//! as it came out, error included. The core answers whether the caller
//! may act before it looks at what was sent, so that a caller without the
//! right learns that first, whatever it sent.

pub mod access;
pub mod analyses;
pub mod api_keys;
pub mod encounters;
pub mod feed_preview;
pub mod feed_tally;
pub mod feeds;
pub mod fhir_feed;
pub mod follow_up;
pub mod hl7_feed;
pub mod journeys;
pub mod lanes;
pub mod operator;
pub mod organisations;
pub mod recovery;
pub mod recovery_feed;
pub mod standards;
pub mod touchpoints;
pub mod webhooks;

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::{
    auth::key_cache::KeyCache,
    domain::{code::Lookup, paging::TokenKey},
    error::{Error, Result},
    ingest::{Pipeline, group_commit::GroupCommit, rollup_applier::RollupApplier},
    store,
};
use lanes::Lanes;
use recovery_feed::RecoveryFeed;

pub use crate::domain::api_key::Principal as Caller;
pub use access::Operation;

/// What a caller sent, as a door converted it: the value, or the error
/// naming the fields that were wrong.
pub type Parsed<T> = Result<T>;

/// A list request as a door read it: the page size and the filters, with
/// the page token still to be checked against them.
#[derive(Debug, Clone)]
pub struct ListRequest<F> {
    pub size: i64,
    pub filter: F,
    pub page_token: String,
}

/// The core and everything it shares between calls.
pub struct App {
    pool: PgPool,
    tokens: TokenKey,
    keys: KeyCache,
    pipeline: Pipeline,
    group_commit: GroupCommit,
    /// Lanes to store a stream's batch in (see
    /// `ServeArgs::stream_batches_at_once`).
    stream_lanes: Lanes,
    /// The server's lanes for bulk work (see `ServeArgs::bulk_lanes`).
    bulk: Lanes,
    rollups: RollupApplier,
    feed: RecoveryFeed,
    /// What feeds received, written once a second.
    feed_tally: feed_tally::FeedTally,
    /// Turns true when the server shuts down: watches end then.
    stopping: watch::Receiver<bool>,
    /// Scopes with more encounters read the daily rollups.
    exact_percentile_limit: i64,
    /// How long an analysis folds pending changes in (see
    /// `ServeArgs::fold_wait`).
    fold_wait: Duration,
}

/// What the core is made of; the server makes them.
pub struct Parts {
    pub pool: PgPool,
    pub tokens: TokenKey,
    pub keys: KeyCache,
    pub rollups: RollupApplier,
    pub stream_lanes: Lanes,
    pub bulk: Lanes,
    pub feed: RecoveryFeed,
    pub stopping: watch::Receiver<bool>,
    pub exact_percentile_limit: i64,
    pub fold_wait: Duration,
}

impl App {
    pub fn new(parts: Parts) -> Self {
        let pipeline = Pipeline::new(parts.pool.clone(), parts.rollups.clone());
        let group_commit = GroupCommit::new(pipeline.clone());
        Self {
            pool: parts.pool,
            tokens: parts.tokens,
            keys: parts.keys,
            pipeline,
            group_commit,
            stream_lanes: parts.stream_lanes,
            bulk: parts.bulk,
            rollups: parts.rollups,
            feed: parts.feed,
            feed_tally: feed_tally::FeedTally::default(),
            stopping: parts.stopping,
            exact_percentile_limit: parts.exact_percentile_limit,
            fold_wait: parts.fold_wait,
        }
    }

    /// The feeds' counts, for the server to write them.
    pub fn feed_tally(&self) -> feed_tally::FeedTally {
        self.feed_tally.clone()
    }
}

/// The ids of the touchpoints a filter names (by id or by code), which must
/// be the organisation's: NOT_FOUND otherwise, as for any resource named.
async fn named_touchpoints(
    connection: &mut sqlx::PgConnection,
    org: Uuid,
    lookups: &[Lookup],
) -> Result<Vec<Uuid>> {
    if lookups.is_empty() {
        return Ok(Vec::new());
    }
    store::touchpoint::resolve(connection, org, lookups)
        .await?
        .map_err(|missing| Error::not_found("touchpoint", missing.to_string()))
}

/// The id of the touchpoint a filter names, if it names one (see
/// [`named_touchpoints`]).
async fn named_touchpoint(
    connection: &mut sqlx::PgConnection,
    org: Uuid,
    lookup: Option<&Lookup>,
) -> Result<Option<Uuid>> {
    let lookups = lookup.map(std::slice::from_ref).unwrap_or_default();
    let ids = named_touchpoints(connection, org, lookups).await?;
    Ok(ids.into_iter().next())
}
