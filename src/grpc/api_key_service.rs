//! `verdad.v1.ApiKeyService`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{
    caller,
    convert::{role_from_proto, role_to_proto},
    item_bytes, page_budget, parse_id, required_enum, timestamp,
};
use crate::{
    app::{App, ListRequest, api_keys::KeysFilter},
    domain::{
        api_key::{ApiKey, NewApiKey},
        paging,
        text::required_line,
        violation::Violations,
    },
    error::{Error, Result},
    proto::verdad::v1 as pb,
};

/// The longest key label.
pub const DISPLAY_NAME_MAX_CHARS: usize = 200;

pub struct ApiKeyApi {
    app: Arc<App>,
}

impl ApiKeyApi {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl pb::api_key_service_server::ApiKeyService for ApiKeyApi {
    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let caller = caller(&request)?;
        let created = self
            .app
            .create_api_key(&caller, new_key(request.get_ref()))
            .await?;
        Ok(Response::new(pb::CreateApiKeyResponse {
            api_key: Some(to_proto(created.key)),
            secret: created.secret,
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let (caller, budget) = (caller(&request)?, page_budget(&request));
        let listing = self
            .app
            .list_api_keys(&caller, list_request(request.into_inner()))
            .await?;
        let (api_keys, next_page_token) = listing.page(budget, to_proto, item_bytes);
        Ok(Response::new(pb::ListApiKeysResponse {
            api_keys,
            next_page_token,
        }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        let caller = caller(&request)?;
        let id = parse_id("id", &request.get_ref().id).map_err(Error::from);
        let key = self.app.revoke_api_key(&caller, id).await?;
        Ok(Response::new(pb::RevokeApiKeyResponse {
            api_key: Some(to_proto(key)),
        }))
    }
}

/// Reads a key to create, every problem at once.
fn new_key(request: &pb::CreateApiKeyRequest) -> Result<NewApiKey> {
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
    Ok(new)
}

fn list_request(request: pb::ListApiKeysRequest) -> Result<ListRequest<KeysFilter>> {
    Ok(ListRequest {
        size: paging::page_size(request.page_size)?,
        filter: KeysFilter {
            show_revoked: request.show_revoked,
        },
        page_token: request.page_token,
    })
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
