//! An organisation set up through the API: its touchpoints and standards,
//! and the demo hospital with everything in place.

use verdad::{demo, proto::verdad::v1 as pb};

use super::{Org, TestApp, authed, touchpoint};

impl TestApp {
    /// Creates a touchpoint through the API and returns it.
    pub(crate) async fn create_touchpoint(
        &self,
        key: &str,
        touchpoint: pb::Touchpoint,
    ) -> pb::Touchpoint {
        self.touchpoints()
            .await
            .create_touchpoint(authed(
                key,
                pb::CreateTouchpointRequest {
                    touchpoint: Some(touchpoint),
                },
            ))
            .await
            .expect("create_touchpoint failed")
            .into_inner()
            .touchpoint
            .expect("no touchpoint in the response")
    }

    /// Every touchpoint `request` lists, page by page, and the page count.
    pub(crate) async fn list_touchpoint_pages(
        &self,
        key: &str,
        request: pb::ListTouchpointsRequest,
    ) -> (Vec<pb::Touchpoint>, usize) {
        let mut client = self.touchpoints().await;
        let mut all = Vec::new();
        let mut request = request;
        let mut pages = 0;
        loop {
            let page = client
                .list_touchpoints(authed(key, request.clone()))
                .await
                .expect("list failed")
                .into_inner();
            pages += 1;
            all.extend(page.touchpoints);
            if page.next_page_token.is_empty() {
                return (all, pages);
            }
            request.page_token = page.next_page_token;
            assert!(pages < 1000, "pagination does not end");
        }
    }

    /// Every touchpoint `request` lists.
    pub(crate) async fn list_touchpoints(
        &self,
        key: &str,
        request: pb::ListTouchpointsRequest,
    ) -> Vec<pb::Touchpoint> {
        self.list_touchpoint_pages(key, request).await.0
    }

    /// Creates a standard through the API and returns it.
    pub(crate) async fn create_standard(&self, key: &str, standard: pb::Standard) -> pb::Standard {
        self.standards()
            .await
            .create_standard(authed(
                key,
                pb::CreateStandardRequest {
                    standard: Some(standard),
                },
            ))
            .await
            .expect("create_standard failed")
            .into_inner()
            .standard
            .expect("no standard in the response")
    }

    /// An organisation with a touchpoint "desk" (in person) and its admin key.
    pub(crate) async fn org_with_desk(&self) -> (Org, pb::Touchpoint) {
        let org = self.create_org("St. Mary").await;
        let desk = self
            .create_touchpoint(&org.admin_key, touchpoint("desk"))
            .await;
        (org, desk)
    }

    /// The admin key of the demo hospital, creating it on first use.
    pub(crate) async fn demo_key(&self) -> String {
        match demo::ensure_demo(&self.pool)
            .await
            .expect("cannot create the demo hospital")
        {
            Some(created) => created.secret,
            None => demo::new_admin_key(&self.pool).await.unwrap().secret,
        }
    }
}
