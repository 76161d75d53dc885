//! `verdad-bench analyses`: every analysis timed over a million encounters,
//! beside a plain count of the same encounters as the baseline.

use std::{
    net::SocketAddr,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Context;
use sqlx::{Connection, Executor, PgConnection};
use tonic::{
    Request,
    metadata::{Ascii, MetadataValue},
    transport::{Channel, Endpoint},
};

use super::{in_fresh_database, ingest::stream_all, prepare, ratio, server::ServerProcess};
use crate::config::AnalysesBenchArgs;
use verdad::{
    demo::{self, visits::plan},
    domain::role::Role,
    proto::verdad::v1::{self as pb, analysis_service_client::AnalysisServiceClient},
};

/// Streams that load the data.
const LOAD_STREAMS: u32 = 2;
const LOAD_BATCH: usize = 1000;
/// The targets.
const TARGET: Duration = Duration::from_millis(1000);
const FAST_TARGET: Duration = Duration::from_millis(250);

pub(super) async fn run(args: AnalysesBenchArgs) -> anyhow::Result<ExitCode> {
    let bench = &args;
    in_fresh_database(&args.database, args.keep, |url| async move {
        bench_in(&url, bench).await
    })
    .await
}

struct Keys {
    ingest: String,
    analyst: String,
}

async fn bench_in(url: &str, args: &AnalysesBenchArgs) -> anyhow::Result<ExitCode> {
    let mut secrets = prepare(url, &[Role::Ingest, Role::Analyst])
        .await?
        .into_iter();
    let (Some(ingest), Some(analyst)) = (secrets.next(), secrets.next()) else {
        anyhow::bail!("the bench's keys were not made");
    };
    let keys = Keys { ingest, analyst };
    let server = ServerProcess::start(url, args.database.db_max_connections).await?;
    let result = load_and_time(url, server.addr, &keys, args).await;
    let peak = server.peak_memory_bytes();
    server.stop().await?;
    result?;
    if let Some(bytes) = peak {
        println!(
            "server peak memory (VmHWM): {:.1} MiB",
            bytes as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn load_and_time(
    url: &str,
    addr: SocketAddr,
    keys: &Keys,
    args: &AnalysesBenchArgs,
) -> anyhow::Result<()> {
    let shares = plan(args.encounters, LOAD_STREAMS);
    let journeys: u64 = shares.iter().map(|s| s.journeys).sum();
    let streamed = stream_all(addr, &keys.ingest, &shares, LOAD_BATCH).await?;
    println!(
        "verdad-bench analyses: loaded {} encounters in {journeys} journeys in {:.1} s ({} rejected)",
        streamed.accepted,
        streamed.elapsed.as_secs_f64(),
        streamed.rejected
    );
    let channel = Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client =
        AnalysisServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024);
    let authorization: MetadataValue<Ascii> = format!("Bearer {}", keys.analyst).parse()?;
    let now = chrono::Utc::now().timestamp();
    let whole_year = pb::AnalysisScope {
        start_time: Some(prost_types::Timestamp {
            seconds: now - 366 * 86_400,
            nanos: 0,
        }),
        end_time: Some(prost_types::Timestamp {
            seconds: now + 86_400,
            nanos: 0,
        }),
        ..Default::default()
    };

    // The first calls right after the load, cold: the server's folds of
    // it still under way and the tables' statistics as the server (and
    // autovacuum, if it came) left them.
    for (analysis, scope_name, scope) in [
        (Analysis::MotCycle, "whole year", Some(whole_year.clone())),
        (Analysis::MotCycle, "last 30 days", None),
        (Analysis::Scorecard, "whole year", Some(whole_year.clone())),
    ] {
        let started = Instant::now();
        call(&mut client, &authorization, analysis, scope)
            .await
            .with_context(|| format!("the first {} failed", analysis.name()))?;
        println!(
            "first call {:<24} {:<13} {:>7.1}ms  (right after the load, before anything is vacuumed)",
            analysis.name(),
            scope_name,
            ms(started.elapsed())
        );
    }

    let caught_up = super::rollups_caught_up(url).await?;
    println!(
        "rollups of the load folded in {:.1} s after its last batch",
        caught_up.as_secs_f64()
    );
    let mut owner = PgConnection::connect(url).await?;
    let feedback = add_feedback(&mut owner).await?;
    println!("journey feedback for {feedback} journeys; tables vacuumed and analysed");

    let scopes = [("last 30 days", None), ("whole year", Some(whole_year))];
    println!(
        "{:<24} {:<13} {:>9} {:>9} {:>9} {:>8}  target",
        "analysis", "scope", "median", "min", "max", "x count"
    );
    for (scope_name, scope) in scopes {
        let baseline = time_count(&mut owner, scope.as_ref(), args.repeats).await?;
        println!(
            "{:<24} {:<13} {:>7.1}ms {:>7.1}ms {:>7.1}ms {:>8}  (baseline: plain count of the scope's encounters)",
            "count(*)",
            scope_name,
            ms(baseline.median),
            ms(baseline.min),
            ms(baseline.max),
            "1.0"
        );
        for analysis in ANALYSES {
            let timing = time_analysis(
                &mut client,
                &authorization,
                *analysis,
                scope.clone(),
                args.repeats,
            )
            .await?;
            let target = if matches!(analysis, Analysis::Scorecard | Analysis::Trend) {
                FAST_TARGET
            } else {
                TARGET
            };
            println!(
                "{:<24} {:<13} {:>7.1}ms {:>7.1}ms {:>7.1}ms {:>8.1}  < {} ms: {}",
                analysis.name(),
                scope_name,
                ms(timing.median),
                ms(timing.min),
                ms(timing.max),
                ratio(timing.median, baseline.median),
                target.as_millis(),
                if timing.median < target {
                    "met"
                } else {
                    "NOT met"
                }
            );
        }
    }
    owner.close().await?;
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Gives 40% of journeys feedback whose overall satisfaction follows the
/// journey's own (deterministically), as the demo's history does, then
/// vacuums and analyses the tables as autovacuum would after a load, and
/// checkpoints.
async fn add_feedback(owner: &mut PgConnection) -> anyhow::Result<u64> {
    let inserted = verdad::store::demo::add_feedback(owner, demo::DEMO_ORGANISATION_ID).await?;
    owner.execute("vacuum analyze").await?;
    // A checkpoint now rather than one writing the load out while the
    // analyses are timed (it needs superuser or pg_checkpoint; without it
    // the figures may carry that noise).
    if let Err(error) = owner.execute("checkpoint").await {
        tracing::warn!(%error, "no checkpoint before timing");
    }
    Ok(inserted)
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Analysis {
    Scorecard,
    MotCycle,
    JourneyOutcomes,
    FirstImpressions,
    PriorityMatrix,
    Guidelines,
    Trend,
    Compliance,
    Recovery,
    ExportCsv,
    ExportXes,
}

const ANALYSES: &[Analysis] = &[
    Analysis::Scorecard,
    Analysis::MotCycle,
    Analysis::JourneyOutcomes,
    Analysis::FirstImpressions,
    Analysis::PriorityMatrix,
    Analysis::Guidelines,
    Analysis::Trend,
    Analysis::Compliance,
    Analysis::Recovery,
    Analysis::ExportCsv,
    Analysis::ExportXes,
];

impl Analysis {
    pub(super) fn name(self) -> &'static str {
        match self {
            Analysis::Scorecard => "GetScorecard",
            Analysis::MotCycle => "GetMotCycle",
            Analysis::JourneyOutcomes => "GetJourneyOutcomes",
            Analysis::FirstImpressions => "GetFirstImpressions",
            Analysis::PriorityMatrix => "GetPriorityMatrix",
            Analysis::Guidelines => "GetGuidelineBreakdown",
            Analysis::Trend => "GetTrend (day)",
            Analysis::Compliance => "GetComplianceReport",
            Analysis::Recovery => "GetRecoveryPerformance",
            Analysis::ExportCsv => "ExportEventLog (CSV)",
            Analysis::ExportXes => "ExportEventLog (XES)",
        }
    }
}

struct Timing {
    median: Duration,
    min: Duration,
    max: Duration,
}

fn timing(mut samples: Vec<Duration>) -> Timing {
    samples.sort();
    Timing {
        median: samples[samples.len() / 2],
        min: samples[0],
        max: samples[samples.len() - 1],
    }
}

async fn time_analysis(
    client: &mut AnalysisServiceClient<Channel>,
    authorization: &MetadataValue<Ascii>,
    analysis: Analysis,
    scope: Option<pb::AnalysisScope>,
    repeats: u32,
) -> anyhow::Result<Timing> {
    let mut samples = Vec::with_capacity(repeats as usize);
    for _ in 0..repeats {
        let started = Instant::now();
        call(client, authorization, analysis, scope.clone())
            .await
            .with_context(|| format!("{} failed", analysis.name()))?;
        samples.push(started.elapsed());
    }
    Ok(timing(samples))
}

pub(super) fn authed<T>(authorization: &MetadataValue<Ascii>, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", authorization.clone());
    request
}

pub(super) async fn call(
    client: &mut AnalysisServiceClient<Channel>,
    authorization: &MetadataValue<Ascii>,
    analysis: Analysis,
    scope: Option<pb::AnalysisScope>,
) -> Result<(), tonic::Status> {
    let a = authorization;
    match analysis {
        Analysis::Scorecard => {
            client
                .get_scorecard(authed(a, pb::GetScorecardRequest { scope }))
                .await?;
        }
        Analysis::MotCycle => {
            client
                .get_mot_cycle(authed(
                    a,
                    pb::GetMotCycleRequest {
                        scope,
                        max_variants: 10,
                        ..Default::default()
                    },
                ))
                .await?;
        }
        Analysis::JourneyOutcomes => {
            client
                .get_journey_outcomes(authed(a, pb::GetJourneyOutcomesRequest { scope }))
                .await?;
        }
        Analysis::FirstImpressions => {
            client
                .get_first_impressions(authed(a, pb::GetFirstImpressionsRequest { scope }))
                .await?;
        }
        Analysis::PriorityMatrix => {
            client
                .get_priority_matrix(authed(a, pb::GetPriorityMatrixRequest { scope }))
                .await?;
        }
        Analysis::Guidelines => {
            client
                .get_guideline_breakdown(authed(a, pb::GetGuidelineBreakdownRequest { scope }))
                .await?;
        }
        Analysis::Trend => {
            client
                .get_trend(authed(
                    a,
                    pb::GetTrendRequest {
                        scope,
                        figure: pb::TrendFigure::MeanSatisfaction.into(),
                        granularity: pb::Granularity::Day.into(),
                        per_touchpoint: true,
                    },
                ))
                .await?;
        }
        Analysis::Compliance => {
            client
                .get_compliance_report(authed(a, pb::GetComplianceReportRequest { scope }))
                .await?;
        }
        Analysis::Recovery => {
            client
                .get_recovery_performance(authed(
                    a,
                    pb::GetRecoveryPerformanceRequest {
                        scope,
                        acknowledge_within: None,
                    },
                ))
                .await?;
        }
        Analysis::ExportCsv | Analysis::ExportXes => {
            let format = match analysis {
                Analysis::ExportXes => pb::EventLogFormat::Xes,
                _ => pb::EventLogFormat::Csv,
            };
            let mut stream = client
                .export_event_log(authed(
                    a,
                    pb::ExportEventLogRequest {
                        scope,
                        format: format.into(),
                    },
                ))
                .await?
                .into_inner();
            while stream.message().await?.is_some() {}
        }
    }
    Ok(())
}

/// Times a plain count of the scope's encounters, straight from the
/// database: the least any analysis of the scope must do.
async fn time_count(
    owner: &mut PgConnection,
    scope: Option<&pb::AnalysisScope>,
    repeats: u32,
) -> anyhow::Result<Timing> {
    let now = chrono::Utc::now().timestamp();
    let start = scope
        .and_then(|s| s.start_time.as_ref())
        .map_or(now - 30 * 86_400, |t| t.seconds);
    let end = scope
        .and_then(|s| s.end_time.as_ref())
        .map_or(now, |t| t.seconds);
    let mut samples = Vec::with_capacity(repeats as usize);
    for _ in 0..repeats {
        let started = Instant::now();
        let _: i64 = sqlx::query_scalar(
            "select count(*) from encounter
             where organisation_id = $1 and occur_time >= to_timestamp($2)
               and occur_time < to_timestamp($3)",
        )
        .bind(demo::DEMO_ORGANISATION_ID)
        .bind(start as f64)
        .bind(end as f64)
        .fetch_one(&mut *owner)
        .await?;
        samples.push(started.elapsed());
    }
    Ok(timing(samples))
}
