//! Recovery cases.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::decode;
use crate::{
    domain::{
        recovery::{CaseFilter, RecoveryCase},
        standard::TouchpointRef,
    },
    error::{Error, Result},
};

/// A case to open for a failed encounter.
pub struct NewCase<'a> {
    pub encounter_id: Uuid,
    pub touchpoint_id: Uuid,
    pub journey_id: &'a str,
    pub failure_reasons: Vec<String>,
    pub original_satisfaction: Option<i32>,
}

/// Opens one case per encounter, due `deadline_seconds` from now, unless the
/// encounter has one already; returns how many were opened.
pub async fn open(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    cases: &[NewCase<'_>],
    deadline_seconds: i64,
) -> Result<u64> {
    if cases.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = cases.iter().map(|_| Uuid::now_v7()).collect();
    let encounters: Vec<Uuid> = cases.iter().map(|c| c.encounter_id).collect();
    let touchpoints: Vec<Uuid> = cases.iter().map(|c| c.touchpoint_id).collect();
    let journeys: Vec<&str> = cases.iter().map(|c| c.journey_id).collect();
    // Reasons never hold a line break (they are built from codes and
    // numbers), so each case's list travels as one line-separated text.
    let reasons: Vec<String> = cases.iter().map(|c| c.failure_reasons.join("\n")).collect();
    let satisfactions: Vec<Option<i16>> = cases
        .iter()
        .map(|c| c.original_satisfaction.and_then(|s| i16::try_from(s).ok()))
        .collect();
    let opened = sqlx::query(
        r#"insert into recovery_case
               (id, organisation_id, encounter_id, touchpoint_id, journey_id, due_time,
                failure_reasons, original_satisfaction)
           select u.id, $1, u.encounter_id, u.touchpoint_id, u.journey_id,
                  now() + make_interval(secs => $2), string_to_array(u.reasons, E'\n'),
                  u.satisfaction
           from unnest($3::uuid[], $4::uuid[], $5::uuid[], $6::text[], $7::text[], $8::int2[])
                as u(id, encounter_id, touchpoint_id, journey_id, reasons, satisfaction)
           on conflict (encounter_id) do nothing"#,
    )
    .bind(organisation_id)
    .bind(deadline_seconds as f64)
    .bind(&ids)
    .bind(&encounters)
    .bind(&touchpoints)
    .bind(&journeys)
    .bind(&reasons)
    .bind(&satisfactions)
    .execute(connection)
    .await?
    .rows_affected();
    Ok(opened)
}

struct CaseRow {
    id: Uuid,
    encounter_id: Uuid,
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
}

impl TryFrom<CaseRow> for RecoveryCase {
    type Error = Error;

    fn try_from(row: CaseRow) -> Result<Self> {
        Ok(RecoveryCase {
            id: row.id,
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
                      c.original_satisfaction, c.follow_up_satisfaction, c.update_time
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
                      c.original_satisfaction, c.follow_up_satisfaction, c.update_time
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
                      c.original_satisfaction, c.follow_up_satisfaction, c.update_time
               from recovery_case c
               join touchpoint t
                 on t.organisation_id = c.organisation_id and t.id = c.touchpoint_id
               where c.organisation_id = $1
             and ($2::text is null or c.status = $2)
             and (not $3 or (c.status <> 'resolved' and c.due_time < now()))
             and ($4::uuid is null or c.touchpoint_id = $4)
             and ($5::uuid is null or c.id < $5)
           order by c.id desc
           limit $6"#,
        organisation_id,
        filter.status.map(|s| s.as_str()),
        filter.overdue_only,
        filter.touchpoint_id,
        after,
        limit,
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
               follow_up_satisfaction = $7
           where organisation_id = $1 and id = $2"#,
        organisation_id,
        case.id,
        case.status.as_str(),
        case.assignee,
        case.resolve_time,
        case.resolution_note,
        case.follow_up_satisfaction
            .and_then(|s| i16::try_from(s).ok()),
    )
    .execute(&mut *connection)
    .await?;
    get(connection, organisation_id, case.id, false)
        .await?
        .ok_or_else(|| Error::not_found("recovery case", case.id.to_string()))
}
