//! The CRM sync's history.

use axum::Json;
use axum::extract::State;
use domain::guest::ports::GuestStore;
use domain::guest::runs::{SyncRun, runs_limit};
use platform::Store;
use platform::http::{ApiError, ApiQuery, Caller};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// How many runs, newest first (1-100, default 20).
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct SyncRunList {
    pub runs: Vec<SyncRun>,
}

/// The Cloudbeds sync's runs for the property, newest first: start, end,
/// trigger, counts, errors and the conflicts resolved (field names only).
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/crm/runs",
    tag = "guests",
    params(("property" = String, Path, description = "Property id"), RunsQuery),
    responses(
        (status = 200, description = "Runs, newest first", body = SyncRunList),
        (status = 400, description = "Invalid limit", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn list_runs(
    State(store): State<Store>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<Json<SyncRunList>, ApiError> {
    let limit = runs_limit(q.limit)?;
    let runs = store.sync_runs(&caller.property.id, limit).await?;
    Ok(Json(SyncRunList { runs }))
}
