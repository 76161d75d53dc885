-- Journeys extended by their new encounters instead of summarised again.
--
-- A fold refreshed every journey that gained an encounter by reading all
-- of the journey's encounters again: in the load bench, 60 journeys of
-- some 8 encounters took 8 ms a fold, half of the fold, of which reading
-- and summarising the encounters was 3.5 ms. Most changes a live feed
-- brings are a journey's next step: an encounter after the journey's last
-- one. For those the journey's row plus the change is the new summary, so
-- the fold now passes its changes along and the refresh appends them.
--
-- A journey is extended so only when all of its changes are encounters
-- stored (none erased), each at its own time, all after the last one its
-- row holds (or it has no row). Anything else (an encounter arriving out
-- of order, a tie, an erasure) is summarised from the encounters as
-- before. This stays right though a row may already hold encounters whose
-- changes are still pending (a refresh reads every committed encounter):
-- such an encounter is never after the row's last one, so its change,
-- when folded, makes the journey be read again rather than be extended
-- twice; and every encounter ends up in its journey's row, because its
-- own change, when folded, either appends it or rereads the journey.
--
-- Extending a journey adds only the pairs after its old last step; a
-- journey read again still has the old row's pairs taken out and the new
-- row's put in. Refreshing 60 journeys of a bench database by one step
-- each (pgbench, 200 calls each, rolled back) took 5.1-7.4 ms before and
-- 3.5-3.9 ms extended.
--
-- Only the folds of a live feed (up to 200 journeys) extend journeys. A
-- backlog's fold reads its journeys as before: extending thousands at once
-- was slower in a first try (bench ingest of 200,000 encounters: folded
-- 10.7-12.8 s after the last batch against 1.1-1.2 s).
--
-- The few-journeys refresh runs without JIT: its estimates for unnested
-- arrays are PostgreSQL's defaults, and a first version of this one was
-- estimated costly enough to be compiled, 80 ms a call.

-- A journey's directly-follows pairs from its step `first_step` on.
create function verdad_journey_pairs_from(touchpoints uuid[], offsets float8[], first_step integer)
    returns table (from_touchpoint uuid, to_touchpoint uuid, seconds float8)
    language sql immutable
    as $$
        select touchpoints[i], touchpoints[i + 1], offsets[i + 1] - offsets[i]
        from generate_series(first_step, cardinality(touchpoints) - 1) as i
    $$;

-- verdad_refresh_many_journeys stays as it was: its call of
-- verdad_refresh_journeys(organisation, journeys) finds the new one, whose
-- changes default to none.
drop function verdad_refresh_few_journeys(uuid, text[]);
drop function verdad_refresh_journeys(uuid, text[]);

create function verdad_refresh_journeys(
    organisation uuid, journeys text[], changes rollup_pending[] default '{}'
) returns void
    language plpgsql
    as $$
declare
    -- The journeys whose changes are only encounters stored after the
    -- journey's last one as summarised (or that have no summary yet), at
    -- times distinct from each other's: for them, the journey's row plus
    -- the changes is the summary.
    extended text[];
    -- The others, summarised from their encounters.
    reread text[];
