//! `verdad-bench streams`: many ingest streams of large batches at once,
//! and the server's memory while they run and after, with RecordEncounter
//! and the health check answered beside them. Each run starts two servers
//! in turn on the same database: one with a stream budget too large to
//! bind (the server as it was before the budget), then one with the budget
//! under test; the first is the baseline.

use std::{
    net::SocketAddr,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use tonic::{
    Request,
    metadata::{Ascii, MetadataValue},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use super::{
    in_fresh_database,
    ingest::connect,
    prepare,
    server::{ServerProcess, memory_of},
};
use crate::config::StreamsBenchArgs;
use verdad::{domain::role::Role, proto::verdad::v1 as pb};

const MIB: f64 = 1024.0 * 1024.0;
/// A budget no load of the bench reaches: no bound at all.
const UNBOUND: usize = 4 * 1024 * 1024 * 1024 - 1;
/// How often the server's memory is read while the streams run.
const MEMORY_INTERVAL: Duration = Duration::from_millis(50);
/// How long the server idles after the streams before its memory is read
/// again.
const SETTLE: Duration = Duration::from_secs(5);
/// RecordEncounter calls per second beside the streams.
const RECORD_RATE: u64 = 20;
/// Health checks per second beside the streams.
const HEALTH_RATE: u64 = 4;

pub(super) async fn run(args: StreamsBenchArgs) -> anyhow::Result<ExitCode> {
    let bench = &args;
    in_fresh_database(&args.database, args.keep, |url| async move {
        bench_in(&url, bench).await
    })
    .await
}

/// What one server did under the load.
struct Run {
    label: String,
    idle: u64,
    peak: u64,
    after: u64,
    stored: i64,
    elapsed: Duration,
    failed_streams: usize,
    record_latencies: Vec<Duration>,
    record_errors: usize,
    health_checks: usize,
    not_serving: usize,
}

async fn bench_in(url: &str, args: &StreamsBenchArgs) -> anyhow::Result<ExitCode> {
    let secret = prepare(url, &[Role::Ingest])
        .await?
        .pop()
        .context("no ingest key was made")?;
    let per_encounter = args.batch_bytes / args.batch_encounters as usize;
    println!(
        "verdad-bench streams: {} streams at once, each {} batches of {} encounters \
         (about {:.1} MiB a batch), RecordEncounter at {RECORD_RATE}/s and the health \
         check at {HEALTH_RATE}/s beside them",
        args.streams,
        args.batches,
        args.batch_encounters,
        args.batch_bytes as f64 / MIB,
    );
    let mut runs = Vec::new();
    for (round, budget) in [(0, UNBOUND), (1, args.stream_buffer_bytes)] {
        let label = if budget == UNBOUND {
            "no bound".to_owned()
        } else {
            format!("budget {:.0} MiB", budget as f64 / MIB)
        };
        let server_args = [
            "--stream-buffer-bytes".to_owned(),
            budget.to_string(),
            "--max-message-bytes".to_owned(),
            (args.batch_bytes * 2).to_string(),
        ];
        let server =
            ServerProcess::start_with(url, args.database.db_max_connections, &server_args).await?;
        let run = load(&server, &secret, args, per_encounter, round, label).await;
        server.stop().await?;
        runs.push(run?);
    }
    report(&runs);
    let failures: usize = runs
        .iter()
        .map(|r| r.failed_streams + r.record_errors)
        .sum();
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Streams the load through `server` while measuring it.
async fn load(
    server: &ServerProcess,
    secret: &str,
    args: &StreamsBenchArgs,
    per_encounter: usize,
    round: u32,
    label: String,
) -> anyhow::Result<Run> {
    let authorization: MetadataValue<Ascii> = format!("Bearer {secret}").parse()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = server.memory_bytes().unwrap_or_default();

    let mut clients = Vec::new();
    for _ in 0..args.streams {
        clients.push(
            connect(server.addr)
                .await?
                .max_encoding_message_size(args.batch_bytes * 2),
        );
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let beside = tokio::spawn(beside_the_load(
        server.addr,
        authorization.clone(),
        done.clone(),
        round,
    ));
    let peak = Arc::new(Mutex::new(idle));
    let sampling = {
        let peak = peak.clone();
        let done = done.clone();
        let pid = server.pid();
        tokio::spawn(async move {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(rss) = pid.and_then(|pid| memory_of(pid, "VmRSS:")) {
                    let mut peak = peak.lock().unwrap_or_else(|p| p.into_inner());
                    *peak = (*peak).max(rss);
                }
                tokio::time::sleep(MEMORY_INTERVAL).await;
            }
        })
    };

    let started = Instant::now();
    let mut streams = Vec::new();
    for (n, mut client) in clients.into_iter().enumerate() {
        let batches: Vec<pb::IngestEncountersRequest> = (0..args.batches)
            .map(|b| batch(round, n, b, args.batch_encounters, per_encounter))
            .collect();
        let mut request = Request::new(tokio_stream::iter(batches));
        request
            .metadata_mut()
            .insert("authorization", authorization.clone());
        streams.push(tokio::spawn(async move {
            client.ingest_encounters(request).await
        }));
    }
    let mut stored = 0;
    let mut failed_streams = 0;
    for stream in streams {
        match stream.await {
            Ok(Ok(response)) => stored += response.into_inner().accepted,
            Ok(Err(status)) => {
                failed_streams += 1;
                tracing::warn!(code = ?status.code(), message = status.message(), "a stream failed");
            }
            Err(error) => {
                failed_streams += 1;
                tracing::warn!(%error, "a stream's task failed");
            }
        }
    }
    let elapsed = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let beside = beside.await?;
    sampling.await?;
    tokio::time::sleep(SETTLE).await;
    let after = server.memory_bytes().unwrap_or_default();
    let peak = (*peak.lock().unwrap_or_else(|p| p.into_inner()))
        .max(server.peak_memory_bytes().unwrap_or_default());
    Ok(Run {
        label,
        idle,
        peak,
        after,
        stored,
        elapsed,
        failed_streams,
        record_latencies: beside.record_latencies,
        record_errors: beside.record_errors,
        health_checks: beside.health_checks,
        not_serving: beside.not_serving,
    })
}

/// One batch of `size` encounters of about `per_encounter` bytes each,
/// whose comments make up the size.
fn batch(
    round: u32,
    stream: usize,
    index: u32,
    size: u32,
    per_encounter: usize,
) -> pb::IngestEncountersRequest {
    let comment = "The wait at the desk was long but the nurse explained why. "
        .repeat(per_encounter / 59 + 1)
        .chars()
        .take(per_encounter.saturating_sub(120).clamp(1, 4000))
        .collect::<String>();
    let now = chrono::Utc::now().timestamp() - 3600;
    let encounters = (0..size)
        .map(|n| pb::Encounter {
            touchpoint_code: "reception-desk".into(),
            journey_id: format!("bench-{round}-{stream}-{index}-{}", n / 5),
            occur_time: Some(prost_types::Timestamp {
                seconds: now + i64::from(n % 5) * 60,
                nanos: 0,
            }),
            satisfaction: Some(1 + (n % 5) as i32),
            comment: comment.clone(),
            source: "bench".into(),
            external_id: format!("streams-{round}-{stream}-{index}-{n}"),
            ..Default::default()
        })
        .collect();
    pb::IngestEncountersRequest { encounters }
}

/// What was measured beside the streams.
struct Beside {
    record_latencies: Vec<Duration>,
    record_errors: usize,
    health_checks: usize,
    not_serving: usize,
}

/// RecordEncounter calls and health checks at a steady rate until `done`.
async fn beside_the_load(
    addr: SocketAddr,
    authorization: MetadataValue<Ascii>,
    done: Arc<std::sync::atomic::AtomicBool>,
    round: u32,
) -> Beside {
    let record = async {
        let mut latencies = Vec::new();
        let mut errors = 0;
        let Ok(mut client) = connect(addr).await else {
            return (latencies, 1);
        };
        let mut ticks = tokio::time::interval(Duration::from_millis(1000 / RECORD_RATE));
        let mut n = 0u64;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            ticks.tick().await;
            n += 1;
            let encounter = pb::Encounter {
                touchpoint_code: "reception-desk".into(),
                journey_id: format!("beside-{round}-{n}"),
                occur_time: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() - 60,
                    nanos: 0,
                }),
                source: "bench".into(),
                external_id: format!("beside-{round}-{n}"),
                ..Default::default()
            };
            let mut request = Request::new(pb::RecordEncounterRequest {
                encounter: Some(encounter),
            });
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
            let started = Instant::now();
            match client.record_encounter(request).await {
                Ok(_) => latencies.push(started.elapsed()),
                Err(_) => errors += 1,
            }
        }
        (latencies, errors)
    };
    let health = async {
        let (mut checks, mut not_serving) = (0, 0);
        let Ok(channel) = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map(|e| e.timeout(Duration::from_secs(5)))
        else {
            return (0, 0);
        };
        let Ok(channel) = channel.connect().await else {
            return (0, 0);
        };
        let mut client = HealthClient::new(channel);
        let mut ticks = tokio::time::interval(Duration::from_millis(1000 / HEALTH_RATE));
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            ticks.tick().await;
            checks += 1;
            let serving = client
                .check(HealthCheckRequest::default())
                .await
                .is_ok_and(|r| r.into_inner().status() == ServingStatus::Serving);
            if !serving {
                not_serving += 1;
            }
        }
        (checks, not_serving)
    };
    let ((record_latencies, record_errors), (health_checks, not_serving)) =
        tokio::join!(record, health);
    Beside {
        record_latencies,
        record_errors,
        health_checks,
        not_serving,
    }
}

