//! Normalising what differs between two runs of the same calls, so that
//! the two doors' answers and rows can be compared.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// Replaces what differs between two runs of the same calls: ids (each
/// distinct one becomes `id#n` in order of appearance, so references stay
/// checked), times the server took from its clock (`<now>`; the fixed
/// times the scenarios send are kept), secrets, digests and page tokens.
pub(super) struct Normaliser {
    ids: HashMap<String, usize>,
    /// Times from here on are the server's clock's.
    since: DateTime<Utc>,
}

impl Normaliser {
    pub(super) fn new(since: DateTime<Utc>) -> Self {
        Self {
            ids: HashMap::new(),
            since,
        }
    }

    pub(super) fn value(&mut self, value: &Value, key: &str) -> Value {
        match value {
            Value::Object(object) => {
                let mut out = Map::new();
                for (k, v) in object {
                    out.insert(k.clone(), self.value(v, k));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.value(v, key)).collect()),
            Value::String(text) => match key {
                "secret" | "secretPrefix" | "secret_prefix" | "previous_secret" => {
                    json!("<secret>")
                }
                "nextPageToken" | "pageToken" if !text.is_empty() => json!("<page token>"),
                k if k.ends_with("_hash") || k == "customer_key" => json!("<digest>"),
                _ => Value::String(self.text(text)),
            },
            other => other.clone(),
        }
    }

    fn text(&mut self, text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        while at < bytes.len() {
            if let Some(id) = uuid_at(text, at) {
                let next = self.ids.len() + 1;
                let n = *self.ids.entry(id.to_ascii_lowercase()).or_insert(next);
                out.push_str(&format!("id#{n}"));
                at += 36;
                continue;
            }
            if let Some((time, length)) = time_at(text, at) {
                if time >= self.since {
                    out.push_str("<now>");
                } else {
                    out.push_str(&text[at..at + length]);
                }
                at += length;
                continue;
            }
            let c = text[at..].chars().next().unwrap();
            out.push(c);
            at += c.len_utf8();
        }
        out
    }
}

/// The UUID that starts at `at`, when one does.
fn uuid_at(text: &str, at: usize) -> Option<&str> {
    let candidate = text.get(at..at + 36)?;
    let ok = candidate.bytes().enumerate().all(|(i, b)| match i {
        8 | 13 | 18 | 23 => b == b'-',
        _ => b.is_ascii_hexdigit(),
    });
    let bounded = at == 0 || !text.as_bytes()[at - 1].is_ascii_alphanumeric();
    (ok && bounded).then_some(candidate)
}

/// The RFC 3339 time (or PostgreSQL's JSON form of one) that starts at
/// `at`, and its length.
fn time_at(text: &str, at: usize) -> Option<(DateTime<Utc>, usize)> {
    let bytes = text.as_bytes();
    let digits = |from: usize, n: usize| {
        bytes
            .get(from..from + n)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let char_at = |i: usize| bytes.get(i).copied();
    if !(digits(at, 4)
        && char_at(at + 4) == Some(b'-')
        && digits(at + 5, 2)
        && char_at(at + 7) == Some(b'-')
        && digits(at + 8, 2)
        && matches!(char_at(at + 10), Some(b'T' | b' '))
        && digits(at + 11, 2)
        && char_at(at + 13) == Some(b':')
        && digits(at + 14, 2)
        && char_at(at + 16) == Some(b':')
        && digits(at + 17, 2))
    {
        return None;
    }
    let mut end = at + 19;
    if char_at(end) == Some(b'.') {
        end += 1;
        while char_at(end).is_some_and(|b| b.is_ascii_digit()) {
            end += 1;
        }
    }
    match char_at(end) {
        Some(b'Z') => end += 1,
        Some(b'+' | b'-') if digits(end + 1, 2) && char_at(end + 3) == Some(b':') => end += 6,
        Some(b'+' | b'-') if digits(end + 1, 2) => end += 3,
        _ => return None,
    }
    let mut candidate = text[at..end].replacen(' ', "T", 1);
    if candidate.len() == end - at && candidate.as_bytes()[candidate.len() - 3] != b':' {
        // "+00" as PostgreSQL writes it.
        if matches!(candidate.as_bytes()[candidate.len() - 3], b'+' | b'-') {
            candidate.push_str(":00");
        }
    }
    let time = DateTime::parse_from_rfc3339(&candidate).ok()?;
    Some((time.with_timezone(&Utc), end - at))
}
