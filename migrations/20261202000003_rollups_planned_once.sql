-- The daily rollup statements planned once per connection rather than at
-- every insert. A RecordEncounter batch adds a few rows; planning the three
-- statements afresh (EXECUTE) cost about as much as running them.
--
-- They are those of verdad_encounter_rollup_statements
-- (which the rebuild keeps using) written out as static SQL over a
-- transition table named `changed`, so that PL/pgSQL caches their plans.

create function verdad_encounter_day_rollup() returns trigger
    language plpgsql
    as $$
declare
    direction integer := case tg_op when 'INSERT' then 1 else -1 end;
begin
    insert into encounter_day as d
        (organisation_id, day, touchpoint_id, channel, encounters, rated,
         satisfaction_sum, satisfied, top_box, failed, waits, responses, met, violated)
    select e.organisation_id, (e.occur_time at time zone o.time_zone)::date,
           e.touchpoint_id, e.channel,
           direction * count(*),
           direction * count(e.satisfaction),
           direction * coalesce(sum(e.satisfaction), 0),
           direction * count(*) filter (where e.satisfaction >= 4),
           direction * count(*) filter (where e.satisfaction = 5),
           direction * count(*) filter (where e.failed),
           direction * count(e.wait_seconds),
           direction * count(e.first_response_seconds),
           direction * coalesce(sum(length(e.outcomes)
                               - length(replace(e.outcomes, 'm', ''))), 0),
           direction * coalesce(sum(length(e.outcomes)
                               - length(replace(e.outcomes, 'v', ''))), 0)
    from changed e
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
        violated = d.violated + excluded.violated;

    insert into encounter_day_seconds as h
        (organisation_id, day, touchpoint_id, channel, measure, bucket, encounters)
    select e.organisation_id, (e.occur_time at time zone o.time_zone)::date,
           e.touchpoint_id, e.channel, m.measure,
           verdad_seconds_bucket(m.seconds), direction * count(*)
    from changed e
    join organisation o on o.id = e.organisation_id
    cross join lateral (
        values ('wait', e.wait_seconds), ('response', e.first_response_seconds)
    ) as m(measure, seconds)
    where m.seconds is not null
    group by 1, 2, 3, 4, 5, 6
    order by 1, 2, 3, 4, 5, 6
    on conflict (organisation_id, day, touchpoint_id, channel, measure, bucket)
    do update set encounters = h.encounters + excluded.encounters;

    insert into encounter_day_standard as s
        (organisation_id, day, touchpoint_id, channel, revision_id, met, violated)
    select e.organisation_id, (e.occur_time at time zone o.time_zone)::date,
           e.touchpoint_id, e.channel, r.revision_id,
           direction * count(*) filter (where r.outcome = 'm'),
           direction * count(*) filter (where r.outcome = 'v')
    from changed e
    join organisation o on o.id = e.organisation_id
    cross join lateral unnest(e.revision_ids, string_to_array(e.outcomes, null))
        as r(revision_id, outcome)
    where r.outcome <> 'n'
    group by 1, 2, 3, 4, 5
    order by 1, 2, 3, 4, 5
    on conflict (organisation_id, day, touchpoint_id, channel, revision_id)
    do update set met = s.met + excluded.met, violated = s.violated + excluded.violated;
    return null;
end
$$;

drop trigger rollup_2_days_insert on encounter;
drop trigger rollup_2_days_delete on encounter;

create trigger rollup_2_days_insert after insert on encounter
    referencing new table as changed
    for each statement execute function verdad_encounter_day_rollup();

create trigger rollup_2_days_delete after delete on encounter
    referencing old table as changed
    for each statement execute function verdad_encounter_day_rollup();

drop function verdad_encounter_rollup();

-- Likewise the journey refresh of a RecordEncounter batch: a few journeys
-- by key, for which one generic plan per connection is as good as a plan
-- made for the arguments, and planning cost more than running. A larger
-- refresh (a stream's batch, a rebuild) keeps plans made for its
-- arguments: there a generic plan goes badly wrong.
create function verdad_refresh_few_journeys(organisation uuid, journeys text[]) returns void
    language plpgsql
    set plan_cache_mode = force_generic_plan
    as $$ begin perform verdad_refresh_journeys(organisation, journeys); end $$;

create function verdad_refresh_many_journeys(organisation uuid, journeys text[]) returns void
    language plpgsql
    set plan_cache_mode = force_custom_plan
    as $$ begin perform verdad_refresh_journeys(organisation, journeys); end $$;

create or replace function verdad_journey_rollup() returns trigger
    language plpgsql
    as $$
declare
    changed record;
begin
    for changed in execute format(
        'select organisation_id, array_agg(distinct journey_id order by journey_id) as journeys
         from %I group by organisation_id order by organisation_id',
        case tg_op when 'INSERT' then 'added' else 'removed' end)
    loop
        -- As before: journey locks in journey order.
        perform pg_advisory_xact_lock(hashtextextended(changed.organisation_id::text || '/' || j, 0))
        from unnest(changed.journeys) as j
        order by j;
        if cardinality(changed.journeys) <= 32 then
            perform verdad_refresh_few_journeys(changed.organisation_id, changed.journeys);
        else
            perform verdad_refresh_many_journeys(changed.organisation_id, changed.journeys);
        end if;
    end loop;
    return null;
end
$$;
