//! Evaluating one encounter against the standards in force: per standard
//! met, violated or not applicable, and whether the encounter fails.
//!
//! An encounter fails when it violates a critical standard, or when its
//! satisfaction is at or below the organisation's failure threshold: one bad
//! moment is enough (100 - 1 = 0).

use uuid::Uuid;

use super::standard::{MetricField, Rule, Severity, Standard};

/// The organisation's failure threshold when nobody has set one.
pub const DEFAULT_FAILURE_THRESHOLD: i32 = 2;
/// The highest failure threshold: at 5 every encounter would fail.
pub const MAX_FAILURE_THRESHOLD: i32 = 4;

/// The measured fields of an encounter; `None` when it did not report one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Measurements {
    pub wait_seconds: Option<i64>,
    pub first_response_seconds: Option<i64>,
    pub duration_seconds: Option<i64>,
    pub satisfaction: Option<i32>,
    pub effort: Option<i32>,
}

impl Measurements {
    pub fn get(&self, field: MetricField) -> Option<i64> {
        match field {
            MetricField::WaitSeconds => self.wait_seconds,
            MetricField::FirstResponseSeconds => self.first_response_seconds,
            MetricField::DurationSeconds => self.duration_seconds,
            MetricField::Satisfaction => self.satisfaction.map(i64::from),
            MetricField::Effort => self.effort.map(i64::from),
        }
    }
}

/// An observed standard as an encounter reports it: met or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub standard_code: String,
    pub met: bool,
    /// What the observer noted; the evaluation does not read it.
    pub note: String,
}

/// What the evaluation needs to know of an encounter.
#[derive(Debug, Clone, Copy)]
pub struct EncounterFacts<'a> {
    pub touchpoint_id: Uuid,
    pub measurements: Measurements,
    pub observations: &'a [Observation],
}

/// The outcome of one standard for one encounter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Met,
    Violated,
    /// The encounter did not report the field or the observation the rule
    /// needs.
    NotApplicable,
}

/// One standard's result, with the rule as it was evaluated: a later change
/// of the standard does not change what this encounter was held to.
#[derive(Debug, Clone, PartialEq)]
pub struct StandardResult {
    pub standard_id: Uuid,
    pub revision_id: Uuid,
    pub code: String,
    pub severity: Severity,
    pub rule: Rule,
    pub outcome: Outcome,
}

impl Outcome {
    /// The letter an outcome is stored as.
    pub fn letter(self) -> char {
        match self {
            Outcome::Met => 'm',
            Outcome::Violated => 'v',
            Outcome::NotApplicable => 'n',
        }
    }

    pub fn from_letter(letter: char) -> Option<Outcome> {
        match letter {
            'm' => Some(Outcome::Met),
            'v' => Some(Outcome::Violated),
            'n' => Some(Outcome::NotApplicable),
            _ => None,
        }
    }
}

/// Why an encounter failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureCause {
    CriticalStandardViolated { code: String },
    LowSatisfaction { satisfaction: i32, threshold: i32 },
}

/// The evaluation of one encounter.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// One result per standard in force at the encounter's touchpoint, in the
    /// order the standards were given.
    pub results: Vec<StandardResult>,
    pub causes: Vec<FailureCause>,
    /// Observations naming no standard in force at the touchpoint; the
    /// caller decides whether that is an error.
    pub unmatched_observations: Vec<String>,
}

impl Evaluation {
    pub fn failed(&self) -> bool {
        !self.causes.is_empty()
    }

    /// Whether a satisfaction below the organisation's threshold is among
    /// the causes of failure.
    pub fn low_satisfaction(&self) -> bool {
        self.causes
            .iter()
            .any(|c| matches!(c, FailureCause::LowSatisfaction { .. }))
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.results.iter().filter(|r| r.outcome == outcome).count()
    }
}

