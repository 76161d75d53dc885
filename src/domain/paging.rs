//! Page sizes and opaque page tokens for keyset pagination.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::violation::FieldViolation;

/// The page size when the caller asks for none.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// The largest page; larger requests are coerced to it.
pub const MAX_PAGE_SIZE: i64 = 500;

const TOKEN_VERSION: u8 = 2;
/// The part of the HMAC a token carries: 128 bits.
const TAG_LEN: usize = 16;
const TOKEN_LEN: usize = 1 + 8 + 16 + TAG_LEN;

/// The number of rows to return for a requested `page_size`.
pub fn page_size(requested: i32) -> Result<i64, FieldViolation> {
    match requested {
        n if n < 0 => Err(FieldViolation::new(
            "page_size",
            format!("must not be negative, got {n}"),
        )),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok(i64::from(n).min(MAX_PAGE_SIZE)),
    }
}

/// The server's key for signing page tokens, kept in the database so that
/// every replica and every restart agrees on it.
#[derive(Clone)]
pub struct TokenKey(Arc<[u8]>);

impl TokenKey {
    pub fn new(key: &[u8]) -> Self {
        Self(key.into())
    }

    /// The list query of `organisation_id` with `filters` (a stable text of
    /// the request's filters), as its tokens are bound to.
    pub fn query(&self, organisation_id: Uuid, filters: &str) -> Query {
        let fingerprint = fingerprint(filters);
        let mut mac = hmac(&self.0);
        mac.update(organisation_id.as_bytes());
        mac.update(&fingerprint);
        Query { fingerprint, mac }
    }
}

/// A list query: its filters' fingerprint, and the HMAC keyed for its
/// organisation, which signs the position a token carries.
#[derive(Clone)]
pub struct Query {
    fingerprint: [u8; 8],
    mac: Hmac<Sha256>,
}

impl Query {
    fn tag(&self, after: Uuid) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(after.as_bytes());
        mac
    }
}

fn hmac(key: &[u8]) -> Hmac<Sha256> {
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

/// A fingerprint of a query's filters, stable across processes and versions:
/// it tells a token replayed with other filters from a forged one.
fn fingerprint(filters: &str) -> [u8; 8] {
    let digest = Sha256::digest(filters.as_bytes());
    let mut fingerprint = [0u8; 8];
    fingerprint.copy_from_slice(&digest[..8]);
    fingerprint
}

/// Where the next page starts: after the row with this id. A token is only
/// valid for the organisation and the filters of the query that produced it
/// (AIP-158), and its position is signed, so that a token replayed with
/// other filters, for another organisation, or altered is refused rather
/// than silently skipping rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageToken {
    pub after: Uuid,
}

