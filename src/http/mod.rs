//! The HTTP/JSON door: every RPC over HTTP/1.1 and HTTP/2 with the proto3
//! JSON mapping, at the routes the protos' `google.api.http` rules give,
//! on the gRPC port.
//!
//! A request whose content type is `application/grpc…` (gRPC and
//! gRPC-Web) passes through untouched. Any other request is this door's:
//! it authenticates the caller, finds the route, makes the RPC's request
//! message from the path, query and JSON body, and calls the gRPC method
//! in-process through the server's own stack (see [`call`]), so every rule
//! (roles, tenancy, validation, idempotency, limits) is the one the gRPC
//! door's callers meet. The answer and any error come back as JSON.
//!
//! Streams: a client stream takes newline-delimited JSON, a server stream
//! answers with Server-Sent Events, and a stream of file pieces answers
//! with the file itself (see [`streams`]).

pub mod call;
pub mod fhir;
pub mod openapi;
pub mod request;
pub mod routes;
pub mod status;
mod streams;
pub mod template;

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use sqlx::PgPool;
use tonic::{Code, Status, body::Body};
use tower::{Layer, Service};

use crate::{app::App, auth::key_cache::KeyCache, error::Error, telemetry};
use routes::{BodyRule, Found, Route, RouteTable, Shape};

/// Where the OpenAPI document is served; it needs no key.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// The package whose services the door serves.
const PACKAGE: &str = "verdad.v1";

/// What the door knows: the descriptors, the routes, the document, the
/// limits and how to authenticate.
pub struct Door {
    descriptors: DescriptorPool,
    routes: RouteTable,
    openapi: Bytes,
    limit: usize,
    /// How long a unary call's body may take to arrive: the deadline that
    /// holds the call once it is made (`--request-timeout`).
    body_timeout: Duration,
    pool: PgPool,
    keys: KeyCache,
    /// The core, for the FHIR door, which calls it directly (FHIR
    /// interactions are no RPCs).
    app: Arc<App>,
}

impl Door {
    /// The door of the compiled protos. `limit` is the largest body (and
    /// the largest line of a stream) it reads, `body_timeout` how long a
    /// whole body may take.
    pub fn new(
        limit: usize,
        body_timeout: Duration,
        pool: PgPool,
        keys: KeyCache,
        app: Arc<App>,
    ) -> anyhow::Result<Self> {
        let descriptors = descriptors()?;
        let routes = RouteTable::from_pool(&descriptors, PACKAGE).map_err(anyhow::Error::msg)?;
        let openapi = Bytes::from(openapi::document(&routes)?);
        Ok(Self {
            descriptors,
            routes,
            openapi,
            limit,
            body_timeout,
            pool,
            keys,
            app,
        })
    }

    async fn serve<S>(&self, request: http::Request<Body>, inner: S) -> http::Response<Body>
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>> + Send + 'static,
        S::Future: Send,
    {
        if fhir::is_fhir(request.uri().path()) {
            return self.fhir(request).await;
        }
        let start = Instant::now();
        let (parts, body) = request.into_parts();
        if parts.method == http::Method::GET && parts.uri.path() == OPENAPI_PATH {
            return json(http::StatusCode::OK, self.openapi.clone());
        }
        if let Err(error) = crate::auth::authenticate(&self.pool, &self.keys, &parts.headers).await
        {
            return self.refused(None, &Status::from(error), start);
        }
        let (route, variables) = match self.routes.find(&parts.method, parts.uri.path()) {
            Found::Route(route, variables) => (route, variables),
            Found::WrongMethod(allowed) => {
                let mut response =
                    self.refused(None, &wrong_method(&parts.method, &allowed), start);
                let allow = allowed.iter().map(http::Method::as_str).collect::<Vec<_>>();
                if let Ok(value) = http::HeaderValue::from_str(&allow.join(", ")) {
                    response.headers_mut().insert(http::header::ALLOW, value);
                }
                return response;
            }
            Found::Nothing => {
                let status = Status::from(Error::NotFound {
                    resource: "route",
                    key: parts.uri.path().chars().take(200).collect(),
                });
                return self.refused(None, &status, start);
            }
        };
        let answer = match route.shape {
            Shape::Unary => self.unary(route, variables, &parts, body, inner).await,
            Shape::LinesIn => streams::lines_in(self, route, &parts, body, inner).await,
            Shape::EventsOut => streams::events_out(self, route, variables, &parts, inner).await,
            Shape::FileOut => streams::file_out(route, variables, &parts, inner).await,
        };
        match answer {
            Ok(response) => response,
            Err(Failure::AtDoor(status)) => self.refused(Some(route), &status, start),
            Err(Failure::InCall(status)) => self.failure(&status),
        }
    }

