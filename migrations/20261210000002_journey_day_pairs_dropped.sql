-- journey_day_pair held the directly-follows pairs of each day's journeys,
-- with their seconds in histogram buckets, for the MOT cycle's approximate
-- medians. The cycle now folds journey_path's exact times, and nothing
-- reads the table: the fold stops writing it and it goes, with the
-- functions only it used.

create or replace function public.verdad_refresh_journeys(organisation uuid, journeys text[], changes public.rollup_pending[] DEFAULT '{}'::public.rollup_pending[]) RETURNS void
    LANGUAGE plpgsql
    AS $$
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
              offsets, satisfactions, judged) as (
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
                   || array_agg(c.satisfaction order by c.occur_time),
               (coalesce(min(o.judged), 0)
                + count(*) filter (where verdad_judged(c.satisfaction, c.outcomes)))::integer
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
    )
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
        satisfactions = excluded.satisfactions,
        judged = excluded.judged;
end
$$;

create or replace function public.verdad_rebuild_journey_rollups(organisation uuid) RETURNS void
    LANGUAGE plpgsql
    AS $$
begin
    delete from journey_path where organisation_id = organisation;
    perform verdad_refresh_journeys(organisation,
        array(select distinct journey_id from encounter where organisation_id = organisation));
end
$$;

create or replace function public.verdad_rebuild_rollups(organisation uuid) RETURNS void
    LANGUAGE plpgsql
    AS $$
begin
    perform pg_advisory_xact_lock(hashtextextended('verdad/rollups/' || organisation, 0));
    delete from rollup_pending where organisation_id = organisation;
    delete from encounter_day where organisation_id = organisation;
    delete from encounter_day_seconds where organisation_id = organisation;
    delete from encounter_day_standard where organisation_id = organisation;
    delete from journey_path where organisation_id = organisation;
    -- As verdad_queue_rollup queues an encounter stored.
    insert into rollup_pending
        (organisation_id, direction, journey_id, touchpoint_id, channel, occur_time,
         satisfaction, failed, wait_seconds, first_response_seconds, revision_ids, outcomes)
    select e.organisation_id, 1, e.journey_id, e.touchpoint_id, e.channel, e.occur_time,
           e.satisfaction, e.failed, e.wait_seconds, e.first_response_seconds,
           e.revision_ids, e.outcomes
    from encounter e
    where e.organisation_id = organisation
    order by e.occur_time, e.receive_seq;
    while verdad_apply_rollups(organisation, 20000) = 20000 loop
    end loop;
end
$$;

drop function verdad_journey_pairs(uuid[], double precision[]);
drop function verdad_journey_pairs_from(uuid[], double precision[], integer);
drop function verdad_pair_bucket(double precision);
drop table journey_day_pair;
