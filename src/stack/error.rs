//! [`StackError`]: the contradictions [`FhirwallBuilder::build`](super::FhirwallBuilder::build)
//! refuses, so that they are found at start-up rather than as a hole at run time.

/// A stack configuration that contradicts itself. Each message says what to change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// No layer was added: the stack would only classify requests.
    #[error(
        "the fhirwall stack has no protection: add at least one layer (audit, firewall, \
         identity, smart, budgets, validate or redact) before build()"
    )]
    NoLayers,

    /// RFC 8705 certificate-bound tokens are required, but nothing establishes the client
    /// certificate, so every token would be refused.
    #[cfg(feature = "smart")]
    #[error(
        "certificate-bound tokens are required (RFC 8705, CertificateBinding::Required) but the \
         stack has no identity layer to establish the client certificate: add \
         .identity(TrustedClientLayer) (mutual TLS or forwarded certificates), or use \
         CertificateBinding::WhenPresent"
    )]
    BoundTokensWithoutIdentity,

    /// Certificate binding is switched off although clients present certificates: a stolen
    /// certificate-bound token would be accepted from any client.
    #[cfg(all(feature = "smart", feature = "mtls"))]
    #[error(
        "certificate binding is Off but the stack has an identity layer (mutual TLS): a token \
         bound to one client's certificate (RFC 8705 cnf.x5t#S256) would be accepted from \
         another; use CertificateBinding::WhenPresent (the default) or Required"
    )]
    BindingOffWithIdentity,

    /// A certificate binding mode was given, but there is no SMART layer to apply it to.
    #[cfg(feature = "smart")]
    #[error(
        "certificate_binding(..) was set but the stack has no smart layer to apply it to: add \
         .smart(SmartLayer) or remove .certificate_binding(..)"
    )]
    BindingWithoutSmart,

    /// The firewall's route inventory declares nothing but `metadata`, so it would refuse
    /// every FHIR request.
    #[cfg(feature = "firewall")]
    #[error(
        "the firewall's route inventory declares no FHIR interaction besides metadata, so every \
         request would be refused as an undeclared route: declare what the server serves \
         (RouteInventory::declare, ::operation, ::compartment, or \
         ::from_capability_statement)"
    )]
    EmptyRouteInventory,

    /// The firewall's route inventory is for another FHIR base than the stack's classifier.
    #[cfg(feature = "firewall")]
    #[error(
        "the firewall's route inventory does not serve the stack's FHIR base {base:?}: build \
         the RouteInventory with the same base path as FhirwallBuilder::classifier (default \
         /fhir)"
    )]
    FirewallBaseMismatch {
        /// The stack's base path.
        base: String,
    },

    /// An audit capture was configured without the audit layer that would record it.
    #[cfg(feature = "audit")]
    #[error(
        "audit_capture(..) was set but the stack has no audit layer: add .audit(AuditLayer) \
         (with its sink) or remove .audit_capture(..)"
    )]
    CaptureWithoutAudit,
}
