//! `vouchers-api`: vouchers and gift cards for PMS partners (DESIGN §5.2,
//! issue #3). GuestHub sells them and keeps the ledger; PMSs (ASA, Protel)
//! pick orders up, ask for live status and redeem.
//!
//! Layout:
//! - [`handlers`]: the axum routes under `/v1/properties/{property}/…`, each
//!   annotated for the OpenAPI document; thin: scope, parse, delegate.
//! - [`service`]: what each route does — find the voucher the caller may
//!   see, run the domain rule through the store, render the answer.
//! - [`views`]: the response bodies (the partner contract).
//! - [`gates`]: per-voucher queueing inside one process (an optimisation;
//!   the store's conditional writes guarantee no double spend).
//!
//! Money-moving routes commit their idempotent answer in the same store
//! transaction as the balance change (`domain::voucher::ports::Receipt`).

pub mod gates;
pub mod handlers;
pub mod service;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use platform::Store;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::gates::VoucherGates;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub gates: Arc<VoucherGates>,
}

impl AppState {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            gates: Arc::default(),
        }
    }
}

impl FromRef<AppState> for Store {
    fn from_ref(s: &AppState) -> Store {
        s.store.clone()
    }
}

/// Every voucher route, with its OpenAPI description.
pub fn routes() -> OpenApiRouter<AppState> {
    use handlers as h;
    OpenApiRouter::new()
        .routes(routes!(h::issue))
        .routes(routes!(h::status))
        .routes(routes!(h::load))
        .routes(routes!(h::redeem))
        .routes(routes!(h::reverse))
        .routes(routes!(h::hold))
        .routes(routes!(h::capture))
        .routes(routes!(h::release))
        .routes(routes!(h::block))
        .routes(routes!(h::unblock))
        .routes(routes!(h::cancel))
        .routes(routes!(h::activities))
        .routes(routes!(h::orders))
        .routes(routes!(h::acknowledge))
        .routes(routes!(h::put_mapping, h::get_mapping))
        .routes(routes!(h::settlement))
        .routes(routes!(h::import))
        .routes(routes!(h::write_off))
}

/// The OpenAPI paths and schemas of these routes.
pub fn openapi() -> OpenApi {
    routes().split_for_parts().1
}

/// The function's router, bound to a store, with the shared middleware.
pub fn router(store: Store, max_body_bytes: usize) -> Router {
    let (router, _) = routes().split_for_parts();
    platform::http::serve_layers(router.with_state(AppState::new(store)), max_body_bytes)
}
