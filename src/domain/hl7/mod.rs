//! HL7 v2 messages: what their header says, and what a feed's mapping makes
//! of them (an encounter, a cancel, or nothing).

pub mod ack;
pub mod charset;
pub mod time;

use std::{borrow::Cow, collections::BTreeMap};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use er7::Message;

use super::{
    code::Lookup,
    encounter::{
        CUSTOMER_REF_MAX_CHARS, EXTERNAL_ID_MAX_CHARS, JOURNEY_ID_MAX_CHARS, NewEncounter,
        STAFF_REF_MAX_CHARS, reference, time_out_of_bounds,
    },
    feed::{Acknowledgement, FieldPath, Hl7v2Mapping},
};

/// The attribute of an encounter a feed made that holds its trigger event,
/// which a cancel looks for.
pub const TRIGGER_ATTRIBUTE: &str = "hl7.trigger_event";
/// The message type the attribute beside it holds.
pub const MESSAGE_TYPE_ATTRIBUTE: &str = "hl7.message_type";

/// HL7 table 0357's error codes, for the ERR segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    SegmentSequence,
    RequiredFieldMissing,
    DataTypeError,
    TableValueNotFound,
    UnsupportedMessageType,
    UnsupportedEventCode,
    UnsupportedProcessingId,
    UnsupportedVersionId,
    UnknownKeyIdentifier,
    ApplicationInternalError,
}

impl ErrorCode {
    pub fn code(self) -> u16 {
        match self {
            ErrorCode::SegmentSequence => 100,
            ErrorCode::RequiredFieldMissing => 101,
            ErrorCode::DataTypeError => 102,
            ErrorCode::TableValueNotFound => 103,
            ErrorCode::UnsupportedMessageType => 200,
            ErrorCode::UnsupportedEventCode => 201,
            ErrorCode::UnsupportedProcessingId => 202,
            ErrorCode::UnsupportedVersionId => 203,
            ErrorCode::UnknownKeyIdentifier => 204,
            ErrorCode::ApplicationInternalError => 207,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            ErrorCode::SegmentSequence => "Segment sequence error",
            ErrorCode::RequiredFieldMissing => "Required field missing",
            ErrorCode::DataTypeError => "Data type error",
            ErrorCode::TableValueNotFound => "Table value not found",
            ErrorCode::UnsupportedMessageType => "Unsupported message type",
            ErrorCode::UnsupportedEventCode => "Unsupported event code",
            ErrorCode::UnsupportedProcessingId => "Unsupported processing id",
            ErrorCode::UnsupportedVersionId => "Unsupported version id",
            ErrorCode::UnknownKeyIdentifier => "Unknown key identifier",
            ErrorCode::ApplicationInternalError => "Application internal error",
        }
    }
}

/// Why a message is refused: the acknowledgement it gets, where the fault
/// is, and what it is, never with a patient's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub acknowledgement: Acknowledgement,
    pub code: ErrorCode,
    /// The segment at fault, empty when none is.
    pub segment: String,
    /// The field position at fault, 0 when none is.
    pub field: usize,
    pub reason: String,
}

impl Fault {
    pub fn reject(code: ErrorCode, segment: &str, field: usize, reason: impl Into<String>) -> Self {
        Self {
            acknowledgement: Acknowledgement::Reject,
            code,
            segment: segment.to_owned(),
            field,
            reason: reason.into(),
        }
    }

    pub fn error(code: ErrorCode, segment: &str, field: usize, reason: impl Into<String>) -> Self {
        Self {
            acknowledgement: Acknowledgement::Error,
            code,
            segment: segment.to_owned(),
            field,
            reason: reason.into(),
        }
    }
}

/// What the MSH segment says, as far as it could be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub sending_application: String,
    pub sending_facility: String,
    pub receiving_application: String,
    pub receiving_facility: String,
    /// MSH-10, empty when missing.
    pub control_id: String,
    pub message_type: String,
    pub trigger_event: String,
    pub processing_id: String,
    pub version: String,
}

/// A message read: its header and its parsed segments.
pub struct Parsed {
    pub header: Header,
    message: Message,
}

