//! The tonic server: services, reflection, health, authentication, limits
//! and graceful shutdown.

pub mod embedded_pg;
pub mod memory;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use sqlx::PgPool;
use tokio::{
    net::TcpListener,
    sync::{oneshot, watch},
};
use tokio_stream::{StreamExt, wrappers::TcpListenerStream};
use tonic::{server::NamedService, transport::Server};
use tonic_health::{ServingStatus, server::HealthReporter};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{
    app::lanes::Lanes,
    app::{App, Parts, recovery_feed::RecoveryFeed},
    auth::AuthLayer,
    auth::key_cache::KeyCache,
    domain::paging::TokenKey,
    grpc::deadline::DeadlineLayer,
    grpc::framing::FramingLayer,
    grpc::{
        analysis_service::AnalysisApi, api_key_service::ApiKeyApi, encounter_service::EncounterApi,
        feed_service::FeedApi, ingest_route::IngestRouteLayer, journey_service::JourneyApi,
        organisation_service::OrganisationApi, recovery_service::RecoveryApi,
        standard_service::StandardApi, touchpoint_service::TouchpointApi,
        webhook_service::WebhookApi,
    },
    http::{Door, HttpDoorLayer},
    ingest::rollup_applier::RollupApplier,
    ingest::statistics::Statistics,
    ingest::stream_budget::StreamBudget,
    mllp::MllpSettings,
    proto::{
        FILE_DESCRIPTOR_SET,
        verdad::v1::{
            analysis_service_server::AnalysisServiceServer,
            api_key_service_server::ApiKeyServiceServer,
            encounter_service_server::EncounterServiceServer,
            feed_service_server::FeedServiceServer, journey_service_server::JourneyServiceServer,
            organisation_service_server::OrganisationServiceServer,
            recovery_service_server::RecoveryServiceServer,
            standard_service_server::StandardServiceServer,
            touchpoint_service_server::TouchpointServiceServer,
            webhook_service_server::WebhookServiceServer,
        },
    },
    store,
    telemetry::CallTraceLayer,
    webhooks::WebhookSettings,
};

/// HTTP/2 flow-control windows (see their use).
const CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;
const STREAM_WINDOW: u32 = 64 * 1024;

/// How long one database probe of the health service may take.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The server's limits and timings.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen_addr: SocketAddr,
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
    pub max_message_bytes: usize,
    pub health_interval: Duration,
    /// See `ServeArgs::exact_percentile_limit`.
    pub exact_percentile_limit: i64,
    /// See `ServeArgs::stream_batches_at_once`; 0 for no limit.
    pub stream_batches_at_once: usize,
    /// See `ServeArgs::stream_buffer_bytes`.
    pub stream_buffer_bytes: usize,
    /// See `ServeArgs::bulk_lanes`; 0 for no limit.
    pub bulk_lanes: usize,
    /// See `ServeArgs::rollup_delay`.
    pub rollup_delay: Duration,
    /// See `ServeArgs::fold_wait`.
    pub fold_wait: Duration,
    /// See `ServeArgs::analyze_after`; 0 never.
    pub analyze_after: u64,
    /// See `ServeArgs::cors_origins`; empty for none.
    pub cors_origins: Vec<String>,
    /// The MLLP listener for HL7 v2 feeds, when there is one.
    pub mllp: Option<MllpSettings>,
    /// How webhooks are delivered.
    pub webhooks: WebhookSettings,
    /// See `ServeArgs::sweep_interval`.
    pub sweep_interval: Duration,
}

/// The stream budget's default (see `ServeArgs::stream_buffer_bytes`):
/// with the default message limit, three of the largest batches. A batch
/// takes some 15 times its size in the server while it is decoded, checked
/// and stored: in `verdad-bench streams` (80 streams of 3.9 MB batches) the
/// server peaked at about 200 MiB with 12 MiB, 255 MiB with 16 MiB and
/// 355 MiB with 32 MiB, storing as fast with each (docs/benchmarks.md).
pub const DEFAULT_STREAM_BUFFER_BYTES: usize = 12 * 1024 * 1024;

