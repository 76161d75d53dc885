//! Organisations: the tenants of Verdad.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    deviation::DeviationCheck, escalation::EscalationStep, evaluation::MAX_FAILURE_THRESHOLD,
    text_enum, violation::FieldViolation,
};

text_enum! {
    /// What kind of organisation a tenant is.
    OrganisationKind {
        Hospital => "hospital",
        WelfareCentre => "welfare_centre",
        Agency => "agency",
        Other => "other",
    }
}

/// An organisation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub id: Uuid,
    pub display_name: String,
    pub kind: OrganisationKind,
    /// An IANA time zone name, used for day and week buckets.
    pub time_zone: String,
    /// Satisfaction at or below this fails an encounter.
    pub failure_threshold: i32,
    /// How long after it opens a recovery case is due, in seconds.
    pub recovery_deadline_seconds: i64,
    /// How soon a journey's first contact must respond, in seconds.
    pub first_impression_seconds: i64,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub follow_up: FollowUp,
}

/// What the organisation does about cases and journeys that need a person:
/// its escalation ladder and its deviation checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    pub escalation_ladder: Vec<EscalationStep>,
    /// Empty: journeys are not checked.
    pub deviation_checks: Vec<DeviationCheck>,
    /// When the checks were switched on.
    pub deviation_checks_start_time: Option<DateTime<Utc>>,
    /// How long after its last encounter a journey closes.
    pub journey_idle_seconds: i64,
}

impl Default for FollowUp {
    fn default() -> Self {
        Self {
            escalation_ladder: Vec::new(),
            deviation_checks: Vec::new(),
            deviation_checks_start_time: None,
            journey_idle_seconds: DEFAULT_JOURNEY_IDLE_SECONDS,
        }
    }
}

pub const DEFAULT_JOURNEY_IDLE_SECONDS: i64 = 24 * 60 * 60;

/// Checks a journey idle time: whole seconds from an hour to 30 days.
pub fn parse_journey_idle(field: &str, seconds: i64, nanos: i32) -> Result<i64, FieldViolation> {
    whole_seconds(field, seconds, nanos, 60 * 60, 30 * 24 * 60 * 60)
}

pub const DISPLAY_NAME_MAX_CHARS: usize = 200;

/// Checks a failure threshold: 0 (satisfaction alone never fails an
/// encounter) to 4 (anything below top marks fails).
pub fn parse_failure_threshold(field: &str, value: i32) -> Result<i32, FieldViolation> {
    if (0..=MAX_FAILURE_THRESHOLD).contains(&value) {
        Ok(value)
    } else {
        Err(FieldViolation::new(
            field,
            format!("must be between 0 and {MAX_FAILURE_THRESHOLD}, got {value}"),
        ))
    }
}

/// Checks a duration setting: whole seconds from `min` to `max`.
pub fn whole_seconds(
    field: &str,
    seconds: i64,
    nanos: i32,
    min: i64,
    max: i64,
) -> Result<i64, FieldViolation> {
    if nanos != 0 {
        return Err(FieldViolation::new(field, "must be whole seconds"));
    }
    if !(min..=max).contains(&seconds) {
        let human = |s: i64| humantime::format_duration(Duration::from_secs(s.unsigned_abs()));
        return Err(FieldViolation::new(
            field,
            format!(
                "must be between {min}s ({}) and {max}s ({}), got {seconds}s",
                human(min),
                human(max)
            ),
        ));
    }
    Ok(seconds)
}

/// Checks a first-impression window (15 seconds unless set): whole seconds
/// from 1 to 3600.
pub fn parse_first_impression(
    field: &str,
    seconds: i64,
    nanos: i32,
) -> Result<i64, FieldViolation> {
    whole_seconds(field, seconds, nanos, 1, 3600)
}

/// The regions of the IANA time zone database whose zones are named
/// `Region/City`; `Etc` holds the fixed offsets (`Etc/GMT+9`).
const ZONE_REGIONS: [&str; 11] = [
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
    "Etc",
];

/// Checks that `name` has the form of an IANA zone name: `UTC`, or a region
/// and a location (`Asia/Seoul`, `America/Argentina/Buenos_Aires`). The
/// database's list of zones also holds names that are no place's zone:
/// `localtime` follows the database host's own setting, `posixrules` and
/// `Factory` are the zone files' internals, and `EST5EDT` or `GMT+0` are
/// POSIX-style and legacy names, which tools read differently. Whether the
/// zone exists is then asked of the database, whose rules the day buckets
/// follow.
pub fn check_time_zone_name(field: &str, name: &str) -> Result<(), FieldViolation> {
    let shaped = name == "UTC"
        || name.split_once('/').is_some_and(|(region, location)| {
            ZONE_REGIONS.contains(&region)
                && !location.is_empty()
                && location.split('/').all(|part| {
                    !part.is_empty()
                        && part
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_-+".contains(c))
                })
        });
    if shaped {
        Ok(())
    } else {
        Err(unknown_time_zone(field, name))
    }
}

