//! Touchpoints: the catalogue of where customers meet the organisation.

use uuid::Uuid;

use super::{App, Caller, ListRequest, Operation, Parsed, access::permit};
use crate::{
    domain::{
        code::Lookup,
        paging::{Listing, PageToken},
        touchpoint::{NewTouchpoint, Touchpoint, TouchpointChanges, TouchpointFilter},
    },
    error::{Error, Result},
    store,
};

impl App {
    pub async fn create_touchpoint(
        &self,
        caller: &Caller,
        new: Parsed<NewTouchpoint>,
    ) -> Result<Touchpoint> {
        let org = permit(caller, Operation::CreateTouchpoint)?;
        let new = new?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let touchpoint = store::touchpoint::insert(&mut tx, org, &new).await?;
        tx.commit().await?;
        Ok(touchpoint)
    }

    pub async fn get_touchpoint(
        &self,
        caller: &Caller,
        lookup: Parsed<Lookup>,
    ) -> Result<Touchpoint> {
        let org = permit(caller, Operation::GetTouchpoint)?;
        let lookup = lookup?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let touchpoint = store::touchpoint::find(&mut tx, org, &lookup)
            .await?
            .ok_or_else(|| Error::not_found("touchpoint", lookup.to_string()))?;
        tx.commit().await?;
        Ok(touchpoint)
    }

    pub async fn list_touchpoints(
        &self,
        caller: &Caller,
        request: Parsed<ListRequest<TouchpointFilter>>,
    ) -> Result<Listing<Touchpoint>> {
        let org = permit(caller, Operation::ListTouchpoints)?;
        let ListRequest {
            size,
            filter,
            page_token,
        } = request?;
        let query = self.tokens.query(org, &format!("touchpoints {filter:?}"));
        let after = PageToken::decode(&page_token, &query)?.map(|t| t.after);
        let mut tx = store::begin_for(&self.pool, org).await?;
        let rows = store::touchpoint::list(&mut tx, org, &filter, after, size + 1).await?;
        tx.commit().await?;
        let rows = rows.into_iter().map(|t| (t.id, t)).collect();
        Ok(Listing::new(rows, size, query))
    }

    pub async fn update_touchpoint(
        &self,
        caller: &Caller,
        update: Parsed<(Uuid, TouchpointChanges)>,
    ) -> Result<Touchpoint> {
        let org = permit(caller, Operation::UpdateTouchpoint)?;
        let (id, changes) = update?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let mut touchpoint = store::touchpoint::get(&mut tx, org, id, true)
            .await?
            .ok_or_else(|| Error::not_found("touchpoint", id.to_string()))?;
        touchpoint.check_changeable()?;
        changes.apply_to(&mut touchpoint);
        let touchpoint = store::touchpoint::update(&mut tx, org, &touchpoint).await?;
        tx.commit().await?;
        Ok(touchpoint)
    }

    pub async fn archive_touchpoint(
        &self,
        caller: &Caller,
        id: Parsed<Uuid>,
    ) -> Result<Touchpoint> {
        let org = permit(caller, Operation::ArchiveTouchpoint)?;
        self.set_touchpoint_archived(org, id?, true).await
    }

    pub async fn unarchive_touchpoint(
        &self,
        caller: &Caller,
        id: Parsed<Uuid>,
    ) -> Result<Touchpoint> {
        let org = permit(caller, Operation::UnarchiveTouchpoint)?;
        self.set_touchpoint_archived(org, id?, false).await
    }

    /// Archives (`archive`) or unarchives the touchpoint `id`.
    async fn set_touchpoint_archived(
        &self,
        org: Uuid,
        id: Uuid,
        archive: bool,
    ) -> Result<Touchpoint> {
        let mut tx = store::begin_for(&self.pool, org).await?;
        let touchpoint = store::touchpoint::get(&mut tx, org, id, true)
            .await?
            .ok_or_else(|| Error::not_found("touchpoint", id.to_string()))?;
        touchpoint.check_archive_transition(archive)?;
        let touchpoint = store::touchpoint::set_archived(&mut tx, org, id, archive).await?;
        tx.commit().await?;
        Ok(touchpoint)
    }
}