    async fn unary<S>(
        &self,
        route: &Route,
        variables: template::Bindings,
        parts: &http::request::Parts,
        body: Body,
        inner: S,
    ) -> Result<http::Response<Body>, Failure>
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>>,
    {
        let body = if route.body == BodyRule::None {
            Bytes::new()
        } else {
            self.read_json_body(parts, body).await?
        };
        let message = request::build(route, variables, parts.uri.query(), &body)?;
        let answer = call_once(inner, route, &parts.headers, &message)
            .await
            .map_err(Failure::InCall)?;
        let output = answer_json(route, answer).map_err(Failure::InCall)?;
        Ok(json(http::StatusCode::OK, output))
    }

    /// The body of a JSON request, at most the limit long.
    async fn read_json_body(
        &self,
        parts: &http::request::Parts,
        body: Body,
    ) -> Result<Bytes, Status> {
        let bytes = self.read_body(parts, body).await?;
        if !bytes.iter().all(u8::is_ascii_whitespace) && !is_json(&parts.headers) {
            return Err(unsupported_media_type("application/json"));
        }
        Ok(bytes)
    }

    async fn read_body(&self, parts: &http::request::Parts, body: Body) -> Result<Bytes, Status> {
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        if let Some(size) = declared.filter(|size| *size > self.limit) {
            return Err(Error::MessageTooLarge {
                size,
                limit: self.limit,
            }
            .into());
        }
        let read =
            tokio::time::timeout(self.body_timeout, Limited::new(body, self.limit).collect());
        let Ok(read) = read.await else {
            return Err(Error::DeadlineExceeded {
                limit: self.body_timeout,
            }
            .into());
        };
        match read {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                Err(Error::MessageTooLarge {
                    size: self.limit + 1,
                    limit: self.limit,
                }
                .into())
            }
            Err(_) => Err(Error::Cancelled.into()),
        }
    }

    fn failure(&self, status: &Status) -> http::Response<Body> {
        let (code, body) = status::render(&self.descriptors, status);
        json(code, body)
    }

    /// The answer to a request the door refused itself, logged and counted
    /// as a call (a call the door made is logged by the call trace).
    fn refused(
        &self,
        route: Option<&Route>,
        status: &Status,
        start: Instant,
    ) -> http::Response<Body> {
        let method = route.map(Route::grpc_path);
        crate::telemetry::refused_at_the_door(method.as_deref(), status.code(), start);
        self.failure(status)
    }
}

/// Why an HTTP request failed: the door refused it before any call (it logs
/// and counts that itself), or the call it made failed (the call trace has
/// logged and counted that).
pub(crate) enum Failure {
    AtDoor(Status),
    InCall(Status),
}

impl From<Status> for Failure {
    fn from(status: Status) -> Self {
        Failure::AtDoor(status)
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::AtDoor(error.into())
    }
}

