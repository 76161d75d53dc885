//! The test harness: one PostgreSQL cluster per test run (`DATABASE_URL`
//! when set, else the embedded launcher in a temporary directory), one
//! database and one server per test.

use std::{net::SocketAddr, path::PathBuf, sync::OnceLock, time::Duration};

use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{Code, Request, Status, transport::Channel};
use tonic_types::StatusExt;
use uuid::Uuid;
use verdad::{
    app::api_keys::{CreatedKey, create_key},
    app::operator,
    domain::{
        api_key::NewApiKey,
        organisation::{NewOrganisation, OrganisationKind},
        role::Role,
    },
    proto::verdad::v1::{
        self as pb, analysis_service_client::AnalysisServiceClient,
        api_key_service_client::ApiKeyServiceClient,
        encounter_service_client::EncounterServiceClient,
        journey_service_client::JourneyServiceClient,
        organisation_service_client::OrganisationServiceClient,
        recovery_service_client::RecoveryServiceClient,
        standard_service_client::StandardServiceClient,
        touchpoint_service_client::TouchpointServiceClient,
    },
    server::embedded_pg::{EmbeddedOptions, EmbeddedPostgres},
    server::{Application, ServerSettings},
    store::{self, PoolOptions, with_database},
};

/// The maintenance URL of the cluster tests create their databases in.
fn cluster_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Some(url) = std::env::var("DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
        {
            return url;
        }
        let embedded = EMBEDDED.get_or_init(|| {
            let dir = test_cluster_dir();
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("cannot create the test cluster's directory");
            let cluster = EmbeddedPostgres::start(&EmbeddedOptions {
                port: None,
                data_dir: dir.join("pg"),
                ephemeral: true,
            })
            .unwrap_or_else(|e| panic!("cannot start the embedded PostgreSQL for the tests: {e}"));
            // SAFETY: registers a plain function to run at process exit.
            unsafe {
                libc::atexit(stop_embedded);
            }
            cluster
        });
        embedded.url("postgres")
    })
}

static EMBEDDED: OnceLock<EmbeddedPostgres> = OnceLock::new();

fn test_cluster_dir() -> PathBuf {
    std::env::temp_dir().join(format!("verdad-test-pg-{}", std::process::id()))
}

extern "C" fn stop_embedded() {
    if let Some(cluster) = EMBEDDED.get() {
        let _ = cluster.stop();
        let _ = std::fs::remove_dir_all(test_cluster_dir());
    }
}

/// Counts the statements on the current database that wait for a lock.
pub(crate) const LOCK_WAITERS: &str = "select count(*) from pg_stat_activity
     where datname = current_database() and wait_event_type = 'Lock'";

