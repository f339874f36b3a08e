//! The verified-token cache: a client that sends the same token again pays one fast keyed hash,
//! a map lookup and a constant-time comparison instead of a signature check or an
//! introspection round trip.
//!
//! The map is keyed by a 64-bit SipHash of the token under a key drawn at random for each
//! cache (std's `RandomState`), so nobody can prepare tokens that land on a chosen entry. The
//! key only finds the entry: a hit also compares the presented token with the whole token the
//! entry was verified for, in constant time, so two tokens whose hashes collide never share
//! claims (a collision is a miss and a fresh verification). Hashing is ~10 times cheaper than the
//! SHA-256 this cache used to be keyed by, and the comparison is exact where a digest is only
//! collision-resistant.
//!
//! The price: the cache holds the verified tokens themselves (as it holds their claims) until
//! they expire or are evicted, never longer than the token's `exp` or the configured maximum
//! age (which also bounds how long a revoked key or token stays accepted). Nothing in the cache
//! has a `Debug` that could print them. The cache is bounded: when full, expired entries go
//! first, then the eighth that expires soonest.

use crate::smart::VerifiedClaims;
use dashmap::DashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The map's hasher for keys that are already keyed hashes: passes the `u64` through.
#[derive(Clone, Copy, Default)]
pub(crate) struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here (through `write_u64`); fold anything else anyway so
        // no input is ever ignored.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Entry {
    /// The token these claims were verified for, compared in constant time on every hit.
    token: Box<[u8]>,
    claims: Arc<VerifiedClaims>,
    /// Unix seconds; the entry is dead from this second on.
    valid_until: u64,
}

/// Whether two tokens are the same, in time that depends on their length only.
///
/// The bytes are folded with OR of XOR (no early exit, and vectorised: a few dozen
/// instructions for a typical JWT) and the result is checked with `subtle`. The lengths are
/// compared first; a token's length tells nothing of its contents.
fn same_token(stored: &[u8], presented: &[u8]) -> bool {
    if stored.len() != presented.len() {
        return false;
    }
    let diff = stored
        .iter()
        .zip(presented)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    bool::from(diff.ct_eq(&0))
}

