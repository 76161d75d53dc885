//! Webhooks, their outbox of events, and the deliveries of those events.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, types::Json};
use uuid::Uuid;

use super::decode;
use crate::{
    domain::{
        touchpoint::Stage,
        webhook::{
            ATTEMPTS_SHOWN, Attempt, Delivery, DeliveryState, EventType, Webhook, WebhookChanges,
        },
    },
    error::{Error, Result},
};

struct WebhookRow {
    id: Uuid,
    url: String,
    description: String,
    event_types: Vec<String>,
    touchpoint_codes: Vec<String>,
    stages: Vec<String>,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    previous_secret_expire_time: Option<DateTime<Utc>>,
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = Error;

    fn try_from(row: WebhookRow) -> Result<Self> {
        Ok(Webhook {
            id: row.id,
            url: row.url,
            description: row.description,
            event_types: (row.event_types.iter())
                .map(|t| decode::<EventType>(t))
                .collect::<Result<_>>()?,
            touchpoint_codes: row.touchpoint_codes,
            stages: (row.stages.iter())
                .map(|s| decode::<Stage>(s))
                .collect::<Result<_>>()?,
            create_time: row.create_time,
            update_time: row.update_time,
            // A secret past its grace signs nothing: it is as good as gone.
            previous_secret_expire_time: row
                .previous_secret_expire_time
                .filter(|expiry| *expiry > Utc::now()),
        })
    }
}

/// What a webhook is stored with: its filters as ids, its secret as bytes.
pub struct WebhookValues<'a> {
    pub url: &'a str,
    pub description: &'a str,
    pub event_types: &'a [EventType],
    pub touchpoint_ids: &'a [Uuid],
    pub stages: &'a [Stage],
}

fn texts<T: Copy>(values: &[T], text: fn(T) -> &'static str) -> Vec<String> {
    values.iter().map(|v| text(*v).to_owned()).collect()
}

pub async fn insert(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    id: Uuid,
    values: &WebhookValues<'_>,
    secret: &[u8],
) -> Result<Webhook> {
    sqlx::query!(
        r#"insert into webhook
               (id, organisation_id, url, description, event_types, touchpoint_ids, stages,
                secret)
           values ($1, $2, $3, $4, $5, $6, $7, $8)"#,
        id,
        organisation_id,
        values.url,
        values.description,
        &texts(values.event_types, EventType::as_str),
        values.touchpoint_ids,
        &texts(values.stages, Stage::as_str),
        secret,
    )
    .execute(&mut *connection)
    .await?;
    get(connection, organisation_id, id)
        .await?
        .ok_or_else(|| Error::internal("a webhook vanished as it was made"))
}

/// How many webhooks the organisation has, counted under a lock on its
/// webhooks' rows' organisation, so that two creations cannot both pass a
/// limit.
pub async fn count(connection: &mut PgConnection, organisation_id: Uuid) -> Result<i64> {
    sqlx::query!(
        "select pg_advisory_xact_lock(hashtextextended('verdad/webhooks/' || $1::uuid::text, 0))",
        organisation_id,
    )
    .execute(&mut *connection)
    .await?;
    let count = sqlx::query_scalar!(
        r#"select count(*) as "count!" from webhook where organisation_id = $1"#,
        organisation_id,
    )
    .fetch_one(connection)
    .await?;
    Ok(count)
}

pub async fn get(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    id: Uuid,
) -> Result<Option<Webhook>> {
    let row = sqlx::query_as!(
        WebhookRow,
        r#"select w.id, w.url, w.description, w.event_types, w.stages, w.create_time,
                  w.update_time, w.previous_secret_expire_time,
                  array(select t.code from touchpoint t
                        where t.organisation_id = w.organisation_id
                          and t.id = any(w.touchpoint_ids)
                        order by t.code) as "touchpoint_codes!"
           from webhook w
           where w.organisation_id = $1 and w.id = $2"#,
        organisation_id,
        id,
    )
    .fetch_optional(connection)
    .await?;
    row.map(TryInto::try_into).transpose()
}

