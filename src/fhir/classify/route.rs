//! Routing: method + path segments → the FHIR interaction (FHIR R4 §3.1.0 "RESTful API").

use super::{fhir_id, is_json, media_type, operation, resource_type, BodyKind, COMPARTMENT_TYPES};
use crate::fhir::interaction::{Compartment, FhirRequest, Interaction, Operation, OperationLevel};
use crate::fhir::query::Query;
use crate::fhir::unclassified::{Unclassified, UnclassifiedKind};
use crate::fhir::ResourceType;
use http::Method;

const READ_METHODS: &str = "GET, HEAD";
const OPERATION_METHODS: &str = "GET, HEAD, POST";

/// Maps method + segments to an interaction. `pending` is set when the body must be read.
pub(super) fn route(
    method: &Method,
    seg: &[&str],
    query: &Query,
    content_type: Option<&str>,
    pending: &mut Option<BodyKind>,
) -> Result<FhirRequest, Unclassified> {
    use Interaction as I;
    let get = *method == Method::GET || *method == Method::HEAD;
    let post = *method == Method::POST;
    let new = |interaction| FhirRequest::new(method.clone(), interaction);
    let request = match seg {
        [] if get => new(I::SearchSystem),
        [] if post => {
            if !is_json(content_type) {
                return Err(unsupported_media(
                    "a batch or transaction must be a FHIR JSON Bundle",
                ));
            }
            *pending = Some(BodyKind::Bundle);
            new(I::Batch)
        }
        [] => return Err(Unclassified::method_not_allowed("GET, HEAD, POST")),
        ["metadata"] if get => new(I::Capabilities),
        ["metadata"] => return Err(Unclassified::method_not_allowed(READ_METHODS)),
        [".well-known", "smart-configuration"] if get => new(I::SmartConfiguration),
        [".well-known", "smart-configuration"] => {
            return Err(Unclassified::method_not_allowed(READ_METHODS))
        }
        ["_history"] if get => new(I::HistorySystem),
        ["_history"] => return Err(Unclassified::method_not_allowed(READ_METHODS)),
        ["_search"] if post => {
            form_body(content_type, pending)?;
            let mut r = new(I::SearchSystem);
            r.via_post = true;
            r
        }
        ["_search"] => return Err(Unclassified::method_not_allowed("POST")),
        [op] if op.starts_with('$') => {
            operation_request(method, operation(op, OperationLevel::System)?, None, None)?
        }
        [ty] => {
            let rt = resource_type(ty)?;
            let mut r = match *method {
                Method::GET | Method::HEAD => new(I::SearchType),
                Method::POST => new(I::Create),
                Method::PUT | Method::PATCH | Method::DELETE => {
                    if query.is_empty() {
                        return Err(Unclassified::new(
                            UnclassifiedKind::BadQuery,
                            "a conditional update, patch or delete needs search parameters",
                        ));
                    }
                    let interaction = match *method {
                        Method::PUT => I::Update,
                        Method::PATCH => I::Patch,
                        _ => I::Delete,
                    };
                    let mut r = new(interaction);
                    r.conditional = true;
                    r
                }
                _ => {
                    return Err(Unclassified::method_not_allowed(
                        "GET, HEAD, POST, PUT, PATCH, DELETE",
                    ))
                }
            };
            r.resource_type = Some(rt);
            r
        }
        [ty, "_search"] => {
            let rt = resource_type(ty)?;
            if !post {
                return Err(Unclassified::method_not_allowed("POST"));
            }
            form_body(content_type, pending)?;
            let mut r = new(I::SearchType);
            r.resource_type = Some(rt);
            r.via_post = true;
            r
        }
        [ty, "_history"] => {
            let rt = resource_type(ty)?;
            if !get {
                return Err(Unclassified::method_not_allowed(READ_METHODS));
            }
            let mut r = new(I::HistoryType);
            r.resource_type = Some(rt);
            r
        }
        [ty, op] if op.starts_with('$') => {
            let rt = resource_type(ty)?;
            operation_request(method, operation(op, OperationLevel::Type)?, Some(rt), None)?
        }
        [ty, id] => {
            let rt = resource_type(ty)?;
            let id = fhir_id(id)?;
            let interaction = match *method {
                Method::GET | Method::HEAD => I::Read,
                Method::PUT => I::Update,
                Method::PATCH => I::Patch,
                Method::DELETE => I::Delete,
                _ => {
                    return Err(Unclassified::method_not_allowed(
                        "GET, HEAD, PUT, PATCH, DELETE",
                    ))
                }
            };
            let mut r = new(interaction);
            r.resource_type = Some(rt);
            r.id = Some(id);
            r
        }
        [ty, id, "_history"] => {
            let (rt, id) = (resource_type(ty)?, fhir_id(id)?);
            if !get {
                return Err(Unclassified::method_not_allowed(READ_METHODS));
            }
            let mut r = new(I::HistoryInstance);
            r.resource_type = Some(rt);
            r.id = Some(id);
            r
        }
        [ty, id, op] if op.starts_with('$') => {
            let (rt, id) = (resource_type(ty)?, fhir_id(id)?);
            operation_request(
                method,
                operation(op, OperationLevel::Instance)?,
                Some(rt),
                Some(id),
            )?
        }
        [ty, id, target] => {
            let (rt, id) = (resource_type(ty)?, fhir_id(id)?);
            if !COMPARTMENT_TYPES.contains(&rt) {
                return Err(Unclassified::new(
                    UnclassifiedKind::UnknownRoute,
                    "compartment searches exist only for Patient, Encounter, RelatedPerson, Practitioner and Device",
                ));
            }
            let target = if *target == "*" {
                None
            } else {
                Some(resource_type(target)?)
            };
            if !get {
                return Err(Unclassified::method_not_allowed(READ_METHODS));
            }
            let mut r = new(I::SearchCompartment);
            r.resource_type = target;
            r.compartment = Some(Compartment {
                resource_type: rt,
                id,
                target,
            });
            r
        }
        [ty, id, "_history", vid] => {
            let (rt, id) = (resource_type(ty)?, fhir_id(id)?);
            let vid = fhir_id(vid)?;
            if !get {
                return Err(Unclassified::method_not_allowed(READ_METHODS));
            }
            let mut r = new(I::VRead);
            r.resource_type = Some(rt);
            r.id = Some(id);
            r.version_id = Some(vid);
            r
        }
        [first, ..] => {
            // Name the most likely mistake: a type that isn't one beats "unknown route".
            resource_type(first)?;
            return Err(Unclassified::new(
                UnclassifiedKind::UnknownRoute,
                "the path does not match any FHIR interaction",
            ));
        }
    };
    Ok(request)
}

fn operation_request(
    method: &Method,
    op: Option<Operation>,
    rt: Option<ResourceType>,
    id: Option<String>,
) -> Result<FhirRequest, Unclassified> {
    let Some(op) = op else {
        return Err(Unclassified::new(
            UnclassifiedKind::UnknownRoute,
            "the path does not match any FHIR interaction",
        ));
    };
    if !matches!(*method, Method::GET | Method::HEAD | Method::POST) {
        return Err(Unclassified::method_not_allowed(OPERATION_METHODS));
    }
    let mut r = FhirRequest::new(method.clone(), Interaction::Operation);
    r.operation = Some(op);
    r.resource_type = rt;
    r.id = id;
    Ok(r)
}

fn form_body(
    content_type: Option<&str>,
    pending: &mut Option<BodyKind>,
) -> Result<(), Unclassified> {
    if media_type(content_type).as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(unsupported_media(
            "POST _search needs an application/x-www-form-urlencoded body",
        ));
    }
    *pending = Some(BodyKind::Form);
    Ok(())
}

fn unsupported_media(text: &'static str) -> Unclassified {
    Unclassified::new(UnclassifiedKind::UnsupportedMediaType, text)
}
