//! The encounters waiting for the rollups (see the migration
//! `rollups_applied_later`): folded in by `verdad_apply_rollups`.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::Result;

/// Pending rows one transaction takes at most: a backlog of a bulk load is
/// worked off in transactions of well under a second each, inside the
/// statement timeout.
pub const TAKEN_AT_ONCE: i32 = 20_000;

/// Folds into the organisation's rollups what it had pending when called,
/// in transactions of at most `piece` changes, until all of it is in or
/// `deadline` has passed; returns how many changes that was, and whether
/// it was all of them.
pub async fn apply_until(
    pool: &PgPool,
    organisation_id: Uuid,
    deadline: std::time::Instant,
    piece: i32,
) -> Result<(u64, bool)> {
    let mut up_to = None;
    let mut total = 0;
    loop {
        let mut tx = super::begin_for(pool, organisation_id).await?;
        if up_to.is_none() {
            up_to = last_pending(&mut tx, organisation_id).await?;
            if up_to.is_none() {
                return Ok((0, true));
            }
        }
        let taken = take(&mut tx, organisation_id, up_to, None, piece).await?;
        tx.commit().await?;
        total += u64::try_from(taken).unwrap_or(0);
        if taken < piece {
            return Ok((total, true));
        }
        if std::time::Instant::now() >= deadline {
            return Ok((total, false));
        }
    }
}

/// Folds up to TAKEN_AT_ONCE of the organisation's oldest pending changes
/// in one transaction, and returns how many it took.
pub async fn apply_some(pool: &PgPool, organisation_id: Uuid) -> Result<i32> {
    let mut tx = super::begin_for(pool, organisation_id).await?;
    let taken = take(&mut tx, organisation_id, None, None, TAKEN_AT_ONCE).await?;
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
        let taken = take(
            connection,
            organisation_id,
            None,
            Some(journeys),
            TAKEN_AT_ONCE,
        )
        .await?;
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
    most: i32,
) -> Result<i32> {
    let taken = sqlx::query_scalar!(
        r#"select verdad_apply_rollups($1, $2, $3, $4) as "taken!""#,
        organisation_id,
        most,
        up_to,
        journeys,
    )
    .fetch_one(connection)
    .await?;
    Ok(taken)
}
