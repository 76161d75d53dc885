//! `verdad-bench cycle`: GetMotCycle against pm4py, the tool a quality
//! team would export to instead, on three logs: the Sepsis log replicated
//! to about a million events, generated long inpatient stays, and the
//! bench hospital's default 30 days of a million-encounter year.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use tokio::io::AsyncWriteExt;
use tonic::{
    metadata::{Ascii, MetadataValue},
    transport::{Channel, Endpoint},
};

use super::{
    analyses::authed,
    in_fresh_database,
    ingest::{Streamed, stream_all},
    long_stays, prepare,
    server::ServerProcess,
};
use crate::config::CycleBenchArgs;
use verdad::{
    app::{api_keys::create_key, operator::create_organisation},
    demo::visits::plan,
    domain::{
        api_key::NewApiKey,
        organisation::{NewOrganisation, OrganisationKind},
        role::Role,
    },
    proto::verdad::v1::{
        self as pb, analysis_service_client::AnalysisServiceClient,
        encounter_service_client::EncounterServiceClient,
        touchpoint_service_client::TouchpointServiceClient,
    },
    store::{self, PoolOptions},
};

/// The target: GetMotCycle at least this many times faster.
const TARGET_RATIO: f64 = 2.0;
const BATCH: usize = 1000;

/// An organisation of the bench and its keys.
#[derive(Clone)]
struct Keys {
    admin: Option<String>,
    ingest: String,
    analyst: String,
}

/// One log: its organisation, the scope asked for and what was measured.
struct Log {
    name: &'static str,
    keys: Keys,
    scope: Option<pb::AnalysisScope>,
    loaded: i64,
    /// The first call right after the load; `None` for a second scope of
    /// the same load.
    cold: Option<Duration>,
}

pub(super) async fn run(args: CycleBenchArgs) -> anyhow::Result<ExitCode> {
    let bench = &args;
    in_fresh_database(&args.database, args.keep, |url| async move {
        bench_in(&url, bench).await
    })
    .await
}

async fn bench_in(url: &str, args: &CycleBenchArgs) -> anyhow::Result<ExitCode> {
    let csv = std::fs::read_to_string(&args.sepsis).with_context(|| {
        format!(
            "cannot read the Sepsis log {} (run from the repository, or pass --sepsis)",
            args.sepsis.display()
        )
    })?;
    let mut secrets = prepare(url, &[Role::Ingest, Role::Analyst])
        .await?
        .into_iter();
    let (Some(ingest), Some(analyst)) = (secrets.next(), secrets.next()) else {
        bail!("the bench's keys were not made");
    };
    let bench_org = Keys {
        admin: None,
        ingest,
        analyst,
    };
    let sepsis_org = organisation(url, "Sepsis, replicated", "Europe/Amsterdam").await?;
    let long_org = organisation(url, "Long stays", "UTC").await?;
    let server = ServerProcess::start(url, args.database.db_max_connections).await?;
    let result = load_and_time(url, &server, args, &csv, [sepsis_org, long_org, bench_org]).await;
    server.stop().await?;
    result?;
    Ok(ExitCode::SUCCESS)
}

/// A new organisation with an admin, an ingest and an analyst key.
async fn organisation(url: &str, name: &str, time_zone: &str) -> anyhow::Result<Keys> {
    let options = PoolOptions {
        max_connections: 2,
        ..PoolOptions::default()
    };
    let pool = store::connect(url, &options).await?;
    let created = create_organisation(
        &pool,
        NewOrganisation {
            display_name: name.to_owned(),
            kind: OrganisationKind::Hospital,
            time_zone: time_zone.to_owned(),
        },
    )
    .await?;
    let id = created.organisation.id;
    let key = async |role: Role| {
        let new = NewApiKey {
            display_name: format!("bench {role} key"),
            role,
        };
        create_key(&pool, id, &new).await.map(|k| k.secret)
    };
    let keys = Keys {
        admin: Some(created.admin_key.secret),
        ingest: key(Role::Ingest).await?,
        analyst: key(Role::Analyst).await?,
    };
    pool.close().await;
    Ok(keys)
}

