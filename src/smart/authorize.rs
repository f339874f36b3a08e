//! [`authorize`]: every FHIR interaction against the token's scopes and patient context.

use super::access::{coverage, unconditional};
use super::compartment::{check_patient_search, narrowing, reachable};
use super::context::AccessContext;
use super::decision::{
    Authorized, BodyCheck, EntryRewrite, Need, Refusal, RefusalKind, ResponseCheck, Shape,
    WriteRule,
};
use super::policy::AuthzPolicy;
use super::scope::{Permissions, ResourceScope, ScopeContext};
use crate::fhir::{FhirRequest, Interaction, ParamKind, Query, ResourceType};
use std::borrow::Cow;

pub(super) const R: Permissions = Permissions::READ;
pub(super) const S: Permissions = Permissions::SEARCH;
pub(super) const RS: Permissions = Permissions::READ.union(Permissions::SEARCH);

/// Decides one classified request for one access context.
///
/// | interaction | needs |
/// |---|---|
/// | read, vread, instance history | `r` on the type |
/// | type search, compartment search | `s` on the type (`Patient/x/*`: on every type) |
/// | system search | `s` on every type `_type` lists, or on `*` |
/// | type history / system history | `s` on the type / on `*` |
/// | create | `c` (conditional create: also `s`) |
/// | update, patch | `u` (conditional: also `s`) |
/// | delete | `d` (conditional: also `s`) |
/// | `$everything` | `r` and `s` on `Patient` (and on every type it returns) |
/// | `$export` | `system/` scopes with `r` on every exported type (`_type`, or `*`) |
/// | other operations | what [`OperationRule`](super::OperationRule) declares; undeclared: refused |
/// | batch, transaction | every entry as its own request; one refused entry refuses the Bundle |
/// | `metadata`, `.well-known/smart-configuration` | nothing (public) |
///
/// Scopes are a union: a request is allowed when any scope (or, for the response, any scope
/// per resource) allows it. Scopes with conditions (`patient/` scopes, granular scopes) allow a
/// request only when the conditions can be enforced: searches are narrowed to the compartment
/// or must carry the granular parameters themselves, reads are checked on the response, writes
/// on the request body (and, for update and delete of one resource, on the stored resource,
/// read first). What cannot be enforced is refused.
///
/// Batches are refused as a whole when any entry is (with an `OperationOutcome` naming the
/// entries), rather than answered entry by entry: fhirwall would otherwise have to split the
/// Bundle and merge the server's answers back.
///
/// ```
/// use fhirwall::fhir::Classifier;
/// use fhirwall::smart::{authorize, AccessContext, AuthzPolicy, MalformedScopes, ScopeSet};
/// use http::{HeaderMap, Method};
///
/// let scopes = ScopeSet::parse("patient/*.rs", MalformedScopes::RefuseToken).unwrap();
/// let ctx = AccessContext::new(scopes).with_patients(["pat-1"]);
/// let classify = |uri: &str| Classifier::new("/fhir")
///     .classify(&Method::GET, &uri.parse().unwrap(), &HeaderMap::new(), b"").unwrap();
///
/// let ok = authorize(&classify("/fhir/Observation?code=8867-4"), &ctx, &AuthzPolicy::new()).unwrap();
/// assert_eq!(ok.narrowing(), Some("subject=Patient/pat-1"));
/// assert!(ok.checks_response());
///
/// let refused = authorize(&classify("/fhir/Patient/pat-2"), &ctx, &AuthzPolicy::new()).unwrap_err();
/// assert_eq!(refused.status(), 404);
/// let refused = authorize(&classify("/fhir/Observation?subject=Patient/pat-2"), &ctx, &AuthzPolicy::new()).unwrap_err();
/// assert_eq!(refused.status(), 403);
/// ```
pub fn authorize(
    request: &FhirRequest,
    ctx: &AccessContext,
    policy: &AuthzPolicy,
) -> Result<Authorized, Refusal> {
    authorize_one(request, ctx, policy, false)
}

