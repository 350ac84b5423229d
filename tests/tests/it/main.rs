//! The end-to-end tests, one module per area, linked into one test binary
//! (each binary links the AWS SDK and the whole hub; one link instead of
//! seventeen). `cargo test -p tests --test it vouchers::` runs one area.
//!
//! `pii_logs.rs` and `erasure.rs` stay binaries of their own: each installs
//! the process-wide log subscriber it captures.

mod api_docs;
mod architecture;
mod auth_matrix;
mod checkout;
mod cloudbeds_guests;
mod club;
mod conformance;
mod crm_queue;
mod crm_sync;
mod events;
mod guests;
mod hostile_input;
mod http_layer;
mod loyalty;
mod octo;
mod reliability_roster;
mod reliability_vouchers;
mod roster;
mod roster_club;
mod round_trips;
mod sandbox;
mod secrets;
mod vouchers;
