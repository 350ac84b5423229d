//! Adapters for GuestHub's ports and the HTTP plumbing every function shares.
//!
//! Layout:
//! - [`store`]: the item-store primitive, its DynamoDB and SQLite backends,
//!   a fault-injecting wrapper, and the repositories implementing the
//!   domain's store ports.
//! - [`cloudbeds`]: the Cloudbeds API v1.2 client (rate limit, retries).
//! - [`auth`]: partner API keys (generation, hashing, constant-time checks).
//! - [`http`]: the error type and its one mapping to JSON responses, the JSON
//!   extractor, the caller (auth) extractor, the idempotency wrapper, and the
//!   middleware stack (request ids, body limit, panics).
//! - [`config`]: environment read once into a typed `Config`.
//! - [`telemetry`]: tracing setup (JSON in Lambda, readable locally).

pub mod auth;
pub mod cloudbeds;
pub mod config;
pub mod event_bus;
pub mod events;
pub mod http;
pub mod jobs;
pub mod queue;
pub mod screening;
pub mod secrets;
pub mod store;
pub mod telemetry;
pub mod transfer;

pub use store::Store;
