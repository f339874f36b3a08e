//! [`FirewallLayer`], its service [`Firewall`] and future [`FirewallFuture`].

use super::allowlist::{rule_for, under, IpRule, RouteGroup};
use super::decision::{FirewallDecision, FirewallRefusal};
use super::headers::{CustomValues, EdgeHeaders};
use super::routes::{RouteCheck, RouteInventory};
use super::sunset::{Clock, Sunset, SystemClock};
use super::transport::TransportPolicy;
use super::window::AccessWindow;
use crate::body::FhirBody;
use crate::net::{canonical, remote_addr, TrustedProxies};
use http::{Extensions, HeaderMap, Method, Request, Response, Uri};
use pin_project_lite::pin_project;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// Names the subjects of a request (trusted client, token client, scope group) that
/// client-scoped rules are keyed by.
pub type SubjectsFn = Arc<dyn Fn(&Extensions) -> Vec<String> + Send + Sync>;

/// The service [`FirewallLayer`] makes: the [`Firewall`] itself, which sets the security
/// headers (`Cache-Control: no-store` on PHI and `Referrer-Policy` when absent,
/// `X-Content-Type-Options: nosniff`, HSTS when TLS is required) on every response it passes
/// or refuses.
///
/// The headers used to be set by four nested tower-http `SetResponseHeader` services; setting
/// them in one pass over the response costs a fraction of that. The alias stays so code that
/// names `SecurityHeaders<Firewall<S>>` keeps compiling.
pub type SecurityHeaders<S> = S;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Edge,
    Client,
}

struct Config {
    stage: Stage,
    proxies: TrustedProxies,
    default_rule: IpRule,
    groups: Vec<RouteGroup>,
    routes: RouteInventory,
    sunsets: Vec<Sunset>,
    transport: TransportPolicy,
    /// The header values that differ from the defaults, worked out once by the builder: with
    /// the defaults (`None`) a response future carries no value at all, only a flag.
    custom: Option<Arc<CustomValues>>,
    client_networks: Vec<(String, IpRule)>,
    windows: Vec<(String, AccessWindow)>,
    /// `None`: [`default_subjects`], matched without formatting a string per request.
    subjects: Option<SubjectsFn>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("stage", &self.stage)
            .field("routes", &self.routes.listing().len())
            .field("sunsets", &self.sunsets.len())
            .field("client_networks", &self.client_networks.len())
            .field("windows", &self.windows.len())
            .finish_non_exhaustive()
    }
}

/// Builds a [`FirewallLayer`]; see [`FirewallLayer::builder`].
#[derive(Debug)]
pub struct FirewallBuilder {
    config: Config,
}

impl FirewallBuilder {
    /// Proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed (default none).
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.config.proxies = proxies;
        self
    }

    /// The address rule for paths in no route group (default: every address).
    pub fn allow(mut self, rule: IpRule) -> Self {
        self.config.default_rule = rule;
        self
    }

    /// The address rule for a path prefix (segment boundaries; the longest prefix wins).
    pub fn group(mut self, prefix: &str, rule: IpRule) -> Self {
        self.config.groups.push(RouteGroup {
            prefix: prefix.to_owned(),
            rule,
        });
        self
    }

    /// A deprecated prefix and its sunset.
    pub fn sunset(mut self, sunset: Sunset) -> Self {
        self.config.sunsets.push(sunset);
        self
    }

    /// The transport rules (default: [`TransportPolicy::default`]).
    pub fn transport(mut self, transport: TransportPolicy) -> Self {
        self.config.transport = transport;
        self
    }

    /// A subject (such as `client:lab-ingest`) is accepted only from these networks.
    pub fn client_networks(mut self, subject: &str, rule: IpRule) -> Self {
        self.config.client_networks.push((subject.to_owned(), rule));
        self
    }

    /// A subject may call only inside this window (several windows: inside any of them).
    pub fn window(mut self, subject: &str, window: AccessWindow) -> Self {
        self.config.windows.push((subject.to_owned(), window));
        self
    }

    /// How a request's subjects are named (default [`default_subjects`]).
    pub fn subjects(mut self, subjects: SubjectsFn) -> Self {
        self.config.subjects = Some(subjects);
        self
    }

    /// The clock for sunsets and windows (default the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.config.clock = clock;
        self
    }

    /// The layer.
    pub fn build(mut self) -> FirewallLayer {
        self.config.custom = CustomValues::of(&self.config.transport);
        FirewallLayer {
            config: Arc::new(self.config),
        }
    }
}

