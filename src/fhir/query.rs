//! FHIR search query parsing (FHIR R4 §3.1.1 "Search").
//!
//! A query is kept as an ordered list of parameters. Each parameter keeps the FHIR meaning of its
//! punctuation: a comma separates values that are OR-ed, a repeated parameter is AND-ed, and
//! `\,` `\|` `\$` `\\` escape the separators (FHIR R4 §3.1.1.5.7 "Escaping Search Parameters").

use percent_encoding::percent_decode;
use std::borrow::Cow;

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

/// One value of a parameter (one of its comma-separated alternatives), with FHIR escapes still
/// in place so that `\|` is not mistaken for a `system|code` separator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SearchValue {
    raw: String,
}

impl SearchValue {
    pub(crate) fn new(raw: String) -> Self {
        SearchValue { raw }
    }

    /// The value as received after percent-decoding, escapes still in place.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The value with FHIR escapes removed (`a\,b` → `a,b`).
    pub fn text(&self) -> Cow<'_, str> {
        if self.raw.contains('\\') {
            Cow::Owned(unescape(&self.raw))
        } else {
            Cow::Borrowed(&self.raw)
        }
    }

    /// The value split on an unescaped separator, each part unescaped: `'|'` for tokens and
    /// versioned references (`system|code`), `'$'` for composite parameters.
    pub fn split(&self, separator: char) -> Vec<Cow<'_, str>> {
        split_unescaped(&self.raw, separator)
            .into_iter()
            .map(|part| {
                if part.contains('\\') {
                    Cow::Owned(unescape(part))
                } else {
                    Cow::Borrowed(part)
                }
            })
            .collect()
    }
}

/// One query parameter: `name[:modifier][.chain]=value,value`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QueryParam {
    pub(crate) name: String,
    pub(crate) modifier: Option<String>,
    pub(crate) chain: Option<String>,
    pub(crate) kind: ParamKind,
    pub(crate) raw_value: String,
    pub(crate) values: Vec<SearchValue>,
}

impl QueryParam {
    /// The parameter's code (`subject` in `subject:Patient.name=x`; `_has` for reverse chains).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The modifier after `:` (`exact`, `missing`, `Patient`, `iterate` …). For `_has` this is
    /// the rest of the reverse chain (`Observation:patient:code`).
    pub fn modifier(&self) -> Option<&str> {
        self.modifier.as_deref()
    }

    /// The chained path after the first `.` (`name` in `subject:Patient.name=x`,
    /// `organization.name` in `subject.organization.name=x`).
    pub fn chain(&self) -> Option<&str> {
        self.chain.as_deref()
    }

    /// Whether the parameter is chained into another resource.
    pub fn is_chained(&self) -> bool {
        self.chain.is_some()
    }

    /// What kind of parameter this is.
    pub fn kind(&self) -> ParamKind {
        self.kind
    }

    /// The whole value after percent-decoding, before splitting on commas.
    pub fn raw_value(&self) -> &str {
        &self.raw_value
    }

    /// The OR-ed values (split on unescaped commas). Empty only when the value was empty.
    pub fn values(&self) -> &[SearchValue] {
        &self.values
    }
}

/// A parsed query: parameters in the order they came, repeated parameters kept apart (AND).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Query {
    params: Vec<QueryParam>,
}

/// Why a query could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// More parameters than the configured limit.
    #[error("too many query parameters (the limit is {limit})")]
    TooManyParams {
        /// The limit in force.
        limit: usize,
    },
    /// A name or value was not valid percent-encoded UTF-8.
    #[error("a query parameter is not valid percent-encoded UTF-8")]
    BadEncoding,
    /// A parameter had an empty name (`&=x` or `&&`).
    #[error("a query parameter has an empty name")]
    EmptyName,
    /// A parameter name had characters no FHIR parameter has.
    #[error("query parameter name {0:?} is not a valid FHIR parameter name")]
    BadName(String),
    /// A single-valued control parameter was given more than once.
    #[error("query parameter {0} may be given only once")]
    Repeated(String),
    /// A value contains a control character.
    #[error("query parameter {0} contains a control character")]
    ControlCharacter(String),
}

