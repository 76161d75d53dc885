//! What a feed's mapping makes of an Encounter: the moments it records.
//!
//! An Encounter is sent again each time it changes, whole. Every moment's
//! external id is therefore derived from what the moment is (the
//! Encounter's identifier, the location or status, the time), so that a
//! resend makes the same ids and only what is new is stored.

use std::collections::{BTreeMap, HashSet};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use chrono_tz::Tz;
use sha2::{Digest, Sha256};

use super::{
    datetime::FhirDateTime,
    outcome::{Issue, IssueType},
    types::{Encounter, EncounterStatus, Identifier, LocationStatus, Reference, nonempty},
};
use crate::domain::feed::{FhirR4Mapping, FhirR4Rule, JourneySource};

pub const JOURNEY_ID_MAX_CHARS: usize = 128;
pub const CUSTOMER_REF_MAX_CHARS: usize = 256;
pub const STAFF_REF_MAX_CHARS: usize = 128;

/// The attribute that says what made a moment: `location` or `status`.
pub const MOMENT_ATTRIBUTE: &str = "fhir.moment";
/// The attribute that holds the Encounter's status (for a location) or the
/// status history entry's (for a status).
pub const STATUS_ATTRIBUTE: &str = "fhir.status";
/// The attribute that holds the key of the Encounter a moment came from
/// ([`resource_key`]), by which a withdrawal finds what it stored.
pub const RESOURCE_ATTRIBUTE: &str = "fhir.resource";

/// A moment an Encounter records, still to be checked against the
/// organisation's touchpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moment {
    pub touchpoint_code: String,
    pub journey_id: String,
    pub customer_ref: Option<String>,
    pub staff_ref: Option<String>,
    /// To the microsecond, as it is stored.
    pub occur_time: DateTime<Utc>,
    /// `fhir:` and 43 characters: the same for the same moment of the same
    /// Encounter however often it is sent.
    pub external_id: String,
    pub attributes: BTreeMap<String, String>,
}

/// Whether the Encounter takes back what it recorded: it was cancelled, or
/// should never have existed. [`moments`] makes none for it; the caller
/// withdraws the moments stored under its [`resource_key`].
pub fn withdrawn(encounter: &Encounter) -> bool {
    matches!(
        encounter.status,
        EncounterStatus::Cancelled | EncounterStatus::EnteredInError
    )
}

/// What the mapping takes from an Encounter.
///
/// Rules without a status map locations: each `location` entry with a
/// period start gives one moment, at the first such rule that matches it,
/// at that start. An entry only planned or reserved, or any entry of a
/// planned Encounter, is a plan rather than an event and gives none.
///
/// Rules with a status map statuses: each `statusHistory` entry with a
/// period start, at the first such rule that matches it; and the current
/// status as well when no entry of the history has it, since R4 keeps the
/// current status out of the history. The current status is taken to have
/// begun:
/// - for `finished`, at `period.end`, else at the latest end in the
///   history;
/// - for any other, at the latest end in the history (the previous status
///   ended then), else at `period.start`.
///
/// That is the start the entry for it will have once a later resend moves
/// it into the history, so the moment keeps its external id. A current
/// `planned` or `unknown` status gives no moment.
///
/// None matched is `Ok` and empty: the Encounter is ignored. So is a
/// [`withdrawn`] Encounter. Times without a time of day are local in
/// `zone`.
pub fn moments(
    encounter: &Encounter,
    mapping: &FhirR4Mapping,
    zone: Tz,
) -> Result<Vec<Moment>, Vec<Issue>> {
    if withdrawn(encounter) {
        return Ok(Vec::new());
    }
    let matches = matches(encounter, mapping, zone);
    if matches.is_empty() {
        return Ok(Vec::new());
    }

    let mut faults = Faults::default();
    let journey_id = faults.keep(journey_id(encounter, mapping));
    let customer_ref = faults.keep(customer_ref(encounter, mapping));
    let staff_ref = faults.keep(staff_ref(encounter));
    let identity = faults.keep(identity(encounter, mapping));
    let timed: Vec<_> = matches
        .into_iter()
        .filter_map(|m| {
            let kind = faults.keep(m.kind())?;
            let time = faults.keep(instant(m.start, &m.start_at, zone))?;
            Some((m, kind, time))
        })
        .collect();
    let (Some(journey_id), Some(customer_ref), Some(staff_ref), Some(identity), true) = (
        journey_id,
        customer_ref,
        staff_ref,
        identity,
        faults.0.is_empty(),
    ) else {
        return Err(faults.0);
    };

    let resource = resource_key_of(identity);
    let mut moments: Vec<Moment> = Vec::new();
    let mut made = HashSet::new();
    for (m, kind, time) in timed {
        let external_id = external_id(identity, &kind, time);
        // The same location twice at the same time is one moment.
        if !made.insert(external_id.clone()) {
            continue;
        }
        moments.push(Moment {
            touchpoint_code: m.rule.touchpoint_code.clone(),
            journey_id: journey_id.clone(),
            customer_ref: customer_ref.clone(),
            staff_ref: staff_ref.clone(),
            occur_time: time,
            external_id,
            attributes: BTreeMap::from([
                (MOMENT_ATTRIBUTE.to_owned(), m.source.moment().to_owned()),
                (STATUS_ATTRIBUTE.to_owned(), m.status.as_str().to_owned()),
                (RESOURCE_ATTRIBUTE.to_owned(), resource.clone()),
            ]),
        });
    }
    Ok(moments)
}

