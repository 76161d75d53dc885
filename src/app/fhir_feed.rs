//! FHIR R4 Encounters from a feed, on their own or in batch and
//! transaction Bundles: read, mapped by the feed's rules, and stored,
//! withdrawn or ignored, each answered as FHIR expects.
//!
//! The caller is an ingest (or admin) key; the feed it names must be a live
//! FHIR R4 feed of the key's organisation. Verdad keeps the moments an
//! Encounter makes, never the resource: there is nothing to read back.

use std::collections::BTreeSet;

use chrono::Utc;
use chrono_tz::Tz;
use serde_json::Value;
use uuid::Uuid;

use super::{
    App, Caller, Operation, Parsed,
    access::permit,
    feed_preview::{FeedPreview, PreviewOutcome},
    feed_tally::Tallied,
    feeds::organisation_zone,
};
use crate::{
    domain::{
        code::Lookup,
        encounter::{NewEncounter, time_out_of_bounds},
        feed::{Feed, FhirR4Mapping, Mapping},
        fhir::{self, BundleType, Encounter, EntryResponse, Issue, IssueType},
    },
    error::{Error, Result},
    ingest::{Item, Origin, Outcome, ingest_batch},
    store,
};

/// What a FHIR client sent.
#[derive(Debug, Clone)]
pub enum FhirRequest {
    /// `POST [base]/Encounter`: one Encounter.
    Encounter(bytes::Bytes),
    /// `POST [base]`: a batch or transaction Bundle.
    Bundle(bytes::Bytes),
}

/// The answer: an HTTP status and a FHIR resource (an OperationOutcome or
/// a response Bundle).
#[derive(Debug, Clone, PartialEq)]
pub struct FhirAnswer {
    pub status: u16,
    pub body: Value,
}

/// What one Encounter did or would do.
enum Settled {
    /// Moments to store, as checked encounters.
    Store(Vec<NewEncounter>),
    /// Withdraw what was stored under this resource key.
    Withdraw(String),
    /// No rule matched.
    Ignore,
    /// The Encounter was withdrawn before: a late resend of an earlier
    /// version, which must not bring its moments back.
    Withdrawn,
    /// Refused with this status.
    Refuse(u16, Vec<Issue>),
}

/// The feed a FHIR request names, as the core needs it.
struct FhirFeed {
    id: Uuid,
    code: String,
    mapping: FhirR4Mapping,
    zone: Tz,
}

impl App {
    pub async fn receive_fhir(
        &self,
        caller: &Caller,
        feed_code: Parsed<String>,
        request: FhirRequest,
    ) -> Result<FhirAnswer> {
        let org = permit(caller, Operation::ReceiveFhirEncounters)?;
        let code = feed_code?;
        let feed = self.fhir_feed(org, &code).await?;
        let answer = match request {
            FhirRequest::Encounter(bytes) => match fhir::read_encounter(&bytes) {
                Err(issues) => refused(400, &issues),
                Ok(encounter) => {
                    let settled = self.settle_fhir(org, &feed, &encounter).await?;
                    let (response, _) = self.carry_out(org, &feed, settled).await?;
                    FhirAnswer {
                        status: response.status,
                        body: response
                            .outcome
                            .unwrap_or_else(|| fhir::outcome_information("done")),
                    }
                }
            },
            FhirRequest::Bundle(bytes) => match fhir::read_bundle(&bytes) {
                Err(issues) => refused(400, &issues),
                Ok(bundle) => match bundle.kind {
                    BundleType::Batch => self.batch(org, &feed, &bundle.entry).await?,
                    BundleType::Transaction => self.transaction(org, &feed, &bundle.entry).await?,
                },
            },
        };
        let tallied = match answer.status {
            200 | 201 => Tallied::Accepted,
            _ => Tallied::Rejected,
        };
        self.feed_tally.add(org, feed.id, tallied);
        Ok(answer)
    }

