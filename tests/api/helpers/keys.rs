//! Organisations and their API keys: made behind the API for a test, sent
//! as bearer tokens, and known to or revoked from a second server.

use std::time::Duration;

use tokio::time::Instant;
use tonic::{Code, Request, transport::Channel};
use uuid::Uuid;
use verdad::{
    app::api_keys::{CreatedKey, create_key},
    app::operator,
    domain::{
        api_key::NewApiKey,
        organisation::{NewOrganisation, OrganisationKind},
        role::Role,
    },
    proto::verdad::v1::{self as pb, api_key_service_client::ApiKeyServiceClient},
};

use super::{TestApp, assert_error};

/// An organisation made for a test, with its first admin key.
pub(crate) struct Org {
    pub(crate) id: Uuid,
    pub(crate) admin_key: String,
}

/// `message` with the key as bearer token.
pub(crate) fn authed<T>(key: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

impl TestApp {
    pub(crate) async fn create_org(&self, name: &str) -> Org {
        let created = operator::create_organisation(
            &self.pool,
            NewOrganisation {
                display_name: name.to_owned(),
                kind: OrganisationKind::Hospital,
                time_zone: "Asia/Seoul".to_owned(),
            },
        )
        .await
        .expect("cannot create organisation");
        Org {
            id: created.organisation.id,
            admin_key: created.admin_key.secret,
        }
    }

    /// A new key of `role` for `org`.
    pub(crate) async fn key(&self, org: &Org, role: Role) -> String {
        self.created_key(org, role).await.secret
    }

    /// A new key of `role` for `org`, with its id.
    pub(crate) async fn created_key(&self, org: &Org, role: Role) -> CreatedKey {
        let new = NewApiKey {
            display_name: format!("{role} key"),
            role,
        };
        create_key(&self.pool, org.id, &new)
            .await
            .expect("cannot create key")
    }

    /// A new admin key of `org`, used once through `replica` after both it
    /// and this app's server listen for revocations, so that the replica
    /// remembers it.
    pub(crate) async fn key_known_to(
        &self,
        org: &Org,
        replica: &mut ApiKeyServiceClient<Channel>,
    ) -> CreatedKey {
        let created = self.created_key(org, Role::Admin).await;
        self.servers_listening_for_revocations(2).await;
        replica
            .list_api_keys(authed(&created.secret, pb::ListApiKeysRequest::default()))
            .await
            .unwrap();
        created
    }

    /// Revokes `key` through this app's server and waits until `replica`
    /// refuses it. The replica hears of the revocation when it commits, so
    /// it may take the key a moment longer: 2 s at most.
    pub(crate) async fn revoke_and_see_it_refused(
        &self,
        org: &Org,
        key: &CreatedKey,
        replica: &mut ApiKeyServiceClient<Channel>,
    ) {
        self.api_keys()
            .await
            .revoke_api_key(authed(
                &org.admin_key,
                pb::RevokeApiKeyRequest {
                    id: key.key.id.to_string(),
                },
            ))
            .await
            .unwrap();
        let revoked = Instant::now();
        loop {
            match replica
                .list_api_keys(authed(&key.secret, pb::ListApiKeysRequest::default()))
                .await
            {
                Err(status) => {
                    assert_error(&status, Code::Unauthenticated, "API_KEY_INVALID");
                    return;
                }
                Ok(_) => assert!(
                    revoked.elapsed() < Duration::from_secs(2),
                    "the other server still takes the revoked key"
                ),
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