impl Query {
    /// Parses a raw query string (without the `?`), or a form body, as FHIR does.
    ///
    /// `+` is read as a space, as servers do for `application/x-www-form-urlencoded`; a `+` in a
    /// date's time-zone offset must be sent as `%2B`.
    ///
    /// ```
    /// use fhirwall::fhir::{ParamKind, Query};
    ///
    /// let q = Query::parse("code=http://loinc.org|1234-5,8480-6&subject:Patient.name=peter&_count=10", 100).unwrap();
    /// let code = q.get("code").next().unwrap();
    /// assert_eq!(code.values().len(), 2);
    /// assert_eq!(code.values()[0].split('|'), ["http://loinc.org", "1234-5"]);
    /// let subject = q.get("subject").next().unwrap();
    /// assert_eq!((subject.modifier(), subject.chain()), (Some("Patient"), Some("name")));
    /// assert_eq!(q.count(), Some(Ok(10)));
    /// ```
    pub fn parse(raw: &str, max_params: usize) -> Result<Query, QueryError> {
        let mut params = Vec::new();
        if raw.is_empty() {
            return Ok(Query { params });
        }
        for pair in raw.split('&') {
            if params.len() >= max_params {
                return Err(QueryError::TooManyParams { limit: max_params });
            }
            let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let full_name = form_decode(raw_name)?;
            if full_name.is_empty() {
                return Err(QueryError::EmptyName);
            }
            let value = form_decode(raw_value)?;
            if value.chars().any(char::is_control) {
                return Err(QueryError::ControlCharacter(full_name.into_owned()));
            }
            params.push(parse_param(&full_name, value.into_owned())?);
        }
        let query = Query { params };
        query.check_repeats()?;
        Ok(query)
    }

    fn check_repeats(&self) -> Result<(), QueryError> {
        for (i, p) in self.params.iter().enumerate() {
            if p.kind.is_single_valued()
                && self
                    .params
                    .iter()
                    .skip(i + 1)
                    .any(|other| other.name == p.name)
            {
                return Err(QueryError::Repeated(p.name.clone()));
            }
        }
        Ok(())
    }

    /// Appends the parameters of another query (a `POST _search` form body after the URL's).
    pub(crate) fn extend(&mut self, other: Query) -> Result<(), QueryError> {
        self.params.extend(other.params);
        self.check_repeats()
    }

    /// Every parameter, in order.
    pub fn params(&self) -> &[QueryParam] {
        &self.params
    }

    /// The parameters with this name, in order (a repeated name means AND).
    pub fn get<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a QueryParam> + 'a {
        self.params.iter().filter(move |p| p.name == name)
    }

    /// The parameters of this kind, in order.
    pub fn of_kind(&self, kind: ParamKind) -> impl Iterator<Item = &QueryParam> + '_ {
        self.params.iter().filter(move |p| p.kind == kind)
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// `_count`, if given: `Some(Err(value))` when it is not a non-negative integer.
    pub fn count(&self) -> Option<Result<u32, &str>> {
        self.single(ParamKind::Count)
            .map(|v| v.parse::<u32>().map_err(|_| v))
    }

    /// `_format`, if given.
    pub fn format(&self) -> Option<&str> {
        self.single(ParamKind::Format)
    }

    /// `_summary`, if given.
    pub fn summary(&self) -> Option<&str> {
        self.single(ParamKind::Summary)
    }

    fn single(&self, kind: ParamKind) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.kind == kind)
            .map(|p| p.raw_value.as_str())
    }
}

