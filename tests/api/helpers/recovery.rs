//! Recovery cases through the API: listing, reading and changing them, the
//! case a failed encounter opens, and a watch on new ones.

use std::time::Duration;

use prost_types::FieldMask;
use tonic::{Status, Streaming, transport::Channel};
use verdad::proto::verdad::v1::{self as pb, recovery_service_client::RecoveryServiceClient};

use super::{TestApp, authed, dissatisfied};

impl TestApp {
    /// Every recovery case `request` lists, page by page.
    pub(crate) async fn list_cases(
        &self,
        key: &str,
        mut request: pb::ListRecoveryCasesRequest,
    ) -> Vec<pb::RecoveryCase> {
        let mut client = self.recovery().await;
        let mut all = Vec::new();
        for _ in 0..1000 {
            let page = client
                .list_recovery_cases(authed(key, request.clone()))
                .await
                .expect("list_recovery_cases failed")
                .into_inner();
            all.extend(page.recovery_cases);
            if page.next_page_token.is_empty() {
                return all;
            }
            request.page_token = page.next_page_token;
        }
        panic!("pagination does not end");
    }

    /// Every recovery case of the key's organisation.
    pub(crate) async fn all_cases(&self, key: &str) -> Vec<pb::RecoveryCase> {
        self.list_cases(key, pb::ListRecoveryCasesRequest::default())
            .await
    }

    /// Gets one case.
    pub(crate) async fn get_case(&self, key: &str, id: &str) -> Result<pb::RecoveryCase, Status> {
        self.recovery()
            .await
            .get_recovery_case(authed(
                key,
                pb::GetRecoveryCaseRequest { id: id.to_owned() },
            ))
            .await
            .map(|r| {
                r.into_inner()
                    .recovery_case
                    .expect("no case in the response")
            })
    }

    /// Changes the fields of `case` named by `paths`.
    pub(crate) async fn update_case(
        &self,
        key: &str,
        case: pb::RecoveryCase,
        paths: &[&str],
    ) -> Result<pb::RecoveryCase, Status> {
        self.recovery()
            .await
            .update_recovery_case(authed(
                key,
                pb::UpdateRecoveryCaseRequest {
                    recovery_case: Some(case),
                    update_mask: Some(FieldMask {
                        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
                    }),
                },
            ))
            .await
            .map(|r| {
                r.into_inner()
                    .recovery_case
                    .expect("no case in the response")
            })
    }

    /// Records a failing encounter at `touchpoint_code` and returns the case
    /// it opened.
    pub(crate) async fn open_case(
        &self,
        key: &str,
        touchpoint_code: &str,
        external_id: &str,
    ) -> pb::RecoveryCase {
        let failed = self
            .recorded(key, dissatisfied(touchpoint_code, "his", external_id))
            .await;
        self.all_cases(key)
            .await
            .into_iter()
            .find(|c| c.encounter_id == failed.id)
            .expect("the failed encounter opened no case")
    }

    /// Opens a watch and gives the server time to subscribe.
    pub(crate) async fn watch(&self, key: &str, touchpoint_id: &str) -> Watch {
        let mut client = self.recovery().await;
        let stream = client
            .watch_recovery_cases(authed(
                key,
                pb::WatchRecoveryCasesRequest {
                    touchpoint_id: touchpoint_id.to_owned(),
                    ..Default::default()
                },
            ))
            .await
            .expect("watch_recovery_cases failed")
            .into_inner();
        tokio::time::sleep(Duration::from_millis(200)).await;
        Watch {
            _client: client,
            stream,
        }
    }
}

/// An open watch, with the client that keeps its connection.
pub(crate) struct Watch {
    _client: RecoveryServiceClient<Channel>,
    /// The watch's messages, for a test that waits for its end.
    pub(crate) stream: Streaming<pb::WatchRecoveryCasesResponse>,
}

impl Watch {
    /// The next case, which must arrive within a second.
    pub(crate) async fn next_case(&mut self) -> pb::RecoveryCase {
        tokio::time::timeout(Duration::from_secs(1), self.stream.message())
            .await
            .expect("no case arrived within a second")
            .expect("the watch failed")
            .expect("the watch ended")
            .recovery_case
            .expect("no case in the message")
    }

    /// Checks that nothing arrives for `wait`.
    pub(crate) async fn assert_quiet(&mut self, wait: Duration) {
        if let Ok(message) = tokio::time::timeout(wait, self.stream.message()).await {
            panic!("the watch was not quiet: {message:?}");
        }
    }
}
