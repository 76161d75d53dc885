use tokio_stream::StreamExt;
use tonic_reflection::pb::{v1, v1alpha};

use crate::helpers::spawn_app;

const EXPECTED: &[&str] = &[
    "grpc.health.v1.Health",
    "verdad.v1.AnalysisService",
    "verdad.v1.ApiKeyService",
    "verdad.v1.EncounterService",
    "verdad.v1.JourneyService",
    "verdad.v1.OrganisationService",
    "verdad.v1.RecoveryService",
    "verdad.v1.StandardService",
    "verdad.v1.TouchpointService",
];

#[tokio::test]
async fn reflection_v1_lists_the_services_and_describes_them() {
    let app = spawn_app().await;
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(app.channel().await);
    let requests = [
        v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            )),
        },
        v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                    "verdad.v1.TouchpointService".into(),
                ),
            ),
        },
    ];
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .expect("reflection v1 failed")
        .into_inner();

    let listed = responses
        .next()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap();
    let v1::server_reflection_response::MessageResponse::ListServicesResponse(list) = listed else {
        panic!("unexpected answer {listed:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in EXPECTED {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    let described = responses
        .next()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap();
    let v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files) = described
    else {
        panic!("unexpected answer {described:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

#[tokio::test]
async fn reflection_v1alpha_lists_the_services_without_a_key() {
    let app = spawn_app().await;
    let mut client =
        v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel().await);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection v1alpha failed")
        .into_inner();
    let listed = responses
        .next()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap();
    let v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list) = listed
    else {
        panic!("unexpected answer {listed:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in EXPECTED {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
}
