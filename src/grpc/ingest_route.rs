//! IngestEncounters, served here instead of by tonic's generated route.
//!
//! tonic gathers each message of a client stream in a buffer of the
//! stream's own, which keeps the capacity of the largest message for as
//! long as the stream is open: 80 streams of 4 MB batches held some 320 MB
//! between their batches, outside any budget. Here each batch is gathered
//! in a buffer of its exact size, freed once decoded, so that what a
//! stream holds is what the stream budget counts. The rules are the same
//! code as the generated route's: `EncounterApi::ingest_batches`.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body::{Body, Frame};
use prost::Message;
use tonic::Status;
use tower::{Layer, Service};

use super::encounter_service::{Batches, EncounterApi};
use crate::{error::Error, ingest::stream_budget::HeldBatches, proto::verdad::v1 as pb};

/// The path the route serves.
pub const PATH: &str = "/verdad.v1.EncounterService/IngestEncounters";

/// Routes IngestEncounters calls to [`EncounterApi::ingest_batches`]; every
/// other call passes on. It sits below authentication, so a call reaching
/// it carries its caller.
#[derive(Clone)]
pub struct IngestRouteLayer {
    api: Arc<EncounterApi>,
}

impl IngestRouteLayer {
    pub fn new(api: Arc<EncounterApi>) -> Self {
        Self { api }
    }
}

impl<S> Layer<S> for IngestRouteLayer {
    type Service = IngestRoute<S>;

    fn layer(&self, inner: S) -> Self::Service {
        IngestRoute {
            inner,
            api: self.api.clone(),
        }
    }
}

#[derive(Clone)]
pub struct IngestRoute<S> {
    inner: S,
    api: Arc<EncounterApi>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> Service<http::Request<tonic::body::Body>> for IngestRoute<S>
where
    S: Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        if request.uri().path() != PATH {
            return Box::pin(self.inner.call(request));
        }
        let api = self.api.clone();
        Box::pin(async move { Ok(ingest(&api, request).await) })
    }
}

/// Serves one IngestEncounters call, errors included.
async fn ingest(
    api: &EncounterApi,
    request: http::Request<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    if let Some(encoding) = request.headers().get("grpc-encoding")
        && encoding != "identity"
    {
        let shown = String::from_utf8_lossy(encoding.as_bytes()).into_owned();
        return Status::unimplemented(format!(
            "messages compressed with {shown:?} are not accepted: send them uncompressed"
        ))
        .into_http();
    }
    let held = request
        .extensions()
        .get::<HeldBatches>()
        .cloned()
        .unwrap_or_default();
    let (parts, body) = request.into_parts();
    let caller = tonic::Request::from_http(http::Request::from_parts(parts, ()));
    let batches = BodyBatches {
        body: Box::pin(body),
        pending: Bytes::new(),
        message: None,
        prefix: [0; 5],
        prefix_read: 0,
    };
    match api.ingest_batches(caller, held, batches).await {
        Ok(response) => answer(&response),
        Err(status) => status.into_http(),
    }
}

/// A gRPC answer of one message: the message, then the OK status.
fn answer(message: &pb::IngestEncountersResponse) -> http::Response<tonic::body::Body> {
    let framed = match super::framing::frame(&message.encode_to_vec()) {
        Ok(framed) => framed,
        Err(error) => return Status::from(error).into_http(),
    };
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let body = OneMessage {
        data: Some(framed),
        trailers: Some(trailers),
    };
    let mut response = http::Response::new(tonic::body::Body::new(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

/// A body of one data frame and the trailers.
struct OneMessage {
    data: Option<Bytes>,
    trailers: Option<http::HeaderMap>,
}

impl Body for OneMessage {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }
}

/// The batches of a request body, each gathered in a buffer of its own
/// exact size. The body's framing was checked as it came (see
/// `crate::grpc::framing`): what arrives here is whole messages.
struct BodyBatches {
    body: Pin<Box<tonic::body::Body>>,
    /// Bytes read and not yet gathered.
    pending: Bytes,
    /// The message being gathered, with its length.
    message: Option<(usize, BytesMut)>,
    prefix: [u8; 5],
    prefix_read: usize,
}

impl BodyBatches {
    /// The next message's bytes; `None` at the end of the body.
    async fn next_message(&mut self) -> Result<Option<Bytes>, Status> {
        loop {
            if let Some(message) = self.gather() {
                return Ok(Some(message));
            }
            match std::future::poll_fn(|cx| self.body.as_mut().poll_frame(cx)).await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.pending = data;
                    }
                }
                Some(Err(status)) => return Err(status),
                None => return Ok(None),
            }
        }
    }

    /// Gathers what is pending into the message; the message once whole.
    fn gather(&mut self) -> Option<Bytes> {
        while self.pending.has_remaining() || matches!(self.message, Some((0, _))) {
            match &mut self.message {
                Some((length, buffer)) => {
                    let taken = (*length - buffer.len()).min(self.pending.remaining());
                    buffer.put(self.pending.split_to(taken));
                    if buffer.len() == *length {
                        let whole = std::mem::take(buffer).freeze();
                        self.message = None;
                        return Some(whole);
                    }
                }
                None => {
                    let taken = (5 - self.prefix_read).min(self.pending.remaining());
                    self.pending.copy_to_slice(
                        &mut self.prefix[self.prefix_read..self.prefix_read + taken],
                    );
                    self.prefix_read += taken;
                    if self.prefix_read == 5 {
                        self.prefix_read = 0;
                        let [_, length @ ..] = self.prefix;
                        let length = u32::from_be_bytes(length) as usize;
                        self.message = Some((length, BytesMut::with_capacity(length)));
                    }
                }
            }
        }
        None
    }
}

impl Batches for BodyBatches {
    async fn next_batch(&mut self) -> Result<Option<pb::IngestEncountersRequest>, Status> {
        let Some(message) = self.next_message().await? else {
            return Ok(None);
        };
        pb::IngestEncountersRequest::decode(message)
            .map(Some)
            .map_err(|error| {
                Status::from(Error::invalid(
                    "request",
                    format!("is not a valid protobuf message: {error}"),
                ))
            })
    }
}
