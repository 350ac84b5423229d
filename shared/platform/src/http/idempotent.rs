//! The idempotency wrapper every mutating route goes through.
//!
//! Same key + same request → the stored status and body, byte for byte, with
//! `Idempotency-Replayed: true`; another request under the key → 422
//! `idempotency_key_reused`; while the first attempt runs → 409
//! `idempotency_key_in_flight`. Rule violations (4xx) are stored and
//! replayed like successes; 5xx, 409 and 429 release the key so a retry
//! runs again.
//!
//! [`Idempotent::run`] locks the key first (one write) because its
//! operation may take several writes. [`Idempotent::run_atomic`] is for
//! operations that commit their effect and the answer in one transaction:
//! no lock, the operation reads the record with its own data, and two
//! racing attempts end with one commit and one replay of it.

use std::future::Future;

use axum::response::{IntoResponse, Response};
use domain::idempotency::{
    Begin, IdempotencyError, IdempotencyKey, IdempotencyPolicy, IdempotencyScope, Lease,
    StoredResponse, decide_existing, fingerprint,
};
use domain::ports::IdempotencyStore;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Serialize;

use super::caller::Caller;
use super::error::ApiError;
use crate::Store;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotency-replayed";

/// What an operation answered.
pub struct Outcome {
    pub status: StatusCode,
    pub body: String,
    /// True when the operation already committed the idempotency record in
    /// its own transaction (see `Store::idempotency_completion`).
    pub already_stored: bool,
    /// True when this is the stored answer of an earlier attempt.
    pub replayed: bool,
}

impl Outcome {
    pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Self {
        Self {
            status,
            body: serde_json::to_string(value).unwrap_or_default(),
            already_stored: false,
            replayed: false,
        }
    }

    pub fn stored(mut self) -> Self {
        self.already_stored = true;
        self
    }
}

/// One request's idempotency context.
pub struct Idempotent<'a> {
    store: &'a Store,
    caller: &'a Caller,
    /// Names the operation family the key lives in (e.g. "vouchers").
    operation: &'static str,
    /// The request path and canonical body; any difference is "another request".
    path: &'a str,
    canonical_body: &'a str,
    /// Refuse requests without a key (money-moving routes).
    required: bool,
}

pub fn json_response(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut resp = json_response(status, stored.body);
    resp.headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    resp
}

/// Should this error be stored and replayed, or released for a retry?
fn is_final(status: StatusCode) -> bool {
    status.is_client_error()
        && status != StatusCode::CONFLICT
        && status != StatusCode::TOO_MANY_REQUESTS
}

impl<'a> Idempotent<'a> {
    /// The one way a route opens its idempotency context: keys live per
    /// partner, property and `operation`; `path` and `canonical_body` make
    /// the request's fingerprint. A key is optional until [`Self::required`].
    pub fn new(
        store: &'a Store,
        caller: &'a Caller,
        operation: &'static str,
        path: &'a str,
        canonical_body: &'a str,
    ) -> Self {
        Self {
            store,
            caller,
            operation,
            path,
            canonical_body,
            required: false,
        }
    }

    /// Refuses requests without an `Idempotency-Key` (money-moving routes).
    pub fn required(self) -> Self {
        Self {
            required: true,
            ..self
        }
    }
}

