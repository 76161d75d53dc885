use std::collections::HashSet;

use prost_types::FieldMask;
use tonic::Code;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    assert_error, authed, dissatisfied, fixture_day, spawn_app, touchpoint, violated_fields,
};

#[tokio::test]
async fn created_touchpoint_can_be_read_back_by_id_and_by_code() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut wanted = touchpoint("reception-desk");
    wanted.display_name = "Reception desk".into();
    wanted.description = "The front desk.\nFirst greeting.".into();
    wanted.stage = pb::Stage::Service.into();
    wanted.channel = pb::Channel::InPerson.into();
    wanted.key = true;
    wanted.occurrence = pb::Occurrence::Exceptional.into();
    wanted.cycle_position = 50;

    let created = app.create_touchpoint(&org.admin_key, wanted.clone()).await;

    assert!(!created.id.is_empty());
    assert_eq!(created.code, "reception-desk");
    assert_eq!(created.display_name, "Reception desk");
    assert_eq!(created.description, wanted.description);
    assert_eq!(created.stage(), pb::Stage::Service);
    assert_eq!(created.channel(), pb::Channel::InPerson);
    assert!(created.key);
    assert_eq!(created.occurrence(), pb::Occurrence::Exceptional);
    assert_eq!(created.cycle_position, 50);
    assert!(!created.archived);
    assert!(created.create_time.is_some() && created.update_time.is_some());
    assert!(created.archive_time.is_none());

    let mut client = app.touchpoints().await;
    let by_id = client
        .get_touchpoint(authed(
            &org.admin_key,
            pb::GetTouchpointRequest {
                id: created.id.clone(),
                code: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .touchpoint
        .unwrap();
    assert_eq!(by_id, created);
    let by_code = client
        .get_touchpoint(authed(
            &org.admin_key,
            pb::GetTouchpointRequest {
                id: String::new(),
                code: "RECEPTION-DESK".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .touchpoint
        .unwrap();
    assert_eq!(by_code, created);
}

#[tokio::test]
async fn occurrence_defaults_to_routine() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut wanted = touchpoint("lobby");
    wanted.occurrence = 0;
    let created = app.create_touchpoint(&org.admin_key, wanted).await;
    assert_eq!(created.occurrence(), pb::Occurrence::Routine);
}

#[tokio::test]
async fn every_invalid_field_of_a_create_is_named_and_nothing_is_written() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut client = app.touchpoints().await;
    let bad = pb::Touchpoint {
        code: "front desk".into(),
        display_name: "   ".into(),
        description: "x".repeat(4001),
        stage: 0,
        channel: 9,
        occurrence: 7,
        cycle_position: 10_001,
        ..Default::default()
    };

    let status = client
        .create_touchpoint(authed(
            &org.admin_key,
            pb::CreateTouchpointRequest {
                touchpoint: Some(bad),
            },
        ))
        .await
        .unwrap_err();

    assert_eq!(
        violated_fields(&status),
        [
            "touchpoint.code",
            "touchpoint.display_name",
            "touchpoint.description",
            "touchpoint.stage",
            "touchpoint.channel",
            "touchpoint.occurrence",
            "touchpoint.cycle_position",
        ]
    );
    assert!(
        status
            .message()
            .contains("touchpoint.code may only contain"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("touchpoint.stage is required"),
        "{}",
        status.message()
    );
    assert!(
        status
            .message()
            .contains("touchpoint.channel has unknown value 9"),
        "{}",
        status.message()
    );

    let missing = client
        .create_touchpoint(authed(
            &org.admin_key,
            pb::CreateTouchpointRequest { touchpoint: None },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&missing), ["touchpoint"]);

    let listed = app
        .list_touchpoints(
            &org.admin_key,
            pb::ListTouchpointsRequest {
                show_archived: true,
                ..Default::default()
            },
        )
        .await;
    assert!(listed.is_empty(), "a failed create wrote {listed:?}");
}

#[tokio::test]
async fn codes_are_unique_per_organisation_regardless_of_case() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    app.create_touchpoint(&org.admin_key, touchpoint("Lobby"))
        .await;

    let status = app
        .touchpoints()
        .await
        .create_touchpoint(authed(
            &org.admin_key,
            pb::CreateTouchpointRequest {
                touchpoint: Some(touchpoint("lobby")),
            },
        ))
        .await
        .unwrap_err();

    assert_error(&status, Code::AlreadyExists, "ALREADY_EXISTS");
    assert!(
        status.message().contains("code \"lobby\""),
        "{}",
        status.message()
    );
    let listed = app
        .list_touchpoints(&org.admin_key, pb::ListTouchpointsRequest::default())
        .await;
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn get_rejects_bad_ids_and_answers_not_found_for_unknown_ones() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut client = app.touchpoints().await;
    let get = |id: &str, code: &str| {
        authed(
            &org.admin_key,
            pb::GetTouchpointRequest {
                id: id.into(),
                code: code.into(),
            },
        )
    };

    let status = client
        .get_touchpoint(get("not-a-uuid", ""))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["id"]);
    let status = client.get_touchpoint(get("", "")).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["id"]);
    let status = client
        .get_touchpoint(get(&uuid::Uuid::now_v7().to_string(), "lobby"))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["id"]);
    let status = client
        .get_touchpoint(get("", "no such code!"))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["code"]);

    let status = client
        .get_touchpoint(get(&uuid::Uuid::now_v7().to_string(), ""))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    let status = client.get_touchpoint(get("", "lobby")).await.unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");

    // An existing touchpoint's id in the other forms a UUID parser takes:
    // one resource, one name.
    let lobby = app
        .create_touchpoint(&org.admin_key, touchpoint("lobby"))
        .await;
    let simple = lobby.id.replace('-', "");
    for other in [
        format!("{{{}}}", lobby.id),
        format!("urn:uuid:{}", lobby.id),
        simple,
    ] {
        let status = client.get_touchpoint(get(&other, "")).await.unwrap_err();
        assert_eq!(violated_fields(&status), ["id"], "{other}");
    }
    let found = client.get_touchpoint(get(&lobby.id, "")).await.unwrap();
    assert_eq!(found.into_inner().touchpoint.unwrap(), lobby);
}

