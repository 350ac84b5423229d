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

/// A body that could not be read: over the limit (413) or cut off (400).
impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(e: axum::extract::rejection::BytesRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is over the size limit",
            )
        } else {
            ApiError::bad_request("unreadable_body", "the request body could not be read")
        }
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

impl From<domain::guest::GuestError> for ApiError {
    fn from(e: domain::guest::GuestError) -> Self {
        use domain::guest::GuestError as E;
        match e {
            E::NotFound => ApiError::not_found("guest_not_found", e.to_string()),
            E::Erased => ApiError::rule("guest_erased", e.to_string()),
            E::EmailTaken => ApiError::conflict("email_taken", e.to_string()),
            E::CreationRaced => ApiError::unavailable(e.to_string()),
            E::ErasureNotFound => ApiError::not_found("erasure_not_found", e.to_string()),
            E::WebhookNotFound => ApiError::not_found("webhook_not_found", e.to_string()),
            E::WebhookNotJson => ApiError::bad_request("malformed_json", e.to_string()),
            E::WebhookEventUnnamed => ApiError::bad_request("invalid_event", e.to_string()),
            E::CrmNotConnected => ApiError::rule("crm_not_connected", e.to_string()),
            E::CrmUnavailable(_) => ApiError::unavailable(e),
            E::ScreeningCheckNotFound => {
                ApiError::not_found("screening_check_not_found", e.to_string())
            }
            E::ScreeningSignatureInvalid => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", e.to_string())
            }
            E::ScreeningCheckClosed => ApiError::conflict("screening_check_closed", e.to_string()),
            E::ScreeningSecretUnavailable => ApiError::unavailable(e.to_string()),
            E::Store(e) => e.into(),
        }
    }
}

impl From<domain::events::EventsError> for ApiError {
    fn from(e: domain::events::EventsError) -> Self {
        use domain::events::EventsError as E;
        match e {
            E::TooManySubscriptions => ApiError::conflict("too_many_subscriptions", e.to_string()),
            E::SubscriptionNotFound => ApiError::not_found("subscription_not_found", e.to_string()),
            E::DeliveryNotFound => ApiError::not_found("delivery_not_found", e.to_string()),
            E::Invalid(v) => v.into(),
            E::Store(s) => s.into(),
        }
    }
}

impl From<domain::loyalty::error::LoyaltyError> for ApiError {
    fn from(e: domain::loyalty::error::LoyaltyError) -> Self {
        use domain::loyalty::error::LoyaltyError as E;
        match e {
            E::NumberTaken => ApiError::conflict("loyalty_number_taken", e.to_string()),
            E::DepartureNotFound => ApiError::not_found("departure_not_found", e.to_string()),
            E::Store(e) => e.into(),
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
            V::TooManyLines { .. } | V::LookupNeedsOne => ApiError::bad_request(code, message),
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
            R::UploadType => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                e.to_string(),
            ),
            R::UploadTooLarge { limit_bytes } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                e.to_string(),
            )
            .with_details(json!({ "limit_bytes": limit_bytes })),
            R::UploadCutOff => ApiError::bad_request("unreadable_body", e.to_string()),
            R::NoDropBucket => ApiError::rule("upload_url_unavailable", e.to_string()),
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
            C::InvalidOrder(_)
            | C::InvalidPayment(_)
            | C::MemberFieldsMissing(_)
            | C::InvalidQuery(_)
            | C::InvalidField(_) => ApiError::bad_request(e.code(), message),
            C::ProductNotFound | C::OrderNotFound | C::MembershipNotFound(_) => {
                ApiError::not_found(e.code(), message)
            }
            _ => ApiError::rule(e.code(), message),
        }
    }
}

/// An error on the OCTO supplier API (`/octo/…`), in OCTO's shape:
/// `{"error": "INVALID_PRODUCT_ID", "errorMessage": "...", "productId": "..."}`.
/// Every refusal there becomes one through here: OCTO's own
/// ([`domain::octo::OctoError`]) and the hub's ([`ApiError`], mapped by
/// [`OCTO_CODES`]).
#[derive(Debug, Clone)]
pub struct OctoApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// OCTO's field beside the code (`productId`, `uuid`, …).
    pub field: Option<(&'static str, String)>,
    cause: Option<String>,
}

