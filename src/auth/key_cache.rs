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
//!
//! Streams outlive their authentication: a [`KeyWatch`] asks again about
//! a stream's key whenever a revocation is heard, so that revoking a key
//! also ends the streams it opened.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use sqlx::{PgPool, postgres::PgListener};
use tokio::{sync::watch, time::Instant};

use crate::{
    domain::api_key::Principal,
    error::{Error, Result},
    store,
};

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
/// How often an open stream asks the database about its key while
/// revocations cannot be heard.
const UNHEARD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Shared by every call; cloning it shares the entries.
#[derive(Clone)]
pub struct KeyCache {
    inner: Arc<Inner>,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                entries: Mutex::default(),
                generation: AtomicU64::default(),
                listening: AtomicBool::default(),
                forgotten: watch::Sender::new(0),
            }),
        }
    }
}

struct Inner {
    entries: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
    /// Bumped whenever every key is forgotten; a lookup that began before a
    /// bump must not remember what it read.
    generation: AtomicU64,
    /// Whether the database connection that hears revocations listens.
    listening: AtomicBool,
    /// The generation again, for open streams to wait on (see
    /// [`KeyWatch`]).
    forgotten: watch::Sender<u64>,
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
        if !self.is_listening() {
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
        let generation = self.inner.generation.fetch_add(1, Ordering::SeqCst) + 1;
        entries.clear();
        self.inner.forgotten.send_replace(generation);
    }

    fn is_listening(&self) -> bool {
        self.inner.listening.load(Ordering::SeqCst)
    }

    /// A watch on the key of `principal`, for a stream it opens.
    pub fn watch(&self, pool: PgPool, principal: Principal) -> KeyWatch {
        let mut forgotten = self.inner.forgotten.subscribe();
        forgotten.mark_unchanged();
        KeyWatch {
            cache: self.clone(),
            pool,
            principal,
            forgotten,
            asked: false,
        }
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
        // The flag first: a stream woken by the forgetting must find it
        // as it now is, to ask on every batch (or every second) when the
        // listening stopped.
        self.inner.listening.store(listening, Ordering::SeqCst);
        self.forget(&mut entries);
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

/// Ends what a key opened when the key is revoked: a stream authenticated
/// once, when it opened, asks again whenever this server heard that some key
/// was revoked, and on every batch (or every second) while revocations
/// cannot be heard, as a unary call would.
pub struct KeyWatch {
    cache: KeyCache,
    pool: PgPool,
    principal: Principal,
    forgotten: watch::Receiver<u64>,
    /// Whether the database was asked since the watch began: a revocation
    /// between the call's authentication and the watch is heard by no one.
    asked: bool,
}

impl KeyWatch {
    /// Fails with UNAUTHENTICATED if the key was revoked. Asks the database
    /// the first time, and then only when a revocation was heard since the
    /// last check, or when none can be heard.
    pub async fn check(&mut self) -> Result<()> {
        let heard = self.forgotten.has_changed().unwrap_or(true);
        if !self.asked || heard || !self.cache.is_listening() {
            self.forgotten.mark_unchanged();
            self.ask().await?;
            self.asked = true;
        }
        Ok(())
    }

    /// Completes when the key is found revoked, with the error to end the
    /// stream with (or with the database's error, when it cannot be asked).
    pub async fn revoked(&mut self) -> Error {
        if let Err(error) = self.check().await {
            return error;
        }
        loop {
            if self.cache.is_listening() {
                if self.forgotten.changed().await.is_err() {
                    // The cache is gone with the server: nothing more to hear.
                    return std::future::pending().await;
                }
            } else {
                tokio::time::sleep(UNHEARD_CHECK_INTERVAL).await;
            }
            if let Err(error) = self.ask().await {
                return error;
            }
        }
    }

    async fn ask(&self) -> Result<()> {
        let org = self.principal.organisation_id;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let active = store::api_key::is_active(&mut tx, org, self.principal.key_id).await?;
        tx.commit().await?;
        if active {
            Ok(())
        } else {
            Err(Error::Unauthenticated {
                reason: "API_KEY_REVOKED",
                message: "the api key was revoked while the stream was open; \
                          what was stored before stays stored",
            })
        }
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
