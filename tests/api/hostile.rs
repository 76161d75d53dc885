//! Hostile input: every RPC driven with generated protobuf messages (odd
//! and very long Unicode, bytes that are not UTF-8, extreme numbers, wrong
//! wire types, repeated and missing fields, unknown enum values, forged page
//! tokens) under good, foreign, missing and garbage keys. Every answer is a
//! proper gRPC status, never INTERNAL, the server stays up, and a refused
//! request changes no row.

use std::time::Duration;

use bytes::{Buf, BufMut};
use proptest::{prelude::*, test_runner::TestCaseError};
use prost::encoding::{WireType, encode_key, encode_varint};
use tonic::{
    Code, Request, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    metadata::MetadataValue,
    transport::Channel,
};
use uuid::Uuid;
use verdad::domain::role::Role;

use crate::helpers::{Method, Org, TestApp, dissatisfied, methods, spawn_app};

/// Passes messages through as bytes, so that any bytes can be sent.
#[derive(Default, Clone)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}

/// A protobuf field value of any wire type.
#[derive(Debug, Clone)]
enum Value {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(Vec<u8>),
    Message(Vec<(u32, Value)>),
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "\\PC{0,40}",
        "[a-z0-9_.-]{1,24}",
        any::<u128>().prop_map(|n| Uuid::from_u128(n).to_string()),
        Just("'; drop table encounter; --".to_owned()),
        Just("\u{0}\u{202e}\u{200b}\u{feff}".to_owned()),
        Just("😀".repeat(3000)),
        Just("x".repeat(70_000)),
        Just("touchpoints/../../organisation".to_owned()),
        Just("Bearer vk_forged".to_owned()),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let number = prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(i64::MAX as u64),
        Just(i64::MIN as u64),
        Just(u64::from(u32::MAX) + 1),
        Just(99),
        any::<u64>(),
    ];
    let leaf = prop_oneof![
        3 => number.prop_map(Value::Varint),
        1 => any::<u64>().prop_map(Value::Fixed64),
        1 => any::<u32>().prop_map(Value::Fixed32),
        4 => text().prop_map(|s| Value::Bytes(s.into_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..48).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop::collection::vec((1u32..=14, inner), 0..6).prop_map(Value::Message)
    })
}

fn message() -> impl Strategy<Value = Vec<(u32, Value)>> {
    prop::collection::vec((1u32..=14, value()), 0..8)
}

fn encode(fields: &[(u32, Value)], out: &mut Vec<u8>) {
    for (tag, value) in fields {
        match value {
            Value::Varint(v) => {
                encode_key(*tag, WireType::Varint, out);
                encode_varint(*v, out);
            }
            Value::Fixed64(v) => {
                encode_key(*tag, WireType::SixtyFourBit, out);
                out.put_u64_le(*v);
            }
            Value::Fixed32(v) => {
                encode_key(*tag, WireType::ThirtyTwoBit, out);
                out.put_u32_le(*v);
            }
            Value::Bytes(bytes) => {
                encode_key(*tag, WireType::LengthDelimited, out);
                encode_varint(bytes.len() as u64, out);
                out.extend_from_slice(bytes);
            }
            Value::Message(inner) => {
                let mut nested = Vec::new();
                encode(inner, &mut nested);
                encode_key(*tag, WireType::LengthDelimited, out);
                encode_varint(nested.len() as u64, out);
                out.extend(nested);
            }
        }
    }
}

/// The keys a case may present.
struct Keys {
    admin: String,
    analyst: String,
    ingest: String,
    foreign: String,
}

/// Calls `method` with `messages` (one, or a stream of them) and returns
/// the status the call ended with.
async fn call(
    channel: Channel,
    method: &Method,
    messages: Vec<Vec<u8>>,
    key: Option<&str>,
) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = method.path.parse().unwrap();
    fn authorize<T>(request: &mut Request<T>, key: Option<&str>) {
        if let Some(key) = key {
            let value = MetadataValue::try_from(format!("Bearer {key}"))
                .unwrap_or_else(|_| MetadataValue::from_static("Bearer garbage"));
            request.metadata_mut().insert("authorization", value);
        }
    }
    let first = messages.first().cloned().unwrap_or_default();
    match (method.client_streaming, method.server_streaming) {
        (true, _) => {
            let mut request = Request::new(tokio_stream::iter(messages));
            authorize(&mut request, key);
            match grpc.client_streaming(request, path, RawCodec).await {
                Ok(_) => Status::ok(""),
                Err(status) => status,
            }
        }
        (false, true) => {
            let mut request = Request::new(first);
            authorize(&mut request, key);
            match grpc.server_streaming(request, path, RawCodec).await {
                Err(status) => status,
                Ok(response) => {
                    let mut stream = response.into_inner();
                    // A watch never ends by itself: what it says within a
                    // moment is its answer.
                    loop {
                        match tokio::time::timeout(Duration::from_millis(300), stream.message())
                            .await
                        {
                            Ok(Ok(Some(_))) => continue,
                            Ok(Ok(None)) | Err(_) => break Status::ok(""),
                            Ok(Err(status)) => break status,
                        }
                    }
                }
            }
        }
        (false, false) => {
            let mut request = Request::new(first);
            authorize(&mut request, key);
            match grpc.unary(request, path, RawCodec).await {
                Ok(_) => Status::ok(""),
                Err(status) => status,
            }
        }
    }
}

