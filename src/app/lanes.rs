//! Limits on how much of one kind of work runs at once in this server.
//!
//! Bulk work (a stream's batch of hundreds of encounters, a fold of the
//! rollups, an analysis) keeps a database backend busy for tens or
//! hundreds of milliseconds. Where PostgreSQL shares the server's few
//! processors, several such pieces at once leave RecordEncounter calls
//! waiting for a processor: `--bulk-lanes 1` leaves them one (see
//! RELIABILITY.md, "One lane for bulk work").
//!
//! Lock order: whoever takes a lane takes it before an organisation's
//! fold turn (`rollup_applier`) and before a database connection, and
//! never waits for a lane while holding either.
//!
//! Where there is a limit, every wait for a lane is measured
//! (`meters::waiting_for_lane`): the operator who sets one trades the bulk
//! work's waits for the live calls' latency, and needs to see the first.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{
    error::{Error, Result},
    telemetry::meters,
};

/// What a lane is taken for, as the metrics name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// A stream's batch of encounters, while the database stores it.
    StreamBatch,
    /// A fold of an organisation's pending rollups by the server.
    Fold,
    /// A unary analysis, its own fold included.
    Analysis,
}

impl Work {
    fn as_str(self) -> &'static str {
        match self {
            Work::StreamBatch => "stream_batch",
            Work::Fold => "fold",
            Work::Analysis => "analysis",
        }
    }
}

/// A number of lanes, or none to wait for; cloning it shares the lanes.
#[derive(Clone)]
pub struct Lanes {
    /// The name the metrics give these lanes: the flag that sets them.
    name: &'static str,
    lanes: Option<Arc<Semaphore>>,
}

/// A lane held until dropped (nothing held when there is no limit).
#[must_use = "the lane is given back when this is dropped"]
pub struct Lane {
    _permit: Option<OwnedSemaphorePermit>,
}

impl Lanes {
    /// At most `lanes` pieces of work at once; 0: no limit.
    pub fn new(name: &'static str, lanes: usize) -> Self {
        Self {
            name,
            lanes: (lanes > 0).then(|| Arc::new(Semaphore::new(lanes))),
        }
    }

    /// Waits for a lane for `work`, first come first served.
    pub async fn enter(&self, work: Work) -> Result<Lane> {
        match &self.lanes {
            None => Ok(Lane { _permit: None }),
            Some(lanes) => {
                meters::waiting_for_lane(self.name, work.as_str(), lanes.clone().acquire_owned())
                    .await
                    .map(|permit| Lane {
                        _permit: Some(permit),
                    })
                    // The lanes are never closed.
                    .map_err(|_| Error::internal("the lanes are closed"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::timeout;

    use super::*;

    const A_WHILE: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn without_a_limit_any_number_enter_at_once() {
        let lanes = Lanes::new("test", 0);
        let mut held = Vec::new();
        for _ in 0..100 {
            held.push(
                timeout(A_WHILE, lanes.enter(Work::Fold))
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn with_one_lane_the_next_waits_until_the_first_leaves() {
        let lanes = Lanes::new("test", 1);
        let first = lanes.enter(Work::StreamBatch).await.unwrap();
        assert!(timeout(A_WHILE, lanes.enter(Work::Analysis)).await.is_err());
        drop(first);
        let _second = timeout(A_WHILE, lanes.enter(Work::Analysis))
            .await
            .unwrap()
            .unwrap();
        assert!(timeout(A_WHILE, lanes.enter(Work::Fold)).await.is_err());
    }
}
