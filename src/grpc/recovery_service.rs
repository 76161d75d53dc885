//! `verdad.v1.RecoveryService`, and the feed that tells watchers of new
//! cases.

use std::{
    ops::ControlFlow,
    pin::Pin,
    sync::{Arc, OnceLock},
    time::Duration,
};

use chrono::Utc;
use prost_types::FieldMask;
use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    authorize,
    convert::{status_from_proto, status_to_proto},
    enum_field,
    field_mask::MaskRules,
    item_bytes, named_touchpoint, page_budget, parse_id, proto_id, required_enum, respond,
    timestamp, touchpoint_filter,
};
use crate::{
    domain::{
        encounter::{reference, satisfaction},
        paging::{PageToken, TokenKey, page_size, split_page},
        recovery::{
            ASSIGNEE_MAX_CHARS, ApplyError, CaseChanges, CaseFilter, RESOLUTION_NOTE_MAX_CHARS,
            RecoveryCase, apply,
        },
        role::Access,
        text::optional_text,
        violation::{FieldViolation, Violations},
    },
    error::{Error, Result},
    auth::key_cache::{KeyCache, KeyWatch},
    proto::verdad::v1 as pb,
    store,
};

/// The channel the database announces new cases on (see the migration's
/// `verdad_notify_recovery_case`).
const CHANNEL: &str = "verdad_recovery_case";
/// How many announcements a slow watcher may fall behind before it is told.
const FEED_CAPACITY: usize = 1024;
/// How long a new watch waits for the feed to listen.
const LISTEN_WAIT: Duration = Duration::from_secs(5);

const MASK: MaskRules = MaskRules {
    mutable: &[
        "assignee",
        "status",
        "resolution_note",
        "follow_up_satisfaction",
    ],
    fixed: &[
        "id",
        "encounter_id",
        "touchpoint_id",
        "touchpoint_code",
        "journey_id",
        "open_time",
        "due_time",
        "resolve_time",
        "original_satisfaction",
        "overdue",
        "failure_reasons",
        "update_time",
    ],
    aliases: &[],
};

/// A new case, as the database announced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseOpened {
    pub organisation_id: Uuid,
    pub case_id: Uuid,
}

/// New cases of every organisation, from PostgreSQL's LISTEN/NOTIFY: every
/// replica listens, so a watcher on any replica sees the cases any replica
/// opened. The listening connection is made when the first watcher comes,
/// so a server nobody watches holds none.
#[derive(Clone)]
pub struct RecoveryFeed {
    inner: Arc<FeedInner>,
}

struct FeedInner {
    pool: PgPool,
    sender: broadcast::Sender<CaseOpened>,
    /// True while the database connection listens.
    listening: watch::Sender<bool>,
    task: OnceLock<tokio::task::JoinHandle<()>>,
}

/// Why a watch cannot begin while the database does not answer.
const NOT_LISTENING: &str =
    "cannot watch new recovery cases: the database does not answer; try again";

impl RecoveryFeed {
    pub fn new(pool: PgPool) -> Self {
        let (sender, _) = broadcast::channel(FEED_CAPACITY);
        let (listening, _) = watch::channel(false);
        Self {
            inner: Arc::new(FeedInner {
                pool,
                sender,
                listening,
                task: OnceLock::new(),
            }),
        }
    }

    /// Subscribes to new cases once the feed listens, so that every case
    /// opened after this returns reaches the subscriber.
    async fn subscribe(&self) -> Result<broadcast::Receiver<CaseOpened>> {
        let receiver = self.inner.sender.subscribe();
        let mut listening = self.inner.listening.subscribe();
        self.inner.task.get_or_init(|| {
            tokio::spawn(listen(
                self.inner.pool.clone(),
                self.inner.sender.clone(),
                self.inner.listening.clone(),
            ))
        });
        match tokio::time::timeout(LISTEN_WAIT, listening.wait_for(|l| *l)).await {
            Ok(Ok(_)) => Ok(receiver),
            _ => Err(Error::Unavailable {
                message: NOT_LISTENING.to_owned(),
            }),
        }
    }

    /// Stops listening.
    pub fn stop(&self) {
        if let Some(task) = self.inner.task.get() {
            task.abort();
        }
    }
}

