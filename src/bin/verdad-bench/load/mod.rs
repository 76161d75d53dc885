//! `verdad-bench load`: unary pushes, ingest streams and analyses together
//! for a bounded time, against RecordEncounter alone as the baseline.

use std::{
    collections::BTreeMap,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    Request,
    metadata::{Ascii, MetadataValue},
    transport::{Channel, Endpoint},
};

use super::machine::{CpuTimes, CpuUse, ProcessTimes, ProcessUse};
use super::{
    analyses::{Analysis, call},
    in_fresh_database,
    ingest::{connect, stream_all, today},
    millis, percentile, prepare, ratio,
    server::ServerProcess,
};
mod probe;

use probe::{PROBE_TABLE, Probe};

use crate::config::{Arrivals, LoadBenchArgs};
use verdad::{
    demo::visits::{journey, plan, poisson_schedule, tick_schedule},
    domain::role::Role,
    proto::verdad::v1::{self as pb, analysis_service_client::AnalysisServiceClient},
};

/// The target for RecordEncounter alongside the other traffic.
const TARGET_P99: Duration = Duration::from_millis(10);
/// Connections the unary calls are spread over, as several feeding
/// systems would.
const UNARY_CONNECTIONS: usize = 4;
/// With `--arrivals ticks`, the unary calls are sent in groups this often.
const UNARY_TICK: Duration = Duration::from_millis(10);
/// RecordEncounter calls at the rate before the timed phases, untimed.
const WARM_UP_SECONDS: u64 = 3;
/// What the probe's figures are printed as.
const PROBE: &str = "one-row commit (probe)";
/// Visits under way at once in the unary feed.
const OPEN_JOURNEYS: usize = 500;
const DASHBOARD: &[Analysis] = &[
    Analysis::Scorecard,
    Analysis::Trend,
    Analysis::MotCycle,
    Analysis::JourneyOutcomes,
    Analysis::PriorityMatrix,
];

pub(super) async fn run(args: LoadBenchArgs) -> anyhow::Result<ExitCode> {
    let bench = &args;
    in_fresh_database(&args.database, args.keep, |url| async move {
        bench_in(&url, bench).await
    })
    .await
}

/// Latencies and errors per method.
#[derive(Default)]
struct Record {
    latencies: BTreeMap<&'static str, Vec<Duration>>,
    errors: BTreeMap<&'static str, u64>,
    /// Encounters the streams had accepted.
    streamed: i64,
}

type Shared = Arc<Mutex<Record>>;

fn note(record: &Shared, method: &'static str, elapsed: Duration, ok: bool) {
    let mut record = record
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    record.latencies.entry(method).or_default().push(elapsed);
    if !ok {
        *record.errors.entry(method).or_default() += 1;
    }
}