impl Idempotent<'_> {
    pub fn policy() -> IdempotencyPolicy {
        IdempotencyPolicy::default()
    }

    /// The key sent, if any: `Err` when it is malformed or required and
    /// missing.
    fn key(&self, headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
        match headers.get(HEADER) {
            None if self.required => Err(ApiError::bad_request(
                "idempotency_key_required",
                "this operation needs an Idempotency-Key header",
            )),
            None => Ok(None),
            Some(v) => Ok(Some(IdempotencyKey::parse(v.to_str().unwrap_or("\u{0}"))?)),
        }
    }

    /// The record id and request fingerprint of `key` in this context.
    fn identify(&self, key: IdempotencyKey) -> (IdempotencyScope, String) {
        let scope = IdempotencyScope {
            partner: self.caller.partner.id.0.clone(),
            property: self.caller.property.id.as_str().to_owned(),
            operation: self.operation.to_owned(),
            key,
        };
        let fp = fingerprint(&[self.path.as_bytes(), self.canonical_body.as_bytes()]);
        (scope, fp)
    }

    /// Runs `op` at most once per key. `op` gets the lease (when a key was
    /// sent) so it may commit the response atomically with its own writes.
    pub async fn run<F, Fut>(self, headers: &HeaderMap, op: F) -> Result<Response, ApiError>
    where
        F: FnOnce(Option<Lease>) -> Fut,
        Fut: Future<Output = Result<Outcome, ApiError>>,
    {
        let Some(key) = self.key(headers)? else {
            let out = op(None).await?;
            return Ok(json_response(out.status, out.body));
        };
        let (scope, fp) = self.identify(key);
        let lease = match self.store.begin(&scope, &fp, Self::policy()).await? {
            Begin::Replay(stored) => return Ok(replay(stored)),
            Begin::Acquired(lease) => lease,
        };
        match op(Some(lease.clone())).await {
            Ok(out) => {
                if !out.already_stored {
                    let stored = StoredResponse {
                        status: out.status.as_u16(),
                        body: out.body.clone(),
                    };
                    self.store.complete(&lease, &stored, Self::policy()).await?;
                }
                Ok(json_response(out.status, out.body))
            }
            Err(err) if is_final(err.status) => {
                let stored = StoredResponse {
                    status: err.status.as_u16(),
                    body: err.body(),
                };
                self.store.complete(&lease, &stored, Self::policy()).await?;
                Err(err)
            }
            Err(err) => {
                if let Err(e) = self.store.release(&lease).await {
                    tracing::warn!(error = %e, "could not release an idempotency lock; it will expire");
                }
                Err(err)
            }
        }
    }

    /// Runs `op` at most once per key without locking it. `op` must read the
    /// record (`Store::idempotency_key`) together with its data, answer with
    /// the stored response when there is one (`Outcome::replayed`), and
    /// commit its answer in its own transaction (`already_stored`). A final
    /// error is stored only while the key is still free; when another
    /// attempt got there first, its answer is the answer.
    pub async fn run_atomic<F, Fut>(self, headers: &HeaderMap, op: F) -> Result<Response, ApiError>
    where
        F: FnOnce(Option<Lease>) -> Fut,
        Fut: Future<Output = Result<Outcome, ApiError>>,
    {
        let Some(key) = self.key(headers)? else {
            let out = op(None).await?;
            return Ok(json_response(out.status, out.body));
        };
        let (scope, fp) = self.identify(key);
        let lease = Lease::unlocked(scope.record_id(), fp, scope.property.clone());
        let result = op(Some(lease.clone())).await;
        let stored = match &result {
            Ok(out) if out.replayed => {
                return Ok(replay(StoredResponse {
                    status: out.status.as_u16(),
                    body: out.body.clone(),
                }));
            }
            Ok(out) if out.already_stored => {
                return Ok(json_response(out.status, out.body.clone()));
            }
            Ok(out) => StoredResponse {
                status: out.status.as_u16(),
                body: out.body.clone(),
            },
            Err(err) if is_final(err.status) => StoredResponse {
                status: err.status.as_u16(),
                body: err.body(),
            },
            Err(_) => return result.map(|out| json_response(out.status, out.body)),
        };
        match self.store.complete(&lease, &stored, Self::policy()).await {
            Ok(()) => result.map(|out| json_response(out.status, out.body)),
            Err(IdempotencyError::LockLost) => {
                let existing = self
                    .store
                    .idempotency_record(&lease.record_id)
                    .await?
                    .ok_or(IdempotencyError::InFlight)?;
                Ok(replay(decide_existing(&existing, &lease.fingerprint)?))
            }
            Err(e) => Err(e.into()),
        }
    }
}
