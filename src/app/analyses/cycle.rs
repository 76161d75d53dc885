//! The MOT cycle: how journeys move from touchpoint to touchpoint.

use uuid::Uuid;

use super::reading::{
    Reads, ScopeRequest, TouchpointCount, Touchpoints, code_of, ranked_counts, touchpoint_count,
    touchpoints,
};
use crate::{
    app::{App, Caller, Operation, Parsed},
    domain::{
        analysis::{Rate, Scope},
        cycle_fold::{CycleFold, CyclePositions, Spread},
        cycle_map::{self, Kept},
        diagram,
        refusal::Refusal,
        touchpoint::Occurrence,
    },
    error::{Error, Result},
    store::{self, analysis::Pair},
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
    /// The pairs with the most waiting in all, of every pair.
    pub bottlenecks: Vec<(Pair, f64)>,
    /// Seconds from a journey's first encounter to its last; `None`
    /// without journeys.
    pub journey_duration: Option<Spread>,
    pub encounters_per_journey: Option<Spread>,
    /// To name the pairs' touchpoints.
    pub touchpoints: Touchpoints,
}

impl MotCycle {
    /// The code of touchpoint `id`; empty for one unknown.
    pub fn code(&self, id: &Uuid) -> String {
        code_of(&self.touchpoints, id)
    }
}

/// A request for a picture of the MOT cycle.
#[derive(Debug, Clone)]
pub struct DiagramRequest {
    pub scope: ScopeRequest,
    pub format: cycle_map::Format,
    pub weight: diagram::Weight,
    pub min_share: f64,
    pub max_touchpoints: usize,
}

/// A picture of the MOT cycle of a scope.
pub struct CycleDiagram {
    pub scope: Scope,
    pub no_data: bool,
    pub format: cycle_map::Format,
    pub content: String,
    pub touchpoints_drawn: usize,
    pub pairs_drawn: usize,
    pub pairs_omitted: usize,
}

impl App {
    pub async fn get_mot_cycle(
        &self,
        caller: &Caller,
        request: Parsed<CycleRequest>,
    ) -> Result<MotCycle> {
        let (org, _lane) = self.analysis_lane(caller, Operation::GetMotCycle).await?;
        self.mot_cycle(org, request?).await
    }

    /// Draws the MOT cycle: the pairs a readable map keeps
    /// (`cycle_map::prune`), in the format asked for. The layout of an SVG
    /// runs beside the server's tasks, in the call's lane.
    pub async fn get_mot_cycle_diagram(
        &self,
        caller: &Caller,
        request: Parsed<DiagramRequest>,
    ) -> Result<CycleDiagram> {
        let (org, _lane) = self
            .analysis_lane(caller, Operation::GetMotCycleDiagram)
            .await?;
        let request = request?;
        let cycle = self
            .mot_cycle(
                org,
                CycleRequest {
                    scope: request.scope,
                    max_variants: 1,
                    max_pairs: usize::MAX,
                    min_pair_count: 1,
                },
            )
            .await?;
        let (max_touchpoints, max_pairs) = match request.format {
            cycle_map::Format::Svg => (
                request.max_touchpoints.min(cycle_map::SVG_MAX_TOUCHPOINTS),
                cycle_map::SVG_MAX_PAIRS,
            ),
            cycle_map::Format::Dot | cycle_map::Format::Mermaid => {
                (request.max_touchpoints, usize::MAX)
            }
        };
        let kept = cycle_map::prune(
            &cycle.pairs,
            cycle.transitions,
            request.min_share,
            max_touchpoints,
            max_pairs,
        );
        let drawn = drawing(&cycle, &kept);
        let (touchpoints_drawn, pairs_drawn) = (kept.touchpoints.len(), kept.pairs.len());
        let weight = request.weight;
        let content = match request.format {
            cycle_map::Format::Dot => diagram::dot(&drawn, weight),
            cycle_map::Format::Mermaid => diagram::mermaid(&drawn, weight),
            cycle_map::Format::Svg => {
                tokio::task::spawn_blocking(move || diagram::svg(&drawn, weight))
                    .await
                    .map_err(|_| Error::internal("the diagram's layout stopped"))?
                    .map_err(|error| match error {
                        diagram::SvgError::TooBig(message) => {
                            Error::from(Refusal::new("DIAGRAM_TOO_LARGE", message))
                        }
                        diagram::SvgError::Failed(reason) => {
                            Error::internal(format!("the diagram's layout failed: {reason}"))
                        }
                    })?
            }
        };
        Ok(CycleDiagram {
            no_data: cycle.encounters == 0,
            scope: cycle.scope,
            format: request.format,
            content,
            touchpoints_drawn,
            pairs_drawn,
            pairs_omitted: cycle.all_pairs - pairs_drawn,
        })
    }