pub(crate) struct TokenCache {
    map: DashMap<u64, Entry, BuildHasherDefault<PreHashed>>,
    /// The SipHash key of this cache, random per cache.
    keys: RandomState,
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
            keys: RandomState::new(),
            capacity,
            max_ttl,
            evicting: AtomicBool::new(false),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.capacity > 0 && self.max_ttl > 0
    }

    fn key(&self, token: &str) -> u64 {
        self.keys.hash_one(token.as_bytes())
    }

    /// The cached claims of this token, if cached and still valid at `now`.
    pub(crate) fn get(&self, token: &str, now: u64) -> Option<Arc<VerifiedClaims>> {
        let key = self.key(token);
        {
            let entry = self.map.get(&key)?;
            if !same_token(&entry.token, token.as_bytes()) {
                // Another token with the same hash: a miss, and the entry stays.
                return None;
            }
            if now < entry.valid_until {
                return Some(Arc::clone(&entry.claims));
            }
        }
        // The read guard is gone: removing under it would deadlock the shard.
        self.map.remove_if(&key, |_, e| e.valid_until <= now);
        None
    }

    /// Caches verified claims until `exp` (if any) and at most `max_ttl` from `now`.
    pub(crate) fn insert(&self, token: &str, claims: Arc<VerifiedClaims>, now: u64) {
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
        // A colliding entry of another token is replaced: the cache then misses for that one,
        // which costs a verification and is never wrong.
        self.map.insert(
            self.key(token),
            Entry {
                token: token.as_bytes().into(),
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
            let mut by_expiry: Vec<(u64, u64)> = self
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
    use proptest::prelude::*;

    fn claims(exp: Option<u64>) -> Arc<VerifiedClaims> {
        Arc::new(VerifiedClaims::new(serde_json::Map::new(), exp))
    }

    fn tagged(tag: &str) -> Arc<VerifiedClaims> {
        let mut map = serde_json::Map::new();
        map.insert("tag".into(), tag.into());
        Arc::new(VerifiedClaims::new(map, None))
    }

    #[test]
    fn entries_never_outlive_exp_or_max_ttl() {
        let cache = TokenCache::new(10, 300);
        let now = 1_000;
        cache.insert("a", claims(Some(now + 10)), now);
        cache.insert("b", claims(None), now);
        cache.insert("c", claims(Some(now)), now);
        assert!(cache.get("a", now + 9).is_some());
        assert!(cache.get("a", now + 10).is_none());
        assert!(cache.get("b", now + 299).is_some());
        assert!(cache.get("b", now + 300).is_none());
        assert!(cache.get("c", now).is_none());
        assert_eq!(cache.len(), 0, "expired entries are removed when seen");
    }

    #[test]
    fn bounded_with_soonest_expiry_evicted_first() {
        let cache = TokenCache::new(16, 10_000);
        let now = 1_000;
        for i in 0..100u64 {
            cache.insert(&i.to_string(), claims(Some(now + 100 + i)), now);
            assert!(cache.len() <= 16);
        }
        assert!(cache.get("99", now).is_some());
        assert!(cache.get("0", now).is_none());
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let cache = TokenCache::new(0, 300);
        cache.insert("a", claims(None), 1);
        assert!(!cache.enabled());
        assert!(cache.get("a", 1).is_none());
    }

    #[test]
    fn colliding_key_is_a_miss_not_a_hit() {
        // Force a collision: plant another token's entry under this token's key.
        let cache = TokenCache::new(10, 300);
        cache.map.insert(
            cache.key("presented"),
            Entry {
                token: b"stored".as_slice().into(),
                claims: tagged("stored"),
                valid_until: 2_000,
            },
        );
        assert!(cache.get("presented", 1_000).is_none());
        assert!(
            cache.get("stored", 1_000).is_none(),
            "found only by its own key"
        );
        assert_eq!(cache.len(), 1, "a live colliding entry is kept");
    }

    #[test]
    fn same_token_is_exact() {
        assert!(same_token(b"", b""));
        assert!(same_token(b"abc", b"abc"));
        assert!(!same_token(b"abc", b"abd"));
        assert!(!same_token(b"abc", b"abcd"));
        assert!(!same_token(b"bbc", b"abc"));
    }

    #[test]
    fn caches_have_their_own_keys() {
        let a = TokenCache::new(1, 1);
        let b = TokenCache::new(1, 1);
        let token = "eyJhbGciOiJSUzI1NiJ9.e30.c2ln";
        assert_eq!(a.key(token), a.key(token));
        assert_ne!(
            a.key(token),
            b.key(token),
            "2^-64 chance of a false failure"
        );
    }

    proptest! {
        /// The cache never answers a token with claims verified for a different token.
        #[test]
        fn never_returns_another_tokens_claims(
            a in "[A-Za-z0-9._-]{0,64}",
            b in "[A-Za-z0-9._-]{0,64}",
            collide in any::<bool>(),
        ) {
            let cache = TokenCache::new(8, 300);
            cache.insert(&a, tagged(&a), 1_000);
            if collide {
                // As if `b` hashed to `a`'s key.
                if let Some(mut e) = cache.map.remove(&cache.key(&a)).map(|(_, e)| e) {
                    e.claims = tagged(&a);
                    cache.map.insert(cache.key(&b), e);
                }
            }
            match cache.get(&b, 1_001) {
                Some(found) => {
                    prop_assert_eq!(&a, &b);
                    prop_assert_eq!(found.get_str("tag"), Some(a.as_str()));
                }
                None => prop_assert!(a != b || collide),
            }
            prop_assert_eq!(same_token(a.as_bytes(), b.as_bytes()), a == b);
        }
    }
}
