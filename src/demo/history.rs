//! The demo hospital's history: some 90 days of visits, made once when the
//! hospital is, so that every analysis a new user tries shows figures that
//! mean something: journeys along the designed cycle, ratings, waits,
//! failures and the recovery cases they opened (most of them worked on),
//! and discharge surveys.
//!
//! The visits are deterministic (see `visits`), relative to the day the
//! hospital is made, and go through the same checks and storing as any
//! ingest stream.

use chrono::Utc;
use sqlx::PgPool;

use super::{DEMO_ORGANISATION_ID, visits};
use crate::{
    app::lanes::Lanes,
    error::Result,
    grpc::encounter_service::new_encounter,
    ingest::rollup_applier::RollupApplier,
    ingest::statistics::Statistics,
    ingest::{Item, Origin, Pipeline, ingest_batch},
    store,
};

/// How long one fold of the history may go on before it comes round again.
const FOLD_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Visits in the history: some 20,000 encounters.
const JOURNEYS: u64 = 2_500;
/// How many days back the visits go; five at least, so that happy calls up
/// to three days after a visit lie in the past.
const DAYS: std::ops::RangeInclusive<i64> = 5..=90;
/// Encounters stored at once.
const BATCH: usize = 2_000;

/// What the history holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct History {
    pub journeys: u64,
    pub encounters: u64,
    pub recovery_cases: u64,
    pub resolved_cases: u64,
    pub journeys_with_feedback: u64,
}

/// Stores the demo hospital's history. Safe to run again: the visits are
/// the same on the same day, and stored encounters come back as duplicates.
pub async fn seed(pool: &PgPool) -> Result<History> {
    let org = DEMO_ORGANISATION_ID;
    let today = Utc::now().timestamp().div_euclid(86_400) * 86_400;
    // The history's tables analysed as it grows, as a server would.
    let (rollups, folding) = RollupApplier::start(
        pool.clone(),
        std::time::Duration::from_millis(50),
        Lanes::new("bulk_lanes", 0),
        Statistics::new(pool.clone(), 10_000),
    );
    let pipeline = Pipeline::new(pool.clone(), rollups.clone());
    let mut history = History {
        journeys: JOURNEYS,
        ..History::default()
    };
    let mut pending = Vec::with_capacity(BATCH);
    let now = Utc::now();
    for index in 0..JOURNEYS {
        for mut encounter in visits::journey_within(index, today, DAYS) {
            encounter.source = "demo".to_owned();
            let field = format!("visit-{index}");
            pending.push(Item {
                encounter: new_encounter(&field, encounter, now),
                field,
            });
        }
        if pending.len() >= BATCH || index + 1 == JOURNEYS {
            let items = std::mem::take(&mut pending);
            history.encounters += items.len() as u64;
            let stored = ingest_batch(&pipeline, org, items, Origin::Stream).await?;
            history.recovery_cases += stored.cases_opened;
        }
    }
    let result = async {
        while !rollups.bring_up_to_date(org, FOLD_WAIT).await? {}
        let mut tx = store::begin_for(pool, org).await?;
        history.journeys_with_feedback = store::demo::add_feedback(&mut tx, org).await?;
        history.resolved_cases = store::demo::settle_cases(&mut tx, org).await?;
        tx.commit().await?;
        Ok(history)
    }
    .await;
    folding.abort();
    result
}
