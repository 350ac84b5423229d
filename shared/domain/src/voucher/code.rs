//! Voucher codes.
//!
//! **Generated codes** (the ones GuestHub issues) are 20 characters from a
//! 31-character alphabet without look-alikes (no `0 O 1 I L`), shown as five
//! groups of four: `7KQX-M2RT-9HVW-C4NP-E83R`. Nineteen characters are
//! random (19 × log2(31) ≈ 94 bits, so codes cannot be guessed); the last is
//! a check character: Σ (position × value) ≡ 0 (mod 31) over all twenty.
//! Because 31 is prime and every weight is below it, any single wrong
//! character and any swap of two neighbours is caught.
//!
//! **External codes** (imported legacy vouchers, other systems' vouchers) are
//! kept as their issuer printed them: 4–64 characters of `A-Z 0-9 -` (case is
//! ignored). They carry no check character.
//!
//! Either kind is *the same code* whatever its case, spacing or dashes: the
//! storage key is the upper-cased code without separators. So a guest may
//! type `7kqx m2rt 9hvw c4np e83r` and a PMS may send `7KQXM2RT9HVWC4NPE83R`.

use std::fmt;
use std::hash::{Hash, Hasher};

use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::ValidationError;

/// The alphabet of generated codes: digits 2–9 and A–Z without I, L, O.
pub const ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Characters of a generated code, check character included.
pub const GENERATED_LEN: usize = 20;
const MODULUS: u32 = 31;
/// The inverse of the check character's weight (20) modulo 31: 20 × 14 = 280 = 9 × 31 + 1.
const CHECK_WEIGHT_INVERSE: u32 = 14;

/// A voucher code. Equality and hashing use the storage key only.
#[derive(Clone)]
pub struct VoucherCode {
    key: String,
    display: String,
    generated: bool,
}

fn value_of(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// Σ (position × value) mod 31, positions counted from 1.
fn weighted_sum(chars: &[u8]) -> Option<u32> {
    chars.iter().enumerate().try_fold(0u32, |acc, (i, &c)| {
        Some((acc + (i as u32 + 1) * value_of(c)?) % MODULUS)
    })
}

/// Upper-cased, whitespace and dashes removed.
fn squeeze(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

fn group(key: &str) -> String {
    key.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("-")
}

impl VoucherCode {
    /// A new random code from the thread's CSPRNG.
    pub fn generate() -> Self {
        Self::generate_with(&mut rand::rng())
    }

    pub fn generate_with<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let mut chars: Vec<u8> = (0..GENERATED_LEN - 1)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
            .collect();
        let partial = weighted_sum(&chars).unwrap_or(0);
        let check = ((MODULUS - partial) % MODULUS) * CHECK_WEIGHT_INVERSE % MODULUS;
        chars.push(ALPHABET[check as usize]);
        let key = String::from_utf8(chars).unwrap_or_default();
        Self {
            display: group(&key),
            key,
            generated: true,
        }
    }

    /// A generated code as typed: case, spaces and dashes do not matter; the
    /// check character must match.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let key = squeeze(raw);
        let err = |r: &str| Err(ValidationError::new("code", r));
        if key.len() != GENERATED_LEN {
            return err("a voucher code has 20 characters");
        }
        match weighted_sum(key.as_bytes()) {
            None => err("a voucher code uses only 2-9 and A-Z without I, L and O"),
            Some(0) => Ok(Self {
                display: group(&key),
                key,
                generated: true,
            }),
            Some(_) => err("the check character does not match; the code is mistyped"),
        }
    }

    /// A code from another system, kept as printed (upper-cased, spaces
    /// removed): 4–64 characters of A-Z, 0-9 and '-'.
    pub fn external(raw: &str) -> Result<Self, ValidationError> {
        let display: String = raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_uppercase)
            .collect();
        let key = squeeze(&display);
        let ok = display
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
            && (4..=64).contains(&key.len())
            && display.len() <= 64;
        if !ok {
            return Err(ValidationError::new(
                "code",
                "an external code has 4-64 characters of A-Z, 0-9 and '-'",
            ));
        }
        // A code that passes our check is a generated one, whoever sent it.
        if let Ok(generated) = Self::parse(&key) {
            return Ok(generated);
        }
        Ok(Self {
            key,
            display,
            generated: false,
        })
    }

    /// Any code as a guest or PMS sends it, for looking it up: a generated
    /// code when it is one, otherwise an external code.
    pub fn lookup(raw: &str) -> Result<Self, ValidationError> {
        Self::parse(raw).or_else(|_| Self::external(raw))
    }

    /// Shaped like a generated code but failing its check character: most
    /// likely a typo, worth saying so when nothing is found under it.
    pub fn looks_mistyped(raw: &str) -> bool {
        let key = squeeze(raw);
        key.len() == GENERATED_LEN && weighted_sum(key.as_bytes()).is_some_and(|s| s != 0)
    }

    /// The storage key: upper case, no separators.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The code as printed on the voucher.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    pub fn is_generated(&self) -> bool {
        self.generated
    }

    /// The code as printed with every letter and digit but the last four
    /// replaced by `*` (`****-****-****-****-E83R`): for answers that go to
    /// whoever searches rather than to someone who holds the voucher.
    pub fn masked_display(&self) -> String {
        let shown = self
            .display
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .count();
        let mut hide = shown.saturating_sub(4);
        self.display
            .chars()
            .map(|c| {
                if hide > 0 && c.is_ascii_alphanumeric() {
                    hide -= 1;
                    '*'
                } else {
                    c
                }
            })
            .collect()
    }

    /// For logs: only the last four characters.
    pub fn masked(&self) -> String {
        let tail = &self.key[self.key.len().saturating_sub(4)..];
        format!("…{tail}")
    }
}