fn authorize_one(
    request: &FhirRequest,
    ctx: &AccessContext,
    policy: &AuthzPolicy,
    in_bundle: bool,
) -> Result<Authorized, Refusal> {
    use Interaction as I;
    match request.interaction() {
        I::Capabilities | I::SmartConfiguration => Ok(Authorized::public()),
        I::Read | I::VRead | I::HistoryInstance => read(request, ctx, policy),
        I::SearchType => search_type(request, ctx, policy),
        I::SearchCompartment => search_compartment(request, ctx, policy),
        I::SearchSystem => search_system(request, ctx),
        I::HistoryType | I::HistorySystem => history(request, ctx),
        I::Create => create(request, ctx, policy),
        I::Update | I::Patch | I::Delete => modify(request, ctx, policy),
        I::Operation => super::operations::operation(request, ctx, policy),
        I::Batch | I::Transaction if !in_bundle => bundle(request, ctx, policy),
        _ => Err(Refusal::forbidden("this interaction is not allowed")),
    }
}

pub(super) fn resource_type(request: &FhirRequest) -> Result<ResourceType, Refusal> {
    // The classifier always sets the type of these interactions; if it didn't, refuse.
    request.resource_type().ok_or_else(|| {
        Refusal::new(
            RefusalKind::Misconfigured,
            "the request has no resource type",
        )
    })
}

/// The scope that would have been enough, in the token's own context where it has one.
pub(super) fn hint(ctx: &AccessContext, rt: Option<ResourceType>, needed: Permissions) -> Refusal {
    let context = ctx
        .scopes()
        .resource_scopes()
        .first()
        .map_or(ScopeContext::User, ResourceScope::context);
    Refusal::insufficient(ResourceScope::describe(context, rt, needed))
}

fn has_includes(query: &Query) -> bool {
    query
        .params()
        .any(|p| matches!(p.kind(), ParamKind::Include | ParamKind::RevInclude))
}

/// Whether included resources need checking: unless a condition-free scope reads every type.
fn includes_need_check(ctx: &AccessContext, query: &Query) -> bool {
    has_includes(query)
        && !(ctx.scopes().grants_every_type_unconditionally(R)
            || ctx.scopes().grants_every_type_unconditionally(S))
}

fn read(
    request: &FhirRequest,
    ctx: &AccessContext,
    policy: &AuthzPolicy,
) -> Result<Authorized, Refusal> {
    let rt = resource_type(request)?;
    if unconditional(ctx, rt, R) {
        return Ok(Authorized::default());
    }
    let cov = coverage(ctx, rt, R, None);
    if !cov.any() {
        return Err(hint(ctx, Some(rt), R));
    }
    if cov.patient_only() {
        let outside = match (rt, request.id()) {
            (ResourceType::Patient, Some(id)) => !ctx.has_patient(id),
            _ => !reachable(rt, policy, false),
        };
        if outside {
            return Err(Refusal::hidden(policy.hidden_status));
        }
    }
    let history = request.interaction() == Interaction::HistoryInstance;
    let shape = if history {
        Shape::Bundle
    } else {
        Shape::Single
    };
    let mut check = ResponseCheck::new(shape, Need::all(R));
    check.hide_if_emptied = history;
    Ok(Authorized {
        response: Some(check),
        ..Authorized::default()
    })
}