/// Below this many encounters in scope, sorting them all for exact
/// percentiles takes about as long as the rollups would (some 100 ms).
pub const DEFAULT_EXACT_PERCENTILE_LIMIT: i64 = 50_000;

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            max_message_bytes: 4 * 1024 * 1024,
            health_interval: Duration::from_secs(5),
            exact_percentile_limit: DEFAULT_EXACT_PERCENTILE_LIMIT,
            stream_batches_at_once: 0,
            stream_buffer_bytes: DEFAULT_STREAM_BUFFER_BYTES,
            bulk_lanes: 0,
            rollup_delay: crate::ingest::rollup_applier::DEFAULT_DELAY,
            fold_wait: crate::ingest::rollup_applier::DEFAULT_FOLD_WAIT,
            analyze_after: crate::ingest::statistics::DEFAULT_ANALYZE_AFTER,
            cors_origins: Vec::new(),
            mllp: None,
            webhooks: WebhookSettings::default(),
            sweep_interval: crate::app::follow_up::DEFAULT_SWEEP_INTERVAL,
        }
    }
}

/// A bound server, ready to run. Binding first lets callers (tests) learn
/// the real port of `127.0.0.1:0` before serving.
pub struct Application {
    listener: TcpListener,
    mllp: Option<(TcpListener, Option<tokio_rustls::TlsAcceptor>)>,
    settings: ServerSettings,
    pool: PgPool,
}

