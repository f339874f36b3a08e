//! The security headers the edge firewall sets on every response it passes or refuses.

use super::sunset::SunsetHeaders;
use super::transport::{strip_server_headers, ResponseHeads, TransportPolicy};
use http::{HeaderMap, HeaderValue};
use std::sync::Arc;

/// The `Referrer-Policy` and HSTS values of a [`TransportPolicy`] that sets either to something
/// other than the default.
#[derive(Debug)]
pub(super) struct CustomValues {
    referrer_policy: HeaderValue,
    hsts: HeaderValue,
}

impl CustomValues {
    /// `None` when the values the responses get are the defaults (HSTS counts only when TLS
    /// is required, since it is sent only then).
    pub(super) fn of(t: &TransportPolicy) -> Option<Arc<Self>> {
        let default = |v: &HeaderValue, d: &HeaderValue| v == d && !v.is_sensitive();
        let custom = !default(&t.referrer_policy, &DEFAULT_REFERRER_POLICY)
            || (t.require_tls && !default(&t.hsts, &DEFAULT_HSTS));
        custom.then(|| {
            Arc::new(CustomValues {
                referrer_policy: t.referrer_policy.clone(),
                hsts: t.hsts.clone(),
            })
        })
    }
}

/// The headers an edge firewall sets on a response, decided when the request is judged.
///
/// It stays a few words (it is moved with the response future several times on its way to
/// the executor): the default values are constants, so the usual configuration carries only
/// the HSTS flag; custom values share one `Arc` built with the layer.
pub(super) struct EdgeHeaders {
    /// `None`: the default values.
    pub(super) custom: Option<Arc<CustomValues>>,
    /// Whether HSTS is sent (TLS required, and not on a plain-HTTP refusal).
    pub(super) hsts: bool,
    /// Under a deprecated prefix; boxed for the rare deprecated route.
    pub(super) sunset: Option<Box<SunsetHeaders>>,
}

impl EdgeHeaders {
    /// The security headers, with the modes the tower-http layers had: `Cache-Control:
    /// no-store` on PHI and `Referrer-Policy` only when the service set none,
    /// `X-Content-Type-Options` and HSTS always (replacing the service's).
    #[inline]
    pub(super) fn apply(self, headers: &mut HeaderMap) {
        use http::header::{
            CACHE_CONTROL, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS,
        };
        let heads = ResponseHeads::scan(headers);
        if heads.names_server {
            strip_server_headers(headers);
        }
        if let Some(sunset) = self.sunset {
            sunset.apply(headers);
        }
        // Known absent, so appended without looking again.
        if heads.phi && !heads.cache_control {
            headers.append(CACHE_CONTROL, NO_STORE);
        }
        if !heads.referrer_policy {
            let value = match &self.custom {
                Some(c) => c.referrer_policy.clone(),
                None => DEFAULT_REFERRER_POLICY,
            };
            headers.append(REFERRER_POLICY, value);
        }
        if heads.nosniff {
            headers.insert(X_CONTENT_TYPE_OPTIONS, NOSNIFF);
        } else {
            headers.append(X_CONTENT_TYPE_OPTIONS, NOSNIFF);
        }
        if self.hsts {
            let value = match &self.custom {
                Some(c) => c.hsts.clone(),
                None => DEFAULT_HSTS,
            };
            headers.insert(STRICT_TRANSPORT_SECURITY, value);
        }
    }
}

// Constants, so no response pays for checking their bytes again (`from_static` in a `const`
// is evaluated by the compiler).
/// [`TransportPolicy`]'s default `Referrer-Policy`.
const DEFAULT_REFERRER_POLICY: HeaderValue = HeaderValue::from_static("no-referrer");
/// [`TransportPolicy`]'s default `Strict-Transport-Security`.
const DEFAULT_HSTS: HeaderValue = HeaderValue::from_static("max-age=31536000; includeSubDomains");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{CACHE_CONTROL, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY};

    fn applied(t: &TransportPolicy, hsts: bool) -> HeaderMap {
        let mut headers = HeaderMap::new();
        EdgeHeaders {
            custom: CustomValues::of(t),
            hsts,
            sunset: None,
        }
        .apply(&mut headers);
        headers
    }

    #[test]
    fn defaults_carry_no_values() {
        assert!(CustomValues::of(&TransportPolicy::default()).is_none());
        assert!(CustomValues::of(&TransportPolicy::default().require_tls()).is_none());
        // HSTS is only sent with TLS required, so a custom one alone changes nothing.
        let hsts = HeaderValue::from_static("max-age=60");
        assert!(CustomValues::of(&TransportPolicy::default().hsts(hsts.clone())).is_none());
        assert!(CustomValues::of(&TransportPolicy::default().require_tls().hsts(hsts)).is_some());
    }

    #[test]
    fn default_and_custom_values_are_sent() {
        // RFC 6797 §6.1 (HSTS), W3C Referrer Policy §4.1, RFC 9111 §5.2.2.5 (no-store).
        let h = applied(&TransportPolicy::default().require_tls(), true);
        assert_eq!(h[REFERRER_POLICY], "no-referrer");
        assert_eq!(
            h[STRICT_TRANSPORT_SECURITY],
            "max-age=31536000; includeSubDomains"
        );
        assert_eq!(h[CACHE_CONTROL], "no-store");
        assert_eq!(h["x-content-type-options"], "nosniff");
        let custom = TransportPolicy::default()
            .require_tls()
            .hsts(HeaderValue::from_static("max-age=60"))
            .referrer_policy(HeaderValue::from_static("same-origin"));
        let h = applied(&custom, true);
        assert_eq!(h[REFERRER_POLICY], "same-origin");
        assert_eq!(h[STRICT_TRANSPORT_SECURITY], "max-age=60");
        let h = applied(&custom, false);
        assert!(!h.contains_key(STRICT_TRANSPORT_SECURITY));
    }
}
