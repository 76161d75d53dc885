//! Verdad: Moments of Truth management for hospitals and welfare agencies.
//!
//! Calls flow one way: a door (`grpc`) converts what a caller sent and
//! calls the core (`app`), which checks who may act, owns the transaction
//! and uses the rules of `domain` and the SQL of `store`. See
//! docs/architecture.md for the map.

pub mod app;
pub mod auth;
pub mod cli;
pub mod demo;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod http;
pub mod ingest;
pub mod mllp;
pub mod proto;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod webhooks;