impl Application {
    pub async fn bind(settings: ServerSettings, pool: PgPool) -> std::io::Result<Self> {
        let listener = TcpListener::bind(settings.listen_addr).await?;
        let mllp = match &settings.mllp {
            Some(mllp) => {
                let acceptor = mllp
                    .tls
                    .as_ref()
                    .map(crate::mllp::tls::acceptor)
                    .transpose()
                    .map_err(|e| std::io::Error::other(format!("MLLP TLS: {e:#}")))?;
                Some((TcpListener::bind(mllp.listen_addr).await?, acceptor))
            }
            None => None,
        };
        Ok(Self {
            listener,
            mllp,
            settings,
            pool,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The MLLP listener's address, when there is one.
    pub fn mllp_addr(&self) -> std::io::Result<Option<SocketAddr>> {
        self.mllp
            .as_ref()
            .map(|(listener, _)| listener.local_addr())
            .transpose()
    }

    /// Serves until `shutdown` completes, then stops accepting and lets
    /// in-flight calls finish for at most the grace period.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            mllp,
            settings,
            pool,
        } = self;
        let limit = settings.max_message_bytes;

        let (reporter, health) = tonic_health::server::health_reporter();
        // The reporter starts at SERVING; nothing is known until the first probe.
        for name in health_names() {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        let watcher = tokio::spawn(watch_database(
            pool.clone(),
            reporter,
            settings.health_interval,
        ));

        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;

        // Every generated server type has its own pair of limit setters.
        macro_rules! limited {
            ($server:expr) => {
                $server
                    .max_decoding_message_size(limit)
                    .max_encoding_message_size(limit)
            };
        }
        let tokens = TokenKey::new(
            &store::page_token_key(&pool)
                .await
                .map_err(|e| anyhow::anyhow!("cannot read the page token key: {e}"))?,
        );
        let keys = KeyCache::default();
        let key_listener = tokio::spawn(keys.clone().listen(pool.clone()));
        let bulk = Lanes::new("bulk_lanes", settings.bulk_lanes);
        let statistics = Statistics::new(pool.clone(), settings.analyze_after);
        let (rollups, applier) = RollupApplier::start(
            pool.clone(),
            settings.rollup_delay,
            bulk.clone(),
            statistics,
        );
        let feed = RecoveryFeed::new(pool.clone());
        let (stopping_watches, watches_stop) = watch::channel(false);
        let app = Arc::new(App::new(Parts {
            pool: pool.clone(),
            tokens,
            keys: keys.clone(),
            rollups,
            stream_lanes: Lanes::new("stream_batches_at_once", settings.stream_batches_at_once),
            bulk,
            feed: feed.clone(),
            stopping: watches_stop,
            exact_percentile_limit: settings.exact_percentile_limit,
            fold_wait: settings.fold_wait,
        }));
        let tally = app.feed_tally();
        let tally_writer = tokio::spawn(tally.clone().run(pool.clone()));
        let mllp_door = match (mllp, &settings.mllp) {
            (Some((listener, acceptor)), Some(mllp)) => Some(tokio::spawn(crate::mllp::serve(
                listener,
                acceptor,
                app.clone(),
                mllp.clone(),
                stopping_watches.subscribe(),
            ))),
            _ => None,
        };
        let dispatcher = tokio::spawn(crate::webhooks::dispatch(
            pool.clone(),
            settings.webhooks.clone(),
            stopping_watches.subscribe(),
        ));
        let sweeper = tokio::spawn(crate::app::follow_up::sweep_until_stopped(
            pool.clone(),
            settings.sweep_interval,
            stopping_watches.subscribe(),
        ));
        let feeds = limited!(FeedServiceServer::new(FeedApi::new(app.clone())));
        let webhooks = limited!(WebhookServiceServer::new(WebhookApi::new(
            app.clone(),
            settings.webhooks.allow_private
        )));
        let touchpoints = limited!(TouchpointServiceServer::new(TouchpointApi::new(
            app.clone()
        )));
        let api_keys = limited!(ApiKeyServiceServer::new(ApiKeyApi::new(app.clone())));
        let organisations = limited!(OrganisationServiceServer::new(OrganisationApi::new(
            app.clone()
        )));
        let standards = limited!(StandardServiceServer::new(StandardApi::new(app.clone())));
        let encounter_api = Arc::new(EncounterApi::new(app.clone()));
        let encounters = limited!(EncounterServiceServer::from_arc(encounter_api.clone()));
        let journeys = limited!(JourneyServiceServer::new(JourneyApi::new(app.clone())));
        let analyses = limited!(AnalysisServiceServer::new(AnalysisApi::new(app.clone())));
        let recovery = limited!(RecoveryServiceServer::new(RecoveryApi::new(app.clone())));

        let budget = StreamBudget::new(settings.stream_buffer_bytes, limit);
        crate::telemetry::meters::stream_budget(budget.bytes());
        let door = HttpDoorLayer::new(Door::new(
            limit,
            settings.request_timeout,
            pool.clone(),
            keys.clone(),
            app.clone(),
        )?);
        let layers = tower::ServiceBuilder::new()
            .option_layer(cors(&settings.cors_origins)?)
            .layer(door)
            .layer(tonic_web::GrpcWebLayer::new())
            .layer(CallTraceLayer)
            .layer(FramingLayer::new(limit, budget))
            .layer(DeadlineLayer::new(settings.request_timeout))
            .layer(AuthLayer::new(pool.clone(), keys))
            .layer(IngestRouteLayer::new(encounter_api))
            .into_inner();
        let router = Server::builder()
            // HTTP/1.1 for the HTTP/JSON door and gRPC-Web; gRPC itself
            // and HTTP/2 clients of the door arrive as HTTP/2.
            .accept_http1(true)
            // HTTP/2 closes a connection on which too many small DATA frames
            // wait unread (h2's "too_many_data_frames"), with a budget of
            // half the connection window. A stream's window of 64 KiB lets
            // even a stream of empty messages (5-byte frames) leave no more
            // unread than fits the 4 MiB that an 8 MiB connection window
            // gives: a sender of small batches is held back by flow
            // control, never cut off.
            .initial_connection_window_size(CONNECTION_WINDOW)
            .initial_stream_window_size(STREAM_WINDOW)
            .layer(layers)
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(touchpoints)
            .add_service(api_keys)
            .add_service(organisations)
            .add_service(standards)
            .add_service(encounters)
            .add_service(journeys)
            .add_service(recovery)
            .add_service(analyses)
            .add_service(feeds)
            .add_service(webhooks);

        let incoming = TcpListenerStream::new(listener).map(|stream| {
            let stream = stream?;
            stream.set_nodelay(true)?;
            Ok::<_, std::io::Error>(stream)
        });
        let (stopping_tx, stopping_rx) = oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: no new calls, letting in-flight calls finish");
            // Watches never finish by themselves: end them now.
            let _ = stopping_watches.send(true);
            let _ = stopping_tx.send(());
        };
        let serve = router.serve_with_incoming_shutdown(incoming, signal);
        let grace_over = async move {
            match stopping_rx.await {
                Ok(()) => tokio::time::sleep(settings.shutdown_grace).await,
                Err(_) => std::future::pending().await,
            }
        };
        let result = tokio::select! {
            served = serve => served.map_err(anyhow::Error::from),
            () = grace_over => {
                tracing::warn!(grace = ?settings.shutdown_grace, "grace period over: cutting the calls still running");
                Ok(())
            }
        };
        watcher.abort();
        key_listener.abort();
        // What it has not folded in yet stays pending, for the next start.
        applier.abort();
        feed.stop();
        // The MLLP connections finish the message each is on, within the
        // grace period.
        if let Some(mut mllp_door) = mllp_door
            && tokio::time::timeout(settings.shutdown_grace, &mut mllp_door)
                .await
                .is_err()
        {
            tracing::warn!("grace period over: cutting the MLLP connections still running");
            mllp_door.abort();
        }
        // Deliveries under way finish their attempt, within the grace
        // period; what is left waits in the outbox for the next server.
        sweeper.abort();
        let mut dispatcher = dispatcher;
        if tokio::time::timeout(settings.shutdown_grace, &mut dispatcher)
            .await
            .is_err()
        {
            dispatcher.abort();
        }
        tally_writer.abort();
        tally.flush(&pool).await;
        result
    }
}

/// Lets the pages of `origins` call the API from a browser: JSON routes and
/// gRPC-Web alike, with the headers each needs. `None` when there are none.
fn cors(origins: &[String]) -> anyhow::Result<Option<CorsLayer>> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        let parsed = origins
            .iter()
            .map(|origin| {
                http::HeaderValue::from_str(origin.trim_end_matches('/'))
                    .map_err(|_| anyhow::anyhow!("--cors-origin {origin:?} is not a valid origin"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        AllowOrigin::list(parsed)
    };
    let header = http::HeaderName::from_static;
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                http::Method::GET,
                http::Method::POST,
                http::Method::PATCH,
                http::Method::DELETE,
            ])
            .allow_headers([
                http::header::AUTHORIZATION,
                http::header::CONTENT_TYPE,
                header("x-grpc-web"),
                header("x-user-agent"),
                header("grpc-timeout"),
            ])
            .expose_headers([
                header("grpc-status"),
                header("grpc-message"),
                header("grpc-status-details-bin"),
            ])
            .max_age(Duration::from_secs(24 * 60 * 60)),
    ))
}

