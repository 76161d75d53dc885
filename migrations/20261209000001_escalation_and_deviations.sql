-- Recovery cases that reach people: acknowledged, overdue, escalated; and
-- journeys that close and, when they went off the designed cycle, open a
-- case of their own.

-- A deviation case belongs to a journey, not to one encounter: it has no
-- encounter, and its touchpoint is the first one that deviated. A journey
-- opens at most one.
alter table recovery_case
    add column kind text not null default 'failure',
    alter column encounter_id drop not null,
    -- When someone took the case on; escalation stops then.
    add column acknowledge_time timestamptz,
    -- When recovery_case.overdue was emitted: once per case.
    add column overdue_time timestamptz,
    -- The steps of the organisation's escalation ladder climbed so far.
    add column escalation_level integer not null default 0,
    add column escalated_to text not null default '',
    add column escalate_time timestamptz,
    add constraint recovery_case_kind_check check (kind in ('failure', 'deviation')),
    add constraint recovery_case_kind_encounter_check
        check ((kind = 'failure') = (encounter_id is not null));

create unique index recovery_case_deviation_key on recovery_case (organisation_id, journey_id)
    where kind = 'deviation';

-- The sweep looks for cases that became overdue or climb the ladder.
create index recovery_case_unacknowledged_idx on recovery_case (organisation_id, due_time)
    where status <> 'resolved' and acknowledge_time is null;

-- escalation_ladder: [{"delay_seconds": 14400, "escalate_to": "ward-manager"}, ...].
-- deviation_checks: which deviations open cases; empty checks nothing, and
-- deviation_checks_start_time is when the checks were switched on.
alter table organisation
    add column escalation_ladder jsonb not null default '[]',
    add column deviation_checks text[] not null default '{}',
    add column deviation_checks_start_time timestamptz,
    add column journey_idle_seconds integer not null default 86400,
    add constraint organisation_escalation_ladder_check
        check (jsonb_typeof(escalation_ladder) = 'array'),
    add constraint organisation_deviation_checks_check
        check (deviation_checks <@ array['skipped_key_touchpoint', 'key_step_out_of_order']),
    add constraint organisation_journey_idle_check
        check (journey_idle_seconds between 3600 and 2592000);

-- The sweep of each server goes through every organisation: overdue cases,
-- escalations, idle journeys. It reads the organisations' settings across
-- tenants under this setting, and everything else as each organisation.
create policy organisation_sweep on organisation for select
    using (current_setting('verdad.sweep', true) = 'on');

-- A journey closes once: when its feedback arrives or when it has been idle
-- for the organisation's idle time. Closing checks it against the designed
-- cycle; the row keeps a replay or a restart from checking it again.
create table journey_close (
    organisation_id uuid not null,
    journey_id text not null,
    close_time timestamptz not null default now(),
    reason text not null,
    deviated boolean not null default false,
    constraint journey_close_pkey primary key (organisation_id, journey_id),
    constraint journey_close_organisation_fkey foreign key (organisation_id)
        references organisation (id),
    constraint journey_close_reason_check check (reason in ('feedback', 'idle'))
);

grant select, insert, update, delete on journey_close to verdad_app;

alter table journey_close enable row level security;
alter table journey_close force row level security;
create policy journey_close_tenant on journey_close
    using (organisation_id = verdad_current_organisation())
    with check (organisation_id = verdad_current_organisation());
