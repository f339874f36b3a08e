//! Throttling answers: `429` with `Retry-After`, and the `RateLimit-Policy` / `RateLimit`
//! fields of draft-ietf-httpapi-ratelimit-headers-10 (§2 and §3: lists of items, each a
//! policy name with `q` quota, `w` window in seconds, `qu` quota unit; and `r` remaining, `t`
//! seconds until the quota is whole again).
//!
//! fhirwall names its policies `requests` (units of interaction cost, see
//! [`CostTable`](super::CostTable)), `resources` (FHIR resources returned) and `concurrency`
//! (`qu="concurrent-requests"`).

use super::gcra::{Rate, Verdict};
use crate::decimal::Decimal;
use crate::fhir::{IssueType, OperationOutcome};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;
use std::time::Duration;

/// `RateLimit-Policy`.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Whole seconds, rounded up, at least `min`.
pub(crate) fn ceil_secs(d: Duration, min: u64) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(min)
}

/// The current state of a client's budgets, for the headers.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) requests: Option<(Rate, Verdict)>,
    pub(crate) resources: Option<(Rate, Verdict)>,
    pub(crate) concurrency: Option<(u32, u32)>,
}

/// What `RateLimit-Policy` depends on: the rates and the in-flight maximum.
type PolicyKey = (Option<Rate>, Option<Rate>, Option<u32>);

thread_local! {
    /// The last `RateLimit-Policy` value written on this thread. It changes only with the
    /// client's group, so most responses reuse it instead of writing it again.
    static LAST_POLICY: std::cell::RefCell<Option<(PolicyKey, HeaderValue)>> =
        const { std::cell::RefCell::new(None) };
}

impl Snapshot {
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        let key: PolicyKey = (
            self.requests.map(|(rate, _)| rate),
            self.resources.map(|(rate, _)| rate),
            self.concurrency.map(|(max, _)| max),
        );
        if key == (None, None, None) {
            return;
        }
        let Some(policy) = LAST_POLICY.with(|last| {
            let mut last = last.borrow_mut();
            if let Some((k, value)) = last.as_ref() {
                if *k == key {
                    return Some(value.clone());
                }
            }
            let value = HeaderValue::from_str(&self.policy()).ok()?;
            *last = Some((key, value.clone()));
            Some(value)
        }) else {
            return;
        };
        if let Ok(state) = HeaderValue::from_str(&self.state()) {
            headers.insert(RATELIMIT_POLICY, policy);
            headers.insert(RATELIMIT, state);
        }
    }

    /// The `RateLimit-Policy` value. Written piece by piece: `write!` goes through the
    /// formatting machinery for each number.
    fn policy(&self) -> String {
        let mut policy = String::with_capacity(96);
        for (name, entry) in [("requests", self.requests), ("resources", self.resources)] {
            if let Some((rate, _)) = entry {
                item(
                    &mut policy,
                    name,
                    ("q", rate.limit()),
                    ("w", rate.window_secs()),
                );
            }
        }
        if let Some((max, _)) = self.concurrency {
            sep(&mut policy);
            policy.push_str("\"concurrency\";q=");
            policy.push_str(Decimal::new(u64::from(max)).as_str());
            policy.push_str(";qu=\"concurrent-requests\"");
        }
        policy
    }

    /// The `RateLimit` value: what is left of each policy, and when it is whole again.
    fn state(&self) -> String {
        let mut state = String::with_capacity(96);
        for (name, entry) in [("requests", self.requests), ("resources", self.resources)] {
            if let Some((_, v)) = entry {
                item(
                    &mut state,
                    name,
                    ("r", v.remaining),
                    ("t", ceil_secs(v.reset, 0)),
                );
            }
        }
        if let Some((max, used)) = self.concurrency {
            item(
                &mut state,
                "concurrency",
                ("r", u64::from(max.saturating_sub(used))),
                ("t", 0),
            );
        }
        state
    }
}

/// One list item, `"name";a=1;b=2`, after a separator when the list has items already.
fn item(out: &mut String, name: &str, (a, x): (&str, u64), (b, y): (&str, u64)) {
    sep(out);
    out.push('"');
    out.push_str(name);
    out.push_str("\";");
    out.push_str(a);
    out.push('=');
    out.push_str(Decimal::new(x).as_str());
    out.push(';');
    out.push_str(b);
    out.push('=');
    out.push_str(Decimal::new(y).as_str());
}

fn sep(s: &mut String) {
    if !s.is_empty() {
        s.push_str(", ");
    }
}

/// A `429 Too Many Requests` with `Retry-After` and an `OperationOutcome` coded `throttled`.
pub(crate) fn throttled(
    text: &'static str,
    retry_after: Duration,
    snapshot: &Snapshot,
) -> Response<Full<Bytes>> {
    let mut response = OperationOutcome::error(IssueType::Throttled, text)
        .into_response(StatusCode::TOO_MANY_REQUESTS);
    let secs = ceil_secs(retry_after, 1);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
    snapshot.apply(response.headers_mut());
    response
}

/// Any other refusal of the budget layer.
pub(crate) fn refusal(
    status: StatusCode,
    code: IssueType,
    text: &'static str,
) -> Response<Full<Bytes>> {
    OperationOutcome::error(code, text).into_response(status)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn snapshot(per_minute: u64, remaining: u64, concurrency: Option<(u32, u32)>) -> Snapshot {
        let verdict = Verdict {
            granted: 1,
            allowed: true,
            remaining,
            reset: Duration::from_millis(1500),
            retry_after: Duration::ZERO,
        };
        Snapshot {
            requests: Some((Rate::per_minute(per_minute), verdict)),
            resources: None,
            concurrency,
        }
    }

    fn fields(s: &Snapshot) -> (String, String) {
        let mut headers = HeaderMap::new();
        s.apply(&mut headers);
        let get = |name| headers.get(name).unwrap().to_str().unwrap().to_owned();
        (get(RATELIMIT_POLICY), get(RATELIMIT))
    }

    /// draft-ietf-httpapi-ratelimit-headers-10 §2 and §3: each response tells its own client's
    /// policy and what is left of it, even when clients of different groups alternate on one
    /// thread (the policy text is reused only for the same rates).
    #[test]
    fn each_response_tells_its_own_policy() {
        let a = snapshot(100, 7, None);
        let b = snapshot(5, 2, Some((4, 1)));
        for _ in 0..2 {
            assert_eq!(
                fields(&a),
                (
                    "\"requests\";q=100;w=60".into(),
                    "\"requests\";r=7;t=2".into()
                )
            );
            assert_eq!(
                fields(&b),
                (
                    "\"requests\";q=5;w=60, \"concurrency\";q=4;qu=\"concurrent-requests\"".into(),
                    "\"requests\";r=2;t=2, \"concurrency\";r=3;t=0".into()
                )
            );
        }
        let mut headers = HeaderMap::new();
        Snapshot::default().apply(&mut headers);
        assert!(headers.is_empty(), "no budget, no fields");
    }
}
