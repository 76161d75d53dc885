//! Webhooks: the organisation's endpoints that events are delivered to,
//! per Standard Webhooks 1.0, and the rules of their delivery.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{text_enum, touchpoint::Stage, violation::FieldViolation};

text_enum! {
    /// What happened, as the `type` of an event.
    EventType {
        RecoveryCaseOpened => "recovery_case.opened",
        RecoveryCaseUpdated => "recovery_case.updated",
        RecoveryCaseOverdue => "recovery_case.overdue",
        RecoveryCaseEscalated => "recovery_case.escalated",
        RecoveryCaseResolved => "recovery_case.resolved",
        JourneyDeviated => "journey.deviated",
    }
}

text_enum! {
    /// Where the delivery of one event to one webhook stands.
    DeliveryState {
        Pending => "pending",
        Delivered => "delivered",
        Failed => "failed",
    }
}

pub const URL_MAX_CHARS: usize = 2048;
pub const DESCRIPTION_MAX_CHARS: usize = 500;
pub const MAX_TOUCHPOINT_FILTERS: usize = 100;
/// Webhooks an organisation may have: every event is queued once for each
/// that wants it, in the transaction that causes it.
pub const MAX_WEBHOOKS: i64 = 50;
/// Random bytes in a secret: Standard Webhooks asks for 24 to 64.
pub const SECRET_BYTES: usize = 32;
/// How long the old secret signs beside a new one unless asked otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 60 * 60);
pub const MAX_GRACE_SECONDS: i64 = 7 * 24 * 60 * 60;
/// How much of an endpoint's answer is kept.
pub const EXCERPT_MAX_CHARS: usize = 256;
/// How long deliveries are listed.
pub const DELIVERIES_KEPT_DAYS: i64 = 30;
/// Attempts a listed delivery shows.
pub const ATTEMPTS_SHOWN: i64 = 10;

/// A webhook as stored; the secrets stay in the store and the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<EventType>,
    pub touchpoint_codes: Vec<String>,
    pub stages: Vec<Stage>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub previous_secret_expire_time: Option<DateTime<Utc>>,
}

/// A webhook to create, as checked; its touchpoints are codes still to be
/// found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub url: String,
    pub description: String,
    pub event_types: Vec<EventType>,
    pub touchpoint_codes: Vec<String>,
    pub stages: Vec<Stage>,
}

/// The changes an update asked for; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub touchpoint_codes: Option<Vec<String>>,
    pub stages: Option<Vec<Stage>>,
}

/// One attempt to deliver an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub attempt_time: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: String,
    pub response_excerpt: String,
}

/// The delivery of one event to one webhook, with its latest attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub state: DeliveryState,
    pub create_time: DateTime<Utc>,
    pub next_attempt_time: DateTime<Utc>,
    pub deliver_time: Option<DateTime<Utc>>,
    pub attempt_count: i32,
    pub attempts: Vec<Attempt>,
}

/// Refuses one webhook more than [`MAX_WEBHOOKS`].
pub fn check_room(existing: i64) -> Result<(), super::refusal::Refusal> {
    if existing >= MAX_WEBHOOKS {
        return Err(super::refusal::Refusal::new(
            "WEBHOOK_LIMIT",
            format!(
                "the organisation has {existing} webhooks, the most it may have; \
                 delete one, or let one webhook take more event types"
            ),
        ));
    }
    Ok(())
}

/// The webhook-id of an event: the same on every attempt and every
/// webhook, so that a receiver drops what it has seen.
pub fn message_id(event_id: Uuid) -> String {
    format!("msg_{}", event_id.simple())
}

/// The event a webhook-id names (`msg_` and 32 hex digits, or a UUID).
pub fn parse_message_id(field: &str, value: &str) -> Result<Uuid, FieldViolation> {
    let digits = value.strip_prefix("msg_").unwrap_or(value);
    Uuid::try_parse(digits).map_err(|_| {
        FieldViolation::new(
            field,
            "must be an event id as deliveries show it: msg_ and 32 hexadecimal digits",
        )
    })
}

