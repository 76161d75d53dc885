-- Each figure defined once.
--
-- The daily figures were written out four times: in the scorecard's SQL
-- over the encounters, in the rollups' SQL for the encounters at a scope's
-- edges, in the fold (verdad_apply_rollups) and in the time-zone rebuild's
-- statements (verdad_encounter_rollup_statements); a journey's `judged` in
-- the journey summaries, in the journey refresh and in the analyses. What
-- makes an encounter count in a figure is now a function below, which the
-- analyses (src/store/analysis/figures.rs) and the fold both call, and the
-- time-zone rebuild goes through the fold like every other change.
--
-- The functions are `language sql`, immutable and not strict, so that
-- PostgreSQL inlines them: the plans read the same expressions as before
-- (EXPLAIN VERBOSE shows no call), and nothing runs slower.

-- Satisfaction 4 or 5 of 5: counts towards CSAT. Journey feedback's
-- overall satisfaction is on the same scale.
create function verdad_satisfied(satisfaction smallint) returns boolean
    language sql immutable parallel safe
    as $$ select satisfaction >= 4 $$;

-- Satisfaction 5 of 5: the top box.
create function verdad_top_box(satisfaction smallint) returns boolean
    language sql immutable parallel safe
    as $$ select satisfaction = 5 $$;

-- Standards an encounter met, and violated: its outcome letters m and v
-- (see encounter.outcomes).
create function verdad_met(outcomes text) returns integer
    language sql immutable parallel safe
    as $$ select length(outcomes) - length(replace(outcomes, 'm', '')) $$;

create function verdad_violated(outcomes text) returns integer
    language sql immutable parallel safe
    as $$ select length(outcomes) - length(replace(outcomes, 'v', '')) $$;

-- An encounter's results per standard revision: a row per standard it met
-- or violated (not those that did not apply), with 1 in `met` or in
-- `violated`. Its outcome letters pair with the revisions it was evaluated
-- against. Compliance per standard sums them.
create function verdad_results(revision_ids uuid[], outcomes text)
    returns table (revision_id uuid, met integer, violated integer)
    language sql immutable parallel safe
    as $$
        select r.revision_id, (r.outcome = 'm')::integer, (r.outcome = 'v')::integer
        from unnest(revision_ids, string_to_array(outcomes, null)) as r(revision_id, outcome)
        where r.outcome <> 'n'
    $$;

-- An encounter that gives its journey something to judge it by: a rating,
-- or a standard met or violated.
create function verdad_judged(satisfaction smallint, outcomes text) returns boolean
    language sql immutable parallel safe
    as $$ select satisfaction is not null or outcomes ~ '[mv]' $$;

-- Likelihood to recommend 9 or 10 of 10: a promoter; 0 to 6: a detractor
-- (NPS).
create function verdad_promoter(likelihood_to_recommend smallint) returns boolean
    language sql immutable parallel safe
    as $$ select likelihood_to_recommend >= 9 $$;

create function verdad_detractor(likelihood_to_recommend smallint) returns boolean
    language sql immutable parallel safe
    as $$ select likelihood_to_recommend <= 6 $$;

-- A journey's score under 100 - 1 = 0: 0 when any encounter failed,
-- otherwise its mean satisfaction on a 0 to 100 scale (1 is 0, 5 is 100);
-- null with neither. domain::journey::JourneySummary::score says the same
-- for one journey in Rust.
create function verdad_journey_score(failures bigint, mean_satisfaction float8) returns float8
    language sql immutable parallel safe
    as $$
        select case when failures > 0 then 0.0
                    else (mean_satisfaction - 1.0) / 4.0 * 100.0 end
    $$;

-- A journey's directly-follows pairs: those from its first step on.
create or replace function verdad_journey_pairs(touchpoints uuid[], offsets float8[])
    returns table (from_touchpoint uuid, to_touchpoint uuid, seconds float8)
    language sql immutable
    as $$ select * from verdad_journey_pairs_from(touchpoints, offsets, 1) $$;

-- As in 20261207000001, judged by verdad_judged.
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
               (count(*) filter (where verdad_judged(s.satisfaction, s.outcomes)))::integer
        from (
            select e.*, min(e.occur_time) over (partition by e.journey_id) as start_time
            from journey_encounters e
            where e.occur_time >= from_time and e.occur_time < to_time
        ) s
        join organisation o on o.id = s.organisation_id
        group by s.organisation_id, s.journey_id, o.time_zone
    $$;

-- As in 20261207000001, judged by verdad_judged.
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

-- As in 20261206000003, each figure by its function above.
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
               coalesce(sum(e.direction) filter (where verdad_satisfied(e.satisfaction)), 0),
               coalesce(sum(e.direction) filter (where verdad_top_box(e.satisfaction)), 0),
               coalesce(sum(e.direction) filter (where e.failed), 0),
               coalesce(sum(e.direction) filter (where e.wait_seconds is not null), 0),
               coalesce(sum(e.direction) filter (where e.first_response_seconds is not null), 0),
               sum(e.direction * verdad_met(e.outcomes)),
               sum(e.direction * verdad_violated(e.outcomes))
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
               sum(e.direction * r.met), sum(e.direction * r.violated)
        from local e
        cross join lateral verdad_results(e.revision_ids, e.outcomes) r
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
        -- A backlog's journeys are read again (see 20261206000003).
        perform verdad_refresh_many_journeys(organisation, journeys);
    end if;
    return applied;
end
$$;
-- The rebuild after a change of time zone goes through the fold: it empties
-- the organisation's rollups and its queue, queues every encounter as if
-- stored anew, and folds the queue, in pieces of 20,000 changes as the
-- server's applier takes them. Queued in time order, each piece covers a
-- stretch of days and mostly whole journeys. Ingests cannot commit
-- meanwhile: the caller holds the organisation's row lock, which their
-- foreign-key checks wait for. The appliers' lock keeps other folds out.
create or replace function verdad_rebuild_rollups(organisation uuid) returns void
    language plpgsql
    as $$
begin
    perform pg_advisory_xact_lock(hashtextextended('verdad/rollups/' || organisation, 0));
    delete from rollup_pending where organisation_id = organisation;
    delete from encounter_day where organisation_id = organisation;
    delete from encounter_day_seconds where organisation_id = organisation;
    delete from encounter_day_standard where organisation_id = organisation;
    delete from journey_day_pair where organisation_id = organisation;
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

-- The rebuild's own statements, now unused. verdad_rebuild_journey_rollups
-- stays: the tests compare the fold's journeys with the journeys it
-- summarises afresh from the encounters.
drop function verdad_rebuild_encounter_rollups(uuid);
drop function verdad_encounter_rollup_statements(text, integer);
