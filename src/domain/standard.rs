//! Customer service standards: what staff should do at a touchpoint, and the
//! rule that tells whether an encounter met it.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{code::Lookup, refusal::Refusal, text_enum, violation::FieldViolation};

text_enum! {
    /// The side of a touchpoint a standard (or a problem) concerns.
    Element {
        /// Facilities and things: buildings, signage, equipment.
        Hardware => "hardware",
        /// Procedures and systems: booking, queues, information.
        Software => "software",
        /// People: what staff do and say.
        Humanware => "humanware",
    }
}

text_enum! {
    /// What a violation does to an encounter.
    Severity {
        /// Fails the encounter (and its journey: 100 - 1 = 0).
        Critical => "critical",
        /// Only counted in compliance figures.
        Minor => "minor",
    }
}

text_enum! {
    /// A measured field of an encounter.
    MetricField {
        WaitSeconds => "wait_seconds",
        FirstResponseSeconds => "first_response_seconds",
        DurationSeconds => "duration_seconds",
        Satisfaction => "satisfaction",
        Effort => "effort",
    }
}

text_enum! {
    /// How a metric rule compares the encounter's value with its threshold.
    Comparison {
        LessThan => "lt",
        LessOrEqual => "le",
        GreaterOrEqual => "ge",
        GreaterThan => "gt",
    }
}

pub const TITLE_MAX_CHARS: usize = 200;
pub const GUIDANCE_MAX_CHARS: usize = 20_000;
/// The longest duration an encounter may report: seven days, in seconds.
pub const MAX_SECONDS: i64 = 7 * 24 * 60 * 60;

impl MetricField {
    /// The smallest and largest value an encounter may report in this field.
    /// Every field holds whole numbers.
    pub fn range(self) -> (i64, i64) {
        match self {
            MetricField::WaitSeconds
            | MetricField::FirstResponseSeconds
            | MetricField::DurationSeconds => (0, MAX_SECONDS),
            MetricField::Satisfaction => (1, 5),
            MetricField::Effort => (1, 7),
        }
    }
}

impl Comparison {
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::LessThan => "<",
            Comparison::LessOrEqual => "<=",
            Comparison::GreaterOrEqual => ">=",
            Comparison::GreaterThan => ">",
        }
    }

    /// Whether `value` compares true with `threshold`.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::LessThan => value < threshold,
            Comparison::LessOrEqual => value <= threshold,
            Comparison::GreaterOrEqual => value >= threshold,
            Comparison::GreaterThan => value > threshold,
        }
    }
}

/// How an encounter is evaluated against a standard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// A measured field compared with a threshold.
    Metric {
        field: MetricField,
        comparison: Comparison,
        threshold: f64,
    },
    /// Met or not met as the encounter's observations report it under the
    /// standard's code.
    Observed,
}

impl Rule {
    /// Checks a metric rule: the threshold must be a number of at most two
    /// decimal places (every field holds whole numbers, so finer fractions
    /// say nothing, and their text could run to hundreds of digits) inside
    /// the field's range, and some value of that range must meet the rule; a
    /// rule nobody can meet would fail every encounter it touches.
    pub fn metric(
        field: MetricField,
        comparison: Comparison,
        threshold: f64,
        threshold_field: &str,
    ) -> Result<Rule, FieldViolation> {
        let (low, high) = field.range();
        if !threshold.is_finite() {
            return Err(FieldViolation::new(
                threshold_field,
                format!("must be a number, got {threshold}"),
            ));
        }
        if (threshold * 100.0).round() / 100.0 != threshold {
            return Err(FieldViolation::new(
                threshold_field,
                format!("must have at most two decimal places, got {threshold:?}"),
            ));
        }
        // -0 compares as 0 but would be written "-0" in the rule's text.
        let threshold = threshold + 0.0;
        if threshold < low as f64 || threshold > high as f64 {
            return Err(FieldViolation::new(
                threshold_field,
                format!("must be between {low} and {high} for {field}, got {threshold:?}"),
            ));
        }
        let rule = Rule::Metric {
            field,
            comparison,
            threshold,
        };
        // The range's ends are the values most likely to meet a comparison.
        if !comparison.holds(low as f64, threshold) && !comparison.holds(high as f64, threshold) {
            return Err(FieldViolation::new(
                threshold_field,
                format!(
                    "makes the rule \"{rule}\" impossible to meet: {field} lies between {low} and {high}"
                ),
            ));
        }
        Ok(rule)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Metric {
                field,
                comparison,
                threshold,
            } => write!(f, "{field} {} {threshold}", comparison.symbol()),
            Rule::Observed => f.write_str("observed"),
        }
    }
}

