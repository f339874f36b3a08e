//! What the validator found: problems, each one `OperationOutcome` issue with a FHIRPath
//! expression, and the refusal they add up to.

use crate::fhir::{Issue, IssueType, OperationOutcome};
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use std::borrow::Cow;

/// Whether a problem is about the shape of the input or about a rule its values break; the
/// status of a refusal follows (FHIR R4 §3.1.0.4 "create": 400 for content that cannot be
/// parsed or is structurally wrong, 422 for content that breaks the rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProblemClass {
    /// Malformed or hostile JSON, unknown or misplaced elements, bad search parameters: 400.
    Structure,
    /// Invalid primitive values, missing required elements, codes outside a required binding,
    /// bad references, `id` rules: 422.
    Rule,
    /// The body is larger than allowed: 413.
    TooLarge,
    /// The body's media type is not accepted: 415.
    UnsupportedMediaType,
    /// The requested response format is not supported: 406.
    NotAcceptable,
}

impl ProblemClass {
    /// The HTTP status of a refusal for this class.
    pub const fn status(self) -> StatusCode {
        match self {
            ProblemClass::Structure => StatusCode::BAD_REQUEST,
            ProblemClass::Rule => StatusCode::UNPROCESSABLE_ENTITY,
            ProblemClass::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProblemClass::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ProblemClass::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
        }
    }
}

/// One problem found in a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Its class (and so the status).
    pub class: ProblemClass,
    /// The `OperationOutcome.issue.code`.
    pub code: IssueType,
    /// A fixed sentence, possibly with a short value from the request.
    pub text: Cow<'static, str>,
    /// A FHIRPath expression locating it (`Patient.name[0].given[1]`); for a query parameter,
    /// the parameter as written (`subject:Patient.name`); empty for the body as a whole.
    pub expression: String,
}

impl Problem {
    pub(crate) fn new(
        class: ProblemClass,
        code: IssueType,
        text: impl Into<Cow<'static, str>>,
        expression: impl Into<String>,
    ) -> Self {
        Problem {
            class,
            code,
            text: text.into(),
            expression: expression.into(),
        }
    }
}

/// A refused request: the problems found, in the order found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    problems: Vec<Problem>,
}

impl Rejection {
    pub(crate) fn new(problems: Vec<Problem>) -> Self {
        Rejection { problems }
    }

    pub(crate) fn one(problem: Problem) -> Self {
        Rejection {
            problems: vec![problem],
        }
    }

    /// The problems, in the order found (at least one).
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The status: the most specific class among the problems (413, 415, 406, then 400 before
    /// 422).
    pub fn status(&self) -> StatusCode {
        let order = [
            ProblemClass::TooLarge,
            ProblemClass::UnsupportedMediaType,
            ProblemClass::NotAcceptable,
            ProblemClass::Structure,
        ];
        order
            .iter()
            .find(|c| self.problems.iter().any(|p| p.class == **c))
            .map_or(ProblemClass::Rule.status(), |c| c.status())
    }

    /// The `OperationOutcome`, one issue per problem.
    pub fn to_outcome(&self) -> OperationOutcome {
        let mut outcome = OperationOutcome::new();
        for p in &self.problems {
            let mut issue = Issue::error(p.code, p.text.clone());
            if !p.expression.is_empty() {
                issue = issue.with_expression(p.expression.clone());
            }
            outcome.push(issue);
        }
        outcome
    }

    /// The refusal as an HTTP response.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let status = self.status();
        self.to_outcome().into_response(status)
    }
}
