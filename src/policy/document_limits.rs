//! The response and budget sections of the policy file: `[redaction]`, `[budgets]`,
//! `[validation]`, `[audit]`.

use super::macros::{choice, item, section};
use super::secret::SecretRef;
use super::values::{HiddenStatus, RateSpec};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

section! {
    /// `[redaction]`: the redact module's policy, plus the layer's limits.
    pub struct Redaction {
        /// Element and resource rules (`[[redaction.rules]]`, the redact module's `Rule`).
        #[serde(default)]
        #[cfg_attr(feature = "schema", schemars(schema_with = "super::schema::redaction_rules"))]
        pub rules: Vec<crate::redact::Rule>,
        /// Visibility by `meta.security` labels (`[[redaction.labels]]`).
        #[serde(default)]
        #[cfg_attr(feature = "schema", schemars(schema_with = "super::schema::redaction_labels"))]
        pub labels: Vec<crate::redact::LabelRule>,
        /// Add an `OperationOutcome` entry saying how many entries were withheld (default true).
        #[serde(default)]
        pub suppressed_note: Option<bool>,
        /// Largest response body redacted, in bytes (larger ones are refused).
        #[serde(default)]
        pub max_body_bytes: Option<usize>,
        /// The status for a single hidden resource (404 or 403).
        #[serde(default)]
        pub hidden_status: Option<HiddenStatus>,
    }
}

choice! {
    /// What happens to a response larger than the resource budget left.
    pub enum OverBudgetName {
        /// Send what the budget allows, drop `next`, add a note (default).
        #[default]
        Cut,
        /// Refuse the response (429).
        Refuse,
    }
}

choice! {
    /// A place a budget key comes from.
    pub enum KeySourceName {
        /// The mTLS trusted client (`mtls:<name>`).
        #[default]
        TrustedClient,
        /// The token's `client_id` (`smart:<id>`).
        SmartClient,
        /// The peer IP (`ip:<addr>`), forwarded only by `network.trusted_proxies`.
        PeerIp,
    }
}

section! {
    /// `[budgets]`.
    pub struct Budgets {
        /// The request budget in cost units (`600/minute`, or `off`).
        #[serde(default)]
        pub requests: Option<RateSpec>,
        /// Cost units spendable at once (default: the rate's number).
        #[serde(default)]
        pub requests_burst: Option<u64>,
        /// The resource budget in resources returned (`10000/hour`, or `off`).
        #[serde(default)]
        pub resources: Option<RateSpec>,
        /// Resources returnable at once (default 2000 with the default rate, else the rate's number).
        #[serde(default)]
        pub resources_burst: Option<u64>,
        /// What happens to a response over the resource budget.
        #[serde(default)]
        pub over_budget: OverBudgetName,
        /// Requests in flight per client (default 8; 0: no limit).
        #[serde(default)]
        pub max_in_flight: Option<u32>,
        /// Largest response buffered to be counted, in bytes (default 16 MiB).
        #[serde(default)]
        pub max_buffer_bytes: Option<usize>,
        /// Where the client key comes from, in order (default trusted_client, smart_client, peer_ip).
        #[serde(default)]
        pub keys: Vec<KeySourceName>,
        /// Clients sharing one budget (`[[budgets.groups]]`).
        #[serde(default)]
        pub groups: Vec<BudgetGroup>,
        /// Interaction weights.
        #[serde(default)]
        pub costs: Costs,
        /// Per-request caps.
        #[serde(default)]
        pub caps: CapsSpec,
        /// Where budgets are kept.
        #[serde(default)]
        pub store: Store,
    }
}

item! {
    /// `[[budgets.groups]]`.
    pub struct BudgetGroup {
        /// The group's name.
        pub name: String,
        /// Members as keys: `mtls:<name>`, `smart:<client_id>`, `ip:<addr>`.
        pub members: Vec<String>,
    }
}

section! {
    /// `[budgets.costs]`.
    pub struct Costs {
        /// Reads, vreads, capabilities (default 1).
        #[serde(default)]
        pub read: Option<u64>,
        /// Searches and histories (default 10).
        #[serde(default)]
        pub search: Option<u64>,
        /// Writes, batches, transactions (default 20).
        #[serde(default)]
        pub write: Option<u64>,
        /// Other operations (default 10).
        #[serde(default)]
        pub other_operation: Option<u64>,
        /// Named operations (`everything = 50`, `export = 100` by default).
        #[serde(default)]
        pub operations: BTreeMap<String, u64>,
    }
}

choice! {
    /// What happens to a `_count` above the cap.
    pub enum CountModeName {
        /// Lower it (default).
        #[default]
        Lower,
        /// Refuse the request.
        Refuse,
    }
}

section! {
    /// `[budgets.caps]` (0 turns a cap off).
    pub struct CapsSpec {
        /// Largest `_count` (default 100).
        #[serde(default)]
        pub max_count: Option<u32>,
        /// Lower or refuse a larger `_count`.
        #[serde(default)]
        pub count_mode: CountModeName,
        /// Most `next` links followed per search (default 20).
        #[serde(default)]
        pub max_page_depth: Option<u64>,
        /// Offset parameters that page (default `_offset`, `_getpagesoffset`).
        #[serde(default)]
        pub page_offset_params: Option<Vec<String>>,
        /// One-based page-number parameters.
        #[serde(default)]
        pub page_number_params: Vec<String>,
        /// Page size where `_count` is absent (default 20).
        #[serde(default)]
        pub default_page_size: Option<u32>,
        /// Most resources one `$everything` returns (default 1000).
        #[serde(default)]
        pub everything_max: Option<u64>,
    }
}