/// The subjects fhirwall's own layers name: `client:<name>` for a
/// [`TrustedClient`](crate::identity::TrustedClient) (feature `mtls`) and
/// `client_id:<id>` for a SMART token's client (feature `smart`).
pub fn default_subjects(extensions: &Extensions) -> Vec<String> {
    #[allow(unused_mut)]
    let mut out = Vec::new();
    #[cfg(feature = "mtls")]
    if let Some(c) = extensions.get::<crate::identity::TrustedClient>() {
        out.push(format!("client:{}", c.name()));
    }
    #[cfg(feature = "smart")]
    if let Some(id) = extensions
        .get::<crate::smart::AccessContext>()
        .and_then(|c| c.client_id())
    {
        out.push(format!("client_id:{id}"));
    }
    let _ = extensions;
    out
}

/// The firewall: transport rules, address allowlists, declared routes, sunsets, and
/// client-scoped address rules and access windows.
///
/// The layer goes just inside the audit layer. Client-scoped rules need to know the client,
/// which the identity and smart layers establish further in; put
/// [`client_rules`](Self::client_rules) behind them too.
#[derive(Clone, Debug)]
pub struct FirewallLayer {
    config: Arc<Config>,
}

impl FirewallLayer {
    /// A builder for a firewall exposing exactly `routes`.
    pub fn builder(routes: RouteInventory) -> FirewallBuilder {
        FirewallBuilder {
            config: Config {
                stage: Stage::Edge,
                proxies: TrustedProxies::none(),
                default_rule: IpRule::any(),
                groups: Vec::new(),
                routes,
                sunsets: Vec::new(),
                transport: TransportPolicy::default(),
                custom: None,
                client_networks: Vec::new(),
                windows: Vec::new(),
                subjects: None,
                clock: Arc::new(SystemClock),
            },
        }
    }

    /// The same firewall's client-scoped rules alone (client networks and access windows),
    /// for a place in the stack where the client is known; it sets no headers.
    pub fn client_rules(&self) -> FirewallLayer {
        let c = &self.config;
        FirewallLayer {
            config: Arc::new(Config {
                stage: Stage::Client,
                proxies: c.proxies.clone(),
                default_rule: IpRule::any(),
                groups: Vec::new(),
                routes: c.routes.clone(),
                sunsets: Vec::new(),
                transport: TransportPolicy::default(),
                custom: None,
                client_networks: c.client_networks.clone(),
                windows: c.windows.clone(),
                subjects: c.subjects.clone(),
                clock: c.clock.clone(),
            }),
        }
    }
}

impl<S> Layer<S> for FirewallLayer {
    type Service = SecurityHeaders<Firewall<S>>;

