//! A short-lived, per-process memory of who is calling: partners by key id
//! and properties by id, as the `Caller` extractor reads them on every
//! request. A warm Lambda container serves many requests of the same few
//! partners; remembering them for a few seconds saves two store round trips
//! per request (DynamoDB bills and waits for each).
//!
//! The price is staleness across processes: a key rotated or a partner
//! disabled by another process stops working here within the time to live
//! (`GUESTHUB_AUTH_CACHE_SECONDS`, 30 s by default in Lambda — API Gateway's
//! own authorizer cache defaults to 300 s). Writes through this process
//! forget the entry at once. Only found records are kept: an unknown key
//! always asks the store. The presented secret is still checked against the
//! stored hash on every request.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use domain::{Partner, Property, PropertyId};

/// Entries kept per kind before the oldest half is dropped: far more than
/// the partners and properties one deployment has.
const MAX_ENTRIES: usize = 4096;

struct TtlMap<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlMap<K, V> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &K, ttl: Duration) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, v)| v.clone())
    }

    fn put(&self, key: K, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            let mut ages: Vec<Instant> = entries.values().map(|(at, _)| *at).collect();
            ages.sort_unstable();
            let cutoff = ages[ages.len() / 2];
            entries.retain(|_, (at, _)| *at > cutoff);
        }
        entries.insert(key, (Instant::now(), value));
    }

    fn forget(&self, key: &K) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(key);
    }
}

/// Partners and properties recently read for callers. A zero time to live
/// turns it off (every request reads the store).
pub struct CallerCache {
    ttl: Duration,
    partners: TtlMap<String, Partner>,
    properties: TtlMap<PropertyId, Property>,
}

impl CallerCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            partners: TtlMap::new(),
            properties: TtlMap::new(),
        }
    }

    pub fn off() -> Self {
        Self::new(Duration::ZERO)
    }

    fn on(&self) -> bool {
        !self.ttl.is_zero()
    }

    pub fn partner(&self, key_id: &str) -> Option<Partner> {
        self.on()
            .then(|| self.partners.get(&key_id.to_owned(), self.ttl))
            .flatten()
    }

    pub fn keep_partner(&self, key_id: &str, partner: &Partner) {
        if self.on() {
            self.partners.put(key_id.to_owned(), partner.clone());
        }
    }

    pub fn forget_partner(&self, key_id: &str) {
        self.partners.forget(&key_id.to_owned());
    }

    pub fn property(&self, id: &PropertyId) -> Option<Property> {
        self.on()
            .then(|| self.properties.get(id, self.ttl))
            .flatten()
    }

    pub fn keep_property(&self, property: &Property) {
        if self.on() {
            self.properties.put(property.id.clone(), property.clone());
        }
    }

    pub fn forget_property(&self, id: &PropertyId) {
        self.properties.forget(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_are_forgotten() {
        let map = TtlMap::new();
        map.put("k".to_owned(), 1);
        assert_eq!(map.get(&"k".to_owned(), Duration::from_secs(60)), Some(1));
        assert_eq!(map.get(&"k".to_owned(), Duration::ZERO), None);
        map.forget(&"k".to_owned());
        assert_eq!(map.get(&"k".to_owned(), Duration::from_secs(60)), None);
    }

    #[test]
    fn a_full_map_drops_its_older_half() {
        let map = TtlMap::new();
        for i in 0..MAX_ENTRIES + 1 {
            map.put(i, i);
        }
        let len = map.entries.lock().unwrap().len();
        assert!(len <= MAX_ENTRIES / 2 + 1, "{len}");
        assert_eq!(
            map.get(&MAX_ENTRIES, Duration::from_secs(60)),
            Some(MAX_ENTRIES)
        );
    }
}