/// The touchpoint a standard belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TouchpointRef {
    pub id: Uuid,
    pub code: String,
}

/// A standard as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Standard {
    pub id: Uuid,
    /// The revision of the rule and severity now in force; a new one is made
    /// whenever either changes, and encounters point at the one they were
    /// evaluated against.
    pub revision_id: Uuid,
    pub code: String,
    pub title: String,
    /// `None`: the standard applies at every touchpoint.
    pub touchpoint: Option<TouchpointRef>,
    pub element: Element,
    pub severity: Severity,
    pub guidance: String,
    pub rule: Rule,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub archive_time: Option<DateTime<Utc>>,
}

impl Standard {
    /// Whether new encounters are evaluated against the standard.
    pub fn is_active(&self) -> bool {
        self.archive_time.is_none()
    }

    /// Whether the standard applies at the touchpoint `touchpoint_id`.
    pub fn applies_at(&self, touchpoint_id: Uuid) -> bool {
        self.touchpoint
            .as_ref()
            .is_none_or(|touchpoint| touchpoint.id == touchpoint_id)
    }

    /// Archived standards are history: they change only by coming back.
    pub fn check_changeable(&self) -> Result<(), Refusal> {
        if !self.is_active() {
            return Err(Refusal::new(
                "STANDARD_ARCHIVED",
                format!(
                    "standard {} is archived; unarchive it before changing it",
                    self.code
                ),
            ));
        }
        Ok(())
    }

    /// Checks that archiving (`archive`) or unarchiving would change something.
    pub fn check_archive_transition(&self, archive: bool) -> Result<(), Refusal> {
        match (self.is_active(), archive) {
            (false, true) => Err(Refusal::new(
                "STANDARD_ARCHIVED",
                format!("standard {} is already archived", self.code),
            )),
            (true, false) => Err(Refusal::new(
                "STANDARD_NOT_ARCHIVED",
                format!("standard {} is not archived", self.code),
            )),
            _ => Ok(()),
        }
    }
}

/// A standard's rule and severity as they were when some encounters were
/// evaluated against them.
#[derive(Debug, Clone, PartialEq)]
pub struct StandardRevision {
    pub id: Uuid,
    pub standard_id: Uuid,
    pub code: String,
    pub severity: Severity,
    pub rule: Rule,
}

/// A standard to create, every field already checked; the touchpoint is
/// still to be found.
#[derive(Debug, Clone, PartialEq)]
pub struct NewStandard {
    pub code: String,
    pub title: String,
    pub touchpoint: Option<Lookup>,
    pub element: Element,
    pub severity: Severity,
    pub guidance: String,
    pub rule: Rule,
}

/// The changes of an update: `Some` for every field named in the mask.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StandardChanges {
    pub title: Option<String>,
    /// `Some(None)` makes the standard organisation-wide.
    pub touchpoint: Option<Option<Lookup>>,
    pub element: Option<Element>,
    pub severity: Option<Severity>,
    pub guidance: Option<String>,
    pub rule: Option<Rule>,
}

impl StandardChanges {
    /// Applies the changes other than the touchpoint, which the caller
    /// resolves first, leaving every other field as it is.
    pub fn apply_to(self, standard: &mut Standard, touchpoint: Option<Option<TouchpointRef>>) {
        fn set<T>(field: &mut T, change: Option<T>) {
            if let Some(value) = change {
                *field = value;
            }
        }
        set(&mut standard.title, self.title);
        set(&mut standard.touchpoint, touchpoint);
        set(&mut standard.element, self.element);
        set(&mut standard.severity, self.severity);
        set(&mut standard.guidance, self.guidance);
        set(&mut standard.rule, self.rule);
    }
}

