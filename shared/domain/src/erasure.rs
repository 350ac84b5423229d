//! Erasing a person: the rules. A person is found by their email in one
//! property; everything that names them is rewritten so that the person is
//! replaced by a stable token (`erased:<short hash>`) while money, amounts,
//! references, codes, dates and counts stay for accounting.
//!
//! Matching never keeps personal data in clear: the person is a set of
//! keyed hashes ("markers") of their normalised email, names, name words,
//! phone numbers and birth dates, and a stored value is compared by hashing
//! it the same way. The markers live on the in-progress receipt only (so a
//! resumed erasure still recognises names it learned from records it has
//! already rewritten) and are dropped when the erasure completes.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::{PropertyId, StoreError};

/// Keyed hashing of personal values (the key is a deployment secret).
pub trait Keyed: Send + Sync {
    /// Lowercase hex of the keyed hash of `value` (already normalised).
    fn hash(&self, value: &str) -> String;
}

/// How a value is normalised before it is hashed: trimmed, lowercase, inner
/// whitespace collapsed.
pub fn normalise(value: &str) -> String {
    value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The token that replaces the person: `erased:` and the first 12 hex
/// digits of the email's keyed hash. Stable: erasing twice gives the same.
pub fn token(email_hash: &str) -> String {
    format!("erased:{}", &email_hash[..email_hash.len().min(12)])
}

/// What the erasure counts, per kind of record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErasedCounts {
    pub guest_profiles: u64,
    pub notes: u64,
    pub vouchers: u64,
    pub ledger_entries: u64,
    pub orders: u64,
    pub memberships: u64,
    pub loyalty_records: u64,
    pub roster_entries: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErasureStatus {
    /// Some kinds are not rewritten yet (a retry with the same
    /// `Idempotency-Key`, or any later erasure of the same email, finishes it).
    InProgress,
    /// Nothing in GuestHub names the person any more (`pending` lists the
    /// systems still to be told).
    Erased,
}

/// The steps of an erasure, in the order they run. The guest profile goes
/// last: until then a retry can still read the person from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Loyalty,
    Roster,
    Orders,
    Memberships,
    Vouchers,
    Guest,
}

impl Step {
    pub const ALL: [Step; 6] = [
        Step::Loyalty,
        Step::Roster,
        Step::Orders,
        Step::Memberships,
        Step::Vouchers,
        Step::Guest,
    ];
}

/// Systems told about the erasure later.
pub const PENDING_CLOUDBEDS: &str = "cloudbeds";

/// One erasure as stored: the receipt and, while it runs, the markers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Erasure {
    pub id: String,
    pub property: PropertyId,
    /// Keyed hash of the normalised email (no personal data in clear).
    pub email_hash: String,
    pub status: ErasureStatus,
    pub erased: ErasedCounts,
    pub pending: Vec<String>,
    pub requested_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Steps finished.
    #[serde(default)]
    pub done: Vec<Step>,
    /// Keyed hashes that identify the person; emptied on completion.
    #[serde(default)]
    pub markers: BTreeSet<String>,
    /// The guest profile this erasure tombstoned, if any (the Cloudbeds
    /// push clears `pending` through it).
    #[serde(default)]
    pub guest: Option<String>,
    /// The store's version (optimistic concurrency).
    #[serde(default)]
    pub revision: i64,
}

impl Erasure {
    pub fn new(id: String, property: PropertyId, email_hash: String, now: DateTime<Utc>) -> Self {
        let mut markers = BTreeSet::new();
        markers.insert(email_hash.clone());
        Self {
            id,
            property,
            email_hash,
            status: ErasureStatus::InProgress,
            erased: ErasedCounts::default(),
            pending: Vec::new(),
            requested_at: now,
            completed_at: None,
            done: Vec::new(),
            markers,
            guest: None,
            revision: 0,
        }
    }

    pub fn token(&self) -> String {
        token(&self.email_hash)
    }

    pub fn is_done(&self, step: Step) -> bool {
        self.done.contains(&step)
    }

