//! The analyses over small fixtures whose every figure is worked out by
//! hand here, and the MOT cycle of a real hospital log against the figures
//! an established process-mining library computed from it.

mod access;
mod diagram;
mod event_log;
mod journeys;
mod mot_cycle;
mod priority_matrix;
mod reports;
mod scorecard;
mod trend;
