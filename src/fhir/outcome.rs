//! FHIR `OperationOutcome`: the one error format every fhirwall refusal uses.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::borrow::Cow;

/// The media type of every FHIR JSON body fhirwall writes.
pub const FHIR_JSON: &str = "application/fhir+json";

/// `OperationOutcome.issue.severity` (FHIR R4 value set `issue-severity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IssueSeverity {
    /// The issue caused the action to fail and no further checking could be performed.
    Fatal,
    /// The issue is sufficiently important to cause the action to fail.
    Error,
    /// The issue is not important enough to cause the action to fail.
    Warning,
    /// The issue has no relation to the degree of success of the action.
    Information,
}

impl IssueSeverity {
    /// The code as FHIR spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            IssueSeverity::Fatal => "fatal",
            IssueSeverity::Error => "error",
            IssueSeverity::Warning => "warning",
            IssueSeverity::Information => "information",
        }
    }
}

/// `OperationOutcome.issue.code` (FHIR R4 value set `issue-type`, required binding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IssueType {
    /// Content invalid against the specification or a profile.
    Invalid,
    /// A structural issue in the content, such as wrong namespace or unparseable content.
    Structure,
    /// A required element is missing.
    Required,
    /// An element or header value is invalid.
    Value,
    /// A content validation rule failed.
    Invariant,
    /// An authentication or authorization or permissions issue of some kind.
    Security,
    /// The client needs to initiate an authentication process.
    Login,
    /// The user or system was not able to be authenticated (either there is no process, or the
    /// proffered token is unacceptable).
    Unknown,
    /// User session expired; a login may be required.
    Expired,
    /// The user does not have the rights to perform this action.
    Forbidden,
    /// Some information was not or might not have been returned due to business rules,
    /// consent or privacy rules, or access permission constraints.
    Suppressed,
    /// Processing issues.
    Processing,
    /// The interaction, operation, resource or profile is not supported.
    NotSupported,
    /// An attempt was made to create a duplicate record.
    Duplicate,
    /// Multiple matching records were found when the operation required only one match.
    MultipleMatches,
    /// The reference provided was not found.
    NotFound,
    /// The reference pointed to content that is known to be deleted.
    Deleted,
    /// Provided content is too long.
    TooLong,
    /// The code or system could not be understood, or it was not valid in the value set.
    CodeInvalid,
    /// An extension was unrecognized or could not be supported.
    Extension,
    /// The operation was stopped to protect server resources.
    TooCostly,
    /// The content or operation failed to pass some business rule.
    BusinessRule,
    /// Content could not be accepted because of an edit conflict.
    Conflict,
    /// Transient processing issues.
    Transient,
    /// A resource or record lock failed.
    LockError,
    /// The persistent store is unavailable.
    NoStore,
    /// An unexpected internal error has occurred.
    Exception,
    /// An internal timeout has occurred.
    Timeout,
    /// Not all data sources typically accessed could be reached or responded in time.
    Incomplete,
    /// The system is not prepared to handle this request due to load management.
    Throttled,
    /// A message unrelated to the processing success of the completed operation.
    Informational,
}

impl IssueType {
    /// The code as FHIR spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            IssueType::Invalid => "invalid",
            IssueType::Structure => "structure",
            IssueType::Required => "required",
            IssueType::Value => "value",
            IssueType::Invariant => "invariant",
            IssueType::Security => "security",
            IssueType::Login => "login",
            IssueType::Unknown => "unknown",
            IssueType::Expired => "expired",
            IssueType::Forbidden => "forbidden",
            IssueType::Suppressed => "suppressed",
            IssueType::Processing => "processing",
            IssueType::NotSupported => "not-supported",
            IssueType::Duplicate => "duplicate",
            IssueType::MultipleMatches => "multiple-matches",
            IssueType::NotFound => "not-found",
            IssueType::Deleted => "deleted",
            IssueType::TooLong => "too-long",
            IssueType::CodeInvalid => "code-invalid",
            IssueType::Extension => "extension",
            IssueType::TooCostly => "too-costly",
            IssueType::BusinessRule => "business-rule",
            IssueType::Conflict => "conflict",
            IssueType::Transient => "transient",
            IssueType::LockError => "lock-error",
            IssueType::NoStore => "no-store",
            IssueType::Exception => "exception",
            IssueType::Timeout => "timeout",
            IssueType::Incomplete => "incomplete",
            IssueType::Throttled => "throttled",
            IssueType::Informational => "informational",
        }
    }
}

/// One `OperationOutcome.issue`.
///
/// `details_text` is for people (the `details.text` element); `diagnostics` is for developers.
/// Neither may carry tokens, keys, internal error messages or stack traces: fhirwall only ever
/// puts fixed sentences and values that came from the request itself (after truncation) there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// How bad the issue is.
    pub severity: IssueSeverity,
    /// What kind of issue it is.
    pub code: IssueType,
    /// Human-readable text (`details.text`).
    pub details_text: Option<Cow<'static, str>>,
    /// Extra developer-oriented text (`diagnostics`).
    pub diagnostics: Option<Cow<'static, str>>,
    /// FHIRPath expressions pointing at the offending elements (`expression`).
    pub expression: Vec<Cow<'static, str>>,
}

/// The longest `diagnostics` or `details.text` fhirwall writes, in bytes: request-derived text is
/// cut here so an attacker can't make error bodies arbitrarily large.
pub const MAX_TEXT_LEN: usize = 512;

impl Issue {
    /// An issue with the given severity and code and nothing else.
    pub fn new(severity: IssueSeverity, code: IssueType) -> Self {
        Issue {
            severity,
            code,
            details_text: None,
            diagnostics: None,
            expression: Vec::new(),
        }
    }

