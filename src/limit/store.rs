//! Where budgets live: the [`BudgetStore`] trait and the in-memory [`MemoryStore`].

use super::gcra::{peek, step, Rate, Verdict};
use super::key::ClientKey;
use dashmap::DashMap;
use governor::clock::{Clock as _, QuantaClock, QuantaInstant, Reference as _};
use std::fmt;
use std::future::{ready, Future, Ready};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The store could not be asked (Redis down or too slow).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the budget store is unavailable")]
pub struct StoreUnavailable;

/// The answer to [`BudgetStore::admit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    /// The request budget's verdict on the request's cost (spent only when allowed, and only
    /// when the resource budget has a unit left).
    pub request: Option<Verdict>,
    /// Whether the resource budget has at least one unit left (nothing is spent here).
    pub resources: Option<Verdict>,
    /// The store was unavailable and a `danger_fail_open` setting let the request through.
    pub degraded: bool,
}

/// A place budgets are kept, shared by every clone of the layer.
///
/// Both operations are atomic per client: concurrent requests never spend the same unit twice.
pub trait BudgetStore: Clone + Send + Sync + 'static {
    /// The future of [`admit`](BudgetStore::admit).
    type Admit: Future<Output = Result<Admission, StoreUnavailable>> + Send + 'static;
    /// The future of [`take`](BudgetStore::take).
    type Take: Future<Output = Result<Verdict, StoreUnavailable>> + Send + 'static;

    /// Before the request: checks that `resources` has a unit left and, if so, spends `cost`
    /// of `request` all-or-nothing.
    fn admit(
        &self,
        key: &ClientKey,
        request: Option<(Rate, u64)>,
        resources: Option<Rate>,
    ) -> Self::Admit;

    /// After the response: spends `count` units of the resource budget, or with `up_to` as
    /// many as are left.
    fn take(&self, key: &ClientKey, resources: Rate, count: u64, up_to: bool) -> Self::Take;

    /// [`admit`](BudgetStore::admit) answered at once, for a store that never waits (the
    /// in-memory [`MemoryStore`] always answers here). `None`, the default, means the layer
    /// must call [`admit`](BudgetStore::admit) and wait for its future.
    ///
    /// An answer here lets the layer call the inner service straight away instead of keeping
    /// it in its future while the store answers (which costs a clone of the inner service per
    /// request).
    fn admit_at_once(
        &self,
        key: &ClientKey,
        request: Option<(Rate, u64)>,
        resources: Option<Rate>,
    ) -> Option<Result<Admission, StoreUnavailable>> {
        let _ = (key, request, resources);
        None
    }
}

/// A monotonic clock in nanoseconds, so tests can drive time (for instance from tokio's
/// paused clock).
pub trait Clock: Send + Sync + 'static {
    /// Nanoseconds since some fixed start.
    fn now_nanos(&self) -> u64;
}

/// The process's monotonic clock: the CPU's time-stamp counter where it is invariant (read in
/// a few nanoseconds, scaled to nanoseconds), else the operating system's monotonic clock
/// (through `quanta`, as `governor` reads time).
#[derive(Debug)]
pub struct SystemClock {
    clock: QuantaClock,
    start: QuantaInstant,
}

impl Default for SystemClock {
    fn default() -> Self {
        let clock = QuantaClock::default();
        let start = clock.now();
        SystemClock { clock, start }
    }
}

impl Clock for SystemClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        self.clock.now().duration_since(self.start).as_u64()
    }
}

#[derive(Default)]
struct Entry {
    request_tat: AtomicU64,
    resource_tat: AtomicU64,
}

impl Entry {
    fn idle(&self, now: u64) -> bool {
        self.request_tat.load(Ordering::Relaxed) <= now
            && self.resource_tat.load(Ordering::Relaxed) <= now
    }
}

/// One GCRA step as a compare-and-swap loop on one TAT: lock-free, and exact under
/// concurrency (a unit is spent once).
fn cas_step(tat: &AtomicU64, rate: &Rate, now: u64, cost: u64, up_to: bool) -> Verdict {
    let mut current = tat.load(Ordering::Acquire);
    loop {
        let (next, verdict) = step(rate, current, now, cost, up_to);
        if next == current {
            return verdict;
        }
        match tat.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return verdict,
            Err(actual) => current = actual,
        }
    }
}

/// The default [`MemoryStore::max_keys`].
pub const DEFAULT_MAX_KEYS: usize = 100_000;

struct MemoryInner {
    map: DashMap<ClientKey, Entry>,
    max_keys: usize,
    clock: Box<dyn Clock>,
    evicted: AtomicU64,
}

