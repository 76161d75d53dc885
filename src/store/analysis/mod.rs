//! The analyses' SQL: aggregates and window functions over the encounters
//! in scope, so that only figures leave the database.

mod cycle;
mod export;
mod figures;
pub mod journeys;
mod outcomes;
pub mod rollup;
mod scorecard;

pub use crate::domain::analysis::Pair;
pub use cycle::{fold_encounters, fold_journey_paths};
pub use export::{EventLog, LogRow, event_log};
pub use figures::StandardCompliance;
pub use outcomes::{
    FIRST_RESPONSE_BOUNDS, FirstImpressionFigures, JourneyGroupFigures, RecoveryFigures,
    SituationFigures, compliance, first_impressions, importance, journey_groups, recovery,
    single_failures, situations,
};
pub use scorecard::{
    bucket_starts, days_ago_midnight, plan_for_parameters, scorecard, scorecard_buckets,
};
