//! HL7 v2 messages from a feed: found by their sender, mapped, stored,
//! withdrawn or ignored, and acknowledged; and the same mapping as a dry
//! run for the admin.
//!
//! A message names its sender (MSH-3, MSH-4), never its organisation: the
//! sender's live feed is the organisation's, and nothing else can make a
//! message store into it. When the feed pins client certificates, the
//! connection must also present one of them.

use chrono::Utc;
use chrono_tz::Tz;
use uuid::Uuid;

use super::{
    App,
    feed_preview::{FeedPreview, PreviewOutcome},
    feed_tally::Tallied,
    feeds::time_zone,
};
use crate::{
    domain::{
        feed::{Acknowledgement, Feed, Hl7v2Mapping, Mapping, Rejection},
        hl7::{self, Action, ErrorCode, Fault, Header},
    },
    error::{Error, Result},
    store::{self, feed::SenderFeed},
};

/// One message as it came off a connection.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub bytes: &'a [u8],
    /// The SHA-256 fingerprint (lower-case hexadecimal) of the connection's
    /// client certificate, when it presented one.
    pub client_certificate: Option<&'a str>,
    /// For a message over the size limit: its size, `bytes` being its head.
    pub too_large: Option<(usize, usize)>,
}

/// What the sender is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub header: Header,
    pub acknowledgement: Acknowledgement,
    pub fault: Option<Fault>,
}

impl Receipt {
    fn accept(header: Header) -> Self {
        Self {
            header,
            acknowledgement: Acknowledgement::Accept,
            fault: None,
        }
    }

    fn refuse(header: Header, fault: Fault) -> Self {
        Self {
            header,
            acknowledgement: fault.acknowledgement,
            fault: Some(fault),
        }
    }
}

impl App {
    /// Receives one message of a feed and says what to acknowledge.
    pub async fn receive_hl7(&self, delivery: Delivery<'_>) -> Receipt {
        let parsed = match delivery.too_large {
            Some((size, limit)) => Err(Box::new((
                hl7::salvage_header(delivery.bytes),
                Fault::reject(
                    ErrorCode::SegmentSequence,
                    "",
                    0,
                    format!("the message of {size} bytes is over the limit of {limit} bytes"),
                ),
            ))),
            None => hl7::parse(delivery.bytes),
        };
        let header = match &parsed {
            Ok(parsed) => parsed.header.clone(),
            Err(unread) => unread.0.clone(),
        };
        let no_feed = |header: Header, fault: Fault| {
            crate::telemetry::meters::feed_message("unknown_sender");
            tracing::warn!(
                sending_application = %loggable(&header.sending_application),
                sending_facility = %loggable(&header.sending_facility),
                control_id = %loggable(&header.control_id),
                reason = %fault.reason,
                "refused an HL7 message of no feed"
            );
            Receipt::refuse(header, fault)
        };
        if header.sending_application.is_empty() {
            let fault = match parsed {
                Err(unread) => unread.1,
                Ok(_) => Fault::reject(
                    ErrorCode::RequiredFieldMissing,
                    "MSH",
                    3,
                    "MSH-3 (sending application) is empty",
                ),
            };
            return no_feed(header, fault);
        }
        let feed = match store::feed::for_sender(
            &self.pool,
            &header.sending_application,
            &header.sending_facility,
            &header.control_id,
        )
        .await
        {
            Ok(Some(feed)) => feed,
            Ok(None) => {
                let fault = Fault::reject(
                    ErrorCode::UnknownKeyIdentifier,
                    "MSH",
                    3,
                    "MSH-3 and MSH-4 name no live feed",
                );
                return no_feed(header, fault);
            }
            Err(error) => return unavailable(header, &error),
        };
        // A feed pinned to client certificates knows nothing of a message
        // on any other connection: anyone could have sent it, so it is not
        // the feed's to list.
        if !presented_pinned(&feed, &delivery) {
            let fault = Fault::reject(
                ErrorCode::UnknownKeyIdentifier,
                "MSH",
                3,
                "the feed takes messages only over TLS with one of its client certificates",
            );
            return no_feed(header, fault);
        }
        // A message over the limit is not read again.
        let retry = delivery.too_large.is_none().then_some(delivery.bytes);
        let outcome = self.settle(&feed, parsed, retry).await;
        match outcome {
            Ok((tallied, receipt)) => {
                self.feed_tally.add(feed.organisation_id, feed.id, tallied);
                if let Some(fault) = &receipt.fault {
                    tracing::info!(
                        feed = %feed.code,
                        control_id = %receipt.header.control_id,
                        acknowledgement = receipt.acknowledgement.code(),
                        reason = %fault.reason,
                        "refused an HL7 message"
                    );
                }
                receipt
            }
            Err(error) => unavailable(header, &error),
        }
    }

