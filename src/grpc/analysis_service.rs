//! `verdad.v1.AnalysisService`.

use std::collections::HashMap;

use chrono::Utc;
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    authorize,
    convert::{
        channel_from_proto, element_to_proto, granularity_from_proto, granularity_to_proto,
        log_format_from_proto, quadrant_to_proto, severity_to_proto, situation_to_proto,
        stage_from_proto, trend_figure_from_proto, trend_figure_to_proto,
    },
    enum_field, fitting, from_timestamp, item_bytes, named_touchpoints, page_budget, parse_id,
    required_enum, respond, timestamp,
};
use crate::{
    domain::{
        analysis::{
            DEFAULT_RANGE_DAYS, Distribution, Granularity, LogFormat, MAX_SCOPE_TOUCHPOINTS,
            MIN_IMPORTANCE_PAIRS, Nps, Rate, Scope, ScorecardFigures, check_trend_size, max_pairs,
            max_variants, min_pair_count, quadrant, range, splits,
        },
        code::{Lookup, parse_code},
        encounter::Situation,
        event_log::{CaseSequence, CsvLog, Event, XesLog, utc_offset},
        organisation::Organisation,
        role::Access,
        standard::Element,
        touchpoint::Touchpoint,
        violation::{FieldViolation, Violations},
    },
    error::{Error, Result},
    server::lanes::{Lanes, Work},
    proto::verdad::v1 as pb,
    ingest::rollup_applier::RollupApplier,
    store::{
        self,
        analysis::{
            FIRST_RESPONSE_BOUNDS, JourneyGroupFigures, SituationFigures, StandardCompliance,
            journeys::{self, Journeys},
            rollup::{self, CoveredDays, Grouping},
        },
    },
};

/// How many times the exact-percentile limit a scope must hold before the
/// journey analyses read the journey rollups (see `journey_rollup_days`).
const JOURNEY_ROLLUP_FACTOR: i64 = 4;

/// Whether an analysis may read the rollups, which must catch up first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reads {
    Rollups,
    /// The event log and recovery performance read the encounters and
    /// recovery cases only, and need not wait for the rollups.
    EncountersOnly,
}

pub struct AnalysisApi {
    pool: PgPool,
    rollups: RollupApplier,
    /// Scopes with more encounters read the daily rollups.
    exact_percentile_limit: i64,
    /// How long an analysis folds pending changes in (see
    /// ServeArgs::fold_wait).
    fold_wait: std::time::Duration,
    /// The server's lanes for bulk work (see ServeArgs::bulk_lanes).
    bulk: Lanes,
}

impl AnalysisApi {
    pub fn new(
        pool: PgPool,
        rollups: RollupApplier,
        exact_percentile_limit: i64,
        fold_wait: std::time::Duration,
        bulk: Lanes,
    ) -> Self {
        Self {
            pool,
            rollups,
            exact_percentile_limit,
            fold_wait,
            bulk,
        }
    }

    /// Runs an analysis in one of the bulk lanes, its fold of the pending
    /// rollups included. An export takes none: it streams as fast as its
    /// caller reads, and a lane held meanwhile would hold up the rest.
    async fn in_lane<T>(&self, analysis: impl Future<Output = Result<T>>) -> Result<T> {
        let _lane = self.bulk.enter(Work::Analysis).await?;
        analysis.await
    }

    async fn scorecard(
        &self,
        request: Request<pb::GetScorecardRequest>,
    ) -> Result<pb::GetScorecardResponse> {
        let principal = authorize(&request, Access::Read)?;
        let org = principal.organisation_id;
        let checked = checked_scope(request.get_ref().scope.as_ref())?;
        let mut tx = self.begin(org, Reads::Rollups).await?;
        let scope = resolve_scope(&mut tx, org, checked).await?;
        let zone = time_zone(&mut tx, org).await?;
        let rows = self.scorecard_rows(&mut tx, org, &scope, &zone).await?;
        let touchpoints = touchpoints(&mut tx, org).await?;
        tx.commit().await?;

        let mut total = ScorecardFigures::default();
        let mut per_touchpoint = Vec::new();
        for (id, figures) in rows {
            match id.and_then(|id| touchpoints.get(&id)) {
                Some(touchpoint) => per_touchpoint.push((touchpoint, figures)),
                None => total = figures,
            }
        }
        per_touchpoint.sort_by_key(|(t, _)| (t.cycle_position, t.code.clone()));
        Ok(pb::GetScorecardResponse {
            start_time: Some(timestamp(scope.start_time)),
            end_time: Some(timestamp(scope.end_time)),
            no_data: total.encounters == 0,
            touchpoints: per_touchpoint
                .into_iter()
                .map(|(t, figures)| scorecard_row(Some(t), &figures))
                .collect(),
            total: Some(scorecard_row(None, &total)),
        })
    }

