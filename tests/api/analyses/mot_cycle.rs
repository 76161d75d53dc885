//! The MOT cycle: pairs, ends, variants and conformance over a designed
//! cycle, and over a real hospital log against the figures an established
//! process-mining library computed from it.

use std::collections::HashMap;

use prost_types::Timestamp;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    Measured, TestApp, assert_rate, at, authed, event, fixture_day, keyed, spawn_app,
    spawn_app_with, touchpoint,
};

/// Four journeys through a designed cycle a (10, key) -> b (20, key) -> c (30).
async fn cycle_fixture(app: &TestApp, key: &str) {
    app.create_touchpoint(key, keyed("a", 10, true)).await;
    app.create_touchpoint(key, keyed("b", 20, true)).await;
    app.create_touchpoint(key, keyed("c", 30, false)).await;
    let none = Measured::default;
    let events = [
        // J1: a b c, as designed
        event("a", "J1", "1", at(0), none()),
        event("b", "J1", "2", at(60), none()),
        event("c", "J1", "3", at(180), none()),
        // J2: a c, skipping the key touchpoint b
        event("a", "J2", "4", at(0), none()),
        event("c", "J2", "5", at(120), none()),
        // J3: b a b, out of order, b revisited
        event("b", "J3", "6", at(0), none()),
        event("a", "J3", "7", at(30), none()),
        event("b", "J3", "8", at(90), none()),
        // J4: a and b at the same second, a received first; then c
        event("a", "J4", "9", at(0), none()),
        event("b", "J4", "10", at(0), none()),
        event("c", "J4", "11", at(60), none()),
    ];
    for e in events {
        app.record(key, e).await;
    }
}

#[tokio::test]
async fn the_mot_cycle_shows_pairs_ends_variants_and_conformance() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    cycle_fixture(&app, key).await;
    // A key touchpoint for the exceptional moment: no journey is expected
    // to meet it.
    let complaints = pb::Touchpoint {
        occurrence: pb::Occurrence::Exceptional.into(),
        ..keyed("complaints", 0, true)
    };
    app.create_touchpoint(key, complaints).await;

    let cycle = app.mot_cycle(key, fixture_day(), 0).await;

    assert!(!cycle.no_data);
    assert_eq!((cycle.journeys, cycle.encounters), (4, 11));
    let pairs: Vec<(&str, &str, i64, f64, f64)> = cycle
        .pairs
        .iter()
        .map(|p| {
            (
                p.from_touchpoint_code.as_str(),
                p.to_touchpoint_code.as_str(),
                p.count,
                p.mean_seconds,
                p.median_seconds,
            )
        })
        .collect();
    let mut sorted = pairs.clone();
    sorted.sort_by(|x, y| y.2.cmp(&x.2).then((x.0, x.1).cmp(&(y.0, y.1))));
    assert_eq!(
        sorted,
        [
            // J1 60 s, J3 60 s, J4 0 s (the tie keeps arrival order)
            ("a", "b", 3, 40.0, 60.0),
            // J1 120 s, J4 60 s
            ("b", "c", 2, 90.0, 90.0),
            ("a", "c", 1, 120.0, 120.0),
            ("b", "a", 1, 30.0, 30.0),
        ]
    );
    assert_eq!(pairs[0].2, 3, "most frequent first");
    assert_eq!(cycle.transitions, 7);

    let counts = |list: &[pb::TouchpointCount]| -> Vec<(String, i64)> {
        list.iter()
            .map(|c| (c.touchpoint_code.clone(), c.journeys))
            .collect()
    };
    assert_eq!(
        counts(&cycle.start_touchpoints),
        [("a".to_owned(), 3), ("b".to_owned(), 1)]
    );
    assert_eq!(
        counts(&cycle.end_touchpoints),
        [("c".to_owned(), 3), ("b".to_owned(), 1)]
    );

    assert_eq!(cycle.variant_count, 3);
    assert_eq!(cycle.variants[0].touchpoint_codes, ["a", "b", "c"]);
    assert_eq!(cycle.variants[0].journeys, 2);
    assert_rate(&cycle.variants[0].share, 2, 4);
    let others: Vec<Vec<String>> = cycle.variants[1..]
        .iter()
        .map(|v| v.touchpoint_codes.clone())
        .collect();
    assert_eq!(others.len(), 2);
    assert!(others.contains(&vec!["a".to_owned(), "c".to_owned()]));
    assert!(others.contains(&vec!["b".to_owned(), "a".to_owned(), "b".to_owned()]));

    let conformance = cycle.conformance.unwrap();
    assert_rate(&conformance.designed_order, 3, 4);
    assert_eq!(
        counts(&conformance.skipped_key_touchpoints),
        [("b".to_owned(), 1), ("a".to_owned(), 0)]
    );
    assert_rate(&conformance.journeys_with_loops, 1, 4);
    assert_eq!(
        counts(&conformance.revisited_touchpoints),
        [("b".to_owned(), 1)]
    );

    let one_variant = app.mot_cycle(key, fixture_day(), 1).await;
    assert_eq!(one_variant.variants.len(), 1);
    assert_eq!(one_variant.variant_count, 3);
}

