//! Recovery cases: closing the loop on a failed encounter, and the order a
//! case moves in.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    evaluation::FailureCause, organisation::whole_seconds, refusal::Refusal,
    standard::TouchpointRef, text_enum, violation::FieldViolation,
};

text_enum! {
    /// What opened a recovery case.
    CaseKind {
        /// An encounter failed.
        Failure => "failure",
        /// A closed journey went off the designed cycle.
        Deviation => "deviation",
    }
}

text_enum! {
    /// Where a recovery case stands.
    RecoveryStatus {
        Open => "open",
        InProgress => "in_progress",
        Resolved => "resolved",
    }
}

pub const ASSIGNEE_MAX_CHARS: usize = 128;
pub const RESOLUTION_NOTE_MAX_CHARS: usize = 4000;
pub const MIN_DEADLINE_SECONDS: i64 = 60;
pub const MAX_DEADLINE_SECONDS: i64 = 30 * 24 * 60 * 60;

/// Checks a recovery deadline (24 hours unless set): whole seconds from one
/// minute to 30 days.
pub fn parse_deadline(field: &str, seconds: i64, nanos: i32) -> Result<i64, FieldViolation> {
    whole_seconds(
        field,
        seconds,
        nanos,
        MIN_DEADLINE_SECONDS,
        MAX_DEADLINE_SECONDS,
    )
}

/// GetRecoveryPerformance's acknowledge_within when unset: an hour.
pub const DEFAULT_ACKNOWLEDGE_WITHIN_SECONDS: i64 = 60 * 60;

/// Checks the time within which a case counts as acknowledged in time: the
/// bounds of a recovery deadline, an hour when unset.
pub fn parse_acknowledge_within(
    field: &str,
    within: Option<(i64, i32)>,
) -> Result<i64, FieldViolation> {
    match within {
        None => Ok(DEFAULT_ACKNOWLEDGE_WITHIN_SECONDS),
        Some((seconds, nanos)) => parse_deadline(field, seconds, nanos),
    }
}

/// Why an encounter failed, in words a front desk understands.
pub fn describe(cause: &FailureCause) -> String {
    match cause {
        FailureCause::CriticalStandardViolated { code } => {
            format!("violated critical standard {code}")
        }
        FailureCause::LowSatisfaction {
            satisfaction,
            threshold,
        } => format!("satisfaction {satisfaction} at or below the failure threshold {threshold}"),
    }
}

/// A recovery case as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryCase {
    pub id: Uuid,
    pub kind: CaseKind,
    /// None for a deviation.
    pub encounter_id: Option<Uuid>,
    pub touchpoint: TouchpointRef,
    pub journey_id: String,
    pub status: RecoveryStatus,
    pub assignee: String,
    pub open_time: DateTime<Utc>,
    pub due_time: DateTime<Utc>,
    pub resolve_time: Option<DateTime<Utc>>,
    pub resolution_note: String,
    pub failure_reasons: Vec<String>,
    pub original_satisfaction: Option<i32>,
    pub follow_up_satisfaction: Option<i32>,
    pub update_time: DateTime<Utc>,
    pub acknowledge_time: Option<DateTime<Utc>>,
    pub escalation: Escalation,
}

/// How far up the organisation's escalation ladder a case has climbed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Escalation {
    pub level: i32,
    pub escalated_to: String,
    pub escalate_time: Option<DateTime<Utc>>,
}

impl RecoveryCase {
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.status != RecoveryStatus::Resolved && self.due_time < now
    }
}

/// The changes a caller asked for; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseChanges {
    pub assignee: Option<String>,
    pub status: Option<RecoveryStatus>,
    pub resolution_note: Option<String>,
    pub follow_up_satisfaction: Option<Option<i32>>,
}