/// Evaluates an encounter against `standards`: those active and applying at
/// its touchpoint are in force, the rest are ignored. Observations match
/// standard codes regardless of case; when a code is observed twice, the
/// first observation counts.
pub fn evaluate(
    facts: &EncounterFacts<'_>,
    standards: &[Standard],
    failure_threshold: i32,
) -> Evaluation {
    let in_force: Vec<&Standard> = standards
        .iter()
        .filter(|s| s.is_active() && s.applies_at(facts.touchpoint_id))
        .collect();

    let results: Vec<StandardResult> = in_force
        .iter()
        .map(|standard| StandardResult {
            standard_id: standard.id,
            revision_id: standard.revision_id,
            code: standard.code.clone(),
            severity: standard.severity,
            rule: standard.rule,
            outcome: outcome(standard, facts),
        })
        .collect();

    let mut causes: Vec<FailureCause> = results
        .iter()
        .filter(|r| r.severity == Severity::Critical && r.outcome == Outcome::Violated)
        .map(|r| FailureCause::CriticalStandardViolated {
            code: r.code.clone(),
        })
        .collect();
    if let Some(satisfaction) = facts.measurements.satisfaction
        && satisfaction <= failure_threshold
    {
        causes.push(FailureCause::LowSatisfaction {
            satisfaction,
            threshold: failure_threshold,
        });
    }

    let unmatched_observations = facts
        .observations
        .iter()
        .filter(|o| {
            !in_force
                .iter()
                .any(|s| s.rule == Rule::Observed && s.code.eq_ignore_ascii_case(&o.standard_code))
        })
        .map(|o| o.standard_code.clone())
        .collect();

    Evaluation {
        results,
        causes,
        unmatched_observations,
    }
}

