//! `[network]`, `[transport]`, `[routes]`, `[[clients]]` networks and windows → the firewall.

use super::values::Cidr;
use super::{Ctx, Policy, PolicyError};
use super::{TokenClientSpec, TrustedClientSpec, WindowSpec};
use crate::firewall::{
    AccessWindow, FirewallBuilder, FirewallLayer, IpRule, RouteInventory, Sunset, TransportPolicy,
};
use crate::net::TrustedProxies;
use http::{HeaderValue, Method};

/// Every firewall setting of a policy except the route inventory, ready to apply to a
/// [`FirewallBuilder`] (as [`FhirwallBuilder::firewall`](crate::stack::FhirwallBuilder::firewall)
/// asks).
#[derive(Clone, Debug)]
pub struct FirewallSettings {
    proxies: TrustedProxies,
    default_rule: IpRule,
    groups: Vec<(String, IpRule)>,
    sunsets: Vec<Sunset>,
    transport: TransportPolicy,
    client_networks: Vec<(String, IpRule)>,
    windows: Vec<(String, AccessWindow)>,
}

impl FirewallSettings {
    /// Applies the settings.
    pub fn apply(self, mut b: FirewallBuilder) -> FirewallBuilder {
        b = b
            .trusted_proxies(self.proxies)
            .allow(self.default_rule)
            .transport(self.transport);
        for (prefix, rule) in self.groups {
            b = b.group(&prefix, rule);
        }
        for sunset in self.sunsets {
            b = b.sunset(sunset);
        }
        for (subject, rule) in self.client_networks {
            b = b.client_networks(&subject, rule);
        }
        for (subject, window) in self.windows {
            b = b.window(&subject, window);
        }
        b
    }
}

fn strs(list: &[Cidr]) -> impl Iterator<Item = &str> {
    list.iter().map(|c| c.0.as_str())
}

fn ip_rule(ctx: &Ctx<'_>, key: &str, allow: &[Cidr], deny: &[Cidr]) -> Result<IpRule, PolicyError> {
    let rule = if allow.is_empty() {
        IpRule::any()
    } else {
        IpRule::allow(strs(allow))
            .map_err(|e| ctx.invalid(&format!("{key}.allow"), e.to_string()))?
    };
    if deny.is_empty() {
        Ok(rule)
    } else {
        rule.deny(strs(deny))
            .map_err(|e| ctx.invalid(&format!("{key}.deny"), e.to_string()))
    }
}

fn window(ctx: &Ctx<'_>, key: &str, w: &WindowSpec) -> Result<AccessWindow, PolicyError> {
    let mut window =
        AccessWindow::new(&w.tz, &w.days, &w.hours).map_err(|e| ctx.invalid(key, e.to_string()))?;
    if let (Some(from), Some(until)) = (&w.valid_from, &w.valid_until) {
        if from.0 >= until.0 {
            return Err(ctx.contradiction(
                &format!("{key}.valid_until"),
                "valid_until is not after valid_from: the window would never open",
            ));
        }
    }
    if let Some(from) = &w.valid_from {
        window = window.valid_from(from.0);
    }
    if let Some(until) = &w.valid_until {
        window = window.valid_until(until.0);
    }
    Ok(window)
}

impl Policy {
    /// The declared routes of `[routes]`: the CapabilityStatement's, plus the listed ones, plus
    /// `.well-known/smart-configuration` when `[smart_configuration]` publishes it.
    pub fn route_inventory(&self) -> Result<RouteInventory, PolicyError> {
        let ctx = self.ctx();
        let r = &self.document.routes;
        let base = self.base_path();
        let mut inv = match &r.capability_statement {
            Some(path) => {
                let key = "routes.capability_statement";
                let json = ctx.read(key, path)?;
                RouteInventory::from_capability_statement(base, &json)
                    .map_err(|e| ctx.invalid(key, e.to_string()))?
            }
            None => RouteInventory::new(base),
        };
        for alias in &r.aliases {
            inv = inv.alias_base(alias);
        }
        for res in &r.resources {
            inv = inv.declare(res.resource_type.0, res.interactions.iter().map(|i| i.0));
            for op in &res.operations {
                inv = inv.operation(op, Some(res.resource_type.0));
            }
        }
        inv = inv.declare_system(r.system_interactions.iter().map(|i| i.0));
        // The published SMART configuration must be reachable through the firewall.
        if self.document.smart_configuration.is_some() {
            inv = inv.declare_system([crate::fhir::Interaction::SmartConfiguration]);
        }
        for op in &r.system_operations {
            inv = inv.operation(op, None);
        }
        for c in &r.compartments {
            inv = inv.compartment(c.0);
        }
        for (i, extra) in r.extra.iter().enumerate() {
            let key = format!("routes.extra[{i}]");
            let (method, path) = extra
                .split_once(' ')
                .ok_or_else(|| ctx.invalid(&key, format!("{extra:?} is not \"METHOD /path\"")))?;
            let method = Method::from_bytes(method.as_bytes())
                .map_err(|_| ctx.invalid(&key, format!("{method:?} is not an HTTP method")))?;
            let path = path.trim();
            if !path.starts_with('/') {
                return Err(ctx.invalid(&key, format!("{path:?} is not an absolute path")));
            }
            inv = inv.extra(method, path);
        }
        Ok(inv)
    }

