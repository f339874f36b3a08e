//! Building the [`Caller`] a policy sees from the request extensions, with pluggable
//! [`CallerExtractor`]s, so the policy does not depend on which layers put who is asking there.

use super::policy::Caller;
use http::Extensions;

/// Adds to the [`Caller`] what one source in the request extensions says about who is asking.
///
/// Closures `Fn(&Extensions, &mut Caller)` are extractors:
///
/// ```
/// use fhirwall::redact::{Caller, CallerExtractor};
///
/// #[derive(Clone)]
/// struct ApiKeyName(String);
///
/// let extractor = |ext: &http::Extensions, caller: &mut Caller| {
///     if let Some(ApiKeyName(name)) = ext.get::<ApiKeyName>() {
///         caller.clients.push(name.clone());
///     }
/// };
/// let mut ext = http::Extensions::new();
/// ext.insert(ApiKeyName("billing".into()));
/// let mut caller = Caller::anonymous();
/// extractor.extract(&ext, &mut caller);
/// assert_eq!(caller.clients, ["billing"]);
/// ```
pub trait CallerExtractor: Send + Sync + 'static {
    /// Adds what `extensions` say to `caller`.
    fn extract(&self, extensions: &Extensions, caller: &mut Caller);
}

impl<F> CallerExtractor for F
where
    F: Fn(&Extensions, &mut Caller) + Send + Sync + 'static,
{
    fn extract(&self, extensions: &Extensions, caller: &mut Caller) {
        self(extensions, caller)
    }
}

/// The mTLS layer's [`TrustedClient`](crate::identity::TrustedClient): its name becomes a
/// client name.
#[cfg(feature = "mtls")]
#[derive(Clone, Copy, Debug, Default)]
pub struct FromTrustedClient;

#[cfg(feature = "mtls")]
impl CallerExtractor for FromTrustedClient {
    fn extract(&self, extensions: &Extensions, caller: &mut Caller) {
        if let Some(client) = extensions.get::<crate::identity::TrustedClient>() {
            caller.clients.push(client.name().to_string());
        }
    }
}

/// The SMART layer's [`AccessContext`](crate::smart::AccessContext): its `client_id` becomes a
/// client name and its granted scopes (in SMART v2 syntax, `patient/Observation.rs`) the
/// caller's scopes.
#[cfg(feature = "smart")]
#[derive(Clone, Copy, Debug, Default)]
pub struct FromAccessContext;

#[cfg(feature = "smart")]
impl CallerExtractor for FromAccessContext {
    fn extract(&self, extensions: &Extensions, caller: &mut Caller) {
        if let Some(ctx) = extensions.get::<crate::smart::AccessContext>() {
            if let Some(id) = ctx.client_id() {
                caller.clients.push(id.to_string());
            }
            // Written out once per token by the context, copied here.
            caller.scopes.extend_from_slice(ctx.scope_strings());
        }
    }
}

/// A [`Caller`] inserted directly into the request extensions (by a test, or by custom code
/// in front of the layer) is taken as is.
#[derive(Clone, Copy, Debug, Default)]
pub struct FromCallerExtension;

impl CallerExtractor for FromCallerExtension {
    fn extract(&self, extensions: &Extensions, caller: &mut Caller) {
        if let Some(given) = extensions.get::<Caller>() {
            caller.clients.extend(given.clients.iter().cloned());
            caller.scopes.extend(given.scopes.iter().cloned());
            caller.predicates.extend(given.predicates.iter().cloned());
        }
    }
}

#[cfg(all(test, feature = "smart"))]
mod tests {
    use super::*;
    use crate::smart::{AccessContext, MalformedScopes, ScopeSet};

    /// SMART App Launch 2.2 §"Scopes for requesting FHIR resources": the granted scopes reach
    /// the policy in v2 syntax, one string each, resource scopes first.
    #[test]
    fn the_access_context_gives_client_and_scopes() {
        let scopes = ScopeSet::parse(
            "openid patient/Observation.read launch/patient patient/Condition.rs?category=problem-list-item",
            MalformedScopes::RefuseToken,
        )
        .unwrap();
        let mut ext = Extensions::new();
        ext.insert(AccessContext::new(scopes).with_client_id("app-1"));
        let mut caller = Caller::anonymous();
        FromAccessContext.extract(&ext, &mut caller);
        assert_eq!(caller.clients, ["app-1"]);
        assert_eq!(
            caller.scopes,
            [
                "patient/Observation.rs",
                "patient/Condition.rs?category=problem-list-item",
                "openid",
                "launch/patient"
            ]
        );
    }
}
