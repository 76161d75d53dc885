//! HL7 v2 date/time values (DTM, and component 1 of the older TS).
//!
//! The form is `YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`. Values come
//! from the network, so every part is range-checked and nothing here panics.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::domain::local_time::{self, number};

/// The longest valid value: `YYYYMMDDHHMMSS.SSSS+ZZZZ`.
const MAX_LEN: usize = 24;

/// Why a value is not an HL7 date/time.
///
/// Messages are phrased to follow a field name (`"PV1-44 {err}"`) and never
/// repeat the value, which may be long or hostile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("is empty")]
    Empty,
    #[error("is {len} bytes long, longer than the {MAX_LEN} characters an HL7 date/time can have")]
    TooLong { len: usize },
    #[error("has an unexpected character at position {position}")]
    Unexpected { position: usize },
    #[error("has {digits} date/time digits; an HL7 date/time has 4, 6, 8, 10, 12 or 14")]
    Precision { digits: usize },
    #[error("has a fraction of a second that is not 1 to 4 digits after the seconds")]
    Fraction,
    #[error("has {field} {value}, which is out of range")]
    OutOfRange { field: &'static str, value: u32 },
    #[error("names day {day} of {year:04}-{month:02}, which does not exist")]
    NoSuchDay { year: i32, month: u32, day: u32 },
    #[error("has a time zone offset that is not +HHMM or -HHMM between -1200 and +1400")]
    Offset,
}

/// Parses an HL7 date/time into an instant.
///
/// Missing trailing parts default to their start (month 01, day 01,
/// 00:00:00). With an offset the value names an instant; without one it is
/// local time in `zone`. A local time that falls in a daylight-saving gap is
/// read with the offset in force before the gap, which moves it forward by
/// the gap's length (02:30 on a New York spring-forward day becomes 03:30
/// EDT), as java.time and JavaScript's Temporal do: senders that omit the
/// offset usually just applied the wrong one. A local time that occurs twice
/// takes the earlier instant.
pub fn parse_time(value: &str, zone: Tz) -> Result<DateTime<Utc>, TimeError> {
    if value.is_empty() {
        return Err(TimeError::Empty);
    }
    if value.len() > MAX_LEN {
        return Err(TimeError::TooLong { len: value.len() });
    }
    let bytes = value.as_bytes();

    let (main, offset) = match bytes.iter().position(|&b| b == b'+' || b == b'-') {
        Some(at) => (&bytes[..at], Some(parse_offset(&bytes[at..])?)),
        None => (bytes, None),
    };
    let (digits, fraction) = match main.iter().position(|&b| b == b'.') {
        Some(at) => (&main[..at], Some(&main[at + 1..])),
        None => (main, None),
    };
    if let Some(position) = digits.iter().position(|b| !b.is_ascii_digit()) {
        return Err(TimeError::Unexpected {
            position: position + 1,
        });
    }
    if !matches!(digits.len(), 4 | 6 | 8 | 10 | 12 | 14) {
        return Err(TimeError::Precision {
            digits: digits.len(),
        });
    }
    let nanos = match fraction {
        None => 0,
        Some(f) if digits.len() == 14 && (1..=4).contains(&f.len()) => {
            if !f.iter().all(u8::is_ascii_digit) {
                return Err(TimeError::Fraction);
            }
            // Scale to nanoseconds: ".5" is 500 ms, not 5 ns.
            number(f) * 10u32.pow(9 - f.len() as u32)
        }
        Some(_) => return Err(TimeError::Fraction),
    };

    let part = |from: usize, default: u32| digits.get(from..from + 2).map_or(default, number);
    // Four ASCII digits always fit an i32.
    let year = number(&digits[..4]) as i32;
    let month = in_range("month", part(4, 1), 1, 12)?;
    let day = part(6, 1);
    let hour = in_range("hour", part(8, 0), 0, 23)?;
    let minute = in_range("minute", part(10, 0), 0, 59)?;
    let second = in_range("second", part(12, 0), 0, 59)?;

    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or(TimeError::NoSuchDay {
        year,
        month,
        day,
    })?;
    let time =
        NaiveTime::from_hms_nano_opt(hour, minute, second, nanos).ok_or(TimeError::OutOfRange {
            field: "second",
            value: second,
        })?;
    let local = date.and_time(time);

    match offset {
        Some(offset) => fixed(local, offset),
        None => in_zone(local, zone),
    }
}

