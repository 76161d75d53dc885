//! Browsers: gRPC-Web (binary and text) on the same port, and the CORS
//! origins the operator allows (none by default).

use base64::Engine;
use prost::Message;
use reqwest::StatusCode;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{spawn_app, spawn_app_with};

const ORIGIN: &str = "https://quality.example-hospital.org";

fn framed(message: &impl Message) -> Vec<u8> {
    let bytes = message.encode_to_vec();
    let mut framed = vec![0];
    framed.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    framed.extend_from_slice(&bytes);
    framed
}

/// The frames of a gRPC-Web answer: (flag, bytes) each.
fn frames(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while body.len() >= 5 {
        let length = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        frames.push((body[0], body[5..5 + length].to_vec()));
        body = &body[5 + length..];
    }
    frames
}

/// A grpc-web-text body: each frame is base64 of its own, padding and all.
fn decode_text(text: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let padded = rest
            .find('=')
            .map(|at| at + rest[at..].chars().take_while(|c| *c == '=').count());
        let end = padded.unwrap_or(rest.len());
        bytes.extend(
            base64::engine::general_purpose::STANDARD
                .decode(&rest[..end])
                .unwrap(),
        );
        rest = &rest[end..];
    }
    bytes
}

#[tokio::test]
async fn a_browser_calls_over_grpc_web_in_binary_and_in_text() {
    // Arrange
    let app = spawn_app().await;
    let (org, desk) = app.org_with_desk().await;
    let request = framed(&pb::GetTouchpointRequest {
        code: "desk".into(),
        ..Default::default()
    });
    let client = reqwest::Client::new();
    let url = format!(
        "http://{}/verdad.v1.TouchpointService/GetTouchpoint",
        app.addr
    );

    // Act
    let binary = client
        .post(&url)
        .bearer_auth(&org.admin_key)
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(request.clone())
        .send()
        .await
        .unwrap();
    let binary_status = binary.status();
    let binary = binary.bytes().await.unwrap();
    let text = client
        .post(&url)
        .bearer_auth(&org.admin_key)
        .header("content-type", "application/grpc-web-text")
        .header("accept", "application/grpc-web-text")
        .body(base64::engine::general_purpose::STANDARD.encode(&request))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    // Assert
    assert_eq!(binary_status, StatusCode::OK);
    for body in [binary.to_vec(), decode_text(text.trim())] {
        let frames = frames(&body);
        let answer = pb::GetTouchpointResponse::decode(frames[0].1.as_slice()).unwrap();
        assert_eq!(answer.touchpoint.unwrap().id, desk.id);
        assert_eq!(
            frames[1].0 & 0x80,
            0x80,
            "the last frame holds the trailers"
        );
        let trailers = String::from_utf8(frames[1].1.clone()).unwrap();
        assert!(trailers.contains("grpc-status:0"), "{trailers}");
    }
}

#[tokio::test]
async fn cross_origin_calls_are_refused_unless_the_origin_is_allowed() {
    // Arrange
    let closed = spawn_app().await;
    let open = spawn_app_with(|s| s.cors_origins = vec![ORIGIN.to_owned()]).await;
    let client = reqwest::Client::new();
    let preflight = |addr: std::net::SocketAddr, origin: &'static str| {
        client
            .request(
                reqwest::Method::OPTIONS,
                format!("http://{addr}/v1/touchpoints"),
            )
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };

    // Act
    let by_default = preflight(closed.addr, ORIGIN).await.unwrap();
    let allowed = preflight(open.addr, ORIGIN).await.unwrap();
    let other = preflight(open.addr, "https://elsewhere.example")
        .await
        .unwrap();
    let (org, _desk) = open.org_with_desk().await;
    let call = client
        .get(format!("http://{}/v1/touchpoints", open.addr))
        .bearer_auth(&org.admin_key)
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();

    // Assert
    let allow = |response: &reqwest::Response| {
        response
            .headers()
            .get("access-control-allow-origin")
            .map(|value| value.to_str().unwrap().to_owned())
    };
    assert_eq!(allow(&by_default), None);
    assert_eq!(allow(&allowed), Some(ORIGIN.to_owned()));
    assert!(
        allowed.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    assert_eq!(allow(&other), None);
    assert_eq!(call.status(), StatusCode::OK);
    assert_eq!(allow(&call), Some(ORIGIN.to_owned()));
}
