//! MLLP over TLS: the listener's certificate, client certificates of the
//! client CA required, and feeds pinned to the very certificates their
//! messages must come with.

use verdad::{
    mllp::{DEFAULT_MAX_MESSAGE_BYTES, MllpSettings, tls::MllpTls},
    proto::verdad::v1 as pb,
};

use crate::helpers::{Mllp, TestApp, demo_adt_feed, hl7_file, spawn_app_with, tls_file};

/// The SHA-256 fingerprint of tests/data/tls/engine.pem.
const ENGINE: &str = "6F:32:D2:98:F8:7D:40:AC:E2:E6:D6:3A:65:15:D4:EE:47:61:2E:A8:A5:9B:7A:A0:2A:34:E2:16:EE:E1:2E:13";

async fn tls_app(client_ca: bool) -> TestApp {
    spawn_app_with(|settings| {
        settings.mllp = Some(MllpSettings {
            listen_addr: "127.0.0.1:0".parse().unwrap(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            idle_timeout: std::time::Duration::from_secs(60),
            tls: Some(MllpTls {
                certificate: tls_file("server.pem"),
                key: tls_file("server.key"),
                client_ca: client_ca.then(|| tls_file("ca.pem")),
            }),
        });
    })
    .await
}

#[tokio::test]
async fn messages_over_tls_are_stored_and_plain_connections_get_nothing() {
    let app = tls_app(false).await;
    let key = app.demo_key().await;
    app.create_feed(&key, demo_adt_feed()).await;

    let mut tls = Mllp::connect_tls(&app, None).await.unwrap();
    tls.send(&hl7_file("a04.hl7"))
        .await
        .assert("AA", "A04-0001");

    let mut plain = Mllp::connect(&app).await;
    plain
        .write(&crate::helpers::framed(&hl7_file("a09.hl7")))
        .await;
    assert!(plain.closed().await, "a plain connection was answered");
    assert_eq!(app.count_encounters(&key).await, 1);
}

#[tokio::test]
async fn a_client_ca_requires_a_certificate_and_feeds_pin_theirs() {
    let app = tls_app(true).await;
    let key = app.demo_key().await;
    let mut feed = demo_adt_feed();
    if let Some(pb::feed::Mapping::Hl7v2(m)) = &mut feed.mapping {
        m.client_certificate_sha256 = vec![ENGINE.into()];
    }
    let feed = app.create_feed(&key, feed).await;

    // Without a certificate, no connection.
    let refused = match Mllp::connect_tls(&app, None).await {
        Err(_) => true,
        Ok(mut connection) => {
            connection
                .write(&crate::helpers::framed(&hl7_file("a04.hl7")))
                .await;
            connection.closed().await
        }
    };
    assert!(
        refused,
        "a connection without a client certificate was served"
    );

    // The engine's certificate is the feed's.
    let mut engine = Mllp::connect_tls(&app, Some("engine")).await.unwrap();
    engine
        .send(&hl7_file("a04.hl7"))
        .await
        .assert("AA", "A04-0001");

    // Another certificate of the same CA may connect, not speak for the feed.
    let mut intruder = Mllp::connect_tls(&app, Some("intruder")).await.unwrap();
    intruder
        .send(&hl7_file("a09.hl7"))
        .await
        .assert("AR", "A09-0001");

    assert_eq!(app.count_encounters(&key).await, 1);
    // Anyone could have sent it: not the feed's to list.
    assert!(app.rejections(&key, &feed.id).await.is_empty());
}
