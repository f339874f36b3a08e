//! A budget decision, as ratios measured in the same run:
//! - in memory: `MemoryStore` admitting a request vs `governor`'s keyed limiter checking a key
//!   (goal, issue #7: at most 1.5x);
//! - in Redis: one `RedisStore` decision (one `EVALSHA` round trip) vs a plain `PING` on the
//!   same connection and through the same timeout (goal: under 1.5x). Needs `redis-server` on
//!   PATH and the `redis` feature. For context it also measures a decision over both budgets,
//!   an `EVALSHA` of `return 1` against a `PING` on a plain connection (what any Lua script
//!   costs Redis), and prints Redis' own time per call from `INFO commandstats`. Because
//!   criterion measures one function after the other while the load on a shared machine drifts,
//!   it also times the Redis calls taking turns call by call and prints the medians' ratios.
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

/// Redis' own time per call of `command` since the last `CONFIG RESETSTAT`, from
/// `INFO commandstats` (µs): what the server spends, without the round trip.
#[cfg(feature = "redis")]
fn server_usec(
    rt: &tokio::runtime::Runtime,
    conn: &redis::aio::ConnectionManager,
    command: &str,
) -> Option<f64> {
    let info: String = rt
        .block_on(
            redis::cmd("INFO")
                .arg("commandstats")
                .query_async(&mut conn.clone()),
        )
        .ok()?;
    let line = info
        .lines()
        .find(|l| l.starts_with(&format!("cmdstat_{command}:")))?;
    line.split(',')
        .find_map(|f| f.strip_prefix("usec_per_call="))?
        .parse()
        .ok()
}

#[cfg(feature = "redis")]
fn reset_stats(rt: &tokio::runtime::Runtime, conn: &redis::aio::ConnectionManager) {
    let _: () = rt
        .block_on(
            redis::cmd("CONFIG")
                .arg("RESETSTAT")
                .query_async(&mut conn.clone()),
        )
        .unwrap();
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
    // A second connection of the same kind, for what the store can't send: Redis' fixed cost
    // of running any Lua script (`EVALSHA` of `return 1`) against a `PING`, and the server's
    // own statistics.
    let raw = rt
        .block_on(async {
            redis::Client::open(server.url())
                .unwrap()
                .get_connection_manager()
                .await
        })
        .unwrap();
    let trivial = redis::Script::new("return 1");
    let sha: String = rt.block_on(trivial.load_async(&mut raw.clone())).unwrap();
    let key = ClientKey::new("ip", "10.0.0.1").unwrap();
    let rate = Rate::per_hour(u64::from(u32::MAX));
    let mut server_side = Vec::new();
    let mut group = c.benchmark_group("limit_redis");
    reset_stats(&rt, &raw);
    group.bench_function("redis_ping", |b| {
        b.iter(|| rt.block_on(store.ping()).unwrap())
    });
    server_side.push(("redis_ping", server_usec(&rt, &raw, "ping")));
    reset_stats(&rt, &raw);
    group.bench_function("redis_store_admit", |b| {
        b.iter(|| {
            rt.block_on(store.admit(&key, Some((rate, 1)), None))
                .unwrap()
        })
    });
    server_side.push(("redis_store_admit", server_usec(&rt, &raw, "evalsha")));
    reset_stats(&rt, &raw);
    group.bench_function("redis_store_admit_both", |b| {
        b.iter(|| {
            rt.block_on(store.admit(&key, Some((rate, 1)), Some(rate)))
                .unwrap()
        })
    });
    server_side.push(("redis_store_admit_both", server_usec(&rt, &raw, "evalsha")));
    reset_stats(&rt, &raw);
    group.bench_function("redis_raw_ping", |b| {
        b.iter(|| {
            let _: String = rt
                .block_on(redis::cmd("PING").query_async(&mut raw.clone()))
                .unwrap();
        })
    });
    server_side.push(("redis_raw_ping", server_usec(&rt, &raw, "ping")));
    reset_stats(&rt, &raw);
    group.bench_function("redis_raw_evalsha_return_1", |b| {
        b.iter(|| {
            let _: i64 = rt
                .block_on(
                    redis::cmd("EVALSHA")
                        .arg(&sha)
                        .arg(0)
                        .query_async(&mut raw.clone()),
                )
                .unwrap();
        })
    });
    server_side.push((
        "redis_raw_evalsha_return_1",
        server_usec(&rt, &raw, "evalsha"),
    ));
    group.finish();
    // Criterion measures one function after the other, and on a shared machine the load drifts
    // between them. Here the operations take turns call by call, so each sees the same load;
    // the ratio of the medians is the fairer comparison.
    let mut times: [Vec<u64>; 4] = Default::default();
    for i in 0..10_000usize {
        for j in 0..4 {
            let op = (i + j) % 4;
            let start = std::time::Instant::now();
            match op {
                0 => rt.block_on(store.ping()).unwrap(),
                1 => {
                    rt.block_on(store.admit(&key, Some((rate, 1)), None))
                        .unwrap();
                }
                2 => {
                    let _: String = rt
                        .block_on(redis::cmd("PING").query_async(&mut raw.clone()))
                        .unwrap();
                }
                _ => {
                    let _: i64 = rt
                        .block_on(
                            redis::cmd("EVALSHA")
                                .arg(&sha)
                                .arg(0)
                                .query_async(&mut raw.clone()),
                        )
                        .unwrap();
                }
            }
            times[op].push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
    }
    let [ping, admit, raw_ping, trivial] = times.map(|mut v| {
        v.sort_unstable();
        v[v.len() / 2] as f64
    });
    println!(
        "interleaved medians limit_redis: store ping {ping:.0} ns, store admit {admit:.0} ns, \
         raw ping {raw_ping:.0} ns, raw EVALSHA return 1 {trivial:.0} ns"
    );
    println!(
        "interleaved ratio limit_redis: redis_store_admit / redis_ping = {:.2} (goal <= 1.50); \
         redis_raw_evalsha_return_1 / redis_raw_ping = {:.2}",
        admit / ping,
        trivial / raw_ping
    );
    for (function, usec) in server_side {
        match usec {
            Some(u) => println!(
                "server side limit_redis/{function}: {u:.2} us per call (INFO commandstats)"
            ),
            None => println!("server side limit_redis/{function}: no statistics"),
        }
    }
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
    // Not goals, context: both budgets in one script, and the cost of any Lua script at all.
    support::report_ratio("limit_redis", "redis_store_admit_both", "redis_ping", 1.5);
    support::report_ratio(
        "limit_redis",
        "redis_raw_evalsha_return_1",
        "redis_raw_ping",
        1.5,
    );
}
