//! Hard caps per request: `_count`, page depth, `$everything` size.

use crate::fhir::{FhirRequest, Interaction, IssueType, Query};
use http::request::Parts;
use http::Uri;
use percent_encoding::percent_decode_str;

/// What happens to a `_count` above the cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CountCapMode {
    /// Rewrite the request's `_count` to the cap before the inner service sees it (default):
    /// in the URL of a GET, and in the URL or the form body of a `POST _search`, wherever the
    /// client put it (the form is read, its `_count` segment replaced, every other byte kept
    /// and `Content-Length` set to the new size).
    #[default]
    Lower,
    /// Refuse the request (400, `too-costly`).
    Refuse,
}

/// How the page of a paged search is recognised in its URL, to count page depth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageParam {
    /// An offset into the results (the demo server's `_offset`, HAPI's `_getpagesoffset`):
    /// depth is `offset / page size`, the page size being `_count`, else
    /// [`Caps::default_page_size`].
    Offset(String),
    /// A one-based page number: depth is `number − 1`.
    Number(String),
}

/// Per-request hard caps.
///
/// Defaults: `_count` at most 100, lowered ([`CountCapMode::Lower`]), and added to searches
/// without one (to the URL of a `POST _search`, whose URL and form parameters FHIR R4 §3.1.1.5
/// combines) so a server's larger default can't go around the cap; at most 20
/// `next` links followed per search, pages recognised by `_offset` and `_getpagesoffset`, a
/// page size of 20 where `_count` is absent; `$everything` returns at most 1,000 resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caps {
    pub(crate) max_count: Option<u32>,
    pub(crate) count_mode: CountCapMode,
    pub(crate) paging: Vec<PageParam>,
    pub(crate) max_page_depth: Option<u64>,
    pub(crate) default_page_size: u32,
    pub(crate) everything_max: Option<u64>,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            max_count: Some(100),
            count_mode: CountCapMode::Lower,
            paging: vec![
                PageParam::Offset("_offset".into()),
                PageParam::Offset("_getpagesoffset".into()),
            ],
            max_page_depth: Some(20),
            default_page_size: 20,
            everything_max: Some(1000),
        }
    }
}

impl Caps {
    /// No caps at all.
    pub fn none() -> Self {
        Caps {
            max_count: None,
            count_mode: CountCapMode::Lower,
            paging: Vec::new(),
            max_page_depth: None,
            default_page_size: 20,
            everything_max: None,
        }
    }

    /// The largest `_count` (`None`: no cap).
    pub fn max_count(mut self, max: Option<u32>, mode: CountCapMode) -> Self {
        self.max_count = max.map(|m| m.max(1));
        self.count_mode = mode;
        self
    }

    /// The most `next` links a client may follow for one search (`None`: no cap).
    pub fn max_page_depth(mut self, max: Option<u64>) -> Self {
        self.max_page_depth = max;
        self
    }

    /// How pages are recognised (replaces the defaults).
    pub fn paging(mut self, params: impl IntoIterator<Item = PageParam>) -> Self {
        self.paging = params.into_iter().collect();
        self
    }

    /// The page size assumed where `_count` is absent (default 20).
    pub fn default_page_size(mut self, size: u32) -> Self {
        self.default_page_size = size.max(1);
        self
    }

    /// The most resources one `$everything` may return (`None`: no cap).
    pub fn everything_max(mut self, max: Option<u64>) -> Self {
        self.everything_max = max;
        self
    }
}

/// Why a cap refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapRefusal {
    /// `_count` above the cap with [`CountCapMode::Refuse`].
    CountTooLarge,
    /// `_count` or a paging parameter is not a non-negative integer, `_count` is given twice
    /// (in a `POST _search`, URL and form together), or the form can't be read.
    Malformed,
    /// The page is deeper than the cap.
    PageTooDeep,
}

fn capped(fhir: &FhirRequest) -> bool {
    let i = fhir.interaction();
    i.is_search()
        || i.is_history()
        || (i == Interaction::Operation && fhir.operation().is_some_and(|o| o.name == "everything"))
}

