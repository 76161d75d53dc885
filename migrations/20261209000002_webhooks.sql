-- Webhooks: events written to an outbox in the transaction that caused
-- them, and delivered from there by whichever server leases the webhook.

create table webhook (
    id uuid not null,
    organisation_id uuid not null,
    url text not null,
    description text not null default '',
    -- recovery_case.opened, ..., journey.deviated.
    event_types text[] not null,
    -- Filters; empty lets every touchpoint or stage through.
    touchpoint_ids uuid[] not null default '{}',
    stages text[] not null default '{}',
    -- The HMAC key the deliveries are signed with, and the one before the
    -- last rotation while it still signs beside it.
    secret bytea not null,
    previous_secret bytea,
    previous_secret_expire_time timestamptz,
    -- The server delivering to the webhook, until when: one at a time, so
    -- that its events go out in order.
    lease_owner uuid,
    lease_until timestamptz,
    create_time timestamptz not null default now(),
    update_time timestamptz not null default now(),
    constraint webhook_pkey primary key (id),
    constraint webhook_organisation_fkey foreign key (organisation_id)
        references organisation (id),
    constraint webhook_secret_check check (length(secret) >= 24),
    constraint webhook_event_types_check check (cardinality(event_types) > 0)
);

create index webhook_organisation_idx on webhook (organisation_id, id);

create trigger webhook_update_time before update of url, description, event_types,
        touchpoint_ids, stages, secret, previous_secret, previous_secret_expire_time
    on webhook
    for each row execute function verdad_touch_update_time();

-- One event, whichever webhooks it goes to. Its data is thin: ids, codes,
-- times and reasons, never a customer reference, comment or staff text.
create table webhook_event (
    id uuid not null,
    organisation_id uuid not null,
    type text not null,
    create_time timestamptz not null default now(),
    data jsonb not null,
    constraint webhook_event_pkey primary key (id),
    constraint webhook_event_organisation_fkey foreign key (organisation_id)
        references organisation (id)
);

create index webhook_event_age_idx on webhook_event (organisation_id, create_time);

-- One event for one webhook. A webhook's pending deliveries go out in seq
-- order, one at a time: a later one waits while the one before is retried.
create table webhook_delivery (
    id uuid not null,
    organisation_id uuid not null,
    webhook_id uuid not null,
    event_id uuid not null,
    seq bigint generated always as identity,
    state text not null default 'pending',
    create_time timestamptz not null default now(),
    next_attempt_time timestamptz not null default now(),
    -- The first attempt since the delivery was queued (or queued again):
    -- retries stop a retry window after it.
    first_attempt_time timestamptz,
    attempt_count integer not null default 0,
    deliver_time timestamptz,
    constraint webhook_delivery_pkey primary key (id),
    constraint webhook_delivery_webhook_fkey foreign key (webhook_id)
        references webhook (id) on delete cascade,
    constraint webhook_delivery_event_fkey foreign key (event_id)
        references webhook_event (id) on delete cascade,
    constraint webhook_delivery_state_check check (state in ('pending', 'delivered', 'failed')),
    constraint webhook_delivery_delivered_check
        check ((state = 'delivered') = (deliver_time is not null))
);

create index webhook_delivery_queue_idx on webhook_delivery (webhook_id, seq)
    where state = 'pending';
create index webhook_delivery_list_idx on webhook_delivery (organisation_id, webhook_id, seq);
create index webhook_delivery_event_idx on webhook_delivery (event_id);

-- What each attempt got; the endpoint's answer only as a short excerpt.
create table webhook_attempt (
    delivery_id uuid not null,
    organisation_id uuid not null,
    attempt integer not null,
    attempt_time timestamptz not null,
    status_code integer,
    latency_ms integer not null,
    error text not null default '',
    response_excerpt text not null default '',
    constraint webhook_attempt_pkey primary key (delivery_id, attempt),
    constraint webhook_attempt_delivery_fkey foreign key (delivery_id)
        references webhook_delivery (id) on delete cascade
);

grant select, insert, update, delete on webhook, webhook_event, webhook_delivery,
    webhook_attempt to verdad_app;

