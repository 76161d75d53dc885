//! Prometheus metrics, served on a port of their own (`--metrics-addr`):
//! calls per method and status code with their latency, encounters
//! ingested, duplicated and rejected, recovery cases opened, the
//! database pool, and the waits for a lane where lanes are limited.
//! Without `--metrics-addr` no recorder is installed and the
//! recording functions here do nothing.

use std::{net::SocketAddr, time::Duration};

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use sqlx::PgPool;

const CALLS: &str = "verdad_grpc_calls_total";
const CALL_SECONDS: &str = "verdad_grpc_call_duration_seconds";
const INGESTED: &str = "verdad_encounters_ingested_total";
const DUPLICATED: &str = "verdad_encounters_duplicated_total";
const REJECTED: &str = "verdad_encounters_rejected_total";
const CASES_OPENED: &str = "verdad_recovery_cases_opened_total";
const POOL_CONNECTIONS: &str = "verdad_db_pool_connections";
const POOL_MAX: &str = "verdad_db_pool_max_connections";
const POOL_WAITING: &str = "verdad_db_pool_waiting";
const RECORD_BATCH_CALLS: &str = "verdad_record_batch_calls";
const ROLLUPS_APPLIED: &str = "verdad_rollup_changes_applied_total";
const LANE_WAIT_SECONDS: &str = "verdad_lane_wait_duration_seconds";
const LANE_WAITING: &str = "verdad_lane_waiting";
const STREAM_BUDGET_HELD: &str = "verdad_stream_budget_held_bytes";
const STREAM_BUDGET: &str = "verdad_stream_budget_bytes";
const FEED_MESSAGES: &str = "verdad_feed_messages_total";
const MLLP_CONNECTIONS: &str = "verdad_mllp_connections";
const WEBHOOK_ATTEMPTS: &str = "verdad_webhook_attempts_total";
const WEBHOOK_SECONDS: &str = "verdad_webhook_attempt_duration_seconds";

/// Latency buckets from a millisecond (a cached read) to the 30 s request
/// limit; also those of a wait for a lane, which counts against it.
const SECONDS_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Calls per RecordEncounter batch, up to the group commit's most.
const BATCH_CALLS_BUCKETS: [f64; 8] = [1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0];

/// How often the pool's figures are read.
const POOL_INTERVAL: Duration = Duration::from_secs(1);

/// Installs the Prometheus recorder and serves it over HTTP on `addr`
/// (every path answers with the metrics).
pub fn install(addr: SocketAddr) -> anyhow::Result<()> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(Matcher::Full(CALL_SECONDS.to_owned()), &SECONDS_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full(LANE_WAIT_SECONDS.to_owned()),
            &SECONDS_BUCKETS,
        )?
        .set_buckets_for_metric(Matcher::Full(WEBHOOK_SECONDS.to_owned()), &SECONDS_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full(RECORD_BATCH_CALLS.to_owned()),
            &BATCH_CALLS_BUCKETS,
        )?
        .install()?;
    describe_counter!(
        CALLS,
        "Calls finished, by gRPC method, status code and door"
    );
    describe_histogram!(
        CALL_SECONDS,
        Unit::Seconds,
        "Time from a call's arrival to its status, by method and status code"
    );
    describe_counter!(INGESTED, "Encounters stored");
    describe_counter!(
        DUPLICATED,
        "Encounters sent again with the same content and not stored twice"
    );
    describe_counter!(
        REJECTED,
        "Encounters refused for bad or conflicting content"
    );
    describe_counter!(CASES_OPENED, "Recovery cases opened for failed encounters");
    describe_histogram!(
        RECORD_BATCH_CALLS,
        "RecordEncounter calls stored together in one transaction (group commit)"
    );
    describe_counter!(
        ROLLUPS_APPLIED,
        "Pending rollup changes folded in: one per encounter stored, one per encounter erased"
    );
    describe_gauge!(POOL_CONNECTIONS, "Database connections, by state");
    describe_gauge!(POOL_MAX, "Most database connections the pool may hold");
    describe_gauge!(POOL_WAITING, "Requests waiting for a database connection");
    describe_histogram!(
        LANE_WAIT_SECONDS,
        Unit::Seconds,
        "Time bulk work waited for one of its lanes, by the flag that limits them and the work"
    );
    describe_gauge!(
        LANE_WAITING,
        "Bulk work waiting for a lane now, by the flag that limits them and the work"
    );
    describe_gauge!(
        STREAM_BUDGET_HELD,
        Unit::Bytes,
        "Bytes of ingest-stream batches held now: read ahead or being stored"
    );
    describe_counter!(
        FEED_MESSAGES,
        "Feed messages (HL7 v2) by outcome: accepted, duplicate, ignored, rejected, unknown_sender, unavailable"
    );
    describe_gauge!(MLLP_CONNECTIONS, "MLLP connections open now");
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Webhook delivery attempts by outcome: delivered, retry, failed (retries ran out)"
    );
    describe_histogram!(
        WEBHOOK_SECONDS,
        Unit::Seconds,
        "Time from sending a webhook delivery to the endpoint's answer or the attempt's end"
    );
    describe_gauge!(
        STREAM_BUDGET,
        Unit::Bytes,
        "The stream budget: most bytes of ingest-stream batches held at once"
    );
    Ok(())
}

