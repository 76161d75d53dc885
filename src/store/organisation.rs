//! Organisations.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::decode;
use crate::{
    domain::organisation::{NewOrganisation, Organisation},
    error::{Error, Result},
};

struct OrganisationRow {
    id: Uuid,
    display_name: String,
    kind: String,
    time_zone: String,
    failure_threshold: i32,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
}

impl TryFrom<OrganisationRow> for Organisation {
    type Error = Error;

    fn try_from(row: OrganisationRow) -> Result<Self> {
        Ok(Organisation {
            id: row.id,
            display_name: row.display_name,
            kind: decode(&row.kind)?,
            time_zone: row.time_zone,
            failure_threshold: row.failure_threshold,
            create_time: row.create_time,
            update_time: row.update_time,
        })
    }
}

/// Whether PostgreSQL knows `name` as a time zone.
pub async fn time_zone_exists(connection: &mut PgConnection, name: &str) -> Result<bool> {
    let exists = sqlx::query_scalar!(
        r#"select exists (select 1 from pg_timezone_names where name = $1) as "exists!""#,
        name
    )
    .fetch_one(connection)
    .await?;
    Ok(exists)
}

/// Inserts an organisation. The transaction must act for `id` already.
pub async fn insert(
    connection: &mut PgConnection,
    id: Uuid,
    new: &NewOrganisation,
) -> Result<Organisation> {
    let row = sqlx::query_as!(
        OrganisationRow,
        r#"insert into organisation (id, display_name, kind, time_zone)
           values ($1, $2, $3, $4)
           returning id, display_name, kind, time_zone, failure_threshold, create_time,
                     update_time"#,
        id,
        new.display_name,
        new.kind.as_str(),
        new.time_zone,
    )
    .fetch_one(connection)
    .await?;
    row.try_into()
}

/// The organisation the transaction acts for, if it is `id`; with `lock`,
/// locked until the transaction ends, to serialise changes that check an
/// organisation-wide invariant.
pub async fn get(
    connection: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<Organisation>> {
    let row = if lock {
        sqlx::query_as!(
            OrganisationRow,
            r#"select id, display_name, kind, time_zone, failure_threshold, create_time,
                      update_time
               from organisation where id = $1
               for update"#,
            id
        )
        .fetch_optional(connection)
        .await?
    } else {
        sqlx::query_as!(
            OrganisationRow,
            r#"select id, display_name, kind, time_zone, failure_threshold, create_time,
                      update_time
               from organisation where id = $1"#,
            id
        )
        .fetch_optional(connection)
        .await?
    };
    row.map(TryInto::try_into).transpose()
}

/// Writes every mutable field of `organisation`.
pub async fn update(
    connection: &mut PgConnection,
    organisation: &Organisation,
) -> Result<Organisation> {
    let row = sqlx::query_as!(
        OrganisationRow,
        r#"update organisation
           set display_name = $2, kind = $3, time_zone = $4, failure_threshold = $5
           where id = $1
           returning id, display_name, kind, time_zone, failure_threshold, create_time,
                     update_time"#,
        organisation.id,
        organisation.display_name,
        organisation.kind.as_str(),
        organisation.time_zone,
        organisation.failure_threshold,
    )
    .fetch_one(connection)
    .await?;
    row.try_into()
}

/// Locks the organisation's row until the transaction ends, to serialise
/// changes that check an organisation-wide invariant.
pub async fn lock(connection: &mut PgConnection, id: Uuid) -> Result<()> {
    sqlx::query!("select id from organisation where id = $1 for update", id)
        .fetch_optional(connection)
        .await?;
    Ok(())
}
