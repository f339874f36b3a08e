//! Envoy's `x-forwarded-client-cert` (XFCC) header.
//!
//! The value is a comma-separated list of elements, one per proxy hop; each element is a
//! semicolon-separated list of `key=value` pairs. Keys are case-insensitive (`By`, `Hash`,
//! `Cert`, `Chain`, `Subject`, `URI`, `DNS`). A value holding `,`, `;` or `=` is double-quoted,
//! and a `"` inside a quoted value is written `\"`; every other backslash is literal (Subject
//! values keep their RFC 4514 escapes).

use super::HeaderError;

/// The longest XFCC value read, in bytes (64 KiB: a certificate and a chain of three,
/// URL-escaped, fit several times over).
pub const MAX_XFCC_LEN: usize = 64 * 1024;
/// The most elements (proxy hops) read.
pub const MAX_XFCC_ELEMENTS: usize = 16;
/// The most `key=value` pairs read in one element.
pub const MAX_XFCC_PAIRS: usize = 64;

/// One XFCC element: the pairs one proxy added, in order, keys lower-cased.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XfccElement {
    pairs: Vec<(String, String)>,
}

impl XfccElement {
    /// The pairs in order, keys lower-cased, values unquoted.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Every value of `key` (case-insensitive).
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`: `Ok(None)` when absent, an error when it appears more than once.
    pub fn get_unique(&self, key: &str) -> Result<Option<&str>, HeaderError> {
        let mut values = self
            .pairs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(HeaderError::Duplicate);
        }
        Ok(first)
    }
}

/// Parses an XFCC value into its elements, left (first hop) to right (the hop nearest this
/// server).
///
/// ```
/// use fhirwall::identity::forwarded::parse_xfcc;
///
/// let elements = parse_xfcc(r#"By=spiffe://a/b;Hash=abc;Subject="CN=x,O=\"Y\"";URI=spiffe://c/d"#).unwrap();
/// assert_eq!(elements.len(), 1);
/// assert_eq!(elements[0].get_unique("subject").unwrap(), Some(r#"CN=x,O="Y""#));
/// ```
pub fn parse_xfcc(value: &str) -> Result<Vec<XfccElement>, HeaderError> {
    if value.len() > MAX_XFCC_LEN {
        return Err(HeaderError::TooLong);
    }
    let mut elements = Vec::new();
    let mut element = XfccElement::default();
    let mut rest = value.trim_start_matches([' ', '\t']);
    if rest.is_empty() {
        return Err(HeaderError::Syntax);
    }
    loop {
        // key
        let key_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        let (key, after) = rest.split_at_checked(key_len).ok_or(HeaderError::Syntax)?;
        if key.is_empty() {
            return Err(HeaderError::Syntax);
        }
        rest = after.strip_prefix('=').ok_or(HeaderError::Syntax)?;
        // value
        let value = if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    '\\' => match chars.clone().next() {
                        Some((_, '"')) => {
                            chars.next();
                            value.push('"');
                        }
                        _ => value.push('\\'),
                    },
                    c if c.is_control() => return Err(HeaderError::Syntax),
                    c => value.push(c),
                }
            }
            let end = end.ok_or(HeaderError::Syntax)?;
            rest = quoted.get(end..).ok_or(HeaderError::Syntax)?;
            value
        } else {
            let len = rest.find([',', ';', ' ', '\t']).unwrap_or(rest.len());
            let (value, after) = rest.split_at_checked(len).ok_or(HeaderError::Syntax)?;
            if value.contains(['"', '=']) || value.chars().any(char::is_control) {
                return Err(HeaderError::Syntax);
            }
            rest = after;
            value.to_owned()
        };
        if element.pairs.len() >= MAX_XFCC_PAIRS {
            return Err(HeaderError::TooMany);
        }
        element.pairs.push((key.to_ascii_lowercase(), value));
        rest = rest.trim_start_matches([' ', '\t']);
        match rest.chars().next() {
            None => {
                elements.push(element);
                return Ok(elements);
            }
            Some(';') => {
                rest = rest
                    .get(1..)
                    .ok_or(HeaderError::Syntax)?
                    .trim_start_matches([' ', '\t']);
            }
            Some(',') => {
                if elements.len() + 1 >= MAX_XFCC_ELEMENTS {
                    return Err(HeaderError::TooMany);
                }
                elements.push(std::mem::take(&mut element));
                rest = rest
                    .get(1..)
                    .ok_or(HeaderError::Syntax)?
                    .trim_start_matches([' ', '\t']);
            }
            Some(_) => return Err(HeaderError::Syntax),
        }
        if rest.is_empty() {
            // A trailing separator.
            return Err(HeaderError::Syntax);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_documentation_shapes() {
        // Envoy docs, "x-forwarded-client-cert": two hops, quoted Subject, repeated DNS.
        let v = r#"By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com;DNS=lyft.com;DNS=www.lyft.com,By=http://backend.lyft.com;Hash=abc"#;
        let e = parse_xfcc(v).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            e[0].get_all("dns").collect::<Vec<_>>(),
            ["lyft.com", "www.lyft.com"]
        );
        assert_eq!(
            e[1].get_unique("BY").unwrap(),
            Some("http://backend.lyft.com")
        );
        assert_eq!(e[0].get_unique("dns"), Err(HeaderError::Duplicate));
    }

    #[test]
    fn backslashes_other_than_quote_escapes_are_literal() {
        let e = parse_xfcc(r#"Subject="CN=a\,b""#).unwrap();
        assert_eq!(e[0].get_unique("subject").unwrap(), Some(r"CN=a\,b"));
    }

    #[test]
    fn hostile_shapes_are_errors() {
        for bad in [
            "",
            "=x",
            "a",
            "a=\"x",
            "a=x;",
            "a=x,",
            "a=x,,b=y",
            "a=\"x\"y",
            "a=b=c",
            "a=\"\u{1}\"",
        ] {
            assert!(parse_xfcc(bad).is_err(), "{bad:?}");
        }
        let many = vec!["a=b"; MAX_XFCC_ELEMENTS + 1].join(",");
        assert_eq!(parse_xfcc(&many), Err(HeaderError::TooMany));
        let long = format!("a={}", "x".repeat(MAX_XFCC_LEN));
        assert_eq!(parse_xfcc(&long), Err(HeaderError::TooLong));
    }
}
