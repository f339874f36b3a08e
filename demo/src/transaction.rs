//! `POST [base]` with a `batch` or `transaction` Bundle.

use crate::bundle::new_bundle;
use crate::interact::{self, execute_read, Op, Request};
use crate::response::{status_line, Failure, Reply};
use crate::store::Db;
use crate::write::{conditional_matches, execute_write, multiple_matches};
use crate::DemoConfig;
use fhirwall::fhir::OperationOutcome;
use http::Method;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Runs a batch or transaction Bundle and answers with the response Bundle.
pub(crate) fn process(db: &mut Db, cfg: &DemoConfig, body: &Value) -> Result<Reply, Failure> {
    if body.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(Failure::invalid("POST to the base needs a Bundle"));
    }
    let entries: &[Value] = match body.get("entry") {
        None => &[],
        Some(Value::Array(entries)) => entries,
        Some(_) => return Err(Failure::invalid("Bundle.entry must be an array")),
    };
    match body.get("type").and_then(Value::as_str) {
        Some("batch") => Ok(batch(db, cfg, entries)),
        Some("transaction") => transaction(db, cfg, entries),
        _ => Err(Failure::invalid("Bundle.type must be batch or transaction")),
    }
}

/// Turns one entry's `request` (and `resource`) into an interaction.
fn parse_entry(entry: &Value, cfg: &DemoConfig) -> Result<Request, Failure> {
    let request = entry
        .get("request")
        .and_then(Value::as_object)
        .ok_or_else(|| Failure::invalid("the entry has no request"))?;
    let text = |key: &str| request.get(key).and_then(Value::as_str);
    let method = match text("method") {
        Some("GET") => Method::GET,
        Some("HEAD") => Method::HEAD,
        Some("POST") => Method::POST,
        Some("PUT") => Method::PUT,
        Some("DELETE") => Method::DELETE,
        Some(other) => {
            return Err(Failure::unsupported(format!(
                "request.method {other:?} is not supported"
            )))
        }
        None => return Err(Failure::invalid("the entry has no request.method")),
    };
    let url = text("url").ok_or_else(|| Failure::invalid("the entry has no request.url"))?;
    let url = url.strip_prefix(cfg.base_url.as_str()).unwrap_or(url);
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let op = interact::parse_route(&method, &segments)?;
    if op == Op::Bundle {
        return Err(Failure::unsupported(
            "nested batches and transactions are not supported",
        ));
    }
    let params = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let mut req = Request::new(op, params);
    if method == Method::POST || method == Method::PUT {
        req.body = entry.get("resource").cloned();
    }
    req.if_none_exist = text("ifNoneExist").map(str::to_owned);
    req.if_match = text("ifMatch").map(str::to_owned);
    req.if_none_match = text("ifNoneMatch").map(str::to_owned);
    Ok(req)
}

fn run(db: &mut Db, cfg: &DemoConfig, req: &Request) -> Result<Reply, Failure> {
    if req.op.is_write() {
        execute_write(db, cfg, req)
    } else {
        execute_read(db, cfg, req)
    }
}

fn ok_entry(reply: Reply) -> Value {
    let mut response = Map::new();
    response.insert("status".into(), json!(status_line(reply.status)));
    if let Some(location) = &reply.location {
        response.insert("location".into(), json!(location));
    }
    if let Some(etag) = reply.etag() {
        response.insert("etag".into(), json!(etag));
    }
    if let Some((instant, _)) = reply.last_modified() {
        response.insert("lastModified".into(), json!(instant));
    }
    let mut entry = Map::new();
    match reply.body {
        Some(body)
            if body.get("resourceType").and_then(Value::as_str) == Some("OperationOutcome") =>
        {
            response.insert("outcome".into(), body);
        }
        Some(body) => {
            entry.insert("resource".into(), body);
        }
        None => {}
    }
    entry.insert("response".into(), Value::Object(response));
    Value::Object(entry)
}

fn error_entry(failure: &Failure) -> Value {
    json!({"response": {"status": status_line(failure.status), "outcome": failure.outcome_json()}})
}

fn batch(db: &mut Db, cfg: &DemoConfig, entries: &[Value]) -> Reply {
    let responses: Vec<Value> = entries
        .iter()
        .map(
            |entry| match parse_entry(entry, cfg).and_then(|req| run(db, cfg, &req)) {
                Ok(reply) => ok_entry(reply),
                Err(failure) => error_entry(&failure),
            },
        )
        .collect();
    let mut bundle = new_bundle("batch-response");
    bundle.insert("entry".into(), Value::Array(responses));
    Reply::ok(Value::Object(bundle))
}

