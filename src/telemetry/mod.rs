//! Logging: the subscriber, and one span and one log line per gRPC call with
//! its method, organisation, status code and latency (also counted in the
//! metrics).

pub mod meters;

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
    time::Instant,
};

use http_body::{Body, Frame};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::{Instrument, Span, field::Empty};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::grpc::framing::CallerFault;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Readable lines for people.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the global subscriber: `RUST_LOG` filters (by default `info`,
/// without PostgreSQL's notices such as "relation already exists, skipping").
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx::postgres::notice=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Pretty => registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// The door a call came in by, for its log line and metrics: the HTTP door
/// marks the calls it makes, and passes gRPC-Web ones on marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Door {
    #[default]
    Grpc,
    GrpcWeb,
    Http,
}

impl Door {
    pub fn as_str(self) -> &'static str {
        match self {
            Door::Grpc => "grpc",
            Door::GrpcWeb => "grpc-web",
            Door::Http => "http",
        }
    }
}

/// Logs and counts a call the HTTP door refused itself, before it became a
/// gRPC call (no key, no route, JSON it cannot read): `method` is the
/// route's gRPC method when one was found.
pub fn refused_at_the_door(method: Option<&str>, code: tonic::Code, start: Instant) {
    let method = method.map_or("unimplemented", crate::grpc::methods::name);
    let span = tracing::info_span!("verdad.grpc.call", method, door = Door::Http.as_str());
    let _entered = span.enter();
    ended(method, Door::Http, code, start, "call refused at the door");
}

/// Counts a call's end and logs it in the current span: at ERROR for the
/// codes that say the server failed, at INFO for the rest.
fn ended(method: &'static str, door: Door, code: tonic::Code, start: Instant, what: &str) {
    let elapsed = start.elapsed();
    meters::call_finished(method, door, code, elapsed);
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    let code_name = format!("{code:?}");
    match code {
        tonic::Code::Internal
        | tonic::Code::Unknown
        | tonic::Code::DataLoss
        | tonic::Code::Unavailable => tracing::error!(code = %code_name, latency_ms, "{what}"),
        _ => tracing::info!(code = %code_name, latency_ms, "{what}"),
    }
}

/// Wraps every call in a `verdad.grpc.call` span and logs its end.
#[derive(Clone, Copy, Default)]
pub struct CallTraceLayer;

impl<S> Layer<S> for CallTraceLayer {
    type Service = CallTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallTrace { inner }
    }
}

#[derive(Clone)]
pub struct CallTrace<S> {
    inner: S,
}

impl<S, B, RB> Service<http::Request<B>> for CallTrace<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<CallBody<RB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let method = crate::grpc::methods::name(request.uri().path());
        let door = request
            .extensions()
            .get::<Door>()
            .copied()
            .unwrap_or_default();
        let fault = CallerFault::default();
        request.extensions_mut().insert(fault.clone());
        let span = tracing::info_span!(
            "verdad.grpc.call",
            method,
            door = door.as_str(),
            organisation = Empty,
        );
        let start = Instant::now();
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        Box::pin(async move {
            let response = future.instrument(span.clone()).await?;
            let mut call = Some(CallEnd {
                span,
                start,
                method,
                door,
                fault,
            });
            // Errors of unary calls come "trailers-only": the status is in
            // the headers and the body carries nothing.
            if let Some(code) = grpc_status(response.headers())
                && let Some(call) = call.take()
            {
                call.log(code);
            }
            Ok(response.map(|inner| CallBody { inner, call }))
        })
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<tonic::Code> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
}

struct CallEnd {
    span: Span,
    start: Instant,
    method: &'static str,
    door: Door,
    /// What the caller's request body was found to be wrong with.
    fault: CallerFault,
}

impl CallEnd {
    /// Logs the call's end and counts it in the metrics.
    fn log(self, code: tonic::Code) {
        // A caller that went away is reported so, whatever tonic answered
        // the nobody left to hear it.
        let code = self.fault.code().unwrap_or(code);
        let _entered = self.span.enter();
        ended(self.method, self.door, code, self.start, "call finished");
    }
}

pin_project! {
    /// A response body that logs the call's end when the trailers with its
    /// status pass, or when the body is dropped before them (the caller went
    /// away).
    pub struct CallBody<B> {
        #[pin]
        inner: B,
        call: Option<CallEnd>,
    }

    impl<B> PinnedDrop for CallBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(call) = this.project().call.take() {
                call.log(tonic::Code::Cancelled);
            }
        }
    }
}

impl<B: Body> Body for CallBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(call) = this.call.take()
                {
                    call.log(grpc_status(trailers).unwrap_or(tonic::Code::Unknown));
                }
            }
            Some(Err(_)) => {
                if let Some(call) = this.call.take() {
                    call.log(tonic::Code::Internal);
                }
            }
            None => {
                if let Some(call) = this.call.take() {
                    call.log(tonic::Code::Unknown);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
