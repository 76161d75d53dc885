//! Delivering the outbox: each server's dispatcher finds the webhooks whose
//! next event is due, leases each from the database so that one server at a
//! time delivers to it (its events go out in order), and sends, retries or
//! gives up per `domain::webhook`. Events are written to the outbox by the
//! transactions that cause them (see the migration `webhooks`), so a server
//! that stops loses none: whichever server runs next delivers them.

pub mod sender;

use std::{
    collections::HashSet,
    sync::{Arc, LazyLock, Mutex},
    time::Duration,
};

use chrono::Utc;
use sqlx::PgPool;
use tokio::sync::{Notify, watch};
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::{
    domain::webhook::{FIRST_RETRY, after_failure},
    error::Result,
    store::{
        self,
        webhook::{AttemptOutcome, Outgoing},
    },
    telemetry::meters,
};
use sender::{Message, Sender};

/// Bumped when this process committed events, so that its dispatchers
/// look at once. Events other servers commit are found by the poll: a
/// LISTEN of its own would hold a database connection for good.
static COMMITTED: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::channel(0).0);

/// Tells this process's dispatchers that a transaction which may have
/// queued events has committed.
pub fn wake() {
    COMMITTED.send_modify(|n| *n = n.wrapping_add(1));
}

/// How the dispatcher delivers.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// How long one attempt may take (`--webhook-timeout`).
    pub timeout: Duration,
    /// How long after the first attempt retries go on (`--webhook-retry-window`).
    pub retry_window: Duration,
    /// The wait after a first failed attempt, doubling after each.
    pub first_retry: Duration,
    /// Whether private and loopback addresses may be delivered to
    /// (`--webhook-allow-private`).
    pub allow_private: bool,
    /// How many webhooks this server delivers to at once.
    pub concurrency: usize,
    /// How often the dispatcher looks for due retries between
    /// announcements.
    pub poll: Duration,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_RETRY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            retry_window: DEFAULT_RETRY_WINDOW,
            first_retry: FIRST_RETRY,
            allow_private: false,
            concurrency: 16,
            poll: Duration::from_secs(1),
        }
    }
}

/// The webhooks this server delivers to now.
#[derive(Clone, Default)]
struct Busy(Arc<Mutex<HashSet<Uuid>>>);

