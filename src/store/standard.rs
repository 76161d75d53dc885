//! Standards.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{decode, violated_unique};
use crate::{
    domain::{
        code::Lookup,
        standard::{NewStandard, Rule, Standard, StandardFilter, StandardRevision, TouchpointRef},
    },
    error::{Error, Result},
};

struct StandardRow {
    id: Uuid,
    revision_id: Uuid,
    touchpoint_id: Option<Uuid>,
    touchpoint_code: Option<String>,
    code: String,
    title: String,
    element: String,
    severity: String,
    guidance: String,
    rule_kind: String,
    metric_field: Option<String>,
    comparison: Option<String>,
    threshold: Option<f64>,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    archive_time: Option<DateTime<Utc>>,
}

impl TryFrom<StandardRow> for Standard {
    type Error = Error;

    fn try_from(row: StandardRow) -> Result<Self> {
        let rule = rule_from_columns(
            row.id,
            &row.rule_kind,
            row.metric_field,
            row.comparison,
            row.threshold,
        )?;
        let touchpoint = match (row.touchpoint_id, row.touchpoint_code) {
            (Some(id), Some(code)) => Some(TouchpointRef { id, code }),
            (None, _) => None,
            (Some(id), None) => {
                return Err(Error::internal(format!(
                    "standard {} points at touchpoint {id}, which is not visible",
                    row.id
                )));
            }
        };
        Ok(Standard {
            id: row.id,
            revision_id: row.revision_id,
            code: row.code,
            title: row.title,
            touchpoint,
            element: decode(&row.element)?,
            severity: decode(&row.severity)?,
            guidance: row.guidance,
            rule,
            create_time: row.create_time,
            update_time: row.update_time,
            archive_time: row.archive_time,
        })
    }
}

/// The rule stored in the columns of standard (or revision) `id`.
fn rule_from_columns(
    id: Uuid,
    kind: &str,
    field: Option<String>,
    comparison: Option<String>,
    threshold: Option<f64>,
) -> Result<Rule> {
    match (kind, field, comparison, threshold) {
        ("observed", None, None, None) => Ok(Rule::Observed),
        ("metric", Some(field), Some(comparison), Some(threshold)) => Ok(Rule::Metric {
            field: decode(&field)?,
            comparison: decode(&comparison)?,
            threshold,
        }),
        (kind, ..) => Err(Error::internal(format!(
            "standard {id} has an inconsistent {kind} rule in the database"
        ))),
    }
}

/// The columns a rule is stored in: kind, field, comparison, threshold.
fn rule_columns(
    rule: &Rule,
) -> (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<f64>,
) {
    match *rule {
        Rule::Metric {
            field,
            comparison,
            threshold,
        } => (
            "metric",
            Some(field.as_str()),
            Some(comparison.as_str()),
            Some(threshold),
        ),
        Rule::Observed => ("observed", None, None, None),
    }
}

fn code_taken(error: sqlx::Error, code: &str) -> Error {
    if violated_unique(&error) == Some("standard_code_key") {
        Error::AlreadyExists {
            resource: "standard",
            field: "code",
            value: code.to_owned(),
        }
    } else {
        error.into()
    }
}

/// Inserts a standard at the touchpoint `touchpoint_id` (found by the
/// caller; `None` for every touchpoint) and returns it.
pub async fn insert(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    new: &NewStandard,
    touchpoint_id: Option<Uuid>,
) -> Result<Standard> {
    let (kind, field, comparison, threshold) = rule_columns(&new.rule);
    let id = Uuid::now_v7();
    let revision_id = Uuid::now_v7();
    sqlx::query!(
        r#"insert into standard
               (id, organisation_id, touchpoint_id, code, title, element, severity, guidance,
                rule_kind, metric_field, comparison, threshold, revision_id)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"#,
        id,
        organisation_id,
        touchpoint_id,
        new.code,
        new.title,
        new.element.as_str(),
        new.severity.as_str(),
        new.guidance,
        kind,
        field,
        comparison,
        threshold,
        revision_id,
    )
    .execute(&mut *connection)
    .await
    .map_err(|e| code_taken(e, &new.code))?;
    insert_revision(connection, organisation_id, id, revision_id).await?;
    get(connection, organisation_id, id, false)
        .await?
        .ok_or_else(|| Error::internal(format!("standard {id} vanished after its insert")))
}

