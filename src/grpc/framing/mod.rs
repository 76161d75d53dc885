//! The gRPC framing of request bodies, checked as they arrive and before
//! tonic decodes them. tonic answers a broken frame with INTERNAL (a
//! message cut short, a compressed flag without `grpc-encoding`, a unary
//! call without its message) and an oversized one with OUT_OF_RANGE; each
//! is the caller's fault, so each is answered here as one: INVALID_ARGUMENT,
//! or RESOURCE_EXHAUSTED for a message over the limit. A body that breaks
//! off because the caller went away ends the call as CANCELLED.
//!
//! A gRPC message on the wire is a 1-byte compressed flag, a 4-byte
//! big-endian length and the message's bytes. Knowing where each message
//! begins also lets a client stream's batches be admitted to the server's
//! stream budget before their bytes are read (see [`crate::ingest::stream_budget`]).

use std::{
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll, ready},
};

use bytes::{BufMut, Bytes, BytesMut};
use http_body::{Body, Frame};
use pin_project_lite::pin_project;
use tonic::Status;
use tower::{Layer, Service};

use tokio::sync::OwnedSemaphorePermit;

mod answer;
mod frames;

use answer::CheckedAnswer;
use frames::Frames;

use crate::{
    error::Error,
    grpc::methods,
    ingest::stream_budget::{HeldBatches, StreamBudget, split},
};

/// The fault a caller's request body was found with, for the log line of
/// the call's end: a caller that went away during a unary call leaves
/// tonic answering INTERNAL ("Missing request message."), which nobody
/// receives but the log would report.
#[derive(Debug, Clone, Default)]
pub struct CallerFault(Arc<OnceLock<tonic::Code>>);

impl CallerFault {
    /// The code the call ended with, as far as its caller's faults say.
    pub fn code(&self) -> Option<tonic::Code> {
        self.0.get().copied()
    }

    fn set(&self, code: tonic::Code) {
        let _ = self.0.set(code);
    }
}

/// The largest message of a call (`--max-message-bytes`), for the handlers
/// whose answers could grow past it: they fit their pages to it.
#[derive(Debug, Clone, Copy)]
pub struct MessageLimit(pub usize);

impl MessageLimit {
    /// tonic's own default, for a handler that gets no limit.
    pub const DEFAULT: usize = 4 * 1024 * 1024;
}

/// Checks the content type and the message framing of every call, and
/// admits client streams' messages to the stream budget.
#[derive(Debug, Clone)]
pub struct FramingLayer {
    /// The largest message a request may carry (`--max-message-bytes`).
    limit: usize,
    budget: StreamBudget,
}

impl FramingLayer {
    pub fn new(limit: usize, budget: StreamBudget) -> Self {
        Self { limit, budget }
    }
}

impl<S> Layer<S> for FramingLayer {
    type Service = Framing<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Framing {
            inner,
            limit: self.limit,
            budget: self.budget.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Framing<S> {
    inner: S,
    limit: usize,
    budget: StreamBudget,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> Service<http::Request<tonic::body::Body>> for Framing<S>
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

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        if let Err(error) = check_content_type(request.headers()) {
            let refused = Status::from(error).into_http();
            return Box::pin(async move { Ok(refused) });
        }
        request.extensions_mut().insert(MessageLimit(self.limit));
        let method = methods::find(request.uri().path());
        let unary = method.is_some_and(|m| !m.client_streaming);
        // Only a client stream's handler gives its batches' shares back.
        let admission = method.filter(|m| m.client_streaming).map(|_| {
            let held = HeldBatches::new(self.budget.clone());
            request.extensions_mut().insert(held.clone());
            Admission {
                budget: self.budget.clone(),
                held,
                costs: Vec::new(),
                taking: None,
                waiting: None,
            }
        });
        // A compressed message is for tonic to take or refuse by its
        // grpc-encoding; without one, the flag is a fault of the frame.
        let encoded = request
            .headers()
            .get("grpc-encoding")
            .is_some_and(|encoding| encoding != "identity");
        let fault = request
            .extensions()
            .get::<CallerFault>()
            .cloned()
            .unwrap_or_default();
        let limit = self.limit;
        let request = request.map(|body| {
            tonic::body::Body::new(CheckedBody {
                inner: body,
                frames: Frames::new(limit, unary, encoded),
                fault,
                admission,
                begun: Vec::new(),
                ended: false,
            })
        });
        let answered = self.inner.call(request);
        Box::pin(async move {
            let response = answered.await?;
            Ok(response.map(|body| tonic::body::Body::new(CheckedAnswer { inner: body, limit })))
        })
    }
}

/// gRPC's content types: `application/grpc`, optionally `+proto` and
/// parameters.
fn check_content_type(headers: &http::HeaderMap) -> Result<(), Error> {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if matches!(
        essence.as_str(),
        "application/grpc" | "application/grpc+proto"
    ) {
        return Ok(());
    }
    let shown: String = content_type.chars().take(100).collect();
    Err(Error::Malformed {
        reason: "UNSUPPORTED_CONTENT_TYPE",
        message: format!(
            "the content type must be application/grpc (or application/grpc+proto), got {shown:?}"
        ),
    })
}

pin_project! {
    /// A request body whose messages are checked as their frames pass.
    struct CheckedBody<B> {
        #[pin]
        inner: B,
        frames: Frames,
        fault: CallerFault,
        // A client stream's admission to the stream budget.
        admission: Option<Admission>,
        // The lengths of the messages begun in the frame being read.
        begun: Vec<usize>,
        // Set once the body has ended or failed: nothing more is read.
        ended: bool,
    }
}

/// Where a client stream stands with the stream budget.
struct Admission {
    budget: StreamBudget,
    held: HeldBatches,
    /// The costs of the messages begun in the frame held back.
    costs: Vec<usize>,
    /// The budget being waited for, and the frame held back until then.
    taking: Option<Pin<Box<dyn Future<Output = OwnedSemaphorePermit> + Send>>>,
    waiting: Option<Frame<Bytes>>,
}

impl Admission {
    /// Holds `data` back until the budget has room for the messages begun
    /// in it.
    fn hold_back(&mut self, data: Bytes, begun: &[usize]) {
        self.costs = begun.iter().map(|l| self.budget.cost(*l)).collect();
        let total = self.costs.iter().sum();
        self.taking = Some(Box::pin(self.budget.clone().take(total)));
        self.waiting = Some(Frame::data(data));
    }