fn utc(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

async fn load_and_time(
    url: &str,
    server: &ServerProcess,
    args: &CycleBenchArgs,
    sepsis_csv: &str,
    [sepsis_org, long_org, bench_org]: [Keys; 3],
) -> anyhow::Result<()> {
    let addr = server.addr;
    let mut logs = Vec::new();

    let loaded = load_sepsis(addr, &sepsis_org, sepsis_csv, args.sepsis_copies).await?;
    let scope = Some(pb::AnalysisScope {
        start_time: utc(1_356_998_400), // 2013-01-01
        end_time: utc(1_451_606_400),   // 2016-01-01
        ..Default::default()
    });
    let cold = first_call(addr, &sepsis_org, &scope).await?;
    logs.push(Log {
        name: "Sepsis x copies",
        keys: sepsis_org,
        scope,
        loaded,
        cold: Some(cold),
    });

    let loaded = load_long_stays(addr, &long_org, args.long_stays).await?;
    let scope = Some(pb::AnalysisScope {
        start_time: utc(1_733_011_200), // 2024-12-01
        end_time: utc(1_772_323_200),   // 2026-03-01
        ..Default::default()
    });
    let cold = first_call(addr, &long_org, &scope).await?;
    logs.push(Log {
        name: "long stays",
        keys: long_org,
        scope,
        loaded,
        cold: Some(cold),
    });

    let streamed = stream_all(addr, &bench_org.ingest, &plan(args.encounters, 2), BATCH).await?;
    report_load("bench hospital", &streamed);
    let cold = first_call(addr, &bench_org, &None).await?;
    logs.push(Log {
        name: "bench 30 days",
        keys: bench_org.clone(),
        scope: None,
        loaded: streamed.accepted,
        cold: Some(cold),
    });
    // The same 30 days filtered to one stage: the steps at its touchpoints.
    logs.push(Log {
        name: "bench, 1 stage",
        keys: bench_org,
        scope: Some(pb::AnalysisScope {
            stage: pb::Stage::Service.into(),
            ..Default::default()
        }),
        loaded: streamed.accepted,
        cold: None,
    });

    let caught_up = super::rollups_caught_up(url).await?;
    println!(
        "rollups of the loads folded in {:.1} s after the last; then vacuumed and analysed",
        caught_up.as_secs_f64()
    );
    super::settle(url).await?;

    println!(
        "\n{:<16} {:>9} {:>8} {:>10} {:>10} {:>10} {:>7} {:>9} {:>10}  figures",
        "log", "events", "journeys", "cold", "median", "pm4py", "x", "target", "peak mem"
    );
    let mut all_met = true;
    for log in &logs {
        let measured = measure(server, log, args).await?;
        all_met &= measured.met.unwrap_or(true);
        println!("{}", measured.line);
    }
    println!(
        "\ncold: the first GetMotCycle right after the log's load, before the rollups caught up or anything was vacuumed. median: of {} calls. pm4py: the median of {} runs of discover_dfg + get_variants + discover_performance_dfg on the same scope's CSV export, already loaded into a DataFrame. x: pm4py's time over Verdad's median (target: at least {TARGET_RATIO}). peak mem: the server's peak resident memory while the log's calls ran, and its resident memory before them.",
        args.repeats, args.repeats
    );
    if !all_met {
        println!("the target was NOT met on every log");
    }
    Ok(())
}

fn report_load(name: &str, streamed: &Streamed) {
    println!(
        "loaded {name}: {} encounters in {:.1} s ({} rejected)",
        streamed.accepted,
        streamed.elapsed.as_secs_f64(),
        streamed.rejected
    );
}

/// Creates `codes` (with their places in the designed cycle) as
/// touchpoints of `keys`' organisation.
async fn create_touchpoints(
    addr: SocketAddr,
    keys: &Keys,
    codes: &[(String, i32)],
) -> anyhow::Result<()> {
    let mut client = TouchpointServiceClient::new(channel(addr).await?);
    let admin = keys.admin.as_deref().context("no admin key")?;
    for (code, place) in codes {
        let touchpoint = pb::Touchpoint {
            code: code.clone(),
            display_name: code.clone(),
            stage: pb::Stage::Service.into(),
            channel: pb::Channel::InPerson.into(),
            occurrence: pb::Occurrence::Routine.into(),
            cycle_position: *place,
            ..Default::default()
        };
        let request = pb::CreateTouchpointRequest {
            touchpoint: Some(touchpoint),
        };
        client
            .create_touchpoint(authed(&bearer(admin)?, request))
            .await
            .with_context(|| format!("cannot create touchpoint {code}"))?;
    }
    Ok(())
}

/// The code a Sepsis activity gets as a touchpoint.
fn activity_code(activity: &str) -> String {
    activity.to_ascii_lowercase().replace(' ', "-")
}

/// Loads `copies` copies of the Sepsis log, each with its own case ids,
/// through two ingest streams (each copy whole in one, in file order, so
/// that events sharing a time keep the log's order).
async fn load_sepsis(addr: SocketAddr, keys: &Keys, csv: &str, copies: u32) -> anyhow::Result<i64> {
    // Columns: event_seq, case_id, activity, timestamp, timestamp_utc, ...
    let mut rows = Vec::new();
    for line in csv.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let [seq, case, activity, _, utc, ..] = fields[..] else {
            bail!("a Sepsis line without its five first columns");
        };
        let time = chrono::DateTime::parse_from_rfc3339(utc)
            .with_context(|| format!("a Sepsis time that does not parse: {utc}"))?;
        rows.push((
            seq.to_owned(),
            case.to_owned(),
            activity_code(activity),
            time.timestamp(),
        ));
    }
    let mut codes: Vec<(String, i32)> = rows.iter().map(|r| (r.2.clone(), 0)).collect();
    codes.sort();
    codes.dedup();
    create_touchpoints(addr, keys, &codes).await?;
    let started = Instant::now();
    let encounters = move |copy: u32| {
        let rows = rows.clone();
        rows.into_iter()
            .map(move |(seq, case, code, time)| pb::Encounter {
                touchpoint_code: code,
                journey_id: format!("{case}-{copy}"),
                occur_time: utc(time),
                source: "sepsis".into(),
                external_id: format!("{seq}-{copy}"),
                ..Default::default()
            })
    };
    let streams = [0u32, 1].map(|parity| {
        let copies = (0..copies).filter(move |c| c % 2 == parity);
        let encounters = encounters.clone();
        copies.flat_map(encounters).collect::<Vec<_>>()
    });
    let accepted = ingest(addr, keys, streams).await?;
    println!(
        "loaded Sepsis x {copies}: {accepted} encounters in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(accepted)
}

/// Loads the generated long stays through two ingest streams, each stay
/// whole in one.
async fn load_long_stays(addr: SocketAddr, keys: &Keys, stays: u32) -> anyhow::Result<i64> {
    let names = long_stays::activities();
    create_touchpoints(addr, keys, &names).await?;
    let started = Instant::now();
    let streams = [0u32, 1].map(|parity| {
        long_stays::stays(stays)
            .filter(|e| e.stay % 2 == parity)
            .enumerate()
            .map(|(n, e)| pb::Encounter {
                touchpoint_code: names[usize::from(e.activity)].0.clone(),
                journey_id: long_stays::journey_id(e.stay),
                occur_time: utc(e.time),
                source: "long-stay".into(),
                external_id: format!("{parity}-{n}"),
                ..Default::default()
            })
            .collect::<Vec<_>>()
    });
    let accepted = ingest(addr, keys, streams).await?;
    println!(
        "loaded {stays} long stays: {accepted} encounters in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(accepted)
}

/// Streams each list of encounters on a connection of its own, in batches.
async fn ingest(
    addr: SocketAddr,
    keys: &Keys,
    streams: [Vec<pb::Encounter>; 2],
) -> anyhow::Result<i64> {
    let authorization = bearer(&keys.ingest)?;
    let mut calls = Vec::new();
    for encounters in streams {
        let mut client = EncounterServiceClient::new(channel(addr).await?);
        let batches: Vec<pb::IngestEncountersRequest> = encounters
            .chunks(BATCH)
            .map(|chunk| pb::IngestEncountersRequest {
                encounters: chunk.to_vec(),
            })
            .collect();
        let request = authed(&authorization, tokio_stream::iter(batches));
        calls.push(tokio::spawn(async move {
            client.ingest_encounters(request).await
        }));
    }
    let mut accepted = 0;
    for call in calls {
        let answer = call.await??.into_inner();
        if answer.rejected > 0 {
            bail!("{} encounters were rejected", answer.rejected);
        }
        accepted += answer.accepted;
    }
    Ok(accepted)
}

async fn channel(addr: SocketAddr) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?)
}

