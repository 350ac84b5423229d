//! `vouchers-api`: vouchers and gift cards for PMS partners. GuestHub sells
//! them and keeps the ledger; PMSs (ASA, Protel) pick orders up, ask for live
//! status and redeem.
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
use domain::Scope;
use platform::Store;
use platform::http::scoped;
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
        .routes(scoped(routes!(h::issue), Scope::VouchersIssue))
        .routes(scoped(routes!(h::lookup), Scope::VouchersRead))
        .routes(scoped(routes!(h::status), Scope::VouchersRead))
        .routes(scoped(routes!(h::load), Scope::VouchersIssue))
        .routes(scoped(routes!(h::redeem), Scope::VouchersRedeem))
        .routes(scoped(routes!(h::reverse), Scope::VouchersRedeem))
        .routes(scoped(routes!(h::hold), Scope::VouchersRedeem))
        .routes(scoped(routes!(h::capture), Scope::VouchersRedeem))
        .routes(scoped(routes!(h::release), Scope::VouchersRedeem))
        .routes(scoped(routes!(h::block), Scope::VouchersIssue))
        .routes(scoped(routes!(h::unblock), Scope::VouchersIssue))
        .routes(scoped(routes!(h::cancel), Scope::VouchersIssue))
        .routes(scoped(routes!(h::activities), Scope::VouchersRead))
        .routes(scoped(routes!(h::orders), Scope::VouchersPickup))
        .routes(scoped(routes!(h::acknowledge), Scope::VouchersPickup))
        .routes(scoped(
            routes!(h::put_mapping, h::get_mapping),
            Scope::VouchersPickup,
        ))
        .routes(scoped(routes!(h::settlement), Scope::VouchersRead))
        .routes(scoped(routes!(h::import), Scope::VouchersIssue))
        .routes(scoped(routes!(h::write_off), Scope::VouchersIssue))
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