alter table webhook enable row level security;
alter table webhook force row level security;
create policy webhook_tenant on webhook
    using (organisation_id = verdad_current_organisation())
    with check (organisation_id = verdad_current_organisation());

alter table webhook_event enable row level security;
alter table webhook_event force row level security;
create policy webhook_event_tenant on webhook_event
    using (organisation_id = verdad_current_organisation())
    with check (organisation_id = verdad_current_organisation());

alter table webhook_delivery enable row level security;
alter table webhook_delivery force row level security;
create policy webhook_delivery_tenant on webhook_delivery
    using (organisation_id = verdad_current_organisation())
    with check (organisation_id = verdad_current_organisation());

alter table webhook_attempt enable row level security;
alter table webhook_attempt force row level security;
create policy webhook_attempt_tenant on webhook_attempt
    using (organisation_id = verdad_current_organisation())
    with check (organisation_id = verdad_current_organisation());

-- The dispatcher of each server finds, across tenants, the webhooks whose
-- next delivery is due; it leases and delivers as each organisation.
create policy webhook_dispatch on webhook for select
    using (current_setting('verdad.dispatch', true) = 'on');
create policy webhook_delivery_dispatch on webhook_delivery for select
    using (current_setting('verdad.dispatch', true) = 'on');

-- RFC 3339 in UTC with milliseconds, as the events' times are written.
create function verdad_event_time(t timestamptz) returns text
    language sql immutable
    as $$ select to_char(t at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

-- Queues the event `event_type` of a recovery case for every webhook of
-- its organisation that wants it, with the case's ids, codes, times and
-- reasons and `extra` besides; nothing when none wants it.
create function verdad_emit_case_event(event_type text, case_id uuid, extra jsonb default '{}')
    returns void
    language plpgsql
    as $$
declare
    c recovery_case;
    t touchpoint;
begin
    select * into c from recovery_case r where r.id = case_id;
    if not found then
        return;
    end if;
    select * into t from touchpoint p
    where p.organisation_id = c.organisation_id and p.id = c.touchpoint_id;
    with wanting as (
        select w.id from webhook w
        where w.organisation_id = c.organisation_id
          and event_type = any(w.event_types)
          and (w.touchpoint_ids = '{}' or c.touchpoint_id = any(w.touchpoint_ids))
          and (w.stages = '{}' or t.stage = any(w.stages))
    ),
    event as (
        insert into webhook_event (id, organisation_id, type, data)
        select gen_random_uuid(), c.organisation_id, event_type,
               jsonb_strip_nulls(jsonb_build_object(
                   'recovery_case_id', c.id,
                   'kind', c.kind,
                   'status', c.status,
                   'encounter_id', c.encounter_id,
                   'touchpoint_id', c.touchpoint_id,
                   'touchpoint_code', t.code,
                   'stage', t.stage,
                   'open_time', verdad_event_time(c.open_time),
                   'due_time', verdad_event_time(c.due_time),
                   'reasons', to_jsonb(c.failure_reasons),
                   'acknowledge_time', verdad_event_time(c.acknowledge_time),
                   'resolve_time', verdad_event_time(c.resolve_time),
                   'escalation_level', c.escalation_level
               ) || extra)
        where exists (select from wanting)
        returning id
    )
    insert into webhook_delivery (id, organisation_id, webhook_id, event_id)
    select gen_random_uuid(), c.organisation_id, wanting.id, event.id
    from wanting cross join event
    order by wanting.id;
end
$$;

-- Every case opened, however it was (the ingest's function, a deviation),
-- emits recovery_case.opened in the same transaction.
create function verdad_case_opened_events() returns trigger
    language plpgsql
    as $$
begin
    if exists (
        select from webhook w
        where w.organisation_id in (select o.organisation_id from opened o)
          and 'recovery_case.opened' = any(w.event_types)
    ) then
        perform verdad_emit_case_event('recovery_case.opened', o.id)
        from (select o.id from opened o order by o.open_time, o.id) o;
    end if;
    return null;
end
$$;

create trigger recovery_case_opened_events after insert on recovery_case
    referencing new table as opened
    for each statement execute function verdad_case_opened_events();