/// The common part of type and compartment searches of one type.
fn search_of(
    rt: ResourceType,
    request: &FhirRequest,
    ctx: &AccessContext,
    policy: &AuthzPolicy,
    compartment_patient: Option<&str>,
) -> Result<Authorized, Refusal> {
    let query = request.query();
    if unconditional(ctx, rt, S) {
        let response = includes_need_check(ctx, query).then(|| {
            let mut check = ResponseCheck::new(Shape::Bundle, Need::all(S));
            check.narrowed = true;
            check
        });
        return Ok(Authorized {
            response,
            ..Authorized::default()
        });
    }
    let cov = coverage(ctx, rt, S, Some(query));
    let mut check = ResponseCheck::new(Shape::Bundle, Need::all(S));
    if cov.granular {
        check.presatisfied = cov.presatisfied;
        check.narrowed = true;
        return Ok(Authorized {
            response: Some(check),
            ..Authorized::default()
        });
    }
    if cov.patient {
        check_patient_search(Some(rt), query, ctx, policy)?;
        if !reachable(rt, policy, false) {
            return Err(Refusal::forbidden(
                "the searched type is outside the patient compartment",
            ));
        }
        let narrowing = match compartment_patient {
            Some(id) if ctx.has_patient(id) => None,
            Some(_) => {
                return Err(Refusal::forbidden(
                    "the search names a patient outside the token's patient context",
                ))
            }
            None => narrowing(rt, ctx),
        };
        check.presatisfied = cov.presatisfied;
        check.narrowed = narrowing.is_some() || compartment_patient.is_some();
        return Ok(Authorized {
            narrowing,
            response: Some(check),
            ..Authorized::default()
        });
    }
    Err(hint(ctx, Some(rt), S))
}

fn search_type(
    request: &FhirRequest,
    ctx: &AccessContext,
    policy: &AuthzPolicy,
) -> Result<Authorized, Refusal> {
    search_of(resource_type(request)?, request, ctx, policy, None)
}

fn search_compartment(
    request: &FhirRequest,
    ctx: &AccessContext,
    policy: &AuthzPolicy,
) -> Result<Authorized, Refusal> {
    let Some(compartment) = request.compartment() else {
        return Err(Refusal::new(
            RefusalKind::Misconfigured,
            "the request has no compartment",
        ));
    };
    let patient =
        (compartment.resource_type == ResourceType::Patient).then_some(compartment.id.as_str());
    if let Some(rt) = compartment.target {
        return search_of(rt, request, ctx, policy, patient);
    }
    // `Patient/x/*` returns every type of the compartment.
    if ctx.scopes().grants_every_type_unconditionally(S) {
        return Ok(Authorized::default());
    }
    let wildcard_patient = ctx.scopes().resource_scopes().iter().any(|s| {
        s.context() == ScopeContext::Patient
            && s.resource_type().is_none()
            && !s.is_granular()
            && s.permissions().contains(S)
    });
    match patient {
        Some(id) if wildcard_patient => {
            if !ctx.has_patient(id) {
                return Err(Refusal::forbidden(
                    "the search names a patient outside the token's patient context",
                ));
            }
            check_patient_search(None, request.query(), ctx, policy)?;
            let mut check = ResponseCheck::new(Shape::Bundle, Need::all(S));
            check.narrowed = true;
            Ok(Authorized {
                response: Some(check),
                ..Authorized::default()
            })
        }
        _ => Err(hint(ctx, None, S)),
    }
}

pub(super) fn listed_types(query: &Query) -> Result<Option<Vec<ResourceType>>, Refusal> {
    let mut types = None;
    for p in query.of_kind(ParamKind::Type) {
        let list = types.get_or_insert_with(Vec::new);
        for v in p.values() {
            let rt = ResourceType::from_name(&v.text()).ok_or_else(|| {
                Refusal::new(
                    RefusalKind::InvalidRequest,
                    "_type names an unknown resource type",
                )
            })?;
            list.push(rt);
        }
    }
    Ok(types)
}

fn search_system(request: &FhirRequest, ctx: &AccessContext) -> Result<Authorized, Refusal> {
    let query = request.query();
    let types = listed_types(query)?;
    let allowed = match &types {
        Some(types) if !types.is_empty() => {
            for &rt in types {
                if !unconditional(ctx, rt, S) {
                    return Err(system_level_refusal(ctx, Some(rt)));
                }
            }
            true
        }
        _ => ctx.scopes().grants_every_type_unconditionally(S),
    };
    if !allowed {
        return Err(system_level_refusal(ctx, None));
    }
    let response = includes_need_check(ctx, query).then(|| {
        let mut check = ResponseCheck::new(Shape::Bundle, Need::all(S));
        check.narrowed = true;
        check
    });
    Ok(Authorized {
        response,
        ..Authorized::default()
    })
}

