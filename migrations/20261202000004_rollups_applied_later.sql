-- Rollups applied after the fact instead of inside every ingest.
--
-- The rollup triggers upserted the daily rows and refreshed the journeys in
-- the transaction that stored the encounters. Two writers of one
-- organisation (a live feed's RecordEncounter batch and a stream's batch)
-- touch the same day rows, so the second waited for the first to commit:
-- under the load bench that put 10-15 ms lock waits into RecordEncounter's
-- tail. They also cost about half of a stream batch's time.
--
-- Now the triggers only append the changed encounters' rollup columns to
-- rollup_pending, which writers never update and so never wait on.
-- verdad_apply_rollups folds an organisation's pending rows into the
-- rollups, one applier per organisation at a time. The server runs it
-- shortly after every ingest and before every analysis that reads the
-- rollups (up to what was pending when the analysis began, so that it sees
-- every encounter committed before then); an erasure runs it for its own
-- journeys inside its transaction.

create table rollup_pending (
    organisation_id uuid not null,
    -- Taking rows in this order folds an encounter's -1 after its +1, and
    -- lets a fold stop at what was pending when it began.
    seq bigint generated always as identity,
    -- 1 for an encounter stored, -1 for one deleted.
    direction integer not null,
    journey_id text not null,
    touchpoint_id uuid not null,
    channel text not null,
    occur_time timestamptz not null,
    satisfaction smallint,
    failed boolean not null,
    wait_seconds integer,
    first_response_seconds integer,
    revision_ids uuid[] not null,
    outcomes text not null
);

create index rollup_pending_organisation_idx on rollup_pending (organisation_id, seq);

grant select, insert, delete on rollup_pending to verdad_app;

alter table rollup_pending enable row level security;
alter table rollup_pending force row level security;
create policy rollup_pending_tenant on rollup_pending
    using (organisation_id = verdad_current_organisation())
    with check (organisation_id = verdad_current_organisation());

create function verdad_queue_rollup() returns trigger
    language plpgsql
    as $$
begin
    insert into rollup_pending
        (organisation_id, direction, journey_id, touchpoint_id, channel, occur_time,
         satisfaction, failed, wait_seconds, first_response_seconds, revision_ids, outcomes)
    select e.organisation_id, case tg_op when 'INSERT' then 1 else -1 end, e.journey_id,
           e.touchpoint_id, e.channel, e.occur_time, e.satisfaction, e.failed,
           e.wait_seconds, e.first_response_seconds, e.revision_ids, e.outcomes
    from changed e;
    return null;
end
$$;

drop trigger rollup_1_journeys_insert on encounter;
drop trigger rollup_1_journeys_delete on encounter;
drop trigger rollup_2_days_insert on encounter;
drop trigger rollup_2_days_delete on encounter;
drop function verdad_journey_rollup();
drop function verdad_encounter_rollup();

create trigger rollup_queue_insert after insert on encounter
    referencing new table as changed
    for each statement execute function verdad_queue_rollup();

create trigger rollup_queue_delete after delete on encounter
    referencing old table as changed
    for each statement execute function verdad_queue_rollup();

