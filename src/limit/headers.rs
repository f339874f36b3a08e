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

impl Snapshot {
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        // Written piece by piece: this runs on every response, and `write!` goes through the
        // formatting machinery for each number.
        let mut policy = String::with_capacity(96);
        let mut state = String::with_capacity(96);
        for (name, entry) in [("requests", self.requests), ("resources", self.resources)] {
            if let Some((rate, v)) = entry {
                item(
                    &mut policy,
                    name,
                    ("q", rate.limit()),
                    ("w", rate.window_secs()),
                );
                item(
                    &mut state,
                    name,
                    ("r", v.remaining),
                    ("t", ceil_secs(v.reset, 0)),
                );
            }
        }
        if let Some((max, used)) = self.concurrency {
            sep(&mut policy);
            policy.push_str("\"concurrency\";q=");
            policy.push_str(Decimal::new(u64::from(max)).as_str());
            policy.push_str(";qu=\"concurrent-requests\"");
            item(
                &mut state,
                "concurrency",
                ("r", u64::from(max.saturating_sub(used))),
                ("t", 0),
            );
        }
        if let (Ok(p), Ok(s)) = (
            HeaderValue::from_str(&policy),
            HeaderValue::from_str(&state),
        ) {
            if !policy.is_empty() {
                headers.insert(RATELIMIT_POLICY, p);
                headers.insert(RATELIMIT, s);
            }
        }
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
