-- A batch of encounters stored in one round trip.
--
-- Storing a RecordEncounter batch took four round trips: BEGIN with the
-- organisation's setting, the organisation's row, the insert, COMMIT (and
-- one more for the recovery cases of failed encounters). Under the load
-- bench each of them waited its turn for a processor: their p99s were
-- 2.5-7.6 ms where their medians were 0.1-0.6 ms.
--
-- Servers now keep the organisation's row with its touchpoints and
-- standards, under its reference_version, and store a batch with one call
-- of verdad_store_encounters outside any transaction: PostgreSQL runs the
-- call as a transaction of its own. The call checks the version it was
-- given before it writes; if the version moved, it raises VRD01 having
-- written nothing, and the server reads afresh and stores the batch the
-- long way, which passes no version.

-- The organisation's own settings (its failure threshold, its recovery
-- deadline, its customer key) are part of what a server keeps, so changing
-- them moves the version as changing a touchpoint does. An update that sets
-- the version itself (verdad_bump_reference_version) is left as it is.
create function verdad_next_reference_version() returns trigger
    language plpgsql
    as $$
begin
    new.reference_version := old.reference_version + 1;
    return new;
end
$$;

create trigger organisation_reference_changed before update on organisation
    for each row
    when (old.reference_version = new.reference_version)
    execute function verdad_next_reference_version();

-- Stores the encounters whose (source, external_id) the organisation has not
-- stored yet, in the order given (receive_seq follows it), opens the given
-- recovery cases of those stored now, and returns:
-- * a row per encounter stored now: its id and receive_time;
-- * a row per encounter given but stored before: the stored one's id,
--   source, external_id and content_hash, for the caller to tell replays
--   from conflicts. It is read in a statement after the insert, which sees
--   what a concurrent sender of the same key committed meanwhile.
-- Each row array of an encounter travels as text (an array literal):
-- arrays of arrays cannot be unnested row by row.
create function verdad_store_encounters(
    organisation uuid,
    -- null: the caller read the organisation in its own transaction.
    expected_version bigint,
    case_deadline_seconds double precision,
    new_ids uuid[], new_touchpoint_ids uuid[], new_journey_ids text[],
    new_customer_hashes bytea[], new_occur_times timestamptz[], new_channels text[],
    new_waits int4[], new_first_responses int4[], new_durations int4[],
    new_satisfactions int2[], new_efforts int2[], new_situations text[],
    new_staff_refs text[], new_comments text[], new_observations text[],
    new_attributes text[], new_sources text[], new_external_ids text[],
    new_content_hashes bytea[], new_failed bool[], new_low_satisfaction bool[],
    new_revision_ids text[], new_outcomes text[],
    -- The cases to open, by encounter; reasons are line-separated.
    case_ids uuid[], case_encounter_ids uuid[], case_reasons text[],
    case_satisfactions int2[]
) returns table (
    stored_id uuid, stored_receive_time timestamptz, stored_source text,
    stored_external_id text, stored_content_hash bytea
)
    language plpgsql
    as $$
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
