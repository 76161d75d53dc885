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
        recovery::{ApplyError, CaseChanges, CaseFilter, RecoveryCase, RecoveryStatus, apply},
    },
    error::{Error, Result},
    store,
};

/// A recovery cases list's filters: the touchpoint is still to be found.
#[derive(Debug, Clone)]
pub struct CasesFilter {
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
        let mut stored = store::recovery::get(&mut tx, org, id, true)
            .await?
            .ok_or_else(|| Error::not_found("recovery case", id.to_string()))?;
        apply("recovery_case", &mut stored, changes, Utc::now()).map_err(|e| match e {
            ApplyError::Invalid(violation) => Error::from(violation),
            ApplyError::Refused(refusal) => Error::from(refusal),
        })?;
        let updated = store::recovery::update(&mut tx, org, &stored).await?;
        tx.commit().await?;
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
