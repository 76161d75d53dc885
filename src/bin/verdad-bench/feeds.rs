//! `verdad-bench feeds`: HL7 v2 over MLLP against RecordEncounter, on one
//! server in one run. Each phase sends the same kind of moment (a
//! registration at the reception desk, with a patient identifier) either
//! as an ADT^A04 message over MLLP or as a RecordEncounter call:
//!
//! - RecordEncounter, each call after the previous answer (the baseline);
//! - MLLP over one connection, each message after the previous ACK, as
//!   integration engines send;
//! - MLLP over four connections at once, each in the same way;
//! - RecordEncounter from four callers at once, for the four connections.
//!
//! The phases take turns round by round, in alternating order, so that
//! none always meets the fuller table.

use std::{
    net::SocketAddr,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tonic::{
    Request,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

use super::{
    in_fresh_database, ingest::connect, millis, percentile, prepare, server::ServerProcess,
};
use crate::config::FeedsBenchArgs;
use verdad::{
    domain::role::Role,
    proto::verdad::v1::{
        self as pb, encounter_service_client::EncounterServiceClient,
        feed_service_client::FeedServiceClient,
    },
};

/// The target: one MLLP connection at least this share of sequential
/// RecordEncounter calls.
const TARGET_RATIO: f64 = 0.8;
/// Connections (and callers) of the parallel phases.
const PARALLEL: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Record,
    Mllp,
    MllpParallel,
    RecordParallel,
}

impl Phase {
    const ALL: [Phase; 4] = [
        Phase::Record,
        Phase::Mllp,
        Phase::MllpParallel,
        Phase::RecordParallel,
    ];

    fn name(self) -> &'static str {
        match self {
            Phase::Record => "RecordEncounter, 1 caller",
            Phase::Mllp => "MLLP, 1 connection",
            Phase::MllpParallel => "MLLP, 4 connections",
            Phase::RecordParallel => "RecordEncounter, 4 callers",
        }
    }
}

