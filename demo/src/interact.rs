//! The FHIR REST interactions, independent of HTTP so that batch and transaction entries run
//! through exactly the same code as plain requests.

use crate::bundle::{self, Paging};
use crate::response::{Failure, Reply};
use crate::store::{valid_id, Db, HistoryScope, Lookup, Version};
use crate::{capability, compartment, search, DemoConfig};
use fhirwall::fhir::{IssueType, ResourceType};
use http::{Method, StatusCode};
use serde_json::Value;

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Metadata,
    Read { ty: String, id: String },
    VRead { ty: String, id: String, vid: String },
    HistorySystem,
    HistoryType { ty: String },
    HistoryInstance { ty: String, id: String },
    Search { ty: String },
    Compartment { id: String, ty: String },
    Everything { id: String },
    Create { ty: String },
    Update { ty: String, id: String },
    Delete { ty: String, id: String },
    Bundle,
}

impl Op {
    pub(crate) fn is_write(&self) -> bool {
        matches!(
            self,
            Op::Create { .. } | Op::Update { .. } | Op::Delete { .. } | Op::Bundle
        )
    }
}

/// One interaction, from an HTTP request or a batch entry.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) op: Op,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) body: Option<Value>,
    pub(crate) if_none_exist: Option<String>,
    pub(crate) if_match: Option<String>,
    pub(crate) if_none_match: Option<String>,
    pub(crate) prefer: Option<String>,
    /// The id a transaction already chose for a POSTed `urn:uuid:` entry.
    pub(crate) assigned_id: Option<String>,
}

impl Request {
    pub(crate) fn new(op: Op, params: Vec<(String, String)>) -> Self {
        Request {
            op,
            params,
            body: None,
            if_none_exist: None,
            if_match: None,
            if_none_match: None,
            prefer: None,
            assigned_id: None,
        }
    }
}

fn resource_type(segment: &str) -> Result<String, Failure> {
    if segment.starts_with('$') {
        return Err(Failure::unsupported(format!(
            "operation {segment} is not supported"
        )));
    }
    match ResourceType::from_name(segment) {
        Some(_) => Ok(segment.to_owned()),
        None => Err(Failure::new(
            StatusCode::NOT_FOUND,
            IssueType::NotSupported,
            format!("unknown resource type {segment:?}"),
        )),
    }
}

fn logical_id(segment: &str) -> Result<String, Failure> {
    if segment.starts_with('$') {
        return Err(Failure::unsupported(format!(
            "operation {segment} is not supported"
        )));
    }
    if valid_id(segment) {
        Ok(segment.to_owned())
    } else {
        Err(Failure::invalid(
            "the id is not a valid FHIR id ([A-Za-z0-9-.]{1,64})",
        ))
    }
}

fn method_not_allowed(method: &Method) -> Failure {
    Failure::new(
        StatusCode::METHOD_NOT_ALLOWED,
        IssueType::NotSupported,
        format!("{method} is not allowed here"),
    )
}