    async fn fhir_feed(&self, org: Uuid, code: &str) -> Result<FhirFeed> {
        let mut tx = store::begin_for(&self.pool, org).await?;
        let feed = store::feed::get_by_code(&mut tx, org, code)
            .await?
            .ok_or_else(|| Error::not_found("feed", code))?;
        let zone = organisation_zone(&mut tx, org).await?;
        tx.commit().await?;
        if feed.is_archived() {
            return Err(Error::FailedPrecondition {
                reason: "FEED_ARCHIVED",
                message: format!("feed {} is archived", feed.code),
            });
        }
        let Mapping::FhirR4(mapping) = feed.mapping else {
            return Err(Error::FailedPrecondition {
                reason: "FEED_KIND_MISMATCH",
                message: format!(
                    "feed {} is an HL7 v2 feed; FHIR resources need a FHIR R4 feed",
                    feed.code
                ),
            });
        };
        Ok(FhirFeed {
            id: feed.id,
            code: feed.code,
            mapping,
            zone,
        })
    }

    /// What `message` (an Encounter, or the first Encounter of a Bundle)
    /// would do for the FHIR R4 feed `feed` of `org`, storing nothing.
    pub(super) async fn preview_fhir(
        &self,
        org: Uuid,
        feed: &Feed,
        mapping: &FhirR4Mapping,
        zone: Tz,
        message: &str,
    ) -> Result<FeedPreview> {
        let bytes = message.as_bytes();
        let read = match fhir::read_encounter(bytes) {
            Ok(encounter) => Ok(encounter),
            // A Bundle: its first entry stands for the rest.
            Err(issues) => match fhir::read_bundle(bytes) {
                Ok(bundle) => match bundle.entry.first() {
                    Some(first) => fhir::read_entry(0, first),
                    None => Err(issues),
                },
                Err(_) => Err(issues),
            },
        };
        let feed = FhirFeed {
            id: feed.id,
            code: feed.code.clone(),
            mapping: mapping.clone(),
            zone,
        };
        let (status, outcome, control_id) = match read {
            Err(issues) => (400, refusal(&issues), String::new()),
            Ok(encounter) => {
                // The resource's logical id is not read; nothing names it.
                let control_id = String::new();
                match self.settle_fhir(org, &feed, &encounter).await? {
                    Settled::Store(moments) => (201, PreviewOutcome::Store(moments), control_id),
                    Settled::Withdraw(key) => {
                        let mut tx = store::begin_for(&self.pool, org).await?;
                        let ids = store::feed::resource_encounters(&mut tx, org, &feed.code, &key)
                            .await?;
                        tx.commit().await?;
                        (200, PreviewOutcome::Withdraw(ids), control_id)
                    }
                    Settled::Ignore | Settled::Withdrawn => {
                        (200, PreviewOutcome::Ignore, control_id)
                    }
                    Settled::Refuse(status, issues) => (status, refusal(&issues), control_id),
                }
            }
        };
        Ok(FeedPreview {
            acknowledgement: status.to_string(),
            control_id,
            outcome,
        })
    }

