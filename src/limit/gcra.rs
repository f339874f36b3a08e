//! The Generic Cell Rate Algorithm (GCRA) every budget uses, with its exact semantics.
//!
//! A [`Rate`] of `limit` units per `period` with a `burst` spends one unit every
//! *emission interval* `T = period / limit`. The state of one client is a single number, the
//! *theoretical arrival time* `TAT`. A request costing `n` units at time `now`:
//!
//! 1. `tat = max(TAT, now)`; `new_tat = tat + n·T`;
//! 2. it is **allowed** iff `new_tat − now ≤ burst·T`, and then `TAT = new_tat`;
//! 3. otherwise it is **refused** and nothing changes; it would fit at
//!    `now + (new_tat − now − burst·T)`, which is its `Retry-After`.
//!
//! So a fresh client may spend `burst` units at once, and afterwards `limit` units per
//! `period` on average; unused capacity refills continuously (one unit every `T`), never above
//! `burst`. `remaining = ⌊(burst·T − (TAT − now)) / T⌋` and the budget is whole again at
//! `TAT` (the `reset`). A cost larger than `burst` can never fit: it is refused with a
//! `Retry-After` of a full refill. The same arithmetic runs in the Redis Lua script, in
//! microseconds on Redis' clock.

use std::time::Duration;

/// A budget rate: `limit` units per `period`, at most `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    limit: u64,
    period: Duration,
    burst: u64,
    /// `period / limit` in nanoseconds, computed once: a 128-bit division per decision costs
    /// as much as the rest of the step.
    interval: u64,
}

impl Rate {
    /// `limit` units per `period`, with a burst of `limit` (the whole period's budget may be
    /// spent at once). `limit` of 0 is taken as 1, a zero period as one second.
    pub fn new(limit: u64, period: Duration) -> Self {
        let limit = limit.max(1);
        let period = if period.is_zero() {
            Duration::from_secs(1)
        } else {
            period
        };
        let interval = u64::try_from(period.as_nanos() / u128::from(limit))
            .unwrap_or(u64::MAX)
            .max(1);
        Rate {
            limit,
            period,
            burst: limit,
            interval,
        }
    }

    /// `limit` units per minute.
    pub fn per_minute(limit: u64) -> Self {
        Rate::new(limit, Duration::from_secs(60))
    }

    /// `limit` units per hour.
    pub fn per_hour(limit: u64) -> Self {
        Rate::new(limit, Duration::from_secs(3600))
    }

    /// Sets how many units may be spent at once (at least 1).
    pub fn with_burst(mut self, burst: u64) -> Self {
        self.burst = burst.max(1);
        self
    }

    /// Units per period.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Units that may be spent at once.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// The emission interval `T` in nanoseconds (at least 1).
    #[inline]
    pub fn interval_nanos(&self) -> u64 {
        self.interval
    }

    /// The burst tolerance `burst·T` in nanoseconds.
    pub fn tolerance_nanos(&self) -> u64 {
        self.interval_nanos().saturating_mul(self.burst)
    }

    /// The seconds in a period, at least 1, for `RateLimit-Policy`'s `w`.
    pub fn window_secs(&self) -> u64 {
        self.period.as_secs().max(1)
    }
}

/// What one GCRA step decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Units granted: the whole cost, or 0 when refused (or, in "up to" mode, what fitted).
    pub granted: u64,
    /// Whether the whole cost was granted.
    pub allowed: bool,
    /// Units left after this step.
    pub remaining: u64,
    /// Until the budget is whole again.
    pub reset: Duration,
    /// When refused: until the cost would fit.
    pub retry_after: Duration,
}

