//! Command line and environment: every setting is a flag with an
//! environment variable beside it.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::telemetry::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "verdad",
    version,
    about = "Moments of Truth management over gRPC"
)]
pub struct Cli {
    /// How log lines are written: pretty for people, json for collectors.
    #[arg(long, env = "VERDAD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the gRPC server (and an embedded PostgreSQL without DATABASE_URL).
    Serve(Box<ServeArgs>),
    /// Applies the database migrations and exits.
    Migrate(DatabaseArgs),
    /// Manages organisations and API keys from the operator's shell.
    Admin {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Exits 0 when the local server answers the gRPC health check as SERVING.
    Healthcheck(HealthcheckArgs),
    /// Prints the OpenAPI 3 document of the HTTP/JSON API (the one the
    /// server serves at /openapi.json), made from the protos.
    Openapi,
}

/// Where the data lives. Global, so that they may also follow an admin
/// subcommand (`verdad admin create-org --database-url …`).
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL to use. Without it an embedded PostgreSQL is started from
    /// the system's binaries in --pg-dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,

    /// Data directory of the embedded PostgreSQL.
    #[arg(
        long,
        env = "VERDAD_PG_DIR",
        default_value = ".verdad/pg",
        global = true
    )]
    pub pg_dir: PathBuf,

    /// Most database connections the server holds.
    #[arg(
        long,
        env = "VERDAD_DB_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub db_max_connections: u32,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Address the server listens on: gRPC, gRPC-Web and HTTP/JSON alike,
    /// told apart by each request's content type.
    #[arg(long, env = "VERDAD_LISTEN_ADDR", default_value = "127.0.0.1:50051")]
    pub listen_addr: SocketAddr,

    /// A web origin (e.g. https://quality.example-hospital.org) whose pages
    /// may call the API from a browser, over HTTP/JSON or gRPC-Web. Give it
    /// once per origin, or comma-separated in the environment variable; "*"
    /// allows any origin. None by default: browsers may not call across
    /// origins.
    #[arg(
        long = "cors-origin",
        env = "VERDAD_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// Address the MLLP listener for HL7 v2 feeds listens on (for example
    /// 0.0.0.0:2575); off when not given. Each message is answered with an
    /// ACK on the same connection.
    #[arg(long, env = "VERDAD_MLLP_ADDR")]
    pub mllp_addr: Option<SocketAddr>,

    /// Largest HL7 v2 message, in bytes (1 KiB to 64 MiB); a larger one is
    /// answered AR.
    #[arg(long, env = "VERDAD_MLLP_MAX_MESSAGE_BYTES", default_value_t = crate::mllp::DEFAULT_MAX_MESSAGE_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(1024..=64 * 1024 * 1024))]
    pub mllp_max_message_bytes: u64,

    /// How long an MLLP connection may sit without a message before the
    /// server closes it; engines reconnect when they next send.
    #[arg(long, env = "VERDAD_MLLP_IDLE_TIMEOUT", default_value = "5m", value_parser = humantime::parse_duration)]
    pub mllp_idle_timeout: Duration,

    /// PEM file of the MLLP listener's TLS certificate (and chain); with
    /// --mllp-tls-key, the listener speaks TLS only.
    #[arg(long, env = "VERDAD_MLLP_TLS_CERT", requires = "mllp_tls_key")]
    pub mllp_tls_cert: Option<PathBuf>,

    /// PEM file of the MLLP listener's TLS private key.
    #[arg(long, env = "VERDAD_MLLP_TLS_KEY", requires = "mllp_tls_cert")]
    pub mllp_tls_key: Option<PathBuf>,

    /// PEM file of the CAs whose client certificates the MLLP listener
    /// accepts; with it, every connection must present one. Feeds may pin
    /// the very certificates their messages come with.
    #[arg(long, env = "VERDAD_MLLP_TLS_CLIENT_CA", requires = "mllp_tls_cert")]
    pub mllp_tls_client_ca: Option<PathBuf>,

    /// Lets webhooks deliver to private, loopback and unique-local addresses:
    /// hospital receivers usually live on the internal network. Without it
    /// only public addresses are delivered to, so that a webhook cannot be
    /// pointed at the server's own neighbours.
    #[arg(long, env = "VERDAD_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,

    /// Longest one webhook delivery attempt may take (connecting, sending
    /// and the receiver's answer).
    #[arg(long, env = "VERDAD_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_webhook_timeout)]
    pub webhook_timeout: Duration,

    /// How long failed webhook deliveries are retried (with exponential
    /// backoff from 5 s to 2 h) before they are marked failed; at least 24h.
    #[arg(long, env = "VERDAD_WEBHOOK_RETRY_WINDOW", default_value = "24h", value_parser = parse_retry_window)]
    pub webhook_retry_window: Duration,

    /// How often each server looks for recovery cases that became overdue
    /// or climb the escalation ladder, and for journeys that went idle.
    #[arg(long, env = "VERDAD_SWEEP_INTERVAL", default_value = "10s", value_parser = parse_sweep_interval)]
    pub sweep_interval: Duration,

    /// Also create (once) a demo hospital and print an admin key for it.
    #[arg(long, env = "VERDAD_DEMO")]
    pub demo: bool,

    /// Longest a call may run before it fails with DEADLINE_EXCEEDED; a
    /// shorter grpc-timeout from the caller wins.
    #[arg(long, env = "VERDAD_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Longest a single database statement may run before PostgreSQL
    /// cancels it and the call fails with DEADLINE_EXCEEDED.
    #[arg(long, env = "VERDAD_STATEMENT_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub statement_timeout: Duration,

    /// How long in-flight calls may finish after SIGINT or SIGTERM.
    #[arg(long, env = "VERDAD_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Largest request or response message, in bytes.
    #[arg(long, env = "VERDAD_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,

    /// How often the database is probed for the health service.
    #[arg(long, env = "VERDAD_HEALTH_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub health_interval: Duration,

    /// Scorecards, trends, compliance reports and priority matrices over
    /// more encounters than this read the daily rollups: counts and rates
    /// stay exact, wait and response percentiles come from histograms
    /// (within 0.8%, exact under 128 s) and say so. The journey analyses
    /// read the journey rollups from four times this many.
    #[arg(long, env = "VERDAD_EXACT_PERCENTILE_LIMIT", default_value_t = crate::server::DEFAULT_EXACT_PERCENTILE_LIMIT)]
    pub exact_percentile_limit: i64,

    /// Batches of IngestEncounters streams stored at once, across all
    /// streams; further batches wait their turn, their streams held back.
    /// A batch of hundreds of encounters keeps a core busy for tens of
    /// milliseconds: limiting them leaves the other cores to RecordEncounter
    /// calls and analyses, at the cost of bulk throughput (see
    /// RELIABILITY.md, "Load"). 0: no limit.
    #[arg(long, env = "VERDAD_STREAM_BATCHES_AT_ONCE", default_value_t = 0)]
    pub stream_batches_at_once: usize,

    /// Bytes of IngestEncounters batches held at once across all streams:
    /// read ahead of what is stored, or being stored (each batch counted
    /// as its size plus 1 KiB). A stream whose next batch finds no room is
    /// not read until batches before it are stored. At least one batch of
    /// --max-message-bytes always fits.
    #[arg(long, env = "VERDAD_STREAM_BUFFER_BYTES", default_value_t = crate::server::DEFAULT_STREAM_BUFFER_BYTES)]
    pub stream_buffer_bytes: usize,

    /// Pieces of bulk work run at once, across all organisations: stream
    /// batches, folds of the rollups and analyses (not exports, which
    /// stream). Further pieces wait their turn; RecordEncounter calls and
    /// the other reads and writes never wait for one. Where PostgreSQL
    /// shares the server's processors, 1 keeps a processor for the live
    /// calls, at the cost of bulk throughput and analyses queued behind
    /// stream batches (see RELIABILITY.md, "One lane for bulk work"). 0: no
    /// limit.
    #[arg(long, env = "VERDAD_BULK_LANES", default_value_t = 0)]
    pub bulk_lanes: usize,

    /// How long after an ingest its encounters are folded into the
    /// rollups the analyses read. Analyses fold in what is still pending
    /// themselves, so this trades their wait against folding more often,
    /// in smaller pieces.
    #[arg(long, env = "VERDAD_ROLLUP_DELAY", default_value = "50ms", value_parser = humantime::parse_duration)]
    pub rollup_delay: Duration,

    /// How long an analysis that reads the rollups folds pending changes in
    /// before it reads. A backlog it cannot fold in that time (a bulk
    /// load's) is left to the server's own folds, and the analysis reads
    /// the encounters instead: slower for long ranges, never wrong.
    #[arg(long, env = "VERDAD_FOLD_WAIT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub fold_wait: Duration,

    /// Encounters stored and rollup changes folded between two analyses of
    /// the tables' statistics, which the server runs itself after large
    /// ingests (autovacuum comes a minute later, or never where it is off,
    /// and plans made without them can be many times slower). 0: never.
    #[arg(long, env = "VERDAD_ANALYZE_AFTER", default_value_t = crate::ingest::statistics::DEFAULT_ANALYZE_AFTER)]
    pub analyze_after: u64,

    /// Serve Prometheus metrics over HTTP on this address (any path);
    /// off when not given.
    #[arg(long, env = "VERDAD_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Creates an organisation and prints its id and first admin key.
    CreateOrg {
        /// The organisation's name.
        #[arg(long)]
        name: String,
        /// What kind of organisation it is.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// IANA time zone for day and week buckets, e.g. Asia/Seoul.
        #[arg(long)]
        time_zone: String,
    },
    /// Creates an API key and prints its secret (shown once).
    CreateKey {
        /// The organisation's id.
        #[arg(long)]
        org: uuid::Uuid,
        /// What the key may do.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// A label saying who or what uses the key.
        #[arg(long, default_value = "created by verdad admin")]
        name: String,
    },
    /// Revokes an API key.
    RevokeKey {
        /// The organisation's id.
        #[arg(long)]
        org: uuid::Uuid,
        /// The key's id.
        #[arg(long)]
        id: uuid::Uuid,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    Hospital,
    WelfareCentre,
    Agency,
    Other,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Ingest,
    Analyst,
    Admin,
}

