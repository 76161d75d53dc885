//! Page sizes and opaque page tokens for keyset pagination.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::violation::FieldViolation;

/// The page size when the caller asks for none.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// The largest page; larger requests are coerced to it.
pub const MAX_PAGE_SIZE: i64 = 500;

const TOKEN_VERSION: u8 = 1;
const TOKEN_LEN: usize = 1 + 8 + 16;

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

/// Where the next page starts: after the row with this id, for the query
/// whose filters hash to `query`. Tokens are only valid for the query that
/// produced them (AIP-158), so a token replayed with other filters is refused
/// rather than silently skipping rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageToken {
    pub query: [u8; 8],
    pub after: Uuid,
}

/// A fingerprint of a query's filters, stable across processes and versions.
pub fn query_fingerprint(filters: &str) -> [u8; 8] {
    let digest = Sha256::digest(filters.as_bytes());
    let mut fingerprint = [0u8; 8];
    fingerprint.copy_from_slice(&digest[..8]);
    fingerprint
}

impl PageToken {
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(TOKEN_LEN);
        bytes.push(TOKEN_VERSION);
        bytes.extend_from_slice(&self.query);
        bytes.extend_from_slice(self.after.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Reads `token` for the query with fingerprint `query`; an empty token
    /// means the first page.
    pub fn decode(token: &str, query: [u8; 8]) -> Result<Option<Self>, FieldViolation> {
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
        if bytes[1..9] != query {
            return Err(FieldViolation::new(
                "page_token",
                "was issued for a request with other filters; repeat the filters of the first page",
            ));
        }
        let after = Uuid::from_slice(&bytes[9..]).map_err(|_| invalid())?;
        Ok(Some(PageToken { query, after }))
    }
}

/// Splits one row more than the page holds off a query result: its presence
/// says there is a next page, whose token points after the last row kept.
pub fn split_page<T>(
    mut rows: Vec<T>,
    size: i64,
    query: [u8; 8],
    id: impl Fn(&T) -> Uuid,
) -> (Vec<T>, String) {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if rows.len() <= size {
        return (rows, String::new());
    }
    rows.truncate(size);
    let token = rows
        .last()
        .map(|last| {
            PageToken {
                query,
                after: id(last),
            }
            .encode()
        })
        .unwrap_or_default();
    (rows, token)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn page_size_defaults_coerces_and_rejects_negatives() {
        assert_eq!(page_size(0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(7).unwrap(), 7);
        assert_eq!(page_size(100_000).unwrap(), MAX_PAGE_SIZE);
        let err = page_size(-1).unwrap_err();
        assert_eq!(err.field, "page_size");
    }

    #[test]
    fn a_token_is_refused_for_another_query() {
        let token = PageToken {
            query: query_fingerprint("a"),
            after: Uuid::now_v7(),
        }
        .encode();
        let err = PageToken::decode(&token, query_fingerprint("b")).unwrap_err();
        assert!(err.description.contains("other filters"));
    }

    #[test]
    fn split_page_keeps_size_rows_and_points_after_the_last() {
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let query = query_fingerprint("q");
        let (page, token) = split_page(ids.clone(), 3, query, |id| *id);
        assert_eq!(page, ids[..3]);
        let decoded = PageToken::decode(&token, query).unwrap().unwrap();
        assert_eq!(decoded.after, ids[2]);
        let (page, token) = split_page(ids[..3].to_vec(), 3, query, |id| *id);
        assert_eq!(page.len(), 3);
        assert!(token.is_empty());
    }

    proptest! {
        #[test]
        fn tokens_round_trip(bytes in any::<[u8; 16]>(), filters in ".*") {
            let query = query_fingerprint(&filters);
            let token = PageToken { query, after: Uuid::from_bytes(bytes) };
            prop_assert_eq!(PageToken::decode(&token.encode(), query).unwrap(), Some(token));
        }

        #[test]
        fn arbitrary_tokens_never_panic(token in ".*") {
            let _ = PageToken::decode(&token, query_fingerprint(""));
        }
    }
}
