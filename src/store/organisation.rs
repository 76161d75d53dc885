//! Organisations.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use sqlx::types::Json;

use super::decode;
use crate::{
    domain::{
        deviation::DeviationCheck,
        escalation::EscalationStep,
        organisation::{FollowUp, NewOrganisation, Organisation},
        pseudonym::KEY_LEN,
    },
    error::{Error, Result},
};

struct OrganisationRow {
    id: Uuid,
    display_name: String,
    kind: String,
    time_zone: String,
    failure_threshold: i32,
    recovery_deadline_seconds: i32,
    first_impression_seconds: i32,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    escalation_ladder: Json<Vec<EscalationStep>>,
    deviation_checks: Vec<String>,
    deviation_checks_start_time: Option<DateTime<Utc>>,
    journey_idle_seconds: i32,
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
            recovery_deadline_seconds: i64::from(row.recovery_deadline_seconds),
            first_impression_seconds: i64::from(row.first_impression_seconds),
            create_time: row.create_time,
            update_time: row.update_time,
            follow_up: FollowUp {
                escalation_ladder: row.escalation_ladder.0,
                deviation_checks: row
                    .deviation_checks
                    .iter()
                    .map(|c| decode::<DeviationCheck>(c))
                    .collect::<Result<_>>()?,
                deviation_checks_start_time: row.deviation_checks_start_time,
                journey_idle_seconds: i64::from(row.journey_idle_seconds),
            },
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
           returning id, display_name, kind, time_zone, failure_threshold, recovery_deadline_seconds,
                     first_impression_seconds, create_time, update_time,
                     escalation_ladder as "escalation_ladder: Json<Vec<EscalationStep>>",
                     deviation_checks, deviation_checks_start_time, journey_idle_seconds"#,
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
            r#"select id, display_name, kind, time_zone, failure_threshold, recovery_deadline_seconds,
                     first_impression_seconds, create_time, update_time,
                     escalation_ladder as "escalation_ladder: Json<Vec<EscalationStep>>",
                     deviation_checks, deviation_checks_start_time, journey_idle_seconds
               from organisation where id = $1
               for update"#,
            id
        )
        .fetch_optional(connection)
        .await?
    } else {
        sqlx::query_as!(
            OrganisationRow,
            r#"select id, display_name, kind, time_zone, failure_threshold, recovery_deadline_seconds,
                     first_impression_seconds, create_time, update_time,
                     escalation_ladder as "escalation_ladder: Json<Vec<EscalationStep>>",
                     deviation_checks, deviation_checks_start_time, journey_idle_seconds
               from organisation where id = $1"#,
            id
        )
        .fetch_optional(connection)
        .await?
    };
    row.map(TryInto::try_into).transpose()
}

/// What storing a batch of encounters needs of its organisation, read in
/// one statement.
pub struct ForIngest {
    pub organisation: Organisation,
    /// Bumped in every transaction that changes one of the organisation's
    /// touchpoints or standards.
    pub reference_version: i64,
    /// The key for customer pseudonyms, if one was made.
    pub customer_key: Option<Vec<u8>>,
}

/// The organisation the transaction acts for, if it is `id`, with what an
/// ingest needs besides.
pub async fn get_for_ingest(connection: &mut PgConnection, id: Uuid) -> Result<Option<ForIngest>> {
    let row = sqlx::query!(
        r#"select id, display_name, kind, time_zone, failure_threshold, recovery_deadline_seconds,
                  first_impression_seconds, create_time, update_time, reference_version,
                  customer_key,
                  escalation_ladder as "escalation_ladder: Json<Vec<EscalationStep>>",
                  deviation_checks, deviation_checks_start_time, journey_idle_seconds
           from organisation where id = $1"#,
        id
    )
    .fetch_optional(connection)
    .await?;
    row.map(|row| {
        let organisation = OrganisationRow {
            id: row.id,
            display_name: row.display_name,
            kind: row.kind,
            time_zone: row.time_zone,
            failure_threshold: row.failure_threshold,
            recovery_deadline_seconds: row.recovery_deadline_seconds,
            first_impression_seconds: row.first_impression_seconds,
            create_time: row.create_time,
            update_time: row.update_time,
            escalation_ladder: row.escalation_ladder,
            deviation_checks: row.deviation_checks,
            deviation_checks_start_time: row.deviation_checks_start_time,
            journey_idle_seconds: row.journey_idle_seconds,
        };
        Ok(ForIngest {
            organisation: organisation.try_into()?,
            reference_version: row.reference_version,
            customer_key: row.customer_key,
        })
    })
    .transpose()
}