/// A running server with a database of its own.
pub(crate) struct TestApp {
    pub(crate) addr: SocketAddr,
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
        ..ServerSettings::default()
    };
    configure(&mut settings);
    let app = Application::bind(settings, pool.clone())
        .await
        .expect("cannot bind");
    let addr = app.local_addr().unwrap();
    let (shutdown, stop) = oneshot::channel();
    let server = tokio::spawn(app.run_until(async {
        let _ = stop.await;
    }));
    TestApp {
        addr,
        pool,
        database,
        database_url,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

/// An organisation made for a test, with its first admin key.
pub(crate) struct Org {
    pub(crate) id: Uuid,
    pub(crate) admin_key: String,
}

impl TestApp {
    pub(crate) async fn create_org(&self, name: &str) -> Org {
        let created = operator::create_organisation(
            &self.pool,
            NewOrganisation {
                display_name: name.to_owned(),
                kind: OrganisationKind::Hospital,
                time_zone: "Asia/Seoul".to_owned(),
            },
        )
        .await
        .expect("cannot create organisation");
        Org {
            id: created.organisation.id,
            admin_key: created.admin_key.secret,
        }
    }

    /// A new key of `role` for `org`.
    pub(crate) async fn key(&self, org: &Org, role: Role) -> String {
        self.created_key(org, role).await.secret
    }

    /// A new key of `role` for `org`, with its id.
    pub(crate) async fn created_key(&self, org: &Org, role: Role) -> CreatedKey {
        let new = NewApiKey {
            display_name: format!("{role} key"),
            role,
        };
        create_key(&self.pool, org.id, &new)
            .await
            .expect("cannot create key")
    }

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

    /// A connection to this test's database as the migration user (no
    /// role change, so no row-level security if it is a superuser).
    pub(crate) async fn owner_connection(&self) -> PgConnection {
        PgConnection::connect(&self.database_url).await.unwrap()
    }

    /// Folds up to `most` of the organisation's pending rollup changes on
    /// `connection` (the owner's), acting as the organisation so that
    /// row-level security shows them to an owner who is not a superuser;
    /// returns how many it took.
    pub(crate) async fn fold(connection: &mut PgConnection, organisation: Uuid, most: i32) -> i32 {
        sqlx::query("select set_config('verdad.organisation_id', $1::text, false)")
            .bind(organisation)
            .execute(&mut *connection)
            .await
            .unwrap();
        sqlx::query_scalar("select verdad_apply_rollups($1, $2)")
            .bind(organisation)
            .bind(most)
            .fetch_one(connection)
            .await
            .unwrap()
    }

    /// A channel to a second server on this test's database, as a replica
    /// behind the same load balancer would be; it runs until the test ends.
    pub(crate) async fn second_server(
        &self,
        configure: impl FnOnce(&mut ServerSettings),
    ) -> Channel {
        let mut settings = ServerSettings {
            listen_addr: "127.0.0.1:0".parse().unwrap(),
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

    /// Waits until `servers` servers listen for key revocations on this
    /// test's database: until then a server remembers no key, and a test of
    /// revocation would prove nothing.
    pub(crate) async fn servers_listening_for_revocations(&self, servers: i64) {
        self.until_counted(
            "select count(*) from pg_stat_activity
             where datname = current_database() and query ilike 'listen%verdad_api_keys%'",
            servers,
            &format!("fewer than {servers} servers listen for revocations"),
        )
        .await;
    }

    /// Waits until a statement on this test's database waits for a lock.
    pub(crate) async fn until_a_statement_waits_for_a_lock(&self) {
        self.until_counted(LOCK_WAITERS, 1, "no statement came to wait for a lock")
            .await;
    }

    /// Waits until the owner's `count` (a `select count(*)`) reaches
    /// `at_least`; panics with `what` after some five seconds.
    async fn until_counted(&self, count: &str, at_least: i64, what: &str) {
        let mut owner = self.owner_connection().await;
        for _ in 0..500 {
            let counted: i64 = sqlx::query_scalar(count)
                .fetch_one(&mut owner)
                .await
                .unwrap();
            if counted >= at_least {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{what}");
    }

    /// Runs `sql` in the cluster's maintenance database.
    pub(crate) async fn maintenance(&self, sql: &str) {
        let mut connection = PgConnection::connect(cluster_url()).await.unwrap();
        connection.execute(sql).await.unwrap();
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

/// `message` with the key as bearer token.
pub(crate) fn authed<T>(key: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

/// Checks the status code and the `ErrorInfo` reason of an error.
#[track_caller]
pub(crate) fn assert_error(status: &Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    let details = status.get_error_details();
    let info = details
        .error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "unexpected reason in {status:?}");
    assert_eq!(info.domain, "verdad");
}

/// The fields named by the `BadRequest` of an INVALID_ARGUMENT status.
#[track_caller]
pub(crate) fn violated_fields(status: &Status) -> Vec<String> {
    assert_error(status, Code::InvalidArgument, "INVALID_ARGUMENT");
    status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("no BadRequest in {status:?}"))
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

/// A valid touchpoint with the given code.
pub(crate) fn touchpoint(code: &str) -> pb::Touchpoint {
    pb::Touchpoint {
        code: code.to_owned(),
        display_name: format!("Touchpoint {code}"),
        description: String::new(),
        stage: pb::Stage::Service.into(),
        channel: pb::Channel::InPerson.into(),
        key: false,
        occurrence: pb::Occurrence::Routine.into(),
        cycle_position: 10,
        ..Default::default()
    }
}

/// Creates a touchpoint through the API and returns it.
pub(crate) async fn create_touchpoint(
    app: &TestApp,
    key: &str,
    touchpoint: pb::Touchpoint,
) -> pb::Touchpoint {
    app.touchpoints()
        .await
        .create_touchpoint(authed(
            key,
            pb::CreateTouchpointRequest {
                touchpoint: Some(touchpoint),
            },
        ))
        .await
        .expect("create_touchpoint failed")
        .into_inner()
        .touchpoint
        .expect("no touchpoint in the response")
}

/// A metric rule.
pub(crate) fn metric_rule(
    field: pb::MetricField,
    comparison: pb::Comparison,
    threshold: f64,
) -> Option<pb::standard::Rule> {
    Some(pb::standard::Rule::MetricRule(pb::MetricRule {
        field: field.into(),
        comparison: comparison.into(),
        threshold,
    }))
}

/// An observed rule.
pub(crate) fn observed_rule() -> Option<pb::standard::Rule> {
    Some(pb::standard::Rule::ObservedRule(pb::ObservedRule {}))
}

/// A valid critical standard `code` at the touchpoint with `touchpoint_code`
/// (every touchpoint when empty): the 15-second greeting.
pub(crate) fn standard(code: &str, touchpoint_code: &str) -> pb::Standard {
    pb::Standard {
        code: code.to_owned(),
        title: format!("Standard {code}"),
        touchpoint_code: touchpoint_code.to_owned(),
        element: pb::Element::Humanware.into(),
        severity: pb::Severity::Critical.into(),
        guidance: "Greet the visitor.".to_owned(),
        rule: metric_rule(
            pb::MetricField::FirstResponseSeconds,
            pb::Comparison::LessOrEqual,
            15.0,
        ),
        ..Default::default()
    }
}

/// Creates a standard through the API and returns it.
pub(crate) async fn create_standard(
    app: &TestApp,
    key: &str,
    standard: pb::Standard,
) -> pb::Standard {
    app.standards()
        .await
        .create_standard(authed(
            key,
            pb::CreateStandardRequest {
                standard: Some(standard),
            },
        ))
        .await
        .expect("create_standard failed")
        .into_inner()
        .standard
        .expect("no standard in the response")
}

/// A connection holding the touchpoint's row locked in an open
/// transaction: updates of it, and inserts of encounters at it (their
/// foreign key check), wait until it rolls back.
pub(crate) async fn hold_touchpoint(app: &TestApp, id: &str) -> PgConnection {
    let mut owner = app.owner_connection().await;
    owner.execute("begin").await.unwrap();
    owner
        .execute(format!("select 1 from touchpoint where id = '{id}' for update").as_str())
        .await
        .unwrap();
    owner
}
