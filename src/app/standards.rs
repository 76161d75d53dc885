//! Service standards, and the service manual assembled from them.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{App, Caller, ListRequest, Operation, Parsed, access::permit, named_touchpoint};
use crate::{
    domain::{
        code::Lookup,
        manual::{self, Part, ServiceManual},
        paging::{Listing, PageToken},
        standard::{NewStandard, Standard, StandardChanges, StandardFilter, TouchpointRef},
        touchpoint::{Stage, Touchpoint},
    },
    error::{Error, Result},
    store,
};

/// A standards list's filter: the touchpoint is still to be found.
#[derive(Debug, Clone)]
pub struct StandardsFilter {
    pub filter: StandardFilter,
    pub touchpoint: Option<Lookup>,
}

/// A request for the service manual.
#[derive(Debug, Clone)]
pub struct ManualRequest {
    pub stage: Option<Stage>,
    /// Touchpoints a page holds at most; `usize::MAX` for as many as fit.
    pub size: usize,
    pub page_token: String,
}

/// One page of the service manual: the parts it holds, rendered, and the
/// token of the next page.
pub struct ManualPage {
    pub manual: ServiceManual,
    pub markdown: String,
    pub next_page_token: String,
}

impl App {
    pub async fn create_standard(
        &self,
        caller: &Caller,
        new: Parsed<NewStandard>,
    ) -> Result<Standard> {
        let org = permit(caller, Operation::CreateStandard)?;
        let new = new?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let touchpoint = match &new.touchpoint {
            Some(lookup) => Some(attachable_touchpoint(&mut tx, org, lookup).await?.id),
            None => None,
        };
        let standard = store::standard::insert(&mut tx, org, &new, touchpoint).await?;
        tx.commit().await?;
        Ok(standard)
    }

    pub async fn get_standard(&self, caller: &Caller, lookup: Parsed<Lookup>) -> Result<Standard> {
        let org = permit(caller, Operation::GetStandard)?;
        let lookup = lookup?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let standard = store::standard::find(&mut tx, org, &lookup)
            .await?
            .ok_or_else(|| Error::not_found("standard", lookup.to_string()))?;
        tx.commit().await?;
        Ok(standard)
    }

    pub async fn list_standards(
        &self,
        caller: &Caller,
        request: Parsed<ListRequest<StandardsFilter>>,
    ) -> Result<Listing<Standard>> {
        let org = permit(caller, Operation::ListStandards)?;
        let ListRequest {
            size,
            filter,
            page_token,
        } = request?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let filter = StandardFilter {
            touchpoint_id: named_touchpoint(&mut tx, org, filter.touchpoint.as_ref()).await?,
            ..filter.filter
        };
        let query = self.tokens.query(org, &format!("standards {filter:?}"));
        let after = PageToken::decode(&page_token, &query)?.map(|t| t.after);
        let rows = store::standard::list(&mut tx, org, &filter, after, size + 1).await?;
        tx.commit().await?;
        let rows = rows.into_iter().map(|s| (s.id, s)).collect();
        Ok(Listing::new(rows, size, query))
    }

    pub async fn update_standard(
        &self,
        caller: &Caller,
        update: Parsed<(Uuid, StandardChanges)>,
    ) -> Result<Standard> {
        let org = permit(caller, Operation::UpdateStandard)?;
        let (id, changes) = update?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let mut standard = store::standard::get(&mut tx, org, id, true)
            .await?
            .ok_or_else(|| Error::not_found("standard", id.to_string()))?;
        standard.check_changeable()?;
        let touchpoint = match &changes.touchpoint {
            Some(Some(lookup)) => {
                let found = attachable_touchpoint(&mut tx, org, lookup).await?;
                Some(Some(TouchpointRef {
                    id: found.id,
                    code: found.code,
                }))
            }
            Some(None) => Some(None),
            None => None,
        };
        changes.apply_to(&mut standard, touchpoint);
        let standard = store::standard::update(&mut tx, org, &standard).await?;
        tx.commit().await?;
        Ok(standard)
    }

    pub async fn archive_standard(&self, caller: &Caller, id: Parsed<Uuid>) -> Result<Standard> {
        let org = permit(caller, Operation::ArchiveStandard)?;
        self.set_standard_archived(org, id?, true).await
    }

    pub async fn unarchive_standard(&self, caller: &Caller, id: Parsed<Uuid>) -> Result<Standard> {
        let org = permit(caller, Operation::UnarchiveStandard)?;
        self.set_standard_archived(org, id?, false).await
    }

    /// Archives (`archive`) or unarchives the standard `id`.
    async fn set_standard_archived(&self, org: Uuid, id: Uuid, archive: bool) -> Result<Standard> {
        let mut tx = store::begin_for(&self.pool, org).await?;
        let standard = store::standard::get(&mut tx, org, id, true)
            .await?
            .ok_or_else(|| Error::not_found("standard", id.to_string()))?;
        standard.check_archive_transition(archive)?;
        if !archive && let Some(touchpoint) = &standard.touchpoint {
            attachable_touchpoint(&mut tx, org, &Lookup::Id(touchpoint.id)).await?;
        }
        let standard = store::standard::set_archived(&mut tx, org, id, archive).await?;
        tx.commit().await?;
        Ok(standard)
    }

    /// The page of the service manual that `request` asks for, its parts
    /// as many as fit in `budget` bytes.
    pub async fn get_service_manual(
        &self,
        caller: &Caller,
        request: Parsed<ManualRequest>,
        budget: usize,
    ) -> Result<ManualPage> {
        let org = permit(caller, Operation::GetServiceManual)?;
        let ManualRequest {
            stage,
            size,
            page_token,
        } = request?;
        let query = self.tokens.query(org, &format!("service manual {stage:?}"));
        let from = PageToken::decode(&page_token, &query)?
            .map_or(0, |token| token.after.as_u128() as usize);

        let mut tx = store::begin_for(&self.pool, org).await?;
        let organisation = store::organisation::get(&mut tx, org, false)
            .await?
            .ok_or_else(|| Error::not_found("organisation", org.to_string()))?;
        let touchpoints = store::touchpoint::list_active(&mut tx, org).await?;
        let standards = store::standard::list_active(&mut tx, org).await?;
        tx.commit().await?;
        let mut manual = manual::assemble(
            organisation.display_name,
            touchpoints,
            standards,
            chrono::Utc::now(),
        );
        if let Some(stage) = stage {
            manual.keep_stage(stage);
        }
        let parts: Vec<Part> = manual.page(from, budget, size);
        let next = from + parts.len();
        let next_page_token = if next < manual.parts().len() {
            PageToken {
                after: Uuid::from_u128(next as u128),
            }
            .encode(&query)
        } else {
            String::new()
        };
        let markdown = manual::render_parts(&manual, &parts);
        Ok(ManualPage {
            manual: manual.only(&parts),
            markdown,
            next_page_token,
        })
    }
}

/// The touchpoint a standard is to be attached to: it must exist in the
/// organisation and not be archived.
async fn attachable_touchpoint(
    tx: &mut PgConnection,
    org: Uuid,
    lookup: &Lookup,
) -> Result<Touchpoint> {
    let touchpoint = store::touchpoint::find(tx, org, lookup)
        .await?
        .ok_or_else(|| Error::not_found("touchpoint", lookup.to_string()))?;
    touchpoint.check_active("attaching standards to it")?;
    Ok(touchpoint)
}
