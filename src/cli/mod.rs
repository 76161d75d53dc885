//! The commands of the `verdad` binary.

pub mod config;

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    process::ExitCode,
    str::FromStr,
};

use anyhow::Context;
use sqlx::{PgPool, postgres::PgConnectOptions};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    app::api_keys::{create_key, revoke_key},
    app::operator,
    cli::config::{
        AdminCommand, Command, DatabaseArgs, HealthcheckArgs, KindArg, RoleArg, ServeArgs,
    },
    demo,
    domain::{
        api_key::NewApiKey,
        organisation::{NewOrganisation, OrganisationKind},
        role::Role,
    },
    error::Error,
    mllp::{MllpSettings, tls::MllpTls},
    server::embedded_pg::{EmbeddedOptions, EmbeddedPostgres},
    server::{Application, ServerSettings, shutdown_signal},
    store::{self, PoolOptions},
    telemetry::meters,
    webhooks::WebhookSettings,
};

/// The database the embedded PostgreSQL keeps Verdad's data in.
const EMBEDDED_DATABASE: &str = "verdad";

pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve(*args).await,
        Command::Migrate(args) => {
            let database = Database::open(&args).await?;
            let result = store::migrate(&database.url).await;
            database.close().await;
            result?;
            tracing::info!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin { database, command } => {
            let database_handle = Database::open(&database).await?;
            let result = run_admin(&database_handle, &database, command).await;
            database_handle.close().await;
            result
        }
        Command::Healthcheck(args) => healthcheck(args).await,
        Command::Openapi => {
            use std::io::Write;
            std::io::stdout().write_all(&crate::http::openapi_document()?)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The PostgreSQL in use: the one of `DATABASE_URL`, or an embedded one
/// this process may have started and must stop.
pub struct Database {
    pub url: String,
    /// Where the data is, for people; never holds a password.
    pub description: String,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    pub async fn open(args: &DatabaseArgs) -> anyhow::Result<Self> {
        // An empty DATABASE_URL (`DATABASE_URL= verdad …`) means none.
        if let Some(url) = args.database_url.as_deref().filter(|url| !url.is_empty()) {
            return Ok(Self {
                url: url.to_owned(),
                description: describe_url(url),
                embedded: None,
            });
        }
        let options = EmbeddedOptions {
            port: None,
            data_dir: args.pg_dir.clone(),
            ephemeral: false,
        };
        let embedded =
            tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&options)).await??;
        let description = format!("embedded PostgreSQL in {}", embedded.data_dir().display());
        store::create_database_if_missing(&embedded.url("postgres"), EMBEDDED_DATABASE)
            .await
            .context("cannot create the embedded database")?;
        Ok(Self {
            url: embedded.url(EMBEDDED_DATABASE),
            description,
            embedded: Some(embedded),
        })
    }

    /// Stops the embedded PostgreSQL if this process started it.
    pub async fn close(self) {
        if let Some(embedded) = self.embedded {
            match tokio::task::spawn_blocking(move || embedded.stop()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "cannot stop the embedded PostgreSQL"),
                Err(error) => tracing::error!(%error, "cannot stop the embedded PostgreSQL"),
            }
        }
    }
}

