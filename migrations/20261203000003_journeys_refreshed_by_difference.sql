-- Journeys refreshed by their difference.
--
-- A fold refreshes every journey that gained an encounter. The refresh took
-- each journey's pairs out of journey_day_pair and put them all back in,
-- about seven pair rows written twice for a journey that gained one pair,
-- and it deleted and reinserted the journey's row. At 1,000 calls/s the
-- background fold of some 80 journeys every 75 ms took 20-80 ms, more
-- processor time than the ingests it followed. Refreshing the same 80
-- journeys (psql, a bench database of 26,000 encounters) took 30 ms that
-- way and 10 ms this way; 500 journeys 193 ms and 80 ms.
--
-- Now one statement reads the old summaries, computes the new ones, updates
-- the journeys' rows in place (deleting those left without encounters), and
-- writes only the pair rows whose count or seconds change. All its parts
-- see the rows as they were when it began, so the old summaries are read
-- before they are replaced, whatever order the parts run in; the delete and
-- the upsert of journey_path touch different journeys.
--
-- Refreshes of up to 200 journeys (the folds behind a live feed) now use
-- the generic plan: planned for their arguments, a fold of 80 journeys
-- spent some 6 ms planning. Larger ones (a stream's backlog) keep plans
-- made for their arguments: with the generic plan for every size, the
-- folds of 20,000 changes in `bench ingest` (a million encounters) ran past
-- the 30 s statement timeout.

create or replace function verdad_refresh_journeys(organisation uuid, journeys text[]) returns void
    language plpgsql
    as $$
begin
    with old as materialized (
        select j.journey_id, j.first_day, j.touchpoints, j.offsets
        from journey_path j
        where j.organisation_id = organisation and j.journey_id = any(journeys)
    ),
    fresh as materialized (
        select * from verdad_journey_summaries(organisation, journeys, '-infinity', 'infinity')
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
        select o.first_day, o.touchpoints, o.offsets, -1 as sign from old o
        union all
        select f.first_day, f.touchpoints, f.offsets, 1 from fresh f
    ) c
    cross join lateral verdad_journey_pairs(c.touchpoints, c.offsets) x
    group by 1, 2, 3, 4, 5
    having sum(c.sign) <> 0 or sum(c.sign * x.seconds) <> 0
    order by 1, 2, 3, 4, 5
    on conflict (organisation_id, first_day, from_touchpoint, to_touchpoint, bucket)
    do update set pairs = p.pairs + excluded.pairs,
                  seconds_sum = p.seconds_sum + excluded.seconds_sum;
end
$$;

create or replace function verdad_apply_rollups(
    organisation uuid, most integer, up_to bigint default null, only_journeys text[] default null
) returns integer
    language plpgsql
    as $$
declare
    applied integer;
    journeys text[];
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
    select count(*), array_agg(distinct e.journey_id order by e.journey_id)
    into applied, journeys
    from taken e;

    if applied = 0 then
        return 0;
    elsif cardinality(journeys) <= 200 then
        perform verdad_refresh_few_journeys(organisation, journeys);
    else
        perform verdad_refresh_many_journeys(organisation, journeys);
    end if;
    return applied;
end
$$;
