//! [`RedisStore`]: budgets shared by every gateway replica through Redis (feature `redis`).
//!
//! Each decision is one `EVALSHA` of a Lua script (loaded once, reloaded by itself after a
//! Redis restart) that runs the same GCRA as [`MemoryStore`] atomically inside Redis, on Redis'
//! clock (`TIME`, microseconds), so replicas with skewed clocks still agree. Every key expires
//! one to three seconds after its budget is whole again, so Redis holds only clients that spent
//! recently. The scripts do only what must happen inside Redis (read the clock and the budgets,
//! decide, spend); the store works out the numbers of the answer from how much of each budget
//! was in use, because every number a script converts or replies costs Redis more than the
//! arithmetic. Keys are
//! `<prefix>{<client key>}:q` (requests) and `…:r` (resources); the `{…}` hash tag keeps a
//! client's keys in one Redis Cluster slot.
//!
//! The connection is a redis-rs `ConnectionManager`, which reconnects by itself. Each call has
//! a timeout; when Redis is down or too slow, [`WhenUnavailable`] decides: fail closed (default:
//! the layer answers 503 `transient`), fall back to a local [`MemoryStore`], or
//! `danger_fail_open` (let everything through, unlimited).

use super::gcra::{Rate, Verdict};
use super::key::ClientKey;
use super::store::{Admission, BudgetStore, MemoryStore, StoreUnavailable};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, Script, ServerErrorKind};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Microseconds are exact in Lua's doubles below 2^53: emission intervals and tolerances are
/// clamped to 2^50 µs (35 years), so `now + tolerance` and every product stay exact.
const MAX_MICROS: u64 = 1 << 50;

/// The Lua that spends the request's cost (ARGV[2], µs) on the budget in KEYS[1], given `t`
/// (Redis' `TIME`), `now`, `tat` and `used`: shared by [`REQUEST`] and [`BOTH`].
macro_rules! spend_request_cost {
    () => {
        r"local spend = 0 + ARGV[2]
if spend > 0 then
  local new = now + used + spend
  local s = new - new % 1000000
  if tat and tat >= s then
    redis.call('INCRBY', KEYS[1], new - tat)
  else
    redis.call('SET', KEYS[1], string.format('%d', new), 'PX', (s / 1000000 - t[1]) * 1000 + 2000)
  end
end
"
    };
}

/// `request` (a request budget alone): KEYS[1] holds the budget's TAT (µs on Redis' clock);
/// ARGV[1] is the most of the budget that may be in use for the cost to fit (`tau - cost·T`,
/// negative when it never fits), ARGV[2] the cost in µs (`cost·T`; 0 spends nothing). Spends the
/// cost when it fits and replies how much of the budget was in use before (µs), or `-1 - used`
/// when it does not fit. The client works out remaining, reset and retry from that (see
/// [`Budget::verdict`]): the script keeps to what must happen inside Redis, because Redis spends
/// more on each Lua number conversion and each reply element than on the arithmetic. Arguments
/// are read as `0 + ARGV[i]`, one parse, where Lua 5.1's `tonumber` parses twice.
///
/// The key's expiry is kept at least one whole second past the end of the second its TAT falls
/// in (so the key outlives its TAT by 1–3 s): a write whose new TAT falls in the same second as
/// the old one adds the difference to it (`INCRBY`, which keeps the key's expiry and costs Redis
/// much less than `SET … PX`); any other sets TAT and expiry anew.
const REQUEST: &str = concat!(
    r"
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local tat = tonumber(redis.call('GET', KEYS[1]))
local used = 0
if tat and tat > now then used = tat - now end
if used > 0 + ARGV[1] then return -1 - used end
",
    spend_request_cost!(),
    r"return used
"
);

/// `resources` (a resource budget alone, only peeked): replies how much of the budget in
/// KEYS[1] is in use (µs).
const RESOURCES: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat and tat > now then return tat - now end
return 0
";

