//! `octo-api`: every property as an OCTO supplier (the tourism industry's
//! open supplier API) for resellers, on the same products, capacity, club
//! discounts, memberships and test world as the checkout.
//!
//! Layout:
//! - [`views`]: GuestHub's catalogue, seats and bookings in OCTO's shapes.
//! - [`catalogue`]: supplier(s), products, availability and its calendar.
//! - [`bookings`]: reserve (seats held until `utcExpiresAt`), update,
//!   extend, confirm (a GuestHub order), cancel, look up.
//!
//! Errors are OCTO's (`OctoApiError`, mapped in `platform::http::error`);
//! the scope is `octo` on every route.

pub mod bookings;
pub mod catalogue;
pub mod views;

use axum::Router;
use axum::routing::{get, post};
use domain::Scope;
use platform::Store;
use platform::http::RequiredScope;

/// Every operation (method, path) this function serves; the collection
/// paths are also served with OCTO's trailing slash.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/octo/suppliers"),
    ("GET", "/octo/{property}/supplier"),
    ("GET", "/octo/{property}/products"),
    ("GET", "/octo/{property}/products/{id}"),
    ("POST", "/octo/{property}/availability"),
    ("POST", "/octo/{property}/availability/calendar"),
    ("POST", "/octo/{property}/bookings"),
    ("GET", "/octo/{property}/bookings"),
    ("GET", "/octo/{property}/bookings/{uuid}"),
    ("PATCH", "/octo/{property}/bookings/{uuid}"),
    ("POST", "/octo/{property}/bookings/{uuid}/confirm"),
    ("POST", "/octo/{property}/bookings/{uuid}/extend"),
    ("POST", "/octo/{property}/bookings/{uuid}/cancel"),
];

/// Every route of this function (see [`ROUTES`]).
pub fn routes() -> Router<Store> {
    let mut r = Router::new()
        .route("/octo/suppliers", get(catalogue::suppliers))
        .route(
            "/octo/{property}/products/{id}",
            get(catalogue::get_product),
        )
        .route(
            "/octo/{property}/bookings/{uuid}",
            get(bookings::get_booking).patch(bookings::update),
        )
        .route(
            "/octo/{property}/bookings/{uuid}/confirm",
            post(bookings::confirm),
        )
        .route(
            "/octo/{property}/bookings/{uuid}/extend",
            post(bookings::extend),
        )
        .route(
            "/octo/{property}/bookings/{uuid}/cancel",
            post(bookings::cancel),
        );
    for slash in ["", "/"] {
        r = r
            .route(
                &format!("/octo/{{property}}/supplier{slash}"),
                get(catalogue::supplier),
            )
            .route(
                &format!("/octo/{{property}}/products{slash}"),
                get(catalogue::products),
            )
            .route(
                &format!("/octo/{{property}}/availability{slash}"),
                post(catalogue::availability),
            )
            .route(
                &format!("/octo/{{property}}/availability/calendar{slash}"),
                post(catalogue::calendar),
            )
            .route(
                &format!("/octo/{{property}}/bookings{slash}"),
                post(bookings::reserve).get(bookings::list),
            );
    }
    r.layer(axum::Extension(RequiredScope(Scope::Octo)))
}

/// The Lambda's router.
pub fn router(store: Store, max_body_bytes: usize) -> Router {
    platform::http::serve_layers(routes().with_state(store), max_body_bytes)
}
