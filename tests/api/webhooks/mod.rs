//! Webhooks: signed deliveries to a real receiver, retries, dead letters,
//! replicas and restarts; escalation of overdue cases; deviations that open
//! cases.

mod admin;
mod delivery;
mod deviations;
mod escalation;
mod readme;
mod replicas;