/// The first subcomponent of a component of one repetition of a field,
/// unescaped; empty when absent.
fn value(
    message: &Message,
    segment: &str,
    field: usize,
    repetition: usize,
    component: usize,
) -> String {
    message
        .segment(segment)
        .and_then(|s| s.field(field))
        .and_then(|f| f.repetition(repetition))
        .and_then(|r| r.component(component))
        .and_then(|c| c.subcomponent(1))
        .map(|s| s.value(&message.separators).trim().to_owned())
        .unwrap_or_default()
}

/// The header of `message`, as much of it as can be read, for an
/// acknowledgement even of a message that is refused.
fn header_of(message: &Message) -> Header {
    let msh = |field, component| value(message, "MSH", field, 1, component);
    Header {
        sending_application: msh(3, 1),
        sending_facility: msh(4, 1),
        receiving_application: msh(5, 1),
        receiving_facility: msh(6, 1),
        control_id: msh(10, 1),
        message_type: msh(9, 1).to_ascii_uppercase(),
        trigger_event: msh(9, 2).to_ascii_uppercase(),
        processing_id: msh(11, 1),
        version: msh(12, 1),
    }
}

/// The header a message that cannot be decoded or parsed in full still
/// shows: read from its text with every undecodable byte replaced, for the
/// acknowledgement only.
pub fn salvage_header(bytes: &[u8]) -> Header {
    let text = String::from_utf8_lossy(bytes);
    er7::parse(&text).map(|m| header_of(&m)).unwrap_or_default()
}

/// A message refused before it was read in full: as much of its header as
/// could be read, and why.
pub type Unread = Box<(Header, Fault)>;

/// The most delimiters a message may hold. An ADT message has a few
/// hundred; the parser keeps a small allocation per field, component and
/// repetition, so a message of nothing but delimiters would cost a hundred
/// times its size.
pub const MAX_DELIMITERS: usize = 50_000;

/// Whether `bytes` hold more delimiters (of the standard set, or of the
/// message's own MSH-1 and MSH-2) than a message may.
fn too_many_delimiters(bytes: &[u8]) -> bool {
    let mut delimiters = *b"|^~\\&";
    if let Some(own) = bytes.get(3..8) {
        delimiters.copy_from_slice(own);
    }
    bytes
        .iter()
        .filter(|b| delimiters.contains(b) || **b == b'\r' || **b == b'\n')
        .count()
        > MAX_DELIMITERS
}

/// Decodes and parses a message; a message that is not HL7 v2 (no MSH, an
/// unknown character set, no control id, a version other than 2.x) is
/// rejected, and so is one that is not for production (MSH-11 other than
/// P).
pub fn parse(bytes: &[u8]) -> Result<Parsed, Unread> {
    parse_with(bytes, None)
}

/// As [`parse`], reading a message whose MSH-18 is empty and whose bytes
/// are not UTF-8 in the feed's `default_charset`, when it has one.
pub fn parse_with(bytes: &[u8], default_charset: Option<&str>) -> Result<Parsed, Unread> {
    if too_many_delimiters(bytes) {
        return Err(Box::new((
            salvage_header(bytes.get(..4096).unwrap_or(bytes)),
            Fault::reject(
                ErrorCode::SegmentSequence,
                "",
                0,
                format!(
                    "the message holds more than {MAX_DELIMITERS} fields, components and segments"
                ),
            ),
        )));
    }
    let text: Cow<'_, str> = charset::decode_with(bytes, default_charset).map_err(|e| {
        Box::new((
            salvage_header(bytes),
            Fault::reject(ErrorCode::DataTypeError, "MSH", 18, e.to_string()),
        ))
    })?;
    let message = er7::parse(&text).map_err(|e| {
        let reason = match e {
            er7::Error::Empty => "the message is empty".to_owned(),
            _ => "the message does not begin with a valid MSH segment".to_owned(),
        };
        Box::new((
            Header::default(),
            Fault::reject(ErrorCode::SegmentSequence, "MSH", 0, reason),
        ))
    })?;
    let header = header_of(&message);
    let refuse = |code, field, reason: &str| -> Result<Parsed, Unread> {
        Err(Box::new((
            header.clone(),
            Fault::reject(code, "MSH", field, reason),
        )))
    };
    if header.control_id.is_empty() {
        return refuse(
            ErrorCode::RequiredFieldMissing,
            10,
            "MSH-10 (message control id) is empty",
        );
    }
    if header.control_id.chars().count() > EXTERNAL_ID_MAX_CHARS {
        return refuse(
            ErrorCode::DataTypeError,
            10,
            &format!(
                "MSH-10 (message control id) is longer than {EXTERNAL_ID_MAX_CHARS} characters"
            ),
        );
    }
    // Training and debugging messages are not care that happened.
    if !(header.processing_id.is_empty() || header.processing_id.eq_ignore_ascii_case("P")) {
        return refuse(
            ErrorCode::UnsupportedProcessingId,
            11,
            "MSH-11 (processing id) must be P (production): training and debugging messages are not stored",
        );
    }
    if header.message_type.is_empty() || header.trigger_event.is_empty() {
        return refuse(
            ErrorCode::RequiredFieldMissing,
            9,
            "MSH-9 (message type) must give the type and the trigger event, such as ADT^A04",
        );
    }
    if header.sending_application.is_empty() {
        return refuse(
            ErrorCode::RequiredFieldMissing,
            3,
            "MSH-3 (sending application) is empty",
        );
    }
    if !header.version.starts_with("2.") {
        return refuse(
            ErrorCode::UnsupportedVersionId,
            12,
            "MSH-12 (version id) must be an HL7 v2 version such as 2.5.1",
        );
    }
    Ok(Parsed { header, message })
}

