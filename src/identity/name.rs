//! Distinguished names: read from certificates, parsed from configuration, compared.

use std::fmt;

/// An X.501 distinguished name (a certificate's subject or issuer), as an ordered list of
/// `(attribute, value)` pairs in the certificate's own order (most significant first, so
/// usually `C`, `O`, ..., `CN`).
///
/// Attribute types use their RFC 4514 short names (`CN`, `O`, `OU`, `C`, `L`, `ST`, `DC`,
/// `UID`, `STREET`, `SERIALNUMBER`, `emailAddress`), or the dotted OID for others. Values that
/// are not strings are shown as `#` and the hex of their bytes.
///
/// `Display` writes the RFC 4514 string form (least significant first):
/// `CN=lab-gateway,O=Example Lab,C=US`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DistinguishedName {
    attributes: Vec<(String, String)>,
}

/// A distinguished name in configuration that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a distinguished name like \"CN=client,O=Example\"")]
pub struct BadDistinguishedName(pub String);

impl DistinguishedName {
    /// A name from `(attribute, value)` pairs, most significant first.
    pub fn from_attributes<I, A, V>(attributes: I) -> Self
    where
        I: IntoIterator<Item = (A, V)>,
        A: Into<String>,
        V: Into<String>,
    {
        DistinguishedName {
            attributes: attributes
                .into_iter()
                .map(|(a, v)| (canonical_attribute(&a.into()), v.into()))
                .collect(),
        }
    }

    /// Parses the RFC 4514 string form (`CN=client,O=Example,C=US`).
    ///
    /// Backslash escapes (`\,` and `\2C`) are understood; spaces around `=` and `,` are
    /// ignored; attribute types are case-insensitive. Multi-valued RDNs (`+`) are read as
    /// separate attributes.
    pub fn parse(text: &str) -> Result<Self, BadDistinguishedName> {
        let bad = || BadDistinguishedName(text.chars().take(128).collect());
        let mut attributes = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            let mut attr = String::new();
            let mut equals = false;
            for c in chars.by_ref() {
                if c == '=' {
                    equals = true;
                    break;
                }
                attr.push(c);
            }
            let attr = attr.trim();
            if !equals
                || attr.is_empty()
                || !attr
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                return Err(bad());
            }
            let mut value = String::new();
            let mut end = None;
            // Trailing spaces are insignificant unless escaped.
            let mut significant_len = 0;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        let next = chars.next().ok_or_else(bad)?;
                        if next.is_ascii_hexdigit() {
                            let low = chars.next().ok_or_else(bad)?;
                            let byte = u8::from_str_radix(&format!("{next}{low}"), 16)
                                .map_err(|_| bad())?;
                            if !byte.is_ascii() {
                                return Err(bad());
                            }
                            value.push(char::from(byte));
                        } else {
                            value.push(next);
                        }
                        significant_len = value.len();
                    }
                    ',' | ';' | '+' => {
                        end = Some(c);
                        break;
                    }
                    c => {
                        if !(value.is_empty() && c == ' ') {
                            value.push(c);
                            if c != ' ' {
                                significant_len = value.len();
                            }
                        }
                    }
                }
            }
            value.truncate(significant_len);
            attributes.push((canonical_attribute(attr), value));
            if end.is_none() {
                break;
            }
        }
        // The string form lists the least significant RDN first.
        attributes.reverse();
        Ok(DistinguishedName { attributes })
    }

    /// The `(attribute, value)` pairs, most significant first.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attributes
            .iter()
            .map(|(a, v)| (a.as_str(), v.as_str()))
    }

    /// The values of one attribute (`"CN"`), in order.
    pub fn get<'a>(&'a self, attribute: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.attributes
            .iter()
            .filter(move |(a, _)| a.eq_ignore_ascii_case(attribute))
            .map(|(_, v)| v.as_str())
    }

    /// The last (most specific) common name, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.get("CN").last()
    }

    /// Whether the name has no attributes.
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty()
    }

    /// Whether `other` names the same entity: the same attributes with the same values in the
    /// same order, or in exactly the reverse order (so a name written most-significant-first,
    /// as OpenSSL prints it, matches too). Attribute types compare case-insensitively, values
    /// exactly.
    pub fn matches(&self, other: &DistinguishedName) -> bool {
        let same = |a: &(String, String), b: &(String, String)| {
            a.0.eq_ignore_ascii_case(&b.0) && a.1 == b.1
        };
        self.attributes.len() == other.attributes.len()
            && (self
                .attributes
                .iter()
                .zip(&other.attributes)
                .all(|(a, b)| same(a, b))
                || self
                    .attributes
                    .iter()
                    .zip(other.attributes.iter().rev())
                    .all(|(a, b)| same(a, b)))
    }

    pub(crate) fn from_x509(name: &x509_parser::x509::X509Name<'_>) -> Self {
        let mut attributes = Vec::new();
        for atv in name.iter_attributes() {
            let oid = atv.attr_type().to_id_string();
            let attr = short_name(&oid).map_or(oid, str::to_owned);
            let value = match atv.as_str() {
                Ok(s) => s.to_owned(),
                Err(_) => {
                    let mut hex = String::from("#");
                    for b in atv.as_slice() {
                        hex.push_str(&format!("{b:02x}"));
                    }
                    hex
                }
            };
            attributes.push((attr, value));
        }
        DistinguishedName { attributes }
    }
}

