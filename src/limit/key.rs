//! Who is counted: a [`ClientKey`] from the first [`KeySource`] that knows the client.

use crate::net::{remote_addr, TrustedProxies};
use http::request::Parts;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// The longest client key, in bytes. Longer keys are refused rather than cut, so two clients
/// can never be merged into one budget by truncation.
pub const MAX_KEY_LEN: usize = 256;

/// The identity a budget is kept for, such as `mtls:lab-ingest`, `smart:my-app`,
/// `ip:203.0.113.7` or `group:partners`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientKey(Arc<str>);

impl ClientKey {
    /// A key of this kind (a short prefix such as `ip`) and value; `None` when empty or longer
    /// than [`MAX_KEY_LEN`].
    pub fn new(kind: &str, value: &str) -> Option<Self> {
        if value.is_empty() || kind.len() + 1 + value.len() > MAX_KEY_LEN {
            return None;
        }
        // Built on the stack so the key costs one allocation (the `Arc`), not two.
        let mut buf = KeyBuf::default();
        buf.push(kind)?;
        buf.push(":")?;
        buf.push(value)?;
        Some(ClientKey(Arc::from(buf.as_str()?)))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key being written, on the stack.
struct KeyBuf {
    bytes: [u8; MAX_KEY_LEN],
    len: usize,
}

impl Default for KeyBuf {
    fn default() -> Self {
        KeyBuf {
            bytes: [0; MAX_KEY_LEN],
            len: 0,
        }
    }
}

impl KeyBuf {
    fn push(&mut self, text: &str) -> Option<()> {
        let end = self.len.checked_add(text.len())?;
        self.bytes
            .get_mut(self.len..end)?
            .copy_from_slice(text.as_bytes());
        self.len = end;
        Some(())
    }

    fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.bytes.get(..self.len)?).ok()
    }
}

impl fmt::Write for KeyBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s).ok_or(fmt::Error)
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientKey({})", self.0)
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

type CustomFn = dyn Fn(&Parts) -> Option<ClientKey> + Send + Sync;

/// One place a client key may come from; a [`KeyExtractor`] tries them in order.
#[derive(Clone)]
pub enum KeySource {
    /// The trusted client's name from the mTLS layer (`mtls:<name>`; feature `mtls`).
    #[cfg(feature = "mtls")]
    TrustedClient,
    /// The token's `client_id` from the SMART layer (`smart:<client_id>`; feature `smart`).
    #[cfg(feature = "smart")]
    SmartClient,
    /// The peer IP (`ip:<addr>`), believing `X-Forwarded-For` only from these proxies.
    PeerIp(TrustedProxies),
    /// Your own function of the request head.
    Custom(Arc<CustomFn>),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "mtls")]
            KeySource::TrustedClient => f.write_str("TrustedClient"),
            #[cfg(feature = "smart")]
            KeySource::SmartClient => f.write_str("SmartClient"),
            KeySource::PeerIp(p) => f.debug_tuple("PeerIp").field(p).finish(),
            KeySource::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl KeySource {
    /// A custom source.
    pub fn custom<F>(f: F) -> Self
    where
        F: Fn(&Parts) -> Option<ClientKey> + Send + Sync + 'static,
    {
        KeySource::Custom(Arc::new(f))
    }

    fn key(&self, parts: &Parts) -> Option<ClientKey> {
        match self {
            #[cfg(feature = "mtls")]
            KeySource::TrustedClient => parts
                .extensions
                .get::<crate::identity::TrustedClient>()
                .and_then(|c| ClientKey::new("mtls", c.name())),
            #[cfg(feature = "smart")]
            KeySource::SmartClient => parts
                .extensions
                .get::<crate::smart::AccessContext>()
                .and_then(|c| c.client_id())
                .and_then(|id| ClientKey::new("smart", id)),
            KeySource::PeerIp(proxies) => {
                let peer = remote_addr(&parts.extensions)?;
                let ip = proxies.client_ip(peer.ip(), &parts.headers);
                let mut buf = KeyBuf::default();
                buf.push("ip:")?;
                fmt::Write::write_fmt(&mut buf, format_args!("{ip}")).ok()?;
                Some(ClientKey(Arc::from(buf.as_str()?)))
            }
            KeySource::Custom(f) => f(parts),
        }
    }
}

/// An ordered list of [`KeySource`]s and the client groups that share one budget.
///
/// The default tries the trusted client (feature `mtls`), then the token's `client_id`
/// (feature `smart`), then the peer IP with no trusted proxies.
#[derive(Clone, Debug)]
pub struct KeyExtractor {
    sources: Vec<KeySource>,
    groups: HashMap<ClientKey, ClientKey>,
}

impl Default for KeyExtractor {
    // The sources present depend on features, so `vec![]` can't list them.
    #[allow(clippy::vec_init_then_push)]
    fn default() -> Self {
        let mut sources = Vec::new();
        #[cfg(feature = "mtls")]
        sources.push(KeySource::TrustedClient);
        #[cfg(feature = "smart")]
        sources.push(KeySource::SmartClient);
        sources.push(KeySource::PeerIp(TrustedProxies::none()));
        KeyExtractor {
            sources,
            groups: HashMap::new(),
        }
    }
}

impl KeyExtractor {
    /// An extractor with these sources, tried in order.
    pub fn new(sources: impl IntoIterator<Item = KeySource>) -> Self {
        KeyExtractor {
            sources: sources.into_iter().collect(),
            groups: HashMap::new(),
        }
    }

    /// Makes these clients share one budget, kept under `group:<name>`.
    pub fn group<I>(mut self, name: &str, members: I) -> Self
    where
        I: IntoIterator<Item = ClientKey>,
    {
        if let Some(group) = ClientKey::new("group", name) {
            for member in members {
                self.groups.insert(member, group.clone());
            }
        }
        self
    }

    /// The budget key for this request: the first source that knows the client, mapped to its
    /// group if it has one; `None` when no source does.
    pub fn extract(&self, parts: &Parts) -> Option<ClientKey> {
        let key = self.sources.iter().find_map(|s| s.key(parts))?;
        Some(self.groups.get(&key).cloned().unwrap_or(key))
    }
}
