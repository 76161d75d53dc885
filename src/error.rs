//! The crate-wide error and its one deliberate mapping to gRPC statuses.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::{refusal::Refusal, violation::FieldViolation};

/// The `domain` of every `ErrorInfo` Verdad sends.
pub const ERROR_DOMAIN: &str = "verdad";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; every violated field is named.
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),

    /// The request's gRPC framing is broken (a message cut short, a flag
    /// that means nothing, a wrong content type): no field to name.
    #[error("{message}")]
    Malformed {
        reason: &'static str,
        message: String,
    },

    /// A request message over the server's size limit.
    #[error(
        "a request message of {size} bytes is over the server's limit of {limit} bytes \
         (--max-message-bytes); send smaller messages, such as fewer encounters per batch"
    )]
    MessageTooLarge { size: usize, limit: usize },

    /// An answer over the message limit: the request asked for more than
    /// one message holds.
    #[error(
        "the answer would take {size} bytes, over the server's limit of {limit} bytes \
         (--max-message-bytes); ask for less: a shorter range, fewer touchpoints, \
         a coarser granularity or a smaller page"
    )]
    AnswerTooLarge { size: usize, limit: usize },

    /// The caller went away before the call ended.
    #[error("the caller went away before the call ended")]
    Cancelled,

    #[error("{resource} {key} not found")]
    NotFound { resource: &'static str, key: String },

    #[error(
        "{} {resource} with {field} {value:?} already exists",
        article(resource)
    )]
    AlreadyExists {
        resource: &'static str,
        field: &'static str,
        value: String,
    },

    /// The request is well formed but the resource's state forbids it.
    #[error("{message}")]
    FailedPrecondition {
        reason: &'static str,
        message: String,
    },

    #[error("{message}")]
    Unauthenticated {
        reason: &'static str,
        message: &'static str,
    },

    #[error("a key with role {role} may not call {method}")]
    PermissionDenied { role: String, method: String },

    #[error("the call took longer than the server's limit of {limit:?}")]
    DeadlineExceeded { limit: std::time::Duration },

    /// PostgreSQL cancelled a statement that ran past the statement timeout
    /// (or was cancelled by an operator); the transaction rolled back.
    #[error(
        "a database statement of the call ran longer than the server's statement timeout and was cancelled; nothing was written"
    )]
    StatementTimeout,

    /// A part Verdad needs (the database) does not answer; the caller may
    /// retry.
    #[error("{message}")]
    Unavailable { message: String },

    /// The transaction collided with a concurrent one (a deadlock or a
    /// serialization failure) and was rolled back whole; sending the same
    /// request again is safe.
    #[error("the request collided with a concurrent one and was rolled back; send it again")]
    Aborted,

    /// A watch fell further behind the announcements than it may.
    #[error(
        "the watch fell {missed} announcements behind; \
         list the cases with ListRecoveryCases and watch again"
    )]
    WatchFellBehind { missed: u64 },

    /// Kept with its cause for the log; the caller sees an opaque message.
    #[error("database error")]
    Database(sqlx::Error),

    #[error("internal error: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        // deadlock_detected and serialization_failure: PostgreSQL rolled the
        // transaction back and a retry can succeed.
        let code = error.as_database_error().and_then(|e| e.code());
        if matches!(error, sqlx::Error::PoolTimedOut) {
            tracing::warn!("no database connection was free in time");
            return Error::Unavailable {
                message: "the server is busy: no database connection was free in time; \
                          nothing was written, send the request again"
                    .to_owned(),
            };
        }
        if is_unavailable(&error, code.as_deref()) {
            tracing::warn!(error = %error, "the database is unavailable");
            return Error::Unavailable {
                message: "the database is unavailable; nothing was written, send the request again"
                    .to_owned(),
            };
        }
        match code.as_deref() {
            Some("40P01" | "40001") => {
                tracing::warn!(error = %error, "transaction rolled back by a conflict");
                Error::Aborted
            }
            // query_canceled: the statement timeout fired.
            Some("57014") => {
                tracing::warn!(error = %error, "statement cancelled");
                Error::StatementTimeout
            }
            _ => Error::Database(error),
        }
    }
}

