//! The local runner: one process hosting every GuestHub function on the
//! embedded store (a SQLite file and local folders), plus the admin CLI.
//!
//! Layout:
//! - [`app`]: the merged router of every HTTP function, `/health` and
//!   `/openapi.json` — what `guesthub serve` listens with.
//! - `examples`: the OpenAPI document's examples (`openapi_examples.json`).
//! - [`crm`]: `crm connect`, `crm sync` and the scheduled sync job.
//! - [`loyalty`]: `loyalty connect`, `loyalty export` and the scheduled export
//!   job (files go to `<data-dir>/outbox/loyalty/` unless connected).
//! - [`events`]: the in-process event dispatcher and `events tail`.
//! - [`demo`]: `guesthub demo` — demo properties, partners, products,
//!   vouchers, a club file, guests and a loyalty export, then a walkthrough.
//! - [`scheduler`]: the one local scheduler both jobs run under (the
//!   stand-in for EventBridge), stopped with the hub.
//! - [`server`]: the HTTP server `serve` runs (timeouts, connection cap).
//! - [`admin`]: the admin commands (properties, partners, tables).
//! - `main.rs`: argument parsing and wiring only.

pub mod admin;
pub mod app;
pub mod crm;
pub mod demo;
pub mod events;
mod examples;
pub mod loyalty;
pub mod roster;
pub mod scheduler;
pub mod server;
