//! Organisations: the tenants of Verdad.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::text_enum;

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
    pub create_time: DateTime<Utc>,
}

/// An organisation to create. The time zone is checked against the database's
/// own list of zones, the one its date arithmetic will use.
#[derive(Debug, Clone)]
pub struct NewOrganisation {
    pub display_name: String,
    pub kind: OrganisationKind,
    pub time_zone: String,
}
