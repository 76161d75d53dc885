//! The MLLP door: HL7 v2 messages over TCP, each framed as 0x0B … 0x1C 0x0D
//! and answered with an acknowledgement on the same connection, in order.
//!
//! The door only frames: the core finds the message's feed, maps and
//! stores it, and says what to acknowledge. A connection carries any number
//! of messages; one that sends bytes outside a frame is closed with a log
//! line, one that sends nothing for the idle timeout is closed quietly.

pub mod codec;
pub mod tls;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::{Semaphore, watch},
};
use tokio_rustls::TlsAcceptor;
use tokio_util::{codec::Framed, task::TaskTracker};
use uuid::Uuid;

use crate::{
    app::{
        App,
        hl7_feed::{Delivery, Receipt},
    },
    domain::hl7::ack,
    telemetry::meters,
};
use codec::{Frame, MllpCodec, MllpError};

/// The default size limit of one message: ADT messages are a few KiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// Connections open at once at most; more are closed as they arrive.
const MAX_CONNECTIONS: usize = 256;
/// How long writing one acknowledgement may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how the MLLP listener runs.
#[derive(Debug, Clone)]
pub struct MllpSettings {
    pub listen_addr: SocketAddr,
    pub max_message_bytes: usize,
    pub idle_timeout: Duration,
    /// TLS, when the listener speaks it.
    pub tls: Option<tls::MllpTls>,
}

/// Accepts connections until `stopping` turns true; each connection then
/// finishes the message it is on and closes, and this returns once they
/// all have.
pub async fn serve(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    app: Arc<App>,
    settings: MllpSettings,
    mut stopping: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.wait_for(|stop| *stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors and the like: wait, rather than spin.
                tracing::warn!(%error, "could not accept an MLLP connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "refused an MLLP connection: {MAX_CONNECTIONS} are open");
            continue;
        };
        let app = app.clone();
        let settings = settings.clone();
        let stopping = stopping.clone();
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            meters::mllp_connections(1.0);
            let _ = stream.set_nodelay(true);
            match acceptor {
                None => connection(stream, None, peer, &app, &settings, stopping).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let certificate = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|chain| chain.first())
                                .map(|certificate| tls::fingerprint(certificate));
                            connection(stream, certificate, peer, &app, &settings, stopping).await;
                        }
                        Ok(Err(error)) => {
                            tracing::warn!(%peer, %error, "an MLLP TLS handshake failed");
                        }
                        Err(_) => tracing::warn!(%peer, "an MLLP TLS handshake took too long"),
                    }
                }
            }
            meters::mllp_connections(-1.0);
            drop(slot);
        });
    }
    connections.close();
    connections.wait().await;
}

/// Reads messages off one connection and answers each in turn.
/// `certificate` is the fingerprint of the client certificate the
/// connection presented.
async fn connection(
    stream: impl AsyncRead + AsyncWrite + Unpin,
    certificate: Option<String>,
    peer: SocketAddr,
    app: &App,
    settings: &MllpSettings,
    mut stopping: watch::Receiver<bool>,
) {
    let mut framed = Framed::new(stream, MllpCodec::new(settings.max_message_bytes));
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(settings.idle_timeout, framed.next()) => next,
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        let frame = match next {
            Err(_) => {
                tracing::debug!(%peer, "closed an idle MLLP connection");
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(MllpError::Garbage { byte }))) => {
                tracing::warn!(%peer, byte, "closed an MLLP connection that sent bytes outside a frame");
                return;
            }
            Ok(Some(Err(error))) => {
                tracing::warn!(%peer, %error, "closed a broken MLLP connection");
                return;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let receipt = match &frame {
            Frame::Message(bytes) => {
                app.receive_hl7(Delivery {
                    bytes,
                    client_certificate: certificate.as_deref(),
                    too_large: None,
                })
                .await
            }
            Frame::TooLarge { head, size } => {
                app.receive_hl7(Delivery {
                    bytes: head,
                    client_certificate: certificate.as_deref(),
                    too_large: Some((*size, settings.max_message_bytes)),
                })
                .await
            }
        };
        let answer = acknowledgement(&receipt);
        match tokio::time::timeout(WRITE_TIMEOUT, framed.send(answer.as_bytes())).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%peer, %error, "could not send an acknowledgement");
                return;
            }
            Err(_) => {
                tracing::warn!(%peer, "an acknowledgement was not taken in time; closing");
                return;
            }
        }
    }
}

/// The acknowledgement of a receipt, with a control id of its own.
fn acknowledgement(receipt: &Receipt) -> String {
    ack::build(
        &receipt.header,
        receipt.acknowledgement,
        receipt.fault.as_ref(),
        &Uuid::now_v7().simple().to_string(),
        Utc::now(),
    )
}
