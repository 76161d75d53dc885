//! Any RPC by its name, with a JSON request (the proto3 JSON mapping), through
//! either door: gRPC (the request made a message by the descriptors, sent
//! as raw bytes) or HTTP/JSON (the request laid out on the method's route:
//! path variables, query parameters and body, as a client of the door
//! would). Both answer the JSON of the response message, or a [`Refusal`]
//! with what a client reads of an error; so one scenario runs through
//! either door and the two can be compared.

use std::fmt;

use prost_reflect::{DescriptorPool, MethodDescriptor};
use serde_json::Value;
use tonic::{Code, transport::Channel};
use verdad::http::routes::{Route, RouteTable};

pub(crate) use self::http::{assert_error_shape, error_shape_fault, http_request};
use super::TestApp;

mod grpc;
mod http;

/// Which door a call goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Door {
    Grpc,
    Http,
}

impl fmt::Display for Door {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Door::Grpc => "gRPC",
            Door::Http => "HTTP",
        })
    }
}

/// What a client reads of a refused call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The `google.rpc.Code` name: "INVALID_ARGUMENT", "NOT_FOUND", ….
    pub(crate) code: String,
    /// The `ErrorInfo` reason, empty without one.
    pub(crate) reason: String,
    /// The fields the `BadRequest` names, in its order.
    pub(crate) fields: Vec<String>,
    pub(crate) message: String,
    /// The HTTP status, over HTTP.
    pub(crate) http_status: Option<u16>,
}

/// The `google.rpc.Code` name of `code`, written out here rather than taken
/// from the door, so that the door's own mapping is checked.
pub(crate) fn code_name(code: Code) -> &'static str {
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

/// The HTTP status AIP-193 (`google/rpc/code.proto`) gives a code name.
pub(crate) fn aip193_status(code: &str) -> u16 {
    match code {
        "OK" => 200,
        "CANCELLED" => 499,
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "ALREADY_EXISTS" | "ABORTED" => 409,
        "RESOURCE_EXHAUSTED" => 429,
        "UNIMPLEMENTED" => 501,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => 500,
    }
}

/// The descriptors of the API, with the googleapis types.
pub(crate) fn descriptors() -> DescriptorPool {
    verdad::http::descriptors().expect("the compiled protos")
}

/// Every HTTP route of the API, as the door reads them.
pub(crate) fn route_table() -> RouteTable {
    RouteTable::from_pool(&descriptors(), "verdad.v1").expect("the route table")
}

/// `METHOD PATH` of a route, as the protos write it.
pub(crate) fn route_name(route: &Route) -> String {
    format!("{} {}", route.verb, route.template.as_str())
}

/// The method `rpc` names: "Service/Method" or a method name alone.
pub(crate) fn method_named(pool: &DescriptorPool, rpc: &str) -> MethodDescriptor {
    let (service, name) = rpc.split_once('/').unwrap_or(("", rpc));
    let found: Vec<MethodDescriptor> = pool
        .services()
        .filter(|s| s.package_name() == "verdad.v1")
        .filter(|s| service.is_empty() || s.name() == service)
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .filter(|m| m.name() == name)
        .collect();
    match found.as_slice() {
        [method] => method.clone(),
        _ => panic!("{rpc} names {} methods", found.len()),
    }
}

/// Both doors of one app, for calls by RPC name.
pub(crate) struct Doors {
    descriptors: DescriptorPool,
    routes: RouteTable,
    channel: Channel,
    base: String,
    client: reqwest::Client,
}

impl TestApp {
    /// Both doors of this app.
    pub(crate) async fn doors(&self) -> Doors {
        let descriptors = descriptors();
        let routes = RouteTable::from_pool(&descriptors, "verdad.v1").unwrap();
        Doors {
            descriptors,
            routes,
            channel: self.channel().await,
            base: format!("http://{}", self.addr),
            client: reqwest::Client::new(),
        }
    }
}

impl Doors {
    /// Calls `rpc` with `request` through `door`, with `key` as bearer.
    pub(crate) async fn call(
        &self,
        door: Door,
        rpc: &str,
        key: Option<&str>,
        request: &Value,
    ) -> Result<Value, Refusal> {
        match door {
            Door::Grpc => self.grpc(rpc, key, request).await,
            Door::Http => self.http(rpc, key, request).await,
        }
    }
}