impl PageToken {
    pub fn encode(&self, query: &Query) -> String {
        let mut bytes = Vec::with_capacity(TOKEN_LEN);
        bytes.push(TOKEN_VERSION);
        bytes.extend_from_slice(&query.fingerprint);
        bytes.extend_from_slice(self.after.as_bytes());
        bytes.extend_from_slice(&query.tag(self.after).finalize().into_bytes()[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Reads `token` for `query`; an empty token means the first page.
    pub fn decode(token: &str, query: &Query) -> Result<Option<Self>, FieldViolation> {
        if token.is_empty() {
            return Ok(None);
        }
        let invalid = || {
            FieldViolation::new(
                "page_token",
                "is not a token returned by this method; start again without one",
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        if bytes.len() != TOKEN_LEN || bytes[0] != TOKEN_VERSION {
            return Err(invalid());
        }
        if bytes[1..9] != query.fingerprint {
            return Err(FieldViolation::new(
                "page_token",
                "was issued for a request with other filters; repeat the filters of the first page",
            ));
        }
        let after = Uuid::from_slice(&bytes[9..25]).map_err(|_| invalid())?;
        query
            .tag(after)
            .verify_truncated_left(&bytes[25..])
            .map_err(|_| invalid())?;
        Ok(Some(PageToken { after }))
    }
}

/// How many of the first `items` fit in `budget` bytes together, as
/// `bytes` measures them.
pub fn how_many_fit<T>(items: &[T], budget: usize, bytes: impl Fn(&T) -> usize) -> usize {
    let mut used = 0usize;
    items
        .iter()
        .take_while(|item| {
            used = used.saturating_add(bytes(item));
            used <= budget
        })
        .count()
}

/// Splits a page off a query result of up to `size + 1` rows: at most
/// `size` rows, and only as many as fit in `budget` bytes as `bytes`
/// measures them (one at least), so that the answer fits in a message
/// (AIP-158 lets a page hold fewer than asked for). A row left over says
/// there is a next page, whose token points after the last row kept.
pub fn split_page<T>(
    mut rows: Vec<T>,
    size: i64,
    budget: usize,
    query: &Query,
    id: impl Fn(&T) -> Uuid,
    bytes: impl Fn(&T) -> usize,
) -> (Vec<T>, String) {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    let fits = how_many_fit(&rows[..rows.len().min(size)], budget, bytes).max(1);
    if rows.len() <= fits {
        return (rows, String::new());
    }
    rows.truncate(fits);
    let token = rows
        .last()
        .map(|last| PageToken { after: id(last) }.encode(query))
        .unwrap_or_default();
    (rows, token)
}

/// The rows of one list query, one more than a page holds when there is a
/// next page, each with the position a token after it carries. A door
/// turns it into the page it sends with [`Listing::page`].
pub struct Listing<T> {
    rows: Vec<(Uuid, T)>,
    size: i64,
    query: Query,
}

impl<T> Listing<T> {
    /// Rows read for a page of `size` (at most `size + 1` of them).
    pub fn new(rows: Vec<(Uuid, T)>, size: i64, query: Query) -> Self {
        Self { rows, size, query }
    }

    /// A listing with nothing in it.
    pub fn empty(query: Query) -> Self {
        Self::new(Vec::new(), 0, query)
    }

    /// The page to send: the rows as `convert` makes them, as many as fit
    /// in `budget` bytes as `bytes` measures them (see [`split_page`]), and
    /// the token of the next page.
    pub fn page<P>(
        self,
        budget: usize,
        mut convert: impl FnMut(T) -> P,
        bytes: impl Fn(&P) -> usize,
    ) -> (Vec<P>, String) {
        let rows: Vec<(Uuid, P)> = self
            .rows
            .into_iter()
            .map(|(position, row)| (position, convert(row)))
            .collect();
        let (page, token) = split_page(
            rows,
            self.size,
            budget,
            &self.query,
            |(position, _)| *position,
            |(_, row)| bytes(row),
        );
        (page.into_iter().map(|(_, row)| row).collect(), token)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key() -> TokenKey {
        TokenKey::new(b"a test key of thirty-two bytes..")
    }

    #[test]
    fn page_size_defaults_coerces_and_rejects_negatives() {
        assert_eq!(page_size(0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(7).unwrap(), 7);
        assert_eq!(page_size(100_000).unwrap(), MAX_PAGE_SIZE);
        let err = page_size(-1).unwrap_err();
        assert_eq!(err.field, "page_size");
    }

    #[test]
    fn a_token_is_refused_for_another_query_organisation_or_key() {
        let org = Uuid::now_v7();
        let token = PageToken {
            after: Uuid::now_v7(),
        }
        .encode(&key().query(org, "a"));
        let err = PageToken::decode(&token, &key().query(org, "b")).unwrap_err();
        assert!(err.description.contains("other filters"));
        let err = PageToken::decode(&token, &key().query(Uuid::now_v7(), "a")).unwrap_err();
        assert!(err.description.contains("not a token returned"));
        let other_key = TokenKey::new(b"another key");
        assert!(PageToken::decode(&token, &other_key.query(org, "a")).is_err());
    }

    #[test]
    fn an_altered_position_is_refused() {
        let query = key().query(Uuid::nil(), "q");
        let token = PageToken { after: Uuid::nil() }.encode(&query);
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[20] ^= 1;
        let forged = URL_SAFE_NO_PAD.encode(bytes);
        assert!(PageToken::decode(&forged, &query).is_err());
    }

    #[test]
    fn split_page_keeps_size_rows_and_points_after_the_last() {
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let query = key().query(Uuid::nil(), "q");
        let (page, token) = split_page(ids.clone(), 3, usize::MAX, &query, |id| *id, |_| 1);
        assert_eq!(page, ids[..3]);
        let decoded = PageToken::decode(&token, &query).unwrap().unwrap();
        assert_eq!(decoded.after, ids[2]);
        let (page, token) = split_page(ids[..3].to_vec(), 3, usize::MAX, &query, |id| *id, |_| 1);
        assert_eq!(page.len(), 3);
        assert!(token.is_empty());
    }

    #[test]
    fn a_page_holds_no_more_than_fits_its_budget_and_one_at_least() {
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let query = key().query(Uuid::nil(), "q");
        let (page, token) = split_page(ids.clone(), 5, 250, &query, |id| *id, |_| 100);
        assert_eq!(page, ids[..2]);
        assert_eq!(
            PageToken::decode(&token, &query).unwrap().unwrap().after,
            ids[1]
        );
        let (page, token) = split_page(ids.clone(), 5, 10, &query, |id| *id, |_| 100);
        assert_eq!(page, ids[..1]);
        assert!(!token.is_empty());
        let (page, token) = split_page(Vec::<Uuid>::new(), 5, 10, &query, |id| *id, |_| 100);
        assert!(page.is_empty() && token.is_empty());
    }

    proptest! {
        #[test]
        fn tokens_round_trip(bytes in any::<[u8; 16]>(), filters in ".*") {
            let query = key().query(Uuid::nil(), &filters);
            let token = PageToken { after: Uuid::from_bytes(bytes) };
            prop_assert_eq!(PageToken::decode(&token.encode(&query), &query).unwrap(), Some(token));
        }

        #[test]
        fn arbitrary_tokens_never_panic(token in ".*") {
            let _ = PageToken::decode(&token, &key().query(Uuid::nil(), ""));
        }
    }
}
