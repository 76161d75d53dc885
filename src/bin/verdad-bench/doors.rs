//! `verdad-bench doors`: what the HTTP/JSON door costs against gRPC, on one
//! server in one run. Streamed ingest through each door (encounters/s), and
//! RecordEncounter at a fixed rate through each (answered/s, p50, p99);
//! gRPC is the baseline. The doors take turns, round by round and in
//! alternating order, so that neither always meets the fuller table.
//! Every request is made before its phase's clock starts: the figures are
//! the server's (and the transport's), not the bench's JSON encoder's.

use std::{
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use bytes::Bytes;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tonic::{
    Request,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

use super::{
    in_fresh_database,
    ingest::{connect, today},
    millis, percentile, prepare,
    server::ServerProcess,
};
use crate::config::DoorsBenchArgs;
use verdad::{
    demo::visits::{journey, poisson_schedule},
    domain::role::Role,
    proto::verdad::v1::{self as pb, encounter_service_client::EncounterServiceClient},
};

/// The target: JSON ingest at least this share of gRPC's rate.
const TARGET_RATIO: f64 = 0.7;
/// gRPC channels for the unary calls (HTTP/2 multiplexes each); the HTTP
/// client keeps a pool of HTTP/1.1 connections, one per call in flight.
const UNARY_CONNECTIONS: usize = 4;
/// RecordEncounter at the phase's rate for this long first, untimed.
const WARM_UP: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    Grpc,
    Json,
}

impl Door {
    fn name(self) -> &'static str {
        match self {
            Door::Grpc => "gRPC",
            Door::Json => "JSON",
        }
    }
}

pub(super) async fn run(args: DoorsBenchArgs) -> anyhow::Result<ExitCode> {
    let bench = &args;
    in_fresh_database(&args.database, args.keep, |url| async move {
        bench_in(&url, bench).await
    })
    .await
}

/// One door's streamed ingest, added up over its rounds.
#[derive(Debug, Default)]
struct Ingested {
    accepted: i64,
    rejected: i64,
    elapsed: Duration,
    rounds: Vec<f64>,
}

