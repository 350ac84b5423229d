//! The pure rules of the two-way Cloudbeds sync.
//!
//! **Conflicts: the later modification wins**, per guest, over the synced
//! fields (names, phone, email, birth date, address, the identity document's
//! type, number, issuing country and dates, preferences). "Later" compares two UTC
//! instants: Cloudbeds' `dateModified` of the reservation the guest record
//! came with (Cloudbeds sends it without zone; its API works in UTC, and
//! the client parses it as UTC), and our `Guest::updated_at`, which an edit
//! here sets to the moment of the edit and applying a Cloudbeds record sets
//! to that record's `dateModified`. A side counts as changed only when its
//! content hash differs from the hash both sides last agreed on
//! (`CrmLink::synced_hash`), so an old timestamp never overwrites anything
//! by itself. On an exact tie Cloudbeds wins: it is the PMS of record and
//! its timestamps have whole-second precision, so a tie means our edit was
//! not provably later. Opt-in is read-only here: `guestOptIn` always comes
//! from Cloudbeds (v1.2 cannot write it).
//!
//! **Nothing is pushed twice**: a guest is pushed only when its profile hash
//! differs from the agreed one, which is updated after a successful
//! `putGuest`; a note is posted only when no Cloudbeds note of the guest
//! has the same content hash, and its `guestNoteID` is kept.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};

use super::{Address, Document, Guest, ScreeningState, ScreeningStatus};

/// SHA-256 over length-prefixed parts (no ambiguity between "a|b" splits).
pub fn hash_parts(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// The fields synced both ways.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SyncedFields {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub birth_date: Option<NaiveDate>,
    /// Identity document number.
    pub document_number: Option<String>,
    pub document: Document,
    pub address: Address,
    pub preferences: BTreeMap<String, String>,
}

impl std::fmt::Debug for SyncedFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SyncedFields({})", self.hash())
    }
}

fn clean(v: &Option<String>) -> &str {
    v.as_deref().map(str::trim).unwrap_or("")
}

impl SyncedFields {
    pub fn of(g: &Guest) -> Self {
        Self {
            email: g.email.as_ref().map(|e| e.as_str().to_owned()),
            first_name: g.first_name.clone(),
            last_name: g.last_name.clone(),
            phone: g.phone.clone(),
            birth_date: g.birth_date,
            document_number: g.document_number.clone(),
            document: g.document.clone(),
            address: g.address.clone(),
            preferences: g.preferences.clone(),
        }
    }

    /// Empty and missing are the same (Cloudbeds sends "" for unset).
    pub fn hash(&self) -> String {
        let email = self.email.as_deref().unwrap_or("").trim().to_lowercase();
        let mut parts = vec![
            email.as_str(),
            clean(&self.first_name),
            clean(&self.last_name),
            clean(&self.phone),
        ];
        for (k, v) in &self.preferences {
            if !v.trim().is_empty() {
                parts.push(k);
                parts.push(v.trim());
            }
        }
        // Named parts, only when set: a profile without them keeps the hash
        // it had before they were synced.
        let birth = self.birth_date.map(|d| d.to_string()).unwrap_or_default();
        if !birth.is_empty() {
            parts.extend(["\u{0}birth_date", birth.as_str()]);
        }
        if !clean(&self.document_number).is_empty() {
            parts.extend(["\u{0}document_number", clean(&self.document_number)]);
        }
        let dates: Vec<(&str, String)> = [
            ("\u{0}document.issue_date", self.document.issue_date),
            (
                "\u{0}document.expiration_date",
                self.document.expiration_date,
            ),
        ]
        .into_iter()
        .filter_map(|(k, d)| Some((k, d?.to_string())))
        .collect();
        for (k, v) in &dates {
            parts.extend([*k, v.as_str()]);
        }
        for (k, v) in [
            ("\u{0}document.type", &self.document.kind),
            (
                "\u{0}document.issuing_country",
                &self.document.issuing_country,
            ),
        ] {
            if !clean(v).is_empty() {
                parts.extend([k, clean(v)]);
            }
        }
        let address: Vec<(String, &str)> = self
            .address
            .parts()
            .into_iter()
            .filter(|(_, v)| !clean(v).is_empty())
            .map(|(k, v)| (format!("\u{0}address.{k}"), clean(v)))
            .collect();
        for (k, v) in &address {
            parts.extend([k.as_str(), *v]);
        }
        hash_parts(&parts)
    }
}

pub fn profile_hash(g: &Guest) -> String {
    SyncedFields::of(g).hash()
}

pub fn screening_hash(s: &ScreeningState) -> String {
    hash_parts(&[
        s.status.map_or("", |s| s.as_str()),
        s.reason.as_deref().unwrap_or(""),
    ])
}

/// Notes match on whitespace-normalised text.
pub fn note_hash(text: &str) -> String {
    let t = text.split_whitespace().collect::<Vec<_>>().join(" ");
    hash_parts(&[&t])
}