/// Every OCTO error code with its status. The pinned OCTO document declares
/// its errors under 400; only an internal failure is a 5xx.
pub const OCTO_CODES: &[(&str, u16)] = &[
    ("UNAUTHORIZED", 400),
    ("FORBIDDEN", 400),
    ("INVALID_PRODUCT_ID", 400),
    ("INVALID_OPTION_ID", 400),
    ("INVALID_UNIT_ID", 400),
    ("INVALID_AVAILABILITY_ID", 400),
    ("INVALID_BOOKING_UUID", 400),
    ("BAD_REQUEST", 400),
    ("UNPROCESSABLE_ENTITY", 400),
    ("INTERNAL_SERVER_ERROR", 500),
];

impl OctoApiError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        let status = OCTO_CODES
            .iter()
            .find(|(c, _)| *c == code)
            .and_then(|(_, s)| StatusCode::from_u16(*s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            cause: None,
        }
    }

    /// The JSON body as sent.
    pub fn body(&self) -> String {
        let mut body = json!({ "error": self.code, "errorMessage": self.message });
        if let Some((k, v)) = &self.field {
            body[*k] = json!(v);
        }
        body.to_string()
    }
}

impl From<domain::octo::OctoError> for OctoApiError {
    fn from(e: domain::octo::OctoError) -> Self {
        let mut out = OctoApiError::new(e.code(), e.to_string());
        out.field = e.field().map(|(k, v)| (k, v.to_owned()));
        out
    }
}

impl From<ApiError> for OctoApiError {
    fn from(e: ApiError) -> Self {
        let code = match (e.status.as_u16(), e.code) {
            (401, _) => "UNAUTHORIZED",
            // A property the key does not reach, or that does not exist.
            (403, _) | (_, "property_not_found") => "FORBIDDEN",
            (s, _) if s >= 500 => "INTERNAL_SERVER_ERROR",
            (422, _) | (409, _) => "UNPROCESSABLE_ENTITY",
            _ => "BAD_REQUEST",
        };
        let message = if code == "INTERNAL_SERVER_ERROR" {
            "something went wrong on our side".to_owned()
        } else {
            e.message.clone()
        };
        OctoApiError {
            cause: e.cause.clone().or_else(|| Some(e.code.to_owned())),
            ..OctoApiError::new(code, message)
        }
    }
}

impl From<StoreError> for OctoApiError {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<domain::checkout::CheckoutError> for OctoApiError {
    fn from(e: domain::checkout::CheckoutError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<ValidationError> for OctoApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for OctoApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(
                code = self.code,
                cause = self.cause.as_deref().unwrap_or(""),
                "OCTO request failed"
            );
        }
        let mut r = (self.status, self.body()).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    }
}

/// One error code the hub can answer with: the statuses it comes with, what
/// it means and what the caller should do. `CODES` lists every code once;
/// `docs/errors.md` and the OpenAPI error schema are generated from it, and
/// tests check that what the routes and the domain's refusals answer is
/// listed (`tests/tests/it/api_docs.rs`).
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode {
    pub code: &'static str,
    pub statuses: &'static [u16],
    pub meaning: &'static str,
    pub action: &'static str,
}

const fn c(
    code: &'static str,
    statuses: &'static [u16],
    meaning: &'static str,
    action: &'static str,
) -> ErrorCode {
    ErrorCode {
        code,
        statuses,
        meaning,
        action,
    }
}

const FIX: &str = "Fix the request as `message` and `details` say; do not retry it unchanged.";
const RETRY: &str = "Retry with the same `Idempotency-Key` (after a short, growing wait).";
const LOOK_UP: &str =
    "Check the identifier (and the property in the path); do not retry unchanged.";