    async fn mot_cycle(
        &self,
        request: Request<pb::GetMotCycleRequest>,
    ) -> Result<pb::GetMotCycleResponse> {
        let principal = authorize(&request, Access::Read)?;
        let org = principal.organisation_id;
        let budget = page_budget(&request);
        let request = request.into_inner();
        let mut v = Violations::new();
        let checked = match checked_scope(request.scope.as_ref()) {
            Ok(checked) => Some(checked),
            Err(violations) => {
                violations.into_iter().for_each(|e| v.push(e));
                None
            }
        };
        let limit = v.check(max_variants(request.max_variants));
        let most_pairs = v.check(max_pairs(request.max_pairs));
        let least_count = v.check(min_pair_count(request.min_pair_count));
        let (checked, limit, most_pairs, least_count) =
            v.finish(|| Some((checked?, limit?, most_pairs?, least_count?)))?;
        let mut tx = self.begin(org, Reads::Rollups).await?;
        let scope = resolve_scope(&mut tx, org, checked).await?;
        let covered = self.journey_rollup_days(&mut tx, org, &scope).await?;
        let source = Journeys::from(&covered);
        store::analysis::order_steps(&mut tx, org, &scope, source).await?;
        let pairs = match &covered {
            Some(covered) => journeys::rolled_pairs(&mut tx, org, &scope, covered).await?,
            None => store::analysis::pairs(&mut tx).await?,
        };
        let ends = store::analysis::ends(&mut tx).await?;
        let (variant_count, variants) = store::analysis::variants(&mut tx, limit).await?;
        let conformance = store::analysis::conformance(&mut tx, org, &scope).await?;
        let touchpoints = touchpoints(&mut tx, org).await?;
        tx.commit().await?;

        let code = |id: &Uuid| code_of(&touchpoints, id);
        let journeys = ends.journeys;
        let count = |id: Uuid, n: i64| touchpoint_count(&touchpoints, id, n, journeys);
        let starts = ranked_counts(
            &touchpoints,
            ends.per_touchpoint
                .iter()
                .filter(|(_, s, _)| *s > 0)
                .map(|(id, s, _)| (*id, *s))
                .collect(),
            journeys,
        );
        let finishes = ranked_counts(
            &touchpoints,
            ends.per_touchpoint
                .iter()
                .filter(|(_, _, e)| *e > 0)
                .map(|(id, _, e)| (*id, *e))
                .collect(),
            journeys,
        );
        let transitions = pairs.iter().map(|p| p.count).sum();
        let all_pairs = pairs.len();
        let pairs: Vec<_> = pairs
            .into_iter()
            .filter(|p| p.count >= least_count)
            .take(most_pairs)
            .collect();
        let mut cycle = pb::GetMotCycleResponse {
            start_time: Some(timestamp(scope.start_time)),
            end_time: Some(timestamp(scope.end_time)),
            no_data: ends.encounters == 0,
            journeys,
            encounters: ends.encounters,
            pairs: pairs
                .iter()
                .map(|p| pb::TouchpointPair {
                    from_touchpoint_id: p.from.to_string(),
                    from_touchpoint_code: code(&p.from),
                    to_touchpoint_id: p.to.to_string(),
                    to_touchpoint_code: code(&p.to),
                    count: p.count,
                    mean_seconds: p.mean_seconds,
                    median_seconds: p.median_seconds,
                    median_approximate: p.median_approximate,
                })
                .collect(),
            transitions,
            start_touchpoints: starts,
            end_touchpoints: finishes,
            variant_count,
            variants: variants
                .into_iter()
                .map(|(path, n)| pb::PathVariant {
                    touchpoint_codes: path.iter().map(code).collect(),
                    journeys: n,
                    share: Some(rate(Rate::new(n, journeys))),
                })
                .collect(),
            conformance: Some(pb::Conformance {
                designed_order: Some(rate(Rate::new(
                    conformance.in_designed_order,
                    conformance.comparable,
                ))),
                skipped_key_touchpoints: conformance
                    .skipped
                    .into_iter()
                    .map(|(id, n)| count(id, n))
                    .collect(),
                journeys_with_loops: Some(rate(Rate::new(
                    conformance.journeys_with_loops,
                    journeys,
                ))),
                revisited_touchpoints: conformance
                    .revisited
                    .into_iter()
                    .map(|(id, n)| count(id, n))
                    .collect(),
            }),
            pairs_omitted: 0,
        };
        // The most frequent pairs and variants that fit in one answer:
        // variants take up to half of what is left, pairs the rest.
        let pairs = std::mem::take(&mut cycle.pairs);
        let variants = std::mem::take(&mut cycle.variants);
        let mut room = budget.saturating_sub(prost::Message::encoded_len(&cycle));
        cycle.variants = fitting(variants, room / 2);
        room = room.saturating_sub(cycle.variants.iter().map(item_bytes).sum());
        cycle.pairs = fitting(pairs, room);
        cycle.pairs_omitted = (all_pairs - cycle.pairs.len()) as i64;
        Ok(cycle)
    }
}

/// The transaction an analysis reads in, and whether it may read the
/// rollups: not while a backlog waits to be folded in.
struct Reading {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    rollups: bool,
}

