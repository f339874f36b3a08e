//! Authorization of operations (`$name`, FHIR R4 §3.1.0.14): `$everything`, `$export`, and
//! the operations an [`AuthzPolicy`] declares; every other operation is refused.

use super::access::{coverage, unconditional, Coverage};
use super::authorize::{hint, listed_types, resource_type, R, RS};
use super::context::AccessContext;
use super::decision::{Authorized, Need, Refusal, RefusalKind, ResponseCheck, Shape};
use super::policy::AuthzPolicy;
use super::scope::{ResourceScope, ScopeContext};
use crate::fhir::{FhirRequest, OperationLevel, ResourceType};

pub(super) fn operation(
    request: &FhirRequest,
    ctx: &AccessContext,
    policy: &AuthzPolicy,
) -> Result<Authorized, Refusal> {
    let Some(op) = request.operation() else {
        return Err(Refusal::new(
            RefusalKind::Misconfigured,
            "the request has no operation",
        ));
    };
    match op.name.as_str() {
        "everything" => everything(request, op.level, ctx),
        "export" => export(request, ctx),
        name => declared(request, name, op.level, ctx, policy),
    }
}

fn everything(
    request: &FhirRequest,
    level: OperationLevel,
    ctx: &AccessContext,
) -> Result<Authorized, Refusal> {
    if ctx.scopes().grants_every_type_unconditionally(RS) {
        return Ok(Authorized::default());
    }
    let (OperationLevel::Instance, Some(rt), Some(id)) =
        (level, request.resource_type(), request.id())
    else {
        return Err(hint(ctx, None, RS));
    };
    let cov = coverage(ctx, rt, RS, None);
    if !cov.any() {
        return Err(hint(ctx, Some(rt), RS));
    }
    if rt == ResourceType::Patient && cov.patient_only() && !ctx.has_patient(id) {
        return Err(Refusal::forbidden(
            "the request names a patient outside the token's patient context",
        ));
    }
    let mut check = ResponseCheck::new(Shape::Bundle, Need::all(RS));
    check.include_need = Need::all(RS);
    Ok(Authorized {
        response: Some(check),
        ..Authorized::default()
    })
}

fn export(request: &FhirRequest, ctx: &AccessContext) -> Result<Authorized, Refusal> {
    let system_reads = |rt: Option<ResourceType>| {
        ctx.scopes().resource_scopes().iter().any(|s| {
            s.context() == ScopeContext::System
                && !s.is_granular()
                && s.permissions().contains(R)
                && match rt {
                    Some(rt) => s.matches_type(rt),
                    None => s.resource_type().is_none(),
                }
        })
    };
    let system_hint =
        |rt| Refusal::insufficient(ResourceScope::describe(ScopeContext::System, rt, R));
    match listed_types(request.query())? {
        Some(types) if !types.is_empty() => {
            if let Some(&missing) = types.iter().find(|&&rt| !system_reads(Some(rt))) {
                return Err(system_hint(Some(missing)));
            }
        }
        _ => {
            if !system_reads(None) {
                return Err(system_hint(None));
            }
        }
    }
    Ok(Authorized::default())
}

fn declared(
    request: &FhirRequest,
    name: &str,
    level: OperationLevel,
    ctx: &AccessContext,
    policy: &AuthzPolicy,
) -> Result<Authorized, Refusal> {
    let Some(rule) = policy.operations.iter().find(|r| r.matches(name, level)) else {
        return Err(Refusal::forbidden("this operation is not allowed"));
    };
    let needed = rule.permissions();
    let rt = match level {
        OperationLevel::System => None,
        _ => Some(resource_type(request)?),
    };
    let plain = match rt {
        Some(rt) => unconditional(ctx, rt, needed),
        None => ctx.scopes().grants_every_type_unconditionally(needed),
    };
    if plain {
        return Ok(Authorized::default());
    }
    let cov = match rt {
        Some(rt) => coverage(ctx, rt, needed, None),
        None => Coverage::default(),
    };
    if !cov.any() {
        return Err(hint(ctx, rt, needed));
    }
    // Only read-only operations can be checked on their response; others need a scope
    // without conditions.
    if !RS.contains(needed) {
        return Err(Refusal::forbidden(
            "this operation is not available under patient or granular scopes",
        ));
    }
    if let (Some(ResourceType::Patient), Some(id), true) = (rt, request.id(), cov.patient_only()) {
        if !ctx.has_patient(id) {
            return Err(Refusal::forbidden(
                "the request names a patient outside the token's patient context",
            ));
        }
    }
    Ok(Authorized {
        response: Some(ResponseCheck::new(Shape::Single, Need::all(needed))),
        ..Authorized::default()
    })
}
