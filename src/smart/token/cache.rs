//! The verified-token cache: a client that sends the same token again pays a SHA-256 and a
//! map lookup instead of a signature check or an introspection round trip.
//!
//! Entries are keyed by the SHA-256 of the token, so the cache never holds a token that could
//! be replayed from a memory dump, and never outlive the token's `exp` or the configured
//! maximum age (which bounds how long a revoked key or token stays accepted). The cache is
//! bounded: when full, expired entries go first, then the eighth that expires soonest.

use crate::smart::VerifiedClaims;
use dashmap::DashMap;
use sha2::{Digest, Sha256};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// SHA-256 of a token.
pub(crate) type TokenDigest = [u8; 32];

pub(crate) fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// The map's hasher: a digest is already uniformly distributed, and only verified tokens are
/// ever inserted, so its first eight bytes are a good hash and hashing again would be waste.
#[derive(Clone, Copy, Default)]
pub(crate) struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // A `[u8; 32]` key arrives as one 32-byte write (its length prefix, if any, as
        // `write_usize`); fold everything so no input is ever ignored.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            for (w, b) in word.iter_mut().zip(chunk) {
                *w = *b;
            }
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}

struct Entry {
    claims: Arc<VerifiedClaims>,
    /// Unix seconds; the entry is dead from this second on.
    valid_until: u64,
}

pub(crate) struct TokenCache {
    map: DashMap<TokenDigest, Entry, BuildHasherDefault<DigestHasher>>,
    capacity: usize,
    max_ttl: u64,
    evicting: AtomicBool,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens (0 turns caching off), each kept at most `max_ttl`
    /// seconds.
    pub(crate) fn new(capacity: usize, max_ttl: u64) -> TokenCache {
        TokenCache {
            map: DashMap::default(),
            capacity,
            max_ttl,
            evicting: AtomicBool::new(false),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.capacity > 0 && self.max_ttl > 0
    }

    /// The cached claims of this token, if cached and still valid at `now`.
    pub(crate) fn get(&self, key: &TokenDigest, now: u64) -> Option<Arc<VerifiedClaims>> {
        {
            let entry = self.map.get(key)?;
            if now < entry.valid_until {
                return Some(Arc::clone(&entry.claims));
            }
        }
        // The read guard is gone: removing under it would deadlock the shard.
        self.map.remove_if(key, |_, e| e.valid_until <= now);
        None
    }

    /// Caches verified claims until `exp` (if any) and at most `max_ttl` from `now`.
    pub(crate) fn insert(&self, key: TokenDigest, claims: Arc<VerifiedClaims>, now: u64) {
        if !self.enabled() {
            return;
        }
        let ceiling = now.saturating_add(self.max_ttl);
        let valid_until = claims.expires_at().map_or(ceiling, |exp| exp.min(ceiling));
        if valid_until <= now {
            return;
        }
        if self.map.len() >= self.capacity && !self.make_room(now) {
            return;
        }
        self.map.insert(
            key,
            Entry {
                claims,
                valid_until,
            },
        );
    }

    /// Frees space; `false` when another thread is already evicting and the cache is well over
    /// capacity, in which case the new entry is simply not cached.
    fn make_room(&self, now: u64) -> bool {
        if self
            .evicting
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return self.map.len() < self.capacity.saturating_add(self.capacity / 8);
        }
        self.map.retain(|_, e| e.valid_until > now);
        if self.map.len() >= self.capacity {
            let mut by_expiry: Vec<(u64, TokenDigest)> = self
                .map
                .iter()
                .map(|e| (e.value().valid_until, *e.key()))
                .collect();
            let evict = (self.capacity / 8).max(1).min(by_expiry.len());
            if evict > 0 && evict < by_expiry.len() {
                by_expiry.select_nth_unstable(evict - 1);
            }
            for (_, key) in by_expiry.iter().take(evict) {
                self.map.remove(key);
            }
        }
        self.evicting.store(false, Ordering::Release);
        true
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: Option<u64>) -> Arc<VerifiedClaims> {
        Arc::new(VerifiedClaims::new(serde_json::Map::new(), exp))
    }

    #[test]
    fn entries_never_outlive_exp_or_max_ttl() {
        let cache = TokenCache::new(10, 300);
        let now = 1_000;
        cache.insert(digest("a"), claims(Some(now + 10)), now);
        cache.insert(digest("b"), claims(None), now);
        cache.insert(digest("c"), claims(Some(now)), now);
        assert!(cache.get(&digest("a"), now + 9).is_some());
        assert!(cache.get(&digest("a"), now + 10).is_none());
        assert!(cache.get(&digest("b"), now + 299).is_some());
        assert!(cache.get(&digest("b"), now + 300).is_none());
        assert!(cache.get(&digest("c"), now).is_none());
        assert_eq!(cache.len(), 0, "expired entries are removed when seen");
    }

    #[test]
    fn bounded_with_soonest_expiry_evicted_first() {
        let cache = TokenCache::new(16, 10_000);
        let now = 1_000;
        for i in 0..100u64 {
            cache.insert(digest(&i.to_string()), claims(Some(now + 100 + i)), now);
            assert!(cache.len() <= 16);
        }
        assert!(cache.get(&digest("99"), now).is_some());
        assert!(cache.get(&digest("0"), now).is_none());
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let cache = TokenCache::new(0, 300);
        cache.insert(digest("a"), claims(None), 1);
        assert!(!cache.enabled());
        assert!(cache.get(&digest("a"), 1).is_none());
    }
}
