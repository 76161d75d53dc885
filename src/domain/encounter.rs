//! Encounters: the contact events an organisation's systems push, the rules
//! a valid one follows, and what makes two pushes "the same event".

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use super::{
    code::{Lookup, parse_code},
    content_digest::ContentDigest,
    evaluation::{EncounterFacts, Evaluation, Measurements, Observation, evaluate},
    refusal::Refusal,
    standard::{MAX_SECONDS, Standard, TouchpointRef},
    text::optional_text,
    text_enum,
    touchpoint::{Channel, Touchpoint},
    violation::FieldViolation,
};

text_enum! {
    /// Which of the four MOT guidelines a contact fell under.
    Situation {
        /// The service system failed and staff had to recover it.
        Recovery => "recovery",
        /// The customer had a special need or request.
        Adaptability => "adaptability",
        /// Staff acted on their own initiative.
        Spontaneity => "spontaneity",
        /// The customer made excessive demands.
        Coping => "coping",
    }
}

pub const JOURNEY_ID_MAX_CHARS: usize = 128;
pub const CUSTOMER_REF_MAX_CHARS: usize = 256;
pub const STAFF_REF_MAX_CHARS: usize = 128;
pub const COMMENT_MAX_CHARS: usize = 4000;
pub const EXTERNAL_ID_MAX_CHARS: usize = 128;
pub const MAX_ATTRIBUTES: usize = 32;
pub const ATTRIBUTE_KEY_MAX_CHARS: usize = 64;
pub const ATTRIBUTE_VALUE_MAX_CHARS: usize = 1024;
pub const MAX_OBSERVATIONS: usize = 64;
pub const NOTE_MAX_CHARS: usize = 1000;
/// How far ahead of the server's clock a sender's clock may run.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

/// The earliest time an encounter may have happened: older dates are typos
/// or epoch defaults, not contacts.
pub fn earliest_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// An identifier in the sender's own numbering (journey, external id, staff
/// reference): one line, no control characters, `max` characters at most.
pub fn reference(
    field: &str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<Option<String>, FieldViolation> {
    if value.is_empty() {
        return if required {
            Err(FieldViolation::new(field, "must not be empty"))
        } else {
            Ok(None)
        };
    }
    if value.chars().any(char::is_control) {
        return Err(FieldViolation::new(
            field,
            "must not contain control characters",
        ));
    }
    let length = value.chars().count();
    if length > max {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {max} characters, got {length}"),
        ));
    }
    Ok(Some(value.to_owned()))
}

/// A required reference.
pub fn required_reference(field: &str, value: &str, max: usize) -> Result<String, FieldViolation> {
    reference(field, value, max, true).map(Option::unwrap_or_default)
}

/// When a contact happened: not before 2000, not more than five minutes
/// after `now`, kept to the microsecond as PostgreSQL stores it.
pub fn occur_time(
    field: &str,
    time: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, FieldViolation> {
    let time = time.ok_or_else(|| FieldViolation::new(field, "is required"))?;
    if time < earliest_time() {
        return Err(FieldViolation::new(
            field,
            format!(
                "must not be before 2000-01-01T00:00:00Z, got {}",
                time.to_rfc3339()
            ),
        ));
    }
    if time > now + MAX_CLOCK_SKEW {
        return Err(FieldViolation::new(
            field,
            format!(
                "must not be more than 5 minutes in the future, got {} (server time {})",
                time.to_rfc3339(),
                now.to_rfc3339()
            ),
        ));
    }
    let micros = time.timestamp_micros();
    Ok(DateTime::from_timestamp_micros(micros).unwrap_or(time))
}

/// Why `time` cannot be an encounter's, in words that do not repeat it:
/// for messages whose times are a patient's dates of care.
pub fn time_out_of_bounds(time: DateTime<Utc>, now: DateTime<Utc>) -> Option<&'static str> {
    if time < earliest_time() {
        Some("is before 2000-01-01")
    } else if time > now + MAX_CLOCK_SKEW {
        Some("is more than 5 minutes ahead of the server's clock")
    } else {
        None
    }
}

