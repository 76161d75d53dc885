//! The three streamed shapes over HTTP.
//!
//! - A client stream (IngestEncounters) reads its request body as
//!   newline-delimited JSON, one request message per line, and hands each
//!   line on as it is read, so a batch is committed as over gRPC while the
//!   rest of the body is still arriving. `application/json` is one batch.
//! - A server stream (WatchRecoveryCases) answers with Server-Sent Events,
//!   one `data:` event per message, a comment every 15 s to keep proxies
//!   from closing a quiet stream, and an `error` event if it ends badly.
//! - A stream of file pieces (ExportEventLog) answers with the file.

use std::{convert::Infallible, time::Duration};

use bytes::{Bytes, BytesMut};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, ReflectMessage, Value as Field};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, body::Body};
use tower::Service;

use super::{
    Door, Failure, answer_json, call, call_messages, call_with, media_type, request, routes::Route,
    status, template::Bindings, unsupported_media_type,
};
use crate::{domain::violation::FieldViolation, error::Error};

/// How often a quiet event stream says it is alive.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// The media types of a stream of request messages.
const LINE_TYPES: [&str; 3] = [
    "application/x-ndjson",
    "application/jsonl",
    "application/json",
];

type Frames = mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>;

/// A client stream: each line of the body one request message.
pub(super) async fn lines_in<S>(
    door: &Door,
    route: &Route,
    parts: &http::request::Parts,
    body: Body,
    mut inner: S,
) -> Result<http::Response<Body>, Failure>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
{
    let essence = media_type(&parts.headers);
    let whole = match essence.as_deref() {
        Some("application/x-ndjson" | "application/jsonl") => false,
        None | Some("application/json") => true,
        Some(_) => return Err(unsupported_media_type(&LINE_TYPES.join(" or ")).into()),
    };
    let (sender, receiver) = mpsc::channel(2);
    let input = route.method.input();
    let limit = door.limit;
    let reader = if whole {
        let bytes = door.read_body(parts, body).await?;
        tokio::spawn(async move { send_line(&input, &bytes, 0, 1, &sender).await.map(|_| ()) })
    } else {
        tokio::spawn(async move { read_lines(input, body, limit, sender).await })
    };
    let lines = Body::new(StreamBody::new(ReceiverStream::new(receiver)));
    let answer = match call_with(&mut inner, route, &parts.headers, lines)
        .await
        .and_then(call::Messages::new)
    {
        Ok(messages) => messages.single().await,
        Err(status) => Err(status),
    };
    // The call has ended; a reader still waiting to send has nobody to send to.
    let fault = match reader.await {
        Ok(Err(error)) => Some(error),
        _ => None,
    };
    let answer = answer.map_err(Failure::InCall)?;
    if let Some(error) = fault {
        let output = DynamicMessage::decode(route.method.output(), answer.clone()).ok();
        return Err(Failure::AtDoor(after_stored(error, output.as_ref())));
    }
    let output = answer_json(route, answer).map_err(Failure::InCall)?;
    Ok(super::json(http::StatusCode::OK, output))
}

/// A fault in a line ends the stream there; the lines before it were
/// committed (as a gRPC stream's batches are before a broken one), and the
/// caller is told how many.
fn after_stored(error: Error, summary: Option<&DynamicMessage>) -> Status {
    let batches = summary
        .and_then(|summary| summary.get_field_by_name("batches"))
        .and_then(|value| value.as_i64())
        .unwrap_or(0);
    let note = format!(
        " (the batches before it, {batches}, were stored; sending the whole body again is safe)"
    );
    match error {
        Error::InvalidArgument(mut violations) => {
            for violation in &mut violations {
                violation.description.push_str(&note);
            }
            Error::InvalidArgument(violations).into()
        }
        other => other.into(),
    }
}

/// Reads the body line by line and sends each line's message on; ends the
/// stream at the first line at fault and returns what was wrong with it.
async fn read_lines(
    input: MessageDescriptor,
    mut body: Body,
    limit: usize,
    sender: Frames,
) -> Result<(), Error> {
    let mut pending = BytesMut::new();
    // How much of `pending` is known to hold no newline.
    let mut searched = 0;
    let mut line = 0usize;
    let mut batch = 0usize;
    loop {
        while let Some(end) = pending[searched..].iter().position(|&b| b == b'\n') {
            let text = pending.split_to(searched + end + 1);
            searched = 0;
            line += 1;
            match send_line(&input, &text, batch, line, &sender).await? {
                Line::Sent => batch += 1,
                Line::Blank => {}
                Line::CallOver => return Ok(()),
            }
        }
        searched = pending.len();
        if pending.len() > limit {
            return Err(Error::MessageTooLarge {
                size: pending.len(),
                limit,
            });
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    pending.extend_from_slice(&data);
                }
            }
            Some(Err(_)) => {
                // The caller went away: the call ends as CANCELLED.
                let _ = sender
                    .send(Err(std::io::Error::other("the request body broke off")))
                    .await;
                return Ok(());
            }
            None => break,
        }
    }
    send_line(&input, &pending, batch, line + 1, &sender).await?;
    Ok(())
}

/// What became of a line.
enum Line {
    Sent,
    Blank,
    /// The call has already ended (and said why): nobody reads the rest.
    CallOver,
}