/// Maps a method and the path segments after the base to an interaction.
pub(crate) fn parse_route(method: &Method, segments: &[&str]) -> Result<Op, Failure> {
    let get = *method == Method::GET || *method == Method::HEAD;
    let post = *method == Method::POST;
    match segments {
        [] if post => Ok(Op::Bundle),
        [] if get => Err(Failure::unsupported("system-level search is not supported")),
        ["metadata"] if get => Ok(Op::Metadata),
        ["_history"] if get => Ok(Op::HistorySystem),
        [] | ["metadata"] | ["_history"] => Err(method_not_allowed(method)),
        [ty] => {
            let ty = resource_type(ty)?;
            match () {
                _ if get => Ok(Op::Search { ty }),
                _ if post => Ok(Op::Create { ty }),
                _ => Err(method_not_allowed(method)),
            }
        }
        [ty, "_search"] if post => Ok(Op::Search {
            ty: resource_type(ty)?,
        }),
        [ty, "_history"] if get => Ok(Op::HistoryType {
            ty: resource_type(ty)?,
        }),
        [_, "_search" | "_history"] => Err(method_not_allowed(method)),
        [ty, id] => {
            let ty = resource_type(ty)?;
            let id = logical_id(id)?;
            match *method {
                _ if get => Ok(Op::Read { ty, id }),
                Method::PUT => Ok(Op::Update { ty, id }),
                Method::DELETE => Ok(Op::Delete { ty, id }),
                _ => Err(method_not_allowed(method)),
            }
        }
        ["Patient", id, "$everything"] if get || post => Ok(Op::Everything {
            id: logical_id(id)?,
        }),
        [ty, id, "_history"] if get => Ok(Op::HistoryInstance {
            ty: resource_type(ty)?,
            id: logical_id(id)?,
        }),
        [ty, id, "_history", vid] if get => Ok(Op::VRead {
            ty: resource_type(ty)?,
            id: logical_id(id)?,
            vid: (*vid).to_owned(),
        }),
        ["Patient", id, other] if get && !other.starts_with('$') && !other.starts_with('_') => {
            let id = logical_id(id)?;
            let ty = if *other == "*" {
                "*".to_owned()
            } else {
                resource_type(other)?
            };
            Ok(Op::Compartment { id, ty })
        }
        [_, _, op] if op.starts_with('$') => Err(Failure::unsupported(format!(
            "operation {op} is not supported"
        ))),
        [_, _, "_history"] | [_, _, "_history", _] | ["Patient", _, _] => {
            Err(method_not_allowed(method))
        }
        _ => Err(Failure::not_found("no FHIR interaction at this path")),
    }
}

/// Refuses any parameter but `_format` / `_pretty` (plus `allowed`).
pub(crate) fn only_params(params: &[(String, String)], allowed: &[&str]) -> Result<(), Failure> {
    for (key, value) in params {
        match key.as_str() {
            "_format" => search::check_format(value)?,
            "_pretty" => {}
            k if allowed.contains(&k) => {}
            k => {
                return Err(Failure::invalid(format!(
                    "unknown parameter {k:?} for this interaction"
                )))
            }
        }
    }
    Ok(())
}

pub(crate) fn versioned(v: &Version, status: StatusCode) -> Reply {
    Reply {
        status,
        body: v.resource.clone(),
        location: None,
        version: Some((v.version_id, v.last_updated_ms)),
    }
}

/// Runs a read-only interaction.
pub(crate) fn execute_read(db: &Db, cfg: &DemoConfig, req: &Request) -> Result<Reply, Failure> {
    let base = cfg.base_url.as_str();
    match &req.op {
        Op::Metadata => {
            only_params(&req.params, &["mode"])?;
            Ok(Reply::ok(capability::statement(db, cfg)))
        }
        Op::Read { ty, id } => {
            only_params(&req.params, &[])?;
            match db.lookup(ty, id) {
                Lookup::Live(v) => {
                    if req
                        .if_none_match
                        .as_deref()
                        .is_some_and(|tag| tag.trim() == v.etag())
                    {
                        let mut reply = versioned(v, StatusCode::NOT_MODIFIED);
                        reply.body = None;
                        return Ok(reply);
                    }
                    Ok(versioned(v, StatusCode::OK))
                }
                Lookup::Deleted => Err(Failure::gone(format!("{ty}/{id} has been deleted"))),
                Lookup::Missing => Err(Failure::not_found(format!("{ty}/{id} is not known"))),
            }
        }
        Op::VRead { ty, id, vid } => {
            only_params(&req.params, &[])?;
            let found = vid.parse::<u64>().ok().and_then(|n| db.version(ty, id, n));
            match found {
                Some(v) if v.resource.is_some() => Ok(versioned(v, StatusCode::OK)),
                Some(_) => Err(Failure::gone(format!(
                    "version {vid} of {ty}/{id} is a deletion"
                ))),
                None => Err(Failure::not_found(format!(
                    "{ty}/{id} has no version {vid:?}"
                ))),
            }
        }
        Op::HistorySystem => history(
            db,
            cfg,
            req,
            HistoryScope::System,
            format!("{base}/_history"),
        ),
        Op::HistoryType { ty } => history(
            db,
            cfg,
            req,
            HistoryScope::Type(ty),
            format!("{base}/{ty}/_history"),
        ),
        Op::HistoryInstance { ty, id } => {
            if db.versions(ty, id).is_none() {
                return Err(Failure::not_found(format!("{ty}/{id} is not known")));
            }
            let link = format!("{base}/{ty}/{id}/_history");
            history(db, cfg, req, HistoryScope::Instance(ty, id), link)
        }
        Op::Search { ty } => {
            let query = search::parse(Some(ty), &req.params, base)?;
            let mut matches = search::select(db, ty, &query.filters, base);
            search::sort(&mut matches, &query.sort);
            Ok(Reply::ok(search_bundle(
                db,
                cfg,
                &format!("{base}/{ty}"),
                &query,
                &matches,
            )))
        }
        Op::Compartment { id, ty } => compartment::search(db, cfg, id, ty, &req.params),
        Op::Everything { id } => compartment::everything(db, cfg, id, &req.params),
        Op::Create { .. } | Op::Update { .. } | Op::Delete { .. } | Op::Bundle => {
            Err(Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                IssueType::Exception,
                "a write reached the read path",
            ))
        }
    }
}

