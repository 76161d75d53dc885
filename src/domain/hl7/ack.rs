//! The acknowledgement (ACK) a sender gets for each message: original mode,
//! MSA-2 echoing its control id, and an ERR segment saying what was wrong.

use chrono::{DateTime, Utc};

use super::{Fault, Header};
use crate::domain::feed::Acknowledgement;

/// What Verdad calls itself in MSH-3 of its acknowledgements.
pub const APPLICATION: &str = "VERDAD";

/// The version an acknowledgement states when the message's is unusable.
const DEFAULT_VERSION: &str = "2.5.1";

/// Escapes `text` for a field written with the standard delimiters.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\E\\"),
            '|' => escaped.push_str("\\F\\"),
            '^' => escaped.push_str("\\S\\"),
            '&' => escaped.push_str("\\T\\"),
            '~' => escaped.push_str("\\R\\"),
            // A segment ends at a line break: a reason is one line.
            '\r' | '\n' => escaped.push(' '),
            c if c.is_control() => {}
            c => escaped.push(c),
        }
    }
    escaped
}

/// The acknowledgement of a message with `header`: `AA` when `fault` is
/// `None`, else its code with MSA-3 and ERR saying why. `control_id` is the
/// acknowledgement's own MSH-10.
pub fn build(
    header: &Header,
    acknowledgement: Acknowledgement,
    fault: Option<&Fault>,
    control_id: &str,
    now: DateTime<Utc>,
) -> String {
    let version = if header.version.starts_with("2.") {
        header.version.as_str()
    } else {
        DEFAULT_VERSION
    };
    let processing = if header.processing_id.is_empty() {
        "P"
    } else {
        header.processing_id.as_str()
    };
    let trigger = escape(&header.trigger_event);
    let mut ack = format!(
        "MSH|^~\\&|{APPLICATION}|{}|{}|{}|{}||ACK^{trigger}^ACK|{}|{}|{}\r",
        escape(&header.receiving_facility),
        escape(&header.sending_application),
        escape(&header.sending_facility),
        now.format("%Y%m%d%H%M%S%.3f+0000"),
        escape(control_id),
        escape(processing),
        escape(version),
    );
    ack.push_str(&format!(
        "MSA|{}|{}",
        acknowledgement.code(),
        escape(&header.control_id)
    ));
    if let Some(fault) = fault {
        let reason = escape(&fault.reason);
        ack.push_str(&format!("|{reason}\r"));
        let location = if fault.segment.is_empty() {
            String::new()
        } else if fault.field == 0 {
            format!("{}^1", escape(&fault.segment))
        } else {
            format!("{}^1^{}", escape(&fault.segment), fault.field)
        };
        ack.push_str(&format!(
            "ERR||{location}|{}^{}^HL70357|E||||{reason}\r",
            fault.code.code(),
            fault.code.text(),
        ));
    } else {
        ack.push('\r');
    }
    ack
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::hl7::ErrorCode;

    fn header() -> Header {
        Header {
            sending_application: "EPIC".into(),
            sending_facility: "MAIN".into(),
            receiving_application: "VERDAD".into(),
            receiving_facility: "QI".into(),
            control_id: "MSG|1".into(),
            message_type: "ADT".into(),
            trigger_event: "A04".into(),
            processing_id: "T".into(),
            version: "2.3".into(),
        }
    }

    #[test]
    fn an_accept_echoes_the_control_id() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let ack = build(&header(), Acknowledgement::Accept, None, "ACK1", now);
        let segments: Vec<&str> = ack.split_terminator('\r').collect();
        assert_eq!(
            segments[0],
            "MSH|^~\\&|VERDAD|QI|EPIC|MAIN|20270115080000.000+0000||ACK^A04^ACK|ACK1|T|2.3"
        );
        assert_eq!(segments[1], "MSA|AA|MSG\\F\\1");
        assert_eq!(segments.len(), 2);
        let parsed = er7::parse(&ack).unwrap();
        assert_eq!(parsed.query("MSA-2").unwrap().as_deref(), Some("MSG|1"));
    }

    #[test]
    fn an_error_says_where_and_why() {
        let fault = Fault::error(
            ErrorCode::RequiredFieldMissing,
            "PV1",
            19,
            "PV1-19 (the journey) is empty\r^",
        );
        let ack = build(
            &Header::default(),
            Acknowledgement::Error,
            Some(&fault),
            "A",
            Utc::now(),
        );
        let parsed = er7::parse(&ack).unwrap();
        assert_eq!(parsed.query("MSA-1").unwrap().as_deref(), Some("AE"));
        assert_eq!(parsed.query("MSH-12").unwrap().as_deref(), Some("2.5.1"));
        assert_eq!(parsed.query("ERR-2.1").unwrap().as_deref(), Some("PV1"));
        assert_eq!(parsed.query("ERR-2.3").unwrap().as_deref(), Some("19"));
        assert_eq!(parsed.query("ERR-3.1").unwrap().as_deref(), Some("101"));
        assert_eq!(
            parsed.query("ERR-8").unwrap().as_deref(),
            Some("PV1-19 (the journey) is empty ^")
        );
    }
}
