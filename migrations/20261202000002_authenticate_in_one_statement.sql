-- The key behind a secret's hash in one statement, so that authenticating a
-- call costs one round trip instead of a transaction of three. The setting
-- the api_key_by_secret policy reads is made for the statement's own
-- transaction only, as before.
create function verdad_authenticate(secret bytea)
    returns table (key_id uuid, organisation_id uuid, role text)
    language plpgsql volatile
    as $$
begin
    perform set_config('verdad.secret_hash', encode(secret, 'hex'), true);
    return query
        select k.id, k.organisation_id, k.role
        from api_key k
        where k.secret_hash = secret and k.revoke_time is null;
end
$$;
