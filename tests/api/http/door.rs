//! The HTTP/JSON door itself: its routes, the JSON mapping, its errors and
//! limits, and its OpenAPI document.

use std::path::PathBuf;

use reqwest::{Method, StatusCode};
use serde_json::json;
use verdad::domain::role::Role;

use crate::helpers::{spawn_app, spawn_app_with};

/// Set (to anything) to write `docs/openapi.json` instead of checking it.
const WRITE: &str = "VERDAD_WRITE_OPENAPI";

#[tokio::test]
async fn the_openapi_document_is_served_without_a_key_and_is_the_committed_one() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let served = app.http_anonymous().get("/openapi.json").await;

    // Assert
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.json["openapi"], "3.0.3");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    if std::env::var_os(WRITE).is_some() {
        std::fs::write(&path, &served.text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == served.text,
        "docs/openapi.json is not the document the protos make: write it anew with \
         `{WRITE}=1 cargo test --test api openapi` (or `verdad openapi > docs/openapi.json`) \
         and commit it"
    );
}

#[tokio::test]
async fn a_touchpoint_is_created_read_changed_and_archived_over_http() {
    // Arrange
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let http = app.http(&org.admin_key);

    // Act
    let created = http
        .post(
            "/v1/touchpoints",
            json!({"code": "desk", "displayName": "Front desk", "stage": "STAGE_SERVICE",
                   "channel": "CHANNEL_IN_PERSON", "occurrence": "OCCURRENCE_ROUTINE"}),
        )
        .await;
    let id = created.json["touchpoint"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_code = http.get("/v1/touchpoints/desk").await;
    let by_id = http.get(&format!("/v1/touchpoints:lookup?id={id}")).await;
    let changed = http
        .patch(
            &format!("/v1/touchpoints/{id}?updateMask=display_name"),
            json!({"displayName": "Reception", "description": "not in the mask"}),
        )
        .await;
    let archived = http
        .post(&format!("/v1/touchpoints/{id}:archive"), json!({}))
        .await;
    let listed = http
        .get("/v1/touchpoints?showArchived=true&pageSize=10")
        .await;

    // Assert
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_eq!(created.content_type, "application/json");
    assert_eq!(by_code.json, created.json);
    assert_eq!(by_id.json, created.json);
    assert_eq!(changed.json["touchpoint"]["displayName"], "Reception");
    assert!(changed.json["touchpoint"].get("description").is_none());
    assert!(archived.json["touchpoint"]["archiveTime"].is_string());
    assert_eq!(listed.json["touchpoints"][0]["id"], id.as_str());
}

#[tokio::test]
async fn errors_are_google_rpc_status_with_the_http_status_of_their_code() {
    // Arrange
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let admin = app.http(&org.admin_key);
    let analyst = app.http(&app.key(&org, Role::Analyst).await);

    // Act
    let anonymous = app.http_anonymous().get("/v1/touchpoints").await;
    let wrong_key = app.http("vd_not-a-key").get("/v1/touchpoints").await;
    let missing = admin.get("/v1/touchpoints/nowhere").await;
    let no_route = admin.get("/v1/nowhere").await;
    let denied = analyst
        .post("/v1/touchpoints", json!({"code": "x", "displayName": "X"}))
        .await;
    let taken = admin
        .post(
            "/v1/touchpoints",
            json!({"code": "desk", "displayName": "Desk", "stage": "STAGE_SERVICE",
                   "channel": "CHANNEL_IN_PERSON", "occurrence": "OCCURRENCE_ROUTINE"}),
        )
        .await;
    let invalid = admin
        .post("/v1/touchpoints", json!({"displayName": "No code"}))
        .await;
    let wrong_method = admin
        .send(Method::DELETE, "/v1/touchpoints", json!({}))
        .await;

    // Assert
    for (answer, status, code, reason) in [
        (&anonymous, 401, "UNAUTHENTICATED", "API_KEY_MISSING"),
        (&wrong_key, 401, "UNAUTHENTICATED", "API_KEY_INVALID"),
        (&missing, 404, "NOT_FOUND", "NOT_FOUND"),
        (&no_route, 404, "NOT_FOUND", "NOT_FOUND"),
        (&denied, 403, "PERMISSION_DENIED", "ROLE_NOT_ALLOWED"),
        (&taken, 409, "ALREADY_EXISTS", "ALREADY_EXISTS"),
        (&invalid, 400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"),
        (&wrong_method, 405, "UNIMPLEMENTED", "METHOD_NOT_ALLOWED"),
    ] {
        assert_eq!(answer.status.as_u16(), status, "{}", answer.text);
        assert_eq!(answer.json["error"]["code"], status, "{}", answer.text);
        assert_eq!(answer.code(), code, "{}", answer.text);
        assert_eq!(answer.reason(), reason, "{}", answer.text);
        assert_eq!(answer.content_type, "application/json");
    }
    assert!(
        invalid
            .violated_fields()
            .contains(&"touchpoint.code".to_owned())
    );
}

#[tokio::test]
async fn json_the_mapping_cannot_read_is_refused_naming_the_field_and_writes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let http = app.http(&org.admin_key);
    let encounter = |extra: serde_json::Value| {
        let mut body = json!({"touchpointCode": "desk", "journeyId": "v-1", "source": "kiosk",
                              "externalId": "e-1", "occurTime": "2026-06-01T09:00:00Z"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };

    // Act
    let wrong_type = http
        .post("/v1/encounters", encounter(json!({"satisfaction": "very"})))
        .await;
    let unknown = http
        .post("/v1/encounters", encounter(json!({"mood": "grumpy"})))
        .await;
    let bad_time = http
        .post(
            "/v1/encounters",
            encounter(json!({"occurTime": "yesterday"})),
        )
        .await;
    let malformed = http
        .send_raw(
            Method::POST,
            "/v1/encounters",
            "application/json",
            "{\"touchpointCode\": ",
        )
        .await;
    let not_json = http
        .send_raw(
            Method::POST,
            "/v1/encounters",
            "application/x-www-form-urlencoded",
            "touchpointCode=desk",
        )
        .await;
    let bad_query = http.get("/v1/encounters?pageSize=lots").await;
    let unknown_query = http.get("/v1/encounters?colour=red").await;

    // Assert
    assert_eq!(wrong_type.violated_fields(), ["encounter.satisfaction"]);
    assert_eq!(unknown.violated_fields(), ["encounter"]);
    assert!(unknown.text.contains("mood"), "{}", unknown.text);
    assert_eq!(bad_time.violated_fields(), ["encounter.occurTime"]);
    assert_eq!(malformed.violated_fields(), ["encounter"]);
    assert_eq!(bad_query.violated_fields(), ["pageSize"]);
    assert_eq!(unknown_query.violated_fields(), ["colour"]);
    for answer in [
        &wrong_type,
        &unknown,
        &bad_time,
        &malformed,
        &bad_query,
        &unknown_query,
    ] {
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
        assert_eq!(answer.code(), "INVALID_ARGUMENT");
    }
    assert_eq!(not_json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(not_json.reason(), "UNSUPPORTED_MEDIA_TYPE");
    assert_eq!(app.count_encounters(&org.admin_key).await, 0);
}

#[tokio::test]
async fn a_body_over_the_message_limit_is_refused_with_413_before_it_is_read() {
    // Arrange
    let app = spawn_app_with(|s| s.max_message_bytes = 64 * 1024).await;
    let (org, _desk) = app.org_with_desk().await;
    let http = app.http(&org.admin_key);
    let huge = json!({"touchpointCode": "desk", "journeyId": "v-1", "source": "kiosk",
                      "externalId": "x".repeat(100 * 1024)});

    // Act
    let refused = http.post("/v1/encounters", huge).await;

    // Assert
    assert_eq!(
        refused.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        refused.text
    );
    assert_eq!(refused.code(), "RESOURCE_EXHAUSTED");
    assert_eq!(refused.reason(), "MESSAGE_TOO_LARGE");
    assert_eq!(app.count_encounters(&org.admin_key).await, 0);
}

#[tokio::test]
async fn http2_clients_reach_the_same_routes() {
    // Arrange
    let app = spawn_app().await;
    let (org, desk) = app.org_with_desk().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();

    // Act
    let response = client
        .get(format!("http://{}/v1/touchpoints/desk", app.addr))
        .bearer_auth(&org.admin_key)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["touchpoint"]["id"], desk.id.as_str());
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_cut_by_the_request_timeout() {
    // Arrange
    let app = spawn_app_with(|s| s.request_timeout = std::time::Duration::from_millis(500)).await;
    let (org, _desk) = app.org_with_desk().await;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<&'static str, std::io::Error>>(1);
    sender.send(Ok("{\"touchpointCode\": ")).await.unwrap();
    let trickle = reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(receiver));

    // Act: the rest of the body never comes.
    let answer = app
        .http(&org.admin_key)
        .send_raw(Method::POST, "/v1/encounters", "application/json", trickle)
        .await;

    // Assert
    assert_eq!(
        answer.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        answer.text
    );
    assert_eq!(answer.code(), "DEADLINE_EXCEEDED");
    assert_eq!(app.count_encounters(&org.admin_key).await, 0);
    drop(sender);
}