/// One phase's figures, added up over its rounds.
#[derive(Debug, Default)]
struct Measured {
    latencies: Vec<Duration>,
    elapsed: Duration,
    refused: usize,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

pub(super) async fn run(args: FeedsBenchArgs) -> anyhow::Result<ExitCode> {
    let bench = &args;
    in_fresh_database(&args.database, args.keep, |url| async move {
        bench_in(&url, bench).await
    })
    .await
}

async fn bench_in(url: &str, args: &FeedsBenchArgs) -> anyhow::Result<ExitCode> {
    let secrets = prepare(url, &[Role::Ingest, Role::Admin]).await?;
    let [ingest, admin] = secrets.as_slice() else {
        bail!("the bench's keys were not made");
    };
    let mllp_addr = free_addr()?;
    let server = ServerProcess::start_with(
        url,
        args.database.db_max_connections,
        &["--mllp-addr".into(), mllp_addr.to_string()],
    )
    .await?;
    let result = measure(&server, mllp_addr, ingest, admin, args).await;
    server.stop().await?;
    let measured = result?;
    report(args, &measured);
    let refused: usize = measured.iter().map(|(_, m)| m.refused).sum();
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

async fn measure(
    server: &ServerProcess,
    mllp_addr: SocketAddr,
    ingest: &str,
    admin: &str,
    args: &FeedsBenchArgs,
) -> anyhow::Result<Vec<(Phase, Measured)>> {
    let channel = Channel::from_shared(format!("http://{}", server.addr))?
        .connect()
        .await?;
    let admin_key: MetadataValue<Ascii> = format!("Bearer {admin}").parse()?;
    let mut create = Request::new(pb::CreateFeedRequest {
        feed: Some(pb::Feed {
            code: "bench-adt".into(),
            display_name: "Bench ADT".into(),
            mapping: Some(pb::feed::Mapping::Hl7v2(pb::Hl7v2Mapping {
                sending_application: "BENCH".into(),
                sending_facility: "MAIN".into(),
                rules: vec![pb::Hl7v2Rule {
                    event: "ADT^A04".into(),
                    touchpoint_code: "reception-desk".into(),
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        }),
    });
    create.metadata_mut().insert("authorization", admin_key);
    FeedServiceClient::new(channel)
        .create_feed(create)
        .await
        .context("cannot create the bench's feed")?;

    let key: MetadataValue<Ascii> = format!("Bearer {ingest}").parse()?;
    let mut next = 0u64;
    let mut measured: Vec<(Phase, Measured)> = Phase::ALL
        .iter()
        .map(|p| (*p, Measured::default()))
        .collect();
    // Untimed: connections made, caches filled, plans cached.
    let mut warm = Measured::default();
    run_phase(
        Phase::Mllp,
        server,
        mllp_addr,
        &key,
        &mut next,
        200,
        &mut warm,
    )
    .await?;
    run_phase(
        Phase::Record,
        server,
        mllp_addr,
        &key,
        &mut next,
        200,
        &mut warm,
    )
    .await?;
    for round in 0..args.rounds {
        let mut order = Phase::ALL.to_vec();
        if round % 2 == 1 {
            order.reverse();
        }
        for phase in order {
            let slot = &mut measured
                .iter_mut()
                .find(|(p, _)| *p == phase)
                .context("a phase without figures")?
                .1;
            let before = slot.latencies.len();
            let started = Instant::now();
            run_phase(
                phase,
                server,
                mllp_addr,
                &key,
                &mut next,
                args.messages,
                slot,
            )
            .await?;
            println!(
                "round {} {:<28} {} in {:.2} s",
                round + 1,
                phase.name(),
                slot.latencies.len() - before,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(measured)
}

/// Sends `count` moments as `phase` does, adding its figures to `into`.
async fn run_phase(
    phase: Phase,
    server: &ServerProcess,
    mllp_addr: SocketAddr,
    key: &MetadataValue<Ascii>,
    next: &mut u64,
    count: u64,
    into: &mut Measured,
) -> anyhow::Result<()> {
    let parallel = matches!(phase, Phase::MllpParallel | Phase::RecordParallel);
    let senders = if parallel { PARALLEL } else { 1 };
    let per_sender = count / senders as u64;
    let first = *next;
    *next += per_sender * senders as u64;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(senders);
    for sender in 0..senders {
        let from = first + sender as u64 * per_sender;
        let range = from..from + per_sender;
        let key = key.clone();
        let grpc = server.addr;
        tasks.push(tokio::spawn(async move {
            match phase {
                Phase::Mllp | Phase::MllpParallel => send_mllp(mllp_addr, range).await,
                Phase::Record | Phase::RecordParallel => send_records(grpc, key, range).await,
            }
        }));
    }
    for task in tasks {
        let (latencies, refused) = task.await??;
        into.latencies.extend(latencies);
        into.refused += refused;
    }
    into.elapsed += started.elapsed();
    Ok(())
}

/// The time of every moment: an hour ago, to the second.
fn moment_time() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now() - chrono::Duration::hours(1);
    chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now)
}

/// Registration `index` as an ADT^A04 message.
fn message(index: u64, time: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    let at = time.format("%Y%m%d%H%M%S+0000");
    format!(
        "MSH|^~\\&|BENCH|MAIN|VERDAD|QI|{at}||ADT^A04^ADT_A01|B{index}|P|2.5.1\r\
         EVN|A04|{at}\r\
         PID|1||MRN{index}^^^HOSP^MR||DOE^JANE\r\
         PV1|1|O|RECEPTION^^^MAIN||||||||||||||||BV{index}\r"
    )
    .into_bytes()
}

/// The same registration as an encounter.
fn encounter(index: u64, time: chrono::DateTime<chrono::Utc>) -> pb::Encounter {
    pb::Encounter {
        touchpoint_code: "reception-desk".into(),
        journey_id: format!("BV{index}"),
        customer_ref: format!("MRN{index}"),
        occur_time: Some(prost_types::Timestamp {
            seconds: time.timestamp(),
            nanos: 0,
        }),
        source: "bench-record".into(),
        external_id: format!("B{index}"),
        attributes: [
            ("hl7.message_type".to_owned(), "ADT".to_owned()),
            ("hl7.trigger_event".to_owned(), "A04".to_owned()),
        ]
        .into(),
        ..Default::default()
    }
}

/// Sends each message after the previous ACK over one connection; the
/// messages are made before the clock starts.
async fn send_mllp(
    addr: SocketAddr,
    range: std::ops::Range<u64>,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let time = moment_time();
    let frames: Vec<Vec<u8>> = range
        .map(|i| {
            let mut frame = vec![0x0B];
            frame.extend(message(i, time));
            frame.extend([0x1C, 0x0D]);
            frame
        })
        .collect();
    let mut stream = TcpStream::connect(addr)
        .await
        .context("cannot connect over MLLP")?;
    stream.set_nodelay(true)?;
    let mut latencies = Vec::with_capacity(frames.len());
    let mut refused = 0;
    let mut read = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    for frame in frames {
        let sent = Instant::now();
        stream.write_all(&frame).await?;
        read.clear();
        while !read.ends_with(&[0x1C, 0x0D]) {
            let n = stream.read(&mut buffer).await?;
            if n == 0 {
                bail!("the server closed the MLLP connection");
            }
            read.extend_from_slice(&buffer[..n]);
        }
        latencies.push(sent.elapsed());
        if !read.windows(7).any(|w| w == b"\rMSA|AA") {
            refused += 1;
        }
    }
    Ok((latencies, refused))
}

/// Records each encounter after the previous answer, on one channel.
async fn send_records(
    addr: SocketAddr,
    key: MetadataValue<Ascii>,
    range: std::ops::Range<u64>,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let time = moment_time();
    let encounters: Vec<pb::Encounter> = range.map(|i| encounter(i, time)).collect();
    let mut client: EncounterServiceClient<Channel> = connect(addr).await?;
    let mut latencies = Vec::with_capacity(encounters.len());
    let mut refused = 0;
    for encounter in encounters {
        let mut request = Request::new(pb::RecordEncounterRequest {
            encounter: Some(encounter),
        });
        request.metadata_mut().insert("authorization", key.clone());
        let sent = Instant::now();
        let answer = client.record_encounter(request).await;
        latencies.push(sent.elapsed());
        if answer.is_err() {
            refused += 1;
        }
    }
    Ok((latencies, refused))
}

fn report(args: &FeedsBenchArgs, measured: &[(Phase, Measured)]) {
    println!();
    println!(
        "{} moments per phase a round, {} rounds; each sender waits for the answer before the next",
        args.messages, args.rounds
    );
    println!("phase                          per second   p50       p99       refused");
    for (phase, m) in measured {
        println!(
            "{:<30} {:>10.0}   {:<9} {:<9} {}",
            phase.name(),
            m.rate(),
            millis(percentile(&m.latencies, 0.5)),
            millis(percentile(&m.latencies, 0.99)),
            m.refused
        );
    }
    let rate = |phase| {
        measured
            .iter()
            .find(|(p, _)| *p == phase)
            .map_or(0.0, |(_, m)| m.rate())
    };
    let ratio = rate(Phase::Mllp) / rate(Phase::Record).max(1e-9);
    println!(
        "MLLP 1 connection / RecordEncounter 1 caller: {ratio:.2} (target: at least {TARGET_RATIO:.2}) {}",
        if ratio >= TARGET_RATIO {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "MLLP 4 connections / RecordEncounter 4 callers: {:.2}",
        rate(Phase::MllpParallel) / rate(Phase::RecordParallel).max(1e-9)
    );
}