/// The key of the Encounter itself: `fhir:` and the hash of its
/// identifier's system and value, the one its moments' external ids are
/// made from. A withdrawal looks for it in [`RESOURCE_ATTRIBUTE`].
pub fn resource_key(encounter: &Encounter, mapping: &FhirR4Mapping) -> Result<String, Issue> {
    identity(encounter, mapping).map(resource_key_of)
}

/// The issues found so far, each element named once: the journey and the
/// identity may both miss the same identifier.
#[derive(Default)]
struct Faults(Vec<Issue>);

impl Faults {
    fn keep<T>(&mut self, result: Result<T, Issue>) -> Option<T> {
        result
            .map_err(|issue| {
                if !self.0.iter().any(|i| i.expression == issue.expression) {
                    self.0.push(issue);
                }
            })
            .ok()
    }
}

/// A moment matched by a rule, its time not yet read.
struct Matched<'a> {
    rule: &'a FhirR4Rule,
    source: Source<'a>,
    /// The status recorded with the moment.
    status: EncounterStatus,
    start: &'a FhirDateTime,
    /// The FHIRPath of `start`.
    start_at: String,
}

enum Source<'a> {
    Location { at: usize, place: &'a Reference },
    Status,
}

impl Source<'_> {
    fn moment(&self) -> &'static str {
        match self {
            Source::Location { .. } => "location",
            Source::Status => "status",
        }
    }
}

impl Matched<'_> {
    /// What the moment is, for its external id: `location:<reference or
    /// identifier>` or `status:<status>`.
    fn kind(&self) -> Result<String, Issue> {
        match &self.source {
            Source::Location { at, place } => {
                let name = place.key().unwrap_or_default();
                // A control character could pass for the separators the
                // key is hashed with.
                if name.chars().any(char::is_control) {
                    let at = format!("Encounter.location[{at}].location");
                    return Err(Issue::error(
                        IssueType::Value,
                        format!("{at} must not contain control characters"),
                        Some(at),
                    ));
                }
                Ok(format!("location:{name}"))
            }
            Source::Status => Ok(format!("status:{}", self.status.as_str())),
        }
    }
}

