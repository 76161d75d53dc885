//! FHIR R4 `dateTime` values.
//!
//! R4 allows `YYYY`, `YYYY-MM`, `YYYY-MM-DD` and
//! `YYYY-MM-DDThh:mm:ss(.s)?(Z|±hh:mm)`: unlike R5, a time always comes with
//! its offset, so only dates are read in the organisation's zone. Values
//! come from the network, so every part is range-checked and nothing here
//! panics.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, Utc};
use chrono_tz::Tz;

use crate::domain::local_time::{self, number};
use serde::{Deserialize, Deserializer};

use super::types::own_error;

/// The longest value: `YYYY-MM-DDThh:mm:ss.sssssssss+hh:mm`.
const MAX_LEN: usize = 35;
/// More digits than a nanosecond would be silently dropped.
const MAX_FRACTION_DIGITS: usize = 9;

/// Parses a FHIR R4 dateTime into an instant.
///
/// A date alone, or a year and month, names the start of that period in
/// `zone`. A local midnight that falls in a daylight-saving gap is read with
/// the offset in force before the gap, as the HL7 v2 times are; one that
/// occurs twice takes the earlier instant.
///
/// Errors are phrases that follow the element's name (`"… has a time but no
/// offset"`) and never repeat the value.
pub fn parse_date_time(value: &str, zone: Tz) -> Result<DateTime<Utc>, String> {
    let (local, offset) = parse_parts(value)?;
    match offset {
        Some(offset) => fixed(local, offset),
        None => in_zone(local, zone),
    }
}

/// A dateTime as sent, its form already checked, so that the instant it
/// names can be had in whatever zone the feed's organisation is in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FhirDateTime(String);

impl FhirDateTime {
    pub fn parse(value: &str) -> Result<Self, String> {
        // Any zone shows whether the form is right; UTC has no gaps to hide
        // a fault behind.
        parse_date_time(value, Tz::UTC)?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The instant, dates taken as local in `zone`.
    pub fn instant(&self, zone: Tz) -> Result<DateTime<Utc>, String> {
        parse_date_time(&self.0, zone)
    }
}

impl fmt::Display for FhirDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for FhirDateTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(own_error)
    }
}

const FORM: &str = "is not a FHIR dateTime: expected YYYY, YYYY-MM, YYYY-MM-DD or \
                    YYYY-MM-DDThh:mm:ss with Z or an offset such as +09:00";

/// The local date and time, and the offset when one is given.
fn parse_parts(value: &str) -> Result<(NaiveDateTime, Option<FixedOffset>), String> {
    if value.is_empty() {
        return Err("is empty".to_owned());
    }
    if value.len() > MAX_LEN {
        return Err(format!(
            "is {} bytes long, longer than any FHIR dateTime",
            value.len()
        ));
    }
    let bytes = value.as_bytes();
    let form = || FORM.to_owned();

    let year = digits(bytes, 0, 4).ok_or_else(form)?;
    if year == 0 {
        return Err("has year 0000, which FHIR does not allow".to_owned());
    }
    let mut month = 1;
    let mut day = 1;
    let mut at = 4;
    if bytes.get(at) == Some(&b'-') {
        month = in_range("month", digits(bytes, at + 1, 2).ok_or_else(form)?, 1, 12)?;
        at += 3;
        if bytes.get(at) == Some(&b'-') {
            day = digits(bytes, at + 1, 2).ok_or_else(form)?;
            at += 3;
        }
    }
    // Four digits always fit an i32.
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)
        .ok_or_else(|| format!("names day {day} of month {month}, which does not exist"))?;
    if at == bytes.len() {
        return Ok((date.and_time(NaiveTime::MIN), None));
    }
    if at != 10 || bytes[at] != b'T' {
        return Err(form());
    }

    let clock = || "has a time that is not hh:mm:ss".to_owned();
    let time = bytes.get(11..19).ok_or_else(clock)?;
    if time[2] != b':' || time[5] != b':' {
        return Err(clock());
    }
    let part = |from| digits(time, from, 2).ok_or_else(clock);
    let hour = part(0)?;
    let minute = part(3)?;
    let second = part(6)?;
    if hour == 24 {
        return Err("has hour 24; R4 dateTime hours run from 00 to 23".to_owned());
    }
    if second == 60 {
        return Err("has second 60; leap seconds are not accepted".to_owned());
    }
    let hour = in_range("hour", hour, 0, 23)?;
    let minute = in_range("minute", minute, 0, 59)?;
    let second = in_range("second", second, 0, 59)?;

    let mut rest = &bytes[19..];
    let mut nanos = 0;
    if let [b'.', fraction @ ..] = rest {
        let count = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if count == 0 || count > MAX_FRACTION_DIGITS {
            return Err(format!(
                "has a fraction of a second that is not 1 to {MAX_FRACTION_DIGITS} digits"
            ));
        }
        // Scale to nanoseconds: ".5" is 500 ms, not 5 ns.
        nanos = number(&fraction[..count]) * 10u32.pow((MAX_FRACTION_DIGITS - count) as u32);
        rest = &fraction[count..];
    }
    let offset = parse_offset(rest)?;
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos).ok_or_else(form)?;
    Ok((date.and_time(time), Some(offset)))
}