/// Writes every mutable field of `organisation`.
pub async fn update(
    connection: &mut PgConnection,
    organisation: &Organisation,
) -> Result<Organisation> {
    let row = sqlx::query_as!(
        OrganisationRow,
        r#"update organisation
           set display_name = $2, kind = $3, time_zone = $4, failure_threshold = $5,
               recovery_deadline_seconds = $6, first_impression_seconds = $7,
               escalation_ladder = $8, journey_idle_seconds = $9,
               deviation_checks_start_time = case
                   when cardinality($10::text[]) = 0 then null
                   when cardinality(deviation_checks) = 0 then now()
                   else deviation_checks_start_time
               end,
               deviation_checks = $10
           where id = $1
           returning id, display_name, kind, time_zone, failure_threshold, recovery_deadline_seconds,
                     first_impression_seconds, create_time, update_time,
                     escalation_ladder as "escalation_ladder: Json<Vec<EscalationStep>>",
                     deviation_checks, deviation_checks_start_time, journey_idle_seconds"#,
        organisation.id,
        organisation.display_name,
        organisation.kind.as_str(),
        organisation.time_zone,
        organisation.failure_threshold,
        i32::try_from(organisation.recovery_deadline_seconds)
            .map_err(|_| Error::internal("recovery deadline out of range"))?,
        i32::try_from(organisation.first_impression_seconds)
            .map_err(|_| Error::internal("first impression window out of range"))?,
        Json(&organisation.follow_up.escalation_ladder) as _,
        i32::try_from(organisation.follow_up.journey_idle_seconds)
            .map_err(|_| Error::internal("journey idle time out of range"))?,
        &organisation
            .follow_up
            .deviation_checks
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect::<Vec<_>>(),
    )
    .fetch_one(connection)
    .await?;
    row.try_into()
}

/// Recomputes the organisation's daily and journey rollups from its
/// encounters, after a change of time zone moved its day boundaries, and
/// drops the changes waiting for them, which the rebuild counts. Ingests
/// running meanwhile are ordered around it by the row lock `get(.., true)`
/// took: their foreign-key checks share-lock the same row. Their changes
/// wait for the rollups, which are then applied in the new zone.
pub async fn rebuild_rollups(connection: &mut PgConnection, id: Uuid) -> Result<()> {
    sqlx::query("select verdad_rebuild_rollups($1)")
        .bind(id)
        .execute(connection)
        .await?;
    Ok(())
}

/// Locks the organisation's row until the transaction ends, to serialise
/// changes that check an organisation-wide invariant.
pub async fn lock(connection: &mut PgConnection, id: Uuid) -> Result<()> {
    sqlx::query!("select id from organisation where id = $1 for update", id)
        .fetch_optional(connection)
        .await?;
    Ok(())
}

/// The organisation's key for customer pseudonyms, made from the operating
/// system's randomness the first time it is needed. Of two transactions
/// that race to make it, the second waits for the first and takes its key.
pub async fn customer_key(connection: &mut PgConnection, id: Uuid) -> Result<Vec<u8>> {
    // Read first: the key is made once, and read on every ingest after.
    if let Some(key) = existing_customer_key(&mut *connection, id).await? {
        return Ok(key);
    }
    let mut fresh = [0u8; KEY_LEN];
    getrandom::fill(&mut fresh)?;
    let made = sqlx::query_scalar!(
        r#"update organisation set customer_key = $2
           where id = $1 and customer_key is null
           returning customer_key as "key!""#,
        id,
        &fresh[..],
    )
    .fetch_optional(&mut *connection)
    .await?;
    if let Some(key) = made {
        return Ok(key);
    }
    existing_customer_key(connection, id)
        .await?
        .ok_or_else(|| Error::not_found("organisation", id.to_string()))
}

/// The organisation's key for customer pseudonyms, if one was ever made: an
/// organisation without one has stored no customer reference.
pub async fn existing_customer_key(
    connection: &mut PgConnection,
    id: Uuid,
) -> Result<Option<Vec<u8>>> {
    let key = sqlx::query_scalar!("select customer_key from organisation where id = $1", id)
        .fetch_optional(connection)
        .await?;
    Ok(key.flatten())
}

/// Every organisation's follow-up settings, across tenants: what the sweep
/// of overdue cases and idle journeys goes through.
pub async fn follow_ups(connection: &mut PgConnection) -> Result<Vec<(Uuid, FollowUp)>> {
    sqlx::query("select set_config('verdad.sweep', 'on', true)")
        .execute(&mut *connection)
        .await?;
    let rows = sqlx::query!(
        r#"select id, escalation_ladder as "escalation_ladder: Json<Vec<EscalationStep>>",
                  deviation_checks, deviation_checks_start_time, journey_idle_seconds
           from organisation
           order by id"#
    )
    .fetch_all(&mut *connection)
    .await?;
    sqlx::query("select set_config('verdad.sweep', '', true)")
        .execute(&mut *connection)
        .await?;
    rows.into_iter()
        .map(|row| {
            Ok((
                row.id,
                FollowUp {
                    escalation_ladder: row.escalation_ladder.0,
                    deviation_checks: row
                        .deviation_checks
                        .iter()
                        .map(|c| decode::<DeviationCheck>(c))
                        .collect::<Result<_>>()?,
                    deviation_checks_start_time: row.deviation_checks_start_time,
                    journey_idle_seconds: i64::from(row.journey_idle_seconds),
                },
            ))
        })
        .collect()
}
