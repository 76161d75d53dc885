//! The priority matrix: touchpoints placed by importance and performance.

use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    Measured, answered, assert_close, at, authed, event, fixture_day, keyed, spawn_app,
};

#[tokio::test]
async fn the_priority_matrix_places_touchpoints_by_importance_and_performance() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    for (code, position) in [("a", 10), ("b", 20), ("c", 30), ("d", 40), ("e", 50)] {
        app.create_touchpoint(key, keyed(code, position, false))
            .await;
    }
    // Overall satisfaction of journeys J1, J2, J3: 5, 3, 1. Per touchpoint,
    // its satisfaction in J1, J2, J3:
    //   a 5 3 1: correlation 1, mean 3
    //   b 2 3 4: correlation -1, mean 3
    //   c 5 5 4: correlation sqrt(3)/2, mean 14/3
    //   e 4 5 5: correlation -sqrt(3)/2, mean 14/3
    //   d 1 2 -: only two journeys, no importance; mean 1.5
    let ratings = [
        ("a", [Some(5), Some(3), Some(1)]),
        ("b", [Some(2), Some(3), Some(4)]),
        ("c", [Some(5), Some(5), Some(4)]),
        ("d", [Some(1), Some(2), None]),
        ("e", [Some(4), Some(5), Some(5)]),
    ];
    let mut n = 0;
    for (code, by_journey) in ratings {
        for (journey, satisfaction) in ["J1", "J2", "J3"].into_iter().zip(by_journey) {
            let Some(satisfaction) = satisfaction else {
                continue;
            };
            n += 1;
            let measured = Measured {
                satisfaction: Some(satisfaction),
                ..Measured::default()
            };
            app.record(key, event(code, journey, &n.to_string(), at(n), measured))
                .await;
        }
    }
    for (journey, overall) in [("J1", 5), ("J2", 3), ("J3", 1)] {
        app.record_feedback(key, journey, answered(Some(overall), None))
            .await
            .unwrap();
    }

    let matrix = app
        .analyses()
        .await
        .get_priority_matrix(authed(
            key,
            pb::GetPriorityMatrixRequest {
                scope: Some(fixture_day()),
            },
        ))
        .await
        .unwrap()
        .into_inner();

    assert!(!matrix.no_data);
    let half_root_3 = 3f64.sqrt() / 2.0;
    // Placed: a, b, c, e. Mean importance (1 - 1 + r - r) / 4 = 0; mean
    // performance (3 + 3 + 14/3 + 14/3) / 4 = 23/6.
    assert!(matrix.importance_split.unwrap().abs() < 1e-9);
    assert_close(matrix.performance_split, 23.0 / 6.0);
    let rows: Vec<(&str, i64, i64, pb::Quadrant)> = matrix
        .touchpoints
        .iter()
        .map(|r| (r.touchpoint_code.as_str(), r.rated, r.pairs, r.quadrant()))
        .collect();
    assert_eq!(
        rows,
        [
            ("a", 3, 3, pb::Quadrant::ConcentrateHere),
            ("b", 3, 3, pb::Quadrant::LowPriority),
            ("c", 3, 3, pb::Quadrant::KeepUpTheGoodWork),
            ("d", 2, 2, pb::Quadrant::Unspecified),
            ("e", 3, 3, pb::Quadrant::PossibleOverkill),
        ]
    );
    let t = &matrix.touchpoints;
    assert_close(t[0].importance, 1.0);
    assert_close(t[0].performance, 3.0);
    assert_close(t[1].importance, -1.0);
    assert_close(t[2].importance, half_root_3);
    assert_close(t[2].performance, 14.0 / 3.0);
    assert_eq!(t[3].importance, None);
    assert_close(t[3].performance, 1.5);
    assert_close(t[4].importance, -half_root_3);
}
