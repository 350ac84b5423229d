//! `checkout-api`: club member recognition, club tiers and roster imports,
//! and membership checkout.
//!
//! Layout:
//! - [`club`]: `club-members/{email}`, `club-tiers`, `roster-imports` — thin
//!   handlers over the roster store port.
//! - [`uploads`]: `POST /roster-imports` (the file as the body, through the
//!   ams-import pipeline) and `roster-imports/upload-url` (presigned S3 PUT).
//! - [`catalogue`]: products. [`orders`]: orders, payments, cancellation —
//!   each one store transaction with its seats, memberships and gift-card
//!   ledger writes. [`memberships`]: lookup, search and member activity.

pub mod catalogue;
pub mod club;
pub mod memberships;
pub mod orders;
pub mod uploads;

use axum::Router;
use domain::Scope;
use platform::Store;
use platform::http::scoped;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every route of this function, with its OpenAPI description.
pub fn routes() -> OpenApiRouter<Store> {
    OpenApiRouter::new()
        .routes(scoped(routes!(club::member), Scope::ClubRead))
        .routes(scoped(routes!(club::find_members), Scope::ClubRead))
        .routes(scoped(routes!(club::tiers), Scope::ClubRead))
        .routes(scoped(routes!(club::set_tier), Scope::ClubAdmin))
        .routes(scoped(routes!(club::imports), Scope::ClubRead))
        .routes(scoped(routes!(club::approve), Scope::ClubAdmin))
        .routes(scoped(routes!(club::changes), Scope::ClubRead))
        .routes(scoped(
            routes!(club::settings, club::set_settings),
            Scope::ClubAdmin,
        ))
        .routes(scoped(routes!(uploads::upload), Scope::ClubAdmin))
        .routes(scoped(routes!(uploads::upload_url), Scope::ClubAdmin))
        .routes(scoped(
            routes!(catalogue::put_product, catalogue::get_product),
            Scope::Checkout,
        ))
        .routes(scoped(routes!(catalogue::list_products), Scope::Checkout))
        .routes(scoped(routes!(orders::place_order), Scope::Checkout))
        .routes(scoped(routes!(orders::get_order), Scope::Checkout))
        .routes(scoped(routes!(orders::pay), Scope::Checkout))
        .routes(scoped(routes!(orders::cancel), Scope::Checkout))
        .routes(scoped(
            routes!(memberships::get_membership),
            Scope::Checkout,
        ))
        .routes(scoped(routes!(memberships::bookings), Scope::Checkout))
        .routes(scoped(
            routes!(memberships::find_memberships),
            Scope::Checkout,
        ))
}

/// The Lambda's router.
pub fn router(store: Store, max_body_bytes: usize) -> Router {
    let (router, _) = routes().with_state(store).split_for_parts();
    platform::http::serve_layers(router, max_body_bytes)
}
