//! What authorization decided: [`Authorized`] (with the checks still to run), [`Refusal`], and
//! the [`SmartDecision`] put on every response for the audit layer.

use super::scope::Permissions;
use crate::fhir::ResourceType;
use http::StatusCode;
use std::borrow::Cow;

/// Why a request was refused, in RFC 6750 terms where they apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalKind {
    /// No bearer token (401, bare `WWW-Authenticate: Bearer realm=...`).
    NoToken,
    /// `invalid_token` (401): bad, expired, unbound, or unusable token.
    InvalidToken,
    /// `invalid_request` (400): a malformed request, such as a token in the query.
    InvalidRequest,
    /// The token could not be checked (503): keys or introspection unreachable.
    Unavailable,
    /// `insufficient_scope` (403): the scopes do not cover the interaction.
    InsufficientScope,
    /// 403 for a reason no scope fixes here: another patient named, an undeclared operation,
    /// a search feature refused under `patient/` scopes.
    Forbidden,
    /// A resource the token may not see (404 by default, see
    /// [`AuthzPolicy::hidden_status`](super::AuthzPolicy::hidden_status)).
    Hidden,
    /// The response could not be checked (unparseable, too large, unexpected shape): 502.
    UncheckableResponse,
    /// The request body is larger than the layer reads to check it (413).
    TooLarge,
    /// fhirwall is misconfigured (500): the request was not classified.
    Misconfigured,
}

impl RefusalKind {
    /// A short stable name for logs and audit records.
    pub const fn as_str(self) -> &'static str {
        match self {
            RefusalKind::NoToken => "no-token",
            RefusalKind::InvalidToken => "invalid-token",
            RefusalKind::InvalidRequest => "invalid-request",
            RefusalKind::Unavailable => "unavailable",
            RefusalKind::InsufficientScope => "insufficient-scope",
            RefusalKind::Forbidden => "forbidden",
            RefusalKind::Hidden => "hidden",
            RefusalKind::UncheckableResponse => "uncheckable-response",
            RefusalKind::TooLarge => "too-large",
            RefusalKind::Misconfigured => "misconfigured",
        }
    }
}

/// A refusal: kind, status, a client-safe text, and for `insufficient_scope` the scope that
/// would have been enough.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub(crate) kind: RefusalKind,
    pub(crate) status: StatusCode,
    pub(crate) text: Cow<'static, str>,
    pub(crate) needed_scope: Option<String>,
    pub(crate) entries: Vec<(usize, Cow<'static, str>)>,
}

impl Refusal {
    pub(crate) fn new(kind: RefusalKind, text: impl Into<Cow<'static, str>>) -> Self {
        let status = match kind {
            RefusalKind::NoToken | RefusalKind::InvalidToken => StatusCode::UNAUTHORIZED,
            RefusalKind::InvalidRequest => StatusCode::BAD_REQUEST,
            RefusalKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            RefusalKind::InsufficientScope | RefusalKind::Forbidden => StatusCode::FORBIDDEN,
            RefusalKind::Hidden => StatusCode::NOT_FOUND,
            RefusalKind::UncheckableResponse => StatusCode::BAD_GATEWAY,
            RefusalKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RefusalKind::Misconfigured => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Refusal {
            kind,
            status,
            text: text.into(),
            needed_scope: None,
            entries: Vec::new(),
        }
    }

    pub(crate) fn insufficient(needed: String) -> Self {
        let mut r = Refusal::new(
            RefusalKind::InsufficientScope,
            "the token's scopes do not allow this interaction",
        );
        r.needed_scope = Some(needed);
        r
    }

    pub(crate) fn forbidden(text: impl Into<Cow<'static, str>>) -> Self {
        Refusal::new(RefusalKind::Forbidden, text)
    }

    pub(crate) fn hidden(status: StatusCode) -> Self {
        let mut r = Refusal::new(RefusalKind::Hidden, "the resource is not known");
        r.status = status;
        r
    }

    /// The kind.
    pub fn kind(&self) -> RefusalKind {
        self.kind
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The client-safe reason.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// For `insufficient_scope`: a scope that would have allowed the request (RFC 6750 §3
    /// `scope` attribute).
    pub fn needed_scope(&self) -> Option<&str> {
        self.needed_scope.as_deref()
    }

    /// For a batch or transaction: the refused entries (index in `Bundle.entry`, reason).
    pub fn entries(&self) -> &[(usize, Cow<'static, str>)] {
        &self.entries
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.kind.as_str(),
            self.status.as_u16(),
            self.text
        )
    }
}

/// Which permissions a resource in a response must be covered by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Need {
    pub(crate) permissions: Permissions,
    /// All of `permissions` from one scope, or any of them.
    pub(crate) all: bool,
}

impl Need {
    pub(crate) const fn all(permissions: Permissions) -> Need {
        Need {
            permissions,
            all: true,
        }
    }

    pub(crate) const fn any(permissions: Permissions) -> Need {
        Need {
            permissions,
            all: false,
        }
    }

    #[inline]
    pub(crate) fn met_by(self, granted: Permissions) -> bool {
        if self.all {
            granted.contains(self.permissions)
        } else {
            granted.intersects(self.permissions)
        }
    }
}

/// The shape of a response to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// One resource (a read, a create's representation ...), whatever its type.
    Single,
    /// A Bundle whose entries are checked one by one (search, history, `$everything`).
    Bundle,
    /// A batch-response or transaction-response: entry `i` is checked as the answer to request
    /// entry `i` (`None`: no check).
    Batch(Vec<Option<ResponseCheck>>),
}

