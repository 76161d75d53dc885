//! Table statistics brought up to date after large ingests.
//!
//! PostgreSQL plans every query from its statistics of the tables, which
//! autovacuum refreshes about a minute after enough rows changed, or never
//! where it is off. Right after a backfill the encounters a plan expects
//! are those of before it: the first MOT cycle of a new organisation's
//! 150,000 encounters took 7 s instead of 0.9 s, in a nested loop over 93
//! million rows, and folding them into the rollups took seconds a piece.
//! So the server counts what it stores and folds, and after every
//! `--analyze-after` rows it analyses the tables itself, in the background.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Instant,
};

use sqlx::{Connection, Executor, PgConnection, PgPool};

/// The default of `--analyze-after`: an analysis of the tables takes a few
/// hundred milliseconds of one backend at a million encounters.
pub const DEFAULT_ANALYZE_AFTER: u64 = 100_000;

/// The tables a backfill grows: the encounters, what is waiting for the
/// rollups, and the rollups themselves.
const TABLES: &str = "encounter, rollup_pending, recovery_case, encounter_day, \
                      encounter_day_seconds, encounter_day_standard, journey_path";

/// Counts the rows written and analyses the tables after every so many.
#[derive(Clone)]
pub struct Statistics {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    /// Rows between two analyses; 0 never analyses.
    after: u64,
    written: AtomicU64,
    running: AtomicBool,
}

impl Statistics {
    pub fn new(pool: PgPool, after: u64) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                after,
                written: AtomicU64::new(0),
                running: AtomicBool::new(false),
            }),
        }
    }

    /// Counts `rows` written; analyses the tables in the background once
    /// the count reaches the threshold, unless an analysis runs already.
    pub fn written(&self, rows: u64) {
        let inner = &self.inner;
        if inner.after == 0 || rows == 0 {
            return;
        }
        let total = inner.written.fetch_add(rows, Ordering::Relaxed) + rows;
        if total < inner.after || inner.running.swap(true, Ordering::AcqRel) {
            return;
        }
        inner.written.store(0, Ordering::Relaxed);
        let keeper = self.clone();
        tokio::spawn(async move {
            keeper.analyse(total).await;
            keeper.inner.running.store(false, Ordering::Release);
        });
    }

    async fn analyse(&self, rows: u64) {
        let started = Instant::now();
        // On a connection of its own, as the database's user rather than
        // the application role the pool's connections take: only a table's
        // owner may analyse it.
        let options = self.inner.pool.connect_options();
        let analysed = async {
            let mut connection = PgConnection::connect_with(&options).await?;
            connection
                .execute(format!("analyze {TABLES}").as_str())
                .await?;
            connection.close().await
        }
        .await;
        match analysed {
            Ok(()) => tracing::info!(
                rows,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "table statistics brought up to date after a large ingest"
            ),
            Err(error) => tracing::warn!(%error, "could not bring the table statistics up to date"),
        }
    }
}