/// Records a RecordEncounter batch of `calls` calls.
pub fn record_batch(calls: usize) {
    metrics::histogram!(RECORD_BATCH_CALLS).record(calls as f64);
}

/// Records the bytes of stream batches held now.
pub fn stream_budget_held(bytes: usize) {
    gauge!(STREAM_BUDGET_HELD).set(bytes as f64);
}

/// Counts a feed message by what became of it.
pub fn feed_message(outcome: &'static str) {
    counter!(FEED_MESSAGES, "outcome" => outcome).increment(1);
}

/// Records a webhook delivery attempt and what it led to.
pub fn webhook_attempt(outcome: &'static str, elapsed: Duration) {
    counter!(WEBHOOK_ATTEMPTS, "outcome" => outcome).increment(1);
    metrics::histogram!(WEBHOOK_SECONDS).record(elapsed.as_secs_f64());
}

/// Counts an MLLP connection opening (`1`) or closing (`-1`).
pub fn mllp_connections(change: f64) {
    gauge!(MLLP_CONNECTIONS).increment(change);
}

/// Records the stream budget's size.
pub fn stream_budget(bytes: usize) {
    gauge!(STREAM_BUDGET).set(bytes as f64);
}

/// Records `changes` folded into the rollups.
pub fn rollups_applied(changes: u64) {
    counter!(ROLLUPS_APPLIED).increment(changes);
}

/// Records a finished call to `method` (see [`crate::grpc::methods::name`]).
pub fn call_finished(
    method: &'static str,
    door: super::Door,
    code: tonic::Code,
    elapsed: Duration,
) {
    let code = format!("{code:?}");
    let labels = [
        ("method", method.to_owned()),
        ("code", code),
        ("door", door.as_str().to_owned()),
    ];
    counter!(CALLS, &labels).increment(1);
    metrics::histogram!(CALL_SECONDS, &labels).record(elapsed.as_secs_f64());
}

/// Records what became of the encounters of a committed batch.
pub fn encounters(ingested: u64, duplicated: u64, rejected: u64, cases_opened: u64) {
    counter!(INGESTED).increment(ingested);
    counter!(DUPLICATED).increment(duplicated);
    counter!(REJECTED).increment(rejected);
    counter!(CASES_OPENED).increment(cases_opened);
}

/// Counts a request waiting for a connection while `wait` runs.
pub async fn waiting_for_connection<T>(wait: impl Future<Output = T>) -> T {
    let _waiting = Waiting::new(gauge!(POOL_WAITING));
    wait.await
}