/// Every moment a rule takes, locations first, each in the order sent.
fn matches<'a>(encounter: &'a Encounter, mapping: &'a FhirR4Mapping, zone: Tz) -> Vec<Matched<'a>> {
    let (status_rules, location_rules): (Vec<&FhirR4Rule>, Vec<&FhirR4Rule>) =
        mapping.rules.iter().partition(|r| !r.status.is_empty());
    // The conditions on the Encounter as a whole are checked once, not for
    // each location and status: a rule that fails them can never be the
    // first to match, and a large Encounter would otherwise cost rules ×
    // locations × statuses.
    let holds = |rule: &FhirR4Rule| {
        condition(&rule.class_code, encounter.class.code.as_deref())
            && (rule.service_type_code.is_empty()
                || encounter
                    .service_type
                    .iter()
                    .flat_map(|concept| &concept.coding)
                    .any(|coding| condition(&rule.service_type_code, coding.code.as_deref())))
    };
    let was_at = |wanted: &str| {
        wanted.is_empty()
            || encounter
                .location
                .iter()
                .any(|location| location.location.is(wanted))
    };
    let location_rules: Vec<&FhirR4Rule> =
        location_rules.into_iter().filter(|r| holds(r)).collect();
    let status_rules: Vec<&FhirR4Rule> = status_rules
        .into_iter()
        .filter(|r| holds(r) && was_at(&r.location))
        .collect();
    let mut found = Vec::new();

    if encounter.status != EncounterStatus::Planned {
        for (i, location) in encounter.location.iter().enumerate() {
            if matches!(
                location.status,
                Some(LocationStatus::Planned | LocationStatus::Reserved)
            ) {
                continue;
            }
            let Some(start) = location.period.as_ref().and_then(|p| p.start.as_ref()) else {
                continue;
            };
            let place = &location.location;
            let rule = location_rules
                .iter()
                .find(|r| r.location.is_empty() || place.is(&r.location));
            if let Some(rule) = rule {
                found.push(Matched {
                    rule,
                    source: Source::Location { at: i, place },
                    status: encounter.status,
                    start,
                    start_at: format!("Encounter.location[{i}].period.start"),
                });
            }
        }
    }

    if status_rules.is_empty() {
        return found;
    }
    let mut statuses: Vec<(EncounterStatus, &FhirDateTime, String)> = encounter
        .status_history
        .iter()
        .enumerate()
        .filter_map(|(i, entry)| {
            let start = entry.period.start.as_ref()?;
            let at = format!("Encounter.statusHistory[{i}].period.start");
            Some((entry.status, start, at))
        })
        .collect();
    statuses.extend(current_status(encounter, zone));
    for (status, start, start_at) in statuses {
        let rule = status_rules
            .iter()
            .find(|r| r.status.eq_ignore_ascii_case(status.as_str()));
        if let Some(rule) = rule {
            found.push(Matched {
                rule,
                source: Source::Status,
                status,
                start,
                start_at,
            });
        }
    }
    found
}

/// The current status as a history entry, when the history lacks it: see
/// [`moments`].
fn current_status(
    encounter: &Encounter,
    zone: Tz,
) -> Option<(EncounterStatus, &FhirDateTime, String)> {
    let status = encounter.status;
    if matches!(
        status,
        EncounterStatus::Planned
            | EncounterStatus::Unknown
            | EncounterStatus::Cancelled
            | EncounterStatus::EnteredInError
    ) || encounter.status_history.iter().any(|e| e.status == status)
    {
        return None;
    }
    // Every end was checked to be a dateTime when the Encounter was read,
    // so none is lost here.
    let latest_end = encounter
        .status_history
        .iter()
        .enumerate()
        .filter_map(|(i, entry)| {
            let end = entry.period.end.as_ref()?;
            let instant = end.instant(zone).ok()?;
            Some((instant, end, i))
        })
        .max_by_key(|(instant, _, _)| *instant)
        .map(|(_, end, i)| (end, format!("Encounter.statusHistory[{i}].period.end")));
    let period = encounter.period.as_ref();
    let (start, at) = if status == EncounterStatus::Finished {
        let end = period.and_then(|p| p.end.as_ref());
        end.map(|end| (end, "Encounter.period.end".to_owned()))
            .or(latest_end)?
    } else {
        let start = period.and_then(|p| p.start.as_ref());
        latest_end.or_else(|| start.map(|start| (start, "Encounter.period.start".to_owned())))?
    };
    Some((status, start, at))
}

