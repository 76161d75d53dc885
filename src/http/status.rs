//! Errors over HTTP: the call's `google.rpc.Status`, in the JSON form of
//! AIP-193 (`{"error": {"code", "message", "status", "details"}}`), with the
//! HTTP status that `google.rpc.Code` maps each code to. The details are
//! the same `ErrorInfo` and `BadRequest` the gRPC door sends, read from the
//! status's own detail bytes, so both doors answer alike.

use bytes::Bytes;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Value, json};
use tonic::{Code, Status};

/// The HTTP status of a gRPC code (the mapping of `google/rpc/code.proto`).
pub fn http_status(code: Code) -> http::StatusCode {
    use http::StatusCode as S;
    match code {
        Code::Ok => S::OK,
        Code::Cancelled => S::from_u16(499).unwrap_or(S::BAD_REQUEST),
        Code::Unknown | Code::Internal | Code::DataLoss => S::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => S::BAD_REQUEST,
        Code::DeadlineExceeded => S::GATEWAY_TIMEOUT,
        Code::NotFound => S::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => S::CONFLICT,
        Code::PermissionDenied => S::FORBIDDEN,
        Code::Unauthenticated => S::UNAUTHORIZED,
        Code::ResourceExhausted => S::TOO_MANY_REQUESTS,
        Code::Unimplemented => S::NOT_IMPLEMENTED,
        Code::Unavailable => S::SERVICE_UNAVAILABLE,
    }
}

/// The code's name as `google.rpc.Code` spells it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The HTTP statuses that say more than the code's: a body over the size
/// limit is 413 rather than the 429 of RESOURCE_EXHAUSTED (429 tells a
/// client to send the same request again later, which would never
/// succeed); a method or a media type the route does not take is 405 or
/// 415, which no gRPC code says.
fn http_status_of_reason(reason: &str) -> Option<http::StatusCode> {
    match reason {
        "MESSAGE_TOO_LARGE" => Some(http::StatusCode::PAYLOAD_TOO_LARGE),
        "METHOD_NOT_ALLOWED" => Some(http::StatusCode::METHOD_NOT_ALLOWED),
        "UNSUPPORTED_MEDIA_TYPE" => Some(http::StatusCode::UNSUPPORTED_MEDIA_TYPE),
        _ => None,
    }
}

/// The JSON body and HTTP status of `status`.
pub fn render(pool: &DescriptorPool, status: &Status) -> (http::StatusCode, Bytes) {
    let details = details(pool, status.details());
    let http = details
        .iter()
        .find_map(|detail| detail.get("reason").and_then(Value::as_str))
        .and_then(http_status_of_reason)
        .unwrap_or_else(|| http_status(status.code()));
    let body = json!({
        "error": {
            "code": http.as_u16(),
            "message": status.message(),
            "status": code_name(status.code()),
            "details": details,
        }
    });
    (http, Bytes::from(body.to_string()))
}

/// The status's details (an encoded `google.rpc.Status`) as JSON, each
/// with its `@type`; those that do not decode are left out.
fn details(pool: &DescriptorPool, bytes: &[u8]) -> Vec<Value> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let Some(descriptor) = pool.get_message_by_name("google.rpc.Status") else {
        return Vec::new();
    };
    let Ok(decoded) = DynamicMessage::decode(descriptor, bytes) else {
        return Vec::new();
    };
    match serde_json::to_value(&decoded) {
        Ok(Value::Object(mut status)) => match status.remove("details") {
            Some(Value::Array(details)) => details,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// A status whose details are only an `ErrorInfo`, for the door's own
/// answers (a method the path does not have, a media type it cannot read).
pub fn with_reason(code: Code, reason: &str, message: String) -> Status {
    let details = tonic_types::ErrorDetails::with_error_info(
        reason,
        crate::error::ERROR_DOMAIN,
        std::collections::HashMap::<String, String>::new(),
    );
    <Status as tonic_types::StatusExt>::with_error_details(code, message, details)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> DescriptorPool {
        DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET).unwrap()
    }

    fn body(status: &Status) -> (u16, Value) {
        let (http, bytes) = render(&pool(), status);
        (http.as_u16(), serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn codes_map_to_the_http_statuses_of_google_rpc_code() {
        assert_eq!(http_status(Code::InvalidArgument), 400);
        assert_eq!(http_status(Code::FailedPrecondition), 400);
        assert_eq!(http_status(Code::Unauthenticated), 401);
        assert_eq!(http_status(Code::PermissionDenied), 403);
        assert_eq!(http_status(Code::NotFound), 404);
        assert_eq!(http_status(Code::AlreadyExists), 409);
        assert_eq!(http_status(Code::Aborted), 409);
        assert_eq!(http_status(Code::ResourceExhausted), 429);
        assert_eq!(http_status(Code::Cancelled), 499);
        assert_eq!(http_status(Code::Internal), 500);
        assert_eq!(http_status(Code::Unimplemented), 501);
        assert_eq!(http_status(Code::Unavailable), 503);
        assert_eq!(http_status(Code::DeadlineExceeded), 504);
    }

    #[test]
    fn an_application_error_keeps_its_reason_and_field_violations() {
        let status = Status::from(crate::error::Error::invalid(
            "touchpoint.code",
            "is required",
        ));
        let (http, body) = body(&status);
        assert_eq!(http, 400);
        let error = &body["error"];
        assert_eq!(error["code"], 400);
        assert_eq!(error["status"], "INVALID_ARGUMENT");
        let details = error["details"].as_array().unwrap();
        let info = details
            .iter()
            .find(|d| d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo")
            .unwrap();
        assert_eq!(info["reason"], "INVALID_ARGUMENT");
        assert_eq!(info["domain"], crate::error::ERROR_DOMAIN);
        let bad = details
            .iter()
            .find(|d| d["@type"] == "type.googleapis.com/google.rpc.BadRequest")
            .unwrap();
        assert_eq!(bad["fieldViolations"][0]["field"], "touchpoint.code");
    }

    #[test]
    fn a_body_over_the_limit_is_413() {
        let status = Status::from(crate::error::Error::MessageTooLarge { size: 10, limit: 5 });
        assert_eq!(body(&status).0, 413);
    }

    #[test]
    fn details_that_do_not_decode_are_left_out() {
        let status = Status::with_details(Code::NotFound, "gone", Bytes::from_static(b"\xff\xff"));
        let (http, body) = body(&status);
        assert_eq!(http, 404);
        assert_eq!(body["error"]["details"], json!([]));
    }
}
