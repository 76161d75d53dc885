//! The parts of FHIR R4 resources Verdad reads, as our own serde types.
//!
//! Every type refuses elements it does not know, so that a misspelt or
//! misplaced element is reported instead of silently dropped. The R4
//! elements Verdad has no use for are still known: they are listed as
//! [`IgnoredAny`] fields, accepted and thrown away. Primitive extensions
//! (`_status`) and `resourceType` are dealt with before these types see a
//! resource; see the reading functions.

use std::fmt::Display;

use serde::{
    Deserialize, Deserializer,
    de::{self, IgnoredAny},
};

use super::datetime::FhirDateTime;

/// Marks an error message this module wrote, so that the reader passes it
/// on: messages serde writes may quote the value, which may be a patient's.
const OWN: char = '\u{1f}';

/// A deserialization error whose message is one of our phrases, which never
/// repeat the value and follow the element's name.
pub(super) fn own_error<E: de::Error>(phrase: impl Display) -> E {
    E::custom(format_args!("{OWN}{phrase}"))
}

/// The phrase of an error made by [`own_error`].
pub(super) fn own_phrase(message: &str) -> Option<&str> {
    message.strip_prefix(OWN)
}

/// Declares a closed FHIR code system: an enum of the crate's text enums
/// (`text_enum!`), read from its codes, any other code refused without
/// being repeated.
macro_rules! fhir_code {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        crate::domain::text_enum! {
            $(#[$meta])*
            $name { $($variant => $text),+ }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text).ok_or_else(|| {
                    let codes: Vec<&str> = Self::ALL.iter().map(|c| c.as_str()).collect();
                    own_error(format_args!(
                        "is not a known code; expected one of {}",
                        codes.join(", ")
                    ))
                })
            }
        }
    };
}

fhir_code! {
    /// Encounter.status (value set encounter-status).
    EncounterStatus {
        Planned => "planned",
        Arrived => "arrived",
        Triaged => "triaged",
        InProgress => "in-progress",
        Onleave => "onleave",
        Finished => "finished",
        Cancelled => "cancelled",
        EnteredInError => "entered-in-error",
        Unknown => "unknown",
    }
}

fhir_code! {
    /// Encounter.location.status (value set encounter-location-status).
    LocationStatus {
        Planned => "planned",
        Active => "active",
        Reserved => "reserved",
        Completed => "completed",
    }
}

/// An Encounter (R4 4.0.1), `resourceType` aside.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Encounter {
    #[serde(default)]
    pub identifier: Vec<Identifier>,
    pub status: EncounterStatus,
    #[serde(default)]
    pub status_history: Vec<StatusHistory>,
    pub class: Coding,
    pub service_type: Option<CodeableConcept>,
    pub subject: Option<Reference>,
    #[serde(default)]
    pub episode_of_care: Vec<Reference>,
    #[serde(default)]
    pub participant: Vec<Participant>,
    pub period: Option<Period>,
    #[serde(default)]
    pub location: Vec<EncounterLocation>,
    pub service_provider: Option<Reference>,
    pub part_of: Option<Reference>,

    #[serde(rename = "resourceType")]
    _resource_type: Option<IgnoredAny>,
    #[serde(rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(rename = "meta")]
    _meta: Option<IgnoredAny>,
    #[serde(rename = "implicitRules")]
    _implicit_rules: Option<IgnoredAny>,
    #[serde(rename = "language")]
    _language: Option<IgnoredAny>,
    #[serde(rename = "text")]
    _text: Option<IgnoredAny>,
    #[serde(rename = "contained")]
    _contained: Option<IgnoredAny>,
    #[serde(rename = "extension")]
    _extension: Option<IgnoredAny>,
    #[serde(rename = "classHistory")]
    _class_history: Option<IgnoredAny>,
    #[serde(rename = "type")]
    _kind: Option<IgnoredAny>,
    #[serde(rename = "priority")]
    _priority: Option<IgnoredAny>,
    #[serde(rename = "basedOn")]
    _based_on: Option<IgnoredAny>,
    #[serde(rename = "appointment")]
    _appointment: Option<IgnoredAny>,
    #[serde(rename = "length")]
    _length: Option<IgnoredAny>,
    #[serde(rename = "reasonCode")]
    _reason_code: Option<IgnoredAny>,
    #[serde(rename = "reasonReference")]
    _reason_reference: Option<IgnoredAny>,
    #[serde(rename = "diagnosis")]
    _diagnosis: Option<IgnoredAny>,
    #[serde(rename = "account")]
    _account: Option<IgnoredAny>,
    #[serde(rename = "hospitalization")]
    _hospitalization: Option<IgnoredAny>,
}

/// Encounter.statusHistory: a status the encounter had, and when.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusHistory {
    pub status: EncounterStatus,
    pub period: Period,

    #[serde(rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(rename = "extension")]
    _extension: Option<IgnoredAny>,
}

/// Encounter.participant.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Participant {
    #[serde(default, rename = "type")]
    pub kind: Vec<CodeableConcept>,
    pub period: Option<Period>,
    pub individual: Option<Reference>,

    #[serde(rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(rename = "extension")]
    _extension: Option<IgnoredAny>,
}

/// Encounter.location: where the patient was, and when.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncounterLocation {
    pub location: Reference,
    pub status: Option<LocationStatus>,
    pub physical_type: Option<CodeableConcept>,
    pub period: Option<Period>,

    #[serde(rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(rename = "extension")]
    _extension: Option<IgnoredAny>,
}

