-- Service standards: the customer-satisfaction elements of each touchpoint,
-- with the measurable rule an encounter is evaluated against, and the
-- organisation's failure threshold.

-- Satisfaction at or below this fails an encounter (the 100 - 1 = 0 rule);
-- 0 means satisfaction alone never does.
alter table organisation
    add column failure_threshold integer not null default 2,
    add constraint organisation_failure_threshold_check
        check (failure_threshold between 0 and 4);

-- Lets other tables point at a touchpoint of their own organisation only.
alter table touchpoint
    add constraint touchpoint_organisation_id_key unique (organisation_id, id);

create table standard (
    id uuid not null,
    organisation_id uuid not null,
    -- null: the standard applies at every touchpoint of the organisation.
    touchpoint_id uuid,
    code text not null,
    title text not null,
    element text not null,
    severity text not null,
    guidance text not null default '',
    rule_kind text not null,
    metric_field text,
    comparison text,
    threshold double precision,
    create_time timestamptz not null default now(),
    update_time timestamptz not null default now(),
    archive_time timestamptz,
    constraint standard_pkey primary key (id),
    constraint standard_organisation_fkey foreign key (organisation_id)
        references organisation (id),
    -- The organisation id is part of the key: a standard can never be
    -- attached to another organisation's touchpoint.
    constraint standard_touchpoint_fkey foreign key (organisation_id, touchpoint_id)
        references touchpoint (organisation_id, id),
    constraint standard_element_check
        check (element in ('hardware', 'software', 'humanware')),
    constraint standard_severity_check
        check (severity in ('critical', 'minor')),
    constraint standard_rule_kind_check
        check (rule_kind in ('metric', 'observed')),
    constraint standard_metric_field_check
        check (metric_field in ('wait_seconds', 'first_response_seconds',
                                'duration_seconds', 'satisfaction', 'effort')),
    constraint standard_comparison_check
        check (comparison in ('lt', 'le', 'ge', 'gt')),
    -- A metric rule has all three parts; an observed rule has none.
    constraint standard_rule_check check (
        (rule_kind = 'metric'
            and metric_field is not null and comparison is not null and threshold is not null)
        or (rule_kind = 'observed'
            and metric_field is null and comparison is null and threshold is null)
    )
);

-- Encounters report observed standards by code, so codes are unique per
-- organisation regardless of case, like touchpoint codes.
create unique index standard_code_key on standard (organisation_id, lower(code));
create index standard_organisation_idx on standard (organisation_id, id);
create index standard_touchpoint_idx on standard (organisation_id, touchpoint_id);

create trigger standard_update_time before update on standard
    for each row execute function verdad_touch_update_time();

grant select, insert, update on standard to verdad_app;

alter table standard enable row level security;
alter table standard force row level security;
create policy standard_tenant on standard
    using (organisation_id = verdad_current_organisation())
    with check (organisation_id = verdad_current_organisation());
