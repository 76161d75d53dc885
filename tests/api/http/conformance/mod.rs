//! The HTTP door and the gRPC door are one API: one suite of scenarios,
//! covering every service, runs once through gRPC on a fresh app and once
//! through HTTP on another, and every step must end alike (the same answer
//! once ids, server times, page tokens and secrets are normalised; the same
//! code, reason, fields and message when refused), and the two databases
//! must hold the same rows. Over HTTP, every refusal also has the AIP-193
//! status of its code.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use self::{
    analyses::{analyses, recovery},
    catalogue::{standards, touchpoints},
    encounters::{encounters, erasure, journeys},
    feeds::feeds,
    normalise::Normaliser,
    organisation::organisation_and_keys,
    run::{arrange, comparable, run_suite},
    webhooks::webhooks,
};
use crate::helpers::{Door, aip193_status, spawn_app};

mod analyses;
mod catalogue;
mod encounters;
mod feeds;
mod normalise;
mod organisation;
mod run;
mod webhooks;

/// Whose key a step presents.
#[derive(Debug, Clone, Copy)]
enum Key {
    Admin,
    Analyst,
    Ingest,
    None,
}

/// What a step must come to, through either door.
#[derive(Debug, Clone)]
enum Expect {
    Ok,
    /// Succeeds, and the answer has `value` at the JSON pointer.
    OkWith(&'static str, Value),
    Refused {
        code: &'static str,
        reason: Option<&'static str>,
        field: Option<&'static str>,
    },
}

/// One call of a scenario. Strings of the request of the form
/// `{{name/json/pointer}}` are replaced by what the answer saved as `name`
/// has there, so that a step may name what an earlier one made.
#[derive(Debug, Clone)]
struct Step {
    rpc: &'static str,
    key: Key,
    request: Value,
    save: Option<&'static str>,
    expect: Expect,
}

fn step(rpc: &'static str, key: Key, request: Value) -> Step {
    Step {
        rpc,
        key,
        request,
        save: None,
        expect: Expect::Ok,
    }
}

impl Step {
    fn save(mut self, name: &'static str) -> Self {
        self.save = Some(name);
        self
    }

    fn answers(mut self, pointer: &'static str, value: Value) -> Self {
        self.expect = Expect::OkWith(pointer, value);
        self
    }

    fn refused(mut self, code: &'static str, reason: &'static str) -> Self {
        self.expect = Expect::Refused {
            code,
            reason: Some(reason),
            field: None,
        };
        self
    }

    fn invalid(mut self, field: &'static str) -> Self {
        self.expect = Expect::Refused {
            code: "INVALID_ARGUMENT",
            reason: Some("INVALID_ARGUMENT"),
            field: Some(field),
        };
        self
    }

    fn denied(self) -> Self {
        self.refused("PERMISSION_DENIED", "ROLE_NOT_ALLOWED")
    }

