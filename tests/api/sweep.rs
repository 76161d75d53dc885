//! The tenancy sweep: every RPC of the API, called with organisation B's
//! admin key at organisation A's resources, finds none of A's and changes
//! none of A's rows. The sweep fails when an RPC is added without a line
//! here.

use std::{collections::BTreeSet, time::Duration};

use prost_types::{FieldMask, Timestamp};
use serde_json::{Value, json};
use tonic::{Code, Response, Status};
use uuid::Uuid;
use verdad::{
    domain::role::Role,
    http::routes::{Route, Shape},
    proto::verdad::v1 as pb,
};

use crate::helpers::{
    Answer, Doors, Org, TestApp, answer, assert_error_shape, authed, dissatisfied, feedback,
    http_request, methods, route_name, route_table, spawn_app,
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
    };
    (a_key, a)
}

#[tokio::test]
async fn organisation_bs_key_finds_and_changes_nothing_of_organisation_as_by_any_rpc() {
    let app = spawn_app().await;
    let (a_key, a) = arrange_a(&app).await;
    let b = app.create_org("Hospital B").await;
    let b_key = b.admin_key.as_str();

    // B's watch hears nothing of a case A opens.
    let mut b_watch = app.watch(b_key, "").await;
    app.recorded(&a_key, dissatisfied("reception-desk", "his", "a-2"))
        .await;
    b_watch.assert_quiet(Duration::from_millis(500)).await;
    let mut called = BTreeSet::from(["RecoveryService/WatchRecoveryCases".to_owned()]);
    let mut rpc = |name: &str| {
        called.insert(name.to_owned());
        name.to_owned()
    };

    let before = app.fingerprint(a.organisation_id).await;
    for table in [
        "encounter",
        "touchpoint",
        "standard",
        "recovery_case",
        "api_key",
    ] {
        assert!(
            before.iter().any(|(t, n, _)| t == table && *n > 0),
            "A has no {table} rows to guard: {before:?}"
        );
    }

    // Touchpoints.
    let mut touchpoints = app.touchpoints().await;
    let id = || a.touchpoint_id.clone();
    hidden(
        &rpc("TouchpointService/GetTouchpoint"),
        touchpoints
            .get_touchpoint(authed(
                b_key,
                pb::GetTouchpointRequest {
                    id: id(),
                    code: String::new(),
                },
            ))
            .await,
    );
    let renamed = |id: String| pb::Touchpoint {
        id,
        display_name: "Taken over".into(),
        ..Default::default()
    };
    hidden(
        &rpc("TouchpointService/UpdateTouchpoint"),
        touchpoints
            .update_touchpoint(authed(
                b_key,
                pb::UpdateTouchpointRequest {
                    touchpoint: Some(renamed(id())),
                    update_mask: Some(FieldMask {
                        paths: vec!["display_name".into()],
                    }),
                },
            ))
            .await,
    );
    hidden(
        &rpc("TouchpointService/ArchiveTouchpoint"),
        touchpoints
            .archive_touchpoint(authed(b_key, pb::ArchiveTouchpointRequest { id: id() }))
            .await,
    );
    hidden(
        &rpc("TouchpointService/UnarchiveTouchpoint"),
        touchpoints
            .unarchive_touchpoint(authed(b_key, pb::UnarchiveTouchpointRequest { id: id() }))
            .await,
    );
    nothing_of_a(
        &rpc("TouchpointService/ListTouchpoints"),
        touchpoints
            .list_touchpoints(authed(
                b_key,
                pb::ListTouchpointsRequest {
                    show_archived: true,
                    ..Default::default()
                },
            ))
            .await,
        |r| r.touchpoints.is_empty(),
    );
    // B's own touchpoint, made with A's code, stays B's.
    touchpoints
        .create_touchpoint(authed(
            b_key,
            pb::CreateTouchpointRequest {
                touchpoint: Some(crate::helpers::touchpoint("reception-desk")),
            },
        ))
        .await
        .unwrap();
    rpc("TouchpointService/CreateTouchpoint");

    // Standards.
    let mut standards = app.standards().await;
    let sid = || a.standard_id.clone();
    hidden(
        &rpc("StandardService/GetStandard"),
        standards
            .get_standard(authed(
                b_key,
                pb::GetStandardRequest {
                    id: sid(),
                    code: String::new(),
                },
            ))
            .await,
    );
    hidden(
        &rpc("StandardService/UpdateStandard"),
        standards
            .update_standard(authed(
                b_key,
                pb::UpdateStandardRequest {
                    standard: Some(pb::Standard {
                        id: sid(),
                        title: "Taken over".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(FieldMask {
                        paths: vec!["title".into()],
                    }),
                },
            ))
            .await,
    );
    hidden(
        &rpc("StandardService/ArchiveStandard"),
        standards
            .archive_standard(authed(b_key, pb::ArchiveStandardRequest { id: sid() }))
            .await,
    );
    hidden(
        &rpc("StandardService/UnarchiveStandard"),
        standards
            .unarchive_standard(authed(b_key, pb::UnarchiveStandardRequest { id: sid() }))
            .await,
    );
    nothing_of_a(
        &rpc("StandardService/ListStandards"),
        standards
            .list_standards(authed(b_key, pb::ListStandardsRequest::default()))
            .await,
        |r| r.standards.iter().all(|s| s.id != a.standard_id),
    );
    nothing_of_a(
        &rpc("StandardService/CreateStandard"),
        standards
            .create_standard(authed(
                b_key,
                pb::CreateStandardRequest {
                    standard: Some(pb::Standard {
                        touchpoint_id: id(),
                        ..Default::default()
                    }),
                },
            ))
            .await,
        |_| false,
    );
    nothing_of_a(
        &rpc("StandardService/GetServiceManual"),
        standards
            .get_service_manual(authed(b_key, pb::GetServiceManualRequest::default()))
            .await,
        |r| {
            let manual = format!("{r:?}");
            !manual.contains(&a.standard_id) && !manual.contains(&a.touchpoint_id)
        },
    );

    // API keys.
    let mut keys = app.api_keys().await;
    hidden(
        &rpc("ApiKeyService/RevokeApiKey"),
        keys.revoke_api_key(authed(
            b_key,
            pb::RevokeApiKeyRequest {
                id: a.api_key_id.clone(),
            },
        ))
        .await,
    );
    nothing_of_a(
        &rpc("ApiKeyService/ListApiKeys"),
        keys.list_api_keys(authed(
            b_key,
            pb::ListApiKeysRequest {
                show_revoked: true,
                ..Default::default()
            },
        ))
        .await,
        |r| r.api_keys.iter().all(|k| k.id != a.api_key_id),
    );
    keys.create_api_key(authed(
        b_key,
        pb::CreateApiKeyRequest {
            display_name: "B's feed".into(),
            role: pb::Role::Ingest.into(),
        },
    ))
    .await
    .unwrap();
    rpc("ApiKeyService/CreateApiKey");

    // Organisations.
    let mut organisations = app.organisations().await;
    hidden(
        &rpc("OrganisationService/GetOrganisation"),
        organisations
            .get_organisation(authed(
                b_key,
                pb::GetOrganisationRequest {
                    id: a.organisation_id.to_string(),
                },
            ))
            .await,
    );
    hidden(
        &rpc("OrganisationService/UpdateOrganisation"),
        organisations
            .update_organisation(authed(
                b_key,
                pb::UpdateOrganisationRequest {
                    organisation: Some(pb::Organisation {
                        id: a.organisation_id.to_string(),
                        display_name: "Taken over".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(FieldMask {
                        paths: vec!["display_name".into()],
                    }),
                },
            ))
            .await,
    );

    // Journeys.
    let mut journeys = app.journeys().await;
    hidden(
        &rpc("JourneyService/GetJourney"),
        journeys
            .get_journey(authed(
                b_key,
                pb::GetJourneyRequest {
                    journey_id: a.journey_id.clone(),
                },
            ))
            .await,
    );
    // Feedback for A's journey id goes to B's journey of that id (journey
    // ids are each organisation's own): the fingerprint shows A's untouched.
    journeys
        .record_journey_feedback(authed(
            b_key,
            pb::RecordJourneyFeedbackRequest {
                journey_id: a.journey_id.clone(),
                feedback: Some(feedback(1)),
            },
        ))
        .await
        .unwrap();
    rpc("JourneyService/RecordJourneyFeedback");

    // Encounters.
    let mut encounters = app.encounters().await;
    hidden(
        &rpc("EncounterService/GetEncounter"),
        encounters
            .get_encounter(authed(
                b_key,
                pb::GetEncounterRequest {
                    id: a.encounter_id.clone(),
                },
            ))
            .await,
    );
    nothing_of_a(
        &rpc("EncounterService/ListEncounters"),
        encounters
            .list_encounters(authed(
                b_key,
                pb::ListEncountersRequest {
                    journey_id: a.journey_id.clone(),
                    ..Default::default()
                },
            ))
            .await,
        |r| r.encounters.is_empty(),
    );
    // B's key writes only into B: the same encounter lands in B, not A.
    let mut in_b = dissatisfied("reception-desk", "his", "a-1");
    in_b.customer_ref = a.customer_ref.clone();
    let stored = encounters
        .record_encounter(authed(
            b_key,
            pb::RecordEncounterRequest {
                encounter: Some(in_b.clone()),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!stored.duplicate, "B's encounter was taken for A's");
    rpc("EncounterService/RecordEncounter");
    let streamed = encounters
        .ingest_encounters(authed(
            b_key,
            tokio_stream::iter(vec![pb::IngestEncountersRequest {
                encounters: vec![pb::Encounter {
                    external_id: "a-3".into(),
                    ..in_b
                }],
            }]),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(streamed.accepted, 1);
    rpc("EncounterService/IngestEncounters");
    // Erasing A's customer reference with B's key erases B's encounters
    // only (the fingerprint shows A's are all there).
    encounters
        .erase_customer(authed(
            b_key,
            pb::EraseCustomerRequest {
                customer_ref: a.customer_ref.clone(),
            },
        ))
        .await
        .unwrap();
    rpc("EncounterService/EraseCustomer");

    // Recovery cases.
    let mut recovery = app.recovery().await;
    hidden(
        &rpc("RecoveryService/GetRecoveryCase"),
        recovery
            .get_recovery_case(authed(
                b_key,
                pb::GetRecoveryCaseRequest {
                    id: a.case_id.clone(),
                },
            ))
            .await,
    );
    hidden(
        &rpc("RecoveryService/UpdateRecoveryCase"),
        recovery
            .update_recovery_case(authed(
                b_key,
                pb::UpdateRecoveryCaseRequest {
                    recovery_case: Some(pb::RecoveryCase {
                        id: a.case_id.clone(),
                        assignee: "intruder".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(FieldMask {
                        paths: vec!["assignee".into()],
                    }),
                },
            ))
            .await,
    );
    nothing_of_a(
        &rpc("RecoveryService/ListRecoveryCases"),
        recovery
            .list_recovery_cases(authed(b_key, pb::ListRecoveryCasesRequest::default()))
            .await,
        |r| r.recovery_cases.iter().all(|c| c.id != a.case_id),
    );

    // Analyses, scoped to A's touchpoint over A's day.
    let scope = || {
        Some(pb::AnalysisScope {
            start_time: Some(Timestamp {
                seconds: 1_780_304_400 - 86_400,
                nanos: 0,
            }),
            end_time: Some(Timestamp {
                seconds: 1_780_304_400 + 86_400,
                nanos: 0,
            }),
            touchpoint_ids: vec![a.touchpoint_id.clone()],
            ..Default::default()
        })
    };
    let mut analyses = app.analyses().await;
    nothing_of_a(
        &rpc("AnalysisService/GetScorecard"),
        analyses
            .get_scorecard(authed(b_key, pb::GetScorecardRequest { scope: scope() }))
            .await,
        |r| r.no_data,
    );
    nothing_of_a(
        &rpc("AnalysisService/GetMotCycle"),
        analyses
            .get_mot_cycle(authed(
                b_key,
                pb::GetMotCycleRequest {
                    scope: scope(),
                    max_variants: 10,
                    ..Default::default()
                },
            ))
            .await,
        |r| r.no_data,
    );
    nothing_of_a(
        &rpc("AnalysisService/GetJourneyOutcomes"),
        analyses
            .get_journey_outcomes(authed(
                b_key,
                pb::GetJourneyOutcomesRequest { scope: scope() },
            ))
            .await,
        |r| r.no_data,
    );
    nothing_of_a(
        &rpc("AnalysisService/GetFirstImpressions"),
        analyses
            .get_first_impressions(authed(
                b_key,
                pb::GetFirstImpressionsRequest { scope: scope() },
            ))
            .await,
        |r| r.no_data,
    );
    nothing_of_a(
        &rpc("AnalysisService/GetPriorityMatrix"),
        analyses
            .get_priority_matrix(authed(
                b_key,
                pb::GetPriorityMatrixRequest { scope: scope() },
            ))
            .await,
        |r| r.no_data,
    );
    nothing_of_a(
        &rpc("AnalysisService/GetGuidelineBreakdown"),
        analyses
            .get_guideline_breakdown(authed(
                b_key,
                pb::GetGuidelineBreakdownRequest { scope: scope() },
            ))
            .await,
        |r| r.no_data,
    );
    nothing_of_a(
        &rpc("AnalysisService/GetTrend"),
        analyses
            .get_trend(authed(
                b_key,
                pb::GetTrendRequest {
                    scope: scope(),
                    figure: pb::TrendFigure::Encounters.into(),
                    granularity: pb::Granularity::Day.into(),
                    per_touchpoint: true,
                },
            ))
            .await,
        |r| r.no_data,
    );
    nothing_of_a(
        &rpc("AnalysisService/GetComplianceReport"),
        analyses
            .get_compliance_report(authed(
                b_key,
                pb::GetComplianceReportRequest { scope: scope() },
            ))
            .await,
        |r| r.no_data,
    );
    nothing_of_a(
        &rpc("AnalysisService/GetRecoveryPerformance"),
        analyses
            .get_recovery_performance(authed(
                b_key,
                pb::GetRecoveryPerformanceRequest { scope: scope() },
            ))
            .await,
        |r| r.no_data,
    );
    let export = analyses
        .export_event_log(authed(
            b_key,
            pb::ExportEventLogRequest {
                scope: scope(),
                format: pb::EventLogFormat::Csv.into(),
            },
        ))
        .await;
    rpc("AnalysisService/ExportEventLog");
    match export {
        Ok(response) => {
            let mut stream = response.into_inner();
            let mut log = Vec::new();
            while let Some(piece) = stream.message().await.unwrap() {
                log.extend(piece.chunk);
            }
            let log = String::from_utf8(log).unwrap();
            assert_eq!(
                log,
                "case_id,activity,timestamp,resource,activity_name,sequence\n"
            );
        }
        Err(status) => assert!(
            matches!(status.code(), Code::NotFound | Code::InvalidArgument),
            "{status:?}"
        ),
    }

    assert_eq!(app.fingerprint(a.organisation_id).await, before);
    assert_eq!(called, every_rpc(), "RPCs the sweep does not call");
}

#[tokio::test]
async fn page_tokens_work_only_for_their_organisation_query_and_bytes() {
    let app = spawn_app().await;
    let a_key = app.demo_key().await;
    let b = app.create_org("Hospital B").await;
    let page = |key: &str, token: &str| {
        let key = key.to_owned();
        let token = token.to_owned();
        let app = &app;
        async move {
            app.touchpoints()
                .await
                .list_touchpoints(authed(
                    &key,
                    pb::ListTouchpointsRequest {
                        page_size: 5,
                        page_token: token,
                        ..Default::default()
                    },
                ))
                .await
        }
    };
    let first = page(&a_key, "").await.unwrap().into_inner();
    let token = first.next_page_token;
    assert!(!token.is_empty());
    // A's own next page works.
    let second = page(&a_key, &token).await.unwrap().into_inner();
    assert_eq!(second.touchpoints.len(), 5);

    // B replays A's token with the same filters.
    let status = page(&b.admin_key, &token).await.unwrap_err();
    assert_eq!(crate::helpers::violated_fields(&status), ["page_token"]);
    assert!(
        status.message().contains("not a token returned"),
        "{status:?}"
    );

    // Any altered character is refused.
    for at in [3, token.len() / 2, token.len() - 2] {
        let mut altered: Vec<char> = token.chars().collect();
        altered[at] = if altered[at] == 'A' { 'B' } else { 'A' };
        let altered: String = altered.into_iter().collect();
        let status = page(&a_key, &altered).await.unwrap_err();
        assert_eq!(crate::helpers::violated_fields(&status), ["page_token"]);
    }

    // A token of another method's query.
    let status = app
        .standards()
        .await
        .list_standards(authed(
            &a_key,
            pb::ListStandardsRequest {
                page_token: token.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(crate::helpers::violated_fields(&status), ["page_token"]);
}

// The HTTP door: every route of the route table, every binding.

/// Which roles may call each RPC: the role matrix of `app/access.rs`,
/// written out again here so that neither door can drift from it.
fn allowed_roles(method: &str) -> Option<&'static [Role]> {
    const EVERY_ROLE: &[Role] = &[Role::Ingest, Role::Analyst, Role::Admin];
    const READERS: &[Role] = &[Role::Analyst, Role::Admin];
    const FEEDS: &[Role] = &[Role::Ingest, Role::Admin];
    const ADMINS: &[Role] = &[Role::Admin];
    Some(match method {
        "GetTouchpoint" | "ListTouchpoints" => EVERY_ROLE,
        "RecordEncounter" | "IngestEncounters" | "RecordJourneyFeedback" => FEEDS,
        "GetStandard"
        | "ListStandards"
        | "GetServiceManual"
        | "GetEncounter"
        | "ListEncounters"
        | "GetJourney"
        | "ListRecoveryCases"
        | "GetRecoveryCase"
        | "WatchRecoveryCases"
        | "GetOrganisation"
        | "GetScorecard"
        | "GetMotCycle"
        | "GetJourneyOutcomes"
        | "GetFirstImpressions"
        | "GetPriorityMatrix"
        | "ExportEventLog"
        | "GetGuidelineBreakdown"
        | "GetTrend"
        | "GetComplianceReport"
        | "GetRecoveryPerformance" => READERS,
        "CreateTouchpoint"
        | "UpdateTouchpoint"
        | "ArchiveTouchpoint"
        | "UnarchiveTouchpoint"
        | "CreateStandard"
        | "UpdateStandard"
        | "ArchiveStandard"
        | "UnarchiveStandard"
        | "EraseCustomer"
        | "UpdateRecoveryCase"
        | "CreateApiKey"
        | "ListApiKeys"
        | "RevokeApiKey"
        | "UpdateOrganisation" => ADMINS,
        _ => return None,
    })
}

/// The request the sweep sends to a route ("METHOD /template"), aimed at
/// `a`'s resources: valid, so that only the caller decides the answer.
/// `None` for a route the sweep does not know, which fails
/// `the_http_sweep_calls_every_route_of_the_route_table`.
fn request_for(route: &str, a: &Target) -> Option<Value> {
    let scope = json!({"startTime": "2026-05-31T09:00:00Z", "endTime": "2026-06-02T09:00:00Z",
                       "touchpointIds": [a.touchpoint_id]});
    let encounter = |external_id: &str| {
        json!({"touchpointCode": a.touchpoint_code, "journeyId": a.journey_id,
               "customerRef": a.customer_ref, "occurTime": "2026-06-01T09:00:00Z",
               "satisfaction": 1, "source": "his", "externalId": external_id})
    };
    Some(match route {
        "POST /v1/touchpoints" => json!({"touchpoint": {
            "code": a.touchpoint_code, "displayName": "Taken over", "stage": "STAGE_SERVICE",
            "channel": "CHANNEL_IN_PERSON", "occurrence": "OCCURRENCE_ROUTINE"}}),
        "GET /v1/touchpoints/{code}" => json!({"code": a.touchpoint_code}),
        "GET /v1/touchpoints:lookup" => json!({"id": a.touchpoint_id}),
        "GET /v1/touchpoints" => json!({"showArchived": true}),
        "PATCH /v1/touchpoints/{touchpoint.id}" => json!({
            "touchpoint": {"id": a.touchpoint_id, "displayName": "Taken over"},
            "updateMask": "displayName"}),
        "POST /v1/touchpoints/{id}:archive" | "POST /v1/touchpoints/{id}:unarchive" => {
            json!({"id": a.touchpoint_id})
        }
        "POST /v1/standards" => json!({"standard": {
            "code": "taken-over", "title": "Taken over", "touchpointId": a.touchpoint_id,
            "element": "ELEMENT_HARDWARE", "severity": "SEVERITY_MINOR", "observedRule": {}}}),
        "GET /v1/standards/{code}" => json!({"code": a.standard_code}),
        "GET /v1/standards:lookup" => json!({"id": a.standard_id}),
        "GET /v1/standards" => json!({}),
        "PATCH /v1/standards/{standard.id}" => json!({
            "standard": {"id": a.standard_id, "title": "Taken over"}, "updateMask": "title"}),
        "POST /v1/standards/{id}:archive" | "POST /v1/standards/{id}:unarchive" => {
            json!({"id": a.standard_id})
        }
        "GET /v1/serviceManual" => json!({}),
        "POST /v1/apiKeys" => json!({"displayName": "Taken over", "role": "ROLE_INGEST"}),
        "GET /v1/apiKeys" => json!({"showRevoked": true}),
        "POST /v1/apiKeys/{id}:revoke" => json!({"id": a.api_key_id}),
        "GET /v1/organisation" => json!({}),
        "GET /v1/organisations/{id}" => json!({"id": a.organisation_id.to_string()}),
        "PATCH /v1/organisation" => json!({
            "organisation": {"id": a.organisation_id.to_string(), "displayName": "Taken over"},
            "updateMask": "displayName"}),
        "POST /v1/journeys/{journey_id}:recordFeedback" => json!({
            "journeyId": a.journey_id,
            "feedback": {"overallSatisfaction": 1, "completeTime": "2026-06-01T10:00:00Z"}}),
        "GET /v1/journeys/{journey_id}" => json!({"journeyId": a.journey_id}),
        "POST /v1/encounters" => json!({"encounter": encounter("a-1")}),
        "POST /v1/encounters:ingest" => json!([{"encounters": [encounter("a-3")]}]),
        "GET /v1/encounters/{id}" => json!({"id": a.encounter_id}),
        "GET /v1/encounters" | "POST /v1/encounters:search" => {
            json!({"journeyId": a.journey_id, "customerRef": a.customer_ref})
        }
        "POST /v1/customers:erase" => json!({"customerRef": a.customer_ref}),
        "GET /v1/recoveryCases" => json!({"touchpointId": a.touchpoint_id}),
        "GET /v1/recoveryCases/{id}" => json!({"id": a.case_id}),
        "PATCH /v1/recoveryCases/{recovery_case.id}" => json!({
            "recoveryCase": {"id": a.case_id, "assignee": "intruder"},
            "updateMask": "assignee"}),
        "GET /v1/recoveryCases:watch" => json!({"touchpointId": a.touchpoint_id}),
        "GET /v1/analyses/scorecard"
        | "GET /v1/analyses/journeyOutcomes"
        | "GET /v1/analyses/firstImpressions"
        | "GET /v1/analyses/priorityMatrix"
        | "GET /v1/analyses/guidelineBreakdown"
        | "GET /v1/analyses/complianceReport"
        | "GET /v1/analyses/recoveryPerformance" => json!({"scope": scope}),
        "GET /v1/analyses/motCycle" => json!({"scope": scope, "maxVariants": 10}),
        "GET /v1/analyses/trend" => json!({"scope": scope, "figure": "TREND_FIGURE_ENCOUNTERS",
                                           "granularity": "GRANULARITY_DAY",
                                           "perTouchpoint": true}),
        "GET /v1/analyses/eventLog" => json!({"scope": scope, "format": "EVENT_LOG_FORMAT_CSV"}),
        _ => return None,
    })
}

/// A target of ids that name nothing, for calls that never get that far.
fn nobodys() -> Target {
    let id = "0190f3a0-0000-7000-8000-0000000000ff".to_owned();
    Target {
        organisation_id: Uuid::parse_str(&id).unwrap(),
        touchpoint_id: id.clone(),
        touchpoint_code: "reception-desk".into(),
        standard_id: id.clone(),
        standard_code: "greet".into(),
        encounter_id: id.clone(),
        case_id: id.clone(),
        journey_id: "visit-1".into(),
        api_key_id: id,
        customer_ref: "patient-7".into(),
    }
}

/// Calls `route` over HTTP. A watch that opens is not read: its answer
/// is its status and content type.
async fn call_route(doors: &Doors, route: &Route, key: Option<&str>, request: &Value) -> Answer {
    let response = doors.send(&http_request(route, request), key).await;
    if route.shape == Shape::EventsOut && response.status().is_success() {
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        return Answer {
            status: response.status(),
            content_type,
            json: Value::Null,
            text: String::new(),
        };
    }
    answer(response).await
}

/// What a successful answer of `route` must be: JSON, an event stream, or
/// a CSV file.
#[track_caller]
fn assert_answer_form(route: &Route, answer: &Answer) {
    let expected = match route.shape {
        Shape::EventsOut => "text/event-stream",
        Shape::FileOut => "text/csv",
        Shape::Unary | Shape::LinesIn => "application/json",
    };
    assert!(
        answer.content_type.starts_with(expected),
        "{}: answered {} rather than {expected}",
        route_name(route),
        answer.content_type
    );
}

#[test]
fn the_http_sweep_calls_every_route_of_the_route_table() {
    let target = nobodys();
    let mut unknown = Vec::new();
    for route in route_table().routes() {
        let name = route_name(route);
        if request_for(&name, &target).is_none() {
            unknown.push(name);
        }
        if allowed_roles(route.method.name()).is_none() {
            unknown.push(format!(
                "{} (no row in the role matrix)",
                route.method.name()
            ));
        }
    }
    assert!(
        unknown.is_empty(),
        "routes the HTTP sweep does not call: {unknown:?}"
    );
    // Each RPC's routes, additional bindings included, are in the table.
    let rpcs: BTreeSet<String> = route_table()
        .routes()
        .iter()
        .map(|route| {
            format!(
                "{}/{}",
                route.method.parent_service().name(),
                route.method.name()
            )
        })
        .collect();
    assert_eq!(rpcs, every_rpc());
    for additional in [
        "GET /v1/touchpoints:lookup",
        "GET /v1/standards:lookup",
        "POST /v1/encounters:search",
        "GET /v1/organisations/{id}",
    ] {
        assert!(
            route_table()
                .routes()
                .iter()
                .any(|route| route_name(route) == additional && !route.primary),
            "{additional} is not an additional binding"
        );
    }
}

#[tokio::test]
async fn every_route_and_every_rpc_refuse_a_call_without_a_key() {
    // Arrange
    let app = spawn_app().await;
    let doors = app.doors().await;
    let target = nobodys();

    for route in route_table().routes() {
        let name = route_name(route);
        let request = request_for(&name, &target).unwrap();

        // Act
        let over_http = call_route(&doors, route, None, &request).await;
        let over_grpc = doors.grpc(route.method.name(), None, &request).await;

        // Assert
        assert_eq!(over_http.status, 401, "{name}: {}", over_http.text);
        assert_error_shape(&over_http, &name);
        assert_eq!(over_http.code(), "UNAUTHENTICATED", "{name}");
        let refusal = over_grpc.expect_err(&name);
        assert_eq!(refusal.code, "UNAUTHENTICATED", "{name}");
        assert_eq!(refusal.reason, over_http.reason(), "{name}");
    }
}

#[tokio::test]
async fn every_route_and_every_rpc_admit_exactly_the_roles_of_the_matrix() {
    // Arrange
    let app = spawn_app().await;
    let (admin, a) = arrange_a(&app).await;
    let demo = Org {
        id: a.organisation_id,
        admin_key: admin.clone(),
    };
    let keys = [
        (Role::Ingest, app.key(&demo, Role::Ingest).await),
        (Role::Analyst, app.key(&demo, Role::Analyst).await),
        (Role::Admin, admin),
    ];
    let doors = app.doors().await;

    for route in route_table().routes() {
        let name = route_name(route);
        let rpc = route.method.name();
        let request = request_for(&name, &a).unwrap();
        let allowed = allowed_roles(rpc).unwrap();
        for (role, key) in &keys {
            // Act
            let over_http = call_route(&doors, route, Some(key), &request).await;
            let over_grpc = doors.grpc(rpc, Some(key), &request).await;

            // Assert
            let what = format!("{name} with an {role} key");
            if allowed.contains(role) {
                assert!(
                    !matches!(over_http.status.as_u16(), 401 | 403 | 500..),
                    "{what}: {} {}",
                    over_http.status,
                    over_http.text
                );
                if over_http.status.is_success() {
                    assert_answer_form(route, &over_http);
                } else {
                    assert_error_shape(&over_http, &what);
                }
                if let Err(refusal) = &over_grpc {
                    assert!(
                        !matches!(
                            refusal.code.as_str(),
                            "UNAUTHENTICATED" | "PERMISSION_DENIED" | "INTERNAL" | "UNKNOWN"
                        ),
                        "{what} over gRPC: {refusal:?}"
                    );
                }
            } else {
                assert_eq!(over_http.status, 403, "{what}: {}", over_http.text);
                assert_error_shape(&over_http, &what);
                assert_eq!(
                    (over_http.code(), over_http.reason().as_str()),
                    ("PERMISSION_DENIED", "ROLE_NOT_ALLOWED"),
                    "{what}"
                );
                let refusal = over_grpc.expect_err(&format!("{what} over gRPC"));
                assert_eq!(
                    (refusal.code.as_str(), refusal.reason.as_str()),
                    ("PERMISSION_DENIED", "ROLE_NOT_ALLOWED"),
                    "{what} over gRPC"
                );
            }
        }
    }
}

#[tokio::test]
async fn organisation_bs_key_finds_and_changes_nothing_of_organisation_as_by_any_route() {
    // Arrange
    let app = spawn_app().await;
    let (_, a) = arrange_a(&app).await;
    let b = app.create_org("Hospital B").await;
    let doors = app.doors().await;
    let mut owner = app.owner_connection().await;
    let mut as_uuids: Vec<String> = vec![a.organisation_id.to_string()];
    for table in [
        "touchpoint",
        "standard",
        "standard_revision",
        "encounter",
        "recovery_case",
        "api_key",
    ] {
        let ids: Vec<Uuid> = sqlx::query_scalar(&format!(
            "select id from {table} where organisation_id = $1"
        ))
        .bind(a.organisation_id)
        .fetch_all(&mut owner)
        .await
        .unwrap();
        assert!(!ids.is_empty(), "A has no {table} rows to guard");
        as_uuids.extend(ids.iter().map(Uuid::to_string));
    }
    let before = app.fingerprint(a.organisation_id).await;

    for route in route_table().routes() {
        let name = route_name(route);
        let request = request_for(&name, &a).unwrap();

        // Act
        let answer = call_route(&doors, route, Some(&b.admin_key), &request).await;

        // Assert
        let status = answer.status.as_u16();
        if answer.status.is_success() {
            assert_answer_form(route, &answer);
            let text = answer.text.to_ascii_lowercase();
            let leaked: Vec<&String> = as_uuids.iter().filter(|id| text.contains(*id)).collect();
            assert!(
                leaked.is_empty() && !answer.text.contains("Verdad Demo Hospital"),
                "{name} answered B with A's data {leaked:?}: {}",
                answer.text
            );
        } else {
            assert_error_shape(&answer, &name);
            assert!(
                matches!(status, 400 | 403 | 404 | 409),
                "{name}: {status} {}",
                answer.text
            );
        }
    }

    assert_eq!(
        app.fingerprint(a.organisation_id).await,
        before,
        "B's calls changed A's rows"
    );
}
