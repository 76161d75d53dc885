//! Touchpoints: the moments where a customer meets the organisation.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{refusal::Refusal, text_enum, violation::FieldViolation};

text_enum! {
    /// The part of the MOT cycle a touchpoint belongs to.
    Stage {
        PreService => "pre_service",
        Service => "service",
        PostService => "post_service",
    }
}

text_enum! {
    /// How the customer meets the organisation.
    Channel {
        InPerson => "in_person",
        Phone => "phone",
        Remote => "remote",
    }
}

text_enum! {
    /// Whether a touchpoint belongs to every visit or only to exceptional ones.
    Occurrence {
        Routine => "routine",
        Exceptional => "exceptional",
    }
}

pub const DISPLAY_NAME_MAX_CHARS: usize = 200;
pub const DESCRIPTION_MAX_CHARS: usize = 4000;
pub const CYCLE_POSITION_MAX: i32 = 10_000;

/// Checks a designed cycle position: 0 (no place in the cycle) to 10000.
pub fn parse_cycle_position(field: &str, position: i32) -> Result<i32, FieldViolation> {
    if (0..=CYCLE_POSITION_MAX).contains(&position) {
        Ok(position)
    } else {
        Err(FieldViolation::new(
            field,
            format!("must be between 0 and {CYCLE_POSITION_MAX}, got {position}"),
        ))
    }
}

/// A touchpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touchpoint {
    pub id: Uuid,
    pub code: String,
    pub display_name: String,
    pub description: String,
    pub stage: Stage,
    pub channel: Channel,
    pub key: bool,
    pub occurrence: Occurrence,
    pub cycle_position: i32,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub archive_time: Option<DateTime<Utc>>,
}

impl Touchpoint {
    pub fn is_archived(&self) -> bool {
        self.archive_time.is_some()
    }

    /// Archived touchpoints are history: they change only by coming back.
    pub fn check_changeable(&self) -> Result<(), Refusal> {
        if self.is_archived() {
            return Err(Refusal::new(
                "TOUCHPOINT_ARCHIVED",
                format!(
                    "touchpoint {} is archived; unarchive it before changing it",
                    self.code
                ),
            ));
        }
        Ok(())
    }

    /// Archived touchpoints take nothing new: no standards, no encounters.
    /// `action` says what was refused, as in "attaching standards to it".
    pub fn check_active(&self, action: &str) -> Result<(), Refusal> {
        if self.is_archived() {
            return Err(Refusal::new(
                "TOUCHPOINT_ARCHIVED",
                format!(
                    "touchpoint {} is archived; unarchive it before {action}",
                    self.code
                ),
            ));
        }
        Ok(())
    }

    /// Checks that archiving (`archive`) or unarchiving would change something.
    pub fn check_archive_transition(&self, archive: bool) -> Result<(), Refusal> {
        match (self.is_archived(), archive) {
            (true, true) => Err(Refusal::new(
                "TOUCHPOINT_ARCHIVED",
                format!("touchpoint {} is already archived", self.code),
            )),
            (false, false) => Err(Refusal::new(
                "TOUCHPOINT_NOT_ARCHIVED",
                format!("touchpoint {} is not archived", self.code),
            )),
            _ => Ok(()),
        }
    }
}

/// A touchpoint to create, every field already checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTouchpoint {
    pub code: String,
    pub display_name: String,
    pub description: String,
    pub stage: Stage,
    pub channel: Channel,
    pub key: bool,
    pub occurrence: Occurrence,
    pub cycle_position: i32,
}

/// The changes of an update: `Some` for every field named in the mask.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TouchpointChanges {
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub stage: Option<Stage>,
    pub channel: Option<Channel>,
    pub key: Option<bool>,
    pub occurrence: Option<Occurrence>,
    pub cycle_position: Option<i32>,
}

impl TouchpointChanges {
    /// Applies the changes to `touchpoint`, leaving every other field as it is.
    pub fn apply_to(self, touchpoint: &mut Touchpoint) {
        fn set<T>(field: &mut T, change: Option<T>) {
            if let Some(value) = change {
                *field = value;
            }
        }
        set(&mut touchpoint.display_name, self.display_name);
        set(&mut touchpoint.description, self.description);
        set(&mut touchpoint.stage, self.stage);
        set(&mut touchpoint.channel, self.channel);
        set(&mut touchpoint.key, self.key);
        set(&mut touchpoint.occurrence, self.occurrence);
        set(&mut touchpoint.cycle_position, self.cycle_position);
    }
}

/// The filters of a touchpoint list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TouchpointFilter {
    pub stage: Option<Stage>,
    pub channel: Option<Channel>,
    pub key: Option<bool>,
    pub occurrence: Option<Occurrence>,
    pub show_archived: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_positions_are_bounded() {
        assert_eq!(parse_cycle_position("p", 0).unwrap(), 0);
        assert_eq!(parse_cycle_position("p", 10_000).unwrap(), 10_000);
        assert!(parse_cycle_position("p", -1).is_err());
        assert!(parse_cycle_position("p", 10_001).is_err());
    }

    #[test]
    fn changes_touch_only_the_fields_they_name() {
        let now = Utc::now();
        let mut touchpoint = Touchpoint {
            id: Uuid::now_v7(),
            code: "lobby".into(),
            display_name: "Lobby".into(),
            description: "Main hall".into(),
            stage: Stage::PreService,
            channel: Channel::InPerson,
            key: false,
            occurrence: Occurrence::Routine,
            cycle_position: 4,
            create_time: now,
            update_time: now,
            archive_time: None,
        };
        let before = touchpoint.clone();
        TouchpointChanges {
            key: Some(true),
            cycle_position: Some(5),
            ..Default::default()
        }
        .apply_to(&mut touchpoint);
        assert!(touchpoint.key);
        assert_eq!(touchpoint.cycle_position, 5);
        assert_eq!(touchpoint.display_name, before.display_name);
        assert_eq!(touchpoint.description, before.description);
        assert_eq!(touchpoint.stage, before.stage);
    }
}
