//! Valid messages to send, built from a few words: touchpoints, standards
//! and their rules, encounters, observations and feedback.

use prost_types::Timestamp;
use verdad::proto::verdad::v1 as pb;

use super::{at, minutes_ago};

/// A valid touchpoint with the given code.
pub(crate) fn touchpoint(code: &str) -> pb::Touchpoint {
    pb::Touchpoint {
        code: code.to_owned(),
        display_name: format!("Touchpoint {code}"),
        description: String::new(),
        stage: pb::Stage::Service.into(),
        channel: pb::Channel::InPerson.into(),
        key: false,
        occurrence: pb::Occurrence::Routine.into(),
        cycle_position: 10,
        ..Default::default()
    }
}

/// A valid touchpoint `code` at `position` in the designed cycle, a key
/// touchpoint when `key`.
pub(crate) fn keyed(code: &str, position: i32, key: bool) -> pb::Touchpoint {
    pb::Touchpoint {
        cycle_position: position,
        key,
        ..touchpoint(code)
    }
}

/// A metric rule.
pub(crate) fn metric_rule(
    field: pb::MetricField,
    comparison: pb::Comparison,
    threshold: f64,
) -> Option<pb::standard::Rule> {
    Some(pb::standard::Rule::MetricRule(pb::MetricRule {
        field: field.into(),
        comparison: comparison.into(),
        threshold,
    }))
}

/// An observed rule.
pub(crate) fn observed_rule() -> Option<pb::standard::Rule> {
    Some(pb::standard::Rule::ObservedRule(pb::ObservedRule {}))
}

/// A valid critical standard `code` at the touchpoint with `touchpoint_code`
/// (every touchpoint when empty): the 15-second greeting.
pub(crate) fn standard(code: &str, touchpoint_code: &str) -> pb::Standard {
    pb::Standard {
        code: code.to_owned(),
        title: format!("Standard {code}"),
        touchpoint_code: touchpoint_code.to_owned(),
        element: pb::Element::Humanware.into(),
        severity: pb::Severity::Critical.into(),
        guidance: "Greet the visitor.".to_owned(),
        rule: metric_rule(
            pb::MetricField::FirstResponseSeconds,
            pb::Comparison::LessOrEqual,
            15.0,
        ),
        ..Default::default()
    }
}

/// A valid encounter at the touchpoint with `touchpoint_code`, in journey
/// "visit-1", an hour ago, with nothing measured.
pub(crate) fn encounter(touchpoint_code: &str, source: &str, external_id: &str) -> pb::Encounter {
    pb::Encounter {
        touchpoint_code: touchpoint_code.to_owned(),
        journey_id: "visit-1".to_owned(),
        // Fixed, so that building the same encounter twice gives the same
        // content, as a sender's replay does.
        occur_time: Some(Timestamp {
            seconds: 1_780_304_400, // 2026-06-01T09:00:00Z
            nanos: 0,
        }),
        source: source.to_owned(),
        external_id: external_id.to_owned(),
        ..Default::default()
    }
}

/// A valid encounter that fails in any organisation whose failure threshold
/// is the default 2: its satisfaction is 1.
pub(crate) fn dissatisfied(
    touchpoint_code: &str,
    source: &str,
    external_id: &str,
) -> pb::Encounter {
    let mut failing = encounter(touchpoint_code, source, external_id);
    failing.satisfaction = Some(1);
    failing
}

/// What an analysis fixture's encounter measured.
#[derive(Default)]
pub(crate) struct Measured {
    pub(crate) satisfaction: Option<i32>,
    pub(crate) wait: Option<i64>,
    pub(crate) first_response: Option<i64>,
}

/// An analysis fixture's encounter at `code` in `journey`, from the source
/// "fixture".
pub(crate) fn event(
    code: &str,
    journey: &str,
    id: &str,
    time: Timestamp,
    m: Measured,
) -> pb::Encounter {
    pb::Encounter {
        touchpoint_code: code.into(),
        journey_id: journey.into(),
        occur_time: Some(time),
        satisfaction: m.satisfaction,
        wait_seconds: m.wait,
        first_response_seconds: m.first_response,
        source: "fixture".into(),
        external_id: id.into(),
        ..Default::default()
    }
}

/// An observation of the standard `code` without a note.
pub(crate) fn observation(code: &str, met: bool) -> pb::Observation {
    pb::Observation {
        standard_code: code.to_owned(),
        met,
        note: String::new(),
    }
}

/// Journey feedback completed an hour ago.
pub(crate) fn feedback(overall_satisfaction: i32) -> pb::JourneyFeedback {
    pb::JourneyFeedback {
        overall_satisfaction: Some(overall_satisfaction),
        likelihood_to_recommend: None,
        complete_time: Some(minutes_ago(60)),
        comment: String::new(),
        receive_time: None,
    }
}

/// Journey feedback completed an hour after the fixture day's first
/// encounter.
pub(crate) fn answered(overall: Option<i32>, recommend: Option<i32>) -> pb::JourneyFeedback {
    pb::JourneyFeedback {
        overall_satisfaction: overall,
        likelihood_to_recommend: recommend,
        complete_time: Some(at(3600)),
        ..Default::default()
    }
}
