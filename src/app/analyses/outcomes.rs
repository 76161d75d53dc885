//! The analyses of journeys' outcomes (journey outcomes, first
//! impressions, the priority matrix) and of encounters' (the guideline
//! breakdown, compliance, recovery performance).

use std::collections::HashMap;

use uuid::Uuid;

use super::reading::{
    Reads, ScopeRequest, TouchpointCount, organisation, ranked_counts, time_zone, touchpoints,
};
use crate::{
    app::{App, Caller, Operation, Parsed},
    domain::{
        analysis::{
            Distribution, MIN_IMPORTANCE_PAIRS, Quadrant, Rate, Scope, ScorecardFigures, quadrant,
            splits,
        },
        encounter::Situation,
        standard::Element,
        touchpoint::Touchpoint,
    },
    error::Result,
    store::{
        self,
        analysis::{
            FIRST_RESPONSE_BOUNDS, JourneyGroupFigures, RecoveryFigures, SituationFigures,
            StandardCompliance, journeys::Journeys, rollup,
        },
    },
};

/// Journeys judged perfect or flawed, and the touchpoints that alone
/// flawed a journey.
pub struct JourneyOutcomes {
    pub scope: Scope,
    pub perfect: JourneyGroupFigures,
    pub flawed: JourneyGroupFigures,
    pub journeys: i64,
    pub judged: i64,
    /// The mean journey score over every scored journey.
    pub mean_score: Option<f64>,
    pub single_failure_journeys: i64,
    pub single_failure_touchpoints: Vec<TouchpointCount>,
}

/// How journeys begin: the first response and what the first window held.
pub struct FirstImpressions {
    pub scope: Scope,
    pub journeys: i64,
    pub window_seconds: i64,
    pub first_response: Distribution,
    /// Journeys per bucket of first response: (low, high, journeys, share).
    pub buckets: Vec<(i64, Option<i64>, i64, Rate)>,
    pub greeted_within_window: Rate,
    pub touchpoints_in_window: Vec<TouchpointCount>,
}

/// One rated touchpoint of the priority matrix.
pub struct PriorityRow {
    pub touchpoint: Touchpoint,
    pub figures: ScorecardFigures,
    pub pairs: i64,
    pub importance: Option<f64>,
    pub quadrant: Option<Quadrant>,
}

/// Importance against performance per touchpoint, split at the medians.
pub struct PriorityMatrix {
    pub scope: Scope,
    pub splits: Option<(f64, f64)>,
    pub rows: Vec<PriorityRow>,
}

/// Failure and satisfaction per situation the guidelines name, then for
/// encounters with none.
pub struct GuidelineBreakdown {
    pub scope: Scope,
    pub situations: Vec<(Option<Situation>, SituationFigures)>,
}

/// One element's compliance, over its standards.
pub struct ElementCompliance {
    pub element: Element,
    pub met: i64,
    pub violated: i64,
}

/// Compliance per standard, least compliant first, and per element.
pub struct ComplianceReport {
    pub scope: Scope,
    pub standards: Vec<StandardCompliance>,
    pub elements: Vec<ElementCompliance>,
}