fn parse_param(full_name: &str, raw_value: String) -> Result<QueryParam, QueryError> {
    let bad = || QueryError::BadName(full_name.chars().take(64).collect());
    if !full_name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'.'))
    {
        return Err(bad());
    }
    let (name, modifier, chain) = if let Some(rest) = full_name.strip_prefix("_has:") {
        // `_has:Observation:patient:code` keeps its reverse chain whole in the modifier.
        ("_has", Some(rest.to_owned()), None)
    } else {
        let (head, chain) = match full_name.split_once('.') {
            Some((head, chain)) => (head, Some(chain.to_owned())),
            None => (full_name, None),
        };
        match head.split_once(':') {
            Some((name, modifier)) => (name, Some(modifier.to_owned()), chain),
            None => (head, None, chain),
        }
    };
    if name.is_empty()
        || modifier.as_deref().is_some_and(str::is_empty)
        || chain
            .as_deref()
            .is_some_and(|c| c.is_empty() || c.split('.').any(str::is_empty))
    {
        return Err(bad());
    }
    let kind = ParamKind::of(name);
    let values = if raw_value.is_empty() {
        Vec::new()
    } else {
        split_unescaped(&raw_value, ',')
            .into_iter()
            .map(|v| SearchValue::new(v.to_owned()))
            .collect()
    };
    Ok(QueryParam {
        name: name.to_owned(),
        modifier,
        chain,
        kind,
        raw_value,
        values,
    })
}

/// Percent-decodes a query component, reading `+` as a space.
fn form_decode(raw: &str) -> Result<Cow<'_, str>, QueryError> {
    let plus_free: Cow<'_, str> = if raw.contains('+') {
        Cow::Owned(raw.replace('+', " "))
    } else {
        Cow::Borrowed(raw)
    };
    if !plus_free.contains('%') {
        return Ok(plus_free);
    }
    check_percent_triplets(&plus_free)?;
    let decoded = percent_decode(plus_free.as_bytes())
        .decode_utf8()
        .map_err(|_| QueryError::BadEncoding)?;
    Ok(Cow::Owned(decoded.into_owned()))
}

/// `percent_decode` passes a malformed `%zz` through as text; servers differ on that, so a
/// malformed escape is refused instead.
pub(crate) fn check_percent_triplets(s: &str) -> Result<(), QueryError> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let ok = matches!(
                (bytes.get(i + 1), bytes.get(i + 2)),
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit()
            );
            if !ok {
                return Err(QueryError::BadEncoding);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

fn split_unescaped(raw: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in raw.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == separator {
            parts.push(raw.get(start..i).unwrap_or_default());
            start = i + c.len_utf8();
        }
    }
    parts.push(raw.get(start..).unwrap_or_default());
    parts
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(next @ (',' | '|' | '$' | '\\')) => out.push(next),
                // Not one of FHIR's escapes: keep the backslash as text.
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_is_or_repeat_is_and() {
        // FHIR R4 §3.1.1.5.7: "," within a value is OR; a repeated parameter is AND.
        let q = Query::parse("date=ge2020&date=lt2021&status=final,amended", 10).unwrap();
        assert_eq!(q.get("date").count(), 2);
        assert_eq!(q.get("status").next().unwrap().values().len(), 2);
    }

    #[test]
    fn escapes() {
        // FHIR R4 §3.1.1.5.7 "Escaping Search Parameters".
        let q = Query::parse("code=a%5C,b,c%5C|d%7Ce", 10).unwrap();
        let p = q.get("code").next().unwrap();
        assert_eq!(p.values().len(), 2);
        assert_eq!(p.values()[0].text(), "a,b");
        assert_eq!(p.values()[1].split('|'), ["c|d", "e"]);
    }

    #[test]
    fn repeated_count_is_refused() {
        assert_eq!(
            Query::parse("_count=1&_count=1000", 10),
            Err(QueryError::Repeated("_count".into()))
        );
    }

    #[test]
    fn has_keeps_its_chain() {
        let q = Query::parse("_has:Observation:patient:code=1234-5", 10).unwrap();
        let p = &q.params()[0];
        assert_eq!((p.kind(), p.modifier()), (ParamKind::Has, Some("Observation:patient:code")));
    }

    #[test]
    fn malformed_percent_is_refused() {
        assert_eq!(Query::parse("name=%zz", 10), Err(QueryError::BadEncoding));
        assert_eq!(Query::parse("name=%C3%28", 10), Err(QueryError::BadEncoding));
    }
}
