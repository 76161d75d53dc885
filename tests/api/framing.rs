//! Requests broken below the protobuf, sent as raw HTTP/2: a message cut
//! short, a compressed flag without an encoding, a unary call without its
//! message, a wrong content type, a message over the limit, a caller that
//! vanishes mid-stream. Each is the caller's fault and answered so, never
//! INTERNAL, and none is logged as an error.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use prost::Message;
use tokio::net::TcpStream;
use tonic::{Code, Status};
use tonic_types::StatusExt;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{ServeProcess, encounter, spawn_app};

/// One message in gRPC's framing: flag, big-endian length, bytes.
fn framed(flag: u8, message: &[u8]) -> Vec<u8> {
    let mut framed = vec![flag];
    framed.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(message);
    framed
}

/// A raw HTTP/2 call's request.
struct RawCall<'a> {
    path: &'a str,
    content_type: &'a str,
    key: &'a str,
    body: Vec<u8>,
    /// Whether the request ends after the body.
    end: bool,
}

/// Sends `call` on a connection of its own and returns the status the
/// server answered with.
async fn status_of(addr: SocketAddr, call: RawCall<'_>) -> Status {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{}", call.path))
        .header("content-type", call.content_type)
        .header("te", "trailers")
        .header("authorization", format!("Bearer {}", call.key))
        .body(())
        .unwrap();
    let (response, mut sending) = client.send_request(request, false).unwrap();
    sending.send_data(Bytes::from(call.body), call.end).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("no answer")
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    if let Some(status) = Status::from_header_map(response.headers()) {
        return status;
    }
    let mut body = response.into_body();
    while let Some(data) = body.data().await {
        let _ = data;
    }
    let trailers = body.trailers().await.unwrap().expect("no trailers");
    Status::from_header_map(&trailers).expect("no grpc-status in the trailers")
}

fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn broken_frames_are_the_callers_fault_and_no_error_in_the_log() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let mut server = ServeProcess::start(
        &app.database_url,
        &["--log-format", "json", "--max-message-bytes", "65536"],
    )
    .await;
    let get = "/verdad.v1.TouchpointService/GetTouchpoint";
    let ingest = "/verdad.v1.EncounterService/IngestEncounters";
    let lookup = pb::GetTouchpointRequest {
        id: String::new(),
        code: "reception-desk".into(),
    }
    .encode_to_vec();
    let grpc = "application/grpc";
    let call = |path, body: Vec<u8>| RawCall {
        path,
        content_type: grpc,
        key: &key,
        body,
        end: true,
    };

    // The well-formed call, for comparison.
    let ok = status_of(server.addr, call(get, framed(0, &lookup))).await;
    assert_eq!(ok.code(), Code::Ok, "{ok:?}");

    let mut cut = framed(0, &lookup);
    cut.truncate(cut.len() - 3);
    let cases = [
        (
            "a message cut short",
            call(get, cut),
            Code::InvalidArgument,
            "TRUNCATED_MESSAGE",
        ),
        (
            "a prefix cut short",
            call(ingest, vec![0, 0, 0]),
            Code::InvalidArgument,
            "TRUNCATED_MESSAGE",
        ),
        (
            "a compressed flag without grpc-encoding",
            call(get, framed(1, &lookup)),
            Code::InvalidArgument,
            "COMPRESSED_WITHOUT_ENCODING",
        ),
        (
            "a flag gRPC does not have",
            call(get, framed(7, &lookup)),
            Code::InvalidArgument,
            "MALFORMED_MESSAGE",
        ),
        (
            "a unary call without a message",
            call(get, Vec::new()),
            Code::InvalidArgument,
            "MISSING_MESSAGE",
        ),
        (
            "a wrong content type",
            RawCall {
                content_type: "application/json",
                ..call(get, b"{\"code\": \"reception-desk\"}".to_vec())
            },
            Code::InvalidArgument,
            "UNSUPPORTED_CONTENT_TYPE",
        ),
        (
            "a message over the limit",
            RawCall {
                end: false,
                ..call(ingest, framed(0, &[0; 70_000])[..10_000].to_vec())
            },
            Code::ResourceExhausted,
            "MESSAGE_TOO_LARGE",
        ),
        (
            "a unary message over the limit",
            call(get, framed(0, &[0; 70_000])),
            Code::ResourceExhausted,
            "MESSAGE_TOO_LARGE",
        ),
    ];
    for (what, raw, code, why) in cases {
        let status = status_of(server.addr, raw).await;
        assert_eq!(status.code(), code, "{what}: {status:?}");
        assert_eq!(reason(&status), why, "{what}: {status:?}");
        assert!(!status.message().is_empty(), "{what}");
    }

    // A feed that dies mid-stream: two batches whole, a third cut off by
    // the connection's end.
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{}{ingest}", server.addr))
        .header("content-type", grpc)
        .header("te", "trailers")
        .header("authorization", format!("Bearer {key}"))
        .body(())
        .unwrap();
    let (_response, mut sending) = client.send_request(request, false).unwrap();
    for id in ["vanish-1", "vanish-2"] {
        let batch = pb::IngestEncountersRequest {
            encounters: vec![encounter("reception-desk", "his", id)],
        };
        sending
            .send_data(Bytes::from(framed(0, &batch.encode_to_vec())), false)
            .unwrap();
    }
    sending
        .send_data(Bytes::from_static(&[0, 0, 0, 1, 0, 1]), false)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    connection.abort();
    drop(sending);
    drop(client);
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert!(server.terminate().await.success());
    let log = server.log();
    let errors: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("\"level\":\"ERROR\""))
        .collect();
    assert!(
        errors.is_empty(),
        "logged as errors:\n{}",
        errors.join("\n")
    );
    let ingest_ends: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("call finished") && line.contains("IngestEncounters"))
        .collect();
    assert!(
        ingest_ends
            .last()
            .is_some_and(|line| line.contains("Cancelled")),
        "{}",
        ingest_ends.join("\n")
    );
    let stored: i64 =
        sqlx::query_scalar("select count(*) from encounter where external_id like 'vanish-%'")
            .fetch_one(&mut app.owner_connection().await)
            .await
            .unwrap();
    assert_eq!(stored, 2, "the whole batches before the break are stored");
}