/// Checks a webhook URL: http or https, a host, no credentials, no
/// fragment, at most 2048 characters. Whether its address may be reached
/// is asked when it is delivered to (see [`is_reachable`]); an address
/// written in the URL is checked here too.
pub fn parse_url(field: &str, value: &str, allow_private: bool) -> Result<String, FieldViolation> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldViolation::new(field, "must not be empty"));
    }
    if value.chars().count() > URL_MAX_CHARS {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {URL_MAX_CHARS} characters"),
        ));
    }
    let url = url::Url::parse(value)
        .map_err(|e| FieldViolation::new(field, format!("must be an absolute URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FieldViolation::new(field, "must be an http or https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FieldViolation::new(
            field,
            "must not carry credentials; the signature authenticates deliveries",
        ));
    }
    if url.fragment().is_some() {
        return Err(FieldViolation::new(field, "must not have a fragment"));
    }
    let address = match url.host() {
        None => return Err(FieldViolation::new(field, "must name a host")),
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(domain)) => {
            let domain = domain.trim_end_matches('.');
            (domain.eq_ignore_ascii_case("localhost")
                || domain.to_ascii_lowercase().ends_with(".localhost"))
            .then_some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        }
    };
    if let Some(ip) = address
        && !is_reachable(ip, allow_private)
    {
        return Err(FieldViolation::new(field, private_refusal()));
    }
    Ok(url.to_string())
}

/// Why an address was refused.
pub fn private_refusal() -> &'static str {
    "names a private, loopback or link-local address, which this server does not deliver to \
     (the operator allows it with --webhook-allow-private)"
}

/// Whether a delivery may go to `ip`: any public address, and private ones
/// too when the operator allows them. Addresses nobody should reach (the
/// unspecified, broadcast and multicast ones, and the cloud metadata
/// service's link-local range) never.
pub fn is_reachable(ip: IpAddr, allow_private: bool) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() || v4.is_link_local() {
                return false;
            }
            allow_private || !is_private_v4(v4)
        }
        IpAddr::V6(v6) => {
            if v6.is_unspecified() || v6.is_multicast() || is_link_local_v6(v6) {
                return false;
            }
            allow_private || !is_private_v6(v6)
        }
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19))
        // "This network" and reserved ranges.
        || a == 0
        || a >= 240
}

fn is_link_local_v6(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    // Loopback, and unique local addresses (fc00::/7).
    ip.is_loopback() || ip.segments()[0] & 0xfe00 == 0xfc00
}

/// A signing secret: random bytes, shown to the caller as `whsec_` and
/// their base64.
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = vec![0; SECRET_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The form receivers configure: `whsec_` and the standard base64.
    pub fn reveal(&self) -> String {
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(&self.0)
        )
    }
}

/// Checks a rotation's grace period: whole seconds up to 7 days, 24 hours
/// when unset.
pub fn parse_grace(field: &str, grace: Option<(i64, i32)>) -> Result<i64, FieldViolation> {
    match grace {
        None => Ok(DEFAULT_GRACE.as_secs() as i64),
        Some((seconds, nanos)) => {
            super::organisation::whole_seconds(field, seconds, nanos, 0, MAX_GRACE_SECONDS)
        }
    }
}

/// The wait after a first failed attempt.
pub const FIRST_RETRY: Duration = Duration::from_secs(5);
/// The longest wait between attempts.
pub const LONGEST_WAIT: Duration = Duration::from_secs(2 * 60 * 60);

/// How long after its `attempt`-th failed attempt (1 for the first) a
/// delivery is tried again: `first` (5 seconds), doubling to at most 2
/// hours, and jittered by up to a fifth either way (`jitter` in [-1, 1])
/// so that the retries of many events do not arrive together.
pub fn backoff(first: Duration, attempt: i32, jitter: f64) -> Duration {
    let exponent = attempt.clamp(1, 32) - 1;
    let base = (first.as_secs_f64() * 2f64.powi(exponent)).min(LONGEST_WAIT.as_secs_f64());
    Duration::from_secs_f64(base * (1.0 + 0.2 * jitter.clamp(-1.0, 1.0)))
}

/// What to do after a failed attempt at `now`: try again at the time given,
/// or give up (dead letter) once the retry window since the first attempt
/// has passed.
pub fn after_failure(
    first_retry: Duration,
    attempt: i32,
    first_attempt: DateTime<Utc>,
    now: DateTime<Utc>,
    window: Duration,
    jitter: f64,
) -> Option<DateTime<Utc>> {
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    if now - first_attempt >= window {
        return None;
    }
    let wait = chrono::Duration::from_std(backoff(first_retry, attempt, jitter)).unwrap_or(window);
    Some(now + wait)
}