/// System-level searches and histories can't be narrowed to a compartment or checked against
/// granular parameters type by type, so scopes with conditions never allow them.
fn system_level_refusal(ctx: &AccessContext, rt: Option<ResourceType>) -> Refusal {
    let conditional = ctx.scopes().resource_scopes().iter().any(|s| {
        !s.is_unconditional() && s.permissions().contains(S) && rt.is_none_or(|t| s.matches_type(t))
    });
    if conditional {
        Refusal::forbidden(
            "searches and histories across types or a whole type's history are not available under patient or granular scopes",
        )
    } else {
        hint(ctx, rt, S)
    }
}

fn history(request: &FhirRequest, ctx: &AccessContext) -> Result<Authorized, Refusal> {
    match request.resource_type() {
        Some(rt) if unconditional(ctx, rt, S) => Ok(Authorized::default()),
        Some(rt) => Err(system_level_refusal(ctx, Some(rt))),
        None if ctx.scopes().grants_every_type_unconditionally(S) => Ok(Authorized::default()),
        None => Err(system_level_refusal(ctx, None)),
    }
}

/// For a conditional write: the narrowing of its condition, if one is needed.
fn conditional_write(
    rt: ResourceType,
    needed: Permissions,
    condition: &Query,
    ctx: &AccessContext,
    policy: &AuthzPolicy,
) -> Result<Option<String>, Refusal> {
    let write = coverage(ctx, rt, needed, Some(condition));
    let search = coverage(ctx, rt, S, Some(condition));
    if !write.any() {
        return Err(hint(ctx, Some(rt), needed));
    }
    if !search.any() {
        return Err(hint(ctx, Some(rt), S));
    }
    let write_plain = write.unconditional || write.granular;
    let search_plain = search.unconditional || search.granular;
    if write_plain && search_plain {
        return Ok(None);
    }
    if (write_plain || write.patient) && (search_plain || search.patient) {
        check_patient_search(Some(rt), condition, ctx, policy)?;
        if !reachable(rt, policy, true) {
            return Err(Refusal::forbidden(
                "the type is outside the patient compartment",
            ));
        }
        return narrowing(rt, ctx)
            .map(Some)
            .ok_or_else(|| Refusal::forbidden("the type is outside the patient compartment"));
    }
    Err(Refusal::forbidden(
        "a conditional interaction under granular scopes must carry the scopes' parameters",
    ))
}

fn create(
    request: &FhirRequest,
    ctx: &AccessContext,
    policy: &AuthzPolicy,
) -> Result<Authorized, Refusal> {
    let rt = resource_type(request)?;
    let mut out = Authorized::default();
    if !unconditional(ctx, rt, Permissions::CREATE) {
        let cov = coverage(ctx, rt, Permissions::CREATE, None);
        if !cov.any() {
            return Err(hint(ctx, Some(rt), Permissions::CREATE));
        }
        if cov.patient_only() && !reachable(rt, policy, true) {
            return Err(Refusal::forbidden(
                "the type is outside the patient compartment",
            ));
        }
        out.body = BodyCheck::Resource(WriteRule {
            resource_type: rt,
            permission: Permissions::CREATE,
            forbid_id: false,
        });
        out.response = Some(ResponseCheck::new(
            Shape::Single,
            Need::all(Permissions::CREATE),
        ));
    }
    if let Some(condition) = request.condition() {
        out.if_none_exist = conditional_write(rt, Permissions::CREATE, condition, ctx, policy)?;
        if out.if_none_exist.is_some() && out.response.is_none() {
            out.response = Some(ResponseCheck::new(
                Shape::Single,
                Need::all(Permissions::CREATE),
            ));
        }
    }
    Ok(out)
}