/// Parses `+HHMM` / `-HHMM`, sign included.
fn parse_offset(bytes: &[u8]) -> Result<FixedOffset, TimeError> {
    let [sign, digits @ ..] = bytes else {
        return Err(TimeError::Offset);
    };
    if digits.len() != 4 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(TimeError::Offset);
    }
    let hours = number(&digits[..2]) as i32;
    let minutes = number(&digits[2..]) as i32;
    if minutes > 59 {
        return Err(TimeError::Offset);
    }
    let magnitude = hours * 3600 + minutes * 60;
    let seconds = if *sign == b'-' { -magnitude } else { magnitude };
    // The offsets in use run from UTC-12 (Baker Island) to UTC+14 (Kiribati).
    if !(-12 * 3600..=14 * 3600).contains(&seconds) {
        return Err(TimeError::Offset);
    }
    FixedOffset::east_opt(seconds).ok_or(TimeError::Offset)
}

fn fixed(local: NaiveDateTime, offset: FixedOffset) -> Result<DateTime<Utc>, TimeError> {
    local_time::at_offset(local, offset).ok_or(TimeError::Offset)
}

fn in_zone(local: NaiveDateTime, zone: Tz) -> Result<DateTime<Utc>, TimeError> {
    local_time::in_zone(local, zone).ok_or(TimeError::Offset)
}