/// The start of an endpoint's answer, as kept: printable characters only,
/// at most [`EXCERPT_MAX_CHARS`] of them.
pub fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(EXCERPT_MAX_CHARS)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_or_https_with_a_host_and_no_credentials() {
        assert_eq!(
            parse_url("u", "https://tickets.example.org/hooks?x=1", false).unwrap(),
            "https://tickets.example.org/hooks?x=1"
        );
        for bad in [
            "",
            "ftp://example.org/",
            "https://user:pw@example.org/",
            "https://example.org/#top",
            "mailto:a@example.org",
            "/relative",
        ] {
            assert!(parse_url("u", bad, true).is_err(), "{bad}");
        }
        let long = format!("https://example.org/{}", "a".repeat(URL_MAX_CHARS));
        assert!(parse_url("u", &long, true).is_err());
    }

    #[test]
    fn private_addresses_in_urls_need_the_operators_leave() {
        for private in [
            "http://127.0.0.1:8080/h",
            "http://localhost/h",
            "http://api.localhost/h",
            "http://10.1.2.3/h",
            "http://192.168.0.5/h",
            "http://[::1]/h",
            "http://[fd00::1]/h",
            "http://[::ffff:10.0.0.1]/h",
        ] {
            let refused = parse_url("u", private, false).unwrap_err();
            assert!(refused.description.contains("--webhook-allow-private"));
            assert!(parse_url("u", private, true).is_ok(), "{private}");
        }
        // The metadata service and the unspecified address never.
        for never in [
            "http://169.254.169.254/latest",
            "http://0.0.0.0/h",
            "http://[fe80::1]/",
        ] {
            assert!(parse_url("u", never, true).is_err(), "{never}");
        }
        assert!(parse_url("u", "http://8.8.8.8/h", false).is_ok());
    }

    #[test]
    fn reachability_sorts_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(is_reachable(ip("93.184.216.34"), false));
        assert!(is_reachable(ip("2606:2800:220:1::1"), false));
        assert!(!is_reachable(ip("100.64.0.1"), false));
        assert!(!is_reachable(ip("172.16.0.1"), false));
        assert!(is_reachable(ip("172.16.0.1"), true));
        assert!(!is_reachable(ip("224.0.0.1"), true));
        assert!(!is_reachable(ip("255.255.255.255"), true));
    }

    #[test]
    fn message_ids_round_trip() {
        let id = Uuid::now_v7();
        let shown = message_id(id);
        assert!(shown.starts_with("msg_") && shown.len() == 36);
        assert_eq!(parse_message_id("e", &shown).unwrap(), id);
        assert_eq!(parse_message_id("e", &id.to_string()).unwrap(), id);
        assert!(parse_message_id("e", "msg_nothex").is_err());
    }

    #[test]
    fn secrets_are_whsec_and_base64_of_32_bytes() {
        let secret = Secret::generate().unwrap();
        let shown = secret.reveal();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(shown.strip_prefix("whsec_").unwrap())
            .unwrap();
        assert_eq!(decoded, secret.bytes());
        assert_eq!(decoded.len(), SECRET_BYTES);
    }

    #[test]
    fn backoff_doubles_from_five_seconds_to_two_hours() {
        let f = FIRST_RETRY;
        assert_eq!(backoff(f, 1, 0.0), Duration::from_secs(5));
        assert_eq!(backoff(f, 2, 0.0), Duration::from_secs(10));
        assert_eq!(backoff(f, 11, 0.0), Duration::from_secs(5 * 1024));
        assert_eq!(backoff(f, 12, 0.0), Duration::from_secs(7200));
        assert_eq!(backoff(f, 40, 0.0), Duration::from_secs(7200));
        assert_eq!(backoff(f, 1, 1.0), Duration::from_secs(6));
        assert_eq!(backoff(f, 1, -1.0), Duration::from_secs(4));
    }

    #[test]
    fn retries_run_for_the_whole_window_then_stop() {
        let first = Utc::now();
        let window = Duration::from_secs(24 * 60 * 60);
        let mut now = first;
        let mut attempt = 1;
        while let Some(next) = after_failure(FIRST_RETRY, attempt, first, now, window, 0.0) {
            assert!(next > now);
            now = next;
            attempt += 1;
        }
        assert!(now - first >= chrono::Duration::hours(24));
        assert!(now - first < chrono::Duration::hours(26));
        assert!((15..30).contains(&attempt), "{attempt} attempts");
    }

    #[test]
    fn excerpts_are_short_and_printable() {
        assert_eq!(excerpt(b"  ok\r\n"), "ok");
        assert_eq!(excerpt(&[b'x'; 1000]).len(), EXCERPT_MAX_CHARS);
        assert_eq!(excerpt(b"a\x00b"), "a b");
    }

    #[test]
    fn an_organisation_has_at_most_fifty_webhooks() {
        assert!(check_room(MAX_WEBHOOKS - 1).is_ok());
        assert_eq!(
            check_room(MAX_WEBHOOKS).unwrap_err().reason,
            "WEBHOOK_LIMIT"
        );
    }

    #[test]
    fn grace_is_a_day_unless_set_and_at_most_a_week() {
        assert_eq!(parse_grace("g", None).unwrap(), 86_400);
        assert_eq!(parse_grace("g", Some((0, 0))).unwrap(), 0);
        assert!(parse_grace("g", Some((MAX_GRACE_SECONDS + 1, 0))).is_err());
    }
}
