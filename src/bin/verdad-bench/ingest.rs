//! `verdad-bench ingest`: streams realistic journeys through a fresh server
//! and database, then times a plain PostgreSQL `COPY` of the same rows into
//! the same table as the baseline.

use std::{
    net::SocketAddr,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{
    Request,
    metadata::{Ascii, MetadataValue},
    transport::{Channel, Endpoint},
};

use super::{in_fresh_database, prepare, server::ServerProcess};
use crate::config::IngestBenchArgs;
use verdad::{
    demo::visits::{self, Share},
    domain::role::Role,
    proto::verdad::v1::{self as pb, encounter_service_client::EncounterServiceClient},
};

/// Largest message the bench's client sends or accepts.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Batches generated ahead of each stream: enough to keep it busy, few
/// enough that the client never holds the whole workload.
const QUEUE_DEPTH: usize = 4;
/// Size of the pieces the COPY baseline sends.
const COPY_CHUNK_BYTES: usize = 1024 * 1024;
/// The target: streaming at least half as fast as COPY.
const TARGET_RATIO: f64 = 0.5;
/// Rejections printed when the workload was not valid.
const REJECTIONS_SHOWN: usize = 5;
const MIB: f64 = 1024.0 * 1024.0;

pub(super) async fn run(args: IngestBenchArgs) -> anyhow::Result<ExitCode> {
    let bench = &args;
    in_fresh_database(&args.database, args.keep, |url| async move {
        bench_in(&url, bench).await
    })
    .await
}

async fn bench_in(url: &str, args: &IngestBenchArgs) -> anyhow::Result<ExitCode> {
    let secret = prepare(url, &[Role::Ingest])
        .await?
        .pop()
        .context("no ingest key was made")?;
    let shares = visits::plan(args.encounters, args.streams);
    let journeys: u64 = shares.iter().map(|share| share.journeys).sum();
    println!(
        "verdad-bench ingest: {} encounters in {journeys} journeys, {} streams x batches of {} \
         (evaluation and idempotency on)",
        args.encounters,
        shares.len(),
        args.batch_size
    );

    let server = ServerProcess::start(url, args.database.db_max_connections).await?;
    let streamed = stream_all(server.addr, &secret, &shares, args.batch_size as usize).await;
    let caught_up = match &streamed {
        Ok(_) => Some(super::rollups_caught_up(url).await),
        Err(_) => None,
    };
    // Read before stopping: the figure goes with the process.
    let peak = server.peak_memory_bytes();
    let stopped = server.stop().await;
    let streamed = streamed?;
    stopped?;

    let caught_up = caught_up.transpose()?.unwrap_or_default();
    let streamed_rate = per_second(args.encounters, streamed.elapsed);
    report_streamed(&streamed, streamed_rate, peak);
    let analysable_rate = per_second(args.encounters, streamed.elapsed + caught_up);
    println!(
        "rollups    folded in {:.1} s after the last batch: {analysable_rate:.0} encounters/s \
         stored and summarised",
        caught_up.as_secs_f64()
    );
    if streamed.rejected > 0 {
        report_rejections(&streamed.rejections);
        bail!(
            "the server rejected {} of {} encounters: the bench's workload must be valid",
            streamed.rejected,
            args.encounters
        );
    }
    let handled = streamed.accepted + streamed.duplicates;
    if u64::try_from(handled).ok() != Some(args.encounters) {
        tracing::warn!(
            handled,
            sent = args.encounters,
            "the server did not count every encounter sent"
        );
    }

    let copied = copy_baseline(url).await?;
    report_baseline(streamed_rate, analysable_rate, &copied);
    Ok(ExitCode::SUCCESS)
}

/// What the ingest streams did, added up.
#[derive(Debug, Default)]
pub(super) struct Streamed {
    pub(super) accepted: i64,
    pub(super) duplicates: i64,
    pub(super) rejected: i64,
    pub(super) recovery_cases: i64,
    pub(super) rejections: Vec<pb::Rejection>,
    pub(super) elapsed: Duration,
}

impl Streamed {
    fn add(&mut self, response: pb::IngestEncountersResponse) {
        self.accepted += response.accepted;
        self.duplicates += response.duplicates;
        self.rejected += response.rejected;
        self.recovery_cases += response.recovery_cases_opened;
        self.rejections.extend(response.rejections);
    }
}

/// Streams every share on a connection of its own, concurrently, and times
/// them from the first send to the last response.
pub(super) async fn stream_all(
    addr: SocketAddr,
    secret: &str,
    shares: &[Share],
    batch_size: usize,
) -> anyhow::Result<Streamed> {
    let authorization: MetadataValue<Ascii> = format!("Bearer {secret}")
        .parse()
        .context("the ingest key is not valid metadata")?;
    // One connection per stream, like separate feeding systems; connected
    // before the clock starts.
    let mut clients = Vec::with_capacity(shares.len());
    for _ in shares {
        clients.push(connect(addr).await?);
    }
    let today = today();
    tracing::info!(streams = shares.len(), "streaming");

    let started = Instant::now();
    let mut calls = Vec::with_capacity(shares.len());
    for (mut client, share) in clients.into_iter().zip(shares.iter().copied()) {
        let batches = generate_batches(share, batch_size, today);
        let mut request = Request::new(ReceiverStream::new(batches));
        request
            .metadata_mut()
            .insert("authorization", authorization.clone());
        calls.push(tokio::spawn(async move {
            client.ingest_encounters(request).await
        }));
    }
    let mut streamed = Streamed::default();
    for call in calls {
        let response = call
            .await
            .context("an ingest stream's task failed")?
            .context("an ingest stream failed")?;
        streamed.add(response.into_inner());
    }
    streamed.elapsed = started.elapsed();
    Ok(streamed)
}

pub(super) async fn connect(addr: SocketAddr) -> anyhow::Result<EncounterServiceClient<Channel>> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await
        .with_context(|| format!("cannot connect to the server on {addr}"))?;
    Ok(EncounterServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

/// The share's batches, generated by a blocking task a few batches ahead of
/// the stream that sends them.
fn generate_batches(
    share: Share,
    batch_size: usize,
    today: i64,
) -> mpsc::Receiver<pb::IngestEncountersRequest> {
    let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
    tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(batch_size);
        for encounter in share.encounters(today) {
            batch.push(encounter);
            if batch.len() == batch_size {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                let request = pb::IngestEncountersRequest { encounters: full };
                // A closed queue means the stream ended early; the call
                // reports why.
                if sender.blocking_send(request).is_err() {
                    return;
                }
            }
        }
        if !batch.is_empty() {
            let request = pb::IngestEncountersRequest { encounters: batch };
            // As above: a failed stream reports its own error.
            let _ = sender.blocking_send(request);
        }
    });
    receiver
}

