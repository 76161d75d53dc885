//! Calls into the server's own gRPC stack, in-process: the request the
//! HTTP door made goes through the same layers as a gRPC call (tracing,
//! framing and its limits, the deadline, authentication, the routes) to
//! the same handler, and the answer comes back as gRPC frames and a
//! status, which the door turns into HTTP.

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;
use tonic::{Code, Status, body::Body};

/// The headers an HTTP request hands on to the call: the key and the
/// caller's own deadline.
const PASSED_ON: [http::HeaderName; 2] = [
    http::header::AUTHORIZATION,
    http::HeaderName::from_static("grpc-timeout"),
];

/// The gRPC request for `path` with `body`, carrying what the HTTP
/// request's headers pass on.
pub fn request(path: &str, from: &http::HeaderMap, body: Body) -> http::Request<Body> {
    let mut request = http::Request::new(body);
    request
        .extensions_mut()
        .insert(crate::telemetry::Door::Http);
    *request.method_mut() = http::Method::POST;
    *request.version_mut() = http::Version::HTTP_2;
    if let Ok(uri) = path.parse() {
        *request.uri_mut() = uri;
    }
    let headers = request.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    headers.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
    for name in PASSED_ON {
        if let Some(value) = from.get(&name) {
            headers.insert(name, value.clone());
        }
    }
    request
}

/// The messages of a call's answer, then its status.
pub struct Messages {
    body: Body,
    buffer: BytesMut,
    done: bool,
}

impl Messages {
    /// The answer's messages; an answer that is only a status (the call
    /// failed before it began to answer) is that status.
    pub fn new(response: http::Response<Body>) -> Result<Self, Status> {
        let (parts, body) = response.into_parts();
        if let Some(status) = Status::from_header_map(&parts.headers)
            && status.code() != Code::Ok
        {
            return Err(status);
        }
        Ok(Self {
            body,
            buffer: BytesMut::new(),
            done: false,
        })
    }

    /// The next message; `None` once the call ended well; the status when
    /// it ended otherwise.
    pub async fn next(&mut self) -> Option<Result<Bytes, Status>> {
        loop {
            if let Some(message) = self.take() {
                return Some(message);
            }
            if self.done {
                return None;
            }
            match self.body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.buffer.extend_from_slice(&data),
                    Err(frame) => {
                        self.done = true;
                        let status = frame
                            .trailers_ref()
                            .and_then(Status::from_header_map)
                            .unwrap_or_else(|| Status::internal("the call ended without a status"));
                        if status.code() != Code::Ok {
                            return Some(Err(status));
                        }
                        if !self.buffer.is_empty() {
                            return Some(Err(Status::internal("the answer ended mid-message")));
                        }
                    }
                },
                Some(Err(_)) => {
                    self.done = true;
                    return Some(Err(Status::internal("the answer broke off")));
                }
                None => {
                    self.done = true;
                    return Some(Err(Status::internal("the call ended without a status")));
                }
            }
        }
    }

    /// The whole message at the front of the buffer, when it is there.
    fn take(&mut self) -> Option<Result<Bytes, Status>> {
        if self.buffer.len() < 5 {
            return None;
        }
        if self.buffer[0] != 0 {
            self.done = true;
            return Some(Err(Status::internal(
                "a compressed answer was not asked for",
            )));
        }
        let length = u32::from_be_bytes([
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
            self.buffer[4],
        ]) as usize;
        if self.buffer.len() < 5 + length {
            return None;
        }
        self.buffer.advance(5);
        Some(Ok(self.buffer.split_to(length).freeze()))
    }

    /// The one message of a unary answer.
    pub async fn single(mut self) -> Result<Bytes, Status> {
        let message = match self.next().await {
            Some(message) => message?,
            None => return Err(Status::internal("the answer held no message")),
        };
        match self.next().await {
            None => Ok(message),
            Some(Err(status)) => Err(status),
            Some(Ok(_)) => Err(Status::internal("the answer held more than one message")),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{Full, StreamBody};

    use super::*;
    use crate::grpc::framing::frame;

    fn answer(frames: Vec<http_body::Frame<Bytes>>) -> http::Response<Body> {
        let stream = tokio_stream::iter(frames.into_iter().map(Ok::<_, std::convert::Infallible>));
        http::Response::new(Body::new(StreamBody::new(stream)))
    }

    fn trailers(code: Code) -> http_body::Frame<Bytes> {
        let mut map = http::HeaderMap::new();
        map.insert("grpc-status", (code as i32).to_string().parse().unwrap());
        http_body::Frame::trailers(map)
    }

    #[tokio::test]
    async fn messages_split_across_frames_come_whole() {
        let framed = [
            frame(b"hello").unwrap(),
            frame(b"").unwrap(),
            frame(b"world").unwrap(),
        ]
        .concat();
        let (a, b) = framed.split_at(7);
        let response = answer(vec![
            http_body::Frame::data(Bytes::copy_from_slice(a)),
            http_body::Frame::data(Bytes::copy_from_slice(b)),
            trailers(Code::Ok),
        ]);
        let mut messages = Messages::new(response).unwrap();
        assert_eq!(messages.next().await.unwrap().unwrap(), "hello");
        assert_eq!(messages.next().await.unwrap().unwrap(), "");
        assert_eq!(messages.next().await.unwrap().unwrap(), "world");
        assert!(messages.next().await.is_none());
    }

    #[tokio::test]
    async fn a_failed_call_ends_with_its_status() {
        let response = answer(vec![
            http_body::Frame::data(frame(b"one").unwrap()),
            trailers(Code::NotFound),
        ]);
        let mut messages = Messages::new(response).unwrap();
        assert!(messages.next().await.unwrap().is_ok());
        assert_eq!(
            messages.next().await.unwrap().unwrap_err().code(),
            Code::NotFound
        );

        let mut only_status = http::Response::new(Body::new(Full::new(Bytes::new())));
        only_status
            .headers_mut()
            .insert("grpc-status", "7".parse().unwrap());
        let Err(status) = Messages::new(only_status) else {
            panic!("a trailers-only answer is its status");
        };
        assert_eq!(status.code(), Code::PermissionDenied);

        let cut = answer(vec![http_body::Frame::data(Bytes::from_static(
            b"\0\0\0\0\x09ab",
        ))]);
        let status = Messages::new(cut).unwrap().single().await.unwrap_err();
        assert_eq!(status.code(), Code::Internal);
    }
}
