//! The server's own per-call deadline. Tonic's `Server::timeout` answers
//! CANCELLED when it fires; a caller deserves DEADLINE_EXCEEDED with an
//! `ErrorInfo`, like every other error. (A deadline the caller sets with
//! `grpc-timeout` is still enforced by tonic itself.)

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tonic::{Status, body::Body};
use tower::{Layer, Service};

use crate::error::Error;

/// Client streams whose length is the caller's to choose: a backfill may
/// stream for an hour. Each of their batches commits on its own, so cutting
/// them would only waste work; the caller's own `grpc-timeout` still holds.
const UNBOUNDED_METHODS: &[&str] = &["/verdad.v1.EncounterService/IngestEncounters"];

#[derive(Clone, Copy)]
pub struct DeadlineLayer {
    limit: Duration,
}

impl DeadlineLayer {
    pub fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            limit: self.limit,
        }
    }
}

#[derive(Clone)]
pub struct Deadline<S> {
    inner: S,
    limit: Duration,
}

impl<S, B> Service<http::Request<B>> for Deadline<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let limit = self.limit;
        let unbounded = UNBOUNDED_METHODS.contains(&request.uri().path());
        let call = self.inner.call(request);
        if unbounded {
            return Box::pin(call);
        }
        Box::pin(async move {
            // Dropping the call on expiry drops its open transaction, which
            // rolls back: a call cut by the deadline writes nothing.
            match tokio::time::timeout(limit, call).await {
                Ok(response) => response,
                Err(_) => Ok(Status::from(Error::DeadlineExceeded { limit }).into_http()),
            }
        })
    }
}