/// A moment a message makes: an encounter still to be checked against the
/// organisation's touchpoints.
pub type Moment = NewEncounter;

/// What a feed does with a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Store this encounter.
    Store(Box<Moment>),
    /// Withdraw what the latest standing message of these trigger events
    /// stored in the journey.
    Withdraw {
        journey_id: String,
        cancelled: &'static [&'static str],
    },
    /// Nothing: no rule takes the event.
    Ignore,
}

/// The trigger events a cancel withdraws: A11 cancels an admit or a
/// registration, A12 a transfer, A13 a discharge.
fn cancelled_by(trigger: &str) -> Option<&'static [&'static str]> {
    match trigger {
        "A11" => Some(&["A01", "A04"]),
        "A12" => Some(&["A02"]),
        "A13" => Some(&["A03"]),
        _ => None,
    }
}

/// Maps a parsed message by `mapping`. Times without an offset are in
/// `zone`; `now` bounds how late a time may be. The encounter's source and
/// external id are the feed's code and the control id.
pub fn map(
    parsed: &Parsed,
    mapping: &Hl7v2Mapping,
    feed_code: &str,
    zone: Tz,
    now: DateTime<Utc>,
) -> Result<Action, Fault> {
    let header = &parsed.header;
    let message = &parsed.message;
    if header.message_type == "ADT"
        && let Some(cancelled) = cancelled_by(&header.trigger_event)
    {
        let journey_id = journey(message, &mapping.journey_field)?;
        return Ok(Action::Withdraw {
            journey_id,
            cancelled,
        });
    }
    let location = location(message, &header.trigger_event);
    let location = [
        location[0].as_str(),
        location[1].as_str(),
        location[2].as_str(),
        location[3].as_str(),
    ];
    let Some(rule) = mapping
        .rules
        .iter()
        .find(|r| r.matches(&header.message_type, &header.trigger_event, location))
    else {
        return Ok(Action::Ignore);
    };
    let journey_id = journey(message, &mapping.journey_field)?;
    let customer_ref = customer(message, mapping)?;
    let staff_ref = match &mapping.staff_field {
        Some(path) => {
            let staff = read(message, path, 1);
            checked(path, &staff, STAFF_REF_MAX_CHARS, false)?
        }
        None => None,
    };
    let occurred = event_time(message, zone, now)?;
    let attributes = BTreeMap::from([
        (
            MESSAGE_TYPE_ATTRIBUTE.to_owned(),
            header.message_type.clone(),
        ),
        (TRIGGER_ATTRIBUTE.to_owned(), header.trigger_event.clone()),
    ]);
    Ok(Action::Store(Box::new(NewEncounter {
        touchpoint: Lookup::Code(rule.touchpoint_code.clone()),
        journey_id,
        customer_ref,
        occur_time: occurred,
        channel: None,
        measurements: Default::default(),
        situation: None,
        staff_ref,
        comment: String::new(),
        observations: Vec::new(),
        attributes,
        source: feed_code.to_owned(),
        external_id: header.control_id.clone(),
    })))
}

