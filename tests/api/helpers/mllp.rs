//! A real MLLP client, as an integration engine is one: HL7 v2 messages
//! framed 0x0B … 0x1C 0x0D over TCP, each answered by an ACK; and the
//! hand-built messages of tests/data/hl7.

use std::{path::PathBuf, time::Duration};

use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};
use tokio_rustls::TlsConnector;
use verdad::proto::verdad::v1 as pb;

use super::{TestApp, authed};

const START: u8 = 0x0B;
const END: [u8; 2] = [0x1C, 0x0D];

/// A message of tests/data/hl7, with its line breaks turned into the
/// segment separator (the files keep one segment per line to be read).
pub(crate) fn hl7_file(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/hl7")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut message: Vec<u8> = bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .flat_map(|line| {
            line.strip_suffix(b"\r")
                .unwrap_or(line)
                .iter()
                .copied()
                .chain([b'\r'])
        })
        .collect();
    if message.is_empty() {
        message.push(b'\r');
    }
    message
}

/// `bytes` framed for MLLP.
pub(crate) fn framed(bytes: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(bytes.len() + 3);
    frame.push(START);
    frame.extend_from_slice(bytes);
    frame.extend_from_slice(&END);
    frame
}

/// An acknowledgement as read back.
#[derive(Debug, Clone)]
pub(crate) struct Ack {
    /// MSA-1: AA, AE or AR.
    pub(crate) code: String,
    /// MSA-2: the control id acknowledged.
    pub(crate) control_id: String,
    /// ERR-2.1 and ERR-2.3: the segment and field at fault.
    pub(crate) segment: String,
    pub(crate) field: String,
    /// ERR-3.1: the HL7 error code.
    pub(crate) error_code: String,
    /// MSA-3: what was wrong.
    pub(crate) text: String,
    pub(crate) raw: String,
}

impl Ack {
    fn read(raw: &[u8]) -> Self {
        let raw = String::from_utf8(raw.to_vec()).expect("an ACK is UTF-8");
        let message = er7::parse(&raw).expect("an ACK parses");
        assert_eq!(message.query("MSH-9.1").unwrap().as_deref(), Some("ACK"));
        let get = |path: &str| message.query(path).unwrap().unwrap_or_default();
        Ack {
            code: get("MSA-1"),
            control_id: get("MSA-2"),
            segment: get("ERR-2.1"),
            field: get("ERR-2.3"),
            error_code: get("ERR-3.1"),
            text: get("MSA-3"),
            raw,
        }
    }

    #[track_caller]
    pub(crate) fn assert(&self, code: &str, control_id: &str) {
        assert_eq!(
            (self.code.as_str(), self.control_id.as_str()),
            (code, control_id),
            "{}",
            self.raw.replace('\r', "\n")
        );
    }
}

/// A byte stream, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A file of tests/data/tls.
pub(crate) fn tls_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name)
}

/// One connection to the MLLP listener.
pub(crate) struct Mllp {
    stream: Box<dyn Io>,
    read: Vec<u8>,
}

impl Mllp {
    pub(crate) async fn connect(app: &TestApp) -> Self {
        let addr = app.mllp.expect("the test server has no MLLP listener");
        Self {
            stream: Box::new(
                TcpStream::connect(addr)
                    .await
                    .expect("cannot connect over MLLP"),
            ),
            read: Vec::new(),
        }
    }

    /// A TLS connection trusting the tests' CA, presenting the client
    /// certificate `client` (`engine`, `intruder`) when given.
    pub(crate) async fn connect_tls(app: &TestApp, client: Option<&str>) -> std::io::Result<Self> {
        let provider = Arc::new(verdad::mllp::tls::provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(tls_file("ca.pem")).unwrap())
            .unwrap();
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match client {
            Some(name) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_file(tls_file(&format!("{name}.pem"))).unwrap()],
                    PrivateKeyDer::from_pem_file(tls_file(&format!("{name}.key"))).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        let addr = app.mllp.expect("the test server has no MLLP listener");
        let tcp = TcpStream::connect(addr).await?;
        let stream = TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await?;
        Ok(Self {
            stream: Box::new(stream),
            read: Vec::new(),
        })
    }

    /// Sends one message and reads its acknowledgement.
    pub(crate) async fn send(&mut self, message: &[u8]) -> Ack {
        self.write(&framed(message)).await;
        self.ack().await
    }

