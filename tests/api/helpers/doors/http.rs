//! The HTTP/JSON door: the request laid out on the method's route (path
//! variables, query parameters and body, as a client of the door would),
//! and the AIP-193 JSON error a refusal answers.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use prost_reflect::{MessageDescriptor, MethodDescriptor};
use serde_json::{Map, Value, json};
use verdad::http::routes::{BodyRule, Route, RouteTable, Shape};

use super::{Doors, Refusal, aip193_status, method_named, route_name};
use crate::helpers::{Answer, answer};

impl Refusal {
    /// The refusal an HTTP error answer says (see [`assert_error_shape`]
    /// for its form).
    pub(crate) fn from_answer(answer: &Answer) -> Self {
        Refusal {
            code: answer.code().to_owned(),
            reason: answer.reason(),
            fields: answer.violated_fields(),
            message: answer.json["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            http_status: Some(answer.status.as_u16()),
        }
    }
}

/// Checks that an HTTP error answer is the AIP-193 JSON error: `code` the
/// HTTP status, a `message`, the code's name as `status`, and `details`
/// whose every item has an `@type`, among them an `ErrorInfo`; and that its
/// HTTP status is the one AIP-193 gives its code (but 413 for a body over
/// the limit, 415 for a media type the door does not read, 405 for a
/// method the path does not take).
#[track_caller]
pub(crate) fn assert_error_shape(answer: &Answer, what: &str) {
    if let Some(fault) = error_shape_fault(answer) {
        panic!("{what}: {fault}");
    }
}

/// What is wrong with an HTTP error answer's form (see
/// [`assert_error_shape`]), if anything.
pub(crate) fn error_shape_fault(answer: &Answer) -> Option<String> {
    let status = answer.status.as_u16();
    let text = &answer.text;
    if !answer.content_type.starts_with("application/json") {
        return Some(format!(
            "an error answer is not JSON ({}): {text}",
            answer.content_type
        ));
    }
    let error = &answer.json["error"];
    if !error.is_object() {
        return Some(format!("not an error object: {text}"));
    }
    if error["code"].as_u64() != Some(u64::from(status)) {
        return Some(format!(
            "error.code is not the HTTP status {status}: {text}"
        ));
    }
    if !error["message"].is_string() {
        return Some(format!("no message: {text}"));
    }
    let code = error["status"].as_str().unwrap_or_default();
    let details = error["details"].as_array();
    if !details.is_some_and(|details| details.iter().all(|d| d["@type"].is_string())) {
        return Some(format!("details without @type: {text}"));
    }
    if answer.reason().is_empty() {
        return Some(format!("no ErrorInfo reason: {text}"));
    }
    let expected = match answer.reason().as_str() {
        "MESSAGE_TOO_LARGE" => 413,
        "UNSUPPORTED_MEDIA_TYPE" => 415,
        "METHOD_NOT_ALLOWED" => 405,
        _ => aip193_status(code),
    };
    (status != expected).then(|| format!("{code} answered with HTTP {status}: {text}"))
}

/// An HTTP request laid out for a route.
#[derive(Debug, Clone)]
pub(crate) struct HttpRequest {
    pub(crate) method: reqwest::Method,
    /// The path, with its query when it has one.
    pub(crate) path: String,
    /// The body and its content type, when one is sent.
    pub(crate) body: Option<(&'static str, String)>,
}

/// A path segment's characters that travel as they are: the unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The key of `field` in a JSON object that may use either name.
fn key_of(object: &Map<String, Value>, field: &prost_reflect::FieldDescriptor) -> Option<String> {
    [field.json_name(), field.name()]
        .into_iter()
        .find(|name| object.contains_key(*name))
        .map(str::to_owned)
}

/// Removes the value at the proto field path `path` from `request`.
fn take_at(
    input: &MessageDescriptor,
    request: &mut Map<String, Value>,
    path: &str,
) -> Option<Value> {
    let mut message = input.clone();
    let mut object = request;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = message.get_field_by_name(part)?;
        let key = key_of(object, &field)?;
        if parts.peek().is_none() {
            return object.remove(&key);
        }
        let prost_reflect::Kind::Message(inner) = field.kind() else {
            return None;
        };
        message = inner;
        object = object.get_mut(&key)?.as_object_mut()?;
    }
    None
}

/// Whether `request` gives every variable of `route` a value that is not
/// empty.
fn binds_every_variable(route: &Route, request: &Value) -> bool {
    let mut copy = request.as_object().cloned().unwrap_or_default();
    let input = route.method.input();
    route
        .template
        .variables()
        .all(|variable| match take_at(&input, &mut copy, variable) {
            Some(Value::String(text)) => !text.is_empty(),
            Some(Value::Number(_) | Value::Bool(_)) => true,
            _ => false,
        })
}

/// The route a client would use for `method` with `request`: the rule's
/// own binding when the request has its path variables, else the first
/// additional binding that it has them for (`GetTouchpoint` by id goes to
/// `/v1/touchpoints:lookup?id=…`).
pub(crate) fn route_for<'a>(
    routes: &'a RouteTable,
    method: &MethodDescriptor,
    request: &Value,
) -> &'a Route {
    let mine: Vec<&Route> = routes
        .routes()
        .iter()
        .filter(|route| route.method.full_name() == method.full_name())
        .collect();
    let primary = mine
        .iter()
        .find(|route| route.primary)
        .unwrap_or_else(|| panic!("{} has no route", method.full_name()));
    if binds_every_variable(primary, request) {
        return primary;
    }
    mine.iter()
        .find(|route| !route.primary && binds_every_variable(route, request))
        .unwrap_or(primary)
}