/// The first second of the current UTC day: journeys are placed relative to
/// it, so a run repeats the encounters of an earlier run on the same day.
pub(super) fn today() -> i64 {
    let day = 86_400;
    chrono::Utc::now().timestamp().div_euclid(day) * day
}

/// The COPY baseline's result.
struct Copied {
    rows: u64,
    elapsed: Duration,
}

/// Copies the streamed rows out of the `encounter` table, empties it, and
/// times a binary `COPY` of the same rows back in: same table, same indexes,
/// same constraints, without Verdad's rollup triggers.
async fn copy_baseline(url: &str) -> anyhow::Result<Copied> {
    tracing::info!("COPY baseline");
    let mut connection = PgConnection::connect(url)
        .await
        .context("cannot connect for the COPY baseline")?;
    let copied = copy_round_trip(&mut connection).await;
    if let Err(error) = connection.close().await {
        tracing::warn!(%error, "cannot close the COPY baseline's connection");
    }
    copied
}

async fn copy_round_trip(connection: &mut PgConnection) -> anyhow::Result<Copied> {
    // COPY FROM refuses a table whose row-level security applies to the
    // user, and FORCE makes it apply to the table's owner too (superusers
    // are exempt either way). Lifted for the baseline only.
    Executor::execute(
        &mut *connection,
        "alter table encounter no force row level security",
    )
    .await
    .context("the COPY baseline needs the owner of the encounter table or a superuser")?;
    let columns = copyable_columns(connection).await?;
    let expected = count_encounters(connection).await?;
    let data = copy_out(connection, &columns).await?;
    Executor::execute(&mut *connection, "truncate encounter cascade")
        .await
        .context("cannot empty the encounter table")?;

    // The baseline is plain PostgreSQL: the rollups Verdad keeps by
    // triggers are Verdad's cost, so they are off while COPY runs (and the
    // bench database is dropped afterwards, rollups and all).
    Executor::execute(
        &mut *connection,
        "alter table encounter disable trigger user",
    )
    .await
    .context("cannot switch off the rollup triggers for the baseline")?;
    let started = Instant::now();
    let rows = copy_in(connection, &columns, &data).await?;
    let elapsed = started.elapsed();
    drop(data);
    Executor::execute(
        &mut *connection,
        "alter table encounter enable trigger user",
    )
    .await
    .context("cannot switch the rollup triggers back on")?;

    let counted = count_encounters(connection).await?;
    if rows != expected || counted != expected {
        bail!("COPY wrote {rows} rows and the table holds {counted}, not the {expected} streamed");
    }
    Executor::execute(
        &mut *connection,
        "alter table encounter force row level security",
    )
    .await
    .context("cannot restore the row-level security of the encounter table")?;
    Ok(Copied { rows, elapsed })
}

