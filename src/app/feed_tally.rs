//! The counts of what each feed received, kept in memory and written once
//! a second: a write per message would double the database's work for a
//! figure people read now and then. A crash loses at most the last
//! second's counts, never a message.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

use crate::store::{self, feed::CountsDelta};

/// How often the counts are written.
const EVERY: Duration = Duration::from_secs(1);

/// What became of one message, for its feed's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tallied {
    Accepted,
    Duplicate,
    Ignored,
    Rejected,
}

impl Tallied {
    pub fn as_str(self) -> &'static str {
        match self {
            Tallied::Accepted => "accepted",
            Tallied::Duplicate => "duplicate",
            Tallied::Ignored => "ignored",
            Tallied::Rejected => "rejected",
        }
    }
}

/// Counts not written yet, by organisation and feed; cloning shares them.
#[derive(Clone, Default)]
pub struct FeedTally {
    pending: Arc<Mutex<HashMap<(Uuid, Uuid), CountsDelta>>>,
}

impl FeedTally {
    pub fn add(&self, organisation_id: Uuid, feed_id: Uuid, tallied: Tallied) {
        crate::telemetry::meters::feed_message(tallied.as_str());
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        let mut one = CountsDelta {
            last_message_time: Some(Utc::now()),
            ..CountsDelta::default()
        };
        match tallied {
            Tallied::Accepted => one.accepted = 1,
            Tallied::Duplicate => one.duplicates = 1,
            Tallied::Ignored => one.ignored = 1,
            Tallied::Rejected => one.rejected = 1,
        }
        pending
            .entry((organisation_id, feed_id))
            .or_default()
            .absorb(&one);
    }

    /// Writes what is pending; what fails to be written is put back.
    pub async fn flush(&self, pool: &PgPool) {
        let taken: Vec<((Uuid, Uuid), CountsDelta)> = match self.pending.lock() {
            Ok(mut pending) => pending.drain().collect(),
            Err(_) => return,
        };
        for ((org, feed), delta) in taken {
            let written = async {
                let mut tx = store::begin_for(pool, org).await?;
                store::feed::add_counts(&mut tx, org, feed, &delta).await?;
                tx.commit().await?;
                Ok::<_, crate::error::Error>(())
            }
            .await;
            if let Err(error) = written {
                tracing::warn!(feed = %feed, %error, "could not write a feed's counts; trying again");
                if let Ok(mut pending) = self.pending.lock() {
                    pending.entry((org, feed)).or_default().absorb(&delta);
                }
            }
        }
    }

    /// Writes the counts every second, for ever: the server aborts it and
    /// flushes once more when it stops.
    pub async fn run(self, pool: PgPool) {
        let mut ticks = tokio::time::interval(EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.flush(&pool).await;
        }
    }
}
