//! The event log export, as CSV and XES, within the scope's filters.

use tonic::Code;
use verdad::{domain::role::Role, proto::verdad::v1 as pb};

use crate::helpers::{
    Measured, TestApp, assert_error, at, authed, event, fixture_day, spawn_app, touchpoint,
};

async fn export(app: &TestApp, key: &str, format: pb::EventLogFormat) -> String {
    export_scope(app, key, format, fixture_day()).await
}

async fn export_scope(
    app: &TestApp,
    key: &str,
    format: pb::EventLogFormat,
    scope: pb::AnalysisScope,
) -> String {
    let mut stream = app
        .analyses()
        .await
        .export_event_log(authed(
            key,
            pb::ExportEventLogRequest {
                scope: Some(scope),
                format: format.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(piece) = stream.message().await.unwrap() {
        bytes.extend(piece.chunk);
    }
    String::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn the_event_log_exports_as_csv_and_xes() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    app.create_touchpoint(key, touchpoint("desk")).await;
    app.create_touchpoint(key, touchpoint("lobby")).await;
    let served_by = |code: &str, journey: &str, id: &str, time, staff: &str| pb::Encounter {
        staff_ref: staff.into(),
        ..event(code, journey, id, time, Measured::default())
    };
    for e in [
        served_by("desk", "A", "1", at(60), "kim"),
        served_by("lobby", "A", "2", at(0), ""),
        served_by("desk", "B,2", "3", at(0), "kim & lee"),
        served_by("lobby", "D \"the\" one", "5", at(30), "park"),
        // Two at the same second: the sequence keeps their arrival order.
        served_by("lobby", "T", "6", at(40), ""),
        served_by("desk", "T", "7", at(40), ""),
        // The day before: not exported.
        served_by("desk", "C", "4", at(-86_400), ""),
    ] {
        app.record(key, e).await;
    }

    // In the organisation's zone (Asia/Seoul), with its offset, so that a
    // tool's days are the organisation's.
    let csv = export(&app, key, pb::EventLogFormat::Unspecified).await;
    assert_eq!(
        csv,
        "case_id,activity,timestamp,resource,activity_name,sequence\n\
         A,lobby,2026-06-01T18:00:00.000000+09:00,,Touchpoint lobby,1\n\
         A,desk,2026-06-01T18:01:00.000000+09:00,kim,Touchpoint desk,2\n\
         \"B,2\",desk,2026-06-01T18:00:00.000000+09:00,kim & lee,Touchpoint desk,1\n\
         \"D \"\"the\"\" one\",lobby,2026-06-01T18:00:30.000000+09:00,park,Touchpoint lobby,1\n\
         T,lobby,2026-06-01T18:00:40.000000+09:00,,Touchpoint lobby,1\n\
         T,desk,2026-06-01T18:00:40.000000+09:00,,Touchpoint desk,2\n"
    );

    let xes = export(&app, key, pb::EventLogFormat::Xes).await;
    assert!(xes.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<log "));
    assert!(xes.ends_with("</log>\n"));
    assert_eq!(xes.matches("<trace>").count(), 4);
    assert_eq!(xes.matches("</trace>").count(), 4);
    assert_eq!(xes.matches("<event>").count(), 6);
    assert!(
        xes.contains("<date key=\"time:timestamp\" value=\"2026-06-01T18:01:00.000000+09:00\"/>")
    );
    assert!(xes.contains("<string key=\"activity_name\" value=\"Touchpoint desk\"/>"));
    assert!(xes.contains("<int key=\"sequence\" value=\"2\"/>"));
    assert!(xes.contains("<string key=\"concept:name\" value=\"B,2\"/>"));
    assert!(xes.contains("<string key=\"org:resource\" value=\"kim &amp; lee\"/>"));
    let a = xes.find("value=\"lobby\"").unwrap();
    let b = xes.find("value=\"desk\"").unwrap();
    assert!(a < b, "journey A's events are in time order");

    let ingest = app.key(&org, Role::Ingest).await;
    let status = app
        .analyses()
        .await
        .export_event_log(authed(&ingest, pb::ExportEventLogRequest::default()))
        .await
        .unwrap_err();
    assert_error(&status, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    let other = app.create_org("Hospital B").await;
    let theirs = export(&app, &other.admin_key, pb::EventLogFormat::Csv).await;
    assert_eq!(
        theirs,
        "case_id,activity,timestamp,resource,activity_name,sequence\n"
    );
}

#[tokio::test]
async fn the_event_log_keeps_to_the_scopes_filters() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    let desk = app.create_touchpoint(key, touchpoint("desk")).await;
    app.create_touchpoint(
        key,
        pb::Touchpoint {
            stage: pb::Stage::PreService.into(),
            ..touchpoint("booking")
        },
    )
    .await;
    for e in [
        event("booking", "A", "1", at(0), Measured::default()),
        event("desk", "A", "2", at(60), Measured::default()),
        pb::Encounter {
            channel: pb::Channel::Phone.into(),
            ..event("desk", "B", "3", at(120), Measured::default())
        },
    ] {
        app.record(key, e).await;
    }
    let header = "case_id,activity,timestamp,resource,activity_name,sequence\n";
    let scoped = |f: fn(&mut pb::AnalysisScope)| {
        let mut scope = fixture_day();
        f(&mut scope);
        scope
    };

    let pre_service = scoped(|s| s.stage = pb::Stage::PreService.into());
    assert_eq!(
        export_scope(&app, key, pb::EventLogFormat::Csv, pre_service).await,
        format!("{header}A,booking,2026-06-01T18:00:00.000000+09:00,,Touchpoint booking,1\n")
    );
    let mut at_desk = fixture_day();
    at_desk.touchpoint_ids = vec![desk.id.clone()];
    assert_eq!(
        export_scope(&app, key, pb::EventLogFormat::Csv, at_desk).await,
        format!(
            "{header}A,desk,2026-06-01T18:01:00.000000+09:00,,Touchpoint desk,1\n\
             B,desk,2026-06-01T18:02:00.000000+09:00,,Touchpoint desk,1\n"
        )
    );
    let by_phone = scoped(|s| s.channel = pb::Channel::Phone.into());
    let xes = export_scope(&app, key, pb::EventLogFormat::Xes, by_phone).await;
    assert_eq!(xes.matches("<event>").count(), 1);
    assert!(xes.contains("<string key=\"concept:name\" value=\"B\"/>"));
    assert!(
        xes.contains("<date key=\"time:timestamp\" value=\"2026-06-01T18:02:00.000000+09:00\"/>")
    );
}
