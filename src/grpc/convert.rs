//! Conversions between the proto enums and the domain's, in both directions.
//! The proto's `*_UNSPECIFIED` value has no domain counterpart: reading it
//! gives `None`, and the caller decides whether that is allowed.

use crate::{
    domain::{
        analysis::{Granularity, LogFormat, Quadrant, TrendFigure},
        deviation::DeviationCheck,
        encounter::Situation,
        evaluation::Outcome,
        organisation::OrganisationKind,
        recovery::{CaseKind, RecoveryStatus},
        role::Role,
        standard::{Comparison, Element, MetricField, Severity},
        touchpoint::{Channel, Occurrence, Stage},
        webhook::DeliveryState,
    },
    proto::verdad::v1 as pb,
};

/// Declares `$from` (proto → domain, `None` for unspecified) and `$to`
/// (domain → proto) for enums whose variants correspond one to one.
macro_rules! enum_mapping {
    ($from:ident, $to:ident, $proto:ident, $domain:ident { $($variant:ident),+ $(,)? }) => {
        pub(crate) fn $from(value: pb::$proto) -> Option<$domain> {
            match value {
                pb::$proto::Unspecified => None,
                $(pb::$proto::$variant => Some($domain::$variant),)+
            }
        }

        pub(crate) fn $to(value: $domain) -> pb::$proto {
            match value {
                $($domain::$variant => pb::$proto::$variant,)+
            }
        }
    };
}

enum_mapping!(
    stage_from_proto,
    stage_to_proto,
    Stage,
    Stage {
        PreService,
        Service,
        PostService,
    }
);
enum_mapping!(
    deviation_check_from_proto,
    deviation_check_to_proto,
    DeviationCheck,
    DeviationCheck {
        SkippedKeyTouchpoint,
        KeyStepOutOfOrder,
    }
);
enum_mapping!(
    case_kind_from_proto,
    case_kind_to_proto,
    RecoveryCaseKind,
    CaseKind { Failure, Deviation }
);
enum_mapping!(
    delivery_state_from_proto,
    delivery_state_to_proto,
    WebhookDeliveryState,
    DeliveryState {
        Pending,
        Delivered,
        Failed,
    }
);
enum_mapping!(
    channel_from_proto,
    channel_to_proto,
    Channel,
    Channel {
        InPerson,
        Phone,
        Remote,
    }
);
enum_mapping!(
    occurrence_from_proto,
    occurrence_to_proto,
    Occurrence,
    Occurrence {
        Routine,
        Exceptional
    }
);
enum_mapping!(
    role_from_proto,
    role_to_proto,
    Role,
    Role {
        Ingest,
        Analyst,
        Admin,
    }
);
enum_mapping!(
    kind_from_proto,
    kind_to_proto,
    OrganisationKind,
    OrganisationKind {
        Hospital,
        WelfareCentre,
        Agency,
        Other,
    }
);
enum_mapping!(
    element_from_proto,
    element_to_proto,
    Element,
    Element {
        Hardware,
        Software,
        Humanware,
    }
);
enum_mapping!(
    severity_from_proto,
    severity_to_proto,
    Severity,
    Severity { Critical, Minor }
);
enum_mapping!(
    metric_field_from_proto,
    metric_field_to_proto,
    MetricField,
    MetricField {
        WaitSeconds,
        FirstResponseSeconds,
        DurationSeconds,
        Satisfaction,
        Effort,
    }
);
enum_mapping!(
    comparison_from_proto,
    comparison_to_proto,
    Comparison,
    Comparison {
        LessThan,
        LessOrEqual,
        GreaterOrEqual,
        GreaterThan,
    }
);

enum_mapping!(
    situation_from_proto,
    situation_to_proto,
    Situation,
    Situation {
        Recovery,
        Adaptability,
        Spontaneity,
        Coping,
    }
);

enum_mapping!(
    status_from_proto,
    status_to_proto,
    RecoveryStatus,
    RecoveryStatus {
        Open,
        InProgress,
        Resolved,
    }
);

enum_mapping!(
    trend_figure_from_proto,
    trend_figure_to_proto,
    TrendFigure,
    TrendFigure {
        Encounters,
        MeanSatisfaction,
        Csat,
        TopBox,
        FailureRate,
        WaitMedian,
        FirstResponseMedian,
        Compliance,
    }
);

enum_mapping!(
    granularity_from_proto,
    granularity_to_proto,
    Granularity,
    Granularity { Day, Week, Month }
);

/// Quadrants are only ever sent.
pub(crate) fn quadrant_to_proto(value: Quadrant) -> pb::Quadrant {
    match value {
        Quadrant::ConcentrateHere => pb::Quadrant::ConcentrateHere,
        Quadrant::KeepUpTheGoodWork => pb::Quadrant::KeepUpTheGoodWork,
        Quadrant::LowPriority => pb::Quadrant::LowPriority,
        Quadrant::PossibleOverkill => pb::Quadrant::PossibleOverkill,
    }
}

/// Formats are only ever read.
pub(crate) fn log_format_from_proto(value: pb::EventLogFormat) -> Option<LogFormat> {
    match value {
        pb::EventLogFormat::Unspecified => None,
        pb::EventLogFormat::Csv => Some(LogFormat::Csv),
        pb::EventLogFormat::Xes => Some(LogFormat::Xes),
    }
}

/// Outcomes are only ever sent, never read.
pub(crate) fn outcome_to_proto(value: Outcome) -> pb::Outcome {
    match value {
        Outcome::Met => pb::Outcome::Met,
        Outcome::Violated => pb::Outcome::Violated,
        Outcome::NotApplicable => pb::Outcome::NotApplicable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_domain_value_survives_a_round_trip_through_the_proto() {
        for stage in Stage::ALL {
            assert_eq!(stage_from_proto(stage_to_proto(*stage)), Some(*stage));
        }
        for element in Element::ALL {
            assert_eq!(
                element_from_proto(element_to_proto(*element)),
                Some(*element)
            );
        }
        for field in MetricField::ALL {
            assert_eq!(
                metric_field_from_proto(metric_field_to_proto(*field)),
                Some(*field)
            );
        }
        for comparison in Comparison::ALL {
            assert_eq!(
                comparison_from_proto(comparison_to_proto(*comparison)),
                Some(*comparison)
            );
        }
        for kind in OrganisationKind::ALL {
            assert_eq!(kind_from_proto(kind_to_proto(*kind)), Some(*kind));
        }
        assert_eq!(stage_from_proto(pb::Stage::Unspecified), None);
    }
}