/// A page of webhooks in creation order (ids are UUIDv7), after `after`.
pub async fn list(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Webhook>> {
    let rows = sqlx::query_as!(
        WebhookRow,
        r#"select w.id, w.url, w.description, w.event_types, w.stages, w.create_time,
                  w.update_time, w.previous_secret_expire_time,
                  array(select t.code from touchpoint t
                        where t.organisation_id = w.organisation_id
                          and t.id = any(w.touchpoint_ids)
                        order by t.code) as "touchpoint_codes!"
           from webhook w
           where w.organisation_id = $1 and ($2::uuid is null or w.id > $2)
           order by w.id
           limit $3"#,
        organisation_id,
        after,
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Writes the changed fields; `touchpoint_ids` stands for the codes of the
/// changes, found by the caller.
pub async fn update(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    id: Uuid,
    changes: &WebhookChanges,
    touchpoint_ids: Option<&[Uuid]>,
) -> Result<Option<Webhook>> {
    let updated = sqlx::query!(
        r#"update webhook
           set url = coalesce($3, url),
               description = coalesce($4, description),
               event_types = coalesce($5, event_types),
               touchpoint_ids = coalesce($6, touchpoint_ids),
               stages = coalesce($7, stages)
           where organisation_id = $1 and id = $2"#,
        organisation_id,
        id,
        changes.url,
        changes.description,
        changes
            .event_types
            .as_deref()
            .map(|t| texts(t, EventType::as_str)) as Option<Vec<String>>,
        touchpoint_ids,
        changes.stages.as_deref().map(|s| texts(s, Stage::as_str)) as Option<Vec<String>>,
    )
    .execute(&mut *connection)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(None);
    }
    get(connection, organisation_id, id).await
}

/// Deletes a webhook with its queue and history; false when there was none.
pub async fn delete(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    id: Uuid,
) -> Result<bool> {
    let deleted = sqlx::query!(
        "delete from webhook where organisation_id = $1 and id = $2",
        organisation_id,
        id,
    )
    .execute(connection)
    .await?
    .rows_affected();
    Ok(deleted > 0)
}

/// Signs with `secret` from now on; the secret before keeps signing beside
/// it for `grace_seconds`.
pub async fn rotate(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    id: Uuid,
    secret: &[u8],
    grace_seconds: i64,
) -> Result<Option<Webhook>> {
    let updated = sqlx::query!(
        r#"update webhook
           set previous_secret = case when $4 > 0 then secret end,
               previous_secret_expire_time =
                   case when $4 > 0 then now() + make_interval(secs => $4::float8) end,
               secret = $3
           where organisation_id = $1 and id = $2"#,
        organisation_id,
        id,
        secret,
        grace_seconds as f64,
    )
    .execute(&mut *connection)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(None);
    }
    get(connection, organisation_id, id).await
}

/// Queues `event` of a recovery case for the webhooks that want it, in the
/// caller's transaction, with `extra` beside the case's own data (see the
/// migration's `verdad_emit_case_event`).
pub async fn emit_case_event(
    connection: &mut PgConnection,
    event: EventType,
    case_id: Uuid,
    extra: Value,
) -> Result<()> {
    sqlx::query("select verdad_emit_case_event($1, $2, $3)")
        .bind(event.as_str())
        .bind(case_id)
        .bind(Json(extra))
        .execute(connection)
        .await?;
    Ok(())
}

struct DeliveryRow {
    id: Uuid,
    webhook_id: Uuid,
    event_id: Uuid,
    event_type: String,
    state: String,
    seq: i64,
    create_time: DateTime<Utc>,
    next_attempt_time: DateTime<Utc>,
    deliver_time: Option<DateTime<Utc>>,
    attempt_count: i32,
    attempts: Json<Vec<AttemptRow>>,
}

#[derive(serde::Deserialize)]
struct AttemptRow {
    attempt_time: DateTime<Utc>,
    status_code: Option<i32>,
    latency_ms: i32,
    error: String,
    response_excerpt: String,
}

impl DeliveryRow {
    fn into_delivery(self) -> Result<(i64, Delivery)> {
        Ok((
            self.seq,
            Delivery {
                id: self.id,
                webhook_id: self.webhook_id,
                event_id: self.event_id,
                event_type: self.event_type,
                state: decode(&self.state)?,
                create_time: self.create_time,
                next_attempt_time: self.next_attempt_time,
                deliver_time: self.deliver_time,
                attempt_count: self.attempt_count,
                attempts: (self.attempts.0.into_iter())
                    .map(|a| Attempt {
                        attempt_time: a.attempt_time,
                        status_code: a.status_code,
                        latency_ms: a.latency_ms,
                        error: a.error,
                        response_excerpt: a.response_excerpt,
                    })
                    .collect(),
            },
        ))
    }
}

/// A page of a webhook's deliveries, newest first, before the one of
/// sequence number `before`, each with its latest attempts; with their
/// sequence numbers, which page on.
pub async fn deliveries(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    webhook_id: Uuid,
    state: Option<DeliveryState>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<(i64, Delivery)>> {
    let rows = sqlx::query_as!(
        DeliveryRow,
        r#"select d.id, d.webhook_id, d.event_id, e.type as event_type, d.state, d.seq,
                  d.create_time, d.next_attempt_time, d.deliver_time, d.attempt_count,
                  coalesce((select jsonb_agg(to_jsonb(a) order by a.attempt desc)
                            from (select attempt, attempt_time, status_code, latency_ms, error,
                                         response_excerpt
                                  from webhook_attempt
                                  where organisation_id = $1 and delivery_id = d.id
                                  order by attempt desc
                                  limit $6) a), '[]')
                      as "attempts!: Json<Vec<AttemptRow>>"
           from webhook_delivery d
           join webhook_event e on e.organisation_id = d.organisation_id and e.id = d.event_id
           where d.organisation_id = $1 and d.webhook_id = $2
             and ($3::text is null or d.state = $3)
             and ($4::int8 is null or d.seq < $4)
           order by d.seq desc
           limit $5"#,
        organisation_id,
        webhook_id,
        state.map(|s| s.as_str()),
        before,
        limit,
        ATTEMPTS_SHOWN,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(DeliveryRow::into_delivery).collect()
}

/// Why an event cannot be queued again.
pub enum NotRequeued {
    /// The webhook never had the event.
    Unknown,
    /// It is still waiting to go out.
    Pending,
}

/// Queues `event_id` for the webhook again, behind what is queued, as a
/// delivery of its own with the event's id.
pub async fn redeliver(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    webhook_id: Uuid,
    event_id: Uuid,
) -> Result<std::result::Result<Delivery, NotRequeued>> {
    let states = sqlx::query_scalar!(
        r#"select state from webhook_delivery
           where organisation_id = $1 and webhook_id = $2 and event_id = $3
           for update"#,
        organisation_id,
        webhook_id,
        event_id,
    )
    .fetch_all(&mut *connection)
    .await?;
    if states.is_empty() {
        return Ok(Err(NotRequeued::Unknown));
    }
    if states.iter().any(|s| s == DeliveryState::Pending.as_str()) {
        return Ok(Err(NotRequeued::Pending));
    }
    let id = Uuid::now_v7();
    sqlx::query!(
        r#"insert into webhook_delivery (id, organisation_id, webhook_id, event_id)
           values ($1, $2, $3, $4)"#,
        id,
        organisation_id,
        webhook_id,
        event_id,
    )
    .execute(&mut *connection)
    .await?;
    let row = sqlx::query_as!(
        DeliveryRow,
        r#"select d.id, d.webhook_id, d.event_id, e.type as event_type, d.state, d.seq,
                  d.create_time, d.next_attempt_time, d.deliver_time, d.attempt_count,
                  '[]'::jsonb as "attempts!: Json<Vec<AttemptRow>>"
           from webhook_delivery d
           join webhook_event e on e.organisation_id = d.organisation_id and e.id = d.event_id
           where d.organisation_id = $1 and d.id = $2"#,
        organisation_id,
        id,
    )
    .fetch_one(connection)
    .await?;
    Ok(Ok(row.into_delivery()?.1))
}

/// Webhooks of any organisation whose next delivery is due and which no
/// server holds, other than `busy` (those this server works on): the
/// dispatcher's one look across tenants.
pub async fn due(
    connection: &mut PgConnection,
    busy: &[Uuid],
    limit: i64,
) -> Result<Vec<(Uuid, Uuid)>> {
    sqlx::query("select set_config('verdad.dispatch', 'on', true)")
        .execute(&mut *connection)
        .await?;
    let rows = sqlx::query!(
        r#"select w.organisation_id, w.id
           from webhook w
           cross join lateral (
               select d.next_attempt_time from webhook_delivery d
               where d.webhook_id = w.id and d.state = 'pending'
               order by d.seq
               limit 1) head
           where head.next_attempt_time <= now()
             and (w.lease_until is null or w.lease_until < now())
             and w.id <> all($1)
           order by head.next_attempt_time
           limit $2"#,
        busy,
        limit,
    )
    .fetch_all(&mut *connection)
    .await?;
    sqlx::query("select set_config('verdad.dispatch', '', true)")
        .execute(&mut *connection)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.organisation_id, r.id))
        .collect())
}

