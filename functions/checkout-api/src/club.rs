//! Club routes: recognise a member by email, list and enable tiers, list
//! roster imports and approve a held one. Thin: scope, parse, delegate.

use axum::Json;
use axum::extract::{Path, State};
use chrono::NaiveDate;
use domain::Email;
use domain::checkout::CheckoutError;
use domain::roster::import::ImportReport;
use domain::roster::service::{self, TierView};
use domain::roster::store::{ClubMode, RosterStore};
use platform::Store;
use platform::http::{ApiError, ApiJson, ApiQuery, Caller};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `GET /club-members/{email}`.
// Named apart in the OpenAPI document: the loyalty routes have a `MemberView` too.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ClubMember)]
pub struct MemberView {
    pub member: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    pub tiers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<NaiveDate>,
    /// `trial` while the club's member features are off (everyone answers
    /// as a non-member, except with `?preview=true`); absent when live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub club_mode: Option<ClubMode>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemberQuery {
    /// `true`: answer from the roster applied last even in trial mode
    /// (what recognition will say once live; never used for a discount).
    pub preview: Option<bool>,
}

/// Is this email a club member of the property (active roster)?
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/club-members/{email}",
    params(("property" = String, Path), ("email" = String, Path, description = "matched trimmed and case-insensitively"), MemberQuery),
    responses(
        (status = 200, body = MemberView, description = "`member: false` for non-members"),
        (status = 400, body = platform::http::error::ErrorBody),
        (status = 401, body = platform::http::error::ErrorBody),
        (status = 403, body = platform::http::error::ErrorBody),
        (status = 404, body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = [])),
    tag = "club"
)]
pub async fn member(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<MemberQuery>,
) -> Result<Json<MemberView>, ApiError> {
    let email = Email::parse(&path.1)?;
    let p = caller.live_property();
    let found = if q.preview.unwrap_or(false) {
        service::preview(&store, &p, &email).await?
    } else {
        service::recognise(&store, &p, &email).await?
    };
    let club_mode = (found.mode == ClubMode::Trial).then_some(ClubMode::Trial);
    Ok(Json(match found.member {
        Some(m) => MemberView {
            member: true,
            member_id: m.member_id,
            tiers: m.tiers,
            since: m.since,
            club_mode,
        },
        None => MemberView {
            member: false,
            member_id: None,
            tiers: Vec::new(),
            since: None,
            club_mode,
        },
    }))
}

/// `GET`/`PUT /club-settings`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClubSettings {
    /// `trial`: files are imported and reported, but nobody is recognised
    /// as a member and no club discount is given; `live`: member features on.
    pub mode: ClubMode,
}

/// The club's settings (`mode`: `live` unless set).
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/club-settings",
    params(("property" = String, Path)),
    responses((status = 200, body = ClubSettings), (status = 401, body = platform::http::error::ErrorBody), (status = 403, body = platform::http::error::ErrorBody)),
    security(("partner_key" = [])),
    tag = "club"
)]
pub async fn settings(
    State(store): State<Store>,
    caller: Caller,
) -> Result<Json<ClubSettings>, ApiError> {
    Ok(Json(ClubSettings {
        mode: store.club_mode(&caller.live_property()).await?,
    }))
}

/// Sets the club's mode. Switching `trial` → `live` makes the roster
/// applied last count at once (one write); `live` → `trial` stops
/// recognition and club discounts.
#[utoipa::path(
    put,
    path = "/v1/properties/{property}/club-settings",
    params(("property" = String, Path)),
    request_body = ClubSettings,
    responses((status = 200, body = ClubSettings), (status = 400, body = platform::http::error::ErrorBody), (status = 403, body = platform::http::error::ErrorBody), (status = 422, body = platform::http::error::ErrorBody)),
    security(("partner_key" = [])),
    tag = "club"
)]
pub async fn set_settings(
    State(store): State<Store>,
    caller: Caller,
    body: ApiJson<ClubSettings>,
) -> Result<Json<ClubSettings>, ApiError> {
    caller.require_live()?;
    let mode = body.value.mode;
    store.set_club_mode(&caller.live_property(), mode).await?;
    tracing::info!(?mode, "club mode set");
    Ok(Json(ClubSettings { mode }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TiersView {
    pub tiers: Vec<TierView>,
}

/// The tiers seen in the active roster, with member counts and whether
/// each is enabled for event discounts.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/club-tiers",
    params(("property" = String, Path)),
    responses((status = 200, body = TiersView), (status = 401, body = platform::http::error::ErrorBody)),
    security(("partner_key" = [])),
    tag = "club"
)]
pub async fn tiers(
    State(store): State<Store>,
    caller: Caller,
) -> Result<Json<TiersView>, ApiError> {
    Ok(Json(TiersView {
        tiers: service::tiers(&store, &caller.live_property()).await?,
    }))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierSettingBody {
    pub enabled: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TierSettingView {
    pub tier: String,
    pub enabled: bool,
}

/// Enables or disables a tier for event discounts (CellarPass "Account Types").
#[utoipa::path(
    put,
    path = "/v1/properties/{property}/club-tiers/{tier}",
    params(("property" = String, Path), ("tier" = String, Path)),
    request_body = TierSettingBody,
    responses((status = 200, body = TierSettingView), (status = 400, body = platform::http::error::ErrorBody), (status = 403, body = platform::http::error::ErrorBody)),
    security(("partner_key" = [])),
    tag = "club"
)]
pub async fn set_tier(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String)>,
    body: ApiJson<TierSettingBody>,
) -> Result<Json<TierSettingView>, ApiError> {
    caller.require_live()?;
    let tier = path.1.trim();
    if tier.is_empty() || tier.len() > 100 {
        return Err(CheckoutError::InvalidField("tier: must be 1-100 characters").into());
    }
    store
        .set_tier(&caller.live_property(), tier, body.value.enabled)
        .await?;
    Ok(Json(TierSettingView {
        tier: tier.to_owned(),
        enabled: body.value.enabled,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportsQuery {
    /// At most this many (default 50, max 500).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportsView {
    pub imports: Vec<ImportReport>,
}

/// Roster imports, newest first, with their reports (no personal data).
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/roster-imports",
    params(("property" = String, Path), ImportsQuery),
    responses((status = 200, body = ImportsView)),
    security(("partner_key" = [])),
    tag = "club"
)]
pub async fn imports(
    State(store): State<Store>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ImportsQuery>,
) -> Result<Json<ImportsView>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    Ok(Json(ImportsView {
        imports: store.import_reports(&caller.live_property(), limit).await?,
    }))
}

/// Applies a held import (empty, truncated or mass-drop files wait for this).
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/roster-imports/{id}/approve",
    params(("property" = String, Path), ("id" = String, Path)),
    responses(
        (status = 200, body = ImportReport),
        (status = 404, body = platform::http::error::ErrorBody),
        (status = 409, body = platform::http::error::ErrorBody, description = "import_superseded"),
        (status = 422, body = platform::http::error::ErrorBody, description = "import_not_held"),
    ),
    security(("partner_key" = [])),
    tag = "club"
)]
pub async fn approve(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String)>,
) -> Result<Json<ImportReport>, ApiError> {
    caller.require_live()?;
    let now = store.clock().now();
    Ok(Json(
        service::approve(&store, &caller.live_property(), &path.1, now).await?,
    ))
}
