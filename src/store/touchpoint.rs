//! Touchpoints.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{decode, violated_unique};
use crate::{
    domain::{
        code::Lookup,
        touchpoint::{NewTouchpoint, Touchpoint, TouchpointFilter},
    },
    error::{Error, Result},
};

struct TouchpointRow {
    id: Uuid,
    code: String,
    display_name: String,
    description: String,
    stage: String,
    channel: String,
    is_key: bool,
    occurrence: String,
    cycle_position: i32,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    archive_time: Option<DateTime<Utc>>,
}

impl TryFrom<TouchpointRow> for Touchpoint {
    type Error = Error;

    fn try_from(row: TouchpointRow) -> Result<Self> {
        Ok(Touchpoint {
            id: row.id,
            code: row.code,
            display_name: row.display_name,
            description: row.description,
            stage: decode(&row.stage)?,
            channel: decode(&row.channel)?,
            key: row.is_key,
            occurrence: decode(&row.occurrence)?,
            cycle_position: row.cycle_position,
            create_time: row.create_time,
            update_time: row.update_time,
            archive_time: row.archive_time,
        })
    }
}

fn code_taken(error: sqlx::Error, code: &str) -> Error {
    if violated_unique(&error) == Some("touchpoint_code_key") {
        Error::AlreadyExists {
            resource: "touchpoint",
            field: "code",
            value: code.to_owned(),
        }
    } else {
        error.into()
    }
}

pub async fn insert(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    new: &NewTouchpoint,
) -> Result<Touchpoint> {
    let row = sqlx::query_as!(
        TouchpointRow,
        r#"insert into touchpoint
               (id, organisation_id, code, display_name, description, stage, channel,
                is_key, occurrence, cycle_position)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           returning id, code, display_name, description, stage, channel, is_key,
                     occurrence, cycle_position, create_time, update_time, archive_time"#,
        Uuid::now_v7(),
        organisation_id,
        new.code,
        new.display_name,
        new.description,
        new.stage.as_str(),
        new.channel.as_str(),
        new.key,
        new.occurrence.as_str(),
        new.cycle_position,
    )
    .fetch_one(connection)
    .await
    .map_err(|e| code_taken(e, &new.code))?;
    row.try_into()
}

/// A touchpoint by id; with `lock`, locked until the transaction ends.
pub async fn get(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    id: Uuid,
    lock: bool,
) -> Result<Option<Touchpoint>> {
    let row = if lock {
        sqlx::query_as!(
            TouchpointRow,
            r#"select id, code, display_name, description, stage, channel, is_key,
                      occurrence, cycle_position, create_time, update_time, archive_time
               from touchpoint where organisation_id = $1 and id = $2
               for update"#,
            organisation_id,
            id,
        )
        .fetch_optional(connection)
        .await?
    } else {
        sqlx::query_as!(
            TouchpointRow,
            r#"select id, code, display_name, description, stage, channel, is_key,
                      occurrence, cycle_position, create_time, update_time, archive_time
               from touchpoint where organisation_id = $1 and id = $2"#,
            organisation_id,
            id,
        )
        .fetch_optional(connection)
        .await?
    };
    row.map(TryInto::try_into).transpose()
}

/// A touchpoint by code, compared regardless of case.
pub async fn get_by_code(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    code: &str,
) -> Result<Option<Touchpoint>> {
    let row = sqlx::query_as!(
        TouchpointRow,
        r#"select id, code, display_name, description, stage, channel, is_key,
                  occurrence, cycle_position, create_time, update_time, archive_time
           from touchpoint where organisation_id = $1 and lower(code) = lower($2)"#,
        organisation_id,
        code,
    )
    .fetch_optional(connection)
    .await?;
    row.map(TryInto::try_into).transpose()
}

/// A touchpoint by id or by code.
pub async fn find(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    lookup: &Lookup,
) -> Result<Option<Touchpoint>> {
    match lookup {
        Lookup::Id(id) => get(connection, organisation_id, *id, false).await,
        Lookup::Code(code) => get_by_code(connection, organisation_id, code).await,
    }
}

