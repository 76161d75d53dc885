-- Journey refreshes planned as their size wants. A refresh of a few
-- journeys by key gets one generic plan per connection, which is as good as
-- a plan made for the arguments, and planning cost more than running. A
-- larger refresh (a stream's batch, a rebuild) keeps plans made for its
-- arguments: there a generic plan goes badly wrong.
--
-- This migration also made the daily rollup trigger static SQL, planned
-- once per connection; the next one replaced that trigger altogether
-- (rollups folded in after the fact), so only the refresh wrappers remain.
create function verdad_refresh_few_journeys(organisation uuid, journeys text[]) returns void
    language plpgsql
    set plan_cache_mode = force_generic_plan
    as $$ begin perform verdad_refresh_journeys(organisation, journeys); end $$;

create function verdad_refresh_many_journeys(organisation uuid, journeys text[]) returns void
    language plpgsql
    set plan_cache_mode = force_custom_plan
    as $$ begin perform verdad_refresh_journeys(organisation, journeys); end $$;
