//! Hostile feeds: mangled versions of the hand-built HL7 v2 messages, each
//! sent in its own frame over one MLLP connection, and of the FHIR
//! resources, each posted to the FHIR door. Every message is answered with
//! an ACK on the same connection, no resource with a server error; a
//! refused one stores nothing, and the server goes on.

use proptest::{
    prelude::*,
    test_runner::{Config as ProptestConfig, TestCaseError},
};

use crate::helpers::{Mllp, TestApp, demo_adt_feed, hl7_file, spawn_app};

const FILES: &[&str] = &[
    "a01.hl7",
    "a02.hl7",
    "a03.hl7",
    "a04.hl7",
    "a08.hl7",
    "a09.hl7",
    "a11.hl7",
    "escapes.hl7",
    "repetitions.hl7",
    "custom_delimiters.hl7",
    "euc_kr.hl7",
];

/// One way to mangle a message.
#[derive(Debug, Clone)]
enum Mangle {
    /// Replace the byte at (position modulo length) with this one.
    Flip(usize, u8),
    /// Keep only the first (position modulo length) bytes.
    Cut(usize),
    /// Insert these bytes at (position modulo length).
    Insert(usize, Vec<u8>),
}

fn mangle() -> impl Strategy<Value = Mangle> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mangle::Flip(at, byte)),
        any::<usize>().prop_map(Mangle::Cut),
        (
            any::<usize>(),
            prop_oneof![
                prop::collection::vec(any::<u8>(), 1..8),
                Just(b"|^~\\&".to_vec()),
                Just(b"\\X41\\\\E\\\\F".to_vec()),
                Just(b"\rPV1|1|O|ER|".to_vec()),
                Just("\r접수|ＭＳＨ".as_bytes().to_vec()),
            ]
        )
            .prop_map(|(at, bytes)| Mangle::Insert(at, bytes)),
    ]
}

fn apply(mut message: Vec<u8>, mangles: &[Mangle]) -> Vec<u8> {
    for mangle in mangles {
        let len = message.len().max(1);
        match mangle {
            Mangle::Flip(at, byte) => {
                if !message.is_empty() {
                    message[at % len] = *byte;
                }
            }
            Mangle::Cut(at) => message.truncate(at % len),
            Mangle::Insert(at, bytes) => {
                let at = (at % len).min(message.len());
                message.splice(at..at, bytes.iter().copied());
            }
        }
    }
    // The end of a frame cannot be inside one: MLLP has no escape for it.
    while let Some(end) = message.windows(2).position(|w| w == [0x1C, 0x0D]) {
        message.remove(end);
    }
    message
}

/// `message` with `control` as its MSH-10.
fn with_control_id(message: &[u8], control: &str) -> Vec<u8> {
    let end = message
        .iter()
        .position(|b| *b == b'\r')
        .unwrap_or(message.len());
    let separator = message[3];
    let mut fields: Vec<Vec<u8>> = message[..end]
        .split(|b| *b == separator)
        .map(<[u8]>::to_vec)
        .collect();
    fields[9] = control.as_bytes().to_vec();
    let mut out = fields.join(&separator);
    out.extend_from_slice(&message[end..]);
    out
}

#[test]
fn mangled_messages_each_get_an_ack_and_refused_ones_store_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (app, key) = runtime.block_on(async {
        let app = spawn_app().await;
        let key = app.demo_key().await;
        app.create_feed(&key, demo_adt_feed()).await;
        (app, key)
    });
    let owned = app;
    let app: &TestApp = &owned;
    let connection = std::cell::RefCell::new(runtime.block_on(Mllp::connect(app)));
    let stored = std::cell::Cell::new(0usize);
    let seen = std::cell::RefCell::new(std::collections::BTreeMap::<String, u32>::new());
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (
        0..FILES.len(),
        prop::collection::vec(mangle(), 1..4),
        any::<u32>(),
    );
    let result = runner.run(&strategy, |(file, mangles, salt)| {
        // A fresh control id, so that no case is another's duplicate.
        let message = with_control_id(&hl7_file(FILES[file]), &format!("H{salt}"));
        let mangled = apply(message, &mangles);
        let ack = runtime.block_on(connection.borrow_mut().send(&mangled));
        *seen.borrow_mut().entry(ack.code.clone()).or_default() += 1;
        prop_assert!(
            matches!(ack.code.as_str(), "AA" | "AE" | "AR"),
            "answered {:?}",
            ack.raw
        );
        let now = runtime.block_on(app.count_encounters(&key));
        if ack.code != "AA" && now != stored.get() {
            return Err(TestCaseError::fail(format!(
                "{} was refused yet stored: {}",
                String::from_utf8_lossy(&mangled),
                ack.raw
            )));
        }
        stored.set(now);
        Ok(())
    });
    eprintln!(
        "hostile HL7: {cases} mangled messages, answers: {:?}",
        seen.borrow()
    );
    if let Err(error) = result {
        panic!("{error}");
    }
    // Still taking messages on the same connection.
    let ack = runtime.block_on(connection.borrow_mut().send(&hl7_file("a10.hl7")));
    ack.assert("AA", "A10-0001");
    drop(connection);
    runtime.block_on(async move { drop(owned) });
}

/// Mangled FHIR resources: never a server error, and a refused one
/// stores nothing.
#[test]
fn mangled_fhir_resources_never_fail_the_server_and_refused_ones_store_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (app, key) = runtime.block_on(async {
        let app = spawn_app().await;
        let key = app.demo_key().await;
        app.create_feed(&key, crate::helpers::demo_fhir_feed())
            .await;
        (app, key)
    });
    let owned = app;
    let app: &TestApp = &owned;
    let stored = std::cell::Cell::new(0usize);
    let seen = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let files = ["encounter.json", "batch.json", "transaction.json"];
    let strategy = (0..files.len(), prop::collection::vec(mangle(), 1..4));
    let result = runner.run(&strategy, |(file, mangles)| {
        let body = apply(crate::helpers::fhir_file(files[file]), &mangles);
        let path = if file == 0 { "/Encounter" } else { "" };
        let answer = runtime.block_on(app.fhir_post(&key, path, Some("ehr-fhir"), body.clone()));
        *seen.borrow_mut().entry(answer.status).or_default() += 1;
        prop_assert!(
            answer.status < 500,
            "{}: {:?}",
            String::from_utf8_lossy(&body),
            answer.body
        );
        let now = runtime.block_on(app.count_encounters(&key));
        if answer.status >= 400 && now != stored.get() {
            return Err(TestCaseError::fail(format!(
                "refused with {} yet stored: {}",
                answer.status,
                String::from_utf8_lossy(&body)
            )));
        }
        stored.set(now);
        Ok(())
    });
    eprintln!(
        "hostile FHIR: {cases} mangled resources, answers by status: {:?}",
        seen.borrow()
    );
    if let Err(error) = result {
        panic!("{error}");
    }
    runtime.block_on(async move { drop(owned) });
}
