//! Analyses through the API, the fixture whose figures the scorecard tests
//! work out by hand, and a second server that reads no rollups.

use tonic::transport::Channel;
use verdad::proto::verdad::v1::{self as pb, analysis_service_client::AnalysisServiceClient};

use super::{Measured, TestApp, at, authed, event, keyed, standard};

impl TestApp {
    pub(crate) async fn scorecard(
        &self,
        key: &str,
        scope: pb::AnalysisScope,
    ) -> pb::GetScorecardResponse {
        self.analyses()
            .await
            .get_scorecard(authed(key, pb::GetScorecardRequest { scope: Some(scope) }))
            .await
            .expect("get_scorecard failed")
            .into_inner()
    }

    pub(crate) async fn mot_cycle(
        &self,
        key: &str,
        scope: pb::AnalysisScope,
        max_variants: i32,
    ) -> pb::GetMotCycleResponse {
        self.analyses()
            .await
            .get_mot_cycle(authed(
                key,
                pb::GetMotCycleRequest {
                    scope: Some(scope),
                    max_variants,
                    ..Default::default()
                },
            ))
            .await
            .expect("get_mot_cycle failed")
            .into_inner()
    }

    pub(crate) async fn trend(
        &self,
        key: &str,
        request: pb::GetTrendRequest,
    ) -> Result<pb::GetTrendResponse, tonic::Status> {
        self.analyses()
            .await
            .get_trend(authed(key, request))
            .await
            .map(tonic::Response::into_inner)
    }

    pub(crate) async fn set_time_zone(&self, key: &str, zone: &str) {
        self.organisations()
            .await
            .update_organisation(authed(
                key,
                pb::UpdateOrganisationRequest {
                    organisation: Some(pb::Organisation {
                        time_zone: zone.into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["time_zone".into()],
                    }),
                },
            ))
            .await
            .expect("update_organisation failed");
    }

    /// A second server on the test's database that never reads the rollups:
    /// its answers are the exact ones.
    pub(crate) async fn exact_server(&self) -> AnalysisServiceClient<Channel> {
        let channel = self
            .second_server(|s| s.exact_percentile_limit = i64::MAX)
            .await;
        AnalysisServiceClient::new(channel)
    }
}

/// A trend series as (bucket start, value, denominator) per point.
pub(crate) fn points(series: &pb::TrendSeries) -> Vec<(i64, Option<f64>, i64)> {
    series
        .points
        .iter()
        .map(|p| {
            (
                p.bucket_start.as_ref().unwrap().seconds,
                p.value,
                p.denominator,
            )
        })
        .collect()
}

/// Desk (cycle 10, with the critical 15-second greeting) and lobby (20).
pub(crate) async fn scorecard_fixture(app: &TestApp, key: &str) {
    app.create_touchpoint(key, keyed("desk", 10, true)).await;
    app.create_touchpoint(key, keyed("lobby", 20, false)).await;
    app.create_standard(key, standard("greet-15s", "desk"))
        .await;
    record_fixture_events(app, key).await;
}

/// Seven encounters in four journeys on the fixture day, and one the day
/// before.
pub(crate) async fn record_fixture_events(app: &TestApp, key: &str) {
    let m = |satisfaction, wait, first_response| Measured {
        satisfaction,
        wait,
        first_response,
    };
    let events = [
        // met, satisfied
        event("desk", "j1", "1", at(0), m(Some(5), Some(100), Some(10))),
        // violated: fails
        event("desk", "j2", "2", at(60), m(Some(4), Some(200), Some(20))),
        // met, but satisfaction 2 fails it
        event("desk", "j3", "3", at(120), m(Some(2), Some(300), Some(5))),
        // nothing measured: not applicable
        event("desk", "j4", "4", at(180), m(None, None, None)),
        event("lobby", "j1", "5", at(240), m(Some(3), Some(600), None)),
        // fails
        event("lobby", "j2", "6", at(300), m(Some(1), None, None)),
        // the day before: out of scope
        event(
            "desk",
            "j0",
            "7",
            at(-10 * 3600),
            m(Some(1), Some(9000), Some(900)),
        ),
    ];
    for e in events {
        app.record(key, e).await;
    }
}

/// `value` printed with every decimal fraction cut to nine places: sums of
/// many journeys' scores come out in another order from the rollups than
/// from the encounters, and may differ in their last bits.
pub(crate) fn to_the_ninth(value: &impl std::fmt::Debug) -> String {
    let printed = format!("{value:?}");
    let mut out = String::with_capacity(printed.len());
    let mut decimals: Option<usize> = None;
    let mut previous = ' ';
    for c in printed.chars() {
        decimals = match (decimals, c) {
            (_, '.') if previous.is_ascii_digit() => Some(0),
            (Some(n), d) if d.is_ascii_digit() => Some(n + 1),
            _ => None,
        };
        if !matches!(decimals, Some(n) if n > 9) {
            out.push(c);
        }
        previous = c;
    }
    out
}