/// `Z`, `+hh:mm` or `-hh:mm`, up to ±14:00 as R4 allows.
fn parse_offset(bytes: &[u8]) -> Result<FixedOffset, String> {
    let malformed = || "has a malformed offset: expected Z, +hh:mm or -hh:mm".to_owned();
    let sign = match bytes.first() {
        None => {
            return Err("has a time but no offset; R4 requires Z or ±hh:mm with a time".to_owned());
        }
        Some(b'Z') if bytes.len() == 1 => return Ok(Utc.fix()),
        Some(b'+') => 1,
        Some(b'-') => -1,
        Some(_) => return Err(malformed()),
    };
    if bytes.len() != 6 || bytes[3] != b':' {
        return Err(malformed());
    }
    let hours = digits(bytes, 1, 2).ok_or_else(malformed)?;
    let minutes = digits(bytes, 4, 2).ok_or_else(malformed)?;
    if minutes > 59 {
        return Err(malformed());
    }
    let seconds = (hours * 3600 + minutes * 60) as i32;
    if seconds > 14 * 3600 {
        return Err("has an offset beyond ±14:00".to_owned());
    }
    FixedOffset::east_opt(sign * seconds).ok_or_else(malformed)
}

fn fixed(local: NaiveDateTime, offset: FixedOffset) -> Result<DateTime<Utc>, String> {
    local_time::at_offset(local, offset).ok_or_else(|| "is out of range".to_owned())
}

fn in_zone(local: NaiveDateTime, zone: Tz) -> Result<DateTime<Utc>, String> {
    local_time::in_zone(local, zone).ok_or_else(|| "is out of range".to_owned())
}

fn in_range(field: &str, value: u32, low: u32, high: u32) -> Result<u32, String> {
    if (low..=high).contains(&value) {
        Ok(value)
    } else {
        Err(format!("has {field} {value}, which is out of range"))
    }
}

/// The value of the `count` ASCII digits at `from`, if they are all there.
fn digits(bytes: &[u8], from: usize, count: usize) -> Option<u32> {
    let run = bytes.get(from..from + count)?;
    run.iter().all(u8::is_ascii_digit).then(|| number(run))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America::New_York, Asia::Seoul, UTC};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn dates_are_the_start_of_their_period_in_the_zone() {
        let cases = [
            ("2024", "2023-12-31T15:00:00Z"),
            ("2024-07", "2024-06-30T15:00:00Z"),
            ("2024-07-15", "2024-07-14T15:00:00Z"),
        ];
        for (value, want) in cases {
            assert_eq!(parse_date_time(value, Seoul), Ok(utc(want)), "{value}");
        }
    }

    #[test]
    fn times_carry_their_own_offset_whatever_the_zone() {
        let cases = [
            ("2024-07-15T13:42:59Z", "2024-07-15T13:42:59Z"),
            ("2024-07-15T13:42:59+09:00", "2024-07-15T04:42:59Z"),
            ("2024-07-15T13:42:59-05:00", "2024-07-15T18:42:59Z"),
            ("2024-07-15T13:42:59.5+09:00", "2024-07-15T04:42:59.5Z"),
            (
                "2024-07-15T13:42:59.123456789Z",
                "2024-07-15T13:42:59.123456789Z",
            ),
            ("2024-07-15T00:00:00+14:00", "2024-07-14T10:00:00Z"),
            ("2024-07-15T00:00:00-14:00", "2024-07-15T14:00:00Z"),
            ("2024-02-29T23:59:59Z", "2024-02-29T23:59:59Z"),
        ];
        for (value, want) in cases {
            assert_eq!(parse_date_time(value, New_York), Ok(utc(want)), "{value}");
        }
    }

    #[test]
    fn a_midnight_in_a_gap_moves_past_it() {
        // Havana springs forward at midnight: 2024-03-10 00:00 does not exist.
        let havana: Tz = "America/Havana".parse().unwrap();
        assert_eq!(
            parse_date_time("2024-03-10", havana),
            Ok(utc("2024-03-10T05:00:00Z"))
        );
    }

    #[test]
    fn other_forms_are_refused_without_echoing_them() {
        let cases = [
            ("", "is empty"),
            ("2024-07-15T13:42:59", "no offset"),
            ("2024-07-15T13:42:59.5", "no offset"),
            ("2024-02-30", "does not exist"),
            ("2023-02-29", "does not exist"),
            ("2024-07-15T24:00:00Z", "hour 24"),
            ("2024-07-15T23:59:60Z", "leap seconds"),
            ("2024-07-15T13:60:00Z", "minute 60"),
            ("2024-13", "month 13"),
            ("2024-00-10", "month 0"),
            ("0000-01-01", "year 0000"),
            ("2024-07-15T13:42Z", "hh:mm:ss"),
            ("2024-07-15T13:42:59+14:30", "±14:00"),
            ("2024-07-15T13:42:59+0900", "malformed offset"),
            ("2024-07-15T13:42:59z", "malformed offset"),
            ("2024-07-15T13:42:59.Z", "fraction"),
            ("2024-07-15T13:42:59.1234567890Z", "fraction"),
            ("2024-07-15T13:42:59.12345678901Z", "fraction"),
            ("2024-07-15Z", "not a FHIR dateTime"),
            ("2024-7-15", "not a FHIR dateTime"),
            ("20240715", "not a FHIR dateTime"),
            ("2024-07-15t13:42:59Z", "not a FHIR dateTime"),
            ("2024-07-15 13:42:59Z", "not a FHIR dateTime"),
            ("２０２４", "not a FHIR dateTime"),
            ("2024-07-15T13:42:59Z ", "malformed offset"),
        ];
        for (value, want) in cases {
            let error = parse_date_time(value, UTC).unwrap_err();
            assert!(error.contains(want), "{value}: {error}");
            assert!(
                value.len() < 4 || !error.contains(value),
                "{value}: {error}"
            );
        }
    }

    #[test]
    fn a_long_value_is_refused_by_its_length() {
        let error = parse_date_time(&"2".repeat(10_000), UTC).unwrap_err();
        assert!(error.len() < 80, "{error}");
    }
}
