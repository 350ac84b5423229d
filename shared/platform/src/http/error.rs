//! The one place errors become HTTP responses:
//! `{"error": {"code": "snake_case", "message": "...", "details": {...}}}`.
//! 5xx answers say nothing internal; their cause chain goes to the log.

use axum::response::{IntoResponse, Response};
use domain::idempotency::IdempotencyError;
use domain::{StoreError, ValidationError};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    /// Logged for 5xx, never sent.
    pub cause: Option<String>,
}

/// The error body, for the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case; partners branch on it.
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            cause: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// A business rule said no (422).
    pub fn rule(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required: Authorization: Bearer <key>",
        )
    }

    pub fn forbidden(scope: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "missing_scope",
            format!("this key lacks the scope {scope}"),
        )
        .with_details(json!({ "scope": scope }))
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is over the limit of {limit} bytes"),
        )
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self {
            cause: Some(cause.to_string()),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "something went wrong on our side",
            )
        }
    }

    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        Self {
            cause: Some(cause.to_string()),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "a dependency is unavailable; retry with the same Idempotency-Key",
            )
        }
    }

    /// The JSON body as sent (also what idempotent replays store).
    pub fn body(&self) -> String {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
                details: self.details.clone(),
            },
        };
        serde_json::to_string(&body).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(
                code = self.code,
                cause = self.cause.as_deref().unwrap_or(""),
                "request failed"
            );
        }
        // The body exactly as `body()` writes it, which is also what an
        // idempotent replay sends: a re-parsed Value would reorder its keys.
        let mut resp = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.body(),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::bad_request("invalid_field", format!("{}: {}", e.field, e.reason))
            .with_details(json!({ "field": e.field }))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => ApiError::conflict(
                "conflict",
                "the record changed while this request ran; retry",
            ),
            StoreError::Unavailable(cause) => ApiError::unavailable(cause),
            StoreError::Corrupt(cause) => ApiError::internal(cause),
        }
    }
}

impl From<IdempotencyError> for ApiError {
    fn from(e: IdempotencyError) -> Self {
        match e {
            IdempotencyError::Reused => ApiError::rule(
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request",
            ),
            IdempotencyError::InFlight | IdempotencyError::LockLost => ApiError::conflict(
                "idempotency_key_in_flight",
                "a request with this Idempotency-Key is still being processed; retry later",
            ),
            IdempotencyError::Store(s) => s.into(),
        }
    }
}

impl From<domain::voucher::VoucherError> for ApiError {
    fn from(e: domain::voucher::VoucherError) -> Self {
        use domain::voucher::VoucherError as V;
        let code = e.code();
        let message = e.to_string();
        match e {
            V::Invalid(v) => v.into(),
            V::Store(s) => s.into(),
            V::NotFound { mistyped } => {
                let err = ApiError::not_found(code, message);
                if mistyped {
                    err.with_details(json!({ "hint": "the code's check character does not match: it is probably mistyped" }))
                } else {
                    err
                }
            }
            V::RedemptionNotFound | V::HoldNotFound => ApiError::not_found(code, message),
            // The same answers as the idempotency wrapper's own.
            V::IdempotencyKeyInFlight => IdempotencyError::InFlight.into(),
            V::IdempotencyKeyReused => IdempotencyError::Reused.into(),
            V::CodeTaken => ApiError::conflict(code, message),
            V::CodeAmbiguous { issuers } => {
                ApiError::conflict(code, message).with_details(json!({ "issuers": issuers }))
            }
            V::InsufficientBalance { available } => {
                ApiError::rule(code, message).with_details(json!({ "available": available }))
            }
            V::Expired { valid_until } => {
                ApiError::rule(code, message).with_details(json!({ "valid_until": valid_until }))
            }
            V::CurrencyMismatch { expected } => {
                ApiError::rule(code, message).with_details(json!({ "expected": expected }))
            }
            V::PackageRequiresFullRedemption { balance } => {
                ApiError::rule(code, message).with_details(json!({ "balance": balance }))
            }
            V::TestModeMismatch { voucher_test_mode } => ApiError::rule(code, message)
                .with_details(json!({ "voucher_test_mode": voucher_test_mode })),
            V::ReversalExceedsRedemption { reversible } => {
                ApiError::rule(code, message).with_details(json!({ "reversible": reversible }))
            }
            V::RedemptionBelongsToOrder { order_id } => {
                ApiError::rule(code, message).with_details(json!({ "order_id": order_id }))
            }
            V::CaptureExceedsHold { held } => {
                ApiError::rule(code, message).with_details(json!({ "held": held }))
            }
            V::CursorOutOfRange { last } => ApiError::rule(code, message)
                .with_details(json!({ "last_cursor": last.to_string() })),
            V::Blocked
            | V::Cancelled
            | V::NotRedeemableHere
            | V::ZeroValue
            | V::NotIssuer
            | V::NotAGiftCard
            | V::HoldClosed
            | V::HoldExpired
            | V::TooManyHolds => ApiError::rule(code, message),
        }
    }
}

impl From<domain::roster::service::RosterError> for ApiError {
    fn from(e: domain::roster::service::RosterError) -> Self {
        use domain::roster::service::RosterError as R;
        match e {
            R::ImportNotFound => ApiError::not_found("import_not_found", e.to_string()),
            R::NotHeld(_) => ApiError::rule("import_not_held", e.to_string()),
            R::Superseded => ApiError::conflict("import_superseded", e.to_string()),
            R::Store(s) => s.into(),
        }
    }
}

impl From<domain::checkout::CheckoutError> for ApiError {
    fn from(e: domain::checkout::CheckoutError) -> Self {
        use domain::checkout::CheckoutError as C;
        let message = e.to_string();
        match e {
            C::UnknownProduct(_) | C::UnknownUnit { .. } => ApiError::rule(e.code(), message),
            C::InvalidOrder(_) | C::InvalidPayment(_) => ApiError::bad_request(e.code(), message),
            _ => ApiError::rule(e.code(), message),
        }
    }
}
