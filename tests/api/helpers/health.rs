//! The standard gRPC health service of a test's server.

use std::time::Duration;

use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use super::TestApp;

impl TestApp {
    /// The health of `service` (the server as a whole when empty).
    pub(crate) async fn health_status(&self, service: &str) -> ServingStatus {
        HealthClient::new(self.channel().await)
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check failed")
            .into_inner()
            .status()
    }

    /// Waits (some ten seconds at most) until the server's health is
    /// `wanted`; returns the last one seen.
    pub(crate) async fn wait_for_health(&self, wanted: ServingStatus) -> ServingStatus {
        let mut seen = self.health_status("").await;
        for _ in 0..100 {
            if seen == wanted {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            seen = self.health_status("").await;
        }
        seen
    }
}