/// The code a sepsis activity gets as a touchpoint.
fn activity_code(activity: &str) -> String {
    activity.to_ascii_lowercase().replace(' ', "-")
}

#[tokio::test]
async fn the_mot_cycle_of_the_sepsis_log_matches_the_process_mining_reference() {
    // 2013-01-01 to 2016-01-01.
    cross_check("sepsis", 1_356_998_400, 1_451_606_400).await;
}

/// The generated long stays (`verdad-bench long-stay-log --stays 60`):
/// 100 to 160 encounters a stay, times to the day, most events sharing the
/// time of the one before.
#[tokio::test]
async fn the_mot_cycle_of_long_stays_matches_the_process_mining_reference() {
    // 2025-01-01 to 2026-06-01.
    cross_check("long-stays", 1_735_689_600, 1_780_272_000).await;
}

/// Loads `tests/data/{log}/events.csv` and compares the MOT cycle of the
/// range, read from the journey rollups and from the encounters, with the
/// figures pm4py computed from the same file (`reference.json`, written by
/// `scripts/pm4py-baseline events.csv --reference`).
async fn cross_check(log: &str, start: i64, end: i64) {
    // Every scope with whole days reads the rollups on the first server,
    // the encounters on the second.
    let app = spawn_app_with(|settings| settings.exact_percentile_limit = 0).await;
    let org = app.create_org(log).await;
    let key = &org.admin_key;
    let data = format!("{}/tests/data/{log}", env!("CARGO_MANIFEST_DIR"));
    let csv = std::fs::read_to_string(format!("{data}/events.csv")).unwrap();
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{data}/reference.json")).unwrap())
            .unwrap();

    // No field holds a comma or a quote. A case "NA" is a case like any
    // other. Times in UTC where the log has them besides local ones.
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|c| *c == name);
    let (seq, case, activity) = (
        column("event_seq").unwrap(),
        column("case_id").unwrap(),
        column("activity").unwrap(),
    );
    let time = column("timestamp_utc").or(column("timestamp")).unwrap();
    let resource = column("resource");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let mut activities: Vec<&str> = rows.iter().map(|r| r[activity]).collect();
    activities.sort();
    activities.dedup();
    for activity in &activities {
        let mut t = touchpoint(&activity_code(activity));
        t.display_name = (*activity).to_owned();
        t.cycle_position = 0;
        app.create_touchpoint(key, t).await;
    }
    let encounters: Vec<pb::Encounter> = rows
        .iter()
        .map(|r| {
            let at = chrono::DateTime::parse_from_rfc3339(r[time]).unwrap();
            pb::Encounter {
                touchpoint_code: activity_code(r[activity]),
                journey_id: r[case].to_owned(),
                occur_time: Some(Timestamp {
                    seconds: at.timestamp(),
                    nanos: 0,
                }),
                staff_ref: resource.map_or(String::new(), |c| r[c].to_owned()),
                source: log.into(),
                external_id: r[seq].to_owned(),
                ..Default::default()
            }
        })
        .collect();
    // In file order, so that events sharing a timestamp keep the log's order.
    let batches: Vec<pb::IngestEncountersRequest> = encounters
        .chunks(1000)
        .map(|chunk| pb::IngestEncountersRequest {
            encounters: chunk.to_vec(),
        })
        .collect();
    let ingested = app
        .encounters()
        .await
        .ingest_encounters(authed(key, tokio_stream::iter(batches)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (ingested.accepted, ingested.rejected),
        (rows.len() as i64, 0)
    );

    let scope = pb::AnalysisScope {
        start_time: Some(Timestamp {
            seconds: start,
            nanos: 0,
        }),
        end_time: Some(Timestamp {
            seconds: end,
            nanos: 0,
        }),
        ..Default::default()
    };
    let request = pb::GetMotCycleRequest {
        scope: Some(scope),
        max_variants: 10,
        ..Default::default()
    };
    let from_rollups = app.mot_cycle(key, request.scope.clone().unwrap(), 10).await;
    let from_encounters = app
        .exact_server()
        .await
        .get_mot_cycle(authed(key, request))
        .await
        .unwrap()
        .into_inner();
    let name: HashMap<String, &str> = activities.iter().map(|a| (activity_code(a), *a)).collect();
    for (read, cycle) in [("rollups", from_rollups), ("encounters", from_encounters)] {
        matches_reference(&cycle, &reference, &name, &format!("{log} from the {read}"));
    }
}

