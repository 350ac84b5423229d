//! The name of an environment variable a connection reads its secret from
//! (a Cloudbeds API key, a NetCarrots password). Connections store the
//! name, never the secret; a name is `A-Z`, `0-9` and `_`, so a secret
//! pasted where its name belongs is refused rather than stored.

use std::fmt;

/// A valid environment variable name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVarName(String);

/// Not a name (empty, or a character outside `A-Z`, `0-9`, `_`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an environment variable name is A-Z, 0-9 and _ (the variable's name, not the secret)")]
pub struct InvalidEnvVarName;

impl EnvVarName {
    pub fn parse(raw: &str) -> Result<Self, InvalidEnvVarName> {
        let ok = !raw.is_empty()
            && raw
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidEnvVarName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvVarName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<EnvVarName> for String {
    fn from(n: EnvVarName) -> Self {
        n.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_not_secrets() {
        assert!(EnvVarName::parse("CLOUDBEDS_KEY_CASTLE").is_ok());
        assert!(EnvVarName::parse("NC_PASSWORD_2").is_ok());
        for bad in ["", "cbat_abc", "KEY-1", "KEY 1", "Ä", "key"] {
            assert_eq!(EnvVarName::parse(bad), Err(InvalidEnvVarName), "{bad}");
        }
    }
}