/// The names the health service answers for: the server as a whole ("")
/// and each Verdad service.
fn health_names() -> [&'static str; 11] {
    [
        "",
        <TouchpointServiceServer<TouchpointApi> as NamedService>::NAME,
        <ApiKeyServiceServer<ApiKeyApi> as NamedService>::NAME,
        <OrganisationServiceServer<OrganisationApi> as NamedService>::NAME,
        <StandardServiceServer<StandardApi> as NamedService>::NAME,
        <EncounterServiceServer<EncounterApi> as NamedService>::NAME,
        <JourneyServiceServer<JourneyApi> as NamedService>::NAME,
        <RecoveryServiceServer<RecoveryApi> as NamedService>::NAME,
        <AnalysisServiceServer<AnalysisApi> as NamedService>::NAME,
        <FeedServiceServer<FeedApi> as NamedService>::NAME,
        <WebhookServiceServer<WebhookApi> as NamedService>::NAME,
    ]
}

/// Keeps the health status at SERVING exactly while the database answers.
async fn watch_database(pool: PgPool, reporter: HealthReporter, interval: Duration) {
    let mut serving = None;
    loop {
        let healthy = tokio::time::timeout(PING_TIMEOUT, store::ping(&pool))
            .await
            .unwrap_or(false);
        if serving != Some(healthy) {
            let status = if healthy {
                tracing::info!("database answers: serving");
                ServingStatus::Serving
            } else {
                tracing::error!("database does not answer: not serving");
                ServingStatus::NotServing
            };
            for name in health_names() {
                reporter.set_service_status(name, status).await;
            }
            serving = Some(healthy);
        }
        tokio::time::sleep(interval).await;
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (container stop).
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
