//! A whole visit told twice: as the ADT messages an EHR sends over MLLP to
//! one server, and as the same encounters pushed through IngestEncounters
//! to another. Both tell the same journey and the same MOT cycle.

use chrono::{TimeZone, Utc};
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{Mllp, demo_adt_feed, hl7_file, spawn_app, timestamp};

/// The visit's moments as the ADT messages carry them: control id,
/// touchpoint, time (UTC), staff.
fn moments() -> Vec<(
    &'static str,
    &'static str,
    chrono::DateTime<Utc>,
    &'static str,
)> {
    let seoul =
        |h, m, s| Utc.with_ymd_and_hms(2026, 12, 1, h, m, s).unwrap() - chrono::Duration::hours(9);
    vec![
        ("A04-0001", "reception-desk", seoul(8, 55, 0), "CLERK7"),
        ("A09-0001", "waiting-area", seoul(9, 5, 0), ""),
        ("A10-0001", "consultation-room", seoul(9, 30, 0), ""),
        ("A02-0001", "examination", seoul(10, 0, 0), "NURSE3"),
        (
            "A03-0001",
            "payment",
            Utc.with_ymd_and_hms(2026, 12, 1, 2, 30, 0).unwrap()
                + chrono::Duration::microseconds(123_400),
            "",
        ),
    ]
}

fn without_ids(mut journey: pb::Journey) -> pb::Journey {
    for e in &mut journey.encounters {
        e.id.clear();
        e.touchpoint_id.clear();
        e.receive_time = None;
        e.source.clear();
        e.attributes.clear();
        if let Some(evaluation) = &mut e.evaluation {
            for result in &mut evaluation.results {
                result.standard_id.clear();
            }
        }
    }
    journey
}

/// `text` with every UUID replaced by the same placeholder.
fn without_uuids(text: &str) -> String {
    let shape = |window: &[u8]| {
        window.len() == 36
            && window.iter().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => *b == b'-',
                _ => b.is_ascii_hexdigit(),
            })
    };
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if i + 36 <= bytes.len() && shape(&bytes[i..i + 36]) {
            out.push_str("<id>");
            i += 36;
        } else {
            out.push(bytes[i] as char);
            i += 1;
        }
    }
    out
}

#[tokio::test]
async fn a_visit_over_mllp_tells_the_same_journey_and_cycle_as_ingested_encounters() {
    let over_mllp = spawn_app().await;
    let mllp_key = over_mllp.demo_key().await;
    over_mllp.create_feed(&mllp_key, demo_adt_feed()).await;
    let mut mllp = Mllp::connect(&over_mllp).await;
    for file in ["a04.hl7", "a09.hl7", "a10.hl7", "a02.hl7", "a03.hl7"] {
        let ack = mllp.send(&hl7_file(file)).await;
        assert_eq!(ack.code, "AA", "{file}: {}", ack.raw);
    }

    let ingested = spawn_app().await;
    let ingest_key = ingested.demo_key().await;
    let encounters = moments()
        .into_iter()
        .map(|(control, touchpoint, time, staff)| pb::Encounter {
            touchpoint_code: touchpoint.into(),
            journey_id: "V1001".into(),
            customer_ref: "MRN1001".into(),
            occur_time: Some(timestamp(time)),
            staff_ref: staff.into(),
            source: "adt".into(),
            external_id: control.into(),
            ..Default::default()
        })
        .collect();
    ingested
        .ingest(&ingest_key, vec![encounters])
        .await
        .expect("ingest failed");

    let journey = |app, key| async move {
        let app: &crate::helpers::TestApp = app;
        without_ids(app.get_journey(key, "V1001").await.expect("no journey"))
    };
    let told = journey(&over_mllp, &mllp_key).await;
    assert_eq!(told.encounters.len(), 5);
    assert_eq!(told, journey(&ingested, &ingest_key).await);

    let scope = || pb::AnalysisScope {
        start_time: Some(timestamp(
            Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap(),
        )),
        end_time: Some(timestamp(
            Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap(),
        )),
        ..Default::default()
    };
    let cycle = over_mllp.mot_cycle(&mllp_key, scope(), 10).await;
    assert_eq!(cycle.pairs.len(), 4, "{cycle:?}");
    // The two servers gave the demo's touchpoints ids of their own.
    assert_eq!(
        without_uuids(&format!("{cycle:?}")),
        without_uuids(&format!(
            "{:?}",
            ingested.mot_cycle(&ingest_key, scope(), 10).await
        ))
    );
}
