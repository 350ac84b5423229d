//! The guests API: guest profiles, notes, the screening watchlist, the
//! Cloudbeds webhook, and loyalty enrolments and departures. An axum
//! router served by `lambda_http` in AWS and by the local runner.
//!
//! Layout:
//! - [`routes`]: the router with its OpenAPI description.
//! - `profiles`: upsert, read, patch, erase, notes.
//! - `erasures`: erasing a person everywhere in a property, and the receipt.
//! - `screening`: the watchlist route and the immediate screening of
//!   profiles edited here.
//! - `runs`: the CRM sync's history.
//! - `frontdesk`: the day's arrivals and departures from Cloudbeds, with
//!   GuestHub's screening status.
//! - `webhook`: Cloudbeds deliveries (no Bearer; a secret path token).
//! - `callbacks`: the HTTP screening provider's later answers (no Bearer;
//!   HMAC-signed).
//! - `loyalty`: NetCarrots enrolments, member search, departures.

mod callbacks;
mod erasures;
mod frontdesk;
mod loyalty;
mod profiles;
mod runs;
mod screening;
mod webhook;

use domain::Scope;
use platform::Store;
use platform::http::scoped;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use webhook::{SharedQueue, webhook_token_hash};

/// Every route of this function, with its OpenAPI description. The state
/// is the store.
pub fn routes() -> OpenApiRouter<Store> {
    OpenApiRouter::new()
        .routes(scoped(
            routes!(profiles::upsert_guest, profiles::find_guests),
            Scope::Guests,
        ))
        .routes(scoped(
            routes!(
                profiles::get_guest,
                profiles::patch_guest,
                profiles::erase_guest
            ),
            Scope::Guests,
        ))
        .routes(scoped(
            routes!(profiles::add_note, profiles::list_notes),
            Scope::Guests,
        ))
        .routes(scoped(routes!(erasures::erase_person), Scope::Guests))
        .routes(scoped(routes!(erasures::get_erasure), Scope::Guests))
        .routes(scoped(routes!(screening::put_watchlist), Scope::Guests))
        .routes(scoped(routes!(runs::list_runs), Scope::Guests))
        .routes(scoped(routes!(frontdesk::arrivals), Scope::Guests))
        .routes(scoped(routes!(frontdesk::departures), Scope::Guests))
        .routes(scoped(routes!(loyalty::enrol), Scope::Loyalty))
        .routes(scoped(routes!(loyalty::search_members), Scope::Loyalty))
        .routes(scoped(routes!(loyalty::export_state), Scope::Loyalty))
        .routes(scoped(
            routes!(loyalty::report_departure, loyalty::cancel_departure),
            Scope::Loyalty,
        ))
        .routes(routes!(webhook::cloudbeds_webhook))
        .routes(routes!(callbacks::screening_callback))
}

/// The whole hub's OpenAPI document (`infra/openapi.json`).
pub const OPENAPI_JSON: &str = include_str!("../../../infra/openapi.json");

/// The router bound to a store, with the shared middleware.
pub fn router(store: Store, max_body_bytes: usize) -> axum::Router {
    router_with(store, max_body_bytes, None)
}

/// [`router`] whose webhook route sends to `queue` (SQS in AWS).
pub fn router_with(
    store: Store,
    max_body_bytes: usize,
    queue: Option<SharedQueue>,
) -> axum::Router {
    let (router, _) = routes().with_state(store).split_for_parts();
    let router = match queue {
        Some(q) => router.layer(axum::Extension(q)),
        None => router,
    };
    // In AWS this function also serves the API reference (`/docs`) and the
    // whole hub's OpenAPI document, as checked in (a test keeps it current).
    let router = router.merge(platform::http::docs::router(OPENAPI_JSON.to_owned()));
    platform::http::serve_layers(router, max_body_bytes)
}
