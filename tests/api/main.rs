//! Black-box tests: the real server on a loopback port, over gRPC, against a
//! real PostgreSQL with a database of its own for every test.

mod analyses;
mod answer_limits;
mod api_keys;
mod auth;
mod demo;
mod encounter_access;
mod encounters;
mod faults;
mod feeds;
mod framing;
mod group_commit;
mod health;
mod helpers;
mod hostile;
mod http;
mod ingest;
mod journeys;
mod manual;
mod metrics;
mod organisations;
mod read_paths;
mod recovery;
mod reflection;
mod rls;
mod rollups;
mod schema;
mod server_limits;
mod standards;
mod sweep;
mod tenancy;
mod touchpoints;
mod webhooks;
