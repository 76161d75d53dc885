//! The API keys this server has recently seen, so that a call need not ask
//! the database who its key belongs to: that query, and the pool's ping
//! when its connection went back, were two of the four round trips a
//! `RecordEncounter` call paid on average.
//!
//! A revoked key must stop working at once. The server that revokes a key
//! forgets every key before it answers; every server also listens to the
//! database's `verdad_api_keys` channel, which a trigger notifies whenever
//! a key is revoked or deleted, by any server or by `verdad admin
//! revoke-key`, and forgets every key when it hears it. While that listening connection
//! is down, a notification could be missed, so the cache is not used at
//! all: every call asks the database, as it would without a cache. An entry
//! is also never trusted for longer than [`LIFETIME`].

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use sqlx::{PgPool, postgres::PgListener};
use tokio::time::Instant;

use crate::domain::api_key::Principal;

/// The channel the trigger on `api_key` notifies.
pub const CHANNEL: &str = "verdad_api_keys";
/// How long a key is trusted without asking the database again.
const LIFETIME: Duration = Duration::from_secs(60);
/// Keys remembered at most; at the limit every key is forgotten, so that
/// callers inventing keys cannot grow the map (unknown keys are never
/// remembered anyway).
const MAX_ENTRIES: usize = 10_000;
/// How long the listener waits before it connects again after a failure.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Shared by every call; cloning it shares the entries.
#[derive(Clone, Default)]
pub struct KeyCache {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
    /// Bumped whenever every key is forgotten; a lookup that began before a
    /// bump must not remember what it read.
    generation: AtomicU64,
    /// Whether the database connection that hears revocations listens.
    listening: AtomicBool,
}

/// Where a lookup that missed stands, for [`KeyCache::remember`].
#[derive(Debug, Clone, Copy)]
pub struct Miss {
    generation: u64,
}

impl KeyCache {
    /// The principal of the key with `secret_hash`, if it is remembered and
    /// still to be trusted; otherwise a [`Miss`] to remember the database's
    /// answer with.
    pub fn get(&self, secret_hash: &[u8; 32]) -> Result<Principal, Miss> {
        // Read the generation first: a forgetting after this point makes
        // `remember` drop what the caller reads from the database.
        let miss = Miss {
            generation: self.inner.generation.load(Ordering::SeqCst),
        };
        if !self.inner.listening.load(Ordering::SeqCst) {
            return Err(miss);
        }
        let entries = self.entries();
        match entries.get(secret_hash) {
            Some((principal, since)) if since.elapsed() < LIFETIME => Ok(*principal),
            _ => Err(miss),
        }
    }

    /// Remembers a key the database knew, unless every key was forgotten
    /// since the lookup missed or revocations cannot be heard.
    pub fn remember(&self, miss: Miss, secret_hash: [u8; 32], principal: Principal) {
        let mut entries = self.entries();
        // Checked under the lock that `forget_all` takes, so that a
        // forgetting either happened before (and is seen here) or comes
        // after (and removes this entry).
        if self.inner.generation.load(Ordering::SeqCst) != miss.generation
            || !self.inner.listening.load(Ordering::SeqCst)
        {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(secret_hash, (principal, Instant::now()));
    }

    /// Forgets every key: one was revoked or deleted.
    pub fn forget_all(&self) {
        self.forget(&mut self.entries());
    }

    /// Forgets every key, under the lock `remember` checks the generation
    /// under.
    fn forget(&self, entries: &mut HashMap<[u8; 32], (Principal, Instant)>) {
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        entries.clear();
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (Principal, Instant)>> {
        // A panic while the lock was held left at worst a stale map, which
        // the next forgetting clears; the entries themselves are whole.
        self.inner
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set_listening(&self, listening: bool) {
        let mut entries = self.entries();
        self.forget(&mut entries);
        self.inner.listening.store(listening, Ordering::SeqCst);
    }

    /// Listens for revocations until the pool is closed, connecting again
    /// whenever the connection is lost. The cache is used only while it
    /// listens.
    pub async fn listen(self, pool: PgPool) {
        while !pool.is_closed() {
            if let Err(error) = self.listen_once(&pool).await {
                tracing::warn!(%error, "not listening for api key revocations; every call asks the database");
            }
            self.set_listening(false);
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    }

    /// Listens on one connection until it fails or is lost.
    async fn listen_once(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        // Whatever was remembered before now may have missed a revocation.
        self.set_listening(true);
        // `try_recv` says when the connection was lost (None), where `recv`
        // would reconnect by itself and hide that notifications were missed.
        while listener.try_recv().await?.is_some() {
            self.forget_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::domain::role::Role;

    fn principal() -> Principal {
        Principal {
            key_id: Uuid::now_v7(),
            organisation_id: Uuid::now_v7(),
            role: Role::Ingest,
        }
    }

    fn listening() -> KeyCache {
        let cache = KeyCache::default();
        cache.set_listening(true);
        cache
    }

    #[test]
    fn a_remembered_key_is_found_until_every_key_is_forgotten() {
        let cache = listening();
        let who = principal();
        let miss = cache.get(&[1; 32]).unwrap_err();
        cache.remember(miss, [1; 32], who);
        assert_eq!(cache.get(&[1; 32]).ok(), Some(who));
        assert!(cache.get(&[2; 32]).is_err());
        cache.forget_all();
        assert!(cache.get(&[1; 32]).is_err());
    }

    #[test]
    fn a_read_that_began_before_a_forgetting_is_not_remembered() {
        let cache = listening();
        let miss = cache.get(&[1; 32]).unwrap_err();
        // The key is revoked while its caller asks the database.
        cache.forget_all();
        cache.remember(miss, [1; 32], principal());
        assert!(cache.get(&[1; 32]).is_err());
    }

    #[test]
    fn nothing_is_used_or_remembered_while_not_listening() {
        let cache = KeyCache::default();
        let miss = cache.get(&[1; 32]).unwrap_err();
        cache.remember(miss, [1; 32], principal());
        assert!(cache.get(&[1; 32]).is_err());

        let cache = listening();
        let miss = cache.get(&[1; 32]).unwrap_err();
        cache.remember(miss, [1; 32], principal());
        cache.set_listening(false);
        assert!(cache.get(&[1; 32]).is_err(), "the connection was lost");
        cache.set_listening(true);
        assert!(cache.get(&[1; 32]).is_err(), "entries from before are gone");
    }

    #[tokio::test(start_paused = true)]
    async fn an_entry_is_trusted_for_its_lifetime_only() {
        let cache = listening();
        let miss = cache.get(&[1; 32]).unwrap_err();
        cache.remember(miss, [1; 32], principal());
        tokio::time::advance(LIFETIME - Duration::from_secs(1)).await;
        assert!(cache.get(&[1; 32]).is_ok());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(cache.get(&[1; 32]).is_err());
    }
}
