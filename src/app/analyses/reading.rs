//! What every analysis shares: the scope it reads, the transaction it
//! reads in, and whether that may read the rollups.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::app::{App, Caller, Operation, Parsed, access::permit, lanes::Work, named_touchpoints};
use crate::{
    domain::{
        analysis::{DEFAULT_RANGE_DAYS, Rate, Scope, ScorecardFigures, range},
        code::Lookup,
        organisation::Organisation,
        touchpoint::{Channel, Stage, Touchpoint},
    },
    error::{Error, Result},
    store::{
        self,
        analysis::rollup::{self, CoveredDays, Grouping},
    },
};

/// How many times the exact-percentile limit a scope must hold before the
/// journey analyses read the journey rollups (see `journey_rollup_days`).
const JOURNEY_ROLLUP_FACTOR: i64 = 4;
/// What part of the exact-percentile limit a scope must hold before the
/// MOT cycle reads `journey_path` (see `cycle_reads_journey_paths`).
const CYCLE_PATHS_DIVISOR: i64 = 16;

/// A scope as the request gives it; the default start needs the
/// organisation's time zone and the touchpoints are still to be found.
#[derive(Debug, Clone, Default)]
pub struct ScopeRequest {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// The touchpoints named by id or code.
    pub touchpoints: Vec<Lookup>,
    pub stage: Option<Stage>,
    pub channel: Option<Channel>,
}

/// The organisation's touchpoints by id, archived ones included.
pub type Touchpoints = HashMap<Uuid, Touchpoint>;

/// One touchpoint's count of journeys and its share of a whole.
#[derive(Debug, Clone, PartialEq)]
pub struct TouchpointCount {
    pub touchpoint_id: Uuid,
    pub touchpoint_code: String,
    pub journeys: i64,
    pub share: Rate,
}

/// Whether an analysis may read the rollups, which must catch up first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reads {
    Rollups,
    /// The event log and recovery performance read the encounters and
    /// recovery cases only, and need not wait for the rollups.
    EncountersOnly,
}

/// The transaction an analysis reads in, and whether it may read the
/// rollups: not while a backlog waits to be folded in.
pub(super) struct Reading {
    pub(super) tx: sqlx::Transaction<'static, sqlx::Postgres>,
    rollups: bool,
}

impl Reading {
    pub(super) async fn commit(self) -> Result<()> {
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

impl App {
    /// Checks that `caller` may run `operation`, then waits for a bulk
    /// lane: an analysis keeps a backend busy, so only so many run at once.
    pub(super) async fn analysis_lane(
        &self,
        caller: &Caller,
        operation: Operation,
    ) -> Result<(Uuid, crate::app::lanes::Lane)> {
        let org = permit(caller, operation)?;
        let lane = self.bulk.enter(Work::Analysis).await?;
        Ok((org, lane))
    }

    /// Fixes the range of `scope` in a transaction acting for the caller's
    /// organisation.
    pub(super) async fn open(
        &self,
        org: Uuid,
        scope: Parsed<ScopeRequest>,
        reads: Reads,
    ) -> Result<(Reading, Scope)> {
        let scope = scope?;
        let mut tx = self.begin(org, reads).await?;
        let scope = resolve_scope(&mut tx, org, scope).await?;
        Ok((tx, scope))
    }

    /// The transaction an analysis reads in, planning each statement for
    /// its parameters; when it reads the rollups, after they have caught up
    /// with every change committed so far, or, when a backlog is too large
    /// to fold in the wait allowed, reading the encounters only.
    pub(super) async fn begin(&self, org: Uuid, reads: Reads) -> Result<Reading> {
        let rollups =
            reads == Reads::Rollups && self.rollups.bring_up_to_date(org, self.fold_wait).await?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        store::analysis::plan_for_parameters(&mut tx).await?;
        Ok(Reading { tx, rollups })
    }

    /// The whole days of the scope when the rollups are to be read: when
    /// the scope holds more encounters than percentiles are sorted for.
    pub(super) async fn rollup_days(
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

    /// Whether the MOT cycle is to read the journeys overlapping the
    /// scope from `journey_path` (clipped to the range and to the scope's
    /// touchpoints) rather than group its encounters: without a channel
    /// filter (`journey_path` keeps no step's channel), once the rollups
    /// have caught up, and for scopes over a sixteenth of the
    /// exact-percentile limit. Both are exact, so only speed chooses:
    /// whole journeys need no sort, and at 1M encounters a year 30 days
    /// (81k encounters, 11k journeys) took 133 ms from the encounters and
    /// 27 to 31 ms from `journey_path`. Only small scopes read the
    /// encounters.
    pub(super) async fn cycle_reads_journey_paths(
        &self,
        tx: &mut Reading,
        org: Uuid,
        scope: &Scope,
    ) -> Result<bool> {
        if scope.channel.is_some() || !tx.rollups {
            return Ok(false);
        }
        let zone = time_zone(tx, org).await?;
        let limit = self.exact_percentile_limit / CYCLE_PATHS_DIVISOR;
        Ok(days_over(tx, org, scope, &zone, limit).await?.is_some())
    }

    /// The whole days of the scope when the journey analyses are to read
    /// the journey rollups: only without touchpoint, stage or channel
    /// filters, which cut journeys apart, and only for scopes several times
    /// the exact-percentile limit. Their cost is mostly fixed (every journey
    /// row, and the journeys crossing the edges summarised afresh), so
    /// below that the encounters are quicker.
    pub(super) async fn journey_rollup_days(
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
    pub(super) async fn scorecard_rows(
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
}

/// Fixes the time range: the default start is midnight 30 days ago in the
/// organisation's time zone.
async fn resolve_scope(tx: &mut PgConnection, org: Uuid, checked: ScopeRequest) -> Result<Scope> {
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

pub(super) async fn organisation(tx: &mut PgConnection, org: Uuid) -> Result<Organisation> {
    store::organisation::get(tx, org, false)
        .await?
        .ok_or_else(|| Error::not_found("organisation", org.to_string()))
}

pub(super) async fn time_zone(tx: &mut PgConnection, org: Uuid) -> Result<String> {
    Ok(organisation(tx, org).await?.time_zone)
}

pub(super) async fn touchpoints(tx: &mut PgConnection, org: Uuid) -> Result<Touchpoints> {
    Ok(store::touchpoint::list_all(tx, org)
        .await?
        .into_iter()
        .map(|t| (t.id, t))
        .collect())
}

pub(super) fn code_of(touchpoints: &Touchpoints, id: &Uuid) -> String {
    touchpoints
        .get(id)
        .map(|t| t.code.clone())
        .unwrap_or_default()
}

/// One touchpoint's count of journeys, its share out of `of`.
pub(super) fn touchpoint_count(
    touchpoints: &Touchpoints,
    id: Uuid,
    journeys: i64,
    of: i64,
) -> TouchpointCount {
    TouchpointCount {
        touchpoint_id: id,
        touchpoint_code: code_of(touchpoints, &id),
        journeys,
        share: Rate::new(journeys, of),
    }
}

/// Per-touchpoint counts of journeys, most first and ties by code, with
/// their shares out of `of`.
pub(super) fn ranked_counts(
    touchpoints: &Touchpoints,
    mut counts: Vec<(Uuid, i64)>,
    of: i64,
) -> Vec<TouchpointCount> {
    counts.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| code_of(touchpoints, &a.0).cmp(&code_of(touchpoints, &b.0)))
    });
    counts
        .into_iter()
        .map(|(id, n)| touchpoint_count(touchpoints, id, n, of))
        .collect()
}
