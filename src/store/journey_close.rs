//! Journeys that closed, and what closing checks them against.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{domain::deviation::DesignedTouchpoint, error::Result};

/// Why a journey closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    Feedback,
    Idle,
}

impl CloseReason {
    /// As stored, and as the journey.deviated event's `closed_by` says it.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Feedback => "feedback",
            CloseReason::Idle => "idle",
        }
    }
}

/// Closes a journey unless it is closed; true when it closed now. A
/// concurrent closer of the same journey waits for this one's transaction
/// and then finds it closed.
pub async fn close(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    journey_id: &str,
    reason: CloseReason,
) -> Result<bool> {
    let inserted = sqlx::query!(
        r#"insert into journey_close (organisation_id, journey_id, reason)
           values ($1, $2, $3)
           on conflict do nothing"#,
        organisation_id,
        journey_id,
        reason.as_str(),
    )
    .execute(connection)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

pub async fn mark_deviated(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    journey_id: &str,
) -> Result<()> {
    sqlx::query!(
        r#"update journey_close set deviated = true
           where organisation_id = $1 and journey_id = $2"#,
        organisation_id,
        journey_id,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// A journey's touchpoints in the order met (as the MOT cycle orders
/// them), and when its last encounter occurred; empty without encounters.
pub async fn path(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    journey_id: &str,
) -> Result<(Vec<Uuid>, Option<DateTime<Utc>>)> {
    let rows = sqlx::query!(
        r#"select touchpoint_id, occur_time from encounter
           where organisation_id = $1 and journey_id = $2
           order by occur_time, receive_seq"#,
        organisation_id,
        journey_id,
    )
    .fetch_all(connection)
    .await?;
    let last = rows.iter().map(|r| r.occur_time).max();
    Ok((rows.into_iter().map(|r| r.touchpoint_id).collect(), last))
}

/// Journeys not closed whose last encounter occurred at or after `since`
/// and at least `idle_seconds` ago, up to `limit`, longest idle first.
/// Read from the journey rollups, which trail the encounters by moments.
pub async fn idle(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    since: DateTime<Utc>,
    idle_seconds: i64,
    limit: i64,
) -> Result<Vec<String>> {
    let journeys = sqlx::query_scalar!(
        r#"select j.journey_id from journey_path j
           where j.organisation_id = $1 and j.last_time >= $2
             and j.last_time <= now() - make_interval(secs => $3::float8)
             and not exists (select from journey_close c
                             where c.organisation_id = j.organisation_id
                               and c.journey_id = j.journey_id)
           order by j.last_time
           limit $4"#,
        organisation_id,
        since,
        idle_seconds as f64,
        limit,
    )
    .fetch_all(connection)
    .await?;
    Ok(journeys)
}

/// The organisation's touchpoints as the designed cycle has them.
pub async fn designed_cycle(
    connection: &mut PgConnection,
    organisation_id: Uuid,
) -> Result<Vec<DesignedTouchpoint>> {
    let rows = sqlx::query!(
        r#"select id, code, is_key, occurrence, cycle_position, archive_time
           from touchpoint where organisation_id = $1"#,
        organisation_id,
    )
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DesignedTouchpoint {
            id: r.id,
            code: r.code,
            key: r.is_key,
            routine: r.occurrence == "routine",
            cycle_position: r.cycle_position,
            archived: r.archive_time.is_some(),
        })
        .collect())
}
