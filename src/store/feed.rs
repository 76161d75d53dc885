//! Feeds, the control ids they settled and the messages they refused.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, types::Json};
use uuid::Uuid;

use super::violated_unique;
use crate::{
    domain::feed::{
        Acknowledgement, Feed, FeedCounts, Mapping, NewFeed, REJECTIONS_KEPT_DAYS, Rejection,
    },
    domain::hl7::TRIGGER_ATTRIBUTE,
    error::{Error, Result},
};

struct FeedRow {
    id: Uuid,
    code: String,
    display_name: String,
    mapping: Json<Mapping>,
    accepted: i64,
    duplicates: i64,
    ignored: i64,
    rejected: i64,
    last_message_time: Option<DateTime<Utc>>,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    archive_time: Option<DateTime<Utc>>,
}

impl From<FeedRow> for Feed {
    fn from(row: FeedRow) -> Self {
        Feed {
            id: row.id,
            code: row.code,
            display_name: row.display_name,
            mapping: row.mapping.0,
            counts: FeedCounts {
                accepted: row.accepted,
                duplicates: row.duplicates,
                ignored: row.ignored,
                rejected: row.rejected,
                last_message_time: row.last_message_time,
            },
            create_time: row.create_time,
            update_time: row.update_time,
            archive_time: row.archive_time,
        }
    }
}

/// The sender columns of an HL7 v2 mapping; none for FHIR.
fn sender(mapping: &Mapping) -> (Option<&str>, Option<&str>) {
    match mapping {
        Mapping::Hl7v2(m) => (
            Some(m.sending_application.as_str()),
            Some(m.sending_facility.as_str()),
        ),
        Mapping::FhirR4(_) => (None, None),
    }
}

fn taken(error: sqlx::Error, feed_code: &str, mapping: &Mapping) -> Error {
    match violated_unique(&error) {
        Some("feed_code_key") => Error::AlreadyExists {
            resource: "feed",
            field: "code",
            value: feed_code.to_owned(),
        },
        // Which organisation's feed holds the sender is not the caller's
        // to know.
        Some("feed_sender_key") => {
            let (application, facility) = sender(mapping);
            Error::AlreadyExists {
                resource: "feed",
                field: "hl7v2.sending_application/hl7v2.sending_facility",
                value: format!(
                    "{}/{}",
                    application.unwrap_or_default(),
                    facility.unwrap_or_default()
                ),
            }
        }
        _ => error.into(),
    }
}

pub async fn insert(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    new: &NewFeed,
) -> Result<Feed> {
    let (application, facility) = sender(&new.mapping);
    let row = sqlx::query_as!(
        FeedRow,
        r#"insert into feed
               (id, organisation_id, code, display_name, kind, sending_application,
                sending_facility, mapping)
           values ($1, $2, $3, $4, $5, $6, $7, $8)
           returning id, code, display_name, mapping as "mapping: Json<Mapping>",
                     accepted, duplicates, ignored, rejected, last_message_time,
                     create_time, update_time, archive_time"#,
        Uuid::now_v7(),
        organisation_id,
        new.code,
        new.display_name,
        new.mapping.kind(),
        application,
        facility,
        Json(&new.mapping) as _,
    )
    .fetch_one(connection)
    .await
    .map_err(|e| taken(e, &new.code, &new.mapping))?;
    Ok(row.into())
}

pub async fn get(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    id: Uuid,
) -> Result<Option<Feed>> {
    let row = sqlx::query_as!(
        FeedRow,
        r#"select id, code, display_name, mapping as "mapping: Json<Mapping>",
                  accepted, duplicates, ignored, rejected, last_message_time,
                  create_time, update_time, archive_time
           from feed where organisation_id = $1 and id = $2"#,
        organisation_id,
        id,
    )
    .fetch_optional(connection)
    .await?;
    Ok(row.map(Into::into))
}

