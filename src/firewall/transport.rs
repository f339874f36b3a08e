//! Transport rules: TLS only, and the usual API security headers.
//!
//! Whether a request came over TLS is decided from the connection: a [`TlsConnection`] marker
//! (or, with the `mtls` feature, the peer certificates fhirwall's TLS server records), and
//! `X-Forwarded-Proto` only when the TCP peer is one of the [`TrustedProxies`]. The URI's own
//! scheme is chosen by the client (HTTP/1.1 absolute-form, HTTP/2 `:scheme`) even on a plain
//! connection, so it is believed only with [`danger_trust_uri_scheme`](TransportPolicy::danger_trust_uri_scheme).
//!
//! The firewall sets the headers itself, in one pass over each response (see
//! [`SecurityHeaders`](super::SecurityHeaders)), and removes the server-identifying ones;
//! [`PhiNoStore`] is the `Cache-Control` rule as a tower-http `MakeHeaderValue`, for services
//! that set headers with tower-http themselves.

use crate::net::TrustedProxies;
use http::{Extensions, HeaderMap, HeaderName, HeaderValue, Response, Uri};
use std::net::IpAddr;
use tower_http::set_header::MakeHeaderValue;

/// Put this in a request's extensions (from your server's accept loop) when the connection is
/// TLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsConnection;

/// How requests must arrive, and the security headers responses get.
///
/// Defaults: TLS not required; `Strict-Transport-Security: max-age=31536000;
/// includeSubDomains` once TLS is required; `X-Content-Type-Options: nosniff`;
/// `Referrer-Policy: no-referrer`; `Cache-Control: no-store` on FHIR and JSON responses (they
/// may carry PHI) that don't set their own; `Server` and `X-Powered-By` removed.
#[derive(Clone, Debug)]
pub struct TransportPolicy {
    pub(crate) require_tls: bool,
    trust_uri_scheme: bool,
    pub(crate) hsts: HeaderValue,
    pub(crate) referrer_policy: HeaderValue,
}

impl Default for TransportPolicy {
    fn default() -> Self {
        TransportPolicy {
            require_tls: false,
            trust_uri_scheme: false,
            hsts: HeaderValue::from_static("max-age=31536000; includeSubDomains"),
            referrer_policy: HeaderValue::from_static("no-referrer"),
        }
    }
}

impl TransportPolicy {
    /// Refuses plain HTTP (403) and sends HSTS.
    pub fn require_tls(mut self) -> Self {
        self.require_tls = true;
        self
    }

    /// Believes an `https` scheme in the request URI. Only safe when nothing in front can
    /// accept plain-text HTTP/2 or absolute-form requests from clients.
    pub fn danger_trust_uri_scheme(mut self) -> Self {
        self.trust_uri_scheme = true;
        self
    }

    /// The `Strict-Transport-Security` value (RFC 6797 §6.1).
    pub fn hsts(mut self, value: HeaderValue) -> Self {
        self.hsts = value;
        self
    }

    /// The `Referrer-Policy` value.
    pub fn referrer_policy(mut self, value: HeaderValue) -> Self {
        self.referrer_policy = value;
        self
    }

    /// Whether the request arrived over TLS.
    pub(crate) fn is_tls(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        extensions: &Extensions,
        peer: Option<IpAddr>,
        proxies: &TrustedProxies,
    ) -> bool {
        if extensions.get::<TlsConnection>().is_some() {
            return true;
        }
        #[cfg(feature = "mtls")]
        if extensions
            .get::<crate::identity::PeerCertificates>()
            .is_some()
        {
            return true;
        }
        if self.trust_uri_scheme && uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
            return true;
        }
        match peer {
            // The nearest proxy's word is the last value it wrote.
            Some(ip) if proxies.is_trusted(ip) => headers
                .get_all("x-forwarded-proto")
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("https")),
            _ => false,
        }
    }
}

/// `Cache-Control: no-store` for responses that may carry PHI: FHIR and JSON bodies, and
/// responses without a content type (a refusal or an empty answer still says something).
#[derive(Clone, Copy, Debug, Default)]
pub struct PhiNoStore {
    /// Whether to set the header at all.
    pub enabled: bool,
}

impl<B> MakeHeaderValue<Response<B>> for PhiNoStore {
    fn make_header_value(&mut self, response: &Response<B>) -> Option<HeaderValue> {
        if !self.enabled {
            return None;
        }
        is_phi(response.headers()).then(|| HeaderValue::from_static("no-store"))
    }
}

/// Whether a response may carry PHI: FHIR or JSON (NDJSON too) content, or no content type.
pub(crate) fn is_phi(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_none_or(|ct| is_phi_type(ct.as_bytes()))
}

/// What the security headers depend on in a response's headers, found in one pass over the
/// few names a response has (cheaper than a hash lookup per question).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ResponseHeads {
    /// `Server`, `X-Powered-By` or `X-AspNet-Version` is present.
    pub(crate) names_server: bool,
    /// The response may carry PHI (see [`is_phi`]).
    pub(crate) phi: bool,
    /// `Cache-Control` is present.
    pub(crate) cache_control: bool,
    /// `Referrer-Policy` is present.
    pub(crate) referrer_policy: bool,
    /// `X-Content-Type-Options` is present.
    pub(crate) nosniff: bool,
}

// Names as constants: a `&str` name would be parsed again on every response.
const X_POWERED_BY: HeaderName = HeaderName::from_static("x-powered-by");
const X_ASPNET_VERSION: HeaderName = HeaderName::from_static("x-aspnet-version");

impl ResponseHeads {
    #[inline]
    pub(crate) fn scan(headers: &HeaderMap) -> Self {
        use http::header::{
            CACHE_CONTROL, CONTENT_TYPE, REFERRER_POLICY, SERVER, X_CONTENT_TYPE_OPTIONS,
        };
        let mut heads = ResponseHeads {
            phi: true,
            ..ResponseHeads::default()
        };
        let mut seen_content_type = false;
        for (name, value) in headers {
            if name == CONTENT_TYPE {
                // The first value decides, as `HeaderMap::get` would.
                if !seen_content_type {
                    heads.phi = is_phi_type(value.as_bytes());
                    seen_content_type = true;
                }
            } else if name == CACHE_CONTROL {
                heads.cache_control = true;
            } else if name == REFERRER_POLICY {
                heads.referrer_policy = true;
            } else if name == X_CONTENT_TYPE_OPTIONS {
                heads.nosniff = true;
            } else if name == SERVER || name == X_POWERED_BY || name == X_ASPNET_VERSION {
                heads.names_server = true;
            }
        }
        heads
    }
}

#[inline]
fn is_phi_type(ct: &[u8]) -> bool {
    ct.starts_with(b"application/fhir")
        || ct.starts_with(b"application/json")
        || ct.starts_with(b"application/x-ndjson")
        || ct.starts_with(b"application/ndjson")
}

/// Removes headers that name the server software.
pub(crate) fn strip_server_headers(headers: &mut HeaderMap) {
    headers.remove(http::header::SERVER);
    headers.remove(X_POWERED_BY);
    headers.remove(X_ASPNET_VERSION);
}
