//! `checkout-api`: club member recognition, club tiers and roster imports
//! (DESIGN §5.1), and membership checkout (DESIGN §5.3).
//!
//! Layout:
//! - [`club`]: `club-members/{email}`, `club-tiers`, `roster-imports` — thin
//!   handlers over the roster store port.

pub mod club;

use axum::Router;
use platform::Store;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every route of this function, with its OpenAPI description.
pub fn routes() -> OpenApiRouter<Store> {
    OpenApiRouter::new()
        .routes(routes!(club::member))
        .routes(routes!(club::tiers))
        .routes(routes!(club::set_tier))
        .routes(routes!(club::imports))
        .routes(routes!(club::approve))
}

/// The Lambda's router.
pub fn router(store: Store, max_body_bytes: usize) -> Router {
    let (router, _) = routes().with_state(store).split_for_parts();
    platform::http::serve_layers(router, max_body_bytes)
}
