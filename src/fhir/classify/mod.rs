//! The classifier: method + path + query + headers → [`FhirRequest`].

mod route;

use crate::fhir::interaction::{FhirRequest, Interaction, Operation, OperationLevel};
use crate::fhir::path::{is_fhir_id, is_operation_name, segments};
use crate::fhir::query::{Query, QueryError};
use crate::fhir::unclassified::{Unclassified, UnclassifiedKind};
use crate::fhir::ResourceType;
use http::{HeaderMap, HeaderName, Method, Uri};
use route::route;

/// Headers and parameters that ask a server to treat a request as another method. A firewall
/// that checked `POST` while the server ran `DELETE` would be bypassed, so all are refused.
const METHOD_OVERRIDE_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];
const IF_NONE_EXIST: HeaderName = HeaderName::from_static("if-none-exist");
const METHOD_OVERRIDE_PARAMS: [&str; 2] = ["_method", "_httpMethod"];

/// The compartment types of FHIR R4 (§3.1.0.10 and the CompartmentDefinition resources).
const COMPARTMENT_TYPES: [ResourceType; 5] = [
    ResourceType::Patient,
    ResourceType::Encounter,
    ResourceType::RelatedPerson,
    ResourceType::Practitioner,
    ResourceType::Device,
];

/// Classifies requests against one FHIR base path.
///
/// Defaults: base path `/fhir`, at most 100 query parameters, URIs of at most 8 KiB, bodies read
/// for classification (batch/transaction Bundles and `POST _search` forms) of at most 4 MiB, at
/// most 1,000 Bundle entries.
///
/// ```
/// use fhirwall::fhir::{Classifier, Interaction, ResourceType};
/// use http::{HeaderMap, HeaderName, Method, Uri};
///
/// let classifier = Classifier::new("/fhir");
/// let uri: Uri = "/fhir/Observation?subject=Patient/1&code=8480-6".parse().unwrap();
/// let request = classifier.classify(&Method::GET, &uri, &HeaderMap::new(), b"").unwrap();
/// assert_eq!(request.interaction(), Interaction::SearchType);
/// assert_eq!(request.resource_type(), Some(ResourceType::Observation));
///
/// let uri: Uri = "/fhir/patient/1".parse().unwrap();
/// let refused = classifier.classify(&Method::GET, &uri, &HeaderMap::new(), b"").unwrap_err();
/// assert_eq!(refused.status(), 404);
/// ```
#[derive(Clone, Debug)]
pub struct Classifier {
    base_path: String,
    aliases: Vec<String>,
    pub(crate) max_query_params: usize,
    max_uri_len: usize,
    pub(crate) max_body_len: usize,
    pub(crate) max_bundle_entries: usize,
}

/// What the classifier could tell from the request head alone.
#[derive(Debug)]
pub enum Classification {
    /// The request is classified.
    Done(FhirRequest),
    /// The body must be read to finish: a batch/transaction Bundle or a `POST _search` form.
    /// Pass it to [`Classifier::finish`].
    NeedsBody(PendingBody),
}

/// A request whose classification waits for its body.
#[derive(Debug)]
pub struct PendingBody {
    pub(crate) request: FhirRequest,
    pub(crate) kind: BodyKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Bundle,
    Form,
}

impl Default for Classifier {
    fn default() -> Self {
        Classifier::new("/fhir")
    }
}

fn normalise_base(base_path: &str) -> String {
    let trimmed = base_path.trim_end_matches('/');
    if trimmed.is_empty() || trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    }
}

impl Classifier {
    /// A classifier for FHIR requests under `base_path` (`/fhir`, `/r4`, or `/` for the root).
    pub fn new(base_path: &str) -> Self {
        Classifier {
            base_path: normalise_base(base_path),
            aliases: Vec::new(),
            max_query_params: 100,
            max_uri_len: 8 * 1024,
            max_body_len: 4 * 1024 * 1024,
            max_bundle_entries: 1000,
        }
    }

    /// Also classifies requests under another base path that serves the same routes (an old
    /// version's `/fhir-v0` kept alive until its sunset). None by default. The primary base is
    /// tried first; a request under an alias is classified exactly as under the primary base.
    ///
    /// ```
    /// use fhirwall::fhir::{Classifier, Interaction};
    /// use http::{HeaderMap, Method, Uri};
    ///
    /// let classifier = Classifier::new("/fhir").alias("/fhir-v0");
    /// let uri: Uri = "/fhir-v0/Patient/1".parse().unwrap();
    /// let request = classifier.classify(&Method::GET, &uri, &HeaderMap::new(), b"").unwrap();
    /// assert_eq!(request.interaction(), Interaction::Read);
    /// ```
    pub fn alias(mut self, base_path: &str) -> Self {
        self.aliases.push(normalise_base(base_path));
        self
    }

