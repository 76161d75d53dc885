//! The encounters waiting for the rollups (see the migration
//! `rollups_applied_later`): folded in by `verdad_apply_rollups`.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::Result;

/// Pending rows one transaction takes at most: a backlog of a bulk load is
/// worked off in transactions of well under a second each, inside the
/// statement timeout.
const TAKEN_AT_ONCE: i32 = 20_000;

/// Folds everything the organisation has pending into its rollups, in
/// transactions of their own; returns how many encounters' changes it
/// folded.
pub async fn apply(pool: &PgPool, organisation_id: Uuid) -> Result<u64> {
    let mut total = 0;
    loop {
        let mut tx = super::begin_for(pool, organisation_id).await?;
        let taken = apply_some(&mut tx, organisation_id).await?;
        tx.commit().await?;
        total += u64::try_from(taken).unwrap_or(0);
        if taken < TAKEN_AT_ONCE {
            return Ok(total);
        }
    }
}

/// Folds everything the organisation has pending into its rollups inside
/// the caller's transaction, which holds the organisation's applier lock
/// until it ends.
pub async fn apply_within(connection: &mut PgConnection, organisation_id: Uuid) -> Result<()> {
    while apply_some(connection, organisation_id).await? == TAKEN_AT_ONCE {}
    Ok(())
}

async fn apply_some(connection: &mut PgConnection, organisation_id: Uuid) -> Result<i32> {
    let taken = sqlx::query_scalar!(
        r#"select verdad_apply_rollups($1, $2) as "taken!""#,
        organisation_id,
        TAKEN_AT_ONCE,
    )
    .fetch_one(connection)
    .await?;
    Ok(taken)
}

/// How many encounters' changes the organisation has waiting.
pub async fn pending(connection: &mut PgConnection, organisation_id: Uuid) -> Result<i64> {
    let count = sqlx::query_scalar!(
        r#"select count(*) as "count!" from rollup_pending where organisation_id = $1"#,
        organisation_id,
    )
    .fetch_one(connection)
    .await?;
    Ok(count)
}
