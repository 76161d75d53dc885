//! The mapping of hand-built messages (see tests/data/hl7 for whole ones
//! over MLLP).

use chrono::{TimeZone, Utc};

use super::*;
use crate::domain::feed::{FieldPath, Hl7v2Mapping, Hl7v2Rule};

fn mapping() -> Hl7v2Mapping {
    let rule = |event: &str, point_of_care: &str, touchpoint: &str| {
        let (message_type, trigger_event) = crate::domain::feed::hl7_event("e", event).unwrap();
        Hl7v2Rule {
            message_type,
            trigger_event,
            point_of_care: point_of_care.into(),
            room: String::new(),
            bed: String::new(),
            facility: String::new(),
            touchpoint_code: touchpoint.into(),
        }
    };
    Hl7v2Mapping {
        sending_application: "EPIC".into(),
        sending_facility: "MAIN".into(),
        rules: vec![
            rule("ADT^A04", "ER", "er-registration"),
            rule("A01", "", "admission"),
            rule("A09", "XRAY", "radiology"),
        ],
        journey_field: Hl7v2Mapping::default_journey_field(),
        customer_field: Hl7v2Mapping::default_customer_field(),
        customer_assigning_authority: String::new(),
        staff_field: Some(FieldPath::parse("EVN-5").unwrap()),
        client_certificates: Vec::new(),
        default_character_set: String::new(),
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
}

fn seoul() -> Tz {
    "Asia/Seoul".parse().unwrap()
}

fn message(trigger: &str, evn: &str, pid: &str, pv1: &str) -> String {
    format!(
        "MSH|^~\\&|EPIC|MAIN|VERDAD|QI|20261130101500||ADT^{trigger}^ADT_A01|C-{trigger}|P|2.5.1\r\
         EVN|{trigger}|{evn}\r\
         PID|1||{pid}||DOE^JANE\r\
         PV1|1|{pv1}\r"
    )
}

fn mapped(text: &str) -> Result<Action, Fault> {
    let parsed = parse(text.as_bytes()).map_err(|unread| unread.1)?;
    map(&parsed, &mapping(), "adt", seoul(), now())
}

#[test]
fn a_registration_becomes_an_encounter_at_its_rule_s_touchpoint() {
    let text = message(
        "A04",
        "202611301014|||CLERK7^KIM^MINJI",
        "MRN1^^^HOSP^MR~SSN9^^^SSA^SS",
        "E|ER^12^1^MAIN||||||||||||||||V100",
    );
    let Action::Store(moment) = mapped(&text).unwrap() else {
        panic!("not stored");
    };
    assert_eq!(moment.touchpoint, Lookup::Code("er-registration".into()));
    assert_eq!(moment.journey_id, "V100");
    assert_eq!(moment.customer_ref.as_deref(), Some("MRN1"));
    assert_eq!(moment.staff_ref.as_deref(), Some("CLERK7"));
    // 10:14 in Seoul, without an offset.
    assert_eq!(
        moment.occur_time,
        Utc.with_ymd_and_hms(2026, 11, 30, 1, 14, 0).unwrap()
    );
    assert_eq!(moment.source, "adt");
    assert_eq!(moment.external_id, "C-A04");
    assert_eq!(moment.attributes[TRIGGER_ATTRIBUTE], "A04");
}

#[test]
fn the_assigning_authority_picks_the_customer_s_identifier() {
    let mut mapping = mapping();
    mapping.customer_assigning_authority = "ssa".into();
    let text = message(
        "A01",
        "20261130101400+0900",
        "MRN1^^^HOSP^MR~SSN9^^^SSA^SS",
        "I|W3^301^B||||||||||||||||V7",
    );
    let parsed = parse(text.as_bytes()).map_err(|unread| unread.1).unwrap();
    let Action::Store(moment) = map(&parsed, &mapping, "adt", seoul(), now()).unwrap() else {
        panic!("not stored");
    };
    assert_eq!(moment.customer_ref.as_deref(), Some("SSN9"));
    assert_eq!(moment.touchpoint, Lookup::Code("admission".into()));
}

#[test]
fn unmatched_events_are_ignored_and_cancels_withdraw() {
    let a08 = message("A08", "20261130101400", "MRN1", "I|W3||||||||||||||||V7");
    assert_eq!(mapped(&a08).unwrap(), Action::Ignore);
    let a04_elsewhere = message(
        "A04",
        "20261130101400",
        "MRN1",
        "O|CLINIC||||||||||||||||V7",
    );
    assert_eq!(mapped(&a04_elsewhere).unwrap(), Action::Ignore);
    let a11 = message("A11", "20261130101400", "MRN1", "I|W3||||||||||||||||V7");
    assert_eq!(
        mapped(&a11).unwrap(),
        Action::Withdraw {
            journey_id: "V7".into(),
            cancelled: &["A01", "A04"],
        }
    );
}

#[test]
fn a_move_is_matched_on_its_temporary_location() {
    let a09 = message(
        "A09",
        "20261130101400",
        "MRN1",
        "I|W3^301||||||||XRAY^2||||||||V7",
    );
    let Action::Store(moment) = mapped(&a09).unwrap() else {
        panic!("not stored");
    };
    assert_eq!(moment.touchpoint, Lookup::Code("radiology".into()));
}

#[test]
fn what_cannot_be_mapped_is_an_error_naming_the_field() {
    let no_visit = message("A01", "20261130101400", "MRN1", "I|W3");
    let fault = mapped(&no_visit).unwrap_err();
    assert_eq!(fault.acknowledgement, Acknowledgement::Error);
    assert_eq!((fault.segment.as_str(), fault.field), ("PV1", 19));
    let bad_time = message("A01", "20261331101400", "MRN1", "I|W3||||||||||||||||V7");
    let fault = mapped(&bad_time).unwrap_err();
    assert_eq!((fault.segment.as_str(), fault.field), ("EVN", 2));
    assert!(!fault.reason.contains("20261331"), "{}", fault.reason);
}

#[test]
fn messages_that_are_not_hl7_v2_are_rejected() {
    for (text, field) in [
        ("MSH|^~\\&|EPIC|MAIN|||20261130||ADT^A01||P|2.5\r", 10),
        ("MSH|^~\\&|EPIC|MAIN|||20261130||ADT^A01|1|P|3.0\r", 12),
        ("MSH|^~\\&|EPIC|MAIN|||20261130||ADT|1|P|2.5\r", 9),
    ] {
        let fault = parse(text.as_bytes()).err().unwrap().1;
        assert_eq!(fault.acknowledgement, Acknowledgement::Reject);
        assert_eq!(fault.field, field, "{text}");
    }
    assert!(parse(b"hello").is_err());
    assert!(parse(b"").is_err());
}

#[test]
fn escapes_and_custom_delimiters_are_honoured() {
    let text = "MSH#*!?@#EPIC#MAIN###20261130101500##ADT*A04#C1#P#2.4\r\
                EVN#A04#20261130101400\r\
                PID#1##MRN?T?1\r\
                PV1#1#E#ER################V?F?9\r";
    let Action::Store(moment) = mapped(text).unwrap() else {
        panic!("not stored");
    };
    assert_eq!(moment.journey_id, "V#9");
    assert_eq!(moment.customer_ref.as_deref(), Some("MRN@1"));
}

#[test]
fn a_flood_of_delimiters_is_rejected_before_it_is_parsed() {
    let mut flood = b"MSH|^~\\&|EPIC|MAIN|||20261130||ADT^A04|C1|P|2.5\rNTE|".to_vec();
    flood.extend(std::iter::repeat_n(b'^', MAX_DELIMITERS));
    let unread = parse(&flood).err().unwrap();
    assert_eq!(unread.0.control_id, "C1");
    assert_eq!(unread.1.acknowledgement, Acknowledgement::Reject);
}

#[test]
fn only_production_messages_are_taken() {
    let test = message("A04", "20261130101400", "MRN1", "E|ER||||||||||||||||V1")
        .replacen("|P|2.5.1", "|T|2.5.1", 1);
    let fault = mapped(&test).unwrap_err();
    assert_eq!(
        (fault.code, fault.field),
        (ErrorCode::UnsupportedProcessingId, 11)
    );
}
