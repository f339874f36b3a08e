//! What a query parameter is, judged by its name (FHIR R4 §3.1.1.1 common parameters, result
//! parameters §3.1.1.4, modifiers and chains §3.1.1.5).

/// What a query parameter is, judged by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParamKind {
    /// A search parameter of the resource (`code`, `subject`, `_id`, `_lastUpdated` …),
    /// possibly chained.
    Search,
    /// `_has` reverse chaining (FHIR R4 §3.1.1.4.9).
    Has,
    /// `_format` (FHIR R4 §3.1.0.1.10).
    Format,
    /// `_pretty`.
    Pretty,
    /// `_count` (FHIR R4 §3.1.1.5.6).
    Count,
    /// `_include` (FHIR R4 §3.1.1.5.4).
    Include,
    /// `_revinclude`.
    RevInclude,
    /// `_elements` (FHIR R4 §3.1.1.5.9).
    Elements,
    /// `_summary` (FHIR R4 §3.1.1.5.8).
    Summary,
    /// `_sort` (FHIR R4 §3.1.1.5.5).
    Sort,
    /// `_total`.
    Total,
    /// `_contained`.
    Contained,
    /// `_containedType`.
    ContainedType,
    /// `_type` (the types of a system-level search).
    Type,
    /// `_since` (history).
    Since,
    /// `_at` (history).
    At,
    /// `_filter` (FHIR R4 §3.1.1.6.7).
    Filter,
    /// `_query` (named queries).
    NamedQuery,
    /// Any other parameter starting with `_` that R4 does not define as a result or search
    /// parameter, such as a server's own paging token.
    OtherControl,
}

impl ParamKind {
    pub(crate) fn of(name: &str) -> ParamKind {
        if !name.starts_with('_') {
            return ParamKind::Search;
        }
        match name {
            "_has" => ParamKind::Has,
            "_format" => ParamKind::Format,
            "_pretty" => ParamKind::Pretty,
            "_count" => ParamKind::Count,
            "_include" => ParamKind::Include,
            "_revinclude" => ParamKind::RevInclude,
            "_elements" => ParamKind::Elements,
            "_summary" => ParamKind::Summary,
            "_sort" => ParamKind::Sort,
            "_total" => ParamKind::Total,
            "_contained" => ParamKind::Contained,
            "_containedType" => ParamKind::ContainedType,
            "_type" => ParamKind::Type,
            "_since" => ParamKind::Since,
            "_at" => ParamKind::At,
            "_filter" => ParamKind::Filter,
            "_query" => ParamKind::NamedQuery,
            "_id" | "_lastUpdated" | "_tag" | "_profile" | "_security" | "_source" | "_text"
            | "_content" | "_list" => ParamKind::Search,
            n if n.starts_with('_') => ParamKind::OtherControl,
            _ => ParamKind::Search,
        }
    }

    /// Whether FHIR gives the parameter one value only, so that repeating it is ambiguous.
    ///
    /// Servers disagree on which copy of `_count=10&_count=1000` wins; a firewall that read the
    /// other one would check a different request than the server runs, so repeats are refused.
    pub const fn is_single_valued(self) -> bool {
        matches!(
            self,
            ParamKind::Format
                | ParamKind::Pretty
                | ParamKind::Count
                | ParamKind::Summary
                | ParamKind::Total
                | ParamKind::Contained
                | ParamKind::ContainedType
                | ParamKind::Since
                | ParamKind::At
                | ParamKind::Elements
                | ParamKind::Sort
                | ParamKind::Type
                | ParamKind::NamedQuery
        )
    }
}
