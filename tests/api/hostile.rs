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

// The HTTP door: generated JSON, query strings and bodies at every route.

/// A JSON value to send, with object keys that are real field names (an
/// index into the route's names) or made up, and numbers JSON allows but
/// no field takes.
#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    /// A number token as written: integers, floats, exponents, huge ones.
    Number(String),
    Text(String),
    List(Vec<Json>),
    Object(Vec<(Name, Json)>),
}

#[derive(Debug, Clone)]
enum Name {
    /// The route's nth name, modulo how many it has.
    Real(usize),
    Made(String),
}

/// What the body of a generated request is.
#[derive(Debug, Clone)]
enum Body {
    None,
    Json(Json),
    /// One JSON value per line (NDJSON), valid or not.
    Lines(Vec<Json>),
    /// Arrays or objects nested this deep.
    Deep(usize, bool),
    /// A string of this many characters in a field of the body.
    Huge(Name, usize),
    /// JSON text cut short after this many bytes.
    Truncated(Json, usize),
    /// Bytes that are not UTF-8, inside a JSON string or bare.
    NotUtf8(Vec<u8>, bool),
}

/// What the query string is.
#[derive(Debug, Clone)]
enum Query {
    Pairs(Vec<(Name, Json)>),
    Raw(&'static str),
}

#[derive(Debug, Clone)]
struct HttpCase {
    route: usize,
    /// The values of the path's variables, and whether to send them raw.
    variables: Vec<(String, bool)>,
    query: Query,
    body: Body,
    content_type: Option<&'static str>,
    /// Another method than the route's, now and then.
    verb: Option<&'static str>,
}

fn name() -> impl Strategy<Value = Name> {
    prop_oneof![
        4 => any::<usize>().prop_map(Name::Real),
        1 => prop_oneof![
            Just("colour".to_owned()),
            Just("@type".to_owned()),
            Just(String::new()),
            Just("__proto__".to_owned()),
            "\\PC{1,12}",
        ]
        .prop_map(Name::Made),
    ]
}

fn json_value() -> impl Strategy<Value = Json> {
    let number = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| f.to_string()),
        Just("1e400".to_owned()),
        Just("-0".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("0.000000000000000000000000001".to_owned()),
        Just("2147483648".to_owned()),
        Just("-2147483649".to_owned()),
        Just("1.5".to_owned()),
    ];
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        number.prop_map(Json::Number),
        text().prop_map(|t| Json::Text(t.chars().take(2000).collect())),
        prop_oneof![
            Just("2026-06-01T09:00:00Z"),
            Just("1999-12-31T23:59:59Z"),
            Just("9999-12-31T23:59:59.999999999Z"),
            Just("2026-13-45T99:00:00Z"),
            Just("3600s"),
            Just("-1.5s"),
            Just("displayName,nope"),
            Just("STAGE_SERVICE"),
            Just("ROLE_ADMIN"),
            Just("TREND_FIGURE_CSAT"),
            Just("reception-desk"),
            Just("0190f3a0-0000-7000-8000-000000000001"),
        ]
        .prop_map(|t| Json::Text(t.to_owned())),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Json::List),
            prop::collection::vec((name(), inner), 0..6).prop_map(Json::Object),
        ]
    })
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        1 => Just(Body::None),
        6 => json_value().prop_map(Body::Json),
        2 => prop::collection::vec((name(), json_value()), 0..8)
            .prop_map(|fields| Body::Json(Json::Object(fields))),
        2 => prop::collection::vec(json_value(), 0..4).prop_map(Body::Lines),
        1 => (prop_oneof![Just(64usize), Just(200), Just(5000)], any::<bool>())
            .prop_map(|(depth, arrays)| Body::Deep(depth, arrays)),
        1 => (name(), prop_oneof![Just(70_000usize), Just(1_000_000), Just(3_500_000),
                                  Just(4_500_000)])
            .prop_map(|(name, size)| Body::Huge(name, size)),
        1 => (json_value(), 0..64usize).prop_map(|(json, cut)| Body::Truncated(json, cut)),
        1 => (prop::collection::vec(any::<u8>(), 1..16), any::<bool>())
            .prop_map(|(mut bytes, quoted)| {
                // A lone continuation byte makes sure it is not UTF-8.
                bytes.push(0x80);
                Body::NotUtf8(bytes, quoted)
            }),
    ]
}

fn query() -> impl Strategy<Value = Query> {
    prop_oneof![
        4 => prop::collection::vec((name(), json_value()), 0..5).prop_map(Query::Pairs),
        1 => prop_oneof![
            Just("%ff%fe=1"),
            Just("pageSize=%ff"),
            Just("&&==&="),
            Just("scope.startTime=2026-06-01T09:00:00Z&scope.startTime=2026-06-02T09:00:00Z"),
            Just("scope=x"),
            Just("updateMask=a,,b"),
            Just("a.b.c.d.e.f.g=1"),
            Just("pageToken=%00"),
        ]
        .prop_map(Query::Raw),
    ]
}

