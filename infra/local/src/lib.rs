//! The local runner: one process hosting every GuestHub function on the
//! embedded store (a SQLite file and local folders), plus the admin CLI.
//!
//! Layout:
//! - [`app`]: the merged router of every HTTP function, `/health` and
//!   `/openapi.json` — what `guesthub serve` listens with.
//! - `examples`: the OpenAPI document's examples (`openapi_examples.json`).
//! - [`crm`]: `crm connect`, `crm sync` and the local sync scheduler.
//! - [`loyalty`]: `loyalty connect`, `loyalty export` and the local export
//!   scheduler (files go to `<data-dir>/outbox/loyalty/` unless connected).
//! - [`demo`]: `guesthub demo` — demo properties, partners, products,
//!   vouchers, a club file, guests and a loyalty export, then a walkthrough.
//! - [`server`]: the HTTP server `serve` runs (timeouts, connection cap).
//! - [`admin`]: the admin commands (properties, partners, tables).
//! - `main.rs`: argument parsing and wiring only.

pub mod admin;
pub mod app;
pub mod crm;
pub mod demo;
mod examples;
pub mod loyalty;
pub mod roster;
pub mod server;