/// A standard by id; with `lock`, locked until the transaction ends.
pub async fn get(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    id: Uuid,
    lock: bool,
) -> Result<Option<Standard>> {
    let row = if lock {
        sqlx::query_as!(
            StandardRow,
            r#"select s.id, s.revision_id, s.touchpoint_id, t.code as "touchpoint_code?", s.code, s.title,
                      s.element, s.severity, s.guidance, s.rule_kind, s.metric_field,
                      s.comparison, s.threshold, s.create_time, s.update_time, s.archive_time
               from standard s
               left join touchpoint t
                 on t.organisation_id = s.organisation_id and t.id = s.touchpoint_id
               where s.organisation_id = $1 and s.id = $2
               for update of s"#,
            organisation_id,
            id,
        )
        .fetch_optional(connection)
        .await?
    } else {
        sqlx::query_as!(
            StandardRow,
            r#"select s.id, s.revision_id, s.touchpoint_id, t.code as "touchpoint_code?", s.code, s.title,
                      s.element, s.severity, s.guidance, s.rule_kind, s.metric_field,
                      s.comparison, s.threshold, s.create_time, s.update_time, s.archive_time
               from standard s
               left join touchpoint t
                 on t.organisation_id = s.organisation_id and t.id = s.touchpoint_id
               where s.organisation_id = $1 and s.id = $2"#,
            organisation_id,
            id,
        )
        .fetch_optional(connection)
        .await?
    };
    row.map(TryInto::try_into).transpose()
}

/// A standard by code, compared regardless of case.
pub async fn get_by_code(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    code: &str,
) -> Result<Option<Standard>> {
    let row = sqlx::query_as!(
        StandardRow,
        r#"select s.id, s.revision_id, s.touchpoint_id, t.code as "touchpoint_code?", s.code, s.title,
                  s.element, s.severity, s.guidance, s.rule_kind, s.metric_field,
                  s.comparison, s.threshold, s.create_time, s.update_time, s.archive_time
           from standard s
           left join touchpoint t
             on t.organisation_id = s.organisation_id and t.id = s.touchpoint_id
           where s.organisation_id = $1 and lower(s.code) = lower($2)"#,
        organisation_id,
        code,
    )
    .fetch_optional(connection)
    .await?;
    row.map(TryInto::try_into).transpose()
}

/// A standard by id or by code.
pub async fn find(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    lookup: &Lookup,
) -> Result<Option<Standard>> {
    match lookup {
        Lookup::Id(id) => get(connection, organisation_id, *id, false).await,
        Lookup::Code(code) => get_by_code(connection, organisation_id, code).await,
    }
}

