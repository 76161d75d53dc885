-- The schema the migrations make, as PostgreSQL 15's pg_dump --schema-only
-- --no-owner --no-privileges prints it, without the migrations' own table and
-- without pg_dump's comments and settings. Do not edit: a test checks it
-- (tests/api/schema.rs), and scripts/schema-dump writes it.

CREATE FUNCTION public.verdad_apply_rollups(organisation uuid, most integer, up_to bigint DEFAULT NULL::bigint, only_journeys text[] DEFAULT NULL::text[]) RETURNS integer
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.verdad_authenticate(secret bytea) RETURNS TABLE(key_id uuid, organisation_id uuid, role text)
    LANGUAGE plpgsql
    AS $$
begin
    perform set_config('verdad.secret_hash', encode(secret, 'hex'), true);
    return query
        select k.id, k.organisation_id, k.role
        from api_key k
        where k.secret_hash = secret and k.revoke_time is null;
end
$$;

CREATE FUNCTION public.verdad_bump_reference_version() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
    update organisation set reference_version = reference_version + 1
    where id = case tg_op when 'DELETE' then old.organisation_id else new.organisation_id end;
    return null;
end
$$;

CREATE FUNCTION public.verdad_case_opened_events() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
    if exists (
        select from webhook w
        where w.organisation_id in (select o.organisation_id from opened o)
          and 'recovery_case.opened' = any(w.event_types)
    ) then
        perform verdad_emit_case_event('recovery_case.opened', o.id)
        from (select o.id from opened o order by o.open_time, o.id) o;
    end if;
    return null;
end
$$;

CREATE FUNCTION public.verdad_current_organisation() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ select nullif(current_setting('verdad.organisation_id', true), '')::uuid $$;

CREATE FUNCTION public.verdad_detractor(likelihood_to_recommend smallint) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select likelihood_to_recommend <= 6 $$;

CREATE FUNCTION public.verdad_emit_case_event(event_type text, case_id uuid, extra jsonb DEFAULT '{}'::jsonb) RETURNS void
    LANGUAGE plpgsql
    AS $$
declare
    c recovery_case;
    t touchpoint;
begin
    select * into c from recovery_case r where r.id = case_id;
    if not found then
        return;
    end if;
    select * into t from touchpoint p
    where p.organisation_id = c.organisation_id and p.id = c.touchpoint_id;
    with wanting as (
        select w.id from webhook w
        where w.organisation_id = c.organisation_id
          and event_type = any(w.event_types)
          and (w.touchpoint_ids = '{}' or c.touchpoint_id = any(w.touchpoint_ids))
          and (w.stages = '{}' or t.stage = any(w.stages))
    ),
    event as (
        insert into webhook_event (id, organisation_id, type, data)
        select gen_random_uuid(), c.organisation_id, event_type,
               jsonb_strip_nulls(jsonb_build_object(
                   'recovery_case_id', c.id,
                   'kind', c.kind,
                   'status', c.status,
                   'encounter_id', c.encounter_id,
                   'touchpoint_id', c.touchpoint_id,
                   'touchpoint_code', t.code,
                   'stage', t.stage,
                   'open_time', verdad_event_time(c.open_time),
                   'due_time', verdad_event_time(c.due_time),
                   'reasons', to_jsonb(c.failure_reasons),
                   'acknowledge_time', verdad_event_time(c.acknowledge_time),
                   'resolve_time', verdad_event_time(c.resolve_time),
                   'escalation_level', c.escalation_level
               ) || extra)
        where exists (select from wanting)
        returning id
    )
    insert into webhook_delivery (id, organisation_id, webhook_id, event_id)
    select gen_random_uuid(), c.organisation_id, wanting.id, event.id
    from wanting cross join event
    order by wanting.id;
end
$$;