/// The failure of entry `index`, pointing at it.
fn at_entry(failure: Failure, index: usize) -> Failure {
    let mut outcome = OperationOutcome::new();
    for issue in failure.outcome.issues() {
        outcome.push(
            issue
                .clone()
                .with_expression(format!("Bundle.entry[{index}]")),
        );
    }
    Failure {
        status: failure.status,
        outcome,
    }
}

/// FHIR's transaction processing order: deletes, creates, updates, then reads.
fn rank(op: &Op) -> u8 {
    match op {
        Op::Delete { .. } => 0,
        Op::Create { .. } => 1,
        Op::Update { .. } => 2,
        _ => 3,
    }
}

/// Replaces `urn:uuid:` references by the ids the transaction assigned.
fn resolve(value: &mut Value, ids: &HashMap<String, String>) {
    match value {
        Value::Object(obj) => {
            for (key, v) in obj.iter_mut() {
                match v {
                    Value::String(s) if key == "reference" => {
                        if let Some(local) = ids.get(s.as_str()) {
                            *s = local.clone();
                        }
                    }
                    _ => resolve(v, ids),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| resolve(v, ids)),
        _ => {}
    }
}

fn transaction(db: &mut Db, cfg: &DemoConfig, entries: &[Value]) -> Result<Reply, Failure> {
    let mut requests = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        requests.push(parse_entry(entry, cfg).map_err(|f| at_entry(f, index))?);
    }
    // All or nothing: work on a copy and swap it in only when every entry succeeded.
    let mut work = db.clone();
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by_key(|&i| requests.get(i).map_or(3, |r| rank(&r.op)));
    let mut replies: Vec<Option<Reply>> = vec![None; requests.len()];

    let mut deletes_done = false;
    for &index in &order {
        let Some(req) = requests.get(index) else {
            continue;
        };
        if !deletes_done && rank(&req.op) > 0 {
            deletes_done = true;
            assign_ids(&mut work, cfg, entries, &mut requests)?;
        }
        let Some(req) = requests.get(index) else {
            continue;
        };
        let reply = run(&mut work, cfg, req).map_err(|f| at_entry(f, index))?;
        if let Some(slot) = replies.get_mut(index) {
            *slot = Some(reply);
        }
    }
    *db = work;
    let mut bundle = new_bundle("transaction-response");
    bundle.insert(
        "entry".into(),
        Value::Array(replies.into_iter().flatten().map(ok_entry).collect()),
    );
    Ok(Reply::ok(Value::Object(bundle)))
}

/// Gives every POSTed `urn:uuid:` entry its id and rewrites references to it.
fn assign_ids(
    work: &mut Db,
    cfg: &DemoConfig,
    entries: &[Value],
    requests: &mut [Request],
) -> Result<(), Failure> {
    let mut ids: HashMap<String, String> = HashMap::new();
    for (index, (entry, req)) in entries.iter().zip(requests.iter_mut()).enumerate() {
        let Op::Create { ty } = &req.op else { continue };
        let Some(full_url) = entry.get("fullUrl").and_then(Value::as_str) else {
            continue;
        };
        if !full_url.starts_with("urn:uuid:") && !full_url.starts_with("urn:oid:") {
            continue;
        }
        if ids.contains_key(full_url) {
            return Err(at_entry(
                Failure::invalid(format!("duplicate fullUrl {full_url}")),
                index,
            ));
        }
        let existing = match &req.if_none_exist {
            Some(condition) => {
                conditional_matches(work, cfg, ty, condition).map_err(|f| at_entry(f, index))?
            }
            None => Vec::new(),
        };
        let id = match existing.as_slice() {
            [] => {
                let id = work.fresh_id(ty);
                req.assigned_id = Some(id.clone());
                id
            }
            [one] => one.clone(),
            _ => return Err(at_entry(multiple_matches(), index)),
        };
        ids.insert(full_url.to_owned(), format!("{ty}/{id}"));
    }
    if ids.is_empty() {
        return Ok(());
    }
    for req in requests.iter_mut() {
        if let Some(body) = &mut req.body {
            resolve(body, &ids);
        }
        for (_, value) in req.params.iter_mut() {
            if let Some(local) = ids.get(value.as_str()) {
                value.clone_from(local);
            }
        }
    }
    Ok(())
}
