//! Upstream mode: forward every request under the base path to an existing FHIR server.

use crate::response::Failure;
use crate::routes::{normalize_base_path, strip_base};
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use axum::Router;
use fhirwall::fhir::IssueType;
use http::header::{HeaderName, HeaderValue, CONNECTION, HOST};
use http::uri::{Authority, Scheme};
use http::{HeaderMap, StatusCode, Uri, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Why the upstream proxy can't start.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyError {
    /// The upstream is not an absolute `http://host[:port][/path]` URL.
    InvalidUrl(String),
    /// The upstream is `https://`: TLS upstreams come with fhirwall's `mtls` feature.
    TlsUnsupported,
    /// The upstream uses a scheme other than `http`.
    UnsupportedScheme(String),
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::InvalidUrl(url) => write!(
                f,
                "the upstream {url:?} is not an absolute http://host[:port][/path] URL"
            ),
            ProxyError::TlsUnsupported => f.write_str(
                "https:// upstreams are not supported yet: TLS upstreams come with fhirwall's \
                 mtls feature; use an http:// upstream for now",
            ),
            ProxyError::UnsupportedScheme(s) => {
                write!(
                    f,
                    "the upstream scheme {s:?} is not supported (use http://)"
                )
            }
        }
    }
}

impl std::error::Error for ProxyError {}

/// Upstream proxy settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    /// The upstream FHIR base URL, e.g. `http://10.0.0.5:8080/fhir`.
    pub upstream: String,
    /// The local path prefix to forward (default `/fhir`); it is replaced by the upstream's path.
    pub base_path: String,
    /// How long to wait for the upstream's response head (default 30 s): 504 after that.
    pub timeout: Duration,
}

impl ProxyConfig {
    /// Forward `base_path` to `upstream` with the default 30 s timeout.
    pub fn new(upstream: impl Into<String>, base_path: impl Into<String>) -> Self {
        ProxyConfig {
            upstream: upstream.into(),
            base_path: base_path.into(),
            timeout: Duration::from_secs(30),
        }
    }

    /// The proxy as an axum router.
    pub fn router(self) -> Result<Router, ProxyError> {
        let uri: Uri = self
            .upstream
            .parse()
            .map_err(|_| ProxyError::InvalidUrl(self.upstream.clone()))?;
        match uri.scheme() {
            Some(s) if *s == Scheme::HTTP => {}
            Some(s) if *s == Scheme::HTTPS => return Err(ProxyError::TlsUnsupported),
            Some(s) => return Err(ProxyError::UnsupportedScheme(s.to_string())),
            None => return Err(ProxyError::InvalidUrl(self.upstream.clone())),
        }
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty() && !a.as_str().contains('@'))
            .cloned()
            .ok_or_else(|| ProxyError::InvalidUrl(self.upstream.clone()))?;
        if uri.query().is_some() {
            return Err(ProxyError::InvalidUrl(self.upstream.clone()));
        }
        let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
        let proxy = Proxy {
            client,
            authority,
            upstream_path: uri.path().trim_end_matches('/').to_owned(),
            base_path: normalize_base_path(&self.base_path),
            timeout: self.timeout,
        };
        Ok(Router::new().fallback(forward).with_state(Arc::new(proxy)))
    }
}

/// A router forwarding every request under `base_path` to the FHIR server at `upstream`
/// (`http://host[:port][/path]`), with a 30 s timeout.
///
/// The request path's `base_path` prefix is replaced by the upstream's path, hop-by-hop
/// headers are dropped both ways, and `X-Forwarded-For`, `X-Forwarded-Proto`,
/// `X-Forwarded-Host` and `Forwarded` are added (the client address needs
/// `into_make_service_with_connect_info::<SocketAddr>()`). An unreachable upstream answers
/// 502, a slow one 504, both as `OperationOutcome`s. Response bodies are streamed unchanged,
/// so absolute URLs in them still name the upstream.
///
/// `https://` upstreams are refused: TLS upstreams come with fhirwall's `mtls` feature.
pub fn upstream_router(upstream: &str, base_path: &str) -> Result<Router, ProxyError> {
    ProxyConfig::new(upstream, base_path).router()
}

