//! Email addresses: parsed once, compared trimmed and case-insensitively.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use utoipa::ToSchema;

use crate::ValidationError;

/// A syntactically plausible address, stored lower-cased and trimmed so that
/// lookups (club recognition, guest upserts) match however partners type it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "ana@example.com")]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let trimmed = raw.trim();
        // Roster imports parse millions of addresses: nearly all are ASCII,
        // which one byte pass can check and lower-case.
        let s = if trimmed.is_ascii() {
            trimmed.to_ascii_lowercase()
        } else {
            trimmed.to_lowercase()
        };
        check(&s)?;
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A stable, non-reversible token for logs: never log the address itself.
    pub fn log_token(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        format!("email#{}", &hex::encode(digest)[..12])
    }
}

/// The syntax rules, on an already trimmed and lower-cased address.
fn check(s: &str) -> Result<(), ValidationError> {
    let err = |r: &str| Err(ValidationError::new("email", r));
    if s.is_empty() {
        return err("is empty");
    }
    if s.len() > 254 {
        return err("is longer than 254 characters");
    }
    let Some((local, domain)) = s.rsplit_once('@') else {
        return err("has no @");
    };
    if local.is_empty() || local.len() > 64 {
        return err("has an empty or over-long local part");
    }
    if domain.len() < 3
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return err("has no valid domain");
    }
    let bad_char = |c: char| c.is_whitespace() || c.is_control() || c == ',' || c == ';';
    let local_ok = if local.is_ascii() {
        !local.bytes().any(|b| bad_char(b as char) || b == b'@')
    } else {
        !local.chars().any(|c| bad_char(c) || c == '@')
    };
    if !local_ok {
        return err("contains characters not allowed in an address");
    }
    let domain_ok = if domain.is_ascii() {
        domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    } else {
        domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
    };
    if !domain_ok {
        return err("has no valid domain");
    }
    Ok(())
}

/// Debug never prints the address (it is personal data).
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.log_token())
    }
}

impl TryFrom<String> for Email {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> Self {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn trims_and_lowercases() {
        assert_eq!(
            Email::parse("  Ana.Lopez@Example.COM ").unwrap().as_str(),
            "ana.lopez@example.com"
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "ana",
            "ana@",
            "@x.com",
            "ana@com",
            "a b@x.com",
            "ana@x..com",
            "a@b@c.com",
            "ana@.x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_masks() {
        let e = Email::parse("ana@example.com").unwrap();
        assert!(!format!("{e:?}").contains("ana"));
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*") {
            let _ = Email::parse(&s);
        }

        #[test]
        fn parse_is_idempotent(s in "[a-zA-Z0-9._+-]{1,20}@[a-z0-9-]{1,10}\\.[a-z]{2,5}") {
            let e = Email::parse(&s).unwrap();
            prop_assert_eq!(Email::parse(e.as_str()).unwrap(), e);
        }
    }
}