impl App {
    pub async fn get_journey_outcomes(
        &self,
        caller: &Caller,
        scope: Parsed<ScopeRequest>,
    ) -> Result<JourneyOutcomes> {
        let (org, _lane) = self
            .analysis_lane(caller, Operation::GetJourneyOutcomes)
            .await?;
        let (mut tx, scope) = self.open(org, scope, Reads::Rollups).await?;
        let covered = self.journey_rollup_days(&mut tx, org, &scope).await?;
        let source = Journeys::from(&covered);
        let groups = store::analysis::journey_groups(&mut tx, org, &scope, source).await?;
        let single = store::analysis::single_failures(&mut tx, org, &scope, source).await?;
        let touchpoints = touchpoints(&mut tx, org).await?;
        tx.commit().await?;

        let (perfect, flawed) = (&groups.perfect, &groups.flawed);
        let judged = perfect.journeys + flawed.journeys;
        let journeys = judged + groups.unjudged.journeys;
        let scored = perfect.scored + flawed.scored;
        // Flawed journeys all score 0, so the overall mean weighs the
        // perfect journeys' mean by their share of the scored ones.
        let mean_score = (scored > 0)
            .then(|| perfect.mean_score.unwrap_or(0.0) * perfect.scored as f64 / scored as f64);
        let single_failure_journeys: i64 = single.iter().map(|(_, n)| n).sum();
        Ok(JourneyOutcomes {
            scope,
            journeys,
            judged,
            mean_score,
            single_failure_journeys,
            single_failure_touchpoints: ranked_counts(
                &touchpoints,
                single,
                single_failure_journeys,
            ),
            perfect: groups.perfect,
            flawed: groups.flawed,
        })
    }

    pub async fn get_first_impressions(
        &self,
        caller: &Caller,
        scope: Parsed<ScopeRequest>,
    ) -> Result<FirstImpressions> {
        let (org, _lane) = self
            .analysis_lane(caller, Operation::GetFirstImpressions)
            .await?;
        let (mut tx, scope) = self.open(org, scope, Reads::Rollups).await?;
        let window = organisation(&mut tx, org).await?.first_impression_seconds;
        let covered = self.journey_rollup_days(&mut tx, org, &scope).await?;
        let source = Journeys::from(&covered);
        let f = store::analysis::first_impressions(&mut tx, org, &scope, window, source).await?;
        let touchpoints = touchpoints(&mut tx, org).await?;
        tx.commit().await?;

        let measured = f.first_response.count;
        let lows = std::iter::once(0).chain(FIRST_RESPONSE_BOUNDS);
        let highs = FIRST_RESPONSE_BOUNDS.iter().map(|b| Some(*b)).chain([None]);
        let buckets = lows
            .zip(highs)
            .zip(&f.buckets)
            .map(|((low, high), n)| (low, high, *n, Rate::new(*n, measured)))
            .collect();
        Ok(FirstImpressions {
            scope,
            journeys: f.journeys,
            window_seconds: window,
            first_response: f.first_response,
            buckets,
            greeted_within_window: Rate::new(f.within_window, measured),
            touchpoints_in_window: ranked_counts(&touchpoints, f.touchpoints_in_window, f.journeys),
        })
    }

