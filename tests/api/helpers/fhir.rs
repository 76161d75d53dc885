//! A FHIR client of the FHIR R4 door: resources in, status and resource
//! out; and the hand-built resources of tests/data/fhir.

use std::path::PathBuf;

use serde_json::Value;
use verdad::proto::verdad::v1 as pb;

use super::TestApp;

/// A resource of tests/data/fhir, as sent.
pub(crate) fn fhir_file(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fhir")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The FHIR feed the resources of tests/data/fhir expect: the visit
/// number as journey, the MRN as patient, and three locations of the demo
/// hospital.
pub(crate) fn demo_fhir_feed() -> pb::Feed {
    let rule = |location: &str, touchpoint: &str| pb::FhirR4Rule {
        location: location.into(),
        touchpoint_code: touchpoint.into(),
        ..Default::default()
    };
    pb::Feed {
        code: "ehr-fhir".into(),
        display_name: "EHR FHIR".into(),
        mapping: Some(pb::feed::Mapping::FhirR4(pb::FhirR4Mapping {
            rules: vec![
                rule("Location/er", "reception-desk"),
                rule("Location/wait", "waiting-area"),
                rule("Location/cons", "consultation-room"),
            ],
            journey_source: pb::FhirJourneySource::Identifier.into(),
            journey_identifier_system: "urn:oid:1.2.410.200.1.visit".into(),
            customer_identifier_system: "urn:oid:1.2.410.200.1.mrn".into(),
        })),
        ..Default::default()
    }
}

/// An answer of the FHIR door.
#[derive(Debug)]
pub(crate) struct FhirAnswer {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: Value,
}

impl TestApp {
    /// POSTs `body` to `path` under /fhir/r4 with `key`, naming `feed` by
    /// header when given.
    pub(crate) async fn fhir_post(
        &self,
        key: &str,
        path: &str,
        feed: Option<&str>,
        body: Vec<u8>,
    ) -> FhirAnswer {
        let mut request = reqwest::Client::new()
            .post(format!("http://{}/fhir/r4{path}", self.addr))
            .bearer_auth(key)
            .header("content-type", "application/fhir+json")
            .body(body);
        if let Some(feed) = feed {
            request = request.header("x-verdad-feed", feed);
        }
        let response = request.send().await.expect("the FHIR request failed");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        FhirAnswer {
            status,
            content_type,
            body,
        }
    }
}