fn modify(
    request: &FhirRequest,
    ctx: &AccessContext,
    policy: &AuthzPolicy,
) -> Result<Authorized, Refusal> {
    let rt = resource_type(request)?;
    let interaction = request.interaction();
    let needed = match interaction {
        Interaction::Delete => Permissions::DELETE,
        _ => Permissions::UPDATE,
    };
    let plain = unconditional(ctx, rt, needed);
    let mut out = Authorized::default();
    if request.is_conditional() {
        let condition = request.condition().unwrap_or(request.query());
        out.narrowing = conditional_write(rt, needed, condition, ctx, policy)?;
    } else if !plain {
        let cov = coverage(ctx, rt, needed, None);
        if !cov.any() {
            return Err(hint(ctx, Some(rt), needed));
        }
        if cov.patient_only() && !reachable(rt, policy, true) {
            return Err(Refusal::forbidden(
                "the type is outside the patient compartment",
            ));
        }
        out.pre_read = Some(WriteRule {
            resource_type: rt,
            permission: needed,
            forbid_id: false,
        });
    }
    if !plain {
        if interaction == Interaction::Patch {
            return Err(Refusal::forbidden(
                "patch is not available under patient or granular scopes",
            ));
        }
        if interaction == Interaction::Update {
            out.body = BodyCheck::Resource(WriteRule {
                resource_type: rt,
                permission: needed,
                forbid_id: request.is_conditional(),
            });
        }
        out.response = Some(ResponseCheck::new(Shape::Single, Need::all(needed)));
    }
    Ok(out)
}

fn bundle(
    request: &FhirRequest,
    ctx: &AccessContext,
    policy: &AuthzPolicy,
) -> Result<Authorized, Refusal> {
    let entries = request.entries();
    let size = entries.iter().map(|e| e.index + 1).max().unwrap_or(0);
    let mut checks: Vec<Option<ResponseCheck>> = vec![None; size];
    let mut writes = Vec::new();
    let mut rewrites = Vec::new();
    let mut refused: Vec<(usize, Cow<'static, str>)> = Vec::new();
    let mut needed: Vec<String> = Vec::new();
    for entry in entries {
        match authorize_one(&entry.request, ctx, policy, true) {
            Err(refusal) => {
                if let Some(scope) = refusal.needed_scope {
                    if !needed.contains(&scope) {
                        needed.push(scope);
                    }
                }
                refused.push((entry.index, refusal.text));
            }
            Ok(allowed) => {
                if allowed.pre_read.is_some() {
                    refused.push((
                        entry.index,
                        Cow::Borrowed("under patient or granular scopes, updating or deleting one resource is not available inside a batch or transaction"),
                    ));
                    continue;
                }
                if let BodyCheck::Resource(rule) = allowed.body {
                    writes.push((entry.index, rule));
                }
                if allowed.narrowing.is_some() || allowed.if_none_exist.is_some() {
                    rewrites.push(EntryRewrite {
                        index: entry.index,
                        url: allowed.narrowing,
                        if_none_exist: allowed.if_none_exist,
                    });
                }
                if let Some(slot) = checks.get_mut(entry.index) {
                    *slot = allowed.response;
                }
            }
        }
    }
    if !refused.is_empty() {
        let text = match request.interaction() {
            Interaction::Transaction => "the transaction has entries the token does not allow",
            _ => "the batch has entries the token does not allow",
        };
        let mut refusal = if needed.is_empty() {
            Refusal::forbidden(text)
        } else {
            let mut r = Refusal::insufficient(needed.join(" "));
            r.text = Cow::Borrowed(text);
            r
        };
        refusal.entries = refused;
        return Err(refusal);
    }
    let response = checks
        .iter()
        .any(Option::is_some)
        .then(|| ResponseCheck::new(Shape::Batch(checks), Need::any(RS)));
    let body = if writes.is_empty() && rewrites.is_empty() {
        BodyCheck::None
    } else {
        BodyCheck::Bundle { writes, rewrites }
    };
    Ok(Authorized {
        body,
        response,
        ..Authorized::default()
    })
}