impl PartialEq for VoucherCode {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for VoucherCode {}

impl Hash for VoucherCode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl PartialOrd for VoucherCode {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for VoucherCode {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

/// Debug never prints a whole code: it is a bearer instrument.
impl fmt::Debug for VoucherCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VoucherCode({})", self.masked())
    }
}

impl Serialize for VoucherCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.display)
    }
}

impl<'de> Deserialize<'de> for VoucherCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::lookup(&raw).map_err(serde::de::Error::custom)
    }
}

impl PartialSchema for VoucherCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A voucher code: generated (20 characters in groups of four, with a check \
                 character) or external (4-64 characters of A-Z, 0-9, '-'). Case, spaces \
                 and dashes do not matter.",
            ))
            .examples(["7KQX-M2RT-9HVW-C4NP-E83R"])
            .into()
    }
}

impl ToSchema for VoucherCode {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn generated_codes_are_grouped_and_verify() {
        let c = VoucherCode::generate();
        assert_eq!(c.as_str().len(), 24);
        assert_eq!(c.as_str().matches('-').count(), 4);
        assert!(c.is_generated());
        assert_eq!(VoucherCode::parse(c.as_str()).unwrap(), c);
        let sloppy = c.as_str().to_lowercase().replace('-', " ");
        assert_eq!(VoucherCode::parse(&sloppy).unwrap(), c);
        assert_eq!(VoucherCode::lookup(c.key()).unwrap().as_str(), c.as_str());
    }

    #[test]
    fn the_documented_example_is_valid() {
        assert!(VoucherCode::parse("7KQX-M2RT-9HVW-C4NP-E83R").is_ok());
    }

