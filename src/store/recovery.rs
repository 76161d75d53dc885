//! Recovery cases.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::decode;
use crate::{
    domain::{
        recovery::{CaseFilter, Escalation, RecoveryCase},
        standard::TouchpointRef,
    },
    error::{Error, Result},
};

/// A case to open for a failed encounter; it takes the encounter's
/// touchpoint and journey.
pub struct NewCase {
    pub encounter_id: Uuid,
    pub failure_reasons: Vec<String>,
    pub original_satisfaction: Option<i32>,
}

struct CaseRow {
    id: Uuid,
    kind: String,
    encounter_id: Option<Uuid>,
    touchpoint_id: Uuid,
    touchpoint_code: String,
    journey_id: String,
    status: String,
    assignee: String,
    open_time: DateTime<Utc>,
    due_time: DateTime<Utc>,
    resolve_time: Option<DateTime<Utc>>,
    resolution_note: String,
    failure_reasons: Vec<String>,
    original_satisfaction: Option<i16>,
    follow_up_satisfaction: Option<i16>,
    update_time: DateTime<Utc>,
    acknowledge_time: Option<DateTime<Utc>>,
    escalation_level: i32,
    escalated_to: String,
    escalate_time: Option<DateTime<Utc>>,
}

impl TryFrom<CaseRow> for RecoveryCase {
    type Error = Error;

    fn try_from(row: CaseRow) -> Result<Self> {
        Ok(RecoveryCase {
            id: row.id,
            kind: decode(&row.kind)?,
            encounter_id: row.encounter_id,
            touchpoint: TouchpointRef {
                id: row.touchpoint_id,
                code: row.touchpoint_code,
            },
            journey_id: row.journey_id,
            status: decode(&row.status)?,
            assignee: row.assignee,
            open_time: row.open_time,
            due_time: row.due_time,
            resolve_time: row.resolve_time,
            resolution_note: row.resolution_note,
            failure_reasons: row.failure_reasons,
            original_satisfaction: row.original_satisfaction.map(i32::from),
            follow_up_satisfaction: row.follow_up_satisfaction.map(i32::from),
            update_time: row.update_time,
            acknowledge_time: row.acknowledge_time,
            escalation: Escalation {
                level: row.escalation_level,
                escalated_to: row.escalated_to,
                escalate_time: row.escalate_time,
            },
        })
    }
}

/// A case by id; with `lock`, locked until the transaction ends.
pub async fn get(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    id: Uuid,
    lock: bool,
) -> Result<Option<RecoveryCase>> {
    let row = if lock {
        sqlx::query_as!(
            CaseRow,
            r#"select c.id, c.encounter_id, c.touchpoint_id, t.code as touchpoint_code,
                      c.journey_id, c.status, c.assignee, c.open_time, c.due_time,
                      c.resolve_time, c.resolution_note, c.failure_reasons,
                      c.original_satisfaction, c.follow_up_satisfaction, c.update_time,
                      c.kind, c.acknowledge_time, c.escalation_level, c.escalated_to,
                      c.escalate_time
               from recovery_case c
               join touchpoint t
                 on t.organisation_id = c.organisation_id and t.id = c.touchpoint_id
               where c.organisation_id = $1 and c.id = $2 for update of c"#,
            organisation_id,
            id,
        )
        .fetch_optional(connection)
        .await?
    } else {
        sqlx::query_as!(
            CaseRow,
            r#"select c.id, c.encounter_id, c.touchpoint_id, t.code as touchpoint_code,
                      c.journey_id, c.status, c.assignee, c.open_time, c.due_time,
                      c.resolve_time, c.resolution_note, c.failure_reasons,
                      c.original_satisfaction, c.follow_up_satisfaction, c.update_time,
                      c.kind, c.acknowledge_time, c.escalation_level, c.escalated_to,
                      c.escalate_time
               from recovery_case c
               join touchpoint t
                 on t.organisation_id = c.organisation_id and t.id = c.touchpoint_id
               where c.organisation_id = $1 and c.id = $2"#,
            organisation_id,
            id,
        )
        .fetch_optional(connection)
        .await?
    };
    row.map(TryInto::try_into).transpose()
}

