//! ListEncounters: newest first, pages and their sizes, tokens, time
//! windows and filters.

use tonic::Status;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    TestApp, authed, encounter, external_ids, minutes_ago, plus, spawn_app, touchpoint,
    violated_fields,
};

/// One page of ListEncounters.
async fn list_page(
    app: &TestApp,
    key: &str,
    request: pb::ListEncountersRequest,
) -> Result<pb::ListEncountersResponse, Status> {
    app.encounters()
        .await
        .list_encounters(authed(key, request))
        .await
        .map(tonic::Response::into_inner)
}

/// The external ids of every encounter `request` lists, in order.
async fn ids_listed(app: &TestApp, key: &str, request: pb::ListEncountersRequest) -> Vec<String> {
    external_ids(&app.list_encounters(key, request).await)
}

#[tokio::test]
async fn encounters_are_listed_newest_first_and_later_arrivals_first_among_equal_times() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let base = minutes_ago(300);
    let at = |external_id: &str, offset: i64| {
        let mut e = encounter("desk", "his", external_id);
        e.occur_time = Some(plus(&base, offset));
        e
    };
    for e in [
        at("oldest", 0),
        at("tie-first", 7200),
        at("middle", 3600),
        at("tie-second", 7200),
        at("tie-third", 7200),
    ] {
        app.recorded(&org.admin_key, e).await;
    }

    let listed = app
        .list_encounters(&org.admin_key, Default::default())
        .await;

    assert_eq!(
        external_ids(&listed),
        ["tie-third", "tie-second", "tie-first", "middle", "oldest"]
    );
    assert!(listed.iter().all(|e| e.customer_ref.is_empty()));
    assert!(listed.iter().all(|e| e.evaluation.is_some()));
}

