//! `checkout-api`: club member recognition, club tiers and roster imports
//! (DESIGN §5.1), and membership checkout (DESIGN §5.3).
//!
//! Layout:
//! - [`club`]: `club-members/{email}`, `club-tiers`, `roster-imports` — thin
//!   handlers over the roster store port.
//! - [`catalogue`]: products. [`orders`]: orders, payments, cancellation —
//!   each one store transaction with its seats, memberships and gift-card
//!   ledger writes. [`memberships`]: lookup and member activity.

pub mod catalogue;
pub mod club;
pub mod memberships;
pub mod orders;

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
        .routes(routes!(catalogue::put_product, catalogue::get_product))
        .routes(routes!(catalogue::list_products))
        .routes(routes!(orders::place_order))
        .routes(routes!(orders::get_order))
        .routes(routes!(orders::pay))
        .routes(routes!(orders::cancel))
        .routes(routes!(memberships::get_membership))
        .routes(routes!(memberships::bookings))
}

/// The Lambda's router.
pub fn router(store: Store, max_body_bytes: usize) -> Router {
    let (router, _) = routes().with_state(store).split_for_parts();
    platform::http::serve_layers(router, max_body_bytes)
}
