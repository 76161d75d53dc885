//! Organisations.

use sqlx::PgConnection;
use uuid::Uuid;

use super::decode;
use crate::{
    domain::organisation::{NewOrganisation, Organisation},
    error::Result,
};

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
    let row = sqlx::query!(
        r#"insert into organisation (id, display_name, kind, time_zone)
           values ($1, $2, $3, $4)
           returning create_time"#,
        id,
        new.display_name,
        new.kind.as_str(),
        new.time_zone,
    )
    .fetch_one(connection)
    .await?;
    Ok(Organisation {
        id,
        display_name: new.display_name.clone(),
        kind: new.kind,
        time_zone: new.time_zone.clone(),
        create_time: row.create_time,
    })
}

/// The organisation the transaction acts for, if it is `id`.
pub async fn get(connection: &mut PgConnection, id: Uuid) -> Result<Option<Organisation>> {
    let row = sqlx::query!(
        "select id, display_name, kind, time_zone, create_time from organisation where id = $1",
        id
    )
    .fetch_optional(connection)
    .await?;
    row.map(|row| {
        Ok(Organisation {
            id: row.id,
            display_name: row.display_name,
            kind: decode(&row.kind)?,
            time_zone: row.time_zone,
            create_time: row.create_time,
        })
    })
    .transpose()
}

/// Locks the organisation's row until the transaction ends, to serialise
/// changes that check an organisation-wide invariant.
pub async fn lock(connection: &mut PgConnection, id: Uuid) -> Result<()> {
    sqlx::query!("select id from organisation where id = $1 for update", id)
        .fetch_optional(connection)
        .await?;
    Ok(())
}
