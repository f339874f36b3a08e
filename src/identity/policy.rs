//! The trust policy: which verified client certificates belong to which trusted client.

use super::client::ClientIdentity;
use super::name::DistinguishedName;
use base64::Engine;
use std::fmt;
use std::sync::{Arc, RwLock};

/// The trusted client a request came from, by the name the trust policy gave it.
///
/// Put in the request extensions by [`TrustedClientLayer`](super::TrustedClientLayer); later
/// layers key budgets, audit records and redaction policy by [`name`](Self::name).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrustedClient {
    name: Arc<str>,
}

impl TrustedClient {
    /// A trusted client with this name.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        TrustedClient { name: name.into() }
    }

    /// The name from the trust policy.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for TrustedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TrustedClient").field(&&*self.name).finish()
    }
}

impl fmt::Display for TrustedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Which kind of rule recognised a client (recorded in the decision for audit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MatchedBy {
    /// [`ClientMatch::spki_pin`].
    SpkiPin,
    /// [`ClientMatch::thumbprint`].
    Thumbprint,
    /// [`ClientMatch::san_uri`].
    SanUri,
    /// [`ClientMatch::san_dns`].
    SanDns,
    /// [`ClientMatch::san_email`].
    SanEmail,
    /// [`ClientMatch::subject`].
    Subject,
    /// [`ClientMatch::issuer`] or [`ClientMatch::issued_by`].
    Issuer,
    /// [`ClientMatch::all`].
    All,
}

/// A trust-policy entry that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A pin or thumbprint is not 32 bytes of hex or base64.
    #[error("{0:?} is not a SHA-256 value (64 hex digits, or base64 / base64url of 32 bytes)")]
    BadDigest(String),
    /// A DNS pattern is neither a name nor `*.` followed by at least two labels.
    #[error("{0:?} is not a DNS name or a bounded wildcard like *.example.org")]
    BadDnsPattern(String),
    /// A URI pattern is not a URI, or has a `*` other than one whole last path segment.
    #[error("{0:?} is not a URI or a pattern like spiffe://example.org/ns/prod/sa/*")]
    BadUriPattern(String),
    /// An email is empty or has no `@`.
    #[error("{0:?} is not an email address")]
    BadEmail(String),
    /// A distinguished name could not be read.
    #[error(transparent)]
    BadDistinguishedName(#[from] super::name::BadDistinguishedName),
    /// An issuing CA certificate could not be read.
    #[error("the issuing CA certificate could not be read")]
    BadCaCertificate,
    /// [`ClientMatch::all`] was given no rules.
    #[error("a combined rule needs at least one rule")]
    EmptyAll,
    /// A client name is empty, longer than 256 bytes, or has control characters.
    #[error("{0:?} is not a usable client name (1 to 256 characters, no control characters)")]
    BadName(String),
}

/// One way to recognise a client certificate; see [`TrustPolicy`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientMatch {
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    SpkiPin([u8; 32]),
    Thumbprint([u8; 32]),
    SanUri(String),
    /// The pattern without its final `*`: `spiffe://x/ns/` matches `spiffe://x/ns/<segment>`.
    SanUriSegment(String),
    SanDns(String),
    /// `.example.org`: matches `<label>.example.org`.
    SanDnsWildcard(String),
    SanEmail(String),
    Subject(DistinguishedName),
    Issuer(DistinguishedName),
    IssuedBy {
        subject: DistinguishedName,
        key_id: Option<Vec<u8>>,
    },
    All(Vec<Kind>),
}

fn cut(text: &str) -> String {
    text.chars().take(128).collect()
}

fn digest(text: &str) -> Result<[u8; 32], PolicyError> {
    let bad = || PolicyError::BadDigest(cut(text));
    let trimmed = text.trim();
    let body = trimmed
        .strip_prefix("sha256//")
        .or_else(|| trimmed.strip_prefix("sha256/"))
        .unwrap_or(trimmed);
    let hex: String = body.chars().filter(|c| *c != ':').collect();
    let bytes = if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| {
                hex.get(i * 2..i * 2 + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    .ok_or_else(bad)
            })
            .collect::<Result<Vec<u8>, _>>()?
    } else {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        STANDARD
            .decode(body)
            .or_else(|_| URL_SAFE_NO_PAD.decode(body))
            .map_err(|_| bad())?
    };
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| bad())
}