    pub async fn get_priority_matrix(
        &self,
        caller: &Caller,
        scope: Parsed<ScopeRequest>,
    ) -> Result<PriorityMatrix> {
        let (org, _lane) = self
            .analysis_lane(caller, Operation::GetPriorityMatrix)
            .await?;
        let (mut tx, scope) = self.open(org, scope, Reads::Rollups).await?;
        let zone = time_zone(&mut tx, org).await?;
        let performance = self.scorecard_rows(&mut tx, org, &scope, &zone).await?;
        let covered = self.journey_rollup_days(&mut tx, org, &scope).await?;
        let source = Journeys::from(&covered);
        let importance = store::analysis::importance(&mut tx, org, &scope, source).await?;
        let touchpoints = touchpoints(&mut tx, org).await?;
        tx.commit().await?;

        // An importance from too few pairs says nothing.
        let importance: HashMap<Uuid, (i64, Option<f64>)> = importance
            .into_iter()
            .map(|(id, pairs, r)| (id, (pairs, r.filter(|_| pairs >= MIN_IMPORTANCE_PAIRS))))
            .collect();
        let mut rows: Vec<PriorityRow> = performance
            .into_iter()
            .filter(|(_, f)| f.rated > 0)
            .filter_map(|(id, figures)| {
                let touchpoint = touchpoints.get(&id?)?.clone();
                let (pairs, r) = importance.get(&touchpoint.id).copied().unwrap_or((0, None));
                Some(PriorityRow {
                    touchpoint,
                    figures,
                    pairs,
                    importance: r,
                    quadrant: None,
                })
            })
            .collect();
        rows.sort_by_key(|row| (row.touchpoint.cycle_position, row.touchpoint.code.clone()));
        let placed: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|row| Some((row.importance?, row.figures.mean_satisfaction?)))
            .collect();
        let split = splits(&placed);
        for row in &mut rows {
            row.quadrant = match (row.importance, row.figures.mean_satisfaction, split) {
                (Some(r), Some(p), Some(split)) => Some(quadrant(r, p, split)),
                _ => None,
            };
        }
        Ok(PriorityMatrix {
            scope,
            splits: split,
            rows,
        })
    }

    pub async fn get_guideline_breakdown(
        &self,
        caller: &Caller,
        scope: Parsed<ScopeRequest>,
    ) -> Result<GuidelineBreakdown> {
        let (org, _lane) = self
            .analysis_lane(caller, Operation::GetGuidelineBreakdown)
            .await?;
        let (mut tx, scope) = self.open(org, scope, Reads::Rollups).await?;
        let rows = store::analysis::situations(&mut tx, org, &scope).await?;
        tx.commit().await?;

        let mut by_situation: HashMap<Option<Situation>, SituationFigures> =
            rows.into_iter().collect();
        let order = Situation::ALL
            .iter()
            .copied()
            .map(Some)
            .chain(std::iter::once(None));
        let situations = order
            .map(|situation| {
                let figures = by_situation.remove(&situation).unwrap_or_default();
                (situation, figures)
            })
            .collect();
        Ok(GuidelineBreakdown { scope, situations })
    }

    pub async fn get_compliance_report(
        &self,
        caller: &Caller,
        scope: Parsed<ScopeRequest>,
    ) -> Result<ComplianceReport> {
        let (org, _lane) = self
            .analysis_lane(caller, Operation::GetComplianceReport)
            .await?;
        let (mut tx, scope) = self.open(org, scope, Reads::Rollups).await?;
        let zone = time_zone(&mut tx, org).await?;
        let mut rows = match self.rollup_days(&mut tx, org, &scope, &zone).await? {
            Some(covered) => rollup::compliance(&mut tx, org, &scope, &covered).await?,
            None => store::analysis::compliance(&mut tx, org, &scope).await?,
        };
        tx.commit().await?;

        // Least compliant first, ties by code.
        let compliance_of = |r: &StandardCompliance| Rate::new(r.met, r.met + r.violated);
        rows.sort_by(|a, b| {
            let (a_rate, b_rate) = (compliance_of(a).value(), compliance_of(b).value());
            a_rate
                .partial_cmp(&b_rate)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.code.cmp(&b.code))
        });
        let mut elements: Vec<ElementCompliance> = Vec::new();
        for row in &rows {
            match elements.iter_mut().find(|e| e.element == row.element) {
                Some(element) => {
                    element.met += row.met;
                    element.violated += row.violated;
                }
                None => elements.push(ElementCompliance {
                    element: row.element,
                    met: row.met,
                    violated: row.violated,
                }),
            }
        }
        elements.sort_by_key(|e| Element::ALL.iter().position(|x| *x == e.element));
        Ok(ComplianceReport {
            scope,
            standards: rows,
            elements,
        })
    }

    pub async fn get_recovery_performance(
        &self,
        caller: &Caller,
        scope: Parsed<ScopeRequest>,
        acknowledge_within: Parsed<i64>,
    ) -> Result<(Scope, RecoveryFigures)> {
        let (org, _lane) = self
            .analysis_lane(caller, Operation::GetRecoveryPerformance)
            .await?;
        let acknowledge_within = acknowledge_within?;
        let (mut tx, scope) = self.open(org, scope, Reads::EncountersOnly).await?;
        let figures = store::analysis::recovery(&mut tx, org, &scope, acknowledge_within).await?;
        tx.commit().await?;
        Ok((scope, figures))
    }
}