/// Budgets in this process's memory: a sharded map, lock-free compare-and-swap on the hot path
/// (a shard's read lock is taken only to find the client), bounded to
/// [`max_keys`](MemoryStore::max_keys) clients.
///
/// When a new client arrives and the map is full, clients whose budgets are whole again (idle:
/// forgetting them changes nothing) are dropped first; if that frees nothing, an eighth of the
/// map is dropped, and those clients start again with a whole budget (counted in
/// [`evicted`](MemoryStore::evicted)). So a flood of distinct keys costs at most `max_keys`
/// entries (plus one per thread inserting at that instant), never unbounded memory.
///
/// Clones share the same map.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<MemoryInner>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("clients", &self.inner.map.len())
            .field("max_keys", &self.inner.max_keys)
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(DEFAULT_MAX_KEYS)
    }
}

impl MemoryStore {
    /// A store tracking at most `max_keys` clients (at least 1), on the system clock.
    pub fn new(max_keys: usize) -> Self {
        MemoryStore::with_clock(max_keys, SystemClock::default())
    }

    /// A store on another clock.
    pub fn with_clock(max_keys: usize, clock: impl Clock) -> Self {
        MemoryStore {
            inner: Arc::new(MemoryInner {
                map: DashMap::new(),
                max_keys: max_keys.max(1),
                clock: Box::new(clock),
                evicted: AtomicU64::new(0),
            }),
        }
    }

    /// The most clients tracked.
    pub fn max_keys(&self) -> usize {
        self.inner.max_keys
    }

    /// How many clients are tracked now.
    pub fn len(&self) -> usize {
        self.inner.map.len()
    }

    /// Whether no client is tracked.
    pub fn is_empty(&self) -> bool {
        self.inner.map.is_empty()
    }

    /// How many clients with budget left to refill were forgotten to keep the bound.
    pub fn evicted(&self) -> u64 {
        self.inner.evicted.load(Ordering::Relaxed)
    }

    fn with_entry<T>(&self, key: &ClientKey, f: impl FnOnce(&Entry, u64) -> T) -> T {
        let now = self.inner.clock.now_nanos();
        if let Some(entry) = self.inner.map.get(key) {
            return f(&entry, now);
        }
        if self.inner.map.len() >= self.inner.max_keys {
            self.make_room(now);
        }
        let entry = self.inner.map.entry(key.clone()).or_default();
        f(&entry, now)
    }

    fn make_room(&self, now: u64) {
        let map = &self.inner.map;
        map.retain(|_, e| !e.idle(now));
        let max = self.inner.max_keys;
        if map.len() >= max {
            // Leave room for this insertion and an eighth more, so eviction is amortized.
            let target = (max - max / 8).saturating_sub(1);
            let mut drop = map.len().saturating_sub(target);
            let mut dropped = 0u64;
            map.retain(|_, _| {
                if drop > 0 {
                    drop -= 1;
                    dropped += 1;
                    false
                } else {
                    true
                }
            });
            self.inner.evicted.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    /// [`BudgetStore::admit`] without the future.
    pub fn admit_now(
        &self,
        key: &ClientKey,
        request: Option<(Rate, u64)>,
        resources: Option<Rate>,
    ) -> Admission {
        self.with_entry(key, |entry, now| {
            let resources =
                resources.map(|rate| peek(&rate, entry.resource_tat.load(Ordering::Acquire), now));
            let request = request.map(|(rate, cost)| {
                if resources.is_some_and(|r| !r.allowed) {
                    peek(&rate, entry.request_tat.load(Ordering::Acquire), now)
                } else {
                    cas_step(&entry.request_tat, &rate, now, cost, false)
                }
            });
            Admission {
                request,
                resources,
                degraded: false,
            }
        })
    }

    /// [`BudgetStore::take`] without the future.
    pub fn take_now(&self, key: &ClientKey, resources: Rate, count: u64, up_to: bool) -> Verdict {
        self.with_entry(key, |entry, now| {
            cas_step(&entry.resource_tat, &resources, now, count, up_to)
        })
    }
}

impl BudgetStore for MemoryStore {
    type Admit = Ready<Result<Admission, StoreUnavailable>>;
    type Take = Ready<Result<Verdict, StoreUnavailable>>;

    fn admit(
        &self,
        key: &ClientKey,
        request: Option<(Rate, u64)>,
        resources: Option<Rate>,
    ) -> Self::Admit {
        ready(Ok(self.admit_now(key, request, resources)))
    }

    fn admit_at_once(
        &self,
        key: &ClientKey,
        request: Option<(Rate, u64)>,
        resources: Option<Rate>,
    ) -> Option<Result<Admission, StoreUnavailable>> {
        Some(Ok(self.admit_now(key, request, resources)))
    }

    fn take(&self, key: &ClientKey, resources: Rate, count: u64, up_to: bool) -> Self::Take {
        ready(Ok(self.take_now(key, resources, count, up_to)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bounded_under_a_flood_of_keys() {
        let store = MemoryStore::new(1000);
        let rate = Rate::new(10, Duration::from_secs(60));
        for i in 0..20_000 {
            let key = ClientKey::new("ip", &format!("k{i}")).unwrap();
            store.admit_now(&key, Some((rate, 1)), None);
            assert!(store.len() <= 1000);
        }
        assert!(store.evicted() > 0);
    }
}