fn wrong_method(method: &http::Method, allowed: &[http::Method]) -> Status {
    let allow = allowed
        .iter()
        .map(http::Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    status::with_reason(
        Code::Unimplemented,
        "METHOD_NOT_ALLOWED",
        format!("{method} is not allowed here; this path takes {allow}"),
    )
}

/// A call's answer as JSON. It cannot fail for an answer the server made;
/// if it does, that is the server's fault, and logged as such.
fn answer_json(route: &Route, answer: Bytes) -> Result<Bytes, Status> {
    DynamicMessage::decode(route.method.output(), answer)
        .ok()
        .and_then(|output| serde_json::to_vec(&output).ok())
        .map(Bytes::from)
        .ok_or_else(|| {
            tracing::error!(path = %route.grpc_path(), "an answer would not convert to JSON");
            Status::internal("internal error")
        })
}

/// Calls `route`'s method with one request message; its one answer.
async fn call_once<S>(
    mut inner: S,
    route: &Route,
    headers: &http::HeaderMap,
    message: &DynamicMessage,
) -> Result<Bytes, Status>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
{
    let response = call_messages(&mut inner, route, headers, message).await?;
    call::Messages::new(response)?.single().await
}

async fn call_messages<S>(
    inner: &mut S,
    route: &Route,
    headers: &http::HeaderMap,
    message: &DynamicMessage,
) -> Result<http::Response<Body>, Status>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
{
    let framed = crate::grpc::framing::frame(&message.encode_to_vec())?;
    call_with(inner, route, headers, Body::new(Full::new(framed))).await
}

/// Calls `route`'s method with `body` (gRPC-framed request messages).
async fn call_with<S>(
    inner: &mut S,
    route: &Route,
    headers: &http::HeaderMap,
    body: Body,
) -> Result<http::Response<Body>, Status>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
{
    let grpc = call::request(&route.grpc_path(), headers, body);
    inner.call(grpc).await.map_err(|_| {
        tracing::error!(path = %route.grpc_path(), "the in-process call failed");
        Status::internal("internal error")
    })
}

fn json(status: http::StatusCode, body: Bytes) -> http::Response<Body> {
    let mut response = http::Response::new(Body::new(Full::new(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn media_type(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or_default().trim();
    Some(essence.to_ascii_lowercase())
}

/// A JSON body: `application/json`, any `+json` type, or no type at all.
fn is_json(headers: &http::HeaderMap) -> bool {
    media_type(headers)
        .is_none_or(|essence| essence == "application/json" || essence.ends_with("+json"))
}

fn unsupported_media_type(expected: &str) -> Status {
    status::with_reason(
        Code::InvalidArgument,
        "UNSUPPORTED_MEDIA_TYPE",
        format!("the body must be {expected} (send \"content-type: {expected}\")"),
    )
}

/// gRPC and gRPC-Web calls go to tonic, and so does anything sent to a
/// gRPC method's path (`/package.Service/Method`), which the gRPC stack
/// answers with its own reasons (a wrong content type, say); the rest is
/// this door's, whose paths never begin with a dotted name.
fn is_grpc(request: &http::Request<Body>) -> bool {
    let grpc_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"));
    let path = request.uri().path();
    let grpc_path = path != OPENAPI_PATH
        && path
            .trim_start_matches('/')
            .split('/')
            .next()
            .is_some_and(|first| first.contains('.'));
    grpc_type || grpc_path
}

fn is_grpc_web(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc-web"))
}

/// The descriptors of the compiled protos, with the googleapis types the
/// rules and the error details use.
pub fn descriptors() -> anyhow::Result<DescriptorPool> {
    DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET)
        .map_err(|e| anyhow::anyhow!("cannot read the compiled protos: {e}"))
}

/// The OpenAPI document of the compiled protos (`verdad openapi`).
pub fn openapi_document() -> anyhow::Result<Vec<u8>> {
    let descriptors = descriptors()?;
    let routes = RouteTable::from_pool(&descriptors, PACKAGE).map_err(anyhow::Error::msg)?;
    openapi::document(&routes)
}

/// Puts the door in front of the server's gRPC stack.
#[derive(Clone)]
pub struct HttpDoorLayer {
    door: Arc<Door>,
}

impl HttpDoorLayer {
    pub fn new(door: Door) -> Self {
        Self {
            door: Arc::new(door),
        }
    }
}

impl<S> Layer<S> for HttpDoorLayer {
    type Service = HttpDoor<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpDoor {
            inner,
            door: self.door.clone(),
        }
    }
}

#[derive(Clone)]
pub struct HttpDoor<S> {
    inner: S,
    door: Arc<Door>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> Service<http::Request<Body>> for HttpDoor<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        if is_grpc(&request) {
            if is_grpc_web(request.headers()) {
                request.extensions_mut().insert(telemetry::Door::GrpcWeb);
            }
            return Box::pin(self.inner.call(request));
        }
        // The clone that was driven to readiness serves this call.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let door = self.door.clone();
        Box::pin(async move { Ok(door.serve(request, inner).await) })
    }
}
