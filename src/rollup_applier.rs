//! Keeps the rollups close behind the encounters. Ingests leave their
//! changes pending (see the migration `rollups_applied_later`) and report
//! their organisation here; a task folds each reported organisation's
//! changes in shortly after, many batches at a time. Analyses do not rely
//! on it: they fold in what is pending before they read.

use std::collections::HashSet;

use sqlx::PgPool;
use tokio::{sync::mpsc, task::JoinHandle, time::Duration};
use uuid::Uuid;

use crate::{error::Result, meters, store};

/// How long the task gathers reports before it folds (`--rollup-delay`).
/// In the load bench, 50 ms gave the analyses a third of the wait 200 ms
/// gave them and RecordEncounter the same latency; 1 s was worse for both.
pub const DEFAULT_DELAY: Duration = Duration::from_millis(50);

/// Reports organisations with pending changes; cloning it shares the task.
#[derive(Clone)]
pub struct RollupApplier {
    pool: PgPool,
    reports: mpsc::UnboundedSender<Uuid>,
}

impl RollupApplier {
    /// Starts the task, which folds an organisation's changes in `delay`
    /// after it was first reported.
    pub fn start(pool: PgPool, delay: Duration) -> (Self, JoinHandle<()>) {
        let (reports, received) = mpsc::unbounded_channel();
        let task = tokio::spawn(apply_reported(pool.clone(), delay, received));
        (Self { pool, reports }, task)
    }

    /// Notes that `organisation_id` has changes pending.
    pub fn changed(&self, organisation_id: Uuid) {
        // The task is gone only while the server shuts down; what it leaves
        // pending is folded in before the next analysis reads.
        let _ = self.reports.send(organisation_id);
    }

    /// Folds in everything `organisation_id` has pending, before an
    /// analysis reads its rollups.
    pub async fn bring_up_to_date(&self, organisation_id: Uuid) -> Result<()> {
        let applied = store::rollup_queue::apply(&self.pool, organisation_id).await?;
        meters::rollups_applied(applied);
        Ok(())
    }
}

async fn apply_reported(
    pool: PgPool,
    delay: Duration,
    mut received: mpsc::UnboundedReceiver<Uuid>,
) {
    while let Some(first) = received.recv().await {
        tokio::time::sleep(delay).await;
        let mut organisations = HashSet::from([first]);
        while let Ok(more) = received.try_recv() {
            organisations.insert(more);
        }
        for organisation_id in organisations {
            match store::rollup_queue::apply(&pool, organisation_id).await {
                Ok(applied) => meters::rollups_applied(applied),
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