async fn bench_in(url: &str, args: &LoadBenchArgs) -> anyhow::Result<ExitCode> {
    let mut secrets = prepare(url, &[Role::Ingest, Role::Analyst])
        .await?
        .into_iter();
    let (Some(ingest), Some(analyst)) = (secrets.next(), secrets.next()) else {
        bail!("the bench's keys were not made");
    };
    let server = ServerProcess::start(url, args.database.db_max_connections).await?;
    let result = load_and_time(url, &server, &ingest, &analyst, args).await;
    let peak = server.peak_memory_bytes();
    server.stop().await?;
    let errors = result?;
    if let Some(bytes) = peak {
        println!(
            "server peak memory (VmHWM): {:.1} MiB",
            bytes as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs the phases and prints them; returns the number of failed calls.
async fn load_and_time(
    url: &str,
    server: &ServerProcess,
    ingest: &str,
    analyst: &str,
    args: &LoadBenchArgs,
) -> anyhow::Result<u64> {
    let addr = server.addr;
    let processes = || async { ProcessTimes::now(server.pid(), &backends(url).await) };
    let shares = plan(args.preload, 2);
    let preloaded = stream_all(addr, ingest, &shares, 1000).await?;
    println!(
        "verdad-bench load: preloaded {} encounters in {:.1} s",
        preloaded.accepted,
        preloaded.elapsed.as_secs_f64()
    );
    let caught_up = super::rollups_caught_up(url).await?;
    println!(
        "rollups of the preload folded in {:.1} s after its last batch",
        caught_up.as_secs_f64()
    );
    let mut owner = PgConnection::connect(url).await?;
    owner.execute(PROBE_TABLE).await?;
    owner.close().await?;
    super::settle(url).await?;
    let ingest_key: MetadataValue<Ascii> = format!("Bearer {ingest}").parse()?;
    let analyst_key: MetadataValue<Ascii> = format!("Bearer {analyst}").parse()?;
    let mut unary = Vec::with_capacity(UNARY_CONNECTIONS);
    for _ in 0..UNARY_CONNECTIONS {
        unary.push(connect(addr).await?);
    }

    // Fresh journeys for every phase, after the preloaded ones.
    let mut next_journey: u64 = shares.iter().map(|s| s.journeys).sum::<u64>();
    let today = today();
    let mut encounters = |count: u64| {
        let mut journeys = Vec::new();
        let mut total = 0;
        while total < count {
            let visit = journey(next_journey, today);
            total += visit.len() as u64;
            journeys.push(visit);
            next_journey += 1;
        }
        interleaved(journeys, count as usize)
    };

    let rate = u64::from(args.record_rate);
    // Untimed: every pooled connection plans the rollup statements on its
    // first batches, which a running server has long done.
    let warm_up = encounters(rate * WARM_UP_SECONDS);
    let untimed = Arc::new(Mutex::new(Record::default()));
    push_unary(&unary, &ingest_key, warm_up, rate, args.arrivals, &untimed).await;
    let warm_up_errors: u64 = take(&untimed).errors.values().sum();
    let alone = encounters(rate * u64::from(args.baseline_seconds));
    let baseline = Arc::new(Mutex::new(Record::default()));
    let alone_probe = Probe::start(url).await?;
    let processes_before = processes().await;
    let started = Instant::now();
    let cpu_before = CpuTimes::now();
    push_unary(&unary, &ingest_key, alone, rate, args.arrivals, &baseline).await;
    let baseline_elapsed = started.elapsed();
    let alone_cpu = cpu_use(cpu_before);
    let alone_processes = processes().await.since(&processes_before);
    let alone_probe = alone_probe.stop().await?;

    let mixed_unary = encounters(rate * u64::from(args.seconds));
    let per_stream =
        u64::from(args.stream_batch) * u64::from(args.stream_rate) * u64::from(args.seconds);
    let streams: Vec<Vec<pb::Encounter>> =
        (0..args.streams).map(|_| encounters(per_stream)).collect();
    let mixed = Arc::new(Mutex::new(Record::default()));
    let run_for = Duration::from_secs(u64::from(args.seconds));
    let mixed_probe = Probe::start(url).await?;
    let processes_before = processes().await;
    let started = Instant::now();
    let cpu_before = CpuTimes::now();
    let mut tasks = Vec::new();
    for encounters in streams {
        let client = connect(addr).await?;
        tasks.push(tokio::spawn(stream_paced(
            client,
            ingest_key.clone(),
            encounters,
            args.stream_batch as usize,
            args.stream_rate,
            mixed.clone(),
        )));
    }
    let channel = Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    tasks.push(tokio::spawn(dashboard(
        AnalysisServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024),
        analyst_key,
        run_for,
        Duration::from_millis(args.analysis_pause_ms),
        mixed.clone(),
    )));
    push_unary(
        &unary,
        &ingest_key,
        mixed_unary,
        rate,
        args.arrivals,
        &mixed,
    )
    .await;
    for task in tasks {
        task.await.context("a load task failed")?;
    }
    let mixed_elapsed = started.elapsed();
    let mixed_cpu = cpu_use(cpu_before);
    let mixed_processes = processes().await.since(&processes_before);
    let mixed_probe = mixed_probe.stop().await?;

    let baseline = take(&baseline);
    let mixed = take(&mixed);
    println!(
        "{:<34} {:>8} {:>7} {:>11} {:>9} {:>9} {:>9}",
        "phase / method", "calls", "errors", "calls/s", "p50", "p99", "max"
    );
    print_phase("alone", &baseline, baseline_elapsed);
    print_phase("alone", &alone_probe, baseline_elapsed);
    print_phase("mixed", &mixed, mixed_elapsed);
    print_phase("mixed", &mixed_probe, mixed_elapsed);
    for (phase, used, by) in [
        ("alone", alone_cpu, alone_processes),
        ("mixed", mixed_cpu, mixed_processes),
    ] {
        if let Some(used) = used {
            println!(
                "cpu        {phase}: {:.2} of {} processors busy, {:.1}% of their time stolen by the hypervisor; {}",
                used.busy_processors,
                processors(),
                used.stolen_share * 100.0,
                who_kept_them_busy(&used, &by)
            );
        }
    }
    println!(
        "streams    {} encounters accepted in {:.1} s = {:.0} encounters/s alongside",
        mixed.streamed,
        mixed_elapsed.as_secs_f64(),
        mixed.streamed as f64 / mixed_elapsed.as_secs_f64()
    );
    let p99 =
        |record: &Record, method: &str| record.latencies.get(method).map(|l| percentile(l, 0.99));
    let recorded = (
        p99(&baseline, "RecordEncounter"),
        p99(&mixed, "RecordEncounter"),
    );
    if let (Some(alone), Some(together)) = recorded {
        let achieved = mixed
            .latencies
            .get("RecordEncounter")
            .map_or(0.0, |l| l.len() as f64 / mixed_elapsed.as_secs_f64());
        println!(
            "RecordEncounter p99 {} at {achieved:.0} calls/s ({:?} arrivals) alongside the rest, {} alone: ratio {:.2} (target < {} ms: {})",
            millis(together),
            args.arrivals,
            millis(alone),
            ratio(together, alone),
            TARGET_P99.as_millis(),
            if together < TARGET_P99 {
                "met"
            } else {
                "NOT met"
            }
        );
    }
    if let ((Some(alone), Some(together)), Some(floor_alone), Some(floor_together)) =
        (recorded, p99(&alone_probe, PROBE), p99(&mixed_probe, PROBE))
    {
        println!(
            "floor      a one-row durable commit to the same PostgreSQL, p99: {} alone, {} mixed; RecordEncounter's p99 over it: {:.2} alone, {:.2} mixed",
            millis(floor_alone),
            millis(floor_together),
            ratio(alone, floor_alone),
            ratio(together, floor_together),
        );
    }
    let probe_errors: u64 = alone_probe
        .errors
        .values()
        .chain(mixed_probe.errors.values())
        .sum();
    if probe_errors > 0 {
        println!("probe      {probe_errors} of the probe's commits failed");
    }
    let errors: u64 = warm_up_errors
        + baseline
            .errors
            .values()
            .chain(mixed.errors.values())
            .sum::<u64>();
    println!("errors     {errors} (target: 0)");
    Ok(errors)
}

/// The journeys' encounters, each journey's in its order, but taken from
/// `OPEN_JOURNEYS` journeys in turn: a hospital's feed interleaves the
/// visits under way, rather than sending one visit's steps back to back.
fn interleaved(journeys: Vec<Vec<pb::Encounter>>, count: usize) -> Vec<pb::Encounter> {
    let mut taken = Vec::with_capacity(count);
    for group in journeys.chunks(OPEN_JOURNEYS) {
        let longest = group.iter().map(Vec::len).max().unwrap_or(0);
        for step in 0..longest {
            taken.extend(group.iter().filter_map(|visit| visit.get(step).cloned()));
        }
    }
    taken.truncate(count);
    taken
}

/// The processes of the bench's database (the server's connections, the
/// floor's probe, autovacuum), but the one asking; none where PostgreSQL
/// cannot be asked.
async fn backends(url: &str) -> Vec<u32> {
    let Ok(mut connection) = PgConnection::connect(url).await else {
        return Vec::new();
    };
    let pids: Vec<i32> = sqlx::query_scalar(
        "select pid from pg_stat_activity
         where datname = current_database() and pid <> pg_backend_pid()",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap_or_default();
    let _ = connection.close().await;
    pids.into_iter()
        .filter_map(|pid| u32::try_from(pid).ok())
        .collect()
}

/// `server 0.21, PostgreSQL (this database's backends) 0.56, bench client
/// 0.15`, in processors' worth of time; a part whose processes could not be
/// read (PostgreSQL on another machine) is left out.
fn who_kept_them_busy(used: &CpuUse, by: &ProcessUse) -> String {
    [
        ("server", by.server),
        ("PostgreSQL (this database's backends)", by.database),
        ("bench client", by.bench),
    ]
    .into_iter()
    .filter_map(|(part, ticks)| Some(format!("{part} {:.2}", used.processors(ticks?))))
    .collect::<Vec<_>>()
    .join(", ")
}

/// What the machine's processors did since `before` was read.
fn cpu_use(before: Option<CpuTimes>) -> Option<CpuUse> {
    Some(CpuTimes::now()?.since(&before?, processors()))
}

fn processors() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn take(record: &Shared) -> Record {
    std::mem::take(
        &mut *record
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    )
}

/// Sends each encounter as its own RecordEncounter at `rate` calls a
/// second, spaced as `arrivals` says, without waiting for answers (an open
/// loop, as independent feeding systems send), and waits for the last
/// answer. A call is timed from when it was sent; one the bench sends late
/// (tokio's timer has millisecond steps) goes as soon as it can.
async fn push_unary(
    clients: &[pb::encounter_service_client::EncounterServiceClient<Channel>],
    key: &MetadataValue<Ascii>,
    encounters: Vec<pb::Encounter>,
    rate: u64,
    arrivals: Arrivals,
    record: &Shared,
) {
    // Every phase draws the same gaps, so the baseline's are the first of
    // the mixed phase's: the ratio compares the same arrivals.
    let schedule = match arrivals {
        Arrivals::Poisson => poisson_schedule(encounters.len(), rate),
        Arrivals::Ticks => tick_schedule(encounters.len(), rate, UNARY_TICK),
    };
    let start = tokio::time::Instant::now();
    let mut calls = Vec::with_capacity(encounters.len());
    for ((index, encounter), due) in encounters.into_iter().enumerate().zip(schedule) {
        tokio::time::sleep_until(start + due).await;
        let mut client = clients[index % clients.len()].clone();
        let mut request = Request::new(pb::RecordEncounterRequest {
            encounter: Some(encounter),
        });
        request.metadata_mut().insert("authorization", key.clone());
        let record = record.clone();
        calls.push(tokio::spawn(async move {
            let started = Instant::now();
            let ok = client.record_encounter(request).await.is_ok();
            note(&record, "RecordEncounter", started.elapsed(), ok);
        }));
    }
    for call in calls {
        let _ = call.await;
    }
}

/// One feed: batches of `batch` encounters at `rate` a second on one
/// stream; each batch's time is from its send to the next batch's send
/// being possible, so the figure reported is the stream's throughput.
async fn stream_paced(
    mut client: pb::encounter_service_client::EncounterServiceClient<Channel>,
    key: MetadataValue<Ascii>,
    encounters: Vec<pb::Encounter>,
    batch: usize,
    rate: u32,
    record: Shared,
) {
    let (sender, receiver) = mpsc::channel(1);
    let mut request = Request::new(ReceiverStream::new(receiver));
    request.metadata_mut().insert("authorization", key);
    let started = Instant::now();
    let call = tokio::spawn(async move { client.ingest_encounters(request).await });
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    for chunk in encounters.chunks(batch) {
        ticker.tick().await;
        let request = pb::IngestEncountersRequest {
            encounters: chunk.to_vec(),
        };
        if sender.send(request).await.is_err() {
            break;
        }
    }
    drop(sender);
    let answer = call.await;
    let elapsed = started.elapsed();
    let accepted = match answer {
        Ok(Ok(response)) => {
            let response = response.into_inner();
            (response.rejected == 0).then_some(response.accepted)
        }
        _ => None,
    };
    note(&record, "IngestEncounters", elapsed, accepted.is_some());
    let mut record = record
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    record.streamed += accepted.unwrap_or(0);
}

/// An analyst's dashboard: the scorecard, trend, MOT cycle, journey
/// outcomes and priority matrix in turn, a pause between calls.
async fn dashboard(
    mut client: AnalysisServiceClient<Channel>,
    key: MetadataValue<Ascii>,
    run_for: Duration,
    pause: Duration,
    record: Shared,
) {
    let started = Instant::now();
    for analysis in DASHBOARD.iter().cycle() {
        if started.elapsed() >= run_for {
            break;
        }
        let begun = Instant::now();
        let ok = call(&mut client, &key, *analysis, None).await.is_ok();
        note(&record, analysis.name(), begun.elapsed(), ok);
        tokio::time::sleep(pause.min(run_for.saturating_sub(started.elapsed()))).await;
    }
}

fn print_phase(phase: &str, record: &Record, elapsed: Duration) {
    for (method, latencies) in &record.latencies {
        let errors = record.errors.get(method).copied().unwrap_or(0);
        println!(
            "{:<34} {:>8} {:>7} {:>11.1} {:>9} {:>9} {:>9}",
            format!("{phase} / {method}"),
            latencies.len(),
            errors,
            latencies.len() as f64 / elapsed.as_secs_f64(),
            millis(percentile(latencies, 0.5)),
            millis(percentile(latencies, 0.99)),
            millis(percentile(latencies, 1.0)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&samples, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&samples, 1.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 0.99), Duration::ZERO);
    }

    #[test]
    fn journeys_are_interleaved_in_order() {
        let visit = |journey: &str, steps: usize| -> Vec<pb::Encounter> {
            (0..steps)
                .map(|step| pb::Encounter {
                    journey_id: journey.into(),
                    external_id: format!("{journey}{step}"),
                    ..Default::default()
                })
                .collect()
        };
        let ids: Vec<String> = interleaved(vec![visit("a", 3), visit("b", 1)], 4)
            .into_iter()
            .map(|e| e.external_id)
            .collect();
        assert_eq!(ids, ["a0", "b0", "a1", "a2"]);
    }
}