fn normal_dns(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn dns_label_ok(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn uri_segment_ok(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

impl ClientMatch {
    /// The SHA-256 of the certificate's SubjectPublicKeyInfo, as 64 hex digits (colons
    /// allowed), standard base64 (RFC 7469 `pin-sha256`), base64url, or curl's
    /// `sha256//<base64>`. See [`ClientIdentity::spki_pin`].
    pub fn spki_pin(pin: &str) -> Result<Self, PolicyError> {
        Ok(ClientMatch {
            kind: Kind::SpkiPin(digest(pin)?),
        })
    }

    /// The SHA-256 of the certificate's DER, in the same forms as
    /// [`spki_pin`](Self::spki_pin) (the base64url form is RFC 8705's `x5t#S256`).
    pub fn thumbprint(thumbprint: &str) -> Result<Self, PolicyError> {
        Ok(ClientMatch {
            kind: Kind::Thumbprint(digest(thumbprint)?),
        })
    }

    /// A SAN URI, exactly; or, when the pattern ends in `/*`, any URI that adds exactly one
    /// path segment of unreserved characters (not `.` or `..`):
    /// `spiffe://example.org/ns/prod/sa/*` matches `spiffe://example.org/ns/prod/sa/lab` but
    /// not `.../sa/lab/x` nor `.../sa/`.
    pub fn san_uri(pattern: &str) -> Result<Self, PolicyError> {
        let bad = || PolicyError::BadUriPattern(cut(pattern));
        let scheme_ok = pattern.split_once(':').is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && !rest.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        });
        if !scheme_ok || pattern.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        let kind = match pattern.strip_suffix('*') {
            Some(prefix) if prefix.ends_with('/') && !prefix.contains('*') => {
                Kind::SanUriSegment(prefix.to_owned())
            }
            Some(_) => return Err(bad()),
            None if pattern.contains('*') => return Err(bad()),
            None => Kind::SanUri(pattern.to_owned()),
        };
        Ok(ClientMatch { kind })
    }

    /// A SAN DNS name, exactly (case-insensitive, trailing dot ignored); or a bounded
    /// wildcard `*.example.org` that matches one more label (`lab.example.org`), never two
    /// (`a.lab.example.org`) nor none (`example.org`). The part after `*.` needs at least two
    /// labels.
    pub fn san_dns(pattern: &str) -> Result<Self, PolicyError> {
        let bad = || PolicyError::BadDnsPattern(cut(pattern));
        let name = normal_dns(pattern);
        let (wildcard, rest) = match name.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, name.as_str()),
        };
        let labels: Vec<&str> = rest.split('.').collect();
        if !labels.iter().all(|l| dns_label_ok(l)) || (wildcard && labels.len() < 2) {
            return Err(bad());
        }
        let kind = if wildcard {
            Kind::SanDnsWildcard(format!(".{rest}"))
        } else {
            Kind::SanDns(name.clone())
        };
        Ok(ClientMatch { kind })
    }

    /// A SAN email (rfc822Name), case-insensitively.
    pub fn san_email(email: &str) -> Result<Self, PolicyError> {
        let email = email.trim();
        if email.is_empty() || !email.contains('@') {
            return Err(PolicyError::BadEmail(cut(email)));
        }
        Ok(ClientMatch {
            kind: Kind::SanEmail(email.to_ascii_lowercase()),
        })
    }

    /// The subject DN, in RFC 4514 form (`CN=lab-gateway,O=Example Lab`); see
    /// [`DistinguishedName::matches`].
    pub fn subject(dn: &str) -> Result<Self, PolicyError> {
        Ok(ClientMatch {
            kind: Kind::Subject(DistinguishedName::parse(dn)?),
        })
    }

    /// Any certificate whose issuer DN is this one (RFC 4514 form). Every chain is verified
    /// against the configured client CA roots first, so this names one of those CAs (or an
    /// intermediate under them).
    pub fn issuer(dn: &str) -> Result<Self, PolicyError> {
        Ok(ClientMatch {
            kind: Kind::Issuer(DistinguishedName::parse(dn)?),
        })
    }

    /// Any certificate issued directly by this CA certificate (DER): the issuer DN is the
    /// CA's subject, and when both carry key identifiers, the leaf's authority key identifier
    /// is the CA's subject key identifier.
    pub fn issued_by(ca_certificate_der: &[u8]) -> Result<Self, PolicyError> {
        let ca = ClientIdentity::from_der(ca_certificate_der)
            .map_err(|_| PolicyError::BadCaCertificate)?;
        Ok(ClientMatch {
            kind: Kind::IssuedBy {
                subject: ca.subject().clone(),
                key_id: ca.subject_key_id().map(<[u8]>::to_vec),
            },
        })
    }

    /// All of these rules at once, such as "issued by the partner CA and SAN DNS
    /// `*.partner.example`".
    pub fn all(rules: impl IntoIterator<Item = ClientMatch>) -> Result<Self, PolicyError> {
        let kinds: Vec<Kind> = rules.into_iter().map(|m| m.kind).collect();
        if kinds.is_empty() {
            return Err(PolicyError::EmptyAll);
        }
        Ok(ClientMatch {
            kind: Kind::All(kinds),
        })
    }

    /// Whether this rule recognises the certificate.
    pub fn matches(&self, identity: &ClientIdentity) -> bool {
        self.kind.matches(identity)
    }

    fn matched_by(&self) -> MatchedBy {
        match &self.kind {
            Kind::SpkiPin(_) => MatchedBy::SpkiPin,
            Kind::Thumbprint(_) => MatchedBy::Thumbprint,
            Kind::SanUri(_) | Kind::SanUriSegment(_) => MatchedBy::SanUri,
            Kind::SanDns(_) | Kind::SanDnsWildcard(_) => MatchedBy::SanDns,
            Kind::SanEmail(_) => MatchedBy::SanEmail,
            Kind::Subject(_) => MatchedBy::Subject,
            Kind::Issuer(_) | Kind::IssuedBy { .. } => MatchedBy::Issuer,
            Kind::All(_) => MatchedBy::All,
        }
    }
}

