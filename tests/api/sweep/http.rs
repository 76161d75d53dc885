//! The sweep through the HTTP door: every route of the route table, every
//! binding, for tenancy, keys and roles.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use uuid::Uuid;
use verdad::{
    domain::role::Role,
    http::routes::{Route, Shape},
};

use super::{Target, arrange_a, every_rpc};
use crate::helpers::{
    Answer, Doors, Org, answer, assert_error_shape, demo_fhir_feed, fhir_file, http_request,
    route_name, route_table, spawn_app,
};

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
        | "GetMotCycleDiagram"
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
        | "AcknowledgeRecoveryCase"
        | "CreateApiKey"
        | "ListApiKeys"
        | "RevokeApiKey"
        | "UpdateOrganisation"
        | "CreateFeed"
        | "GetFeed"
        | "ListFeeds"
        | "UpdateFeed"
        | "ArchiveFeed"
        | "ListFeedRejections"
        | "PreviewFeedMessage"
        | "CreateWebhook"
        | "GetWebhook"
        | "ListWebhooks"
        | "UpdateWebhook"
        | "DeleteWebhook"
        | "RotateWebhookSecret"
        | "ListWebhookDeliveries"
        | "RedeliverWebhookEvent" => ADMINS,
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
        "POST /v1/recoveryCases/{id}:acknowledge" => json!({"id": a.case_id}),
        "GET /v1/analyses/scorecard"
        | "GET /v1/analyses/journeyOutcomes"
        | "GET /v1/analyses/firstImpressions"
        | "GET /v1/analyses/priorityMatrix"
        | "GET /v1/analyses/guidelineBreakdown"
        | "GET /v1/analyses/complianceReport"
        | "GET /v1/analyses/recoveryPerformance" => json!({"scope": scope}),
        "GET /v1/analyses/motCycle" => json!({"scope": scope, "maxVariants": 10}),
        "GET /v1/analyses/motCycleDiagram" => {
            json!({"scope": scope, "format": "DIAGRAM_FORMAT_DOT"})
        }
        "GET /v1/analyses/trend" => json!({"scope": scope, "figure": "TREND_FIGURE_ENCOUNTERS",
                                           "granularity": "GRANULARITY_DAY",
                                           "perTouchpoint": true}),
        "GET /v1/analyses/eventLog" => json!({"scope": scope, "format": "EVENT_LOG_FORMAT_CSV"}),
        "POST /v1/feeds" => json!({"feed": {"code": "taken-over", "displayName": "Taken over",
                                             "hl7v2": {"sendingApplication": "INTRUDER",
                                                       "rules": [{"event": "A04",
                                                                  "touchpointCode": a.touchpoint_code}]}}}),
        "GET /v1/feeds/{id}" | "POST /v1/feeds/{id}:archive" => json!({"id": a.feed_id}),
        "GET /v1/feeds" => json!({"showArchived": true}),
        "PATCH /v1/feeds/{feed.id}" => json!({
            "feed": {"id": a.feed_id, "displayName": "Taken over"}, "updateMask": "displayName"}),
        "GET /v1/feeds/{feed_id}/rejections" => json!({"feedId": a.feed_id}),
        "POST /v1/feeds/{feed_id}:preview" => json!({"feedId": a.feed_id,
            "message": "MSH|^~\\&|EPIC|MAIN|||20261201||ADT^A04|X1|P|2.5\r"}),
        "POST /v1/webhooks" => json!({"webhook": {"url": "https://intruder.example.org/",
                                                  "eventTypes": ["recovery_case.opened"]}}),
        "GET /v1/webhooks/{id}" | "DELETE /v1/webhooks/{id}" => json!({"id": a.webhook_id}),
        "GET /v1/webhooks" => json!({"pageSize": 50}),
        "PATCH /v1/webhooks/{webhook.id}" => json!({
            "webhook": {"id": a.webhook_id, "url": "https://intruder.example.org/"},
            "updateMask": "url"}),
        "POST /v1/webhooks/{id}:rotateSecret" => json!({"id": a.webhook_id}),
        "GET /v1/webhooks/{webhook_id}/deliveries" => json!({"webhookId": a.webhook_id}),
        "POST /v1/webhooks/{webhook_id}:redeliverEvent" => json!({"webhookId": a.webhook_id,
            "eventId": "msg_0190f3a0000070008000000000000001"}),
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
        api_key_id: id.clone(),
        customer_ref: "patient-7".into(),
        feed_id: id.clone(),
        webhook_id: id,
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

/// The FHIR door's routes, which are no RPC's: B's keys of every role, and
/// no key, sent at A's FHIR feed by its code. Nothing is found, nothing of
/// A's changes, and the roles are the matrix's (ReceiveFhirEncounters:
/// ingest and admin).
#[tokio::test]
async fn the_fhir_routes_keep_tenancy_and_roles() {
    // Arrange
    let app = spawn_app().await;
    let (a_key, a) = arrange_a(&app).await;
    app.create_feed(&a_key, demo_fhir_feed()).await;
    let b = app.create_org("Hospital B").await;
    let before = app.fingerprint(a.organisation_id).await;
    let bundle = serde_json::json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": serde_json::from_slice::<Value>(&fhir_file("encounter.json")).unwrap(),
         "request": {"method": "POST", "url": "Encounter"}}]});
    let routes = [
        ("/Encounter", fhir_file("encounter.json")),
        ("", serde_json::to_vec(&bundle).unwrap()),
    ];

    for (path, body) in &routes {
        // Act and assert: B's keys find no feed of that code.
        for role in [Role::Ingest, Role::Admin] {
            let b_key = app.key(&b, role).await;
            let answer = app
                .fhir_post(&b_key, path, Some("ehr-fhir"), body.clone())
                .await;
            assert_eq!(answer.status, 404, "{path} {role:?}: {:?}", answer.body);
            assert_eq!(answer.body["resourceType"], "OperationOutcome");
        }
        // A's analyst may not send; nobody without a key may.
        let analyst = app
            .key(
                &Org {
                    id: a.organisation_id,
                    admin_key: a_key.clone(),
                },
                Role::Analyst,
            )
            .await;
        let denied = app
            .fhir_post(&analyst, path, Some("ehr-fhir"), body.clone())
            .await;
        assert_eq!(denied.status, 403, "{path}: {:?}", denied.body);
        let anonymous = app
            .fhir_post("", path, Some("ehr-fhir"), body.clone())
            .await;
        assert_eq!(anonymous.status, 401, "{path}: {:?}", anonymous.body);
    }

    let mut after = app.fingerprint(a.organisation_id).await;
    // The analyst key made above is A's own doing, not B's.
    after.retain(|(table, _, _)| table != "api_key");
    let mut before = before;
    before.retain(|(table, _, _)| table != "api_key");
    assert_eq!(after, before, "a FHIR request of B changed A's rows");
}
