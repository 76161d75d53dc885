//! The caller's own organisation: its settings.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{App, Caller, Operation, Parsed, access::permit};
use crate::{
    domain::organisation::{
        Organisation, OrganisationChanges, check_time_zone_name, unknown_time_zone,
    },
    error::{Error, Result},
    store,
};

impl App {
    /// The caller's organisation; `id`, when given, must be its own: any
    /// other is as unknown as one that does not exist.
    pub async fn get_organisation(
        &self,
        caller: &Caller,
        id: Parsed<Option<Uuid>>,
    ) -> Result<Organisation> {
        let org = permit(caller, Operation::GetOrganisation)?;
        own_id(id?, org)?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let organisation = store::organisation::get(&mut tx, org, false)
            .await?
            .ok_or_else(|| Error::not_found("organisation", org.to_string()))?;
        tx.commit().await?;
        Ok(organisation)
    }

    /// Changes the caller's organisation. A new time zone rebuilds its
    /// rollups, whose days are the zone's.
    pub async fn update_organisation(
        &self,
        caller: &Caller,
        update: Parsed<(Option<Uuid>, Parsed<OrganisationChanges>)>,
    ) -> Result<Organisation> {
        let org = permit(caller, Operation::UpdateOrganisation)?;
        let (id, changes) = update?;
        own_id(id, org)?;
        let changes = changes?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        if let Some(zone) = &changes.time_zone {
            check_time_zone(&mut tx, "organisation.time_zone", zone).await?;
        }
        let mut organisation = store::organisation::get(&mut tx, org, true)
            .await?
            .ok_or_else(|| Error::not_found("organisation", org.to_string()))?;
        let old_zone = organisation.time_zone.clone();
        changes.apply_to(&mut organisation);
        let organisation = store::organisation::update(&mut tx, &organisation).await?;
        if organisation.time_zone != old_zone {
            store::organisation::rebuild_rollups(&mut tx, org).await?;
        }
        tx.commit().await?;
        Ok(organisation)
    }
}

/// Checks that an id a request gives, if any, is the caller's own
/// organisation; any other is as unknown as one that does not exist.
fn own_id(id: Option<Uuid>, org: Uuid) -> Result<()> {
    match id {
        Some(id) if id != org => Err(Error::not_found("organisation", id.to_string())),
        _ => Ok(()),
    }
}

/// Checks that `zone` names an IANA zone the database knows.
pub(crate) async fn check_time_zone(tx: &mut PgConnection, field: &str, zone: &str) -> Result<()> {
    check_time_zone_name(field, zone)?;
    if !store::organisation::time_zone_exists(tx, zone).await? {
        return Err(unknown_time_zone(field, zone).into());
    }
    Ok(())
}
