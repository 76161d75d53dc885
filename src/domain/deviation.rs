//! Deviations: a closed journey checked against the designed cycle, the
//! seeds' "100 - 1 = 0" made operational. The rules are those of the MOT
//! cycle's conformance figures, for one journey: a key routine touchpoint
//! never met is skipped; a key touchpoint met after a key touchpoint of a
//! later cycle position is out of designed order.

use uuid::Uuid;

use super::text_enum;

text_enum! {
    /// A way a journey can go off the designed cycle.
    DeviationCheck {
        SkippedKeyTouchpoint => "skipped_key_touchpoint",
        KeyStepOutOfOrder => "key_step_out_of_order",
    }
}

/// A touchpoint of the designed cycle, as the check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesignedTouchpoint {
    pub id: Uuid,
    pub code: String,
    pub key: bool,
    pub routine: bool,
    /// 0: no place in the designed order.
    pub cycle_position: i32,
    pub archived: bool,
}

/// How a journey deviated, in the order found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deviation {
    Skipped {
        touchpoint: Uuid,
        code: String,
    },
    OutOfOrder {
        touchpoint: Uuid,
        code: String,
        position: i32,
        after_code: String,
        after_position: i32,
    },
}

impl Deviation {
    /// The touchpoint a case for it belongs to.
    pub fn touchpoint(&self) -> Uuid {
        match self {
            Deviation::Skipped { touchpoint, .. } | Deviation::OutOfOrder { touchpoint, .. } => {
                *touchpoint
            }
        }
    }

    /// In words a ward manager understands, with codes and positions only.
    pub fn describe(&self) -> String {
        match self {
            Deviation::Skipped { code, .. } => format!("skipped key touchpoint {code}"),
            Deviation::OutOfOrder {
                code,
                position,
                after_code,
                after_position,
                ..
            } => format!(
                "key touchpoint {code} (cycle position {position}) came after \
                 {after_code} (cycle position {after_position})"
            ),
        }
    }
}