fn outcome(standard: &Standard, facts: &EncounterFacts<'_>) -> Outcome {
    let met = match standard.rule {
        Rule::Metric {
            field,
            comparison,
            threshold,
        } => facts
            .measurements
            .get(field)
            .map(|value| comparison.holds(value as f64, threshold)),
        Rule::Observed => facts
            .observations
            .iter()
            .find(|o| o.standard_code.eq_ignore_ascii_case(&standard.code))
            .map(|o| o.met),
    };
    match met {
        Some(true) => Outcome::Met,
        Some(false) => Outcome::Violated,
        None => Outcome::NotApplicable,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use proptest::prelude::*;

    use super::*;
    use crate::domain::standard::{Comparison, Element, TouchpointRef};

    fn standard(code: &str, at: Option<Uuid>, severity: Severity, rule: Rule) -> Standard {
        let now = Utc::now();
        Standard {
            id: Uuid::now_v7(),
            revision_id: Uuid::now_v7(),
            code: code.into(),
            title: code.into(),
            touchpoint: at.map(|id| TouchpointRef {
                id,
                code: "tp".into(),
            }),
            element: Element::Humanware,
            severity,
            guidance: String::new(),
            rule,
            create_time: now,
            update_time: now,
            archive_time: None,
        }
    }

    fn metric(field: MetricField, comparison: Comparison, threshold: f64) -> Rule {
        Rule::Metric {
            field,
            comparison,
            threshold,
        }
    }

    fn greeting(at: Uuid) -> Standard {
        standard(
            "greet-15s",
            Some(at),
            Severity::Critical,
            metric(
                MetricField::FirstResponseSeconds,
                Comparison::LessOrEqual,
                15.0,
            ),
        )
    }

    fn facts(touchpoint_id: Uuid, measurements: Measurements) -> EncounterFacts<'static> {
        EncounterFacts {
            touchpoint_id,
            measurements,
            observations: &[],
        }
    }

    fn greeted_after(seconds: i64) -> Measurements {
        Measurements {
            first_response_seconds: Some(seconds),
            ..Default::default()
        }
    }

    #[test]
    fn the_fifteen_second_rule_holds_at_fifteen_and_breaks_at_sixteen() {
        let desk = Uuid::now_v7();
        let standards = [greeting(desk)];

        let on_time = evaluate(&facts(desk, greeted_after(15)), &standards, 2);
        assert_eq!(on_time.results[0].outcome, Outcome::Met);
        assert!(!on_time.failed());

        let late = evaluate(&facts(desk, greeted_after(16)), &standards, 2);
        assert_eq!(late.results[0].outcome, Outcome::Violated);
        assert!(late.failed());
        assert_eq!(
            late.causes,
            [FailureCause::CriticalStandardViolated {
                code: "greet-15s".into()
            }]
        );
    }

    #[test]
    fn every_comparison_is_exact_at_its_boundary() {
        let cases = [
            (Comparison::LessThan, 9, true),
            (Comparison::LessThan, 10, false),
            (Comparison::LessOrEqual, 10, true),
            (Comparison::LessOrEqual, 11, false),
            (Comparison::GreaterOrEqual, 10, true),
            (Comparison::GreaterOrEqual, 9, false),
            (Comparison::GreaterThan, 11, true),
            (Comparison::GreaterThan, 10, false),
        ];
        let here = Uuid::now_v7();
        for (comparison, wait, met) in cases {
            let rule = metric(MetricField::WaitSeconds, comparison, 10.0);
            let standards = [standard("wait", None, Severity::Minor, rule)];
            let measured = Measurements {
                wait_seconds: Some(wait),
                ..Default::default()
            };
            let evaluation = evaluate(&facts(here, measured), &standards, 2);
            let expected = if met { Outcome::Met } else { Outcome::Violated };
            assert_eq!(
                evaluation.results[0].outcome, expected,
                "wait {wait} {comparison}"
            );
        }
    }

    #[test]
    fn a_missing_field_is_not_applicable_and_does_not_fail() {
        let desk = Uuid::now_v7();
        let evaluation = evaluate(&facts(desk, Measurements::default()), &[greeting(desk)], 2);
        assert_eq!(evaluation.results[0].outcome, Outcome::NotApplicable);
        assert!(!evaluation.failed());
        assert_eq!(evaluation.count(Outcome::NotApplicable), 1);
    }

    #[test]
    fn every_metric_field_is_read_from_its_own_measurement() {
        let here = Uuid::now_v7();
        let measured = Measurements {
            wait_seconds: Some(100),
            first_response_seconds: Some(20),
            duration_seconds: Some(600),
            satisfaction: Some(4),
            effort: Some(2),
        };
        let standards: Vec<Standard> = [
            (MetricField::WaitSeconds, 100.0),
            (MetricField::FirstResponseSeconds, 20.0),
            (MetricField::DurationSeconds, 600.0),
            (MetricField::Satisfaction, 4.0),
            (MetricField::Effort, 2.0),
        ]
        .into_iter()
        .map(|(field, exact)| {
            standard(
                field.as_str(),
                None,
                Severity::Minor,
                metric(field, Comparison::GreaterOrEqual, exact),
            )
        })
        .collect();
        let evaluation = evaluate(&facts(here, measured), &standards, 2);
        assert_eq!(evaluation.count(Outcome::Met), 5);
        let lower = Measurements {
            wait_seconds: Some(99),
            first_response_seconds: Some(19),
            duration_seconds: Some(599),
            satisfaction: Some(3),
            effort: Some(1),
        };
        let evaluation = evaluate(&facts(here, lower), &standards, 2);
        assert_eq!(evaluation.count(Outcome::Violated), 5);
    }

    #[test]
    fn a_minor_violation_is_counted_but_does_not_fail() {
        let here = Uuid::now_v7();
        let rule = metric(MetricField::WaitSeconds, Comparison::LessOrEqual, 1800.0);
        let standards = [standard("wait-30", None, Severity::Minor, rule)];
        let measured = Measurements {
            wait_seconds: Some(2400),
            satisfaction: Some(4),
            ..Default::default()
        };
        let evaluation = evaluate(&facts(here, measured), &standards, 2);
        assert_eq!(evaluation.results[0].outcome, Outcome::Violated);
        assert!(!evaluation.failed());
    }

    #[test]
    fn satisfaction_at_or_below_the_threshold_fails_without_any_standard() {
        let here = Uuid::now_v7();
        let scored = |satisfaction| Measurements {
            satisfaction: Some(satisfaction),
            ..Default::default()
        };
        assert!(evaluate(&facts(here, scored(2)), &[], 2).failed());
        assert!(evaluate(&facts(here, scored(1)), &[], 2).failed());
        assert!(!evaluate(&facts(here, scored(3)), &[], 2).failed());
        assert_eq!(
            evaluate(&facts(here, scored(2)), &[], 2).causes,
            [FailureCause::LowSatisfaction {
                satisfaction: 2,
                threshold: 2
            }]
        );
        // A stricter organisation.
        assert!(evaluate(&facts(here, scored(3)), &[], 3).failed());
        // Threshold 0: satisfaction alone never fails.
        assert!(!evaluate(&facts(here, scored(1)), &[], 0).failed());
        // No satisfaction reported: nothing to judge.
        assert!(!evaluate(&facts(here, Measurements::default()), &[], 4).failed());
    }

    #[test]
    fn both_causes_are_reported_together() {
        let desk = Uuid::now_v7();
        let measured = Measurements {
            first_response_seconds: Some(40),
            satisfaction: Some(1),
            ..Default::default()
        };
        let evaluation = evaluate(&facts(desk, measured), &[greeting(desk)], 2);
        assert_eq!(evaluation.causes.len(), 2);
    }

    #[test]
    fn only_active_standards_of_the_touchpoint_and_the_organisation_are_in_force() {
        let desk = Uuid::now_v7();
        let lobby = Uuid::now_v7();
        let mut archived = greeting(desk);
        archived.code = "old-greeting".into();
        archived.archive_time = Some(Utc::now());
        let badge = standard("badge", None, Severity::Minor, Rule::Observed);
        let standards = [greeting(desk), greeting(lobby), archived, badge];

        let evaluation = evaluate(&facts(desk, greeted_after(30)), &standards, 2);
        let codes: Vec<&str> = evaluation.results.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(codes, ["greet-15s", "badge"]);
        assert_eq!(evaluation.results[0].standard_id, standards[0].id);
        assert_eq!(evaluation.results[1].outcome, Outcome::NotApplicable);
    }

    #[test]
    fn observations_decide_observed_standards_regardless_of_case() {
        let lobby = Uuid::now_v7();
        let standards = [
            standard("signage", Some(lobby), Severity::Critical, Rule::Observed),
            standard("clean-floor", Some(lobby), Severity::Minor, Rule::Observed),
            standard("badge", None, Severity::Minor, Rule::Observed),
        ];
        let observations = [
            Observation {
                standard_code: "SIGNAGE".into(),
                met: false,
                note: String::new(),
            },
            Observation {
                standard_code: "badge".into(),
                met: true,
                note: String::new(),
            },
            Observation {
                standard_code: "badge".into(),
                met: false,
                note: String::new(),
            },
            Observation {
                standard_code: "no-such-standard".into(),
                met: true,
                note: String::new(),
            },
        ];
        let evaluation = evaluate(
            &EncounterFacts {
                touchpoint_id: lobby,
                measurements: Measurements::default(),
                observations: &observations,
            },
            &standards,
            2,
        );
        let outcomes: Vec<Outcome> = evaluation.results.iter().map(|r| r.outcome).collect();
        assert_eq!(
            outcomes,
            [Outcome::Violated, Outcome::NotApplicable, Outcome::Met]
        );
        assert!(evaluation.failed());
        assert_eq!(evaluation.unmatched_observations, ["no-such-standard"]);
    }

    #[test]
    fn an_observation_of_a_metric_standard_is_unmatched() {
        let desk = Uuid::now_v7();
        let observations = [Observation {
            standard_code: "greet-15s".into(),
            met: true,
            note: String::new(),
        }];
        let evaluation = evaluate(
            &EncounterFacts {
                touchpoint_id: desk,
                measurements: Measurements::default(),
                observations: &observations,
            },
            &[greeting(desk)],
            2,
        );
        assert_eq!(evaluation.results[0].outcome, Outcome::NotApplicable);
        assert_eq!(evaluation.unmatched_observations, ["greet-15s"]);
    }

    #[test]
    fn results_keep_the_rule_they_were_evaluated_with() {
        let desk = Uuid::now_v7();
        let mut standards = [greeting(desk)];
        let before = evaluate(&facts(desk, greeted_after(20)), &standards, 2);
        standards[0].rule = metric(
            MetricField::FirstResponseSeconds,
            Comparison::LessOrEqual,
            30.0,
        );
        let after = evaluate(&facts(desk, greeted_after(20)), &standards, 2);
        assert_eq!(
            before.results[0].rule.to_string(),
            "first_response_seconds <= 15"
        );
        assert_eq!(before.results[0].outcome, Outcome::Violated);
        assert_eq!(after.results[0].outcome, Outcome::Met);
    }

    proptest! {
        #[test]
        fn an_encounter_fails_exactly_when_a_critical_standard_is_violated_or_satisfaction_is_low(
            first_response in proptest::option::of(0i64..100),
            satisfaction in proptest::option::of(1i32..=5),
            threshold in 0i32..=4,
            limit in 0.0f64..100.0,
            critical in any::<bool>(),
        ) {
            let desk = Uuid::now_v7();
            let severity = if critical { Severity::Critical } else { Severity::Minor };
            let rule = metric(MetricField::FirstResponseSeconds, Comparison::LessOrEqual, limit);
            let standards = [standard("greet", Some(desk), severity, rule)];
            let measured = Measurements {
                first_response_seconds: first_response,
                satisfaction,
                ..Default::default()
            };
            let evaluation = evaluate(&facts(desk, measured), &standards, threshold);
            let violated = first_response.is_some_and(|s| s as f64 > limit);
            let low = satisfaction.is_some_and(|s| s <= threshold);
            prop_assert_eq!(evaluation.failed(), (critical && violated) || low);
            prop_assert_eq!(
                evaluation.results[0].outcome == Outcome::NotApplicable,
                first_response.is_none()
            );
        }
    }
}
