//! A budget decision, as ratios measured in the same run:
//! - in memory: `MemoryStore` admitting a request vs `governor`'s keyed limiter checking a key
//!   (goal, issue #7: at most 1.5x);
//! - in Redis: one `RedisStore` decision (one `EVALSHA` round trip) vs a plain `PING` on the
//!   same connection (goal: under 1.5x). Needs `redis-server` on PATH and the `redis` feature.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

#[cfg(feature = "redis")]
#[path = "../tests/support/redis.rs"]
mod redis_server;

use criterion::{criterion_group, Criterion};

#[cfg(feature = "limit")]
fn memory(c: &mut Criterion) {
    use fhirwall::limit::{ClientKey, MemoryStore, Rate};
    use governor::{Quota, RateLimiter};
    use std::hint::black_box;
    use std::num::NonZeroU32;

    let keys: Vec<ClientKey> = (0..1000)
        .map(|i| ClientKey::new("ip", &format!("10.0.{}.{}", i / 256, i % 256)).unwrap())
        .collect();
    let store = MemoryStore::default();
    let rate = Rate::per_hour(u64::from(u32::MAX));
    let governor = RateLimiter::keyed(Quota::per_hour(NonZeroU32::MAX));
    for k in &keys {
        store.admit_now(k, Some((rate, 1)), None);
        let _ = governor.check_key(k);
    }
    let mut group = c.benchmark_group("limit_memory");
    let mut i = 0usize;
    group.bench_function("governor_keyed_check", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(governor.check_key(&keys[i]).is_ok())
        })
    });
    group.bench_function("memory_store_admit", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(store.admit_now(&keys[i], Some((rate, 1)), None))
        })
    });
    group.finish();
}

#[cfg(feature = "redis")]
fn redis(c: &mut Criterion) {
    use fhirwall::limit::{BudgetStore, ClientKey, Rate, RedisStore, RedisStoreConfig};
    let server = redis_server::RedisServer::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt
        .block_on(RedisStore::connect(
            &server.url(),
            RedisStoreConfig::default(),
        ))
        .unwrap();
    let key = ClientKey::new("ip", "10.0.0.1").unwrap();
    let rate = Rate::per_hour(u64::from(u32::MAX));
    let mut group = c.benchmark_group("limit_redis");
    group.bench_function("redis_ping", |b| {
        b.iter(|| rt.block_on(store.ping()).unwrap())
    });
    group.bench_function("redis_store_admit", |b| {
        b.iter(|| {
            rt.block_on(store.admit(&key, Some((rate, 1)), None))
                .unwrap()
        })
    });
    group.finish();
    drop(server);
}

#[cfg(feature = "limit")]
criterion_group!(memory_benches, memory);
#[cfg(feature = "redis")]
criterion_group!(redis_benches, redis);

fn main() {
    #[cfg(feature = "limit")]
    memory_benches();
    #[cfg(feature = "redis")]
    redis_benches();
    Criterion::default().configure_from_args().final_summary();
    support::report_ratio(
        "limit_memory",
        "memory_store_admit",
        "governor_keyed_check",
        1.5,
    );
    support::report_ratio("limit_redis", "redis_store_admit", "redis_ping", 1.5);
}
