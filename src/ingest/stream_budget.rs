//! The bytes of ingest-stream batches the server holds at once, across all
//! streams: read ahead of what is stored, or being stored.
//!
//! A stream's next batch is admitted when its 5-byte prefix arrives, before
//! its bytes are read: if the budget has no room for it, the stream is not
//! read until batches before it are stored, and HTTP/2's flow control holds
//! its sender back. So 80 streams of 4 MB batches wait their turn rather
//! than fill the server's memory, and a stream is read ahead as far as the
//! budget allows, so that a sender of many small batches is never left
//! with frames piling up unread in the HTTP/2 connection.
//!
//! Each batch holds its share until the stream's handler is done with it
//! ([`HeldBatches::release_next`]), or until the stream ends.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What a batch costs besides its bytes: the structures it is decoded
/// into, which for a batch of one encounter outweigh its bytes.
pub const BATCH_OVERHEAD: usize = 1024;

/// The server's budget for stream batches.
#[derive(Debug, Clone)]
pub struct StreamBudget {
    semaphore: Arc<Semaphore>,
    bytes: usize,
}

impl StreamBudget {
    /// A budget of `bytes`, which must admit at least one batch of the
    /// largest message (`largest_message` bytes).
    pub fn new(bytes: usize, largest_message: usize) -> Self {
        let bytes = bytes
            .max(largest_message + 5 + BATCH_OVERHEAD)
            .min(Semaphore::MAX_PERMITS)
            .min(u32::MAX as usize);
        Self {
            semaphore: Arc::new(Semaphore::new(bytes)),
            bytes,
        }
    }

    /// The whole budget, in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes held by batches now.
    pub fn held(&self) -> usize {
        self.bytes - self.semaphore.available_permits().min(self.bytes)
    }

    /// What a batch of `length` bytes costs.
    pub(crate) fn cost(&self, length: usize) -> usize {
        (length + 5 + BATCH_OVERHEAD).min(self.bytes)
    }

    /// Waits until the budget has room for `bytes` and takes it.
    pub(crate) async fn take(self, bytes: usize) -> OwnedSemaphorePermit {
        let bytes = u32::try_from(bytes.min(self.bytes)).unwrap_or(u32::MAX);
        let taken = self.semaphore.clone().acquire_many_owned(bytes).await;
        crate::telemetry::meters::stream_budget_held(self.held());
        match taken {
            Ok(permit) => permit,
            // The semaphore is never closed.
            Err(_) => std::future::pending().await,
        }
    }
}

/// The shares of the budget a stream's batches hold, oldest first: taken
/// when a batch's prefix arrives, given back when its handler is done with
/// it or when the stream is dropped (ended, failed, or its caller gone).
#[derive(Debug, Clone, Default)]
pub struct HeldBatches {
    inner: Arc<Held>,
}

#[derive(Debug, Default)]
struct Held {
    shares: Mutex<VecDeque<OwnedSemaphorePermit>>,
    budget: Option<StreamBudget>,
}

impl HeldBatches {
    pub(crate) fn new(budget: StreamBudget) -> Self {
        Self {
            inner: Arc::new(Held {
                shares: Mutex::default(),
                budget: Some(budget),
            }),
        }
    }

    /// Adds the shares of batches just admitted, in their order.
    pub(crate) fn hold(&self, shares: impl IntoIterator<Item = OwnedSemaphorePermit>) {
        self.inner.shares().extend(shares);
    }

    /// Gives back the share of the oldest batch still held: its handler is
    /// done with it.
    pub fn release_next(&self) {
        let released = self.inner.shares().pop_front();
        drop(released);
        self.inner.given_back();
    }
}

impl Held {
    fn shares(&self) -> std::sync::MutexGuard<'_, VecDeque<OwnedSemaphorePermit>> {
        // A panic while the lock was held leaves whole permits behind.
        self.shares
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Says how much is held now, and gives memory back once nothing is.
    fn given_back(&self) {
        if let Some(budget) = &self.budget {
            let held = budget.held();
            crate::telemetry::meters::stream_budget_held(held);
            if held == 0 {
                crate::server::memory::give_back();
            }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.shares().clear();
        self.given_back();
    }
}

/// Splits `taken` into one share per cost, in order; the last share keeps
/// what is left.
pub(crate) fn split(mut taken: OwnedSemaphorePermit, costs: &[usize]) -> Vec<OwnedSemaphorePermit> {
    let mut shares = Vec::with_capacity(costs.len());
    if let Some((_, first)) = costs.split_last() {
        for &cost in first {
            let cost = cost.min(taken.num_permits());
            if let Some(share) = taken.split(cost) {
                shares.push(share);
            }
        }
    }
    shares.push(taken);
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batches_hold_their_share_until_released_in_order() {
        let budget = StreamBudget::new(10_000, 1000);
        assert_eq!(budget.bytes(), 10_000);
        let held = HeldBatches::new(budget.clone());
        let costs = [budget.cost(100), budget.cost(2000)];
        let taken = budget.clone().take(costs.iter().sum()).await;
        held.hold(split(taken, &costs));
        assert_eq!(budget.held(), 100 + 2000 + 2 * (5 + BATCH_OVERHEAD));
        held.release_next();
        assert_eq!(budget.held(), 2000 + 5 + BATCH_OVERHEAD);
        drop(held);
        assert_eq!(budget.held(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_waits_until_there_is_room() {
        let budget = StreamBudget::new(0, 1000);
        let whole = budget.bytes();
        assert_eq!(whole, 1000 + 5 + BATCH_OVERHEAD);
        let first = budget.clone().take(whole).await;
        let waiting = tokio::spawn(budget.clone().take(10));
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        assert!(!waiting.is_finished());
        drop(first);
        let second = waiting.await.unwrap();
        assert_eq!(second.num_permits(), 10);
    }

    #[tokio::test]
    async fn a_take_is_split_one_share_per_batch() {
        let budget = StreamBudget::new(10_000, 100);
        let taken = budget.clone().take(60).await;
        let shares = split(taken, &[10, 20, 30]);
        let sizes: Vec<usize> = shares
            .iter()
            .map(OwnedSemaphorePermit::num_permits)
            .collect();
        assert_eq!(sizes, [10, 20, 30]);
    }
}
