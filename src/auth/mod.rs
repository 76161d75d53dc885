//! Authentication: `authorization: Bearer <key>` → organisation and role.
//!
//! A tower layer in front of every service. It resolves the key once per
//! call and puts the [`Principal`] into the request's extensions, where a
//! door finds its caller; the core then checks that the caller's role
//! allows the use case (`crate::app::access`). Health and reflection need
//! no key.

pub mod key_cache;

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use sqlx::PgPool;
use tonic::{Status, body::Body};
use tower::{Layer, Service};

use crate::{
    auth::key_cache::KeyCache,
    domain::api_key::{Principal, bearer_token, hash_secret},
    error::Error,
    store,
};

/// Services any caller may use without a key.
const PUBLIC_PREFIXES: &[&str] = &["/grpc.health.v1.", "/grpc.reflection."];

#[derive(Clone)]
pub struct AuthLayer {
    pool: PgPool,
    keys: KeyCache,
}

impl AuthLayer {
    pub fn new(pool: PgPool, keys: KeyCache) -> Self {
        Self { pool, keys }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            pool: self.pool.clone(),
            keys: self.keys.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    pool: PgPool,
    keys: KeyCache,
}

impl<S, B> Service<http::Request<B>> for Authenticate<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was driven to readiness serves this call; the fresh
        // clone stays for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let pool = self.pool.clone();
        let keys = self.keys.clone();
        Box::pin(async move {
            let path = request.uri().path();
            if PUBLIC_PREFIXES
                .iter()
                .any(|prefix| path.starts_with(prefix))
            {
                return inner.call(request).await;
            }
            match authenticate(&pool, &keys, request.headers()).await {
                Ok(principal) => {
                    tracing::Span::current().record(
                        "organisation",
                        tracing::field::display(principal.organisation_id),
                    );
                    request.extensions_mut().insert(principal);
                    inner.call(request).await
                }
                Err(error) => Ok(Status::from(error).into_http()),
            }
        })
    }
}

/// The caller behind the request's `authorization` header.
pub(crate) async fn authenticate(
    pool: &PgPool,
    keys: &KeyCache,
    headers: &http::HeaderMap,
) -> Result<Principal, Error> {
    let Some(header) = headers.get(http::header::AUTHORIZATION) else {
        return Err(Error::Unauthenticated {
            reason: "API_KEY_MISSING",
            message: "missing api key: send the metadata \"authorization: Bearer <key>\"",
        });
    };
    let token = header
        .to_str()
        .ok()
        .and_then(bearer_token)
        .ok_or(Error::Unauthenticated {
            reason: "AUTHORIZATION_MALFORMED",
            message: "the authorization metadata must have the form \"Bearer <key>\"",
        })?;
    let secret_hash = hash_secret(token);
    let miss = match keys.get(&secret_hash) {
        Ok(principal) => return Ok(principal),
        Err(miss) => miss,
    };
    let principal = store::api_key::authenticate(pool, &secret_hash).await?;
    if let Some(principal) = principal {
        keys.remember(miss, secret_hash, principal);
    }
    principal.ok_or(Error::Unauthenticated {
        reason: "API_KEY_INVALID",
        message: "the api key is unknown or revoked",
    })
}
