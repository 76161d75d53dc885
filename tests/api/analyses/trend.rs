//! The trend: days, weeks and months cut in the organisation's time zone.

use prost_types::Timestamp;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{Measured, at, event, keyed, points, spawn_app, violated_fields};

#[tokio::test]
async fn a_trend_cuts_days_weeks_and_months_in_the_organisations_time_zone() {
    let app = spawn_app().await;
    // The organisation is in Asia/Seoul, nine hours ahead of UTC.
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    app.create_touchpoint(key, keyed("desk", 10, true)).await;
    app.create_touchpoint(key, keyed("lobby", 20, false)).await;
    let rated = |s| Measured {
        satisfaction: Some(s),
        ..Measured::default()
    };
    for e in [
        // 2026-06-01 18:00 in Seoul
        event("desk", "j1", "1", at(0), rated(5)),
        // 2026-06-02 01:00 and 02:00 in Seoul: the next day there, though
        // still June 1st in UTC
        event("desk", "j2", "2", at(7 * 3600), rated(3)),
        event("lobby", "j2", "3", at(8 * 3600), rated(4)),
    ] {
        app.record(key, e).await;
    }
    // Midnight June 1st to midnight June 4th in Seoul.
    let june_1 = 1_780_239_600; // 2026-05-31T15:00:00Z
    let day = 86_400;
    let scope = pb::AnalysisScope {
        start_time: Some(Timestamp {
            seconds: june_1,
            nanos: 0,
        }),
        end_time: Some(Timestamp {
            seconds: june_1 + 3 * day,
            nanos: 0,
        }),
        ..Default::default()
    };

    let daily = app
        .trend(
            key,
            pb::GetTrendRequest {
                scope: Some(scope.clone()),
                figure: pb::TrendFigure::MeanSatisfaction.into(),
                granularity: pb::Granularity::Day.into(),
                per_touchpoint: true,
            },
        )
        .await
        .unwrap();
    assert!(!daily.no_data);
    assert_eq!(daily.time_zone, "Asia/Seoul");
    let codes: Vec<&str> = daily
        .series
        .iter()
        .map(|s| s.touchpoint_code.as_str())
        .collect();
    assert_eq!(codes, ["", "desk", "lobby"]);
    assert_eq!(
        points(&daily.series[0]),
        [
            (june_1, Some(5.0), 1),
            (june_1 + day, Some(3.5), 2),
            (june_1 + 2 * day, None, 0),
        ]
    );
    assert_eq!(
        points(&daily.series[1]),
        [
            (june_1, Some(5.0), 1),
            (june_1 + day, Some(3.0), 1),
            (june_1 + 2 * day, None, 0),
        ]
    );
    assert_eq!(
        points(&daily.series[2]),
        [
            (june_1, None, 0),
            (june_1 + day, Some(4.0), 1),
            (june_1 + 2 * day, None, 0),
        ]
    );

    // June 1st 2026 is a Monday: one week, one month, both starting then.
    for granularity in [pb::Granularity::Week, pb::Granularity::Month] {
        let coarse = app
            .trend(
                key,
                pb::GetTrendRequest {
                    scope: Some(scope.clone()),
                    figure: pb::TrendFigure::Encounters.into(),
                    granularity: granularity.into(),
                    per_touchpoint: false,
                },
            )
            .await
            .unwrap();
        assert_eq!(coarse.series.len(), 1);
        assert_eq!(points(&coarse.series[0]), [(june_1, Some(3.0), 3)]);
    }

    // Medians read the sorted measures: none was measured here.
    let waits = app
        .trend(
            key,
            pb::GetTrendRequest {
                scope: Some(scope.clone()),
                figure: pb::TrendFigure::WaitMedian.into(),
                granularity: pb::Granularity::Day.into(),
                per_touchpoint: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        points(&waits.series[0]),
        [
            (june_1, None, 0),
            (june_1 + day, None, 0),
            (june_1 + 2 * day, None, 0),
        ]
    );

    let status = app
        .trend(key, pb::GetTrendRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["figure"]);
    let status = app
        .trend(
            key,
            pb::GetTrendRequest {
                scope: Some(pb::AnalysisScope {
                    start_time: Some(at(-2000 * day)),
                    end_time: Some(at(0)),
                    ..Default::default()
                }),
                figure: pb::TrendFigure::Csat.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["granularity"]);
}