CREATE FUNCTION public.verdad_event_time(t timestamp with time zone) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ select to_char(t at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

CREATE FUNCTION public.verdad_hl7_feed(application text, facility text, control text) RETURNS TABLE(id uuid, organisation_id uuid, code text, mapping jsonb, time_zone text, settled boolean)
    LANGUAGE plpgsql
    AS $$
declare
    hit record;
begin
    perform set_config('verdad.hl7_application', lower(application), true);
    perform set_config('verdad.hl7_facility', lower(facility), true);
    select f.id, f.organisation_id, f.code, f.mapping into hit
        from feed f
        where f.kind = 'hl7v2' and f.archive_time is null
          and lower(f.sending_application) = lower(application)
          and lower(f.sending_facility) = lower(facility);
    if hit.id is null then
        return;
    end if;
    perform set_config('verdad.hl7_application', '', true);
    perform set_config('verdad.hl7_facility', '', true);
    perform set_config('verdad.organisation_id', hit.organisation_id::text, true);
    return query
        select hit.id, hit.organisation_id, hit.code, hit.mapping, o.time_zone,
               exists (select 1 from feed_control c
                       where c.organisation_id = hit.organisation_id
                         and c.feed_id = hit.id and c.control_id = control)
        from organisation o
        where o.id = hit.organisation_id;
end
$$;

CREATE FUNCTION public.verdad_journey_score(failures bigint, mean_satisfaction double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        select case when failures > 0 then 0.0
                    else (mean_satisfaction - 1.0) / 4.0 * 100.0 end
    $$;

CREATE TABLE public.journey_path (
    organisation_id uuid NOT NULL,
    journey_id text NOT NULL,
    first_time timestamp with time zone NOT NULL,
    last_time timestamp with time zone NOT NULL,
    first_day date NOT NULL,
    encounters integer NOT NULL,
    failures integer NOT NULL,
    rated integer NOT NULL,
    satisfaction_sum integer NOT NULL,
    failed_at uuid,
    first_response integer,
    touchpoints uuid[] NOT NULL,
    offsets double precision[] NOT NULL,
    satisfactions smallint[] NOT NULL,
    judged integer DEFAULT 0 NOT NULL
)
WITH (fillfactor='70');

ALTER TABLE ONLY public.journey_path FORCE ROW LEVEL SECURITY;

CREATE FUNCTION public.verdad_journey_summaries(organisation uuid, journeys text[], from_time timestamp with time zone, to_time timestamp with time zone) RETURNS SETOF public.journey_path
    LANGUAGE sql STABLE
    AS $$
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

CREATE FUNCTION public.verdad_judged(satisfaction smallint, outcomes text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select satisfaction is not null or outcomes ~ '[mv]' $$;

CREATE FUNCTION public.verdad_met(outcomes text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select length(outcomes) - length(replace(outcomes, 'm', '')) $$;

CREATE FUNCTION public.verdad_next_reference_version() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
    new.reference_version := old.reference_version + 1;
    return new;
end
$$;

CREATE FUNCTION public.verdad_notify_api_key_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
    perform pg_notify('verdad_api_keys', '');
    return null;
end
$$;

CREATE FUNCTION public.verdad_notify_recovery_case() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
    perform pg_notify('verdad_recovery_case', new.organisation_id::text || ' ' || new.id::text);
    return null;
end
$$;

CREATE FUNCTION public.verdad_promoter(likelihood_to_recommend smallint) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select likelihood_to_recommend >= 9 $$;

CREATE FUNCTION public.verdad_queue_rollup() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.verdad_rebuild_journey_rollups(organisation uuid) RETURNS void
    LANGUAGE plpgsql
    AS $$
begin
    delete from journey_path where organisation_id = organisation;
    perform verdad_refresh_journeys(organisation,
        array(select distinct journey_id from encounter where organisation_id = organisation));
end
$$;

CREATE FUNCTION public.verdad_rebuild_rollups(organisation uuid) RETURNS void
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

CREATE TABLE public.rollup_pending (
    organisation_id uuid NOT NULL,
    seq bigint NOT NULL,
    direction integer NOT NULL,
    journey_id text NOT NULL,
    touchpoint_id uuid NOT NULL,
    channel text NOT NULL,
    occur_time timestamp with time zone NOT NULL,
    satisfaction smallint,
    failed boolean NOT NULL,
    wait_seconds integer,
    first_response_seconds integer,
    revision_ids uuid[] NOT NULL,
    outcomes text NOT NULL
);

ALTER TABLE ONLY public.rollup_pending FORCE ROW LEVEL SECURITY;

CREATE FUNCTION public.verdad_refresh_few_journeys(organisation uuid, journeys text[], changes public.rollup_pending[] DEFAULT '{}'::public.rollup_pending[]) RETURNS void
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    SET jit TO 'off'
    AS $$ begin perform verdad_refresh_journeys(organisation, journeys, changes); end $$;

CREATE FUNCTION public.verdad_refresh_journeys(organisation uuid, journeys text[], changes public.rollup_pending[] DEFAULT '{}'::public.rollup_pending[]) RETURNS void
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

CREATE FUNCTION public.verdad_refresh_many_journeys(organisation uuid, journeys text[]) RETURNS void
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_custom_plan'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$ begin perform verdad_refresh_journeys(organisation, journeys); end $$;

CREATE FUNCTION public.verdad_results(revision_ids uuid[], outcomes text) RETURNS TABLE(revision_id uuid, met integer, violated integer)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        select r.revision_id, (r.outcome = 'm')::integer, (r.outcome = 'v')::integer
        from unnest(revision_ids, string_to_array(outcomes, null)) as r(revision_id, outcome)
        where r.outcome <> 'n'
    $$;

CREATE FUNCTION public.verdad_satisfied(satisfaction smallint) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select satisfaction >= 4 $$;

CREATE FUNCTION public.verdad_seconds_bucket(v integer) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        select case when v < 128 then v
                    else v - v % (1 << width_bucket(v, array[
                        128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072,
                        262144, 524288, 1048576, 2097152, 4194304, 8388608, 16777216, 33554432,
                        67108864, 134217728, 268435456, 536870912, 1073741824])) end
    $$;

CREATE FUNCTION public.verdad_store_encounters(organisation uuid, expected_version bigint, case_deadline_seconds double precision, new_ids uuid[], new_touchpoint_ids uuid[], new_journey_ids text[], new_customer_hashes bytea[], new_occur_times timestamp with time zone[], new_channels text[], new_waits integer[], new_first_responses integer[], new_durations integer[], new_satisfactions smallint[], new_efforts smallint[], new_situations text[], new_staff_refs text[], new_comments text[], new_observations text[], new_attributes text[], new_sources text[], new_external_ids text[], new_content_hashes bytea[], new_failed boolean[], new_low_satisfaction boolean[], new_revision_ids text[], new_outcomes text[], case_ids uuid[], case_encounter_ids uuid[], case_reasons text[], case_satisfactions smallint[]) RETURNS TABLE(stored_id uuid, stored_receive_time timestamp with time zone, stored_source text, stored_external_id text, stored_content_hash bytea)
    LANGUAGE plpgsql
    AS $$
declare
    inserted_ids uuid[];
    inserted_times timestamptz[];
begin
    perform set_config('verdad.organisation_id', organisation::text, true);
    if expected_version is not null and not exists (
        select from organisation o
        where o.id = organisation and o.reference_version = expected_version
    ) then
        raise exception 'the organisation''s reference version moved'
            using errcode = 'VRD01';
    end if;

    with inserted as (
        insert into encounter
            (id, organisation_id, touchpoint_id, journey_id, customer_hash, occur_time,
             channel, wait_seconds, first_response_seconds, duration_seconds, satisfaction,
             effort, situation, staff_ref, comment, observations, attributes, source,
             external_id, content_hash, failed, low_satisfaction, revision_ids, outcomes)
        select u.id, organisation, u.touchpoint_id, u.journey_id, u.customer_hash,
               u.occur_time, u.channel, u.wait_seconds, u.first_response_seconds,
               u.duration_seconds, u.satisfaction, u.effort, u.situation, u.staff_ref,
               u.comment, u.observations::jsonb, u.attributes::jsonb, u.source,
               u.external_id, u.content_hash, u.failed, u.low_satisfaction,
               u.revision_ids::uuid[], u.outcomes
        from unnest(new_ids, new_touchpoint_ids, new_journey_ids, new_customer_hashes,
                    new_occur_times, new_channels, new_waits, new_first_responses,
                    new_durations, new_satisfactions, new_efforts, new_situations,
                    new_staff_refs, new_comments, new_observations, new_attributes,
                    new_sources, new_external_ids, new_content_hashes, new_failed,
                    new_low_satisfaction, new_revision_ids, new_outcomes)
             with ordinality
             as u(id, touchpoint_id, journey_id, customer_hash, occur_time, channel,
                  wait_seconds, first_response_seconds, duration_seconds, satisfaction,
                  effort, situation, staff_ref, comment, observations, attributes, source,
                  external_id, content_hash, failed, low_satisfaction, revision_ids,
                  outcomes, item)
        order by u.item
        on conflict (organisation_id, source, external_id) do nothing
        returning encounter.id, encounter.receive_time, encounter.touchpoint_id,
                  encounter.journey_id
    ),
    opened as (
        insert into recovery_case
            (id, organisation_id, encounter_id, touchpoint_id, journey_id, due_time,
             failure_reasons, original_satisfaction)
        select c.id, organisation, i.id, i.touchpoint_id, i.journey_id,
               now() + make_interval(secs => case_deadline_seconds),
               string_to_array(c.reasons, E'\n'), c.satisfaction
        from unnest(case_ids, case_encounter_ids, case_reasons, case_satisfactions)
             as c(id, encounter_id, reasons, satisfaction)
        join inserted i on i.id = c.encounter_id
        on conflict (encounter_id) do nothing
    )
    select coalesce(array_agg(i.id), '{}'), coalesce(array_agg(i.receive_time), '{}')
    into inserted_ids, inserted_times
    from inserted i;

    return query
    select i.id, i.receive_time, null::text, null::text, null::bytea
    from unnest(inserted_ids, inserted_times) as i(id, receive_time);

    if cardinality(inserted_ids) < cardinality(new_ids) then
        return query
        select e.id, null::timestamptz, e.source, e.external_id, e.content_hash
        from unnest(new_sources, new_external_ids) as k(source, external_id)
        join encounter e
          on e.organisation_id = organisation
         and e.source = k.source and e.external_id = k.external_id
        where e.id <> all(inserted_ids);
    end if;
end
$$;

CREATE FUNCTION public.verdad_top_box(satisfaction smallint) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select satisfaction = 5 $$;

CREATE FUNCTION public.verdad_touch_update_time() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
    new.update_time := now();
    return new;
end
$$;

CREATE FUNCTION public.verdad_violated(outcomes text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select length(outcomes) - length(replace(outcomes, 'v', '')) $$;

CREATE TABLE public.api_key (
    id uuid NOT NULL,
    organisation_id uuid NOT NULL,
    display_name text NOT NULL,
    role text NOT NULL,
    secret_prefix text NOT NULL,
    secret_hash bytea NOT NULL,
    create_time timestamp with time zone DEFAULT now() NOT NULL,
    revoke_time timestamp with time zone,
    CONSTRAINT api_key_role_check CHECK ((role = ANY (ARRAY['ingest'::text, 'analyst'::text, 'admin'::text])))
);

ALTER TABLE ONLY public.api_key FORCE ROW LEVEL SECURITY;

CREATE TABLE public.encounter (
    id uuid NOT NULL,
    organisation_id uuid NOT NULL,
    receive_seq bigint NOT NULL,
    receive_time timestamp with time zone DEFAULT now() NOT NULL,
    touchpoint_id uuid NOT NULL,
    journey_id text NOT NULL,
    customer_hash bytea,
    occur_time timestamp with time zone NOT NULL,
    channel text NOT NULL,
    wait_seconds integer,
    first_response_seconds integer,
    duration_seconds integer,
    satisfaction smallint,
    effort smallint,
    situation text,
    staff_ref text,
    comment text DEFAULT ''::text NOT NULL,
    observations jsonb,
    attributes jsonb,
    source text NOT NULL,
    external_id text NOT NULL,
    content_hash bytea NOT NULL,
    failed boolean NOT NULL,
    low_satisfaction boolean NOT NULL,
    revision_ids uuid[] NOT NULL,
    outcomes text NOT NULL,
    CONSTRAINT encounter_channel_check CHECK ((channel = ANY (ARRAY['in_person'::text, 'phone'::text, 'remote'::text]))),
    CONSTRAINT encounter_effort_check CHECK (((effort >= 1) AND (effort <= 7))),
    CONSTRAINT encounter_outcomes_check CHECK (((length(outcomes) = cardinality(revision_ids)) AND (outcomes ~ '^[mvn]*$'::text))),
    CONSTRAINT encounter_satisfaction_check CHECK (((satisfaction >= 1) AND (satisfaction <= 5))),
    CONSTRAINT encounter_seconds_check CHECK ((((wait_seconds >= 0) AND (wait_seconds <= 604800)) AND ((first_response_seconds >= 0) AND (first_response_seconds <= 604800)) AND ((duration_seconds >= 0) AND (duration_seconds <= 604800)))),
    CONSTRAINT encounter_situation_check CHECK ((situation = ANY (ARRAY['recovery'::text, 'adaptability'::text, 'spontaneity'::text, 'coping'::text])))
);

ALTER TABLE ONLY public.encounter FORCE ROW LEVEL SECURITY;

CREATE TABLE public.encounter_day (
    organisation_id uuid NOT NULL,
    day date NOT NULL,
    touchpoint_id uuid NOT NULL,
    channel text NOT NULL,
    encounters bigint NOT NULL,
    rated bigint NOT NULL,
    satisfaction_sum bigint NOT NULL,
    satisfied bigint NOT NULL,
    top_box bigint NOT NULL,
    failed bigint NOT NULL,
    waits bigint NOT NULL,
    responses bigint NOT NULL,
    met bigint NOT NULL,
    violated bigint NOT NULL
)
WITH (fillfactor='70');

ALTER TABLE ONLY public.encounter_day FORCE ROW LEVEL SECURITY;

CREATE TABLE public.encounter_day_seconds (
    organisation_id uuid NOT NULL,
    day date NOT NULL,
    touchpoint_id uuid NOT NULL,
    channel text NOT NULL,
    measure text NOT NULL,
    bucket integer NOT NULL,
    encounters bigint NOT NULL,
    CONSTRAINT encounter_day_seconds_measure_check CHECK ((measure = ANY (ARRAY['wait'::text, 'response'::text])))
)
WITH (fillfactor='70');

ALTER TABLE ONLY public.encounter_day_seconds FORCE ROW LEVEL SECURITY;

CREATE TABLE public.encounter_day_standard (
    organisation_id uuid NOT NULL,
    day date NOT NULL,
    touchpoint_id uuid NOT NULL,
    channel text NOT NULL,
    revision_id uuid NOT NULL,
    met bigint NOT NULL,
    violated bigint NOT NULL
)
WITH (fillfactor='70');

ALTER TABLE ONLY public.encounter_day_standard FORCE ROW LEVEL SECURITY;

ALTER TABLE public.encounter ALTER COLUMN receive_seq ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME public.encounter_receive_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.feed (
    id uuid NOT NULL,
    organisation_id uuid NOT NULL,
    code text NOT NULL,
    display_name text NOT NULL,
    kind text NOT NULL,
    sending_application text,
    sending_facility text,
    mapping jsonb NOT NULL,
    accepted bigint DEFAULT 0 NOT NULL,
    duplicates bigint DEFAULT 0 NOT NULL,
    ignored bigint DEFAULT 0 NOT NULL,
    rejected bigint DEFAULT 0 NOT NULL,
    last_message_time timestamp with time zone,
    create_time timestamp with time zone DEFAULT now() NOT NULL,
    update_time timestamp with time zone DEFAULT now() NOT NULL,
    archive_time timestamp with time zone,
    CONSTRAINT feed_check CHECK (((kind = 'hl7v2'::text) = (sending_application IS NOT NULL))),
    CONSTRAINT feed_kind_check CHECK ((kind = ANY (ARRAY['hl7v2'::text, 'fhir_r4'::text])))
);

ALTER TABLE ONLY public.feed FORCE ROW LEVEL SECURITY;

CREATE TABLE public.feed_control (
    organisation_id uuid NOT NULL,
    feed_id uuid NOT NULL,
    control_id text NOT NULL,
    settle_time timestamp with time zone DEFAULT now() NOT NULL,
    kind text NOT NULL,
    journey_id text NOT NULL,
    CONSTRAINT feed_control_kind_check CHECK ((kind = ANY (ARRAY['withdrawn'::text, 'cancel'::text])))
);

ALTER TABLE ONLY public.feed_control FORCE ROW LEVEL SECURITY;

CREATE TABLE public.feed_rejection (
    id uuid NOT NULL,
    organisation_id uuid NOT NULL,
    feed_id uuid NOT NULL,
    control_id text NOT NULL,
    receive_time timestamp with time zone DEFAULT now() NOT NULL,
    acknowledgement text NOT NULL,
    segment text NOT NULL,
    field integer NOT NULL,
    reason text NOT NULL,
    CONSTRAINT feed_rejection_acknowledgement_check CHECK ((acknowledgement = ANY (ARRAY['AE'::text, 'AR'::text])))
);

ALTER TABLE ONLY public.feed_rejection FORCE ROW LEVEL SECURITY;

CREATE TABLE public.journey_close (
    organisation_id uuid NOT NULL,
    journey_id text NOT NULL,
    close_time timestamp with time zone DEFAULT now() NOT NULL,
    reason text NOT NULL,
    deviated boolean DEFAULT false NOT NULL,
    CONSTRAINT journey_close_reason_check CHECK ((reason = ANY (ARRAY['feedback'::text, 'idle'::text])))
);

ALTER TABLE ONLY public.journey_close FORCE ROW LEVEL SECURITY;

CREATE TABLE public.journey_feedback (
    organisation_id uuid NOT NULL,
    journey_id text NOT NULL,
    overall_satisfaction smallint,
    likelihood_to_recommend smallint,
    complete_time timestamp with time zone NOT NULL,
    comment text DEFAULT ''::text NOT NULL,
    content_hash bytea NOT NULL,
    receive_time timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT journey_feedback_given_check CHECK (((overall_satisfaction IS NOT NULL) OR (likelihood_to_recommend IS NOT NULL))),
    CONSTRAINT journey_feedback_recommend_check CHECK (((likelihood_to_recommend >= 0) AND (likelihood_to_recommend <= 10))),
    CONSTRAINT journey_feedback_satisfaction_check CHECK (((overall_satisfaction >= 1) AND (overall_satisfaction <= 5)))
);

ALTER TABLE ONLY public.journey_feedback FORCE ROW LEVEL SECURITY;

CREATE TABLE public.organisation (
    id uuid NOT NULL,
    display_name text NOT NULL,
    kind text NOT NULL,
    time_zone text NOT NULL,
    create_time timestamp with time zone DEFAULT now() NOT NULL,
    update_time timestamp with time zone DEFAULT now() NOT NULL,
    failure_threshold integer DEFAULT 2 NOT NULL,
    recovery_deadline_seconds integer DEFAULT 86400 NOT NULL,
    customer_key bytea,
    first_impression_seconds integer DEFAULT 15 NOT NULL,
    reference_version bigint DEFAULT 0 NOT NULL,
    escalation_ladder jsonb DEFAULT '[]'::jsonb NOT NULL,
    deviation_checks text[] DEFAULT '{}'::text[] NOT NULL,
    deviation_checks_start_time timestamp with time zone,
    journey_idle_seconds integer DEFAULT 86400 NOT NULL,
    CONSTRAINT organisation_customer_key_check CHECK (((customer_key IS NULL) OR (length(customer_key) = 32))),
    CONSTRAINT organisation_deviation_checks_check CHECK ((deviation_checks <@ ARRAY['skipped_key_touchpoint'::text, 'key_step_out_of_order'::text])),
    CONSTRAINT organisation_escalation_ladder_check CHECK ((jsonb_typeof(escalation_ladder) = 'array'::text)),
    CONSTRAINT organisation_failure_threshold_check CHECK (((failure_threshold >= 0) AND (failure_threshold <= 4))),
    CONSTRAINT organisation_first_impression_check CHECK (((first_impression_seconds >= 1) AND (first_impression_seconds <= 3600))),
    CONSTRAINT organisation_journey_idle_check CHECK (((journey_idle_seconds >= 3600) AND (journey_idle_seconds <= 2592000))),
    CONSTRAINT organisation_kind_check CHECK ((kind = ANY (ARRAY['hospital'::text, 'welfare_centre'::text, 'agency'::text, 'other'::text]))),
    CONSTRAINT organisation_recovery_deadline_check CHECK (((recovery_deadline_seconds >= 60) AND (recovery_deadline_seconds <= 2592000)))
);

ALTER TABLE ONLY public.organisation FORCE ROW LEVEL SECURITY;

CREATE TABLE public.recovery_case (
    id uuid NOT NULL,
    organisation_id uuid NOT NULL,
    encounter_id uuid,
    touchpoint_id uuid NOT NULL,
    journey_id text NOT NULL,
    status text DEFAULT 'open'::text NOT NULL,
    assignee text DEFAULT ''::text NOT NULL,
    open_time timestamp with time zone DEFAULT now() NOT NULL,
    due_time timestamp with time zone NOT NULL,
    resolve_time timestamp with time zone,
    resolution_note text DEFAULT ''::text NOT NULL,
    failure_reasons text[] NOT NULL,
    original_satisfaction smallint,
    follow_up_satisfaction smallint,
    update_time timestamp with time zone DEFAULT now() NOT NULL,
    kind text DEFAULT 'failure'::text NOT NULL,
    acknowledge_time timestamp with time zone,
    overdue_time timestamp with time zone,
    escalation_level integer DEFAULT 0 NOT NULL,
    escalated_to text DEFAULT ''::text NOT NULL,
    escalate_time timestamp with time zone,
    CONSTRAINT recovery_case_follow_up_check CHECK (((follow_up_satisfaction >= 1) AND (follow_up_satisfaction <= 5))),
    CONSTRAINT recovery_case_kind_check CHECK ((kind = ANY (ARRAY['failure'::text, 'deviation'::text]))),
    CONSTRAINT recovery_case_kind_encounter_check CHECK (((kind = 'failure'::text) = (encounter_id IS NOT NULL))),
    CONSTRAINT recovery_case_resolved_check CHECK (((status = 'resolved'::text) = (resolve_time IS NOT NULL))),
    CONSTRAINT recovery_case_status_check CHECK ((status = ANY (ARRAY['open'::text, 'in_progress'::text, 'resolved'::text])))
);

ALTER TABLE ONLY public.recovery_case FORCE ROW LEVEL SECURITY;

ALTER TABLE public.rollup_pending ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.rollup_pending_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.server_secret (
    name text NOT NULL,
    value bytea NOT NULL,
    CONSTRAINT server_secret_value_check CHECK ((length(value) >= 32))
);

CREATE TABLE public.standard (
    id uuid NOT NULL,
    organisation_id uuid NOT NULL,
    touchpoint_id uuid,
    code text NOT NULL,
    title text NOT NULL,
    element text NOT NULL,
    severity text NOT NULL,
    guidance text DEFAULT ''::text NOT NULL,
    rule_kind text NOT NULL,
    metric_field text,
    comparison text,
    threshold double precision,
    create_time timestamp with time zone DEFAULT now() NOT NULL,
    update_time timestamp with time zone DEFAULT now() NOT NULL,
    archive_time timestamp with time zone,
    revision_id uuid NOT NULL,
    CONSTRAINT standard_comparison_check CHECK ((comparison = ANY (ARRAY['lt'::text, 'le'::text, 'ge'::text, 'gt'::text]))),
    CONSTRAINT standard_element_check CHECK ((element = ANY (ARRAY['hardware'::text, 'software'::text, 'humanware'::text]))),
    CONSTRAINT standard_metric_field_check CHECK ((metric_field = ANY (ARRAY['wait_seconds'::text, 'first_response_seconds'::text, 'duration_seconds'::text, 'satisfaction'::text, 'effort'::text]))),
    CONSTRAINT standard_rule_check CHECK ((((rule_kind = 'metric'::text) AND (metric_field IS NOT NULL) AND (comparison IS NOT NULL) AND (threshold IS NOT NULL)) OR ((rule_kind = 'observed'::text) AND (metric_field IS NULL) AND (comparison IS NULL) AND (threshold IS NULL)))),
    CONSTRAINT standard_rule_kind_check CHECK ((rule_kind = ANY (ARRAY['metric'::text, 'observed'::text]))),
    CONSTRAINT standard_severity_check CHECK ((severity = ANY (ARRAY['critical'::text, 'minor'::text])))
);

ALTER TABLE ONLY public.standard FORCE ROW LEVEL SECURITY;

CREATE TABLE public.standard_revision (
    id uuid NOT NULL,
    organisation_id uuid NOT NULL,
    standard_id uuid NOT NULL,
    code text NOT NULL,
    severity text NOT NULL,
    rule_kind text NOT NULL,
    metric_field text,
    comparison text,
    threshold double precision,
    create_time timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT standard_revision_rule_check CHECK ((((rule_kind = 'metric'::text) AND (metric_field IS NOT NULL) AND (comparison IS NOT NULL) AND (threshold IS NOT NULL)) OR ((rule_kind = 'observed'::text) AND (metric_field IS NULL) AND (comparison IS NULL) AND (threshold IS NULL)))),
    CONSTRAINT standard_revision_severity_check CHECK ((severity = ANY (ARRAY['critical'::text, 'minor'::text])))
);

ALTER TABLE ONLY public.standard_revision FORCE ROW LEVEL SECURITY;

CREATE TABLE public.touchpoint (
    id uuid NOT NULL,
    organisation_id uuid NOT NULL,
    code text NOT NULL,
    display_name text NOT NULL,
    description text DEFAULT ''::text NOT NULL,
    stage text NOT NULL,
    channel text NOT NULL,
    is_key boolean DEFAULT false NOT NULL,
    occurrence text DEFAULT 'routine'::text NOT NULL,
    cycle_position integer DEFAULT 0 NOT NULL,
    create_time timestamp with time zone DEFAULT now() NOT NULL,
    update_time timestamp with time zone DEFAULT now() NOT NULL,
    archive_time timestamp with time zone,
    CONSTRAINT touchpoint_channel_check CHECK ((channel = ANY (ARRAY['in_person'::text, 'phone'::text, 'remote'::text]))),
    CONSTRAINT touchpoint_cycle_position_check CHECK (((cycle_position >= 0) AND (cycle_position <= 10000))),
    CONSTRAINT touchpoint_occurrence_check CHECK ((occurrence = ANY (ARRAY['routine'::text, 'exceptional'::text]))),
    CONSTRAINT touchpoint_stage_check CHECK ((stage = ANY (ARRAY['pre_service'::text, 'service'::text, 'post_service'::text])))
);

ALTER TABLE ONLY public.touchpoint FORCE ROW LEVEL SECURITY;

CREATE TABLE public.webhook (
    id uuid NOT NULL,
    organisation_id uuid NOT NULL,
    url text NOT NULL,
    description text DEFAULT ''::text NOT NULL,
    event_types text[] NOT NULL,
    touchpoint_ids uuid[] DEFAULT '{}'::uuid[] NOT NULL,
    stages text[] DEFAULT '{}'::text[] NOT NULL,
    secret bytea NOT NULL,
    previous_secret bytea,
    previous_secret_expire_time timestamp with time zone,
    lease_owner uuid,
    lease_until timestamp with time zone,
    create_time timestamp with time zone DEFAULT now() NOT NULL,
    update_time timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT webhook_event_types_check CHECK ((cardinality(event_types) > 0)),
    CONSTRAINT webhook_secret_check CHECK ((length(secret) >= 24))
);

ALTER TABLE ONLY public.webhook FORCE ROW LEVEL SECURITY;

CREATE TABLE public.webhook_attempt (
    delivery_id uuid NOT NULL,
    organisation_id uuid NOT NULL,
    attempt integer NOT NULL,
    attempt_time timestamp with time zone NOT NULL,
    status_code integer,
    latency_ms integer NOT NULL,
    error text DEFAULT ''::text NOT NULL,
    response_excerpt text DEFAULT ''::text NOT NULL
);

ALTER TABLE ONLY public.webhook_attempt FORCE ROW LEVEL SECURITY;

CREATE TABLE public.webhook_delivery (
    id uuid NOT NULL,
    organisation_id uuid NOT NULL,
    webhook_id uuid NOT NULL,
    event_id uuid NOT NULL,
    seq bigint NOT NULL,
    state text DEFAULT 'pending'::text NOT NULL,
    create_time timestamp with time zone DEFAULT now() NOT NULL,
    next_attempt_time timestamp with time zone DEFAULT now() NOT NULL,
    first_attempt_time timestamp with time zone,
    attempt_count integer DEFAULT 0 NOT NULL,
    deliver_time timestamp with time zone,
    CONSTRAINT webhook_delivery_delivered_check CHECK (((state = 'delivered'::text) = (deliver_time IS NOT NULL))),
    CONSTRAINT webhook_delivery_state_check CHECK ((state = ANY (ARRAY['pending'::text, 'delivered'::text, 'failed'::text])))
);

ALTER TABLE ONLY public.webhook_delivery FORCE ROW LEVEL SECURITY;

ALTER TABLE public.webhook_delivery ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.webhook_delivery_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.webhook_event (
    id uuid NOT NULL,
    organisation_id uuid NOT NULL,
    type text NOT NULL,
    create_time timestamp with time zone DEFAULT now() NOT NULL,
    data jsonb NOT NULL
);

ALTER TABLE ONLY public.webhook_event FORCE ROW LEVEL SECURITY;

ALTER TABLE ONLY public.api_key
    ADD CONSTRAINT api_key_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.api_key
    ADD CONSTRAINT api_key_secret_hash_key UNIQUE (secret_hash);

ALTER TABLE ONLY public.encounter_day
    ADD CONSTRAINT encounter_day_pkey PRIMARY KEY (organisation_id, day, touchpoint_id, channel);

ALTER TABLE ONLY public.encounter_day_seconds
    ADD CONSTRAINT encounter_day_seconds_pkey PRIMARY KEY (organisation_id, day, touchpoint_id, channel, measure, bucket);

ALTER TABLE ONLY public.encounter_day_standard
    ADD CONSTRAINT encounter_day_standard_pkey PRIMARY KEY (organisation_id, day, touchpoint_id, channel, revision_id);

ALTER TABLE ONLY public.encounter
    ADD CONSTRAINT encounter_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.encounter
    ADD CONSTRAINT encounter_source_external_id_key UNIQUE (organisation_id, source, external_id);

ALTER TABLE ONLY public.feed_control
    ADD CONSTRAINT feed_control_pkey PRIMARY KEY (organisation_id, feed_id, control_id);

ALTER TABLE ONLY public.feed
    ADD CONSTRAINT feed_organisation_id_id_key UNIQUE (organisation_id, id);

ALTER TABLE ONLY public.feed
    ADD CONSTRAINT feed_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.feed_rejection
    ADD CONSTRAINT feed_rejection_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.journey_close
    ADD CONSTRAINT journey_close_pkey PRIMARY KEY (organisation_id, journey_id);

ALTER TABLE ONLY public.journey_feedback
    ADD CONSTRAINT journey_feedback_pkey PRIMARY KEY (organisation_id, journey_id);

ALTER TABLE ONLY public.journey_path
    ADD CONSTRAINT journey_path_pkey PRIMARY KEY (organisation_id, journey_id);

ALTER TABLE ONLY public.organisation
    ADD CONSTRAINT organisation_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.recovery_case
    ADD CONSTRAINT recovery_case_encounter_key UNIQUE (encounter_id);

ALTER TABLE ONLY public.recovery_case
    ADD CONSTRAINT recovery_case_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.server_secret
    ADD CONSTRAINT server_secret_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.standard
    ADD CONSTRAINT standard_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.standard_revision
    ADD CONSTRAINT standard_revision_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.touchpoint
    ADD CONSTRAINT touchpoint_organisation_id_key UNIQUE (organisation_id, id);

ALTER TABLE ONLY public.touchpoint
    ADD CONSTRAINT touchpoint_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.webhook_attempt
    ADD CONSTRAINT webhook_attempt_pkey PRIMARY KEY (delivery_id, attempt);

ALTER TABLE ONLY public.webhook_delivery
    ADD CONSTRAINT webhook_delivery_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.webhook_event
    ADD CONSTRAINT webhook_event_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.webhook
    ADD CONSTRAINT webhook_pkey PRIMARY KEY (id);

CREATE INDEX api_key_organisation_idx ON public.api_key USING btree (organisation_id, id);

CREATE INDEX encounter_customer_idx ON public.encounter USING btree (organisation_id, customer_hash) WHERE (customer_hash IS NOT NULL);

CREATE INDEX encounter_fhir_resource_idx ON public.encounter USING btree (organisation_id, ((attributes ->> 'fhir.resource'::text))) WHERE (attributes ? 'fhir.resource'::text);

CREATE INDEX encounter_journey_cover_idx ON public.encounter USING btree (organisation_id, journey_id, occur_time, receive_seq) INCLUDE (touchpoint_id, staff_ref);

CREATE INDEX encounter_time_idx ON public.encounter USING btree (organisation_id, occur_time, receive_seq);

CREATE UNIQUE INDEX feed_code_key ON public.feed USING btree (organisation_id, lower(code));

CREATE INDEX feed_rejection_feed_idx ON public.feed_rejection USING btree (organisation_id, feed_id, id);

CREATE UNIQUE INDEX feed_sender_key ON public.feed USING btree (lower(sending_application), lower(sending_facility)) WHERE ((archive_time IS NULL) AND (kind = 'hl7v2'::text));

CREATE INDEX journey_path_last_time_idx ON public.journey_path USING btree (organisation_id, last_time);

CREATE INDEX journey_path_time_idx ON public.journey_path USING btree (organisation_id, first_time);

CREATE UNIQUE INDEX recovery_case_deviation_key ON public.recovery_case USING btree (organisation_id, journey_id) WHERE (kind = 'deviation'::text);

CREATE INDEX recovery_case_open_idx ON public.recovery_case USING btree (organisation_id, due_time) WHERE (status <> 'resolved'::text);

CREATE INDEX recovery_case_organisation_idx ON public.recovery_case USING btree (organisation_id, id);

CREATE INDEX recovery_case_unacknowledged_idx ON public.recovery_case USING btree (organisation_id, due_time) WHERE ((status <> 'resolved'::text) AND (acknowledge_time IS NULL));

CREATE INDEX rollup_pending_organisation_idx ON public.rollup_pending USING btree (organisation_id, seq);

CREATE UNIQUE INDEX standard_code_key ON public.standard USING btree (organisation_id, lower(code));

CREATE INDEX standard_organisation_idx ON public.standard USING btree (organisation_id, id);

CREATE INDEX standard_revision_standard_idx ON public.standard_revision USING btree (organisation_id, standard_id);

CREATE INDEX standard_touchpoint_idx ON public.standard USING btree (organisation_id, touchpoint_id);

CREATE UNIQUE INDEX touchpoint_code_key ON public.touchpoint USING btree (organisation_id, lower(code));

CREATE INDEX webhook_delivery_event_idx ON public.webhook_delivery USING btree (event_id);

CREATE INDEX webhook_delivery_list_idx ON public.webhook_delivery USING btree (organisation_id, webhook_id, seq);

CREATE INDEX webhook_delivery_queue_idx ON public.webhook_delivery USING btree (webhook_id, seq) WHERE (state = 'pending'::text);

CREATE INDEX webhook_event_age_idx ON public.webhook_event USING btree (organisation_id, create_time);

CREATE INDEX webhook_organisation_idx ON public.webhook USING btree (organisation_id, id);

CREATE TRIGGER api_key_changed AFTER DELETE OR UPDATE OR TRUNCATE ON public.api_key FOR EACH STATEMENT EXECUTE FUNCTION public.verdad_notify_api_key_change();

CREATE TRIGGER feed_update_time BEFORE UPDATE OF code, display_name, mapping, archive_time ON public.feed FOR EACH ROW EXECUTE FUNCTION public.verdad_touch_update_time();

CREATE TRIGGER organisation_reference_changed BEFORE UPDATE ON public.organisation FOR EACH ROW WHEN ((old.reference_version = new.reference_version)) EXECUTE FUNCTION public.verdad_next_reference_version();

CREATE TRIGGER organisation_update_time BEFORE UPDATE ON public.organisation FOR EACH ROW EXECUTE FUNCTION public.verdad_touch_update_time();

CREATE TRIGGER recovery_case_notify AFTER INSERT ON public.recovery_case FOR EACH ROW EXECUTE FUNCTION public.verdad_notify_recovery_case();

CREATE TRIGGER recovery_case_opened_events AFTER INSERT ON public.recovery_case REFERENCING NEW TABLE AS opened FOR EACH STATEMENT EXECUTE FUNCTION public.verdad_case_opened_events();

CREATE TRIGGER recovery_case_update_time BEFORE UPDATE ON public.recovery_case FOR EACH ROW EXECUTE FUNCTION public.verdad_touch_update_time();

CREATE TRIGGER rollup_queue_delete AFTER DELETE ON public.encounter REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION public.verdad_queue_rollup();

CREATE TRIGGER rollup_queue_insert AFTER INSERT ON public.encounter REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION public.verdad_queue_rollup();

CREATE TRIGGER standard_reference_changed AFTER INSERT OR DELETE OR UPDATE ON public.standard FOR EACH ROW EXECUTE FUNCTION public.verdad_bump_reference_version();

CREATE TRIGGER standard_update_time BEFORE UPDATE ON public.standard FOR EACH ROW EXECUTE FUNCTION public.verdad_touch_update_time();

CREATE TRIGGER touchpoint_reference_changed AFTER INSERT OR DELETE OR UPDATE ON public.touchpoint FOR EACH ROW EXECUTE FUNCTION public.verdad_bump_reference_version();

CREATE TRIGGER touchpoint_update_time BEFORE UPDATE ON public.touchpoint FOR EACH ROW EXECUTE FUNCTION public.verdad_touch_update_time();

CREATE TRIGGER webhook_update_time BEFORE UPDATE OF url, description, event_types, touchpoint_ids, stages, secret, previous_secret, previous_secret_expire_time ON public.webhook FOR EACH ROW EXECUTE FUNCTION public.verdad_touch_update_time();

ALTER TABLE ONLY public.api_key
    ADD CONSTRAINT api_key_organisation_fkey FOREIGN KEY (organisation_id) REFERENCES public.organisation(id);

ALTER TABLE ONLY public.encounter
    ADD CONSTRAINT encounter_organisation_fkey FOREIGN KEY (organisation_id) REFERENCES public.organisation(id);

ALTER TABLE ONLY public.encounter
    ADD CONSTRAINT encounter_touchpoint_fkey FOREIGN KEY (organisation_id, touchpoint_id) REFERENCES public.touchpoint(organisation_id, id);

ALTER TABLE ONLY public.feed_control
    ADD CONSTRAINT feed_control_organisation_id_feed_id_fkey FOREIGN KEY (organisation_id, feed_id) REFERENCES public.feed(organisation_id, id);

ALTER TABLE ONLY public.feed
    ADD CONSTRAINT feed_organisation_id_fkey FOREIGN KEY (organisation_id) REFERENCES public.organisation(id);

ALTER TABLE ONLY public.feed_rejection
    ADD CONSTRAINT feed_rejection_organisation_id_feed_id_fkey FOREIGN KEY (organisation_id, feed_id) REFERENCES public.feed(organisation_id, id);

ALTER TABLE ONLY public.journey_close
    ADD CONSTRAINT journey_close_organisation_fkey FOREIGN KEY (organisation_id) REFERENCES public.organisation(id);

ALTER TABLE ONLY public.journey_feedback
    ADD CONSTRAINT journey_feedback_organisation_fkey FOREIGN KEY (organisation_id) REFERENCES public.organisation(id);

ALTER TABLE ONLY public.recovery_case
    ADD CONSTRAINT recovery_case_encounter_fkey FOREIGN KEY (encounter_id) REFERENCES public.encounter(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.recovery_case
    ADD CONSTRAINT recovery_case_organisation_fkey FOREIGN KEY (organisation_id) REFERENCES public.organisation(id);

ALTER TABLE ONLY public.recovery_case
    ADD CONSTRAINT recovery_case_touchpoint_fkey FOREIGN KEY (organisation_id, touchpoint_id) REFERENCES public.touchpoint(organisation_id, id);

ALTER TABLE ONLY public.standard
    ADD CONSTRAINT standard_organisation_fkey FOREIGN KEY (organisation_id) REFERENCES public.organisation(id);

ALTER TABLE ONLY public.standard
    ADD CONSTRAINT standard_revision_fkey FOREIGN KEY (revision_id) REFERENCES public.standard_revision(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE ONLY public.standard_revision
    ADD CONSTRAINT standard_revision_organisation_fkey FOREIGN KEY (organisation_id) REFERENCES public.organisation(id);

ALTER TABLE ONLY public.standard_revision
    ADD CONSTRAINT standard_revision_standard_fkey FOREIGN KEY (standard_id) REFERENCES public.standard(id);

ALTER TABLE ONLY public.standard
    ADD CONSTRAINT standard_touchpoint_fkey FOREIGN KEY (organisation_id, touchpoint_id) REFERENCES public.touchpoint(organisation_id, id);

ALTER TABLE ONLY public.touchpoint
    ADD CONSTRAINT touchpoint_organisation_fkey FOREIGN KEY (organisation_id) REFERENCES public.organisation(id);

ALTER TABLE ONLY public.webhook_attempt
    ADD CONSTRAINT webhook_attempt_delivery_fkey FOREIGN KEY (delivery_id) REFERENCES public.webhook_delivery(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.webhook_delivery
    ADD CONSTRAINT webhook_delivery_event_fkey FOREIGN KEY (event_id) REFERENCES public.webhook_event(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.webhook_delivery
    ADD CONSTRAINT webhook_delivery_webhook_fkey FOREIGN KEY (webhook_id) REFERENCES public.webhook(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.webhook_event
    ADD CONSTRAINT webhook_event_organisation_fkey FOREIGN KEY (organisation_id) REFERENCES public.organisation(id);

ALTER TABLE ONLY public.webhook
    ADD CONSTRAINT webhook_organisation_fkey FOREIGN KEY (organisation_id) REFERENCES public.organisation(id);

ALTER TABLE public.api_key ENABLE ROW LEVEL SECURITY;

CREATE POLICY api_key_by_secret ON public.api_key FOR SELECT USING ((secret_hash = decode(NULLIF(current_setting('verdad.secret_hash'::text, true), ''::text), 'hex'::text)));

CREATE POLICY api_key_tenant ON public.api_key USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));

ALTER TABLE public.encounter ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.encounter_day ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.encounter_day_seconds ENABLE ROW LEVEL SECURITY;

CREATE POLICY encounter_day_seconds_tenant ON public.encounter_day_seconds USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));

ALTER TABLE public.encounter_day_standard ENABLE ROW LEVEL SECURITY;

CREATE POLICY encounter_day_standard_tenant ON public.encounter_day_standard USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));

CREATE POLICY encounter_day_tenant ON public.encounter_day USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));

CREATE POLICY encounter_tenant ON public.encounter USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));