/// The refusal of a time zone name that is not an IANA zone's.
pub fn unknown_time_zone(field: &str, name: &str) -> FieldViolation {
    FieldViolation::new(
        field,
        format!(
            "{name:?} is not an IANA time zone name, such as Asia/Seoul, Europe/Amsterdam or UTC"
        ),
    )
}

/// The changes of an update: `Some` for every field named in the mask. The
/// time zone is checked against the database's list by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrganisationChanges {
    pub display_name: Option<String>,
    pub kind: Option<OrganisationKind>,
    pub time_zone: Option<String>,
    pub failure_threshold: Option<i32>,
    pub recovery_deadline_seconds: Option<i64>,
    pub first_impression_seconds: Option<i64>,
    pub escalation_ladder: Option<Vec<EscalationStep>>,
    pub deviation_checks: Option<Vec<DeviationCheck>>,
    pub journey_idle_seconds: Option<i64>,
}

impl OrganisationChanges {
    pub fn apply_to(self, organisation: &mut Organisation) {
        fn set<T>(field: &mut T, change: Option<T>) {
            if let Some(value) = change {
                *field = value;
            }
        }
        set(&mut organisation.display_name, self.display_name);
        set(&mut organisation.kind, self.kind);
        set(&mut organisation.time_zone, self.time_zone);
        set(&mut organisation.failure_threshold, self.failure_threshold);
        set(
            &mut organisation.recovery_deadline_seconds,
            self.recovery_deadline_seconds,
        );
        set(
            &mut organisation.first_impression_seconds,
            self.first_impression_seconds,
        );
        let follow_up = &mut organisation.follow_up;
        set(&mut follow_up.escalation_ladder, self.escalation_ladder);
        set(
            &mut follow_up.journey_idle_seconds,
            self.journey_idle_seconds,
        );
        if let Some(mut checks) = self.deviation_checks {
            checks.sort_by_key(|c| c.as_str());
            checks.dedup();
            // The start time is the store's clock's, set as it writes.
            if checks.is_empty() {
                follow_up.deviation_checks_start_time = None;
            }
            follow_up.deviation_checks = checks;
        }
    }
}

/// An organisation to create. The time zone is checked against the database's
/// own list of zones, the one its date arithmetic will use.
#[derive(Debug, Clone)]
pub struct NewOrganisation {
    pub display_name: String,
    pub kind: OrganisationKind,
    pub time_zone: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_settings_are_whole_seconds_in_bounds() {
        assert_eq!(parse_first_impression("w", 15, 0).unwrap(), 15);
        assert!(parse_first_impression("w", 0, 0).is_err());
        assert!(parse_first_impression("w", 15, 1).is_err());
        let err = parse_first_impression("w", 3601, 0).unwrap_err();
        assert_eq!(
            err.description,
            "must be between 1s (1s) and 3600s (1h), got 3601s"
        );
    }

    #[test]
    fn only_iana_zone_names_are_taken() {
        for name in [
            "UTC",
            "Asia/Seoul",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+9",
            "America/Port-au-Prince",
        ] {
            assert!(check_time_zone_name("z", name).is_ok(), "{name}");
        }
        for name in [
            "localtime",
            "posixrules",
            "Factory",
            "GMT+0",
            "EST5EDT",
            "posix/Asia/Seoul",
            "right/UTC",
            "Asia/",
            "Asia//Seoul",
            "Asia/../Seoul",
            "",
            "utc",
        ] {
            let refused = check_time_zone_name("organisation.time_zone", name).unwrap_err();
            assert_eq!(refused.field, "organisation.time_zone");
            assert!(refused.description.contains("IANA"), "{name}");
        }
    }

    #[test]
    fn failure_thresholds_stay_below_top_marks() {
        assert_eq!(parse_failure_threshold("t", 0).unwrap(), 0);
        assert_eq!(parse_failure_threshold("t", 4).unwrap(), 4);
        let err = parse_failure_threshold("organisation.failure_threshold", 5).unwrap_err();
        assert_eq!(err.field, "organisation.failure_threshold");
        assert!(parse_failure_threshold("t", -1).is_err());
    }
}