impl Kind {
    fn matches(&self, id: &ClientIdentity) -> bool {
        match self {
            Kind::SpkiPin(pin) => id.spki_sha256() == *pin,
            Kind::Thumbprint(t) => id.thumbprint().0 == *t,
            Kind::SanUri(uri) => id.uris().iter().any(|u| u == uri),
            Kind::SanUriSegment(prefix) => id
                .uris()
                .iter()
                .any(|u| u.strip_prefix(prefix.as_str()).is_some_and(uri_segment_ok)),
            Kind::SanDns(name) => id.dns_names().iter().any(|n| normal_dns(n) == *name),
            Kind::SanDnsWildcard(suffix) => id.dns_names().iter().any(|n| {
                let n = normal_dns(n);
                n.strip_suffix(suffix.as_str()).is_some_and(dns_label_ok)
            }),
            Kind::SanEmail(email) => id.emails().iter().any(|e| e.eq_ignore_ascii_case(email)),
            Kind::Subject(dn) => id.subject().matches(dn),
            Kind::Issuer(dn) => id.issuer().matches(dn),
            Kind::IssuedBy { subject, key_id } => {
                id.issuer().matches(subject)
                    && match (key_id, id.authority_key_id()) {
                        (Some(ca), Some(leaf)) => ca.as_slice() == leaf,
                        _ => true,
                    }
            }
            Kind::All(kinds) => kinds.iter().all(|k| k.matches(id)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    client: TrustedClient,
    rule: ClientMatch,
}

/// Which verified client certificates are trusted, and under which client name.
///
/// Rules are tried in the order they were added; the first that matches names the client.
/// A certificate no rule matches is refused (403). An empty policy trusts no one.
///
/// ```
/// use fhirwall::identity::{ClientMatch, TrustPolicy};
///
/// let policy = TrustPolicy::builder()
///     .allow("lab-ingest", ClientMatch::san_uri("spiffe://lab.example/ns/prod/sa/ingest")?)
///     .allow("payer", ClientMatch::san_dns("*.payer.example")?)
///     .allow("ops", ClientMatch::subject("CN=ops console,O=Example Hospital")?)
///     .allow("partner", ClientMatch::all([
///         ClientMatch::issuer("CN=Partner Issuing CA,O=Partner")?,
///         ClientMatch::san_dns("*.partner.example")?,
///     ])?)
///     .build()?;
/// assert_eq!(policy.len(), 4);
/// # Ok::<(), fhirwall::identity::PolicyError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustPolicy {
    rules: Vec<Rule>,
}

/// Builds a [`TrustPolicy`].
#[derive(Clone, Debug, Default)]
pub struct TrustPolicyBuilder {
    rules: Vec<(String, ClientMatch)>,
}

impl TrustPolicyBuilder {
    /// Trusts certificates matching `rule` as the client `name`. A client may have several
    /// rules (several certificates, or a key rollover).
    pub fn allow(mut self, name: impl Into<String>, rule: ClientMatch) -> Self {
        self.rules.push((name.into(), rule));
        self
    }

    /// The policy; fails on an unusable client name.
    pub fn build(self) -> Result<TrustPolicy, PolicyError> {
        let mut names: Vec<TrustedClient> = Vec::new();
        let mut rules = Vec::with_capacity(self.rules.len());
        for (name, rule) in self.rules {
            if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
                return Err(PolicyError::BadName(cut(&name)));
            }
            // Rules for the same client share one allocation of the name.
            let client = match names.iter().find(|c| c.name() == name) {
                Some(c) => c.clone(),
                None => {
                    let c = TrustedClient::new(name);
                    names.push(c.clone());
                    c
                }
            };
            rules.push(Rule { client, rule });
        }
        Ok(TrustPolicy { rules })
    }
}

impl TrustPolicy {
    /// An empty builder.
    pub fn builder() -> TrustPolicyBuilder {
        TrustPolicyBuilder::default()
    }