    fn layer(&self, inner: S) -> Self::Service {
        Firewall {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service of [`FirewallLayer`] (see [`SecurityHeaders`]).
#[derive(Clone, Debug)]
pub struct Firewall<S> {
    inner: S,
    config: Arc<Config>,
}

/// A request's subject as `prefix` + `name`, compared with the configured subjects without
/// being formatted into a string of its own.
#[derive(Clone, Copy)]
struct Subject<'a> {
    prefix: &'static str,
    name: &'a str,
}

impl Subject<'_> {
    fn is(self, configured: &str) -> bool {
        configured.strip_prefix(self.prefix) == Some(self.name)
    }
}

/// [`default_subjects`] as [`Subject`]s.
fn default_subject_refs(extensions: &Extensions) -> [Option<Subject<'_>>; 2] {
    #[allow(unused_mut)]
    let mut out = [None, None];
    #[cfg(feature = "mtls")]
    if let Some(c) = extensions.get::<crate::identity::TrustedClient>() {
        out[0] = Some(Subject {
            prefix: "client:",
            name: c.name(),
        });
    }
    #[cfg(feature = "smart")]
    if let Some(id) = extensions
        .get::<crate::smart::AccessContext>()
        .and_then(|c| c.client_id())
    {
        out[1] = Some(Subject {
            prefix: "client_id:",
            name: id,
        });
    }
    let _ = extensions;
    out
}

impl Config {
    /// The headers for a response, `None` at the client stage (which sets none).
    #[inline]
    fn edge_headers(&self, sunset: Option<usize>) -> Option<EdgeHeaders> {
        if self.stage != Stage::Edge {
            return None;
        }
        Some(EdgeHeaders {
            custom: self.custom.clone(),
            hsts: self.transport.require_tls,
            sunset: match sunset {
                None => None,
                Some(i) => self.sunsets.get(i).map(|s| Box::new(s.headers())),
            },
        })
    }

    /// The client-scoped rules for one subject of the request.
    fn judge_subject(
        &self,
        subject: Subject<'_>,
        lazy: &mut Lazy<'_>,
    ) -> Result<(), FirewallRefusal> {
        for (_, rule) in self.client_networks.iter().filter(|(s, _)| subject.is(s)) {
            match lazy.client_ip() {
                Some(ip) if rule.permits(ip) => {}
                Some(_) => return Err(FirewallRefusal::ClientAddressNotAllowed),
                None => return Err(FirewallRefusal::UnknownAddress),
            }
        }
        let mut windows = self
            .windows
            .iter()
            .filter(|(s, _)| subject.is(s))
            .peekable();
        if windows.peek().is_some() {
            let now = lazy.now();
            if !windows.any(|(_, w)| w.permits(now)) {
                return Err(FirewallRefusal::OutsideAccessWindow);
            }
        }
        Ok(())
    }

    /// The request's fate: a refusal, or a pass with the index of the sunset it is under.
    ///
    /// Not generic over the body, so it is compiled (and its helpers inlined) once, here.
    fn judge(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Result<Option<usize>, FirewallRefusal> {
        let mut lazy = Lazy {
            config: self,
            headers,
            extensions,
            peer: None,
            client: None,
            now: None,
        };
        let path = uri.path();
        let mut sunset = None;
        if self.stage == Stage::Edge {
            if self.transport.require_tls
                && !self
                    .transport
                    .is_tls(uri, headers, extensions, lazy.peer(), &self.proxies)
            {
                return Err(FirewallRefusal::PlainHttp);
            }
            let rule = rule_for(&self.groups, &self.default_rule, path);
            if !rule.is_any() {
                match lazy.client_ip() {
                    None => return Err(FirewallRefusal::UnknownAddress),
                    Some(ip) if !rule.permits(ip) => {
                        return Err(FirewallRefusal::AddressNotAllowed)
                    }
                    Some(_) => {}
                }
            }
            if self.routes.check_at(method, uri, path, headers) == RouteCheck::Undeclared {
                return Err(FirewallRefusal::UndeclaredRoute);
            }
            // The longest prefix wins; of equal ones the last (as `max_by_key` chose).
            let mut longest: Option<(usize, &Sunset)> = None;
            for (i, s) in self.sunsets.iter().enumerate() {
                if under(path, &s.prefix)
                    && longest.is_none_or(|(_, l)| s.prefix.len() >= l.prefix.len())
                {
                    longest = Some((i, s));
                }
            }
            if let Some((i, s)) = longest {
                if s.is_past(lazy.now()) {
                    return Err(FirewallRefusal::Sunset);
                }
                sunset = Some(i);
            }
        }
        if !self.client_networks.is_empty() || !self.windows.is_empty() {
            self.judge_client(&mut lazy)?;
        }
        Ok(sunset)
    }

    /// The client-scoped rules, for each subject of the request: out of line, so a firewall
    /// without them keeps a small frame.
    #[inline(never)]
    fn judge_client(&self, lazy: &mut Lazy<'_>) -> Result<(), FirewallRefusal> {
        let extensions = lazy.extensions;
        match &self.subjects {
            None => {
                for subject in default_subject_refs(extensions).into_iter().flatten() {
                    self.judge_subject(subject, lazy)?;
                }
            }
            Some(subjects) => {
                for name in subjects(extensions).iter() {
                    let subject = Subject { prefix: "", name };
                    self.judge_subject(subject, lazy)?;
                }
            }
        }
        Ok(())
    }
}

/// What a request's rules may need, each worked out at most once and only when a rule asks:
/// the peer (an extension lookup), the client address (forwarded headers are read for it)
/// and the time.
struct Lazy<'a> {
    config: &'a Config,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
    peer: Option<Option<IpAddr>>,
    client: Option<Option<IpAddr>>,
    now: Option<std::time::SystemTime>,
}

impl Lazy<'_> {
    #[inline]
    fn peer(&mut self) -> Option<IpAddr> {
        let extensions = self.extensions;
        *self
            .peer
            .get_or_insert_with(|| remote_addr(extensions).map(|a| a.ip()))
    }

