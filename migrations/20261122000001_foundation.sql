-- Foundation: organisations (tenants), their API keys and touchpoints, with
-- row-level security on the organisation id.

-- The role every request runs under (SET ROLE on each pooled connection), so
-- that row-level security holds even when DATABASE_URL names a superuser.
-- Roles are cluster-wide: another database of the same cluster may have
-- created it already, possibly at this very moment.
do $$
begin
    create role verdad_app nologin noinherit nobypassrls;
exception
    when duplicate_object or unique_violation then null;
end
$$;

do $$
begin
    execute format('grant verdad_app to %I', current_user);
exception
    when duplicate_object or unique_violation then null;
end
$$;

-- History is kept, never deleted: the application role gets no DELETE by
-- default; a table that needs it grants it in its own migration.
grant usage on schema public to verdad_app;
alter default privileges in schema public
    grant select, insert, update on tables to verdad_app;

-- The organisation the current transaction acts for, set with
-- set_config('verdad.organisation_id', …, true). A transaction-local setting
-- reads as '' once its transaction is over, hence the nullif.
create function verdad_current_organisation() returns uuid
    language sql stable
    as $$ select nullif(current_setting('verdad.organisation_id', true), '')::uuid $$;

create function verdad_touch_update_time() returns trigger
    language plpgsql
    as $$
begin
    new.update_time := now();
    return new;
end
$$;

create table organisation (
    id uuid not null,
    display_name text not null,
    kind text not null,
    time_zone text not null,
    create_time timestamptz not null default now(),
    update_time timestamptz not null default now(),
    constraint organisation_pkey primary key (id),
    constraint organisation_kind_check
        check (kind in ('hospital', 'welfare_centre', 'agency', 'other'))
);

create trigger organisation_update_time before update on organisation
    for each row execute function verdad_touch_update_time();

create table api_key (
    id uuid not null,
    organisation_id uuid not null,
    display_name text not null,
    role text not null,
    secret_prefix text not null,
    secret_hash bytea not null,
    create_time timestamptz not null default now(),
    revoke_time timestamptz,
    constraint api_key_pkey primary key (id),
    constraint api_key_organisation_fkey foreign key (organisation_id)
        references organisation (id),
    constraint api_key_secret_hash_key unique (secret_hash),
    constraint api_key_role_check check (role in ('ingest', 'analyst', 'admin'))
);

create index api_key_organisation_idx on api_key (organisation_id, id);

create table touchpoint (
    id uuid not null,
    organisation_id uuid not null,
    code text not null,
    display_name text not null,
    description text not null default '',
    stage text not null,
    channel text not null,
    is_key boolean not null default false,
    occurrence text not null default 'routine',
    cycle_position integer not null default 0,
    create_time timestamptz not null default now(),
    update_time timestamptz not null default now(),
    archive_time timestamptz,
    constraint touchpoint_pkey primary key (id),
    constraint touchpoint_organisation_fkey foreign key (organisation_id)
        references organisation (id),
    constraint touchpoint_stage_check
        check (stage in ('pre_service', 'service', 'post_service')),
    constraint touchpoint_channel_check
        check (channel in ('in_person', 'phone', 'remote')),
    constraint touchpoint_occurrence_check
        check (occurrence in ('routine', 'exceptional')),
    constraint touchpoint_cycle_position_check
        check (cycle_position between 0 and 10000)
);

-- Codes are unique per organisation regardless of case: "Lobby" and "lobby"
-- would name the same place to the people reading the analyses.
create unique index touchpoint_code_key on touchpoint (organisation_id, lower(code));
create index touchpoint_organisation_idx on touchpoint (organisation_id, id);

create trigger touchpoint_update_time before update on touchpoint
    for each row execute function verdad_touch_update_time();

grant select, insert, update on organisation, api_key, touchpoint to verdad_app;

alter table organisation enable row level security;
alter table organisation force row level security;
create policy organisation_tenant on organisation
    using (id = verdad_current_organisation())
    with check (id = verdad_current_organisation());

alter table api_key enable row level security;
alter table api_key force row level security;
create policy api_key_tenant on api_key
    using (organisation_id = verdad_current_organisation())
    with check (organisation_id = verdad_current_organisation());
-- Authentication must find a key before it knows the organisation: a key row
-- is visible to whoever presents the hash of its secret, and to nobody else.
create policy api_key_by_secret on api_key for select
    using (secret_hash = decode(nullif(current_setting('verdad.secret_hash', true), ''), 'hex'));

alter table touchpoint enable row level security;
alter table touchpoint force row level security;
create policy touchpoint_tenant on touchpoint
    using (organisation_id = verdad_current_organisation())
    with check (organisation_id = verdad_current_organisation());
