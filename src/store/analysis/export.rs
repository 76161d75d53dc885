//! The encounters of a scope as an event log, read as a stream.

use std::pin::Pin;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};
use tokio_stream::{Stream, StreamExt};
use uuid::Uuid;

use super::{SCOPE, bind_scope};
use crate::{domain::analysis::Scope, error::Result};

/// One event of the log.
pub struct LogRow {
    pub journey_id: String,
    pub activity: String,
    pub occur_time: DateTime<Utc>,
    pub staff_ref: Option<String>,
}

/// The encounters in scope ordered by journey, time and arrival, as they
/// come from the database: the export never holds them all.
pub fn event_log<'c>(
    connection: &'c mut PgConnection,
    organisation_id: Uuid,
    scope: &'c Scope,
    sql: &'c str,
) -> Pin<Box<dyn Stream<Item = Result<LogRow>> + Send + 'c>> {
    let rows = bind_scope(sqlx::query(sql), organisation_id, scope).fetch(connection);
    Box::pin(rows.map(|row| {
        let row = row?;
        Ok(LogRow {
            journey_id: row.try_get("journey_id")?,
            activity: row.try_get("code")?,
            occur_time: row.try_get("occur_time")?,
            staff_ref: row.try_get("staff_ref")?,
        })
    }))
}

/// The query [`event_log`] runs.
pub fn event_log_sql() -> String {
    format!(
        "select e.journey_id, t.code, e.occur_time, e.staff_ref
         from encounter e
         join touchpoint t on t.organisation_id = e.organisation_id and t.id = e.touchpoint_id
         where {SCOPE}
         order by e.journey_id, e.occur_time, e.receive_seq"
    )
}