/// The filters of a standard list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StandardFilter {
    pub touchpoint_id: Option<Uuid>,
    pub organisation_wide: bool,
    pub element: Option<Element>,
    pub active: Option<bool>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn check(field: MetricField, comparison: Comparison, threshold: f64) -> Result<Rule, String> {
        Rule::metric(field, comparison, threshold, "threshold").map_err(|v| v.description)
    }

    #[test]
    fn thresholds_stay_inside_the_fields_range() {
        use Comparison::*;
        use MetricField::*;
        assert!(check(Satisfaction, GreaterOrEqual, 4.0).is_ok());
        assert!(check(Satisfaction, GreaterOrEqual, 1.0).is_ok());
        assert!(check(Satisfaction, LessOrEqual, 5.0).is_ok());
        let err = check(Satisfaction, GreaterOrEqual, 6.0).unwrap_err();
        assert!(err.contains("between 1 and 5"), "{err}");
        assert!(check(Satisfaction, GreaterOrEqual, 0.0).is_err());
        assert!(check(Effort, LessOrEqual, 7.0).is_ok());
        assert!(check(Effort, LessOrEqual, 8.0).is_err());
        assert!(check(WaitSeconds, LessOrEqual, 0.0).is_ok());
        let err = check(WaitSeconds, LessOrEqual, -1.0).unwrap_err();
        assert!(err.contains("between 0 and 604800"), "{err}");
        assert!(check(DurationSeconds, LessOrEqual, 604_800.0).is_ok());
        assert!(check(DurationSeconds, LessOrEqual, 604_801.0).is_err());
        assert!(check(FirstResponseSeconds, LessOrEqual, f64::NAN).is_err());
        assert!(check(FirstResponseSeconds, LessOrEqual, f64::INFINITY).is_err());
    }

    #[test]
    fn thresholds_are_written_plainly() {
        use Comparison::*;
        use MetricField::*;
        let rule = Rule::metric(WaitSeconds, LessOrEqual, -0.0, "t").unwrap();
        assert_eq!(rule.to_string(), "wait_seconds <= 0");
        let err = check(WaitSeconds, LessOrEqual, 5e-324).unwrap_err();
        assert!(err.contains("two decimal places, got 5e-324"), "{err}");
        assert!(check(Satisfaction, GreaterOrEqual, 0.1 + 0.2).is_err());
        let rule = Rule::metric(Satisfaction, GreaterOrEqual, 3.25, "t").unwrap();
        assert_eq!(rule.to_string(), "satisfaction >= 3.25");
        let rule = Rule::metric(WaitSeconds, LessOrEqual, 900.0, "t").unwrap();
        assert_eq!(rule.to_string(), "wait_seconds <= 900");
    }

    #[test]
    fn rules_that_no_value_can_meet_are_refused() {
        use Comparison::*;
        use MetricField::*;
        let err = check(Satisfaction, GreaterThan, 5.0).unwrap_err();
        assert!(err.contains("impossible to meet"), "{err}");
        assert!(check(Satisfaction, LessThan, 1.0).is_err());
        assert!(check(WaitSeconds, LessThan, 0.0).is_err());
        assert!(check(Effort, GreaterThan, 7.0).is_err());
        // At the edge but still meetable.
        assert!(check(Satisfaction, GreaterOrEqual, 5.0).is_ok());
        assert!(check(WaitSeconds, LessOrEqual, 0.0).is_ok());
        assert!(check(Satisfaction, GreaterThan, 4.5).is_ok());
    }

    #[test]
    fn rules_read_as_people_write_them() {
        let rule = check(
            MetricField::FirstResponseSeconds,
            Comparison::LessOrEqual,
            15.0,
        )
        .unwrap();
        assert_eq!(rule.to_string(), "first_response_seconds <= 15");
        let rule = check(MetricField::Satisfaction, Comparison::GreaterThan, 3.5).unwrap();
        assert_eq!(rule.to_string(), "satisfaction > 3.5");
        assert_eq!(Rule::Observed.to_string(), "observed");
    }

    #[test]
    fn organisation_wide_standards_apply_everywhere() {
        let now = Utc::now();
        let here = Uuid::now_v7();
        let mut standard = Standard {
            id: Uuid::now_v7(),
            revision_id: Uuid::now_v7(),
            code: "badge".into(),
            title: "Name badge".into(),
            touchpoint: None,
            element: Element::Humanware,
            severity: Severity::Minor,
            guidance: String::new(),
            rule: Rule::Observed,
            create_time: now,
            update_time: now,
            archive_time: None,
        };
        assert!(standard.applies_at(here));
        standard.touchpoint = Some(TouchpointRef {
            id: Uuid::now_v7(),
            code: "lobby".into(),
        });
        assert!(!standard.applies_at(here));
        assert!(standard.check_archive_transition(false).is_err());
        standard.archive_time = Some(now);
        assert!(standard.check_changeable().is_err());
        assert!(standard.check_archive_transition(true).is_err());
        assert!(standard.check_archive_transition(false).is_ok());
    }

    proptest! {
        #[test]
        fn an_accepted_rule_is_met_by_some_value_of_its_range(
            field in prop::sample::select(MetricField::ALL),
            comparison in prop::sample::select(Comparison::ALL),
            threshold in -10.0f64..700_000.0,
        ) {
            if let Ok(Rule::Metric { field, comparison, threshold }) =
                Rule::metric(field, comparison, threshold, "t")
            {
                let (low, high) = field.range();
                prop_assert!((low as f64..=high as f64).contains(&threshold));
                prop_assert!(
                    comparison.holds(low as f64, threshold) || comparison.holds(high as f64, threshold)
                );
            }
        }
    }
}
