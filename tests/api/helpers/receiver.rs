//! A stand-in webhook consumer: an HTTP/1.1 endpoint that records every
//! request, answers as the test tells it, and checks Standard Webhooks 1.0
//! signatures with code of its own. The server signs with the
//! `standardwebhooks` crate; checking with that crate too would let a
//! misreading shared by both sides pass, so this side follows the spec with
//! `hmac`, `sha2` and `base64` alone.
//!
//! HTTP is parsed by hand: the tests need only `Content-Length` bodies and
//! keep-alive, and owning the sockets is what lets [`Receiver::stop`] drop
//! open connections the way a consumer that goes down does.

use std::{
    io,
    net::SocketAddr,
    pin::pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU16, Ordering},
    },
    time::{Duration, Instant},
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::{Notify, oneshot},
    task::{JoinHandle, JoinSet},
};

/// How far the signed timestamp may be from now, either way (the spec's
/// replay window).
const TOLERANCE_SECS: i64 = 5 * 60;

/// How long [`Receiver::restart`] keeps trying the old port: the sender may
/// briefly hold it with a connection of its own.
const REBIND_FOR: Duration = Duration::from_secs(5);

/// One request as it arrived, and what it was answered.
#[derive(Clone, Debug)]
pub(crate) struct Delivery {
    pub(crate) method: String,
    pub(crate) path: String,
    /// In arrival order, names lowercased.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// When the whole request had been read.
    pub(crate) received_at: Instant,
    /// The status written back; 0 when the client hung up during a delay
    /// (it timed out, so it saw no answer and must not count as delivered).
    pub(crate) answered: u16,
}

impl Delivery {
    /// The first header of that name, whatever its case.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn delivered(&self) -> bool {
        (200..300).contains(&self.answered)
    }
}

struct Shared {
    deliveries: Mutex<Vec<Delivery>>,
    arrived: Notify,
    status: AtomicU16,
    delay: Mutex<Duration>,
}

impl Shared {
    fn record(&self, delivery: Delivery) {
        self.deliveries.lock().unwrap().push(delivery);
        self.arrived.notify_waiters();
    }
}

/// The webhook endpoint of one test, on 127.0.0.1 and a port of its own.
/// Dropping it stops it.
pub(crate) struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Option<Running>,
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    fn spawn(listener: TcpListener, shared: Arc<Shared>) -> Self {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept(listener, shared, stopped));
        Self { stop, task }
    }
}

impl Receiver {
    /// Listening, answering 204 at once.
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the webhook receiver");
        let addr = listener.local_addr().expect("the receiver's address");
        let shared = Arc::new(Shared {
            deliveries: Mutex::default(),
            arrived: Notify::new(),
            status: AtomicU16::new(204),
            delay: Mutex::default(),
        });
        let running = Some(Running::spawn(listener, shared.clone()));
        Self {
            addr,
            shared,
            running,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    /// The status that requests arriving from now on are answered.
    pub(crate) fn set_status(&self, status: u16) {
        self.shared.status.store(status, Ordering::Relaxed);
    }

    /// How long each later request waits before its answer.
    pub(crate) fn set_delay(&self, delay: Duration) {
        *self.shared.delay.lock().unwrap() = delay;
    }

    /// Closes the listener and every open connection, unanswered requests
    /// included: the sender sees refused or reset connections, as from a
    /// consumer that crashed. Does nothing when already stopped.
    pub(crate) async fn stop(&mut self) {
        if let Some(Running { stop, task }) = self.running.take() {
            // An error means the loop has already ended.
            let _ = stop.send(());
            task.await.expect("the receiver's accept loop panicked");
        }
    }

    /// Listens again on the same port (stopping first if running), keeping
    /// what was recorded, the status and the delay.
    pub(crate) async fn restart(&mut self) {
        self.stop().await;
        let deadline = Instant::now() + REBIND_FOR;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("the receiver could not listen on {} again: {e}", self.addr),
            }
        };
        self.running = Some(Running::spawn(listener, self.shared.clone()));
    }

    /// Every request so far, answered 2xx or not.
    pub(crate) fn deliveries(&self) -> Vec<Delivery> {
        self.shared.deliveries.lock().unwrap().clone()
    }

    /// The requests answered 2xx, once there are at least `count` of them.
    /// Panics after `timeout`, listing every request that did arrive.
    pub(crate) async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before counting, so a delivery recorded between the
            // count and the wait still wakes us.
            let mut arrived = pin!(self.shared.arrived.notified());
            arrived.as_mut().enable();
            let delivered: Vec<Delivery> = self
                .deliveries()
                .into_iter()
                .filter(Delivery::delivered)
                .collect();
            if delivered.len() >= count {
                return delivered;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                let all = self.deliveries();
                let listed: String = all
                    .iter()
                    .map(|d| {
                        let id = d.header("webhook-id").unwrap_or("no webhook-id");
                        format!("\n  {} {} -> {} ({id})", d.method, d.path, d.answered)
                    })
                    .collect();
                panic!(
                    "waited {timeout:?} for {count} deliveries answered 2xx at {}; got {} \
                     of {} requests:{listed}",
                    self.url(),
                    delivered.len(),
                    all.len(),
                );
            }
        }
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, mut stopped: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            // Also when the Receiver is dropped.
            _ = &mut stopped => break,
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    connections.spawn(serve(stream, shared.clone()));
                }
            }
            Some(_) = connections.join_next() => {}
        }
    }
    drop(listener);
    // Aborted, not drained: a consumer going down does not finish its answers.
    connections.shutdown().await;
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    let mut conn = BufReader::new(stream);
    while let Some(mut delivery) = read_head(&mut conn).await? {
        let mut close = delivery
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let length = match delivery.header("content-length") {
            Some(length) => length.parse::<usize>().map_err(|_| 400),
            None if delivery.method == "POST" => Err(411),
            None => Ok(0),
        };
        delivery.answered = match length {
            Ok(length) => {
                delivery.body = vec![0; length];
                conn.read_exact(&mut delivery.body).await?;
                shared.status.load(Ordering::Relaxed)
            }
            // With the body's end unknown, nothing after it can be read.
            Err(status) => {
                close = true;
                status
            }
        };
        delivery.received_at = Instant::now();

        let delay = *shared.delay.lock().unwrap();
        if !delay.is_zero() && hung_up_during(&mut conn, delay).await {
            delivery.answered = 0;
            shared.record(delivery);
            return Ok(());
        }
        let status = delivery.answered;
        // Recorded before the answer goes out, so a test that saw the
        // sender succeed also sees the delivery.
        shared.record(delivery);
        conn.get_mut().write_all(&response(status, close)).await?;
        if close {
            break;
        }
    }
    Ok(())
}

