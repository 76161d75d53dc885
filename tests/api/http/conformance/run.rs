//! Running the suite through one door of a fresh app, and what it came to:
//! each step's outcome, the surprises, and the rows stored after each
//! scenario.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};
use uuid::Uuid;
use verdad::domain::role::Role as KeyRole;

use super::{Expect, Key, suite};
use crate::helpers::{Door, Doors, Refusal, TestApp, spawn_app};

/// One step's outcome through one door.
#[derive(Debug, Clone)]
pub(super) struct Outcome {
    pub(super) label: String,
    pub(super) result: Result<Value, Refusal>,
}

/// The organisation a run acts for and its keys.
pub(super) struct Run {
    organisation: Uuid,
    pub(super) admin: String,
    pub(super) analyst: String,
    ingest: String,
}

pub(super) async fn arrange(app: &TestApp) -> Run {
    let org = app.create_org("Conformance Hospital").await;
    Run {
        organisation: org.id,
        analyst: app.key(&org, KeyRole::Analyst).await,
        ingest: app.key(&org, KeyRole::Ingest).await,
        admin: org.admin_key,
    }
}

/// `request` with every `{{name/pointer}}` replaced from `saved`.
fn resolve(request: &Value, saved: &HashMap<&str, Value>) -> Value {
    match request {
        Value::String(text) if text.starts_with("{{") && text.ends_with("}}") => {
            let reference = &text[2..text.len() - 2];
            let (name, pointer) = reference.split_once('/').unwrap();
            saved
                .get(name)
                .and_then(|answer| answer.pointer(&format!("/{pointer}")))
                .unwrap_or_else(|| panic!("nothing saved at {reference}"))
                .clone()
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, saved)).collect()),
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(k, v)| (k.clone(), resolve(v, saved)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What a run of the suite through one door came to.
pub(super) struct Ran {
    pub(super) outcomes: Vec<Outcome>,
    /// The steps that did not end as their scenario expects.
    pub(super) surprises: Vec<String>,
    /// The organisation's rows after each scenario.
    pub(super) dumps: Vec<(&'static str, Dump)>,
    /// Kept until the comparison is done.
    _app: TestApp,
}

type Dump = BTreeMap<&'static str, Vec<Value>>;

/// Runs the whole suite through `door` of a fresh app.
pub(super) async fn run_suite(door: Door) -> Ran {
    let app = spawn_app().await;
    let run = arrange(&app).await;
    let doors: Doors = app.doors().await;
    let mut saved: HashMap<&str, Value> = HashMap::new();
    let mut outcomes = Vec::new();
    let mut surprises = Vec::new();
    let mut dumps = Vec::new();
    for scenario in suite() {
        for (index, step) in scenario.steps.iter().enumerate() {
            let label = format!("{} #{index} {}", scenario.name, step.rpc);
            let key = match step.key {
                Key::Admin => Some(run.admin.as_str()),
                Key::Analyst => Some(run.analyst.as_str()),
                Key::Ingest => Some(run.ingest.as_str()),
                Key::None => None,
            };
            let request = resolve(&step.request, &saved);
            let result = doors.call(door, step.rpc, key, &request).await;
            if let Some(wrong) = unexpected(&step.expect, &result) {
                surprises.push(format!("{door} {label}: {wrong}"));
            }
            if let (Some(name), Ok(answer)) = (step.save, &result) {
                saved.insert(name, answer.clone());
            }
            outcomes.push(Outcome { label, result });
        }
        dumps.push((scenario.name, rows(&app, run.organisation).await));
    }
    Ran {
        outcomes,
        surprises,
        dumps,
        _app: app,
    }
}

/// What is wrong with `result` for `expect`, if anything.
fn unexpected(expect: &Expect, result: &Result<Value, Refusal>) -> Option<String> {
    match (expect, result) {
        (Expect::Ok, Ok(_)) => None,
        (Expect::OkWith(pointer, value), Ok(answer)) => (answer.pointer(pointer) != Some(value))
            .then(|| format!("expected {value} at {pointer}: {answer}")),
        (
            Expect::Refused {
                code,
                reason,
                field,
            },
            Err(refusal),
        ) => {
            let wrong = refusal.code != *code
                || reason.is_some_and(|reason| refusal.reason != reason)
                || field.is_some_and(|field| !refusal.fields.iter().any(|f| f == field));
            wrong.then(|| format!("expected {code} {reason:?} {field:?}, got {refusal:?}"))
        }
        (expect, result) => Some(format!("expected {expect:?}, got {result:?}")),
    }
}

/// The rows an organisation has in the main tables, each table's rows as
/// JSON in a fixed order.
async fn rows(app: &TestApp, organisation: Uuid) -> Dump {
    let mut owner = app.owner_connection().await;
    sqlx::query("select set_config('verdad.organisation_id', $1::text, false)")
        .bind(organisation)
        .execute(&mut owner)
        .await
        .unwrap();
    let tables: [(&str, &str, &str); 10] = [
        ("organisation", "id", "t.id"),
        ("touchpoint", "organisation_id", "t.code"),
        ("standard", "organisation_id", "t.code"),
        ("standard_revision", "organisation_id", "t.id"),
        ("encounter", "organisation_id", "t.source, t.external_id"),
        ("recovery_case", "organisation_id", "t.id"),
        ("journey_feedback", "organisation_id", "t.journey_id"),
        ("api_key", "organisation_id", "t.id"),
        ("feed", "organisation_id", "t.code"),
        ("webhook", "organisation_id", "t.description"),
    ];
    let mut dump = BTreeMap::new();
    for (table, column, order) in tables {
        let texts: Vec<String> = sqlx::query_scalar(&format!(
            "select to_jsonb(t)::text from {table} t where {column} = $1 order by {order}"
        ))
        .bind(organisation)
        .fetch_all(&mut owner)
        .await
        .unwrap();
        dump.insert(
            table,
            texts
                .iter()
                .map(|text| serde_json::from_str(text).unwrap())
                .collect(),
        );
    }
    dump
}

/// The outcome as compared: the answer, or what the refusal says.
pub(super) fn comparable(result: &Result<Value, Refusal>) -> Value {
    match result {
        Ok(answer) => json!({"ok": answer}),
        Err(refusal) => json!({"refused": {
            "code": refusal.code,
            "reason": refusal.reason,
            "fields": refusal.fields,
            "message": refusal.message,
        }}),
    }
}