/// A measured number of seconds: 0 to seven days.
pub fn seconds(field: &str, value: Option<i64>) -> Result<Option<i64>, FieldViolation> {
    in_range(field, value, 0, MAX_SECONDS)
}

/// A satisfaction score, 1 (very dissatisfied) to 5 (very satisfied).
pub fn satisfaction(field: &str, value: Option<i32>) -> Result<Option<i32>, FieldViolation> {
    in_range(field, value.map(i64::from), 1, 5).map(|v| v.map(|v| v as i32))
}

/// An effort score, 1 (very easy) to 7 (very hard).
pub fn effort(field: &str, value: Option<i32>) -> Result<Option<i32>, FieldViolation> {
    in_range(field, value.map(i64::from), 1, 7).map(|v| v.map(|v| v as i32))
}

fn in_range(
    field: &str,
    value: Option<i64>,
    low: i64,
    high: i64,
) -> Result<Option<i64>, FieldViolation> {
    match value {
        Some(v) if !(low..=high).contains(&v) => Err(FieldViolation::new(
            field,
            format!("must be between {low} and {high}, got {v}"),
        )),
        other => Ok(other),
    }
}

/// Free attributes: at most 32, keys of 1 to 64 characters without control
/// characters, values up to 1024 characters.
pub fn attributes<'a>(
    field: &str,
    entries: impl ExactSizeIterator<Item = (&'a String, &'a String)>,
) -> Result<BTreeMap<String, String>, FieldViolation> {
    if entries.len() > MAX_ATTRIBUTES {
        return Err(FieldViolation::new(
            field,
            format!(
                "must have at most {MAX_ATTRIBUTES} entries, got {}",
                entries.len()
            ),
        ));
    }
    let mut checked = BTreeMap::new();
    for (key, value) in entries {
        reference(
            &format!("{field}[{key:?}]"),
            key,
            ATTRIBUTE_KEY_MAX_CHARS,
            true,
        )
        .map_err(|v| FieldViolation::new(field, format!("key {key:?} {}", v.description)))?;
        optional_text(field, value, ATTRIBUTE_VALUE_MAX_CHARS).map_err(|v| {
            FieldViolation::new(field, format!("value of {key:?} {}", v.description))
        })?;
        checked.insert(key.clone(), value.clone());
    }
    Ok(checked)
}

/// An observation as sent, before its code is checked.
pub struct ObservationInput<'a> {
    pub standard_code: &'a str,
    pub met: bool,
    pub note: &'a str,
}

/// Checks the observations of an encounter: at most 64, each naming a
/// standard once, notes up to 1000 characters. Violations name the
/// observation by index under `field`.
pub fn observations(
    field: &str,
    inputs: &[ObservationInput<'_>],
) -> Result<Vec<Observation>, Vec<FieldViolation>> {
    if inputs.len() > MAX_OBSERVATIONS {
        return Err(vec![FieldViolation::new(
            field,
            format!(
                "must have at most {MAX_OBSERVATIONS} entries, got {}",
                inputs.len()
            ),
        )]);
    }
    let mut violations = Vec::new();
    let mut checked: Vec<Observation> = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.iter().enumerate() {
        let code = parse_code(
            &format!("{field}[{index}].standard_code"),
            input.standard_code,
        );
        let note = optional_text(
            &format!("{field}[{index}].note"),
            input.note,
            NOTE_MAX_CHARS,
        );
        match (code, note) {
            (Ok(code), Ok(note)) => {
                if checked
                    .iter()
                    .any(|o| o.standard_code.eq_ignore_ascii_case(&code))
                {
                    violations.push(FieldViolation::new(
                        field,
                        format!("report standard {code:?} more than once"),
                    ));
                }
                checked.push(Observation {
                    standard_code: code,
                    met: input.met,
                    note,
                });
            }
            (code, note) => {
                violations.extend(code.err());
                violations.extend(note.err());
            }
        }
    }
    if violations.is_empty() {
        Ok(checked)
    } else {
        Err(violations)
    }
}

/// An encounter as a sender pushed it, every field checked on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEncounter {
    pub touchpoint: Lookup,
    pub journey_id: String,
    pub customer_ref: Option<String>,
    pub occur_time: DateTime<Utc>,
    /// `None`: the touchpoint's channel.
    pub channel: Option<Channel>,
    pub measurements: Measurements,
    pub situation: Option<Situation>,
    pub staff_ref: Option<String>,
    pub comment: String,
    pub observations: Vec<Observation>,
    pub attributes: BTreeMap<String, String>,
    pub source: String,
    pub external_id: String,
}

