-- The key page tokens are signed with. Kept here rather than in the
-- process, so that a token one replica issued works on another and after a
-- restart. gen_random_uuid draws from PostgreSQL's strong random source.
create table server_secret (
    name text primary key,
    value bytea not null check (length(value) >= 32)
);

insert into server_secret (name, value)
values ('page_token', uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));

grant select on server_secret to verdad_app;
