//! The test harness: one PostgreSQL cluster per test run (`DATABASE_URL`
//! when set, else the embedded launcher in a temporary directory), one
//! database and one server per test; and what the tests share to arrange,
//! act and assert.
//!
//! Test modules import from here only, never from one another. What acts on
//! a running app (records an encounter, makes a key, reads the database
//! behind it) is a method of [`TestApp`]; what builds a message or checks
//! an answer is a plain function.

mod analyses;
mod app;
mod assertions;
mod cluster;
mod database;
mod doors;
mod encounters;
mod fhir;
mod fixtures;
mod health;
mod http;
mod keys;
mod mllp;
mod process;
mod receiver;
mod recovery;
mod rpcs;
mod setup;
mod times;
mod webhooks;

pub(crate) use self::{
    analyses::{points, record_fixture_events, scorecard_fixture, to_the_ninth},
    app::{
        TestApp, default_pool_options, spawn_app, spawn_app_on, spawn_app_with, spawn_app_with_pool,
    },
    assertions::{
        assert_close, assert_distribution, assert_error, assert_rate, field_set, violated_fields,
    },
    database::LOCK_WAITERS,
    doors::{
        Door, Doors, Refusal, aip193_status, assert_error_shape, descriptors, error_shape_fault,
        http_request, route_name, route_table,
    },
    encounters::{evaluation_of, external_ids, result},
    fhir::{demo_fhir_feed, fhir_file},
    fixtures::{
        Measured, answered, dissatisfied, encounter, event, feedback, keyed, metric_rule,
        observation, observed_rule, standard, touchpoint,
    },
    http::{Answer, answer},
    keys::{Org, authed},
    mllp::{Mllp, demo_adt_feed, framed, hl7_feed, hl7_file, tls_file},
    process::{ServeProcess, free_addr, http_get},
    receiver::{Delivery, Receiver, signatures, verify},
    rpcs::{Method, methods},
    times::{YEAR_2000, at, fixture_day, minutes_ago, plus, timestamp},
    webhooks::{ALL_EVENTS, Event, verified, webhook_to},
};
