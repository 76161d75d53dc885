//! StandardService: customer service standards and their rules.

use std::collections::HashSet;

use prost_types::FieldMask;
use tonic::Code;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    TestApp, assert_error, authed, metric_rule, observed_rule, spawn_app, standard, touchpoint,
    violated_fields,
};

/// Every standard `request` lists, page by page, and the page count.
async fn list_standard_pages(
    app: &TestApp,
    key: &str,
    mut request: pb::ListStandardsRequest,
) -> (Vec<pb::Standard>, usize) {
    let mut client = app.standards().await;
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_standards(authed(key, request.clone()))
            .await
            .expect("list failed")
            .into_inner();
        pages += 1;
        all.extend(page.standards);
        if page.next_page_token.is_empty() {
            return (all, pages);
        }
        request.page_token = page.next_page_token;
        assert!(pages < 1000, "pagination does not end");
    }
}

async fn list_standards(
    app: &TestApp,
    key: &str,
    request: pb::ListStandardsRequest,
) -> Vec<pb::Standard> {
    list_standard_pages(app, key, request).await.0
}

fn get_by_id(key: &str, id: &str) -> tonic::Request<pb::GetStandardRequest> {
    authed(
        key,
        pb::GetStandardRequest {
            id: id.to_owned(),
            code: String::new(),
        },
    )
}

fn update(
    key: &str,
    standard: pb::Standard,
    paths: &[&str],
) -> tonic::Request<pb::UpdateStandardRequest> {
    authed(
        key,
        pb::UpdateStandardRequest {
            standard: Some(standard),
            update_mask: Some(FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
        },
    )
}

fn create(key: &str, standard: pb::Standard) -> tonic::Request<pb::CreateStandardRequest> {
    authed(
        key,
        pb::CreateStandardRequest {
            standard: Some(standard),
        },
    )
}

#[tokio::test]
async fn created_standard_can_be_read_back_by_id_and_by_code() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let desk = app
        .create_touchpoint(&org.admin_key, touchpoint("reception-desk"))
        .await;
    let mut wanted = standard("greet-15s", "RECEPTION-DESK");
    wanted.guidance = "Stand up.\nSay hello.".into();

    let created = app.create_standard(&org.admin_key, wanted).await;

    assert!(!created.id.is_empty());
    assert_eq!(created.code, "greet-15s");
    assert_eq!(created.touchpoint_id, desk.id);
    assert_eq!(created.touchpoint_code, "reception-desk");
    assert_eq!(created.element(), pb::Element::Humanware);
    assert_eq!(created.severity(), pb::Severity::Critical);
    assert_eq!(created.guidance, "Stand up.\nSay hello.");
    assert_eq!(
        created.rule,
        metric_rule(
            pb::MetricField::FirstResponseSeconds,
            pb::Comparison::LessOrEqual,
            15.0
        )
    );
    assert_eq!(created.rule_text, "first_response_seconds <= 15");
    assert!(created.active);
    assert!(created.create_time.is_some() && created.archive_time.is_none());

    let mut client = app.standards().await;
    let by_id = client
        .get_standard(get_by_id(&org.admin_key, &created.id))
        .await
        .unwrap()
        .into_inner()
        .standard
        .unwrap();
    assert_eq!(by_id, created);
    let by_code = client
        .get_standard(authed(
            &org.admin_key,
            pb::GetStandardRequest {
                id: String::new(),
                code: "GREET-15S".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .standard
        .unwrap();
    assert_eq!(by_code, created);
}

#[tokio::test]
async fn standards_attach_by_touchpoint_id_or_apply_at_every_touchpoint() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let lobby = app
        .create_touchpoint(&org.admin_key, touchpoint("lobby"))
        .await;

    let mut by_id = standard("lobby-signage", "");
    by_id.touchpoint_id = lobby.id.clone();
    by_id.element = pb::Element::Hardware.into();
    by_id.severity = pb::Severity::Minor.into();
    by_id.rule = observed_rule();
    let signage = app.create_standard(&org.admin_key, by_id).await;
    assert_eq!(signage.touchpoint_code, "lobby");
    assert_eq!(signage.rule_text, "observed");
    assert_eq!(signage.rule, observed_rule());

    let badge = app
        .create_standard(&org.admin_key, standard("name-badge", ""))
        .await;
    assert!(badge.touchpoint_id.is_empty() && badge.touchpoint_code.is_empty());
}

#[tokio::test]
async fn every_invalid_field_of_a_create_is_named_and_nothing_is_written() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    app.create_touchpoint(&org.admin_key, touchpoint("lobby"))
        .await;
    let mut client = app.standards().await;

    let bad = pb::Standard {
        code: "has space".into(),
        title: "two\nlines".into(),
        touchpoint_id: "not-a-uuid".into(),
        element: 17,
        severity: 0,
        guidance: "x".repeat(20_001),
        rule: Some(pb::standard::Rule::MetricRule(pb::MetricRule {
            field: 99,
            comparison: pb::Comparison::LessOrEqual.into(),
            threshold: 1.0,
        })),
        ..Default::default()
    };
    let status = client
        .create_standard(create(&org.admin_key, bad))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        [
            "standard.code",
            "standard.title",
            "standard.touchpoint_id",
            "standard.element",
            "standard.severity",
            "standard.guidance",
            "standard.metric_rule.field",
        ]
    );
    assert!(
        status
            .message()
            .contains("standard.metric_rule.field has unknown value 99"),
        "{}",
        status.message()
    );

    let mut no_rule = standard("greet", "lobby");
    no_rule.rule = None;
    let status = client
        .create_standard(create(&org.admin_key, no_rule))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["standard.rule"]);

    let mut both = standard("greet", "lobby");
    both.touchpoint_id = uuid::Uuid::now_v7().to_string();
    let status = client
        .create_standard(create(&org.admin_key, both))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["standard.touchpoint_id"]);

    let status = client
        .create_standard(authed(
            &org.admin_key,
            pb::CreateStandardRequest { standard: None },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["standard"]);

    let listed = list_standards(&app, &org.admin_key, Default::default()).await;
    assert!(listed.is_empty(), "a rejected create wrote {listed:?}");
}

