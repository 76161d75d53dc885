//! Feeds: hospital systems whose own traffic (HL7 v2 ADT over MLLP, FHIR
//! R4 Encounters) Verdad maps to encounters, and the rules of that mapping.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{code::parse_code, encounter::reference, refusal::Refusal, violation::FieldViolation};

pub const DISPLAY_NAME_MAX_CHARS: usize = 200;
/// HD's namespace id is 20 characters in the standard; senders exceed it.
pub const SENDER_MAX_CHARS: usize = 227;
pub const MAX_RULES: usize = 200;
pub const CONDITION_MAX_CHARS: usize = 128;
pub const MAX_CERTIFICATES: usize = 8;
/// How long refused messages are listed.
pub const REJECTIONS_KEPT_DAYS: i64 = 30;

/// A feed as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Feed {
    pub id: Uuid,
    pub code: String,
    pub display_name: String,
    pub mapping: Mapping,
    pub counts: FeedCounts,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub archive_time: Option<DateTime<Utc>>,
}

impl Feed {
    pub fn is_archived(&self) -> bool {
        self.archive_time.is_some()
    }

    pub fn check_changeable(&self) -> Result<(), Refusal> {
        if self.is_archived() {
            return Err(Refusal::new(
                "FEED_ARCHIVED",
                format!("feed {} is archived and cannot be changed", self.code),
            ));
        }
        Ok(())
    }
}

/// What a feed has received so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedCounts {
    pub accepted: i64,
    pub duplicates: i64,
    pub ignored: i64,
    pub rejected: i64,
    pub last_message_time: Option<DateTime<Utc>>,
}

/// A feed's mapping; its case is the feed's kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mapping {
    Hl7v2(Box<Hl7v2Mapping>),
    FhirR4(FhirR4Mapping),
}

impl Mapping {
    /// The kind as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Mapping::Hl7v2(_) => "hl7v2",
            Mapping::FhirR4(_) => "fhir_r4",
        }
    }

    /// The touchpoint codes the rules name, with the field of each.
    pub fn touchpoint_codes(&self) -> Vec<(String, &str)> {
        match self {
            Mapping::Hl7v2(m) => m
                .rules
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    (
                        format!("feed.hl7v2.rules[{i}].touchpoint_code"),
                        r.touchpoint_code.as_str(),
                    )
                })
                .collect(),
            Mapping::FhirR4(m) => m
                .rules
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    (
                        format!("feed.fhir_r4.rules[{i}].touchpoint_code"),
                        r.touchpoint_code.as_str(),
                    )
                })
                .collect(),
        }
    }
}

/// A field of an HL7 v2 message: `PV1-19`, or `PV1-19.1` for a component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FieldPath {
    pub segment: String,
    pub field: usize,
    pub component: Option<usize>,
}

impl FieldPath {
    pub fn new(segment: &str, field: usize) -> Self {
        Self {
            segment: segment.to_owned(),
            field,
            component: None,
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let wrong = || format!("must be a field such as PV1-19 or PV1-19.1, got {text:?}");
        let (segment, rest) = text.split_once('-').ok_or_else(wrong)?;
        let segment_ok = segment.len() == 3
            && segment.starts_with(|c: char| c.is_ascii_uppercase())
            && segment
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !segment_ok {
            return Err(wrong());
        }
        let number = |s: &str| -> Result<usize, String> {
            match s.parse::<usize>() {
                Ok(n @ 1..=999) if !s.starts_with('0') => Ok(n),
                _ => Err(wrong()),
            }
        };
        let (field, component) = match rest.split_once('.') {
            Some((field, component)) => (number(field)?, Some(number(component)?)),
            None => (number(rest)?, None),
        };
        Ok(Self {
            segment: segment.to_owned(),
            field,
            component,
        })
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.segment, self.field)?;
        if let Some(component) = self.component {
            write!(f, ".{component}")?;
        }
        Ok(())
    }
}

impl TryFrom<String> for FieldPath {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl From<FieldPath> for String {
    fn from(path: FieldPath) -> String {
        path.to_string()
    }
}

/// How an HL7 v2 feed is recognised and mapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hl7v2Mapping {
    pub sending_application: String,
    pub sending_facility: String,
    pub rules: Vec<Hl7v2Rule>,
    pub journey_field: FieldPath,
    pub customer_field: FieldPath,
    pub customer_assigning_authority: String,
    pub staff_field: Option<FieldPath>,
    /// Lower-case hexadecimal SHA-256 fingerprints.
    pub client_certificates: Vec<String>,
    /// The character set of messages whose MSH-18 is empty and whose bytes
    /// are not UTF-8 (an HL7 table 0211 name); empty for none.
    #[serde(default)]
    pub default_character_set: String,
}