/// Pages, includes and wraps matches into a searchset Bundle.
pub(crate) fn search_bundle(
    db: &Db,
    cfg: &DemoConfig,
    link_base: &str,
    query: &search::Query,
    matches: &[&Value],
) -> Value {
    let count = if query.summary_count { 0 } else { query.count };
    let paging = Paging {
        link_base,
        echo: &query.echo,
        count,
        offset: query.offset,
        total: matches.len(),
    };
    let page = bundle::page(matches, count, query.offset);
    let included = search::includes(db, &page, query, &cfg.base_url);
    bundle::searchset(&cfg.base_url, &paging, &page, &included, "include")
}

fn history(
    db: &Db,
    cfg: &DemoConfig,
    req: &Request,
    scope: HistoryScope<'_>,
    link_base: String,
) -> Result<Reply, Failure> {
    let mut count = search::DEFAULT_COUNT;
    let mut offset = 0;
    let mut since = None;
    let mut echo = Vec::new();
    for (key, value) in &req.params {
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| Failure::invalid(format!("{key} must be a non-negative integer")))
        };
        match key.as_str() {
            "_count" => count = number()?.min(search::MAX_COUNT),
            "_offset" => offset = number()?,
            "_since" => {
                let range = crate::time::parse_range(value)
                    .ok_or_else(|| Failure::invalid("_since must be a FHIR instant"))?;
                since = Some(range.0);
                echo.push((key.clone(), value.clone()));
            }
            _ => {
                only_params(std::slice::from_ref(&(key.clone(), value.clone())), &[])?;
                echo.push((key.clone(), value.clone()));
            }
        }
    }
    let versions: Vec<&Version> = db
        .history(scope)
        .into_iter()
        .filter(|v| !matches!(since, Some(s) if v.last_updated_ms < s))
        .collect();
    let paging = Paging {
        link_base: &link_base,
        echo: &echo,
        count,
        offset,
        total: versions.len(),
    };
    let page = bundle::page(&versions, count, offset);
    Ok(Reply::ok(bundle::history(&cfg.base_url, &paging, &page)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let get = |path: &str| {
            let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            parse_route(&Method::GET, &segs)
        };
        assert_eq!(get("metadata").unwrap(), Op::Metadata);
        assert!(matches!(get("Patient/pat-1").unwrap(), Op::Read { .. }));
        assert!(matches!(
            get("Patient/pat-1/_history/2").unwrap(),
            Op::VRead { .. }
        ));
        assert!(matches!(
            get("Patient/pat-1/Observation").unwrap(),
            Op::Compartment { .. }
        ));
        assert!(matches!(
            get("Patient/pat-1/$everything").unwrap(),
            Op::Everything { .. }
        ));
        assert_eq!(get("Nope").unwrap_err().status, StatusCode::NOT_FOUND);
        assert_eq!(
            get("Patient/a b").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(get("a/b/c/d/e").unwrap_err().status, StatusCode::NOT_FOUND);
        assert_eq!(
            parse_route(&Method::PATCH, &["Patient", "x"])
                .unwrap_err()
                .status,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
