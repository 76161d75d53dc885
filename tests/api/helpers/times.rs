//! Times as the API takes them: protobuf timestamps, to the microsecond
//! Verdad keeps, and the fixed day the analysis fixtures happen on.

use chrono::{DateTime, TimeDelta, Utc};
use prost_types::Timestamp;
use verdad::proto::verdad::v1 as pb;

/// 2000-01-01T00:00:00Z, the earliest time Verdad accepts.
pub(crate) const YEAR_2000: i64 = 946_684_800;

/// `time` as a protobuf timestamp, cut to the microsecond Verdad keeps.
pub(crate) fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: (time.timestamp_subsec_micros() * 1000) as i32,
    }
}

/// Now minus `minutes`, to the microsecond.
pub(crate) fn minutes_ago(minutes: i64) -> Timestamp {
    timestamp(Utc::now() - TimeDelta::minutes(minutes))
}

/// `seconds` after `base` (before it when negative).
pub(crate) fn plus(base: &Timestamp, seconds: i64) -> Timestamp {
    Timestamp {
        seconds: base.seconds + seconds,
        nanos: base.nanos,
    }
}

/// 2026-06-01T09:00:00Z, and `seconds` after it.
pub(crate) fn at(seconds: i64) -> Timestamp {
    Timestamp {
        seconds: 1_780_304_400 + seconds,
        nanos: 0,
    }
}

/// The day of the fixtures: 2026-06-01, all day.
pub(crate) fn fixture_day() -> pb::AnalysisScope {
    pb::AnalysisScope {
        start_time: Some(at(-9 * 3600)),
        end_time: Some(at(15 * 3600)),
        ..Default::default()
    }
}