    /// What becomes of a message of `feed`; `Err` when the database failed
    /// and nothing could be settled.
    async fn settle(
        &self,
        feed: &SenderFeed,
        parsed: std::result::Result<hl7::Parsed, hl7::Unread>,
        retry: Option<&[u8]>,
    ) -> Result<(Tallied, Receipt)> {
        let Mapping::Hl7v2(mapping) = &feed.mapping else {
            return Err(Error::internal(
                "an HL7 v2 sender's feed has no HL7 v2 mapping",
            ));
        };
        // A sender that uses a character set without naming it: read again
        // in the one its feed gives.
        let parsed = match (parsed, retry, mapping.default_charset()) {
            (Err(_), Some(bytes), Some(default)) => hl7::parse_with(bytes, Some(default)),
            (parsed, _, _) => parsed,
        };
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(unread) => {
                let (header, fault) = *unread;
                return self.reject(feed, header, fault).await;
            }
        };
        let header = parsed.header.clone();
        if feed.settled {
            return Ok((Tallied::Duplicate, Receipt::accept(header)));
        }
        let zone = time_zone(&feed.time_zone)?;
        match hl7::map(&parsed, mapping, &feed.code, zone, Utc::now()) {
            Err(fault) => self.reject(feed, header, fault).await,
            Ok(Action::Ignore) => Ok((Tallied::Ignored, Receipt::accept(header))),
            Ok(Action::Store(moment)) => {
                match self
                    .group_commit
                    .record(feed.organisation_id, *moment)
                    .await
                {
                    Ok(recorded) if recorded.duplicate => {
                        Ok((Tallied::Duplicate, Receipt::accept(header)))
                    }
                    Ok(_) => Ok((Tallied::Accepted, Receipt::accept(header))),
                    // The control id stored other content before: an engine
                    // that rebuilt the message it resends. Nothing is
                    // stored twice.
                    Err(Error::AlreadyExists { .. }) => {
                        Ok((Tallied::Duplicate, Receipt::accept(header)))
                    }
                    Err(error) => match refusal(&error) {
                        Some(fault) => self.reject(feed, header, fault).await,
                        None => Err(error),
                    },
                }
            }
            Ok(Action::Withdraw {
                journey_id,
                cancelled,
            }) => {
                let org = feed.organisation_id;
                let mut tx = store::begin_for(&self.pool, org).await?;
                let withdrawn = store::feed::withdraw(
                    &mut tx,
                    org,
                    feed.id,
                    &feed.code,
                    &journey_id,
                    cancelled,
                    &header.control_id,
                )
                .await?;
                tx.commit().await?;
                if !withdrawn.is_empty() {
                    self.rollups.changed(org, withdrawn.len());
                }
                tracing::info!(
                    feed = %feed.code,
                    control_id = %header.control_id,
                    withdrawn = withdrawn.len(),
                    "a cancel withdrew encounters"
                );
                Ok((Tallied::Accepted, Receipt::accept(header)))
            }
        }
    }

    /// Lists a refused message for the admin and says so to the sender.
    async fn reject(
        &self,
        feed: &SenderFeed,
        header: Header,
        fault: Fault,
    ) -> Result<(Tallied, Receipt)> {
        let rejection = Rejection {
            id: Uuid::now_v7(),
            control_id: header.control_id.clone(),
            receive_time: Utc::now(),
            acknowledgement: fault.acknowledgement,
            segment: fault.segment.clone(),
            field: i32::try_from(fault.field).unwrap_or(0),
            reason: fault.reason.clone(),
        };
        let org = feed.organisation_id;
        let mut tx = store::begin_for(&self.pool, org).await?;
        store::feed::insert_rejection(&mut tx, org, feed.id, &rejection).await?;
        tx.commit().await?;
        Ok((Tallied::Rejected, Receipt::refuse(header, fault)))
    }

    /// What `message` would do for the HL7 v2 feed `feed` of `org`,
    /// storing nothing.
    pub(super) async fn preview_hl7(
        &self,
        org: Uuid,
        feed: &Feed,
        mapping: &Hl7v2Mapping,
        zone: Tz,
        message: &str,
    ) -> Result<FeedPreview> {
        let parsed = match hl7::parse_with(message.as_bytes(), mapping.default_charset()) {
            Ok(parsed) => parsed,
            Err(unread) => {
                let (header, fault) = *unread;
                return Ok(refused_preview(header.control_id, &fault));
            }
        };
        let control_id = parsed.header.control_id.clone();
        let accepted = |outcome| FeedPreview {
            acknowledgement: Acknowledgement::Accept.code().to_owned(),
            control_id: control_id.clone(),
            outcome,
        };
        Ok(
            match hl7::map(&parsed, mapping, &feed.code, zone, Utc::now()) {
                Ok(Action::Store(moment)) => accepted(PreviewOutcome::Store(vec![*moment])),
                Ok(Action::Withdraw {
                    journey_id,
                    cancelled,
                }) => {
                    let mut tx = store::begin_for(&self.pool, org).await?;
                    let target = store::feed::cancelled_encounter(
                        &mut tx,
                        org,
                        &feed.code,
                        &journey_id,
                        cancelled,
                    )
                    .await?;
                    tx.commit().await?;
                    accepted(PreviewOutcome::Withdraw(
                        target.map(|(_, id)| id).into_iter().collect(),
                    ))
                }
                Ok(Action::Ignore) => accepted(PreviewOutcome::Ignore),
                Err(fault) => refused_preview(control_id, &fault),
            },
        )
    }
}

