//! [`ValidateConfig`]: every limit of the validator, with documented defaults.

/// What to do with an `id` in the body of a create (FHIR R4 §3.1.0.7: the server assigns the
/// id and ignores one sent by the client).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateId {
    /// Accept the body; the server ignores the id (the default, as the specification says).
    Ignore,
    /// Refuse a create whose body has an `id` (422).
    Refuse,
}

/// The validator's settings. Build with [`ValidateConfig::new`] and the methods below; every
/// method documents its default.
///
/// ```
/// use fhirwall::validate::ValidateConfig;
///
/// let config = ValidateConfig::new()
///     .max_body_bytes(1 << 20)
///     .max_count(50)
///     .reference_base("https://fhir.example.org/r4");
/// assert_eq!(config.body_limit(), 1 << 20);
/// ```
#[derive(Clone, Debug)]
pub struct ValidateConfig {
    pub(crate) max_body_bytes: usize,
    pub(crate) max_depth: usize,
    pub(crate) max_problems: usize,
    pub(crate) accept_plain_json: bool,
    pub(crate) create_id: CreateId,
    pub(crate) reference_bases: Vec<String>,
    pub(crate) any_absolute_reference: bool,
    pub(crate) max_count: u32,
    pub(crate) allow_lenient: bool,
    pub(crate) include_wildcard: bool,
    pub(crate) max_chain_depth: usize,
    pub(crate) allow_has: bool,
    pub(crate) allow_filter: bool,
    pub(crate) allow_named_query: bool,
    pub(crate) allow_text_search: bool,
    pub(crate) max_repeats: usize,
    pub(crate) max_values: usize,
    pub(crate) max_query_len: usize,
    pub(crate) control_params: Vec<String>,
}

impl Default for ValidateConfig {
    fn default() -> Self {
        ValidateConfig {
            max_body_bytes: 4 * 1024 * 1024,
            max_depth: 64,
            max_problems: 20,
            accept_plain_json: true,
            create_id: CreateId::Ignore,
            reference_bases: Vec::new(),
            any_absolute_reference: false,
            max_count: 100,
            allow_lenient: false,
            include_wildcard: false,
            max_chain_depth: 2,
            allow_has: false,
            allow_filter: false,
            allow_named_query: false,
            allow_text_search: false,
            max_repeats: 10,
            max_values: 50,
            max_query_len: 4096,
            control_params: Vec::new(),
        }
    }
}

impl ValidateConfig {
    /// The defaults listed on each method.
    pub fn new() -> Self {
        Self::default()
    }

    /// Largest request body in bytes, counted while reading (chunked bodies too); beyond it
    /// the request is refused with 413. Default 4 MiB.
    pub fn max_body_bytes(mut self, n: usize) -> Self {
        self.max_body_bytes = n;
        self
    }

    /// The body limit in force.
    pub fn body_limit(&self) -> usize {
        self.max_body_bytes
    }

    /// Deepest JSON nesting (objects and arrays) accepted. Default 64: the deepest official
    /// R4 example nests 14 levels.
    pub fn max_depth(mut self, n: usize) -> Self {
        self.max_depth = n.max(1);
        self
    }

    /// Most problems reported in one refusal. Default 20.
    pub fn max_problems(mut self, n: usize) -> Self {
        self.max_problems = n.max(1);
        self
    }

    /// Whether bodies may be `application/json` besides `application/fhir+json`. Default
    /// `true`.
    pub fn accept_plain_json(mut self, yes: bool) -> Self {
        self.accept_plain_json = yes;
        self
    }

    /// What to do with an `id` in a create's body. Default [`CreateId::Ignore`].
    pub fn create_id(mut self, rule: CreateId) -> Self {
        self.create_id = rule;
        self
    }

    /// Adds an absolute base URL references may point into (`https://fhir.example.org/r4`).
    /// Default: none, so only relative, contained and (in Bundles) `urn:` references pass.
    pub fn reference_base(mut self, base: impl Into<String>) -> Self {
        self.reference_bases.push(base.into());
        self
    }

    /// Accepts absolute references to any http(s) URL. Default off: a reference to another
    /// server can make the FHIR server fetch it (server-side request forgery).
    pub fn danger_allow_any_absolute_reference(mut self) -> Self {
        self.any_absolute_reference = true;
        self
    }

    /// Largest `_count` accepted (FHIR R4 §3.1.1.5.6). Default 100.
    pub fn max_count(mut self, n: u32) -> Self {
        self.max_count = n;
        self
    }

    /// Lets `Prefer: handling=lenient` (FHIR R4 §3.1.1.5.10) pass unknown search parameters
    /// on to the server, which then ignores them. Default off: unknown parameters are refused.
    pub fn allow_lenient_handling(mut self, yes: bool) -> Self {
        self.allow_lenient = yes;
        self
    }

    /// Accepts `_include=*` and `_revinclude=*` (and `Type:*`). Default off: a wildcard include
    /// pulls every referenced resource.
    pub fn danger_allow_include_wildcard(mut self) -> Self {
        self.include_wildcard = true;
        self
    }

    /// Most chained links in one parameter (`subject.organization.name` has 2). Default 2.
    pub fn max_chain_depth(mut self, n: usize) -> Self {
        self.max_chain_depth = n;
        self
    }

    /// Accepts `_has` reverse chaining. Default off.
    pub fn allow_has(mut self, yes: bool) -> Self {
        self.allow_has = yes;
        self
    }

    /// Accepts `_filter`. Default off.
    pub fn allow_filter(mut self, yes: bool) -> Self {
        self.allow_filter = yes;
        self
    }

    /// Accepts `_query` named queries. Default off.
    pub fn allow_named_query(mut self, yes: bool) -> Self {
        self.allow_named_query = yes;
        self
    }

    /// Accepts the full-text parameters `_content` and `_text`. Default off (costly).
    pub fn allow_text_search(mut self, yes: bool) -> Self {
        self.allow_text_search = yes;
        self
    }

    /// Most times one search parameter may be repeated (AND). Default 10.
    pub fn max_repeats(mut self, n: usize) -> Self {
        self.max_repeats = n;
        self
    }

    /// Most comma-separated values (OR) in one parameter. Default 50.
    pub fn max_values(mut self, n: usize) -> Self {
        self.max_values = n;
        self
    }

    /// Longest query (URL query plus `POST _search` form body), in bytes. Default 4096.
    pub fn max_query_len(mut self, n: usize) -> Self {
        self.max_query_len = n;
        self
    }

    /// Accepts a server-specific control parameter starting with `_` (a paging token such as
    /// `_getpages`). Default: none.
    pub fn control_param(mut self, name: impl Into<String>) -> Self {
        self.control_params.push(name.into());
        self
    }
}