    /// What `encounter` does for `feed`, before anything is stored: its
    /// moments checked, including that each touchpoint exists and is live,
    /// so that storing them cannot half succeed.
    async fn settle_fhir(
        &self,
        org: Uuid,
        feed: &FhirFeed,
        encounter: &Encounter,
    ) -> Result<Settled> {
        if fhir::withdrawn(encounter) {
            return Ok(match fhir::resource_key(encounter, &feed.mapping) {
                Ok(key) => Settled::Withdraw(key),
                Err(issue) => Settled::Refuse(422, vec![issue]),
            });
        }
        let moments = match fhir::moments(encounter, &feed.mapping, feed.zone) {
            Ok(moments) if moments.is_empty() => return Ok(Settled::Ignore),
            Ok(moments) => moments,
            Err(issues) => return Ok(Settled::Refuse(422, issues)),
        };
        // Moments need the resource's identifier, so its key is there.
        if let Ok(key) = fhir::resource_key(encounter, &feed.mapping) {
            let mut tx = store::begin_for(&self.pool, org).await?;
            let settled = store::feed::is_settled(&mut tx, org, feed.id, &key).await?;
            tx.commit().await?;
            if settled {
                return Ok(Settled::Withdrawn);
            }
        }
        let now = Utc::now();
        let mut issues = Vec::new();
        let mut checked = Vec::with_capacity(moments.len());
        for moment in moments {
            match time_out_of_bounds(moment.occur_time, now) {
                None => checked.push(NewEncounter {
                    touchpoint: Lookup::Code(moment.touchpoint_code),
                    journey_id: moment.journey_id,
                    customer_ref: moment.customer_ref,
                    occur_time: moment.occur_time,
                    channel: None,
                    measurements: Default::default(),
                    situation: None,
                    staff_ref: moment.staff_ref,
                    comment: String::new(),
                    observations: Vec::new(),
                    attributes: moment.attributes,
                    source: feed.code.clone(),
                    external_id: moment.external_id,
                }),
                Some(problem) => issues.push(Issue::error(
                    IssueType::BusinessRule,
                    format!("a mapped moment's time {problem}"),
                    Some("Encounter".to_owned()),
                )),
            }
        }
        issues.extend(self.dead_touchpoints(org, &checked).await?);
        Ok(if issues.is_empty() {
            Settled::Store(checked)
        } else {
            Settled::Refuse(422, issues)
        })
    }

    /// An issue for each touchpoint the moments name that the organisation
    /// lacks or has archived.
    async fn dead_touchpoints(&self, org: Uuid, moments: &[NewEncounter]) -> Result<Vec<Issue>> {
        let codes: BTreeSet<&str> = moments
            .iter()
            .filter_map(|m| match &m.touchpoint {
                Lookup::Code(code) => Some(code.as_str()),
                Lookup::Id(_) => None,
            })
            .collect();
        let mut issues = Vec::new();
        let mut tx = store::begin_for(&self.pool, org).await?;
        for code in codes {
            let lookup = Lookup::Code(code.to_owned());
            let problem = match store::touchpoint::find(&mut tx, org, &lookup).await? {
                None => Some("names a touchpoint the organisation does not have"),
                Some(t) if t.is_archived() => Some("names an archived touchpoint"),
                Some(_) => None,
            };
            if let Some(problem) = problem {
                issues.push(Issue::error(
                    IssueType::BusinessRule,
                    format!("the feed's rule for touchpoint {code} {problem}"),
                    None,
                ));
            }
        }
        tx.commit().await?;
        Ok(issues)
    }

    /// Does what one Encounter settled on; the entry's answer and how many
    /// encounters it stored.
    async fn carry_out(
        &self,
        org: Uuid,
        feed: &FhirFeed,
        settled: Settled,
    ) -> Result<(EntryResponse, usize)> {
        Ok(match settled {
            Settled::Refuse(status, issues) => (entry(status, fhir::operation_outcome(&issues)), 0),
            Settled::Ignore => (
                entry(
                    200,
                    fhir::outcome_information(
                        "no rule of the feed maps this Encounter: nothing stored",
                    ),
                ),
                0,
            ),
            Settled::Withdrawn => (entry(200, withdrawn_before()), 0),
            Settled::Withdraw(key) => {
                let withdrawn = self.withdraw_fhir(org, feed, &key).await?;
                (
                    entry(
                        200,
                        fhir::outcome_information(&format!(
                            "withdrew {withdrawn} encounters this Encounter had stored"
                        )),
                    ),
                    0,
                )
            }
            Settled::Store(moments) => {
                let fresh = self.store_moments(org, moments).await?;
                let stored = fresh.iter().filter(|new| **new).count();
                (stored_entry(stored, fresh.len()), stored)
            }
        })
    }

