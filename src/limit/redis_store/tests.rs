//! Tests of the Redis store: the client's arithmetic against the scripts' old replies
//! (property tests), and a real `redis-server` against the in-memory store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../../tests/support/redis.rs"]
mod redis_server;

use super::*;
use proptest::prelude::*;

/// The admission script as it was when it worked every number out itself, in Lua's doubles:
/// (allowed, remaining, reset µs, retry µs, granted). The client's arithmetic must give
/// exactly these.
fn in_lua(b: Budget, used: u64, cost: u64, resources_ok: bool) -> (bool, u64, u64, u64, u64) {
    let (t, tau, used) = (b.t as f64, b.tau as f64, used as f64);
    let asked = cost;
    let mut cost = cost.min(MAX_MICROS) as f64;
    let free = if used < tau {
        ((tau - used) / t).floor()
    } else {
        0.0
    };
    if !resources_ok {
        cost = 1.0;
    }
    let (mut allowed, mut remaining, mut reset, mut retry) = (false, free, used, 0.0);
    if cost <= free {
        allowed = true;
        if resources_ok && cost > 0.0 {
            remaining = free - cost;
            reset = used + cost * t;
        }
    } else if cost * t > tau {
        retry = tau;
    } else {
        retry = used + cost * t - tau;
    }
    let granted = if allowed && resources_ok { asked } else { 0 };
    (
        allowed,
        remaining as u64,
        reset as u64,
        retry as u64,
        granted,
    )
}

fn budgets() -> impl Strategy<Value = Budget> {
    (1u64..=1 << 20, 1u64..=1 << 32).prop_map(|(t, burst)| Budget {
        t,
        tau: t.saturating_mul(burst).min(MAX_MICROS),
    })
}

proptest! {
    /// GCRA (as in RFC 6585 §4's 429 with the IETF RateLimit headers' numbers): the
    /// scripts' test `used ≤ tau − cost·T` is `cost ≤ ⌊(tau − used)/T⌋`, and what the client
    /// works out from `used` is what the script used to reply, for every budget.
    #[test]
    fn client_arithmetic_is_the_scripts(
        b in budgets(),
        per_mille in 0u64..=1300,
        jitter in 0u64..=3,
        cost in prop_oneof![0u64..=5, 0u64..=1 << 40, Just(u64::MAX)],
        resources_ok: bool,
    ) {
        let used = u64::try_from(u128::from(b.tau) * u128::from(per_mille) / 1000)
            .unwrap()
            .saturating_add(jitter);
        let asked = if resources_ok { cost } else { 1 };
        let (limit, spend) = b.ask(asked);
        // The script's own comparison, in doubles.
        let fit = (used as f64) <= (limit as f64);
        prop_assert_eq!(fit, b.fits(used, asked));
        let v = b.verdict(used, asked, fit, fit && resources_ok);
        let v = Verdict { granted: if resources_ok { v.granted } else { 0 }, ..v };
        let expected = in_lua(b, used, cost, resources_ok);
        prop_assert_eq!(
            (
                v.allowed,
                v.remaining,
                u64::try_from(v.reset.as_micros()).unwrap(),
                u64::try_from(v.retry_after.as_micros()).unwrap(),
                v.granted,
            ),
            expected
        );
        if fit && asked > 0 {
            prop_assert_eq!(u128::from(spend), u128::from(asked) * u128::from(b.t));
        }
    }
}

