//! Who may do what: every use case of the core is an [`Operation`], and
//! each operation needs one kind of [`Access`]. Every use case asks
//! [`permit`] first, so no door can forget a rule.

use uuid::Uuid;

use crate::{
    domain::{api_key::Principal, role::Access},
    error::{Error, Result},
};

macro_rules! operations {
    ($($name:ident => $access:ident,)*) => {
        /// A use case of the core. Its name is the RPC's, which errors and
        /// logs show.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Operation {
            $($name,)*
        }

        impl Operation {
            /// Every operation, for the role matrix's test.
            pub const ALL: &[Operation] = &[$(Operation::$name,)*];

            /// The access a caller's role must allow.
            pub const fn access(self) -> Access {
                match self {
                    $(Operation::$name => Access::$access,)*
                }
            }

            pub const fn name(self) -> &'static str {
                match self {
                    $(Operation::$name => stringify!($name),)*
                }
            }
        }
    };
}

operations! {
    CreateTouchpoint => Manage,
    GetTouchpoint => Catalogue,
    ListTouchpoints => Catalogue,
    UpdateTouchpoint => Manage,
    ArchiveTouchpoint => Manage,
    UnarchiveTouchpoint => Manage,
    CreateStandard => Manage,
    GetStandard => Read,
    ListStandards => Read,
    UpdateStandard => Manage,
    ArchiveStandard => Manage,
    UnarchiveStandard => Manage,
    GetServiceManual => Read,
    RecordEncounter => Ingest,
    IngestEncounters => Ingest,
    GetEncounter => Read,
    ListEncounters => Read,
    EraseCustomer => Manage,
    RecordJourneyFeedback => Ingest,
    GetJourney => Read,
    ListRecoveryCases => Read,
    GetRecoveryCase => Read,
    UpdateRecoveryCase => Manage,
    WatchRecoveryCases => Read,
    AcknowledgeRecoveryCase => Manage,
    CreateApiKey => Manage,
    ListApiKeys => Manage,
    RevokeApiKey => Manage,
    GetOrganisation => Read,
    UpdateOrganisation => Manage,
    GetScorecard => Read,
    GetMotCycle => Read,
    GetMotCycleDiagram => Read,
    GetJourneyOutcomes => Read,
    GetFirstImpressions => Read,
    GetPriorityMatrix => Read,
    ExportEventLog => Read,
    GetGuidelineBreakdown => Read,
    GetTrend => Read,
    GetComplianceReport => Read,
    GetRecoveryPerformance => Read,
    CreateFeed => Manage,
    GetFeed => Manage,
    ListFeeds => Manage,
    UpdateFeed => Manage,
    ArchiveFeed => Manage,
    ListFeedRejections => Manage,
    PreviewFeedMessage => Manage,
    ReceiveFhirEncounters => Ingest,
    CreateWebhook => Manage,
    GetWebhook => Manage,
    ListWebhooks => Manage,
    UpdateWebhook => Manage,
    DeleteWebhook => Manage,
    RotateWebhookSecret => Manage,
    ListWebhookDeliveries => Manage,
    RedeliverWebhookEvent => Manage,
}

/// The organisation `caller` acts for, if its role may do `operation`.
pub fn permit(caller: &Principal, operation: Operation) -> Result<Uuid> {
    if !caller.role.allows(operation.access()) {
        return Err(Error::PermissionDenied {
            role: caller.role.to_string(),
            method: operation.name().to_owned(),
        });
    }
    Ok(caller.organisation_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::role::Role;

    /// The role matrix, written out: which roles may call each operation.
    /// A new operation fails to compile here until its row is written.
    fn allowed(operation: Operation) -> &'static [Role] {
        use Operation::*;
        const EVERY_ROLE: &[Role] = &[Role::Ingest, Role::Analyst, Role::Admin];
        const READERS: &[Role] = &[Role::Analyst, Role::Admin];
        const FEEDS: &[Role] = &[Role::Ingest, Role::Admin];
        const ADMINS: &[Role] = &[Role::Admin];
        match operation {
            GetTouchpoint | ListTouchpoints => EVERY_ROLE,
            RecordEncounter | IngestEncounters | RecordJourneyFeedback | ReceiveFhirEncounters => {
                FEEDS
            }
            GetStandard
            | ListStandards
            | GetServiceManual
            | GetEncounter
            | ListEncounters
            | GetJourney
            | ListRecoveryCases
            | GetRecoveryCase
            | WatchRecoveryCases
            | GetOrganisation
            | GetScorecard
            | GetMotCycle
            | GetMotCycleDiagram
            | GetJourneyOutcomes
            | GetFirstImpressions
            | GetPriorityMatrix
            | ExportEventLog
            | GetGuidelineBreakdown
            | GetTrend
            | GetComplianceReport
            | GetRecoveryPerformance => READERS,
            CreateTouchpoint
            | UpdateTouchpoint
            | ArchiveTouchpoint
            | UnarchiveTouchpoint
            | CreateStandard
            | UpdateStandard
            | ArchiveStandard
            | UnarchiveStandard
            | EraseCustomer
            | UpdateRecoveryCase
            | CreateApiKey
            | ListApiKeys
            | RevokeApiKey
            | UpdateOrganisation
            | CreateFeed
            | GetFeed
            | ListFeeds
            | UpdateFeed
            | ArchiveFeed
            | ListFeedRejections
            | PreviewFeedMessage
            | AcknowledgeRecoveryCase
            | CreateWebhook
            | GetWebhook
            | ListWebhooks
            | UpdateWebhook
            | DeleteWebhook
            | RotateWebhookSecret
            | ListWebhookDeliveries
            | RedeliverWebhookEvent => ADMINS,
        }
    }

    #[test]
    fn every_operation_admits_exactly_the_roles_of_the_matrix() {
        let org = Uuid::now_v7();
        for &operation in Operation::ALL {
            for role in [Role::Ingest, Role::Analyst, Role::Admin] {
                let caller = Principal {
                    key_id: Uuid::now_v7(),
                    organisation_id: org,
                    role,
                };
                let expected = allowed(operation).contains(&role);
                match permit(&caller, operation) {
                    Ok(acting_for) => {
                        assert!(expected, "{role} may not {operation:?}");
                        assert_eq!(acting_for, org);
                    }
                    Err(Error::PermissionDenied { method, .. }) => {
                        assert!(!expected, "{role} may {operation:?}");
                        assert_eq!(method, operation.name());
                    }
                    Err(other) => panic!("{operation:?}: {other}"),
                }
            }
        }
    }

    #[test]
    fn operations_are_named_as_their_rpcs() {
        assert_eq!(Operation::CreateTouchpoint.name(), "CreateTouchpoint");
        assert_eq!(Operation::ALL.len(), 57);
    }
}