/// Why a checked encounter cannot be stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Unacceptable {
    Invalid(Vec<FieldViolation>),
    Refused(Refusal),
}

/// An encounter resolved against its organisation's touchpoint and
/// standards, evaluated and ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedEncounter {
    pub id: Uuid,
    pub touchpoint_id: Uuid,
    pub journey_id: String,
    pub customer_hash: Option<Vec<u8>>,
    pub occur_time: DateTime<Utc>,
    pub channel: Channel,
    pub measurements: Measurements,
    pub situation: Option<Situation>,
    pub staff_ref: Option<String>,
    pub comment: String,
    pub observations: Vec<Observation>,
    pub attributes: BTreeMap<String, String>,
    pub source: String,
    pub external_id: String,
    pub content_hash: [u8; 32],
    pub evaluation: Evaluation,
}

impl PreparedEncounter {
    /// The encounter as reading it back after its insert would give it:
    /// `touchpoint_code` is its touchpoint's, `receive_time` the time the
    /// database gave it.
    pub fn stored(&self, touchpoint_code: &str, receive_time: DateTime<Utc>) -> Encounter {
        Encounter {
            id: self.id,
            touchpoint: TouchpointRef {
                id: self.touchpoint_id,
                code: touchpoint_code.to_owned(),
            },
            journey_id: self.journey_id.clone(),
            has_customer_ref: self.customer_hash.is_some(),
            occur_time: self.occur_time,
            channel: self.channel,
            measurements: self.measurements,
            situation: self.situation,
            staff_ref: self.staff_ref.clone(),
            comment: self.comment.clone(),
            observations: self.observations.clone(),
            attributes: self.attributes.clone(),
            source: self.source.clone(),
            external_id: self.external_id.clone(),
            failed: self.evaluation.failed(),
            low_satisfaction: self.evaluation.low_satisfaction(),
            results: self.evaluation.results.clone(),
            receive_time,
        }
    }
}

/// What the organisation holds that an encounter is checked and evaluated
/// against.
pub struct Context<'a> {
    pub standards: &'a [Standard],
    pub failure_threshold: i32,
}

/// Resolves `new` at `touchpoint`, evaluates it and fixes its content hash.
/// `customer_hash` is the pseudonym of its customer reference; `field` is
/// the request path of the encounter, for violations.
pub fn prepare(
    field: &str,
    new: NewEncounter,
    touchpoint: &Touchpoint,
    customer_hash: Option<Vec<u8>>,
    context: &Context<'_>,
) -> Result<PreparedEncounter, Unacceptable> {
    touchpoint
        .check_active("recording encounters at it")
        .map_err(Unacceptable::Refused)?;
    let evaluation = evaluate(
        &EncounterFacts {
            touchpoint_id: touchpoint.id,
            measurements: new.measurements,
            observations: &new.observations,
        },
        context.standards,
        context.failure_threshold,
    );
    if !evaluation.unmatched_observations.is_empty() {
        let violations = new
            .observations
            .iter()
            .enumerate()
            .filter(|(_, o)| evaluation.unmatched_observations.contains(&o.standard_code))
            .map(|(index, o)| {
                FieldViolation::new(
                    format!("{field}.observations[{index}].standard_code"),
                    format!(
                        "names no observed standard in force at touchpoint {}: {:?}",
                        touchpoint.code, o.standard_code
                    ),
                )
            })
            .collect();
        return Err(Unacceptable::Invalid(violations));
    }
    let channel = new.channel.unwrap_or(touchpoint.channel);
    let content_hash = content_hash(&new, touchpoint.id, channel, customer_hash.as_deref());
    Ok(PreparedEncounter {
        id: Uuid::now_v7(),
        touchpoint_id: touchpoint.id,
        journey_id: new.journey_id,
        customer_hash,
        occur_time: new.occur_time,
        channel,
        measurements: new.measurements,
        situation: new.situation,
        staff_ref: new.staff_ref,
        comment: new.comment,
        observations: new.observations,
        attributes: new.attributes,
        source: new.source,
        external_id: new.external_id,
        content_hash,
        evaluation,
    })
}