/// Relays the database's announcements, reconnecting after failures.
/// Announcements made while the connection is down are lost to watchers;
/// ListRecoveryCases still shows those cases.
async fn listen(
    pool: PgPool,
    sender: broadcast::Sender<CaseOpened>,
    listening: watch::Sender<bool>,
) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for new recovery cases; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(CHANNEL).await {
            tracing::warn!(%error, "cannot listen for new recovery cases; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        listening.send_replace(true);
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    if let Some(opened) = parse_payload(notification.payload()) {
                        // No watcher is no error.
                        let _ = sender.send(opened);
                    }
                }
                Ok(None) | Err(_) => {
                    listening.send_replace(false);
                    tracing::warn!("lost the recovery case feed; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

/// "<organisation id> <case id>".
fn parse_payload(payload: &str) -> Option<CaseOpened> {
    let (organisation, case) = payload.split_once(' ')?;
    Some(CaseOpened {
        organisation_id: Uuid::try_parse(organisation).ok()?,
        case_id: Uuid::try_parse(case).ok()?,
    })
}

pub struct RecoveryApi {
    pool: PgPool,
    tokens: TokenKey,
    feed: RecoveryFeed,
    keys: KeyCache,
    stopping: watch::Receiver<bool>,
}

type CaseStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchRecoveryCasesResponse, Status>> + Send>>;

impl RecoveryApi {
    /// `stopping` turns true when the server shuts down: watches end then,
    /// rather than holding the shutdown for its whole grace period.
    pub fn new(
        pool: PgPool,
        tokens: TokenKey,
        feed: RecoveryFeed,
        keys: KeyCache,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        Self {
            pool,
            tokens,
            feed,
            keys,
            stopping,
        }
    }

    async fn list(
        &self,
        request: Request<pb::ListRecoveryCasesRequest>,
    ) -> Result<pb::ListRecoveryCasesResponse> {
        let principal = authorize(&request, Access::Read)?;
        let org = principal.organisation_id;
        let budget = page_budget(&request);
        let request = request.into_inner();
        let mut v = Violations::new();
        let size = v.check(page_size(request.page_size));
        let status = v.check(enum_field("status", request.status, status_from_proto));
        let touchpoint = v.check(touchpoint_filter(
            "touchpoint",
            &request.touchpoint_id,
            &request.touchpoint_code,
        ));
        let (size, status, touchpoint) = v.finish(|| Some((size?, status?, touchpoint?)))?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let filter = CaseFilter {
            status,
            overdue_only: request.overdue_only,
            touchpoint_id: named_touchpoint(&mut tx, org, touchpoint.as_ref()).await?,
        };
        let query = self
            .tokens
            .query(principal.organisation_id, &filter.fingerprint());
        let after = PageToken::decode(&request.page_token, &query)?.map(|t| t.after);
        let rows = store::recovery::list(&mut tx, org, &filter, after, size + 1).await?;
        tx.commit().await?;
        let rows: Vec<pb::RecoveryCase> = rows.into_iter().map(to_proto).collect();
        let (recovery_cases, next_page_token) =
            split_page(rows, size, budget, &query, |c| proto_id(&c.id), item_bytes);
        Ok(pb::ListRecoveryCasesResponse {
            recovery_cases,
            next_page_token,
        })
    }

    async fn get(
        &self,
        request: Request<pb::GetRecoveryCaseRequest>,
    ) -> Result<pb::GetRecoveryCaseResponse> {
        let principal = authorize(&request, Access::Read)?;
        let org = principal.organisation_id;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let case = store::recovery::get(&mut tx, org, id, false)
            .await?
            .ok_or_else(|| Error::not_found("recovery case", id.to_string()))?;
        tx.commit().await?;
        Ok(pb::GetRecoveryCaseResponse {
            recovery_case: Some(to_proto(case)),
        })
    }

    async fn update(
        &self,
        request: Request<pb::UpdateRecoveryCaseRequest>,
    ) -> Result<pb::UpdateRecoveryCaseResponse> {
        let principal = authorize(&request, Access::Manage)?;
        let org = principal.organisation_id;
        let request = request.into_inner();
        let case = request
            .recovery_case
            .ok_or_else(|| Error::invalid("recovery_case", "is required"))?;
        let id = parse_id("recovery_case.id", &case.id)?;
        let changes = changes(&case, request.update_mask)?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let mut stored = store::recovery::get(&mut tx, org, id, true)
            .await?
            .ok_or_else(|| Error::not_found("recovery case", id.to_string()))?;
        apply("recovery_case", &mut stored, changes, Utc::now()).map_err(|e| match e {
            ApplyError::Invalid(violation) => Error::from(violation),
            ApplyError::Refused(refusal) => Error::from(refusal),
        })?;
        let updated = store::recovery::update(&mut tx, org, &stored).await?;
        tx.commit().await?;
        Ok(pb::UpdateRecoveryCaseResponse {
            recovery_case: Some(to_proto(updated)),
        })
    }

    async fn watch(&self, request: Request<pb::WatchRecoveryCasesRequest>) -> Result<CaseStream> {
        let principal = authorize(&request, Access::Read)?;
        let org = principal.organisation_id;
        let request = request.get_ref();
        let touchpoint = touchpoint_filter(
            "touchpoint",
            &request.touchpoint_id,
            &request.touchpoint_code,
        )?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let touchpoint_id = named_touchpoint(&mut tx, org, touchpoint.as_ref()).await?;
        tx.commit().await?;
        let events = self.feed.subscribe().await?;
        let (sender, receiver) = mpsc::channel(16);
        let key = self.keys.watch(self.pool.clone(), principal);
        tokio::spawn(relay(
            self.pool.clone(),
            org,
            touchpoint_id,
            key,
            events,
            sender,
            self.stopping.clone(),
        ));
        Ok(Box::pin(ReceiverStream::new(receiver)))
    }
}

/// Why a watch ends when its server stops.
const SHUTTING_DOWN: &str =
    "the server is shutting down; watch again, on another server or once this one is back";

/// Sends a watcher the new cases of its organisation until it goes away,
/// its key is revoked or the server stops. The last two end the watch with
/// an error (UNAUTHENTICATED, UNAVAILABLE), so that the watcher can tell
/// them from an end it chose; a watcher that does not read is waited for
/// no longer than it takes either to happen.
async fn relay(
    pool: PgPool,
    org: Uuid,
    touchpoint_id: Option<Uuid>,
    mut key: KeyWatch,
    mut events: broadcast::Receiver<CaseOpened>,
    sender: mpsc::Sender<Result<pb::WatchRecoveryCasesResponse, Status>>,
    mut stopping: watch::Receiver<bool>,
) {
    let revoked = key.revoked();
    tokio::pin!(revoked);
    // The case to send next, if any: while one waits for room, no new
    // event is taken.
    let mut next: Option<pb::WatchRecoveryCasesResponse> = None;
    loop {
        let sending = async {
            match &next {
                Some(message) => sender.send(Ok(message.clone())).await.is_ok(),
                None => std::future::pending().await,
            }
        };
        let ending = tokio::select! {
            () = sender.closed() => return,
            _ = stopping.changed() => Status::from(Error::Unavailable {
                message: SHUTTING_DOWN.to_owned(),
            }),
            error = &mut revoked => Status::from(error),
            sent = sending => {
                if !sent {
                    return;
                }
                next = None;
                continue;
            }
            event = events.recv(), if next.is_none() => {
                match relay_one(&pool, org, touchpoint_id, event).await {
                    ControlFlow::Continue(Some(message)) => {
                        next = Some(message);
                        continue;
                    }
                    ControlFlow::Continue(None) => continue,
                    ControlFlow::Break(Some(status)) => status,
                    ControlFlow::Break(None) => return,
                }
            }
        };
        // The watcher hears why, unless it stopped reading for good.
        let _ = tokio::time::timeout(LAST_WORD, sender.send(Err(ending))).await;
        return;
    }
}

/// How long the status that ends a watch waits for room in its queue.
const LAST_WORD: Duration = Duration::from_secs(5);

/// The case `event` announces, if it is one for the watcher; `Break` ends
/// the watch, with the status to end it with.
async fn relay_one(
    pool: &PgPool,
    org: Uuid,
    touchpoint_id: Option<Uuid>,
    event: Result<CaseOpened, broadcast::error::RecvError>,
) -> ControlFlow<Option<Status>, Option<pb::WatchRecoveryCasesResponse>> {
    let opened = match event {
        Ok(opened) if opened.organisation_id == org => opened,
        Ok(_) => return ControlFlow::Continue(None),
        Err(broadcast::error::RecvError::Lagged(missed)) => {
            return ControlFlow::Break(Some(Status::aborted(format!(
                "the watch fell {missed} announcements behind; \
                 list the cases with ListRecoveryCases and watch again"
            ))));
        }
        Err(broadcast::error::RecvError::Closed) => return ControlFlow::Break(None),
    };
    let case = match load(pool, org, opened.case_id).await {
        Ok(Some(case)) => case,
        // Erased (or rolled back) since: nothing to show.
        Ok(None) => return ControlFlow::Continue(None),
        Err(error) => return ControlFlow::Break(Some(Status::from(error))),
    };
    if touchpoint_id.is_some_and(|id| id != case.touchpoint.id) {
        return ControlFlow::Continue(None);
    }
    ControlFlow::Continue(Some(pb::WatchRecoveryCasesResponse {
        recovery_case: Some(to_proto(case)),
    }))
}

async fn load(pool: &PgPool, org: Uuid, id: Uuid) -> Result<Option<RecoveryCase>> {
    let mut tx = store::begin_for(pool, org).await?;
    let case = store::recovery::get(&mut tx, org, id, false).await?;
    tx.commit().await?;
    Ok(case)
}

/// Checks an update: the mask and the new values of the fields it names.
fn changes(
    case: &pb::RecoveryCase,
    mask: Option<FieldMask>,
) -> Result<CaseChanges, Vec<FieldViolation>> {
    let given = [
        !case.assignee.is_empty(),
        case.status != 0,
        !case.resolution_note.is_empty(),
        case.follow_up_satisfaction.is_some(),
    ];
    let paths = MASK.paths(mask, &given)?;
    let mut v = Violations::new();
    let mut changes = CaseChanges::default();
    for path in paths {
        match path {
            "assignee" => {
                changes.assignee = v
                    .check(reference(
                        "recovery_case.assignee",
                        &case.assignee,
                        ASSIGNEE_MAX_CHARS,
                        false,
                    ))
                    .map(Option::unwrap_or_default)
            }
            "status" => {
                changes.status = v.check(required_enum(
                    "recovery_case.status",
                    case.status,
                    status_from_proto,
                ))
            }
            "resolution_note" => {
                changes.resolution_note = v.check(optional_text(
                    "recovery_case.resolution_note",
                    &case.resolution_note,
                    RESOLUTION_NOTE_MAX_CHARS,
                ))
            }
            "follow_up_satisfaction" => {
                changes.follow_up_satisfaction = v.check(satisfaction(
                    "recovery_case.follow_up_satisfaction",
                    case.follow_up_satisfaction,
                ))
            }
            _ => {}
        }
    }
    v.finish(|| Some(changes))
}

fn to_proto(case: RecoveryCase) -> pb::RecoveryCase {
    let overdue = case.is_overdue(Utc::now());
    pb::RecoveryCase {
        id: case.id.to_string(),
        encounter_id: case.encounter_id.to_string(),
        touchpoint_id: case.touchpoint.id.to_string(),
        touchpoint_code: case.touchpoint.code,
        journey_id: case.journey_id,
        status: status_to_proto(case.status).into(),
        assignee: case.assignee,
        open_time: Some(timestamp(case.open_time)),
        due_time: Some(timestamp(case.due_time)),
        resolve_time: case.resolve_time.map(timestamp),
        resolution_note: case.resolution_note,
        original_satisfaction: case.original_satisfaction,
        follow_up_satisfaction: case.follow_up_satisfaction,
        overdue,
        failure_reasons: case.failure_reasons,
        update_time: Some(timestamp(case.update_time)),
    }
}

#[tonic::async_trait]
impl pb::recovery_service_server::RecoveryService for RecoveryApi {
    async fn list_recovery_cases(
        &self,
        request: Request<pb::ListRecoveryCasesRequest>,
    ) -> Result<Response<pb::ListRecoveryCasesResponse>, Status> {
        respond(self.list(request).await)
    }

    async fn get_recovery_case(
        &self,
        request: Request<pb::GetRecoveryCaseRequest>,
    ) -> Result<Response<pb::GetRecoveryCaseResponse>, Status> {
        respond(self.get(request).await)
    }

    async fn update_recovery_case(
        &self,
        request: Request<pb::UpdateRecoveryCaseRequest>,
    ) -> Result<Response<pb::UpdateRecoveryCaseResponse>, Status> {
        respond(self.update(request).await)
    }

    type WatchRecoveryCasesStream = CaseStream;

    async fn watch_recovery_cases(
        &self,
        request: Request<pb::WatchRecoveryCasesRequest>,
    ) -> Result<Response<Self::WatchRecoveryCasesStream>, Status> {
        respond(self.watch(request).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchs_unavailable_message_is_one_sentence() {
        assert!(!NOT_LISTENING.contains("  "), "{NOT_LISTENING:?}");
        assert!(NOT_LISTENING.ends_with("try again"));
    }

    #[test]
    fn payloads_carry_two_ids() {
        let org = Uuid::now_v7();
        let case = Uuid::now_v7();
        assert_eq!(
            parse_payload(&format!("{org} {case}")),
            Some(CaseOpened {
                organisation_id: org,
                case_id: case
            })
        );
        assert_eq!(parse_payload("garbage"), None);
        assert_eq!(parse_payload(&format!("{org} x")), None);
    }
}
