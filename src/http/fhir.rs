//! The FHIR R4 door: `POST /fhir/r4/Encounter` (one Encounter) and
//! `POST /fhir/r4` (a batch or transaction Bundle), with an ingest key as
//! bearer and the feed named by the `x-verdad-feed` header or the `feed`
//! query parameter; and `GET /fhir/r4/metadata`, the CapabilityStatement
//! engines ask for before they send. Answers and errors are FHIR
//! resources (OperationOutcome, response Bundles), never `google.rpc`
//! statuses.

use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use serde_json::{Value, json};
use tonic::{Code, body::Body};

use super::Door;
use crate::{
    app::fhir_feed::{FhirAnswer, FhirRequest, fhir_status},
    domain::fhir::{Issue, IssueType, operation_outcome},
    error::Error,
    telemetry::{self, meters},
};

/// Where the FHIR base is.
pub const BASE: &str = "/fhir/r4";
/// The header that names the feed.
const FEED_HEADER: &str = "x-verdad-feed";
const FHIR_JSON: &str = "application/fhir+json";

/// Whether `path` is the FHIR door's.
pub fn is_fhir(path: &str) -> bool {
    path == BASE || path.starts_with("/fhir/r4/")
}

/// What the path asks for.
enum Interaction {
    Create,
    Bundle,
    Metadata,
}

impl Door {
    pub(super) async fn fhir(&self, request: http::Request<Body>) -> http::Response<Body> {
        let start = Instant::now();
        let (parts, body) = request.into_parts();
        let path = parts.uri.path().trim_end_matches('/');
        let interaction = match (&parts.method, path) {
            (&http::Method::GET, "/fhir/r4/metadata") => Interaction::Metadata,
            (&http::Method::POST, "/fhir/r4/Encounter") => Interaction::Create,
            (&http::Method::POST, BASE) => Interaction::Bundle,
            (_, "/fhir/r4/metadata" | "/fhir/r4/Encounter" | BASE) => {
                return answer_issue(
                    405,
                    IssueType::NotSupported,
                    format!("{} is not supported here", parts.method),
                    start,
                );
            }
            _ => {
                return answer_issue(
                    404,
                    IssueType::NotSupported,
                    "Verdad takes Encounters (POST [base]/Encounter) and batch or transaction \
                     Bundles (POST [base]) only"
                        .to_owned(),
                    start,
                );
            }
        };
        if let Interaction::Metadata = interaction {
            return fhir_response(200, &capability_statement());
        }
        let caller = match crate::auth::authenticate(&self.pool, &self.keys, &parts.headers).await {
            Ok(caller) => caller,
            Err(error) => return answer_error(&error, start),
        };
        if !is_fhir_json(&parts.headers) {
            return answer_issue(
                415,
                IssueType::NotSupported,
                format!("the body must be {FHIR_JSON}"),
                start,
            );
        }
        let bytes: Bytes = match self.read_body(&parts, body).await {
            Ok(bytes) => bytes,
            Err(status) => {
                let code = if status.code() == Code::ResourceExhausted {
                    413
                } else {
                    400
                };
                return answer_issue(
                    code,
                    IssueType::TooCostly,
                    status.message().to_owned(),
                    start,
                );
            }
        };
        let feed = feed_code(&parts);
        let request = match interaction {
            Interaction::Create => FhirRequest::Encounter(bytes),
            _ => FhirRequest::Bundle(bytes),
        };
        let answer = self.app.receive_fhir(&caller, feed, request).await;
        let minimal = prefers_minimal(&parts.headers);
        match answer {
            Ok(FhirAnswer { status, body }) => {
                finished(status, start);
                if minimal && status < 300 {
                    return fhir_empty(status);
                }
                fhir_response(status, &body)
            }
            Err(error) => answer_error(&error, start),
        }
    }
}

/// The feed the request names: the header, else the query parameter.
fn feed_code(parts: &http::request::Parts) -> crate::error::Result<String> {
    let header = parts
        .headers
        .get(FEED_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let query = parts.uri.query().and_then(|query| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "feed")
            .map(|(_, value)| value.into_owned())
    });
    match header.or(query) {
        Some(code) if !code.trim().is_empty() => Ok(code.trim().to_owned()),
        _ => Err(Error::invalid(
            FEED_HEADER,
            "is required: name the feed by the x-verdad-feed header or the feed query parameter",
        )),
    }
}

/// `application/fhir+json` (or plain JSON, which engines also send).
fn is_fhir_json(headers: &http::HeaderMap) -> bool {
    super::media_type(headers).is_some_and(|essence| {
        essence == FHIR_JSON || essence == "application/json" || essence == "application/json+fhir"
    })
}

fn prefers_minimal(headers: &http::HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split([',', ';']))
        .any(|part| part.trim().eq_ignore_ascii_case("return=minimal"))
}

/// An error of the core as FHIR answers it: the HTTP status of its kind
/// and an OperationOutcome saying what the gRPC door's message says.
fn answer_error(error: &Error, start: Instant) -> http::Response<Body> {
    let (status, issue) = fhir_status(error);
    if status >= 500 {
        tracing::error!(%error, "a FHIR request failed");
    }
    answer_issue(status, issue, error.public_message(), start)
}

fn answer_issue(
    status: u16,
    code: IssueType,
    diagnostics: String,
    start: Instant,
) -> http::Response<Body> {
    finished(status, start);
    fhir_response(
        status,
        &operation_outcome(&[Issue::error(code, diagnostics, None)]),
    )
}

/// Logs and counts a FHIR request like any call of the HTTP door.
fn finished(status: u16, start: Instant) {
    let code = match status {
        200..=299 => Code::Ok,
        400 | 408 | 409 | 413 | 415 | 422 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        405 => Code::Unimplemented,
        503 => Code::Unavailable,
        504 => Code::DeadlineExceeded,
        _ => Code::Internal,
    };
    meters::call_finished("fhir.r4", telemetry::Door::Http, code, start.elapsed());
    tracing::info!(
        status,
        elapsed_ms = start.elapsed().as_secs_f64() * 1000.0,
        "FHIR request"
    );
}

fn fhir_response(status: u16, body: &Value) -> http::Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = http::Response::new(Body::new(Full::new(Bytes::from(bytes))));
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/fhir+json; fhirVersion=4.0"),
    );
    response
}

fn fhir_empty(status: u16) -> http::Response<Body> {
    let mut response = http::Response::new(Body::default());
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    response
}

/// What this FHIR endpoint does, for clients that ask first.
fn capability_statement() -> Value {
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-07",
        "kind": "instance",
        "software": {"name": "Verdad", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Verdad: FHIR R4 Encounters mapped to moments of truth"},
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON],
        "rest": [{
            "mode": "server",
            "documentation": "Name the feed with the x-verdad-feed header or the feed query parameter; authenticate with an ingest key as bearer token.",
            "security": {"description": "Bearer API keys of role ingest or admin"},
            "resource": [{"type": "Encounter", "interaction": [{"code": "create"}]}],
            "interaction": [{"code": "batch"}, {"code": "transaction"}]
        }]
    })
}