impl Hl7v2Mapping {
    /// The default character set, when there is one.
    pub fn default_charset(&self) -> Option<&str> {
        Some(self.default_character_set.as_str()).filter(|name| !name.is_empty())
    }
}

impl Hl7v2Mapping {
    pub fn default_journey_field() -> FieldPath {
        FieldPath::new("PV1", 19)
    }

    pub fn default_customer_field() -> FieldPath {
        FieldPath::new("PID", 3)
    }
}

/// One rule of an HL7 v2 feed; empty conditions match anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hl7v2Rule {
    /// MSH-9.1, or empty when the rule names the trigger event alone.
    pub message_type: String,
    /// MSH-9.2.
    pub trigger_event: String,
    pub point_of_care: String,
    pub room: String,
    pub bed: String,
    pub facility: String,
    pub touchpoint_code: String,
}

impl Hl7v2Rule {
    /// The event as the rule was written: `ADT^A04` or `A04`.
    pub fn event(&self) -> String {
        if self.message_type.is_empty() {
            self.trigger_event.clone()
        } else {
            format!("{}^{}", self.message_type, self.trigger_event)
        }
    }

    /// Whether the rule takes a message of `message_type^trigger_event`
    /// at `location` (point of care, room, bed, facility).
    pub fn matches(&self, message_type: &str, trigger_event: &str, location: [&str; 4]) -> bool {
        let condition =
            |wanted: &str, got: &str| wanted.is_empty() || wanted.eq_ignore_ascii_case(got);
        condition(&self.message_type, message_type)
            && self.trigger_event.eq_ignore_ascii_case(trigger_event)
            && condition(&self.point_of_care, location[0])
            && condition(&self.room, location[1])
            && condition(&self.bed, location[2])
            && condition(&self.facility, location[3])
    }
}

/// Where a FHIR Encounter's journey comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JourneySource {
    Identifier,
    PartOf,
    EpisodeOfCare,
}

/// How a FHIR R4 feed's Encounters are mapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FhirR4Mapping {
    pub rules: Vec<FhirR4Rule>,
    pub journey_source: JourneySource,
    pub journey_identifier_system: String,
    pub customer_identifier_system: String,
}

/// One rule of a FHIR R4 feed; empty conditions match anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FhirR4Rule {
    pub location: String,
    pub class_code: String,
    pub service_type_code: String,
    pub status: String,
    pub touchpoint_code: String,
}

/// A feed to create, every field checked but the touchpoints its rules
/// name, which the core looks up.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFeed {
    pub code: String,
    pub display_name: String,
    pub mapping: Mapping,
}