/// Applies `changes` to `case`: a resolved case is final, a status only moves
/// forward (OPEN may be resolved at once), and a resolved case needs a
/// resolution note. `field` is the request path of the case.
pub fn apply(
    field: &str,
    case: &mut RecoveryCase,
    changes: CaseChanges,
    now: DateTime<Utc>,
) -> Result<(), ApplyError> {
    if case.status == RecoveryStatus::Resolved {
        return Err(ApplyError::Refused(Refusal::new(
            "RECOVERY_CASE_RESOLVED",
            format!(
                "recovery case {} is resolved; a resolved case is final",
                case.id
            ),
        )));
    }
    if let Some(status) = changes.status {
        if rank(status) < rank(case.status) {
            return Err(ApplyError::Refused(Refusal::new(
                "RECOVERY_STATUS_BACKWARD",
                format!(
                    "recovery case {} is {}; its status may not move back to {status}",
                    case.id, case.status
                ),
            )));
        }
        if status == RecoveryStatus::Resolved {
            case.resolve_time = Some(now);
        }
        // Someone working the case has taken it on.
        if status != RecoveryStatus::Open && case.acknowledge_time.is_none() {
            case.acknowledge_time = Some(now);
        }
        case.status = status;
    }
    if let Some(assignee) = changes.assignee {
        case.assignee = assignee;
    }
    if let Some(note) = changes.resolution_note {
        case.resolution_note = note;
    }
    if let Some(satisfaction) = changes.follow_up_satisfaction {
        case.follow_up_satisfaction = satisfaction;
    }
    if case.status == RecoveryStatus::Resolved && case.resolution_note.trim().is_empty() {
        return Err(ApplyError::Invalid(FieldViolation::new(
            format!("{field}.resolution_note"),
            "must not be empty to resolve the case: say what was done",
        )));
    }
    Ok(())
}

/// Records that someone took the case on: the first time counts, and a
/// resolved case is final.
pub fn acknowledge(case: &mut RecoveryCase, now: DateTime<Utc>) -> Result<bool, Refusal> {
    if case.status == RecoveryStatus::Resolved {
        return Err(Refusal::new(
            "RECOVERY_CASE_RESOLVED",
            format!(
                "recovery case {} is resolved; a resolved case is final",
                case.id
            ),
        ));
    }
    if case.acknowledge_time.is_some() {
        return Ok(false);
    }
    case.acknowledge_time = Some(now);
    Ok(true)
}

/// The fields an update changed, by their proto names, for the
/// recovery_case.updated event.
pub fn changed_fields(before: &RecoveryCase, after: &RecoveryCase) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if before.assignee != after.assignee {
        changed.push("assignee");
    }
    if before.status != after.status {
        changed.push("status");
    }
    if before.resolution_note != after.resolution_note {
        changed.push("resolution_note");
    }
    if before.follow_up_satisfaction != after.follow_up_satisfaction {
        changed.push("follow_up_satisfaction");
    }
    if before.acknowledge_time != after.acknowledge_time {
        changed.push("acknowledge_time");
    }
    changed
}

fn rank(status: RecoveryStatus) -> u8 {
    match status {
        RecoveryStatus::Open => 0,
        RecoveryStatus::InProgress => 1,
        RecoveryStatus::Resolved => 2,
    }
}

/// Why a change was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    Invalid(FieldViolation),
    Refused(Refusal),
}

/// The filters of a list of cases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFilter {
    pub kind: Option<CaseKind>,
    pub status: Option<RecoveryStatus>,
    pub overdue_only: bool,
    pub touchpoint_id: Option<Uuid>,
}

