//! Erasing a customer: every journey an encounter of theirs belongs to.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::{error::Result, store::rollup_queue};

/// What an erasure deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    pub encounters: i64,
    pub journeys: i64,
    pub journey_feedback: i64,
    pub recovery_cases: i64,
    /// Pending rollup changes of the erased journeys, folded in.
    pub rollup_changes: u64,
}

/// Deletes every journey an encounter with `customer_hash` belongs to: its
/// encounters, their recovery cases and the journey's feedback.
pub async fn erase_customer(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    customer_hash: &[u8],
) -> Result<Erased> {
    let journeys: Vec<String> = sqlx::query_scalar!(
        r#"select distinct journey_id as "journey_id!" from encounter
           where organisation_id = $1 and customer_hash = $2"#,
        organisation_id,
        customer_hash,
    )
    .fetch_all(&mut *connection)
    .await?;
    if journeys.is_empty() {
        return Ok(Erased::default());
    }
    let recovery_cases = sqlx::query!(
        "delete from recovery_case where organisation_id = $1 and journey_id = any($2)",
        organisation_id,
        &journeys,
    )
    .execute(&mut *connection)
    .await?
    .rows_affected();
    let journey_feedback = sqlx::query!(
        "delete from journey_feedback where organisation_id = $1 and journey_id = any($2)",
        organisation_id,
        &journeys,
    )
    .execute(&mut *connection)
    .await?
    .rows_affected();
    sqlx::query!(
        "delete from journey_close where organisation_id = $1 and journey_id = any($2)",
        organisation_id,
        &journeys,
    )
    .execute(&mut *connection)
    .await?;
    // What feeds settled for these journeys names them.
    sqlx::query!(
        "delete from feed_control where organisation_id = $1 and journey_id = any($2)",
        organisation_id,
        &journeys,
    )
    .execute(&mut *connection)
    .await?;
    let encounters = sqlx::query!(
        "delete from encounter where organisation_id = $1 and journey_id = any($2)",
        organisation_id,
        &journeys,
    )
    .execute(&mut *connection)
    .await?
    .rows_affected();
    // Nothing summarised from the erased journeys outlives the erasure.
    let rollup_changes =
        rollup_queue::apply_journeys(&mut *connection, organisation_id, &journeys).await?;
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Ok(Erased {
        rollup_changes,
        encounters: count(encounters),
        journeys: count(journeys.len() as u64),
        journey_feedback: count(journey_feedback),
        recovery_cases: count(recovery_cases),
    })
}