fn bearer(secret: &str) -> anyhow::Result<MetadataValue<Ascii>> {
    format!("Bearer {secret}")
        .parse()
        .context("a key that is not valid metadata")
}

async fn cycle(
    client: &mut AnalysisServiceClient<Channel>,
    keys: &Keys,
    scope: &Option<pb::AnalysisScope>,
) -> anyhow::Result<pb::GetMotCycleResponse> {
    let request = pb::GetMotCycleRequest {
        scope: scope.clone(),
        max_variants: 10,
        ..Default::default()
    };
    Ok(client
        .get_mot_cycle(authed(&bearer(&keys.analyst)?, request))
        .await?
        .into_inner())
}

async fn analyses(addr: SocketAddr) -> anyhow::Result<AnalysisServiceClient<Channel>> {
    Ok(
        AnalysisServiceClient::new(channel(addr).await?)
            .max_decoding_message_size(64 * 1024 * 1024),
    )
}

/// The first GetMotCycle of a log, right after its load.
async fn first_call(
    addr: SocketAddr,
    keys: &Keys,
    scope: &Option<pb::AnalysisScope>,
) -> anyhow::Result<Duration> {
    let mut client = analyses(addr).await?;
    let started = Instant::now();
    cycle(&mut client, keys, scope)
        .await
        .context("the first GetMotCycle failed")?;
    Ok(started.elapsed())
}

struct Measured {
    line: String,
    /// Whether the target was met; `None` without the baseline.
    met: Option<bool>,
}