#[tokio::test]
async fn thresholds_outside_the_fields_range_are_rejected() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut client = app.standards().await;
    use pb::{Comparison::*, MetricField::*};
    let cases = [
        (Satisfaction, GreaterOrEqual, 0.0, "between 1 and 5"),
        (Satisfaction, GreaterOrEqual, 6.0, "between 1 and 5"),
        (Satisfaction, GreaterOrEqual, 3.125, "two decimal places"),
        (WaitSeconds, LessOrEqual, 5e-324, "got 5e-324"),
        (Effort, LessOrEqual, 8.0, "between 1 and 7"),
        (WaitSeconds, LessOrEqual, -1.0, "between 0 and 604800"),
        (
            FirstResponseSeconds,
            LessOrEqual,
            604_801.0,
            "between 0 and 604800",
        ),
        (DurationSeconds, LessOrEqual, f64::NAN, "must be a number"),
        (Satisfaction, GreaterThan, 5.0, "impossible to meet"),
        (WaitSeconds, LessThan, 0.0, "impossible to meet"),
    ];
    for (field, comparison, threshold, says) in cases {
        let mut bad = standard("rule", "");
        bad.rule = metric_rule(field, comparison, threshold);
        let status = client
            .create_standard(create(&org.admin_key, bad))
            .await
            .unwrap_err();
        assert_eq!(
            violated_fields(&status),
            ["standard.metric_rule.threshold"],
            "{field:?} {comparison:?} {threshold}"
        );
        assert!(status.message().contains(says), "{}", status.message());
        assert!(status.message().len() < 200, "{}", status.message());
    }
    // -0 is 0, and written so.
    let mut zero = standard("no-wait", "");
    zero.rule = metric_rule(WaitSeconds, LessOrEqual, -0.0);
    let zero = client
        .create_standard(create(&org.admin_key, zero))
        .await
        .unwrap()
        .into_inner()
        .standard
        .unwrap();
    assert_eq!(zero.rule_text, "wait_seconds <= 0");
    let mut missing = standard("rule", "");
    missing.rule = Some(pb::standard::Rule::MetricRule(pb::MetricRule {
        field: Satisfaction.into(),
        comparison: 0,
        threshold: 4.0,
    }));
    let status = client
        .create_standard(create(&org.admin_key, missing))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["standard.metric_rule.comparison"]
    );
    assert_eq!(
        list_standards(&app, &org.admin_key, Default::default())
            .await
            .len(),
        1,
        "only the rule of -0 is stored"
    );
}

