//! Persistence: the SQL of Verdad's calls and of its background work lives
//! below this module. Outside it are only the `analyze` that `statistics`
//! runs after large ingests, the `LISTEN`s of the key cache and of the
//! recovery-case watch, and the bench's own set-up and probes (`bench`).
//!
//! Every query runs as the `verdad_app` role (set on each pooled connection),
//! inside a transaction that names the organisation it acts for, so that
//! PostgreSQL's row-level security checks the tenant again underneath each
//! query's own `organisation_id` filter.

pub mod analysis;
pub mod api_key;
pub mod demo;
pub mod encounter;
pub mod feed;
pub mod journey;
pub mod journey_close;
pub mod organisation;
pub mod recovery;
pub mod rollup_queue;
pub mod standard;
pub mod touchpoint;
pub mod webhook;

use std::time::Duration;

use sqlx::{
    Connection, Executor, PgConnection, PgPool, Postgres, Transaction, migrate::Migrator,
    postgres::PgPoolOptions,
};
use uuid::Uuid;

use crate::{
    domain::TextEnum,
    error::{Error, Result},
};

/// The schema, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// How long a connection may sit idle before it is tried on its way out of
/// the pool.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// The role requests run under; created by the first migration.
pub const APP_ROLE: &str = "verdad_app";

/// Applies the migrations that have not run yet, as the user of
/// `database_url` (who owns the schema).
pub async fn migrate(database_url: &str) -> Result<()> {
    let mut connection = PgConnection::connect(database_url).await?;
    MIGRATOR
        .run(&mut connection)
        .await
        .map_err(|e| Error::internal(format!("migration failed: {e}")))?;
    connection.close().await?;
    Ok(())
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// PostgreSQL cancels a statement that runs longer (SQLSTATE 57014,
    /// answered DEADLINE_EXCEEDED), so that a stuck query frees its
    /// connection instead of holding it after its caller has gone.
    pub statement_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
        }
    }
}

/// The pool requests use. Each connection drops to the unprivileged
/// application role, so row-level security holds even when `database_url`
/// names a superuser (superusers bypass it).
pub async fn connect(database_url: &str, options: &PoolOptions) -> Result<PgPool> {
    // At least a millisecond: 0 would turn the timeout off.
    let timeout_ms = options
        .statement_timeout
        .as_millis()
        .clamp(1, i32::MAX as u128);
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        // sqlx would ping every connection it hands out: a round trip per
        // transaction, on the path of every call. A connection in steady use
        // has just proved itself (sqlx pings each on its return too), so
        // only one that sat idle a while is tried first, to find those a
        // database restart has cut.
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_BEFORE_PING {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
        .after_connect(move |connection, _meta| {
            Box::pin(async move {
                connection.execute("set role verdad_app").await?;
                connection
                    .execute(format!("set statement_timeout = {timeout_ms}").as_str())
                    .await?;
                Ok(())
            })
        })
        .connect(database_url)
        .await?;
    Ok(pool)
}

/// Begins a transaction acting for `organisation_id`: row-level security
/// shows and accepts only that organisation's rows until it ends.
pub async fn begin_for(
    pool: &PgPool,
    organisation_id: Uuid,
) -> Result<Transaction<'static, Postgres>> {
    // One round trip for both: `BEGIN` and the setting go as one simple
    // query. A formatted UUID is hexadecimal digits and hyphens, so it
    // cannot break out of its quotes.
    let begin = format!(
        "begin; select set_config('verdad.organisation_id', '{}', true)",
        organisation_id.hyphenated()
    );
    let tx = crate::telemetry::meters::waiting_for_connection(pool.begin_with(begin)).await?;
    Ok(tx)
}

/// The key page tokens are signed with (see the migration that makes it).
pub async fn page_token_key(pool: &PgPool) -> Result<Vec<u8>> {
    let key: Vec<u8> =
        sqlx::query_scalar("select value from server_secret where name = 'page_token'")
            .fetch_one(pool)
            .await?;
    Ok(key)
}

/// Whether the database answers a trivial query.
pub async fn ping(pool: &PgPool) -> bool {
    sqlx::query!("select 1 as one")
        .fetch_one(pool)
        .await
        .is_ok()
}

/// The name of the unique constraint a database error violated, if any.
fn violated_unique(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(db) if db.is_unique_violation() => db.constraint(),
        _ => None,
    }
}

/// A value stored as text. The tables' check constraints admit only known
/// values, so a failure here means the schema and the code disagree.
fn decode<T: TextEnum>(text: &str) -> Result<T> {
    T::parse_text(text)
        .ok_or_else(|| Error::internal(format!("unknown {} {text:?} in the database", T::NAME)))
}

/// Creates the database `name` through the maintenance database at
/// `admin_url`, unless it exists.
pub async fn create_database_if_missing(admin_url: &str, name: &str) -> Result<()> {
    let mut connection = PgConnection::connect(admin_url).await?;
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(name)
            .fetch_one(&mut connection)
            .await?;
    if !exists {
        // Identifiers cannot be bound as parameters.
        connection
            .execute(format!("create database {}", quote_identifier(name)).as_str())
            .await?;
    }
    connection.close().await?;
    Ok(())
}

/// `name` as a quoted SQL identifier.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `url` with its database replaced by `database`; user, password, host,
/// port and query parameters stay as they are.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{database}{query}", &base[..authority_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://u:p@127.0.0.1:5432/verdad", "bench"),
            "postgres://u:p@127.0.0.1:5432/bench"
        );
        assert_eq!(
            with_database("postgres://u@db/verdad?sslmode=require", "bench"),
            "postgres://u@db/bench?sslmode=require"
        );
        assert_eq!(
            with_database("postgresql://db:5432", "bench"),
            "postgresql://db:5432/bench"
        );
    }
}
