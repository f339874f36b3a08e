//! Zombie versions: deprecated routes and base paths announce their end, then answer 410.
//!
//! Before the sunset a response under a deprecated prefix carries `Deprecation` (RFC 9745
//! §2: a structured-field date, `@<unix seconds>`), `Sunset` (RFC 8594 §3: an HTTP-date) and a
//! `Link` to the successor (`rel="successor-version"`, RFC 5829). From the sunset on, the
//! firewall answers `410 Gone` with an `OperationOutcome`. Time comes from a [`Clock`], so tests
//! use a fixed one.

use http::HeaderValue;
use std::fmt::Debug;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where the firewall gets the time (for sunsets and access windows).
pub trait Clock: Debug + Send + Sync + 'static {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock stopped at a given time, settable from tests.
#[derive(Debug, Default)]
pub struct FixedClock {
    unix_seconds: std::sync::atomic::AtomicI64,
}

impl FixedClock {
    /// A clock at `unix_seconds`.
    pub fn at(unix_seconds: i64) -> Self {
        FixedClock {
            unix_seconds: unix_seconds.into(),
        }
    }

    /// Moves the clock to `unix_seconds`.
    pub fn set(&self, unix_seconds: i64) {
        self.unix_seconds
            .store(unix_seconds, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        let s = self.unix_seconds.load(std::sync::atomic::Ordering::Relaxed);
        let d = std::time::Duration::from_secs(s.unsigned_abs());
        if s >= 0 {
            UNIX_EPOCH + d
        } else {
            UNIX_EPOCH - d
        }
    }
}

/// A deprecated path prefix (a route or a whole base path) and its sunset.
///
/// ```
/// use fhirwall::firewall::Sunset;
///
/// // Deprecated on 2025-01-01, gone on 2026-07-01, replaced by /fhir.
/// let sunset = Sunset::new("/fhir-v0", 1_735_689_600, 1_782_864_000).successor("/fhir");
/// assert_eq!(sunset.deprecation_header(), "@1735689600");
/// assert_eq!(sunset.sunset_header(), "Wed, 01 Jul 2026 00:00:00 GMT");
/// ```
#[derive(Clone, Debug)]
pub struct Sunset {
    pub(crate) prefix: String,
    sunset_at: i64,
    deprecation: HeaderValue,
    sunset: HeaderValue,
    link: Option<HeaderValue>,
}

impl Sunset {
    /// `prefix` (matched on segment boundaries) deprecated at `deprecated_at` and retired at
    /// `sunset_at` (both unix seconds).
    pub fn new(prefix: &str, deprecated_at: i64, sunset_at: i64) -> Self {
        Sunset {
            prefix: prefix.trim_end_matches('/').to_owned(),
            sunset_at,
            deprecation: header(&format!("@{deprecated_at}")),
            sunset: header(&http_date(sunset_at)),
            link: None,
        }
    }

    /// The successor's URL, sent as `Link: <url>; rel="successor-version"`.
    pub fn successor(mut self, url: &str) -> Self {
        // A URL that can't be a header value is left out rather than sent mangled.
        self.link = HeaderValue::from_str(&format!("<{url}>; rel=\"successor-version\"")).ok();
        self
    }

    /// The `Deprecation` header value.
    pub fn deprecation_header(&self) -> &str {
        self.deprecation.to_str().unwrap_or("")
    }

    /// The `Sunset` header value.
    pub fn sunset_header(&self) -> &str {
        self.sunset.to_str().unwrap_or("")
    }

    /// Whether the sunset has passed at `now`.
    pub fn is_past(&self, now: SystemTime) -> bool {
        unix(now) >= self.sunset_at
    }

    /// The prebuilt header values, for a response under the prefix.
    pub(crate) fn headers(&self) -> SunsetHeaders {
        SunsetHeaders {
            deprecation: self.deprecation.clone(),
            sunset: self.sunset.clone(),
            link: self.link.clone(),
        }
    }
}

/// `Deprecation`, `Sunset` and `Link` for one response, built once with the [`Sunset`].
pub(crate) struct SunsetHeaders {
    deprecation: HeaderValue,
    sunset: HeaderValue,
    link: Option<HeaderValue>,
}

impl SunsetHeaders {
    pub(crate) fn apply(self, headers: &mut http::HeaderMap) {
        headers.insert(DEPRECATION, self.deprecation);
        headers.insert(SUNSET, self.sunset);
        if let Some(link) = self.link {
            headers.append(http::header::LINK, link);
        }
    }
}

const DEPRECATION: http::HeaderName = http::HeaderName::from_static("deprecation");
const SUNSET: http::HeaderName = http::HeaderName::from_static("sunset");

pub(crate) fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

fn header(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("@0"))
}

/// RFC 9110 §5.6.7 IMF-fixdate.
fn http_date(unix_seconds: i64) -> String {
    jiff::Timestamp::from_second(unix_seconds)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8594_example_date() {
        // RFC 8594 §3: "Sunset: Sat, 31 Dec 2018 23:59:59 GMT"
        assert_eq!(http_date(1_546_300_799), "Mon, 31 Dec 2018 23:59:59 GMT");
    }

    #[test]
    fn fixed_clock_moves() {
        let c = FixedClock::at(10);
        assert_eq!(unix(c.now()), 10);
        c.set(-5);
        assert_eq!(unix(c.now()), -5);
    }
}