ALTER TABLE public.feed ENABLE ROW LEVEL SECURITY;

CREATE POLICY feed_by_sender ON public.feed FOR SELECT USING (((kind = 'hl7v2'::text) AND (archive_time IS NULL) AND (lower(sending_application) = current_setting('verdad.hl7_application'::text, true)) AND (lower(sending_facility) = current_setting('verdad.hl7_facility'::text, true))));

ALTER TABLE public.feed_control ENABLE ROW LEVEL SECURITY;

CREATE POLICY feed_control_tenant ON public.feed_control USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));

ALTER TABLE public.feed_rejection ENABLE ROW LEVEL SECURITY;

CREATE POLICY feed_rejection_tenant ON public.feed_rejection USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));

CREATE POLICY feed_tenant ON public.feed USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));

ALTER TABLE public.journey_close ENABLE ROW LEVEL SECURITY;

CREATE POLICY journey_close_tenant ON public.journey_close USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));

ALTER TABLE public.journey_feedback ENABLE ROW LEVEL SECURITY;

CREATE POLICY journey_feedback_tenant ON public.journey_feedback USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));

ALTER TABLE public.journey_path ENABLE ROW LEVEL SECURITY;

CREATE POLICY journey_path_tenant ON public.journey_path USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));

ALTER TABLE public.organisation ENABLE ROW LEVEL SECURITY;