impl Reading {
    async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl std::ops::Deref for Reading {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for Reading {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

impl AnalysisApi {
    /// Checks the scope of a request and fixes its range, in a transaction
    /// acting for the caller's organisation.
    async fn open(
        &self,
        org: Uuid,
        scope: Option<&pb::AnalysisScope>,
        reads: Reads,
    ) -> Result<(Reading, Scope)> {
        let checked = checked_scope(scope)?;
        let mut tx = self.begin(org, reads).await?;
        let scope = resolve_scope(&mut tx, org, checked).await?;
        Ok((tx, scope))
    }

    /// The transaction an analysis reads in, planning each statement for
    /// its parameters; when it reads the rollups, after they have caught up
    /// with every change committed so far, or, when a backlog is too large
    /// to fold in the wait allowed, reading the encounters only.
    async fn begin(&self, org: Uuid, reads: Reads) -> Result<Reading> {
        let rollups =
            reads == Reads::Rollups && self.rollups.bring_up_to_date(org, self.fold_wait).await?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        store::analysis::plan_for_parameters(&mut tx).await?;
        Ok(Reading { tx, rollups })
    }

    /// The whole days of the scope when the rollups are to be read: when
    /// the scope holds more encounters than percentiles are sorted for.
    async fn rollup_days(
        &self,
        tx: &mut Reading,
        org: Uuid,
        scope: &Scope,
        zone: &str,
    ) -> Result<Option<CoveredDays>> {
        if !tx.rollups {
            return Ok(None);
        }
        days_over(tx, org, scope, zone, self.exact_percentile_limit).await
    }

    /// The whole days of the scope when the journey analyses are to read
    /// the journey rollups: only without touchpoint, stage or channel
    /// filters, which cut journeys apart, and only for scopes several times
    /// the exact-percentile limit. Their cost is mostly fixed (every journey
    /// row, and the journeys crossing the edges summarised afresh), so
    /// below that the encounters are quicker: at 1M encounters a year, 30
    /// days' MOT cycle took 0.6 to 0.7 s from the encounters and 1.0 s from
    /// the rollups, the whole year 8.7 s and 0.35 s.
    async fn journey_rollup_days(
        &self,
        tx: &mut Reading,
        org: Uuid,
        scope: &Scope,
    ) -> Result<Option<CoveredDays>> {
        if !scope.is_whole_journeys() || !tx.rollups {
            return Ok(None);
        }
        let zone = time_zone(tx, org).await?;
        let limit = self
            .exact_percentile_limit
            .saturating_mul(JOURNEY_ROLLUP_FACTOR);
        days_over(tx, org, scope, &zone, limit).await
    }

    /// Scorecard figures per touchpoint (`Some`) and in total (`None`).
    async fn scorecard_rows(
        &self,
        tx: &mut Reading,
        org: Uuid,
        scope: &Scope,
        zone: &str,
    ) -> Result<Vec<(Option<Uuid>, ScorecardFigures)>> {
        match self.rollup_days(tx, org, scope, zone).await? {
            Some(covered) => {
                let grouping = Grouping {
                    buckets: None,
                    per_touchpoint: true,
                };
                let rows = rollup::figures(tx, org, scope, &covered, grouping, true).await?;
                Ok(rows.into_iter().map(|(_, t, f)| (t, f)).collect())
            }
            None => store::analysis::scorecard(tx, org, scope).await,
        }
    }

    async fn journey_outcomes(
        &self,
        request: Request<pb::GetJourneyOutcomesRequest>,
    ) -> Result<pb::GetJourneyOutcomesResponse> {
        let principal = authorize(&request, Access::Read)?;
        let org = principal.organisation_id;
        let (mut tx, scope) = self
            .open(org, request.get_ref().scope.as_ref(), Reads::Rollups)
            .await?;
        let covered = self.journey_rollup_days(&mut tx, org, &scope).await?;
        let source = Journeys::from(&covered);
        let groups = store::analysis::journey_groups(&mut tx, org, &scope, source).await?;
        let (perfect, flawed) = (&groups.perfect, &groups.flawed);
        let single = store::analysis::single_failures(&mut tx, org, &scope, source).await?;
        let touchpoints = touchpoints(&mut tx, org).await?;
        tx.commit().await?;

        let judged = perfect.journeys + flawed.journeys;
        let journeys = judged + groups.unjudged.journeys;
        let scored = perfect.scored + flawed.scored;
        // Flawed journeys all score 0, so the overall mean weighs the
        // perfect journeys' mean by their share of the scored ones.
        let mean_score = (scored > 0)
            .then(|| perfect.mean_score.unwrap_or(0.0) * perfect.scored as f64 / scored as f64);
        let single_failure_journeys: i64 = single.iter().map(|(_, n)| n).sum();
        Ok(pb::GetJourneyOutcomesResponse {
            start_time: Some(timestamp(scope.start_time)),
            end_time: Some(timestamp(scope.end_time)),
            no_data: journeys == 0,
            journeys,
            judged_journeys: judged,
            perfect_share: Some(rate(Rate::new(perfect.journeys, judged))),
            perfect: Some(journey_group(perfect)),
            flawed: Some(journey_group(flawed)),
            mean_score,
            single_failure_journeys,
            single_failure_touchpoints: ranked_counts(
                &touchpoints,
                single,
                single_failure_journeys,
            ),
        })
    }

    async fn first_impressions(
        &self,
        request: Request<pb::GetFirstImpressionsRequest>,
    ) -> Result<pb::GetFirstImpressionsResponse> {
        let principal = authorize(&request, Access::Read)?;
        let org = principal.organisation_id;
        let (mut tx, scope) = self
            .open(org, request.get_ref().scope.as_ref(), Reads::Rollups)
            .await?;
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
            .map(|((min_seconds, max_seconds), n)| pb::FirstResponseBucket {
                min_seconds,
                max_seconds,
                journeys: *n,
                share: Some(rate(Rate::new(*n, measured))),
            })
            .collect();
        Ok(pb::GetFirstImpressionsResponse {
            start_time: Some(timestamp(scope.start_time)),
            end_time: Some(timestamp(scope.end_time)),
            no_data: f.journeys == 0,
            journeys: f.journeys,
            window: Some(prost_types::Duration {
                seconds: window,
                nanos: 0,
            }),
            first_response_seconds: Some(distribution(f.first_response)),
            buckets,
            greeted_within_window: Some(rate(Rate::new(f.within_window, measured))),
            touchpoints_in_window: ranked_counts(&touchpoints, f.touchpoints_in_window, f.journeys),
        })
    }

    async fn trend(&self, request: Request<pb::GetTrendRequest>) -> Result<pb::GetTrendResponse> {
        let principal = authorize(&request, Access::Read)?;
        let org = principal.organisation_id;
        let budget = page_budget(&request);
        let request = request.into_inner();
        let mut v = Violations::new();
        let figure = v.check(required_enum(
            "figure",
            request.figure,
            trend_figure_from_proto,
        ));
        let granularity = v.check(
            enum_field("granularity", request.granularity, granularity_from_proto)
                .map(|g| g.unwrap_or(Granularity::Day)),
        );
        let (figure, granularity) = v.finish(|| Some((figure?, granularity?)))?;
        let (mut tx, scope) = self
            .open(org, request.scope.as_ref(), Reads::Rollups)
            .await?;
        granularity.check_buckets(scope.start_time, scope.end_time)?;
        let zone = time_zone(&mut tx, org).await?;
        let unit = granularity.unit();
        let starts = store::analysis::bucket_starts(&mut tx, &scope, unit, &zone).await?;
        let touchpoints = touchpoints(&mut tx, org).await?;
        // Refused before it is computed when it cannot fit: every
        // touchpoint in scope may have a series.
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

        let mut cells: HashMap<(Option<Uuid>, chrono::DateTime<Utc>), ScorecardFigures> =
            HashMap::new();
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
        let series_of = |touchpoint: Option<&Touchpoint>| pb::TrendSeries {
            touchpoint_id: touchpoint.map(|t| t.id.to_string()).unwrap_or_default(),
            touchpoint_code: touchpoint.map(|t| t.code.clone()).unwrap_or_default(),
            points: starts
                .iter()
                .map(|start| {
                    let figures = cells
                        .get(&(touchpoint.map(|t| t.id), *start))
                        .unwrap_or(&empty);
                    let (value, denominator) = figure.of(figures);
                    pb::TrendPoint {
                        bucket_start: Some(timestamp(*start)),
                        value,
                        denominator,
                    }
                })
                .collect(),
        };
        let mut series = vec![series_of(None)];
        series.extend(present.iter().map(|t| series_of(Some(t))));
        let no_data = cells
            .iter()
            .filter(|((t, _), _)| t.is_none())
            .all(|(_, f)| f.encounters == 0);
        Ok(pb::GetTrendResponse {
            start_time: Some(timestamp(scope.start_time)),
            end_time: Some(timestamp(scope.end_time)),
            no_data,
            figure: trend_figure_to_proto(figure).into(),
            granularity: granularity_to_proto(granularity).into(),
            time_zone: zone,
            series,
        })
    }

    async fn priority_matrix(
        &self,
        request: Request<pb::GetPriorityMatrixRequest>,
    ) -> Result<pb::GetPriorityMatrixResponse> {
        let principal = authorize(&request, Access::Read)?;
        let org = principal.organisation_id;
        let (mut tx, scope) = self
            .open(org, request.get_ref().scope.as_ref(), Reads::Rollups)
            .await?;
        let zone = time_zone(&mut tx, org).await?;
        let performance = self.scorecard_rows(&mut tx, org, &scope, &zone).await?;
        let covered = self.journey_rollup_days(&mut tx, org, &scope).await?;
        let source = Journeys::from(&covered);
        let importance = store::analysis::importance(&mut tx, org, &scope, source).await?;
        let touchpoints = touchpoints(&mut tx, org).await?;
        tx.commit().await?;

        let importance: HashMap<Uuid, (i64, Option<f64>)> = importance
            .into_iter()
            .map(|(id, pairs, r)| (id, (pairs, r.filter(|_| pairs >= MIN_IMPORTANCE_PAIRS))))
            .collect();
        let mut rows: Vec<(&Touchpoint, ScorecardFigures, i64, Option<f64>)> = performance
            .into_iter()
            .filter(|(_, f)| f.rated > 0)
            .filter_map(|(id, f)| {
                let t = touchpoints.get(&id?)?;
                let (pairs, r) = importance.get(&t.id).copied().unwrap_or((0, None));
                Some((t, f, pairs, r))
            })
            .collect();
        rows.sort_by_key(|(t, ..)| (t.cycle_position, t.code.clone()));
        let placed: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|(_, f, _, r)| Some(((*r)?, f.mean_satisfaction?)))
            .collect();
        let split = splits(&placed);
        Ok(pb::GetPriorityMatrixResponse {
            start_time: Some(timestamp(scope.start_time)),
            end_time: Some(timestamp(scope.end_time)),
            no_data: rows.is_empty(),
            importance_split: split.map(|s| s.0),
            performance_split: split.map(|s| s.1),
            touchpoints: rows
                .into_iter()
                .map(|(t, f, pairs, r)| {
                    let placed = match (r, f.mean_satisfaction, split) {
                        (Some(r), Some(p), Some(split)) => quadrant_to_proto(quadrant(r, p, split)),
                        _ => pb::Quadrant::Unspecified,
                    };
                    pb::PriorityRow {
                        touchpoint_id: t.id.to_string(),
                        touchpoint_code: t.code.clone(),
                        display_name: t.display_name.clone(),
                        performance: f.mean_satisfaction,
                        rated: f.rated,
                        importance: r,
                        pairs,
                        quadrant: placed.into(),
                    }
                })
                .collect(),
        })
    }

    async fn export_event_log(
        &self,
        request: Request<pb::ExportEventLogRequest>,
    ) -> Result<LogStream> {
        let principal = authorize(&request, Access::Read)?;
        let org = principal.organisation_id;
        let format = enum_field("format", request.get_ref().format, log_format_from_proto)?
            .unwrap_or(LogFormat::Csv);
        let (tx, scope) = self
            .open(org, request.get_ref().scope.as_ref(), Reads::EncountersOnly)
            .await?;
        let (sender, receiver) = mpsc::channel(4);
        tokio::spawn(async move {
            if let Err(error) = write_log(tx.tx, org, scope, format, &sender).await {
                let _ = sender.send(Err(Status::from(error))).await;
            }
        });
        Ok(Box::pin(ReceiverStream::new(receiver)))
    }

    async fn guideline_breakdown(
        &self,
        request: Request<pb::GetGuidelineBreakdownRequest>,
    ) -> Result<pb::GetGuidelineBreakdownResponse> {
        let principal = authorize(&request, Access::Read)?;
        let org = principal.organisation_id;
        let (mut tx, scope) = self
            .open(org, request.get_ref().scope.as_ref(), Reads::Rollups)
            .await?;
        let rows = store::analysis::situations(&mut tx, org, &scope).await?;
        tx.commit().await?;

        let mut by_situation: HashMap<Option<Situation>, SituationFigures> =
            rows.into_iter().collect();
        let order = Situation::ALL
            .iter()
            .copied()
            .map(Some)
            .chain(std::iter::once(None));
        let situations: Vec<pb::GuidelineRow> = order
            .map(|situation| {
                let f = by_situation.remove(&situation).unwrap_or_default();
                pb::GuidelineRow {
                    situation: situation
                        .map_or(pb::Situation::Unspecified, situation_to_proto)
                        .into(),
                    encounters: f.encounters,
                    failure_rate: Some(rate(Rate::new(f.failed, f.encounters))),
                    mean_satisfaction: f.mean_satisfaction,
                    csat: Some(rate(Rate::new(f.satisfied, f.rated))),
                }
            })
            .collect();
        Ok(pb::GetGuidelineBreakdownResponse {
            start_time: Some(timestamp(scope.start_time)),
            end_time: Some(timestamp(scope.end_time)),
            no_data: situations.iter().all(|s| s.encounters == 0),
            situations,
        })
    }

    async fn compliance_report(
        &self,
        request: Request<pb::GetComplianceReportRequest>,
    ) -> Result<pb::GetComplianceReportResponse> {
        let principal = authorize(&request, Access::Read)?;
        let org = principal.organisation_id;
        let (mut tx, scope) = self
            .open(org, request.get_ref().scope.as_ref(), Reads::Rollups)
            .await?;
        let zone = time_zone(&mut tx, org).await?;
        let mut rows = match self.rollup_days(&mut tx, org, &scope, &zone).await? {
            Some(covered) => rollup::compliance(&mut tx, org, &scope, &covered).await?,
            None => store::analysis::compliance(&mut tx, org, &scope).await?,
        };
        tx.commit().await?;

        let compliance_of = |r: &StandardCompliance| Rate::new(r.met, r.met + r.violated);
        rows.sort_by(|a, b| {
            let (a_rate, b_rate) = (compliance_of(a).value(), compliance_of(b).value());
            a_rate
                .partial_cmp(&b_rate)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.code.cmp(&b.code))
        });
        let mut elements: Vec<(Element, i64, i64)> = Vec::new();
        let mut standards = Vec::with_capacity(rows.len());
        for row in &rows {
            let element = row.element;
            match elements.iter_mut().find(|(e, ..)| *e == element) {
                Some((_, met, violated)) => {
                    *met += row.met;
                    *violated += row.violated;
                }
                None => elements.push((element, row.met, row.violated)),
            }
            standards.push(pb::ComplianceRow {
                standard_id: row.standard_id.to_string(),
                standard_code: row.code.clone(),
                element: element_to_proto(element).into(),
                evaluated: row.met + row.violated,
                met: row.met,
                violated: row.violated,
                compliance: Some(rate(compliance_of(row))),
                severity: severity_to_proto(row.severity).into(),
            });
        }
        elements.sort_by_key(|(e, ..)| Element::ALL.iter().position(|x| x == e));
        Ok(pb::GetComplianceReportResponse {
            start_time: Some(timestamp(scope.start_time)),
            end_time: Some(timestamp(scope.end_time)),
            no_data: standards.is_empty(),
            standards,
            elements: elements
                .into_iter()
                .map(|(element, met, violated)| pb::ComplianceRow {
                    element: element_to_proto(element).into(),
                    evaluated: met + violated,
                    met,
                    violated,
                    compliance: Some(rate(Rate::new(met, met + violated))),
                    ..Default::default()
                })
                .collect(),
        })
    }

    async fn recovery_performance(
        &self,
        request: Request<pb::GetRecoveryPerformanceRequest>,
    ) -> Result<pb::GetRecoveryPerformanceResponse> {
        let principal = authorize(&request, Access::Read)?;
        let org = principal.organisation_id;
        let (mut tx, scope) = self
            .open(org, request.get_ref().scope.as_ref(), Reads::EncountersOnly)
            .await?;
        let f = store::analysis::recovery(&mut tx, org, &scope).await?;
        tx.commit().await?;
        Ok(pb::GetRecoveryPerformanceResponse {
            start_time: Some(timestamp(scope.start_time)),
            end_time: Some(timestamp(scope.end_time)),
            no_data: f.opened == 0,
            opened: f.opened,
            resolved: Some(rate(Rate::new(f.resolved, f.opened))),
            resolved_within_deadline: Some(rate(Rate::new(f.resolved_in_time, f.opened))),
            seconds_to_resolve: Some(distribution(f.seconds_to_resolve)),
            follow_ups: f.follow_ups,
            mean_original_satisfaction: f.mean_original,
            mean_follow_up_satisfaction: f.mean_follow_up,
            improved: Some(rate(Rate::new(f.improved, f.follow_ups))),
        })
    }
}

type LogStream =
    std::pin::Pin<Box<dyn Stream<Item = Result<pb::ExportEventLogResponse, Status>> + Send>>;

/// The size of the pieces an export is sent in.
const CHUNK_BYTES: usize = 64 * 1024;

/// Writes the event log of `scope` to `sender` piece by piece as the
/// database streams it. Stops quietly when the caller goes.
async fn write_log(
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    org: Uuid,
    scope: Scope,
    format: LogFormat,
    sender: &mpsc::Sender<Result<pb::ExportEventLogResponse, Status>>,
) -> Result<()> {
    let touchpoints = touchpoints(&mut tx, org).await?;
    let zone = time_zone(&mut tx, org).await?;
    {
        let mut rows = store::analysis::event_log(&mut tx, org, &scope, &zone).await?;
        let mut log = match format {
            LogFormat::Csv => Log::Csv(Box::default()),
            LogFormat::Xes => Log::Xes(XesLog::new()),
        };
        let mut sequence = CaseSequence::default();
        while let Some(row) = rows.next().await? {
            let touchpoint = touchpoints.get(&row.touchpoint_id);
            log.event(&Event {
                case_id: &row.journey_id,
                activity: touchpoint.map_or("", |t| &t.code),
                activity_name: touchpoint.map_or("", |t| &t.display_name),
                time: row.occur_time,
                offset: utc_offset(row.offset_seconds),
                sequence: sequence.next(&row.journey_id),
                resource: row.staff_ref.as_deref(),
            });
            if log.len() >= CHUNK_BYTES && !send_bytes(sender, log.take()).await {
                return Ok(());
            }
        }
        if !send_bytes(sender, log.finish()).await {
            return Ok(());
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The log being written, in the format asked for.
enum Log {
    Csv(Box<CsvLog>),
    Xes(XesLog),
}

impl Log {
    fn event(&mut self, event: &Event<'_>) {
        match self {
            Log::Csv(log) => log.event(event),
            Log::Xes(log) => log.event(event),
        }
    }

    fn len(&self) -> usize {
        match self {
            Log::Csv(log) => log.len(),
            Log::Xes(log) => log.len(),
        }
    }

    fn take(&mut self) -> Vec<u8> {
        match self {
            Log::Csv(log) => log.take(),
            Log::Xes(log) => log.take(),
        }
    }

    /// The rest of the log, with its end.
    fn finish(self) -> Vec<u8> {
        match self {
            Log::Csv(mut log) => log.take(),
            Log::Xes(log) => log.finish(),
        }
    }
}

/// Sends a piece of the log; false when the caller has gone.
async fn send_bytes(
    sender: &mpsc::Sender<Result<pb::ExportEventLogResponse, Status>>,
    chunk: Vec<u8>,
) -> bool {
    sender
        .send(Ok(pb::ExportEventLogResponse { chunk }))
        .await
        .is_ok()
}

/// One touchpoint's count of journeys, its share out of `of`.
fn touchpoint_count(
    touchpoints: &HashMap<Uuid, Touchpoint>,
    id: Uuid,
    journeys: i64,
    of: i64,
) -> pb::TouchpointCount {
    pb::TouchpointCount {
        touchpoint_id: id.to_string(),
        touchpoint_code: code_of(touchpoints, &id),
        journeys,
        share: Some(rate(Rate::new(journeys, of))),
    }
}

/// Per-touchpoint counts of journeys, most first and ties by code, with
/// their shares out of `of`.
fn ranked_counts(
    touchpoints: &HashMap<Uuid, Touchpoint>,
    mut counts: Vec<(Uuid, i64)>,
    of: i64,
) -> Vec<pb::TouchpointCount> {
    counts.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| code_of(touchpoints, &a.0).cmp(&code_of(touchpoints, &b.0)))
    });
    counts
        .into_iter()
        .map(|(id, n)| touchpoint_count(touchpoints, id, n, of))
        .collect()
}

fn code_of(touchpoints: &HashMap<Uuid, Touchpoint>, id: &Uuid) -> String {
    touchpoints
        .get(id)
        .map(|t| t.code.clone())
        .unwrap_or_default()
}

fn journey_group(f: &JourneyGroupFigures) -> pb::JourneyGroup {
    let nps = Nps {
        respondents: f.respondents,
        promoters: f.promoters,
        detractors: f.detractors,
    };
    pb::JourneyGroup {
        journeys: f.journeys,
        mean_score: f.mean_score,
        scored_journeys: f.scored,
        journeys_with_feedback: f.with_feedback,
        mean_overall_satisfaction: f.mean_overall,
        overall_csat: Some(rate(Rate::new(f.satisfied, f.rated))),
        nps: Some(pb::Nps {
            respondents: nps.respondents,
            promoters: nps.promoters,
            passives: nps.passives(),
            detractors: nps.detractors,
            score: nps.score(),
        }),
    }
}

/// A scope as the request gives it; the default start needs the
/// organisation's time zone.
struct CheckedScope {
    start: Option<chrono::DateTime<Utc>>,
    end: Option<chrono::DateTime<Utc>>,
    /// The touchpoints named by id or code, still to be found.
    touchpoints: Vec<Lookup>,
    stage: Option<crate::domain::touchpoint::Stage>,
    channel: Option<crate::domain::touchpoint::Channel>,
}

fn checked_scope(scope: Option<&pb::AnalysisScope>) -> Result<CheckedScope, Vec<FieldViolation>> {
    let default = pb::AnalysisScope::default();
    let scope = scope.unwrap_or(&default);
    let mut v = Violations::new();
    let start = v.check(from_timestamp(
        "scope.start_time",
        scope.start_time.as_ref(),
    ));
    let end = v.check(from_timestamp("scope.end_time", scope.end_time.as_ref()));
    let named = scope.touchpoint_ids.len() + scope.touchpoint_codes.len();
    let touchpoints = if named > MAX_SCOPE_TOUCHPOINTS {
        let field = if scope.touchpoint_codes.is_empty() {
            "scope.touchpoint_ids"
        } else {
            "scope.touchpoint_codes"
        };
        v.push(FieldViolation::new(
            field,
            format!(
                "touchpoint_ids and touchpoint_codes must name at most \
                 {MAX_SCOPE_TOUCHPOINTS} touchpoints together, got {named}"
            ),
        ));
        None
    } else {
        let ids = scope.touchpoint_ids.iter().enumerate().map(|(i, id)| {
            v.check(parse_id(&format!("scope.touchpoint_ids[{i}]"), id).map(Lookup::Id))
        });
        let ids: Vec<Option<Lookup>> = ids.collect();
        let codes = scope.touchpoint_codes.iter().enumerate().map(|(i, code)| {
            v.check(parse_code(&format!("scope.touchpoint_codes[{i}]"), code).map(Lookup::Code))
        });
        let codes: Vec<Option<Lookup>> = codes.collect();
        ids.into_iter()
            .chain(codes)
            .collect::<Option<Vec<Lookup>>>()
    };
    let stage = v.check(enum_field("scope.stage", scope.stage, stage_from_proto));
    let channel = v.check(enum_field(
        "scope.channel",
        scope.channel,
        channel_from_proto,
    ));
    v.finish(|| {
        Some(CheckedScope {
            start: start?,
            end: end?,
            touchpoints: touchpoints?,
            stage: stage?,
            channel: channel?,
        })
    })
}

/// Fixes the time range: the default start is midnight 30 days ago in the
/// organisation's time zone.
async fn resolve_scope(tx: &mut PgConnection, org: Uuid, checked: CheckedScope) -> Result<Scope> {
    let default_start = match checked.start {
        Some(start) => start,
        None => {
            let zone = time_zone(tx, org).await?;
            store::analysis::days_ago_midnight(tx, &zone, DEFAULT_RANGE_DAYS).await?
        }
    };
    let (start_time, end_time) = range(checked.start, checked.end, default_start, Utc::now())?;
    let mut touchpoint_ids = named_touchpoints(tx, org, &checked.touchpoints).await?;
    touchpoint_ids.sort_unstable();
    touchpoint_ids.dedup();
    Ok(Scope {
        start_time,
        end_time,
        touchpoint_ids: (!touchpoint_ids.is_empty()).then_some(touchpoint_ids),
        stage: checked.stage,
        channel: checked.channel,
    })
}

/// The whole days of the scope when they hold more than `limit`
/// encounters in scope.
async fn days_over(
    tx: &mut PgConnection,
    org: Uuid,
    scope: &Scope,
    zone: &str,
    limit: i64,
) -> Result<Option<CoveredDays>> {
    let Some(covered) = rollup::covered_days(tx, scope, zone).await? else {
        return Ok(None);
    };
    let encounters = rollup::covered_encounters(tx, org, scope, &covered).await?;
    Ok((encounters > limit).then_some(covered))
}

async fn organisation(tx: &mut PgConnection, org: Uuid) -> Result<Organisation> {
    store::organisation::get(tx, org, false)
        .await?
        .ok_or_else(|| Error::not_found("organisation", org.to_string()))
}

async fn time_zone(tx: &mut PgConnection, org: Uuid) -> Result<String> {
    Ok(organisation(tx, org).await?.time_zone)
}

async fn touchpoints(tx: &mut PgConnection, org: Uuid) -> Result<HashMap<Uuid, Touchpoint>> {
    Ok(store::touchpoint::list_all(tx, org)
        .await?
        .into_iter()
        .map(|t| (t.id, t))
        .collect())
}

fn rate(rate: Rate) -> pb::Rate {
    let interval = rate.wilson();
    pb::Rate {
        numerator: rate.numerator,
        denominator: rate.denominator,
        value: rate.value(),
        wilson_lower: interval.map(|(low, _)| low),
        wilson_upper: interval.map(|(_, high)| high),
    }
}

fn distribution(d: Distribution) -> pb::Distribution {
    pb::Distribution {
        count: d.count,
        median: d.median,
        p90: d.p90,
        approximate: d.approximate,
    }
}

fn scorecard_row(touchpoint: Option<&Touchpoint>, f: &ScorecardFigures) -> pb::ScorecardRow {
    pb::ScorecardRow {
        touchpoint_id: touchpoint.map(|t| t.id.to_string()).unwrap_or_default(),
        touchpoint_code: touchpoint.map(|t| t.code.clone()).unwrap_or_default(),
        display_name: touchpoint
            .map(|t| t.display_name.clone())
            .unwrap_or_default(),
        encounters: f.encounters,
        mean_satisfaction: f.mean_satisfaction,
        csat: Some(rate(f.csat())),
        top_box: Some(rate(f.top_box())),
        failure_rate: Some(rate(f.failure_rate())),
        wait_seconds: Some(distribution(f.wait_seconds)),
        first_response_seconds: Some(distribution(f.first_response_seconds)),
        compliance: Some(rate(f.compliance())),
    }
}

#[tonic::async_trait]
impl pb::analysis_service_server::AnalysisService for AnalysisApi {
    async fn get_scorecard(
        &self,
        request: Request<pb::GetScorecardRequest>,
    ) -> Result<Response<pb::GetScorecardResponse>, Status> {
        respond(self.in_lane(self.scorecard(request)).await)
    }