begin
    select coalesce(array_agg(x.journey_id), '{}') into extended
    from (
        select c.journey_id
        from unnest(changes) c
        left join journey_path j
          on j.organisation_id = organisation and j.journey_id = c.journey_id
        group by c.journey_id
        having bool_and(c.direction = 1)
           and count(distinct c.occur_time) = count(*)
           and (min(j.last_time) is null or min(c.occur_time) > min(j.last_time))
    ) x;
    -- A variable, not a subquery, so that the summaries' function is
    -- inlined and planned with the rest.
    reread := array(select unnest(journeys) except select unnest(extended));

    with old as materialized (
        select j.*
        from journey_path j
        where j.organisation_id = organisation and j.journey_id = any(journeys)
    ),
    -- Joined rather than tested with = any(): a backlog's fold extends
    -- thousands of journeys.
    extension as materialized (
        select unnest(extended) as journey_id
    ),
    appended (organisation_id, journey_id, first_time, last_time, first_day, encounters,
              failures, rated, satisfaction_sum, failed_at, first_response, touchpoints,
              offsets, satisfactions) as (
        select organisation, c.journey_id, min(c.start_time), max(c.occur_time),
               coalesce(min(o.first_day),
                        (min(c.start_time) at time zone min(z.time_zone))::date),
               (coalesce(min(o.encounters), 0) + count(*))::integer,
               (coalesce(min(o.failures), 0) + count(*) filter (where c.failed))::integer,
               (coalesce(min(o.rated), 0) + count(c.satisfaction))::integer,
               (coalesce(min(o.satisfaction_sum), 0) + coalesce(sum(c.satisfaction), 0))::integer,
               least(min(o.failed_at::text),
                     min(c.touchpoint_id::text) filter (where c.failed))::uuid,
               case when count(o.journey_id) = 0
                    then (array_agg(c.first_response_seconds order by c.occur_time))[1]
                    else min(o.first_response) end,
               coalesce(min(o.touchpoints), '{}')
                   || array_agg(c.touchpoint_id order by c.occur_time),
               coalesce(min(o.offsets), '{}')
                   || array_agg(extract(epoch from c.occur_time - c.start_time)::float8
                                order by c.occur_time),
               coalesce(min(o.satisfactions), '{}')
                   || array_agg(c.satisfaction order by c.occur_time)
        from (
            select c.*, coalesce(o.first_time,
                                 min(c.occur_time) over (partition by c.journey_id))
                        as start_time
            from unnest(changes) c
            join extension x on x.journey_id = c.journey_id
            left join old o on o.journey_id = c.journey_id
        ) c
        left join old o on o.journey_id = c.journey_id
        cross join (select t.time_zone from organisation t where t.id = organisation) z
        group by c.journey_id
    ),
    fresh as materialized (
        select * from appended
        union all
        select * from verdad_journey_summaries(organisation, reread, '-infinity', 'infinity')
    ),
    gone as (
        delete from journey_path j
        where j.organisation_id = organisation and j.journey_id = any(journeys)
          and j.journey_id not in (select f.journey_id from fresh f)
    ),
    kept as (
        insert into journey_path as j
        select * from fresh
        on conflict (organisation_id, journey_id) do update set
            first_time = excluded.first_time,
            last_time = excluded.last_time,
            first_day = excluded.first_day,
            encounters = excluded.encounters,
            failures = excluded.failures,
            rated = excluded.rated,
            satisfaction_sum = excluded.satisfaction_sum,
            failed_at = excluded.failed_at,
            first_response = excluded.first_response,
            touchpoints = excluded.touchpoints,
            offsets = excluded.offsets,
            satisfactions = excluded.satisfactions
    )
    insert into journey_day_pair as p
        (organisation_id, first_day, from_touchpoint, to_touchpoint, bucket, pairs, seconds_sum)
    select organisation, c.first_day, x.from_touchpoint, x.to_touchpoint,
           verdad_pair_bucket(x.seconds), sum(c.sign), sum(c.sign * x.seconds)
    from (
        select o.first_day, o.touchpoints, o.offsets, -1 as sign, 1 as first_step
        from old o
        where o.journey_id not in (select x.journey_id from extension x)
        union all
        -- An extended journey keeps its pairs up to its old last step.
        select f.first_day, f.touchpoints, f.offsets, 1,
               coalesce(cardinality(o.touchpoints), 1)
        from fresh f
        left join (old o join extension x on x.journey_id = o.journey_id)
          on o.journey_id = f.journey_id
    ) c
    cross join lateral verdad_journey_pairs_from(c.touchpoints, c.offsets, c.first_step) x
    group by 1, 2, 3, 4, 5
    having sum(c.sign) <> 0 or sum(c.sign * x.seconds) <> 0
    order by 1, 2, 3, 4, 5
    on conflict (organisation_id, first_day, from_touchpoint, to_touchpoint, bucket)
    do update set pairs = p.pairs + excluded.pairs,
                  seconds_sum = p.seconds_sum + excluded.seconds_sum;
end
$$;

create function verdad_refresh_few_journeys(
    organisation uuid, journeys text[], changes rollup_pending[] default '{}'
) returns void
    language plpgsql
    set plan_cache_mode = force_generic_plan
    set jit = off
    as $$ begin perform verdad_refresh_journeys(organisation, journeys, changes); end $$;

