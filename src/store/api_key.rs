//! API keys.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::decode;
use crate::{
    domain::{
        api_key::{ApiKey, GeneratedSecret, NewApiKey, Principal},
        role::Role,
    },
    error::Result,
};

struct ApiKeyRow {
    id: Uuid,
    display_name: String,
    role: String,
    secret_prefix: String,
    create_time: DateTime<Utc>,
    revoke_time: Option<DateTime<Utc>>,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = crate::error::Error;

    fn try_from(row: ApiKeyRow) -> Result<Self> {
        Ok(ApiKey {
            id: row.id,
            display_name: row.display_name,
            role: decode(&row.role)?,
            secret_prefix: row.secret_prefix,
            create_time: row.create_time,
            revoke_time: row.revoke_time,
        })
    }
}

/// Stores a new key of `organisation_id`; only the hash of its secret is kept.
pub async fn insert(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    new: &NewApiKey,
    secret: &GeneratedSecret,
) -> Result<ApiKey> {
    let row = sqlx::query_as!(
        ApiKeyRow,
        r#"insert into api_key (id, organisation_id, display_name, role, secret_prefix, secret_hash)
           values ($1, $2, $3, $4, $5, $6)
           returning id, display_name, role, secret_prefix, create_time, revoke_time"#,
        Uuid::now_v7(),
        organisation_id,
        new.display_name,
        new.role.as_str(),
        secret.secret_prefix,
        &secret.secret_hash[..],
    )
    .fetch_one(connection)
    .await?;
    row.try_into()
}

/// A page of the organisation's keys, newest first, starting after `after`.
pub async fn list(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    show_revoked: bool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ApiKey>> {
    let rows = sqlx::query_as!(
        ApiKeyRow,
        r#"select id, display_name, role, secret_prefix, create_time, revoke_time
           from api_key
           where organisation_id = $1
             and ($2 or revoke_time is null)
             and ($3::uuid is null or id < $3)
           order by id desc
           limit $4"#,
        organisation_id,
        show_revoked,
        after,
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// One key of the organisation, locked for the rest of the transaction.
pub async fn get_for_update(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    id: Uuid,
) -> Result<Option<ApiKey>> {
    let row = sqlx::query_as!(
        ApiKeyRow,
        r#"select id, display_name, role, secret_prefix, create_time, revoke_time
           from api_key
           where organisation_id = $1 and id = $2
           for update"#,
        organisation_id,
        id,
    )
    .fetch_optional(connection)
    .await?;
    row.map(TryInto::try_into).transpose()
}

/// Whether the key is stored and not revoked.
pub async fn is_active(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    id: Uuid,
) -> Result<bool> {
    let active = sqlx::query_scalar!(
        r#"select exists (
               select 1 from api_key
               where organisation_id = $1 and id = $2 and revoke_time is null
           ) as "active!""#,
        organisation_id,
        id,
    )
    .fetch_one(connection)
    .await?;
    Ok(active)
}

/// Marks a key revoked now.
pub async fn revoke(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    id: Uuid,
) -> Result<ApiKey> {
    let row = sqlx::query_as!(
        ApiKeyRow,
        r#"update api_key set revoke_time = now()
           where organisation_id = $1 and id = $2
           returning id, display_name, role, secret_prefix, create_time, revoke_time"#,
        organisation_id,
        id,
    )
    .fetch_one(connection)
    .await?;
    row.try_into()
}

/// Revokes the organisation's valid keys with this display name, leaving
/// `except` alone; returns how many.
pub async fn revoke_named(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    display_name: &str,
    except: Uuid,
) -> Result<u64> {
    let done = sqlx::query!(
        r#"update api_key set revoke_time = now()
           where organisation_id = $1 and display_name = $2 and id <> $3 and revoke_time is null"#,
        organisation_id,
        display_name,
        except,
    )
    .execute(connection)
    .await?;
    Ok(done.rows_affected())
}

/// How many valid admin keys the organisation has. Call with the
/// organisation row locked, so that two revocations cannot both see the
/// other's key as the spare one.
pub async fn count_valid_admins(
    connection: &mut PgConnection,
    organisation_id: Uuid,
) -> Result<i64> {
    let count = sqlx::query_scalar!(
        r#"select count(*) as "count!" from api_key
           where organisation_id = $1 and role = $2 and revoke_time is null"#,
        organisation_id,
        Role::Admin.as_str(),
    )
    .fetch_one(connection)
    .await?;
    Ok(count)
}

/// The caller behind a secret's hash, if the key exists and is not revoked.
/// Runs before the organisation is known: the `api_key_by_secret` policy lets
/// a transaction see exactly the row whose hash it names.
pub async fn authenticate(pool: &PgPool, secret_hash: &[u8; 32]) -> Result<Option<Principal>> {
    let row = sqlx::query!(
        r#"select key_id as "key_id!", organisation_id as "organisation_id!", role as "role!"
           from verdad_authenticate($1)"#,
        &secret_hash[..]
    )
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(Principal {
            key_id: row.key_id,
            organisation_id: row.organisation_id,
            role: decode(&row.role)?,
        })
    })
    .transpose()
}
