//! The command line of `verdad-bench`: every setting is a flag with an
//! environment variable beside it, like the server's.

use clap::{Args, Parser, Subcommand, ValueEnum};
use verdad::{cli::config::DatabaseArgs, telemetry::LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "verdad-bench",
    version,
    about = "Measures Verdad against plain PostgreSQL on this machine"
)]
pub(crate) struct BenchCli {
    /// How log lines are written: pretty for people, json for collectors.
    #[arg(long, env = "VERDAD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub(crate) log_format: LogFormat,

    #[command(subcommand)]
    pub(crate) bench: BenchCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub(crate) enum BenchCommand {
    /// Streams encounters through a fresh server and compares with a plain COPY.
    ///
    /// Streams encounters of realistic hospital visits through a server of
    /// its own into a fresh database (evaluation and idempotency on), then
    /// times a plain PostgreSQL COPY of the same rows into the same table as
    /// the baseline. Prints both rates, their ratio (target: at least 0.5)
    /// and the server's peak memory. The database is made on the cluster of
    /// DATABASE_URL (without it, of the embedded PostgreSQL) and dropped
    /// afterwards.
    Ingest(IngestBenchArgs),

    /// Times every analysis over a million encounters.
    ///
    /// Streams realistic hospital visits (with journey feedback) through a
    /// server of its own into a fresh database, then calls every analysis
    /// repeatedly over the last 30 days and over the whole year, and prints
    /// each one's median latency beside a plain count of the same
    /// encounters as the baseline. The database is made on the cluster of
    /// DATABASE_URL (without it, of the embedded PostgreSQL) and dropped
    /// afterwards.
    Analyses(AnalysesBenchArgs),

    /// Mixed traffic for a bounded time: unary pushes, ingest streams and
    /// analyses together.
    ///
    /// Preloads realistic visits into a fresh database through a server of
    /// its own, sends RecordEncounter at --record-rate for 3 s untimed,
    /// times it alone at that rate as the
    /// baseline, then the same rate alongside --streams ingest streams and
    /// an analyst's dashboard calls. Prints throughput, p50 and p99 latency
    /// per method, errors (the target is none) and the server's peak
    /// memory. Target: RecordEncounter p99 under 10 ms at 1,000 calls/s
    /// alongside the other traffic.
    Load(LoadBenchArgs),

    /// Many ingest streams of large batches at once: the server's memory.
    ///
    /// Runs --streams streams at once, each sending --batches batches of
    /// large encounters, with RecordEncounter and the health check beside
    /// them, against two servers in turn on a fresh database: one whose
    /// stream budget binds nothing (the baseline) and one with
    /// --stream-buffer-bytes. Prints each server's memory idle, at its peak
    /// and after the load, what was stored, RecordEncounter's latency and
    /// how often health was not SERVING. Target: peak under 256 MiB with the
    /// default budget.
    Streams(StreamsBenchArgs),

    /// What the HTTP/JSON door costs against gRPC.
    ///
    /// On one server of its own over a fresh database: streamed ingest
    /// through each door in turn (gRPC streams, then as many NDJSON
    /// requests), round by round in alternating order, and RecordEncounter
    /// at --record-rate through each. Prints each door's encounters/s, its
    /// RecordEncounter answers per second, p50 and p99, and JSON's ratio to
    /// gRPC, the baseline. Target: JSON ingest at least 70% of gRPC's rate.
    Doors(DoorsBenchArgs),

    /// HL7 v2 over MLLP against RecordEncounter.
    ///
    /// On one server of its own (with an MLLP listener) over a fresh
    /// database, with a feed mapping ADT^A04 to the demo's reception desk:
    /// the same registrations as ADT messages over one MLLP connection,
    /// each after the previous ACK, and as RecordEncounter calls, each after
    /// the previous answer (the baseline); then over four connections and
    /// from four callers. Prints each phase's moments/s, p50 and p99, and
    /// the ratios. Target: one connection at least 80% of the baseline.
    Feeds(FeedsBenchArgs),
    /// Webhook deliveries to a local receiver.
    ///
    /// On one server of its own over a fresh database: failing
    /// RecordEncounter calls one at a time, each waiting for its
    /// recovery_case.opened to arrive (p50 and p99 of the time to arrival,
    /// beside the calls' own latency as the baseline); then the events per
    /// second delivered from a backlog to one webhook and to four.
    Webhooks(WebhooksBenchArgs),
    /// The MOT cycle against pm4py on three logs.
    ///
    /// Loads, through a server of its own into a fresh database, the Sepsis
    /// log replicated to about a million events, a generated log of long
    /// inpatient stays (day-precision times, repeated lab tests) and a year
    /// of a million realistic encounters. Times GetMotCycle on each (the
    /// whole log; the bench hospital's default 30 days), its first call
    /// right after the load, and the server's peak memory while it runs;
    /// exports the same scopes as CSV and times pm4py's discover_dfg,
    /// get_variants and discover_performance_dfg on them
    /// (scripts/pm4py-baseline) as the baseline; prints both and the ratio
    /// (target: at least 2), and checks that the figures agree.
    Cycle(CycleBenchArgs),
    /// Writes the generated long-stay log of `cycle` as CSV.
    ///
    /// The columns of ../shared/data/sepsis/events.csv that pm4py reads:
    /// event_seq, case_id, activity, timestamp.
    LongStayLog(LongStayLogArgs),
}

#[derive(Debug, Clone, Args)]
pub(crate) struct CycleBenchArgs {
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,

