//! API keys: made by an organisation's admins, shown once, revoked.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{App, Caller, ListRequest, Operation, Parsed, access::permit};
use crate::{
    domain::{
        api_key::{ApiKey, NewApiKey, generate_secret},
        paging::{Listing, PageToken},
    },
    error::{Error, Result},
    store,
};

/// A created key with its secret, which exists only here.
pub struct CreatedKey {
    pub key: ApiKey,
    pub secret: String,
}

/// Whether a list of keys shows the revoked ones.
#[derive(Debug, Clone, Copy)]
pub struct KeysFilter {
    pub show_revoked: bool,
}

impl App {
    pub async fn create_api_key(
        &self,
        caller: &Caller,
        new: Parsed<NewApiKey>,
    ) -> Result<CreatedKey> {
        let org = permit(caller, Operation::CreateApiKey)?;
        create_key(&self.pool, org, &new?).await
    }

    pub async fn list_api_keys(
        &self,
        caller: &Caller,
        request: Parsed<ListRequest<KeysFilter>>,
    ) -> Result<Listing<ApiKey>> {
        let org = permit(caller, Operation::ListApiKeys)?;
        let ListRequest {
            size,
            filter,
            page_token,
        } = request?;
        let show_revoked = filter.show_revoked;
        let query = self
            .tokens
            .query(org, &format!("api_keys show_revoked={show_revoked}"));
        let after = PageToken::decode(&page_token, &query)?.map(|t| t.after);
        let mut tx = store::begin_for(&self.pool, org).await?;
        let rows = store::api_key::list(&mut tx, org, show_revoked, after, size + 1).await?;
        tx.commit().await?;
        let rows = rows.into_iter().map(|k| (k.id, k)).collect();
        Ok(Listing::new(rows, size, query))
    }

    pub async fn revoke_api_key(&self, caller: &Caller, id: Parsed<Uuid>) -> Result<ApiKey> {
        let org = permit(caller, Operation::RevokeApiKey)?;
        let key = revoke_key(&self.pool, org, id?).await?;
        // The notification reaches this server too, but the caller may use
        // the key again before it does.
        self.keys.forget_all();
        Ok(key)
    }
}

/// Creates a key for `organisation_id`.
pub async fn create_key(
    pool: &PgPool,
    organisation_id: Uuid,
    new: &NewApiKey,
) -> Result<CreatedKey> {
    let mut tx = store::begin_for(pool, organisation_id).await?;
    let created = insert_key(&mut tx, organisation_id, new).await?;
    tx.commit().await?;
    Ok(created)
}

/// Makes a secret and stores the key within the caller's transaction.
pub async fn insert_key(
    tx: &mut PgConnection,
    organisation_id: Uuid,
    new: &NewApiKey,
) -> Result<CreatedKey> {
    let secret = generate_secret()?;
    let key = store::api_key::insert(tx, organisation_id, new, &secret).await?;
    Ok(CreatedKey {
        key,
        secret: secret.secret,
    })
}

/// Revokes the key `id` of `organisation_id`, unless that would leave the
/// organisation without an admin key.
pub async fn revoke_key(pool: &PgPool, organisation_id: Uuid, id: Uuid) -> Result<ApiKey> {
    let mut tx = store::begin_for(pool, organisation_id).await?;
    store::organisation::lock(&mut tx, organisation_id).await?;
    let key = store::api_key::get_for_update(&mut tx, organisation_id, id)
        .await?
        .ok_or_else(|| Error::not_found("api key", id.to_string()))?;
    let valid_admins = store::api_key::count_valid_admins(&mut tx, organisation_id).await?;
    key.check_revocable(valid_admins)?;
    let key = store::api_key::revoke(&mut tx, organisation_id, id).await?;
    tx.commit().await?;
    Ok(key)
}