    /// Withdraws the moments of the resource `key`, and settles the key for
    /// good, so that a late resend of an earlier version stores nothing.
    async fn withdraw_fhir(&self, org: Uuid, feed: &FhirFeed, key: &str) -> Result<u64> {
        let mut tx = store::begin_for(&self.pool, org).await?;
        let withdrawn = store::feed::withdraw_resource(&mut tx, org, &feed.code, key).await?;
        store::feed::settle_resource(&mut tx, org, feed.id, key).await?;
        tx.commit().await?;
        if withdrawn > 0 {
            self.rollups.changed(org, withdrawn as usize);
        }
        Ok(withdrawn)
    }

    /// Stores checked moments in one transaction; for each, whether it is
    /// new (else it was stored before). A moment refused after all (a
    /// touchpoint archived in between) fails the call rather than leave
    /// half a resource quietly stored.
    async fn store_moments(&self, org: Uuid, moments: Vec<NewEncounter>) -> Result<Vec<bool>> {
        let items = moments
            .into_iter()
            .enumerate()
            .map(|(index, encounter)| Item {
                field: format!("moments[{index}]"),
                encounter: Ok(encounter),
            })
            .collect();
        let outcome = ingest_batch(&self.pipeline, org, items, Origin::Stream).await?;
        outcome
            .outcomes
            .into_iter()
            .map(|item| match item {
                Outcome::Stored { .. } => Ok(true),
                // The same moment with other details (a resend that added
                // a staff member, say) keeps what was stored first.
                Outcome::Duplicate { .. } | Outcome::Rejected(Error::AlreadyExists { .. }) => {
                    Ok(false)
                }
                Outcome::Rejected(error) => Err(error),
            })
            .collect()
    }

    /// A batch: each entry on its own, answered in order; one entry's
    /// failure, even the server's, is that entry's answer alone.
    async fn batch(&self, org: Uuid, feed: &FhirFeed, entries: &[Value]) -> Result<FhirAnswer> {
        let mut responses = Vec::with_capacity(entries.len());
        for (index, raw) in entries.iter().enumerate() {
            let response = match fhir::read_entry(index, raw) {
                Err(issues) => entry(400, fhir::operation_outcome(&issues)),
                Ok(encounter) => match self.settle_fhir(org, feed, &encounter).await {
                    Ok(settled) => match self.carry_out(org, feed, settled).await {
                        Ok((response, _)) => response,
                        Err(error) => error_entry(&error),
                    },
                    Err(error) => error_entry(&error),
                },
            };
            responses.push(response);
        }
        Ok(FhirAnswer {
            status: 200,
            body: fhir::batch_response(responses),
        })
    }

    /// A transaction: every entry read and mapped first; one fault refuses
    /// the whole Bundle. Then withdrawals go first, as FHIR processes a
    /// transaction's deletes first, and every moment is stored in one
    /// transaction after them.
    async fn transaction(
        &self,
        org: Uuid,
        feed: &FhirFeed,
        entries: &[Value],
    ) -> Result<FhirAnswer> {
        let mut settled = Vec::with_capacity(entries.len());
        let mut issues = Vec::new();
        let mut worst = 400;
        for (index, raw) in entries.iter().enumerate() {
            match fhir::read_entry(index, raw) {
                Err(found) => issues.extend(found),
                Ok(encounter) => match self.settle_fhir(org, feed, &encounter).await? {
                    Settled::Refuse(status, found) => {
                        worst = worst.max(status);
                        issues.extend(found.into_iter().map(|issue| issue.in_entry(index)));
                    }
                    other => settled.push(other),
                },
            }
        }
        if !issues.is_empty() {
            return Ok(refused(worst, &issues));
        }
        // Each entry's share of the moments, or None for a withdrawal.
        let mut moments = Vec::new();
        let mut shares = Vec::with_capacity(settled.len());
        let mut withdrawals = Vec::new();
        for entry in settled {
            match entry {
                Settled::Store(these) => {
                    shares.push(Some(these.len()));
                    moments.extend(these);
                }
                Settled::Withdraw(key) => {
                    shares.push(None);
                    withdrawals.push(key);
                }
                Settled::Ignore | Settled::Withdrawn | Settled::Refuse(..) => shares.push(Some(0)),
            }
        }
        for key in &withdrawals {
            self.withdraw_fhir(org, feed, key).await?;
        }
        let fresh = if moments.is_empty() {
            Vec::new()
        } else {
            self.store_moments(org, moments).await?
        };
        let mut rest = fresh.as_slice();
        let responses = shares
            .into_iter()
            .map(|share| match share {
                None => entry(200, fhir::outcome_information("withdrawn")),
                Some(0) => entry(
                    200,
                    fhir::outcome_information("no rule of the feed maps this Encounter"),
                ),
                Some(count) => {
                    let (mine, others) = rest.split_at(count.min(rest.len()));
                    rest = others;
                    stored_entry(mine.iter().filter(|new| **new).count(), count)
                }
            })
            .collect();
        tracing::info!(
            feed = %feed.code,
            moments = fresh.len(),
            stored = fresh.iter().filter(|new| **new).count(),
            withdrawn = withdrawals.len(),
            "stored a FHIR transaction"
        );
        Ok(FhirAnswer {
            status: 200,
            body: fhir::transaction_response(responses),
        })
    }
}