/// The feed of `code` (regardless of case), archived or not.
pub async fn get_by_code(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    code: &str,
) -> Result<Option<Feed>> {
    let row = sqlx::query_as!(
        FeedRow,
        r#"select id, code, display_name, mapping as "mapping: Json<Mapping>",
                  accepted, duplicates, ignored, rejected, last_message_time,
                  create_time, update_time, archive_time
           from feed where organisation_id = $1 and lower(code) = lower($2)"#,
        organisation_id,
        code,
    )
    .fetch_optional(connection)
    .await?;
    Ok(row.map(Into::into))
}

pub async fn list(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    show_archived: bool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Feed>> {
    let rows = sqlx::query_as!(
        FeedRow,
        r#"select id, code, display_name, mapping as "mapping: Json<Mapping>",
                  accepted, duplicates, ignored, rejected, last_message_time,
                  create_time, update_time, archive_time
           from feed
           where organisation_id = $1
             and ($2 or archive_time is null)
             and ($3::uuid is null or id > $3)
           order by id
           limit $4"#,
        organisation_id,
        show_archived,
        after,
        limit,
    )
    .fetch_all(connection)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Writes the display name and the mapping of `feed`.
pub async fn update(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    feed: &Feed,
) -> Result<Feed> {
    let (application, facility) = sender(&feed.mapping);
    let row = sqlx::query_as!(
        FeedRow,
        r#"update feed
           set display_name = $3, sending_application = $4, sending_facility = $5,
               mapping = $6
           where organisation_id = $1 and id = $2
           returning id, code, display_name, mapping as "mapping: Json<Mapping>",
                     accepted, duplicates, ignored, rejected, last_message_time,
                     create_time, update_time, archive_time"#,
        organisation_id,
        feed.id,
        feed.display_name,
        application,
        facility,
        Json(&feed.mapping) as _,
    )
    .fetch_one(connection)
    .await
    .map_err(|e| taken(e, &feed.code, &feed.mapping))?;
    Ok(row.into())
}

pub async fn archive(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    id: Uuid,
) -> Result<Feed> {
    let row = sqlx::query_as!(
        FeedRow,
        r#"update feed set archive_time = now()
           where organisation_id = $1 and id = $2
           returning id, code, display_name, mapping as "mapping: Json<Mapping>",
                     accepted, duplicates, ignored, rejected, last_message_time,
                     create_time, update_time, archive_time"#,
        organisation_id,
        id,
    )
    .fetch_one(connection)
    .await?;
    Ok(row.into())
}

/// The live HL7 v2 feed a message names as its sender, found before its
/// organisation is known.
#[derive(Debug, Clone)]
pub struct SenderFeed {
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub code: String,
    pub mapping: Mapping,
    pub time_zone: String,
    /// Whether the message's control id is settled for good (withdrawn by
    /// a cancel, or a cancel itself).
    pub settled: bool,
}

/// The feed of a sender (MSH-3, MSH-4) and whether it settled `control_id`,
/// in one round trip.
pub async fn for_sender(
    pool: &PgPool,
    application: &str,
    facility: &str,
    control_id: &str,
) -> Result<Option<SenderFeed>> {
    let row = sqlx::query!(
        r#"select id as "id!", organisation_id as "organisation_id!", code as "code!",
                  mapping as "mapping!: Json<Mapping>", time_zone as "time_zone!",
                  settled as "settled!"
           from verdad_hl7_feed($1, $2, $3)"#,
        application,
        facility,
        control_id,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| SenderFeed {
        id: r.id,
        organisation_id: r.organisation_id,
        code: r.code,
        mapping: r.mapping.0,
        time_zone: r.time_zone,
        settled: r.settled,
    }))
}

/// What a feed received since its counts were last written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountsDelta {
    pub accepted: i64,
    pub duplicates: i64,
    pub ignored: i64,
    pub rejected: i64,
    pub last_message_time: Option<DateTime<Utc>>,
}

