//! Verdad: Moments of Truth management for hospitals and welfare agencies.

pub mod admin;
pub mod api;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod codec;
pub mod config;
pub mod deadline;
pub mod demo;
pub mod domain;
pub mod embedded_pg;
pub mod error;
pub mod framing;
pub mod group_commit;
pub mod ingest;
pub mod key_cache;
pub mod lanes;
pub mod memory;
pub mod meters;
pub mod methods;
pub mod proto;
pub mod rollup_applier;
pub mod server;
pub mod store;
pub mod stream_budget;
pub mod telemetry;
