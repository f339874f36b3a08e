//! FHIR search query parsing (FHIR R4 §3.1.1 "Search").
//!
//! A query is kept as an ordered list of parameters. Each parameter keeps the FHIR meaning of its
//! punctuation: a comma separates values that are OR-ed, a repeated parameter is AND-ed, and
//! `\,` `\|` `\$` `\\` escape the separators (FHIR R4 §3.1.1.5.7 "Escaping Search Parameters").

use std::borrow::Cow;

mod escape;
mod kind;
#[cfg(test)]
mod tests;

pub(crate) use escape::check_percent_triplets;
use escape::{for_each_unescaped, hex, unescape};
pub use kind::ParamKind;

/// One value of a parameter (one of its comma-separated alternatives), with FHIR escapes still
/// in place so that `\|` is not mistaken for a `system|code` separator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SearchValue<'a> {
    raw: &'a str,
}

impl<'a> SearchValue<'a> {
    /// The value as received after percent-decoding, escapes still in place.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// The value with FHIR escapes removed (`a\,b` → `a,b`).
    pub fn text(&self) -> Cow<'a, str> {
        if self.raw.contains('\\') {
            Cow::Owned(unescape(self.raw))
        } else {
            Cow::Borrowed(self.raw)
        }
    }

    /// The value split on an unescaped separator, each part unescaped: `'|'` for tokens and
    /// versioned references (`system|code`), `'$'` for composite parameters.
    pub fn split(&self, separator: char) -> Vec<Cow<'a, str>> {
        let mut parts = Vec::new();
        for_each_unescaped(self.raw, separator, |part| {
            parts.push(if part.contains('\\') {
                Cow::Owned(unescape(part))
            } else {
                Cow::Borrowed(part)
            });
        });
        parts
    }
}

/// A byte range of [`Query`]'s decoded text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    fn shifted(self, by: usize) -> Span {
        Span {
            start: self.start + by,
            end: self.end + by,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ParamSpans {
    name: Span,
    modifier: Option<Span>,
    chain: Option<Span>,
    kind: ParamKind,
    raw_value: Span,
    /// Range of [`Query::values`] holding this parameter's OR-ed values.
    values: (usize, usize),
}

/// One query parameter: `name[:modifier][.chain]=value,value`, borrowed from its [`Query`].
#[derive(Clone, Copy, Debug)]
pub struct QueryParam<'a> {
    query: &'a Query,
    spans: &'a ParamSpans,
}

impl<'a> QueryParam<'a> {
    fn text(&self, span: Span) -> &'a str {
        self.query
            .text
            .get(span.start..span.end)
            .unwrap_or_default()
    }

    /// The parameter's code (`subject` in `subject:Patient.name=x`; `_has` for reverse chains).
    pub fn name(&self) -> &'a str {
        self.text(self.spans.name)
    }

    /// The modifier after `:` (`exact`, `missing`, `Patient`, `iterate` …). For `_has` this is
    /// the rest of the reverse chain (`Observation:patient:code`).
    pub fn modifier(&self) -> Option<&'a str> {
        self.spans.modifier.map(|s| self.text(s))
    }

    /// The chained path after the first `.` (`name` in `subject:Patient.name=x`,
    /// `organization.name` in `subject.organization.name=x`).
    pub fn chain(&self) -> Option<&'a str> {
        self.spans.chain.map(|s| self.text(s))
    }

    /// Whether the parameter is chained into another resource.
    pub fn is_chained(&self) -> bool {
        self.spans.chain.is_some()
    }

    /// What kind of parameter this is.
    pub fn kind(&self) -> ParamKind {
        self.spans.kind
    }

    /// The whole value after percent-decoding, before splitting on commas.
    pub fn raw_value(&self) -> &'a str {
        self.text(self.spans.raw_value)
    }

    /// The OR-ed values (split on unescaped commas). Empty only when the value was empty.
    pub fn values(&self) -> impl ExactSizeIterator<Item = SearchValue<'a>> + 'a {
        let (start, end) = self.spans.values;
        let query = self.query;
        query
            .values
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(move |span| SearchValue {
                raw: query.text.get(span.start..span.end).unwrap_or_default(),
            })
    }

    /// The `index`th OR-ed value.
    pub fn value(&self, index: usize) -> Option<SearchValue<'a>> {
        self.values().nth(index)
    }
}

