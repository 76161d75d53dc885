-- Servers keep each organisation's touchpoints and standards, as an ingest
-- last read them, under the organisation's reference_version
-- (src/ingest.rs). Every change to either bumps the version in the same
-- transaction, so an ingest that reads the version with its organisation
-- knows whether what it kept is still what it would read.
alter table organisation add column reference_version bigint not null default 0;

create function verdad_bump_reference_version() returns trigger
    language plpgsql
    as $$
begin
    update organisation set reference_version = reference_version + 1
    where id = case tg_op when 'DELETE' then old.organisation_id else new.organisation_id end;
    return null;
end
$$;

create trigger touchpoint_reference_changed
    after insert or update or delete on touchpoint
    for each row
    execute function verdad_bump_reference_version();

create trigger standard_reference_changed
    after insert or update or delete on standard
    for each row
    execute function verdad_bump_reference_version();
