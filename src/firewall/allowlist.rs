//! IP allowlists: by route group (path prefix) and by trusted client.

use crate::net::{canonical, BadCidr, IpNetworks};
use std::net::IpAddr;

/// Allow and deny networks; deny wins. An empty allow list allows every address not denied.
///
/// ```
/// use fhirwall::firewall::IpRule;
///
/// let rule = IpRule::allow(["10.0.0.0/8", "2001:db8::/32"])?.deny(["10.66.0.0/16"])?;
/// assert!(rule.permits("10.1.2.3".parse().unwrap()));
/// assert!(!rule.permits("10.66.0.1".parse().unwrap()));
/// assert!(rule.permits("::ffff:10.1.2.3".parse().unwrap()));
/// assert!(!rule.permits("192.0.2.1".parse().unwrap()));
/// # Ok::<(), fhirwall::net::BadCidr>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpRule {
    allow: IpNetworks,
    deny: IpNetworks,
}

impl IpRule {
    /// Allows only these networks.
    pub fn allow<I, S>(cidrs: I) -> Result<Self, BadCidr>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(IpRule {
            allow: IpNetworks::new(cidrs)?,
            deny: IpNetworks::default(),
        })
    }

    /// Allows every address (until [`deny`](Self::deny) narrows it).
    pub fn any() -> Self {
        IpRule::default()
    }

    /// Denies these networks, even when an allowed network contains them.
    pub fn deny<I, S>(mut self, cidrs: I) -> Result<Self, BadCidr>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.deny = IpNetworks::new(cidrs)?;
        Ok(self)
    }

    /// Whether every address passes (no allow list, no deny list): the per-request check is
    /// then skipped, and no client address is needed.
    #[inline]
    pub(crate) fn is_any(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Whether `ip` may pass.
    #[inline]
    pub fn permits(&self, ip: IpAddr) -> bool {
        // Canonical once for both lists (`contains` would make it so twice).
        let ip = canonical(ip);
        !self.deny.contains_canonical(ip)
            && (self.allow.is_empty() || self.allow.contains_canonical(ip))
    }
}

/// A path prefix with its own address rule (such as `/fhir/$export` or `/admin`).
#[derive(Clone, Debug)]
pub(crate) struct RouteGroup {
    pub(crate) prefix: String,
    pub(crate) rule: IpRule,
}

/// Whether `path` is `prefix` or below it, on a segment boundary (`/fhir` covers `/fhir/x`,
/// not `/fhirx`).
#[inline]
pub(crate) fn under(path: &str, prefix: &str) -> bool {
    let mut prefix = prefix.as_bytes();
    // Prefixes rarely end in `/`, and this runs several times per request: trimmed only then.
    while let [rest @ .., b'/'] = prefix {
        prefix = rest;
    }
    if prefix.is_empty() {
        return true;
    }
    let path = path.as_bytes();
    // The boundary byte first: it rejects most prefixes a path is not under without a call
    // to compare the bytes.
    path.len() >= prefix.len()
        && matches!(path.get(prefix.len()), None | Some(b'/'))
        && path.starts_with(prefix)
}

/// The address rule for `path`: the longest matching group's (of equal ones the last), else
/// the default.
#[inline]
pub(crate) fn rule_for<'a>(
    groups: &'a [RouteGroup],
    default: &'a IpRule,
    path: &str,
) -> &'a IpRule {
    // A plain loop: the iterator chain's closures cost more than the few groups it visits.
    let mut longest: Option<&RouteGroup> = None;
    for g in groups {
        if under(path, &g.prefix) && longest.is_none_or(|l| g.prefix.len() >= l.prefix.len()) {
            longest = Some(g);
        }
    }
    longest.map_or(default, |g| &g.rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_boundary() {
        assert!(under("/fhir/Patient", "/fhir"));
        assert!(under("/fhir", "/fhir/"));
        assert!(!under("/fhirx", "/fhir"));
        assert!(under("/anything", "/"));
    }

    #[test]
    fn longest_group_wins() {
        let groups = vec![
            RouteGroup {
                prefix: "/fhir".into(),
                rule: IpRule::allow(["10.0.0.0/8"]).unwrap(),
            },
            RouteGroup {
                prefix: "/fhir/$export".into(),
                rule: IpRule::allow(["10.9.0.0/16"]).unwrap(),
            },
        ];
        let default = IpRule::any();
        let r = rule_for(&groups, &default, "/fhir/$export");
        assert!(!r.permits("10.1.1.1".parse().unwrap()));
        let r = rule_for(&groups, &default, "/fhir/Patient");
        assert!(r.permits("10.1.1.1".parse().unwrap()));
        let r = rule_for(&groups, &default, "/health");
        assert!(r.permits("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn equal_groups_the_last_wins() {
        // As `max_by_key` chose before the loop replaced it.
        let groups = vec![
            RouteGroup {
                prefix: "/admin".into(),
                rule: IpRule::allow(["10.0.0.0/8"]).unwrap(),
            },
            RouteGroup {
                prefix: "/admin".into(),
                rule: IpRule::allow(["192.0.2.0/24"]).unwrap(),
            },
        ];
        let default = IpRule::any();
        let r = rule_for(&groups, &default, "/admin/x");
        assert!(r.permits("192.0.2.1".parse().unwrap()));
        assert!(!r.permits("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn mapped_addresses_meet_ipv4_rules() {
        let rule = IpRule::allow(["10.0.0.0/8"])
            .unwrap()
            .deny(["10.66.0.0/16"])
            .unwrap();
        assert!(rule.permits("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!rule.permits("::ffff:10.66.0.1".parse().unwrap()));
        assert!(!rule.permits("::ffff:192.0.2.1".parse().unwrap()));
    }
}