/// A digest of what the sender said about the event: two pushes with the
/// same key are the same event exactly when their digests agree. The
/// touchpoint counts by id, so naming it by code or by id is the same
/// content; every field is length-prefixed so no two contents collide by
/// concatenation.
fn content_hash(
    new: &NewEncounter,
    touchpoint_id: Uuid,
    channel: Channel,
    customer_hash: Option<&[u8]>,
) -> [u8; 32] {
    let mut hasher = ContentDigest::new();
    hasher.bytes(touchpoint_id.as_bytes());
    hasher.text(&new.journey_id);
    hasher.optional(customer_hash);
    hasher.number(new.occur_time.timestamp_micros());
    hasher.text(channel.as_str());
    let m = &new.measurements;
    for value in [
        m.wait_seconds,
        m.first_response_seconds,
        m.duration_seconds,
        m.satisfaction.map(i64::from),
        m.effort.map(i64::from),
    ] {
        hasher.optional_number(value);
    }
    hasher.optional(new.situation.map(|s| s.as_str().as_bytes()));
    hasher.optional(new.staff_ref.as_deref().map(str::as_bytes));
    hasher.text(&new.comment);
    hasher.number(new.observations.len() as i64);
    for observation in &new.observations {
        hasher.text(&observation.standard_code.to_ascii_lowercase());
        hasher.bytes(&[u8::from(observation.met)]);
        hasher.text(&observation.note);
    }
    hasher.number(new.attributes.len() as i64);
    for (key, value) in &new.attributes {
        hasher.text(key);
        hasher.text(value);
    }
    hasher.finish()
}

/// An encounter as stored, with its evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Encounter {
    pub id: Uuid,
    pub touchpoint: TouchpointRef,
    pub journey_id: String,
    pub has_customer_ref: bool,
    pub occur_time: DateTime<Utc>,
    pub channel: Channel,
    pub measurements: Measurements,
    pub situation: Option<Situation>,
    pub staff_ref: Option<String>,
    pub comment: String,
    pub observations: Vec<Observation>,
    pub attributes: BTreeMap<String, String>,
    pub source: String,
    pub external_id: String,
    pub failed: bool,
    pub low_satisfaction: bool,
    pub results: Vec<super::evaluation::StandardResult>,
    pub receive_time: DateTime<Utc>,
}

impl Encounter {
    /// The codes of the critical standards the encounter violated, in the
    /// order of its results.
    pub fn violated_critical_standards(&self) -> Vec<String> {
        self.results
            .iter()
            .filter(|r| {
                r.severity == super::standard::Severity::Critical
                    && r.outcome == super::evaluation::Outcome::Violated
            })
            .map(|r| r.code.clone())
            .collect()
    }
}

/// The filters of a list of encounters; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EncounterFilter {
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub touchpoint_id: Option<Uuid>,
    pub journey_id: Option<String>,
    pub situation: Option<Situation>,
    pub channel: Option<Channel>,
    pub failed_only: bool,
    pub customer_hash: Option<Vec<u8>>,
}

impl EncounterFilter {
    /// A text that changes whenever a filter does, for page tokens.
    pub fn fingerprint(&self) -> String {
        format!(
            "encounters|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{:?}",
            self.start_time.map(|t| t.timestamp_micros()),
            self.end_time.map(|t| t.timestamp_micros()),
            self.touchpoint_id,
            self.journey_id,
            self.situation,
            self.channel,
            self.failed_only,
            self.customer_hash,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        standard::{Comparison, Element, MetricField, Rule, Severity},
        touchpoint::{Occurrence, Stage},
    };

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
    }