#[tokio::test]
async fn pages_return_every_encounter_once_in_order() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let base = minutes_ago(120);
    for i in 0..8 {
        let mut e = encounter("desk", "his", &format!("evt-{i}"));
        // Pairs share their time, so pages must split ties correctly.
        e.occur_time = Some(plus(&base, i / 2));
        app.recorded(&org.admin_key, e).await;
    }
    let mut client = app.encounters().await;

    let whole = client
        .list_encounters(authed(&org.admin_key, pb::ListEncountersRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(whole.next_page_token.is_empty());
    assert_eq!(
        external_ids(&whole.encounters),
        [
            "evt-7", "evt-6", "evt-5", "evt-4", "evt-3", "evt-2", "evt-1", "evt-0"
        ]
    );

    let mut paged = Vec::new();
    let mut request = pb::ListEncountersRequest {
        page_size: 3,
        ..Default::default()
    };
    let mut sizes = Vec::new();
    loop {
        let page = client
            .list_encounters(authed(&org.admin_key, request.clone()))
            .await
            .unwrap()
            .into_inner();
        sizes.push(page.encounters.len());
        paged.extend(page.encounters);
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
        assert!(sizes.len() < 10, "pagination does not end");
    }
    assert_eq!(sizes, [3, 3, 2]);
    assert_eq!(paged, whole.encounters);
}

#[tokio::test]
async fn page_size_defaults_to_50_and_is_capped_at_500() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let many: Vec<pb::Encounter> = (0..501)
        .map(|i| encounter("desk", "backfill", &format!("evt-{i:03}")))
        .collect();
    let response = app.ingest(&org.admin_key, vec![many]).await.unwrap();
    assert_eq!(response.accepted, 501);
    let mut client = app.encounters().await;

    let default = client
        .list_encounters(authed(&org.admin_key, pb::ListEncountersRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(default.encounters.len(), 50);
    assert!(!default.next_page_token.is_empty());

    let capped = client
        .list_encounters(authed(
            &org.admin_key,
            pb::ListEncountersRequest {
                page_size: 100_000,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(capped.encounters.len(), 500);
    assert!(!capped.next_page_token.is_empty());
    let rest = client
        .list_encounters(authed(
            &org.admin_key,
            pb::ListEncountersRequest {
                page_size: 100_000,
                page_token: capped.next_page_token,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.encounters.len(), 1);
    assert!(rest.next_page_token.is_empty());
}

#[tokio::test]
async fn list_rejects_negative_page_sizes_foreign_tokens_and_empty_time_windows() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    for i in 0..3 {
        let mut e = encounter("desk", "his", &format!("evt-{i}"));
        e.journey_id = "visit-1".into();
        app.recorded(&org.admin_key, e).await;
    }
    let list = |request: pb::ListEncountersRequest| list_page(&app, &org.admin_key, request);

    let status = list(pb::ListEncountersRequest {
        page_size: -1,
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_size"]);

    let status = list(pb::ListEncountersRequest {
        page_token: "garbage".into(),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);

    let first = list(pb::ListEncountersRequest {
        page_size: 1,
        journey_id: "visit-1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(!first.next_page_token.is_empty());
    let status = list(pb::ListEncountersRequest {
        page_size: 1,
        journey_id: "visit-2".into(),
        page_token: first.next_page_token.clone(),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);
    let status = list(pb::ListEncountersRequest {
        page_size: 1,
        journey_id: "visit-1".into(),
        failed_only: true,
        page_token: first.next_page_token,
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);

    let now = minutes_ago(0);
    let status = list(pb::ListEncountersRequest {
        start_time: Some(plus(&now, 0)),
        end_time: Some(plus(&now, 0)),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["end_time"]);
    let status = list(pb::ListEncountersRequest {
        start_time: Some(plus(&now, 0)),
        end_time: Some(plus(&now, -3600)),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["end_time"]);
}

#[tokio::test]
async fn list_filters_select_the_matching_encounters() {
    let app = spawn_app().await;
    let (org, desk) = app.org_with_desk().await;
    let key = &org.admin_key;
    let mut phone_tp = touchpoint("phone");
    phone_tp.channel = pb::Channel::Phone.into();
    let phone = app.create_touchpoint(key, phone_tp).await;
    let base = minutes_ago(600);

    let mut e1 = encounter("desk", "his", "e1");
    e1.journey_id = "j-1".into();
    e1.occur_time = Some(plus(&base, 0));
    e1.customer_ref = "cust-1".into();
    e1.situation = pb::Situation::Recovery.into();
    e1.satisfaction = Some(5);
    let mut e2 = encounter("phone", "his", "e2");
    e2.journey_id = "j-1".into();
    e2.occur_time = Some(plus(&base, 3600));
    e2.customer_ref = "cust-2".into();
    e2.satisfaction = Some(1);
    let mut e3 = encounter("desk", "his", "e3");
    e3.journey_id = "j-2".into();
    e3.occur_time = Some(plus(&base, 7200));
    e3.customer_ref = "cust-1".into();
    e3.channel = pb::Channel::Phone.into();
    e3.situation = pb::Situation::Coping.into();
    let mut e4 = encounter("desk", "his", "e4");
    e4.journey_id = "j-3".into();
    e4.occur_time = Some(plus(&base, 10800));
    for e in [e1, e2, e3, e4] {
        app.recorded(key, e).await;
    }
    let ids = |request: pb::ListEncountersRequest| ids_listed(&app, key, request);

    assert_eq!(ids(Default::default()).await, ["e4", "e3", "e2", "e1"]);
    assert_eq!(
        ids(pb::ListEncountersRequest {
            start_time: Some(plus(&base, 3600)),
            end_time: Some(plus(&base, 10800)),
            ..Default::default()
        })
        .await,
        ["e3", "e2"],
        "start_time is inclusive, end_time exclusive"
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            start_time: Some(plus(&base, 1)),
            ..Default::default()
        })
        .await,
        ["e4", "e3", "e2"]
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            end_time: Some(plus(&base, 3601)),
            ..Default::default()
        })
        .await,
        ["e2", "e1"]
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            touchpoint_id: phone.id.clone(),
            ..Default::default()
        })
        .await,
        ["e2"]
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            touchpoint_id: desk.id.clone(),
            ..Default::default()
        })
        .await,
        ["e4", "e3", "e1"]
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            journey_id: "j-1".into(),
            ..Default::default()
        })
        .await,
        ["e2", "e1"]
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            situation: pb::Situation::Recovery.into(),
            ..Default::default()
        })
        .await,
        ["e1"]
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            channel: pb::Channel::Phone.into(),
            ..Default::default()
        })
        .await,
        ["e3", "e2"]
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            failed_only: true,
            ..Default::default()
        })
        .await,
        ["e2"]
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            customer_ref: "cust-1".into(),
            ..Default::default()
        })
        .await,
        ["e3", "e1"]
    );
    assert!(
        ids(pb::ListEncountersRequest {
            customer_ref: "cust-unknown".into(),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            customer_ref: "cust-1".into(),
            touchpoint_id: desk.id.clone(),
            situation: pb::Situation::Coping.into(),
            ..Default::default()
        })
        .await,
        ["e3"]
    );
    let by_customer = app
        .list_encounters(
            key,
            pb::ListEncountersRequest {
                customer_ref: "cust-1".into(),
                ..Default::default()
            },
        )
        .await;
    assert!(
        by_customer
            .iter()
            .all(|e| e.customer_ref.is_empty() && e.has_customer_ref)
    );
}