/// The answer for `count` moments of which `stored` were new: 201 when
/// any was, 200 when every one was stored before.
fn stored_entry(stored: usize, count: usize) -> EntryResponse {
    entry(
        if stored > 0 { 201 } else { 200 },
        fhir::outcome_information(&format!(
            "{count} moments: {stored} stored, {} already stored",
            count - stored
        )),
    )
}

fn withdrawn_before() -> Value {
    fhir::outcome_information(
        "this Encounter was withdrawn (entered-in-error or cancelled): nothing stored",
    )
}

/// The HTTP status and issue type FHIR answers an error of the core with.
pub fn fhir_status(error: &Error) -> (u16, IssueType) {
    match error {
        Error::InvalidArgument(_) | Error::Malformed { .. } => (400, IssueType::Invalid),
        Error::Cancelled => (400, IssueType::Incomplete),
        Error::Unauthenticated { .. } => (401, IssueType::Login),
        Error::PermissionDenied { .. } => (403, IssueType::Forbidden),
        Error::NotFound { .. } => (404, IssueType::NotFound),
        Error::AlreadyExists { .. } => (409, IssueType::Duplicate),
        Error::FailedPrecondition { .. } => (422, IssueType::BusinessRule),
        Error::MessageTooLarge { .. } | Error::AnswerTooLarge { .. } => (413, IssueType::TooCostly),
        Error::DeadlineExceeded { .. } | Error::StatementTimeout => (504, IssueType::Timeout),
        Error::Unavailable { .. } | Error::Aborted | Error::WatchFellBehind { .. } => {
            (503, IssueType::Transient)
        }
        Error::Database(_) | Error::Internal(_) => (500, IssueType::Exception),
    }
}

/// A batch entry that failed with `error`: its own answer, the cause of a
/// server fault logged and not told.
fn error_entry(error: &Error) -> EntryResponse {
    let (status, code) = fhir_status(error);
    if status >= 500 {
        tracing::error!(%error, "a FHIR batch entry failed");
    }
    entry(
        status,
        fhir::operation_outcome(&[Issue::error(code, error.public_message(), None)]),
    )
}

/// A preview's refusal: the first issue, by its element.
fn refusal(issues: &[Issue]) -> PreviewOutcome {
    let first = issues.first();
    PreviewOutcome::Refuse {
        element: first
            .and_then(|issue| issue.expression.first().cloned())
            .unwrap_or_default(),
        field: 0,
        reason: first
            .map(|issue| issue.diagnostics.clone())
            .unwrap_or_default(),
    }
}

fn entry(status: u16, outcome: Value) -> EntryResponse {
    EntryResponse {
        status,
        location: None,
        outcome: Some(outcome),
    }
}

fn refused(status: u16, issues: &[Issue]) -> FhirAnswer {
    FhirAnswer {
        status,
        body: fhir::operation_outcome(issues),
    }
}
