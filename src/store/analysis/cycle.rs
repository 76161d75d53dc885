//! The MOT cycle's journeys, streamed whole into the fold
//! (`domain::cycle_fold`): grouped from the encounters in scope, or read
//! from the journey rollups (`journey_path`), which hold each journey's
//! path and times already. Only one journey at a time is held, so the
//! server's memory grows with the answer (pairs and paths), not with the
//! encounters; ordering and grouping stay in the database, whose sort
//! spills to disk rather than grow.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::scorecard::{SCOPE, bind_scope};
use crate::{
    domain::{
        analysis::Scope,
        cycle_fold::{CycleFold, Journey},
    },
    error::Result,
};

/// Folds the journeys in scope from the encounters: a journey's
/// encounters ordered by time and ties by arrival. Waits are absolute time
/// differences, exact to the microsecond, so daylight-saving changes do
/// not bend them.
pub async fn fold_encounters(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
    fold: &mut CycleFold<'_>,
) -> Result<()> {
    let sql = format!(
        "select array_agg(e.touchpoint_id order by e.occur_time, e.receive_seq) as touchpoints,
                array_agg(e.occur_time order by e.occur_time, e.receive_seq) as times
         from encounter e
         join touchpoint t
           on t.organisation_id = e.organisation_id and t.id = e.touchpoint_id
         where {SCOPE}
         group by e.journey_id"
    );
    let mut rows = bind_scope(sqlx::query(&sql), organisation_id, scope).fetch(connection);
    let (mut micros_of, mut gaps) = (Vec::new(), Vec::new());
    while let Some(row) = rows.try_next().await? {
        let touchpoints: Vec<Uuid> = row.try_get("touchpoints")?;
        let times: Vec<DateTime<Utc>> = row.try_get("times")?;
        micros_of.clear();
        micros_of.extend(times.into_iter().map(micros));
        add_journey(fold, &touchpoints, &micros_of, &mut gaps);
    }
    Ok(())
}

/// Folds the journeys in scope from the journey rollups: every journey
/// overlapping the range, as `journey_path` keeps it whole, with only its
/// steps inside the range at touchpoints `in_scope` keeps, as the
/// encounters in scope would give it. A step's time is the journey's first
/// time plus its offset: offsets are seconds to the microsecond, which a
/// double holds exactly enough to round back.
pub async fn fold_journey_paths(
    connection: &mut PgConnection,
    organisation_id: Uuid,
    scope: &Scope,
    in_scope: impl Fn(&Uuid) -> bool,
    fold: &mut CycleFold<'_>,
) -> Result<()> {
    let mut rows = sqlx::query(
        "select first_time, touchpoints, offsets
         from journey_path
         where organisation_id = $1 and last_time >= $2 and first_time < $3",
    )
    .bind(organisation_id)
    .bind(scope.start_time)
    .bind(scope.end_time)
    .fetch(connection);
    let (start, end) = (micros(scope.start_time), micros(scope.end_time));
    let (mut kept, mut times, mut gaps) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(row) = rows.try_next().await? {
        let first: DateTime<Utc> = row.try_get("first_time")?;
        let touchpoints: Vec<Uuid> = row.try_get("touchpoints")?;
        let offsets: Vec<f64> = row.try_get("offsets")?;
        let first = micros(first);
        kept.clear();
        times.clear();
        for (touchpoint, offset) in touchpoints.iter().zip(&offsets) {
            let time = first.saturating_add((offset * 1_000_000.0).round() as i64);
            if (start..end).contains(&time) && in_scope(touchpoint) {
                kept.push(*touchpoint);
                times.push(time);
            }
        }
        add_journey(fold, &kept, &times, &mut gaps);
    }
    Ok(())
}

/// Folds one journey: its touchpoints in order and their times in
/// microseconds; `gaps` is scratch, reused from journey to journey.
fn add_journey(fold: &mut CycleFold<'_>, touchpoints: &[Uuid], times: &[i64], gaps: &mut Vec<f64>) {
    gaps.clear();
    gaps.extend(times.windows(2).map(|w| seconds(w[1].saturating_sub(w[0]))));
    let duration = match (times.first(), times.last()) {
        (Some(first), Some(last)) => seconds(last.saturating_sub(*first)),
        _ => 0.0,
    };
    fold.add(Journey {
        touchpoints,
        gaps,
        duration,
    });
}

fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

/// Microseconds as seconds, as PostgreSQL's `extract(epoch from ...)`.
fn seconds(micros: i64) -> f64 {
    micros as f64 / 1_000_000.0
}
