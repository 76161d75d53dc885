-- How quickly a journey's first contact must greet the customer to make a
-- good first impression: 15 seconds unless the organisation says otherwise.
alter table organisation
    add column first_impression_seconds integer not null default 15,
    add constraint organisation_first_impression_check
        check (first_impression_seconds between 1 and 3600);
