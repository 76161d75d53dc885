//! The MOT cycle: how journeys move from touchpoint to touchpoint.

use uuid::Uuid;

use super::reading::{
    Reads, ScopeRequest, TouchpointCount, Touchpoints, code_of, ranked_counts, touchpoint_count,
    touchpoints,
};
use crate::{
    app::{App, Caller, Operation, Parsed},
    domain::analysis::{Rate, Scope},
    error::Result,
    store::{
        self,
        analysis::{
            Pair,
            journeys::{self, Journeys},
        },
    },
};

/// A MOT cycle request: its scope and how much of the cycle to return.
#[derive(Debug, Clone)]
pub struct CycleRequest {
    pub scope: ScopeRequest,
    pub max_variants: i64,
    pub max_pairs: usize,
    pub min_pair_count: i64,
}

/// The MOT cycle of a scope.
pub struct MotCycle {
    pub scope: Scope,
    pub journeys: i64,
    pub encounters: i64,
    /// The most frequent pairs first, as many as asked for.
    pub pairs: Vec<Pair>,
    /// The pairs there were in all, before any was left out.
    pub all_pairs: usize,
    /// Steps from one touchpoint to the next, over every pair.
    pub transitions: i64,
    pub starts: Vec<TouchpointCount>,
    pub ends: Vec<TouchpointCount>,
    pub variant_count: i64,
    /// The most frequent paths, as touchpoint codes, with their journeys
    /// and share.
    pub variants: Vec<(Vec<String>, i64, Rate)>,
    pub designed_order: Rate,
    pub skipped_key_touchpoints: Vec<TouchpointCount>,
    pub journeys_with_loops: Rate,
    pub revisited_touchpoints: Vec<TouchpointCount>,
    /// To name the pairs' touchpoints.
    pub touchpoints: Touchpoints,
}

impl MotCycle {
    /// The code of touchpoint `id`; empty for one unknown.
    pub fn code(&self, id: &Uuid) -> String {
        code_of(&self.touchpoints, id)
    }
}

impl App {
    pub async fn get_mot_cycle(
        &self,
        caller: &Caller,
        request: Parsed<CycleRequest>,
    ) -> Result<MotCycle> {
        let (org, _lane) = self.analysis_lane(caller, Operation::GetMotCycle).await?;
        let request = request?;
        let (mut tx, scope) = self.open(org, Ok(request.scope), Reads::Rollups).await?;
        let covered = self.journey_rollup_days(&mut tx, org, &scope).await?;
        let source = Journeys::from(&covered);
        let mut steps = store::analysis::order_steps(&mut tx, org, &scope, source).await?;
        let pairs = match &covered {
            Some(covered) => {
                journeys::rolled_pairs(steps.connection(), org, &scope, covered).await?
            }
            None => store::analysis::pairs(&mut steps).await?,
        };
        let ends = store::analysis::ends(&mut steps).await?;
        let (variant_count, variants) =
            store::analysis::variants(&mut steps, request.max_variants).await?;
        let conformance = store::analysis::conformance(&mut steps, org, &scope).await?;
        let touchpoints = touchpoints(&mut tx, org).await?;
        tx.commit().await?;

        let journeys = ends.journeys;
        let count = |id: Uuid, n: i64| touchpoint_count(&touchpoints, id, n, journeys);
        let ranked = |which: fn(&(Uuid, i64, i64)) -> i64| {
            let counts = (ends.per_touchpoint.iter())
                .filter(|row| which(row) > 0)
                .map(|row| (row.0, which(row)))
                .collect();
            ranked_counts(&touchpoints, counts, journeys)
        };
        let starts = ranked(|row| row.1);
        let finishes = ranked(|row| row.2);
        let transitions = pairs.iter().map(|p| p.count).sum();
        let all_pairs = pairs.len();
        let pairs = pairs
            .into_iter()
            .filter(|p| p.count >= request.min_pair_count)
            .take(request.max_pairs)
            .collect();
        let variants = variants
            .into_iter()
            .map(|(path, n)| {
                let codes = path.iter().map(|id| code_of(&touchpoints, id)).collect();
                (codes, n, Rate::new(n, journeys))
            })
            .collect();
        let skipped = conformance
            .skipped
            .into_iter()
            .map(|(id, n)| count(id, n))
            .collect();
        let revisited = (conformance.revisited.into_iter())
            .map(|(id, n)| count(id, n))
            .collect();
        Ok(MotCycle {
            scope,
            journeys,
            encounters: ends.encounters,
            pairs,
            all_pairs,
            transitions,
            starts,
            ends: finishes,
            variant_count,
            variants,
            designed_order: Rate::new(conformance.in_designed_order, conformance.comparable),
            skipped_key_touchpoints: skipped,
            journeys_with_loops: Rate::new(conformance.journeys_with_loops, journeys),
            revisited_touchpoints: revisited,
            touchpoints,
        })
    }
}
