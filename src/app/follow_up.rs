//! Following up what needs a person: cases that became overdue, cases that
//! climb the escalation ladder, and journeys that close, which are checked
//! against the designed cycle and open a deviation case when they went off
//! it. Every event is queued in the transaction of the change it reports,
//! and every change is made once, whichever server makes it: the sweep of
//! each server skips what another one holds.

use std::time::Duration;

use serde_json::json;
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use uuid::Uuid;

use crate::{
    domain::{
        deviation::{self, Deviation},
        escalation::schedule,
        organisation::{FollowUp, Organisation},
        webhook::{DELIVERIES_KEPT_DAYS, EventType},
    },
    error::Result,
    store::{self, journey_close::CloseReason},
};

/// Cases or journeys one transaction of the sweep takes at most.
const AT_ONCE: i64 = 200;

/// How often the sweep runs unless told (`--sweep-interval`).
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// Closes a journey for `reason`, when the organisation checks journeys
/// and the journey has encounters since it began to; checks it against the
/// designed cycle, and opens its deviation case when it went off it.
/// Returns the case opened, if one was. Closing twice does nothing.
pub(crate) async fn close_journey(
    tx: &mut PgConnection,
    organisation: &Organisation,
    journey_id: &str,
    reason: CloseReason,
) -> Result<Option<Uuid>> {
    let follow_up = &organisation.follow_up;
    let Some(since) = follow_up.deviation_checks_start_time else {
        return Ok(None);
    };
    let org = organisation.id;
    let (path, last) = store::journey_close::path(tx, org, journey_id).await?;
    if last.is_none_or(|last| last < since) {
        return Ok(None);
    }
    if !store::journey_close::close(tx, org, journey_id, reason).await? {
        return Ok(None);
    }
    let catalogue = store::journey_close::designed_cycle(tx, org).await?;
    let found = deviation::find(&path, &catalogue, &follow_up.deviation_checks);
    let Some(first) = found.first() else {
        return Ok(None);
    };
    store::journey_close::mark_deviated(tx, org, journey_id).await?;
    let reasons: Vec<String> = found.iter().map(Deviation::describe).collect();
    let case = store::recovery::open_deviation(
        tx,
        org,
        journey_id,
        first.touchpoint(),
        &reasons,
        organisation.recovery_deadline_seconds,
    )
    .await?;
    if let Some(case) = case {
        store::webhook::emit_case_event(
            tx,
            EventType::JourneyDeviated,
            case,
            json!({ "closed_by": reason.as_str() }),
        )
        .await?;
    }
    Ok(case)
}

/// Runs the sweep every `interval` until `stopping` turns true.
pub async fn sweep_until_stopped(
    pool: PgPool,
    interval: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let mut ticks = 0u64;
    loop {
        // Old deliveries go about once an hour.
        let prune = ticks.is_multiple_of((3600 / interval.as_secs().max(1)).max(1));
        if let Err(error) = sweep(&pool, prune).await {
            tracing::warn!(%error, "the follow-up sweep failed; it runs again shortly");
        }
        ticks += 1;
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stopping.changed() => return,
        }
    }
}

/// One pass over every organisation.
pub async fn sweep(pool: &PgPool, prune: bool) -> Result<()> {
    let mut tx = pool.begin().await?;
    let organisations = store::organisation::follow_ups(&mut tx).await?;
    tx.commit().await?;
    for (org, follow_up) in organisations {
        if let Err(error) = sweep_organisation(pool, org, &follow_up, prune).await {
            tracing::warn!(%error, organisation = %org, "the follow-up sweep of an organisation failed");
        }
    }
    crate::webhooks::wake();
    Ok(())
}

async fn sweep_organisation(
    pool: &PgPool,
    org: Uuid,
    follow_up: &FollowUp,
    prune: bool,
) -> Result<()> {
    loop {
        let mut tx = store::begin_for(pool, org).await?;
        let overdue = store::recovery::mark_overdue(&mut tx, org, AT_ONCE).await?;
        for case in &overdue {
            store::webhook::emit_case_event(
                &mut tx,
                EventType::RecoveryCaseOverdue,
                *case,
                json!({}),
            )
            .await?;
        }
        tx.commit().await?;
        if (overdue.len() as i64) < AT_ONCE {
            break;
        }
    }
    if !follow_up.escalation_ladder.is_empty() {
        let (after_due, targets) = schedule(&follow_up.escalation_ladder);
        let mut tx = store::begin_for(pool, org).await?;
        let escalated =
            store::recovery::escalate(&mut tx, org, &after_due, &targets, AT_ONCE).await?;
        for (case, level, to) in escalated {
            store::webhook::emit_case_event(
                &mut tx,
                EventType::RecoveryCaseEscalated,
                case,
                json!({ "escalated_to": to, "escalation_level": level }),
            )
            .await?;
        }
        tx.commit().await?;
    }
    if let (false, Some(since)) = (
        follow_up.deviation_checks.is_empty(),
        follow_up.deviation_checks_start_time,
    ) {
        let mut tx = store::begin_for(pool, org).await?;
        let idle = store::journey_close::idle(
            &mut tx,
            org,
            since,
            follow_up.journey_idle_seconds,
            AT_ONCE,
        )
        .await?;
        if !idle.is_empty()
            && let Some(organisation) = store::organisation::get(&mut tx, org, false).await?
        {
            for journey in &idle {
                close_journey(&mut tx, &organisation, journey, CloseReason::Idle).await?;
            }
        }
        tx.commit().await?;
    }
    if prune {
        let mut tx = store::begin_for(pool, org).await?;
        store::webhook::prune(&mut tx, org, DELIVERIES_KEPT_DAYS).await?;
        tx.commit().await?;
    }
    Ok(())
}