    /// Records a finished step. Counts only grow: a resumed step may find
    /// fewer records than the attempt that rewrote them.
    pub fn finish(&mut self, step: Step, found: &ErasedCounts) {
        let c = &mut self.erased;
        c.guest_profiles = c.guest_profiles.max(found.guest_profiles);
        c.notes = c.notes.max(found.notes);
        c.vouchers = c.vouchers.max(found.vouchers);
        c.ledger_entries = c.ledger_entries.max(found.ledger_entries);
        c.orders = c.orders.max(found.orders);
        c.memberships = c.memberships.max(found.memberships);
        c.loyalty_records = c.loyalty_records.max(found.loyalty_records);
        c.roster_entries = c.roster_entries.max(found.roster_entries);
        if !self.done.contains(&step) {
            self.done.push(step);
        }
    }

    /// Every step done: the markers go, the receipt says erased.
    pub fn complete(&mut self, now: DateTime<Utc>) {
        if Step::ALL.iter().all(|s| self.done.contains(s)) {
            self.status = ErasureStatus::Erased;
            self.completed_at.get_or_insert(now);
            self.markers.clear();
        }
    }

    /// A system was told.
    pub fn clear_pending(&mut self, system: &str) -> bool {
        let before = self.pending.len();
        self.pending.retain(|s| s != system);
        before != self.pending.len()
    }

    pub fn receipt(&self) -> ErasureReceipt {
        ErasureReceipt {
            id: self.id.clone(),
            email_hash: self.email_hash.clone(),
            status: self.status,
            erased: self.erased.clone(),
            pending: self.pending.clone(),
            requested_at: self.requested_at,
            completed_at: self.completed_at,
        }
    }
}

/// The receipt as the API shows it: no personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErasureReceipt {
    pub id: String,
    /// Keyed hash of the normalised email.
    pub email_hash: String,
    pub status: ErasureStatus,
    /// Records rewritten (or deleted, for notes and roster entries) per kind.
    pub erased: ErasedCounts,
    /// Systems still to be told (`cloudbeds`: the next sync).
    pub pending: Vec<String>,
    pub requested_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// Who is being erased, as keyed hashes.
pub struct Person<'a> {
    keyed: &'a dyn Keyed,
    pub markers: BTreeSet<String>,
}

impl<'a> Person<'a> {
    pub fn new(keyed: &'a dyn Keyed, markers: BTreeSet<String>) -> Self {
        Self { keyed, markers }
    }

    fn h(&self, v: &str) -> String {
        self.keyed.hash(&normalise(v))
    }

    /// Learns a name (whole and word by word). True when it was new.
    pub fn learn_name(&mut self, name: &str) -> bool {
        let mut grew = false;
        if normalise(name).is_empty() {
            return false;
        }
        grew |= self.markers.insert(self.h(name));
        for w in words(name) {
            grew |= self.markers.insert(self.h(&w));
        }
        grew
    }

    /// Learns a phone number, a birth date or another identifying value.
    pub fn learn_value(&mut self, v: &str) -> bool {
        if normalise(v).is_empty() {
            return false;
        }
        self.markers.insert(self.h(v))
    }

    /// Whether a stored text names the person: it is one of the markers,
    /// or every word of it is (a name in another order, "Last, First").
    pub fn names(&self, v: &str) -> bool {
        let n = normalise(v);
        if n.is_empty() || n.starts_with("erased:") {
            return false;
        }
        if self.markers.contains(&self.keyed.hash(&n)) {
            return true;
        }
        let ws = words(v);
        // Words alone match only inside a text of several words: a single
        // word that is a name part is matched as a whole value above.
        ws.len() > 1 && ws.iter().all(|w| self.markers.contains(&self.h(w)))
    }

    /// Whether a stored body holds the person by their email (a contact,
    /// buyer, member or loyalty record naming it): only such records, or
    /// records reached through the person's own keys, are rewritten by
    /// name, so another person of the same name keeps theirs.
    pub fn linked(&self, body: &Value) -> bool {
        let mut found = false;
        walk_objects(body, &mut |o| {
            for (k, x) in o {
                if is_email_key(k) && x.as_str().is_some_and(|e| self.names(e)) {
                    found = true;
                }
            }
        });
        found
    }

