//! What an interaction answers: a [`Reply`] or a [`Failure`] (an `OperationOutcome`), usable
//! both as an HTTP response and as a batch/transaction response entry.

use crate::time;
use axum::body::Body;
use axum::response::Response;
use fhirwall::fhir::{Issue, IssueSeverity, IssueType, OperationOutcome, FHIR_JSON};
use http::header::{HeaderValue, CONTENT_TYPE, ETAG, LAST_MODIFIED, LOCATION};
use http::StatusCode;
use serde_json::Value;
use std::borrow::Cow;

/// A failed interaction: an HTTP status and the `OperationOutcome` explaining it.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    pub(crate) status: StatusCode,
    pub(crate) outcome: OperationOutcome,
}

impl Failure {
    pub(crate) fn new(
        status: StatusCode,
        code: IssueType,
        text: impl Into<Cow<'static, str>>,
    ) -> Self {
        Failure {
            status,
            outcome: OperationOutcome::error(code, text),
        }
    }

    /// 400 with issue type `invalid`.
    pub(crate) fn invalid(text: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, IssueType::Invalid, text)
    }

    /// 400 with issue type `not-supported`.
    pub(crate) fn unsupported(text: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, IssueType::NotSupported, text)
    }

    /// 404 with issue type `not-found`.
    pub(crate) fn not_found(text: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, IssueType::NotFound, text)
    }

    /// 410 with issue type `deleted`.
    pub(crate) fn gone(text: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::GONE, IssueType::Deleted, text)
    }

    /// The outcome as a JSON value (for `Bundle.entry.response.outcome`).
    pub(crate) fn outcome_json(&self) -> Value {
        outcome_value(&self.outcome)
    }

    pub(crate) fn into_response(self) -> Response {
        self.outcome.into_response(self.status).map(Body::new)
    }
}

/// An `OperationOutcome` as a JSON value.
pub(crate) fn outcome_value(outcome: &OperationOutcome) -> Value {
    serde_json::from_slice(&outcome.to_json()).unwrap_or(Value::Null)
}

/// An `information` outcome with this text.
pub(crate) fn information(text: impl Into<Cow<'static, str>>) -> OperationOutcome {
    OperationOutcome::new().with_issue(
        Issue::new(IssueSeverity::Information, IssueType::Informational).with_text(text),
    )
}

/// A successful interaction.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Option<Value>,
    /// `Location` (absolute, versioned) for creates and updates.
    pub(crate) location: Option<String>,
    /// (versionId, lastUpdated ms) of the resource in the body: `ETag` and `Last-Modified`.
    pub(crate) version: Option<(u64, i64)>,
}

impl Reply {
    pub(crate) fn ok(body: Value) -> Self {
        Reply {
            status: StatusCode::OK,
            body: Some(body),
            location: None,
            version: None,
        }
    }

    pub(crate) fn etag(&self) -> Option<String> {
        self.version.map(|(vid, _)| format!("W/\"{vid}\""))
    }

    pub(crate) fn last_modified(&self) -> Option<(String, String)> {
        self.version
            .map(|(_, ms)| (time::format_instant(ms), time::format_http_date(ms)))
    }

    pub(crate) fn into_response(self) -> Response {
        let bytes = match &self.body {
            Some(body) => match serde_json::to_vec(body) {
                Ok(bytes) => bytes,
                Err(_) => {
                    return Failure::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        IssueType::Exception,
                        "the response could not be serialized",
                    )
                    .into_response()
                }
            },
            None => Vec::new(),
        };
        let has_body = self.body.is_some();
        let mut response = Response::new(Body::from(bytes));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        if has_body {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
        }
        let mut set = |name, value: Option<String>| {
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                headers.insert(name, v);
            }
        };
        set(ETAG, self.etag());
        set(LAST_MODIFIED, self.last_modified().map(|(_, http)| http));
        set(LOCATION, self.location.clone());
        response
    }
}

/// `"201 Created"`: the status as `Bundle.entry.response.status` spells it.
pub(crate) fn status_line(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}
