//! `verdad-bench`: measurements of Verdad against plain PostgreSQL, run
//! from the shipped image on the operator's own hardware. A binary of its
//! own, beside the service's: nothing of it runs in the server.

mod analyses;
mod config;
mod cycle;
mod doors;
mod feeds;
mod ingest;
mod load;
mod long_stays;
mod machine;
mod server;
mod streams;
mod webhooks;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use config::{BenchCli, BenchCommand};
use sqlx::{ConnectOptions, Connection, Executor, PgConnection};
use uuid::Uuid;

use verdad::{
    app::api_keys::create_key,
    cli::Database,
    cli::config::DatabaseArgs,
    demo,
    domain::{api_key::NewApiKey, role::Role},
    store::{self, PoolOptions, with_database},
};

/// The `q` quantile of `samples` (nearest rank).
fn percentile(samples: &[std::time::Duration], q: f64) -> std::time::Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or_default()
}

fn millis(duration: std::time::Duration) -> String {
    format!("{:.2}ms", duration.as_secs_f64() * 1000.0)
}

/// How many times `base` `value` is.
fn ratio(value: std::time::Duration, base: std::time::Duration) -> f64 {
    value.as_secs_f64() / base.as_secs_f64().max(1e-9)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = BenchCli::parse();
    verdad::telemetry::init(cli.log_format);
    match run(cli.bench).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("verdad-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Ingest(args) => ingest::run(args).await,
        BenchCommand::Analyses(args) => analyses::run(args).await,
        BenchCommand::Load(args) => load::run(args).await,
        BenchCommand::Streams(args) => streams::run(args).await,
        BenchCommand::Doors(args) => doors::run(args).await,
        BenchCommand::Feeds(args) => feeds::run(args).await,
        BenchCommand::Webhooks(args) => webhooks::run(args).await,
        BenchCommand::Cycle(args) => cycle::run(args).await,
        BenchCommand::LongStayLog(args) => long_stays::write_csv(&args),
    }
}

/// Runs `bench` on the URL of a fresh database of the cluster `args` names
/// (the embedded PostgreSQL without one), and drops it afterwards unless
/// `keep`.
async fn in_fresh_database<F, Fut>(
    args: &DatabaseArgs,
    keep: bool,
    bench: F,
) -> anyhow::Result<ExitCode>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = anyhow::Result<ExitCode>>,
{
    let database = Database::open(args).await?;
    let name = format!("verdad_bench_{}", Uuid::now_v7().simple());
    // Created and dropped through the URL's own database: it exists, where
    // a `postgres` maintenance database might not.
    let result = match store::create_database_if_missing(&database.url, &name).await {
        Ok(()) => {
            tracing::info!(database = %name, cluster = %database.description, "bench database created");
            let result = bench(with_database(&database.url, &name)).await;
            if keep {
                println!("kept       database {name}");
            } else if let Err(error) = drop_database(&database.url, &name).await {
                tracing::error!("cannot drop the bench database {name}: {error:#}");
            }
            result
        }
        Err(error) => Err(anyhow::Error::from(error))
            .with_context(|| format!("cannot create the bench database {name}")),
    };
    database.close().await;
    result
}

async fn drop_database(url: &str, name: &str) -> anyhow::Result<()> {
    let mut connection = PgConnection::connect(url).await?;
    // WITH (FORCE) ends connections a failed run may have left behind.
    let statement = format!(
        "drop database if exists {} with (force)",
        store::quote_identifier(name)
    );
    Executor::execute(&mut connection, statement.as_str()).await?;
    connection.close().await?;
    Ok(())
}

/// Migrates the bench database, creates the demo hospital in it and returns
/// the secrets of new keys of the hospital, one per role asked for.
async fn prepare(url: &str, roles: &[Role]) -> anyhow::Result<Vec<String>> {
    store::migrate(url)
        .await
        .context("cannot migrate the bench database")?;
    let options = PoolOptions {
        max_connections: 2,
        ..PoolOptions::default()
    };
    let pool = store::connect(url, &options)
        .await
        .context("cannot connect to the bench database")?;
    let secrets = demo_keys(&pool, roles).await;
    pool.close().await;
    secrets.context("cannot create the demo hospital and its keys")
}

async fn demo_keys(pool: &sqlx::PgPool, roles: &[Role]) -> verdad::error::Result<Vec<String>> {
    // The demo's admin key is not needed: feeds use ingest keys, analysts
    // analyst keys.
    demo::ensure_demo(pool).await?;
    let mut secrets = Vec::with_capacity(roles.len());
    for &role in roles {
        let new = NewApiKey {
            display_name: format!("bench {role} key"),
            role,
        };
        secrets.push(
            create_key(pool, demo::DEMO_ORGANISATION_ID, &new)
                .await?
                .secret,
        );
    }
    Ok(secrets)
}

/// Settles a load as autovacuum and a checkpoint would, rather than have
/// them land in the timed phases that follow (the checkpoint needs
/// superuser or pg_checkpoint; without it the figures may carry that noise).
async fn settle(url: &str) -> anyhow::Result<()> {
    // A vacuum of a large load takes more than sqlx's second for a slow
    // statement; it is expected, not worth a warning.
    let options = url
        .parse::<sqlx::postgres::PgConnectOptions>()?
        .disable_statement_logging();
    let mut owner = PgConnection::connect_with(&options).await?;
    owner.execute("vacuum analyze").await?;
    if let Err(error) = owner.execute("checkpoint").await {
        tracing::warn!(%error, "no checkpoint before timing");
    }
    owner.close().await?;
    Ok(())
}

/// Waits until the server has folded every pending change into the
/// rollups, and says how long that took. The bench connects as the
/// database's owner; were row-level security to hide the pending rows from
/// it, this would return at once.
async fn rollups_caught_up(url: &str) -> anyhow::Result<std::time::Duration> {
    const LIMIT: std::time::Duration = std::time::Duration::from_secs(600);
    let started = std::time::Instant::now();
    let mut owner = PgConnection::connect(url).await?;
    loop {
        let pending: i64 = sqlx::query_scalar("select count(*) from rollup_pending")
            .fetch_one(&mut owner)
            .await?;
        if pending == 0 {
            break;
        }
        if started.elapsed() > LIMIT {
            anyhow::bail!("{pending} changes still wait for the rollups after {LIMIT:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    owner.close().await?;
    Ok(started.elapsed())
}