fn refused_preview(control_id: String, fault: &Fault) -> FeedPreview {
    FeedPreview {
        acknowledgement: fault.acknowledgement.code().to_owned(),
        control_id,
        outcome: PreviewOutcome::Refuse {
            element: fault.segment.clone(),
            field: fault.field,
            reason: fault.reason.clone(),
        },
    }
}

/// The sender's fault in an encounter the core refused, as an AE; `None`
/// for the server's own trouble.
fn refusal(error: &Error) -> Option<Fault> {
    if !matches!(
        error,
        Error::NotFound { .. } | Error::FailedPrecondition { .. } | Error::InvalidArgument(_)
    ) {
        return None;
    }
    Some(Fault::error(
        ErrorCode::TableValueNotFound,
        "",
        0,
        format!(
            "the mapped encounter was refused: {}",
            error.public_message()
        ),
    ))
}

/// Whether the delivery came with a certificate `feed` pins, when it pins
/// any.
fn presented_pinned(feed: &SenderFeed, delivery: &Delivery<'_>) -> bool {
    let Mapping::Hl7v2(mapping) = &feed.mapping else {
        return false;
    };
    let pinned = &mapping.client_certificates;
    pinned.is_empty()
        || delivery
            .client_certificate
            .is_some_and(|presented| pinned.iter().any(|p| p == presented))
}

/// A value a stranger sent, fit for a log line: its first 64 characters,
/// control characters replaced.
fn loggable(value: &str) -> String {
    value
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The server could not settle the message: AR, so that the engine sends
/// it again later; nothing is listed, there is nothing to fix.
fn unavailable(header: Header, error: &Error) -> Receipt {
    tracing::error!(
        control_id = %header.control_id,
        error = %error,
        "could not settle an HL7 message"
    );
    crate::telemetry::meters::feed_message("unavailable");
    Receipt::refuse(
        header,
        Fault::reject(
            ErrorCode::ApplicationInternalError,
            "",
            0,
            "the server cannot store messages now; send it again later",
        ),
    )
}
