//! New recovery cases as they open, from PostgreSQL's LISTEN/NOTIFY, and
//! the relay that sends them to one watcher.

use std::{
    ops::ControlFlow,
    sync::{Arc, OnceLock},
    time::Duration,
};

use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::{broadcast, mpsc, watch};
use uuid::Uuid;

use crate::{
    auth::key_cache::KeyWatch,
    domain::recovery::RecoveryCase,
    error::{Error, Result},
    store,
};

/// The channel the database announces new cases on (see the migration's
/// `verdad_notify_recovery_case`).
const CHANNEL: &str = "verdad_recovery_case";
/// How many announcements a slow watcher may fall behind before it is told.
const FEED_CAPACITY: usize = 1024;
/// How long a new watch waits for the feed to listen.
const LISTEN_WAIT: Duration = Duration::from_secs(5);

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
    pub(super) async fn subscribe(&self) -> Result<broadcast::Receiver<CaseOpened>> {
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

/// Why a watch ends when its server stops.
const SHUTTING_DOWN: &str =
    "the server is shutting down; watch again, on another server or once this one is back";

/// Sends a watcher the new cases of its organisation until it goes away,
/// its key is revoked or the server stops. The last two end the watch with
/// an error (UNAUTHENTICATED, UNAVAILABLE), so that the watcher can tell
/// them from an end it chose; a watcher that does not read is waited for
/// no longer than it takes either to happen.
pub(super) async fn relay(
    pool: PgPool,
    org: Uuid,
    touchpoint_id: Option<Uuid>,
    mut key: KeyWatch,
    mut events: broadcast::Receiver<CaseOpened>,
    sender: mpsc::Sender<Result<RecoveryCase>>,
    mut stopping: watch::Receiver<bool>,
) {
    let revoked = key.revoked();
    tokio::pin!(revoked);
    // The case to send next, if any: while one waits for room, no new
    // event is taken.
    let mut next: Option<RecoveryCase> = None;
    loop {
        let sending = async {
            match &next {
                Some(case) => sender.send(Ok(case.clone())).await.is_ok(),
                None => std::future::pending().await,
            }
        };
        let ending = tokio::select! {
            () = sender.closed() => return,
            _ = stopping.changed() => Error::Unavailable {
                message: SHUTTING_DOWN.to_owned(),
            },
            error = &mut revoked => error,
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
) -> ControlFlow<Option<Error>, Option<RecoveryCase>> {
    let opened = match event {
        Ok(opened) if opened.organisation_id == org => opened,
        Ok(_) => return ControlFlow::Continue(None),
        Err(broadcast::error::RecvError::Lagged(missed)) => {
            return ControlFlow::Break(Some(Error::WatchFellBehind { missed }));
        }
        Err(broadcast::error::RecvError::Closed) => return ControlFlow::Break(None),
    };
    let case = match load(pool, org, opened.case_id).await {
        Ok(Some(case)) => case,
        // Erased (or rolled back) since: nothing to show.
        Ok(None) => return ControlFlow::Continue(None),
        Err(error) => return ControlFlow::Break(Some(error)),
    };
    if touchpoint_id.is_some_and(|id| id != case.touchpoint.id) {
        return ControlFlow::Continue(None);
    }
    ControlFlow::Continue(Some(case))
}

async fn load(pool: &PgPool, org: Uuid, id: Uuid) -> Result<Option<RecoveryCase>> {
    let mut tx = store::begin_for(pool, org).await?;
    let case = store::recovery::get(&mut tx, org, id, false).await?;
    tx.commit().await?;
    Ok(case)
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