#[test]
fn generated_requests_get_proper_statuses_and_refusals_write_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (app, keys) = runtime.block_on(async {
        let app = spawn_app().await;
        let admin = app.demo_key().await;
        app.recorded(&admin, dissatisfied("reception-desk", "his", "h-1"))
            .await;
        let demo = Org {
            id: verdad::demo::DEMO_ORGANISATION_ID,
            admin_key: admin.clone(),
        };
        let analyst = app.key(&demo, Role::Analyst).await;
        let ingest = app.key(&demo, Role::Ingest).await;
        let foreign = app.create_org("Hospital B").await.admin_key;
        (
            app,
            Keys {
                admin,
                analyst,
                ingest,
                foreign,
            },
        )
    });
    let owned = app;
    let app: &TestApp = &owned;
    let methods = methods();
    let channel = runtime.block_on(app.channel());
    // The runner takes a Fn: what the cases update lives in cells.
    let baseline = std::cell::RefCell::new(
        runtime.block_on(app.fingerprint(verdad::demo::DEMO_ORGANISATION_ID)),
    );
    let seen = std::cell::RefCell::new(std::collections::BTreeMap::<String, u32>::new());

    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (
        0..methods.len(),
        prop::collection::vec(message(), 1..3),
        0..6usize,
    );
    let result = runner.run(&strategy, |(index, messages, key)| {
        let method = &methods[index];
        let key = match key {
            0 | 1 => Some(keys.admin.as_str()),
            2 => Some(keys.analyst.as_str()),
            3 => Some(keys.ingest.as_str()),
            4 => Some(keys.foreign.as_str()),
            _ => None,
        };
        let bytes: Vec<Vec<u8>> = messages
            .iter()
            .map(|fields| {
                let mut out = Vec::new();
                encode(fields, &mut out);
                out
            })
            .collect();
        let status = runtime.block_on(call(channel.clone(), method, bytes, key));
        *seen
            .borrow_mut()
            .entry(format!("{:?}", status.code()))
            .or_default() += 1;
        prop_assert!(
            !matches!(
                status.code(),
                Code::Internal | Code::Unknown | Code::DataLoss | Code::Unavailable
            ),
            "{}: {:?}",
            method.path,
            status
        );
        let now = runtime.block_on(app.fingerprint(verdad::demo::DEMO_ORGANISATION_ID));
        let mut baseline = baseline.borrow_mut();
        if status.code() == Code::Ok {
            *baseline = now;
        } else if now != *baseline {
            return Err(TestCaseError::fail(format!(
                "{} was refused ({status:?}) yet changed rows",
                method.path
            )));
        }
        Ok(())
    });
    eprintln!(
        "hostile input: {cases} generated calls, answers by code: {:?}",
        seen.borrow()
    );
    if let Err(error) = result {
        panic!("{error}");
    }
    // Still serving after all of it.
    let health = runtime.block_on(
        app.wait_for_health(tonic_health::pb::health_check_response::ServingStatus::Serving),
    );
    assert_eq!(
        health,
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    drop(channel);
    // The pool and server end inside the runtime they run on.
    runtime.block_on(async move { drop(owned) });
}

#[tokio::test]
async fn a_request_that_does_not_parse_is_invalid_argument_not_internal() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let method = Method {
        path: "/verdad.v1.TouchpointService/GetTouchpoint".into(),
        client_streaming: false,
        server_streaming: false,
    };
    // Field 1 (id) as length-delimited, holding bytes that are not UTF-8;
    // then a truncated field.
    for bytes in [vec![0x0a, 0x02, 0xff, 0xfe], vec![0x0a, 0x05, b'a']] {
        let status = call(app.channel().await, &method, vec![bytes], Some(&key)).await;
        crate::helpers::assert_error(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
        assert!(
            status.message().contains("not a valid protobuf message"),
            "{status:?}"
        );
        assert_eq!(crate::helpers::violated_fields(&status), ["request"]);
    }
    // A huge value quoted back in the error comes back cut, in headers an
    // HTTP/2 client decodes.
    let status = app
        .touchpoints()
        .await
        .archive_touchpoint(crate::helpers::authed(
            &key,
            verdad::proto::verdad::v1::ArchiveTouchpointRequest {
                id: "é".repeat(70_000),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(crate::helpers::violated_fields(&status), ["id"]);
    assert!(
        status.message().chars().count() <= 1000,
        "{}",
        status.message().len()
    );
}
