//! The watchlist route and immediate screening of profiles edited here.

use axum::extract::State;
use chrono::{DateTime, Utc};
use domain::ValidationError;
use domain::guest::Guest;
use domain::guest::ports::GuestStore;
use domain::guest::screening::{
    MAX_WATCHLIST_ENTRIES, ScreeningSubject, Watchlist, WatchlistEntry, queue_check, record_outcome,
};
use platform::Store;
use platform::http::{ApiError, ApiJson, Caller};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Screens a guest edited here against its property's watchlist when its
/// screened data changed (or, when the property screens with an HTTP
/// service, queues the check for the sync). The sync writes the outcome
/// back to Cloudbeds.
pub async fn screen_now(store: &Store, g: &mut Guest) -> Result<(), ApiError> {
    if g.erased {
        return Ok(());
    }
    let subject = ScreeningSubject::of(g);
    let hash = subject.hash();
    if g.screening.subject_hash.as_deref() == Some(hash.as_str()) {
        return Ok(());
    }
    if store
        .connection(&g.property)
        .await?
        .is_some_and(|c| c.screening_service.is_some())
    {
        // An HTTP service screens this property: the sync runs the check
        // (and writes `in_progress` back first).
        queue_check(g);
        return Ok(());
    }
    let list = store.watchlist(&g.property).await?;
    let outcome = list.check(&subject);
    record_outcome(g, &outcome, hash, store.clock().now());
    Ok(())
}

#[derive(Deserialize, ToSchema)]
pub struct WatchlistBody {
    /// Replaces the whole list.
    pub entries: Vec<WatchlistEntry>,
}

#[derive(Serialize, ToSchema)]
pub struct WatchlistView {
    pub entries: usize,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Replace the property's screening watchlist.
#[utoipa::path(
    put,
    path = "/v1/properties/{property}/screening/watchlist",
    tag = "guests",
    params(("property" = String, Path, description = "Property id")),
    request_body = WatchlistBody,
    responses(
        (status = 200, description = "Watchlist replaced", body = WatchlistView),
        (status = 400, description = "Invalid entry", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn put_watchlist(
    State(store): State<Store>,
    caller: Caller,
    body: ApiJson<WatchlistBody>,
) -> Result<axum::Json<WatchlistView>, ApiError> {
    let entries = body.value.entries;
    if entries.len() > MAX_WATCHLIST_ENTRIES {
        return Err(ValidationError::new(
            "entries",
            format!("at most {MAX_WATCHLIST_ENTRIES} entries"),
        )
        .into());
    }
    for e in &entries {
        e.validate()?;
    }
    let list = Watchlist {
        entries,
        updated_at: Some(store.clock().now()),
    };
    store.save_watchlist(&caller.property.id, &list).await?;
    tracing::info!(property = %caller.property.id, entries = list.entries.len(), "watchlist replaced");
    Ok(axum::Json(WatchlistView {
        entries: list.entries.len(),
        updated_at: list.updated_at,
    }))
}