/// `host:port/database` of a PostgreSQL URL, without user or password.
fn describe_url(url: &str) -> String {
    match PgConnectOptions::from_str(url) {
        Ok(options) => format!(
            "PostgreSQL at {}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("(default database)")
        ),
        Err(_) => "PostgreSQL from DATABASE_URL".to_owned(),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let database = Database::open(&args.database).await?;
    let result = serve_on(&database, &args).await;
    database.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

async fn serve_on(database: &Database, args: &ServeArgs) -> anyhow::Result<()> {
    store::migrate(&database.url).await?;
    let pool = store::connect(
        &database.url,
        &PoolOptions {
            max_connections: args.database.db_max_connections,
            statement_timeout: args.statement_timeout,
            ..PoolOptions::default()
        },
    )
    .await?;
    if let Some(addr) = args.metrics_addr {
        meters::install(addr).with_context(|| format!("cannot serve metrics on {addr}"))?;
        tokio::spawn(meters::watch_pool(pool.clone()));
        tracing::info!(address = %addr, "metrics are served");
    }
    if args.demo {
        let organisation = demo::DEMO_ORGANISATION_ID;
        match demo::ensure_demo(&pool).await? {
            Some(key) => {
                tracing::info!("making the demo hospital's history: some 90 days of visits");
                let history = demo::history::seed(&pool).await?;
                tracing::info!(
                    journeys = history.journeys,
                    encounters = history.encounters,
                    recovery_cases = history.recovery_cases,
                    "the demo hospital's history is made"
                );
                println!(
                    "Demo hospital ready (organisation {organisation}), with {} visits of the \
                     last 90 days. Its admin API key, shown only now:\n\n    export VERDAD_KEY={}\n",
                    history.journeys, key.secret
                );
            }
            None => println!(
                "Demo hospital ready (organisation {organisation}). Its admin API key was shown \
                 when it was made and still works; another one:\n\n    \
                 verdad admin create-key --org {organisation} --role admin\n"
            ),
        }
    }
    let settings = ServerSettings {
        listen_addr: args.listen_addr,
        request_timeout: args.request_timeout,
        shutdown_grace: args.shutdown_grace,
        max_message_bytes: args.max_message_bytes,
        health_interval: args.health_interval,
        exact_percentile_limit: args.exact_percentile_limit,
        stream_batches_at_once: args.stream_batches_at_once,
        stream_buffer_bytes: args.stream_buffer_bytes,
        bulk_lanes: args.bulk_lanes,
        rollup_delay: args.rollup_delay,
        fold_wait: args.fold_wait,
        analyze_after: args.analyze_after,
        cors_origins: args.cors_origins.clone(),
        webhooks: WebhookSettings {
            timeout: args.webhook_timeout,
            retry_window: args.webhook_retry_window,
            allow_private: args.webhook_allow_private,
            ..WebhookSettings::default()
        },
        sweep_interval: args.sweep_interval,
        mllp: args.mllp_addr.map(|addr| MllpSettings {
            listen_addr: addr,
            max_message_bytes: usize::try_from(args.mllp_max_message_bytes).unwrap_or(usize::MAX),
            idle_timeout: args.mllp_idle_timeout,
            tls: match (&args.mllp_tls_cert, &args.mllp_tls_key) {
                (Some(certificate), Some(key)) => Some(MllpTls {
                    certificate: certificate.clone(),
                    key: key.clone(),
                    client_ca: args.mllp_tls_client_ca.clone(),
                }),
                _ => None,
            },
        }),
    };
    let app = Application::bind(settings, pool)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen_addr))?;
    tracing::info!(address = %app.local_addr()?, database = %database.description, "verdad is listening");
    if let Some(mllp) = app.mllp_addr()? {
        tracing::info!(address = %mllp, "the MLLP listener for HL7 v2 feeds is listening");
    }
    app.run_until(shutdown_signal()).await
}

async fn connect(database: &Database, args: &DatabaseArgs) -> anyhow::Result<PgPool> {
    let options = PoolOptions {
        max_connections: args.db_max_connections,
        ..PoolOptions::default()
    };
    Ok(store::connect(&database.url, &options).await?)
}

async fn run_admin(
    database: &Database,
    args: &DatabaseArgs,
    command: AdminCommand,
) -> anyhow::Result<ExitCode> {
    store::migrate(&database.url).await?;
    let pool = connect(database, args).await?;
    match command {
        AdminCommand::CreateOrg {
            name,
            kind,
            time_zone,
        } => {
            let created = operator::create_organisation(
                &pool,
                NewOrganisation {
                    display_name: name,
                    kind: organisation_kind(kind),
                    time_zone,
                },
            )
            .await?;
            println!("organisation: {}", created.organisation.id);
            println!("admin key:    {}", created.admin_key.secret);
            println!("(the key is shown only now; store it safely)");
        }
        AdminCommand::CreateKey { org, role, name } => {
            if !operator::organisation_exists(&pool, org).await? {
                return Err(Error::not_found("organisation", org.to_string()).into());
            }
            let new = NewApiKey {
                display_name: name,
                role: role_of(role),
            };
            let created = create_key(&pool, org, &new).await?;
            println!("key id: {}", created.key.id);
            println!("key:    {}", created.secret);
            println!("(the key is shown only now; store it safely)");
        }
        AdminCommand::RevokeKey { org, id } => {
            let key = revoke_key(&pool, org, id).await?;
            println!("revoked key {} ({})", key.id, key.display_name);
        }
    }
    pool.close().await;
    Ok(ExitCode::SUCCESS)
}

fn organisation_kind(kind: KindArg) -> OrganisationKind {
    match kind {
        KindArg::Hospital => OrganisationKind::Hospital,
        KindArg::WelfareCentre => OrganisationKind::WelfareCentre,
        KindArg::Agency => OrganisationKind::Agency,
        KindArg::Other => OrganisationKind::Other,
    }
}

fn role_of(role: RoleArg) -> Role {
    match role {
        RoleArg::Ingest => Role::Ingest,
        RoleArg::Analyst => Role::Analyst,
        RoleArg::Admin => Role::Admin,
    }
}

async fn healthcheck(args: HealthcheckArgs) -> anyhow::Result<ExitCode> {
    let mut address = args.listen_addr;
    if address.ip().is_unspecified() {
        address.set_ip(match address.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?
        .connect_timeout(args.timeout)
        .timeout(args.timeout)
        .connect()
        .await
        .with_context(|| format!("no server answers on {address}"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .with_context(|| format!("the health check on {address} failed"))?;
    let status = response.into_inner().status();
    println!("{}", status.as_str_name());
    Ok(if status == ServingStatus::Serving {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
