//! The answer side of the framing: an answer over the message limit is
//! told as RESOURCE_EXHAUSTED, not as tonic's OUT_OF_RANGE.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http_body::{Body, Frame};
use pin_project_lite::pin_project;
use tonic::Status;

use crate::error::Error;

pin_project! {
    /// An answer whose status is told plainly when its message was over
    /// the limit: tonic encodes it and then answers OUT_OF_RANGE ("encoded
    /// message length too large"), which reads like the caller's range.
    /// Every answer that can grow is paged or capped to fit; this is for
    /// what those bounds miss.
    pub(super) struct CheckedAnswer<B> {
        #[pin]
        pub(super) inner: B,
        pub(super) limit: usize,
    }
}

impl<B> Body for CheckedAnswer<B>
where
    B: Body<Data = Bytes, Error = Status>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        let Some(Ok(frame)) = frame else {
            return Poll::Ready(frame);
        };
        let frame = match frame.into_trailers() {
            Ok(mut trailers) => {
                if let Some(size) = oversized_answer(&trailers) {
                    let plain = Status::from(Error::AnswerTooLarge {
                        size,
                        limit: *this.limit,
                    });
                    let mut rewritten = http::HeaderMap::new();
                    if plain.add_header(&mut rewritten).is_ok() {
                        trailers = rewritten;
                    }
                }
                Frame::trailers(trailers)
            }
            Err(frame) => frame,
        };
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The size of the answer tonic refused to send for its length, if these
/// trailers say so.
fn oversized_answer(trailers: &http::HeaderMap) -> Option<usize> {
    let status = Status::from_header_map(trailers)?;
    if status.code() != tonic::Code::OutOfRange {
        return None;
    }
    let found = status
        .message()
        .strip_prefix("Error, encoded message length too large: found ")?;
    found.split(' ').next()?.parse().ok()
}