    /// Most query parameters a request may have (default 100). More is refused with 414.
    pub fn max_query_params(mut self, n: usize) -> Self {
        self.max_query_params = n;
        self
    }

    /// Longest path plus query, in bytes (default 8 KiB). Longer is refused with 414.
    pub fn max_uri_len(mut self, n: usize) -> Self {
        self.max_uri_len = n;
        self
    }

    /// Largest body read to classify a batch, transaction or `POST _search` (default 4 MiB).
    /// Larger is refused with 413.
    pub fn max_body_len(mut self, n: usize) -> Self {
        self.max_body_len = n;
        self
    }

    /// Most entries in a batch or transaction Bundle (default 1,000).
    pub fn max_bundle_entries(mut self, n: usize) -> Self {
        self.max_bundle_entries = n;
        self
    }

    /// The base path, without a trailing slash (empty for the root).
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// The most body bytes [`finish`](Self::finish) accepts.
    pub fn body_limit(&self) -> usize {
        self.max_body_len
    }

    /// Classifies a request, reading `body` only where classification needs it.
    pub fn classify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<FhirRequest, Unclassified> {
        match self.classify_head(method, uri, headers)? {
            Classification::Done(request) => Ok(request),
            Classification::NeedsBody(pending) => self.finish(pending, body),
        }
    }

    /// Classifies a request from its head; batch, transaction and `POST _search` need the body
    /// afterwards.
    pub fn classify_head(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Classification, Unclassified> {
        for name in &METHOD_OVERRIDE_HEADERS {
            if headers.contains_key(name) {
                return Err(Unclassified::new(
                    UnclassifiedKind::MethodOverride,
                    "method-override headers are not allowed",
                ));
            }
        }
        let path = uri.path();
        let raw_query = uri.query().unwrap_or("");
        if path.len() + raw_query.len() > self.max_uri_len {
            return Err(Unclassified::new(
                UnclassifiedKind::UriTooLong,
                "the request URI is longer than allowed",
            ));
        }
        let rest = self.strip_base(path)?;
        let segments = segments(rest)?;
        let (strs, len) = segments.as_strs();
        let query = parse_query(raw_query, self.max_query_params)?;
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let mut pending = None;
        let seg = strs.get(..len).unwrap_or_default();
        let mut request = route(method, seg, &query, content_type, &mut pending)?;
        request.query = query;
        if matches!(request.interaction, Interaction::Create) {
            if let Some(condition) = headers.get(IF_NONE_EXIST) {
                let condition = condition.to_str().map_err(|_| {
                    Unclassified::new(UnclassifiedKind::BadQuery, "If-None-Exist is not ASCII")
                })?;
                let condition = condition.strip_prefix('?').unwrap_or(condition);
                request.condition = Some(parse_query(condition, self.max_query_params)?);
                request.conditional = true;
            }
        }
        if let Some(if_match) = headers.get(http::header::IF_MATCH) {
            request.if_match = Some(
                if_match
                    .to_str()
                    .map_err(|_| {
                        Unclassified::new(UnclassifiedKind::BadQuery, "If-Match is not ASCII")
                    })?
                    .to_owned(),
            );
        }
        Ok(match pending {
            None => Classification::Done(request),
            Some(kind) => Classification::NeedsBody(PendingBody { request, kind }),
        })
    }

    /// Finishes a classification that needed the body.
    pub fn finish(&self, pending: PendingBody, body: &[u8]) -> Result<FhirRequest, Unclassified> {
        if body.len() > self.max_body_len {
            return Err(Unclassified::new(
                UnclassifiedKind::BodyTooLarge,
                "the request body is larger than allowed",
            ));
        }
        let mut request = pending.request;
        match pending.kind {
            BodyKind::Form => {
                let form = std::str::from_utf8(body).map_err(|_| {
                    Unclassified::new(UnclassifiedKind::BadQuery, "the form body is not UTF-8")
                })?;
                let remaining = self.max_query_params.saturating_sub(request.query.len());
                let form = parse_query(form.trim_end_matches(['\r', '\n']), remaining)?;
                request.query.extend(form).map_err(query_error)?;
                check_method_override_params(&request.query)?;
            }
            BodyKind::Bundle => {
                let (interaction, entries) = super::bundle::classify_entries(self, body)?;
                request.interaction = interaction;
                request.entries = entries;
            }
        }
        Ok(request)
    }

    fn strip_base<'p>(&self, path: &'p str) -> Result<&'p str, Unclassified> {
        let outside = || {
            Unclassified::new(
                UnclassifiedKind::OutsideBasePath,
                "the path is not under the FHIR base path",
            )
        };
        std::iter::once(&self.base_path)
            .chain(&self.aliases)
            .find_map(|base| {
                let after = path.strip_prefix(base.as_str())?;
                if after.is_empty() {
                    Some("")
                } else {
                    after.strip_prefix('/')
                }
            })
            .ok_or_else(outside)
    }

    /// Classifies a Bundle entry's `request.url` (relative to the base) with its method.
    pub(crate) fn classify_relative(
        &self,
        method: &Method,
        url: &str,
        if_none_exist: Option<&str>,
    ) -> Result<FhirRequest, Unclassified> {
        let (path, raw_query) = url.split_once('?').unwrap_or((url, ""));
        if path.len() + raw_query.len() > self.max_uri_len {
            return Err(Unclassified::new(
                UnclassifiedKind::UriTooLong,
                "an entry URL is longer than allowed",
            ));
        }
        let segments = segments(path)?;
        let (strs, len) = segments.as_strs();
        let query = parse_query(raw_query, self.max_query_params)?;
        let mut pending = None;
        let seg = strs.get(..len).unwrap_or_default();
        let mut request = route(method, seg, &query, None, &mut pending)?;
        if pending.is_some() {
            return Err(Unclassified::new(
                UnclassifiedKind::BadBundle,
                "a batch or transaction entry may not be a nested batch, transaction or POST _search",
            ));
        }
        request.query = query;
        if let (Interaction::Create, Some(condition)) = (request.interaction, if_none_exist) {
            let condition = condition.strip_prefix('?').unwrap_or(condition);
            request.condition = Some(parse_query(condition, self.max_query_params)?);
            request.conditional = true;
        }
        Ok(request)
    }
}

