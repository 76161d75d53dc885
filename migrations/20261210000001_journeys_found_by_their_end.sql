-- The MOT cycle reads every journey that overlaps its range from
-- journey_path and keeps the steps inside the range: the journeys that
-- began before the range and end inside it or after are found by their
-- last time, which the index on the first time cannot bound.
create index journey_path_last_time_idx on journey_path (organisation_id, last_time);
