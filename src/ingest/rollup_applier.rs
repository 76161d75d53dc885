//! Keeps the rollups close behind the encounters. Ingests leave their
//! changes pending (see the migration `rollups_applied_later`) and report
//! their organisation here; a task folds each reported organisation's
//! changes in shortly after, many batches at a time. Analyses do not rely
//! on it: they fold in what is pending before they read.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use sqlx::PgPool;
use tokio::{sync::mpsc, task::JoinHandle, time::Duration};
use uuid::Uuid;

use crate::{
    app::lanes::{Lanes, Work},
    error::Result,
    ingest::statistics::Statistics,
    store,
    telemetry::meters,
};

/// How long the task gathers reports before it folds (`--rollup-delay`).
/// In the load bench, 50 ms gave the analyses a third of the wait 200 ms
/// gave them and RecordEncounter the same latency; 1 s was worse for both.
pub const DEFAULT_DELAY: Duration = Duration::from_millis(50);

/// One fold per organisation at a time in this server: the others wait
/// here, without holding a database connection, rather than in
/// PostgreSQL's lock with one.
#[derive(Clone, Default)]
struct Turns(Arc<Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>>);

impl Turns {
    fn of(&self, organisation_id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        turns.entry(organisation_id).or_default().clone()
    }
}

/// Reports organisations with pending changes; cloning it shares the task.
#[derive(Clone)]
pub struct RollupApplier {
    pool: PgPool,
    reports: mpsc::UnboundedSender<Uuid>,
    turns: Turns,
    statistics: Statistics,
}

/// The default of `--fold-wait`.
pub const DEFAULT_FOLD_WAIT: Duration = Duration::from_secs(2);

/// Pending changes an analysis folds in one transaction: pieces small
/// enough that it can stop soon after its wait is over.
const PIECE_IN_A_CALL: i32 = 5_000;

impl RollupApplier {
    /// Starts the task, which folds an organisation's changes in `delay`
    /// after it was first reported. It runs until aborted (the server does
    /// so as it stops): it holds a sender of its own, to come back to an
    /// organisation with more pending.
    /// Each of its folds takes one of the `bulk` lanes; an analysis's own
    /// fold runs in the lane its call holds.
    /// Rows stored and folded count towards `statistics`.
    pub fn start(
        pool: PgPool,
        delay: Duration,
        bulk: Lanes,
        statistics: Statistics,
    ) -> (Self, JoinHandle<()>) {
        let (reports, received) = mpsc::unbounded_channel();
        let turns = Turns::default();
        let task = tokio::spawn(apply_reported(
            pool.clone(),
            delay,
            reports.clone(),
            received,
            turns.clone(),
            bulk,
            statistics.clone(),
        ));
        let applier = Self {
            pool,
            reports,
            turns,
            statistics,
        };
        (applier, task)
    }

    /// Notes that `organisation_id` has changes pending: `stored`
    /// encounters were stored.
    pub fn changed(&self, organisation_id: Uuid, stored: usize) {
        self.statistics.written(stored as u64);
        // The task is gone only while the server shuts down; what it leaves
        // pending is folded in before the next analysis reads.
        let _ = self.reports.send(organisation_id);
    }

    /// Folds in everything `organisation_id` had pending when called,
    /// before an analysis reads its rollups, for at most about `wait`
    /// (what is left of a piece begun before it is over); true when it is
    /// all folded in. A backlog left (a bulk load's) stays for the server's
    /// own folds, and the analysis reads the encounters instead.
    pub async fn bring_up_to_date(&self, organisation_id: Uuid, wait: Duration) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + wait;
        let turn = self.turns.of(organisation_id);
        let Ok(_turn) = tokio::time::timeout_at(deadline, turn.lock()).await else {
            return Ok(false);
        };
        let (applied, caught_up) = store::rollup_queue::apply_until(
            &self.pool,
            organisation_id,
            deadline.into_std(),
            PIECE_IN_A_CALL,
        )
        .await?;
        meters::rollups_applied(applied);
        self.statistics.written(applied);
        Ok(caught_up)
    }
}

/// Folds one batch of each reported organisation in turn, so that one
/// organisation's backlog does not hold up the others'; an organisation
/// with more pending is reported again and comes round on the next pass.
async fn apply_reported(
    pool: PgPool,
    delay: Duration,
    again: mpsc::UnboundedSender<Uuid>,
    mut received: mpsc::UnboundedReceiver<Uuid>,
    turns: Turns,
    bulk: Lanes,
    statistics: Statistics,
) {
    while let Some(first) = received.recv().await {
        tokio::time::sleep(delay).await;
        let mut organisations = HashSet::from([first]);
        while let Ok(more) = received.try_recv() {
            organisations.insert(more);
        }
        for organisation_id in organisations {
            // The lane before the turn: an analysis waits for the turn in
            // the lane it holds.
            let _lane = match bulk.enter(Work::Fold).await {
                Ok(lane) => lane,
                Err(error) => {
                    tracing::warn!(%error, "could not apply the rollups");
                    continue;
                }
            };
            let turn = turns.of(organisation_id);
            let _turn = turn.lock().await;
            match store::rollup_queue::apply_some(&pool, organisation_id).await {
                Ok(taken) => {
                    meters::rollups_applied(u64::try_from(taken).unwrap_or(0));
                    statistics.written(u64::try_from(taken).unwrap_or(0));
                    if taken == store::rollup_queue::TAKEN_AT_ONCE {
                        let _ = again.send(organisation_id);
                    }
                }
                // Left pending, for the next report or analysis.
                Err(error) => tracing::warn!(
                    organisation = %organisation_id,
                    %error,
                    "could not apply the rollups"
                ),
            }
        }
    }
}
