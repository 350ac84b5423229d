//! Partner API keys: `ghk_<key id>_<secret>`, or `ghk_test_<key id>_<secret>`
//! for a sandbox partner (its requests work on test data only). The key id (64 random bits,
//! public) finds the partner record; the secret (256 random bits) is stored
//! only as its SHA-256 and compared in constant time. A plain hash is enough:
//! the secret is random, so there is nothing to guess from the hash.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A new key, shown once: `key` goes to the partner; `key_id` and
/// `secret_hash` are what gets stored.
pub struct NewKey {
    pub key: String,
    pub key_id: String,
    pub secret_hash: String,
}

/// A new key; `test`: a sandbox key (`ghk_test_…`).
pub fn generate_key(test: bool) -> NewKey {
    let mut rng = rand::rng();
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let key_id = hex::encode(id);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    NewKey {
        key: format!(
            "{}{key_id}_{secret}",
            if test { TEST_PREFIX } else { "ghk_" }
        ),
        secret_hash: hash_secret(&secret),
        key_id,
    }
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

const TEST_PREFIX: &str = "ghk_test_";

/// Whether a presented key is a sandbox key (`ghk_test_…`).
pub fn is_test_key(presented: &str) -> bool {
    presented.starts_with(TEST_PREFIX)
}

/// Splits a presented key into (key id, secret); `None` when malformed.
pub fn split_key(presented: &str) -> Option<(&str, &str)> {
    let rest = presented
        .strip_prefix(TEST_PREFIX)
        .or_else(|| presented.strip_prefix("ghk_"))?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_ok = (40..=64).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

/// Constant-time comparison of a presented secret with the stored hash.
pub fn secret_matches(secret: &str, stored_hash: &str) -> bool {
    let presented = hash_secret(secret);
    presented.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_verify_and_others_do_not() {
        let k = generate_key(false);
        let (id, secret) = split_key(&k.key).unwrap();
        assert!(!is_test_key(&k.key));
        let t = generate_key(true);
        assert!(t.key.starts_with("ghk_test_") && is_test_key(&t.key));
        let (test_id, test_secret) = split_key(&t.key).unwrap();
        assert_eq!(test_id, t.key_id);
        assert!(secret_matches(test_secret, &t.secret_hash));
        assert_eq!(id, k.key_id);
        assert!(secret_matches(secret, &k.secret_hash));
        let other = generate_key(false);
        let (_, other_secret) = split_key(&other.key).unwrap();
        assert!(!secret_matches(other_secret, &k.secret_hash));
        assert!(!k.key.contains(&k.secret_hash));
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in [
            "",
            "ghk_",
            "ghk_zz_abc",
            "Bearer x",
            "ghk_0123456789abcdef_short",
        ] {
            assert!(split_key(bad).is_none(), "{bad}");
        }
    }
}
