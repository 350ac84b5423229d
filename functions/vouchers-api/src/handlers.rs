//! The routes: authenticate, check the scope, parse, hand over to
//! [`crate::service`]. Errors become HTTP only in `platform::http::error`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use domain::voucher::pickup::ArticleMapping;
use domain::voucher::rules::{
    CaptureRequest, HoldRequest, IssueRequest, LoadRequest, RedeemRequest, ReverseRequest,
};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use platform::Store;
use platform::http::error::ErrorBody;
use platform::http::{ApiError, ApiJson, Caller, Idempotent, Outcome};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::service::{self, Lifecycle, code_key};
use crate::views::{
    AckBody, ActivitiesView, CaptureView, FoundVouchersView, HoldView, ImportRequest, ImportView,
    IssuedView, LoadView, OrdersView, RedemptionView, ReleaseView, ReversalView, SettlementView,
    VoucherView, WriteOffRequest, WriteOffView, to_json,
};

/// Every voucher POST shares one idempotency family.
const OPERATION: &str = "vouchers";

use platform::http::ApiQuery;

fn json(status: StatusCode, body: &impl serde::Serialize) -> Response {
    platform::http::idempotent::json_response(status, to_json(body))
}

/// The idempotency context of a POST on `path`.
fn idempotent<'a>(
    store: &'a Store,
    caller: &'a Caller,
    path: &'a str,
    canonical_body: &'a str,
    required: bool,
) -> Idempotent<'a> {
    let run = Idempotent::new(store, caller, OPERATION, path, canonical_body);
    if required { run.required() } else { run }
}

