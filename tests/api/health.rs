use std::time::Duration;

use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::{TestApp, spawn_app};

async fn status(app: &TestApp, service: &str) -> ServingStatus {
    HealthClient::new(app.channel().await)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health check failed")
        .into_inner()
        .status()
}

pub(crate) async fn wait_for(app: &TestApp, wanted: ServingStatus) -> ServingStatus {
    let mut seen = status(app, "").await;
    for _ in 0..100 {
        if seen == wanted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = status(app, "").await;
    }
    seen
}

#[tokio::test]
async fn health_is_serving_without_a_key() {
    let app = spawn_app().await;
    assert_eq!(
        wait_for(&app, ServingStatus::Serving).await,
        ServingStatus::Serving
    );
    assert_eq!(
        status(&app, "verdad.v1.TouchpointService").await,
        ServingStatus::Serving
    );
    assert_eq!(
        status(&app, "verdad.v1.ApiKeyService").await,
        ServingStatus::Serving
    );
}

#[tokio::test]
async fn health_turns_not_serving_while_the_database_is_unreachable() {
    let app = spawn_app().await;
    assert_eq!(
        wait_for(&app, ServingStatus::Serving).await,
        ServingStatus::Serving
    );

    // Cut this test's database off: refuse new connections, end open ones.
    app.maintenance(&format!(
        "alter database {} allow_connections false",
        app.database
    ))
    .await;
    app.maintenance(&format!(
        "select pg_terminate_backend(pid) from pg_stat_activity where datname = '{}'",
        app.database
    ))
    .await;
    assert_eq!(
        wait_for(&app, ServingStatus::NotServing).await,
        ServingStatus::NotServing
    );
    assert_eq!(
        status(&app, "verdad.v1.TouchpointService").await,
        ServingStatus::NotServing
    );

    app.maintenance(&format!(
        "alter database {} allow_connections true",
        app.database
    ))
    .await;
    assert_eq!(
        wait_for(&app, ServingStatus::Serving).await,
        ServingStatus::Serving
    );
}
