//! The service manual of the demo hospital: the designed cycle in order,
//! each touchpoint with its standards, and the same as Markdown.

use verdad::proto::verdad::v1 as pb;

use crate::helpers::{authed, spawn_app, standard, touchpoint};

async fn manual(app: &crate::helpers::TestApp, key: &str) -> pb::ServiceManual {
    app.standards()
        .await
        .get_service_manual(authed(key, pb::GetServiceManualRequest::default()))
        .await
        .expect("get_service_manual failed")
        .into_inner()
        .service_manual
        .expect("no manual in the response")
}

#[tokio::test]
async fn the_demo_manual_follows_the_designed_cycle_stage_by_stage() {
    let app = spawn_app().await;
    let key = app.demo_key().await;

    let manual = manual(&app, &key).await;

    assert_eq!(manual.organisation_display_name, "Verdad Demo Hospital");
    let stages: Vec<pb::Stage> = manual.stages.iter().map(|s| s.stage()).collect();
    assert_eq!(
        stages,
        [
            pb::Stage::PreService,
            pb::Stage::Service,
            pb::Stage::PostService
        ]
    );
    let order: Vec<Vec<&str>> = manual
        .stages
        .iter()
        .map(|s| {
            s.touchpoints
                .iter()
                .map(|t| t.touchpoint.as_ref().unwrap().code.as_str())
                .collect()
        })
        .collect();
    assert_eq!(
        order,
        [
            vec!["phone-booking", "website", "entrance-guard", "lobby"],
            vec![
                "reception-desk",
                "waiting-area",
                "consultation-room",
                "examination"
            ],
            vec!["payment", "pharmacy", "happy-call"],
        ]
    );
    let standards_of = |code: &str| -> Vec<String> {
        manual
            .stages
            .iter()
            .flat_map(|s| &s.touchpoints)
            .find(|t| t.touchpoint.as_ref().unwrap().code == code)
            .unwrap()
            .standards
            .iter()
            .map(|s| s.rule_text.clone())
            .collect()
    };
    assert_eq!(
        standards_of("entrance-guard"),
        ["first_response_seconds <= 15"]
    );
    assert_eq!(
        standards_of("reception-desk"),
        ["first_response_seconds <= 15"]
    );
    assert_eq!(standards_of("waiting-area"), ["wait_seconds <= 1800"]);
    assert_eq!(
        standards_of("phone-booking"),
        ["first_response_seconds <= 20"]
    );
    assert_eq!(standards_of("lobby"), ["observed"]);
    assert_eq!(standards_of("happy-call"), ["wait_seconds <= 172800"]);
    assert!(standards_of("examination").is_empty());
    let everywhere: Vec<&str> = manual
        .organisation_standards
        .iter()
        .map(|s| s.code.as_str())
        .collect();
    assert_eq!(everywhere, ["name-badge", "satisfied-customer"]);

    let md = &manual.markdown;
    assert!(
        md.starts_with("# Verdad Demo Hospital — service manual\n"),
        "{md}"
    );
    let positions: Vec<usize> = [
        "## At every touchpoint",
        "#### Staff wear a visible name badge (`name-badge`)",
        "## 1. Before the service",
        "### 1.1 Phone booking ★",
        "#### Answer the phone within 20 seconds (`phone-answer-20s`)",
        "### 1.2 Website\n",
        "### 1.3 Entrance guard ★",
        "### 1.4 Lobby\n",
        "## 2. The service",
        "### 2.1 Reception desk ★",
        "### 2.2 Waiting area ★",
        "- Rule: `wait_seconds <= 1800`",
        "### 2.4 Examination\n",
        "*No standards yet.*",
        "## 3. After the service",
        "### 3.3 Post-visit happy call ★",
    ]
    .iter()
    .map(|needle| {
        md.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} is missing from the manual:\n{md}"))
    })
    .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "the manual is out of order:\n{md}"
    );
    assert!(md.contains("- Severity: **critical**\n- Rule: `first_response_seconds <= 15`"));
    assert!(md.contains("The first 15 seconds decide the hospital's image.\\\n"));
}

#[tokio::test]
async fn the_manual_leaves_out_archived_parts_and_escapes_what_people_typed() {
    let app = spawn_app().await;
    let org = app.create_org("St. <Mary>").await;
    let mut desk = touchpoint("desk");
    desk.display_name = "# Desk [1]".into();
    app.create_touchpoint(&org.admin_key, desk).await;
    let old = app
        .create_touchpoint(&org.admin_key, touchpoint("old"))
        .await;
    let mut greet = standard("greet", "desk");
    greet.guidance = "1. Stand up\n- smile".into();
    app.create_standard(&org.admin_key, greet).await;
    app.touchpoints()
        .await
        .archive_touchpoint(authed(
            &org.admin_key,
            pb::ArchiveTouchpointRequest { id: old.id },
        ))
        .await
        .unwrap();

    let manual = manual(&app, &org.admin_key).await;

    let service = &manual.stages[1];
    assert_eq!(
        service.touchpoints.len(),
        1,
        "the archived touchpoint is in"
    );
    let md = &manual.markdown;
    assert!(md.starts_with("# St. \\<Mary\\> — service manual"), "{md}");
    assert!(md.contains("### 2.1 \\# Desk \\[1\\]\n"), "{md}");
    assert!(md.contains("1\\. Stand up\\\n\\- smile\n"), "{md}");
    assert!(md.contains("## 1. Before the service\n\n*No touchpoints in this stage.*"));
}