/// Leases the webhook to `owner` for `seconds`, if nobody else holds it,
/// or extends `owner`'s lease; false when another server holds it.
pub async fn lease(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    webhook_id: Uuid,
    owner: Uuid,
    seconds: f64,
) -> Result<bool> {
    let leased = sqlx::query!(
        r#"update webhook set lease_owner = $3, lease_until = now() + make_interval(secs => $4)
           where organisation_id = $1 and id = $2
             and (lease_owner = $3 or lease_until is null or lease_until < now())"#,
        organisation_id,
        webhook_id,
        owner,
        seconds,
    )
    .execute(connection)
    .await?
    .rows_affected();
    Ok(leased > 0)
}

/// Lets the webhook go, if `owner` still holds it.
pub async fn release(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    webhook_id: Uuid,
    owner: Uuid,
) -> Result<()> {
    sqlx::query!(
        r#"update webhook set lease_owner = null, lease_until = null
           where organisation_id = $1 and id = $2 and lease_owner = $3"#,
        organisation_id,
        webhook_id,
        owner,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// The next delivery of a webhook, with what sending it needs.
pub struct Outgoing {
    pub delivery_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub event_time: DateTime<Utc>,
    pub data: Value,
    pub attempt_count: i32,
    pub first_attempt_time: Option<DateTime<Utc>>,
    pub next_attempt_time: DateTime<Utc>,
    pub url: String,
    pub secret: Vec<u8>,
    /// The secret before the last rotation, while it still signs.
    pub previous_secret: Option<Vec<u8>>,
}

/// The webhook's oldest pending delivery, if any, due or not.
pub async fn next(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    webhook_id: Uuid,
) -> Result<Option<Outgoing>> {
    let row = sqlx::query!(
        r#"select d.id, d.event_id, e.type as event_type, e.create_time as event_time,
                  e.data as "data: Json<Value>", d.attempt_count, d.first_attempt_time,
                  d.next_attempt_time, w.url, w.secret,
                  case when w.previous_secret_expire_time > now() then w.previous_secret end
                      as previous_secret
           from webhook_delivery d
           join webhook w on w.organisation_id = d.organisation_id and w.id = d.webhook_id
           join webhook_event e on e.organisation_id = d.organisation_id and e.id = d.event_id
           where d.organisation_id = $1 and d.webhook_id = $2 and d.state = 'pending'
           order by d.seq
           limit 1"#,
        organisation_id,
        webhook_id,
    )
    .fetch_optional(connection)
    .await?;
    Ok(row.map(|r| Outgoing {
        delivery_id: r.id,
        event_id: r.event_id,
        event_type: r.event_type,
        event_time: r.event_time,
        data: r.data.0,
        attempt_count: r.attempt_count,
        first_attempt_time: r.first_attempt_time,
        next_attempt_time: r.next_attempt_time,
        url: r.url,
        secret: r.secret,
        previous_secret: r.previous_secret,
    }))
}

/// What an attempt leads to.
pub enum AttemptOutcome {
    Delivered,
    RetryAt(DateTime<Utc>),
    Failed,
}

/// Records an attempt and where it leaves the delivery.
pub async fn record_attempt(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    delivery_id: Uuid,
    attempt: &Attempt,
    outcome: &AttemptOutcome,
) -> Result<()> {
    let (state, next, delivered) = match outcome {
        AttemptOutcome::Delivered => (DeliveryState::Delivered, None, Some(attempt.attempt_time)),
        AttemptOutcome::RetryAt(at) => (DeliveryState::Pending, Some(*at), None),
        AttemptOutcome::Failed => (DeliveryState::Failed, None, None),
    };
    let number = sqlx::query_scalar!(
        r#"update webhook_delivery
           set attempt_count = attempt_count + 1,
               first_attempt_time = coalesce(first_attempt_time, $3),
               state = $4,
               next_attempt_time = coalesce($5, next_attempt_time),
               deliver_time = $6
           where organisation_id = $1 and id = $2
           returning attempt_count"#,
        organisation_id,
        delivery_id,
        attempt.attempt_time,
        state.as_str(),
        next,
        delivered,
    )
    .fetch_optional(&mut *connection)
    .await?;
    // Deleted with its webhook meanwhile: nothing to record.
    let Some(number) = number else {
        return Ok(());
    };
    sqlx::query!(
        r#"insert into webhook_attempt
               (delivery_id, organisation_id, attempt, attempt_time, status_code, latency_ms,
                error, response_excerpt)
           values ($1, $2, $3, $4, $5, $6, $7, $8)"#,
        delivery_id,
        organisation_id,
        number,
        attempt.attempt_time,
        attempt.status_code,
        attempt.latency_ms,
        attempt.error,
        attempt.response_excerpt,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Deletes the events older than `days` that nothing waits to deliver,
/// with their deliveries and attempts.
pub async fn prune(connection: &mut PgConnection, organisation_id: Uuid, days: i64) -> Result<u64> {
    let deleted = sqlx::query!(
        r#"delete from webhook_event e
           where e.organisation_id = $1
             and e.create_time < now() - make_interval(days => $2::int4)
             and not exists (select from webhook_delivery d
                             where d.event_id = e.id and d.state = 'pending')"#,
        organisation_id,
        i32::try_from(days).unwrap_or(i32::MAX),
    )
    .execute(connection)
    .await?
    .rows_affected();
    Ok(deleted)
}
