//! What the identity layer decided, for the response extensions and the refusal body.

use super::policy::{MatchedBy, TrustedClient};
use crate::body::{full_response, FhirBody};
use crate::fhir::{IssueType, OperationOutcome};
use crate::net::CertificateThumbprint;
use http::{Response, StatusCode};

/// Where the client certificate of a request came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CertificateSource {
    /// The TLS handshake of this connection.
    Tls,
    /// Envoy's `x-forwarded-client-cert` from a trusted proxy.
    Xfcc,
    /// RFC 9440 `Client-Cert` (and `Client-Cert-Chain`) from a trusted proxy.
    ClientCertHeader,
    /// A URL-escaped PEM header (nginx `$ssl_client_escaped_cert`) from a trusted proxy.
    EscapedPem,
}

/// Why a request was refused, with the status and `OperationOutcome` code it gets.
///
/// | refusal | status | issue code |
/// |---|---|---|
/// | [`MissingCertificate`](Self::MissingCertificate) | 401 | `login` |
/// | [`MalformedHeader`](Self::MalformedHeader) | 400 | `structure` |
/// | [`UnreadableCertificate`](Self::UnreadableCertificate) | 401 | `unknown` |
/// | [`UntrustedIssuer`](Self::UntrustedIssuer) | 401 | `unknown` |
/// | [`Revoked`](Self::Revoked) | 401 | `unknown` |
/// | [`WrongKeyUsage`](Self::WrongKeyUsage) | 401 | `unknown` |
/// | [`Expired`](Self::Expired) | 401 | `expired` |
/// | [`NotYetValid`](Self::NotYetValid) | 401 | `unknown` |
/// | [`NotAllowed`](Self::NotAllowed) | 403 | `forbidden` |
///
/// 401 means "we could not establish who you are", 403 "we know who you are, and you are not
/// on the list". The body's text is the fixed sentence of [`message`](Self::message): nothing
/// from the certificate or the verifier's errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdentityRefusal {
    /// No client certificate: none in the TLS handshake, and (from a trusted proxy with
    /// forwarding on) no forwarded-certificate header.
    MissingCertificate,
    /// A forwarded-certificate header from a trusted proxy could not be parsed (bad syntax,
    /// too long, too many elements, a hash that doesn't match the certificate).
    MalformedHeader,
    /// The certificate is not a well-formed X.509 certificate.
    UnreadableCertificate,
    /// The chain does not lead to a configured client CA root, or a signature is bad.
    UntrustedIssuer,
    /// A configured CRL lists the certificate (or its revocation status is unknown while
    /// CRLs are required).
    Revoked,
    /// The key usages do not allow TLS client authentication (such as a `serverAuth`-only
    /// certificate).
    WrongKeyUsage,
    /// After `notAfter`.
    Expired,
    /// Before `notBefore`.
    NotYetValid,
    /// A verified certificate that no trust-policy rule matches.
    NotAllowed,
}

impl IdentityRefusal {
    /// The HTTP status of the refusal.
    pub const fn status(self) -> StatusCode {
        match self {
            IdentityRefusal::MalformedHeader => StatusCode::BAD_REQUEST,
            IdentityRefusal::NotAllowed => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The `OperationOutcome.issue.code`.
    pub const fn issue_type(self) -> IssueType {
        match self {
            IdentityRefusal::MissingCertificate => IssueType::Login,
            IdentityRefusal::MalformedHeader => IssueType::Structure,
            IdentityRefusal::Expired => IssueType::Expired,
            IdentityRefusal::NotAllowed => IssueType::Forbidden,
            IdentityRefusal::UnreadableCertificate
            | IdentityRefusal::UntrustedIssuer
            | IdentityRefusal::Revoked
            | IdentityRefusal::WrongKeyUsage
            | IdentityRefusal::NotYetValid => IssueType::Unknown,
        }
    }

    /// The fixed, client-safe sentence of the refusal.
    pub const fn message(self) -> &'static str {
        match self {
            IdentityRefusal::MissingCertificate => "a client certificate is required",
            IdentityRefusal::MalformedHeader => {
                "the forwarded client certificate header is malformed"
            }
            IdentityRefusal::UnreadableCertificate => "the client certificate could not be read",
            IdentityRefusal::UntrustedIssuer => {
                "the client certificate was not issued by a trusted certificate authority"
            }
            IdentityRefusal::Revoked => "the client certificate has been revoked",
            IdentityRefusal::WrongKeyUsage => {
                "the client certificate is not valid for TLS client authentication"
            }
            IdentityRefusal::Expired => "the client certificate has expired",
            IdentityRefusal::NotYetValid => "the client certificate is not valid yet",
            IdentityRefusal::NotAllowed => "this client is not allowed to use this server",
        }
    }

    /// The refusal as an `OperationOutcome` response.
    pub fn to_response<B>(self) -> Response<FhirBody<B>> {
        full_response(
            OperationOutcome::error(self.issue_type(), self.message()).into_response(self.status()),
        )
    }
}

/// The identity layer's decision, put on every response's extensions for the audit layer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityDecision {
    /// The request came from a trusted client.
    Allowed {
        /// The client, by its trust-policy name.
        client: TrustedClient,
        /// Which kind of rule recognised it.
        matched_by: MatchedBy,
        /// Where its certificate came from.
        source: CertificateSource,
        /// The certificate's SHA-256 thumbprint.
        thumbprint: CertificateThumbprint,
    },
    /// The request was refused before reaching the service.
    Refused {
        /// Why.
        reason: IdentityRefusal,
        /// Where the refused certificate came from, if there was one.
        source: Option<CertificateSource>,
        /// The refused certificate's thumbprint, when it could be read.
        thumbprint: Option<CertificateThumbprint>,
    },
}

impl IdentityDecision {
    /// The trusted client, if allowed.
    pub fn client(&self) -> Option<&TrustedClient> {
        match self {
            IdentityDecision::Allowed { client, .. } => Some(client),
            IdentityDecision::Refused { .. } => None,
        }
    }

    /// The refusal, if refused.
    pub fn refusal(&self) -> Option<IdentityRefusal> {
        match self {
            IdentityDecision::Allowed { .. } => None,
            IdentityDecision::Refused { reason, .. } => Some(*reason),
        }
    }
}
