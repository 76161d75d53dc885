-- Room on journey_path's pages for its rows' next versions. A fold rewrites
-- the row of every journey that gained an encounter. With the default
-- fillfactor of 100 the new version seldom fitted on its row's page: in a
-- `bench load` run only 15,136 of 60,372 updates were HOT, and each of the
-- others moved its row and wrote an entry into both indexes. The other
-- rollup tables have kept 30% of each page free from the start.
--
-- Existing pages keep what they hold; pages filled from now on keep the room.
alter table journey_path set (fillfactor = 70);
