-- Servers remember the keys they have seen (src/key_cache.rs). Whoever
-- revokes or deletes a key, through any server or the command line, every
-- server must forget what it remembers before the key is used again: a
-- notification on commit tells them. It carries nothing; a revocation is
-- rare, and forgetting every key costs each server one query per key.
create function verdad_notify_api_key_change() returns trigger
    language plpgsql
    as $$
begin
    perform pg_notify('verdad_api_keys', '');
    return null;
end
$$;

create trigger api_key_changed
    after update or delete or truncate on api_key
    for each statement
    execute function verdad_notify_api_key_change();