/// The columns of `encounter` that COPY can write, in table order, quoted
/// and separated by commas. Generated columns, should any be added, are
/// left out: COPY FROM refuses them.
async fn copyable_columns(connection: &mut PgConnection) -> anyhow::Result<String> {
    let columns: Option<String> = sqlx::query_scalar(
        "select string_agg(quote_ident(attname), ', ' order by attnum) from pg_attribute \
         where attrelid = 'encounter'::regclass and attnum > 0 and not attisdropped \
         and attgenerated = ''",
    )
    .fetch_one(&mut *connection)
    .await
    .context("cannot list the columns of the encounter table")?;
    columns.context("the encounter table has no columns")
}

async fn count_encounters(connection: &mut PgConnection) -> anyhow::Result<u64> {
    let count: i64 = sqlx::query_scalar("select count(*) from encounter")
        .fetch_one(&mut *connection)
        .await
        .context("cannot count the encounters")?;
    Ok(u64::try_from(count)?)
}

/// The table's rows in COPY's binary format, in pieces of at most
/// `COPY_CHUNK_BYTES` (unless one row is larger), kept in memory so that
/// reading them costs the timed COPY nothing.
async fn copy_out(connection: &mut PgConnection, columns: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let statement = format!("copy encounter ({columns}) to stdout (format binary)");
    let mut stream = connection
        .copy_out_raw(&statement)
        .await
        .context("cannot start COPY TO")?;
    let mut chunks = Vec::new();
    let mut chunk = Vec::with_capacity(COPY_CHUNK_BYTES);
    while let Some(data) = stream.next().await {
        let data = data.context("COPY TO failed")?;
        if !chunk.is_empty() && chunk.len() + data.len() > COPY_CHUNK_BYTES {
            chunks.push(std::mem::replace(
                &mut chunk,
                Vec::with_capacity(COPY_CHUNK_BYTES),
            ));
        }
        chunk.extend_from_slice(&data);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    Ok(chunks)
}

/// Sends `data` with `COPY … FROM STDIN`; the rows written.
async fn copy_in(
    connection: &mut PgConnection,
    columns: &str,
    data: &[Vec<u8>],
) -> anyhow::Result<u64> {
    let statement = format!("copy encounter ({columns}) from stdin (format binary)");
    let mut copy = connection
        .copy_in_raw(&statement)
        .await
        .context("cannot start COPY FROM")?;
    for chunk in data {
        copy.send(chunk.as_slice())
            .await
            .context("COPY FROM failed")?;
    }
    copy.finish().await.context("COPY FROM failed")
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
}

fn report_streamed(streamed: &Streamed, rate: f64, peak_memory_bytes: Option<u64>) {
    println!(
        "streamed   {} accepted, {} duplicates, {} rejected, {} recovery cases \
         in {:.1} s = {rate:.0} encounters/s",
        streamed.accepted,
        streamed.duplicates,
        streamed.rejected,
        streamed.recovery_cases,
        streamed.elapsed.as_secs_f64()
    );
    match peak_memory_bytes {
        Some(bytes) => println!("server peak memory (VmHWM): {:.1} MiB", bytes as f64 / MIB),
        None => println!("server peak memory (VmHWM): unknown (no /proc/<pid>/status here)"),
    }
}

fn report_rejections(rejections: &[pb::Rejection]) {
    for rejection in rejections.iter().take(REJECTIONS_SHOWN) {
        println!(
            "rejected   batch {} item {} (external_id {}): {} {}",
            rejection.batch_index,
            rejection.item_index,
            rejection.external_id,
            rejection.code,
            rejection.message
        );
    }
}

fn report_baseline(streamed_rate: f64, analysable_rate: f64, copied: &Copied) {
    let copy_rate = per_second(copied.rows, copied.elapsed);
    println!(
        "COPY       {} rows in {:.1} s = {copy_rate:.0} rows/s (binary COPY into the same table, \
         same indexes and constraints; encounter rows only)",
        copied.rows,
        copied.elapsed.as_secs_f64()
    );
    let ratio = streamed_rate / copy_rate;
    let verdict = if ratio >= TARGET_RATIO {
        "met"
    } else {
        "not met"
    };
    println!("ratio      streamed / COPY = {ratio:.2} (target >= {TARGET_RATIO:.2}: {verdict})");
    println!(
        "ratio      stored and summarised / COPY = {:.2}",
        analysable_rate / copy_rate
    );
}
