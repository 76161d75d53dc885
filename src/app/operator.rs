//! Operator tasks, run from the command line rather than by a caller with a
//! key: creating organisations and their first key. The operator is
//! trusted as the database's owner is; no role is asked for.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{
    api_keys::{CreatedKey, insert_key},
    organisations::check_time_zone,
};
use crate::{
    domain::{
        api_key::NewApiKey,
        organisation::{DISPLAY_NAME_MAX_CHARS, NewOrganisation, Organisation},
        role::Role,
        text::required_line,
    },
    error::Result,
    store,
};

/// An organisation with the secret of its first admin key.
pub struct CreatedOrganisation {
    pub organisation: Organisation,
    pub admin_key: CreatedKey,
}

/// Creates an organisation and its first admin key in one transaction.
pub async fn create_organisation(
    pool: &PgPool,
    new: NewOrganisation,
) -> Result<CreatedOrganisation> {
    let id = Uuid::now_v7();
    let mut tx = store::begin_for(pool, id).await?;
    let created = insert_organisation(&mut tx, id, new, "first admin key").await?;
    tx.commit().await?;
    Ok(created)
}

/// Inserts an organisation and an admin key named `key_name`; the
/// transaction must act for `id`.
pub(crate) async fn insert_organisation(
    tx: &mut PgConnection,
    id: Uuid,
    new: NewOrganisation,
    key_name: &str,
) -> Result<CreatedOrganisation> {
    let new = NewOrganisation {
        display_name: required_line("name", &new.display_name, DISPLAY_NAME_MAX_CHARS)?,
        ..new
    };
    check_time_zone(tx, "time_zone", &new.time_zone).await?;
    let organisation = store::organisation::insert(tx, id, &new).await?;
    let first_key = NewApiKey {
        display_name: key_name.to_owned(),
        role: Role::Admin,
    };
    let admin_key = insert_key(tx, id, &first_key).await?;
    Ok(CreatedOrganisation {
        organisation,
        admin_key,
    })
}

/// Whether the organisation `id` exists.
pub async fn organisation_exists(pool: &PgPool, id: Uuid) -> Result<bool> {
    let mut tx = store::begin_for(pool, id).await?;
    let exists = store::organisation::get(&mut tx, id, false)
        .await?
        .is_some();
    tx.commit().await?;
    Ok(exists)
}