impl fmt::Display for DistinguishedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (attr, value)) in self.attributes.iter().rev().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{attr}=")?;
            let last = value.chars().count().saturating_sub(1);
            for (j, c) in value.chars().enumerate() {
                let escape = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
                    || (j == 0 && (c == '#' || c == ' '))
                    || (j == last && c == ' ');
                if escape {
                    f.write_str("\\")?;
                }
                if c.is_control() {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        write!(f, "\\{b:02X}")?;
                    }
                } else {
                    write!(f, "{c}")?;
                }
            }
        }
        Ok(())
    }
}

const SHORT_NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("1.2.840.113549.1.9.1", "emailAddress"),
];

fn short_name(oid: &str) -> Option<&'static str> {
    SHORT_NAMES
        .iter()
        .find(|(o, _)| *o == oid)
        .map(|(_, name)| *name)
}

/// The attribute type as certificates read here spell it: a known short name (any case, or
/// its OID, or `E`/`email`) becomes the canonical short name.
fn canonical_attribute(attr: &str) -> String {
    let attr = attr.trim();
    if let Some(name) = short_name(attr) {
        return name.to_owned();
    }
    if attr.eq_ignore_ascii_case("E") || attr.eq_ignore_ascii_case("email") {
        return "emailAddress".to_owned();
    }
    SHORT_NAMES
        .iter()
        .find(|(_, name)| name.eq_ignore_ascii_case(attr))
        .map_or_else(|| attr.to_owned(), |(_, name)| (*name).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(pairs: &[(&str, &str)]) -> DistinguishedName {
        DistinguishedName::from_attributes(pairs.iter().copied())
    }

    #[test]
    fn rfc4514_string_form_round_trips() {
        // RFC 4514 §2.1: the string lists the last RDN first.
        let name = dn(&[("C", "US"), ("O", "Example, Inc."), ("CN", "lab #1")]);
        let text = name.to_string();
        assert_eq!(text, r"CN=lab #1,O=Example\, Inc.,C=US");
        assert_eq!(DistinguishedName::parse(&text).unwrap(), name);
    }

    #[test]
    fn parse_accepts_spaces_hex_escapes_and_lowercase_types() {
        let parsed = DistinguishedName::parse(r"cn = a\2Cb , o=Org").unwrap();
        assert_eq!(parsed, dn(&[("O", "Org"), ("CN", "a,b")]));
        let parsed = DistinguishedName::parse("2.5.4.3=x").unwrap();
        assert_eq!(parsed, dn(&[("CN", "x")]));
    }

    #[test]
    fn parse_rejects_garbage() {
        for bad in ["", "CN", "=x", "CN=a,", "CN=a\\", "C N=x", "CN=\\ff"] {
            assert!(DistinguishedName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn matches_in_either_order_but_not_partially() {
        let cert = dn(&[("C", "US"), ("O", "Org"), ("CN", "x")]);
        assert!(cert.matches(&DistinguishedName::parse("CN=x,O=Org,C=US").unwrap()));
        assert!(cert.matches(&DistinguishedName::parse("C=US,O=Org,CN=x").unwrap()));
        assert!(!cert.matches(&DistinguishedName::parse("CN=x,O=Org").unwrap()));
        assert!(!cert.matches(&DistinguishedName::parse("CN=X,O=Org,C=US").unwrap()));
        assert!(!cert.matches(&DistinguishedName::parse("O=Org,CN=x,C=US").unwrap()));
    }

    #[test]
    fn common_name_is_the_most_specific() {
        let name = dn(&[("CN", "outer"), ("CN", "inner")]);
        assert_eq!(name.common_name(), Some("inner"));
    }
}