impl CountsDelta {
    /// Adds `other` to these counts.
    pub fn absorb(&mut self, other: &CountsDelta) {
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.ignored += other.ignored;
        self.rejected += other.rejected;
        self.last_message_time = self.last_message_time.max(other.last_message_time);
    }
}

/// Adds `delta` to the counts of the feed `feed_id`.
pub async fn add_counts(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    feed_id: Uuid,
    delta: &CountsDelta,
) -> Result<()> {
    sqlx::query!(
        r#"update feed
           set accepted = accepted + $3, duplicates = duplicates + $4,
               ignored = ignored + $5, rejected = rejected + $6,
               last_message_time = greatest(last_message_time, $7)
           where organisation_id = $1 and id = $2"#,
        organisation_id,
        feed_id,
        delta.accepted,
        delta.duplicates,
        delta.ignored,
        delta.rejected,
        delta.last_message_time,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Records a refused message, and forgets the feed's refusals older than
/// they are listed.
pub async fn insert_rejection(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    feed_id: Uuid,
    rejection: &Rejection,
) -> Result<()> {
    sqlx::query!(
        r#"with pruned as (
               delete from feed_rejection
               where organisation_id = $1 and feed_id = $2
                 and receive_time < now() - make_interval(days => $9::int)
           )
           insert into feed_rejection
               (id, organisation_id, feed_id, control_id, receive_time, acknowledgement,
                segment, field, reason)
           values ($3, $1, $2, $4, $5, $6, $7, $8, $10)"#,
        organisation_id,
        feed_id,
        rejection.id,
        rejection.control_id,
        rejection.receive_time,
        rejection.acknowledgement.code(),
        rejection.segment,
        rejection.field,
        REJECTIONS_KEPT_DAYS as i32,
        rejection.reason,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// A feed's refusals of the last 30 days, newest first, before `before`.
pub async fn list_rejections(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    feed_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Rejection>> {
    let rows = sqlx::query!(
        r#"select id, control_id, receive_time, acknowledgement, segment, field, reason
           from feed_rejection
           where organisation_id = $1 and feed_id = $2
             and receive_time >= now() - make_interval(days => $3::int)
             and ($4::uuid is null or id < $4)
           order by id desc
           limit $5"#,
        organisation_id,
        feed_id,
        REJECTIONS_KEPT_DAYS as i32,
        before,
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Rejection {
                id: r.id,
                control_id: r.control_id,
                receive_time: r.receive_time,
                acknowledgement: Acknowledgement::parse(&r.acknowledgement).ok_or_else(|| {
                    Error::internal(format!(
                        "unknown acknowledgement {:?} stored",
                        r.acknowledgement
                    ))
                })?,
                segment: r.segment,
                field: r.field,
                reason: r.reason,
            })
        })
        .collect()
}

/// The encounter a cancel of `events` (trigger events) would withdraw: the
/// latest one standing that the feed `source` stored in `journey_id` for
/// one of those events.
pub async fn cancelled_encounter(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    source: &str,
    journey_id: &str,
    events: &[&str],
) -> Result<Option<(Uuid, String)>> {
    let events: Vec<String> = events.iter().map(|e| (*e).to_owned()).collect();
    let row = sqlx::query!(
        r#"select id, external_id from encounter
           where organisation_id = $1 and journey_id = $2 and source = $3
             and attributes ->> $4 = any($5)
           order by occur_time desc, receive_seq desc
           limit 1
           for update"#,
        organisation_id,
        journey_id,
        source,
        TRIGGER_ATTRIBUTE,
        &events,
    )
    .fetch_optional(connection)
    .await?;
    Ok(row.map(|r| (r.id, r.external_id)))
}

/// Withdraws what a cancel of `events` cancels (see
/// [`cancelled_encounter`]), and settles both that message's control id and
/// the cancel's (`cancel_control_id`) for good. Returns the external ids
/// withdrawn: none when there was nothing to withdraw, or when the cancel
/// was settled already (a resend, even one that raced the first).
pub async fn withdraw(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    feed_id: Uuid,
    source: &str,
    journey_id: &str,
    events: &[&str],
    cancel_control_id: &str,
) -> Result<Vec<String>> {
    // The cancel is settled first: a resend racing it waits on this row
    // and then finds it taken, so no cancel withdraws twice.
    let first = sqlx::query_scalar!(
        r#"insert into feed_control (organisation_id, feed_id, control_id, kind, journey_id)
           values ($1, $2, $3, 'cancel', $4)
           on conflict do nothing
           returning true as "first!""#,
        organisation_id,
        feed_id,
        cancel_control_id,
        journey_id,
    )
    .fetch_optional(&mut *connection)
    .await?;
    if first.is_none() {
        return Ok(Vec::new());
    }
    let Some((id, external_id)) = cancelled_encounter(
        &mut *connection,
        organisation_id,
        source,
        journey_id,
        events,
    )
    .await?
    else {
        return Ok(Vec::new());
    };
    let gone = sqlx::query!(
        "delete from encounter where organisation_id = $1 and id = $2",
        organisation_id,
        id,
    )
    .execute(&mut *connection)
    .await?
    .rows_affected();
    sqlx::query!(
        r#"insert into feed_control (organisation_id, feed_id, control_id, kind, journey_id)
           values ($1, $2, $3, 'withdrawn', $4)
           on conflict do nothing"#,
        organisation_id,
        feed_id,
        external_id,
        journey_id,
    )
    .execute(&mut *connection)
    .await?;
    Ok(if gone > 0 {
        vec![external_id]
    } else {
        Vec::new()
    })
}

/// Withdraws every encounter the feed `source` stored under the FHIR
/// resource `key` (its `fhir.resource` attribute, which an index of its
/// own finds); how many there were.
pub async fn withdraw_resource(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    source: &str,
    key: &str,
) -> Result<u64> {
    let withdrawn = sqlx::query!(
        r#"delete from encounter
           where organisation_id = $1 and attributes ? 'fhir.resource'
             and attributes ->> 'fhir.resource' = $3 and source = $2"#,
        organisation_id,
        source,
        key,
    )
    .execute(connection)
    .await?
    .rows_affected();
    Ok(withdrawn)
}

/// The external ids of the encounters [`withdraw_resource`] would
/// withdraw.
pub async fn resource_encounters(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    source: &str,
    key: &str,
) -> Result<Vec<String>> {
    let ids = sqlx::query_scalar!(
        r#"select external_id from encounter
           where organisation_id = $1 and attributes ? 'fhir.resource'
             and attributes ->> 'fhir.resource' = $3 and source = $2
           order by occur_time, receive_seq"#,
        organisation_id,
        source,
        key,
    )
    .fetch_all(connection)
    .await?;
    Ok(ids)
}

/// Settles the FHIR resource `key` of the feed `feed_id` for good: it was
/// withdrawn. Resource keys are digests, no journey's, so erasure leaves
/// them (they name nobody).
pub async fn settle_resource(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    feed_id: Uuid,
    key: &str,
) -> Result<()> {
    sqlx::query!(
        r#"insert into feed_control (organisation_id, feed_id, control_id, kind, journey_id)
           values ($1, $2, $3, 'withdrawn', '')
           on conflict do nothing"#,
        organisation_id,
        feed_id,
        key,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Whether the feed `feed_id` settled `control_id` (a control id, or a
/// FHIR resource key) for good.
pub async fn is_settled(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    feed_id: Uuid,
    control_id: &str,
) -> Result<bool> {
    let settled = sqlx::query_scalar!(
        r#"select exists (select 1 from feed_control
                          where organisation_id = $1 and feed_id = $2 and control_id = $3)
           as "settled!""#,
        organisation_id,
        feed_id,
        control_id,
    )
    .fetch_one(connection)
    .await?;
    Ok(settled)
}
