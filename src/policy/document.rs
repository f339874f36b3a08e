//! The policy file's sections as plain serde data. Every table refuses unknown keys.
//!
//! The layers' own types are used where they are plain data already (the redaction
//! [`Rule`](crate::redact::Rule) and [`LabelRule`](crate::redact::LabelRule)); everything
//! else is checked while it is read ([`values`](super::values)) or when the layers are built.

use super::document_limits::{Audit, Budgets, Redaction, Validation};
use super::document_smart::{Authorization, SmartConfigurationSpec, Tokens};
use super::macros::{choice, item, section};
use super::values::{Cidr, HeaderNameText, HttpsUrl, InteractionCode, ResourceTypeName, Timestamp};
use serde::Deserialize;
use std::path::PathBuf;

section! {
    /// The whole policy file.
    pub struct PolicyDocument {
        /// The service being protected.
        #[serde(default)]
        pub service: Service,
        /// Address rules and trusted proxies.
        #[serde(default)]
        pub network: Network,
        /// TLS and security headers.
        #[serde(default)]
        pub transport: Transport,
        /// The declared routes (everything else is refused with 404) and sunsets.
        #[serde(default)]
        pub routes: Routes,
        /// Trusted mTLS clients (`[[clients]]`).
        #[serde(default)]
        pub clients: Vec<TrustedClientSpec>,
        /// Client certificates forwarded by a TLS-terminating proxy.
        #[serde(default)]
        pub forwarded_certificates: Option<ForwardedCertificatesSpec>,
        /// Network and time rules for SMART clients by `client_id` (`[[token_clients]]`).
        #[serde(default)]
        pub token_clients: Vec<TokenClientSpec>,
        /// The token issuer; absent, no SMART layer.
        #[serde(default)]
        pub tokens: Option<Tokens>,
        /// Authorization rules that are not in the token.
        #[serde(default)]
        pub authorization: Authorization,
        /// The published `.well-known/smart-configuration`.
        #[serde(default)]
        pub smart_configuration: Option<SmartConfigurationSpec>,
        /// Response redaction.
        #[serde(default)]
        pub redaction: Redaction,
        /// Per-client budgets.
        #[serde(default)]
        pub budgets: Budgets,
        /// Request validation limits.
        #[serde(default)]
        pub validation: Validation,
        /// Audit records.
        #[serde(default)]
        pub audit: Audit,
    }
}

section! {
    /// `[service]`.
    pub struct Service {
        /// The FHIR base path (default `/fhir`).
        #[serde(default)]
        pub base_path: Option<String>,
        /// The public absolute base URL (`https://fhir.example.org/r4`): the default token
        /// audience, a local base for compartment checks and references, and the CapabilityStatement's `url`.
        #[serde(default)]
        pub base_url: Option<HttpsUrl>,
        /// Allows a policy with neither `[[clients]]` nor `[tokens]`, so that anyone may call.
        /// Dangerous: the stack then authenticates no one.
        #[serde(default)]
        pub danger_no_authentication: bool,
    }
}

section! {
    /// `[network]`.
    pub struct Network {
        /// Proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed (default none).
        #[serde(default)]
        pub trusted_proxies: Vec<Cidr>,
        /// Client networks allowed outside the route groups (default: every address).
        #[serde(default)]
        pub allow: Vec<Cidr>,
        /// Networks refused even when `allow` matches.
        #[serde(default)]
        pub deny: Vec<Cidr>,
        /// Address rules per path prefix (`[[network.groups]]`); the longest prefix wins.
        #[serde(default)]
        pub groups: Vec<RouteGroupSpec>,
    }
}

item! {
    /// `[[network.groups]]`.
    pub struct RouteGroupSpec {
        /// The path prefix (`/admin`), on segment boundaries.
        pub prefix: String,
        /// Networks allowed (empty: every address).
        #[serde(default)]
        pub allow: Vec<Cidr>,
        /// Networks refused.
        #[serde(default)]
        pub deny: Vec<Cidr>,
    }
}

section! {
    /// `[transport]`.
    pub struct Transport {
        /// Refuse plain HTTP with 403 and send HSTS (default `true`).
        #[serde(default)]
        pub require_tls: Option<bool>,
        /// The `Strict-Transport-Security` value (default `max-age=31536000; includeSubDomains`).
        #[serde(default)]
        pub hsts: Option<String>,
        /// The `Referrer-Policy` value (default `no-referrer`).
        #[serde(default)]
        pub referrer_policy: Option<String>,
        /// Believes an `https` scheme in the request URI. Dangerous.
        #[serde(default)]
        pub danger_trust_uri_scheme: bool,
    }
}

section! {
    /// `[routes]`.
    pub struct Routes {
        /// A CapabilityStatement (R4 JSON) whose `server` entries declare the routes, relative
        /// to the policy file.
        #[serde(default)]
        pub capability_statement: Option<PathBuf>,
        /// Routes declared here, besides the CapabilityStatement's (`[[routes.resources]]`).
        #[serde(default)]
        pub resources: Vec<ResourceRoutes>,
        /// System interactions (`transaction`, `batch`, `search-system`, `history-system`).
        #[serde(default)]
        pub system_interactions: Vec<InteractionCode>,
        /// System-level operations, without `$`.
        #[serde(default)]
        pub system_operations: Vec<String>,
        /// Compartments whose searches are reachable (`Patient`).
        #[serde(default)]
        pub compartments: Vec<ResourceTypeName>,
        /// Non-FHIR routes: `"GET /health"`.
        #[serde(default)]
        pub extra: Vec<String>,
        /// Other base paths serving the same routes (`/fhir-v0`); give each a sunset.
        #[serde(default)]
        pub aliases: Vec<String>,
        /// Deprecated prefixes and their sunsets (`[[routes.sunsets]]`).
        #[serde(default)]
        pub sunsets: Vec<SunsetSpec>,
    }
}

