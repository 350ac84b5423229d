//! Membership checkout: the catalogue, membership validity and
//! benefits, order pricing with club discounts and promo codes, payments.
//! Pure rules; the store and HTTP sides live in the platform and
//! `checkout-api` crates.

pub mod catalogue;
pub mod error;
pub mod membership;
pub mod order;
pub mod payment;
pub mod ports;
pub mod pricing;
pub mod validity;

pub use error::CheckoutError;
