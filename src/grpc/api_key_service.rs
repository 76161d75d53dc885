//! `verdad.v1.ApiKeyService`.

use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    authorize,
    convert::{role_from_proto, role_to_proto},
    item_bytes, page_budget, parse_id, proto_id, required_enum, respond, timestamp,
};
use crate::{
    domain::{
        api_key::{ApiKey, NewApiKey, generate_secret},
        paging::{self, PageToken, TokenKey},
        role::Access,
        text::required_line,
        violation::Violations,
    },
    error::{Error, Result},
    auth::key_cache::KeyCache,
    proto::verdad::v1 as pb,
    store,
};

/// The longest key label.
pub const DISPLAY_NAME_MAX_CHARS: usize = 200;

pub struct ApiKeyApi {
    pool: PgPool,
    tokens: TokenKey,
    keys: KeyCache,
}

impl ApiKeyApi {
    pub fn new(pool: PgPool, tokens: TokenKey, keys: KeyCache) -> Self {
        Self { pool, tokens, keys }
    }

    async fn create(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<pb::CreateApiKeyResponse> {
        let principal = authorize(&request, Access::Manage)?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let display_name = v.check(required_line(
            "display_name",
            &request.display_name,
            DISPLAY_NAME_MAX_CHARS,
        ));
        let role = v.check(required_enum("role", request.role, role_from_proto));
        let new = v.finish(|| {
            Some(NewApiKey {
                display_name: display_name?,
                role: role?,
            })
        })?;
        let created = create_key(&self.pool, principal.organisation_id, &new).await?;
        Ok(pb::CreateApiKeyResponse {
            api_key: Some(to_proto(created.key)),
            secret: created.secret,
        })
    }

    async fn list(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<pb::ListApiKeysResponse> {
        let principal = authorize(&request, Access::Manage)?;
        let budget = page_budget(&request);
        let request = request.into_inner();
        let size = paging::page_size(request.page_size)?;
        let query = self.tokens.query(
            principal.organisation_id,
            &format!("api_keys show_revoked={}", request.show_revoked),
        );
        let after = PageToken::decode(&request.page_token, &query)?.map(|t| t.after);

        let org = principal.organisation_id;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let rows =
            store::api_key::list(&mut tx, org, request.show_revoked, after, size + 1).await?;
        tx.commit().await?;
        let rows: Vec<pb::ApiKey> = rows.into_iter().map(to_proto).collect();
        let (api_keys, next_page_token) =
            paging::split_page(rows, size, budget, &query, |k| proto_id(&k.id), item_bytes);
        Ok(pb::ListApiKeysResponse {
            api_keys,
            next_page_token,
        })
    }

    async fn revoke(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<pb::RevokeApiKeyResponse> {
        let principal = authorize(&request, Access::Manage)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let key = revoke_key(&self.pool, principal.organisation_id, id).await?;
        // The notification reaches this server too, but the caller may use
        // the key again before it does.
        self.keys.forget_all();
        Ok(pb::RevokeApiKeyResponse {
            api_key: Some(to_proto(key)),
        })
    }
}

/// A created key with its secret, which exists only here.
pub struct CreatedKey {
    pub key: ApiKey,
    pub secret: String,
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

#[tonic::async_trait]
impl pb::api_key_service_server::ApiKeyService for ApiKeyApi {
    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        respond(self.create(request).await)
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        respond(self.list(request).await)
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        respond(self.revoke(request).await)
    }
}

fn to_proto(key: ApiKey) -> pb::ApiKey {
    pb::ApiKey {
        id: key.id.to_string(),
        display_name: key.display_name,
        role: role_to_proto(key.role).into(),
        secret_prefix: key.secret_prefix,
        create_time: Some(timestamp(key.create_time)),
        revoke_time: key.revoke_time.map(timestamp),
    }
}
