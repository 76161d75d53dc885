-- Daily rollups of the encounters, so that analyses over months or a year
-- read thousands of rows instead of millions.
--
-- A day is a calendar day in the organisation's time zone, so that trend
-- buckets (days, weeks, months in that zone) are whole sums of days; a change
-- of zone rebuilds the organisation's rollups. The rollups are kept by
-- statement triggers on encounter in the same transaction as the rows they
-- sum, so they are never ahead of or behind the encounters. Updated rows
-- stay on their page (fillfactor) for cheap in-place updates.

create table encounter_day (
    organisation_id uuid not null,
    day date not null,
    touchpoint_id uuid not null,
    channel text not null,
    encounters bigint not null,
    rated bigint not null,
    satisfaction_sum bigint not null,
    satisfied bigint not null,
    top_box bigint not null,
    failed bigint not null,
    waits bigint not null,
    responses bigint not null,
    met bigint not null,
    violated bigint not null,
    primary key (organisation_id, day, touchpoint_id, channel)
) with (fillfactor = 70);

-- Met and violated results per standard revision and day: compliance.
create table encounter_day_standard (
    organisation_id uuid not null,
    day date not null,
    touchpoint_id uuid not null,
    channel text not null,
    revision_id uuid not null,
    met bigint not null,
    violated bigint not null,
    primary key (organisation_id, day, touchpoint_id, channel, revision_id)
) with (fillfactor = 70);

-- Wait and first-response seconds as histograms per day: medians and
-- percentiles of long ranges are read from them. Buckets are exact below
-- 128 s; above, 64 per doubling, so a bucket's midpoint is within 1/128 of
-- any value in it.
create table encounter_day_seconds (
    organisation_id uuid not null,
    day date not null,
    touchpoint_id uuid not null,
    channel text not null,
    measure text not null check (measure in ('wait', 'response')),
    bucket integer not null,
    encounters bigint not null,
    primary key (organisation_id, day, touchpoint_id, channel, measure, bucket)
) with (fillfactor = 70);

-- The lowest value of v's bucket (see domain::histogram, which mirrors it):
-- from 2^k on (k >= 7), buckets are 2^(k-6) wide. width_bucket counts the
-- powers of two from 128 up to v, which is k - 6. Not STRICT, so that
-- PostgreSQL inlines it (null gives null all the same).
create function verdad_seconds_bucket(v integer) returns integer
    language sql immutable parallel safe
    as $$
        select case when v < 128 then v
                    else v - v % (1 << width_bucket(v, array[
                        128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072,
                        262144, 524288, 1048576, 2097152, 4194304, 8388608, 16777216, 33554432,
                        67108864, 134217728, 268435456, 536870912, 1073741824])) end
    $$;