/// Identifier.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Identifier {
    pub system: Option<String>,
    pub value: Option<String>,

    #[serde(rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(rename = "extension")]
    _extension: Option<IgnoredAny>,
    #[serde(rename = "use")]
    _usage: Option<IgnoredAny>,
    #[serde(rename = "type")]
    _kind: Option<IgnoredAny>,
    #[serde(rename = "period")]
    _period: Option<IgnoredAny>,
    // A Reference, which holds an Identifier: ignoring it keeps the types
    // from nesting without end.
    #[serde(rename = "assigner")]
    _assigner: Option<IgnoredAny>,
}

/// Coding.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Coding {
    pub system: Option<String>,
    pub code: Option<String>,

    #[serde(rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(rename = "extension")]
    _extension: Option<IgnoredAny>,
    #[serde(rename = "version")]
    _version: Option<IgnoredAny>,
    #[serde(rename = "display")]
    _display: Option<IgnoredAny>,
    #[serde(rename = "userSelected")]
    _user_selected: Option<IgnoredAny>,
}

/// CodeableConcept.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CodeableConcept {
    #[serde(default)]
    pub coding: Vec<Coding>,

    #[serde(rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(rename = "extension")]
    _extension: Option<IgnoredAny>,
    #[serde(rename = "text")]
    _text: Option<IgnoredAny>,
}

/// Reference.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reference {
    pub reference: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub identifier: Option<Identifier>,
    pub display: Option<String>,

    #[serde(rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(rename = "extension")]
    _extension: Option<IgnoredAny>,
}

impl Reference {
    /// The reference, else the identifier's value: how rules and journeys
    /// name what is referred to.
    pub fn key(&self) -> Option<&str> {
        nonempty(self.reference.as_deref())
            .or_else(|| nonempty(self.identifier.as_ref()?.value.as_deref()))
    }

    /// Whether `wanted` names this: its reference or its identifier's
    /// value, in any case.
    pub fn is(&self, wanted: &str) -> bool {
        let same = |got: Option<&str>| got.is_some_and(|got| wanted.eq_ignore_ascii_case(got));
        same(self.reference.as_deref())
            || same(self.identifier.as_ref().and_then(|i| i.value.as_deref()))
    }
}

/// Period.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Period {
    pub start: Option<FhirDateTime>,
    pub end: Option<FhirDateTime>,

    #[serde(rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(rename = "extension")]
    _extension: Option<IgnoredAny>,
}

/// Bundle.type, as far as Verdad takes Bundles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BundleType {
    Batch,
    Transaction,
}

impl BundleType {
    pub fn as_str(self) -> &'static str {
        match self {
            BundleType::Batch => "batch",
            BundleType::Transaction => "transaction",
        }
    }

    /// The type of the Bundle that answers one of this type.
    pub fn response(self) -> &'static str {
        match self {
            BundleType::Batch => "batch-response",
            BundleType::Transaction => "transaction-response",
        }
    }
}

/// Every Bundle.type R4 defines (value set bundle-type), to tell a type
/// Verdad does not take from one that does not exist.
pub(super) const BUNDLE_TYPES: &[&str] = &[
    "document",
    "message",
    "transaction",
    "transaction-response",
    "batch",
    "batch-response",
    "history",
    "searchset",
    "collection",
];

/// A batch or transaction Bundle. Its entries are kept as sent and read one
/// by one, so that a fault in one fails that entry alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    pub id: Option<String>,
    pub kind: BundleType,
    pub entry: Vec<serde_json::Value>,
}

/// A Bundle as sent, `resourceType` aside.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct BundleJson {
    pub(super) id: Option<String>,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) entry: Vec<serde_json::Value>,

    #[serde(rename = "resourceType")]
    _resource_type: Option<IgnoredAny>,
    #[serde(rename = "meta")]
    _meta: Option<IgnoredAny>,
    #[serde(rename = "implicitRules")]
    _implicit_rules: Option<IgnoredAny>,
    #[serde(rename = "language")]
    _language: Option<IgnoredAny>,
    #[serde(rename = "identifier")]
    _identifier: Option<IgnoredAny>,
    #[serde(rename = "timestamp")]
    _timestamp: Option<IgnoredAny>,
    #[serde(rename = "total")]
    _total: Option<IgnoredAny>,
    #[serde(rename = "link")]
    _link: Option<IgnoredAny>,
    #[serde(rename = "signature")]
    _signature: Option<IgnoredAny>,
}

/// Bundle.entry as sent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct EntryJson {
    pub(super) resource: Option<serde_json::Value>,
    pub(super) request: Option<RequestJson>,

    #[serde(rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(rename = "extension")]
    _extension: Option<IgnoredAny>,
    #[serde(rename = "link")]
    _link: Option<IgnoredAny>,
    #[serde(rename = "fullUrl")]
    _full_url: Option<IgnoredAny>,
    #[serde(rename = "search")]
    _search: Option<IgnoredAny>,
    #[serde(rename = "response")]
    _response: Option<IgnoredAny>,
}

/// Bundle.entry.request as sent. The conditional headers are accepted and
/// ignored: a create is already made idempotent by the identifier.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RequestJson {
    pub(super) method: String,
    pub(super) url: String,

    #[serde(rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(rename = "extension")]
    _extension: Option<IgnoredAny>,
    #[serde(rename = "ifNoneMatch")]
    _if_none_match: Option<IgnoredAny>,
    #[serde(rename = "ifModifiedSince")]
    _if_modified_since: Option<IgnoredAny>,
    #[serde(rename = "ifMatch")]
    _if_match: Option<IgnoredAny>,
    #[serde(rename = "ifNoneExist")]
    _if_none_exist: Option<IgnoredAny>,
}

/// R4's HTTP verbs (value set http-verb).
pub(super) const HTTP_VERBS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"];

/// `Some` only for a value with content: FHIR forbids empty strings, and
/// one is no better than none.
pub(super) fn nonempty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}
