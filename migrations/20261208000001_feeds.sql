-- Feeds: hospital systems (HL7 v2 over MLLP, FHIR R4 over HTTP) whose own
-- traffic is mapped to encounters, the control ids they have settled, and
-- the messages they had refused.

create table feed (
    id uuid primary key,
    organisation_id uuid not null references organisation (id),
    code text not null,
    display_name text not null,
    kind text not null check (kind in ('hl7v2', 'fhir_r4')),
    -- MSH-3 and MSH-4 for HL7 v2 feeds, as the mapping gives them; null for
    -- FHIR feeds. Kept beside the mapping for the index below.
    sending_application text,
    sending_facility text,
    -- The rest of the mapping (rules, fields, certificates), as the domain
    -- type `Mapping` serialises it.
    mapping jsonb not null,
    accepted bigint not null default 0,
    duplicates bigint not null default 0,
    ignored bigint not null default 0,
    rejected bigint not null default 0,
    last_message_time timestamptz,
    create_time timestamptz not null default now(),
    update_time timestamptz not null default now(),
    archive_time timestamptz,
    check ((kind = 'hl7v2') = (sending_application is not null)),
    unique (organisation_id, id)
);

create unique index feed_code_key on feed (organisation_id, lower(code));
-- A sender is one live feed's, across organisations: a message names its
-- sender, never its organisation, so two organisations cannot share one.
create unique index feed_sender_key on feed (lower(sending_application), lower(sending_facility))
    where archive_time is null and kind = 'hl7v2';

create trigger feed_update_time before update of code, display_name, mapping, archive_time
    on feed for each row execute function verdad_touch_update_time();

alter table feed enable row level security;
alter table feed force row level security;
create policy feed_tenant on feed
    using (organisation_id = verdad_current_organisation())
    with check (organisation_id = verdad_current_organisation());
-- An MLLP connection knows a message's sender before its organisation: a
-- live HL7 v2 feed is visible to whoever names its sender, and to nobody
-- else (see verdad_hl7_feed).
create policy feed_by_sender on feed for select
    using (kind = 'hl7v2'
           and archive_time is null
           and lower(sending_application) = current_setting('verdad.hl7_application', true)
           and lower(sending_facility) = current_setting('verdad.hl7_facility', true));

-- Control ids a feed has settled for good: those whose encounters a cancel
-- withdrew (so that a resent original does not bring them back), the
-- cancels themselves (so that a resent cancel withdraws nothing more), and
-- the keys of withdrawn FHIR Encounters (journey '' for those: a key is a
-- digest that names nobody).
create table feed_control (
    organisation_id uuid not null,
    feed_id uuid not null,
    control_id text not null,
    settle_time timestamptz not null default now(),
    -- 'withdrawn': an original whose encounters a cancel withdrew;
    -- 'cancel': a cancel.
    kind text not null check (kind in ('withdrawn', 'cancel')),
    journey_id text not null,
    primary key (organisation_id, feed_id, control_id),
    foreign key (organisation_id, feed_id) references feed (organisation_id, id)
);

alter table feed_control enable row level security;
alter table feed_control force row level security;
create policy feed_control_tenant on feed_control
    using (organisation_id = verdad_current_organisation())
    with check (organisation_id = verdad_current_organisation());

-- Messages a feed refused (AE, AR): what and why, never the message.
create table feed_rejection (
    id uuid primary key,
    organisation_id uuid not null,
    feed_id uuid not null,
    control_id text not null,
    receive_time timestamptz not null default now(),
    acknowledgement text not null check (acknowledgement in ('AE', 'AR')),
    segment text not null,
    field integer not null,
    reason text not null,
    foreign key (organisation_id, feed_id) references feed (organisation_id, id)
);

create index feed_rejection_feed_idx on feed_rejection (organisation_id, feed_id, id);

alter table feed_rejection enable row level security;
alter table feed_rejection force row level security;
create policy feed_rejection_tenant on feed_rejection
    using (organisation_id = verdad_current_organisation())
    with check (organisation_id = verdad_current_organisation());

-- Erasure removes a journey's settled control ids; rejections older than
-- their 30 days are pruned.
grant delete on feed_control, feed_rejection to verdad_app;

-- The moments of a FHIR Encounter, found by its resource key when it is
-- withdrawn (see src/domain/fhir, RESOURCE_ATTRIBUTE): only FHIR feeds'
-- encounters carry the key, so the index holds nothing else.
create index encounter_fhir_resource_idx on encounter
    (organisation_id, (attributes ->> 'fhir.resource'))
    where attributes ? 'fhir.resource';

-- The live HL7 v2 feed of a sender (its application and facility)
-- with its organisation's time zone, and whether it settled `control` for
-- good, in one statement: what every MLLP message asks first. The settings
-- the feed_by_sender policy reads last for the statement's own transaction.
create function verdad_hl7_feed(application text, facility text, control text)
    returns table (id uuid, organisation_id uuid, code text, mapping jsonb, time_zone text,
                   settled boolean)
    language plpgsql volatile
    as $$
declare
    hit record;
begin
    perform set_config('verdad.hl7_application', lower(application), true);
    perform set_config('verdad.hl7_facility', lower(facility), true);
    select f.id, f.organisation_id, f.code, f.mapping into hit
        from feed f
        where f.kind = 'hl7v2' and f.archive_time is null
          and lower(f.sending_application) = lower(application)
          and lower(f.sending_facility) = lower(facility);
    if hit.id is null then
        return;
    end if;
    perform set_config('verdad.hl7_application', '', true);
    perform set_config('verdad.hl7_facility', '', true);
    perform set_config('verdad.organisation_id', hit.organisation_id::text, true);
    return query
        select hit.id, hit.organisation_id, hit.code, hit.mapping, o.time_zone,
               exists (select 1 from feed_control c
                       where c.organisation_id = hit.organisation_id
                         and c.feed_id = hit.id and c.control_id = control)
        from organisation o
        where o.id = hit.organisation_id;
end
$$;
