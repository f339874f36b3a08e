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
use redis::Script;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

-- One GCRA step (see fhirwall::limit::gcra), in microseconds.
local function step(key, T, tau, cost, up_to, commit)
  local tat = tonumber(redis.call('GET', key) or '0') or 0
  local base = math.max(tat, now)
  local used = base - now
  local free = math.floor(math.max(tau - used, 0) / T)
  local granted = 0
  if cost <= free then granted = cost elseif up_to == 1 then granted = free end
  local new_tat = tat
  if granted > 0 then new_tat = base + granted * T end
  local after = math.max(new_tat, now) - now
  local remaining = math.floor(math.max(tau - after, 0) / T)
  local retry = 0
  if granted ~= cost then
    if cost * T > tau then retry = tau else retry = math.max(used + cost * T - tau, 0) end
  end
  if commit and granted > 0 then
    redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.floor(after / 1000) + 1000)
  end
  return {granted, remaining, after, retry, free, used}
end

if ARGV[1] == 'admit' then
  local out = {1, 0, 0, 0, 1, 0, 0, 0}
  local res_ok = true
  if ARGV[6] == '1' then
    local p = step(KEYS[2], tonumber(ARGV[7]), tonumber(ARGV[8]), 1, 0, false)
    res_ok = p[1] == 1
    out[5] = res_ok and 1 or 0
    out[6] = p[5]
    out[7] = p[6]
    out[8] = p[4]
  end
  if ARGV[2] == '1' then
    local cost = tonumber(ARGV[5])
    local r = step(KEYS[1], tonumber(ARGV[3]), tonumber(ARGV[4]), cost, 0, res_ok)
    out[1] = (r[1] == cost) and 1 or 0
    out[2] = r[2]
    out[3] = r[3]
    out[4] = r[4]
  end
  return out
else
  local count = tonumber(ARGV[4])
  local r = step(KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]), count, tonumber(ARGV[5]), true)
  return {r[1], r[2], r[3], r[4]}
end
"#;

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
    script: Script,
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

fn micros(nanos: u64) -> u64 {
    (nanos / 1000).max(1)
}

fn verdict(granted: i64, allowed: bool, remaining: i64, reset_us: i64, retry_us: i64) -> Verdict {
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    Verdict {
        granted: u(granted),
        allowed,
        remaining: u(remaining),
        reset: Duration::from_micros(u(reset_us)),
        retry_after: Duration::from_micros(u(retry_us)),
    }
}

impl RedisStore {
    /// Connects to Redis at `url` (`redis://host:port/db`), failing if it can't be reached now;
    /// afterwards the connection is re-established by itself.
    pub async fn connect(url: &str, config: RedisStoreConfig) -> Result<Self, RedisConnectError> {
        let client = redis::Client::open(url).map_err(|e| RedisConnectError(e.to_string()))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(client, manager)
            .await
            .map_err(|e| RedisConnectError(e.to_string()))?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                conn,
                script: Script::new(SCRIPT),
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
        format!(
            "{}{{{}}}:{suffix}",
            self.inner.config.prefix,
            client.as_str()
        )
    }

    /// A plain `PING` on the store's connection (for health checks and the benchmark's
    /// baseline).
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

async fn run(
    inner: &Inner,
    keys: Vec<String>,
    args: Vec<String>,
) -> Result<Vec<i64>, StoreUnavailable> {
    let mut conn = inner.conn.clone();
    let mut invocation = inner.script.prepare_invoke();
    for key in keys {
        invocation.key(key);
    }
    for arg in args {
        invocation.arg(arg);
    }
    match tokio::time::timeout(
        inner.config.timeout,
        invocation.invoke_async::<Vec<i64>>(&mut conn),
    )
    .await
    {
        Ok(Ok(values)) => Ok(values),
        _ => {
            inner.failures.fetch_add(1, Ordering::Relaxed);
            Err(StoreUnavailable)
        }
    }
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
        let keys = vec![self.key(key, "q"), self.key(key, "r")];
        let key = key.clone();
        let (req_rate, cost) = request.map_or((None, 0), |(r, c)| (Some(r), c));
        let mut args = vec!["admit".to_owned()];
        match req_rate {
            Some(r) => args.extend([
                "1".into(),
                micros(r.interval_nanos()).to_string(),
                micros(r.interval_nanos())
                    .saturating_mul(r.burst())
                    .to_string(),
                cost.to_string(),
            ]),
            None => args.extend(["0".into(), "1".into(), "1".into(), "0".into()]),
        }
        match resources {
            Some(r) => args.extend([
                "1".into(),
                micros(r.interval_nanos()).to_string(),
                micros(r.interval_nanos())
                    .saturating_mul(r.burst())
                    .to_string(),
            ]),
            None => args.extend(["0".into(), "1".into(), "1".into()]),
        }
        Box::pin(async move {
            match run(&inner, keys, args).await {
                Ok(v) => {
                    let get = |i: usize| v.get(i).copied().unwrap_or(0);
                    if v.len() != 8 {
                        return Err(StoreUnavailable);
                    }
                    Ok(Admission {
                        request: req_rate.map(|_| {
                            let allowed = get(0) == 1;
                            let granted = if allowed {
                                i64::try_from(cost).unwrap_or(0)
                            } else {
                                0
                            };
                            verdict(granted, allowed, get(1), get(2), get(3))
                        }),
                        resources: resources
                            .map(|_| verdict(0, get(4) == 1, get(5), get(6), get(7))),
                        degraded: false,
                    })
                }
                Err(e) => match &inner.config.when_unavailable {
                    WhenUnavailable::FailClosed => Err(e),
                    WhenUnavailable::FallBackToLocal(local) => {
                        Ok(local.admit_now(&key, request, resources))
                    }
                    WhenUnavailable::DangerFailOpen => Ok(Admission {
                        request: None,
                        resources: None,
                        degraded: true,
                    }),
                },
            }
        })
    }

    fn take(&self, key: &ClientKey, resources: Rate, count: u64, up_to: bool) -> Self::Take {
        let inner = self.inner.clone();
        let keys = vec![self.key(key, "r")];
        let key = key.clone();
        let t = micros(resources.interval_nanos());
        let args = vec![
            "take".to_owned(),
            t.to_string(),
            t.saturating_mul(resources.burst()).to_string(),
            count.to_string(),
            u8::from(up_to).to_string(),
        ];
        Box::pin(async move {
            match run(&inner, keys, args).await {
                Ok(v) if v.len() == 4 => {
                    let get = |i: usize| v.get(i).copied().unwrap_or(0);
                    let granted = get(0);
                    Ok(verdict(
                        granted,
                        u64::try_from(granted).ok() == Some(count),
                        get(1),
                        get(2),
                        get(3),
                    ))
                }
                Ok(_) => Err(StoreUnavailable),
                Err(e) => match &inner.config.when_unavailable {
                    WhenUnavailable::FailClosed => Err(e),
                    WhenUnavailable::FallBackToLocal(local) => {
                        Ok(local.take_now(&key, resources, count, up_to))
                    }
                    WhenUnavailable::DangerFailOpen => Ok(Verdict {
                        granted: count,
                        allowed: true,
                        remaining: 0,
                        reset: Duration::ZERO,
                        retry_after: Duration::ZERO,
                    }),
                },
            }
        })
    }
}