-- Folds up to `most` of the organisation's pending rows, oldest first,
-- into the daily rollups and refreshes their journeys; returns how many it
-- took, so that a caller loops while it gets `most`. Bounded so that a
-- backlog (a bulk load nobody has read yet) is worked off in transactions
-- that each stay well inside the statement timeout. `up_to` stops at a
-- sequence number (what was pending when a caller began), `only_journeys`
-- takes only those journeys' rows (an erasure's).
--
-- Each pending row is taken (deleted) exactly once, so the daily sums,
-- which add up, count every encounter once; any subset may be folded
-- before the rest. Journeys are summarised afresh from their encounters,
-- which is right however often it happens. This relies on READ COMMITTED,
-- where each statement below sees what committed before it began.
create function verdad_apply_rollups(
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
    elsif cardinality(journeys) <= 32 then
        perform verdad_refresh_few_journeys(organisation, journeys);
    else
        perform verdad_refresh_many_journeys(organisation, journeys);
    end if;
    return applied;
end
$$;

-- A rebuild (after a change of time zone) recomputes everything from the
-- encounters, pending ones included: it takes the appliers' lock and drops
-- what is pending. Ingests cannot commit meanwhile: the caller holds the
-- organisation's row lock, which their foreign-key checks wait for.
create function verdad_rebuild_rollups(organisation uuid) returns void
    language plpgsql
    as $$
begin
    perform pg_advisory_xact_lock(hashtextextended('verdad/rollups/' || organisation, 0));
    delete from rollup_pending where organisation_id = organisation;
    perform verdad_rebuild_encounter_rollups(organisation);
    perform verdad_rebuild_journey_rollups(organisation);
end
$$;

-- The journey refresh took the old summaries' pairs out of an array of
-- journey_path rows held in a variable; reading it back cost some 170 µs a
-- journey (250 ms for the 1,500 journeys of one application), where a
-- trigger refreshing a few journeys never noticed. Now the old summaries'
-- pairs are taken out as the rows are deleted, and the new ones put in as
-- they are inserted: two passes over journey_day_pair instead of one, each
-- in key order, and only one applier of an organisation at a time. Pair
-- rows are rewritten even where a refresh changed nothing, and seconds_sum
-- (float8) is taken out and put back rather than left alone, so it may
-- drift in its last bits: means read from it are unaffected.
create or replace function verdad_refresh_journeys(organisation uuid, journeys text[]) returns void
    language plpgsql
    as $$
begin
    with old as (
        delete from journey_path j
        where j.organisation_id = organisation and j.journey_id = any(journeys)
        returning j.first_day, j.touchpoints, j.offsets
    )
    insert into journey_day_pair as p
        (organisation_id, first_day, from_touchpoint, to_touchpoint, bucket, pairs, seconds_sum)
    select organisation, c.first_day, x.from_touchpoint, x.to_touchpoint,
           verdad_pair_bucket(x.seconds), -count(*), -sum(x.seconds)
    from old c
    cross join lateral verdad_journey_pairs(c.touchpoints, c.offsets) x
    group by 1, 2, 3, 4, 5
    order by 1, 2, 3, 4, 5
    on conflict (organisation_id, first_day, from_touchpoint, to_touchpoint, bucket)
    do update set pairs = p.pairs + excluded.pairs,
                  seconds_sum = p.seconds_sum + excluded.seconds_sum;

    with new as (
        insert into journey_path
        select * from verdad_journey_summaries(organisation, journeys, '-infinity', 'infinity')
        returning first_day, touchpoints, offsets
    )
    insert into journey_day_pair as p
        (organisation_id, first_day, from_touchpoint, to_touchpoint, bucket, pairs, seconds_sum)
    select organisation, c.first_day, x.from_touchpoint, x.to_touchpoint,
           verdad_pair_bucket(x.seconds), count(*), sum(x.seconds)
    from new c
    cross join lateral verdad_journey_pairs(c.touchpoints, c.offsets) x
    group by 1, 2, 3, 4, 5
    order by 1, 2, 3, 4, 5
    on conflict (organisation_id, first_day, from_touchpoint, to_touchpoint, bucket)
    do update set pairs = p.pairs + excluded.pairs,
                  seconds_sum = p.seconds_sum + excluded.seconds_sum;
end
$$;

-- An application refreshes hundreds of journeys, a few encounters each.
-- Planned for the arguments, the fetch of their encounters scanned the
-- whole table once the journeys were some thousandths of its rows (35 ms
-- at 230,000 encounters, and growing with the table), where the journey
-- index finds them in a few. A rebuild, which reads every journey, calls
-- verdad_refresh_journeys itself and keeps the scan.
alter function verdad_refresh_many_journeys(uuid, text[]) set enable_seqscan = off;