/// Sends `batches` on one IngestEncounters call, each in a DATA frame of its
/// own, as fast as HTTP/2 lets them go, and returns the answer.
async fn ingest_frame_by_frame(
    addr: SocketAddr,
    key: &str,
    batches: impl Iterator<Item = pb::IngestEncountersRequest>,
) -> Result<pb::IngestEncountersResponse, Status> {
    let frames = batches.map(|batch| Bytes::from(framed(0, &batch.encode_to_vec())));
    ingest_raw(addr, key, frames).await
}

/// Sends `pieces` of an IngestEncounters body, each in a DATA frame of its
/// own, and returns the answer.
async fn ingest_raw(
    addr: SocketAddr,
    key: &str,
    pieces: impl Iterator<Item = Bytes>,
) -> Result<pb::IngestEncountersResponse, Status> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://{addr}/verdad.v1.EncounterService/IngestEncounters"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {key}"))
        .body(())
        .unwrap();
    let (response, mut sending) = client.send_request(request, false).unwrap();
    for frame in pieces {
        // Wait for window only when HTTP/2 has none to give: the frames
        // otherwise go out as fast as they are made.
        sending.reserve_capacity(frame.len());
        while sending.capacity() < frame.len() {
            match std::future::poll_fn(|cx| sending.poll_capacity(cx)).await {
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        if sending.send_data(frame, false).is_err() {
            break;
        }
    }
    let _ = sending.send_data(Bytes::new(), true);
    let response = tokio::time::timeout(Duration::from_secs(120), response)
        .await
        .expect("no answer")
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut body = response.into_body();
    let mut message = Vec::new();
    while let Some(data) = body.data().await {
        let data = data.map_err(|e| Status::unavailable(e.to_string()))?;
        message.extend_from_slice(&data);
        let _ = body.flow_control().release_capacity(data.len());
    }
    let trailers = body
        .trailers()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?
        .unwrap_or_default();
    let status = Status::from_header_map(&trailers).unwrap_or_else(|| Status::ok(""));
    if status.code() != Code::Ok {
        return Err(status);
    }
    Ok(pb::IngestEncountersResponse::decode(&message[5..]).unwrap())
}

#[tokio::test]
async fn small_batches_sent_back_to_back_each_in_its_own_frame_all_arrive() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let one = |n: usize| pb::IngestEncountersRequest {
        encounters: vec![encounter("reception-desk", "his", &format!("small-{n}"))],
    };
    let answer = ingest_frame_by_frame(app.addr, &key, (0..3000).map(one))
        .await
        .expect("the stream of small batches failed");
    assert_eq!((answer.batches, answer.accepted), (3000, 3000));

    let empty = std::iter::repeat_with(pb::IngestEncountersRequest::default).take(20_000);
    let answer = ingest_frame_by_frame(app.addr, &key, empty)
        .await
        .expect("the stream of empty batches failed");
    assert_eq!((answer.batches, answer.accepted), (20_000, 0));
}

#[tokio::test]
async fn pieces_that_hold_the_end_of_one_batch_and_the_start_of_the_next_flow_within_the_budget() {
    // Room for one batch of some 40 KB at a time, and pieces of 10,000
    // bytes: most hold the end of a batch and the start of the next.
    let app = crate::helpers::spawn_app_with(|s| {
        s.max_message_bytes = 64 * 1024;
        s.stream_buffer_bytes = 0;
    })
    .await;
    let key = app.demo_key().await;
    let mut body = Vec::new();
    for b in 0..4 {
        let batch = pb::IngestEncountersRequest {
            encounters: (0..40)
                .map(|i| pb::Encounter {
                    comment: "x".repeat(1000),
                    ..encounter("reception-desk", "his", &format!("piece-{b}-{i}"))
                })
                .collect(),
        };
        body.extend(framed(0, &batch.encode_to_vec()));
    }
    let pieces: Vec<Bytes> = body.chunks(10_000).map(Bytes::copy_from_slice).collect();
    let answer = tokio::time::timeout(
        Duration::from_secs(20),
        ingest_raw(app.addr, &key, pieces.into_iter()),
    )
    .await
    .expect("the stream stalled: a piece waited for room its own batch held")
    .expect("the stream failed");
    assert_eq!((answer.batches, answer.accepted), (4, 160));
}