/// Query parameters of `value` at `prefix`: dotted names for nested
/// messages, a parameter per item for lists.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Null => {}
        Value::Object(object) => {
            for (name, inner) in object {
                let name = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                flatten(&name, inner, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                assert!(
                    !item.is_object() && !item.is_array(),
                    "{prefix}: a list of messages cannot travel in a query"
                );
                flatten(prefix, item, out);
            }
        }
        Value::String(text) => out.push((prefix.to_owned(), text.clone())),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Lays `request` (the JSON of the method's request message; for a client
/// stream, a list of them) out on `route`: path variables filled in and
/// percent-encoded, the body the rule names, the rest as query parameters.
pub(crate) fn http_request(route: &Route, request: &Value) -> HttpRequest {
    let method =
        reqwest::Method::from_bytes(route.verb.as_str().as_bytes()).expect("an HTTP method");
    if route.shape == Shape::LinesIn {
        let lines: String = request
            .as_array()
            .expect("a client stream's request is a list of messages")
            .iter()
            .map(|message| format!("{message}\n"))
            .collect();
        return HttpRequest {
            method,
            path: route.template.as_str().to_owned(),
            body: Some(("application/x-ndjson", lines)),
        };
    }
    let input = route.method.input();
    let mut rest = match request {
        Value::Object(object) => object.clone(),
        Value::Null => Map::new(),
        other => panic!("a request is a JSON object, not {other}"),
    };
    let mut path = route.template.as_str().to_owned();
    for variable in route.template.variables() {
        let value = take_at(&input, &mut rest, variable)
            .unwrap_or_else(|| panic!("{}: no {variable} in {request}", route_name(route)));
        let text = scalar_text(&value);
        path = path.replace(
            &format!("{{{variable}}}"),
            &utf8_percent_encode(&text, SEGMENT).to_string(),
        );
    }
    let (body, query) = match &route.body {
        BodyRule::Whole => (Some(Value::Object(rest)), Map::new()),
        BodyRule::Field(field) => {
            let body = key_of(&rest, field).and_then(|key| rest.remove(&key));
            (body, rest)
        }
        BodyRule::None => (None, rest),
    };
    let mut parameters = Vec::new();
    flatten("", &Value::Object(query), &mut parameters);
    if !parameters.is_empty() {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &parameters {
            query.append_pair(name, value);
        }
        path = format!("{path}?{}", query.finish());
    }
    let body = match (&route.body, body) {
        (BodyRule::None, _) => None,
        (_, Some(body)) => Some(("application/json", body.to_string())),
        // A body rule's field left out: an empty body leaves it unset.
        (_, None) => Some(("application/json", String::new())),
    };
    HttpRequest { method, path, body }
}

impl Doors {
    /// Calls `rpc` over HTTP at the route a client would use (see
    /// [`route_for`]).
    pub(crate) async fn http(
        &self,
        rpc: &str,
        key: Option<&str>,
        request: &Value,
    ) -> Result<Value, Refusal> {
        let method = method_named(&self.descriptors, rpc);
        let route = route_for(&self.routes, &method, request);
        self.http_at(route, key, request).await
    }

    /// Calls `route` with `request` laid out on it.
    pub(crate) async fn http_at(
        &self,
        route: &Route,
        key: Option<&str>,
        request: &Value,
    ) -> Result<Value, Refusal> {
        assert!(
            route.shape != Shape::EventsOut,
            "{}: the generic caller takes no watch",
            route_name(route)
        );
        let laid_out = http_request(route, request);
        let answer = answer(self.send(&laid_out, key).await).await;
        if answer.status.is_success() {
            return Ok(match route.shape {
                Shape::FileOut => json!({"file": answer.text}),
                _ => {
                    assert!(
                        answer.content_type.starts_with("application/json"),
                        "{}: {answer:?}",
                        route_name(route)
                    );
                    answer.json
                }
            });
        }
        assert_error_shape(&answer, &format!("{} {}", laid_out.method, laid_out.path));
        Err(Refusal::from_answer(&answer))
    }

    /// Sends a laid-out request; the answer is the caller's to read (or to
    /// drop unread, for a watch).
    pub(crate) async fn send(&self, request: &HttpRequest, key: Option<&str>) -> reqwest::Response {
        let mut builder = self.client.request(
            request.method.clone(),
            format!("{}{}", self.base, request.path),
        );
        if let Some(key) = key {
            builder = builder.bearer_auth(key);
        }
        if let Some((content_type, body)) = &request.body {
            builder = builder
                .header("content-type", *content_type)
                .body(body.clone());
        }
        builder.send().await.expect("the HTTP request was sent")
    }
}