    #[test]
    fn alphabet_has_no_look_alikes() {
        for bad in b"01OIL" {
            assert!(!ALPHABET.contains(bad));
        }
        let mut seen = ALPHABET.to_vec();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 31);
    }

    #[test]
    fn entropy_is_at_least_80_bits() {
        let bits = (GENERATED_LEN - 1) as f64 * (ALPHABET.len() as f64).log2();
        assert!(bits >= 80.0, "{bits}");
    }

    #[test]
    fn external_codes_are_kept_as_printed() {
        let c = VoucherCode::external(" legacy-2019-ab12 ").unwrap();
        assert_eq!(c.as_str(), "LEGACY-2019-AB12");
        assert_eq!(c.key(), "LEGACY2019AB12");
        assert!(!c.is_generated());
        assert_eq!(VoucherCode::lookup("Legacy2019AB12").unwrap(), c);
        for bad in ["AB", "AB_12", "ÄBCD", &"A".repeat(65)] {
            assert!(VoucherCode::external(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_generated_code_sent_as_external_stays_generated() {
        let c = VoucherCode::generate();
        let e = VoucherCode::external(c.key()).unwrap();
        assert!(e.is_generated());
        assert_eq!(e.as_str(), c.as_str());
    }

    #[test]
    fn debug_and_masked_show_only_the_tail() {
        let c = VoucherCode::generate();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains(&c.key()[..8]));
        assert!(dbg.contains(&c.key()[16..]));
        assert_eq!(c.masked().chars().count(), 5);
    }

    #[test]
    fn masked_display_keeps_the_last_four() {
        let c = VoucherCode::parse("7KQX-M2RT-9HVW-C4NP-E83R").unwrap();
        assert_eq!(c.masked_display(), "****-****-****-****-E83R");
        let e = VoucherCode::external("gift-2027-0001").unwrap();
        assert_eq!(e.masked_display(), "****-****-0001");
        assert_eq!(
            VoucherCode::external("AB12").unwrap().masked_display(),
            "AB12"
        );
    }

    #[test]
    fn mistyped_codes_are_recognised() {
        let c = VoucherCode::generate();
        let mut chars: Vec<u8> = c.key().bytes().collect();
        chars[3] = if chars[3] == b'2' { b'3' } else { b'2' };
        let typo = String::from_utf8(chars).unwrap();
        assert!(VoucherCode::parse(&typo).is_err());
        assert!(VoucherCode::looks_mistyped(&typo));
        assert!(!VoucherCode::looks_mistyped(c.as_str()));
        // Still a valid external code to look up (it may be someone else's).
        assert!(!VoucherCode::lookup(&typo).unwrap().is_generated());
    }

    proptest! {
        #[test]
        fn codes_round_trip(seed in any::<u64>()) {
            let c = VoucherCode::generate_with(&mut StdRng::seed_from_u64(seed));
            prop_assert_eq!(VoucherCode::parse(c.as_str()).unwrap(), c.clone());
            let json = serde_json::to_string(&c).unwrap();
            let back: VoucherCode = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back.as_str(), c.as_str());
        }

        #[test]
        fn one_wrong_character_is_caught(seed in any::<u64>(), pos in 0usize..GENERATED_LEN, replacement in 0usize..31) {
            let c = VoucherCode::generate_with(&mut StdRng::seed_from_u64(seed));
            let mut chars: Vec<u8> = c.key().bytes().collect();
            prop_assume!(chars[pos] != ALPHABET[replacement]);
            chars[pos] = ALPHABET[replacement];
            prop_assert!(VoucherCode::parse(std::str::from_utf8(&chars).unwrap()).is_err());
        }

        #[test]
        fn swapping_neighbours_is_caught(seed in any::<u64>(), pos in 0usize..GENERATED_LEN - 1) {
            let c = VoucherCode::generate_with(&mut StdRng::seed_from_u64(seed));
            let mut chars: Vec<u8> = c.key().bytes().collect();
            prop_assume!(chars[pos] != chars[pos + 1]);
            chars.swap(pos, pos + 1);
            prop_assert!(VoucherCode::parse(std::str::from_utf8(&chars).unwrap()).is_err());
        }

        #[test]
        fn parsing_never_panics(s in ".*") {
            let _ = VoucherCode::lookup(&s);
            let _ = VoucherCode::looks_mistyped(&s);
        }
    }
}
