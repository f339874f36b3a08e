//! What a request asks the FHIR server to do: the classified interaction.

use super::query::Query;
use super::ResourceType;
use http::Method;

/// A FHIR R4 RESTful interaction (FHIR R4 §3.1.0 "RESTful API"), plus the SMART discovery
/// document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Interaction {
    /// `GET [type]/[id]`
    Read,
    /// `GET [type]/[id]/_history/[vid]`
    VRead,
    /// `PUT [type]/[id]`, or conditional `PUT [type]?[search]`
    Update,
    /// `PATCH [type]/[id]`, or conditional `PATCH [type]?[search]`
    Patch,
    /// `DELETE [type]/[id]`, or conditional `DELETE [type]?[search]`
    Delete,
    /// `GET [type]/[id]/_history`
    HistoryInstance,
    /// `GET [type]/_history`
    HistoryType,
    /// `GET _history`
    HistorySystem,
    /// `POST [type]`, conditional with `If-None-Exist`
    Create,
    /// `GET [type]?…` or `POST [type]/_search`
    SearchType,
    /// `GET [base]?…` or `POST [base]/_search`
    SearchSystem,
    /// `GET [compartment]/[id]/[type]?…` or `GET [compartment]/[id]/*?…`
    SearchCompartment,
    /// `GET metadata`
    Capabilities,
    /// `POST [base]` with a `batch` Bundle
    Batch,
    /// `POST [base]` with a `transaction` Bundle
    Transaction,
    /// `$name` at system, type or instance level
    Operation,
    /// `GET .well-known/smart-configuration` (SMART App Launch 2.2 §"Conformance")
    SmartConfiguration,
}

// Read by the route inventory and the policy file (which needs the firewall).
#[cfg(feature = "firewall")]
impl Interaction {
    /// The interactions a CapabilityStatement can list for a resource type (R4
    /// `TypeRestfulInteraction`), whose codes are their [`as_str`](Self::as_str).
    pub(crate) const TYPE_RESTFUL: [Interaction; 9] = [
        Interaction::Read,
        Interaction::VRead,
        Interaction::Update,
        Interaction::Patch,
        Interaction::Delete,
        Interaction::HistoryInstance,
        Interaction::HistoryType,
        Interaction::Create,
        Interaction::SearchType,
    ];

    /// The system-level ones (R4 `SystemRestfulInteraction`, without `capabilities`, which
    /// every server answers).
    pub(crate) const SYSTEM_RESTFUL: [Interaction; 4] = [
        Interaction::Transaction,
        Interaction::Batch,
        Interaction::SearchSystem,
        Interaction::HistorySystem,
    ];

    /// The interaction whose R4 RESTful interaction code is `code`, among `among`.
    pub(crate) fn from_restful_code(among: &[Interaction], code: &str) -> Option<Interaction> {
        among.iter().copied().find(|i| i.as_str() == code)
    }
}

impl Interaction {
    /// A short lowercase name (`read`, `search-type`, …), the R4 `TypeRestfulInteraction` /
    /// `SystemRestfulInteraction` code where one exists.
    pub const fn as_str(self) -> &'static str {
        match self {
            Interaction::Read => "read",
            Interaction::VRead => "vread",
            Interaction::Update => "update",
            Interaction::Patch => "patch",
            Interaction::Delete => "delete",
            Interaction::HistoryInstance => "history-instance",
            Interaction::HistoryType => "history-type",
            Interaction::HistorySystem => "history-system",
            Interaction::Create => "create",
            Interaction::SearchType => "search-type",
            Interaction::SearchSystem => "search-system",
            Interaction::SearchCompartment => "search-compartment",
            Interaction::Capabilities => "capabilities",
            Interaction::Batch => "batch",
            Interaction::Transaction => "transaction",
            Interaction::Operation => "operation",
            Interaction::SmartConfiguration => "smart-configuration",
        }
    }

    /// Whether the interaction can change stored data (create, update, patch, delete, and
    /// batch/transaction, whose entries may).
    ///
    /// Operations are not counted here: whether `$name` writes depends on the operation, so
    /// layers decide that from their own configuration.
    pub const fn is_write(self) -> bool {
        matches!(
            self,
            Interaction::Create
                | Interaction::Update
                | Interaction::Patch
                | Interaction::Delete
                | Interaction::Batch
                | Interaction::Transaction
        )
    }

    /// Whether the interaction is a search (type, system or compartment level).
    pub const fn is_search(self) -> bool {
        matches!(
            self,
            Interaction::SearchType | Interaction::SearchSystem | Interaction::SearchCompartment
        )
    }

    /// Whether the interaction is a history (instance, type or system level).
    pub const fn is_history(self) -> bool {
        matches!(
            self,
            Interaction::HistoryInstance | Interaction::HistoryType | Interaction::HistorySystem
        )
    }
}

