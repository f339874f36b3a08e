//! Serving a tower or axum service over rustls with each request carrying its connection's
//! peer certificates (feature `rustls`).

use super::peer::{ConnectionIdentity, WithConnectionIdentity};
use crate::body::BoxError;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

/// The default [`TlsServer::handshake_timeout`]: 10 seconds.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The default [`TlsServer::header_read_timeout`]: 30 seconds.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The default [`TlsServer::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Serves a service over TLS (HTTP/1.1 and HTTP/2 by ALPN) with per-connection identity.
///
/// Each accepted connection gets its own task, so a slow or stalled handshake never holds up
/// the accept loop; a handshake that takes longer than
/// [`handshake_timeout`](Self::handshake_timeout) is dropped. After the handshake the leaf
/// certificate is parsed once into a [`ClientIdentity`](super::ClientIdentity), and every
/// request on the connection gets [`RemoteAddr`](crate::net::RemoteAddr),
/// [`PeerCertificates`](super::PeerCertificates), `Arc<ClientIdentity>` and
/// [`CertificateThumbprint`](crate::net::CertificateThumbprint) in its extensions.
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use fhirwall::identity::{ClientCaRoots, ClientMatch, ServerTlsConfig, TlsServer, TrustPolicy, TrustedClientLayer};
/// use tower_layer::Layer;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ServerTlsConfig::new()
///     .server_certificate_pem_files("server.pem", "server.key")?
///     .client_ca_roots(ClientCaRoots::from_pem_file("client-ca.pem")?)
///     .build()?;
/// let policy = TrustPolicy::builder()
///     .allow("lab", ClientMatch::san_uri("spiffe://lab.example/ingest")?)
///     .build()?;
/// let app = Router::new().route("/fhir/metadata", get(|| async { "{}" }));
/// let service = TrustedClientLayer::new(policy).layer(app);
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
/// TlsServer::new(config).serve(listener, service).await;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct TlsServer {
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
    header_read_timeout: Duration,
    max_connections: usize,
}

impl TlsServer {
    /// A server with this TLS configuration (see [`ServerTlsConfig`](super::ServerTlsConfig)).
    pub fn new(config: Arc<ServerConfig>) -> Self {
        TlsServer {
            config,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// How long a TLS handshake may take (default [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// How long an HTTP/1.1 client may take to send a request's headers (default
    /// [`DEFAULT_HEADER_READ_TIMEOUT`]).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// The most connections open at once, handshakes included (default
    /// [`DEFAULT_MAX_CONNECTIONS`]); when reached, accepting waits for one to close.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Serves until the process ends.
    pub async fn serve<S, B>(self, listener: TcpListener, service: S)
    where
        S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        self.serve_with_shutdown(listener, service, std::future::pending())
            .await;
    }

    /// Serves until `shutdown` completes, then stops accepting. Connections already open run
    /// to their end in their own tasks.
    pub async fn serve_with_shutdown<S, B, F>(self, listener: TcpListener, service: S, shutdown: F)
    where
        S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
        F: Future<Output = ()>,
    {
        let acceptor = TlsAcceptor::from(self.config.clone());
        let slots = Arc::new(Semaphore::new(self.max_connections));
        let mut http = auto::Builder::new(TokioExecutor::new());
        http.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        http.http2().timer(TokioTimer::new());
        let http = Arc::new(http);
        tokio::pin!(shutdown);
        loop {
            let slot = tokio::select! {
                () = &mut shutdown => return,
                slot = slots.clone().acquire_owned() => slot,
            };
            let Ok(slot) = slot else { return };
            let accepted = tokio::select! {
                () = &mut shutdown => return,
                accepted = listener.accept() => accepted,
            };
            let (tcp, remote) = match accepted {
                Ok(pair) => pair,
                Err(_) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Latency matters more than packet count for request/response traffic.
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let service = service.clone();
            let http = http.clone();
            let handshake_timeout = self.handshake_timeout;
            tokio::spawn(async move {
                let _slot = slot;
                let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await
                {
                    Ok(Ok(tls)) => tls,
                    // A failed handshake has already sent its alert; a slow one is dropped.
                    _ => return,
                };
                let connection = Arc::new(ConnectionIdentity::new(
                    Some(remote),
                    tls.get_ref().1.peer_certificates(),
                ));
                let service =
                    TowerToHyperService::new(WithConnectionIdentity::new(service, connection));
                let _ = http
                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                    .await;
            });
        }
    }
}