    fn touchpoint() -> Touchpoint {
        Touchpoint {
            id: Uuid::now_v7(),
            code: "reception".into(),
            display_name: "Reception".into(),
            description: String::new(),
            stage: Stage::Service,
            channel: Channel::InPerson,
            key: true,
            occurrence: Occurrence::Routine,
            cycle_position: 10,
            create_time: now(),
            update_time: now(),
            archive_time: None,
        }
    }

    fn new_encounter() -> NewEncounter {
        NewEncounter {
            touchpoint: Lookup::Code("reception".into()),
            journey_id: "visit-1".into(),
            customer_ref: None,
            occur_time: now() - Duration::hours(1),
            channel: None,
            measurements: Measurements {
                first_response_seconds: Some(20),
                satisfaction: Some(4),
                ..Measurements::default()
            },
            situation: None,
            staff_ref: None,
            comment: String::new(),
            observations: vec![],
            attributes: BTreeMap::new(),
            source: "his".into(),
            external_id: "e-1".into(),
        }
    }

    fn greeting(at: Uuid) -> Standard {
        Standard {
            id: Uuid::now_v7(),
            revision_id: Uuid::now_v7(),
            code: "greet-15s".into(),
            title: "Greet".into(),
            touchpoint: Some(TouchpointRef {
                id: at,
                code: "reception".into(),
            }),
            element: Element::Humanware,
            severity: Severity::Critical,
            guidance: String::new(),
            rule: Rule::Metric {
                field: MetricField::FirstResponseSeconds,
                comparison: Comparison::LessOrEqual,
                threshold: 15.0,
            },
            create_time: now(),
            update_time: now(),
            archive_time: None,
        }
    }

    #[test]
    fn occur_time_is_bounded_and_kept_to_the_microsecond() {
        let early = Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap();
        assert!(occur_time("t", Some(early), now()).is_err());
        assert!(occur_time("t", Some(earliest_time()), now()).is_ok());
        assert!(occur_time("t", Some(now() + Duration::minutes(5)), now()).is_ok());
        let err = occur_time("t", Some(now() + Duration::minutes(6)), now()).unwrap_err();
        assert!(err.description.contains("5 minutes"), "{}", err.description);
        assert_eq!(
            occur_time("t", None, now()).unwrap_err().description,
            "is required"
        );
        let precise = now() - Duration::nanoseconds(1_234_567);
        let kept = occur_time("t", Some(precise), now()).unwrap();
        assert_eq!(kept.timestamp_subsec_nanos() % 1000, 0);
        assert!(precise - kept < Duration::microseconds(1));
    }

    #[test]
    fn scores_and_seconds_are_bounded() {
        assert!(seconds("s", Some(-1)).is_err());
        assert_eq!(seconds("s", Some(MAX_SECONDS)).unwrap(), Some(MAX_SECONDS));
        assert!(seconds("s", Some(MAX_SECONDS + 1)).is_err());
        assert!(satisfaction("s", Some(0)).is_err());
        assert!(satisfaction("s", Some(6)).is_err());
        assert_eq!(satisfaction("s", None).unwrap(), None);
        assert!(effort("e", Some(7)).is_ok());
        assert!(effort("e", Some(8)).is_err());
    }

    #[test]
    fn references_reject_control_characters_and_long_values() {
        assert!(required_reference("j", "", 10).is_err());
        assert!(required_reference("j", "a\tb", 10).is_err());
        assert!(required_reference("j", &"x".repeat(11), 10).is_err());
        assert_eq!(reference("c", "", 10, false).unwrap(), None);
    }