impl std::fmt::Display for Interaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The level an operation (`$name`) is invoked at (FHIR R4 §3.1.0.14 "Extended Operations").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperationLevel {
    /// `[base]/$name`
    System,
    /// `[base]/[type]/$name`
    Type,
    /// `[base]/[type]/[id]/$name`
    Instance,
}

/// An extended operation call.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Operation {
    /// The operation's name without the `$` (`everything`, `export`, `validate` …).
    pub name: String,
    /// Where it was invoked.
    pub level: OperationLevel,
}

/// The compartment a compartment search runs in (FHIR R4 §3.1.0.10 "Compartment search").
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Compartment {
    /// The compartment's type: `Patient`, `Encounter`, `RelatedPerson`, `Practitioner` or `Device`.
    pub resource_type: ResourceType,
    /// The compartment owner's id.
    pub id: String,
    /// The type searched in the compartment; `None` for `*` (every type).
    pub target: Option<ResourceType>,
}

/// Where a batch or transaction entry sits in its Bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleEntry {
    /// The entry's zero-based index in `Bundle.entry`.
    pub index: usize,
    /// `entry.fullUrl`, if given (for example `urn:uuid:…` for resources created in a transaction).
    pub full_url: Option<String>,
    /// The entry's own request, classified like a top-level request.
    pub request: FhirRequest,
}

/// A classified FHIR request: the interaction, its target and its parsed query.
///
/// Built once by [`Classifier`](super::Classifier) (usually through
/// [`ClassifyLayer`](crate::classify::ClassifyLayer)) and stored in the request extensions, so every
/// later layer reads the same answer instead of parsing the URL again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FhirRequest {
    pub(crate) method: Method,
    pub(crate) interaction: Interaction,
    pub(crate) resource_type: Option<ResourceType>,
    pub(crate) id: Option<String>,
    pub(crate) version_id: Option<String>,
    pub(crate) conditional: bool,
    pub(crate) via_post: bool,
    pub(crate) compartment: Option<Compartment>,
    pub(crate) operation: Option<Operation>,
    pub(crate) query: Query,
    pub(crate) condition: Option<Query>,
    pub(crate) if_match: Option<String>,
    pub(crate) entries: Vec<BundleEntry>,
}

impl FhirRequest {
    pub(crate) fn new(method: Method, interaction: Interaction) -> Self {
        FhirRequest {
            method,
            interaction,
            resource_type: None,
            id: None,
            version_id: None,
            conditional: false,
            via_post: false,
            compartment: None,
            operation: None,
            query: Query::default(),
            condition: None,
            if_match: None,
            entries: Vec::new(),
        }
    }

    /// The HTTP method (`HEAD` is classified like `GET` but keeps its own method here).
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The interaction.
    pub fn interaction(&self) -> Interaction {
        self.interaction
    }

    /// The resource type in the path (for a compartment search: the compartment's type is in
    /// [`compartment`](Self::compartment) and this is the searched type, if one was named).
    pub fn resource_type(&self) -> Option<ResourceType> {
        self.resource_type
    }

    /// The logical id in the path (for instance-level interactions).
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The version id of a `vread`.
    pub fn version_id(&self) -> Option<&str> {
        self.version_id.as_deref()
    }

    /// Whether this is a conditional create, update, patch or delete.
    pub fn is_conditional(&self) -> bool {
        self.conditional
    }

    /// Whether a search came as `POST …/_search` with a form body.
    pub fn is_search_via_post(&self) -> bool {
        self.via_post
    }

    /// The compartment of a compartment search.
    pub fn compartment(&self) -> Option<&Compartment> {
        self.compartment.as_ref()
    }

    /// The operation, for [`Interaction::Operation`].
    pub fn operation(&self) -> Option<&Operation> {
        self.operation.as_ref()
    }

    /// The parsed query: URL parameters, plus the form body of a `POST _search`.
    ///
    /// For a conditional update, patch or delete this is also the condition.
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// The search condition of a conditional interaction: the query of a conditional
    /// update/patch/delete, or the parsed `If-None-Exist` header of a conditional create.
    pub fn condition(&self) -> Option<&Query> {
        match &self.condition {
            Some(q) => Some(q),
            None if self.conditional => Some(&self.query),
            None => None,
        }
    }

    /// The `If-Match` header of a version-aware update, patch or delete (`W/"3"`).
    pub fn if_match(&self) -> Option<&str> {
        self.if_match.as_deref()
    }

    /// The classified entries of a batch or transaction Bundle, in Bundle order.
    pub fn entries(&self) -> &[BundleEntry] {
        &self.entries
    }
}