#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// The server's listen address; an unspecified IP (0.0.0.0) is probed on
    /// loopback.
    #[arg(long, env = "VERDAD_LISTEN_ADDR", default_value = "127.0.0.1:50051")]
    pub listen_addr: SocketAddr,

    /// How long to wait for an answer.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

fn bounded(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let value = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if value < min || value > max {
        return Err(format!(
            "must be between {} and {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(value)
}

fn parse_webhook_timeout(text: &str) -> Result<Duration, String> {
    bounded(text, Duration::from_secs(1), Duration::from_secs(60))
}

fn parse_retry_window(text: &str) -> Result<Duration, String> {
    bounded(
        text,
        Duration::from_secs(24 * 60 * 60),
        Duration::from_secs(30 * 24 * 60 * 60),
    )
}

fn parse_sweep_interval(text: &str) -> Result<Duration, String> {
    bounded(text, Duration::from_secs(1), Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn shared_options_go_before_or_after_the_subcommand() {
        for line in [
            "verdad --log-format json admin --database-url postgres://db/v --pg-dir /p create-org \
             --name N --kind hospital --time-zone UTC",
            "verdad admin create-org --name N --kind hospital --time-zone UTC \
             --database-url postgres://db/v --pg-dir /p --log-format json",
        ] {
            let cli = Cli::try_parse_from(line.split_whitespace()).unwrap();
            assert_eq!(cli.log_format, LogFormat::Json, "{line}");
            let Command::Admin { database, command } = cli.command else {
                panic!("not an admin command: {line}");
            };
            assert_eq!(database.database_url.as_deref(), Some("postgres://db/v"));
            assert_eq!(database.pg_dir, PathBuf::from("/p"));
            assert!(matches!(command, AdminCommand::CreateOrg { .. }));
        }
        let cli = Cli::try_parse_from(["verdad", "migrate", "--database-url", "postgres://db/v"])
            .unwrap();
        let Command::Migrate(database) = cli.command else {
            panic!("not migrate");
        };
        assert_eq!(database.database_url.as_deref(), Some("postgres://db/v"));
    }
}
