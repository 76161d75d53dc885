-- Journeys with nothing to judge.
--
-- A journey whose encounters carry no rating and no standard result (met or
-- violated) has nothing to judge it by: it is neither perfect nor flawed.
-- Journey outcomes called every such journey perfect, so a log without
-- ratings or standards read as 100% perfect journeys. journey_path now
-- counts a journey's judged encounters (rated, or with a standard met or
-- violated), and the two functions that write its rows write the count too.

alter table journey_path add column judged integer not null default 0;

-- As before, with `judged` last, as the table's columns now end.
create or replace function verdad_journey_summaries(
    organisation uuid, journeys text[], from_time timestamptz, to_time timestamptz
) returns setof journey_path
    language sql stable
    as $$
        with journey_encounters as materialized (
            select e.organisation_id, e.journey_id, e.occur_time, e.receive_seq, e.failed,
                   e.satisfaction, e.touchpoint_id, e.first_response_seconds, e.outcomes
            from encounter e
            where e.organisation_id = organisation and e.journey_id = any(journeys)
        )
        select s.organisation_id, s.journey_id, min(s.occur_time), max(s.occur_time),
               (min(s.occur_time) at time zone o.time_zone)::date,
               count(*)::integer,
               (count(*) filter (where s.failed))::integer,
               count(s.satisfaction)::integer,
               coalesce(sum(s.satisfaction), 0)::integer,
               (min(s.touchpoint_id::text) filter (where s.failed))::uuid,
               (array_agg(s.first_response_seconds order by s.occur_time, s.receive_seq))[1],
               array_agg(s.touchpoint_id order by s.occur_time, s.receive_seq),
               array_agg(extract(epoch from s.occur_time - s.start_time)::float8
                         order by s.occur_time, s.receive_seq),
               array_agg(s.satisfaction order by s.occur_time, s.receive_seq),
               (count(*) filter (where s.satisfaction is not null
                                    or s.outcomes ~ '[mv]'))::integer
        from (
            select e.*, min(e.occur_time) over (partition by e.journey_id) as start_time
            from journey_encounters e
            where e.occur_time >= from_time and e.occur_time < to_time
        ) s
        join organisation o on o.id = s.organisation_id
        group by s.organisation_id, s.journey_id, o.time_zone
    $$;

-- As in 20261206000003, with `judged` appended and kept.
create or replace function verdad_refresh_journeys(
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
                + count(*) filter (where c.satisfaction is not null
                                      or c.outcomes ~ '[mv]'))::integer
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
            satisfactions = excluded.satisfactions,
            judged = excluded.judged
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

-- Journeys summarised before this migration. Run by the migrating role,
-- which sees them all only when it bypasses row-level security (a
-- superuser, as the embedded PostgreSQL's is); otherwise a change of time
-- zone rebuilds an organisation's journeys with their counts.
update journey_path j
set judged = s.judged
from (
    select e.organisation_id, e.journey_id,
           (count(*) filter (where e.satisfaction is not null
                                or e.outcomes ~ '[mv]'))::integer as judged
    from encounter e
    group by 1, 2
) s
where s.organisation_id = j.organisation_id and s.journey_id = j.journey_id
  and s.judged <> 0;