fn query_error(e: QueryError) -> Unclassified {
    let kind = match e {
        QueryError::TooManyParams { .. } => UnclassifiedKind::UriTooLong,
        _ => UnclassifiedKind::BadQuery,
    };
    Unclassified::new(kind, e.to_string())
}

fn parse_query(raw: &str, max_params: usize) -> Result<Query, Unclassified> {
    let query = Query::parse(raw, max_params).map_err(query_error)?;
    check_method_override_params(&query)?;
    Ok(query)
}

fn check_method_override_params(query: &Query) -> Result<(), Unclassified> {
    if query
        .params()
        .any(|p| METHOD_OVERRIDE_PARAMS.contains(&p.name()))
    {
        return Err(Unclassified::new(
            UnclassifiedKind::MethodOverride,
            "method-override parameters are not allowed",
        ));
    }
    Ok(())
}

/// A path segment in the place of a resource type.
fn resource_type(segment: &str) -> Result<ResourceType, Unclassified> {
    ResourceType::from_name(segment).ok_or_else(|| {
        Unclassified::new(
            UnclassifiedKind::UnknownResourceType,
            "the path names a resource type that FHIR R4 does not have (names are case-sensitive)",
        )
    })
}

fn fhir_id(segment: &str) -> Result<String, Unclassified> {
    if is_fhir_id(segment) {
        Ok(segment.to_owned())
    } else {
        Err(Unclassified::new(
            UnclassifiedKind::BadId,
            "ids must match [A-Za-z0-9-.]{1,64}",
        ))
    }
}

fn operation(segment: &str, level: OperationLevel) -> Result<Option<Operation>, Unclassified> {
    let Some(name) = segment.strip_prefix('$') else {
        return Ok(None);
    };
    if !is_operation_name(name) {
        return Err(Unclassified::new(
            UnclassifiedKind::UnknownRoute,
            "the operation name is not valid",
        ));
    }
    Ok(Some(Operation {
        name: name.to_owned(),
        level,
    }))
}

fn is_json(content_type: Option<&str>) -> bool {
    matches!(
        media_type(content_type).as_deref(),
        Some("application/fhir+json" | "application/json")
    )
}

fn media_type(content_type: Option<&str>) -> Option<String> {
    content_type.map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    })
}

impl PendingBody {
    /// The request as classified from its head (a batch shows as [`Interaction::Batch`] until
    /// the Bundle's type is read).
    pub fn request(&self) -> &FhirRequest {
        &self.request
    }
}