    /// Folds the scope's journeys (`domain::cycle_fold`) from the journey
    /// rollups or from its encounters (`cycle_reads_journey_paths`).
    async fn mot_cycle(&self, org: Uuid, request: CycleRequest) -> Result<MotCycle> {
        let (mut tx, scope) = self.open(org, Ok(request.scope), Reads::Rollups).await?;
        let from_paths = self.cycle_reads_journey_paths(&mut tx, org, &scope).await?;
        let touchpoints = touchpoints(&mut tx, org).await?;
        let positions: CyclePositions = (touchpoints.values())
            .map(|t| (t.id, t.cycle_position))
            .collect();
        let mut fold = CycleFold::new(&positions);
        if from_paths {
            // As the encounters in scope are those at the touchpoints the
            // scope names.
            let every = scope.touchpoint_ids.is_none() && scope.stage.is_none();
            let in_scope = |id: &Uuid| every || touchpoints.get(id).is_some_and(|t| scope.names(t));
            store::analysis::fold_journey_paths(&mut tx, org, &scope, in_scope, &mut fold).await?;
        } else {
            store::analysis::fold_encounters(&mut tx, org, &scope, &mut fold).await?;
        }
        tx.commit().await?;
        let figures = fold.finish(usize::try_from(request.max_variants).unwrap_or(0));

        let journeys = figures.journeys;
        let count = |id: Uuid, n: i64| touchpoint_count(&touchpoints, id, n, journeys);
        let ranked = |which: fn(&(Uuid, i64, i64, i64)) -> i64| {
            let counts = (figures.per_touchpoint.iter())
                .filter(|row| which(row) > 0)
                .map(|row| (row.0, which(row)))
                .collect();
            ranked_counts(&touchpoints, counts, journeys)
        };
        let starts = ranked(|row| row.1);
        let finishes = ranked(|row| row.2);
        // A routine key touchpoint is expected in every journey; an
        // exceptional one (a complaint desk) is not.
        let mut skipped: Vec<(Uuid, i64)> = (touchpoints.values())
            .filter(|t| {
                t.key && !t.is_archived() && t.occurrence == Occurrence::Routine && scope.names(t)
            })
            .map(|t| {
                (
                    t.id,
                    journeys - figures.met.get(&t.id).copied().unwrap_or(0),
                )
            })
            .collect();
        skipped.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let pairs = figures.pairs;
        let transitions = pairs.iter().map(|p| p.count).sum();
        let all_pairs = pairs.len();
        let bottlenecks = cycle_map::bottlenecks(&pairs, cycle_map::BOTTLENECKS)
            .into_iter()
            .map(|(pair, total)| (pair.clone(), total))
            .collect();
        let pairs = pairs
            .into_iter()
            .filter(|p| p.count >= request.min_pair_count)
            .take(request.max_pairs)
            .collect();
        let variants = (figures.variants.into_iter())
            .map(|(path, n)| {
                let codes = path.iter().map(|id| code_of(&touchpoints, id)).collect();
                (codes, n, Rate::new(n, journeys))
            })
            .collect();
        let skipped = skipped.into_iter().map(|(id, n)| count(id, n)).collect();
        let revisited = (figures.revisited.into_iter())
            .map(|(id, n)| count(id, n))
            .collect();
        Ok(MotCycle {
            scope,
            journeys,
            encounters: figures.encounters,
            pairs,
            all_pairs,
            transitions,
            starts,
            ends: finishes,
            variant_count: figures.variant_count,
            variants,
            designed_order: Rate::new(
                figures.comparable - figures.out_of_order,
                figures.comparable,
            ),
            skipped_key_touchpoints: skipped,
            journeys_with_loops: Rate::new(figures.journeys_with_loops, journeys),
            revisited_touchpoints: revisited,
            bottlenecks,
            journey_duration: figures.duration,
            encounters_per_journey: figures.encounters_per_journey,
            touchpoints,
        })
    }
}

/// The map of what `kept` keeps of `cycle`: its touchpoints with their
/// names, key marks and journeys starting and ending at them, and its pairs,
/// those against the designed order marked.
fn drawing(cycle: &MotCycle, kept: &Kept<'_>) -> diagram::Diagram {
    let journeys_at = |counts: &[TouchpointCount], id: &Uuid| {
        counts
            .iter()
            .find(|c| c.touchpoint_id == *id)
            .map_or(0, |c| c.journeys)
    };
    let position = |id: &Uuid| cycle.touchpoints.get(id).map_or(0, |t| t.cycle_position);
    let nodes = (kept.touchpoints.iter())
        .map(|id| {
            let touchpoint = cycle.touchpoints.get(id);
            diagram::Node {
                code: cycle.code(id),
                label: touchpoint.map_or_else(|| cycle.code(id), |t| t.display_name.clone()),
                key: touchpoint.is_some_and(|t| t.key),
                starts: journeys_at(&cycle.starts, id),
                ends: journeys_at(&cycle.ends, id),
            }
        })
        .collect();
    let edges = (kept.pairs.iter())
        .map(|pair| diagram::Edge {
            from: cycle.code(&pair.from),
            to: cycle.code(&pair.to),
            count: pair.count,
            median_seconds: Some(pair.median_seconds).filter(|s| s.is_finite()),
            against_design: cycle_map::against_design(position(&pair.from), position(&pair.to)),
        })
        .collect();
    diagram::Diagram { nodes, edges }
}
