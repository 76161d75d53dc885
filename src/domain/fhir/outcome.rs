//! What Verdad answers a FHIR client: OperationOutcomes and the Bundles
//! that answer batches and transactions.

use std::fmt;

use serde_json::{Map, Value, json};

use super::types::BundleType;

/// OperationOutcome.issue.severity (value set issue-severity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Nothing more could be checked: the body could not even be read.
    Fatal,
    Error,
    Warning,
    Information,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// OperationOutcome.issue.code (value set issue-type), all of R4's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssueType {
    Invalid,
    Structure,
    Required,
    Value,
    Invariant,
    Security,
    Login,
    Unknown,
    Expired,
    Forbidden,
    Suppressed,
    Processing,
    NotSupported,
    Duplicate,
    MultipleMatches,
    NotFound,
    Deleted,
    TooLong,
    CodeInvalid,
    Extension,
    TooCostly,
    BusinessRule,
    Conflict,
    Transient,
    LockError,
    NoStore,
    Exception,
    Timeout,
    Incomplete,
    Throttled,
    Informational,
}

impl IssueType {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueType::Invalid => "invalid",
            IssueType::Structure => "structure",
            IssueType::Required => "required",
            IssueType::Value => "value",
            IssueType::Invariant => "invariant",
            IssueType::Security => "security",
            IssueType::Login => "login",
            IssueType::Unknown => "unknown",
            IssueType::Expired => "expired",
            IssueType::Forbidden => "forbidden",
            IssueType::Suppressed => "suppressed",
            IssueType::Processing => "processing",
            IssueType::NotSupported => "not-supported",
            IssueType::Duplicate => "duplicate",
            IssueType::MultipleMatches => "multiple-matches",
            IssueType::NotFound => "not-found",
            IssueType::Deleted => "deleted",
            IssueType::TooLong => "too-long",
            IssueType::CodeInvalid => "code-invalid",
            IssueType::Extension => "extension",
            IssueType::TooCostly => "too-costly",
            IssueType::BusinessRule => "business-rule",
            IssueType::Conflict => "conflict",
            IssueType::Transient => "transient",
            IssueType::LockError => "lock-error",
            IssueType::NoStore => "no-store",
            IssueType::Exception => "exception",
            IssueType::Timeout => "timeout",
            IssueType::Incomplete => "incomplete",
            IssueType::Throttled => "throttled",
            IssueType::Informational => "informational",
        }
    }
}

/// One issue of an OperationOutcome. The diagnostics name elements and
/// codes, never a value the client sent, which may be a patient's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: Severity,
    pub code: IssueType,
    pub diagnostics: String,
    /// FHIRPath expressions of the elements at fault, such as
    /// `Encounter.location[1].period.start` (indexes count from 0).
    pub expression: Vec<String>,
}

impl Issue {
    /// An error about the element at `expression`, when there is one.
    pub fn error(
        code: IssueType,
        diagnostics: impl Into<String>,
        expression: Option<String>,
    ) -> Self {
        Self {
            severity: Severity::Error,
            code,
            diagnostics: diagnostics.into(),
            expression: expression.into_iter().collect(),
        }
    }

    /// The issue with expressions rooted at an Encounter moved to the
    /// Encounter of entry `index` of a Bundle, for an answer about the
    /// whole Bundle (a transaction's).
    pub fn in_entry(mut self, index: usize) -> Self {
        let root = format!("Bundle.entry[{index}].resource");
        let moved = |text: &str| -> Option<String> {
            let rest = text.strip_prefix("Encounter")?;
            let ends_name = rest.is_empty() || rest.starts_with(['.', '[', ' ']);
            ends_name.then(|| format!("{root}{rest}"))
        };
        for expression in &mut self.expression {
            if let Some(moved) = moved(expression) {
                *expression = moved;
            }
        }
        if let Some(moved) = moved(&self.diagnostics) {
            self.diagnostics = moved;
        }
        self
    }

    fn to_json(&self) -> Value {
        let mut issue = Map::new();
        issue.insert("severity".into(), self.severity.as_str().into());
        issue.insert("code".into(), self.code.as_str().into());
        if !self.diagnostics.is_empty() {
            issue.insert("diagnostics".into(), self.diagnostics.clone().into());
        }
        if !self.expression.is_empty() {
            issue.insert("expression".into(), self.expression.clone().into());
        }
        Value::Object(issue)
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.diagnostics)
    }
}

/// An OperationOutcome of `issues`. R4 requires at least one issue, so
/// none makes an informational one.
pub fn operation_outcome(issues: &[Issue]) -> Value {
    if issues.is_empty() {
        return outcome_information("no issues");
    }
    json!({
        "resourceType": "OperationOutcome",
        "issue": issues.iter().map(Issue::to_json).collect::<Vec<_>>(),
    })
}

/// An OperationOutcome that only informs, such as "ignored: no rule maps
/// this Encounter".
pub fn outcome_information(text: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{
            "severity": Severity::Information.as_str(),
            "code": IssueType::Informational.as_str(),
            "diagnostics": text,
        }],
    })
}

/// The answer to one entry of a batch or transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryResponse {
    /// The HTTP status code, such as 201.
    pub status: u16,
    /// Where the created resource is, when one was.
    pub location: Option<String>,
    /// An OperationOutcome about the entry.
    pub outcome: Option<Value>,
}

/// A batch-response Bundle: `entries` in the order of the batch's.
pub fn batch_response(entries: Vec<EntryResponse>) -> Value {
    response_bundle(BundleType::Batch, entries)
}

/// A transaction-response Bundle: `entries` in the order of the
/// transaction's.
pub fn transaction_response(entries: Vec<EntryResponse>) -> Value {
    response_bundle(BundleType::Transaction, entries)
}

/// The Bundle that answers a Bundle of type `kind`.
pub fn response_bundle(kind: BundleType, entries: Vec<EntryResponse>) -> Value {
    let entry: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            let mut response = Map::new();
            response.insert("status".into(), status_line(e.status).into());
            if let Some(location) = e.location {
                response.insert("location".into(), location.into());
            }
            if let Some(outcome) = e.outcome {
                response.insert("outcome".into(), outcome);
            }
            json!({ "response": response })
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": kind.response(),
        "entry": entry,
    })
}

/// Bundle.entry.response.status: the code and, for the codes Verdad
/// answers, the standard reason phrase.
pub fn status_line(status: u16) -> String {
    match reason_phrase(status) {
        Some(phrase) => format!("{status} {phrase}"),
        None => status.to_string(),
    }
}

fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => return None,
    })
}