    #[test]
    fn attributes_are_limited_in_number_and_size() {
        let many: BTreeMap<String, String> =
            (0..33).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(attributes("a", many.iter()).is_err());
        let long_value: BTreeMap<String, String> =
            [("k".to_owned(), "v".repeat(1025))].into_iter().collect();
        assert!(attributes("a", long_value.iter()).is_err());
        let empty_key: BTreeMap<String, String> =
            [(String::new(), "v".to_owned())].into_iter().collect();
        assert!(attributes("a", empty_key.iter()).is_err());
    }

    #[test]
    fn an_observation_may_name_a_standard_only_once() {
        let inputs = [
            ObservationInput {
                standard_code: "Badge",
                met: true,
                note: "",
            },
            ObservationInput {
                standard_code: "badge",
                met: false,
                note: "",
            },
        ];
        let err = observations("e.observations", &inputs).unwrap_err();
        assert_eq!(err[0].field, "e.observations");
    }

    #[test]
    fn prepare_evaluates_and_defaults_the_channel() {
        let at = touchpoint();
        let standards = [greeting(at.id)];
        let context = Context {
            standards: &standards,
            failure_threshold: 2,
        };
        let prepared = prepare("e", new_encounter(), &at, None, &context).unwrap();
        assert_eq!(prepared.channel, Channel::InPerson);
        assert!(prepared.evaluation.failed());
    }

    #[test]
    fn only_violated_critical_standards_are_named_as_such() {
        let at = touchpoint();
        let mut minor = greeting(at.id);
        minor.code = "greet-minor".into();
        minor.severity = Severity::Minor;
        let mut met = greeting(at.id);
        met.code = "greet-5min".into();
        met.rule = Rule::Metric {
            field: MetricField::FirstResponseSeconds,
            comparison: Comparison::LessOrEqual,
            threshold: 300.0,
        };
        let standards = [greeting(at.id), minor, met];
        let context = Context {
            standards: &standards,
            failure_threshold: 2,
        };
        let prepared = prepare("e", new_encounter(), &at, None, &context).unwrap();
        let stored = prepared.stored(&at.code, now());
        assert_eq!(stored.results.len(), 3);
        assert_eq!(stored.violated_critical_standards(), ["greet-15s"]);
    }

    #[test]
    fn prepare_refuses_archived_touchpoints_and_unknown_observations() {
        let mut at = touchpoint();
        let context = Context {
            standards: &[],
            failure_threshold: 2,
        };
        let mut new = new_encounter();
        new.observations = vec![Observation {
            standard_code: "nothing".into(),
            met: true,
            note: String::new(),
        }];
        match prepare("e", new.clone(), &at, None, &context) {
            Err(Unacceptable::Invalid(v)) => {
                assert_eq!(v[0].field, "e.observations[0].standard_code")
            }
            other => panic!("unexpected {other:?}"),
        }
        at.archive_time = Some(now());
        match prepare("e", new, &at, None, &context) {
            Err(Unacceptable::Refused(r)) => assert_eq!(r.reason, "TOUCHPOINT_ARCHIVED"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn the_content_hash_ignores_how_the_touchpoint_was_named_but_not_the_content() {
        let at = touchpoint();
        let context = Context {
            standards: &[],
            failure_threshold: 2,
        };
        let by_code = prepare("e", new_encounter(), &at, None, &context).unwrap();
        let mut by_id = new_encounter();
        by_id.touchpoint = Lookup::Id(at.id);
        let by_id = prepare("e", by_id, &at, None, &context).unwrap();
        assert_eq!(by_code.content_hash, by_id.content_hash);

        let mut other = new_encounter();
        other.measurements.satisfaction = Some(5);
        let other = prepare("e", other, &at, None, &context).unwrap();
        assert_ne!(by_code.content_hash, other.content_hash);

        let mut attributed = new_encounter();
        attributed.attributes.insert("ward".into(), "3".into());
        let mut shifted = new_encounter();
        shifted.attributes.insert("ward3".into(), String::new());
        let a = prepare("e", attributed, &at, None, &context).unwrap();
        let b = prepare("e", shifted, &at, None, &context).unwrap();
        assert_ne!(a.content_hash, b.content_hash);
    }
}