/// Asserts that `cycle` holds pm4py's figures of `reference`.
fn matches_reference(
    cycle: &pb::GetMotCycleResponse,
    reference: &serde_json::Value,
    name: &HashMap<String, &str>,
    what: &str,
) {
    let int = |v: &serde_json::Value| v.as_i64().unwrap();
    let float = |v: &serde_json::Value| v.as_f64().unwrap();
    let close = |actual: f64, wanted: f64| (actual - wanted).abs() <= 1e-6 * wanted.abs().max(1.0);
    assert_eq!(cycle.journeys, int(&reference["n_cases"]), "{what}");
    assert_eq!(cycle.encounters, int(&reference["n_events"]), "{what}");
    assert_eq!(cycle.variant_count, int(&reference["n_variants"]), "{what}");
    assert_eq!(
        cycle.transitions,
        int(&reference["dfg_total_arc_frequency"]),
        "{what}"
    );

    let ends = |list: &[pb::TouchpointCount]| -> HashMap<String, i64> {
        list.iter()
            .map(|c| (name[&c.touchpoint_code].to_owned(), c.journeys))
            .collect()
    };
    let expected = |key: &str| -> HashMap<String, i64> {
        reference[key]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), int(v)))
            .collect()
    };
    assert_eq!(
        ends(&cycle.start_touchpoints),
        expected("start_activities"),
        "{what}"
    );
    assert_eq!(
        ends(&cycle.end_touchpoints),
        expected("end_activities"),
        "{what}"
    );

    let reference_pairs = reference["performance_dfg_seconds"].as_array().unwrap();
    assert_eq!(cycle.pairs.len(), reference_pairs.len(), "{what}");
    assert_eq!(
        cycle.pairs.len(),
        int(&reference["n_dfg_edges"]) as usize,
        "{what}"
    );
    let pairs: HashMap<(&str, &str), &pb::TouchpointPair> = cycle
        .pairs
        .iter()
        .map(|p| {
            (
                (name[&p.from_touchpoint_code], name[&p.to_touchpoint_code]),
                p,
            )
        })
        .collect();
    for expected in reference_pairs {
        let from = expected["from"].as_str().unwrap();
        let to = expected["to"].as_str().unwrap();
        let pair = pairs
            .get(&(from, to))
            .unwrap_or_else(|| panic!("{what}: missing pair {from} -> {to}"));
        assert_eq!(
            pair.count,
            int(&expected["count"]),
            "{what}: {from} -> {to}"
        );
        assert!(!pair.median_approximate, "{what}");
        let mean = float(&expected["mean"]);
        let median = float(&expected["median"]);
        assert!(
            close(pair.mean_seconds, mean),
            "{what}: {from} -> {to}: mean {} vs {mean}",
            pair.mean_seconds
        );
        assert!(
            close(pair.median_seconds, median),
            "{what}: {from} -> {to}: median {} vs {median}",
            pair.median_seconds
        );
    }

    // The top variants: counts rank by rank; the path too where no other
    // variant shares the count (the reference ranks ties its own way).
    let top = reference["top10_variants"].as_array().unwrap();
    let counts: Vec<i64> = top.iter().map(|v| int(&v["count"])).collect();
    for (variant, expected) in cycle.variants.iter().zip(top) {
        assert_eq!(variant.journeys, int(&expected["count"]), "{what}");
        if counts.iter().filter(|c| **c == variant.journeys).count() == 1 {
            let path: Vec<&str> = variant.touchpoint_codes.iter().map(|c| name[c]).collect();
            let wanted: Vec<&str> = expected["activities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            assert_eq!(path, wanted, "{what}");
        }
    }
    assert_eq!(cycle.variants.len(), top.len().min(10), "{what}");

    // Throughput: pm4py's case durations and events per case.
    let throughput = cycle.throughput.as_ref().unwrap();
    let duration = throughput.duration_seconds.as_ref().unwrap();
    let wanted = &reference["case_duration_seconds"];
    assert!(
        close(duration.p50, float(&wanted["median"])),
        "{what}: {duration:?}"
    );
    assert!(
        close(duration.mean, float(&wanted["mean"])),
        "{what}: {duration:?}"
    );
    assert!(
        close(duration.max, float(&wanted["max"])),
        "{what}: {duration:?}"
    );
    let lengths = throughput.encounters_per_journey.as_ref().unwrap();
    let wanted = &reference["events_per_case"];
    assert!(
        close(lengths.p50, float(&wanted["median"])),
        "{what}: {lengths:?}"
    );
    assert!(
        close(lengths.mean, float(&wanted["mean"])),
        "{what}: {lengths:?}"
    );
    assert!(
        close(lengths.max, float(&wanted["max"])),
        "{what}: {lengths:?}"
    );
}
