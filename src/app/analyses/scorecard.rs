//! The scorecard and the trend of one of its figures: from the
//! encounters, or from the daily rollups for large scopes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::reading::{Reads, ScopeRequest, time_zone, touchpoints};
use crate::{
    app::{App, Caller, Operation, Parsed},
    domain::{
        analysis::{Granularity, Scope, ScorecardFigures, TrendFigure, check_trend_size},
        touchpoint::Touchpoint,
    },
    error::Result,
    store::{
        self,
        analysis::rollup::{self, Grouping},
    },
};

/// The scorecard: every touchpoint's figures that has encounters in scope,
/// in the order of the cycle, and the total.
pub struct Scorecard {
    pub scope: Scope,
    pub total: ScorecardFigures,
    pub touchpoints: Vec<(Touchpoint, ScorecardFigures)>,
}

/// A trend request.
#[derive(Debug, Clone)]
pub struct TrendRequest {
    pub scope: ScopeRequest,
    pub figure: TrendFigure,
    pub granularity: Granularity,
    pub per_touchpoint: bool,
}

/// A series of a trend: its touchpoint (`None` for the whole scope) and
/// one (value, denominator) per bucket.
pub type Series = (Option<Touchpoint>, Vec<(Option<f64>, i64)>);

/// One figure per bucket of time: for the whole scope, and per touchpoint
/// when asked, in the order of the cycle.
pub struct Trend {
    pub scope: Scope,
    pub figure: TrendFigure,
    pub granularity: Granularity,
    pub time_zone: String,
    pub bucket_starts: Vec<DateTime<Utc>>,
    /// The series: the whole scope's first (`None`), then each touchpoint's.
    pub series: Vec<Series>,
    pub no_data: bool,
}

impl App {
    pub async fn get_scorecard(
        &self,
        caller: &Caller,
        scope: Parsed<ScopeRequest>,
    ) -> Result<Scorecard> {
        let (org, _lane) = self.analysis_lane(caller, Operation::GetScorecard).await?;
        let (mut tx, scope) = self.open(org, scope, Reads::Rollups).await?;
        let zone = time_zone(&mut tx, org).await?;
        let rows = self.scorecard_rows(&mut tx, org, &scope, &zone).await?;
        let mut touchpoints = touchpoints(&mut tx, org).await?;
        tx.commit().await?;

        let mut total = ScorecardFigures::default();
        let mut per_touchpoint = Vec::new();
        for (id, figures) in rows {
            match id.and_then(|id| touchpoints.remove(&id)) {
                Some(touchpoint) => per_touchpoint.push((touchpoint, figures)),
                None => total = figures,
            }
        }
        per_touchpoint.sort_by_key(|(t, _)| (t.cycle_position, t.code.clone()));
        Ok(Scorecard {
            scope,
            total,
            touchpoints: per_touchpoint,
        })
    }

    /// The trend `request` asks for; refused before it is computed when it
    /// cannot fit in `budget` bytes.
    pub async fn get_trend(
        &self,
        caller: &Caller,
        request: Parsed<TrendRequest>,
        budget: usize,
    ) -> Result<Trend> {
        let (org, _lane) = self.analysis_lane(caller, Operation::GetTrend).await?;
        let request = request?;
        let (figure, granularity) = (request.figure, request.granularity);
        let (mut tx, scope) = self.open(org, Ok(request.scope), Reads::Rollups).await?;
        granularity.check_buckets(scope.start_time, scope.end_time)?;
        let zone = time_zone(&mut tx, org).await?;
        let unit = granularity.unit();
        let starts = store::analysis::bucket_starts(&mut tx, &scope, unit, &zone).await?;
        let touchpoints = touchpoints(&mut tx, org).await?;
        // Every touchpoint in scope may have a series.
        let series = if request.per_touchpoint {
            1 + touchpoints.values().filter(|t| scope.names(t)).count()
        } else {
            1
        };
        check_trend_size(starts.len(), series, request.per_touchpoint, budget)?;
        let rows = match self.rollup_days(&mut tx, org, &scope, &zone).await? {
            Some(covered) => {
                let grouping = Grouping {
                    buckets: Some((unit, &zone)),
                    per_touchpoint: request.per_touchpoint,
                };
                let with_percentiles = figure.needs_percentiles();
                rollup::figures(&mut tx, org, &scope, &covered, grouping, with_percentiles)
                    .await?
                    .into_iter()
                    .filter_map(|(bucket, t, f)| bucket.map(|b| (b, t, f)))
                    .collect()
            }
            None => {
                store::analysis::scorecard_buckets(
                    &mut tx,
                    org,
                    &scope,
                    unit,
                    &zone,
                    request.per_touchpoint,
                    figure.needs_percentiles(),
                )
                .await?
            }
        };
        tx.commit().await?;

        let mut cells: HashMap<(Option<Uuid>, DateTime<Utc>), ScorecardFigures> = HashMap::new();
        let mut present: Vec<&Touchpoint> = Vec::new();
        for (bucket, touchpoint, figures) in rows {
            if let Some(t) = touchpoint.and_then(|id| touchpoints.get(&id))
                && !present.iter().any(|p| p.id == t.id)
            {
                present.push(t);
            }
            cells.insert((touchpoint, bucket), figures);
        }
        present.sort_by_key(|t| (t.cycle_position, t.code.clone()));
        let empty = ScorecardFigures::default();
        let series_of = |touchpoint: Option<&Touchpoint>| {
            let points = starts
                .iter()
                .map(|start| {
                    let figures = cells
                        .get(&(touchpoint.map(|t| t.id), *start))
                        .unwrap_or(&empty);
                    figure.of(figures)
                })
                .collect();
            (touchpoint.cloned(), points)
        };
        let mut series = vec![series_of(None)];
        series.extend(present.iter().map(|t| series_of(Some(t))));
        let no_data = cells
            .iter()
            .filter(|((t, _), _)| t.is_none())
            .all(|(_, f)| f.encounters == 0);
        Ok(Trend {
            scope,
            figure,
            granularity,
            time_zone: zone,
            bucket_starts: starts,
            series,
            no_data,
        })
    }
}