    /// An `error` issue with this code and human-readable text.
    pub fn error(code: IssueType, text: impl Into<Cow<'static, str>>) -> Self {
        Issue::new(IssueSeverity::Error, code).with_text(text)
    }

    /// Sets `details.text` (cut to [`MAX_TEXT_LEN`] bytes).
    pub fn with_text(mut self, text: impl Into<Cow<'static, str>>) -> Self {
        self.details_text = Some(truncate(text.into()));
        self
    }

    /// Sets `diagnostics` (cut to [`MAX_TEXT_LEN`] bytes).
    pub fn with_diagnostics(mut self, diagnostics: impl Into<Cow<'static, str>>) -> Self {
        self.diagnostics = Some(truncate(diagnostics.into()));
        self
    }

    /// Adds a FHIRPath `expression` locating the problem.
    pub fn with_expression(mut self, expression: impl Into<Cow<'static, str>>) -> Self {
        self.expression.push(truncate(expression.into()));
        self
    }
}

fn truncate(text: Cow<'static, str>) -> Cow<'static, str> {
    if text.len() <= MAX_TEXT_LEN {
        return text;
    }
    let mut end = MAX_TEXT_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = String::with_capacity(end + 3);
    cut.push_str(text.get(..end).unwrap_or_default());
    cut.push('…');
    Cow::Owned(cut)
}

/// A FHIR R4 `OperationOutcome`, built issue by issue and turned into an HTTP response.
///
/// ```
/// use fhirwall::fhir::{IssueType, OperationOutcome};
/// use http::StatusCode;
///
/// let response = OperationOutcome::error(IssueType::Forbidden, "access to this resource is not allowed")
///     .into_response(StatusCode::FORBIDDEN);
/// assert_eq!(response.status(), StatusCode::FORBIDDEN);
/// assert_eq!(response.headers()["content-type"], "application/fhir+json");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperationOutcome {
    issues: Vec<Issue>,
}

impl OperationOutcome {
    /// An outcome with no issues yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// An outcome with one `error` issue.
    pub fn error(code: IssueType, text: impl Into<Cow<'static, str>>) -> Self {
        Self::new().with_issue(Issue::error(code, text))
    }

    /// Adds an issue.
    pub fn with_issue(mut self, issue: Issue) -> Self {
        self.issues.push(issue);
        self
    }

    /// Adds an issue in place.
    pub fn push(&mut self, issue: Issue) {
        self.issues.push(issue);
    }

    /// The issues so far.
    pub fn issues(&self) -> &[Issue] {
        &self.issues
    }

    /// Whether no issue was added.
    pub fn is_empty(&self) -> bool {
        self.issues.is_empty()
    }

    /// The outcome as FHIR JSON bytes.
    ///
    /// An outcome with no issues still has one (`informational`), because R4 requires at least
    /// one `issue`.
    pub fn to_json(&self) -> Bytes {
        // Serializing our own plain data into a Vec cannot fail; the fallback keeps the
        // no-panic rule even so.
        match serde_json::to_vec(self) {
            Ok(v) => Bytes::from(v),
            Err(_) => Bytes::from_static(
                br#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}"#,
            ),
        }
    }

    /// The outcome as a response with this status and `Content-Type: application/fhir+json`.
    pub fn into_response(self, status: StatusCode) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.to_json()));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
        response
    }
}

impl Serialize for Issue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Details<'a>(&'a str);
        impl Serialize for Details<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("text", self.0)?;
                map.end()
            }
        }
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("severity", self.severity.as_str())?;
        map.serialize_entry("code", self.code.as_str())?;
        if let Some(text) = &self.details_text {
            map.serialize_entry("details", &Details(text))?;
        }
        if let Some(diagnostics) = &self.diagnostics {
            map.serialize_entry("diagnostics", diagnostics)?;
        }
        if !self.expression.is_empty() {
            map.serialize_entry("expression", &self.expression)?;
        }
        map.end()
    }
}

impl Serialize for OperationOutcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("resourceType", "OperationOutcome")?;
        if self.issues.is_empty() {
            map.serialize_entry(
                "issue",
                &[Issue::new(
                    IssueSeverity::Information,
                    IssueType::Informational,
                )],
            )?;
        } else {
            map.serialize_entry("issue", &self.issues)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_r4_shape() {
        let oo = OperationOutcome::error(IssueType::Invalid, "bad id").with_issue(
            Issue::new(IssueSeverity::Warning, IssueType::Value)
                .with_diagnostics("d")
                .with_expression("Patient.id"),
        );
        let v: serde_json::Value = serde_json::from_slice(&oo.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "resourceType": "OperationOutcome",
                "issue": [
                    {"severity": "error", "code": "invalid", "details": {"text": "bad id"}},
                    {"severity": "warning", "code": "value", "diagnostics": "d", "expression": ["Patient.id"]}
                ]
            })
        );
    }

    #[test]
    fn empty_outcome_still_has_an_issue() {
        // FHIR R4 OperationOutcome.issue is 1..*.
        let v: serde_json::Value =
            serde_json::from_slice(&OperationOutcome::new().to_json()).unwrap();
        assert_eq!(v["issue"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn long_text_is_truncated_on_char_boundary() {
        let text = "é".repeat(600);
        let issue = Issue::error(IssueType::Value, text);
        let got = issue.details_text.unwrap();
        assert!(got.len() <= MAX_TEXT_LEN + '…'.len_utf8());
        assert!(got.ends_with('…'));
    }
}
