//! Requests in flight per client, counted in this process.

use super::key::ClientKey;
use dashmap::DashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Counts requests in flight per client. An entry exists only while the client has a request
/// in flight, so memory is bounded by the number of requests in flight.
#[derive(Clone, Debug, Default)]
pub(crate) struct InFlight {
    map: Arc<DashMap<ClientKey, AtomicU32>>,
}

/// Held from admission until the response body has finished or been dropped.
#[derive(Debug)]
pub struct InFlightGuard {
    map: Arc<DashMap<ClientKey, AtomicU32>>,
    key: ClientKey,
}

impl InFlight {
    /// Takes a slot if fewer than `max` are in flight; else returns how many are.
    pub(crate) fn acquire(&self, key: &ClientKey, max: u32) -> Result<(InFlightGuard, u32), u32> {
        let entry = self.map.entry(key.clone()).or_default();
        let mut current = entry.load(Ordering::Acquire);
        loop {
            if current >= max {
                return Err(current);
            }
            match entry.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        drop(entry);
        Ok((
            InFlightGuard {
                map: self.map.clone(),
                key: key.clone(),
            },
            current + 1,
        ))
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.map.len()
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        // Decrement and remove at zero under the shard's write lock, so no acquire can slip in
        // between and lose its count.
        self.map.remove_if(&self.key, |_, count| {
            count.fetch_sub(1, Ordering::AcqRel) <= 1
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_released_on_drop() {
        let flight = InFlight::default();
        let key = ClientKey::new("ip", "1").unwrap();
        let a = flight.acquire(&key, 2).unwrap();
        let b = flight.acquire(&key, 2).unwrap();
        assert_eq!(flight.acquire(&key, 2).err(), Some(2));
        drop(a);
        let c = flight.acquire(&key, 2).unwrap();
        drop((b, c));
        assert_eq!(flight.tracked(), 0);
    }
}
