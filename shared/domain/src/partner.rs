//! Partners: the systems that call GuestHub (PMSs, AMSs, booking front ends)
//! and what each may do.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;

use crate::{PropertyId, ValidationError};

/// A partner's id (UUID v7 text).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct PartnerId(pub String);

impl fmt::Display for PartnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a partner key may do. Each route names the one scope it needs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub enum Scope {
    #[serde(rename = "vouchers:read")]
    VouchersRead,
    #[serde(rename = "vouchers:redeem")]
    VouchersRedeem,
    #[serde(rename = "vouchers:issue")]
    VouchersIssue,
    #[serde(rename = "vouchers:pickup")]
    VouchersPickup,
    #[serde(rename = "checkout")]
    Checkout,
    #[serde(rename = "club:read")]
    ClubRead,
    #[serde(rename = "club:admin")]
    ClubAdmin,
    #[serde(rename = "guests")]
    Guests,
    #[serde(rename = "loyalty")]
    Loyalty,
    #[serde(rename = "admin")]
    Admin,
    /// The OCTO supplier API (`/octo/…`): resellers book products.
    #[serde(rename = "octo")]
    Octo,
    /// Webhook subscriptions to GuestHub's events.
    #[serde(rename = "events")]
    Events,
}

impl Scope {
    pub const ALL: [Scope; 12] = [
        Scope::VouchersRead,
        Scope::VouchersRedeem,
        Scope::VouchersIssue,
        Scope::VouchersPickup,
        Scope::Checkout,
        Scope::ClubRead,
        Scope::ClubAdmin,
        Scope::Guests,
        Scope::Loyalty,
        Scope::Admin,
        Scope::Octo,
        Scope::Events,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::VouchersRead => "vouchers:read",
            Scope::VouchersRedeem => "vouchers:redeem",
            Scope::VouchersIssue => "vouchers:issue",
            Scope::VouchersPickup => "vouchers:pickup",
            Scope::Checkout => "checkout",
            Scope::ClubRead => "club:read",
            Scope::ClubAdmin => "club:admin",
            Scope::Guests => "guests",
            Scope::Loyalty => "loyalty",
            Scope::Admin => "admin",
            Scope::Octo => "octo",
            Scope::Events => "events",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|sc| sc.as_str() == s.trim())
            .ok_or_else(|| ValidationError::new("scopes", format!("unknown scope {s:?}")))
    }
}

/// A partner as stored. The API key itself is never stored: only its id
/// (public, used to find the record) and the SHA-256 of its secret part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partner {
    pub id: PartnerId,
    pub name: String,
    pub scopes: BTreeSet<Scope>,
    pub properties: BTreeSet<PropertyId>,
    /// Public half of the key, `ghk_<key_id>_<secret>`.
    pub key_id: String,
    /// Hex SHA-256 of the secret half.
    pub key_hash: String,
    #[serde(default)]
    pub disabled: bool,
    /// A sandbox partner: its key is `ghk_test_…` and every request it
    /// makes works in the test namespace of the property it names.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

impl Partner {
    pub fn may_act_for(&self, property: &PropertyId) -> bool {
        !self.disabled && self.properties.contains(property)
    }

    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip() {
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>().unwrap(), s);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert!("vouchers:write".parse::<Scope>().is_err());
    }
}
