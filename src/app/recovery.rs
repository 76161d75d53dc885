//! Recovery cases: opened by the ingest for failed encounters, worked by
//! staff, and watched as they open.

use chrono::Utc;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{App, Caller, ListRequest, Operation, Parsed, access::permit, named_touchpoint};
use crate::{
    domain::{
        code::Lookup,
        paging::{Listing, PageToken},
        recovery::{
            ApplyError, CaseChanges, CaseFilter, CaseKind, RecoveryCase, RecoveryStatus,
            acknowledge, apply, changed_fields,
        },
        webhook::EventType,
    },
    error::{Error, Result},
    store,
};

/// A recovery cases list's filters: the touchpoint is still to be found.
#[derive(Debug, Clone)]
pub struct CasesFilter {
    pub kind: Option<CaseKind>,
    pub status: Option<RecoveryStatus>,
    pub overdue_only: bool,
    pub touchpoint: Option<Lookup>,
}

/// New cases for one watcher, until it goes, its key is revoked or the
/// server stops; the last two end it with the error that says so.
pub type CaseWatch = mpsc::Receiver<Result<RecoveryCase>>;

impl App {
    pub async fn list_recovery_cases(
        &self,
        caller: &Caller,
        request: Parsed<ListRequest<CasesFilter>>,
    ) -> Result<Listing<RecoveryCase>> {
        let org = permit(caller, Operation::ListRecoveryCases)?;
        let ListRequest {
            size,
            filter,
            page_token,
        } = request?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let filter = CaseFilter {
            kind: filter.kind,
            status: filter.status,
            overdue_only: filter.overdue_only,
            touchpoint_id: named_touchpoint(&mut tx, org, filter.touchpoint.as_ref()).await?,
        };
        let query = self.tokens.query(org, &filter.fingerprint());
        let after = PageToken::decode(&page_token, &query)?.map(|t| t.after);
        let rows = store::recovery::list(&mut tx, org, &filter, after, size + 1).await?;
        tx.commit().await?;
        let rows = rows.into_iter().map(|c| (c.id, c)).collect();
        Ok(Listing::new(rows, size, query))
    }

    pub async fn get_recovery_case(
        &self,
        caller: &Caller,
        id: Parsed<Uuid>,
    ) -> Result<RecoveryCase> {
        let org = permit(caller, Operation::GetRecoveryCase)?;
        let id = id?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let case = store::recovery::get(&mut tx, org, id, false)
            .await?
            .ok_or_else(|| Error::not_found("recovery case", id.to_string()))?;
        tx.commit().await?;
        Ok(case)
    }

    pub async fn update_recovery_case(
        &self,
        caller: &Caller,
        update: Parsed<(Uuid, CaseChanges)>,
    ) -> Result<RecoveryCase> {
        let org = permit(caller, Operation::UpdateRecoveryCase)?;
        let (id, changes) = update?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let before = store::recovery::get(&mut tx, org, id, true)
            .await?
            .ok_or_else(|| Error::not_found("recovery case", id.to_string()))?;
        let mut changed = before.clone();
        apply("recovery_case", &mut changed, changes, Utc::now()).map_err(|e| match e {
            ApplyError::Invalid(violation) => Error::from(violation),
            ApplyError::Refused(refusal) => Error::from(refusal),
        })?;
        let updated = store::recovery::update(&mut tx, org, &changed).await?;
        emit_changes(&mut tx, &before, &updated).await?;
        tx.commit().await?;
        crate::webhooks::wake();
        Ok(updated)
    }

    /// Records that someone took the case on, which stops its escalation.
    pub async fn acknowledge_recovery_case(
        &self,
        caller: &Caller,
        id: Parsed<Uuid>,
    ) -> Result<RecoveryCase> {
        let org = permit(caller, Operation::AcknowledgeRecoveryCase)?;
        let id = id?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let before = store::recovery::get(&mut tx, org, id, true)
            .await?
            .ok_or_else(|| Error::not_found("recovery case", id.to_string()))?;
        let mut changed = before.clone();
        if !acknowledge(&mut changed, Utc::now())? {
            tx.commit().await?;
            return Ok(before);
        }
        let updated = store::recovery::update(&mut tx, org, &changed).await?;
        emit_changes(&mut tx, &before, &updated).await?;
        tx.commit().await?;
        crate::webhooks::wake();
        Ok(updated)
    }

    /// Watches the cases that open from now on, of the touchpoint named or
    /// of all.
    pub async fn watch_recovery_cases(
        &self,
        caller: &Caller,
        touchpoint: Parsed<Option<Lookup>>,
    ) -> Result<CaseWatch> {
        let org = permit(caller, Operation::WatchRecoveryCases)?;
        let touchpoint = touchpoint?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let touchpoint_id = named_touchpoint(&mut tx, org, touchpoint.as_ref()).await?;
        tx.commit().await?;
        let events = self.feed.subscribe().await?;
        let (sender, receiver) = mpsc::channel(16);
        let key = self.keys.watch(self.pool.clone(), *caller);
        tokio::spawn(super::recovery_feed::relay(
            self.pool.clone(),
            org,
            touchpoint_id,
            key,
            events,
            sender,
            self.stopping.clone(),
        ));
        Ok(receiver)
    }
}

/// Queues the event a change of a case makes, in the change's transaction:
/// recovery_case.resolved when it resolved it, else recovery_case.updated
/// naming the fields that changed; none when nothing did.
async fn emit_changes(
    tx: &mut sqlx::PgConnection,
    before: &RecoveryCase,
    after: &RecoveryCase,
) -> Result<()> {
    let changed = changed_fields(before, after);
    if changed.is_empty() {
        return Ok(());
    }
    let (event, extra) = if after.status == RecoveryStatus::Resolved {
        (EventType::RecoveryCaseResolved, serde_json::json!({}))
    } else {
        (
            EventType::RecoveryCaseUpdated,
            serde_json::json!({ "changed_fields": changed }),
        )
    };
    store::webhook::emit_case_event(tx, event, after.id, extra).await
}