    /// Whether a stored body names the person as the guest of a stay (a
    /// reservation's `guest_name`, on a voucher someone else may have
    /// bought) by a name of several words that is theirs whole. A single
    /// word (a first name alone) is too common to rewrite a stranger's
    /// record for.
    pub fn stay_guest(&self, body: &Value) -> bool {
        let mut found = false;
        walk_objects(body, &mut |o| {
            if let Some(n) = o.get("guest_name").and_then(Value::as_str)
                && words(n).len() > 1
                && self.names(n)
            {
                found = true;
            }
        });
        found
    }

    /// Learns every person field of a contact-like JSON object: names,
    /// phone, birth date, when its email is the person's.
    pub fn learn_from(&mut self, body: &Value) -> bool {
        let mut grew = false;
        walk_objects(body, &mut |o| {
            let Some(email) = o.get("email").and_then(Value::as_str) else {
                return;
            };
            if !self.names(email) {
                return;
            }
            for (k, v) in o {
                let Some(s) = v.as_str() else { continue };
                if is_name_key(k) {
                    grew |= self.learn_name(s);
                } else if is_phone_key(k) || is_birth_key(k) {
                    grew |= self.learn_value(s);
                }
            }
        });
        grew
    }
}

fn words(v: &str) -> Vec<String> {
    v.split(|c: char| c.is_whitespace() || c == ',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

fn is_name_key(k: &str) -> bool {
    matches!(
        k,
        "name" | "first_name" | "last_name" | "guest_name" | "firstName" | "lastName"
    )
}

fn is_phone_key(k: &str) -> bool {
    k.contains("phone")
}

fn is_email_key(k: &str) -> bool {
    k.ends_with("email")
}

fn is_birth_key(k: &str) -> bool {
    k.contains("birth")
}

fn walk_objects(v: &Value, f: &mut dyn FnMut(&serde_json::Map<String, Value>)) {
    match v {
        Value::Object(o) => {
            f(o);
            for x in o.values() {
                walk_objects(x, f);
            }
        }
        Value::Array(a) => {
            for x in a {
                walk_objects(x, f);
            }
        }
        Value::String(s) => {
            if let Some(inner) = embedded_json(s) {
                walk_objects(&inner, f);
            }
        }
        _ => {}
    }
}

/// A string that holds a JSON object or array (a stored answer).
fn embedded_json(s: &str) -> Option<Value> {
    let t = s.trim_start();
    if !(t.starts_with('{') || t.starts_with('[')) {
        return None;
    }
    serde_json::from_str::<Value>(s)
        .ok()
        .filter(|v| v.is_object() || v.is_array())
}

/// Rewrites every value that names the person to `token`; the person's
/// email, phone number or birth date in a field of that name becomes
/// `null` (typed fields stay readable). Returns how many values
/// changed.
pub fn scrub(v: &mut Value, person: &Person<'_>, token: &str) -> usize {
    match v {
        Value::Object(o) => {
            let mut n = 0;
            for (k, x) in o.iter_mut() {
                if let Value::String(s) = x
                    && (is_phone_key(k) || is_birth_key(k) || is_email_key(k))
                    && person.names(s)
                {
                    *x = Value::Null;
                    n += 1;
                    continue;
                }
                n += scrub(x, person, token);
            }
            n
        }
        Value::Array(a) => a.iter_mut().map(|x| scrub(x, person, token)).sum(),
        Value::String(s) => {
            if let Some(mut inner) = embedded_json(s) {
                let n = scrub(&mut inner, person, token);
                if n > 0 {
                    *s = inner.to_string();
                }
                return n;
            }
            if person.names(s) {
                *s = token.to_owned();
                return 1;
            }
            0
        }
        _ => 0,
    }
}

/// A stored body rewritten, or `None` when nothing in it names the person.
pub fn scrub_body(body: &str, person: &Person<'_>, token: &str) -> Option<String> {
    let mut v: Value = serde_json::from_str(body).ok()?;
    (scrub(&mut v, person, token) > 0).then(|| v.to_string())
}

/// Retention: a record whose last relevant day (last visit, expiry or
/// delivery) lies more than `days` before `today` is anonymised.
pub fn retention_due(last: NaiveDate, days: u32, today: NaiveDate) -> bool {
    last + chrono::Days::new(u64::from(days)) < today
}

/// The latest visit date a stored order or booking names (its lines'
/// `date`s), if any.
pub fn last_visit(v: &Value) -> Option<NaiveDate> {
    let mut last: Option<NaiveDate> = None;
    walk_objects(v, &mut |o| {
        if let Some(d) = o
            .get("date")
            .and_then(Value::as_str)
            .and_then(|d| d.parse::<NaiveDate>().ok())
        {
            last = Some(last.map_or(d, |l| l.max(d)));
        }
    });
    last
}

/// Every email a stored body names (the people it holds).
pub fn emails_in(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    walk_objects(v, &mut |o| {
        for (k, x) in o {
            if is_email_key(k)
                && let Some(e) = x.as_str()
                && e.contains('@')
            {
                out.insert(normalise(e));
            }
        }
    });
    out
}

/// Where erasure receipts are kept.
#[async_trait]
pub trait ErasureStore: Send + Sync {
    /// The erasure of this email hash still in progress, if any.
    async fn open_erasure(
        &self,
        p: &PropertyId,
        email_hash: &str,
    ) -> Result<Option<Erasure>, StoreError>;
    /// Starts an erasure (and marks it as the open one for its email hash).
    /// `Conflict` when another one is already open.
    async fn create_erasure(&self, e: &Erasure) -> Result<Erasure, StoreError>;
    /// Saves a changed erasure (version-checked: `Conflict` when it moved).
    /// An erasure saved as erased stops being the open one.
    async fn save_erasure(&self, e: &Erasure) -> Result<Erasure, StoreError>;
    async fn erasure(&self, p: &PropertyId, id: &str) -> Result<Option<Erasure>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Plain;
    impl Keyed for Plain {
        fn hash(&self, v: &str) -> String {
            format!("h({v})")
        }
    }

    #[test]
    fn names_in_any_order_and_embedded_answers_are_rewritten() {
        let mut p = Person::new(&Plain, BTreeSet::from(["h(ana@example.com)".to_owned()]));
        let body: Value = serde_json::json!({
            "contact": {"email": "Ana@Example.com", "first_name": "Ana", "last_name": "Lind", "phone": "+4512"},
        });
        assert!(p.learn_from(&body));
        let mut v = serde_json::json!({
            "guest_name": "Lind, Ana",
            "other": "Anders Lind",
            "amount": 1250,
            "phone": "+45 12",
            "rendered": "{\"buyer\":{\"email\":\"ana@example.com\"}}",
        });
        let n = scrub(&mut v, &p, "erased:x");
        // The guest name, and the email inside the stored answer.
        assert_eq!(n, 2);
        assert_eq!(v["guest_name"], "erased:x");
        assert_eq!(v["other"], "Anders Lind");
        assert_eq!(v["amount"], 1250);
        assert_eq!(v["phone"], "+45 12");
        assert!(!v["rendered"].as_str().unwrap().contains("ana@"));
    }

    #[test]
    fn a_stay_guest_is_named_by_a_whole_name_only() {
        let mut p = Person::new(&Plain, BTreeSet::new());
        p.learn_name("Ana Lind");
        let stay = |n: &str| serde_json::json!({"activity": {"reservation": {"number": "R-1", "guest_name": n}}});
        assert!(p.stay_guest(&stay("Lind, Ana")));
        assert!(p.stay_guest(&stay("ana  lind")));
        assert!(!p.stay_guest(&stay("Ana")));
        assert!(!p.stay_guest(&stay("Ana Berg")));
        assert!(!p.stay_guest(&serde_json::json!({"buyer": {"name": "Ana Lind"}})));
    }

    #[test]
    fn a_receipt_is_erased_only_when_every_step_is_done() {
        let now = Utc::now();
        let mut e = Erasure::new(
            "e1".into(),
            PropertyId::parse("p1").unwrap(),
            "ab".repeat(32),
            now,
        );
        for s in &Step::ALL[..5] {
            e.finish(*s, &ErasedCounts::default());
            e.complete(now);
            assert_eq!(e.status, ErasureStatus::InProgress);
        }
        e.finish(
            Step::Guest,
            &ErasedCounts {
                guest_profiles: 1,
                ..Default::default()
            },
        );
        e.complete(now);
        assert_eq!(e.status, ErasureStatus::Erased);
        assert!(e.markers.is_empty());
        assert_eq!(e.token(), "erased:abababababab");
    }
}