/// An update: `Some` for every field the mask names. A mapping field names
/// its kind's subfield; the core refuses one of the other kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedChanges {
    pub display_name: Option<String>,
    pub hl7v2: Hl7v2Changes,
    pub fhir_r4: FhirR4Changes,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hl7v2Changes {
    pub sending_application: Option<String>,
    pub sending_facility: Option<String>,
    pub rules: Option<Vec<Hl7v2Rule>>,
    pub journey_field: Option<FieldPath>,
    pub customer_field: Option<FieldPath>,
    pub customer_assigning_authority: Option<String>,
    pub staff_field: Option<Option<FieldPath>>,
    pub client_certificates: Option<Vec<String>>,
    pub default_character_set: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FhirR4Changes {
    pub rules: Option<Vec<FhirR4Rule>>,
    pub journey_source: Option<JourneySource>,
    pub journey_identifier_system: Option<String>,
    pub customer_identifier_system: Option<String>,
}

impl Hl7v2Changes {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl FhirR4Changes {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

fn set<T>(field: &mut T, change: Option<T>) {
    if let Some(value) = change {
        *field = value;
    }
}

impl FeedChanges {
    /// Applies the changes to `feed`; a change to the other kind's mapping
    /// is refused, since a feed's kind never changes.
    pub fn apply_to(self, feed: &mut Feed) -> Result<(), FieldViolation> {
        set(&mut feed.display_name, self.display_name);
        match &mut feed.mapping {
            Mapping::Hl7v2(m) => {
                if !self.fhir_r4.is_empty() {
                    return Err(FieldViolation::new(
                        "update_mask",
                        "names fhir_r4 fields, but the feed is an HL7 v2 feed; a feed's kind cannot change",
                    ));
                }
                let c = self.hl7v2;
                set(&mut m.sending_application, c.sending_application);
                set(&mut m.sending_facility, c.sending_facility);
                set(&mut m.rules, c.rules);
                set(&mut m.journey_field, c.journey_field);
                set(&mut m.customer_field, c.customer_field);
                set(
                    &mut m.customer_assigning_authority,
                    c.customer_assigning_authority,
                );
                set(&mut m.staff_field, c.staff_field);
                set(&mut m.client_certificates, c.client_certificates);
                set(&mut m.default_character_set, c.default_character_set);
                check_rule_count("feed.hl7v2.rules", m.rules.len())
            }
            Mapping::FhirR4(m) => {
                if !self.hl7v2.is_empty() {
                    return Err(FieldViolation::new(
                        "update_mask",
                        "names hl7v2 fields, but the feed is a FHIR R4 feed; a feed's kind cannot change",
                    ));
                }
                let c = self.fhir_r4;
                set(&mut m.rules, c.rules);
                set(&mut m.journey_source, c.journey_source);
                set(
                    &mut m.journey_identifier_system,
                    c.journey_identifier_system,
                );
                set(
                    &mut m.customer_identifier_system,
                    c.customer_identifier_system,
                );
                check_rule_count("feed.fhir_r4.rules", m.rules.len())?;
                check_journey_system(m)
            }
        }
    }
}

/// A feed code: a code like a touchpoint's.
pub fn feed_code(field: &str, code: &str) -> Result<String, FieldViolation> {
    parse_code(field, code)
}

/// 1 to 200 rules.
pub fn check_rule_count(field: &str, count: usize) -> Result<(), FieldViolation> {
    if count == 0 {
        return Err(FieldViolation::new(field, "must hold at least one rule"));
    }
    if count > MAX_RULES {
        return Err(FieldViolation::new(
            field,
            format!("must hold at most {MAX_RULES} rules, got {count}"),
        ));
    }
    Ok(())
}

/// An identifier journey without a system would take any identifier.
pub fn check_journey_system(mapping: &FhirR4Mapping) -> Result<(), FieldViolation> {
    if mapping.journey_source == JourneySource::Identifier
        && mapping.journey_identifier_system.is_empty()
    {
        return Err(FieldViolation::new(
            "feed.fhir_r4.journey_identifier_system",
            "is required when the journey comes from an identifier",
        ));
    }
    Ok(())
}

/// A sending application or facility, or a rule's condition: one line of
/// printable characters without HL7 delimiters.
pub fn hl7_value(
    field: &str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<String, FieldViolation> {
    let value = reference(field, value.trim(), max, required)?.unwrap_or_default();
    if value.contains(['|', '^', '~', '\\', '&']) {
        return Err(FieldViolation::new(
            field,
            "must not contain the HL7 delimiters | ^ ~ \\ &",
        ));
    }
    Ok(value)
}

/// A rule's event: `ADT^A04` or `A04` (message type, trigger event).
pub fn hl7_event(field: &str, value: &str) -> Result<(String, String), FieldViolation> {
    let wrong = || {
        FieldViolation::new(
            field,
            format!("must be an event such as ADT^A04 or A04, got {value:?}"),
        )
    };
    let word = |s: &str| {
        (1..=7).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let (message_type, trigger, typed) = match value.trim().split_once('^') {
        Some((message_type, trigger)) => (message_type, trigger, true),
        None => ("", value.trim(), false),
    };
    if !word(trigger) || (typed && !word(message_type)) {
        return Err(wrong());
    }
    Ok((
        message_type.to_ascii_uppercase(),
        trigger.to_ascii_uppercase(),
    ))
}

/// A default character set: empty, or a name of HL7 table 0211 that the
/// decoder knows.
pub fn character_set(field: &str, value: &str) -> Result<String, FieldViolation> {
    let value = value.trim();
    if value.is_empty() || super::hl7::charset::is_known(value) {
        Ok(value.to_owned())
    } else {
        Err(FieldViolation::new(
            field,
            "must be a character set of HL7 table 0211 such as KS X 1001, 8859/1 or UNICODE UTF-8",
        ))
    }
}

/// A certificate's SHA-256 fingerprint: 64 hexadecimal digits, colons
/// allowed between bytes as tools print them; kept in lower case.
pub fn certificate_fingerprint(field: &str, value: &str) -> Result<String, FieldViolation> {
    let digits: String = value.chars().filter(|c| *c != ':').collect();
    if digits.len() != 64 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(FieldViolation::new(
            field,
            "must be a SHA-256 fingerprint: 64 hexadecimal digits",
        ));
    }
    Ok(digits.to_ascii_lowercase())
}

/// A message a feed refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub id: Uuid,
    pub control_id: String,
    pub receive_time: DateTime<Utc>,
    pub acknowledgement: Acknowledgement,
    pub segment: String,
    pub field: i32,
    pub reason: String,
}

/// HL7 v2's acknowledgement codes (original mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acknowledgement {
    /// Accepted: stored, a duplicate, or ignored.
    Accept,
    /// An error in a message that was understood: fixing it is the
    /// sender's (or the mapping's) business, resending it as is won't help.
    Error,
    /// Rejected: not understood, not ours, or not now.
    Reject,
}

impl Acknowledgement {
    pub fn code(self) -> &'static str {
        match self {
            Acknowledgement::Accept => "AA",
            Acknowledgement::Error => "AE",
            Acknowledgement::Reject => "AR",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "AA" => Some(Acknowledgement::Accept),
            "AE" => Some(Acknowledgement::Error),
            "AR" => Some(Acknowledgement::Reject),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_read_and_print_alike() {
        for text in ["PV1-19", "PID-3", "PV1-19.1", "ZP1-2.10"] {
            assert_eq!(FieldPath::parse(text).unwrap().to_string(), text);
        }
        for bad in [
            "", "PV1", "pv1-19", "PV1-0", "PV1-019", "PV1-19.", "PV11-2", "1V1-2", "PV1-x",
        ] {
            assert!(FieldPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn events_take_a_type_or_not() {
        assert_eq!(
            hl7_event("e", "adt^a04").unwrap(),
            ("ADT".to_owned(), "A04".to_owned())
        );
        assert_eq!(
            hl7_event("e", "A09").unwrap(),
            (String::new(), "A09".to_owned())
        );
        for bad in ["", "^A01", "ADT^", "ADT^A01^ADT_A01", "A 1", "ADT|A01"] {
            assert!(hl7_event("e", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rules_match_every_condition_they_set() {
        let rule = Hl7v2Rule {
            message_type: "ADT".into(),
            trigger_event: "A04".into(),
            point_of_care: "ER".into(),
            room: String::new(),
            bed: String::new(),
            facility: String::new(),
            touchpoint_code: "er-registration".into(),
        };
        assert!(rule.matches("ADT", "a04", ["er", "1", "", "MAIN"]));
        assert!(!rule.matches("ADT", "A01", ["ER", "", "", ""]));
        assert!(!rule.matches("ADT", "A04", ["W3", "", "", ""]));
        assert!(!rule.matches("ORM", "A04", ["ER", "", "", ""]));
        let any_type = Hl7v2Rule {
            message_type: String::new(),
            point_of_care: String::new(),
            ..rule
        };
        assert!(any_type.matches("ADT", "A04", ["", "", "", ""]));
    }

    #[test]
    fn fingerprints_are_kept_in_one_form() {
        let colons = "AB:".repeat(31) + "AB";
        assert_eq!(
            certificate_fingerprint("f", &colons).unwrap(),
            "ab".repeat(32)
        );
        assert!(certificate_fingerprint("f", "abc").is_err());
        assert!(certificate_fingerprint("f", &"zz".repeat(32)).is_err());
    }

    #[test]
    fn a_feed_keeps_its_kind() {
        let mut feed = Feed {
            id: Uuid::now_v7(),
            code: "adt".into(),
            display_name: "ADT".into(),
            mapping: Mapping::FhirR4(FhirR4Mapping {
                rules: vec![],
                journey_source: JourneySource::PartOf,
                journey_identifier_system: String::new(),
                customer_identifier_system: String::new(),
            }),
            counts: FeedCounts::default(),
            create_time: Utc::now(),
            update_time: Utc::now(),
            archive_time: None,
        };
        let changes = FeedChanges {
            hl7v2: Hl7v2Changes {
                sending_facility: Some("X".into()),
                ..Hl7v2Changes::default()
            },
            ..FeedChanges::default()
        };
        assert_eq!(
            changes.apply_to(&mut feed).unwrap_err().field,
            "update_mask"
        );
    }

    #[test]
    fn mappings_survive_their_stored_form() {
        let mapping = Mapping::Hl7v2(Box::new(Hl7v2Mapping {
            sending_application: "EPIC".into(),
            sending_facility: "MAIN".into(),
            rules: vec![],
            journey_field: Hl7v2Mapping::default_journey_field(),
            customer_field: FieldPath::parse("PID-3.1").unwrap(),
            customer_assigning_authority: "HOSP".into(),
            staff_field: None,
            client_certificates: vec![],
            default_character_set: String::new(),
        }));
        let json = serde_json::to_value(&mapping).unwrap();
        assert_eq!(json["journey_field"], "PV1-19");
        assert_eq!(serde_json::from_value::<Mapping>(json).unwrap(), mapping);
    }
}