    async fn get_mot_cycle(
        &self,
        request: Request<pb::GetMotCycleRequest>,
    ) -> Result<Response<pb::GetMotCycleResponse>, Status> {
        respond(self.in_lane(self.mot_cycle(request)).await)
    }

    async fn get_journey_outcomes(
        &self,
        request: Request<pb::GetJourneyOutcomesRequest>,
    ) -> Result<Response<pb::GetJourneyOutcomesResponse>, Status> {
        respond(self.in_lane(self.journey_outcomes(request)).await)
    }

    async fn get_first_impressions(
        &self,
        request: Request<pb::GetFirstImpressionsRequest>,
    ) -> Result<Response<pb::GetFirstImpressionsResponse>, Status> {
        respond(self.in_lane(self.first_impressions(request)).await)
    }

    async fn get_priority_matrix(
        &self,
        request: Request<pb::GetPriorityMatrixRequest>,
    ) -> Result<Response<pb::GetPriorityMatrixResponse>, Status> {
        respond(self.in_lane(self.priority_matrix(request)).await)
    }

    type ExportEventLogStream = LogStream;

    async fn export_event_log(
        &self,
        request: Request<pb::ExportEventLogRequest>,
    ) -> Result<Response<Self::ExportEventLogStream>, Status> {
        respond(self.export_event_log(request).await)
    }

    async fn get_guideline_breakdown(
        &self,
        request: Request<pb::GetGuidelineBreakdownRequest>,
    ) -> Result<Response<pb::GetGuidelineBreakdownResponse>, Status> {
        respond(self.in_lane(self.guideline_breakdown(request)).await)
    }

    async fn get_trend(
        &self,
        request: Request<pb::GetTrendRequest>,
    ) -> Result<Response<pb::GetTrendResponse>, Status> {
        respond(self.in_lane(self.trend(request)).await)
    }

    async fn get_compliance_report(
        &self,
        request: Request<pb::GetComplianceReportRequest>,
    ) -> Result<Response<pb::GetComplianceReportResponse>, Status> {
        respond(self.in_lane(self.compliance_report(request)).await)
    }

    async fn get_recovery_performance(
        &self,
        request: Request<pb::GetRecoveryPerformanceRequest>,
    ) -> Result<Response<pb::GetRecoveryPerformanceResponse>, Status> {
        respond(self.in_lane(self.recovery_performance(request)).await)
    }
}