fn report(runs: &[Run]) {
    let mib = |bytes: u64| format!("{:.1} MiB", bytes as f64 / MIB);
    let percentile = |latencies: &[Duration], p: f64| -> String {
        let mut sorted = latencies.to_vec();
        sorted.sort();
        match sorted.len() {
            0 => "-".to_owned(),
            n => {
                let at = ((n - 1) as f64 * p).round() as usize;
                format!("{:.1} ms", sorted[at].as_secs_f64() * 1000.0)
            }
        }
    };
    for run in runs {
        println!("{}:", run.label);
        println!(
            "  server memory   idle {}, peak {} ({:.1} x idle), {} s after the streams {}",
            mib(run.idle),
            mib(run.peak),
            run.peak as f64 / run.idle.max(1) as f64,
            SETTLE.as_secs(),
            mib(run.after),
        );
        println!(
            "  streamed        {} encounters in {:.1} s ({:.0}/s), {} streams failed",
            run.stored,
            run.elapsed.as_secs_f64(),
            run.stored as f64 / run.elapsed.as_secs_f64().max(1e-9),
            run.failed_streams,
        );
        println!(
            "  RecordEncounter p50 {}, p99 {}, max {}, {} calls, {} errors",
            percentile(&run.record_latencies, 0.5),
            percentile(&run.record_latencies, 0.99),
            percentile(&run.record_latencies, 1.0),
            run.record_latencies.len(),
            run.record_errors,
        );
        println!(
            "  health          {} of {} checks not SERVING",
            run.not_serving, run.health_checks
        );
    }
    if let [unbound, bounded] = runs {
        println!(
            "ratio      peak memory with the budget / without = {:.2}",
            bounded.peak as f64 / unbound.peak.max(1) as f64
        );
    }
}