#[tokio::test]
async fn pagination_returns_every_touchpoint_once_in_creation_order() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut created = Vec::new();
    for i in 0..23 {
        created.push(
            app.create_touchpoint(&org.admin_key, touchpoint(&format!("tp-{i:02}")))
                .await
                .id,
        );
    }

    let (listed, pages) = app
        .list_touchpoint_pages(
            &org.admin_key,
            pb::ListTouchpointsRequest {
                page_size: 5,
                ..Default::default()
            },
        )
        .await;

    assert_eq!(pages, 5);
    let ids: Vec<String> = listed.into_iter().map(|t| t.id).collect();
    assert_eq!(ids, created, "rows lost, repeated or out of order");
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 23);
}

#[tokio::test]
async fn an_exactly_full_last_page_has_no_next_token() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    for i in 0..4 {
        app.create_touchpoint(&org.admin_key, touchpoint(&format!("tp-{i}")))
            .await;
    }
    let (listed, pages) = app
        .list_touchpoint_pages(
            &org.admin_key,
            pb::ListTouchpointsRequest {
                page_size: 2,
                ..Default::default()
            },
        )
        .await;
    assert_eq!((listed.len(), pages), (4, 2));
}

#[tokio::test]
async fn list_filters_by_stage_channel_key_and_occurrence() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut phone = touchpoint("phone-booking");
    phone.stage = pb::Stage::PreService.into();
    phone.channel = pb::Channel::Phone.into();
    phone.key = true;
    app.create_touchpoint(&org.admin_key, phone).await;
    let mut complaint = touchpoint("complaint-desk");
    complaint.occurrence = pb::Occurrence::Exceptional.into();
    app.create_touchpoint(&org.admin_key, complaint).await;
    app.create_touchpoint(&org.admin_key, touchpoint("lobby"))
        .await;

    let codes = |list: Vec<pb::Touchpoint>| list.into_iter().map(|t| t.code).collect::<Vec<_>>();
    let by_stage = app
        .list_touchpoints(
            &org.admin_key,
            pb::ListTouchpointsRequest {
                stage: pb::Stage::PreService.into(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(codes(by_stage), ["phone-booking"]);
    let by_channel = app
        .list_touchpoints(
            &org.admin_key,
            pb::ListTouchpointsRequest {
                channel: pb::Channel::InPerson.into(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(codes(by_channel), ["complaint-desk", "lobby"]);
    let key_only = app
        .list_touchpoints(
            &org.admin_key,
            pb::ListTouchpointsRequest {
                key: Some(true),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(codes(key_only), ["phone-booking"]);
    let minor_only = app
        .list_touchpoints(
            &org.admin_key,
            pb::ListTouchpointsRequest {
                key: Some(false),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(codes(minor_only), ["complaint-desk", "lobby"]);
    let exceptional = app
        .list_touchpoints(
            &org.admin_key,
            pb::ListTouchpointsRequest {
                occurrence: pb::Occurrence::Exceptional.into(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(codes(exceptional), ["complaint-desk"]);
}

#[tokio::test]
async fn list_rejects_negative_page_sizes_unknown_enums_and_foreign_tokens() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    for i in 0..3 {
        app.create_touchpoint(&org.admin_key, touchpoint(&format!("tp-{i}")))
            .await;
    }
    let mut client = app.touchpoints().await;

    let status = client
        .list_touchpoints(authed(
            &org.admin_key,
            pb::ListTouchpointsRequest {
                page_size: -1,
                stage: 99,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_size", "stage"]);

    let status = client
        .list_touchpoints(authed(
            &org.admin_key,
            pb::ListTouchpointsRequest {
                page_token: "garbage".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);

    let first = client
        .list_touchpoints(authed(
            &org.admin_key,
            pb::ListTouchpointsRequest {
                page_size: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let status = client
        .list_touchpoints(authed(
            &org.admin_key,
            pb::ListTouchpointsRequest {
                page_size: 1,
                page_token: first.next_page_token,
                stage: pb::Stage::Service.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);
    assert!(
        status.message().contains("other filters"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn page_size_above_the_maximum_is_coerced() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    app.create_touchpoint(&org.admin_key, touchpoint("lobby"))
        .await;
    let page = app
        .touchpoints()
        .await
        .list_touchpoints(authed(
            &org.admin_key,
            pb::ListTouchpointsRequest {
                page_size: 1_000_000,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.touchpoints.len(), 1);
    assert!(page.next_page_token.is_empty());
}

fn update(touchpoint: pb::Touchpoint, paths: &[&str]) -> pb::UpdateTouchpointRequest {
    pb::UpdateTouchpointRequest {
        touchpoint: Some(touchpoint),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
    }
}

#[tokio::test]
async fn update_changes_only_the_masked_fields() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut original = touchpoint("lobby");
    original.description = "Main hall".into();
    let created = app.create_touchpoint(&org.admin_key, original).await;

    let changes = pb::Touchpoint {
        id: created.id.clone(),
        display_name: "Main lobby".into(),
        description: String::new(),
        key: true,
        cycle_position: 999,
        stage: pb::Stage::PostService.into(),
        ..Default::default()
    };
    let updated = app
        .touchpoints()
        .await
        .update_touchpoint(authed(
            &org.admin_key,
            update(changes, &["display_name", "key"]),
        ))
        .await
        .unwrap()
        .into_inner()
        .touchpoint
        .unwrap();

    assert_eq!(updated.display_name, "Main lobby");
    assert!(updated.key);
    assert_eq!(
        updated.description, "Main hall",
        "unmasked description changed"
    );
    assert_eq!(
        updated.cycle_position, created.cycle_position,
        "unmasked cycle_position changed"
    );
    assert_eq!(updated.stage, created.stage, "unmasked stage changed");
    assert_eq!(updated.code, created.code);
    assert_eq!(updated.create_time, created.create_time);
    assert_ne!(updated.update_time, created.update_time);
}

#[tokio::test]
async fn update_can_clear_a_field_named_in_the_mask() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut original = touchpoint("lobby");
    original.description = "Main hall".into();
    original.key = true;
    let created = app.create_touchpoint(&org.admin_key, original).await;
    let changes = pb::Touchpoint {
        id: created.id.clone(),
        ..Default::default()
    };
    let updated = app
        .touchpoints()
        .await
        .update_touchpoint(authed(
            &org.admin_key,
            update(changes, &["description", "key", "cycle_position"]),
        ))
        .await
        .unwrap()
        .into_inner()
        .touchpoint
        .unwrap();
    assert_eq!(
        (
            updated.description.as_str(),
            updated.key,
            updated.cycle_position
        ),
        ("", false, 0)
    );
    assert_eq!(updated.display_name, created.display_name);
}

#[tokio::test]
async fn update_without_a_mask_changes_the_fields_the_request_sets() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let created = app
        .create_touchpoint(&org.admin_key, touchpoint("lobby"))
        .await;
    let changes = pb::Touchpoint {
        id: created.id.clone(),
        channel: pb::Channel::Remote.into(),
        ..Default::default()
    };
    let updated = app
        .touchpoints()
        .await
        .update_touchpoint(authed(
            &org.admin_key,
            pb::UpdateTouchpointRequest {
                touchpoint: Some(changes),
                update_mask: None,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .touchpoint
        .unwrap();
    assert_eq!(updated.channel(), pb::Channel::Remote);
    assert_eq!(updated.display_name, created.display_name);
    assert_eq!(updated.cycle_position, created.cycle_position);
}

#[tokio::test]
async fn update_rejects_unknown_and_immutable_paths_and_bad_values_without_writing() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let created = app
        .create_touchpoint(&org.admin_key, touchpoint("lobby"))
        .await;
    let mut client = app.touchpoints().await;
    let changes = pb::Touchpoint {
        id: created.id.clone(),
        code: "renamed".into(),
        display_name: "New".into(),
        ..Default::default()
    };

    let status = client
        .update_touchpoint(authed(
            &org.admin_key,
            update(changes.clone(), &["display_name", "colour"]),
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["update_mask"]);
    assert!(
        status.message().contains("unknown field \"colour\""),
        "{}",
        status.message()
    );

    let status = client
        .update_touchpoint(authed(&org.admin_key, update(changes.clone(), &["code"])))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["update_mask"]);
    assert!(
        status.message().contains("cannot be changed"),
        "{}",
        status.message()
    );

    let status = client
        .update_touchpoint(authed(
            &org.admin_key,
            update(changes.clone(), &["display_name", "stage"]),
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["touchpoint.stage"]);

    let status = client
        .update_touchpoint(authed(
            &org.admin_key,
            update(
                pb::Touchpoint {
                    id: created.id.clone(),
                    ..Default::default()
                },
                &[],
            ),
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["update_mask"]);

    let status = client
        .update_touchpoint(authed(
            &org.admin_key,
            update(
                pb::Touchpoint {
                    id: "x".into(),
                    ..changes.clone()
                },
                &["display_name"],
            ),
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["touchpoint.id"]);

    let status = client
        .update_touchpoint(authed(
            &org.admin_key,
            pb::UpdateTouchpointRequest {
                touchpoint: None,
                update_mask: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["touchpoint"]);

    let unknown = pb::Touchpoint {
        id: uuid::Uuid::now_v7().to_string(),
        ..changes
    };
    let status = client
        .update_touchpoint(authed(&org.admin_key, update(unknown, &["display_name"])))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");

    let after = client
        .get_touchpoint(authed(
            &org.admin_key,
            pb::GetTouchpointRequest {
                id: created.id.clone(),
                code: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .touchpoint
        .unwrap();
    assert_eq!(after, created, "a failed update wrote something");
}

#[tokio::test]
async fn a_star_mask_replaces_every_mutable_field() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut original = touchpoint("lobby");
    original.key = true;
    original.description = "Main hall".into();
    let created = app.create_touchpoint(&org.admin_key, original).await;
    let replacement = pb::Touchpoint {
        id: created.id.clone(),
        display_name: "Lobby".into(),
        stage: pb::Stage::PreService.into(),
        channel: pb::Channel::InPerson.into(),
        ..Default::default()
    };
    let updated = app
        .touchpoints()
        .await
        .update_touchpoint(authed(&org.admin_key, update(replacement, &["*"])))
        .await
        .unwrap()
        .into_inner()
        .touchpoint
        .unwrap();
    assert_eq!(updated.stage(), pb::Stage::PreService);
    assert!(!updated.key);
    assert_eq!(updated.description, "");
    assert_eq!(updated.cycle_position, 0);
    assert_eq!(updated.occurrence(), pb::Occurrence::Routine);
}

#[tokio::test]
async fn archived_touchpoints_leave_lists_refuse_changes_and_come_back() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let created = app
        .create_touchpoint(&org.admin_key, touchpoint("lobby"))
        .await;
    app.create_touchpoint(&org.admin_key, touchpoint("pharmacy"))
        .await;
    let mut client = app.touchpoints().await;

    let archived = client
        .archive_touchpoint(authed(
            &org.admin_key,
            pb::ArchiveTouchpointRequest {
                id: created.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .touchpoint
        .unwrap();
    assert!(archived.archived);
    assert!(archived.archive_time.is_some());

    let visible = app
        .list_touchpoints(&org.admin_key, pb::ListTouchpointsRequest::default())
        .await;
    assert_eq!(
        visible.iter().map(|t| t.code.as_str()).collect::<Vec<_>>(),
        ["pharmacy"]
    );
    let everything = app
        .list_touchpoints(
            &org.admin_key,
            pb::ListTouchpointsRequest {
                show_archived: true,
                ..Default::default()
            },
        )
        .await;
    assert_eq!(everything.len(), 2);

    let status = client
        .archive_touchpoint(authed(
            &org.admin_key,
            pb::ArchiveTouchpointRequest {
                id: created.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "TOUCHPOINT_ARCHIVED");

    let changes = pb::Touchpoint {
        id: created.id.clone(),
        display_name: "Hall".into(),
        ..Default::default()
    };
    let status = client
        .update_touchpoint(authed(&org.admin_key, update(changes, &["display_name"])))
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "TOUCHPOINT_ARCHIVED");
    assert!(
        status.message().contains("unarchive"),
        "{}",
        status.message()
    );

    let restored = client
        .unarchive_touchpoint(authed(
            &org.admin_key,
            pb::UnarchiveTouchpointRequest {
                id: created.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .touchpoint
        .unwrap();
    assert!(!restored.archived);
    assert!(restored.archive_time.is_none());
    assert_eq!(restored.display_name, created.display_name);

    let status = client
        .unarchive_touchpoint(authed(
            &org.admin_key,
            pb::UnarchiveTouchpointRequest {
                id: created.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "TOUCHPOINT_NOT_ARCHIVED");

    let status = client
        .archive_touchpoint(authed(
            &org.admin_key,
            pb::ArchiveTouchpointRequest { id: "nope".into() },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["id"]);
    let status = client
        .unarchive_touchpoint(authed(
            &org.admin_key,
            pb::UnarchiveTouchpointRequest {
                id: uuid::Uuid::now_v7().to_string(),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
}

#[tokio::test]
async fn every_filter_that_names_a_touchpoint_takes_its_code() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = org.admin_key.as_str();
    app.create_touchpoint(key, touchpoint("desk")).await;
    app.create_touchpoint(key, touchpoint("lobby")).await;
    let mut greet = crate::helpers::standard("greet", "desk");
    greet.code = "greet".into();
    app.create_standard(key, greet).await;
    let at_desk = app.recorded(key, dissatisfied("desk", "his", "1")).await;
    app.recorded(key, dissatisfied("lobby", "his", "2")).await;

    let encounters = app
        .list_encounters(
            key,
            pb::ListEncountersRequest {
                touchpoint_code: "Desk".into(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(encounters, std::slice::from_ref(&at_desk));
    let cases = app
        .list_cases(
            key,
            pb::ListRecoveryCasesRequest {
                touchpoint_code: "desk".into(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].encounter_id, at_desk.id);
    let standards = app
        .standards()
        .await
        .list_standards(authed(
            key,
            pb::ListStandardsRequest {
                touchpoint_code: "desk".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .standards;
    assert_eq!(standards.len(), 1);
    let scope = |codes: &[&str]| pb::AnalysisScope {
        touchpoint_codes: codes.iter().map(|c| (*c).to_owned()).collect(),
        ..fixture_day()
    };
    let card = app
        .analyses()
        .await
        .get_scorecard(authed(
            key,
            pb::GetScorecardRequest {
                scope: Some(scope(&["desk"])),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(card.total.unwrap().encounters, 1);

    // An unknown code is not found, wherever it is named; a malformed one
    // is named; id and code together are refused.
    let status = app
        .analyses()
        .await
        .get_scorecard(authed(
            key,
            pb::GetScorecardRequest {
                scope: Some(scope(&["desk", "pharmacy"])),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    assert!(status.message().contains("pharmacy"), "{status:?}");
    let status = app
        .analyses()
        .await
        .get_scorecard(authed(
            key,
            pb::GetScorecardRequest {
                scope: Some(scope(&["desk", "no such code"])),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["scope.touchpoint_codes[1]"]);
    let status = app
        .encounters()
        .await
        .list_encounters(authed(
            key,
            pb::ListEncountersRequest {
                touchpoint_code: "pharmacy".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    let status = app
        .recovery()
        .await
        .list_recovery_cases(authed(
            key,
            pb::ListRecoveryCasesRequest {
                touchpoint_id: at_desk.touchpoint_id.clone(),
                touchpoint_code: "desk".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["touchpoint_id"]);
}