/// A request's line and headers, or None when the client closed the
/// connection between requests. Anything malformed ends the connection.
async fn read_head(conn: &mut BufReader<TcpStream>) -> io::Result<Option<Delivery>> {
    let mut line = String::new();
    loop {
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        // A stray CRLF may precede a request (RFC 9112, 2.2).
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(format!("bad request line {line:?}")));
    };
    let mut delivery = Delivery {
        method: method.to_owned(),
        path: path.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
        received_at: Instant::now(),
        answered: 0,
    };
    loop {
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let field = line.trim_end_matches(['\r', '\n']);
        if field.is_empty() {
            return Ok(Some(delivery));
        }
        let (name, value) = field
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {field:?}")))?;
        delivery
            .headers
            .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Waits out `delay`, telling whether the client hung up meanwhile. A
/// sender that times out closes its connection, and only reading shows
/// that: a write to it would still succeed.
async fn hung_up_during(conn: &mut BufReader<TcpStream>, delay: Duration) -> bool {
    let mut sleep = pin!(tokio::time::sleep(delay));
    tokio::select! {
        () = &mut sleep => false,
        gone = async { matches!(conn.fill_buf().await, Ok([]) | Err(_)) } => {
            // Not gone: it sent its next request early; that waits its turn.
            if !gone {
                sleep.await;
            }
            gone
        }
    }
}

fn response(status: u16, close: bool) -> Vec<u8> {
    let body = match status {
        200..=299 => String::new(),
        503 => "receiver is down for maintenance\n".to_owned(),
        _ => format!("receiver is set to answer {status}\n"),
    };
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        410 => "Gone",
        411 => "Length Required",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "As Set",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    // A 204 has no body, and RFC 9110 forbids a Content-Length on it.
    if status != 204 {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
        head.push_str("content-type: text/plain; charset=utf-8\r\n");
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    [head.into_bytes(), body.into_bytes()].concat()
}

/// The `v1,<base64>` entries of the `webhook-signature` header, in order;
/// entries of other versions are left out.
pub(crate) fn signatures(delivery: &Delivery) -> Vec<String> {
    delivery
        .header("webhook-signature")
        .unwrap_or_default()
        .split_whitespace()
        .filter(|entry| entry.starts_with("v1,"))
        .map(str::to_owned)
        .collect()
}

/// Checks a delivery as Standard Webhooks 1.0 says a consumer must, and
/// gives its body as JSON; the error names what failed.
pub(crate) fn verify(
    secret: &str,
    delivery: &Delivery,
    now_unix: i64,
) -> Result<serde_json::Value, String> {
    let key = secret
        .strip_prefix("whsec_")
        .ok_or("the secret does not start with whsec_")?;
    let key = STANDARD
        .decode(key)
        .map_err(|e| format!("the secret is not base64: {e}"))?;
    let header = |name: &str| {
        delivery
            .header(name)
            .ok_or_else(|| format!("no {name} header"))
    };
    let id = header("webhook-id")?;
    let timestamp = header("webhook-timestamp")?;
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| format!("webhook-timestamp {timestamp:?} is not unix seconds"))?;
    let skew = now_unix - sent;
    if skew.abs() > TOLERANCE_SECS {
        return Err(format!(
            "webhook-timestamp {sent} is {skew} s from now ({now_unix}), over {TOLERANCE_SECS} s"
        ));
    }
    let entries = signatures(delivery);
    if entries.is_empty() {
        return Err(format!(
            "no v1 entry in webhook-signature {:?}",
            delivery.header("webhook-signature").unwrap_or_default()
        ));
    }
    let matches = |entry: &String| {
        let Ok(signature) = STANDARD.decode(&entry["v1,".len()..]) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes keys of any length");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(&delivery.body);
        // verify_slice compares in constant time.
        mac.verify_slice(&signature).is_ok()
    };
    if !entries.iter().any(matches) {
        return Err(format!(
            "none of the {} v1 signatures matches id {id}, timestamp {timestamp} and the body",
            entries.len()
        ));
    }
    serde_json::from_slice(&delivery.body).map_err(|e| format!("the body is not JSON: {e}"))
}

mod tests {
    //! The test vector published with the Standard Webhooks spec.

    use std::time::Instant;

    use super::{Delivery, signatures, verify};

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &str = r#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn delivery(body: &str, signature: &str) -> Delivery {
        Delivery {
            method: "POST".to_owned(),
            path: "/hooks".to_owned(),
            headers: vec![
                ("webhook-id".to_owned(), ID.to_owned()),
                ("webhook-timestamp".to_owned(), TIMESTAMP.to_string()),
                ("webhook-signature".to_owned(), signature.to_owned()),
            ],
            body: body.as_bytes().to_vec(),
            received_at: Instant::now(),
            answered: 204,
        }
    }

    #[test]
    fn the_published_vector_verifies() {
        let body = verify(SECRET, &delivery(BODY, SIGNATURE), TIMESTAMP).unwrap();
        assert_eq!(body, serde_json::json!({"test": 2_432_232_314_u64}));
    }

    #[test]
    fn any_matching_v1_entry_will_do() {
        let header = format!("v1a,abc v1,bm90IGl0 {SIGNATURE}");
        let delivery = delivery(BODY, &header);
        assert_eq!(signatures(&delivery), ["v1,bm90IGl0", SIGNATURE]);
        verify(SECRET, &delivery, TIMESTAMP + 299).unwrap();
    }

    #[test]
    fn a_changed_body_fails() {
        let error = verify(
            SECRET,
            &delivery(r#"{"test": 2432232315}"#, SIGNATURE),
            TIMESTAMP,
        )
        .unwrap_err();
        assert!(error.contains("none of the 1 v1 signatures"), "{error}");
    }

    #[test]
    fn a_wrong_secret_fails() {
        let error = verify(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx",
            &delivery(BODY, SIGNATURE),
            TIMESTAMP,
        )
        .unwrap_err();
        assert!(error.contains("none of the 1 v1 signatures"), "{error}");
    }

    #[test]
    fn a_timestamp_six_minutes_old_fails() {
        let error = verify(SECRET, &delivery(BODY, SIGNATURE), TIMESTAMP + 6 * 60).unwrap_err();
        assert!(error.contains("webhook-timestamp"), "{error}");
    }

    #[test]
    fn a_body_that_is_not_json_fails_once_signed() {
        use base64::{Engine as _, engine::general_purpose::STANDARD};
        use hmac::{Hmac, Mac};

        let key = STANDARD.decode(&SECRET["whsec_".len()..]).unwrap();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{ID}.{TIMESTAMP}.not json").as_bytes());
        let signature = STANDARD.encode(mac.finalize().into_bytes());
        let error = verify(
            SECRET,
            &delivery("not json", &format!("v1,{signature}")),
            TIMESTAMP,
        )
        .unwrap_err();
        assert!(error.starts_with("the body is not JSON"), "{error}");
    }

    #[test]
    fn a_missing_header_is_named() {
        let mut delivery = delivery(BODY, SIGNATURE);
        delivery.headers.retain(|(name, _)| name != "webhook-id");
        assert_eq!(
            verify(SECRET, &delivery, TIMESTAMP).unwrap_err(),
            "no webhook-id header"
        );
    }
}