/// An empty condition holds for anything; a set one for the same text in
/// any case.
fn condition(wanted: &str, got: Option<&str>) -> bool {
    wanted.is_empty() || got.is_some_and(|got| wanted.eq_ignore_ascii_case(got))
}

fn instant(value: &FhirDateTime, at: &str, zone: Tz) -> Result<DateTime<Utc>, Issue> {
    value
        .instant(zone)
        // Kept as PostgreSQL keeps it, so the external id and the stored
        // time agree.
        .map(|time| time.trunc_subsecs(6))
        .map_err(|e| Issue::error(IssueType::Value, format!("{at} {e}"), Some(at.to_owned())))
}

fn journey_id(encounter: &Encounter, mapping: &FhirR4Mapping) -> Result<String, Issue> {
    let (value, at) = match mapping.journey_source {
        JourneySource::Identifier => {
            let system = mapping.journey_identifier_system.as_str();
            let Some((i, identifier)) = journey_identifier(encounter, system) else {
                let at = "Encounter.identifier".to_owned();
                let diagnostics = if system.is_empty() {
                    format!("{at} is required: it is the journey")
                } else {
                    format!("{at} of system {system} is required: it is the journey")
                };
                return Err(Issue::error(IssueType::Required, diagnostics, Some(at)));
            };
            (
                identifier.value.as_deref(),
                format!("Encounter.identifier[{i}].value"),
            )
        }
        JourneySource::PartOf => reference_value(encounter.part_of.as_ref(), "Encounter.partOf"),
        JourneySource::EpisodeOfCare => reference_value(
            encounter.episode_of_care.first(),
            "Encounter.episodeOfCare[0]",
        ),
    };
    let Some(value) = nonempty(value) else {
        return Err(Issue::error(
            IssueType::Required,
            format!("{at} is required: it is the journey"),
            Some(at),
        ));
    };
    checked(value, &at, JOURNEY_ID_MAX_CHARS)
}

/// The identifier the journey comes from: the first of the mapping's
/// system, or the first at all when the mapping names none (the feed's
/// checks require one, but an older mapping may lack it).
fn journey_identifier<'a>(
    encounter: &'a Encounter,
    system: &str,
) -> Option<(usize, &'a Identifier)> {
    encounter
        .identifier
        .iter()
        .enumerate()
        .find(|(_, identifier)| system.is_empty() || identifier.system.as_deref() == Some(system))
}

/// A reference's `reference`, else its identifier's value, with the
/// FHIRPath of the one used (of `reference` when neither is there).
fn reference_value<'a>(reference: Option<&'a Reference>, at: &str) -> (Option<&'a str>, String) {
    let Some(reference) = reference else {
        return (None, at.to_owned());
    };
    match nonempty(reference.reference.as_deref()) {
        Some(value) => (Some(value), format!("{at}.reference")),
        None => (
            reference
                .identifier
                .as_ref()
                .and_then(|i| i.value.as_deref()),
            format!("{at}.identifier.value"),
        ),
    }
}

fn customer_ref(encounter: &Encounter, mapping: &FhirR4Mapping) -> Result<Option<String>, Issue> {
    let Some(subject) = &encounter.subject else {
        return Ok(None);
    };
    let system = mapping.customer_identifier_system.as_str();
    let (value, at) = if system.is_empty() {
        (subject.reference.as_deref(), "Encounter.subject.reference")
    } else {
        let value = subject
            .identifier
            .as_ref()
            .filter(|identifier| identifier.system.as_deref() == Some(system))
            .and_then(|identifier| identifier.value.as_deref());
        (value, "Encounter.subject.identifier.value")
    };
    nonempty(value)
        .map(|value| checked(value, at, CUSTOMER_REF_MAX_CHARS))
        .transpose()
}

