//! Club routes: recognise a member by email, find members by member number
//! or name, list and enable tiers, list roster imports, what one changed,
//! and approve a held one. Thin: scope, parse, delegate.

use axum::Json;
use axum::extract::{Path, State};
use chrono::NaiveDate;
use domain::Email;
use domain::checkout::CheckoutError;
use domain::roster::import::ImportReport;
use domain::roster::service::RosterError;
use domain::roster::service::{self, TierView};
use domain::roster::store::{
    ChangeKind, ClubMode, FoundMember, MemberChange, MemberRecord, RosterStore, fold_name,
};
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
    /// The join date (the earliest of the person's clubs); `since` too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_since: Option<NaiveDate>,
    /// Contact for prefilling a booking, when the club file has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// `trial` while the club's member features are off (everyone answers
    /// as a non-member, except with `?preview=true`); absent when live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub club_mode: Option<ClubMode>,
}

impl MemberView {
    fn of(found: Option<MemberRecord>, club_mode: Option<ClubMode>) -> Self {
        match found {
            Some(m) => MemberView {
                member: true,
                member_id: m.member_id,
                tiers: m.tiers,
                since: m.since,
                member_since: m.since,
                first_name: m.first_name,
                last_name: m.last_name,
                phone: m.phone,
                club_mode,
            },
            None => MemberView {
                member: false,
                member_id: None,
                tiers: Vec::new(),
                since: None,
                member_since: None,
                first_name: None,
                last_name: None,
                phone: None,
                club_mode,
            },
        }
    }
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
    Ok(Json(MemberView::of(found.member, club_mode)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MembersQuery {
    /// The AMS member number (exact).
    pub member_id: Option<String>,
    /// The start of a name: the first name, the full name or the last name
    /// (case- and accent-insensitive).
    pub q: Option<String>,
    /// At most this many (default 20, max 100).
    pub limit: Option<usize>,
    /// `next` of the previous page (`q` only).
    pub cursor: Option<String>,
    /// `true`: search the roster applied last even in trial mode (as the
    /// member lookup's `preview`).
    pub preview: Option<bool>,
}

/// A member as `GET /club-members` finds them.
#[derive(Debug, Serialize, ToSchema)]
pub struct FoundMemberView {
    pub email: String,
    #[serde(flatten)]
    pub member: MemberView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MembersView {
    pub members: Vec<FoundMemberView>,
    /// `trial` while the club's member features are off: nobody is found
    /// unless `preview=true`; absent when live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub club_mode: Option<ClubMode>,
    /// Set when more may follow: pass it as `cursor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A page cursor: the store's position, hex-encoded (it holds an email).
fn decode_cursor(cursor: Option<&str>) -> Result<Option<String>, ApiError> {
    cursor
        .map(|c| {
            (c.len() <= 1024)
                .then(|| hex::decode(c).ok())
                .flatten()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    CheckoutError::InvalidQuery("cursor: not one this listing gave").into()
                })
        })
        .transpose()
}

/// Finds club members of the active roster by AMS member number
/// (`member_id`) or by the start of a name (`q`, paged, in name order).
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/club-members",
    params(("property" = String, Path), MembersQuery),
    responses(
        (status = 200, body = MembersView),
        (status = 400, body = platform::http::error::ErrorBody, description = "invalid_query (neither or both of member_id and q, or a cursor this search did not give)"),
        (status = 401, body = platform::http::error::ErrorBody),
        (status = 403, body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = [])),
    tag = "club"
)]
pub async fn find_members(
    State(store): State<Store>,
    caller: Caller,
    ApiQuery(q): ApiQuery<MembersQuery>,
) -> Result<Json<MembersView>, ApiError> {
    let member_id = q.member_id.as_deref().map(str::trim);
    let name = q.q.as_deref().map(fold_name);
    let limit = q.limit.unwrap_or(20).clamp(1, 100);
    let p = caller.live_property();
    let mode = store.club_mode(&p).await?;
    let club_mode = (mode == ClubMode::Trial).then_some(ClubMode::Trial);
    // In trial nobody is recognised, by number or name either.
    let hidden = mode == ClubMode::Trial && !q.preview.unwrap_or(false);
    let view = |found: Vec<FoundMember>| {
        found
            .into_iter()
            .filter(|_| !hidden)
            .map(|f| FoundMemberView {
                email: f.email.as_str().to_owned(),
                member: MemberView::of(Some(f.record), club_mode),
            })
            .collect()
    };
    match (member_id, name) {
        (Some(id), None) => {
            if id.is_empty() || id.len() > 100 {
                return Err(
                    CheckoutError::InvalidQuery("member_id: must be 1-100 characters").into(),
                );
            }
            let found = store.find_by_member_id(&p, id, limit).await?;
            Ok(Json(MembersView {
                members: view(found),
                next: None,
                club_mode,
            }))
        }
        (None, Some(name)) => {
            if name.is_empty() || name.len() > 100 {
                return Err(CheckoutError::InvalidQuery(
                    "q: 1-100 characters of a name (letters or digits)",
                )
                .into());
            }
            let after = decode_cursor(q.cursor.as_deref())?;
            let (found, next) = store
                .search_members(&p, &name, after.as_deref(), limit)
                .await?;
            Ok(Json(MembersView {
                members: view(found),
                next: next.filter(|_| !hidden).map(hex::encode),
                club_mode,
            }))
        }
        _ => Err(CheckoutError::InvalidQuery("give member_id or q (the start of a name)").into()),
    }
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// `joined`, `left` or `tier_changed`.
    pub kind: String,
    /// At most this many (default 100, max 1000).
    pub limit: Option<usize>,
    /// `next` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangesView {
    pub import: String,
    pub kind: ChangeKind,
    /// By email.
    pub changes: Vec<MemberChange>,
    /// Set when more may follow: pass it as `cursor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// What an import changed against the roster it replaced, one kind at a
/// time: members who joined, left or changed tier (the report counts them).
/// Listed while the import's generation is kept: applied or held, and a
/// replaced one until it is swept; rejected and skipped imports list none.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/roster-imports/{id}/changes",
    params(("property" = String, Path), ("id" = String, Path), ChangesQuery),
    responses(
        (status = 200, body = ChangesView),
        (status = 400, body = platform::http::error::ErrorBody, description = "invalid_query (kind, cursor)"),
        (status = 404, body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = [])),
    tag = "club"
)]
pub async fn changes(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ChangesQuery>,
) -> Result<Json<ChangesView>, ApiError> {
    let kind = ChangeKind::parse(&q.kind).ok_or(CheckoutError::InvalidQuery(
        "kind: one of joined, left, tier_changed",
    ))?;
    let after = decode_cursor(q.cursor.as_deref())?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let p = caller.live_property();
    let (report, _) = store
        .import_report(&p, &path.1)
        .await?
        .ok_or(RosterError::ImportNotFound)?;
    let (changes, next) = match &report.generation {
        Some(g) => store.changes(&p, g, kind, after.as_deref(), limit).await?,
        None => (Vec::new(), None),
    };
    Ok(Json(ChangesView {
        import: report.id,
        kind,
        changes,
        next: next.map(hex::encode),
    }))
}