impl CaseFilter {
    pub fn fingerprint(&self) -> String {
        format!(
            "recovery_cases|{:?}|{}|{:?}|{:?}",
            self.status, self.overdue_only, self.touchpoint_id, self.kind
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn case(status: RecoveryStatus) -> RecoveryCase {
        let now = Utc::now();
        RecoveryCase {
            id: Uuid::now_v7(),
            kind: CaseKind::Failure,
            encounter_id: Some(Uuid::now_v7()),
            touchpoint: TouchpointRef {
                id: Uuid::now_v7(),
                code: "lobby".into(),
            },
            journey_id: "v1".into(),
            status,
            assignee: String::new(),
            open_time: now,
            due_time: now + Duration::hours(24),
            resolve_time: None,
            resolution_note: String::new(),
            failure_reasons: vec![],
            original_satisfaction: Some(1),
            follow_up_satisfaction: None,
            update_time: now,
            acknowledge_time: None,
            escalation: Escalation::default(),
        }
    }

    fn to(status: RecoveryStatus, note: &str) -> CaseChanges {
        CaseChanges {
            status: Some(status),
            resolution_note: Some(note.into()),
            ..CaseChanges::default()
        }
    }

    #[test]
    fn a_case_moves_forward_and_may_be_resolved_at_once() {
        let now = Utc::now();
        let mut open = case(RecoveryStatus::Open);
        apply("c", &mut open, to(RecoveryStatus::InProgress, ""), now).unwrap();
        apply(
            "c",
            &mut open,
            to(RecoveryStatus::Resolved, "Called back"),
            now,
        )
        .unwrap();
        assert_eq!(open.resolve_time, Some(now));
        let mut direct = case(RecoveryStatus::Open);
        apply(
            "c",
            &mut direct,
            to(RecoveryStatus::Resolved, "Apologised"),
            now,
        )
        .unwrap();
    }

    #[test]
    fn backward_moves_and_changes_to_resolved_cases_are_refused() {
        let now = Utc::now();
        let mut working = case(RecoveryStatus::InProgress);
        match apply("c", &mut working, to(RecoveryStatus::Open, ""), now) {
            Err(ApplyError::Refused(r)) => assert_eq!(r.reason, "RECOVERY_STATUS_BACKWARD"),
            other => panic!("unexpected {other:?}"),
        }
        let mut done = case(RecoveryStatus::Resolved);
        let assign = CaseChanges {
            assignee: Some("kim".into()),
            ..CaseChanges::default()
        };
        match apply("c", &mut done, assign, now) {
            Err(ApplyError::Refused(r)) => assert_eq!(r.reason, "RECOVERY_CASE_RESOLVED"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn working_a_case_acknowledges_it_once() {
        let now = Utc::now();
        let mut open = case(RecoveryStatus::Open);
        apply("c", &mut open, to(RecoveryStatus::InProgress, ""), now).unwrap();
        assert_eq!(open.acknowledge_time, Some(now));
        let later = now + Duration::hours(1);
        assert_eq!(acknowledge(&mut open, later), Ok(false));
        assert_eq!(open.acknowledge_time, Some(now));
        let mut fresh = case(RecoveryStatus::Open);
        assert_eq!(acknowledge(&mut fresh, later), Ok(true));
        assert_eq!(
            changed_fields(&case(RecoveryStatus::Open), &fresh),
            ["acknowledge_time"]
        );
        let mut done = case(RecoveryStatus::Resolved);
        assert!(acknowledge(&mut done, later).is_err());
    }

    #[test]
    fn resolving_needs_a_note() {
        let mut open = case(RecoveryStatus::Open);
        match apply(
            "c",
            &mut open,
            to(RecoveryStatus::Resolved, "  "),
            Utc::now(),
        ) {
            Err(ApplyError::Invalid(v)) => assert_eq!(v.field, "c.resolution_note"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn overdue_means_past_due_and_not_resolved() {
        let later = Utc::now() + Duration::hours(25);
        assert!(case(RecoveryStatus::Open).is_overdue(later));
        assert!(!case(RecoveryStatus::Resolved).is_overdue(later));
        assert!(!case(RecoveryStatus::Open).is_overdue(Utc::now()));
    }

    #[test]
    fn deadlines_are_whole_seconds_from_a_minute_to_30_days() {
        assert_eq!(parse_deadline("d", 3600, 0).unwrap(), 3600);
        assert!(parse_deadline("d", 59, 0).is_err());
        assert!(parse_deadline("d", MAX_DEADLINE_SECONDS + 1, 0).is_err());
        assert!(parse_deadline("d", 3600, 5).is_err());
    }

    #[test]
    fn acknowledge_within_is_an_hour_unless_set_and_bounded_as_a_deadline() {
        assert_eq!(parse_acknowledge_within("a", None).unwrap(), 3600);
        assert_eq!(parse_acknowledge_within("a", Some((60, 0))).unwrap(), 60);
        assert!(parse_acknowledge_within("a", Some((59, 0))).is_err());
        assert!(parse_acknowledge_within("a", Some((MAX_DEADLINE_SECONDS + 1, 0))).is_err());
    }

    #[test]
    fn failure_causes_read_as_sentences() {
        assert_eq!(
            describe(&FailureCause::LowSatisfaction {
                satisfaction: 1,
                threshold: 2
            }),
            "satisfaction 1 at or below the failure threshold 2"
        );
    }
}