/// The first participant named by a reference or an identifier, but for a
/// RelatedPerson: a relative or a friend is not staff, and naming one would
/// store a patient's contact.
fn staff_ref(encounter: &Encounter) -> Result<Option<String>, Issue> {
    let found = encounter
        .participant
        .iter()
        .enumerate()
        .find_map(|(i, participant)| {
            let individual = participant.individual.as_ref()?;
            if is_related_person(individual) {
                return None;
            }
            let (value, at) = reference_value(
                Some(individual),
                &format!("Encounter.participant[{i}].individual"),
            );
            nonempty(value).map(|value| (value, at))
        });
    found
        .map(|(value, at)| checked(value, &at, STAFF_REF_MAX_CHARS))
        .transpose()
}

fn is_related_person(individual: &Reference) -> bool {
    const TYPE: &str = "RelatedPerson";
    let by_reference = individual.reference.as_deref().is_some_and(|reference| {
        // Relative (`RelatedPerson/7`) or absolute (`https://…/RelatedPerson/7`).
        let kind = reference.rsplit('/').nth(1);
        kind == Some(TYPE)
    });
    by_reference || individual.kind.as_deref() == Some(TYPE)
}

/// A value kept as a reference: one line of at most `max` characters. The
/// issue names the element, never the value.
fn checked(value: &str, at: &str, max: usize) -> Result<String, Issue> {
    let fault = if value.chars().any(char::is_control) {
        "must not contain control characters".to_owned()
    } else {
        let length = value.chars().count();
        if length <= max {
            return Ok(value.to_owned());
        }
        format!("must be at most {max} characters, got {length}")
    };
    Err(Issue::error(
        IssueType::Value,
        format!("{at} {fault}"),
        Some(at.to_owned()),
    ))
}

/// The identifier that stands for the Encounter: the journey's when the
/// journey is an identifier, else the first.
fn identity<'a>(
    encounter: &'a Encounter,
    mapping: &FhirR4Mapping,
) -> Result<(&'a str, &'a str), Issue> {
    let preferred = (mapping.journey_source == JourneySource::Identifier)
        .then(|| journey_identifier(encounter, &mapping.journey_identifier_system))
        .flatten()
        .filter(|(_, identifier)| nonempty(identifier.value.as_deref()).is_some());
    let Some((i, identifier)) =
        preferred.or_else(|| encounter.identifier.iter().enumerate().next())
    else {
        let at = "Encounter.identifier".to_owned();
        return Err(Issue::error(
            IssueType::Required,
            format!(
                "{at} is required: it tells a resent Encounter from a new one, so that its \
                 moments are not stored twice"
            ),
            Some(at),
        ));
    };
    let at = format!("Encounter.identifier[{i}]");
    let Some(value) = nonempty(identifier.value.as_deref()) else {
        let at = format!("{at}.value");
        return Err(Issue::error(
            IssueType::Required,
            format!("{at} is required: it tells a resent Encounter from a new one"),
            Some(at),
        ));
    };
    let system = identifier.system.as_deref().unwrap_or_default();
    // A control character could pass for the separators of the hash.
    for (text, name) in [(system, "system"), (value, "value")] {
        if text.chars().any(char::is_control) {
            let at = format!("{at}.{name}");
            return Err(Issue::error(
                IssueType::Value,
                format!("{at} must not contain control characters"),
                Some(at),
            ));
        }
    }
    Ok((system, value))
}

fn resource_key_of((system, value): (&str, &str)) -> String {
    hashed(&[system, value])
}

/// `fhir:` and the unpadded base64url SHA-256 of the identifier, the kind
/// of moment and its time in RFC 3339 UTC to the microsecond, joined by NUL.
fn external_id((system, value): (&str, &str), kind: &str, time: DateTime<Utc>) -> String {
    let time = time.to_rfc3339_opts(SecondsFormat::Micros, true);
    hashed(&[system, value, kind, &time])
}

fn hashed(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update([0]);
        }
        hasher.update(part.as_bytes());
    }
    format!("fhir:{}", URL_SAFE_NO_PAD.encode(hasher.finalize()))
}
