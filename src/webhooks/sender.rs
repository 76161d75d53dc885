//! One delivery attempt: the signed POST of an event to a webhook's URL.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::webhook::{
    Attempt, EXCERPT_MAX_CHARS, excerpt, is_reachable, message_id, private_refusal,
};

/// The HTTP client of the deliveries: no redirects followed, a timeout per
/// attempt, and names resolved only to addresses the server may reach.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    timeout: Duration,
    allow_private: bool,
}

/// An event as it is sent.
pub struct Message<'a> {
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub event_time: DateTime<Utc>,
    pub data: &'a Value,
    pub url: &'a str,
    pub secret: &'a [u8],
    pub previous_secret: Option<&'a [u8]>,
}

impl Sender {
    pub fn new(timeout: Duration, allow_private: bool) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("Verdad-Webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(Reachable { allow_private }))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            client,
            timeout,
            allow_private,
        })
    }

    /// Sends `message` once and says what came of it: `Ok` when the
    /// endpoint answered 2xx.
    pub async fn send(&self, message: &Message<'_>) -> (bool, Attempt) {
        let attempt_time = Utc::now();
        let started = Instant::now();
        let (delivered, status_code, error, response_excerpt) = match self.post(message).await {
            Ok((status, body)) => {
                let ok = status.is_success();
                let error = if ok {
                    String::new()
                } else {
                    format!("answered {status}")
                };
                (ok, Some(i32::from(status.as_u16())), error, body)
            }
            Err(error) => (false, None, error, String::new()),
        };
        let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        (
            delivered,
            Attempt {
                attempt_time,
                status_code,
                latency_ms,
                error,
                response_excerpt,
            },
        )
    }

    async fn post(&self, message: &Message<'_>) -> Result<(reqwest::StatusCode, String), String> {
        let url =
            reqwest::Url::parse(message.url).map_err(|_| "the URL does not parse".to_owned())?;
        // Names go through the resolver; an address written in the URL
        // does not, so it is checked here.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if literal.is_some_and(|ip| !is_reachable(ip, self.allow_private)) {
            return Err(format!("the URL {}", private_refusal()));
        }
        let body = body(message);
        let id = message_id(message.event_id);
        let timestamp = Utc::now().timestamp();
        let signature = signature(
            &id,
            timestamp,
            &body,
            message.secret,
            message.previous_secret,
        )
        .map_err(|e| format!("cannot sign: {e}"))?;
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| self.describe(&e))?;
        let status = response.status();
        Ok((status, read_excerpt(response).await))
    }

    /// Says why an attempt failed, in words an integration engineer acts
    /// on; the chain of causes names what the resolver refused.
    fn describe(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            return format!(
                "timed out after {}",
                humantime::format_duration(self.timeout)
            );
        }
        let mut source: Option<&dyn std::error::Error> = Some(error);
        while let Some(cause) = source {
            if cause.to_string().contains("--webhook-allow-private") {
                return format!("the host {}", private_refusal());
            }
            source = cause.source();
        }
        if error.is_connect() {
            "could not connect".to_owned()
        } else if error.is_request() {
            "the request could not be sent".to_owned()
        } else {
            "the endpoint's answer could not be read".to_owned()
        }
    }
}

/// The body: Standard Webhooks' envelope of type, timestamp and data.
fn body(message: &Message<'_>) -> String {
    json!({
        "type": message.event_type,
        "timestamp": message.event_time.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": message.data,
    })
    .to_string()
}

/// `v1,<signature>` by the secret, and by the previous one beside it while
/// it still signs.
fn signature(
    id: &str,
    timestamp: i64,
    body: &str,
    secret: &[u8],
    previous: Option<&[u8]>,
) -> Result<String, standardwebhooks::WebhookError> {
    let sign = |key: &[u8]| {
        standardwebhooks::Webhook::from_bytes(key.to_vec())?.sign(id, timestamp, body.as_bytes())
    };
    let mut signatures = vec![sign(secret)?];
    if let Some(previous) = previous {
        signatures.push(sign(previous)?);
    }
    Ok(signatures.join(" "))
}

/// The start of the answer: no more is read than is kept.
async fn read_excerpt(mut response: reqwest::Response) -> String {
    let mut kept = Vec::new();
    // Characters are at most 4 bytes.
    while kept.len() < EXCERPT_MAX_CHARS * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            _ => break,
        }
    }
    excerpt(&kept)
}

/// Resolves a name to the addresses deliveries may go to; none left is an
/// error, so that a name pointing inside the network is not a way in.
struct Reachable {
    allow_private: bool,
}

impl Resolve for Reachable {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let kept: Vec<SocketAddr> = found
                .filter(|addr| is_reachable(addr.ip(), allow_private))
                .collect();
            if kept.is_empty() {
                return Err(private_refusal().into());
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    #[test]
    fn the_signature_is_standard_webhooks_v1() {
        // The test vector of the Standard Webhooks specification.
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let signed = signature(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
            &key,
            None,
        )
        .unwrap();
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let both = signature("m", 1, "{}", &key, Some(&[7; 32])).unwrap();
        assert_eq!(both.split(' ').count(), 2);
        assert!(both.starts_with(&signature("m", 1, "{}", &key, None).unwrap()));
    }

    #[test]
    fn the_body_is_type_timestamp_and_data() {
        let data = json!({"recovery_case_id": "c"});
        let message = Message {
            event_id: Uuid::nil(),
            event_type: "recovery_case.opened",
            event_time: DateTime::from_timestamp(1_700_000_000, 5_000_000).unwrap(),
            data: &data,
            url: "http://example.org/",
            secret: &[1; 32],
            previous_secret: None,
        };
        assert_eq!(
            body(&message),
            r#"{"type":"recovery_case.opened","timestamp":"2023-11-14T22:13:20.005Z","data":{"recovery_case_id":"c"}}"#
        );
    }
}
