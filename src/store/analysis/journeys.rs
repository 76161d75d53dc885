//! Where the journey outcomes read the scope's journeys from: grouped from
//! the encounters in scope, or from the journey rollups (`journey_path`,
//! folded in from `rollup_pending`) for the journeys wholly inside the
//! scope's whole days, with the journeys at its edges summarised from their
//! encounters in scope. (The MOT cycle reads `journey_path` its own way:
//! `cycle::fold_journey_paths`.)

use sqlx::{Postgres, postgres::PgArguments, query::Query};
use uuid::Uuid;

use super::{rollup::CoveredDays, scorecard::bind_scope};
use crate::domain::analysis::Scope;

/// The source of a journey analysis.
#[derive(Debug, Clone, Copy)]
pub enum Journeys<'a> {
    /// Grouped from the encounters in scope: any scope, exact.
    Encounters,
    /// From the rollups: only for scopes without touchpoint, stage or
    /// channel filters, which would cut journeys apart.
    Rollups(&'a CoveredDays),
}

impl<'a> From<&'a Option<CoveredDays>> for Journeys<'a> {
    fn from(covered: &'a Option<CoveredDays>) -> Self {
        covered
            .as_ref()
            .map_or(Journeys::Encounters, Journeys::Rollups)
    }
}

impl Journeys<'_> {
    /// The number of the first parameter after the scope's.
    pub(super) fn next_parameter(self) -> usize {
        match self {
            Journeys::Encounters => 7,
            Journeys::Rollups(_) => 6,
        }
    }

    /// Binds the parameters the source's SQL reads: the scope's $1 to $6,
    /// or for the rollups $1 organisation, $2 to $3 the range, $4 to $5
    /// the covered days.
    pub(super) fn bind<'q>(
        self,
        query: Query<'q, Postgres, PgArguments>,
        organisation_id: Uuid,
        scope: &'q Scope,
    ) -> Query<'q, Postgres, PgArguments> {
        match self {
            Journeys::Encounters => bind_scope(query, organisation_id, scope),
            Journeys::Rollups(covered) => query
                .bind(organisation_id)
                .bind(scope.start_time)
                .bind(scope.end_time)
                .bind(covered.start_time)
                .bind(covered.end_time),
        }
    }
}

/// The CTE `paths`: a `journey_path` row per journey in scope. Those inside
/// the covered days come as the fold keeps them; those at the edges are
/// summarised from their encounters in the range by
/// `verdad_journey_summaries`, as the fold summarises a journey it reads
/// again.
const PATHS: &str = "paths as (
    select j.* from journey_path j
    where j.organisation_id = $1 and j.first_time >= $4 and j.last_time < $5
    union all
    select * from edge
)";

/// The CTE `edge`: the journeys in scope that are not wholly inside the
/// covered days, summarised from their encounters in the range.
const EDGE: &str = "edge as (
    select s.* from verdad_journey_summaries($1, array(
        select j.journey_id from journey_path j
        where j.organisation_id = $1 and j.first_time < $3 and j.last_time >= $2
          and not (j.first_time >= $4 and j.last_time < $5)), $2, $3) s
)";

/// `edge`, then `paths`, for a WITH clause.
pub(super) fn paths_cte() -> String {
    format!("{EDGE}, {PATHS}")
}
