//! GuestHub's domain: the words of the trade as types, the rules, and the ports.
//!
//! Layout:
//! - [`money`], [`email`], [`time`]: value types that parse their input once.
//! - [`property`], [`partner`]: tenants and the partner systems acting for them.
//! - [`idempotency`]: the record kept per `Idempotency-Key`.
//! - [`ports`]: the storage and clock traits the platform crate implements
//!   (a DynamoDB and a SQLite adapter for every store port).
//! - [`guest`]: guest profiles, notes, stays, screening, and the Cloudbeds
//!   sync rules and ports.
//! - [`loyalty`]: NetCarrots enrolments, stays at departure, the export
//!   outbox and file format.
//! - [`roster`]: club roster files (AMS drops): parsing and validation.
//! - [`voucher`]: vouchers and gift cards: codes, the ledger, the rules,
//!   pickup, settlement, and the voucher store port.
//! - [`csv_out`]: how every CSV GuestHub writes quotes and neutralises text.
//!
//! Invariant: this crate never depends on `aws-*`, `lambda_*`, `rusqlite`,
//! `tokio` networking or any HTTP crate. `tests/` checks it with `cargo tree`.

pub mod checkout;
pub mod csv_out;
pub mod email;
pub mod env_var;
pub mod erasure;
pub mod error;
pub mod events;
pub mod guest;
pub mod idempotency;
pub mod loyalty;
pub mod money;
pub mod name;
pub mod octo;
pub mod partner;
pub mod ports;
pub mod property;
pub mod roster;
pub mod time;
pub mod voucher;

pub use email::Email;
pub use env_var::EnvVarName;
pub use error::{StoreError, ValidationError};
pub use money::{Currency, Money};
pub use partner::{Partner, PartnerId, Scope};
pub use property::{Property, PropertyId};