CREATE POLICY organisation_sweep ON public.organisation FOR SELECT USING ((current_setting('verdad.sweep'::text, true) = 'on'::text));

CREATE POLICY organisation_tenant ON public.organisation USING ((id = public.verdad_current_organisation())) WITH CHECK ((id = public.verdad_current_organisation()));

ALTER TABLE public.recovery_case ENABLE ROW LEVEL SECURITY;

CREATE POLICY recovery_case_tenant ON public.recovery_case USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));

ALTER TABLE public.rollup_pending ENABLE ROW LEVEL SECURITY;

CREATE POLICY rollup_pending_tenant ON public.rollup_pending USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));

ALTER TABLE public.standard ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.standard_revision ENABLE ROW LEVEL SECURITY;

CREATE POLICY standard_revision_tenant ON public.standard_revision USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));

CREATE POLICY standard_tenant ON public.standard USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));

ALTER TABLE public.touchpoint ENABLE ROW LEVEL SECURITY;

CREATE POLICY touchpoint_tenant ON public.touchpoint USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));

ALTER TABLE public.webhook ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.webhook_attempt ENABLE ROW LEVEL SECURITY;

CREATE POLICY webhook_attempt_tenant ON public.webhook_attempt USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));

ALTER TABLE public.webhook_delivery ENABLE ROW LEVEL SECURITY;

CREATE POLICY webhook_delivery_dispatch ON public.webhook_delivery FOR SELECT USING ((current_setting('verdad.dispatch'::text, true) = 'on'::text));

CREATE POLICY webhook_delivery_tenant ON public.webhook_delivery USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));

CREATE POLICY webhook_dispatch ON public.webhook FOR SELECT USING ((current_setting('verdad.dispatch'::text, true) = 'on'::text));

ALTER TABLE public.webhook_event ENABLE ROW LEVEL SECURITY;

CREATE POLICY webhook_event_tenant ON public.webhook_event USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));

CREATE POLICY webhook_tenant ON public.webhook USING ((organisation_id = public.verdad_current_organisation())) WITH CHECK ((organisation_id = public.verdad_current_organisation()));
