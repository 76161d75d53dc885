//! The tenancy sweep: every RPC of the API, called with organisation B's
//! admin key at organisation A's resources, finds none of A's and changes
//! none of A's rows, through the gRPC door (`grpc`) and through every route
//! of the HTTP door (`http`), where the roles of every route are swept too.
//! The sweep fails when an RPC or a route is added without a line here.

mod grpc;
mod http;

use std::collections::BTreeSet;

use tonic::{Code, Response, Status};
use uuid::Uuid;
use verdad::{domain::role::Role, proto::verdad::v1 as pb};

use crate::helpers::{
    Mllp, Org, TestApp, authed, demo_adt_feed, dissatisfied, hl7_file, methods, webhook_to,
};

/// Every RPC of the verdad.v1 services, as "Service/Method".
fn every_rpc() -> BTreeSet<String> {
    methods()
        .into_iter()
        .map(|method| method.path.trim_start_matches("/verdad.v1.").to_owned())
        .collect()
}

/// What A has that B aims at.
struct Target {
    organisation_id: Uuid,
    touchpoint_id: String,
    touchpoint_code: String,
    standard_id: String,
    standard_code: String,
    encounter_id: String,
    case_id: String,
    journey_id: String,
    api_key_id: String,
    customer_ref: String,
    feed_id: String,
    webhook_id: String,
}

/// The call found nothing: NOT_FOUND or PERMISSION_DENIED.
fn hidden<T: std::fmt::Debug>(rpc: &str, result: Result<Response<T>, Status>) {
    let status = result.expect_err(&format!("{rpc} answered B with A's resource"));
    assert!(
        matches!(status.code(), Code::NotFound | Code::PermissionDenied),
        "{rpc}: {status:?}"
    );
}

/// The call was refused, or answered with nothing of A's.
fn nothing_of_a<T: std::fmt::Debug>(
    rpc: &str,
    result: Result<Response<T>, Status>,
    empty: impl Fn(&T) -> bool,
) {
    match result {
        Ok(response) => assert!(
            empty(response.get_ref()),
            "{rpc} answered B with A's data: {response:?}"
        ),
        Err(status) => assert!(
            matches!(
                status.code(),
                Code::NotFound | Code::PermissionDenied | Code::InvalidArgument
            ),
            "{rpc}: {status:?}"
        ),
    }
}

/// Organisation A, the demo hospital, with a failed encounter of a known
/// customer and its recovery case, and a spare ingest key: A's admin key
/// and what a sweep aims at.
async fn arrange_a(app: &TestApp) -> (String, Target) {
    let a_key = app.demo_key().await;
    let failed = app
        .recorded(
            &a_key,
            pb::Encounter {
                customer_ref: "patient-7".into(),
                ..dissatisfied("reception-desk", "his", "a-1")
            },
        )
        .await;
    let case = app.all_cases(&a_key).await.remove(0);
    let standard = app
        .standards()
        .await
        .list_standards(authed(&a_key, pb::ListStandardsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .standards
        .into_iter()
        .next()
        .expect("the demo has standards");
    let demo = Org {
        id: verdad::demo::DEMO_ORGANISATION_ID,
        admin_key: a_key.clone(),
    };
    let spare_key = app.created_key(&demo, Role::Ingest).await;
    // A feed with a refused message listed, its counts written.
    let feed = app.create_feed(&a_key, demo_adt_feed()).await;
    Mllp::connect(app)
        .await
        .send(&hl7_file("missing_pv1.hl7"))
        .await
        .assert("AE", "NOPV1-0001");
    app.feed_counted(&a_key, &feed.id, [0, 0, 0, 1]).await;
    // A webhook, for an event that no call of a sweep makes, so that no
    // delivery changes A's rows while the sweep compares them.
    let (webhook, _) = app
        .create_webhook(
            &a_key,
            webhook_to("https://tickets.example.org/verdad", &["journey.deviated"]),
        )
        .await;
    let a = Target {
        organisation_id: demo.id,
        touchpoint_id: failed.touchpoint_id.clone(),
        touchpoint_code: failed.touchpoint_code.clone(),
        standard_id: standard.id,
        standard_code: standard.code,
        encounter_id: failed.id.clone(),
        case_id: case.id.clone(),
        journey_id: failed.journey_id.clone(),
        api_key_id: spare_key.key.id.to_string(),
        customer_ref: "patient-7".into(),
        feed_id: feed.id,
        webhook_id: webhook.id,
    };
    (a_key, a)
}