fn http_case(routes: usize) -> impl Strategy<Value = HttpCase> {
    let variable = prop_oneof![
        4 => text().prop_map(|t| (t.chars().take(500).collect::<String>(), false)),
        1 => "[A-Za-z0-9%._~:-]{0,12}".prop_map(|t| (t, true)),
    ];
    (
        0..routes,
        prop::collection::vec(variable, 2),
        query(),
        body(),
        prop_oneof![
            4 => Just(Some("application/json")),
            1 => Just(None),
            1 => Just(Some("application/x-ndjson")),
            1 => Just(Some("text/plain")),
            1 => Just(Some("application/json; charset=latin1")),
            1 => Just(Some("application/merge-patch+json")),
            1 => Just(Some("multipart/form-data; boundary=x")),
        ],
        prop_oneof![
            9 => Just(None),
            1 => prop_oneof![Just("GET"), Just("POST"), Just("PATCH"), Just("DELETE"), Just("PUT")]
                .prop_map(Some),
        ],
    )
        .prop_map(
            |(route, variables, query, body, content_type, verb)| HttpCase {
                route,
                variables,
                query,
                body,
                content_type,
                verb,
            },
        )
}

/// Every name a route's request may use, at any depth: proto and JSON
/// names, and the dotted paths a query parameter takes.
fn field_names(message: &prost_reflect::MessageDescriptor) -> Vec<String> {
    fn walk(
        message: &prost_reflect::MessageDescriptor,
        prefix: &str,
        depth: usize,
        out: &mut Vec<String>,
    ) {
        for field in message.fields() {
            for name in [field.json_name(), field.name()] {
                let dotted = if prefix.is_empty() {
                    name.to_owned()
                } else {
                    format!("{prefix}.{name}")
                };
                out.push(name.to_owned());
                out.push(dotted.clone());
                if let prost_reflect::Kind::Message(inner) = field.kind()
                    && depth < 3
                {
                    walk(&inner, &dotted, depth + 1, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(message, "", 0, &mut out);
    out.sort();
    out.dedup();
    out
}

fn resolve<'a>(name: &'a Name, names: &'a [String]) -> &'a str {
    match name {
        Name::Real(n) if !names.is_empty() => &names[n % names.len()],
        Name::Real(_) => "nothing",
        Name::Made(made) => made,
    }
}

fn render(json: &Json, names: &[String], out: &mut String) {
    match json {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(token) => out.push_str(token),
        Json::Text(text) => out.push_str(&serde_json::Value::from(text.as_str()).to_string()),
        Json::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                render(item, names, out);
            }
            out.push(']');
        }
        Json::Object(fields) => {
            out.push('{');
            for (i, (name, value)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::from(resolve(name, names)).to_string());
                out.push(':');
                render(value, names, out);
            }
            out.push('}');
        }
    }
}

fn rendered(json: &Json, names: &[String]) -> String {
    let mut out = String::new();
    render(json, names, &mut out);
    out
}

/// The text a query parameter's value has: a JSON string as itself, any
/// other value as its JSON text; at most 500 characters, so that the URL
/// stays within what the client sends.
fn parameter(json: &Json, names: &[String]) -> String {
    let text = match json {
        Json::Text(text) => text.clone(),
        other => rendered(other, names),
    };
    text.chars().take(500).collect()
}

/// The method, path and query, and body of a generated case at `route`.
fn lay_out(
    case: &HttpCase,
    route: &verdad::http::routes::Route,
    names: &[String],
) -> (reqwest::Method, String, Vec<u8>) {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let mut path = route.template.as_str().to_owned();
    for (variable, (value, raw)) in route.template.variables().zip(&case.variables) {
        let value = if *raw {
            value.clone()
        } else {
            percent_encoding::utf8_percent_encode(value, SEGMENT).to_string()
        };
        path = path.replace(&format!("{{{variable}}}"), &value);
    }
    let query = match &case.query {
        Query::Raw(raw) => (*raw).to_owned(),
        Query::Pairs(pairs) => {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (name, value) in pairs {
                query.append_pair(resolve(name, names), &parameter(value, names));
            }
            query.finish()
        }
    };
    if !query.is_empty() {
        path = format!("{path}?{query}");
    }
    let body = match &case.body {
        Body::None => Vec::new(),
        Body::Json(json) => rendered(json, names).into_bytes(),
        Body::Lines(lines) => lines
            .iter()
            .map(|line| format!("{}\n", rendered(line, names)))
            .collect::<String>()
            .into_bytes(),
        Body::Deep(depth, arrays) => {
            let (open, close) = if *arrays {
                ("[", "]")
            } else {
                ("{\"a\":", "}")
            };
            format!("{}1{}", open.repeat(*depth), close.repeat(*depth)).into_bytes()
        }
        Body::Huge(name, size) => {
            format!("{{\"{}\":\"{}\"}}", resolve(name, names), "x".repeat(*size)).into_bytes()
        }
        Body::Truncated(json, cut) => {
            let text = rendered(json, names).into_bytes();
            let at = (*cut).min(text.len().saturating_sub(1));
            text[..at].to_vec()
        }
        Body::NotUtf8(bytes, quoted) => {
            if *quoted {
                let mut body = b"{\"displayName\":\"".to_vec();
                body.extend_from_slice(bytes);
                body.extend_from_slice(b"\"}");
                body
            } else {
                bytes.clone()
            }
        }
    };
    let verb = case.verb.unwrap_or(route.verb.as_str());
    (
        reqwest::Method::from_bytes(verb.as_bytes()).unwrap(),
        path,
        body,
    )
}

#[test]
fn generated_http_requests_get_4xx_json_errors_or_answers_and_refusals_write_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (owned, admin) = runtime.block_on(async {
        let app = spawn_app().await;
        let admin = app.demo_key().await;
        app.recorded(&admin, dissatisfied("reception-desk", "his", "h-1"))
            .await;
        (app, admin)
    });
    let app: &TestApp = &owned;
    let table = crate::helpers::route_table();
    let routes = table.routes();
    let names: Vec<Vec<String>> = routes
        .iter()
        .map(|route| field_names(&route.method.input()))
        .collect();
    let http = app.http(&admin);
    let baseline = std::cell::RefCell::new(
        runtime.block_on(app.fingerprint(verdad::demo::DEMO_ORGANISATION_ID)),
    );
    let seen = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    let cut_short = std::cell::RefCell::new(0u32);

    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(64);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&http_case(routes.len()), |case| {
        let route = &routes[case.route];
        let names = &names[case.route];
        let (method, path, body) = lay_out(&case, route, names);
        let what = format!(
            "{method} {} ({}, {} body bytes of {:?})",
            path.chars().take(300).collect::<String>(),
            crate::helpers::route_name(route),
            body.len(),
            case.content_type
        );
        let answer = runtime.block_on(async {
            let mut request = http.request(method.clone(), &path);
            if let Some(content_type) = case.content_type {
                request = request.header("content-type", content_type);
            }
            let response = match request.body(body).send().await {
                Ok(response) => response,
                // The server may answer before it reads a body it has no
                // use for (a path with no route, a body over the limit)
                // and close the connection; the client then fails to send
                // the rest and never reads the answer.
                Err(error) if error.is_request() => return None,
                Err(error) => panic!("{what}: {error}"),
            };
            if response.status().is_success()
                && route.shape == verdad::http::routes::Shape::EventsOut
                && case.verb.is_none()
            {
                // A watch that opened: its status is its answer.
                return Some(crate::helpers::Answer {
                    status: response.status(),
                    content_type: "text/event-stream".to_owned(),
                    json: serde_json::Value::Null,
                    text: String::new(),
                });
            }
            Some(crate::helpers::answer(response).await)
        });
        let Some(answer) = answer else {
            *cut_short.borrow_mut() += 1;
            let now = runtime.block_on(app.fingerprint(verdad::demo::DEMO_ORGANISATION_ID));
            prop_assert!(
                *baseline.borrow() == now,
                "{what} was cut short yet changed rows"
            );
            return Ok(());
        };
        let status = answer.status.as_u16();
        *seen.borrow_mut().entry(status).or_default() += 1;
        prop_assert!(status < 500, "{what}: {status} {}", answer.text);
        if !answer.status.is_success() {
            prop_assert!(
                (400..500).contains(&status),
                "{what}: {status} {}",
                answer.text
            );
            if let Some(fault) = crate::helpers::error_shape_fault(&answer) {
                return Err(TestCaseError::fail(format!("{what}: {fault}")));
            }
        }
        let now = runtime.block_on(app.fingerprint(verdad::demo::DEMO_ORGANISATION_ID));
        let mut baseline = baseline.borrow_mut();
        // A stream of lines stores the batches before a faulty line, and
        // says so in the refusal.
        let stored_before = answer.text.contains("batches before it were stored")
            && !answer.text.contains("the 0 batches before it");
        if answer.status.is_success() || stored_before {
            *baseline = now;
        } else if now != *baseline {
            return Err(TestCaseError::fail(format!(
                "{what} was refused ({status} {}) yet changed rows",
                answer.text
            )));
        }
        Ok(())
    });
    eprintln!(
        "hostile HTTP input: {cases} generated requests, answers by status: {:?}, \
         {} closed before the whole body was sent",
        seen.borrow(),
        cut_short.borrow()
    );
    if let Err(error) = result {
        panic!("{error}");
    }
    // Still serving after all of it, through both doors.
    let health = runtime.block_on(
        app.wait_for_health(tonic_health::pb::health_check_response::ServingStatus::Serving),
    );
    assert_eq!(
        health,
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    let listed = runtime.block_on(http.get("/v1/touchpoints"));
    assert_eq!(listed.status, 200, "{}", listed.text);
    drop(http);
    runtime.block_on(async move { drop(owned) });
}