/// Whether `error` says the database cannot be reached or is going away,
/// rather than that the statement was wrong: the caller may try again.
fn is_unavailable(error: &sqlx::Error, code: Option<&str>) -> bool {
    match error {
        // (PoolTimedOut is answered before: the server is busy.)
        sqlx::Error::Io(_) | sqlx::Error::PoolClosed => true,
        // Class 08: connection exceptions; 57P01 to 57P03: the server is
        // shutting down, crashed or not yet accepting connections; 53300:
        // too many connections.
        sqlx::Error::Database(_) => code.is_some_and(|code| {
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

impl From<Vec<FieldViolation>> for Error {
    fn from(violations: Vec<FieldViolation>) -> Self {
        Error::InvalidArgument(violations)
    }
}

impl From<FieldViolation> for Error {
    fn from(violation: FieldViolation) -> Self {
        Error::InvalidArgument(vec![violation])
    }
}

impl From<getrandom::Error> for Error {
    fn from(error: getrandom::Error) -> Self {
        Error::Internal(format!("the operating system gave no randomness: {error}"))
    }
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        Error::FailedPrecondition {
            reason: refusal.reason,
            message: refusal.message,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// "a" or "an" before a resource's name.
fn article(resource: &str) -> &'static str {
    match resource.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| {
            if v.field.is_empty() {
                v.description.clone()
            } else {
                format!("{} {}", v.field, v.description)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// A request with a single bad field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    pub fn not_found(resource: &'static str, key: impl Into<String>) -> Self {
        Error::NotFound {
            resource,
            key: key.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }

    /// The name of the gRPC code this error is answered with, as in
    /// "INVALID_ARGUMENT".
    pub fn code_name(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) | Error::Malformed { .. } => "INVALID_ARGUMENT",
            Error::MessageTooLarge { .. } | Error::AnswerTooLarge { .. } => "RESOURCE_EXHAUSTED",
            Error::Cancelled => "CANCELLED",
            Error::NotFound { .. } => "NOT_FOUND",
            Error::AlreadyExists { .. } => "ALREADY_EXISTS",
            Error::FailedPrecondition { .. } => "FAILED_PRECONDITION",
            Error::Unauthenticated { .. } => "UNAUTHENTICATED",
            Error::PermissionDenied { .. } => "PERMISSION_DENIED",
            Error::DeadlineExceeded { .. } | Error::StatementTimeout => "DEADLINE_EXCEEDED",
            Error::Unavailable { .. } => "UNAVAILABLE",
            Error::Aborted | Error::WatchFellBehind { .. } => "ABORTED",
            Error::Database(_) | Error::Internal(_) => "INTERNAL",
        }
    }

    /// A copy for each of several callers whose requests shared the work
    /// that failed (a grouped batch). A database error's cause is logged
    /// here, once; the copies say only that it happened.
    pub fn shared(&self) -> Error {
        match self {
            Error::InvalidArgument(violations) => Error::InvalidArgument(violations.clone()),
            Error::Malformed { reason, message } => Error::Malformed {
                reason,
                message: message.clone(),
            },
            Error::MessageTooLarge { size, limit } => Error::MessageTooLarge {
                size: *size,
                limit: *limit,
            },
            Error::AnswerTooLarge { size, limit } => Error::AnswerTooLarge {
                size: *size,
                limit: *limit,
            },
            Error::Cancelled => Error::Cancelled,
            Error::NotFound { resource, key } => Error::NotFound {
                resource,
                key: key.clone(),
            },
            Error::AlreadyExists {
                resource,
                field,
                value,
            } => Error::AlreadyExists {
                resource,
                field,
                value: value.clone(),
            },
            Error::FailedPrecondition { reason, message } => Error::FailedPrecondition {
                reason,
                message: message.clone(),
            },
            Error::Unauthenticated { reason, message } => {
                Error::Unauthenticated { reason, message }
            }
            Error::PermissionDenied { role, method } => Error::PermissionDenied {
                role: role.clone(),
                method: method.clone(),
            },
            Error::DeadlineExceeded { limit } => Error::DeadlineExceeded { limit: *limit },
            Error::StatementTimeout => Error::StatementTimeout,
            Error::Unavailable { message } => Error::Unavailable {
                message: message.clone(),
            },
            Error::Aborted => Error::Aborted,
            Error::WatchFellBehind { missed } => Error::WatchFellBehind { missed: *missed },
            Error::Database(cause) => {
                tracing::error!(error = %cause, cause = ?cause, "database error in a shared batch");
                Error::Internal("a database error failed the shared batch".to_owned())
            }
            Error::Internal(cause) => Error::Internal(cause.clone()),
        }
    }

    /// The message a caller may see: internal causes stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            Error::Database(_) | Error::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::Malformed { reason, .. } => reason,
            Error::MessageTooLarge { .. } => "MESSAGE_TOO_LARGE",
            Error::AnswerTooLarge { .. } => "ANSWER_TOO_LARGE",
            Error::Cancelled => "CANCELLED",
            Error::NotFound { .. } => "NOT_FOUND",
            Error::AlreadyExists { .. } => "ALREADY_EXISTS",
            Error::FailedPrecondition { reason, .. } | Error::Unauthenticated { reason, .. } => {
                reason
            }
            Error::PermissionDenied { .. } => "ROLE_NOT_ALLOWED",
            Error::DeadlineExceeded { .. } => "DEADLINE_EXCEEDED",
            Error::StatementTimeout => "STATEMENT_TIMEOUT",
            Error::Unavailable { .. } => "UNAVAILABLE",
            Error::Aborted => "ABORTED",
            Error::WatchFellBehind { .. } => "WATCH_FELL_BEHIND",
            Error::Database(_) | Error::Internal(_) => "INTERNAL",
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let mut details = ErrorDetails::new();
        let mut metadata = HashMap::new();
        let (code, message) = match &error {
            Error::InvalidArgument(violations) => {
                let shown = violations_within_budget(violations);
                for violation in &violations[..shown] {
                    details.add_bad_request_violation(
                        clip(&violation.field),
                        clip(&violation.description),
                    );
                }
                if shown < violations.len() {
                    metadata.insert(
                        "violations_not_shown".to_owned(),
                        (violations.len() - shown).to_string(),
                    );
                }
                (Code::InvalidArgument, error.to_string())
            }
            Error::NotFound { resource, key } => {
                metadata.insert("resource".to_owned(), (*resource).to_owned());
                metadata.insert("key".to_owned(), key.clone());
                (Code::NotFound, error.to_string())
            }
            Error::AlreadyExists {
                resource,
                field,
                value,
            } => {
                metadata.insert("resource".to_owned(), (*resource).to_owned());
                metadata.insert("field".to_owned(), (*field).to_owned());
                metadata.insert("value".to_owned(), value.clone());
                (Code::AlreadyExists, error.to_string())
            }
            Error::Malformed { .. } => (Code::InvalidArgument, error.to_string()),
            Error::MessageTooLarge { size, limit } | Error::AnswerTooLarge { size, limit } => {
                metadata.insert("size".to_owned(), size.to_string());
                metadata.insert("limit".to_owned(), limit.to_string());
                (Code::ResourceExhausted, error.to_string())
            }
            Error::Cancelled => (Code::Cancelled, error.to_string()),
            Error::FailedPrecondition { .. } => (Code::FailedPrecondition, error.to_string()),
            Error::Unauthenticated { .. } => (Code::Unauthenticated, error.to_string()),
            Error::PermissionDenied { role, method } => {
                metadata.insert("role".to_owned(), role.clone());
                metadata.insert("method".to_owned(), method.clone());
                (Code::PermissionDenied, error.to_string())
            }
            Error::DeadlineExceeded { limit } => {
                metadata.insert("limit_ms".to_owned(), limit.as_millis().to_string());
                (Code::DeadlineExceeded, error.to_string())
            }
            Error::StatementTimeout => (Code::DeadlineExceeded, error.to_string()),
            Error::Unavailable { .. } => (Code::Unavailable, error.to_string()),
            Error::Aborted => (Code::Aborted, error.to_string()),
            Error::WatchFellBehind { missed } => {
                metadata.insert("missed".to_owned(), missed.to_string());
                (Code::Aborted, error.to_string())
            }
            Error::Database(cause) => {
                tracing::error!(error = %cause, cause = ?cause, "database error");
                (Code::Internal, "internal error".to_owned())
            }
            Error::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                (Code::Internal, "internal error".to_owned())
            }
        };
        let metadata: HashMap<String, String> = metadata
            .into_iter()
            .map(|(name, value)| (name, clip(&value).to_owned()))
            .collect();
        details.set_error_info(error.reason(), ERROR_DOMAIN, metadata);
        Status::with_error_details(code, clip(&message), details)
    }
}

/// The most bytes of a message or detail an error carries back.
/// Messages quote what the caller sent; a 70,000-character value quoted
/// in full made response headers that HTTP/2 clients refuse to decode, and
/// a bound in characters was not enough: 1,000 four-byte characters,
/// percent-encoded in `grpc-message` and repeated in the details, passed
/// the 16 KiB of headers that hyper's client accepts.
const MAX_ERROR_TEXT_BYTES: usize = 1000;

/// The most bytes of field violations one error carries back, so that a
/// request with many long bad fields still gets headers a client decodes.
const MAX_VIOLATION_BYTES: usize = 4000;

/// How many of `violations`, clipped, fit MAX_VIOLATION_BYTES; at least
/// one, so that the caller always learns of a field at fault.
fn violations_within_budget(violations: &[FieldViolation]) -> usize {
    let mut used = 0;
    violations
        .iter()
        .take_while(|violation| {
            used += clip(&violation.field).len() + clip(&violation.description).len();
            used <= MAX_VIOLATION_BYTES
        })
        .count()
        .max(1)
        .min(violations.len())
}

/// `text` cut at a character boundary to at most MAX_ERROR_TEXT_BYTES bytes.
fn clip(text: &str) -> &str {
    let mut end = text.len().min(MAX_ERROR_TEXT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_errors_reach_the_caller_as_an_opaque_internal_status() {
        let status = Status::from(Error::Database(sqlx::Error::Protocol(
            "relation \"touchpoint\" does not exist".into(),
        )));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
        let info = status.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.reason, "INTERNAL");
        assert_eq!(info.domain, ERROR_DOMAIN);
    }

    #[test]
    fn a_shared_error_answers_every_caller_alike_without_the_database_cause() {
        let refused = Error::AlreadyExists {
            resource: "encounter",
            field: "source/external_id",
            value: "his/evt-1".to_owned(),
        };
        let copy = Status::from(refused.shared());
        let original = Status::from(refused);
        assert_eq!(copy.code(), original.code());
        assert_eq!(copy.message(), original.message());
        assert_eq!(copy.metadata().len(), original.metadata().len());

        let failed = Error::Database(sqlx::Error::Protocol(
            "relation \"x\" does not exist".into(),
        ));
        let shared = failed.shared();
        for copy in [shared.shared(), shared] {
            let status = Status::from(copy);
            assert_eq!(status.code(), Code::Internal);
            assert_eq!(status.message(), "internal error");
        }
    }

    #[test]
    fn a_database_out_of_reach_is_unavailable() {
        for error in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into()),
        ] {
            let status = Status::from(Error::from(error));
            assert_eq!(status.code(), Code::Unavailable);
            assert!(status.message().contains("send the request again"));
        }
        let protocol = Error::from(sqlx::Error::Protocol("unexpected message".into()));
        assert_eq!(Status::from(protocol).code(), Code::Internal);
    }

    #[test]
    fn quoted_input_is_cut_to_a_bounded_length() {
        let long = "é".repeat(70_000);
        let status = Status::from(Error::not_found("touchpoint", long.clone()));
        // Cut at a character boundary: up to three bytes short.
        let bounded = MAX_ERROR_TEXT_BYTES - 3..=MAX_ERROR_TEXT_BYTES;
        assert!(bounded.contains(&status.message().len()));
        let info = status.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.metadata["key"].len(), MAX_ERROR_TEXT_BYTES);
        let status = Status::from(Error::invalid("touchpoint.code", long));
        let bad = status.get_details_bad_request().unwrap();
        assert_eq!(
            bad.field_violations[0].description.len(),
            MAX_ERROR_TEXT_BYTES
        );
    }

    #[test]
    fn quoted_input_is_cut_at_a_character_boundary() {
        assert_eq!(clip(&format!("a{}", "😀".repeat(300))).len(), 997);
        assert_eq!(clip("short"), "short");
    }

    #[test]
    fn headers_quoting_four_byte_characters_fit_an_http2_client() {
        // hyper's client refuses a header list over 16 KiB with a protocol
        // error, which the caller sees as INTERNAL.
        let long = "😀".repeat(3000);
        for error in [
            Error::not_found("standard", long.clone()),
            Error::invalid("id", long.clone()),
            Error::InvalidArgument(
                (0..500)
                    .map(|i| FieldViolation::new(format!("attributes[{i}]"), long.clone()))
                    .collect(),
            ),
            Error::AlreadyExists {
                resource: "encounter",
                field: "source/external_id",
                value: long.clone(),
            },
        ] {
            let response = Status::from(error).into_http::<()>();
            let size: usize = response
                .headers()
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len() + 32)
                .sum();
            assert!(size < 16 * 1024, "{size} bytes of headers");
        }
    }

    #[test]
    fn violations_past_the_budget_are_counted_not_shown() {
        let many: Vec<_> = (0..500)
            .map(|i| FieldViolation::new(format!("encounters[{i}].source"), "must not be empty"))
            .collect();
        let status = Status::from(Error::InvalidArgument(many));
        let shown = status
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .len();
        assert!((100..500).contains(&shown), "{shown}");
        let info = status.get_error_details().error_info().cloned().unwrap();
        assert_eq!(
            info.metadata["violations_not_shown"],
            (500 - shown).to_string()
        );
        // One violation is always shown, however long.
        let status = Status::from(Error::invalid("x".repeat(9000), "y".repeat(9000)));
        assert_eq!(
            status
                .get_details_bad_request()
                .unwrap()
                .field_violations
                .len(),
            1
        );
    }

    #[test]
    fn conflicts_tell_the_caller_to_send_again() {
        let status = Status::from(Error::Aborted);
        assert_eq!(status.code(), Code::Aborted);
        assert!(status.message().contains("send it again"));
        let info = status.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.reason, "ABORTED");
    }

    #[test]
    fn invalid_arguments_name_every_field() {
        let status = Status::from(Error::InvalidArgument(vec![
            FieldViolation::new("touchpoint.code", "must not be empty"),
            FieldViolation::new("page_size", "must not be negative, got -1"),
        ]));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status
                .message()
                .contains("touchpoint.code must not be empty")
        );
        let bad_request = status.get_details_bad_request().unwrap();
        assert_eq!(bad_request.field_violations.len(), 2);
        assert_eq!(bad_request.field_violations[1].field, "page_size");
    }
}