/// Every error code, once, in the order of `docs/errors.md`.
pub const CODES: &[ErrorCode] = &[
    // The request itself
    c(
        "malformed_json",
        &[400],
        "The body is not valid JSON (`details.line`, `details.column`).",
        FIX,
    ),
    c(
        "invalid_field",
        &[400],
        "A field is missing, malformed, out of bounds or not taken by this route (`details.field` names it).",
        FIX,
    ),
    c(
        "duplicate_field",
        &[400],
        "A key appears twice in one JSON object (`details.field`).",
        FIX,
    ),
    c(
        "invalid_query",
        &[400],
        "A query parameter is missing, malformed or out of range.",
        FIX,
    ),
    c(
        "invalid_path",
        &[400],
        "The path is not UTF-8 once percent-decoded.",
        FIX,
    ),
    c(
        "unreadable_body",
        &[400],
        "The request body could not be read (the connection broke while sending it).",
        "Send the request again.",
    ),
    c(
        "unsupported_media_type",
        &[415],
        "A JSON route was called without `Content-Type: application/json`, or a club file was uploaded with a type that is not a club file's.",
        "Send `Content-Type: application/json` (a club file upload: `text/csv`, `text/tab-separated-values`, an XLSX/XLS type, or `application/octet-stream` with `?filename=`).",
    ),
    c(
        "body_too_large",
        &[413],
        "The body is over the hub's size limit.",
        "Send less per request (split a batch).",
    ),
    c(
        "too_many_lines",
        &[400],
        "A batch carries more lines than one request takes.",
        "Split the batch into several requests.",
    ),
    c(
        "idempotency_key_required",
        &[400],
        "This route needs an `Idempotency-Key` header.",
        "Send a fresh key (e.g. a UUID) per logical operation; reuse it only to retry.",
    ),
    c(
        "route_not_found",
        &[404],
        "No such route.",
        "Check the path against the API reference (`/docs`).",
    ),
    c(
        "method_not_allowed",
        &[405],
        "The route does not take this method; the `Allow` header lists those it takes.",
        "Use a method from `Allow`.",
    ),
    // Who is calling
    c(
        "unauthorized",
        &[401],
        "No valid API key: `Authorization: Bearer <key>` is missing, malformed, unknown or disabled.",
        "Send a valid partner key; ask the hub's operator for a new one if it was rotated.",
    ),
    c(
        "subscription_not_found",
        &[404],
        "No such webhook subscription for this property in the key's world (a sandbox key sees only test subscriptions).",
        "List the subscriptions (`GET …/webhook-subscriptions`) and use an id from there.",
    ),
    c(
        "delivery_not_found",
        &[404],
        "No such delivery of this subscription (deliveries are kept 30 days).",
        "List the deliveries (`GET …/webhook-subscriptions/{id}/deliveries`) and use an id from there.",
    ),
    c(
        "too_many_subscriptions",
        &[409],
        "The property already holds the most webhook subscriptions it may (25).",
        "Delete a subscription you no longer use, or subscribe one URL to more event types.",
    ),
    c(
        "property_not_found",
        &[404],
        "The property in the path does not exist or this key is not for it (the hub does not say which).",
        "Use a property your key was issued for.",
    ),
    c(
        "missing_scope",
        &[403],
        "The key lacks the scope this route needs (`details.scope`).",
        "Ask the hub's operator to grant the scope, or use a key that has it.",
    ),
    // Concurrency and idempotency
    c(
        "conflict",
        &[409],
        "What this request changes kept changing under concurrent requests.",
        RETRY,
    ),
    c(
        "idempotency_key_in_flight",
        &[409],
        "A request with this `Idempotency-Key` is still being processed.",
        "Retry later with the same key and body; the answer will be the first request's.",
    ),
    c(
        "idempotency_key_reused",
        &[422],
        "This `Idempotency-Key` was used before with a different request.",
        "Use a fresh key for a different request.",
    ),
    // Vouchers
    c(
        "voucher_not_found",
        &[404],
        "No voucher with this code for this property (`details.hint` when the check character says it is mistyped).",
        "Check the code with the guest; do not retry unchanged.",
    ),
    c(
        "voucher_code_taken",
        &[409],
        "The code is already a voucher of this issuer.",
        "Issue or import it under another code.",
    ),
    c(
        "voucher_code_ambiguous",
        &[409],
        "A printed code is held by several issuers this property accepts (`details.issuers`).",
        "Name the issuer and call again.",
    ),
    c(
        "insufficient_balance",
        &[422],
        "The voucher's balance is less than the amount (`details.available`).",
        "Redeem at most `details.available`, or take the rest another way.",
    ),
    c(
        "voucher_expired",
        &[422],
        "The voucher's validity ended (`details.valid_until`, in the issuer's zone).",
        "Do not accept it; the issuer may extend it.",
    ),
    c(
        "voucher_blocked",
        &[422],
        "The voucher is blocked.",
        "Do not accept it; the issuer can unblock it.",
    ),
    c(
        "voucher_cancelled",
        &[422],
        "The voucher was cancelled.",
        "Do not accept it.",
    ),
    c(
        "voucher_not_redeemable_here",
        &[422],
        "This property does not accept the issuer's vouchers.",
        "Do not accept it here.",
    ),
    c(
        "currency_mismatch",
        &[422],
        "The amount's currency is not the voucher's or the order's (`details.expected` for vouchers).",
        "Send the amount in the expected currency.",
    ),
    c(
        "zero_value",
        &[422],
        "The amount is zero.",
        "Send a positive amount.",
    ),
    c(
        "package_requires_full_redemption",
        &[422],
        "A package voucher is redeemed whole or not at all (`details.balance`).",
        "Redeem the whole balance.",
    ),
    c(
        "test_mode_mismatch",
        &[422],
        "Test data and live data were mixed: a `test_mode` that is not the key's (sandbox keys, `ghk_test_…`, are test mode; others live), a sandbox key changing live configuration (products, club tiers, roster imports), or test data made before sandbox keys used in a live request.",
        "Send test requests with a sandbox key and live ones with a live key; omit `test_mode` (it is the key's).",
    ),
    c(
        "not_issuer",
        &[422],
        "Only the voucher's issuer may do this.",
        "Ask the issuing property to do it.",
    ),
    c(
        "not_a_gift_card",
        &[422],
        "Only gift cards can be loaded.",
        "Issue a new voucher instead.",
    ),
    c(
        "redemption_not_found",
        &[404],
        "No such redemption of this voucher.",
        LOOK_UP,
    ),
    c(
        "reversal_exceeds_redemption",
        &[422],
        "The reversal is more than what is left of the redemption (`details.reversible`).",
        "Reverse at most `details.reversible`.",
    ),
    c(
        "redemption_belongs_to_order",
        &[422],
        "The redemption paid an order (`details.order_id`); it is reversed by cancelling that order.",
        "Cancel the order instead.",
    ),
    c(
        "hold_not_found",
        &[404],
        "No such hold on this voucher.",
        LOOK_UP,
    ),
    c(
        "hold_closed",
        &[422],
        "The hold was already captured or released.",
        "Do not retry; place a new hold if needed.",
    ),
    c(
        "hold_expired",
        &[422],
        "The hold expired and its amount is free again.",
        "Place a new hold.",
    ),
    c(
        "capture_exceeds_hold",
        &[422],
        "The capture is more than the hold (`details.held`).",
        "Capture at most `details.held`.",
    ),
    c(
        "too_many_holds",
        &[422],
        "The voucher has as many open holds as it may.",
        "Capture or release a hold first.",
    ),
    c(
        "cursor_out_of_range",
        &[422],
        "The pickup cursor is beyond the last order (`details.last_cursor`).",
        "Continue from a cursor you were given (at most `details.last_cursor`).",
    ),
    // Club rosters
    c(
        "import_not_found",
        &[404],
        "No such roster import.",
        LOOK_UP,
    ),
    c(
        "import_not_held",
        &[422],
        "The import is not held for approval (it was applied or rejected).",
        "Nothing to approve; list the imports to see its state.",
    ),
    c(
        "upload_url_unavailable",
        &[422],
        "No drop bucket is configured where this hub runs (the local runner), so there is no presigned upload URL.",
        "POST the file to `/roster-imports` instead.",
    ),
    c(
        "import_superseded",
        &[409],
        "A later roster import replaced this one.",
        "Approve the latest import instead.",
    ),
    // Checkout
    c(
        "product_not_found",
        &[404, 422],
        "No such product (404 on the product's route; 422 when an order names it).",
        "Check the product id against the catalogue.",
    ),
    c(
        "unit_not_found",
        &[422],
        "The product has no such unit.",
        "Check the unit against the product.",
    ),
    c(
        "members_only_event",
        &[422],
        "The event is for club members only and no valid membership was given.",
        "Add a valid membership, or choose another event.",
    ),
    c(
        "tier_not_allowed",
        &[422],
        "The event is for members of other club tiers.",
        "Choose an event open to the member's tier.",
    ),
    c(
        "membership_not_found",
        &[404],
        "No such membership.",
        LOOK_UP,
    ),
    c(
        "membership_expired",
        &[422],
        "The membership expired before this visit.",
        "Renew it first.",
    ),
    c(
        "membership_not_yet_valid",
        &[422],
        "The membership starts after this visit.",
        "Choose a date within its validity.",
    ),
    c(
        "membership_cancelled",
        &[422],
        "The membership was cancelled.",
        "Do not use it.",
    ),
    c(
        "membership_unpaid",
        &[422],
        "The membership's order is not paid yet.",
        "Pay the order first.",
    ),
    c(
        "benefit_limit_reached",
        &[422],
        "The membership's benefit has been used up.",
        "Sell the item without the benefit.",
    ),
    c(
        "member_fields_missing",
        &[400],
        "A membership sale lacks the member's details.",
        FIX,
    ),
    c(
        "invalid_order",
        &[400],
        "The order is not well formed (`message` says how).",
        FIX,
    ),
    c(
        "invalid_payment",
        &[400],
        "A payment part is not well formed (`message` says how).",
        FIX,
    ),
    c(
        "payment_mismatch",
        &[422],
        "The payment parts do not add up to the amount due.",
        "Send parts that add up to the amount due.",
    ),
    c(
        "insufficient_cash",
        &[422],
        "Cash tendered is less than the cash part.",
        "Tender at least the cash part.",
    ),
    c(
        "sold_out",
        &[422],
        "Not enough capacity left for this date.",
        "Choose another date or fewer seats.",
    ),
    c(
        "nothing_due",
        &[422],
        "The order has nothing left to pay.",
        "Do not pay it again; fetch the order to see its state.",
    ),
    c("order_not_found", &[404], "No such order.", LOOK_UP),
    // Guests, CRM and loyalty
    c(
        "guest_not_found",
        &[404],
        "No such guest in this property.",
        LOOK_UP,
    ),
    c(
        "guest_erased",
        &[422],
        "The guest's personal data was erased.",
        "Do not send this guest again; create a new profile if they return.",
    ),
    c(
        "erasure_not_found",
        &[404],
        "No such erasure receipt in this property.",
        LOOK_UP,
    ),
    c(
        "email_taken",
        &[409],
        "Another guest of this property has this email.",
        "Update that guest instead.",
    ),
    c(
        "loyalty_number_taken",
        &[409],
        "Another guest of this property has this loyalty number.",
        "Check the number.",
    ),
    c(
        "departure_not_found",
        &[404],
        "No departure reported for this reservation.",
        LOOK_UP,
    ),
    c(
        "webhook_not_found",
        &[404],
        "No webhook with this token.",
        "Check the webhook URL configured in Cloudbeds.",
    ),
    c(
        "invalid_event",
        &[400],
        "The webhook event has no `event` name.",
        FIX,
    ),
    c(
        "crm_not_connected",
        &[422],
        "The property is not connected to Cloudbeds.",
        "Connect it (`guesthub crm connect`), then ask again.",
    ),
    c(
        "screening_check_not_found",
        &[404],
        "No screening check with this id awaits an answer in this property (or the property screens with its watchlist).",
        "Answer to the `callback_path` GuestHub sent with the check.",
    ),
    c(
        "invalid_signature",
        &[401],
        "The screening callback's `X-GuestHub-Signature` does not match its body, or its `X-GuestHub-Timestamp` is more than 5 minutes from now.",
        "Sign `<timestamp>.<body>` with HMAC-SHA256 and the shared secret; send the current Unix time.",
    ),
    c(
        "screening_check_closed",
        &[409],
        "The check was answered already (a replay), or a newer check of the guest replaced it.",
        "Nothing to do: the first answer counts.",
    ),
    // The hub
    c(
        "internal_error",
        &[500],
        "Something went wrong on the hub's side (logged with the request id).",
        "Retry later with the same `Idempotency-Key`; report the `X-Request-Id` if it persists.",
    ),
    c(
        "temporarily_unavailable",
        &[503],
        "A dependency (the store) is unavailable.",
        RETRY,
    ),
];

/// The code's entry in `CODES`.
pub fn error_code(code: &str) -> Option<&'static ErrorCode> {
    CODES.iter().find(|c| c.code == code)
}

/// `docs/errors.md`, generated from `CODES`.
pub fn errors_markdown() -> String {
    let mut md = String::from(
        "# Error codes\n\n\
         <!-- Generated from `CODES` in shared/platform/src/http/error.rs; a test fails when they \
         drift. Regenerate: GUESTHUB_WRITE_DOCS=1 cargo test -p tests --test it api_docs::errors -->\n\n\
         Every error answer is `{\"error\": {\"code\": \"snake_case\", \"message\": \"...\", \
         \"details\": {...}}}`. Branch on `code` (stable), show `message` to people, read \
         `details` where a code names them. Each code the hub can return is listed once, with \
         the HTTP statuses it comes with. A 5xx answer says nothing internal; quote its \
         `X-Request-Id` when reporting it.\n\n\
         | code | HTTP status | meaning | what the caller should do |\n\
         |---|---|---|---|\n",
    );
    for c in CODES {
        let statuses: Vec<String> = c.statuses.iter().map(u16::to_string).collect();
        md.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            c.code,
            statuses.join(", "),
            c.meaning,
            c.action
        ));
    }
    md
}