#[tokio::test]
async fn codes_are_unique_per_organisation_regardless_of_case() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let first = app
        .create_standard(&org.admin_key, standard("greet-15s", ""))
        .await;
    let status = app
        .standards()
        .await
        .create_standard(create(&org.admin_key, standard("Greet-15S", "")))
        .await
        .unwrap_err();
    assert_error(&status, Code::AlreadyExists, "ALREADY_EXISTS");
    assert!(
        status.message().contains("Greet-15S"),
        "{}",
        status.message()
    );
    let listed = list_standards(&app, &org.admin_key, Default::default()).await;
    assert_eq!(listed, vec![first]);
}

#[tokio::test]
async fn an_unknown_touchpoint_is_not_found_and_an_archived_one_takes_no_standards() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut client = app.standards().await;

    let status = client
        .create_standard(create(&org.admin_key, standard("greet", "no-such-desk")))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    assert!(status.message().contains("no-such-desk"));
    let mut by_id = standard("greet", "");
    by_id.touchpoint_id = uuid::Uuid::now_v7().to_string();
    let status = client
        .create_standard(create(&org.admin_key, by_id))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");

    let old = app
        .create_touchpoint(&org.admin_key, touchpoint("old-desk"))
        .await;
    app.touchpoints()
        .await
        .archive_touchpoint(authed(
            &org.admin_key,
            pb::ArchiveTouchpointRequest { id: old.id },
        ))
        .await
        .unwrap();
    let status = client
        .create_standard(create(&org.admin_key, standard("greet", "old-desk")))
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "TOUCHPOINT_ARCHIVED");
    assert!(
        list_standards(&app, &org.admin_key, Default::default())
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn list_filters_by_touchpoint_element_scope_and_active_across_pages() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let desk = app
        .create_touchpoint(&org.admin_key, touchpoint("desk"))
        .await;
    app.create_touchpoint(&org.admin_key, touchpoint("lobby"))
        .await;
    let mut at_desk = Vec::new();
    for i in 0..7 {
        at_desk.push(
            app.create_standard(&org.admin_key, standard(&format!("desk-{i}"), "desk"))
                .await,
        );
    }
    let mut signage = standard("signage", "lobby");
    signage.element = pb::Element::Hardware.into();
    let signage = app.create_standard(&org.admin_key, signage).await;
    let badge = app
        .create_standard(&org.admin_key, standard("badge", ""))
        .await;
    let archived = app
        .standards()
        .await
        .archive_standard(authed(
            &org.admin_key,
            pb::ArchiveStandardRequest {
                id: at_desk[0].id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .standard
        .unwrap();

    let (all, pages) = list_standard_pages(
        &app,
        &org.admin_key,
        pb::ListStandardsRequest {
            page_size: 2,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(pages, 5);
    assert_eq!(all.len(), 9);
    let ids: HashSet<&str> = all.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), 9, "a standard was listed twice");

    let desk_only = list_standards(
        &app,
        &org.admin_key,
        pb::ListStandardsRequest {
            touchpoint_id: desk.id.clone(),
            active: Some(true),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(desk_only, at_desk[1..].to_vec());
    let hardware = list_standards(
        &app,
        &org.admin_key,
        pb::ListStandardsRequest {
            element: pb::Element::Hardware.into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(hardware, vec![signage]);
    let everywhere = list_standards(
        &app,
        &org.admin_key,
        pb::ListStandardsRequest {
            organisation_wide: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(everywhere, vec![badge]);
    let inactive = list_standards(
        &app,
        &org.admin_key,
        pb::ListStandardsRequest {
            active: Some(false),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(inactive, vec![archived]);
}

#[tokio::test]
async fn list_rejects_bad_filters_and_foreign_tokens() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    for i in 0..3 {
        app.create_standard(&org.admin_key, standard(&format!("s-{i}"), ""))
            .await;
    }
    let mut client = app.standards().await;
    let list = |request: pb::ListStandardsRequest| authed(&org.admin_key, request);

    let status = client
        .list_standards(list(pb::ListStandardsRequest {
            page_size: -1,
            touchpoint_id: "nope".into(),
            element: 42,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_size", "touchpoint_id"]);
    let status = client
        .list_standards(list(pb::ListStandardsRequest {
            touchpoint_id: uuid::Uuid::now_v7().to_string(),
            organisation_wide: true,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["organisation_wide"]);

    let first = client
        .list_standards(list(pb::ListStandardsRequest {
            page_size: 1,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let status = client
        .list_standards(list(pb::ListStandardsRequest {
            page_size: 1,
            page_token: first.next_page_token,
            active: Some(true),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);
}

#[tokio::test]
async fn update_changes_only_the_masked_fields_and_can_replace_the_rule() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    app.create_touchpoint(&org.admin_key, touchpoint("desk"))
        .await;
    app.create_touchpoint(&org.admin_key, touchpoint("waiting"))
        .await;
    let created = app
        .create_standard(&org.admin_key, standard("wait", "desk"))
        .await;
    let mut client = app.standards().await;

    let changes = pb::Standard {
        id: created.id.clone(),
        title: "Waiting at most 30 minutes".into(),
        touchpoint_code: "waiting".into(),
        element: pb::Element::Software.into(),
        guidance: "not in the mask".into(),
        rule: metric_rule(
            pb::MetricField::WaitSeconds,
            pb::Comparison::LessOrEqual,
            1800.0,
        ),
        ..Default::default()
    };
    let updated = client
        .update_standard(update(
            &org.admin_key,
            changes,
            &["title", "touchpoint_code", "element", "metric_rule"],
        ))
        .await
        .unwrap()
        .into_inner()
        .standard
        .unwrap();
    assert_eq!(updated.title, "Waiting at most 30 minutes");
    assert_eq!(updated.touchpoint_code, "waiting");
    assert_eq!(updated.element(), pb::Element::Software);
    assert_eq!(updated.rule_text, "wait_seconds <= 1800");
    assert_eq!(
        updated.guidance, created.guidance,
        "an unmasked field changed"
    );
    assert_eq!(updated.severity, created.severity);
    assert_eq!(updated.code, created.code);

    // Naming the touchpoint with nothing set makes the standard apply everywhere.
    let everywhere = client
        .update_standard(update(
            &org.admin_key,
            pb::Standard {
                id: created.id.clone(),
                ..Default::default()
            },
            &["touchpoint_id"],
        ))
        .await
        .unwrap()
        .into_inner()
        .standard
        .unwrap();
    assert!(everywhere.touchpoint_id.is_empty() && everywhere.touchpoint_code.is_empty());

    let read = client
        .get_standard(get_by_id(&org.admin_key, &created.id))
        .await
        .unwrap()
        .into_inner()
        .standard
        .unwrap();
    assert_eq!(read, everywhere);
}

#[tokio::test]
async fn update_takes_the_documented_mask_names_touchpoint_and_rule() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    app.create_touchpoint(&org.admin_key, touchpoint("desk"))
        .await;
    app.create_touchpoint(&org.admin_key, touchpoint("waiting"))
        .await;
    let created = app
        .create_standard(&org.admin_key, standard("wait", "desk"))
        .await;
    let mut client = app.standards().await;

    let moved = client
        .update_standard(update(
            &org.admin_key,
            pb::Standard {
                id: created.id.clone(),
                touchpoint_code: "waiting".into(),
                rule: observed_rule(),
                title: "not in the mask".into(),
                ..Default::default()
            },
            &["touchpoint", "rule"],
        ))
        .await
        .unwrap()
        .into_inner()
        .standard
        .unwrap();
    assert_eq!(moved.touchpoint_code, "waiting");
    assert!(
        matches!(moved.rule, Some(pb::standard::Rule::ObservedRule(_))),
        "{moved:?}"
    );
    assert_eq!(moved.title, created.title);

    // "touchpoint" with neither field set makes the standard apply
    // everywhere; "rule" takes either rule of the oneof.
    let everywhere = client
        .update_standard(update(
            &org.admin_key,
            pb::Standard {
                id: created.id.clone(),
                rule: metric_rule(
                    pb::MetricField::WaitSeconds,
                    pb::Comparison::LessOrEqual,
                    600.0,
                ),
                ..Default::default()
            },
            &["touchpoint", "rule"],
        ))
        .await
        .unwrap()
        .into_inner()
        .standard
        .unwrap();
    assert!(everywhere.touchpoint_id.is_empty() && everywhere.touchpoint_code.is_empty());
    assert_eq!(everywhere.rule_text, "wait_seconds <= 600");
}

#[tokio::test]
async fn update_rejects_bad_masks_and_values_without_writing() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let created = app
        .create_standard(&org.admin_key, standard("greet", ""))
        .await;
    let mut client = app.standards().await;
    let with_id = |mut s: pb::Standard| {
        s.id = created.id.clone();
        s
    };

    let status = client
        .update_standard(update(
            &org.admin_key,
            with_id(pb::Standard::default()),
            &["code", "colour"],
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["update_mask", "update_mask"]);

    let mut bad = pb::Standard {
        rule: metric_rule(
            pb::MetricField::Satisfaction,
            pb::Comparison::GreaterOrEqual,
            9.0,
        ),
        ..Default::default()
    };
    bad = with_id(bad);
    let status = client
        .update_standard(update(&org.admin_key, bad, &["metric_rule", "title"]))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["standard.metric_rule.threshold", "standard.title"]
    );

    let status = client
        .update_standard(update(
            &org.admin_key,
            with_id(pb::Standard {
                touchpoint_code: "no-such-desk".into(),
                ..Default::default()
            }),
            &["touchpoint_code"],
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");

    let status = client
        .update_standard(update(
            &org.admin_key,
            pb::Standard {
                id: "bad".into(),
                title: "x".into(),
                ..Default::default()
            },
            &["title"],
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["standard.id"]);

    let unchanged = client
        .get_standard(get_by_id(&org.admin_key, &created.id))
        .await
        .unwrap()
        .into_inner()
        .standard
        .unwrap();
    assert_eq!(unchanged, created);
}

#[tokio::test]
async fn archived_standards_refuse_changes_and_come_back_only_with_their_touchpoint() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let desk = app
        .create_touchpoint(&org.admin_key, touchpoint("desk"))
        .await;
    let created = app
        .create_standard(&org.admin_key, standard("greet", "desk"))
        .await;
    let mut client = app.standards().await;
    let archive = |id: &str| {
        authed(
            &org.admin_key,
            pb::ArchiveStandardRequest { id: id.to_owned() },
        )
    };
    let unarchive = |id: &str| {
        authed(
            &org.admin_key,
            pb::UnarchiveStandardRequest { id: id.to_owned() },
        )
    };

    let status = client
        .unarchive_standard(unarchive(&created.id))
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "STANDARD_NOT_ARCHIVED");
    let archived = client
        .archive_standard(archive(&created.id))
        .await
        .unwrap()
        .into_inner()
        .standard
        .unwrap();
    assert!(!archived.active && archived.archive_time.is_some());
    let status = client
        .archive_standard(archive(&created.id))
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "STANDARD_ARCHIVED");
    let status = client
        .update_standard(update(
            &org.admin_key,
            pb::Standard {
                id: created.id.clone(),
                title: "changed".into(),
                ..Default::default()
            },
            &["title"],
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "STANDARD_ARCHIVED");

    app.touchpoints()
        .await
        .archive_touchpoint(authed(
            &org.admin_key,
            pb::ArchiveTouchpointRequest {
                id: desk.id.clone(),
            },
        ))
        .await
        .unwrap();
    let status = client
        .unarchive_standard(unarchive(&created.id))
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "TOUCHPOINT_ARCHIVED");
    app.touchpoints()
        .await
        .unarchive_touchpoint(authed(
            &org.admin_key,
            pb::UnarchiveTouchpointRequest { id: desk.id },
        ))
        .await
        .unwrap();
    let back = client
        .unarchive_standard(unarchive(&created.id))
        .await
        .unwrap()
        .into_inner()
        .standard
        .unwrap();
    assert!(back.active && back.archive_time.is_none());
    assert_eq!(back.title, created.title);

    let status = client
        .archive_standard(archive(&uuid::Uuid::now_v7().to_string()))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    let status = client.archive_standard(archive("")).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["id"]);
}