create or replace function verdad_apply_rollups(
    organisation uuid, most integer, up_to bigint default null, only_journeys text[] default null
) returns integer
    language plpgsql
    as $$
declare
    applied integer;
    journeys text[];
    changes rollup_pending[];
begin
    -- One applier per organisation: two refreshing one journey at once
    -- could commit the older summary last. The lock is taken before the
    -- statements below start, so they see what an applier before committed.
    perform pg_advisory_xact_lock(hashtextextended('verdad/rollups/' || organisation, 0));

    with taken as (
        delete from rollup_pending p
        where p.ctid = any (array(
            select q.ctid from rollup_pending q
            where q.organisation_id = organisation
              and (up_to is null or q.seq <= up_to)
              and (only_journeys is null or q.journey_id = any(only_journeys))
            order by q.seq
            limit most))
        returning p.*
    ),
    local as (
        select e.*, (e.occur_time at time zone o.time_zone)::date as day
        from taken e
        join organisation o on o.id = e.organisation_id
    ),
    days as (
        insert into encounter_day as d
            (organisation_id, day, touchpoint_id, channel, encounters, rated,
             satisfaction_sum, satisfied, top_box, failed, waits, responses, met, violated)
        select e.organisation_id, e.day, e.touchpoint_id, e.channel,
               sum(e.direction),
               coalesce(sum(e.direction) filter (where e.satisfaction is not null), 0),
               coalesce(sum(e.direction * e.satisfaction), 0),
               coalesce(sum(e.direction) filter (where e.satisfaction >= 4), 0),
               coalesce(sum(e.direction) filter (where e.satisfaction = 5), 0),
               coalesce(sum(e.direction) filter (where e.failed), 0),
               coalesce(sum(e.direction) filter (where e.wait_seconds is not null), 0),
               coalesce(sum(e.direction) filter (where e.first_response_seconds is not null), 0),
               sum(e.direction * (length(e.outcomes) - length(replace(e.outcomes, 'm', '')))),
               sum(e.direction * (length(e.outcomes) - length(replace(e.outcomes, 'v', ''))))
        from local e
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
    ),
    seconds as (
        insert into encounter_day_seconds as h
            (organisation_id, day, touchpoint_id, channel, measure, bucket, encounters)
        select e.organisation_id, e.day, e.touchpoint_id, e.channel, m.measure,
               verdad_seconds_bucket(m.seconds), sum(e.direction)
        from local e
        cross join lateral (
            values ('wait', e.wait_seconds), ('response', e.first_response_seconds)
        ) as m(measure, seconds)
        where m.seconds is not null
        group by 1, 2, 3, 4, 5, 6
        order by 1, 2, 3, 4, 5, 6
        on conflict (organisation_id, day, touchpoint_id, channel, measure, bucket)
        do update set encounters = h.encounters + excluded.encounters
    ),
    standards as (
        insert into encounter_day_standard as s
            (organisation_id, day, touchpoint_id, channel, revision_id, met, violated)
        select e.organisation_id, e.day, e.touchpoint_id, e.channel, r.revision_id,
               coalesce(sum(e.direction) filter (where r.outcome = 'm'), 0),
               coalesce(sum(e.direction) filter (where r.outcome = 'v'), 0)
        from local e
        cross join lateral unnest(e.revision_ids, string_to_array(e.outcomes, null))
            as r(revision_id, outcome)
        where r.outcome <> 'n'
        group by 1, 2, 3, 4, 5
        order by 1, 2, 3, 4, 5
        on conflict (organisation_id, day, touchpoint_id, channel, revision_id)
        do update set met = s.met + excluded.met, violated = s.violated + excluded.violated
    )
    select count(*), array_agg(distinct e.journey_id order by e.journey_id),
           array_agg(row(e.*)::rollup_pending)
    into applied, journeys, changes
    from taken e;

    if applied = 0 then
        return 0;
    elsif cardinality(journeys) <= 200 then
        perform verdad_refresh_few_journeys(organisation, journeys, changes);
    else
        -- A backlog's journeys are read again (see above).
        perform verdad_refresh_many_journeys(organisation, journeys);
    end if;
    return applied;
end
$$;