    /// The held-back frame, once the budget had room for it.
    fn poll_admitted(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<Bytes>>> {
        let Some(taking) = &mut self.taking else {
            return Poll::Ready(None);
        };
        let taken = ready!(taking.as_mut().poll(cx));
        self.taking = None;
        self.held.hold(split(taken, &self.costs));
        Poll::Ready(self.waiting.take())
    }
}

impl<B> Body for CheckedBody<B>
where
    B: Body<Data = Bytes, Error = Status>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let mut this = self.project();
        loop {
            if let Some(admission) = this.admission.as_mut()
                && let Some(frame) = ready!(admission.poll_admitted(cx))
            {
                return Poll::Ready(Some(Ok(frame)));
            }
            if *this.ended {
                return Poll::Ready(None);
            }
            this.begun.clear();
            let mut first = 0;
            let checked = match ready!(this.inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => match frame.data_ref() {
                    Some(data) => this.frames.read(data.clone(), this.begun).map(|at| {
                        first = at;
                        Some(frame)
                    }),
                    None => Ok(Some(frame)),
                },
                // The connection broke or the caller reset the call: h2 and
                // hyper say so as body errors.
                Some(Err(_)) => Err(Error::Cancelled),
                None => this.frames.finish().map(|()| None),
            };
            match checked {
                Ok(Some(frame)) => match this.admission.as_mut() {
                    // New messages begin in this piece: what comes before
                    // them (the end of a message admitted before) passes
                    // at once, so that its handler can finish it and give
                    // its share back; the rest waits for the budget.
                    Some(admission) if !this.begun.is_empty() => {
                        let Ok(mut data) = frame.into_data() else {
                            continue;
                        };
                        let rest = data.split_off(first);
                        admission.hold_back(rest, this.begun);
                        if !data.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                    }
                    _ => return Poll::Ready(Some(Ok(frame))),
                },
                Ok(None) => {
                    *this.ended = true;
                    return Poll::Ready(None);
                }
                Err(error) => {
                    *this.ended = true;
                    let status = Status::from(error);
                    this.fault.set(status.code());
                    return Poll::Ready(Some(Err(status)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // Not the inner body's end: the check of how it ended is still to
        // come when it says so.
        self.ended
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// `message` in gRPC's framing: an uncompressed flag, its length, itself.
/// The length field holds at most `u32::MAX` bytes.
pub fn frame(message: &[u8]) -> Result<Bytes, Error> {
    let length = u32::try_from(message.len()).map_err(|_| Error::MessageTooLarge {
        size: message.len(),
        limit: u32::MAX as usize,
    })?;
    let mut framed = BytesMut::with_capacity(message.len() + 5);
    framed.put_u8(0);
    framed.put_u32(length);
    framed.put_slice(message);
    Ok(framed.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(flag: u8, body: &[u8]) -> Vec<u8> {
        let mut framed = vec![flag];
        framed.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
        framed.extend_from_slice(body);
        framed
    }

    fn read_all(frames: &mut Frames, bytes: &[u8], chunk: usize) -> Result<(), Error> {
        for piece in bytes.chunks(chunk.max(1)) {
            frames.read(Bytes::copy_from_slice(piece), &mut Vec::new())?;
        }
        frames.finish()
    }

    fn reason(result: Result<(), Error>) -> String {
        match result {
            Err(Error::Malformed { reason, .. }) => reason.to_owned(),
            Err(Error::MessageTooLarge { .. }) => "TOO_LARGE".to_owned(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn whole_messages_pass_however_the_bytes_are_cut() {
        let mut body = message(0, b"hello");
        body.extend(message(0, b""));
        body.extend(message(0, &[7; 300]));
        for chunk in [1, 2, 4, 5, 6, 7, 100, 1000] {
            let mut frames = Frames::new(1000, false, false);
            read_all(&mut frames, &body, chunk).unwrap();
            assert_eq!(frames.messages, 3);
        }
        let mut unary = Frames::new(1000, true, false);
        read_all(&mut unary, &message(0, b"one"), 2).unwrap();
    }

    #[test]
    fn a_piece_says_where_its_first_new_message_begins() {
        let mut body = message(0, b"hello");
        body.extend(message(0, b"world"));
        let mut frames = Frames::new(1000, false, false);
        let mut begun = Vec::new();
        // The first piece: all of the first message and three bytes of
        // the second's prefix.
        let first = frames
            .read(Bytes::copy_from_slice(&body[..13]), &mut begun)
            .unwrap();
        assert_eq!((first, begun.as_slice()), (0, &[5][..]));
        // The second: the rest of that prefix, which began before.
        begun.clear();
        let at = frames
            .read(Bytes::copy_from_slice(&body[13..]), &mut begun)
            .unwrap();
        assert_eq!((at, begun.as_slice()), (0, &[5][..]));
        // The end of one message and the start of the next in one piece.
        let mut frames = Frames::new(1000, false, false);
        frames
            .read(Bytes::copy_from_slice(&body[..7]), &mut Vec::new())
            .unwrap();
        begun.clear();
        let at = frames
            .read(Bytes::copy_from_slice(&body[7..]), &mut begun)
            .unwrap();
        assert_eq!((at, begun.as_slice()), (3, &[5][..]));
    }

    #[test]
    fn a_body_that_ends_inside_a_message_is_truncated() {
        let body = message(0, b"hello");
        for cut in [1, 4, 5, 9] {
            let mut frames = Frames::new(1000, false, false);
            assert_eq!(
                reason(read_all(&mut frames, &body[..cut], 3)),
                "TRUNCATED_MESSAGE"
            );
        }
    }

    #[test]
    fn flags_lengths_and_unary_counts_are_checked() {
        let mut frames = Frames::new(1000, false, false);
        assert_eq!(
            reason(read_all(&mut frames, &message(1, b"x"), 100)),
            "COMPRESSED_WITHOUT_ENCODING"
        );
        let mut encoded = Frames::new(1000, false, true);
        read_all(&mut encoded, &message(1, b"x"), 100).unwrap();
        let mut frames = Frames::new(1000, false, true);
        assert_eq!(
            reason(read_all(&mut frames, &message(2, b"x"), 100)),
            "MALFORMED_MESSAGE"
        );
        let mut frames = Frames::new(4, false, false);
        assert_eq!(
            reason(read_all(&mut frames, &message(0, b"12345"), 100)),
            "TOO_LARGE"
        );
        let mut unary = Frames::new(1000, true, false);
        assert_eq!(reason(read_all(&mut unary, &[], 1)), "MISSING_MESSAGE");
        let mut two = message(0, b"a");
        two.extend(message(0, b"b"));
        let mut unary = Frames::new(1000, true, false);
        assert_eq!(reason(read_all(&mut unary, &two, 100)), "TOO_MANY_MESSAGES");
        // A stream of no messages is a stream.
        let mut stream = Frames::new(1000, false, false);
        read_all(&mut stream, &[], 1).unwrap();
    }

    #[test]
    fn only_grpc_content_types_pass() {
        let headers = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(http::header::CONTENT_TYPE, value.parse().unwrap());
            headers
        };
        for good in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC; charset=x",
        ] {
            assert!(check_content_type(&headers(good)).is_ok(), "{good}");
        }
        for bad in ["application/json", "application/grpc-web", "text/plain", ""] {
            assert!(check_content_type(&headers(bad)).is_err(), "{bad}");
        }
        assert!(check_content_type(&http::HeaderMap::new()).is_err());
    }
}