impl PartialEq for QueryParam<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
            && self.modifier() == other.modifier()
            && self.chain() == other.chain()
            && self.raw_value() == other.raw_value()
    }
}

/// A parsed query: parameters in the order they came, repeated parameters kept apart (AND).
///
/// Names and values are decoded once into one buffer; parameters and values are spans of it,
/// so parsing a typical query costs three allocations however many parameters it has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Query {
    text: String,
    params: Vec<ParamSpans>,
    values: Vec<Span>,
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
    /// assert_eq!(code.value(0).unwrap().split('|'), ["http://loinc.org", "1234-5"]);
    /// let subject = q.get("subject").next().unwrap();
    /// assert_eq!((subject.modifier(), subject.chain()), (Some("Patient"), Some("name")));
    /// assert_eq!(q.count(), Some(Ok(10)));
    /// ```
    pub fn parse(raw: &str, max_params: usize) -> Result<Query, QueryError> {
        let mut query = Query::default();
        if raw.is_empty() {
            return Ok(query);
        }
        // One counting pass sizes every buffer exactly, and refuses a flood of parameters
        // before any of them is decoded.
        let (mut pairs, mut commas) = (1usize, 0usize);
        for &b in raw.as_bytes() {
            pairs += usize::from(b == b'&');
            commas += usize::from(b == b',');
        }
        if pairs > max_params {
            return Err(QueryError::TooManyParams { limit: max_params });
        }
        query.text.reserve(raw.len());
        query.params.reserve_exact(pairs);
        query.values.reserve_exact(pairs + commas);
        let mut rest = raw;
        loop {
            let (pair, next) = match rest.as_bytes().iter().position(|&b| b == b'&') {
                Some(amp) => (rest.get(..amp).unwrap_or_default(), rest.get(amp + 1..)),
                None => (rest, None),
            };
            let (raw_name, raw_value) = match pair.as_bytes().iter().position(|&b| b == b'=') {
                Some(eq) => (
                    pair.get(..eq).unwrap_or_default(),
                    pair.get(eq + 1..).unwrap_or_default(),
                ),
                None => (pair, ""),
            };
            let name = query.push_decoded(raw_name)?;
            if name.start == name.end {
                return Err(QueryError::EmptyName);
            }
            let value = query.push_decoded(raw_value)?;
            query.add_param(name, value)?;
            match next {
                Some(n) => rest = n,
                None => break,
            }
        }
        query.check_repeats()?;
        Ok(query)
    }

    /// Percent-decodes a component onto the end of the buffer, reading `+` as a space.
    fn push_decoded(&mut self, raw: &str) -> Result<Span, QueryError> {
        let start = self.text.len();
        let Some(first) = raw.bytes().position(|b| b == b'%' || b == b'+') else {
            self.text.push_str(raw);
            return Ok(Span {
                start,
                end: self.text.len(),
            });
        };
        {
            let mut bytes = Vec::with_capacity(raw.len());
            bytes.extend_from_slice(raw.as_bytes().get(..first).unwrap_or_default());
            let mut iter = raw.bytes().skip(first);
            while let Some(b) = iter.next() {
                match b {
                    b'+' => bytes.push(b' '),
                    b'%' => {
                        let hi = iter.next().and_then(hex).ok_or(QueryError::BadEncoding)?;
                        let lo = iter.next().and_then(hex).ok_or(QueryError::BadEncoding)?;
                        bytes.push(hi << 4 | lo);
                    }
                    other => bytes.push(other),
                }
            }
            let decoded = std::str::from_utf8(&bytes).map_err(|_| QueryError::BadEncoding)?;
            self.text.push_str(decoded);
        }
        Ok(Span {
            start,
            end: self.text.len(),
        })
    }

    fn add_param(&mut self, full: Span, value: Span) -> Result<(), QueryError> {
        let text = self.text.as_str();
        let full_name = text.get(full.start..full.end).unwrap_or_default();
        let value_text = text.get(value.start..value.end).unwrap_or_default();
        let bad = || QueryError::BadName(full_name.chars().take(64).collect());
        // One pass over the name: validate, and find the first `:` before the first `.`.
        let (mut colon, mut dot) = (None, None);
        for (i, &b) in full_name.as_bytes().iter().enumerate() {
            match b {
                b'.' if dot.is_none() => dot = Some(i),
                b':' if colon.is_none() && dot.is_none() => colon = Some(i),
                b'.' | b':' | b'_' | b'-' => {}
                b if b.is_ascii_alphanumeric() => {}
                _ => return Err(bad()),
            }
        }
        let at = |from: usize, to: usize| Span {
            start: full.start + from,
            end: full.start + to,
        };
        let len = full_name.len();
        let (name, modifier, chain) = if full_name.starts_with("_has:") {
            // `_has:Observation:patient:code` keeps its reverse chain whole in the modifier.
            (at(0, 4), Some(at(5, len)), None)
        } else {
            let head_end = dot.unwrap_or(len);
            let chain = dot.map(|d| at(d + 1, len));
            match colon {
                Some(c) => (at(0, c), Some(at(c + 1, head_end)), chain),
                None => (at(0, head_end), None, chain),
            }
        };
        let span_text = |s: Span| text.get(s.start..s.end).unwrap_or_default();
        if name.start == name.end
            || modifier.is_some_and(|m| m.start == m.end)
            || chain.is_some_and(|c| span_text(c).split('.').any(str::is_empty))
        {
            return Err(bad());
        }
        let kind = ParamKind::of(span_text(name));
        let first_value = self.values.len();
        // One pass over the value: split on unescaped commas (`,` and `\\` are ASCII, so byte
        // scanning keeps UTF-8 boundaries) and refuse control characters, C0 and DEL as bytes,
        // C1 (U+0080..U+009F) as their UTF-8 form 0xC2 0x80..0x9F.
        let value_bytes = value_text.as_bytes();
        let mut part_start = value.start;
        let mut escaped = false;
        for (i, &b) in value_bytes.iter().enumerate() {
            if b < 0x20
                || b == 0x7f
                || (b == 0xc2
                    && value_bytes
                        .get(i + 1)
                        .is_some_and(|n| (0x80..0xa0).contains(n)))
            {
                return Err(QueryError::ControlCharacter(
                    full_name.chars().take(64).collect(),
                ));
            }
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b',' {
                self.values.push(Span {
                    start: part_start,
                    end: value.start + i,
                });
                part_start = value.start + i + 1;
            }
        }
        if value.start != value.end {
            self.values.push(Span {
                start: part_start,
                end: value.end,
            });
        }
        self.params.push(ParamSpans {
            name,
            modifier,
            chain,
            kind,
            raw_value: value,
            values: (first_value, self.values.len()),
        });
        Ok(())
    }

    fn check_repeats(&self) -> Result<(), QueryError> {
        for (i, p) in self.params().enumerate() {
            if p.kind().is_single_valued()
                && self.params().skip(i + 1).any(|o| o.name() == p.name())
            {
                return Err(QueryError::Repeated(p.name().to_owned()));
            }
        }
        Ok(())
    }

    /// Appends the parameters of another query (a `POST _search` form body after the URL's).
    pub(crate) fn extend(&mut self, other: Query) -> Result<(), QueryError> {
        let text_shift = self.text.len();
        let value_shift = self.values.len();
        self.text.push_str(&other.text);
        self.values
            .extend(other.values.iter().map(|v| v.shifted(text_shift)));
        self.params
            .extend(other.params.into_iter().map(|p| ParamSpans {
                name: p.name.shifted(text_shift),
                modifier: p.modifier.map(|s| s.shifted(text_shift)),
                chain: p.chain.map(|s| s.shifted(text_shift)),
                kind: p.kind,
                raw_value: p.raw_value.shifted(text_shift),
                values: (p.values.0 + value_shift, p.values.1 + value_shift),
            }));
        self.check_repeats()
    }

    /// Every parameter, in order.
    pub fn params(&self) -> impl ExactSizeIterator<Item = QueryParam<'_>> + '_ {
        self.params
            .iter()
            .map(move |spans| QueryParam { query: self, spans })
    }

    /// The `index`th parameter.
    pub fn param(&self, index: usize) -> Option<QueryParam<'_>> {
        self.params
            .get(index)
            .map(|spans| QueryParam { query: self, spans })
    }

    /// The parameters with this name, in order (a repeated name means AND).
    pub fn get<'a>(&'a self, name: &'a str) -> impl Iterator<Item = QueryParam<'a>> + 'a {
        self.params().filter(move |p| p.name() == name)
    }

    /// The parameters of this kind, in order.
    pub fn of_kind(&self, kind: ParamKind) -> impl Iterator<Item = QueryParam<'_>> + '_ {
        self.params().filter(move |p| p.kind() == kind)
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
        self.of_kind(kind).next().map(|p| p.raw_value())
    }
}
