//! Journeys: the encounters of one visit in order, the customer's feedback
//! on the whole, and the journey score under 100 - 1 = 0.

use chrono::{DateTime, Utc};

use super::{content_digest::ContentDigest, encounter::Encounter, violation::FieldViolation};

/// The feedback a customer gave on a whole journey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JourneyFeedback {
    pub overall_satisfaction: Option<i32>,
    pub likelihood_to_recommend: Option<i32>,
    pub complete_time: DateTime<Utc>,
    pub comment: String,
}

impl JourneyFeedback {
    /// A digest of the feedback as sent: the same again is a replay.
    pub fn content_hash(&self) -> [u8; 32] {
        let mut digest = ContentDigest::new();
        digest.optional_number(self.overall_satisfaction.map(i64::from));
        digest.optional_number(self.likelihood_to_recommend.map(i64::from));
        digest.number(self.complete_time.timestamp_micros());
        digest.text(&self.comment);
        digest.finish()
    }
}

/// Checks that feedback says something: a satisfaction or a likelihood to
/// recommend (0 to 10).
pub fn check_feedback_given(
    field: &str,
    overall_satisfaction: Option<i32>,
    likelihood_to_recommend: Option<i32>,
) -> Result<(), FieldViolation> {
    if overall_satisfaction.is_none() && likelihood_to_recommend.is_none() {
        return Err(FieldViolation::new(
            format!("{field}.overall_satisfaction"),
            "or likelihood_to_recommend is required: feedback must say something",
        ));
    }
    Ok(())
}

/// A likelihood to recommend, 0 to 10 (the NPS question).
pub fn likelihood_to_recommend(
    field: &str,
    value: Option<i32>,
) -> Result<Option<i32>, FieldViolation> {
    match value {
        Some(v) if !(0..=10).contains(&v) => Err(FieldViolation::new(
            field,
            format!("must be between 0 and 10, got {v}"),
        )),
        other => Ok(other),
    }
}

/// What a journey's encounters add up to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JourneySummary {
    pub encounter_count: i64,
    pub failed_count: i64,
    /// How many encounters report a satisfaction, and their mean.
    pub rated_count: i64,
    pub mean_satisfaction: Option<f64>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
}

impl JourneySummary {
    /// The journey score: 0 when any encounter failed (one bad moment ruins
    /// the whole), otherwise the mean satisfaction on a 0 to 100 scale, 1
    /// being 0 and 5 being 100; `None` when there is nothing to score.
    pub fn score(&self) -> Option<f64> {
        if self.failed_count > 0 {
            return Some(0.0);
        }
        match (self.rated_count, self.mean_satisfaction) {
            (n, Some(mean)) if n > 0 => Some((mean - 1.0) / 4.0 * 100.0),
            _ => None,
        }
    }
}

/// A journey as shown: its first encounters in order, what all of them add
/// up to, and the feedback.
#[derive(Debug, Clone, PartialEq)]
pub struct Journey {
    pub journey_id: String,
    pub encounters: Vec<Encounter>,
    pub summary: JourneySummary,
    pub feedback: Option<(JourneyFeedback, DateTime<Utc>)>,
}

/// The most encounters a journey shows.
pub const MAX_SHOWN_ENCOUNTERS: i64 = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(failed: i64, rated: i64, mean: Option<f64>) -> JourneySummary {
        JourneySummary {
            encounter_count: 3,
            failed_count: failed,
            rated_count: rated,
            mean_satisfaction: mean,
            start_time: None,
            end_time: None,
        }
    }

    #[test]
    fn one_failure_makes_the_score_zero() {
        assert_eq!(summary(1, 2, Some(5.0)).score(), Some(0.0));
    }

    #[test]
    fn the_score_scales_mean_satisfaction_to_100() {
        assert_eq!(summary(0, 2, Some(4.5)).score(), Some(87.5));
        assert_eq!(summary(0, 1, Some(5.0)).score(), Some(100.0));
        assert_eq!(summary(0, 1, Some(1.0)).score(), Some(0.0));
        assert_eq!(summary(0, 0, None).score(), None);
    }

    #[test]
    fn feedback_must_say_something_and_recommend_on_0_to_10() {
        assert!(check_feedback_given("f", None, None).is_err());
        assert!(check_feedback_given("f", None, Some(0)).is_ok());
        assert!(likelihood_to_recommend("l", Some(11)).is_err());
        assert!(likelihood_to_recommend("l", Some(-1)).is_err());
        assert_eq!(likelihood_to_recommend("l", Some(10)).unwrap(), Some(10));
    }
}
