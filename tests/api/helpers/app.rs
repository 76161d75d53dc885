//! `TestApp`: a server on a loopback port with a database of its own,
//! spawned per test and dropped with its database; and its clients.

use std::{net::SocketAddr, time::Duration};

use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;
use uuid::Uuid;
use verdad::{
    mllp::MllpSettings,
    proto::verdad::v1::{
        analysis_service_client::AnalysisServiceClient,
        api_key_service_client::ApiKeyServiceClient,
        encounter_service_client::EncounterServiceClient, feed_service_client::FeedServiceClient,
        journey_service_client::JourneyServiceClient,
        organisation_service_client::OrganisationServiceClient,
        recovery_service_client::RecoveryServiceClient,
        standard_service_client::StandardServiceClient,
        touchpoint_service_client::TouchpointServiceClient,
    },
    server::{Application, ServerSettings},
    store::{self, PoolOptions, with_database},
    webhooks::WebhookSettings,
};

use super::cluster::cluster_url;

/// A running server with a database of its own.
pub(crate) struct TestApp {
    pub(crate) addr: SocketAddr,
    /// The MLLP listener's address, when the test's settings keep it.
    pub(crate) mllp: Option<SocketAddr>,
    /// The application pool (role `verdad_app`, row-level security on).
    pub(crate) pool: PgPool,
    pub(crate) database: String,
    pub(crate) database_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    pub(crate) server: Option<JoinHandle<anyhow::Result<()>>>,
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub(crate) async fn spawn_app_with(configure: impl FnOnce(&mut ServerSettings)) -> TestApp {
    spawn_app_with_pool(default_pool_options(), configure).await
}

/// The test servers' pool: small, and quick to give up waiting.
pub(crate) fn default_pool_options() -> PoolOptions {
    PoolOptions {
        max_connections: 5,
        acquire_timeout: Duration::from_secs(2),
        ..PoolOptions::default()
    }
}

pub(crate) async fn spawn_app_with_pool(
    pool_options: PoolOptions,
    configure: impl FnOnce(&mut ServerSettings),
) -> TestApp {
    spawn_app_on(cluster_url(), pool_options, configure).await
}

/// A server with a new database in the cluster of `admin_url`.
pub(crate) async fn spawn_app_on(
    admin_url: &str,
    pool_options: PoolOptions,
    configure: impl FnOnce(&mut ServerSettings),
) -> TestApp {
    let database = format!("verdad_test_{}", Uuid::now_v7().simple());
    store::create_database_if_missing(admin_url, &database)
        .await
        .expect("cannot create the test database");
    let database_url = with_database(admin_url, &database);
    store::migrate(&database_url)
        .await
        .expect("migrations failed");
    let pool = store::connect(&database_url, &pool_options)
        .await
        .expect("cannot connect");

    let mut settings = ServerSettings {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        health_interval: Duration::from_millis(100),
        mllp: Some(MllpSettings {
            listen_addr: "127.0.0.1:0".parse().unwrap(),
            max_message_bytes: verdad::mllp::DEFAULT_MAX_MESSAGE_BYTES,
            idle_timeout: Duration::from_secs(60),
            tls: None,
        }),
        // The tests' receivers listen on the loopback interface.
        webhooks: WebhookSettings {
            allow_private: true,
            poll: Duration::from_millis(200),
            ..WebhookSettings::default()
        },
        ..ServerSettings::default()
    };
    configure(&mut settings);
    let app = Application::bind(settings, pool.clone())
        .await
        .expect("cannot bind");
    let addr = app.local_addr().unwrap();
    let mllp = app.mllp_addr().unwrap();
    let (shutdown, stop) = oneshot::channel();
    let server = tokio::spawn(app.run_until(async {
        let _ = stop.await;
    }));
    TestApp {
        addr,
        mllp,
        pool,
        database,
        database_url,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

impl TestApp {
    pub(crate) async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .expect("cannot connect to the test server")
    }

    pub(crate) async fn touchpoints(&self) -> TouchpointServiceClient<Channel> {
        TouchpointServiceClient::new(self.channel().await)
    }

    pub(crate) async fn api_keys(&self) -> ApiKeyServiceClient<Channel> {
        ApiKeyServiceClient::new(self.channel().await)
    }

    pub(crate) async fn standards(&self) -> StandardServiceClient<Channel> {
        StandardServiceClient::new(self.channel().await)
    }

    pub(crate) async fn organisations(&self) -> OrganisationServiceClient<Channel> {
        OrganisationServiceClient::new(self.channel().await)
    }

    pub(crate) async fn analyses(&self) -> AnalysisServiceClient<Channel> {
        AnalysisServiceClient::new(self.channel().await)
    }

    pub(crate) async fn encounters(&self) -> EncounterServiceClient<Channel> {
        EncounterServiceClient::new(self.channel().await)
    }

    pub(crate) async fn feeds(&self) -> FeedServiceClient<Channel> {
        FeedServiceClient::new(self.channel().await)
    }

    pub(crate) async fn journeys(&self) -> JourneyServiceClient<Channel> {
        JourneyServiceClient::new(self.channel().await)
    }

    pub(crate) async fn recovery(&self) -> RecoveryServiceClient<Channel> {
        RecoveryServiceClient::new(self.channel().await)
    }

    /// Stops the server as SIGTERM would and waits for it.
    pub(crate) async fn shut_down(&mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.server.take() {
            Some(server) => server.await?,
            None => Ok(()),
        }
    }

    /// A channel to a second server on this test's database, as a replica
    /// behind the same load balancer would be; it runs until the test ends.
    pub(crate) async fn second_server(
        &self,
        configure: impl FnOnce(&mut ServerSettings),
    ) -> Channel {
        let mut settings = ServerSettings {
            listen_addr: "127.0.0.1:0".parse().unwrap(),
            webhooks: WebhookSettings {
                allow_private: true,
                poll: Duration::from_millis(200),
                ..WebhookSettings::default()
            },
            ..ServerSettings::default()
        };
        configure(&mut settings);
        let server = Application::bind(settings, self.pool.clone())
            .await
            .expect("cannot bind");
        let addr = server.local_addr().unwrap();
        tokio::spawn(server.run_until(std::future::pending()));
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .expect("cannot connect to the second server")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let database = self.database.clone();
        // Drop runs inside the test's runtime, which cannot block on itself.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut connection = PgConnection::connect(cluster_url()).await.ok()?;
                let sql = format!(
                    "drop database if exists {} with (force)",
                    store::quote_identifier(&database)
                );
                connection.execute(sql.as_str()).await.ok()
            })
        })
        .join();
    }
}