/// The deviations of a journey that met `path` (touchpoint ids in the
/// order met) from the designed cycle of `catalogue`, as far as `checks`
/// ask: out-of-order steps first, in the order met, each touchpoint once;
/// then skipped touchpoints in designed order.
pub fn find(
    path: &[Uuid],
    catalogue: &[DesignedTouchpoint],
    checks: &[DeviationCheck],
) -> Vec<Deviation> {
    let designed = |id: &Uuid| catalogue.iter().find(|t| t.id == *id);
    let mut found = Vec::new();
    if checks.contains(&DeviationCheck::KeyStepOutOfOrder) {
        let mut highest: Option<&DesignedTouchpoint> = None;
        let mut reported: Vec<Uuid> = Vec::new();
        for touchpoint in path.iter().filter_map(designed) {
            if !touchpoint.key || touchpoint.cycle_position == 0 {
                continue;
            }
            match highest {
                Some(before) if touchpoint.cycle_position < before.cycle_position => {
                    if !reported.contains(&touchpoint.id) {
                        reported.push(touchpoint.id);
                        found.push(Deviation::OutOfOrder {
                            touchpoint: touchpoint.id,
                            code: touchpoint.code.clone(),
                            position: touchpoint.cycle_position,
                            after_code: before.code.clone(),
                            after_position: before.cycle_position,
                        });
                    }
                }
                Some(before) if touchpoint.cycle_position == before.cycle_position => {}
                _ => highest = Some(touchpoint),
            }
        }
    }
    if checks.contains(&DeviationCheck::SkippedKeyTouchpoint) {
        let mut skipped: Vec<&DesignedTouchpoint> = catalogue
            .iter()
            .filter(|t| t.key && t.routine && !t.archived && !path.contains(&t.id))
            .collect();
        skipped.sort_by(|a, b| {
            (a.cycle_position == 0, a.cycle_position, &a.code).cmp(&(
                b.cycle_position == 0,
                b.cycle_position,
                &b.code,
            ))
        });
        found.extend(skipped.into_iter().map(|t| Deviation::Skipped {
            touchpoint: t.id,
            code: t.code.clone(),
        }));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touchpoint(code: &str, key: bool, routine: bool, position: i32) -> DesignedTouchpoint {
        DesignedTouchpoint {
            id: Uuid::now_v7(),
            code: code.into(),
            key,
            routine,
            cycle_position: position,
            archived: false,
        }
    }

    struct Cycle {
        booking: DesignedTouchpoint,
        reception: DesignedTouchpoint,
        lobby: DesignedTouchpoint,
        consult: DesignedTouchpoint,
        complaint: DesignedTouchpoint,
        payment: DesignedTouchpoint,
    }

    impl Cycle {
        fn new() -> Self {
            Self {
                booking: touchpoint("booking", true, true, 10),
                reception: touchpoint("reception", true, true, 20),
                lobby: touchpoint("lobby", false, true, 25),
                consult: touchpoint("consult", true, true, 30),
                complaint: touchpoint("complaint-desk", true, false, 0),
                payment: touchpoint("payment", true, true, 40),
            }
        }

        fn all(&self) -> Vec<DesignedTouchpoint> {
            [
                &self.booking,
                &self.reception,
                &self.lobby,
                &self.consult,
                &self.complaint,
                &self.payment,
            ]
            .into_iter()
            .cloned()
            .collect()
        }
    }

    const BOTH: &[DeviationCheck] = &[
        DeviationCheck::SkippedKeyTouchpoint,
        DeviationCheck::KeyStepOutOfOrder,
    ];

    #[test]
    fn a_journey_in_designed_order_meeting_every_key_step_conforms() {
        let c = Cycle::new();
        let path = [
            c.booking.id,
            c.reception.id,
            c.lobby.id,
            c.consult.id,
            c.payment.id,
        ];
        assert!(find(&path, &c.all(), BOTH).is_empty());
    }

    #[test]
    fn exceptional_and_archived_touchpoints_are_not_expected() {
        let mut c = Cycle::new();
        c.payment.archived = true;
        let path = [c.booking.id, c.reception.id, c.consult.id];
        assert!(find(&path, &c.all(), BOTH).is_empty());
    }

    #[test]
    fn skipped_key_touchpoints_are_named_in_designed_order() {
        let c = Cycle::new();
        let path = [c.booking.id, c.lobby.id, c.consult.id];
        let found = find(&path, &c.all(), BOTH);
        assert_eq!(
            found.iter().map(Deviation::describe).collect::<Vec<_>>(),
            [
                "skipped key touchpoint reception",
                "skipped key touchpoint payment"
            ]
        );
        assert_eq!(found[0].touchpoint(), c.reception.id);
    }

    #[test]
    fn a_key_step_behind_a_later_one_is_out_of_order_once() {
        let c = Cycle::new();
        let path = [
            c.booking.id,
            c.consult.id,
            c.reception.id,
            c.reception.id,
            c.payment.id,
        ];
        let found = find(&path, &c.all(), &[DeviationCheck::KeyStepOutOfOrder]);
        assert_eq!(
            found.iter().map(Deviation::describe).collect::<Vec<_>>(),
            ["key touchpoint reception (cycle position 20) came after consult (cycle position 30)"]
        );
    }

    #[test]
    fn only_the_checks_asked_for_count() {
        let c = Cycle::new();
        let path = [c.consult.id, c.booking.id];
        assert_eq!(
            find(&path, &c.all(), &[DeviationCheck::SkippedKeyTouchpoint]).len(),
            2
        );
        assert_eq!(
            find(&path, &c.all(), &[DeviationCheck::KeyStepOutOfOrder]).len(),
            1
        );
        assert!(find(&path, &c.all(), &[]).is_empty());
    }

    #[test]
    fn steps_without_a_position_or_not_key_do_not_order() {
        let c = Cycle::new();
        // The lobby (not key) after the consult is no deviation.
        let path = [
            c.booking.id,
            c.reception.id,
            c.consult.id,
            c.lobby.id,
            c.complaint.id,
            c.payment.id,
        ];
        assert!(find(&path, &c.all(), BOTH).is_empty());
    }
}