    #[inline]
    fn client_ip(&mut self) -> Option<IpAddr> {
        if let Some(client) = self.client {
            return client;
        }
        let (proxies, headers) = (&self.config.proxies, self.headers);
        // Without trusted proxies (most deployments) no header is read: the client is the
        // peer, and the forwarded-header code stays out of the way.
        let client = self.peer().map(|p| match proxies.is_none() {
            true => canonical(p),
            false => proxies.client_ip(p, headers),
        });
        self.client = Some(client);
        client
    }

    fn now(&mut self) -> std::time::SystemTime {
        let clock = &self.config.clock;
        *self.now.get_or_insert_with(|| clock.now())
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Firewall<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<FhirBody<ResB>>;
    type Error = S::Error;
    type Future = FirewallFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let judged = self.config.judge(
            request.method(),
            request.uri(),
            request.headers(),
            request.extensions(),
        );
        let state = match judged {
            Err(refusal) => State::Refused {
                refusal,
                headers: self.config.edge_headers(None),
            },
            Ok(sunset) => State::Inner {
                headers: self.config.edge_headers(sunset),
                future: self.inner.call(request),
            },
        };
        FirewallFuture { state }
    }
}

pin_project! {
    /// Response future of [`Firewall`].
    pub struct FirewallFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Refused { refusal: FirewallRefusal, headers: Option<EdgeHeaders> },
        Inner {
            #[pin]
            future: F,
            headers: Option<EdgeHeaders>,
        },
    }
}

impl<F, ResB, E> Future for FirewallFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
{
    type Output = Result<Response<FhirBody<ResB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Refused { refusal, headers } => {
                let mut response = refusal.to_response();
                if let Some(mut h) = headers.take() {
                    if matches!(refusal, FirewallRefusal::PlainHttp) {
                        // RFC 6797 §7.2: never sent over a non-secure transport.
                        h.hsts = false;
                    }
                    h.apply(response.headers_mut());
                }
                Poll::Ready(Ok(response))
            }
            StateProj::Inner { future, headers } => {
                let mut response = ready!(future.poll(cx))?;
                if let Some(h) = headers.take() {
                    let deprecated = h.sunset.is_some();
                    h.apply(response.headers_mut());
                    // Only a deprecated pass is worth a decision (the audit layer reads
                    // refusals alone), and the first extension would allocate the response's
                    // extension map on every allowed request.
                    if deprecated {
                        response
                            .extensions_mut()
                            .insert(FirewallDecision::Allowed { deprecated });
                    }
                }
                Poll::Ready(Ok(response.map(FhirBody::inner)))
            }
        }
    }
}