/// One door's unary phase.
#[derive(Debug, Default)]
struct Unary {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

async fn bench_in(url: &str, args: &DoorsBenchArgs) -> anyhow::Result<ExitCode> {
    let secret = prepare(url, &[Role::Ingest])
        .await?
        .pop()
        .context("no ingest key was made")?;
    let server = ServerProcess::start(url, args.database.db_max_connections).await?;
    let result = measure(url, &server, &secret, args).await;
    server.stop().await?;
    let (ingested, unary) = result?;
    report(args, &ingested, &unary);
    let errors: usize = unary.iter().map(|(_, u)| u.errors).sum();
    let rejected: i64 = ingested.iter().map(|(_, i)| i.rejected).sum();
    Ok(if errors == 0 && rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn measure(
    url: &str,
    server: &ServerProcess,
    secret: &str,
    args: &DoorsBenchArgs,
) -> anyhow::Result<(Vec<(Door, Ingested)>, Vec<(Door, Unary)>)> {
    let pool = verdad::http::descriptors()?;
    let batch_type = pool
        .get_message_by_name("verdad.v1.IngestEncountersRequest")
        .context("no IngestEncountersRequest in the descriptors")?;
    let encounter_type = pool
        .get_message_by_name("verdad.v1.Encounter")
        .context("no Encounter in the descriptors")?;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let key: MetadataValue<Ascii> = format!("Bearer {secret}").parse()?;
    let today = today();
    let mut next_journey = 0u64;

    let mut ingested = vec![
        (Door::Grpc, Ingested::default()),
        (Door::Json, Ingested::default()),
    ];
    for round in 0..args.rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for slot in order {
            let streams = streams_of(
                &mut next_journey,
                args.encounters,
                args.streams,
                args.batch_size as usize,
                today,
            );
            let (door, total) = &mut ingested[slot];
            let (accepted, rejected, elapsed) = match door {
                Door::Grpc => grpc_ingest(server, &key, streams).await?,
                Door::Json => {
                    let bodies = ndjson_bodies(&streams, &batch_type)?;
                    json_ingest(&http, &base, secret, bodies).await?
                }
            };
            println!(
                "ingest     round {} {:<4} {accepted} encounters in {:.2} s",
                round + 1,
                door.name(),
                elapsed.as_secs_f64()
            );
            total.accepted += accepted;
            total.rejected += rejected;
            total.elapsed += elapsed;
            total
                .rounds
                .push(accepted as f64 / elapsed.as_secs_f64().max(1e-9));
        }
    }

    // The unary phases start from a server at rest: the rollups of the
    // ingest folded in and the tables vacuumed, as they would be long before
    // on a running server.
    let caught_up = super::rollups_caught_up(url).await?;
    println!(
        "rollups    folded in {:.1} s after the last ingest",
        caught_up.as_secs_f64()
    );
    super::settle(url).await?;

    let count = (u64::from(args.record_rate) * u64::from(args.seconds)) as usize;
    let warm = (u64::from(args.record_rate) * WARM_UP.as_secs()) as usize;
    let mut channels = Vec::with_capacity(UNARY_CONNECTIONS);
    for _ in 0..UNARY_CONNECTIONS {
        channels.push(connect(server.addr).await?);
    }
    let mut unary = Vec::new();
    for door in [Door::Grpc, Door::Json, Door::Json, Door::Grpc] {
        let warm_up = encounters(&mut next_journey, warm, today);
        let timed = encounters(&mut next_journey, count, today);
        let (warm_up, timed) = match door {
            Door::Grpc => (Calls::Grpc(warm_up), Calls::Grpc(timed)),
            Door::Json => (
                Calls::Json(json_encounters(warm_up, &encounter_type)?),
                Calls::Json(json_encounters(timed, &encounter_type)?),
            ),
        };
        let target = Target {
            channels: &channels,
            key: &key,
            http: &http,
            base: &base,
            secret,
        };
        push(&target, warm_up, u64::from(args.record_rate)).await;
        let phase = push(&target, timed, u64::from(args.record_rate)).await;
        println!(
            "unary      {:<4} p50 {} p99 {} max {} errors {}",
            door.name(),
            millis(percentile(&phase.latencies, 0.5)),
            millis(percentile(&phase.latencies, 0.99)),
            millis(percentile(&phase.latencies, 1.0)),
            phase.errors
        );
        unary.push((door, phase));
    }
    Ok((ingested, merge(unary)))
}

/// The doors' two unary phases each, merged.
fn merge(phases: Vec<(Door, Unary)>) -> Vec<(Door, Unary)> {
    let mut merged: Vec<(Door, Unary)> = Vec::new();
    for (door, phase) in phases {
        match merged.iter_mut().find(|(d, _)| *d == door) {
            Some((_, total)) => {
                total.latencies.extend(phase.latencies);
                total.errors += phase.errors;
                total.elapsed += phase.elapsed;
            }
            None => merged.push((door, phase)),
        }
    }
    merged
}

/// `total` encounters of fresh journeys, in batches of `batch_size`, split
/// into `streams` nearly equal streams.
fn streams_of(
    next_journey: &mut u64,
    total: u64,
    streams: u32,
    batch_size: usize,
    today: i64,
) -> Vec<Vec<pb::IngestEncountersRequest>> {
    let all = encounters(next_journey, total as usize, today);
    let per_stream = all.len().div_ceil(streams.max(1) as usize).max(1);
    all.chunks(per_stream)
        .map(|stream| {
            stream
                .chunks(batch_size.max(1))
                .map(|batch| pb::IngestEncountersRequest {
                    encounters: batch.to_vec(),
                })
                .collect()
        })
        .collect()
}

async fn grpc_ingest(
    server: &ServerProcess,
    key: &MetadataValue<Ascii>,
    batches: Vec<Vec<pb::IngestEncountersRequest>>,
) -> anyhow::Result<(i64, i64, Duration)> {
    let mut streams = Vec::with_capacity(batches.len());
    for requests in batches {
        streams.push((connect(server.addr).await?, requests));
    }
    let started = Instant::now();
    let mut calls = Vec::with_capacity(streams.len());
    for (mut client, requests) in streams {
        let mut request = Request::new(tokio_stream::iter(requests));
        request.metadata_mut().insert("authorization", key.clone());
        calls.push(tokio::spawn(async move {
            client.ingest_encounters(request).await
        }));
    }
    let (mut accepted, mut rejected) = (0, 0);
    for call in calls {
        let summary = call.await??.into_inner();
        accepted += summary.accepted;
        rejected += summary.rejected;
    }
    Ok((accepted, rejected, started.elapsed()))
}

/// Each stream's batches as NDJSON lines, by the proto3 JSON mapping.
fn ndjson_bodies(
    streams: &[Vec<pb::IngestEncountersRequest>],
    batch_type: &MessageDescriptor,
) -> anyhow::Result<Vec<Vec<Bytes>>> {
    streams
        .iter()
        .map(|batches| {
            batches
                .iter()
                .map(|batch| {
                    let mut line = serde_json::to_vec(&as_dynamic(batch, batch_type)?)?;
                    line.push(b'\n');
                    Ok(Bytes::from(line))
                })
                .collect()
        })
        .collect()
}

fn as_dynamic(message: &impl Message, kind: &MessageDescriptor) -> anyhow::Result<DynamicMessage> {
    Ok(DynamicMessage::decode(
        kind.clone(),
        message.encode_to_vec().as_slice(),
    )?)
}

async fn json_ingest(
    http: &reqwest::Client,
    base: &str,
    secret: &str,
    bodies: Vec<Vec<Bytes>>,
) -> anyhow::Result<(i64, i64, Duration)> {
    let started = Instant::now();
    let mut calls = Vec::with_capacity(bodies.len());
    for lines in bodies {
        let body = reqwest::Body::wrap_stream(tokio_stream::iter(
            lines.into_iter().map(Ok::<_, std::io::Error>),
        ));
        let request = http
            .post(format!("{base}/v1/encounters:ingest"))
            .bearer_auth(secret)
            .header("content-type", "application/x-ndjson")
            .body(body);
        calls.push(tokio::spawn(async move {
            let response = request.send().await?;
            let status = response.status();
            let summary: serde_json::Value = response.json().await?;
            anyhow::ensure!(status.is_success(), "JSON ingest failed: {summary}");
            Ok::<_, anyhow::Error>(summary)
        }));
    }
    let (mut accepted, mut rejected) = (0, 0);
    for call in calls {
        let summary = call.await??;
        let count = |name: &str| -> i64 {
            summary[name]
                .as_str()
                .and_then(|text| text.parse().ok())
                .unwrap_or(0)
        };
        accepted += count("accepted");
        rejected += count("rejected");
    }
    Ok((accepted, rejected, started.elapsed()))
}

/// `count` encounters of fresh journeys.
fn encounters(next_journey: &mut u64, count: usize, today: i64) -> Vec<pb::Encounter> {
    let mut taken = Vec::with_capacity(count);
    while taken.len() < count {
        taken.extend(journey(*next_journey, today));
        *next_journey += 1;
    }
    taken.truncate(count);
    taken
}

fn json_encounters(
    encounters: Vec<pb::Encounter>,
    kind: &MessageDescriptor,
) -> anyhow::Result<Vec<Bytes>> {
    encounters
        .iter()
        .map(|encounter| {
            Ok(Bytes::from(serde_json::to_vec(&as_dynamic(
                encounter, kind,
            )?)?))
        })
        .collect()
}

enum Calls {
    Grpc(Vec<pb::Encounter>),
    Json(Vec<Bytes>),
}

struct Target<'a> {
    channels: &'a [EncounterServiceClient<Channel>],
    key: &'a MetadataValue<Ascii>,
    http: &'a reqwest::Client,
    base: &'a str,
    secret: &'a str,
}

/// Sends the calls at `rate` a second (Poisson arrivals from a fixed seed,
/// the same for both doors), each timed from its send to its answer.
async fn push(target: &Target<'_>, calls: Calls, rate: u64) -> Unary {
    let count = match &calls {
        Calls::Grpc(encounters) => encounters.len(),
        Calls::Json(bodies) => bodies.len(),
    };
    let schedule = poisson_schedule(count, rate);
    let record = Arc::new(Mutex::new(Unary::default()));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(count);
    let (mut grpc, json): (Vec<Option<pb::Encounter>>, Vec<Bytes>) = match calls {
        Calls::Grpc(encounters) => (encounters.into_iter().map(Some).collect(), Vec::new()),
        Calls::Json(bodies) => (Vec::new(), bodies),
    };
    for (index, due) in schedule.into_iter().enumerate() {
        tokio::time::sleep_until(start + due).await;
        let record = record.clone();
        if let Some(encounter) = grpc.get_mut(index).and_then(Option::take) {
            let mut client = target.channels[index % target.channels.len()].clone();
            let mut request = Request::new(pb::RecordEncounterRequest {
                encounter: Some(encounter),
            });
            request
                .metadata_mut()
                .insert("authorization", target.key.clone());
            tasks.push(tokio::spawn(async move {
                let started = Instant::now();
                let ok = client.record_encounter(request).await.is_ok();
                note(&record, started.elapsed(), ok);
            }));
        } else if let Some(body) = json.get(index).cloned() {
            let request = target
                .http
                .post(format!("{}/v1/encounters", target.base))
                .bearer_auth(target.secret)
                .header("content-type", "application/json")
                .body(body);
            tasks.push(tokio::spawn(async move {
                let started = Instant::now();
                let ok = match request.send().await {
                    Ok(response) => {
                        let ok = response.status().is_success();
                        ok && response.bytes().await.is_ok()
                    }
                    Err(_) => false,
                };
                note(&record, started.elapsed(), ok);
            }));
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = start.elapsed();
    let mut phase = std::mem::take(&mut *record.lock().unwrap_or_else(|e| e.into_inner()));
    phase.elapsed = elapsed;
    phase
}

fn note(record: &Mutex<Unary>, latency: Duration, ok: bool) {
    let mut record = record.lock().unwrap_or_else(|e| e.into_inner());
    if ok {
        record.latencies.push(latency);
    } else {
        record.errors += 1;
    }
}

fn report(args: &DoorsBenchArgs, ingested: &[(Door, Ingested)], unary: &[(Door, Unary)]) {
    println!();
    println!(
        "streamed ingest: {} streams of {}-encounter batches, {} encounters per door a round, {} rounds",
        args.streams, args.batch_size, args.encounters, args.rounds
    );
    println!("door   encounters/s   per round");
    let rate = |i: &Ingested| i.accepted as f64 / i.elapsed.as_secs_f64().max(1e-9);
    for (door, i) in ingested {
        let rounds: Vec<String> = i.rounds.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "{:<6} {:>12.0}   {}",
            door.name(),
            rate(i),
            rounds.join(", ")
        );
    }
    if let [(_, grpc), (_, json)] = ingested {
        let ratio = rate(json) / rate(grpc).max(1e-9);
        println!(
            "JSON / gRPC ingest rate: {ratio:.2} (target: at least {TARGET_RATIO:.2}) {}",
            if ratio >= TARGET_RATIO {
                "met"
            } else {
                "NOT met"
            }
        );
    }
    println!();
    println!(
        "RecordEncounter at {} calls/s (Poisson arrivals), {} s per phase, two phases per door",
        args.record_rate, args.seconds
    );
    println!("door   answered/s   p50       p99       max       errors");
    let mut p = Vec::new();
    for (door, u) in unary {
        let answered = u.latencies.len() as f64 / u.elapsed.as_secs_f64().max(1e-9);
        let (p50, p99, max) = (
            percentile(&u.latencies, 0.5),
            percentile(&u.latencies, 0.99),
            percentile(&u.latencies, 1.0),
        );
        println!(
            "{:<6} {answered:>10.0}   {:<9} {:<9} {:<9} {}",
            door.name(),
            millis(p50),
            millis(p99),
            millis(max),
            u.errors
        );
        p.push((p50, p99));
    }
    if let [(g50, g99), (j50, j99)] = p.as_slice() {
        println!(
            "JSON / gRPC latency: p50 {:.2}x, p99 {:.2}x",
            super::ratio(*j50, *g50),
            super::ratio(*j99, *g99)
        );
    }
}