struct Proxy {
    client: Client<HttpConnector, Body>,
    authority: Authority,
    upstream_path: String,
    base_path: String,
    timeout: Duration,
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Drops hop-by-hop headers, including the ones `Connection` names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

fn append(headers: &mut HeaderMap, name: &'static str, value: String) {
    let previous = headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let value = match previous {
        Some(previous) if !previous.trim().is_empty() => format!("{previous}, {value}"),
        _ => value,
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(name, value);
    }
}

fn add_forwarding(headers: &mut HeaderMap, client: Option<SocketAddr>, host: Option<String>) {
    let mut forwarded = Vec::new();
    if let Some(addr) = client {
        let ip = addr.ip();
        append(headers, "x-forwarded-for", ip.to_string());
        forwarded.push(if ip.is_ipv6() {
            format!("for=\"[{ip}]\"")
        } else {
            format!("for={ip}")
        });
    }
    forwarded.push("proto=http".to_owned());
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Some(host) = host.filter(|h| h.bytes().all(|b| b.is_ascii_graphic())) {
        forwarded.push(format!("host=\"{}\"", host.replace('"', "")));
        if let Ok(value) = HeaderValue::from_str(&host) {
            headers.insert("x-forwarded-host", value);
        }
    }
    append(headers, "forwarded", forwarded.join(";"));
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: axum::extract::Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let Some(rest) = strip_base(parts.uri.path(), &proxy.base_path) else {
        return Failure::not_found("this gateway only forwards its FHIR base path").into_response();
    };
    let mut path = format!("{}{rest}", proxy.upstream_path);
    if path.is_empty() {
        path.push('/');
    }
    if let Some(query) = parts.uri.query() {
        path.push('?');
        path.push_str(query);
    }
    let uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(proxy.authority.clone())
        .path_and_query(path)
        .build();
    let Ok(uri) = uri else {
        return Failure::invalid("the request URL can't be forwarded").into_response();
    };
    let client = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let host = parts
        .headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()));
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(HOST);
    add_forwarding(&mut parts.headers, client, host);
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    let upstream = http::Request::from_parts(parts, body);
    match tokio::time::timeout(proxy.timeout, proxy.client.request(upstream)).await {
        Err(_) => Failure::new(
            StatusCode::GATEWAY_TIMEOUT,
            IssueType::Timeout,
            "the upstream FHIR server did not answer in time",
        )
        .into_response(),
        Ok(Err(_)) => Failure::new(
            StatusCode::BAD_GATEWAY,
            IssueType::Transient,
            "the upstream FHIR server could not be reached",
        )
        .into_response(),
        Ok(Ok(response)) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_upstreams() {
        let err = |u: &str| upstream_router(u, "/fhir").err();
        assert_eq!(
            err("https://example.org/fhir"),
            Some(ProxyError::TlsUnsupported)
        );
        assert!(err("https://example.org/fhir")
            .unwrap()
            .to_string()
            .contains("mtls"));
        assert!(matches!(
            err("ftp://example.org"),
            Some(ProxyError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            err("example.org/fhir"),
            Some(ProxyError::InvalidUrl(_))
        ));
        assert!(matches!(
            err("http://example.org/fhir?x=1"),
            Some(ProxyError::InvalidUrl(_))
        ));
    }

    #[test]
    fn hop_by_hop_and_forwarding() {
        let mut h = HeaderMap::new();
        h.insert(
            CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.insert("authorization", HeaderValue::from_static("Bearer t"));
        strip_hop_by_hop(&mut h);
        assert!(h.get("x-secret-hop").is_none() && h.get(CONNECTION).is_none());
        assert!(h.get("authorization").is_some());
        add_forwarding(
            &mut h,
            Some(([192, 0, 2, 7], 4000).into()),
            Some("gw:8080".into()),
        );
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["forwarded"], "for=192.0.2.7;proto=http;host=\"gw:8080\"");
    }
}
