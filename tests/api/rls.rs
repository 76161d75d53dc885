//! Row-level security on its own: queries that forget the organisation
//! filter still see and change only the organisation the transaction acts
//! for, even though the test cluster's user is a superuser.

use sqlx::{Executor, Row};
use verdad::{domain::api_key::hash_secret, store};

use crate::helpers::{spawn_app, touchpoint};

#[tokio::test]
async fn unfiltered_queries_see_only_the_organisation_acted_for() {
    let app = spawn_app().await;
    let a = app.create_org("Hospital A").await;
    let b = app.create_org("Hospital B").await;
    for code in ["lobby", "pharmacy"] {
        app.create_touchpoint(&a.admin_key, touchpoint(code)).await;
    }
    app.create_touchpoint(&b.admin_key, touchpoint("lobby"))
        .await;

    // The owner (a superuser here) sees every row: the data is there.
    let mut owner = app.owner_connection().await;
    let all: i64 = sqlx::query_scalar("select count(*) from touchpoint")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(all, 3);

    let mut tx = store::begin_for(&app.pool, a.id).await.unwrap();
    let role: String = sqlx::query_scalar("select current_user::text")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(role, store::APP_ROLE);
    let seen: i64 = sqlx::query_scalar("select count(*) from touchpoint")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(seen, 2, "A's transaction sees B's touchpoints");
    let orgs: i64 = sqlx::query_scalar("select count(*) from organisation")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(orgs, 1);
    let keys: Vec<uuid::Uuid> = sqlx::query_scalar("select organisation_id from api_key")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert!(keys.iter().all(|org| *org == a.id) && !keys.is_empty());

    let changed = tx
        .execute("update touchpoint set display_name = 'renamed'")
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 2, "an unfiltered update reached B");
    let deleted = tx.execute("delete from touchpoint").await;
    assert!(
        deleted.is_err(),
        "the application role may not delete touchpoints"
    );
    drop(tx);

    let b_name: String =
        sqlx::query_scalar("select display_name from touchpoint where organisation_id = $1")
            .bind(b.id)
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!(b_name, "Touchpoint lobby");
}

#[tokio::test]
async fn rows_cannot_be_written_into_another_organisation() {
    let app = spawn_app().await;
    let a = app.create_org("Hospital A").await;
    let b = app.create_org("Hospital B").await;
    let mut tx = store::begin_for(&app.pool, a.id).await.unwrap();
    let result = sqlx::query(
        "insert into touchpoint (id, organisation_id, code, display_name, stage, channel)
         values ($1, $2, 'smuggled', 'Smuggled', 'service', 'phone')",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(b.id)
    .execute(&mut *tx)
    .await;
    let error = result.expect_err("RLS let A write a row of B");
    let code = error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(
        code.as_deref(),
        Some("42501"),
        "not a row-level security violation: {error}"
    );
}

#[tokio::test]
async fn without_an_organisation_nothing_is_visible() {
    let app = spawn_app().await;
    let a = app.create_org("Hospital A").await;
    app.create_touchpoint(&a.admin_key, touchpoint("lobby"))
        .await;

    let mut connection = app.pool.acquire().await.unwrap();
    for table in ["organisation", "api_key", "touchpoint"] {
        let row = connection
            .fetch_one(format!("select count(*) from {table}").as_str())
            .await
            .unwrap();
        assert_eq!(
            row.get::<i64, _>(0),
            0,
            "{table} rows visible without an organisation"
        );
    }
}

#[tokio::test]
async fn a_key_row_is_visible_only_to_whoever_presents_its_hash() {
    let app = spawn_app().await;
    let a = app.create_org("Hospital A").await;
    let principal = store::api_key::authenticate(&app.pool, &hash_secret(&a.admin_key))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(principal.organisation_id, a.id);

    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("select set_config('verdad.secret_hash', encode($1, 'hex'), true)")
        .bind(&hash_secret(&a.admin_key)[..])
        .execute(&mut *tx)
        .await
        .unwrap();
    let visible: i64 = sqlx::query_scalar("select count(*) from api_key")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(visible, 1);
    let organisations: i64 = sqlx::query_scalar("select count(*) from organisation")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(organisations, 0, "a key hash opened the organisation table");

    let nobody = store::api_key::authenticate(&app.pool, &hash_secret("vd_guess"))
        .await
        .unwrap();
    assert!(nobody.is_none());
}