/// The note a screening outcome is written back as.
pub fn screening_note_text(s: &ScreeningState) -> String {
    let status = s.status.map_or("unknown", |s| s.as_str());
    match &s.reason {
        Some(r) => format!("GuestHub screening: {status} ({r})"),
        None => format!("GuestHub screening: {status}"),
    }
}

/// The result written to the screening result field (`fields` mode): the
/// reason when there is one, else what the status means.
pub fn screening_result_text(s: &ScreeningState) -> String {
    if let Some(r) = &s.reason {
        return r.clone();
    }
    match s.status {
        Some(ScreeningStatus::InProgress) => "check in progress",
        Some(ScreeningStatus::Passed) => "no match",
        Some(ScreeningStatus::Flagged) => "flagged",
        Some(ScreeningStatus::Error) => "the check failed",
        None => "",
    }
    .to_owned()
}

/// Which side's synced fields stand after a pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Winner {
    /// Both sides hold the same content.
    Same,
    /// Apply Cloudbeds' record here.
    Remote,
    /// Keep ours; the push sends it.
    Local,
}

/// The conflict rule (see the module doc).
pub fn decide(local: &Guest, remote: &SyncedFields, remote_modified: DateTime<Utc>) -> Winner {
    let local_hash = profile_hash(local);
    let remote_hash = remote.hash();
    if local_hash == remote_hash {
        return Winner::Same;
    }
    let agreed = local.crm.synced_hash.as_deref();
    let local_changed = agreed != Some(local_hash.as_str());
    let remote_changed = agreed != Some(remote_hash.as_str());
    match (local_changed, remote_changed) {
        (false, _) => Winner::Remote,
        (true, false) => Winner::Local,
        (true, true) if local.updated_at > remote_modified => Winner::Local,
        (true, true) => Winner::Remote,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PropertyId;
    use crate::guest::GuestId;
    use chrono::Duration;

    fn guest(now: DateTime<Utc>) -> Guest {
        let mut g = Guest::new(GuestId("g1".into()), PropertyId::parse("p").unwrap(), now);
        g.first_name = Some("Ana".into());
        g.preferences.insert("wine".into(), "red".into());
        g.crm.synced_hash = Some(profile_hash(&g));
        g
    }

    #[test]
    fn unchanged_local_takes_remote() {
        let now = Utc::now();
        let g = guest(now);
        let mut r = SyncedFields::of(&g);
        r.preferences.insert("wine".into(), "white".into());
        // Even with an older remote timestamp: only Cloudbeds changed.
        assert_eq!(decide(&g, &r, now - Duration::days(1)), Winner::Remote);
    }

    #[test]
    fn both_changed_later_wins_tie_to_cloudbeds() {
        let now = Utc::now();
        let mut g = guest(now);
        g.preferences.insert("wine".into(), "rosé".into());
        g.updated_at = now;
        let mut r = SyncedFields::of(&guest(now));
        r.preferences.insert("wine".into(), "white".into());
        assert_eq!(decide(&g, &r, now - Duration::seconds(1)), Winner::Local);
        assert_eq!(decide(&g, &r, now + Duration::seconds(1)), Winner::Remote);
        assert_eq!(decide(&g, &r, now), Winner::Remote);
    }

    #[test]
    fn only_local_changed_keeps_local() {
        let now = Utc::now();
        let mut g = guest(now);
        let r = SyncedFields::of(&g);
        g.preferences.insert("wine".into(), "rosé".into());
        assert_eq!(decide(&g, &r, now + Duration::days(1)), Winner::Local);
    }

    #[test]
    fn empty_equals_missing_and_notes_normalise() {
        let a = SyncedFields {
            phone: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(a.hash(), SyncedFields::default().hash());
        assert_eq!(note_hash(" a  b\n"), note_hash("a b"));
    }

    #[test]
    fn birth_date_and_document_are_synced_fields() {
        let now = Utc::now();
        let mut g = guest(now);
        let agreed = SyncedFields::of(&g);
        g.birth_date = NaiveDate::from_ymd_opt(1980, 2, 3);
        assert_ne!(profile_hash(&g), agreed.hash());
        let with_birth = profile_hash(&g);
        g.document_number = Some("P1234567".into());
        assert_ne!(profile_hash(&g), with_birth);
    }

    #[test]
    fn address_and_document_fields_are_synced_fields() {
        let now = Utc::now();
        let mut g = guest(now);
        let mut seen = vec![profile_hash(&g)];
        g.address.city = Some("Wien".into());
        seen.push(profile_hash(&g));
        g.address.zip = Some("1010".into());
        seen.push(profile_hash(&g));
        g.document.kind = Some("passport".into());
        seen.push(profile_hash(&g));
        g.document.issuing_country = Some("AT".into());
        seen.push(profile_hash(&g));
        g.document.expiration_date = NaiveDate::from_ymd_opt(2030, 1, 1);
        seen.push(profile_hash(&g));
        let n = seen.len();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), n, "each field changes the hash");
        // The same value in another field is another profile.
        let mut a = guest(now);
        a.address.city = Some("Graz".into());
        let mut b = guest(now);
        b.address.state = Some("Graz".into());
        assert_ne!(profile_hash(&a), profile_hash(&b));
    }
}
