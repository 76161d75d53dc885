//! Times a sender wrote in its own zone or with its own offset, as
//! instants: what HL7 v2 and FHIR times without an offset share.

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// The instant of `local` at `offset`; `None` only beyond chrono's range,
/// which four-digit years never reach (the checked form keeps chrono's
/// overflow panic out of reach).
pub fn at_offset(local: NaiveDateTime, offset: FixedOffset) -> Option<DateTime<Utc>> {
    local.checked_sub_offset(offset).map(|at| at.and_utc())
}

/// The instant of `local` in `zone`. A time that occurs twice (the hour
/// the clocks go back) is the earlier; one that never occurs (in the gap
/// the clocks skip) is read with the offset in force before the gap, which
/// moves it forward by the gap's length, as java.time does.
pub fn in_zone(local: NaiveDateTime, zone: Tz) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, second) => Some(first.min(second).with_timezone(&Utc)),
        LocalResult::None => {
            // A day earlier is safely before the gap: no zone changes its
            // offset twice within a day.
            let before = local.checked_sub_signed(TimeDelta::days(1))?;
            at_offset(local, zone.offset_from_utc_datetime(&before).fix())
        }
    }
}

/// The value of a run of ASCII digits, which the caller has checked and
/// keeps to nine at most, so that it cannot overflow.
pub fn number(digits: &[u8]) -> u32 {
    digits
        .iter()
        .fold(0, |n, d| n * 10 + u32::from(d.wrapping_sub(b'0')))
}