fn voucher_path(caller: &Caller, code: &str, rest: &str) -> String {
    format!(
        "/v1/properties/{}/vouchers/{}{rest}",
        caller.property.id,
        code_key(code)
    )
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct PropertyPath {
    /// The property the partner acts for.
    property: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct VoucherPath {
    /// The property the partner acts for.
    property: String,
    /// The voucher code; case, spaces and dashes do not matter.
    code: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ReversalPath {
    /// The property the partner acts for.
    property: String,
    /// The voucher code.
    code: String,
    /// From the redemption's answer.
    redemption_id: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct HoldPath {
    /// The property the partner acts for.
    property: String,
    /// From the hold's answer.
    hold_id: String,
}

/// Issue (sell) a voucher or gift card. A generated code is unique; a
/// printed code (`code`: external, imported, pre-printed) belongs to its
/// issuer, so other issuers may hold the same one. Value and package
/// vouchers enter the pickup feed; gift cards, external and imported
/// vouchers never do (PMSs book them in on their first redemption).
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/vouchers",
    tag = "vouchers",
    params(PropertyPath, ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer")),
    request_body = IssueRequest,
    responses(
        (status = 201, description = "Issued", body = IssuedView),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 409, description = "voucher_code_taken: this property holds the code already, or it is a generated code", body = ErrorBody),
        (status = 422, description = "zero_value, currency_mismatch", body = ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn issue(
    State(store): State<Store>,
    caller: Caller,
    headers: HeaderMap,
    body: ApiJson<IssueRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/v1/properties/{}/vouchers", caller.property.id);
    idempotent(&store, &caller, &path, &body.canonical, false)
        .run(&headers, |lease| {
            service::issue(&store, &caller, body.value, lease)
        })
        .await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LookupQuery {
    /// The order reference given at sale (exact).
    order_ref: Option<String>,
    /// The buyer's email (case does not matter).
    buyer_email: Option<String>,
}

/// Lost code: the vouchers this property sold under an order reference or
/// to a buyer's email (exactly one of the two), newest first, at most 100.
/// Codes are masked except their last four characters: this is the one
/// answer that lists vouchers to someone who does not hold them. Every
/// other answer shows a code whole, and only to a caller that sent it
/// (status, redemptions, ledger, settlement lines of vouchers it took) or
/// that must book it (its issuer's office; the pickup feed of a PMS).
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/vouchers",
    tag = "vouchers",
    params(PropertyPath, LookupQuery),
    responses(
        (status = 200, description = "The vouchers found, codes masked", body = FoundVouchersView),
        (status = 400, description = "invalid_query, invalid_field", body = ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn lookup(
    State(store): State<Store>,
    caller: Caller,
    ApiQuery(q): ApiQuery<LookupQuery>,
) -> Result<Response, ApiError> {
    let view = service::lookup(
        &store,
        &caller,
        q.order_ref.as_deref(),
        q.buyer_email.as_deref(),
    )
    .await?;
    Ok(json(StatusCode::OK, &view))
}

/// Live status of a voucher: balance, validity, redeemable here or why not.
/// A printed code several issuers hold resolves to the caller's own
/// property's voucher, then to the one issuer it accepts.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/vouchers/{code}",
    tag = "vouchers",
    params(VoucherPath),
    responses(
        (status = 200, description = "Status", body = VoucherView),
        (status = 404, description = "voucher_not_found", body = ErrorBody),
        (status = 409, description = "voucher_code_ambiguous: several issuers the caller may see hold this printed code (`details.issuers`)", body = ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn status(
    State(store): State<Store>,
    caller: Caller,
    Path(VoucherPath { code, .. }): Path<VoucherPath>,
) -> Result<Response, ApiError> {
    let view = service::status(&store, &caller, &code).await?;
    Ok(json(StatusCode::OK, &view))
}

/// Load value onto a gift card (its issuer only).
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/vouchers/{code}/loads",
    tag = "vouchers",
    params(VoucherPath, ("Idempotency-Key" = String, Header, description = "Required")),
    request_body = LoadRequest,
    responses(
        (status = 201, description = "Loaded", body = LoadView),
        (status = 400, description = "idempotency_key_required, invalid_field", body = ErrorBody),
        (status = 404, description = "voucher_not_found", body = ErrorBody),
        (status = 422, description = "not_a_gift_card, not_issuer, zero_value, …", body = ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn load(
    State(app): State<AppState>,
    caller: Caller,
    Path(VoucherPath { code, .. }): Path<VoucherPath>,
    headers: HeaderMap,
    body: ApiJson<LoadRequest>,
) -> Result<Response, ApiError> {
    let path = voucher_path(&caller, &code, "/loads");
    idempotent(&app.store, &caller, &path, &body.canonical, true)
        .run_atomic(&headers, |lease| {
            service::load(&app, &caller, &code, body.value, lease)
        })
        .await
}

/// Redeem a voucher, fully or partly.
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/vouchers/{code}/redemptions",
    tag = "vouchers",
    params(VoucherPath, ("Idempotency-Key" = String, Header, description = "Required")),
    request_body = RedeemRequest,
    responses(
        (status = 201, description = "Redeemed; `picked_up: false` marks the Kode path, and `booked_in: true` with `booking` tells the PMS to book the code in (its first redemption by this partner)", body = RedemptionView),
        (status = 400, description = "idempotency_key_required, invalid_field", body = ErrorBody),
        (status = 404, description = "voucher_not_found", body = ErrorBody),
        (status = 409, description = "idempotency_key_in_flight, voucher_code_ambiguous", body = ErrorBody),
        (status = 422, description = "insufficient_balance, voucher_expired, voucher_blocked, voucher_cancelled, voucher_not_redeemable_here, currency_mismatch, zero_value, package_requires_full_redemption, test_mode_mismatch, idempotency_key_reused", body = ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn redeem(
    State(app): State<AppState>,
    caller: Caller,
    Path(VoucherPath { code, .. }): Path<VoucherPath>,
    headers: HeaderMap,
    body: ApiJson<RedeemRequest>,
) -> Result<Response, ApiError> {
    let path = voucher_path(&caller, &code, "/redemptions");
    idempotent(&app.store, &caller, &path, &body.canonical, true)
        .run_atomic(&headers, |lease| {
            service::redeem(&app, &caller, &code, body.value, lease)
        })
        .await
}

/// Reverse a redemption (booking cancelled): at most what it took.
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/vouchers/{code}/redemptions/{redemption_id}/reversal",
    tag = "vouchers",
    params(ReversalPath, ("Idempotency-Key" = String, Header, description = "Required")),
    request_body = ReverseRequest,
    responses(
        (status = 201, description = "Reversed", body = ReversalView),
        (status = 404, description = "voucher_not_found, redemption_not_found", body = ErrorBody),
        (status = 422, description = "reversal_exceeds_redemption, redemption_belongs_to_order (details.order_id: cancel that order instead), currency_mismatch, zero_value", body = ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn reverse(
    State(app): State<AppState>,
    caller: Caller,
    Path(ReversalPath {
        code,
        redemption_id,
        ..
    }): Path<ReversalPath>,
    headers: HeaderMap,
    body: ApiJson<ReverseRequest>,
) -> Result<Response, ApiError> {
    let path = voucher_path(
        &caller,
        &code,
        &format!("/redemptions/{redemption_id}/reversal"),
    );
    idempotent(&app.store, &caller, &path, &body.canonical, true)
        .run_atomic(&headers, |lease| {
            service::reverse(&app, &caller, &code, &redemption_id, body.value, lease)
        })
        .await
}

/// Hold value at booking; capture or release it later.
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/vouchers/{code}/holds",
    tag = "vouchers",
    params(VoucherPath, ("Idempotency-Key" = String, Header, description = "Required")),
    request_body = HoldRequest,
    responses(
        (status = 201, description = "Held", body = HoldView),
        (status = 404, description = "voucher_not_found", body = ErrorBody),
        (status = 422, description = "As for redemptions, and too_many_holds", body = ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn hold(
    State(app): State<AppState>,
    caller: Caller,
    Path(VoucherPath { code, .. }): Path<VoucherPath>,
    headers: HeaderMap,
    body: ApiJson<HoldRequest>,
) -> Result<Response, ApiError> {
    let path = voucher_path(&caller, &code, "/holds");
    idempotent(&app.store, &caller, &path, &body.canonical, true)
        .run_atomic(&headers, |lease| {
            service::hold(&app, &caller, &code, body.value, lease)
        })
        .await
}

/// Capture a hold (at most the held amount; the rest is released).
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/holds/{hold_id}/capture",
    tag = "vouchers",
    params(HoldPath, ("Idempotency-Key" = String, Header, description = "Required")),
    request_body = CaptureRequest,
    responses(
        (status = 201, description = "Captured", body = CaptureView),
        (status = 404, description = "hold_not_found", body = ErrorBody),
        (status = 422, description = "hold_expired, hold_closed, capture_exceeds_hold", body = ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn capture(
    State(app): State<AppState>,
    caller: Caller,
    Path(HoldPath { hold_id, .. }): Path<HoldPath>,
    headers: HeaderMap,
    body: ApiJson<CaptureRequest>,
) -> Result<Response, ApiError> {
    let path = format!(
        "/v1/properties/{}/holds/{hold_id}/capture",
        caller.property.id
    );
    idempotent(&app.store, &caller, &path, &body.canonical, true)
        .run_atomic(&headers, |lease| {
            service::capture(&app, &caller, &hold_id, body.value, lease)
        })
        .await
}

/// Release a hold.
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/holds/{hold_id}/release",
    tag = "vouchers",
    params(HoldPath, ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer")),
    responses(
        (status = 200, description = "Released", body = ReleaseView),
        (status = 404, description = "hold_not_found", body = ErrorBody),
        (status = 422, description = "hold_closed", body = ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn release(
    State(app): State<AppState>,
    caller: Caller,
    Path(HoldPath { hold_id, .. }): Path<HoldPath>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let path = format!(
        "/v1/properties/{}/holds/{hold_id}/release",
        caller.property.id
    );
    idempotent(&app.store, &caller, &path, "", false)
        .run_atomic(&headers, |lease| {
            service::release(&app, &caller, &hold_id, lease)
        })
        .await
}

async fn lifecycle(
    app: AppState,
    caller: Caller,
    code: String,
    headers: HeaderMap,
    what: Lifecycle,
    suffix: &str,
) -> Result<Response, ApiError> {
    let path = voucher_path(&caller, &code, suffix);
    idempotent(&app.store, &caller, &path, "", false)
        .run_atomic(&headers, |lease| {
            service::lifecycle(&app, &caller, &code, what, lease)
        })
        .await
}

/// Block a voucher (lost, suspected fraud): nothing can be taken from it.
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/vouchers/{code}/block",
    tag = "vouchers",
    params(VoucherPath),
    responses((status = 200, description = "Blocked", body = VoucherView),
              (status = 422, description = "not_issuer, voucher_cancelled", body = ErrorBody)),
    security(("partner_key" = []))
)]
pub async fn block(
    State(app): State<AppState>,
    caller: Caller,
    Path(VoucherPath { code, .. }): Path<VoucherPath>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    lifecycle(app, caller, code, headers, Lifecycle::Block, "/block").await
}

/// Unblock a voucher.
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/vouchers/{code}/unblock",
    tag = "vouchers",
    params(VoucherPath),
    responses((status = 200, description = "Unblocked", body = VoucherView),
              (status = 422, description = "not_issuer, voucher_cancelled", body = ErrorBody)),
    security(("partner_key" = []))
)]
pub async fn unblock(
    State(app): State<AppState>,
    caller: Caller,
    Path(VoucherPath { code, .. }): Path<VoucherPath>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    lifecycle(app, caller, code, headers, Lifecycle::Unblock, "/unblock").await
}

/// Cancel a sale: open holds released, open value voided (ledger `adjust`).
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/vouchers/{code}/cancel",
    tag = "vouchers",
    params(VoucherPath),
    responses((status = 200, description = "Cancelled", body = VoucherView),
              (status = 422, description = "not_issuer, voucher_cancelled", body = ErrorBody)),
    security(("partner_key" = []))
)]
pub async fn cancel(
    State(app): State<AppState>,
    caller: Caller,
    Path(VoucherPath { code, .. }): Path<VoucherPath>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    lifecycle(app, caller, code, headers, Lifecycle::Cancel, "/cancel").await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Continue after this cursor (from `next` / `cursor` of the last page).
    after: Option<String>,
    /// Page size.
    limit: Option<usize>,
}

/// The voucher's ledger: every activity with its amount and balance after.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/vouchers/{code}/activities",
    tag = "vouchers",
    params(VoucherPath, PageQuery),
    responses(
        (status = 200, description = "Activities, oldest first", body = ActivitiesView),
        (status = 404, description = "voucher_not_found", body = ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn activities(
    State(store): State<Store>,
    caller: Caller,
    Path(VoucherPath { code, .. }): Path<VoucherPath>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let view = service::activities(&store, &caller, &code, q.after.as_deref(), q.limit).await?;
    Ok(json(StatusCode::OK, &view))
}

/// Orders this PMS partner has not acknowledged (its own cursor), with its
/// article code per voucher. At least once, never skipping. Value and
/// package vouchers only; with portal pickup (`guesthub property accept
/// <p> --issuer <id> --pickup`) also the orders that issuer sold since.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/voucher-orders",
    tag = "vouchers",
    params(PropertyPath, PageQuery),
    responses((status = 200, description = "Orders after the cursor", body = OrdersView)),
    security(("partner_key" = []))
)]
pub async fn orders(
    State(store): State<Store>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let view = service::orders(&store, &caller, q.after.as_deref(), q.limit).await?;
    Ok(json(StatusCode::OK, &view))
}

/// Acknowledge orders up to `cursor`: they are not sent again.
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/voucher-orders/ack",
    tag = "vouchers",
    params(PropertyPath),
    request_body = AckBody,
    responses(
        (status = 200, description = "The cursor now stored", body = AckBody),
        (status = 422, description = "cursor_out_of_range", body = ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn acknowledge(
    State(store): State<Store>,
    caller: Caller,
    headers: HeaderMap,
    body: ApiJson<AckBody>,
) -> Result<Response, ApiError> {
    let path = format!("/v1/properties/{}/voucher-orders/ack", caller.property.id);
    idempotent(&store, &caller, &path, &body.canonical, false)
        .run(&headers, |_| async {
            let cursor = service::acknowledge(&store, &caller, &body.value.cursor).await?;
            Ok(Outcome::json(
                StatusCode::OK,
                &AckBody {
                    cursor: cursor.to_string(),
                },
            ))
        })
        .await
}

/// This partner's PMS article code per article type.
#[utoipa::path(
    put,
    path = "/v1/properties/{property}/article-mapping",
    tag = "vouchers",
    params(PropertyPath),
    request_body = ArticleMapping,
    responses((status = 200, description = "Saved", body = ArticleMapping)),
    security(("partner_key" = []))
)]
pub async fn put_mapping(
    State(store): State<Store>,
    caller: Caller,
    body: ApiJson<ArticleMapping>,
) -> Result<Response, ApiError> {
    let saved = service::save_mapping(&store, &caller, body.value).await?;
    Ok(json(StatusCode::OK, &saved))
}

/// Read this partner's article mapping.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/article-mapping",
    tag = "vouchers",
    params(PropertyPath),
    responses((status = 200, description = "The mapping", body = ArticleMapping)),
    security(("partner_key" = []))
)]
pub async fn get_mapping(State(store): State<Store>, caller: Caller) -> Result<Response, ApiError> {
    let m = service::mapping(&store, &caller).await?;
    Ok(json(StatusCode::OK, &m))
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Csv,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SettlementQuery {
    /// First local day (the property's zone).
    from: NaiveDate,
    /// Last local day, inclusive.
    to: NaiveDate,
    #[serde(default)]
    #[param(inline)]
    format: Format,
}

/// Redemptions in a period by accepting and issuing property, with totals
/// per currency; JSON or CSV (amounts in minor units).
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/settlement",
    tag = "vouchers",
    params(PropertyPath, SettlementQuery),
    responses(
        (status = 200, description = "The report", body = SettlementView, content_type = "application/json"),
        (status = 200, description = "The groups as CSV", body = String, content_type = "text/csv"),
        (status = 400, description = "invalid_query, invalid_field", body = ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn settlement(
    State(store): State<Store>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SettlementQuery>,
) -> Result<Response, ApiError> {
    let report = service::settlement(&store, &caller, q.from, q.to).await?;
    match q.format {
        Format::Json => Ok(json(StatusCode::OK, &report)),
        Format::Csv => {
            let csv = service::settlement_csv(&report)?;
            let name = format!(
                "attachment; filename=\"settlement-{}-{}-{}.csv\"",
                report.property, q.from, q.to
            );
            let mut resp = (StatusCode::OK, csv).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            if let Ok(v) = HeaderValue::from_str(&name) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            Ok(resp)
        }
    }
}

/// Import legacy or external vouchers with their past redemptions; codes
/// are kept, collisions reported per line.
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/voucher-imports",
    tag = "vouchers",
    params(PropertyPath, ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer")),
    request_body = ImportRequest,
    responses(
        (status = 200, description = "Per-line results", body = ImportView),
        (status = 400, description = "too_many_lines, invalid_field", body = ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn import(
    State(store): State<Store>,
    caller: Caller,
    headers: HeaderMap,
    body: ApiJson<ImportRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/v1/properties/{}/voucher-imports", caller.property.id);
    idempotent(&store, &caller, &path, &body.canonical, false)
        .run(&headers, |_| async {
            let view = service::import(&store, &caller, body.value.vouchers).await?;
            Ok(Outcome::json(StatusCode::OK, &view))
        })
        .await
}

/// Write off expired vouchers' open value (a dry run unless `dry_run: false`).
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/voucher-write-offs",
    tag = "vouchers",
    params(PropertyPath, ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer")),
    request_body = WriteOffRequest,
    responses((status = 200, description = "Written off, or would be", body = WriteOffView)),
    security(("partner_key" = []))
)]
pub async fn write_off(
    State(store): State<Store>,
    caller: Caller,
    headers: HeaderMap,
    body: ApiJson<WriteOffRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/v1/properties/{}/voucher-write-offs", caller.property.id);
    idempotent(&store, &caller, &path, &body.canonical, false)
        .run(&headers, |_| async {
            // Tags the run's ledger entries, so a retry under the same key
            // reports what the interrupted attempt already wrote off.
            let run = headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(|k| format!("write-off run {k}"));
            let view = service::write_off(&store, &caller, body.value, run).await?;
            Ok(Outcome::json(StatusCode::OK, &view))
        })
        .await
}
