//! Escalation: what happens to a recovery case that stays overdue while
//! nobody acknowledges it.

use serde::{Deserialize, Serialize};

use super::{organisation::whole_seconds, text::required_line, violation::FieldViolation};

pub const MAX_STEPS: usize = 5;
pub const ESCALATE_TO_MAX_CHARS: usize = 128;
pub const MIN_DELAY_SECONDS: i64 = 60;
pub const MAX_DELAY_SECONDS: i64 = 30 * 24 * 60 * 60;

/// One step of an organisation's ladder, as stored (a JSON array).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationStep {
    /// After the step before; the first after the due time.
    pub delay_seconds: i64,
    /// A role or a person, as the receiving tool knows them.
    pub escalate_to: String,
}

/// Checks one step; `field` is its request path.
pub fn parse_step(
    field: &str,
    delay: Option<(i64, i32)>,
    escalate_to: &str,
) -> Result<EscalationStep, FieldViolation> {
    let Some((seconds, nanos)) = delay else {
        return Err(FieldViolation::new(
            format!("{field}.delay"),
            "must be set: how long after the step before the case escalates",
        ));
    };
    Ok(EscalationStep {
        delay_seconds: whole_seconds(
            &format!("{field}.delay"),
            seconds,
            nanos,
            MIN_DELAY_SECONDS,
            MAX_DELAY_SECONDS,
        )?,
        escalate_to: required_line(
            &format!("{field}.escalate_to"),
            escalate_to,
            ESCALATE_TO_MAX_CHARS,
        )?,
    })
}

/// Checks the number of steps.
pub fn check_length(field: &str, steps: usize) -> Result<(), FieldViolation> {
    if steps > MAX_STEPS {
        return Err(FieldViolation::new(
            field,
            format!("may have at most {MAX_STEPS} steps, got {steps}"),
        ));
    }
    Ok(())
}

/// The ladder as the sweep reads it: for step n (0-based), how long after
/// the due time it is reached, and whom it names.
pub fn schedule(ladder: &[EscalationStep]) -> (Vec<i64>, Vec<String>) {
    let mut after_due = Vec::with_capacity(ladder.len());
    let mut total = 0i64;
    for step in ladder {
        total = total.saturating_add(step.delay_seconds);
        after_due.push(total);
    }
    let targets = ladder.iter().map(|s| s.escalate_to.clone()).collect();
    (after_due, targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(delay_seconds: i64, to: &str) -> EscalationStep {
        EscalationStep {
            delay_seconds,
            escalate_to: to.into(),
        }
    }

    #[test]
    fn steps_count_from_the_step_before() {
        let (after_due, targets) = schedule(&[step(3600, "charge-nurse"), step(7200, "director")]);
        assert_eq!(after_due, [3600, 10_800]);
        assert_eq!(targets, ["charge-nurse", "director"]);
    }

    #[test]
    fn steps_need_a_delay_of_a_minute_or_more_and_a_target() {
        assert_eq!(
            parse_step("l[0]", Some((14_400, 0)), " ward-manager ").unwrap(),
            step(14_400, "ward-manager")
        );
        assert_eq!(
            parse_step("l[0]", None, "x").unwrap_err().field,
            "l[0].delay"
        );
        assert_eq!(
            parse_step("l[0]", Some((59, 0)), "x").unwrap_err().field,
            "l[0].delay"
        );
        assert_eq!(
            parse_step("l[0]", Some((60, 0)), "").unwrap_err().field,
            "l[0].escalate_to"
        );
        assert!(check_length("l", MAX_STEPS).is_ok());
        assert!(check_length("l", MAX_STEPS + 1).is_err());
    }
}
