//! The firewall's decision, put on every response it answers or passes on.

use crate::body::{full_response, FhirBody};
use crate::fhir::{IssueType, OperationOutcome};
use http::{Response, StatusCode};

/// Why the firewall refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FirewallRefusal {
    /// Plain HTTP where TLS is required.
    PlainHttp,
    /// The peer address is unknown (no `RemoteAddr` or `ConnectInfo` in the extensions) while
    /// an address rule applies.
    UnknownAddress,
    /// The client address is not allowed for this route group.
    AddressNotAllowed,
    /// The trusted client is not allowed from this address.
    ClientAddressNotAllowed,
    /// The route is not declared: a possible probe for a backdoor.
    UndeclaredRoute,
    /// The route or base path is past its sunset.
    Sunset,
    /// Outside the client's access window.
    OutsideAccessWindow,
}

impl FirewallRefusal {
    /// A short stable code for audit records.
    pub const fn as_str(self) -> &'static str {
        match self {
            FirewallRefusal::PlainHttp => "plain-http",
            FirewallRefusal::UnknownAddress => "unknown-address",
            FirewallRefusal::AddressNotAllowed => "address-not-allowed",
            FirewallRefusal::ClientAddressNotAllowed => "client-address-not-allowed",
            FirewallRefusal::UndeclaredRoute => "undeclared-route",
            FirewallRefusal::Sunset => "sunset",
            FirewallRefusal::OutsideAccessWindow => "outside-access-window",
        }
    }

    /// The HTTP status of the refusal.
    pub const fn status(self) -> StatusCode {
        match self {
            FirewallRefusal::UndeclaredRoute => StatusCode::NOT_FOUND,
            FirewallRefusal::Sunset => StatusCode::GONE,
            _ => StatusCode::FORBIDDEN,
        }
    }

    fn issue(self) -> (IssueType, &'static str) {
        match self {
            FirewallRefusal::PlainHttp => (
                IssueType::Security,
                "this service is only available over HTTPS",
            ),
            FirewallRefusal::UnknownAddress | FirewallRefusal::AddressNotAllowed => (
                IssueType::Forbidden,
                "access from this network is not allowed",
            ),
            FirewallRefusal::ClientAddressNotAllowed => (
                IssueType::Forbidden,
                "this client is not allowed from this network",
            ),
            FirewallRefusal::UndeclaredRoute => (IssueType::NotFound, "no such route"),
            FirewallRefusal::Sunset => (
                IssueType::NotSupported,
                "this API version has been retired; use its successor",
            ),
            FirewallRefusal::OutsideAccessWindow => {
                (IssueType::Forbidden, "access is not allowed at this time")
            }
        }
    }

    /// The refusal as an `OperationOutcome` response carrying its [`FirewallDecision`].
    pub fn to_response<B>(self) -> Response<FhirBody<B>> {
        let (code, text) = self.issue();
        let mut response =
            full_response(OperationOutcome::error(code, text).into_response(self.status()));
        response
            .extensions_mut()
            .insert(FirewallDecision::Refused(self));
        response
    }
}

impl std::fmt::Display for FirewallRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The firewall's decision, on the response extensions for the audit layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FirewallDecision {
    /// Passed every rule. Put on a response only under a deprecated prefix: a pass on a live
    /// route carries no decision, which saves an allocation on every allowed request.
    Allowed {
        /// Whether the route is deprecated (it got `Deprecation`/`Sunset` headers).
        deprecated: bool,
    },
    /// Refused.
    Refused(FirewallRefusal),
}

impl FirewallDecision {
    /// The refusal, if refused.
    pub fn refusal(&self) -> Option<FirewallRefusal> {
        match self {
            FirewallDecision::Refused(r) => Some(*r),
            FirewallDecision::Allowed { .. } => None,
        }
    }

    /// Whether the request was a hit on an undeclared route (a possible backdoor probe).
    pub fn is_probe(&self) -> bool {
        matches!(
            self,
            FirewallDecision::Refused(FirewallRefusal::UndeclaredRoute)
        )
    }
}