async fn measure(
    server: &ServerProcess,
    log: &Log,
    args: &CycleBenchArgs,
) -> anyhow::Result<Measured> {
    let mut client = analyses(server.addr).await?;
    let before = server.memory_bytes();
    server.reset_peak_memory();
    let mut times = Vec::new();
    let mut answer = None;
    for _ in 0..args.repeats {
        let started = Instant::now();
        answer = Some(cycle(&mut client, &log.keys, &log.scope).await?);
        times.push(started.elapsed());
    }
    let peak = server.peak_memory_bytes();
    let answer = answer.context("no call was made")?;
    let median = super::percentile(&times, 0.5);

    let csv = export(&mut client, log).await?;
    let baseline = pm4py(&args.pm4py, &csv, args.repeats).await;
    let _ = std::fs::remove_file(&csv);
    let edges = answer.pairs.len() as i64 + answer.pairs_omitted;
    let (pm4py_column, ratio_column, target_column, figures, met) = match baseline {
        Ok(figures) => {
            let ratio = figures.seconds / median.as_secs_f64().max(1e-9);
            let ours = (
                answer.encounters,
                answer.journeys,
                edges,
                answer.transitions,
                answer.variant_count,
            );
            let theirs = (
                figures.events,
                figures.cases,
                figures.edges,
                figures.transitions,
                figures.variants,
            );
            let agree = if ours == theirs {
                "the same".to_owned()
            } else {
                format!(
                    "DIFFER: events, cases, pairs, transitions, variants {ours:?} against pm4py's {theirs:?}"
                )
            };
            (
                format!("{:.1}ms", figures.seconds * 1000.0),
                format!("{ratio:.1}"),
                if ratio >= TARGET_RATIO {
                    "met"
                } else {
                    "NOT met"
                }
                .to_owned(),
                agree,
                Some(ratio >= TARGET_RATIO && ours == theirs),
            )
        }
        Err(error) => (
            "-".into(),
            "-".into(),
            "-".into(),
            format!("no pm4py baseline: {error:#}"),
            None,
        ),
    };
    let mib = |bytes: Option<u64>| {
        bytes.map_or("-".to_owned(), |b| format!("{:.0}", b as f64 / 1048576.0))
    };
    let cold = log.cold.map_or("-".to_owned(), |cold| {
        format!("{:.1}ms", cold.as_secs_f64() * 1000.0)
    });
    let line = format!(
        "{:<16} {:>9} {:>8} {:>10} {:>8.1}ms {:>10} {:>7} {:>9} {:>4}/{:<4}MiB  {figures} ({edges} pairs, {} transitions, {} variants)",
        log.name,
        answer.encounters,
        answer.journeys,
        cold,
        median.as_secs_f64() * 1000.0,
        pm4py_column,
        ratio_column,
        target_column,
        mib(peak),
        mib(before),
        answer.transitions,
        answer.variant_count,
    );
    if answer.encounters != log.loaded && log.cold.is_some() && log.scope.is_some() {
        bail!(
            "{}: {} encounters in scope of {} loaded",
            log.name,
            answer.encounters,
            log.loaded
        );
    }
    Ok(Measured { line, met })
}

/// Writes the log's scope as Verdad's CSV event log to a file.
async fn export(client: &mut AnalysisServiceClient<Channel>, log: &Log) -> anyhow::Result<PathBuf> {
    let path =
        std::env::temp_dir().join(format!("verdad-bench-cycle-{}.csv", uuid::Uuid::now_v7()));
    let request = pb::ExportEventLogRequest {
        scope: log.scope.clone(),
        format: pb::EventLogFormat::Csv.into(),
    };
    let mut stream = client
        .export_event_log(authed(&bearer(&log.keys.analyst)?, request))
        .await?
        .into_inner();
    let mut file = tokio::io::BufWriter::new(tokio::fs::File::create(&path).await?);
    while let Some(piece) = stream.message().await? {
        file.write_all(&piece.chunk).await?;
    }
    file.flush().await?;
    Ok(path)
}

/// What scripts/pm4py-baseline printed.
#[derive(serde::Deserialize)]
struct Pm4pyFigures {
    events: i64,
    cases: i64,
    edges: i64,
    transitions: i64,
    variants: i64,
    #[serde(rename = "with_performance_seconds")]
    seconds: f64,
}

async fn pm4py(script: &Path, csv: &Path, runs: u32) -> anyhow::Result<Pm4pyFigures> {
    let output = tokio::process::Command::new(script)
        .arg(csv)
        .arg(runs.to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        let tail: String = said.lines().rev().take(3).collect::<Vec<_>>().join(" / ");
        bail!("{} failed ({}): {tail}", script.display(), output.status);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("pm4py's figures do not parse: {last}"))
}