    /// A policy that trusts no one.
    pub fn deny_all() -> Self {
        TrustPolicy::default()
    }

    /// The first client whose rule matches the certificate, and which kind of rule it was.
    pub fn evaluate(&self, identity: &ClientIdentity) -> Option<(&TrustedClient, MatchedBy)> {
        self.rules
            .iter()
            .find(|r| r.rule.matches(identity))
            .map(|r| (&r.client, r.rule.matched_by()))
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules (no one is trusted).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The distinct client names, in the order they first appear.
    pub fn client_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for rule in &self.rules {
            if !names.contains(&rule.client.name()) {
                names.push(rule.client.name());
            }
        }
        names
    }
}

/// A trust policy that can be replaced while the server runs.
///
/// Clones share the policy: [`replace`](Self::replace) on any clone takes effect for the next
/// request on every connection, and open connections stay open.
#[derive(Clone, Debug)]
pub struct TrustPolicyHandle {
    current: Arc<RwLock<Arc<TrustPolicy>>>,
}

impl TrustPolicyHandle {
    /// A handle holding this policy.
    pub fn new(policy: TrustPolicy) -> Self {
        TrustPolicyHandle {
            current: Arc::new(RwLock::new(Arc::new(policy))),
        }
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<TrustPolicy> {
        // A panic while the lock was held cannot leave the Arc half-written, so a poisoned
        // lock still holds a whole policy.
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `policy` in force and returns the one it replaces.
    pub fn replace(&self, policy: TrustPolicy) -> Arc<TrustPolicy> {
        let new = Arc::new(policy);
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        std::mem::replace(&mut *guard, new)
    }

    pub(crate) fn evaluate(&self, identity: &ClientIdentity) -> Option<(TrustedClient, MatchedBy)> {
        let evaluate = |policy: &TrustPolicy| {
            policy
                .evaluate(identity)
                .map(|(client, by)| (client.clone(), by))
        };
        match self.current.read() {
            Ok(guard) => evaluate(&guard),
            Err(poisoned) => evaluate(&poisoned.into_inner()),
        }
    }
}

impl From<TrustPolicy> for TrustPolicyHandle {
    fn from(policy: TrustPolicy) -> Self {
        TrustPolicyHandle::new(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_in_every_documented_form() {
        let bytes = [0xabu8; 32];
        let hex = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        for form in [hex, colons, b64.clone(), b64url, format!("sha256//{b64}")] {
            assert_eq!(digest(&form), Ok(bytes), "{form}");
        }
        for bad in ["", "ab", &"zz".repeat(32), "sha256//AAAA"] {
            assert!(digest(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dns_patterns_are_bounded() {
        assert!(ClientMatch::san_dns("*.example.org").is_ok());
        assert!(ClientMatch::san_dns("lab.example.org.").is_ok());
        for bad in [
            "*.org",
            "*",
            "a.*.org",
            "**.example.org",
            "*example.org",
            "",
            "a..b",
            "a b.org",
        ] {
            assert!(ClientMatch::san_dns(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uri_patterns_are_bounded() {
        assert!(ClientMatch::san_uri("spiffe://x/ns/*").is_ok());
        assert!(ClientMatch::san_uri("urn:oid:1.2.3").is_ok());
        for bad in [
            "spiffe://x/ns*",
            "spiffe://*/ns/a",
            "nocolon",
            ":x",
            "spiffe://x/a b",
            "spiffe://x/*/*",
        ] {
            assert!(ClientMatch::san_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "a\nb", &"x".repeat(300)] {
            let built = TrustPolicy::builder()
                .allow(bad, ClientMatch::san_email("a@b").unwrap())
                .build();
            assert!(built.is_err(), "{bad:?}");
        }
    }

    #[test]
    fn all_needs_rules() {
        assert_eq!(ClientMatch::all([]), Err(PolicyError::EmptyAll));
    }

    #[test]
    fn handle_replaces_for_every_clone() {
        let handle = TrustPolicyHandle::new(TrustPolicy::deny_all());
        let clone = handle.clone();
        let policy = TrustPolicy::builder()
            .allow("a", ClientMatch::san_email("a@b").unwrap())
            .build()
            .unwrap();
        let old = clone.replace(policy);
        assert!(old.is_empty());
        assert_eq!(handle.current().client_names(), vec!["a"]);
    }
}
