//! Behind the API: this test's database as its owner, for what a test
//! must set up, hold or read that no RPC gives.

use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection, Row};
use uuid::Uuid;

use super::{TestApp, cluster::cluster_url};

/// Counts the statements on the current database that wait for a lock.
pub(crate) const LOCK_WAITERS: &str = "select count(*) from pg_stat_activity
     where datname = current_database() and wait_event_type = 'Lock'";

impl TestApp {
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

    /// A connection holding the touchpoint's row locked in an open
    /// transaction: updates of it, and inserts of encounters at it (their
    /// foreign key check), wait until it rolls back.
    pub(crate) async fn hold_touchpoint(&self, id: &str) -> PgConnection {
        let mut owner = self.owner_connection().await;
        owner.execute("begin").await.unwrap();
        owner
            .execute(format!("select 1 from touchpoint where id = '{id}' for update").as_str())
            .await
            .unwrap();
        owner
    }

    /// Per table with an `organisation_id`, the organisation's row count
    /// and a digest of its rows: equal before and after means nothing of
    /// the organisation's changed.
    pub(crate) async fn fingerprint(&self, organisation: Uuid) -> Vec<(String, i64, String)> {
        let mut owner = self.owner_connection().await;
        // The rollups follow the encounters a moment later, whenever the
        // server's applier runs: fold in what is pending first, so that only
        // what the calls themselves changed shows.
        TestApp::fold(&mut owner, organisation, i32::MAX).await;
        let tables: Vec<String> = sqlx::query_scalar(
            "select c.table_name::text from information_schema.columns c
             join information_schema.tables t
               on t.table_schema = c.table_schema and t.table_name = c.table_name
             where c.table_schema = 'public' and c.column_name = 'organisation_id'
               and t.table_type = 'BASE TABLE'
             order by 1",
        )
        .fetch_all(&mut owner)
        .await
        .unwrap();
        let mut prints = Vec::new();
        for table in tables {
            let row = sqlx::query(&format!(
                "select count(*) as n,
                        md5(coalesce(string_agg(t::text, '|' order by t::text), '')) as digest
                 from {table} t where organisation_id = $1"
            ))
            .bind(organisation)
            .fetch_one(&mut owner)
            .await
            .unwrap();
            prints.push((table, row.get("n"), row.get("digest")));
        }
        prints
    }
}
