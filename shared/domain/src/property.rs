//! Properties: the hotels, wineries and attractions GuestHub works for.

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

use crate::{Currency, ValidationError};

/// A property's id: a short slug chosen by the operator (`castle-winery`).
/// It appears in routes and in every storage key, so it is kept to
/// `[a-z0-9-]`, 1–64 characters. A sandbox key's requests work in the
/// property's test namespace, `<id>~test` ([`PropertyId::sandbox`]): the
/// same storage keys under an id no operator can create, so test data and
/// live data never meet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "castle-winery")]
pub struct PropertyId(String);

/// The suffix of a property's test namespace.
const SANDBOX: &str = "~test";

impl PropertyId {
    /// An id as the operator and the routes write it (`[a-z0-9-]`); the
    /// stored form of a test namespace (`<id>~test`) reads back too.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let base = raw.strip_suffix(SANDBOX).unwrap_or(raw);
        Self::parse_live(base).map(|_| Self(raw.to_owned()))
    }

    /// An id of a live property: `[a-z0-9-]` only (what routes and the
    /// admin commands take).
    pub fn parse_live(raw: &str) -> Result<Self, ValidationError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::new(
                "property",
                "must be 1-64 characters of a-z, 0-9 and '-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The property's test namespace, where sandbox keys' requests keep
    /// their data.
    pub fn sandbox(&self) -> PropertyId {
        if self.is_sandbox() {
            self.clone()
        } else {
            Self(format!("{}{SANDBOX}", self.0))
        }
    }

    pub fn is_sandbox(&self) -> bool {
        self.0.ends_with(SANDBOX)
    }

    /// The live property (itself, or the one whose test namespace this is).
    pub fn live(&self) -> PropertyId {
        Self(self.0.strip_suffix(SANDBOX).unwrap_or(&self.0).to_owned())
    }
}

impl fmt::Display for PropertyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PropertyId {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<PropertyId> for String {
    fn from(p: PropertyId) -> Self {
        p.0
    }
}

/// Parses an IANA zone name (`Europe/Vienna`).
pub fn parse_time_zone(raw: &str) -> Result<Tz, ValidationError> {
    raw.trim()
        .parse::<Tz>()
        .map_err(|_| ValidationError::new("time_zone", "not an IANA time zone name"))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Property {
    pub id: PropertyId,
    pub name: String,
    /// IANA zone; validity dates are local to it.
    #[schema(value_type = String, example = "Europe/Vienna")]
    pub time_zone: Tz,
    pub currency: Currency,
    /// Issuers whose vouchers this property accepts (portal systems).
    #[serde(default)]
    pub accepts_vouchers_of: Vec<PropertyId>,
    /// Hotels that pick up this issuer's value and package voucher orders
    /// in their own pickup feed (portal pickup; each also accepts them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orders_picked_up_by: Vec<PropertyId>,
    /// Hold a club file that would shrink the roster by this share or more
    /// (percent; 50 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster_hold_shrink_percent: Option<u8>,
    /// Anonymise order and membership contacts this many days after their
    /// last visit or expiry, and delivered loyalty records' personal fields
    /// this many days after delivery (off when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
}

impl Property {
    /// The property as a sandbox key sees it: its id, the issuers it
    /// accepts and the hotels that pick up its orders, all in their test
    /// namespaces (name, zone and currency as live).
    pub fn sandbox(&self) -> Property {
        Property {
            id: self.id.sandbox(),
            accepts_vouchers_of: self
                .accepts_vouchers_of
                .iter()
                .map(PropertyId::sandbox)
                .collect(),
            orders_picked_up_by: self
                .orders_picked_up_by
                .iter()
                .map(PropertyId::sandbox)
                .collect(),
            ..self.clone()
        }
    }

    pub fn new(
        id: PropertyId,
        name: &str,
        time_zone: Tz,
        currency: Currency,
    ) -> Result<Self, ValidationError> {
        crate::name::one_line("name", name)?;
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(ValidationError::new("name", "must be 1-200 characters"));
        }
        Ok(Self {
            id,
            name: name.to_owned(),
            time_zone,
            currency,
            accepts_vouchers_of: Vec::new(),
            orders_picked_up_by: Vec::new(),
            roster_hold_shrink_percent: None,
            retention_days: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_ids_are_slugs() {
        assert!(PropertyId::parse("castle-winery-2").is_ok());
        for bad in [
            "",
            "Castle",
            "a/b",
            "-x",
            "a b",
            &"x".repeat(65),
            "~test",
            "a~test~test",
        ] {
            assert!(PropertyId::parse(bad).is_err(), "{bad}");
        }
        let live = PropertyId::parse("castle-winery").unwrap();
        let test = live.sandbox();
        assert_eq!(test.as_str(), "castle-winery~test");
        assert!(test.is_sandbox() && !live.is_sandbox());
        assert_eq!(test.live(), live);
        assert_eq!(PropertyId::parse(test.as_str()).unwrap(), test);
        assert!(PropertyId::parse_live(test.as_str()).is_err());
    }

    #[test]
    fn zones_are_iana() {
        assert!(parse_time_zone("Europe/Vienna").is_ok());
        assert!(parse_time_zone("Mars/Olympus").is_err());
    }
}