    fn not_found(self) -> Self {
        self.refused("NOT_FOUND", "NOT_FOUND")
    }
}

struct Scenario {
    name: &'static str,
    steps: Vec<Step>,
}

/// The day the scenarios' encounters happen on, and its scope.
const DAY_START: &str = "2026-11-23T00:00:00Z";
const DAY_END: &str = "2026-11-24T00:00:00Z";

fn scope() -> Value {
    json!({"startTime": DAY_START, "endTime": DAY_END})
}

fn suite() -> Vec<Scenario> {
    vec![
        touchpoints(),
        standards(),
        organisation_and_keys(),
        encounters(),
        journeys(),
        analyses(),
        recovery(),
        erasure(),
        feeds(),
        webhooks(),
    ]
}

#[tokio::test]
async fn every_scenario_ends_alike_through_grpc_and_http_and_stores_the_same_rows() {
    // Arrange
    let since = Utc::now() - Duration::minutes(1);

    // Act
    let (grpc, http) = tokio::join!(run_suite(Door::Grpc), run_suite(Door::Http));

    // Assert: each step as the scenario means it.
    let surprises: Vec<&String> = grpc.surprises.iter().chain(&http.surprises).collect();
    assert!(
        surprises.is_empty(),
        "steps that did not end as their scenario expects:\n{}",
        surprises
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Every step alike.
    assert_eq!(grpc.outcomes.len(), http.outcomes.len());
    let mut by_grpc = Normaliser::new(since);
    let mut by_http = Normaliser::new(since);
    let mut differences = Vec::new();
    for (g, h) in grpc.outcomes.iter().zip(&http.outcomes) {
        let left = by_grpc.value(&comparable(&g.result), "");
        let right = by_http.value(&comparable(&h.result), "");
        if left != right {
            differences.push(format!("{}:\n  gRPC: {left}\n  HTTP: {right}", g.label));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} steps differ between the doors:\n{}",
        differences.len(),
        grpc.outcomes.len(),
        differences.join("\n")
    );

    // Every HTTP refusal has the AIP-193 status of its code, and the suite
    // met each kind it means to.
    let mut statuses = BTreeMap::new();
    for outcome in &http.outcomes {
        if let Err(refusal) = &outcome.result {
            assert_eq!(
                refusal.http_status,
                Some(aip193_status(&refusal.code)),
                "{}: {refusal:?}",
                outcome.label
            );
            statuses.insert(refusal.code.clone(), refusal.http_status.unwrap());
        }
    }
    assert_eq!(
        statuses,
        BTreeMap::from([
            ("ALREADY_EXISTS".to_owned(), 409),
            ("FAILED_PRECONDITION".to_owned(), 400),
            ("INVALID_ARGUMENT".to_owned(), 400),
            ("NOT_FOUND".to_owned(), 404),
            ("PERMISSION_DENIED".to_owned(), 403),
            ("UNAUTHENTICATED".to_owned(), 401),
        ])
    );

    // The same rows stored after each scenario, ids mapped as the answers
    // mapped them.
    for ((scenario, g), (_, h)) in grpc.dumps.iter().zip(&http.dumps) {
        for (table, grpc_rows) in g {
            let http_rows = &h[table];
            assert_eq!(
                grpc_rows.len(),
                http_rows.len(),
                "after {scenario}, {table}: {} rows through gRPC, {} through HTTP",
                grpc_rows.len(),
                http_rows.len()
            );
            for (g, h) in grpc_rows.iter().zip(http_rows) {
                let left = by_grpc.value(g, "");
                let right = by_http.value(h, "");
                assert_eq!(
                    left, right,
                    "after {scenario}, a row of {table} differs between the doors"
                );
            }
        }
    }
    for table in grpc.dumps[0].1.keys() {
        assert!(
            grpc.dumps.iter().any(|(_, dump)| !dump[table].is_empty()),
            "no {table} rows were compared"
        );
    }
}

#[test]
fn the_suite_calls_every_rpc_but_the_watch() {
    let pool = crate::helpers::descriptors();
    let called: std::collections::BTreeSet<&str> = suite()
        .iter()
        .flat_map(|scenario| scenario.steps.iter().map(|step| step.rpc))
        .collect();
    let every: std::collections::BTreeSet<String> = pool
        .services()
        .filter(|s| s.package_name() == "verdad.v1")
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .map(|m| m.name().to_owned())
        .filter(|name| name != "WatchRecoveryCases")
        .collect();
    let called: std::collections::BTreeSet<String> =
        called.into_iter().map(str::to_owned).collect();
    assert_eq!(called, every);
}

#[test]
fn the_normaliser_keeps_references_and_fixed_times() {
    let since = "2026-12-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
    let mut normaliser = Normaliser::new(since);
    let a = "0190f3a0-0000-7000-8000-00000000000a";
    let b = "0190F3A0-0000-7000-8000-00000000000B";
    let value = json!({
        "id": a, "other": [b, format!("case {a} of {b}")],
        "occurTime": "2026-11-23T09:00:05Z", "createTime": "2026-12-07T11:26:12.123456Z",
        "receive_time": "2026-12-07T11:26:12.123456+00:00", "secret": "vd_xyz",
        "nextPageToken": "abc", "pageToken": "", "content_hash": "\\x00ff",
    });
    assert_eq!(
        normaliser.value(&value, ""),
        json!({
            "id": "id#1", "other": ["id#2", "case id#1 of id#2"],
            "occurTime": "2026-11-23T09:00:05Z", "createTime": "<now>",
            "receive_time": "<now>", "secret": "<secret>",
            "nextPageToken": "<page token>", "pageToken": "", "content_hash": "<digest>",
        })
    );
}

/// proto3 JSON takes an enum by its name or by its number, and both doors
/// take `{"stage": 2}` in a body; a query parameter must too. (The door once
/// handed a query value to the mapping as a JSON string, so `?stage=2` was
/// refused, "unrecognized enum value '2'", where the same request over gRPC
/// answered.)
#[tokio::test]
async fn an_enum_given_by_its_number_is_read_alike_through_both_doors() {
    // Arrange
    let app = spawn_app().await;
    let run = arrange(&app).await;
    let doors = app.doors().await;
    doors
        .grpc(
            "CreateTouchpoint",
            Some(&run.admin),
            &json!({"touchpoint": {"code": "desk", "displayName": "Desk",
                                   "stage": "STAGE_SERVICE", "channel": "CHANNEL_IN_PERSON"}}),
        )
        .await
        .unwrap();
    let request = json!({"stage": 2, "pageSize": 5});

    // Act
    let over_grpc = doors
        .grpc("ListTouchpoints", Some(&run.analyst), &request)
        .await;
    let over_http = doors
        .http("ListTouchpoints", Some(&run.analyst), &request)
        .await;

    // Assert
    assert_eq!(
        over_grpc
            .as_ref()
            .ok()
            .and_then(|a| a.pointer("/touchpoints/0/code")),
        Some(&json!("desk"))
    );
    assert_eq!(
        over_http.map_err(|refusal| refusal.message),
        over_grpc.map_err(|refusal| refusal.message),
        "GET /v1/touchpoints?stage=2&pageSize=5"
    );
}
