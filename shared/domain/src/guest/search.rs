//! Guest search (`GET …/guests?q=`): prefixes of a guest's names, email
//! and phone, matched case- and accent-insensitively.
//!
//! A guest is found by the keys [`keys_of`] gives it; a query matches a
//! guest when [`fold`]`(q)` is a prefix of one of them. Keys are folded
//! text: lower case, accents dropped (`López` → `lopez`), whitespace
//! collapsed; a phone is its digits only.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::Guest;
use crate::ValidationError;

/// Shortest and longest query taken.
pub const MIN_QUERY: usize = 2;
pub const MAX_QUERY: usize = 100;
/// Guests per page: default and most.
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

/// Lower case, accents dropped, whitespace collapsed to one space.
pub fn fold(s: &str) -> String {
    let stripped: String = s
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    stripped.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A phone's digits.
pub fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The keys a guest is found by: first name, last name, "first last",
/// "last first", email, phone digits (without and with a leading `00`/`+`
/// dropped). Erased guests have none.
pub fn keys_of(g: &Guest) -> Vec<String> {
    if g.erased {
        return Vec::new();
    }
    let mut keys = Vec::new();
    let first = g.first_name.as_deref().map(fold).unwrap_or_default();
    let last = g.last_name.as_deref().map(fold).unwrap_or_default();
    keys.push(first.clone());
    keys.push(last.clone());
    // Each further word of a name too (`García` of `López García`).
    for name in [&first, &last] {
        keys.extend(name.split(' ').skip(1).map(str::to_owned));
    }
    if !first.is_empty() && !last.is_empty() {
        keys.push(format!("{first} {last}"));
        keys.push(format!("{last} {first}"));
    }
    if let Some(e) = &g.email {
        keys.push(fold(e.as_str()));
    }
    if let Some(p) = &g.phone {
        let d = digits(p);
        if let Some(rest) = d.strip_prefix("00") {
            keys.push(rest.to_owned());
        }
        keys.push(d);
    }
    keys.retain(|k| !k.is_empty());
    // A query is at most MAX_QUERY characters: longer keys add nothing.
    for k in &mut keys {
        if let Some((i, _)) = k.char_indices().nth(MAX_QUERY) {
            k.truncate(i);
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// A search: the folded query, and the phone digits when the query looks
/// like a phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestQuery {
    pub text: String,
    pub phone: Option<String>,
}

impl GuestQuery {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let text = fold(raw);
        let n = text.chars().count();
        if n < MIN_QUERY {
            return Err(ValidationError::new(
                "q",
                format!("needs at least {MIN_QUERY} characters"),
            ));
        }
        if n > MAX_QUERY {
            return Err(ValidationError::new(
                "q",
                format!("is longer than {MAX_QUERY} characters"),
            ));
        }
        crate::name::one_line("q", raw)?;
        let phone_like = raw
            .trim()
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()./".contains(c));
        let d = digits(raw);
        let phone = (phone_like && d.len() >= MIN_QUERY)
            .then(|| d.strip_prefix("00").map(str::to_owned).unwrap_or(d));
        Ok(Self { text, phone })
    }

    /// The prefixes to look up.
    pub fn prefixes(&self) -> Vec<String> {
        let mut out = vec![self.text.clone()];
        if let Some(p) = &self.phone
            && p != &self.text
        {
            out.push(p.clone());
        }
        out
    }

    pub fn matches(&self, g: &Guest) -> bool {
        let prefixes = self.prefixes();
        keys_of(g)
            .iter()
            .any(|k| prefixes.iter().any(|p| k.starts_with(p.as_str())))
    }
}

/// A page size: 1–100, 20 when not given.
pub fn search_limit(raw: Option<usize>) -> Result<usize, ValidationError> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ValidationError::new(
            "limit",
            format!("must be 1-{MAX_LIMIT}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::GuestId;
    use crate::{Email, PropertyId};

    fn guest() -> Guest {
        let mut g = Guest::new(
            GuestId("g1".into()),
            PropertyId::parse("p").unwrap(),
            chrono::Utc::now(),
        );
        g.first_name = Some("José".into());
        g.last_name = Some("López  García".into());
        g.email = Some(Email::parse("Jose.Lopez@Example.com").unwrap());
        g.phone = Some("+43 (664) 123-4567".into());
        g
    }

    #[test]
    fn folds_case_accents_and_spaces() {
        assert_eq!(fold("  ÉLODIE  Müller "), "elodie muller");
        assert_eq!(digits("+43 (664) 12"), "4366412");
    }

    #[test]
    fn matches_prefixes_of_names_email_phone() {
        let g = guest();
        for q in [
            "jose",
            "JOS",
            "lopez g",
            "lópez",
            "jose lo",
            "jose.lopez@",
            "4366",
            "+43 664",
            "0043664",
        ] {
            assert!(GuestQuery::parse(q).unwrap().matches(&g), "{q}");
        }
        assert!(GuestQuery::parse("garcia").unwrap().matches(&g));
        for q in ["arcia", "example", "664", "osé"] {
            assert!(!GuestQuery::parse(q).unwrap().matches(&g), "{q}");
        }
        assert!(GuestQuery::parse("j").is_err());
        assert!(GuestQuery::parse("a\u{7}b").is_err());
    }

    #[test]
    fn erased_guests_have_no_keys() {
        let mut g = guest();
        g.erase(chrono::Utc::now());
        assert!(keys_of(&g).is_empty());
    }
}
