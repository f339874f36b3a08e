//! Per-connection facts (peer address, certificate chain, parsed identity) and the service
//! that copies them into every request of the connection.

use super::client::ClientIdentity;
use crate::net::{CertificateThumbprint, RemoteAddr};
use http::{Extensions, Request};
use rustls_pki_types::CertificateDer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_service::Service;

/// The certificate chain the client presented in the TLS handshake, leaf first, as the TLS
/// stack verified it. Put in the request extensions by fhirwall's TLS server (or by
/// [`ConnectionIdentity::insert_into`] from your own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCertificates {
    chain: Arc<[CertificateDer<'static>]>,
}

impl PeerCertificates {
    /// A chain, leaf first; `None` when it is empty.
    pub fn new(chain: Vec<CertificateDer<'static>>) -> Option<Self> {
        if chain.is_empty() {
            None
        } else {
            Some(PeerCertificates {
                chain: chain.into(),
            })
        }
    }

    /// The client's own (leaf) certificate.
    pub fn leaf(&self) -> Option<&CertificateDer<'static>> {
        self.chain.first()
    }

    /// The intermediates the client sent after its leaf.
    pub fn intermediates(&self) -> &[CertificateDer<'static>] {
        self.chain.get(1..).unwrap_or_default()
    }

    /// The whole chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }
}

/// Everything known about one connection, computed once when it is accepted: the peer
/// address, the client's certificate chain, and the leaf parsed into a [`ClientIdentity`].
///
/// [`insert_into`](Self::insert_into) copies it into a request's extensions as
/// [`RemoteAddr`], [`PeerCertificates`], `Arc<ClientIdentity>` and
/// [`CertificateThumbprint`]: reference-count increments, no parsing.
#[derive(Clone, Debug, Default)]
pub struct ConnectionIdentity {
    remote: Option<SocketAddr>,
    peer: Option<PeerCertificates>,
    identity: Option<Arc<ClientIdentity>>,
}

impl ConnectionIdentity {
    /// The facts of a connection from `remote` whose TLS stack verified `chain` (leaf first;
    /// `None` or empty when the client sent no certificate).
    ///
    /// A leaf that can't be parsed leaves [`identity`](Self::identity) empty; the identity
    /// layer then tries again and refuses the request as unreadable.
    pub fn new(remote: Option<SocketAddr>, chain: Option<&[CertificateDer<'_>]>) -> Self {
        let peer = chain.and_then(|c| {
            PeerCertificates::new(c.iter().map(|d| d.clone().into_owned()).collect())
        });
        let identity = peer
            .as_ref()
            .and_then(PeerCertificates::leaf)
            .and_then(|leaf| ClientIdentity::from_der(leaf).ok())
            .map(Arc::new);
        ConnectionIdentity {
            remote,
            peer,
            identity,
        }
    }

    /// The peer address.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// The client's certificate chain.
    pub fn peer_certificates(&self) -> Option<&PeerCertificates> {
        self.peer.as_ref()
    }

    /// The parsed leaf.
    pub fn identity(&self) -> Option<&Arc<ClientIdentity>> {
        self.identity.as_ref()
    }

    /// Copies the connection's facts into a request's extensions.
    pub fn insert_into(&self, extensions: &mut Extensions) {
        if let Some(remote) = self.remote {
            extensions.insert(RemoteAddr(remote));
        }
        if let Some(peer) = &self.peer {
            extensions.insert(peer.clone());
        }
        if let Some(identity) = &self.identity {
            extensions.insert(identity.thumbprint());
            extensions.insert(identity.clone());
        }
    }
}

/// A service that puts one connection's [`ConnectionIdentity`] into each of its requests.
///
/// fhirwall's `TlsServer` (feature `rustls`) wraps your service in it for every connection.
/// With another server (axum-server, your own accept loop) build a [`ConnectionIdentity`] from
/// the rustls connection after the handshake and wrap the per-connection service the same way:
///
/// ```
/// use fhirwall::identity::{ConnectionIdentity, WithConnectionIdentity};
/// use std::sync::Arc;
///
/// # fn per_connection<S>(service: S, remote: std::net::SocketAddr,
/// #     chain: Option<&[rustls_pki_types::CertificateDer<'static>]>) -> WithConnectionIdentity<S> {
/// // `chain` is `tls_stream.get_ref().1.peer_certificates()` from tokio-rustls.
/// let connection = Arc::new(ConnectionIdentity::new(Some(remote), chain));
/// WithConnectionIdentity::new(service, connection)
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct WithConnectionIdentity<S> {
    inner: S,
    connection: Arc<ConnectionIdentity>,
}

impl<S> WithConnectionIdentity<S> {
    /// Wraps `inner` for one connection.
    pub fn new(inner: S, connection: Arc<ConnectionIdentity>) -> Self {
        WithConnectionIdentity { inner, connection }
    }

    /// The connection's facts.
    pub fn connection(&self) -> &ConnectionIdentity {
        &self.connection
    }
}

impl<S, B> Service<Request<B>> for WithConnectionIdentity<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        self.connection.insert_into(request.extensions_mut());
        self.inner.call(request)
    }
}

/// The thumbprint of a DER certificate.
pub(crate) fn thumbprint_of(der: &[u8]) -> CertificateThumbprint {
    use sha2::{Digest, Sha256};
    CertificateThumbprint(Sha256::digest(der).into())
}