/// Counts `work` waiting for one of the `lanes` while `wait` runs, and
/// records how long it waited.
pub async fn waiting_for_lane<T>(
    lanes: &'static str,
    work: &'static str,
    wait: impl Future<Output = T>,
) -> T {
    let labels = [("lanes", lanes), ("work", work)];
    let _waiting = Waiting::new(gauge!(LANE_WAITING, &labels));
    let started = std::time::Instant::now();
    let result = wait.await;
    metrics::histogram!(LANE_WAIT_SECONDS, &labels).record(started.elapsed().as_secs_f64());
    result
}

/// One more waiting on a gauge until dropped, also when the wait is given
/// up: a call cancelled by its caller or its deadline must not stay
/// counted.
struct Waiting(metrics::Gauge);

impl Waiting {
    fn new(gauge: metrics::Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Keeps the pool's gauges current, as long as the pool is open.
pub async fn watch_pool(pool: PgPool) {
    let mut ticks = tokio::time::interval(POOL_INTERVAL);
    while !pool.is_closed() {
        ticks.tick().await;
        let size = pool.size();
        let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
        gauge!(POOL_CONNECTIONS, "state" => "in_use").set(f64::from(size - idle));
        gauge!(POOL_CONNECTIONS, "state" => "idle").set(f64::from(idle));
        gauge!(POOL_MAX).set(f64::from(pool.options().get_max_connections()));
    }
}

#[cfg(test)]
mod tests {
    use std::{
        pin::pin,
        sync::{Arc, Mutex},
        task::{Context, Poll, Waker},
    };

    use metrics::{
        Counter, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    };

    use super::*;

    /// A recorder whose every gauge is one shared value.
    #[derive(Clone, Default)]
    struct OneGauge(Arc<Mutex<f64>>);

    impl OneGauge {
        fn value(&self) -> f64 {
            *self.0.lock().unwrap()
        }
    }

    impl GaugeFn for OneGauge {
        fn increment(&self, value: f64) {
            *self.0.lock().unwrap() += value;
        }
        fn decrement(&self, value: f64) {
            *self.0.lock().unwrap() -= value;
        }
        fn set(&self, value: f64) {
            *self.0.lock().unwrap() = value;
        }
    }

    impl Recorder for OneGauge {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
            Counter::noop()
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(Arc::new(self.clone()))
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    /// Polls `wait` once, while it cannot finish, and says what the gauge
    /// read then; `wait` is dropped, as a cancelled call drops it.
    fn counted_while_waiting<T>(recorder: &OneGauge, wait: impl Future<Output = T>) -> f64 {
        metrics::with_local_recorder(recorder, || {
            let mut wait = pin!(wait);
            let pending = wait
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_pending();
            assert!(pending);
            recorder.value()
        })
    }

    #[test]
    fn a_wait_for_a_lane_given_up_is_no_longer_counted() {
        let recorder = OneGauge::default();
        let (_never, answer) = tokio::sync::oneshot::channel::<()>();
        let waiting = counted_while_waiting(
            &recorder,
            waiting_for_lane("bulk_lanes", "analysis", answer),
        );
        assert_eq!(waiting, 1.0);
        assert_eq!(recorder.value(), 0.0);
    }

    #[test]
    fn a_wait_for_a_connection_given_up_is_no_longer_counted() {
        let recorder = OneGauge::default();
        let (_never, answer) = tokio::sync::oneshot::channel::<()>();
        let waiting = counted_while_waiting(&recorder, waiting_for_connection(answer));
        assert_eq!(waiting, 1.0);
        assert_eq!(recorder.value(), 0.0);
    }

    #[test]
    fn a_wait_that_ends_is_no_longer_counted() {
        let recorder = OneGauge::default();
        metrics::with_local_recorder(&recorder, || {
            let mut wait = pin!(waiting_for_lane("bulk_lanes", "fold", async { 7 }));
            let done = wait.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            assert_eq!(done, Poll::Ready(7));
        });
        assert_eq!(recorder.value(), 0.0);
    }
}
