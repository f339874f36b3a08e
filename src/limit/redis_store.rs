//! [`RedisStore`]: budgets shared by every gateway replica through Redis (feature `redis`).
//!
//! Each decision is one `EVALSHA` of a Lua script (loaded once, reloaded by itself after a
//! Redis restart) that runs the same GCRA as [`MemoryStore`] atomically inside Redis, on Redis'
//! clock (`TIME`, microseconds), so replicas with skewed clocks still agree. Every key expires
//! when its budget is whole again, so Redis holds only clients that spent recently. Keys are
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

/// `admit`: KEYS are the budgets' keys, one per budget (a TAT in µs on Redis' clock).
/// ARGV[1] says which: `1` the request budget (KEYS[1]; ARGV[2..4] = T, tau, cost), `2` the
/// resource budget (KEYS[1]; ARGV[5..6] = T, tau), `3` both (KEYS[1] requests, KEYS[2]
/// resources). The resource budget is only peeked (is one unit free?); the request's cost is
/// spent all-or-nothing, and only when the resource budget has a unit. Returns eight integers:
/// the request's allowed, remaining, reset (µs), retry (µs), then the same for resources.
/// Kept to one TIME, one GET or MGET and at most one SET: each `redis.call` costs Redis more
/// than the arithmetic.
const ADMIT: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local mode = ARGV[1]
local qtat, rtat
if mode == '3' then
  local v = redis.call('MGET', KEYS[1], KEYS[2])
  qtat, rtat = tonumber(v[1]), tonumber(v[2])
elseif mode == '1' then
  qtat = tonumber(redis.call('GET', KEYS[1]))
else
  rtat = tonumber(redis.call('GET', KEYS[1]))
end
local out = {0, 0, 0, 0, 0, 0, 0, 0}
local ok = true
if mode ~= '1' then
  local T, tau = tonumber(ARGV[5]), tonumber(ARGV[6])
  local used = 0
  if rtat and rtat > now then used = rtat - now end
  local free = 0
  if used < tau then free = math.floor((tau - used) / T) end
  ok = free >= 1
  out[6] = free
  out[7] = used
  if ok then out[5] = 1 elseif T > tau then out[8] = tau else out[8] = used + T - tau end
end
if mode ~= '2' then
  local T, tau, cost = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  local used = 0
  if qtat and qtat > now then used = qtat - now end
  local free = 0
  if used < tau then free = math.floor((tau - used) / T) end
  -- Without a resource unit nothing is spent: the answer is a one-unit peek.
  if not ok then cost = 1 end
  out[2] = free
  out[3] = used
  if cost <= free then
    out[1] = 1
    if ok and cost > 0 then
      local reset = used + cost * T
      out[2] = free - cost
      out[3] = reset
      redis.call('SET', KEYS[1], string.format('%d', now + reset), 'PX', math.floor(reset / 1000) + 1000)
    end
  elseif cost * T > tau then
    out[4] = tau
  else
    out[4] = used + cost * T - tau
  end
end
return out
";

/// `take`: spends ARGV[3] units (or with ARGV[4] = `1` as many as are free) of the budget in
/// KEYS[1] (ARGV[1..2] = T, tau in µs). Returns granted, remaining, reset (µs), retry (µs).
const TAKE: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local T, tau, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
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
    admit: Script,
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
        let (admit, take) = (Script::new(ADMIT), Script::new(TAKE));
        for script in [&admit, &take] {
            script
                .load_async(&mut conn)
                .await
                .map_err(|e| RedisConnectError(e.to_string()))?;
        }
        Ok(RedisStore {
            inner: Arc::new(Inner {
                conn,
                admit,
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
async fn run(
    inner: &Inner,
    script: &Script,
    cmd: redis::Cmd,
) -> Result<Vec<i64>, StoreUnavailable> {
    let mut conn = inner.conn.clone();
    let call = async {
        match cmd.query_async::<Vec<i64>>(&mut conn).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                script.load_async(&mut conn).await?;
                cmd.query_async::<Vec<i64>>(&mut conn).await
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

fn evalsha(script: &Script, keys: &[String]) -> redis::Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys.len());
    for key in keys {
        cmd.arg(key.as_str());
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
        let (mode, keys) = match (request.is_some(), resources.is_some()) {
            (false, false) => {
                return Box::pin(std::future::ready(Ok(Admission {
                    request: None,
                    resources: None,
                    degraded: false,
                })))
            }
            (true, false) => (1u8, vec![self.key(key, ":q")]),
            (false, true) => (2, vec![self.key(key, ":r")]),
            (true, true) => (3, vec![self.key(key, ":q"), self.key(key, ":r")]),
        };
        let mut cmd = evalsha(&self.inner.admit, &keys);
        let (qt, qtau, cost) = request.map_or((1, 1, 0), |(r, c)| {
            let (t, tau) = micros(&r);
            (t, tau, c.min(MAX_MICROS))
        });
        let (rt, rtau) = resources.as_ref().map_or((1, 1), micros);
        cmd.arg(mode).arg(qt).arg(qtau).arg(cost).arg(rt).arg(rtau);
        let inner = self.inner.clone();
        let key = key.clone();
        Box::pin(async move {
            match run(&inner, &inner.admit, cmd).await {
                Ok(v) if v.len() == 8 => {
                    let get = |i: usize| v.get(i).copied().unwrap_or(0);
                    let resources_ok = resources.is_none() || get(4) == 1;
                    Ok(Admission {
                        request: request.map(|(_, cost)| {
                            let allowed = get(0) == 1;
                            let granted = if allowed && resources_ok { cost } else { 0 };
                            verdict(granted, allowed, get(1), get(2), get(3))
                        }),
                        resources: resources
                            .map(|_| verdict(0, get(4) == 1, get(5), get(6), get(7))),
                        degraded: false,
                    })
                }
                Ok(_) => {
                    inner.failures.fetch_add(1, Ordering::Relaxed);
                    unavailable_admit(&inner, &key, request, resources)
                }
                Err(StoreUnavailable) => unavailable_admit(&inner, &key, request, resources),
            }
        })
    }

    fn take(&self, key: &ClientKey, resources: Rate, count: u64, up_to: bool) -> Self::Take {
        let keys = [self.key(key, ":r")];
        let mut cmd = evalsha(&self.inner.take, &keys);
        let (t, tau) = micros(&resources);
        cmd.arg(t)
            .arg(tau)
            .arg(count.min(MAX_MICROS))
            .arg(u8::from(up_to));
        let inner = self.inner.clone();
        let key = key.clone();
        Box::pin(async move {
            match run(&inner, &inner.take, cmd).await {
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
