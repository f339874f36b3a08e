//! Budgets per group of clients: [`ClientGroup`]s give their members their own rates, either
//! one budget shared by the whole group or the group's rates to each member.

use super::gcra::Rate;
use super::key::ClientKey;
use std::collections::HashMap;
use std::sync::Arc;

/// How the members of a [`ClientGroup`] spend the group's rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Sharing {
    /// One budget for the whole group, kept under `group:<name>`: what one member spends, the
    /// others can't (default).
    #[default]
    Shared,
    /// Each member keeps its own budget (under its own key) at the group's rates.
    PerMember,
}

/// A named group of clients with its own rates.
///
/// Members are client keys as a [`KeyExtractor`](super::KeyExtractor) makes them
/// (`mtls:<trusted client name>`, `smart:<client_id>`, `ip:<address>`, or a
/// `group:<name>` of [`KeyExtractor::group`](super::KeyExtractor::group)). A rate left unset
/// is the layer's own ([`BudgetLayer::requests`](super::BudgetLayer::requests),
/// [`BudgetLayer::resources`](super::BudgetLayer::resources)); clients in no group get the
/// layer's rates. A client listed in several groups belongs to the last one added.
///
/// ```
/// use fhirwall::limit::{BudgetLayer, ClientGroup, ClientKey, MemoryStore, Rate};
///
/// let partners = ["lab-a", "lab-b"].map(|n| ClientKey::new("mtls", n).unwrap());
/// let apps = [ClientKey::new("smart", "patient-app").unwrap()];
/// let layer = BudgetLayer::new(MemoryStore::default())
///     .requests(Some(Rate::per_minute(60)))
///     // lab-a and lab-b together: 600 cost units a minute.
///     .group(ClientGroup::shared("partners", partners).requests(Some(Rate::per_minute(600))))
///     // each patient app: 5,000 resources an hour, requests at the layer's rate.
///     .group(ClientGroup::per_member("apps", apps).resources(Some(Rate::per_hour(5_000))));
/// # let _ = layer;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientGroup {
    name: String,
    members: Vec<ClientKey>,
    sharing: Sharing,
    requests: Option<Option<Rate>>,
    resources: Option<Option<Rate>>,
}

impl ClientGroup {
    /// A group whose members share one budget, kept under `group:<name>`.
    pub fn shared(name: impl Into<String>, members: impl IntoIterator<Item = ClientKey>) -> Self {
        ClientGroup {
            name: name.into(),
            members: members.into_iter().collect(),
            sharing: Sharing::Shared,
            requests: None,
            resources: None,
        }
    }

    /// A group whose members each get the group's rates.
    pub fn per_member(
        name: impl Into<String>,
        members: impl IntoIterator<Item = ClientKey>,
    ) -> Self {
        ClientGroup {
            sharing: Sharing::PerMember,
            ..ClientGroup::shared(name, members)
        }
    }

    /// The group's request budget (`None`: none); unset, the layer's.
    pub fn requests(mut self, rate: Option<Rate>) -> Self {
        self.requests = Some(rate);
        self
    }

    /// The group's resource budget (`None`: none); unset, the layer's.
    pub fn resources(mut self, rate: Option<Rate>) -> Self {
        self.resources = Some(rate);
        self
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How the members spend the group's rates.
    pub fn sharing(&self) -> Sharing {
        self.sharing
    }

    /// The members.
    pub fn members(&self) -> &[ClientKey] {
        &self.members
    }
}

/// A group as the layer uses it.
#[derive(Clone, Debug)]
pub(crate) struct GroupRates {
    /// The shared budget's key; `None` for a per-member group.
    pub(crate) shared_key: Option<ClientKey>,
    /// A shared group whose name makes no key (empty, or longer than
    /// [`MAX_KEY_LEN`](super::MAX_KEY_LEN)): its members are refused rather than given
    /// budgets of their own.
    pub(crate) broken: bool,
    pub(crate) requests: Option<Option<Rate>>,
    pub(crate) resources: Option<Option<Rate>>,
}

/// Client key to group.
#[derive(Clone, Debug, Default)]
pub(crate) struct Groups(HashMap<ClientKey, Arc<GroupRates>>);

impl Groups {
    /// Adds a group.
    pub(crate) fn add(&mut self, group: ClientGroup) {
        let group_key = ClientKey::new("group", &group.name);
        let shared = group.sharing == Sharing::Shared;
        let rates = Arc::new(GroupRates {
            broken: shared && group_key.is_none(),
            shared_key: group_key.filter(|_| shared),
            requests: group.requests,
            resources: group.resources,
        });
        for member in group.members {
            self.0.insert(member, rates.clone());
        }
    }

    /// The key charged and the rates for a client whose extracted key is `key`; `None` for
    /// a member of a broken group.
    pub(crate) fn resolve(
        &self,
        key: ClientKey,
        requests: Option<Rate>,
        resources: Option<Rate>,
    ) -> Option<(ClientKey, Option<Rate>, Option<Rate>)> {
        let Some(g) = self.0.get(&key) else {
            return Some((key, requests, resources));
        };
        if g.broken {
            return None;
        }
        Some((
            g.shared_key.clone().unwrap_or(key),
            g.requests.unwrap_or(requests),
            g.resources.unwrap_or(resources),
        ))
    }
}
