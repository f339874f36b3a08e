//! The axum side: one fallback handler that maps HTTP onto the interactions.

use crate::interact::{execute_read, parse_route, Op, Request};
use crate::response::Failure;
use crate::store::MemoryStore;
use crate::write::execute_write;
use crate::DemoConfig;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::Router;
use fhirwall::fhir::{Issue, IssueType, OperationOutcome};
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use std::sync::Arc;

/// The largest request body accepted.
const MAX_BODY: usize = 8 * 1024 * 1024;

#[derive(Clone)]
struct App {
    store: MemoryStore,
    cfg: Arc<DemoConfig>,
}

/// `"/fhir/"` → `"/fhir"`, `"fhir"` → `"/fhir"`, `"/"` → `""`.
pub(crate) fn normalize_base_path(base_path: &str) -> String {
    let trimmed = base_path.trim().trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

/// The part of `path` after `base` (`""` or starting with `/`), if `path` is under `base`.
pub(crate) fn strip_base<'a>(path: &'a str, base: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(base)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// The demo FHIR server over `store`, answering under `config.base_path`.
///
/// Every path, under the base or not, answers FHIR JSON; errors are `OperationOutcome`s.
///
/// ```
/// use fhirwall_demo::{router, sample, DemoConfig, MemoryStore};
///
/// let store = MemoryStore::new();
/// sample::load(&store, sample::DEFAULT_SEED);
/// let app: axum::Router = router(store, DemoConfig::default());
/// ```
pub fn router(store: MemoryStore, config: DemoConfig) -> Router {
    let cfg = DemoConfig {
        base_path: normalize_base_path(&config.base_path),
        base_url: config.base_url.trim_end_matches('/').to_owned(),
    };
    Router::new().fallback(handle).with_state(App {
        store,
        cfg: Arc::new(cfg),
    })
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    header(headers, CONTENT_TYPE.as_str()).map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    })
}

fn is_json(media: &str) -> bool {
    matches!(
        media,
        "application/fhir+json" | "application/json" | "application/json+fhir"
    )
}

/// Refuses an `Accept` header that rules JSON out.
fn check_accept(headers: &HeaderMap) -> Result<(), Failure> {
    let Some(accept) = header(headers, ACCEPT.as_str()) else {
        return Ok(());
    };
    let ok = accept.split(',').any(|item| {
        let media = item.split(';').next().unwrap_or_default().trim();
        is_json(media) || media == "*/*" || media == "application/*" || media.is_empty()
    });
    if ok {
        Ok(())
    } else {
        Err(Failure::new(
            StatusCode::NOT_ACCEPTABLE,
            IssueType::NotSupported,
            "this server only answers application/fhir+json",
        ))
    }
}

async fn handle(State(app): State<App>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return Failure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                IssueType::TooLong,
                "the request body is too large or could not be read",
            )
            .into_response()
        }
    };
    match prepare(&app.cfg, &parts.method, &parts.uri, &parts.headers, &bytes) {
        Ok(req) => run(&app, &req),
        Err(failure) => failure.into_response(),
    }
}

/// Turns the HTTP request into an interaction.
fn prepare(
    cfg: &DemoConfig,
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    bytes: &Bytes,
) -> Result<Request, Failure> {
    let rest = strip_base(uri.path(), &cfg.base_path).ok_or_else(|| {
        Failure::not_found(format!("the FHIR base is {}", cfg.base_path_or_root()))
    })?;
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let op = parse_route(method, &segments)?;
    check_accept(headers)?;
    let mut params: Vec<(String, String)> = uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let media = media_type(headers);
    let mut body = None;
    if matches!(op, Op::Search { .. }) && *method == Method::POST {
        match media.as_deref() {
            None | Some("application/x-www-form-urlencoded") => {
                params.extend(form_urlencoded::parse(bytes).into_owned());
            }
            Some(_) => {
                return Err(Failure::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    IssueType::NotSupported,
                    "POST _search takes an application/x-www-form-urlencoded body",
                ))
            }
        }
    } else if *method == Method::POST || *method == Method::PUT {
        if !media.as_deref().map_or(true, is_json) {
            return Err(Failure::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                IssueType::NotSupported,
                "send resources as Content-Type: application/fhir+json",
            ));
        }
        if !bytes.is_empty() {
            let value = serde_json::from_slice(bytes).map_err(|e| Failure {
                status: StatusCode::BAD_REQUEST,
                outcome: OperationOutcome::new().with_issue(
                    Issue::error(IssueType::Structure, "the body is not valid JSON")
                        .with_diagnostics(format!("line {}, column {}", e.line(), e.column())),
                ),
            })?;
            body = Some(value);
        }
    }
    let mut req = Request::new(op, params);
    req.body = body;
    req.if_none_exist = header(headers, "if-none-exist");
    req.if_match = header(headers, "if-match");
    req.if_none_match = header(headers, "if-none-match");
    req.prefer = header(headers, "prefer");
    Ok(req)
}

/// Runs the interaction under the store lock (never held across an await).
fn run(app: &App, req: &Request) -> Response {
    let result = if req.op.is_write() {
        let mut db = app.store.write_db();
        execute_write(&mut db, &app.cfg, req)
    } else {
        let db = app.store.read_db();
        execute_read(&db, &app.cfg, req)
    };
    match result {
        Ok(reply) => reply.into_response(),
        Err(failure) => failure.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths() {
        assert_eq!(normalize_base_path("/fhir/"), "/fhir");
        assert_eq!(normalize_base_path("fhir"), "/fhir");
        assert_eq!(normalize_base_path("/"), "");
        assert_eq!(strip_base("/fhir/Patient", "/fhir"), Some("/Patient"));
        assert_eq!(strip_base("/fhir", "/fhir"), Some(""));
        assert_eq!(strip_base("/fhirx/Patient", "/fhir"), None);
        assert_eq!(strip_base("/Patient", ""), Some("/Patient"));
    }
}