/// `both`: KEYS[1] the request budget, KEYS[2] the resource budget. ARGV[1..2] as in
/// [`REQUEST`], ARGV[3] the most of the resource budget that may be in use for one unit to be
/// free, ARGV[4] the same for one unit of the request budget. The request's cost is spent only
/// when the resource budget has a unit; without one the request budget is only peeked for one
/// unit. Replies the request's answer as [`REQUEST`] does and the resource budget's use (µs).
const BOTH: &str = concat!(
    r"
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local v = redis.call('MGET', KEYS[1], KEYS[2])
local tat, rtat = tonumber(v[1]), tonumber(v[2])
local used, rused = 0, 0
if tat and tat > now then used = tat - now end
if rtat and rtat > now then rused = rtat - now end
if rused > 0 + ARGV[3] then
  if used > 0 + ARGV[4] then return {-1 - used, rused} end
  return {used, rused}
end
if used > 0 + ARGV[1] then return {-1 - used, rused} end
",
    spend_request_cost!(),
    r"return {used, rused}
"
);

/// `take`: spends ARGV[3] units (or with ARGV[4] = `1` as many as are free) of the budget in
/// KEYS[1] (ARGV[1..2] = T, tau in µs). Returns granted, remaining, reset (µs), retry (µs).
const TAKE: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local T, tau, cost = 0 + ARGV[1], 0 + ARGV[2], 0 + ARGV[3]
local tat = tonumber(redis.call('GET', KEYS[1]))
local used = 0
if tat and tat > now then used = tat - now end
local free = 0
if used < tau then free = math.floor((tau - used) / T) end
local granted = 0
if cost <= free then granted = cost elseif ARGV[4] == '1' then granted = free end
local reset = used
if granted > 0 then
  reset = used + granted * T
  redis.call('SET', KEYS[1], string.format('%d', now + reset), 'PX', math.floor(reset / 1000) + 1000)
end
local retry = 0
if granted < cost then
  if cost * T > tau then retry = tau else retry = used + cost * T - tau end
end
return {granted, free - granted, reset, retry}
";

/// What happens when Redis can't be reached in time.
#[derive(Clone, Debug, Default)]
pub enum WhenUnavailable {
    /// Refuse the request (503 `transient`). The default.
    #[default]
    FailClosed,
    /// Count in this local store until Redis answers again (each replica then has its own
    /// budget: a fleet of `n` replicas lets up to `n` times the budget through).
    FallBackToLocal(MemoryStore),
    /// Let every request through unlimited. Dangerous: an outage of Redis turns budgets off.
    DangerFailOpen,
}

/// How to use Redis.
///
/// Defaults: key prefix `fhirwall:budget:`, 250 ms per call (connection and response),
/// [`WhenUnavailable::FailClosed`].
#[derive(Clone, Debug)]
pub struct RedisStoreConfig {
    prefix: String,
    timeout: Duration,
    when_unavailable: WhenUnavailable,
}

impl Default for RedisStoreConfig {
    fn default() -> Self {
        RedisStoreConfig {
            prefix: "fhirwall:budget:".into(),
            timeout: Duration::from_millis(250),
            when_unavailable: WhenUnavailable::FailClosed,
        }
    }
}

impl RedisStoreConfig {
    /// The prefix of every key.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The time allowed for one call (default 250 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Counts in `local` while Redis is unavailable.
    pub fn fall_back_to_local(mut self, local: MemoryStore) -> Self {
        self.when_unavailable = WhenUnavailable::FallBackToLocal(local);
        self
    }

    /// Lets every request through while Redis is unavailable. Dangerous.
    pub fn danger_fail_open(mut self) -> Self {
        self.when_unavailable = WhenUnavailable::DangerFailOpen;
        self
    }
}

/// Redis could not be reached when connecting.
#[derive(Debug, thiserror::Error)]
#[error("could not connect to Redis: {0}")]
pub struct RedisConnectError(String);

struct Inner {
    conn: ConnectionManager,
    request: Script,
    resources: Script,
    both: Script,
    take: Script,
    config: RedisStoreConfig,
    failures: AtomicU64,
}

/// Budgets in Redis, shared by every replica; see the [module docs](self).
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// A boxed future: redis-rs's calls are `async fn`s whose futures can't be named.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreUnavailable>> + Send>>;

/// A rate's emission interval `T` and tolerance `tau` in microseconds, as the scripts take them.
fn micros(rate: &Rate) -> (u64, u64) {
    let t = (rate.interval_nanos() / 1000).clamp(1, MAX_MICROS);
    (t, t.saturating_mul(rate.burst()).min(MAX_MICROS))
}