    /// The Sepsis event log (columns event_seq, case_id, activity, timestamp, timestamp_utc).
    #[arg(long, default_value = "tests/data/sepsis/events.csv")]
    pub(crate) sepsis: std::path::PathBuf,

    /// Copies of the Sepsis log loaded, each its own cases (66: about 1M events).
    #[arg(long, default_value_t = 66, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) sepsis_copies: u32,

    /// Journeys of the generated long-stay log.
    #[arg(long, default_value_t = 1200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) long_stays: u32,

    /// Encounters of the bench hospital's year.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) encounters: u64,

    /// Calls of each measurement; the median is reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) repeats: u32,

    /// The baseline's script; without python3 and PyPI the bench times
    /// Verdad alone.
    #[arg(long, default_value = "scripts/pm4py-baseline")]
    pub(crate) pm4py: std::path::PathBuf,

    /// Keeps the bench database afterwards.
    #[arg(long)]
    pub(crate) keep: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct LongStayLogArgs {
    /// Journeys to generate.
    #[arg(long, default_value_t = 1200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) stays: u32,

    /// Where to write the CSV.
    pub(crate) path: std::path::PathBuf,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct DoorsBenchArgs {
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,

    /// Encounters each door streams in each round.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) encounters: u64,

    /// Encounters per batch (per NDJSON line).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub(crate) batch_size: u32,

    /// Streams (requests) at once per door, each on a connection of its own.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub(crate) streams: u32,

    /// Ingest rounds; the doors alternate which goes first.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub(crate) rounds: u32,

    /// RecordEncounter calls per second, sent whether or not earlier ones
    /// have been answered.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) record_rate: u32,

    /// Seconds of each RecordEncounter phase (two per door).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub(crate) seconds: u32,

    /// Keeps the bench database afterwards.
    #[arg(long)]
    pub(crate) keep: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct FeedsBenchArgs {
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,

    /// Moments each phase sends in each round.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(4..))]
    pub(crate) messages: u64,

    /// Rounds; the phases alternate their order.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub(crate) rounds: u32,

    /// Keeps the bench database afterwards.
    #[arg(long)]
    pub(crate) keep: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct WebhooksBenchArgs {
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,

    /// Failing calls of the latency phase.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..))]
    pub(crate) calls: u64,

    /// Failing encounters of each throughput phase.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(8..))]
    pub(crate) backlog: u64,

    /// Keeps the bench database afterwards.
    #[arg(long)]
    pub(crate) keep: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct StreamsBenchArgs {
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,

    /// Streams at once, each on a connection of its own.
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) streams: u32,

    /// Batches each stream sends.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) batches: u32,

    /// Encounters per batch.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub(crate) batch_encounters: u32,

    /// About how many bytes a batch has (its encounters' comments make it
    /// up); the server under test takes messages of twice this.
    #[arg(long, default_value_t = 3_900_000)]
    pub(crate) batch_bytes: usize,

    /// The stream budget of the second server (see `serve
    /// --stream-buffer-bytes`).
    #[arg(long, default_value_t = verdad::server::DEFAULT_STREAM_BUFFER_BYTES)]
    pub(crate) stream_buffer_bytes: usize,

    /// Keeps the bench database afterwards.
    #[arg(long)]
    pub(crate) keep: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct LoadBenchArgs {
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,

    /// Encounters loaded before timing, so that analyses have work.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) preload: u64,

    /// How long the mixed traffic runs, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub(crate) seconds: u32,

    /// How long RecordEncounter runs alone first (the baseline), in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub(crate) baseline_seconds: u32,

    /// RecordEncounter calls per second, sent whether or not earlier ones
    /// have been answered.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) record_rate: u32,

    /// How the RecordEncounter calls are spaced in time.
    #[arg(long, value_enum, default_value_t = Arrivals::Poisson)]
    pub(crate) arrivals: Arrivals,

    /// Concurrent ingest streams during the mixed traffic.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=64))]
    pub(crate) streams: u32,

    /// Encounters per batch of each stream.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub(crate) stream_batch: u32,

    /// Batches per second each stream sends.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) stream_rate: u32,

    /// Pause between an analyst's calls, in milliseconds (one analyst
    /// calling the scorecard, trend, MOT cycle, journey outcomes and
    /// priority matrix in turn over the last 30 days).
    #[arg(long, default_value_t = 1000)]
    pub(crate) analysis_pause_ms: u64,

    /// Keeps the bench database afterwards.
    #[arg(long)]
    pub(crate) keep: bool,
}

/// How `verdad-bench load` spaces its RecordEncounter calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Arrivals {
    /// As from many independent feeding systems: random gaps, the rate on
    /// average (a Poisson process, drawn from a fixed seed).
    Poisson,
    /// Groups every 10 ms, as many calls at once as the rate owes: ten at
    /// once at 1,000 calls/s.
    Ticks,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct AnalysesBenchArgs {
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,

    /// How many encounters to load.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) encounters: u64,

    /// How many times each analysis is called; the median is reported.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) repeats: u32,

    /// Keeps the bench database afterwards, to look at the data.
    #[arg(long)]
    pub(crate) keep: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct IngestBenchArgs {
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,

    /// How many encounters to stream.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) encounters: u64,

    /// Encounters per batch of a stream (the server takes at most 5000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub(crate) batch_size: u32,

    /// How many ingest streams run at once, each on a connection of its own.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub(crate) streams: u32,

    /// Keeps the bench database afterwards, to look at the data.
    #[arg(long)]
    pub(crate) keep: bool,
}
