//! The encounters waiting for the rollups (see the migration
//! `rollups_applied_later`): folded in by `verdad_apply_rollups`.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::Result;

/// Pending rows one transaction takes at most: a backlog of a bulk load is
/// worked off in transactions of well under a second each, inside the
/// statement timeout.
pub const TAKEN_AT_ONCE: i32 = 20_000;

/// Folds into the organisation's rollups everything it had pending when
/// called, in transactions of their own, and returns how many changes that
/// was. It stops there: a feed that keeps streaming does not keep it going.
pub async fn apply(pool: &PgPool, organisation_id: Uuid) -> Result<u64> {
    let mut up_to = None;
    let mut total = 0;
    loop {
        let mut tx = super::begin_for(pool, organisation_id).await?;
        if up_to.is_none() {
            up_to = last_pending(&mut tx, organisation_id).await?;
            if up_to.is_none() {
                return Ok(0);
            }
        }
        let taken = take(&mut tx, organisation_id, up_to, None).await?;
        tx.commit().await?;
        total += u64::try_from(taken).unwrap_or(0);
        if taken < TAKEN_AT_ONCE {
            return Ok(total);
        }
    }
}

/// Folds up to TAKEN_AT_ONCE of the organisation's oldest pending changes
/// in one transaction, and returns how many it took.
pub async fn apply_some(pool: &PgPool, organisation_id: Uuid) -> Result<i32> {
    let mut tx = super::begin_for(pool, organisation_id).await?;
    let taken = take(&mut tx, organisation_id, None, None).await?;
    tx.commit().await?;
    Ok(taken)
}

/// Folds the pending changes of `journeys` in, inside the caller's
/// transaction, and returns how many there were: an erasure's, so that
/// nothing summarised from the erased journeys outlives it.
pub async fn apply_journeys(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    journeys: &[String],
) -> Result<u64> {
    let mut total = 0;
    loop {
        let taken = take(connection, organisation_id, None, Some(journeys)).await?;
        total += u64::try_from(taken).unwrap_or(0);
        if taken < TAKEN_AT_ONCE {
            return Ok(total);
        }
    }
}

async fn last_pending(connection: &mut PgConnection, organisation_id: Uuid) -> Result<Option<i64>> {
    let last = sqlx::query_scalar!(
        "select max(seq) from rollup_pending where organisation_id = $1",
        organisation_id,
    )
    .fetch_one(connection)
    .await?;
    Ok(last)
}

async fn take(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    up_to: Option<i64>,
    journeys: Option<&[String]>,
) -> Result<i32> {
    let taken = sqlx::query_scalar!(
        r#"select verdad_apply_rollups($1, $2, $3, $4) as "taken!""#,
        organisation_id,
        TAKEN_AT_ONCE,
        up_to,
        journeys,
    )
    .fetch_one(connection)
    .await?;
    Ok(taken)
}