/// A page of standards in creation order (ids are UUIDv7), after `after`.
pub async fn list(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    filter: &StandardFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Standard>> {
    let rows = sqlx::query_as!(
        StandardRow,
        r#"select s.id, s.revision_id, s.touchpoint_id, t.code as "touchpoint_code?", s.code, s.title,
                  s.element, s.severity, s.guidance, s.rule_kind, s.metric_field,
                  s.comparison, s.threshold, s.create_time, s.update_time, s.archive_time
           from standard s
           left join touchpoint t
             on t.organisation_id = s.organisation_id and t.id = s.touchpoint_id
           where s.organisation_id = $1
             and ($2::uuid is null or s.touchpoint_id = $2)
             and (not $3 or s.touchpoint_id is null)
             and ($4::text is null or s.element = $4)
             and ($5::boolean is null or (s.archive_time is null) = $5)
             and ($6::uuid is null or s.id > $6)
           order by s.id
           limit $7"#,
        organisation_id,
        filter.touchpoint_id,
        filter.organisation_wide,
        filter.element.map(|e| e.as_str()),
        filter.active,
        after,
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Every active standard of the organisation, in creation order.
pub async fn list_active(
    connection: &mut PgConnection,
    organisation_id: Uuid,
) -> Result<Vec<Standard>> {
    let rows = sqlx::query_as!(
        StandardRow,
        r#"select s.id, s.revision_id, s.touchpoint_id, t.code as "touchpoint_code?", s.code, s.title,
                  s.element, s.severity, s.guidance, s.rule_kind, s.metric_field,
                  s.comparison, s.threshold, s.create_time, s.update_time, s.archive_time
           from standard s
           left join touchpoint t
             on t.organisation_id = s.organisation_id and t.id = s.touchpoint_id
           where s.organisation_id = $1 and s.archive_time is null
           order by s.id"#,
        organisation_id,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Records the rule and severity `standard_id` now has as revision
/// `revision_id`.
async fn insert_revision(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    standard_id: Uuid,
    revision_id: Uuid,
) -> Result<()> {
    sqlx::query!(
        r#"insert into standard_revision
               (id, organisation_id, standard_id, code, severity, rule_kind, metric_field,
                comparison, threshold)
           select $3, organisation_id, id, code, severity, rule_kind, metric_field,
                  comparison, threshold
           from standard where organisation_id = $1 and id = $2"#,
        organisation_id,
        standard_id,
        revision_id,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Writes every mutable field of `standard` and returns it as stored. A
/// change of rule or severity starts a new revision; encounters evaluated
/// before keep pointing at the old one.
pub async fn update(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    standard: &Standard,
) -> Result<Standard> {
    let before = get(connection, organisation_id, standard.id, false)
        .await?
        .ok_or_else(|| Error::not_found("standard", standard.id.to_string()))?;
    let (kind, field, comparison, threshold) = rule_columns(&standard.rule);
    sqlx::query!(
        r#"update standard
           set touchpoint_id = $3, title = $4, element = $5, severity = $6, guidance = $7,
               rule_kind = $8, metric_field = $9, comparison = $10, threshold = $11
           where organisation_id = $1 and id = $2"#,
        organisation_id,
        standard.id,
        standard.touchpoint.as_ref().map(|t| t.id),
        standard.title,
        standard.element.as_str(),
        standard.severity.as_str(),
        standard.guidance,
        kind,
        field,
        comparison,
        threshold,
    )
    .execute(&mut *connection)
    .await?;
    if before.rule != standard.rule || before.severity != standard.severity {
        let revision_id = Uuid::now_v7();
        sqlx::query!(
            "update standard set revision_id = $3 where organisation_id = $1 and id = $2",
            organisation_id,
            standard.id,
            revision_id,
        )
        .execute(&mut *connection)
        .await?;
        insert_revision(connection, organisation_id, standard.id, revision_id).await?;
    }
    get(connection, organisation_id, standard.id, false)
        .await?
        .ok_or_else(|| Error::not_found("standard", standard.id.to_string()))
}

/// Archives (`archived`) or unarchives a standard.
pub async fn set_archived(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    id: Uuid,
    archived: bool,
) -> Result<Standard> {
    sqlx::query!(
        r#"update standard
           set archive_time = case when $3 then now() end
           where organisation_id = $1 and id = $2"#,
        organisation_id,
        id,
        archived,
    )
    .execute(&mut *connection)
    .await?;
    get(connection, organisation_id, id, false)
        .await?
        .ok_or_else(|| Error::not_found("standard", id.to_string()))
}

struct RevisionRow {
    id: Uuid,
    standard_id: Uuid,
    code: String,
    severity: String,
    rule_kind: String,
    metric_field: Option<String>,
    comparison: Option<String>,
    threshold: Option<f64>,
}

/// The revisions with the given ids, by id.
pub async fn revisions(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, StandardRevision>> {
    let rows = sqlx::query_as!(
        RevisionRow,
        r#"select id, standard_id, code, severity, rule_kind, metric_field, comparison,
                  threshold
           from standard_revision
           where organisation_id = $1 and id = any($2)"#,
        organisation_id,
        ids,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter()
        .map(|row| {
            let rule = rule_from_columns(
                row.id,
                &row.rule_kind,
                row.metric_field,
                row.comparison,
                row.threshold,
            )?;
            Ok((
                row.id,
                StandardRevision {
                    id: row.id,
                    standard_id: row.standard_id,
                    code: row.code,
                    severity: decode(&row.severity)?,
                    rule,
                },
            ))
        })
        .collect()
}