fn in_range(field: &'static str, value: u32, low: u32, high: u32) -> Result<u32, TimeError> {
    if (low..=high).contains(&value) {
        Ok(value)
    } else {
        Err(TimeError::OutOfRange { field, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America::New_York, Asia::Seoul, UTC};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn every_precision_in_utc() {
        let cases = [
            ("2024", "2024-01-01T00:00:00Z"),
            ("202407", "2024-07-01T00:00:00Z"),
            ("20240715", "2024-07-15T00:00:00Z"),
            ("2024071513", "2024-07-15T13:00:00Z"),
            ("202407151342", "2024-07-15T13:42:00Z"),
            ("20240715134259", "2024-07-15T13:42:59Z"),
            ("20240715134259.1", "2024-07-15T13:42:59.1Z"),
            ("20240715134259.12", "2024-07-15T13:42:59.12Z"),
            ("20240715134259.123", "2024-07-15T13:42:59.123Z"),
            ("20240715134259.1234", "2024-07-15T13:42:59.1234Z"),
        ];
        for (value, want) in cases {
            assert_eq!(parse_time(value, UTC), Ok(utc(want)), "{value}");
        }
    }

    #[test]
    fn offsets_give_the_instant_whatever_the_zone() {
        let cases = [
            ("20240715134259+0900", "2024-07-15T04:42:59Z"),
            ("20240715134259-0500", "2024-07-15T18:42:59Z"),
            ("20240715134259+0000", "2024-07-15T13:42:59Z"),
            ("20240715134259.5+0900", "2024-07-15T04:42:59.5Z"),
            ("2024+0900", "2023-12-31T15:00:00Z"),
            ("202407151342-0330", "2024-07-15T17:12:00Z"),
            ("20240715+1400", "2024-07-14T10:00:00Z"),
            ("20240715-1200", "2024-07-15T12:00:00Z"),
        ];
        for (value, want) in cases {
            assert_eq!(parse_time(value, New_York), Ok(utc(want)), "{value}");
        }
    }

    #[test]
    fn no_offset_means_local_time_in_the_zone() {
        assert_eq!(
            parse_time("20240715134259", Seoul),
            Ok(utc("2024-07-15T04:42:59Z"))
        );
        assert_eq!(
            parse_time("20240115134259", New_York),
            Ok(utc("2024-01-15T18:42:59Z"))
        );
        assert_eq!(
            parse_time("20240715134259", New_York),
            Ok(utc("2024-07-15T17:42:59Z"))
        );
    }

    #[test]
    fn leap_days() {
        assert_eq!(parse_time("20240229", UTC), Ok(utc("2024-02-29T00:00:00Z")));
        assert_eq!(parse_time("20000229", UTC), Ok(utc("2000-02-29T00:00:00Z")));
        assert_eq!(
            parse_time("20230229", UTC),
            Err(TimeError::NoSuchDay {
                year: 2023,
                month: 2,
                day: 29
            })
        );
        assert!(parse_time("19000229", UTC).is_err());
    }

    #[test]
    fn out_of_range_parts() {
        let cases = [
            ("202413", "month", 13),
            ("202400", "month", 0),
            ("2024071524", "hour", 24),
            ("202407151360", "minute", 60),
            ("20240715134260", "second", 60),
        ];
        for (value, field, v) in cases {
            assert_eq!(
                parse_time(value, UTC),
                Err(TimeError::OutOfRange { field, value: v }),
                "{value}"
            );
        }
        for value in ["20240230", "20240431", "20240700", "20240732"] {
            assert!(
                matches!(parse_time(value, UTC), Err(TimeError::NoSuchDay { .. })),
                "{value}"
            );
        }
    }

    #[test]
    fn bad_offsets() {
        for value in [
            "2024071513+1500",
            "2024071513-1201",
            "2024071513+0960",
            "2024071513+09",
            "2024071513+09000",
            "2024071513+",
            "2024071513-",
            "2024071513+09a0",
            "2024071513++0900",
        ] {
            assert_eq!(parse_time(value, UTC), Err(TimeError::Offset), "{value}");
        }
    }

    #[test]
    fn bad_fractions() {
        for value in [
            "202407151342.5",
            "20240715134259.",
            "20240715134259.12345",
            "20240715134259.1a",
            "20240715134259..1",
            "20240715.1",
        ] {
            assert_eq!(parse_time(value, UTC), Err(TimeError::Fraction), "{value}");
        }
    }

    #[test]
    fn garbage_empty_and_too_long() {
        assert_eq!(parse_time("", UTC), Err(TimeError::Empty));
        assert_eq!(
            parse_time("hello", UTC),
            Err(TimeError::Unexpected { position: 1 })
        );
        assert_eq!(parse_time("2024-07-15", UTC), Err(TimeError::Offset));
        assert_eq!(
            parse_time("2024 07", UTC),
            Err(TimeError::Unexpected { position: 5 })
        );
        assert_eq!(
            parse_time("2024071", UTC),
            Err(TimeError::Precision { digits: 7 })
        );
        assert_eq!(
            parse_time("202", UTC),
            Err(TimeError::Precision { digits: 3 })
        );
        assert_eq!(
            parse_time("20240715^M", UTC),
            Err(TimeError::Unexpected { position: 9 })
        );
        assert_eq!(
            parse_time("２０２４", UTC),
            Err(TimeError::Unexpected { position: 1 })
        );
        assert_eq!(
            parse_time("2024071513.1234+090000", UTC),
            Err(TimeError::Offset)
        );
        let long = "9".repeat(1000);
        let err = parse_time(&long, UTC).unwrap_err();
        assert_eq!(err, TimeError::TooLong { len: 1000 });
        assert!(!err.to_string().contains("9999"));
    }

    #[test]
    fn longest_valid_value() {
        let value = "20240715134259.1234+0900";
        assert_eq!(value.len(), MAX_LEN);
        assert_eq!(parse_time(value, UTC), Ok(utc("2024-07-15T04:42:59.1234Z")));
    }

    #[test]
    fn dst_gap_reads_with_the_offset_before_it() {
        // New York springs forward at 02:00 EST on 2024-03-10; 02:30 does not
        // exist and is read as 02:30 EST, which is 03:30 EDT.
        assert_eq!(
            parse_time("202403100230", New_York),
            Ok(utc("2024-03-10T07:30:00Z"))
        );
        assert_eq!(
            parse_time("20240310020000", New_York),
            Ok(utc("2024-03-10T07:00:00Z"))
        );
        // Either side of the gap is unaffected.
        assert_eq!(
            parse_time("20240310015959", New_York),
            Ok(utc("2024-03-10T06:59:59Z"))
        );
        assert_eq!(
            parse_time("202403100300", New_York),
            Ok(utc("2024-03-10T07:00:00Z"))
        );
    }

    #[test]
    fn dst_overlap_takes_the_earlier_instant() {
        // New York falls back at 02:00 EDT on 2024-11-03; 01:30 occurs twice.
        assert_eq!(
            parse_time("202411030130", New_York),
            Ok(utc("2024-11-03T05:30:00Z"))
        );
        // An explicit offset picks the later one.
        assert_eq!(
            parse_time("202411030130-0500", New_York),
            Ok(utc("2024-11-03T06:30:00Z"))
        );
    }

    #[test]
    fn seoul_has_no_dst_now() {
        // The same wall times that are odd in New York are plain in Seoul.
        assert_eq!(
            parse_time("202403100230", Seoul),
            Ok(utc("2024-03-09T17:30:00Z"))
        );
        assert_eq!(
            parse_time("202411030130", Seoul),
            Ok(utc("2024-11-02T16:30:00Z"))
        );
    }

    #[test]
    fn messages_read_after_a_field_name() {
        let err = parse_time("202413", UTC).unwrap_err();
        assert_eq!(err.to_string(), "has month 13, which is out of range");
        let err = parse_time("20230229", UTC).unwrap_err();
        assert_eq!(
            err.to_string(),
            "names day 29 of 2023-02, which does not exist"
        );
    }
}