/// One GCRA step on `tat` (nanoseconds on the store's clock): returns the new TAT (unchanged
/// when nothing was granted) and the verdict.
///
/// With `up_to`, a cost that does not fit whole is granted in part: as many units as remain.
pub fn step(rate: &Rate, tat: u64, now: u64, cost: u64, up_to: bool) -> (u64, Verdict) {
    let t = rate.interval_nanos();
    let tau = rate.tolerance_nanos();
    let base = tat.max(now);
    // How many units are free now: (tau - (base - now)) / t.
    let used = base - now;
    let free = tau.saturating_sub(used) / t;
    let granted = if cost <= free {
        cost
    } else if up_to {
        free
    } else {
        0
    };
    let allowed = granted == cost;
    let new_tat = if granted > 0 {
        base.saturating_add(granted.saturating_mul(t))
    } else {
        tat
    };
    let after_used = new_tat.max(now) - now;
    // ⌊(tau − used − granted·t) / t⌋, without a second division.
    let remaining = free.saturating_sub(granted);
    let retry_after = if allowed {
        0
    } else if cost > rate.burst {
        tau
    } else {
        // The cost fits once (base + cost·t) − now ≤ tau.
        used.saturating_add(cost.saturating_mul(t))
            .saturating_sub(tau)
    };
    (
        new_tat,
        Verdict {
            granted,
            allowed,
            remaining,
            reset: Duration::from_nanos(after_used),
            retry_after: Duration::from_nanos(retry_after),
        },
    )
}

/// Whether one unit is free now, without spending it: `granted` is 0, `remaining` the units
/// free, `retry_after` until one is.
pub fn peek(rate: &Rate, tat: u64, now: u64) -> Verdict {
    let (_, one) = step(rate, tat, now, 1, false);
    let used = tat.max(now) - now;
    Verdict {
        granted: 0,
        allowed: one.allowed,
        remaining: rate.tolerance_nanos().saturating_sub(used) / rate.interval_nanos(),
        reset: Duration::from_nanos(used),
        retry_after: one.retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn burst_then_refill() {
        let rate = Rate::new(10, Duration::from_secs(10));
        let mut tat = 0;
        for i in 0..10 {
            let (t, v) = step(&rate, tat, 0, 1, false);
            assert!(v.allowed, "unit {i}");
            tat = t;
        }
        let (_, v) = step(&rate, tat, 0, 1, false);
        assert!(!v.allowed);
        assert_eq!(v.retry_after, Duration::from_secs(1));
        let (_, v) = step(&rate, tat, S, 1, false);
        assert!(v.allowed);
        assert_eq!(v.remaining, 0);
    }

    #[test]
    fn up_to_grants_what_is_left() {
        let rate = Rate::new(10, Duration::from_secs(10));
        let (tat, v) = step(&rate, 0, 0, 7, false);
        assert_eq!(v.remaining, 3);
        let (_, v) = step(&rate, tat, 0, 5, true);
        assert_eq!((v.granted, v.allowed, v.remaining), (3, false, 0));
    }

    proptest::proptest! {
        /// The remaining count taken without a second division agrees with its definition
        /// `⌊(burst·T − (TAT − now)) / T⌋`.
        #[test]
        fn remaining_matches_the_definition(
            limit in 1u64..10_000,
            secs in 1u64..100_000,
            burst in 1u64..10_000,
            tat in 0u64..1_000_000_000_000,
            now in 0u64..1_000_000_000_000,
            cost in 0u64..20_000,
            up_to: bool,
        ) {
            let rate = Rate::new(limit, Duration::from_secs(secs)).with_burst(burst);
            let (new_tat, v) = step(&rate, tat, now, cost, up_to);
            let after = new_tat.max(now) - now;
            let expected = rate.tolerance_nanos().saturating_sub(after) / rate.interval_nanos();
            proptest::prop_assert_eq!(v.remaining, expected);
        }
    }

    #[test]
    fn cost_above_burst_never_fits() {
        let rate = Rate::new(10, Duration::from_secs(10)).with_burst(5);
        let (_, v) = step(&rate, 0, 0, 6, false);
        assert!(!v.allowed);
        assert_eq!(v.retry_after, Duration::from_secs(5));
    }
}
