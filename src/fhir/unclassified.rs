//! Why a request could not be classified, and the refusal it gets.

use super::outcome::{Issue, IssueType, OperationOutcome};
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use std::borrow::Cow;

/// The reason a request is not a well-formed FHIR R4 REST request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnclassifiedKind {
    /// The path is not under the FHIR base path.
    OutsideBasePath,
    /// The path has a shape no FHIR interaction has.
    UnknownRoute,
    /// A path segment where a resource type belongs is not an R4 resource type (names are
    /// case-sensitive).
    UnknownResourceType,
    /// The method is not allowed on this path.
    MethodNotAllowed,
    /// The path is unsafe or ambiguous: encoded slashes, dot segments, empty segments, bad
    /// percent-encoding, control or non-ASCII characters, path parameters.
    BadPath,
    /// An id or version id breaks `[A-Za-z0-9\-\.]{1,64}` (FHIR R4 §2.26.0.2 "id").
    BadId,
    /// The query string could not be parsed, or is ambiguous.
    BadQuery,
    /// The request line is longer than the configured limit.
    UriTooLong,
    /// A method-override header or parameter (`X-HTTP-Method-Override`, `_method` …).
    MethodOverride,
    /// The body needed for classification is larger than the configured limit.
    BodyTooLarge,
    /// The body needed for classification has an unsupported content type.
    UnsupportedMediaType,
    /// The Bundle of a batch or transaction is malformed, or one of its entries is.
    BadBundle,
    /// The body could not be read.
    BodyUnreadable,
}

impl UnclassifiedKind {
    /// The HTTP status the refusal gets.
    pub const fn status(self) -> StatusCode {
        match self {
            UnclassifiedKind::OutsideBasePath
            | UnclassifiedKind::UnknownRoute
            | UnclassifiedKind::UnknownResourceType => StatusCode::NOT_FOUND,
            UnclassifiedKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            UnclassifiedKind::BadPath
            | UnclassifiedKind::BadId
            | UnclassifiedKind::BadQuery
            | UnclassifiedKind::MethodOverride
            | UnclassifiedKind::BadBundle
            | UnclassifiedKind::BodyUnreadable => StatusCode::BAD_REQUEST,
            UnclassifiedKind::UriTooLong => StatusCode::URI_TOO_LONG,
            UnclassifiedKind::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnclassifiedKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// The `OperationOutcome.issue.code` of the refusal.
    pub const fn issue_type(self) -> IssueType {
        match self {
            UnclassifiedKind::OutsideBasePath | UnclassifiedKind::UnknownRoute => {
                IssueType::NotFound
            }
            UnclassifiedKind::UnknownResourceType | UnclassifiedKind::MethodNotAllowed => {
                IssueType::NotSupported
            }
            UnclassifiedKind::BadPath
            | UnclassifiedKind::BadId
            | UnclassifiedKind::BadQuery
            | UnclassifiedKind::BadBundle => IssueType::Invalid,
            UnclassifiedKind::MethodOverride => IssueType::Security,
            UnclassifiedKind::UriTooLong | UnclassifiedKind::BodyTooLarge => IssueType::TooLong,
            UnclassifiedKind::UnsupportedMediaType => IssueType::NotSupported,
            UnclassifiedKind::BodyUnreadable => IssueType::Structure,
        }
    }

    /// A short stable name for logs and audit records.
    pub const fn as_str(self) -> &'static str {
        match self {
            UnclassifiedKind::OutsideBasePath => "outside-base-path",
            UnclassifiedKind::UnknownRoute => "unknown-route",
            UnclassifiedKind::UnknownResourceType => "unknown-resource-type",
            UnclassifiedKind::MethodNotAllowed => "method-not-allowed",
            UnclassifiedKind::BadPath => "bad-path",
            UnclassifiedKind::BadId => "bad-id",
            UnclassifiedKind::BadQuery => "bad-query",
            UnclassifiedKind::UriTooLong => "uri-too-long",
            UnclassifiedKind::MethodOverride => "method-override",
            UnclassifiedKind::BodyTooLarge => "body-too-large",
            UnclassifiedKind::UnsupportedMediaType => "unsupported-media-type",
            UnclassifiedKind::BadBundle => "bad-bundle",
            UnclassifiedKind::BodyUnreadable => "body-unreadable",
        }
    }
}

/// A request that is not a well-formed FHIR R4 REST request. Every layer refuses these by
/// default (fail closed); [`into_response`](Self::into_response) gives the refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unclassified {
    kind: UnclassifiedKind,
    text: Cow<'static, str>,
    expression: Option<Cow<'static, str>>,
    allow: Option<&'static str>,
}

impl Unclassified {
    pub(crate) fn new(kind: UnclassifiedKind, text: impl Into<Cow<'static, str>>) -> Self {
        Unclassified {
            kind,
            text: text.into(),
            expression: None,
            allow: None,
        }
    }

    pub(crate) fn method_not_allowed(allow: &'static str) -> Self {
        let mut u = Unclassified::new(
            UnclassifiedKind::MethodNotAllowed,
            "this method is not allowed on this FHIR path",
        );
        u.allow = Some(allow);
        u
    }

    pub(crate) fn at(mut self, expression: impl Into<Cow<'static, str>>) -> Self {
        self.expression = Some(expression.into());
        self
    }

    /// Why.
    pub fn kind(&self) -> UnclassifiedKind {
        self.kind
    }

    /// The human-readable reason (safe to show: it only names parts of the request).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The HTTP status of the refusal.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The refusal as an `OperationOutcome`.
    pub fn to_outcome(&self) -> OperationOutcome {
        let mut issue = Issue::error(self.kind.issue_type(), self.text.clone());
        if let Some(expression) = &self.expression {
            issue = issue.with_expression(expression.clone());
        }
        OperationOutcome::new().with_issue(issue)
    }

    /// The refusal as a response.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let status = self.status();
        let mut response = self.to_outcome().into_response(status);
        if let Some(allow) = self.allow {
            // RFC 9110 §15.5.6: a 405 carries the methods the target does allow.
            response
                .headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
        }
        response
    }
}

impl std::fmt::Display for Unclassified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.text)
    }
}

impl std::error::Error for Unclassified {}