    pub(crate) async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("cannot write");
    }

    /// The next acknowledgement on the connection.
    pub(crate) async fn ack(&mut self) -> Ack {
        loop {
            if let Some(end) = self.read.windows(2).position(|w| w == END) {
                let frame: Vec<u8> = self.read.drain(..end + 2).collect();
                assert_eq!(frame[0], START, "an ACK starts with 0x0B");
                return Ack::read(&frame[1..end]);
            }
            let mut buffer = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut buffer))
                .await
                .expect("no ACK within 10 s")
                .expect("cannot read");
            assert!(
                n > 0,
                "the server closed the connection instead of answering"
            );
            self.read.extend_from_slice(&buffer[..n]);
        }
    }

    /// Whether the server closes the connection within a few seconds
    /// without answering a message (a TLS alert may come first).
    pub(crate) async fn closed(&mut self) -> bool {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut buffer = [0u8; 256];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buffer)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return !seen.windows(2).any(|w| w == END),
                Ok(Ok(n)) => seen.extend_from_slice(&buffer[..n]),
                Err(_) => return false,
            }
        }
    }
}

/// An HL7 v2 feed of `application`/`facility` with `rules` (event, point of
/// care, touchpoint code).
pub(crate) fn hl7_feed(
    code: &str,
    application: &str,
    facility: &str,
    rules: &[(&str, &str, &str)],
) -> pb::Feed {
    pb::Feed {
        code: code.into(),
        display_name: format!("{code} feed"),
        mapping: Some(pb::feed::Mapping::Hl7v2(pb::Hl7v2Mapping {
            sending_application: application.into(),
            sending_facility: facility.into(),
            rules: rules
                .iter()
                .map(|(event, point_of_care, touchpoint)| pb::Hl7v2Rule {
                    event: (*event).into(),
                    point_of_care: (*point_of_care).into(),
                    touchpoint_code: (*touchpoint).into(),
                    ..pb::Hl7v2Rule::default()
                })
                .collect(),
            staff_field: "EVN-5".into(),
            ..pb::Hl7v2Mapping::default()
        })),
        ..pb::Feed::default()
    }
}

/// The demo hospital's ADT feed as the tests' messages (tests/data/hl7)
/// expect it: sender EPIC/MAIN, registration at the reception desk, moves
/// to the waiting area, transfers to consultation and examination,
/// discharge at payment.
pub(crate) fn demo_adt_feed() -> pb::Feed {
    hl7_feed(
        "adt",
        "EPIC",
        "MAIN",
        &[
            ("ADT^A04", "", "reception-desk"),
            ("ADT^A01", "", "reception-desk"),
            ("ADT^A09", "WAIT", "waiting-area"),
            ("ADT^A10", "CONS", "consultation-room"),
            ("ADT^A02", "EXAM", "examination"),
            ("ADT^A02", "CONS", "consultation-room"),
            ("ADT^A03", "", "payment"),
        ],
    )
}

impl TestApp {
    /// Creates a feed with `key` and returns it.
    pub(crate) async fn create_feed(&self, key: &str, feed: pb::Feed) -> pb::Feed {
        self.feeds()
            .await
            .create_feed(authed(key, pb::CreateFeedRequest { feed: Some(feed) }))
            .await
            .expect("create_feed failed")
            .into_inner()
            .feed
            .expect("no feed in the response")
    }

    /// The feed `id` as it is now (its counts are written once a second).
    pub(crate) async fn feed(&self, key: &str, id: &str) -> pb::Feed {
        self.feeds()
            .await
            .get_feed(authed(key, pb::GetFeedRequest { id: id.into() }))
            .await
            .expect("get_feed failed")
            .into_inner()
            .feed
            .expect("no feed in the response")
    }

    /// The feed `id` once its counts reach `wanted` (accepted, duplicates,
    /// ignored, rejected), within five seconds.
    pub(crate) async fn feed_counted(&self, key: &str, id: &str, wanted: [i64; 4]) -> pb::Feed {
        let mut feed = self.feed(key, id).await;
        for _ in 0..50 {
            let c = feed.counts.unwrap_or_default();
            if [c.accepted, c.duplicates, c.ignored, c.rejected] == wanted {
                return feed;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            feed = self.feed(key, id).await;
        }
        panic!("the feed's counts stay {:?}, not {wanted:?}", feed.counts);
    }

    /// Every rejection the feed `id` lists, newest first.
    pub(crate) async fn rejections(&self, key: &str, id: &str) -> Vec<pb::FeedRejection> {
        self.feeds()
            .await
            .list_feed_rejections(authed(
                key,
                pb::ListFeedRejectionsRequest {
                    feed_id: id.into(),
                    page_size: 500,
                    ..Default::default()
                },
            ))
            .await
            .expect("list_feed_rejections failed")
            .into_inner()
            .rejections
    }
}
