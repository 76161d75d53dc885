//! `verdad-bench webhooks`: events delivered to a local receiver, on one
//! server in one run.
//!
//! - Latency: failing RecordEncounter calls, one at a time, each waiting
//!   for its recovery_case.opened to arrive; the time from sending the
//!   call to the event's arrival, beside the call's own latency (the
//!   baseline).
//! - Throughput: a backlog of failing encounters recorded by eight callers
//!   at once, then the events per second that arrive at one webhook (in
//!   order, one at a time), and at four webhooks (each event to each).
//!
//! The receiver verifies every signature and answers 204.

use std::{
    collections::HashMap,
    net::SocketAddr,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::Notify,
};
use tonic::{
    Request,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

use super::{
    in_fresh_database, ingest::connect, millis, percentile, prepare, ratio, server::ServerProcess,
};
use crate::config::WebhooksBenchArgs;
use verdad::{
    domain::role::Role,
    proto::verdad::v1::{
        self as pb, encounter_service_client::EncounterServiceClient,
        webhook_service_client::WebhookServiceClient,
    },
};

/// Callers recording the backlog at once.
const CALLERS: u64 = 8;
/// Webhooks of the fan-out phase.
const FAN_OUT: usize = 4;
/// How long an event may take to arrive before the bench gives up.
const ARRIVAL_LIMIT: Duration = Duration::from_secs(120);

pub(super) async fn run(args: WebhooksBenchArgs) -> anyhow::Result<ExitCode> {
    let bench = &args;
    in_fresh_database(&args.database, args.keep, |url| async move {
        bench_in(&url, bench).await
    })
    .await
}

async fn bench_in(url: &str, args: &WebhooksBenchArgs) -> anyhow::Result<ExitCode> {
    let secrets = prepare(url, &[Role::Ingest, Role::Admin]).await?;
    let [ingest, admin] = secrets.as_slice() else {
        bail!("the bench's keys were not made");
    };
    let server = ServerProcess::start_with(
        url,
        args.database.db_max_connections,
        &["--webhook-allow-private".into()],
    )
    .await?;
    let result = measure(&server, ingest, admin, args).await;
    server.stop().await?;
    let figures = result?;
    figures.report(args);
    Ok(if figures.unverified == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

struct Figures {
    record: Vec<Duration>,
    to_webhook: Vec<Duration>,
    backlog: u64,
    record_backlog: Duration,
    one_webhook: Duration,
    fan_out: Duration,
    unverified: usize,
}

impl Figures {
    fn report(&self, args: &WebhooksBenchArgs) {
        let p = |samples: &[Duration], q| millis(percentile(samples, q));
        println!();
        println!(
            "{} failing RecordEncounter calls, one at a time, each waiting for its webhook",
            args.calls
        );
        println!("                                   p50       p99");
        println!(
            "RecordEncounter (baseline)         {:<9} {:<9}",
            p(&self.record, 0.5),
            p(&self.record, 0.99)
        );
        println!(
            "RecordEncounter to webhook arrival {:<9} {:<9}",
            p(&self.to_webhook, 0.5),
            p(&self.to_webhook, 0.99)
        );
        println!(
            "ratio to the baseline              {:<9.2} {:<9.2}",
            ratio(
                percentile(&self.to_webhook, 0.5),
                percentile(&self.record, 0.5)
            ),
            ratio(
                percentile(&self.to_webhook, 0.99),
                percentile(&self.record, 0.99)
            )
        );
        println!();
        let rate = |events: u64, took: Duration| events as f64 / took.as_secs_f64().max(1e-9);
        println!(
            "backlog: {} failing encounters recorded by {CALLERS} callers in {:.2} s ({:.0}/s)",
            self.backlog,
            self.record_backlog.as_secs_f64(),
            rate(self.backlog, self.record_backlog)
        );
        println!(
            "1 webhook:  {} events delivered in {:.2} s: {:.0} events/s",
            self.backlog,
            self.one_webhook.as_secs_f64(),
            rate(self.backlog, self.one_webhook)
        );
        println!(
            "{FAN_OUT} webhooks: {} deliveries in {:.2} s: {:.0} deliveries/s",
            self.backlog * FAN_OUT as u64,
            self.fan_out.as_secs_f64(),
            rate(self.backlog * FAN_OUT as u64, self.fan_out)
        );
        println!("signatures that did not verify: {}", self.unverified);
    }
}

async fn measure(
    server: &ServerProcess,
    ingest: &str,
    admin: &str,
    args: &WebhooksBenchArgs,
) -> anyhow::Result<Figures> {
    let receiver = Receiver::start().await?;
    let channel = Channel::from_shared(format!("http://{}", server.addr))?
        .connect()
        .await?;
    let admin_key: MetadataValue<Ascii> = format!("Bearer {admin}").parse()?;
    let key: MetadataValue<Ascii> = format!("Bearer {ingest}").parse()?;
    let mut webhooks = WebhookServiceClient::new(channel.clone());
    let create = |path: String| {
        let mut request = Request::new(pb::CreateWebhookRequest {
            webhook: Some(pb::Webhook {
                url: format!("http://{}/{path}", receiver.addr),
                event_types: vec!["recovery_case.opened".into()],
                ..Default::default()
            }),
        });
        request
            .metadata_mut()
            .insert("authorization", admin_key.clone());
        request
    };
    let first = webhooks
        .create_webhook(create("hook-0".into()))
        .await
        .context("cannot create the bench's webhook")?
        .into_inner();
    receiver
        .secrets
        .lock()
        .map_err(poisoned)?
        .push(first.secret);
    let mut next = 0u64;

    // Untimed: connections made, caches filled.
    let mut client: EncounterServiceClient<Channel> = connect(server.addr).await?;
    let mut record = Vec::new();
    let mut to_webhook = Vec::new();
    for warm in [true, false] {
        let calls = if warm { 50 } else { args.calls };
        for _ in 0..calls {
            let index = next;
            next += 1;
            let mut request = Request::new(pb::RecordEncounterRequest {
                encounter: Some(failing(index)),
            });
            request.metadata_mut().insert("authorization", key.clone());
            let sent = Instant::now();
            let answer = client.record_encounter(request).await?.into_inner();
            let answered = sent.elapsed();
            let encounter = answer.encounter.context("no encounter in the answer")?.id;
            let arrived = receiver.arrival_of(&encounter).await?;
            if !warm {
                record.push(answered);
                to_webhook.push(arrived.saturating_duration_since(sent));
            }
        }
    }

    // One webhook: the backlog goes out in order, one event at a time.
    let backlog = args.backlog;
    let before = receiver.count();
    let started = Instant::now();
    record_many(server.addr, &key, next, backlog).await?;
    next += backlog;
    let record_backlog = started.elapsed();
    receiver.until(before + backlog as usize).await?;
    let one_webhook = started.elapsed();

    // Four webhooks: every event to each, in parallel.
    for n in 1..FAN_OUT {
        let created = webhooks
            .create_webhook(create(format!("hook-{n}")))
            .await?
            .into_inner();
        receiver
            .secrets
            .lock()
            .map_err(poisoned)?
            .push(created.secret);
    }
    let before = receiver.count();
    let started = Instant::now();
    record_many(server.addr, &key, next, backlog).await?;
    receiver.until(before + backlog as usize * FAN_OUT).await?;
    let fan_out = started.elapsed();

    Ok(Figures {
        record,
        to_webhook,
        backlog,
        record_backlog,
        one_webhook,
        fan_out,
        unverified: receiver.unverified(),
    })
}

fn poisoned<T>(_: T) -> anyhow::Error {
    anyhow::anyhow!("the receiver's state is poisoned")
}

/// A failing moment: satisfaction 1 at the reception desk.
fn failing(index: u64) -> pb::Encounter {
    let now = chrono::Utc::now() - chrono::Duration::minutes(10);
    pb::Encounter {
        touchpoint_code: "reception-desk".into(),
        journey_id: format!("WV{index}"),
        occur_time: Some(prost_types::Timestamp {
            seconds: now.timestamp(),
            nanos: 0,
        }),
        satisfaction: Some(1),
        source: "bench-webhooks".into(),
        external_id: format!("W{index}"),
        ..Default::default()
    }
}

/// Records `count` failing encounters from `first` on, by eight callers.
async fn record_many(
    addr: SocketAddr,
    key: &MetadataValue<Ascii>,
    first: u64,
    count: u64,
) -> anyhow::Result<()> {
    let per_caller = count.div_ceil(CALLERS);
    let mut tasks = Vec::new();
    for caller in 0..CALLERS {
        let from = first + caller * per_caller;
        let to = (from + per_caller).min(first + count);
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let mut client: EncounterServiceClient<Channel> = connect(addr).await?;
            for index in from..to {
                let mut request = Request::new(pb::RecordEncounterRequest {
                    encounter: Some(failing(index)),
                });
                request.metadata_mut().insert("authorization", key.clone());
                client.record_encounter(request).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// A webhook receiver: HTTP/1.1 with keep-alive, a 204 for everything,
/// and a note of when each event arrived, by the failed encounter's id.
struct Receiver {
    addr: SocketAddr,
    secrets: Arc<Mutex<Vec<String>>>,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
}

#[derive(Default)]
struct State {
    by_encounter: HashMap<String, Instant>,
    count: usize,
    unverified: usize,
}

impl Receiver {
    async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let receiver = Receiver {
            addr: listener.local_addr()?,
            secrets: Arc::default(),
            state: Arc::default(),
            arrived: Arc::new(Notify::new()),
        };
        let (secrets, state, arrived) = (
            receiver.secrets.clone(),
            receiver.state.clone(),
            receiver.arrived.clone(),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (secrets, state, arrived) = (secrets.clone(), state.clone(), arrived.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, secrets, state, arrived).await;
                });
            }
        });
        Ok(receiver)
    }

    fn count(&self) -> usize {
        self.state.lock().map_or(0, |s| s.count)
    }

    fn unverified(&self) -> usize {
        self.state.lock().map_or(usize::MAX, |s| s.unverified)
    }

    async fn arrival_of(&self, encounter: &str) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + ARRIVAL_LIMIT;
        loop {
            let notified = self.arrived.notified();
            if let Some(at) = self
                .state
                .lock()
                .map_err(poisoned)?
                .by_encounter
                .get(encounter)
            {
                return Ok(*at);
            }
            if tokio::time::timeout_at(deadline.into(), notified)
                .await
                .is_err()
            {
                bail!("the event of encounter {encounter} did not arrive");
            }
        }
    }

    async fn until(&self, count: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + ARRIVAL_LIMIT;
        loop {
            let notified = self.arrived.notified();
            if self.count() >= count {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline.into(), notified)
                .await
                .is_err()
            {
                bail!("only {} of {count} events arrived", self.count());
            }
        }
    }
}