/// A page of cases, newest first (ids are UUIDv7), after `after`.
pub async fn list(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    filter: &CaseFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<RecoveryCase>> {
    let rows = sqlx::query_as!(
        CaseRow,
        r#"select c.id, c.encounter_id, c.touchpoint_id, t.code as touchpoint_code,
                      c.journey_id, c.status, c.assignee, c.open_time, c.due_time,
                      c.resolve_time, c.resolution_note, c.failure_reasons,
                      c.original_satisfaction, c.follow_up_satisfaction, c.update_time,
                      c.kind, c.acknowledge_time, c.escalation_level, c.escalated_to,
                      c.escalate_time
               from recovery_case c
               join touchpoint t
                 on t.organisation_id = c.organisation_id and t.id = c.touchpoint_id
               where c.organisation_id = $1
             and ($2::text is null or c.status = $2)
             and (not $3 or (c.status <> 'resolved' and c.due_time < now()))
             and ($4::uuid is null or c.touchpoint_id = $4)
             and ($5::uuid is null or c.id < $5)
             and ($7::text is null or c.kind = $7)
           order by c.id desc
           limit $6"#,
        organisation_id,
        filter.status.map(|s| s.as_str()),
        filter.overdue_only,
        filter.touchpoint_id,
        after,
        limit,
        filter.kind.map(|k| k.as_str()),
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Writes the changeable fields of `case` and returns it as stored.
pub async fn update(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    case: &RecoveryCase,
) -> Result<RecoveryCase> {
    sqlx::query!(
        r#"update recovery_case
           set status = $3, assignee = $4, resolve_time = $5, resolution_note = $6,
               follow_up_satisfaction = $7, acknowledge_time = $8
           where organisation_id = $1 and id = $2"#,
        organisation_id,
        case.id,
        case.status.as_str(),
        case.assignee,
        case.resolve_time,
        case.resolution_note,
        case.follow_up_satisfaction
            .and_then(|s| i16::try_from(s).ok()),
        case.acknowledge_time,
    )
    .execute(&mut *connection)
    .await?;
    get(connection, organisation_id, case.id, false)
        .await?
        .ok_or_else(|| Error::not_found("recovery case", case.id.to_string()))
}

/// Marks up to `limit` of the organisation's cases that are past their due
/// time, unresolved and not marked yet as overdue, and returns them, oldest
/// due first. Cases another server is marking are skipped, not waited for.
pub async fn mark_overdue(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    limit: i64,
) -> Result<Vec<Uuid>> {
    let ids = sqlx::query_scalar!(
        r#"update recovery_case c set overdue_time = now()
           from (select id from recovery_case
                 where organisation_id = $1 and status <> 'resolved'
                   and due_time < now() and overdue_time is null
                 order by due_time
                 limit $2
                 for update skip locked) due
           where c.organisation_id = $1 and c.id = due.id
           returning c.id"#,
        organisation_id,
        limit,
    )
    .fetch_all(connection)
    .await?;
    Ok(ids)
}

/// Moves up one step of the ladder every overdue, unacknowledged and
/// unresolved case whose next step is due: step n (0-based) is reached
/// `after_due[n]` seconds after the due time and names `targets[n]`.
/// Returns the cases with their new level and target.
pub async fn escalate(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    after_due: &[i64],
    targets: &[String],
    limit: i64,
) -> Result<Vec<(Uuid, i32, String)>> {
    let rows = sqlx::query!(
        r#"update recovery_case c
           set escalation_level = c.escalation_level + 1,
               escalated_to = ($3::text[])[c.escalation_level + 1],
               escalate_time = now()
           from (select id from recovery_case
                 where organisation_id = $1 and status <> 'resolved'
                   and acknowledge_time is null and overdue_time is not null
                   and escalation_level < cardinality($2::int8[])
                   and due_time + make_interval(
                           secs => ($2::int8[])[escalation_level + 1]) <= now()
                 order by due_time
                 limit $4
                 for update skip locked) due
           where c.organisation_id = $1 and c.id = due.id
           returning c.id, c.escalation_level, c.escalated_to"#,
        organisation_id,
        after_due,
        targets,
        limit,
    )
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.id, r.escalation_level, r.escalated_to))
        .collect())
}

/// Opens the deviation case of a journey, due `deadline_seconds` from now,
/// unless the journey has one; returns its id when it opened now.
pub async fn open_deviation(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    journey_id: &str,
    touchpoint_id: Uuid,
    reasons: &[String],
    deadline_seconds: i64,
) -> Result<Option<Uuid>> {
    let id = sqlx::query_scalar!(
        r#"insert into recovery_case
               (id, organisation_id, kind, touchpoint_id, journey_id, due_time,
                failure_reasons)
           values ($1, $2, 'deviation', $3, $4, now() + make_interval(secs => $5::float8), $6)
           on conflict (organisation_id, journey_id) where kind = 'deviation' do nothing
           returning id"#,
        Uuid::now_v7(),
        organisation_id,
        touchpoint_id,
        journey_id,
        deadline_seconds as f64,
        reasons,
    )
    .fetch_optional(connection)
    .await?;
    Ok(id)
}