/// The location a rule is matched against: PV1-3 (assigned location), or
/// for A09 and A10 (patient departing and arriving) PV1-11 (temporary
/// location) when it is given.
fn location(message: &Message, trigger: &str) -> [String; 4] {
    let at = |field| std::array::from_fn(|i| value(message, "PV1", field, 1, i + 1));
    if matches!(trigger, "A09" | "A10") {
        let temporary: [String; 4] = at(11);
        if temporary.iter().any(|part| !part.is_empty()) {
            return temporary;
        }
    }
    at(3)
}

/// The value at `path` in its first repetition; component 1 unless the
/// path names one (`default_component` is used for paths without).
fn read(message: &Message, path: &FieldPath, default_component: usize) -> String {
    value(
        message,
        &path.segment,
        path.field,
        1,
        path.component.unwrap_or(default_component),
    )
}

/// A reference read from `path`, checked like one sent to the API; the
/// fault names the field and never echoes the value.
fn checked(
    path: &FieldPath,
    value: &str,
    max: usize,
    required: bool,
) -> Result<Option<String>, Fault> {
    reference(&path.to_string(), value, max, required).map_err(|v| {
        let code = if value.is_empty() {
            ErrorCode::RequiredFieldMissing
        } else {
            ErrorCode::DataTypeError
        };
        Fault::error(
            code,
            &path.segment,
            path.field,
            format!("{} {}", v.field, v.description),
        )
    })
}

fn journey(message: &Message, path: &FieldPath) -> Result<String, Fault> {
    let journey = read(message, path, 1);
    if journey.is_empty() {
        return Err(Fault::error(
            ErrorCode::RequiredFieldMissing,
            &path.segment,
            path.field,
            format!("{path} (the journey) is empty"),
        ));
    }
    Ok(checked(path, &journey, JOURNEY_ID_MAX_CHARS, true)?.unwrap_or_default())
}

/// The customer: the first repetition of the customer field, or the one of
/// the mapping's assigning authority (component 4); `None` when absent.
fn customer(message: &Message, mapping: &Hl7v2Mapping) -> Result<Option<String>, Fault> {
    let path = &mapping.customer_field;
    let component = path.component.unwrap_or(1);
    let repetitions = message
        .segment(&path.segment)
        .and_then(|s| s.field(path.field))
        .map_or(0, |f| f.repetitions.len());
    let found = (1..=repetitions)
        .find(|&r| {
            mapping.customer_assigning_authority.is_empty()
                || value(message, &path.segment, path.field, r, 4)
                    .eq_ignore_ascii_case(&mapping.customer_assigning_authority)
        })
        .map(|r| value(message, &path.segment, path.field, r, component))
        .unwrap_or_default();
    checked(path, &found, CUSTOMER_REF_MAX_CHARS, false)
}

/// When the event happened: EVN-6 (event occurred), else EVN-2 (recorded),
/// else MSH-7 (message time).
fn event_time(message: &Message, zone: Tz, now: DateTime<Utc>) -> Result<DateTime<Utc>, Fault> {
    let candidates = [("EVN", 6), ("EVN", 2), ("MSH", 7)];
    let Some((segment, field, text)) = candidates.iter().find_map(|&(segment, field)| {
        let text = value(message, segment, field, 1, 1);
        (!text.is_empty()).then_some((segment, field, text))
    }) else {
        return Err(Fault::error(
            ErrorCode::RequiredFieldMissing,
            "EVN",
            2,
            "no time given: EVN-6, EVN-2 and MSH-7 are all empty",
        ));
    };
    let name = format!("{segment}-{field}");
    let time = time::parse_time(&text, zone).map_err(|e| {
        Fault::error(
            ErrorCode::DataTypeError,
            segment,
            field,
            format!("{name} {e}"),
        )
    })?;
    if let Some(problem) = time_out_of_bounds(time, now) {
        return Err(Fault::error(
            ErrorCode::DataTypeError,
            segment,
            field,
            format!("{name} {problem}"),
        ));
    }
    Ok(DateTime::from_timestamp_micros(time.timestamp_micros()).unwrap_or(time))
}

#[cfg(test)]
mod tests;