async fn serve(
    stream: TcpStream,
    secrets: Arc<Mutex<Vec<String>>>,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    loop {
        let mut headers = http::HeaderMap::new();
        let mut line = String::new();
        if read.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            line.clear();
            read.read_line(&mut line).await?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':') {
                let name = http::HeaderName::from_bytes(name.trim().as_bytes())?;
                let value = http::HeaderValue::from_str(value.trim())?;
                if name == http::header::CONTENT_LENGTH {
                    length = value.to_str()?.parse()?;
                }
                headers.insert(name, value);
            }
        }
        let mut body = vec![0; length];
        read.read_exact(&mut body).await?;
        let now = Instant::now();
        let verified = secrets.lock().map_err(poisoned)?.iter().any(|secret| {
            standardwebhooks::Webhook::new(secret)
                .is_ok_and(|hook| hook.verify(&body, &headers).is_ok())
        });
        let encounter = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["data"]["encounter_id"].as_str().map(str::to_owned));
        {
            let mut state = state.lock().map_err(poisoned)?;
            state.count += 1;
            if !verified {
                state.unverified += 1;
            }
            if let Some(encounter) = encounter {
                state.by_encounter.entry(encounter).or_insert(now);
            }
        }
        arrived.notify_waiters();
        write.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await?;
    }
}
