//! The gRPC door: one adapter per service, each handler converting the
//! request into domain values, calling one use case of `crate::app` and
//! converting the answer back; and the plumbing in front of them (framing,
//! codec, deadline, the ingest stream's route).

pub mod codec;
pub mod deadline;
pub mod framing;
pub mod methods;

mod analysis_answers;
pub mod analysis_service;
pub mod api_key_service;
mod convert;
pub mod encounter_service;
pub mod feed_service;
mod field_mask;
pub mod ingest_route;
pub mod journey_service;
pub mod organisation_service;
pub mod recovery_service;
pub mod standard_service;
pub mod touchpoint_service;
pub mod webhook_service;

use chrono::{DateTime, Utc};
use tonic::Request;

use crate::{
    domain::{
        api_key::Principal,
        code::{Lookup, parse_lookup},
        violation::FieldViolation,
    },
    error::{Error, Result},
};

/// The caller of `request`: the authentication layer has put it there; a
/// request without one never reaches a service.
pub(crate) fn caller<T>(request: &Request<T>) -> Result<Principal> {
    request
        .extensions()
        .get::<Principal>()
        .copied()
        .ok_or(Error::Unauthenticated {
            reason: "API_KEY_MISSING",
            message: "missing api key: send \"authorization: Bearer <key>\"",
        })
}

/// The most bytes the items of one page may take: the message limit the
/// call came in under (see `crate::grpc::framing::MessageLimit`), less room for
/// the rest of the answer.
pub(crate) fn page_budget<T>(request: &Request<T>) -> usize {
    let limit = request
        .extensions()
        .get::<crate::grpc::framing::MessageLimit>()
        .map_or(crate::grpc::framing::MessageLimit::DEFAULT, |limit| limit.0);
    limit.saturating_sub(1024)
}

/// What one item adds to a repeated field's message: its bytes, its length
/// and its tag.
pub(crate) fn item_bytes(item: &impl prost::Message) -> usize {
    item.encoded_len() + 11
}

/// The first of `items` that fit in `budget` bytes.
pub(crate) fn fitting<T: prost::Message>(mut items: Vec<T>, budget: usize) -> Vec<T> {
    items.truncate(crate::domain::paging::how_many_fit(
        &items, budget, item_bytes,
    ));
    items
}

/// Reads the `id` or `code` of a Get request: exactly one must be set.
pub(crate) fn required_lookup(id: &str, code: &str) -> Result<Lookup, FieldViolation> {
    parse_lookup("id", id, "code", code)?
        .ok_or_else(|| FieldViolation::new("id", "exactly one of id and code must be set"))
}

/// Reads a filter's touchpoint, named by `<field>_id` or `<field>_code`:
/// `None` when neither is set.
pub(crate) fn touchpoint_filter(
    field: &str,
    id: &str,
    code: &str,
) -> Result<Option<Lookup>, FieldViolation> {
    parse_lookup(&format!("{field}_id"), id, &format!("{field}_code"), code)
}

pub(crate) use crate::domain::code::parse_id;

/// Reads a timestamp field; `None` when unset. Times before 1970 or beyond
/// what chrono holds are violations, like malformed nanoseconds.
pub(crate) fn from_timestamp(
    field: &str,
    value: Option<&prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, FieldViolation> {
    let Some(value) = value else {
        return Ok(None);
    };
    let nanos = u32::try_from(value.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .ok_or_else(|| FieldViolation::new(field, "has nanos outside 0..999999999"))?;
    DateTime::from_timestamp(value.seconds, nanos)
        .map(Some)
        .ok_or_else(|| FieldViolation::new(field, "is out of range"))
}

pub(crate) fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// Reads a proto enum field into a domain value: `None` when the field holds
/// the `*_UNSPECIFIED` zero value, a violation when it holds a number the
/// proto does not define.
pub(crate) fn enum_field<P, D>(
    field: &str,
    value: i32,
    convert: fn(P) -> Option<D>,
) -> Result<Option<D>, FieldViolation>
where
    P: TryFrom<i32>,
{
    P::try_from(value)
        .map(convert)
        .map_err(|_| FieldViolation::new(field, format!("has unknown value {value}")))
}

/// Like [`enum_field`] for a field that must be set.
pub(crate) fn required_enum<P, D>(
    field: &str,
    value: i32,
    convert: fn(P) -> Option<D>,
) -> Result<D, FieldViolation>
where
    P: TryFrom<i32>,
{
    enum_field(field, value, convert)?.ok_or_else(|| FieldViolation::new(field, "is required"))
}