/// Sends the message of one line on; blank lines are skipped.
async fn send_line(
    input: &MessageDescriptor,
    text: &[u8],
    batch: usize,
    line: usize,
    sender: &Frames,
) -> Result<Line, Error> {
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(Line::Blank);
    }
    let prefix = format!("batches[{batch}]");
    let message = request::message_from_slice(input.clone(), text, &prefix)
        .map_err(|error| on_line(error, line))?;
    let framed = crate::grpc::framing::frame(&message.encode_to_vec())?;
    Ok(match sender.send(Ok(Frame::data(framed))).await {
        Ok(()) => Line::Sent,
        Err(_) => Line::CallOver,
    })
}

fn on_line(error: Error, line: usize) -> Error {
    match error {
        Error::InvalidArgument(violations) => Error::InvalidArgument(
            violations
                .into_iter()
                .map(|v| FieldViolation::new(v.field, format!("line {line}: {}", v.description)))
                .collect(),
        ),
        other => other,
    }
}

/// A server stream as Server-Sent Events.
pub(super) async fn events_out<S>(
    door: &Door,
    route: &Route,
    variables: Bindings,
    parts: &http::request::Parts,
    mut inner: S,
) -> Result<http::Response<Body>, Failure>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
{
    let message = request::build(route, variables, parts.uri.query(), &[])?;
    let mut messages = call_messages(&mut inner, route, &parts.headers, &message)
        .await
        .and_then(call::Messages::new)
        .map_err(Failure::InCall)?;
    let output = route.method.output();
    let descriptors = door.descriptors.clone();
    let (sender, receiver) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(8);
    tokio::spawn(async move {
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.tick().await;
        loop {
            let event = tokio::select! {
                next = messages.next() => match next {
                    Some(Ok(bytes)) => match DynamicMessage::decode(output.clone(), bytes) {
                        Ok(message) => match serde_json::to_string(&message) {
                            Ok(text) => format!("data: {text}\n\n"),
                            Err(_) => break,
                        },
                        Err(_) => break,
                    },
                    Some(Err(status)) => {
                        let (_, body) = status::render(&descriptors, &status);
                        let _ = sender
                            .send(Ok(Frame::data(Bytes::from(format!(
                                "event: error\ndata: {}\n\n",
                                String::from_utf8_lossy(&body)
                            )))))
                            .await;
                        break;
                    }
                    None => break,
                },
                _ = keepalive.tick() => ": keepalive\n\n".to_owned(),
            };
            if sender
                .send(Ok(Frame::data(Bytes::from(event))))
                .await
                .is_err()
            {
                // The client has gone: dropping the call ends the watch.
                break;
            }
        }
    });
    let mut answer = http::Response::new(Body::new(StreamBody::new(ReceiverStream::new(receiver))));
    let headers = answer.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    Ok(answer)
}

/// A stream of file pieces as the file.
pub(super) async fn file_out<S>(
    route: &Route,
    variables: Bindings,
    parts: &http::request::Parts,
    mut inner: S,
) -> Result<http::Response<Body>, Failure>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
{
    let Some(piece) = route.response_body.clone() else {
        return Err(Failure::AtDoor(Status::internal("internal error")));
    };
    let message = request::build(route, variables, parts.uri.query(), &[])?;
    let (media, extension) = file_type(&message);
    let mut messages = call_messages(&mut inner, route, &parts.headers, &message)
        .await
        .and_then(call::Messages::new)
        .map_err(Failure::InCall)?;
    let output = route.method.output();
    let (sender, receiver) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
    tokio::spawn(async move {
        while let Some(next) = messages.next().await {
            let item = match next {
                Ok(bytes) => match DynamicMessage::decode(output.clone(), bytes) {
                    Ok(message) => match message.get_field(&piece).as_ref() {
                        Field::Bytes(chunk) => Ok(Frame::data(chunk.clone())),
                        _ => Err(std::io::Error::other("not a piece of the file")),
                    },
                    Err(_) => Err(std::io::Error::other("not a piece of the file")),
                },
                // Breaking the body off tells the client the file is not whole.
                Err(_) => Err(std::io::Error::other("the export failed")),
            };
            let failed = item.is_err();
            if sender.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    let mut answer = http::Response::new(Body::new(StreamBody::new(ReceiverStream::new(receiver))));
    let headers = answer.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(media),
    );
    if let Ok(value) =
        http::HeaderValue::from_str(&format!("attachment; filename=\"event-log.{extension}\""))
    {
        headers.insert(http::header::CONTENT_DISPOSITION, value);
    }
    Ok(answer)
}

/// The media type and file extension of the export a request asks for:
/// XES (XML) when its `format` says so, CSV otherwise (CSV is the default).
fn file_type(request: &DynamicMessage) -> (&'static str, &'static str) {
    let xes = request
        .descriptor()
        .get_field_by_name("format")
        .and_then(|field| match field.kind() {
            prost_reflect::Kind::Enum(kind) => {
                let number = request.get_field(&field).as_enum_number()?;
                kind.get_value(number)
            }
            _ => None,
        })
        .is_some_and(|value| value.name().ends_with("_XES"));
    if xes {
        ("application/xml; charset=utf-8", "xes")
    } else {
        ("text/csv; charset=utf-8", "csv")
    }
}