item! {
    /// `[[routes.resources]]`.
    pub struct ResourceRoutes {
        /// The resource type.
        #[serde(rename = "type")]
        pub resource_type: ResourceTypeName,
        /// Its interactions.
        #[serde(default)]
        pub interactions: Vec<InteractionCode>,
        /// Its operations, without `$`.
        #[serde(default)]
        pub operations: Vec<String>,
    }
}

item! {
    /// `[[routes.sunsets]]` (RFC 8594 `Sunset`, RFC 9745 `Deprecation`).
    pub struct SunsetSpec {
        /// The deprecated prefix (`/fhir-v0`).
        pub prefix: String,
        /// When it was deprecated (RFC 3339).
        pub deprecated_at: Timestamp,
        /// When it stops answering (410 from then on).
        pub sunset_at: Timestamp,
        /// Its successor, for the `Link` header.
        #[serde(default)]
        pub successor: Option<String>,
    }
}

item! {
    /// `[[clients]]`: one trusted mTLS client and the certificates that are it.
    pub struct TrustedClientSpec {
        /// The client's name (budgets, audit, redaction and `client:<name>` rules use it).
        pub name: String,
        /// SHA-256 SPKI pins (hex, base64 or `sha256//...`).
        #[serde(default)]
        pub spki_pins: Vec<String>,
        /// SHA-256 certificate thumbprints (hex, or base64url `x5t#S256`).
        #[serde(default)]
        pub thumbprints: Vec<String>,
        /// SAN URIs, exact or ending in `/*` (one more segment).
        #[serde(default)]
        pub san_uris: Vec<String>,
        /// SAN DNS names, exact or `*.example.org` (one more label).
        #[serde(default)]
        pub san_dns: Vec<String>,
        /// SAN emails.
        #[serde(default)]
        pub san_emails: Vec<String>,
        /// Subject DNs (RFC 4514, `CN=lab,O=Example`).
        #[serde(default)]
        pub subjects: Vec<String>,
        /// Issuer DNs: any certificate issued by this CA.
        #[serde(default)]
        pub issuers: Vec<String>,
        /// Issuing CA certificates (PEM files, relative to the policy file).
        #[serde(default)]
        pub issued_by: Vec<PathBuf>,
        /// `true`: a certificate must match every rule above at once (such as an issuer and a
        /// DNS name); `false` (default): any one of them.
        #[serde(default)]
        pub match_all: bool,
        /// Networks the client may call from (default: any).
        #[serde(default)]
        pub networks: Vec<Cidr>,
        /// Times the client may call (default: any).
        #[serde(default)]
        pub windows: Vec<WindowSpec>,
    }
}

item! {
    /// `[[token_clients]]`: rules for a SMART client by its token's `client_id`.
    pub struct TokenClientSpec {
        /// The token's `client_id`.
        pub client_id: String,
        /// Networks the client may call from.
        #[serde(default)]
        pub networks: Vec<Cidr>,
        /// Times the client may call.
        #[serde(default)]
        pub windows: Vec<WindowSpec>,
    }
}

item! {
    /// An access window: `{ tz = "Europe/Berlin", days = "Mon-Fri", hours = "08:00-18:00" }`.
    pub struct WindowSpec {
        /// The IANA time zone.
        pub tz: String,
        /// Days (`Mon-Fri`, `Sat,Sun`).
        pub days: String,
        /// Hours (`08:00-18:00`; `22:00-06:00` runs past midnight).
        pub hours: String,
        /// Not before (RFC 3339).
        #[serde(default)]
        pub valid_from: Option<Timestamp>,
        /// Not from (RFC 3339).
        #[serde(default)]
        pub valid_until: Option<Timestamp>,
    }
}

choice! {
    /// The forwarded-certificate header format.
    pub enum ForwardedFormatName {
        /// Envoy `x-forwarded-client-cert`.
        #[default]
        Xfcc,
        /// RFC 9440 `Client-Cert`.
        ClientCert,
        /// nginx URL-escaped PEM.
        EscapedPem,
    }
}

item! {
    /// `[forwarded_certificates]` (feature `rustls`: chains are verified again with webpki).
    pub struct ForwardedCertificatesSpec {
        /// The proxies whose header is believed.
        pub proxies: Vec<Cidr>,
        /// The header format.
        #[serde(default)]
        pub format: ForwardedFormatName,
        /// The client CA roots (PEM file, relative to the policy file).
        pub client_ca_file: PathBuf,
        /// CRLs (PEM files).
        #[serde(default)]
        pub crl_files: Vec<PathBuf>,
        /// The header of `escaped_pem` (default `ssl-client-cert`).
        #[serde(default)]
        pub header: Option<HeaderNameText>,
        /// Verified certificates remembered (default 1024; 0: off).
        #[serde(default)]
        pub cache_capacity: Option<usize>,
    }
}
