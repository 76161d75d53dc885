-- Journeys as they stand, one row each, and the seconds between their
-- directly-following encounters per day, so that the journey analyses (the
-- MOT cycle, 100 - 1 = 0, first impressions) of long ranges read a row per
-- journey instead of sorting every encounter. Kept by statement triggers on
-- encounter in the transaction that changes the encounters.

create table journey_path (
    organisation_id uuid not null,
    journey_id text not null,
    first_time timestamptz not null,
    last_time timestamptz not null,
    -- first_time's day in the organisation's time zone.
    first_day date not null,
    encounters integer not null,
    failures integer not null,
    rated integer not null,
    satisfaction_sum integer not null,
    -- A failed touchpoint (the lowest id as text): the single failure's
    -- when failures = 1.
    failed_at uuid,
    -- The first encounter's first_response_seconds.
    first_response integer,
    -- The encounters' touchpoints in journey order (occur_time, then
    -- arrival), and their seconds after first_time.
    touchpoints uuid[] not null,
    offsets float8[] not null,
    -- Their satisfaction ratings, null where none was given.
    satisfactions smallint[] not null,
    primary key (organisation_id, journey_id)
);

create index journey_path_time_idx on journey_path (organisation_id, first_time);

-- Directly-follows pairs of the journeys that start on first_day, with the
-- seconds between the two in buckets of verdad_seconds_bucket.
create table journey_day_pair (
    organisation_id uuid not null,
    first_day date not null,
    from_touchpoint uuid not null,
    to_touchpoint uuid not null,
    bucket integer not null,
    pairs bigint not null,
    seconds_sum float8 not null,
    primary key (organisation_id, first_day, from_touchpoint, to_touchpoint, bucket)
) with (fillfactor = 70);

-- The journeys' summaries from their encounters in [from_time, to_time):
-- the rows of journey_path, or a scope's share of journeys at its edges.
-- The encounters are fetched by journey first (MATERIALIZED): with the
-- statistics of a table being loaded, the planner would otherwise scan the
-- whole range by time and filter the journeys out of it.
create function verdad_journey_summaries(
    organisation uuid, journeys text[], from_time timestamptz, to_time timestamptz
) returns setof journey_path
    language sql stable
    as $$
        with journey_encounters as materialized (
            select e.organisation_id, e.journey_id, e.occur_time, e.receive_seq, e.failed,
                   e.satisfaction, e.touchpoint_id, e.first_response_seconds
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
               array_agg(s.satisfaction order by s.occur_time, s.receive_seq)
        from (
            select e.*, min(e.occur_time) over (partition by e.journey_id) as start_time
            from journey_encounters e
            where e.occur_time >= from_time and e.occur_time < to_time
        ) s
        join organisation o on o.id = s.organisation_id
        group by s.organisation_id, s.journey_id, o.time_zone
    $$;

-- A journey's directly-follows pairs and the seconds between each two.
create function verdad_journey_pairs(touchpoints uuid[], offsets float8[])
    returns table (from_touchpoint uuid, to_touchpoint uuid, seconds float8)
    language sql immutable
    as $$
        select touchpoints[i], touchpoints[i + 1], offsets[i + 1] - offsets[i]
        from generate_series(1, cardinality(touchpoints) - 1) as i
    $$;

-- The bucket of a pair's seconds: whole seconds, rounded.
create function verdad_pair_bucket(seconds float8) returns integer
    language sql immutable parallel safe
    as $$ select verdad_seconds_bucket(least(round(seconds), 2147483647)::integer) $$;

-- Recomputes the journeys from their encounters: their rows rewritten (or
-- gone with their last encounter), and their pairs as they were taken out
-- of journey_day_pair and their pairs as they are put in. The pairs change
-- in one statement, in key order, so that two ingests changing the same
-- rows lock them in the same order and never wait on each other in a
-- circle.
create function verdad_refresh_journeys(organisation uuid, journeys text[]) returns void
    language plpgsql
    as $$
declare
    old_paths journey_path[];
begin
    select coalesce(array_agg(j), '{}') into old_paths
    from journey_path j
    where j.organisation_id = organisation and j.journey_id = any(journeys);
    delete from journey_path where organisation_id = organisation and journey_id = any(journeys);
    insert into journey_path
    select * from verdad_journey_summaries(organisation, journeys, '-infinity', 'infinity');

    insert into journey_day_pair as p
        (organisation_id, first_day, from_touchpoint, to_touchpoint, bucket, pairs, seconds_sum)
    select organisation, c.first_day, x.from_touchpoint, x.to_touchpoint,
           verdad_pair_bucket(x.seconds), sum(c.sign), sum(c.sign * x.seconds)
    from (
        select o.first_day, o.touchpoints, o.offsets, -1 as sign from unnest(old_paths) o
        union all
        select j.first_day, j.touchpoints, j.offsets, 1
        from journey_path j
        where j.organisation_id = organisation and j.journey_id = any(journeys)
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

create function verdad_journey_rollup() returns trigger
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
        -- Two ingests adding to one journey at once would each summarise it
        -- without the other's encounters: the second waits for the first to
        -- commit, and its next statements see them. Locks are taken in
        -- journey order, so two batches never wait on each other.
        perform pg_advisory_xact_lock(hashtextextended(changed.organisation_id::text || '/' || j, 0))
        from unnest(changed.journeys) as j
        order by j;
        perform verdad_refresh_journeys(changed.organisation_id, changed.journeys);
    end loop;
    return null;
end
$$;

create trigger rollup_1_journeys_insert after insert on encounter
    referencing new table as added
    for each statement execute function verdad_journey_rollup();

create trigger rollup_1_journeys_delete after delete on encounter
    referencing old table as removed
    for each statement execute function verdad_journey_rollup();

-- After a change of time zone moves first_day.
create function verdad_rebuild_journey_rollups(organisation uuid) returns void
    language plpgsql
    as $$
begin
    delete from journey_day_pair where organisation_id = organisation;
    delete from journey_path where organisation_id = organisation;
    perform verdad_refresh_journeys(organisation,
        array(select distinct journey_id from encounter where organisation_id = organisation));
end
$$;

grant select, insert, update, delete on journey_path, journey_day_pair to verdad_app;

alter table journey_path enable row level security;
alter table journey_path force row level security;
create policy journey_path_tenant on journey_path
    using (organisation_id = verdad_current_organisation())
    with check (organisation_id = verdad_current_organisation());

alter table journey_day_pair enable row level security;
alter table journey_day_pair force row level security;
create policy journey_day_pair_tenant on journey_day_pair
    using (organisation_id = verdad_current_organisation())
    with check (organisation_id = verdad_current_organisation());

-- Journeys stored before this migration (see the daily rollups' note on
-- row-level security).
select verdad_refresh_journeys(organisation_id, array_agg(distinct journey_id))
from encounter
group by organisation_id;
