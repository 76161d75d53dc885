//! The commit probe of `verdad-bench load`: what one durable commit takes
//! on this machine while the load runs.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use sqlx::{PgPool, postgres::PgPoolOptions};
use tokio::sync::oneshot;

use super::{PROBE, Record, Shared, note, take};

/// One-row durable commits a second the probe makes in each timed phase.
const PROBE_RATE: u32 = 100;
/// Connections the probe spreads its commits over.
const PROBE_CONNECTIONS: u32 = 4;
/// The probe's table, in the bench's own database, and its one write.
pub(super) const PROBE_TABLE: &str = "create table verdad_bench_commit_probe \
    (id bigint generated always as identity primary key)";
const PROBE_INSERT: &str = "insert into verdad_bench_commit_probe default values";
/// PostgreSQL's own floor for a durable write, measured beside the load:
/// a one-row insert committed in one round trip, `PROBE_RATE` times a
/// second. A RecordEncounter call is answered only once its batch's commit
/// is on disk, so no call can beat what this takes at the same moment: the
/// WAL flush it waits for carries whatever the other traffic wrote before
/// it, and the disk's flush is the machine's. Like the calls, the probes
/// are an open loop: one sent while an earlier one is stuck goes on a
/// further connection, so a stall is counted for every probe it holds up.
pub(super) struct Probe {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Record>,
    pool: PgPool,
}

impl Probe {
    pub(super) async fn start(url: &str) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(PROBE_CONNECTIONS)
            .min_connections(PROBE_CONNECTIONS)
            // No ping before each probe: one round trip, as a batch's
            // commit is.
            .test_before_acquire(false)
            .connect(url)
            .await?;
        let (stop, mut stopped) = oneshot::channel();
        let probes = pool.clone();
        let task = tokio::spawn(async move {
            let record: Shared = Arc::default();
            let mut ticker =
                tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(PROBE_RATE)));
            let mut sent = Vec::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticker.tick() => {}
                }
                let (pool, record) = (probes.clone(), record.clone());
                sent.push(tokio::spawn(async move {
                    let started = Instant::now();
                    let ok = sqlx::query(PROBE_INSERT).execute(&pool).await.is_ok();
                    note(&record, PROBE, started.elapsed(), ok);
                }));
            }
            for probe in sent {
                let _ = probe.await;
            }
            take(&record)
        });
        Ok(Self { stop, task, pool })
    }

    pub(super) async fn stop(self) -> anyhow::Result<Record> {
        // The task runs until told; a send fails only if it panicked, which
        // its join error then says.
        let _ = self.stop.send(());
        let record = self.task.await.context("the commit probe failed")?;
        self.pool.close().await;
        Ok(record)
    }
}
