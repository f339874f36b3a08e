//! IP allowlists: by route group (path prefix) and by trusted client.

use crate::net::{BadCidr, IpNetworks};
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
    pub(crate) fn is_any(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Whether `ip` may pass.
    pub fn permits(&self, ip: IpAddr) -> bool {
        !self.deny.contains(ip) && (self.allow.is_empty() || self.allow.contains(ip))
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
pub(crate) fn under(path: &str, prefix: &str) -> bool {
    // Checked before trimming: prefixes rarely end in `/`, and this runs several times per
    // request.
    let prefix = if prefix.ends_with('/') {
        prefix.trim_end_matches('/')
    } else {
        prefix
    };
    if prefix.is_empty() {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The address rule for `path`: the longest matching group's, else the default.
pub(crate) fn rule_for<'a>(
    groups: &'a [RouteGroup],
    default: &'a IpRule,
    path: &str,
) -> &'a IpRule {
    groups
        .iter()
        .filter(|g| under(path, &g.prefix))
        .max_by_key(|g| g.prefix.len())
        .map_or(default, |g| &g.rule)
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
}
