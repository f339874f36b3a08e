//! Which scopes of a token reach one resource, and which reach one kind of request.

use super::compartment::in_compartment;
use super::context::AccessContext;
use super::decision::Need;
use super::granular;
use super::policy::AuthzPolicy;
use super::scope::{Permissions, ScopeContext};
use crate::fhir::tables;
use crate::fhir::{Query, ResourceType};
use serde_json::Value;

/// Whether some scope of the token allows `resource` (of type `rt`) for `need`: the scope's
/// type and permissions match, the resource is in the compartment for a `patient/` scope, and
/// a granular scope's conditions hold (or the request already carried them: `presatisfied`).
pub(crate) fn permitted(
    ctx: &AccessContext,
    policy: &AuthzPolicy,
    rt: ResourceType,
    resource: &Value,
    need: Need,
    presatisfied: &[usize],
    write: bool,
) -> bool {
    let mut compartment: Option<bool> = None;
    // Any allowing scope will do, so the order the index gives them in doesn't matter.
    for (i, scope) in ctx.scopes().scopes_for(rt) {
        if !scope.matches_type(rt) || !need.met_by(scope.permissions()) {
            continue;
        }
        if scope.context() == ScopeContext::Patient {
            let inside = *compartment
                .get_or_insert_with(|| in_compartment(rt, resource, ctx, policy, write));
            if !inside {
                continue;
            }
        }
        if scope.is_granular()
            && !presatisfied.contains(&i)
            && !granular::holds(scope, rt, resource)
        {
            continue;
        }
        return true;
    }
    false
}

/// Whether [`permitted`] may read the top-level member `key` of a resource of type `rt` under
/// this token: `resourceType`, `id`, `contained`, and the first element of each compartment
/// path and each path of a scope condition's search parameter. A resource parsed with only
/// these members (`sparse::sparse_resource`) gets the answer the whole resource would.
pub(crate) fn reads_member(ctx: &AccessContext, rt: ResourceType, key: &str) -> bool {
    if matches!(key, "resourceType" | "id" | "contained") {
        return true;
    }
    let first = |path: &&str| path.split('.').next() == Some(key);
    if tables::patient_compartment(rt)
        .is_some_and(|ps| ps.iter().any(|p| p.paths.iter().any(first)))
    {
        return true;
    }
    ctx.scopes().scopes_for(rt).any(|(_, scope)| {
        scope.params().iter().any(|sp| {
            tables::search_param(rt, sp.name()).is_some_and(|def| def.paths.iter().any(first))
        })
    })
}

/// How the scopes of a token cover one type and permission for a request.
#[derive(Debug, Default)]
pub(crate) struct Coverage {
    /// A `user/` or `system/` scope without conditions covers it.
    pub(crate) unconditional: bool,
    /// A `patient/` scope covers it whose granular conditions (if any) the request carries:
    /// allowed once narrowed to the compartment.
    pub(crate) patient: bool,
    /// A granular `user/` or `system/` scope covers it whose conditions the request carries.
    pub(crate) granular: bool,
    /// Some scope with conditions covers the type and permission (conditions to be checked on
    /// the resources themselves).
    pub(crate) conditional: bool,
    /// Some conditional scope that is not a `patient/` scope covers it.
    pub(crate) non_patient_conditional: bool,
    /// The granular scopes whose conditions the request carries.
    pub(crate) presatisfied: Vec<usize>,
}

impl Coverage {
    /// Whether any scope covers the type and permission at all.
    pub(crate) fn any(&self) -> bool {
        self.unconditional || self.conditional
    }

    /// Whether only `patient/` scopes cover it.
    pub(crate) fn patient_only(&self) -> bool {
        !self.unconditional && !self.non_patient_conditional
    }
}

/// Every scope counts: the coverage is the union over all of them (never the first match).
pub(crate) fn coverage(
    ctx: &AccessContext,
    rt: ResourceType,
    needed: Permissions,
    query: Option<&Query>,
) -> Coverage {
    let mut cov = Coverage::default();
    for (i, scope) in ctx.scopes().scopes_for(rt) {
        if !scope.covers(rt, needed) {
            continue;
        }
        if scope.is_unconditional() {
            cov.unconditional = true;
            continue;
        }
        cov.conditional = true;
        let implied = scope.is_granular() && query.is_some_and(|q| granular::implied_by(scope, q));
        if implied {
            cov.presatisfied.push(i);
        }
        if scope.context() == ScopeContext::Patient {
            if !scope.is_granular() || implied {
                cov.patient = true;
            }
        } else {
            cov.non_patient_conditional = true;
            if implied {
                cov.granular = true;
            }
        }
    }
    cov
}

/// Whether an unconditional scope covers `needed` on `rt`: the fast path, without allocating.
#[inline]
pub(crate) fn unconditional(ctx: &AccessContext, rt: ResourceType, needed: Permissions) -> bool {
    ctx.scopes().grants_unconditionally(rt, needed)
}