-- The statements that add the encounters of `source` (a table or a
-- parenthesised query with encounter's columns) to the rollups, times
-- `sign` (1 to add, -1 to take away). Rows are upserted in key order so
-- that concurrent ingests lock them in the same order.
create function verdad_encounter_rollup_statements(source text, sign integer) returns text[]
    language sql immutable
    as $$
        select array[
            format($q$
                insert into encounter_day as d
                    (organisation_id, day, touchpoint_id, channel, encounters, rated,
                     satisfaction_sum, satisfied, top_box, failed, waits, responses, met, violated)
                select e.organisation_id, (e.occur_time at time zone o.time_zone)::date,
                       e.touchpoint_id, e.channel,
                       %2$s * count(*),
                       %2$s * count(e.satisfaction),
                       %2$s * coalesce(sum(e.satisfaction), 0),
                       %2$s * count(*) filter (where e.satisfaction >= 4),
                       %2$s * count(*) filter (where e.satisfaction = 5),
                       %2$s * count(*) filter (where e.failed),
                       %2$s * count(e.wait_seconds),
                       %2$s * count(e.first_response_seconds),
                       %2$s * coalesce(sum(length(e.outcomes)
                                           - length(replace(e.outcomes, 'm', ''))), 0),
                       %2$s * coalesce(sum(length(e.outcomes)
                                           - length(replace(e.outcomes, 'v', ''))), 0)
                from %1$s e
                join organisation o on o.id = e.organisation_id
                group by 1, 2, 3, 4
                order by 1, 2, 3, 4
                on conflict (organisation_id, day, touchpoint_id, channel) do update set
                    encounters = d.encounters + excluded.encounters,
                    rated = d.rated + excluded.rated,
                    satisfaction_sum = d.satisfaction_sum + excluded.satisfaction_sum,
                    satisfied = d.satisfied + excluded.satisfied,
                    top_box = d.top_box + excluded.top_box,
                    failed = d.failed + excluded.failed,
                    waits = d.waits + excluded.waits,
                    responses = d.responses + excluded.responses,
                    met = d.met + excluded.met,
                    violated = d.violated + excluded.violated
            $q$, source, sign),
            format($q$
                insert into encounter_day_seconds as h
                    (organisation_id, day, touchpoint_id, channel, measure, bucket, encounters)
                select e.organisation_id, (e.occur_time at time zone o.time_zone)::date,
                       e.touchpoint_id, e.channel, m.measure,
                       verdad_seconds_bucket(m.seconds), %2$s * count(*)
                from %1$s e
                join organisation o on o.id = e.organisation_id
                cross join lateral (
                    values ('wait', e.wait_seconds), ('response', e.first_response_seconds)
                ) as m(measure, seconds)
                where m.seconds is not null
                group by 1, 2, 3, 4, 5, 6
                order by 1, 2, 3, 4, 5, 6
                on conflict (organisation_id, day, touchpoint_id, channel, measure, bucket)
                do update set encounters = h.encounters + excluded.encounters
            $q$, source, sign),
            format($q$
                insert into encounter_day_standard as s
                    (organisation_id, day, touchpoint_id, channel, revision_id, met, violated)
                select e.organisation_id, (e.occur_time at time zone o.time_zone)::date,
                       e.touchpoint_id, e.channel, r.revision_id,
                       %2$s * count(*) filter (where r.outcome = 'm'),
                       %2$s * count(*) filter (where r.outcome = 'v')
                from %1$s e
                join organisation o on o.id = e.organisation_id
                cross join lateral unnest(e.revision_ids, string_to_array(e.outcomes, null))
                    as r(revision_id, outcome)
                where r.outcome <> 'n'
                group by 1, 2, 3, 4, 5
                order by 1, 2, 3, 4, 5
                on conflict (organisation_id, day, touchpoint_id, channel, revision_id)
                do update set met = s.met + excluded.met, violated = s.violated + excluded.violated
            $q$, source, sign)
        ]
    $$;

create function verdad_encounter_rollup() returns trigger
    language plpgsql
    as $$
declare
    statement text;
begin
    -- Transition tables are visible to this function's own statements only,
    -- hence the statements are run here rather than in a helper.
    foreach statement in array verdad_encounter_rollup_statements(
        case tg_op when 'INSERT' then 'added' else 'removed' end,
        case tg_op when 'INSERT' then 1 else -1 end)
    loop
        execute statement;
    end loop;
    return null;
end
$$;

-- Triggers fire in the order of their names: these come after the journey
-- rollups' (rollup_1_...), so that the rows every ingest adds to, a day's,
-- are locked as briefly before commit as can be.
create trigger rollup_2_days_insert after insert on encounter
    referencing new table as added
    for each statement execute function verdad_encounter_rollup();

create trigger rollup_2_days_delete after delete on encounter
    referencing old table as removed
    for each statement execute function verdad_encounter_rollup();

-- Recomputes an organisation's rollups from its encounters: after a change
-- of time zone moves its day boundaries.
create function verdad_rebuild_encounter_rollups(organisation uuid) returns void
    language plpgsql
    as $$
declare
    statement text;
begin
    delete from encounter_day where organisation_id = organisation;
    delete from encounter_day_seconds where organisation_id = organisation;
    delete from encounter_day_standard where organisation_id = organisation;
    foreach statement in array verdad_encounter_rollup_statements(
        format('(select * from encounter where organisation_id = %L)', organisation), 1)
    loop
        execute statement;
    end loop;
end
$$;

grant select, insert, update, delete on encounter_day, encounter_day_seconds,
    encounter_day_standard to verdad_app;

alter table encounter_day enable row level security;
alter table encounter_day force row level security;
create policy encounter_day_tenant on encounter_day
    using (organisation_id = verdad_current_organisation())
    with check (organisation_id = verdad_current_organisation());

alter table encounter_day_standard enable row level security;
alter table encounter_day_standard force row level security;
create policy encounter_day_standard_tenant on encounter_day_standard
    using (organisation_id = verdad_current_organisation())
    with check (organisation_id = verdad_current_organisation());

alter table encounter_day_seconds enable row level security;
alter table encounter_day_seconds force row level security;
create policy encounter_day_seconds_tenant on encounter_day_seconds
    using (organisation_id = verdad_current_organisation())
    with check (organisation_id = verdad_current_organisation());

-- Encounters stored before this migration. Run by the migrating role, which
-- sees them all only when it bypasses row-level security (a superuser, as
-- the embedded PostgreSQL's is); otherwise a change of time zone, or
-- verdad_rebuild_encounter_rollups, fills an organisation's rollups.
do $$
declare
    statement text;
begin
    foreach statement in array verdad_encounter_rollup_statements('encounter', 1)
    loop
        execute statement;
    end loop;
end
$$;
