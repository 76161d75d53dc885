use tonic::Code;
use verdad::{demo, proto::verdad::v1 as pb};

use crate::{
    helpers::{assert_error, authed, spawn_app},
    touchpoints::list_all,
};

#[tokio::test]
async fn the_demo_hospital_is_created_once_and_each_run_gets_a_fresh_admin_key() {
    let app = spawn_app().await;

    let first = demo::ensure_demo(&app.pool).await.unwrap();
    let cycle = list_all(&app, &first.secret, pb::ListTouchpointsRequest::default()).await;
    let codes: Vec<&str> = cycle.iter().map(|t| t.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "phone-booking",
            "website",
            "entrance-guard",
            "lobby",
            "reception-desk",
            "waiting-area",
            "consultation-room",
            "examination",
            "payment",
            "pharmacy",
            "happy-call"
        ]
    );
    let positions: Vec<i32> = cycle.iter().map(|t| t.cycle_position).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "the designed cycle is out of order"
    );

    let second = demo::ensure_demo(&app.pool).await.unwrap();
    assert_ne!(first.secret, second.secret);
    let again = list_all(&app, &second.secret, pb::ListTouchpointsRequest::default()).await;
    assert_eq!(again.len(), 11, "the demo cycle was created twice");
    let status = app
        .touchpoints()
        .await
        .list_touchpoints(authed(&first.secret, pb::ListTouchpointsRequest::default()))
        .await
        .unwrap_err();
    assert_error(&status, Code::Unauthenticated, "API_KEY_INVALID");
}