/// Checks the caps and lowers `_count` in `parts` (URI and [`FhirRequest`]) when configured.
///
/// `Ok(Some(cap))`: a `POST _search` whose `_count` is above the cap; its form must be read
/// and the `_count` lowered to `cap` with [`lower_post_count`](super::form::lower_post_count)
/// before the request goes on.
pub(crate) fn apply(caps: &Caps, parts: &mut Parts) -> Result<Option<u32>, CapRefusal> {
    let Some(fhir) = parts.extensions.get::<FhirRequest>() else {
        return Ok(None);
    };
    if !capped(fhir) {
        return Ok(None);
    }
    let count = match fhir.query().count() {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return Err(CapRefusal::Malformed),
    };
    let via_post = fhir.is_search_via_post();
    let mut page_size = count.unwrap_or(caps.default_page_size);
    let mut rewrite = None;
    let mut lower_post = None;
    if let Some(max) = caps.max_count {
        match count {
            Some(n) if n > max => {
                if caps.count_mode == CountCapMode::Refuse {
                    return Err(CapRefusal::CountTooLarge);
                }
                // A POST's `_count` may be in its form, which is read later.
                if via_post {
                    lower_post = Some(max);
                } else {
                    rewrite = Some(max);
                }
                page_size = max;
            }
            None => {
                rewrite = Some(max);
                page_size = max;
            }
            _ => {}
        }
    }
    if let Some(max_depth) = caps.max_page_depth {
        let depth = page_depth(&caps.paging, fhir.query(), page_size)?;
        if depth > max_depth {
            return Err(CapRefusal::PageTooDeep);
        }
    }
    if let Some(n) = rewrite {
        set_count(parts, n)?;
    }
    Ok(lower_post)
}

/// The refusal's issue code and text.
pub(super) fn refusal_text(refusal: CapRefusal) -> (IssueType, &'static str) {
    match refusal {
        CapRefusal::Malformed => (
            IssueType::Invalid,
            "_count or a paging parameter is repeated or not a valid number",
        ),
        CapRefusal::CountTooLarge => (IssueType::TooCostly, "_count is larger than allowed"),
        CapRefusal::PageTooDeep => (
            IssueType::TooCostly,
            "this search has been paged deeper than allowed",
        ),
    }
}

fn page_depth(paging: &[PageParam], query: &Query, page_size: u32) -> Result<u64, CapRefusal> {
    let mut depth = 0;
    for param in paging {
        let (name, offset) = match param {
            PageParam::Offset(name) => (name, true),
            PageParam::Number(name) => (name, false),
        };
        for p in query.get(name) {
            let value: u64 = p.raw_value().parse().map_err(|_| CapRefusal::Malformed)?;
            let d = if offset {
                value / u64::from(page_size.max(1))
            } else {
                value.saturating_sub(1)
            };
            depth = depth.max(d);
        }
    }
    Ok(depth)
}

/// Replaces (or adds) `_count` in the URI's query and in the classified request.
fn set_count(parts: &mut Parts, count: u32) -> Result<(), CapRefusal> {
    let raw = parts.uri.query().unwrap_or("");
    let query = replace_param(raw, "_count", &count.to_string());
    let path = parts.uri.path();
    let uri: Uri = format!("{path}?{query}")
        .parse()
        .map_err(|_| CapRefusal::Malformed)?;
    let mut uri_parts = parts.uri.clone().into_parts();
    uri_parts.path_and_query = uri.into_parts().path_and_query;
    parts.uri = Uri::from_parts(uri_parts).map_err(|_| CapRefusal::Malformed)?;
    if let Some(fhir) = parts.extensions.get_mut::<FhirRequest>() {
        if fhir.is_search_via_post() {
            // Only a missing `_count` is written for a POST: the classified query (URL and
            // form merged) gains it, the form's parameters stay.
            let added =
                Query::parse(&format!("_count={count}"), 1).map_err(|_| CapRefusal::Malformed)?;
            fhir.query
                .extend(added)
                .map_err(|_| CapRefusal::Malformed)?;
        } else {
            let limit = fhir.query.len() + 1;
            fhir.query = Query::parse(&query, limit).map_err(|_| CapRefusal::Malformed)?;
        }
    }
    Ok(())
}

/// The raw query with every `name=…` replaced by one `name=value` (appended if absent); other
/// parameters keep their exact bytes.
pub(crate) fn replace_param(raw: &str, name: &str, value: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut done = false;
    for segment in raw.split('&').filter(|s| !s.is_empty()) {
        let key = segment.split('=').next().unwrap_or("");
        let key = percent_decode_str(&key.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
        if key == name {
            if !done {
                out.push(format!("{name}={value}"));
                done = true;
            }
        } else {
            out.push(segment.to_owned());
        }
    }
    if !done {
        out.push(format!("{name}={value}"));
    }
    out.join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_other_bytes() {
        assert_eq!(
            replace_param("code=a%7Cb&_count=500&x=1", "_count", "100"),
            "code=a%7Cb&_count=100&x=1"
        );
        assert_eq!(replace_param("", "_count", "5"), "_count=5");
        assert_eq!(replace_param("%5Fcount=9", "_count", "5"), "_count=5");
    }
}