fn verdict(granted: u64, allowed: bool, remaining: i64, reset_us: i64, retry_us: i64) -> Verdict {
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    Verdict {
        granted,
        allowed,
        remaining: u(remaining),
        reset: Duration::from_micros(u(reset_us)),
        retry_after: Duration::from_micros(u(retry_us)),
    }
}

/// What the scripts are told for "any cost fits" (a cost of 0): more than any budget's use.
const ALWAYS_FITS: i64 = 1 << 53;

/// One budget in microseconds (`T` ≥ 1, `T` ≤ `tau` ≤ 2^50): what the admission scripts are
/// told, and the GCRA numbers worked out from their answer, the same as the in-memory step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Budget {
    t: u64,
    tau: u64,
}

impl Budget {
    fn of(rate: &Rate) -> Self {
        let (t, tau) = micros(rate);
        Budget { t, tau }
    }

    /// `cost·T` when the cost can ever fit (at most `tau`).
    fn need(self, cost: u64) -> Option<u64> {
        let need = u128::from(cost) * u128::from(self.t);
        u64::try_from(need).ok().filter(|&n| n <= self.tau)
    }

    /// The script's arguments for `cost`: the most of the budget that may be in use for the
    /// cost to fit (`tau - cost·T`; -1 when it never fits), and `cost·T` to spend.
    fn ask(self, cost: u64) -> (i64, u64) {
        if cost == 0 {
            return (ALWAYS_FITS, 0);
        }
        match self.need(cost) {
            Some(need) => (i64::try_from(self.tau - need).unwrap_or(i64::MAX), need),
            None => (-1, 0),
        }
    }

    /// Whether `cost` fits when `used` µs of the budget are in use (what the scripts decide).
    fn fits(self, used: u64, cost: u64) -> bool {
        let (limit, _) = self.ask(cost);
        i64::try_from(used).is_ok_and(|used| used <= limit)
    }

    /// The verdict on `cost` when `used` µs of the budget were in use, the cost `fit`, and
    /// `spent` says whether it was spent: the units left, the time until the budget is whole,
    /// and when refused the time until the cost would fit.
    fn verdict(self, used: u64, cost: u64, fit: bool, spent: bool) -> Verdict {
        let free = if used < self.tau {
            (self.tau - used) / self.t
        } else {
            0
        };
        let need = self.need(cost);
        let (remaining, reset, retry) = match (fit, spent, need) {
            (true, true, Some(need)) => (free.saturating_sub(cost), used.saturating_add(need), 0),
            (true, _, _) => (free, used, 0),
            (false, _, Some(need)) => (
                free,
                used,
                used.saturating_add(need).saturating_sub(self.tau),
            ),
            (false, _, None) => (free, used, self.tau),
        };
        Verdict {
            granted: if fit && spent { cost } else { 0 },
            allowed: fit,
            remaining,
            reset: Duration::from_micros(reset),
            retry_after: Duration::from_micros(retry),
        }
    }
}

/// A script's answer on a request budget: `used` when the cost fit, `-1 - used` when not.
fn answer(reply: i64) -> (u64, bool) {
    if reply >= 0 {
        (reply.unsigned_abs(), true)
    } else {
        ((-1i64).saturating_sub(reply).unsigned_abs(), false)
    }
}

impl RedisStore {
    /// Connects to Redis at `url` (`redis://host:port/db`) and loads the scripts, failing if it
    /// can't be reached now; afterwards the connection is re-established by itself, and the
    /// scripts are loaded again if Redis lost them.
    pub async fn connect(url: &str, config: RedisStoreConfig) -> Result<Self, RedisConnectError> {
        let client = redis::Client::open(url).map_err(|e| RedisConnectError(e.to_string()))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let mut conn = ConnectionManager::new_with_config(client, manager)
            .await
            .map_err(|e| RedisConnectError(e.to_string()))?;
        let (request, resources) = (Script::new(REQUEST), Script::new(RESOURCES));
        let (both, take) = (Script::new(BOTH), Script::new(TAKE));
        for script in [&request, &resources, &both, &take] {
            script
                .load_async(&mut conn)
                .await
                .map_err(|e| RedisConnectError(e.to_string()))?;
        }
        Ok(RedisStore {
            inner: Arc::new(Inner {
                conn,
                request,
                resources,
                both,
                take,
                config,
                failures: AtomicU64::new(0),
            }),
        })
    }

