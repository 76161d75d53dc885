//! The ten analyses. Each reads in one transaction, from the encounters
//! or, for scopes large enough, from the rollups once they have caught up;
//! each returns its figures as domain values, which a door shapes into
//! its answer.

mod cycle;
mod export;
mod outcomes;
mod reading;
mod scorecard;

pub use cycle::{CycleDiagram, CycleRequest, DiagramRequest, MotCycle};
pub use export::{LogChunks, LogRequest};
pub use outcomes::{
    ComplianceReport, ElementCompliance, FirstImpressions, GuidelineBreakdown, JourneyOutcomes,
    PriorityMatrix, PriorityRow,
};
pub use reading::{ScopeRequest, TouchpointCount, Touchpoints};
pub use scorecard::{Scorecard, Series, Trend, TrendRequest};
