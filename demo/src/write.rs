//! The write interactions: create (also conditional), update, delete, and batch/transaction
//! dispatch.

use crate::bundle;
use crate::interact::{execute_read, only_params, versioned, Op, Request};
use crate::response::{information, outcome_value, Failure, Reply};
use crate::search;
use crate::store::{check_resource, Db, Lookup};
use crate::{transaction, DemoConfig};
use fhirwall::fhir::IssueType;
use http::StatusCode;
use serde_json::Value;

fn prefer_body(req: &Request, stored: Option<Value>, text: &'static str) -> Option<Value> {
    let prefer = req.prefer.as_deref().unwrap_or_default();
    if prefer.contains("return=minimal") {
        None
    } else if prefer.contains("return=OperationOutcome") {
        Some(outcome_value(&information(text)))
    } else {
        stored
    }
}

fn body_for<'a>(req: &'a Request, ty: &str) -> Result<&'a Value, Failure> {
    let body = req.body.as_ref().ok_or_else(|| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            IssueType::Required,
            "a resource body is required",
        )
    })?;
    check_resource(body, Some(ty)).map_err(|e| Failure::invalid(e.to_string()))?;
    Ok(body)
}

fn parse_etag(tag: &str) -> Option<u64> {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    tag.trim_matches('"').parse().ok()
}

/// 412: a conditional interaction matched more than one resource.
pub(crate) fn multiple_matches() -> Failure {
    Failure::new(
        StatusCode::PRECONDITION_FAILED,
        IssueType::MultipleMatches,
        "If-None-Exist matches more than one resource",
    )
}

/// The ids of the `ty` resources an `If-None-Exist` query matches.
pub(crate) fn conditional_matches(
    db: &Db,
    cfg: &DemoConfig,
    ty: &str,
    condition: &str,
) -> Result<Vec<String>, Failure> {
    let condition = condition.trim();
    let condition = condition.split_once('?').map_or(condition, |(_, q)| q);
    let pairs: Vec<(String, String)> = form_urlencoded::parse(condition.as_bytes())
        .into_owned()
        .collect();
    let query = search::parse(Some(ty), &pairs, &cfg.base_url)?;
    if query.filters.is_empty() {
        return Err(Failure::invalid("If-None-Exist has no search criteria"));
    }
    Ok(search::select(db, ty, &query.filters, &cfg.base_url)
        .iter()
        .filter_map(|r| r.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect())
}

/// Runs any interaction, writes included.
pub(crate) fn execute_write(
    db: &mut Db,
    cfg: &DemoConfig,
    req: &Request,
) -> Result<Reply, Failure> {
    let base = cfg.base_url.clone();
    match &req.op {
        Op::Create { ty } => {
            only_params(&req.params, &[])?;
            let body = body_for(req, ty)?;
            if let Some(condition) = &req.if_none_exist {
                match conditional_matches(db, cfg, ty, condition)?.as_slice() {
                    [] => {}
                    [id] => {
                        if let Lookup::Live(v) = db.lookup(ty, id) {
                            let mut reply = versioned(v, StatusCode::OK);
                            reply.location = Some(format!(
                                "{}/_history/{}",
                                bundle::full_url(&base, ty, id),
                                v.version_id
                            ));
                            reply.body =
                                prefer_body(req, reply.body, "a matching resource already exists");
                            return Ok(reply);
                        }
                    }
                    _ => return Err(multiple_matches()),
                }
            }
            let id = match &req.assigned_id {
                Some(id) => id.clone(),
                None => db.fresh_id(ty),
            };
            let (v, _) = db.put(ty, &id, body.clone());
            let mut reply = versioned(&v, StatusCode::CREATED);
            reply.location = Some(format!(
                "{}/_history/{}",
                bundle::full_url(&base, ty, &id),
                v.version_id
            ));
            reply.body = prefer_body(req, reply.body, "created");
            Ok(reply)
        }
        Op::Update { ty, id } => {
            only_params(&req.params, &[])?;
            let body = body_for(req, ty)?;
            if body.get("id").and_then(Value::as_str) != Some(id.as_str()) {
                return Err(Failure::invalid(
                    "the resource id must be present and equal the id in the URL",
                ));
            }
            if let Some(tag) = &req.if_match {
                let current = match db.lookup(ty, id) {
                    Lookup::Live(v) => Some(v.version_id),
                    _ => None,
                };
                if current.is_none() || parse_etag(tag) != current {
                    return Err(Failure::new(
                        StatusCode::PRECONDITION_FAILED,
                        IssueType::Conflict,
                        "If-Match does not name the current version",
                    ));
                }
            }
            let (v, created) = db.put(ty, id, body.clone());
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut reply = versioned(&v, status);
            reply.location = Some(format!(
                "{}/_history/{}",
                bundle::full_url(&base, ty, id),
                v.version_id
            ));
            reply.body = prefer_body(req, reply.body, if created { "created" } else { "updated" });
            Ok(reply)
        }
        Op::Delete { ty, id } => {
            only_params(&req.params, &[])?;
            match db.lookup(ty, id) {
                Lookup::Missing => Err(Failure::not_found(format!("{ty}/{id} is not known"))),
                Lookup::Deleted => Ok(Reply::ok(outcome_value(&information(format!(
                    "{ty}/{id} was already deleted"
                ))))),
                Lookup::Live(_) => {
                    let v = db.delete(ty, id);
                    let mut reply =
                        Reply::ok(outcome_value(&information(format!("{ty}/{id} deleted"))));
                    reply.version = v.map(|v| (v.version_id, v.last_updated_ms));
                    Ok(reply)
                }
            }
        }
        Op::Bundle => {
            only_params(&req.params, &[])?;
            let body = req.body.as_ref().ok_or_else(|| {
                Failure::new(
                    StatusCode::BAD_REQUEST,
                    IssueType::Required,
                    "a Bundle body is required",
                )
            })?;
            transaction::process(db, cfg, body)
        }
        _ => execute_read(db, cfg, req),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags() {
        assert_eq!(parse_etag("W/\"3\""), Some(3));
        assert_eq!(parse_etag("\"4\""), Some(4));
        assert_eq!(parse_etag("W/\"x\""), None);
    }
}