    /// How many calls failed (Redis down, too slow, or an error reply).
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    fn key(&self, client: &ClientKey, suffix: &str) -> String {
        let (prefix, client) = (self.inner.config.prefix.as_str(), client.as_str());
        let mut key = String::with_capacity(prefix.len() + client.len() + 2 + suffix.len());
        key.push_str(prefix);
        key.push('{');
        key.push_str(client);
        key.push('}');
        key.push_str(suffix);
        key
    }

    /// A plain `PING` on the store's connection, with the same timeout as a decision (for
    /// health checks and the benchmark's baseline).
    pub async fn ping(&self) -> Result<(), StoreUnavailable> {
        let mut conn = self.inner.conn.clone();
        let ping = redis::cmd("PING");
        let call = ping.query_async::<String>(&mut conn);
        match tokio::time::timeout(self.inner.config.timeout, call).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(StoreUnavailable),
        }
    }
}

/// One `EVALSHA` of `script` (the command built by the caller, arguments as integers); on
/// `NOSCRIPT` (Redis restarted or flushed its scripts) the script is loaded and the call made
/// once more. The whole exchange is bounded by the configured timeout.
async fn run<T: redis::FromRedisValue>(
    inner: &Inner,
    script: &Script,
    cmd: redis::Cmd,
) -> Result<T, StoreUnavailable> {
    let mut conn = inner.conn.clone();
    let call = async {
        match cmd.query_async::<T>(&mut conn).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                script.load_async(&mut conn).await?;
                cmd.query_async::<T>(&mut conn).await
            }
            other => other,
        }
    };
    match tokio::time::timeout(inner.config.timeout, call).await {
        Ok(Ok(values)) => Ok(values),
        _ => {
            inner.failures.fetch_add(1, Ordering::Relaxed);
            Err(StoreUnavailable)
        }
    }
}

/// `EVALSHA <sha> <keys.len()> <keys…>`, sized for `args` more integer arguments.
fn evalsha(script: &Script, keys: &[&str], args: usize) -> redis::Cmd {
    let bytes = 7 + 40 + 1 + keys.iter().map(|k| k.len()).sum::<usize>() + 20 * args;
    let mut cmd = redis::Cmd::with_capacity(3 + keys.len() + args, bytes);
    cmd.arg("EVALSHA").arg(script.get_hash()).arg(keys.len());
    for key in keys {
        cmd.arg(*key);
    }
    cmd
}

impl BudgetStore for RedisStore {
    type Admit = StoreFuture<Admission>;
    type Take = StoreFuture<Verdict>;