/// The check a response still needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResponseCheck {
    pub(crate) shape: Shape,
    /// What the resources the request asked for need (search matches, the read resource).
    pub(crate) need: Need,
    /// What resources brought in by `_include`/`_revinclude` need.
    pub(crate) include_need: Need,
    /// Granular scopes (indexes) whose parameters the request itself carried: the server
    /// already applied them to the matches.
    pub(crate) presatisfied: Vec<usize>,
    /// Whether the search was narrowed to the compartment (a Bundle's `total` is then kept).
    pub(crate) narrowed: bool,
    /// An instance history whose every version is withheld answers as a hidden resource, so
    /// an empty Bundle does not reveal that the resource exists.
    pub(crate) hide_if_emptied: bool,
}

impl ResponseCheck {
    pub(crate) fn new(shape: Shape, need: Need) -> Self {
        ResponseCheck {
            shape,
            need,
            include_need: Need::any(Permissions::READ | Permissions::SEARCH),
            presatisfied: Vec::new(),
            narrowed: false,
            hide_if_emptied: false,
        }
    }
}

/// What a request body must satisfy before it is passed on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum BodyCheck {
    /// Nothing.
    #[default]
    None,
    /// The body is one resource of this type that the token may write.
    Resource(WriteRule),
    /// A batch or transaction: the entries' resources (by index) and narrowed entry requests.
    Bundle {
        writes: Vec<(usize, WriteRule)>,
        rewrites: Vec<EntryRewrite>,
    },
}

/// A resource being written must be covered by a scope with `permission` on `resource_type`
/// whose conditions hold for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WriteRule {
    pub(crate) resource_type: ResourceType,
    pub(crate) permission: Permissions,
    /// A conditional update narrowed to the compartment may not name its id: with no match
    /// the server would create (or overwrite) the resource with that id.
    pub(crate) forbid_id: bool,
}

/// A batch entry's request narrowed to the compartment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EntryRewrite {
    pub(crate) index: usize,
    pub(crate) url: Option<String>,
    pub(crate) if_none_exist: Option<String>,
}

/// A request authorization allowed, with what is left to do: narrowing the request, checking
/// its body, reading the target before a write, and checking the response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Authorized {
    pub(crate) public: bool,
    pub(crate) narrowing: Option<String>,
    pub(crate) if_none_exist: Option<String>,
    pub(crate) body: BodyCheck,
    pub(crate) pre_read: Option<WriteRule>,
    pub(crate) response: Option<ResponseCheck>,
}

impl Authorized {
    pub(crate) fn public() -> Self {
        Authorized {
            public: true,
            ..Authorized::default()
        }
    }

    /// Whether the interaction needs no token (`metadata`, `.well-known/smart-configuration`).
    pub fn is_public(&self) -> bool {
        self.public
    }

    /// The query parameter added to narrow a search (or a conditional interaction's condition)
    /// to the patient compartment, such as `subject=Patient/pat-1`.
    pub fn narrowing(&self) -> Option<&str> {
        self.narrowing.as_deref()
    }

    /// The parameter appended to a conditional create's `If-None-Exist` to narrow it to the
    /// patient compartment.
    pub fn if_none_exist_narrowing(&self) -> Option<&str> {
        self.if_none_exist.as_deref()
    }

    /// Whether the request was narrowed (URL, `If-None-Exist`, or batch entries).
    pub fn is_narrowed(&self) -> bool {
        self.narrowing.is_some()
            || self.if_none_exist.is_some()
            || matches!(&self.body, BodyCheck::Bundle { rewrites, .. } if !rewrites.is_empty())
    }

    /// Whether the response is checked resource by resource before it is passed on.
    pub fn checks_response(&self) -> bool {
        self.response.is_some()
    }

    /// Whether the request body is checked before it is passed on.
    pub fn checks_body(&self) -> bool {
        self.body != BodyCheck::None
    }

    /// Whether the target is read first to check it may be written.
    pub fn reads_before_write(&self) -> bool {
        self.pre_read.is_some()
    }
}

/// The `smart` layer's decision, put in the response extensions for the audit layer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmartDecision {
    /// `None` when allowed; the refusal's kind otherwise.
    pub refused: Option<RefusalKind>,
    /// Whether the interaction was public (no token needed).
    pub public: bool,
    /// The token's `client_id`, when a token was verified.
    pub client_id: Option<String>,
    /// Whether the request was narrowed to the patient compartment.
    pub narrowed: bool,
    /// How many resources were withheld from the response.
    pub withheld: usize,
}

impl SmartDecision {
    pub(crate) fn refused(kind: RefusalKind, client_id: Option<String>) -> Self {
        SmartDecision {
            refused: Some(kind),
            public: false,
            client_id,
            narrowed: false,
            withheld: 0,
        }
    }

    pub(crate) fn allowed(client_id: Option<String>, public: bool, narrowed: bool) -> Self {
        SmartDecision {
            refused: None,
            public,
            client_id,
            narrowed,
            withheld: 0,
        }
    }

    /// Whether the request was allowed.
    pub fn is_allowed(&self) -> bool {
        self.refused.is_none()
    }
}