/// The ids of the touchpoints `lookups` name, in their order; `Err` with
/// the first lookup the organisation has no touchpoint for.
pub async fn resolve(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    lookups: &[Lookup],
) -> Result<std::result::Result<Vec<Uuid>, Lookup>> {
    let (ids, codes): (Vec<Option<Uuid>>, Vec<Option<&str>>) = lookups
        .iter()
        .map(|lookup| match lookup {
            Lookup::Id(id) => (Some(*id), None),
            Lookup::Code(code) => (None, Some(code.as_str())),
        })
        .unzip();
    let found: Vec<Option<Uuid>> = sqlx::query_scalar(
        "select t.id
         from unnest($2::uuid[], $3::text[]) with ordinality as l(id, code, ord)
         left join touchpoint t
           on t.organisation_id = $1
          and (t.id = l.id or lower(t.code) = lower(l.code))
         order by l.ord",
    )
    .bind(organisation_id)
    .bind(&ids)
    .bind(&codes)
    .fetch_all(connection)
    .await?;
    Ok(found
        .into_iter()
        .zip(lookups)
        .map(|(id, lookup)| id.ok_or_else(|| lookup.clone()))
        .collect())
}

/// A page of touchpoints in creation order (ids are UUIDv7), after `after`.
pub async fn list(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    filter: &TouchpointFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Touchpoint>> {
    let rows = sqlx::query_as!(
        TouchpointRow,
        r#"select id, code, display_name, description, stage, channel, is_key,
                  occurrence, cycle_position, create_time, update_time, archive_time
           from touchpoint
           where organisation_id = $1
             and ($2::text is null or stage = $2)
             and ($3::text is null or channel = $3)
             and ($4::boolean is null or is_key = $4)
             and ($5::text is null or occurrence = $5)
             and ($6 or archive_time is null)
             and ($7::uuid is null or id > $7)
           order by id
           limit $8"#,
        organisation_id,
        filter.stage.map(|s| s.as_str()),
        filter.channel.map(|c| c.as_str()),
        filter.key,
        filter.occurrence.map(|o| o.as_str()),
        filter.show_archived,
        after,
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Writes every mutable field of `touchpoint`.
pub async fn update(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    touchpoint: &Touchpoint,
) -> Result<Touchpoint> {
    let row = sqlx::query_as!(
        TouchpointRow,
        r#"update touchpoint
           set display_name = $3, description = $4, stage = $5, channel = $6,
               is_key = $7, occurrence = $8, cycle_position = $9
           where organisation_id = $1 and id = $2
           returning id, code, display_name, description, stage, channel, is_key,
                     occurrence, cycle_position, create_time, update_time, archive_time"#,
        organisation_id,
        touchpoint.id,
        touchpoint.display_name,
        touchpoint.description,
        touchpoint.stage.as_str(),
        touchpoint.channel.as_str(),
        touchpoint.key,
        touchpoint.occurrence.as_str(),
        touchpoint.cycle_position,
    )
    .fetch_one(connection)
    .await?;
    row.try_into()
}

/// Archives (`archived`) or unarchives a touchpoint.
pub async fn set_archived(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    id: Uuid,
    archived: bool,
) -> Result<Touchpoint> {
    let row = sqlx::query_as!(
        TouchpointRow,
        r#"update touchpoint
           set archive_time = case when $3 then now() end
           where organisation_id = $1 and id = $2
           returning id, code, display_name, description, stage, channel, is_key,
                     occurrence, cycle_position, create_time, update_time, archive_time"#,
        organisation_id,
        id,
        archived,
    )
    .fetch_one(connection)
    .await?;
    row.try_into()
}

/// Every touchpoint of the organisation that is not archived, in creation
/// order.
pub async fn list_active(
    connection: &mut PgConnection,
    organisation_id: Uuid,
) -> Result<Vec<Touchpoint>> {
    let mut touchpoints = list_all(connection, organisation_id).await?;
    touchpoints.retain(|t| !t.is_archived());
    Ok(touchpoints)
}

/// Every touchpoint of the organisation, archived ones included, in
/// creation order.
pub async fn list_all(
    connection: &mut PgConnection,
    organisation_id: Uuid,
) -> Result<Vec<Touchpoint>> {
    let rows = sqlx::query_as!(
        TouchpointRow,
        r#"select id, code, display_name, description, stage, channel, is_key,
                  occurrence, cycle_position, create_time, update_time, archive_time
           from touchpoint
           where organisation_id = $1
           order by id"#,
        organisation_id,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}
