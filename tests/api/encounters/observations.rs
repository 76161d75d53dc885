//! Observations: they name observed standards in force at the touchpoint,
//! once each, with short notes, at most 64 to an encounter.

use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    authed, encounter, evaluation_of, field_set, observation, observed_rule, result, spawn_app,
    standard, touchpoint,
};

/// An observation standard of `code` (minor, observed) at `touchpoint_code`,
/// every touchpoint when empty.
fn observed(code: &str, touchpoint_code: &str) -> pb::Standard {
    let mut observed = standard(code, touchpoint_code);
    observed.severity = pb::Severity::Minor.into();
    observed.rule = observed_rule();
    observed
}

#[tokio::test]
async fn observations_must_name_observed_standards_in_force_at_the_touchpoint() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let key = &org.admin_key;
    app.create_touchpoint(key, touchpoint("lobby")).await;
    app.create_standard(key, observed("badge", "")).await;
    app.create_standard(key, observed("signage", "lobby")).await;
    app.create_standard(key, standard("greet", "desk")).await;
    let retired = app.create_standard(key, observed("retired", "")).await;
    app.standards()
        .await
        .archive_standard(authed(
            key,
            pb::ArchiveStandardRequest {
                id: retired.id.clone(),
            },
        ))
        .await
        .expect("archive failed");

    let cases: [(&str, Vec<pb::Observation>, Vec<&str>); 5] = [
        (
            "an unknown code",
            vec![observation("no-such-standard", true)],
            vec!["encounter.observations[0].standard_code"],
        ),
        (
            "an observed standard of another touchpoint",
            vec![observation("badge", true), observation("signage", false)],
            vec!["encounter.observations[1].standard_code"],
        ),
        (
            "a metric standard",
            vec![observation("greet", true)],
            vec!["encounter.observations[0].standard_code"],
        ),
        (
            "an archived standard",
            vec![observation("retired", true)],
            vec!["encounter.observations[0].standard_code"],
        ),
        (
            "two bad codes",
            vec![
                observation("nope", true),
                observation("badge", true),
                observation("signage", true),
            ],
            vec![
                "encounter.observations[0].standard_code",
                "encounter.observations[2].standard_code",
            ],
        ),
    ];
    for (i, (what, observations, fields)) in cases.into_iter().enumerate() {
        let mut bad = encounter("desk", "audit", &format!("evt-{i}"));
        bad.observations = observations;
        let status = app.record_error(key, bad).await;
        assert_eq!(field_set(&status), fields, "{what}");
    }
    assert_eq!(app.count_encounters(key).await, 0);

    // Codes match regardless of case.
    let mut good = encounter("desk", "audit", "evt-good");
    good.observations = vec![pb::Observation {
        standard_code: "BADGE".into(),
        met: false,
        note: "n".repeat(1000),
    }];
    let stored = app.recorded(key, good).await;
    assert_eq!(result(&stored, "badge").outcome(), pb::Outcome::Violated);
    assert_eq!(stored.observations.len(), 1);
    assert_eq!(stored.observations[0].note, "n".repeat(1000));
    assert!(!stored.observations[0].met);
}

#[tokio::test]
async fn observations_are_unique_per_standard_and_notes_are_short() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let key = &org.admin_key;
    app.create_standard(key, observed("badge", "")).await;

    let mut twice = encounter("desk", "audit", "evt-1");
    twice.observations = vec![observation("badge", true), observation("badge", false)];
    let status = app.record_error(key, twice).await;
    assert_eq!(field_set(&status), ["encounter.observations"]);

    let mut long_note = encounter("desk", "audit", "evt-2");
    long_note.observations = vec![pb::Observation {
        standard_code: "badge".into(),
        met: true,
        note: "n".repeat(1001),
    }];
    let status = app.record_error(key, long_note).await;
    let fields = field_set(&status);
    assert!(
        !fields.is_empty()
            && fields
                .iter()
                .all(|f| f.starts_with("encounter.observations")),
        "{fields:?}"
    );
    assert_eq!(app.count_encounters(key).await, 0);
}

#[tokio::test]
async fn at_most_64_observations_are_accepted() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let key = &org.admin_key;
    let mut standards = app.standards().await;
    for i in 0..65 {
        standards
            .create_standard(authed(
                key,
                pb::CreateStandardRequest {
                    standard: Some(observed(&format!("audit-{i:02}"), "")),
                },
            ))
            .await
            .expect("create_standard failed");
    }
    let all: Vec<pb::Observation> = (0..65)
        .map(|i| observation(&format!("audit-{i:02}"), true))
        .collect();

    let mut too_many = encounter("desk", "audit", "evt-65");
    too_many.observations = all.clone();
    let status = app.record_error(key, too_many).await;
    assert_eq!(field_set(&status), ["encounter.observations"]);
    assert_eq!(app.count_encounters(key).await, 0);

    let mut most = encounter("desk", "audit", "evt-64");
    most.observations = all[..64].to_vec();
    let stored = app.recorded(key, most).await;
    assert_eq!(stored.observations.len(), 64);
    let evaluation = evaluation_of(&stored);
    assert_eq!(evaluation.results.len(), 65);
    let met = evaluation
        .results
        .iter()
        .filter(|r| r.outcome() == pb::Outcome::Met)
        .count();
    assert_eq!(met, 64);
    assert_eq!(
        result(&stored, "audit-64").outcome(),
        pb::Outcome::NotApplicable
    );
}