    fn admit(
        &self,
        key: &ClientKey,
        request: Option<(Rate, u64)>,
        resources: Option<Rate>,
    ) -> Self::Admit {
        let inner = self.inner.clone();
        let client = key.clone();
        match (request, resources) {
            (None, None) => Box::pin(std::future::ready(Ok(Admission {
                request: None,
                resources: None,
                degraded: false,
            }))),
            (Some((rate, cost)), None) => {
                let budget = Budget::of(&rate);
                let (limit, spend) = budget.ask(cost);
                let mut cmd = evalsha(&inner.request, &[&self.key(key, ":q")], 2);
                cmd.arg(limit).arg(spend);
                Box::pin(async move {
                    match run::<i64>(&inner, &inner.request, cmd).await {
                        Ok(reply) => {
                            let (used, fit) = answer(reply);
                            Ok(Admission {
                                request: Some(budget.verdict(used, cost, fit, fit)),
                                resources: None,
                                degraded: false,
                            })
                        }
                        Err(StoreUnavailable) => {
                            unavailable_admit(&inner, &client, request, resources)
                        }
                    }
                })
            }
            (None, Some(rate)) => {
                let budget = Budget::of(&rate);
                let cmd = evalsha(&inner.resources, &[&self.key(key, ":r")], 0);
                Box::pin(async move {
                    match run::<i64>(&inner, &inner.resources, cmd).await {
                        Ok(used) => {
                            let used = u64::try_from(used).unwrap_or(0);
                            let fit = budget.fits(used, 1);
                            Ok(Admission {
                                request: None,
                                resources: Some(budget.verdict(used, 1, fit, false)),
                                degraded: false,
                            })
                        }
                        Err(StoreUnavailable) => {
                            unavailable_admit(&inner, &client, request, resources)
                        }
                    }
                })
            }
            (Some((rate, cost)), Some(resource_rate)) => {
                let (budget, resource_budget) = (Budget::of(&rate), Budget::of(&resource_rate));
                let (limit, spend) = budget.ask(cost);
                let keys = [self.key(key, ":q"), self.key(key, ":r")];
                let mut cmd = evalsha(&inner.both, &[&keys[0], &keys[1]], 4);
                cmd.arg(limit)
                    .arg(spend)
                    .arg(resource_budget.ask(1).0)
                    .arg(budget.ask(1).0);
                Box::pin(async move {
                    match run::<(i64, i64)>(&inner, &inner.both, cmd).await {
                        Ok((reply, resource_used)) => {
                            let resource_used = u64::try_from(resource_used).unwrap_or(0);
                            let unit = resource_budget.fits(resource_used, 1);
                            let (used, fit) = answer(reply);
                            // Without a resource unit the request budget was only peeked for
                            // one unit, and nothing was spent.
                            let request = if unit {
                                budget.verdict(used, cost, fit, fit)
                            } else {
                                budget.verdict(used, 1, fit, false)
                            };
                            Ok(Admission {
                                request: Some(request),
                                resources: Some(resource_budget.verdict(
                                    resource_used,
                                    1,
                                    unit,
                                    false,
                                )),
                                degraded: false,
                            })
                        }
                        Err(StoreUnavailable) => {
                            unavailable_admit(&inner, &client, request, resources)
                        }
                    }
                })
            }
        }
    }

    fn take(&self, key: &ClientKey, resources: Rate, count: u64, up_to: bool) -> Self::Take {
        let mut cmd = evalsha(&self.inner.take, &[&self.key(key, ":r")], 4);
        let (t, tau) = micros(&resources);
        cmd.arg(t)
            .arg(tau)
            .arg(count.min(MAX_MICROS))
            .arg(u8::from(up_to));
        let inner = self.inner.clone();
        let key = key.clone();
        Box::pin(async move {
            match run::<Vec<i64>>(&inner, &inner.take, cmd).await {
                Ok(v) if v.len() == 4 => {
                    let get = |i: usize| v.get(i).copied().unwrap_or(0);
                    let granted = u64::try_from(get(0)).unwrap_or(0);
                    Ok(verdict(granted, granted == count, get(1), get(2), get(3)))
                }
                Ok(_) => {
                    inner.failures.fetch_add(1, Ordering::Relaxed);
                    unavailable_take(&inner, &key, resources, count, up_to)
                }
                Err(StoreUnavailable) => unavailable_take(&inner, &key, resources, count, up_to),
            }
        })
    }
}

fn unavailable_admit(
    inner: &Inner,
    key: &ClientKey,
    request: Option<(Rate, u64)>,
    resources: Option<Rate>,
) -> Result<Admission, StoreUnavailable> {
    match &inner.config.when_unavailable {
        WhenUnavailable::FailClosed => Err(StoreUnavailable),
        WhenUnavailable::FallBackToLocal(local) => Ok(local.admit_now(key, request, resources)),
        WhenUnavailable::DangerFailOpen => Ok(Admission {
            request: None,
            resources: None,
            degraded: true,
        }),
    }
}

fn unavailable_take(
    inner: &Inner,
    key: &ClientKey,
    resources: Rate,
    count: u64,
    up_to: bool,
) -> Result<Verdict, StoreUnavailable> {
    match &inner.config.when_unavailable {
        WhenUnavailable::FailClosed => Err(StoreUnavailable),
        WhenUnavailable::FallBackToLocal(local) => Ok(local.take_now(key, resources, count, up_to)),
        WhenUnavailable::DangerFailOpen => Ok(Verdict {
            granted: count,
            allowed: true,
            remaining: 0,
            reset: Duration::ZERO,
            retry_after: Duration::ZERO,
        }),
    }
}

#[cfg(test)]
mod tests;
