use tonic_health::pb::health_check_response::ServingStatus;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_is_serving_without_a_key() {
    let app = spawn_app().await;
    assert_eq!(
        app.wait_for_health(ServingStatus::Serving).await,
        ServingStatus::Serving
    );
    assert_eq!(
        app.health_status("verdad.v1.TouchpointService").await,
        ServingStatus::Serving
    );
    assert_eq!(
        app.health_status("verdad.v1.ApiKeyService").await,
        ServingStatus::Serving
    );
}

#[tokio::test]
async fn health_turns_not_serving_while_the_database_is_unreachable() {
    let app = spawn_app().await;
    assert_eq!(
        app.wait_for_health(ServingStatus::Serving).await,
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
        app.wait_for_health(ServingStatus::NotServing).await,
        ServingStatus::NotServing
    );
    assert_eq!(
        app.health_status("verdad.v1.TouchpointService").await,
        ServingStatus::NotServing
    );

    app.maintenance(&format!(
        "alter database {} allow_connections true",
        app.database
    ))
    .await;
    assert_eq!(
        app.wait_for_health(ServingStatus::Serving).await,
        ServingStatus::Serving
    );
}