impl Busy {
    fn list(&self) -> Vec<Uuid> {
        self.lock().iter().copied().collect()
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn take(&self, id: Uuid) -> bool {
        self.lock().insert(id)
    }

    fn give_back(&self, id: Uuid) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Runs the dispatcher until `stopping` turns true; the deliveries under
/// way then finish their attempt (each within the timeout).
pub async fn dispatch(
    pool: PgPool,
    settings: WebhookSettings,
    mut stopping: watch::Receiver<bool>,
) {
    let sender = match Sender::new(settings.timeout, settings.allow_private) {
        Ok(sender) => sender,
        Err(error) => {
            tracing::error!(%error, "cannot make the webhook client: no webhooks are delivered");
            return;
        }
    };
    // A server's leases are its own: after a restart it is another owner,
    // and waits out what it held before it stopped.
    let owner = Uuid::now_v7();
    let wake = Arc::new(Notify::new());
    let mut committed = COMMITTED.subscribe();
    let busy = Busy::default();
    let tracker = TaskTracker::new();
    loop {
        if *stopping.borrow() {
            break;
        }
        let free = settings.concurrency.saturating_sub(busy.len());
        if free > 0 {
            match due(&pool, &busy, free).await {
                Ok(webhooks) => {
                    for (organisation_id, webhook_id) in webhooks {
                        if !busy.take(webhook_id) {
                            continue;
                        }
                        tracker.spawn(deliver_queue(
                            pool.clone(),
                            sender.clone(),
                            settings.clone(),
                            owner,
                            organisation_id,
                            webhook_id,
                            busy.clone(),
                            wake.clone(),
                            stopping.clone(),
                        ));
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot look for due webhook deliveries"),
            }
        }
        tokio::select! {
            () = wake.notified() => {}
            _ = committed.changed() => {}
            () = tokio::time::sleep(settings.poll) => {}
            _ = stopping.changed() => {}
        }
    }
    tracker.close();
    tracker.wait().await;
}

async fn due(pool: &PgPool, busy: &Busy, free: usize) -> Result<Vec<(Uuid, Uuid)>> {
    let mut tx = pool.begin().await?;
    let due = store::webhook::due(&mut tx, &busy.list(), free as i64).await?;
    tx.commit().await?;
    Ok(due)
}

/// Delivers a webhook's due events in order while this server holds its
/// lease, then lets it go.
#[allow(clippy::too_many_arguments)]
async fn deliver_queue(
    pool: PgPool,
    sender: Sender,
    settings: WebhookSettings,
    owner: Uuid,
    organisation_id: Uuid,
    webhook_id: Uuid,
    busy: Busy,
    wake: Arc<Notify>,
    stopping: watch::Receiver<bool>,
) {
    // Long enough for an attempt and its bookkeeping, and no longer: a
    // server that dies holding the lease holds up the webhook's events as
    // long as it has to run.
    let lease_seconds = settings.timeout.as_secs_f64() + 5.0;
    let queue = Queue {
        pool: &pool,
        organisation_id,
        webhook_id,
        owner,
    };
    match queue.lease(lease_seconds).await {
        Ok(true) => {
            while !*stopping.borrow() {
                match queue.deliver_next(&sender, &settings, lease_seconds).await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(error) => {
                        tracing::warn!(%error, %webhook_id, "webhook delivery stopped; it resumes shortly");
                        break;
                    }
                }
            }
            if let Err(error) = queue.release().await {
                tracing::warn!(%error, %webhook_id, "cannot release a webhook; its lease runs out");
            }
        }
        Ok(false) => {}
        Err(error) => tracing::warn!(%error, %webhook_id, "cannot lease a webhook"),
    }
    busy.give_back(webhook_id);
    // What was queued meanwhile is looked for at once.
    wake.notify_one();
}

struct Queue<'a> {
    pool: &'a PgPool,
    organisation_id: Uuid,
    webhook_id: Uuid,
    owner: Uuid,
}

impl Queue<'_> {
    async fn lease(&self, seconds: f64) -> Result<bool> {
        let mut tx = store::begin_for(self.pool, self.organisation_id).await?;
        let leased = store::webhook::lease(
            &mut tx,
            self.organisation_id,
            self.webhook_id,
            self.owner,
            seconds,
        )
        .await?;
        tx.commit().await?;
        Ok(leased)
    }

    async fn release(&self) -> Result<()> {
        let mut tx = store::begin_for(self.pool, self.organisation_id).await?;
        store::webhook::release(&mut tx, self.organisation_id, self.webhook_id, self.owner).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sends the oldest pending event if it is due; false when there is
    /// none to send now.
    async fn deliver_next(
        &self,
        sender: &Sender,
        settings: &WebhookSettings,
        lease_seconds: f64,
    ) -> Result<bool> {
        let mut tx = store::begin_for(self.pool, self.organisation_id).await?;
        let next = store::webhook::next(&mut tx, self.organisation_id, self.webhook_id).await?;
        tx.commit().await?;
        let Some(outgoing) = next else {
            return Ok(false);
        };
        if outgoing.next_attempt_time > Utc::now() {
            return Ok(false);
        }
        let (delivered, attempt) = sender.send(&message(&outgoing)).await;
        let outcome = if delivered {
            AttemptOutcome::Delivered
        } else {
            let first = outgoing.first_attempt_time.unwrap_or(attempt.attempt_time);
            let jitter = jitter();
            match after_failure(
                settings.first_retry,
                outgoing.attempt_count + 1,
                first,
                Utc::now(),
                settings.retry_window,
                jitter,
            ) {
                Some(at) => AttemptOutcome::RetryAt(at),
                None => AttemptOutcome::Failed,
            }
        };
        let label = match outcome {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::RetryAt(_) => "retry",
            AttemptOutcome::Failed => "failed",
        };
        meters::webhook_attempt(
            label,
            Duration::from_millis(u64::try_from(attempt.latency_ms).unwrap_or(0)),
        );
        let mut tx = store::begin_for(self.pool, self.organisation_id).await?;
        store::webhook::record_attempt(
            &mut tx,
            self.organisation_id,
            outgoing.delivery_id,
            &attempt,
            &outcome,
        )
        .await?;
        let still_ours = store::webhook::lease(
            &mut tx,
            self.organisation_id,
            self.webhook_id,
            self.owner,
            lease_seconds,
        )
        .await?;
        tx.commit().await?;
        Ok(still_ours && delivered)
    }
}

fn message(outgoing: &Outgoing) -> Message<'_> {
    Message {
        event_id: outgoing.event_id,
        event_type: &outgoing.event_type,
        event_time: outgoing.event_time,
        data: &outgoing.data,
        url: &outgoing.url,
        secret: &outgoing.secret,
        previous_secret: outgoing.previous_secret.as_deref(),
    }
}

/// A number in [-1, 1] to spread retries.
fn jitter() -> f64 {
    let mut byte = [0u8; 2];
    if getrandom::fill(&mut byte).is_err() {
        return 0.0;
    }
    f64::from(u16::from_le_bytes(byte)) / f64::from(u16::MAX) * 2.0 - 1.0
}