    /// The transport rules of `[transport]` (TLS required unless `require_tls = false`).
    pub fn transport_policy(&self) -> Result<TransportPolicy, PolicyError> {
        let ctx = self.ctx();
        let t = &self.document.transport;
        let mut transport = TransportPolicy::default();
        if t.require_tls.unwrap_or(true) {
            transport = transport.require_tls();
        } else if t.hsts.is_some() {
            return Err(ctx.contradiction(
                "transport.hsts",
                "hsts is sent only when TLS is required, and require_tls = false",
            ));
        }
        if t.danger_trust_uri_scheme {
            transport = transport.danger_trust_uri_scheme();
        }
        if let Some(v) = &t.hsts {
            let value = HeaderValue::from_str(v)
                .map_err(|_| ctx.invalid("transport.hsts", "not a valid header value"))?;
            transport = transport.hsts(value);
        }
        if let Some(v) = &t.referrer_policy {
            let value = HeaderValue::from_str(v).map_err(|_| {
                ctx.invalid("transport.referrer_policy", "not a valid header value")
            })?;
            transport = transport.referrer_policy(value);
        }
        Ok(transport)
    }

    /// Every firewall setting but the routes.
    pub fn firewall_settings(&self) -> Result<FirewallSettings, PolicyError> {
        let ctx = self.ctx();
        let doc = &self.document;
        let n = &doc.network;
        let proxies = self.trusted_proxies()?;
        let default_rule = ip_rule(&ctx, "network", &n.allow, &n.deny)?;
        let mut groups = Vec::new();
        for (i, g) in n.groups.iter().enumerate() {
            let key = format!("network.groups[{i}]");
            if !g.prefix.starts_with('/') {
                return Err(ctx.invalid(&format!("{key}.prefix"), "a prefix is an absolute path"));
            }
            groups.push((g.prefix.clone(), ip_rule(&ctx, &key, &g.allow, &g.deny)?));
        }
        let mut sunsets = Vec::new();
        for (i, s) in doc.routes.sunsets.iter().enumerate() {
            let key = format!("routes.sunsets[{i}]");
            if s.deprecated_at.0 > s.sunset_at.0 {
                return Err(ctx.contradiction(
                    &format!("{key}.sunset_at"),
                    "sunset_at is before deprecated_at",
                ));
            }
            let mut sunset = Sunset::new(&s.prefix, s.deprecated_at.0, s.sunset_at.0);
            if let Some(successor) = &s.successor {
                sunset = sunset.successor(successor);
            }
            sunsets.push(sunset);
        }
        let mut client_networks = Vec::new();
        let mut windows = Vec::new();
        let clients = doc
            .clients
            .iter()
            .enumerate()
            .map(|(i, c): (usize, &TrustedClientSpec)| {
                (
                    format!("clients[{i}]"),
                    format!("client:{}", c.name),
                    &c.networks,
                    &c.windows,
                )
            });
        let token_clients =
            doc.token_clients
                .iter()
                .enumerate()
                .map(|(i, c): (usize, &TokenClientSpec)| {
                    (
                        format!("token_clients[{i}]"),
                        format!("client_id:{}", c.client_id),
                        &c.networks,
                        &c.windows,
                    )
                });
        for (key, subject, networks, client_windows) in clients.chain(token_clients) {
            if !networks.is_empty() {
                let rule = IpRule::allow(strs(networks))
                    .map_err(|e| ctx.invalid(&format!("{key}.networks"), e.to_string()))?;
                client_networks.push((subject.clone(), rule));
            }
            for (j, w) in client_windows.iter().enumerate() {
                windows.push((
                    subject.clone(),
                    window(&ctx, &format!("{key}.windows[{j}]"), w)?,
                ));
            }
        }
        if !doc.token_clients.is_empty() && doc.tokens.is_none() {
            return Err(ctx.contradiction(
                "token_clients",
                "token_clients name SMART clients, but there is no [tokens] section to verify their tokens",
            ));
        }
        Ok(FirewallSettings {
            proxies,
            default_rule,
            groups,
            sunsets,
            transport: self.transport_policy()?,
            client_networks,
            windows,
        })
    }

    /// `network.trusted_proxies`.
    pub fn trusted_proxies(&self) -> Result<TrustedProxies, PolicyError> {
        TrustedProxies::new(strs(&self.document.network.trusted_proxies))
            .map_err(|e| self.ctx().invalid("network.trusted_proxies", e.to_string()))
    }

    /// The firewall layer alone (for stacking by hand).
    pub fn firewall_layer(&self) -> Result<FirewallLayer, PolicyError> {
        let settings = self.firewall_settings()?;
        Ok(settings
            .apply(FirewallLayer::builder(self.route_inventory()?))
            .build())
    }
}