#[test]
fn answers_decode_without_overflow() {
    assert_eq!(answer(0), (0, true));
    assert_eq!(answer(7), (7, true));
    assert_eq!(answer(-1), (0, false));
    assert_eq!(answer(-8), (7, false));
    assert_eq!(answer(i64::MIN), (i64::MAX.unsigned_abs(), false));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The same operations on a real Redis and on the in-memory store, from empty budgets, give
/// the same decisions and units left (slow rates, so the milliseconds between the two
/// stores' clocks never change a unit), and times within a few seconds of each other.
#[test]
fn redis_decides_as_the_memory_store() {
    let server = redis_server::RedisServer::start();
    let rt = runtime();
    let redis = rt
        .block_on(RedisStore::connect(
            &server.url(),
            RedisStoreConfig::default(),
        ))
        .unwrap();
    let requests = Rate::per_hour(5);
    let resources = Rate::per_hour(7).with_burst(6);
    let close = |a: Duration, b: Duration| a.abs_diff(b) <= Duration::from_secs(5);
    proptest!(ProptestConfig::with_cases(24), |(ops in prop::collection::vec(
        (0u8..4, 0u64..4, any::<bool>()), 1..24), id in any::<u64>())| {
        let key = ClientKey::new("t", &format!("{id}")).unwrap();
        let memory = MemoryStore::new(16);
        for (kind, n, flag) in ops {
            match kind {
                0..=2 => {
                    let request = (kind != 1).then_some((requests, n));
                    let resources = (kind != 0).then_some(resources);
                    let r = rt.block_on(redis.admit(&key, request, resources)).unwrap();
                    let m = memory.admit_now(&key, request, resources);
                    for (r, m) in [(r.request, m.request), (r.resources, m.resources)] {
                        prop_assert_eq!(r.is_some(), m.is_some());
                        if let (Some(r), Some(m)) = (r, m) {
                            prop_assert_eq!((r.allowed, r.granted, r.remaining), (m.allowed, m.granted, m.remaining));
                            prop_assert!(close(r.reset, m.reset), "{:?} {:?}", r, m);
                            prop_assert!(close(r.retry_after, m.retry_after), "{:?} {:?}", r, m);
                        }
                    }
                }
                _ => {
                    let r = rt.block_on(redis.take(&key, resources, n, flag)).unwrap();
                    let m = memory.take_now(&key, resources, n, flag);
                    prop_assert_eq!((r.allowed, r.granted, r.remaining), (m.allowed, m.granted, m.remaining));
                    prop_assert!(close(r.reset, m.reset), "{:?} {:?}", r, m);
                    prop_assert!(close(r.retry_after, m.retry_after), "{:?} {:?}", r, m);
                }
            }
        }
    });
}

/// Redis memory stays bounded and no spent budget is forgotten: after every spend, fast
/// (most writes keep the key's expiry) or slow (each sets it anew), the key expires between
/// 1 and 3 s after its TAT, on Redis' clock.
#[test]
fn keys_outlive_their_tat_by_one_to_three_seconds() {
    let server = redis_server::RedisServer::start();
    let rt = runtime();
    let store = rt
        .block_on(RedisStore::connect(
            &server.url(),
            RedisStoreConfig::default(),
        ))
        .unwrap();
    let mut raw = rt
        .block_on(async {
            redis::Client::open(server.url())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
        })
        .unwrap();
    // The key's time to live and how far its TAT is ahead of now, both on Redis' clock.
    let probe = Script::new(
        "local t = redis.call('TIME') \
         local tat = tonumber(redis.call('GET', KEYS[1])) \
         if not tat then return {-2, 0} end \
         return {redis.call('PTTL', KEYS[1]), tat - (t[1] * 1000000 + t[2])}",
    );
    let fast = Rate::new(1000, Duration::from_secs(1));
    let slow = Rate::per_hour(3000);
    for (name, rate, both) in [
        ("fast", fast, false),
        ("slow", slow, false),
        ("both", fast, true),
    ] {
        let key = ClientKey::new("ttl", name).unwrap();
        let redis_key = store.key(&key, ":q");
        for _ in 0..300 {
            let resources = both.then_some(Rate::per_hour(1000));
            let a = rt
                .block_on(store.admit(&key, Some((rate, 1)), resources))
                .unwrap();
            assert!(a.request.unwrap().allowed);
            let (pttl, ahead): (i64, i64) = rt
                .block_on(probe.key(&redis_key).invoke_async(&mut raw))
                .unwrap();
            if pttl == -2 {
                // Gone already: its TAT passed more than a second ago (a stalled machine).
                assert_ne!(name, "slow", "a TAT minutes ahead was forgotten");
                continue;
            }
            assert!(
                pttl * 1000 >= ahead + 999_000,
                "{name}: {pttl} ms for {ahead} µs"
            );
            assert!(
                pttl * 1000 <= ahead + 3_001_000,
                "{name}: {pttl} ms for {ahead} µs"
            );
        }
    }
}