choice! {
    /// The budget store kind.
    pub enum StoreKind {
        /// In this process (default).
        #[default]
        Memory,
        /// Redis (feature `redis`), shared by replicas.
        Redis,
    }
}

choice! {
    /// What happens when Redis can't be reached.
    pub enum WhenUnavailableName {
        /// Refuse (503, default).
        #[default]
        FailClosed,
        /// Count locally meanwhile.
        FallBackToLocal,
        /// Let everything through. Dangerous.
        DangerFailOpen,
    }
}

section! {
    /// `[budgets.store]`.
    pub struct Store {
        /// `memory` (default) or `redis`.
        #[serde(default)]
        pub kind: StoreKind,
        /// Most clients remembered in memory (default 100000).
        #[serde(default)]
        pub max_keys: Option<usize>,
        /// The Redis URL, by reference (it may hold a password).
        #[serde(default)]
        pub redis_url: Option<SecretRef>,
        /// The Redis key prefix (default `fhirwall:budget:`).
        #[serde(default)]
        pub redis_prefix: Option<String>,
        /// Time per Redis call in milliseconds (default 250).
        #[serde(default)]
        pub redis_timeout_ms: Option<u64>,
        /// What happens when Redis can't be reached.
        #[serde(default)]
        pub when_unavailable: WhenUnavailableName,
    }
}

choice! {
    /// What to do with an `id` in a create's body.
    pub enum CreateIdName {
        /// The server ignores it (default).
        #[default]
        Ignore,
        /// Refuse (422).
        Refuse,
    }
}

section! {
    /// `[validation]`: every limit of the request validator.
    pub struct Validation {
        /// Largest request body (default 4 MiB).
        #[serde(default)]
        pub max_body_bytes: Option<usize>,
        /// Deepest JSON nesting (default 64).
        #[serde(default)]
        pub max_depth: Option<usize>,
        /// Most problems in one refusal (default 20).
        #[serde(default)]
        pub max_problems: Option<usize>,
        /// Accept `application/json` bodies (default true).
        #[serde(default)]
        pub accept_plain_json: Option<bool>,
        /// An `id` in a create's body.
        #[serde(default)]
        pub create_id: CreateIdName,
        /// Absolute bases references may point into (besides `service.base_url`).
        #[serde(default)]
        pub reference_bases: Vec<String>,
        /// Accept absolute references anywhere. Dangerous (SSRF).
        #[serde(default)]
        pub danger_allow_any_absolute_reference: bool,
        /// Largest `_count` (default 100).
        #[serde(default)]
        pub max_count: Option<u32>,
        /// Let `Prefer: handling=lenient` pass unknown parameters (default false).
        #[serde(default)]
        pub allow_lenient_handling: bool,
        /// Accept `_include=*`. Dangerous.
        #[serde(default)]
        pub danger_allow_include_wildcard: bool,
        /// Most chained links (default 2).
        #[serde(default)]
        pub max_chain_depth: Option<usize>,
        /// Accept `_has`.
        #[serde(default)]
        pub allow_has: bool,
        /// Accept `_filter`.
        #[serde(default)]
        pub allow_filter: bool,
        /// Accept `_query`.
        #[serde(default)]
        pub allow_named_query: bool,
        /// Accept `_content`, `_text`.
        #[serde(default)]
        pub allow_text_search: bool,
        /// Most repeats of one parameter (default 10).
        #[serde(default)]
        pub max_repeats: Option<usize>,
        /// Most OR values in one parameter (default 50).
        #[serde(default)]
        pub max_values: Option<usize>,
        /// Longest query in bytes (default 4096).
        #[serde(default)]
        pub max_query_len: Option<usize>,
        /// Server-specific `_` parameters accepted (`_getpages`).
        #[serde(default)]
        pub control_params: Vec<String>,
    }
}

choice! {
    /// What to do with identifying search values in audit records.
    pub enum ValuePolicyName {
        /// Hash them (default).
        #[default]
        Hash,
        /// Keep them.
        Keep,
        /// Drop them.
        Drop,
    }
}

choice! {
    /// An audit sink kind.
    pub enum SinkKind {
        /// `tracing` events (default).
        #[default]
        Tracing,
        /// A JSON-lines file with rotation.
        JsonLines,
    }
}

item! {
    /// `[[audit.sinks]]`.
    pub struct SinkSpec {
        /// `tracing` or `json_lines`.
        pub kind: SinkKind,
        /// The file of `json_lines`, relative to the policy file.
        #[serde(default)]
        pub path: Option<PathBuf>,
        /// Rotate past this size in bytes.
        #[serde(default)]
        pub max_bytes: Option<u64>,
        /// Rotated files kept.
        #[serde(default)]
        pub keep: Option<usize>,
        /// Write from a background thread through a bounded queue of this many records
        /// (overflow is dropped and counted).
        #[serde(default)]
        pub queue: Option<usize>,
    }
}

section! {
    /// `[audit]`.
    pub struct Audit {
        /// Where records go (default one `tracing` sink).
        #[serde(default)]
        pub sinks: Vec<SinkSpec>,
        /// More identifying search parameter names.
        #[serde(default)]
        pub identifying_params: Vec<String>,
        /// What to do with identifying values.
        #[serde(default)]
        pub identifying_values: ValuePolicyName,
        /// The salt of hashed values, by reference.
        #[serde(default)]
        pub salt: Option<SecretRef>,
    }
}
