//! [`FirewallLayer`], its service [`Firewall`] and future [`FirewallFuture`].

use super::allowlist::{rule_for, under, IpRule, RouteGroup};
use super::decision::{FirewallDecision, FirewallRefusal};
use super::routes::{RouteCheck, RouteInventory};
use super::sunset::{Clock, Sunset, SunsetHeaders, SystemClock};
use super::transport::{strip_server_headers, ResponseHeads, TransportPolicy};
use super::window::AccessWindow;
use crate::body::FhirBody;
use crate::net::{remote_addr, TrustedProxies};
use http::{Extensions, HeaderValue, Request, Response};
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
    /// The transport's `Referrer-Policy` when it is not the default (worked out once, so a
    /// request clones no header value for the default).
    custom_referrer: Option<HeaderValue>,
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
        let referrer = &self.config.transport.referrer_policy;
        self.config.custom_referrer =
            (referrer != DEFAULT_REFERRER_POLICY).then(|| referrer.clone());
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
                custom_referrer: None,
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
                custom_referrer: None,
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

/// The headers an edge firewall sets on a response, taken from the config when the request
/// is judged: the response future then holds no `Arc` (a reference count every core would
/// otherwise bump twice per request), and cloning the prebuilt values is cheap (the defaults
/// are static).
struct EdgeHeaders {
    /// `None` for the default, `no-referrer`, made from a static in [`apply`](Self::apply).
    referrer_policy: Option<HeaderValue>,
    /// `Some` when TLS is required.
    hsts: Option<HeaderValue>,
    /// Under a deprecated prefix; boxed so the future every request carries stays small
    /// (it is moved a few times on its way to the executor) for the rare deprecated route.
    sunset: Option<Box<SunsetHeaders>>,
}

impl EdgeHeaders {
    /// The security headers, with the modes the tower-http layers had: `Cache-Control:
    /// no-store` on PHI and `Referrer-Policy` only when the service set none,
    /// `X-Content-Type-Options` and HSTS always (replacing the service's).
    fn apply(self, headers: &mut http::HeaderMap) {
        use http::header::{
            CACHE_CONTROL, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS,
        };
        let heads = ResponseHeads::scan(headers);
        if heads.names_server {
            strip_server_headers(headers);
        }
        if let Some(sunset) = self.sunset {
            sunset.apply(headers);
        }
        // Known absent, so appended without looking again.
        if heads.phi && !heads.cache_control {
            headers.append(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        if !heads.referrer_policy {
            let value = self
                .referrer_policy
                .unwrap_or_else(|| HeaderValue::from_static(DEFAULT_REFERRER_POLICY));
            headers.append(REFERRER_POLICY, value);
        }
        let nosniff = HeaderValue::from_static("nosniff");
        if heads.nosniff {
            headers.insert(X_CONTENT_TYPE_OPTIONS, nosniff);
        } else {
            headers.append(X_CONTENT_TYPE_OPTIONS, nosniff);
        }
        if let Some(hsts) = self.hsts {
            headers.insert(STRICT_TRANSPORT_SECURITY, hsts);
        }
    }
}

/// [`TransportPolicy`]'s default `Referrer-Policy`.
const DEFAULT_REFERRER_POLICY: &str = "no-referrer";

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
    fn edge_headers(&self, sunset: Option<usize>) -> Option<EdgeHeaders> {
        if self.stage != Stage::Edge {
            return None;
        }
        let t = &self.transport;
        Some(EdgeHeaders {
            referrer_policy: self.custom_referrer.clone(),
            hsts: t.require_tls.then(|| t.hsts.clone()),
            sunset: sunset
                .and_then(|i| self.sunsets.get(i))
                .map(|s| Box::new(s.headers())),
        })
    }

    /// The client-scoped rules for one subject of the request.
    fn judge_subject(
        &self,
        subject: Subject<'_>,
        client_ip: &mut dyn FnMut() -> Option<IpAddr>,
        now: &mut dyn FnMut() -> std::time::SystemTime,
    ) -> Result<(), FirewallRefusal> {
        for (_, rule) in self.client_networks.iter().filter(|(s, _)| subject.is(s)) {
            match client_ip() {
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
            let now = now();
            if !windows.any(|(_, w)| w.permits(now)) {
                return Err(FirewallRefusal::OutsideAccessWindow);
            }
        }
        Ok(())
    }

    fn judge<B>(&self, request: &Request<B>) -> Result<Option<usize>, FirewallRefusal> {
        let peer = remote_addr(request.extensions()).map(|a| a.ip());
        // Worked out only when a rule needs it (forwarded headers are read for it).
        let mut client: Option<Option<IpAddr>> = None;
        let mut client_ip = || {
            *client
                .get_or_insert_with(|| peer.map(|p| self.proxies.client_ip(p, request.headers())))
        };
        // Read at most once per request, and only when a sunset or a window needs it.
        let mut clock: Option<std::time::SystemTime> = None;
        let mut now = || *clock.get_or_insert_with(|| self.clock.now());
        let path = request.uri().path();
        let mut sunset = None;
        if self.stage == Stage::Edge {
            if self.transport.require_tls
                && !self.transport.is_tls(
                    request.uri(),
                    request.headers(),
                    request.extensions(),
                    peer,
                    &self.proxies,
                )
            {
                return Err(FirewallRefusal::PlainHttp);
            }
            let rule = rule_for(&self.groups, &self.default_rule, path);
            if !rule.is_any() {
                match client_ip() {
                    None => return Err(FirewallRefusal::UnknownAddress),
                    Some(ip) if !rule.permits(ip) => {
                        return Err(FirewallRefusal::AddressNotAllowed)
                    }
                    Some(_) => {}
                }
            }
            if self
                .routes
                .check(request.method(), request.uri(), request.headers())
                == RouteCheck::Undeclared
            {
                return Err(FirewallRefusal::UndeclaredRoute);
            }
            if let Some((i, s)) = self
                .sunsets
                .iter()
                .enumerate()
                .filter(|(_, s)| under(path, &s.prefix))
                .max_by_key(|(_, s)| s.prefix.len())
            {
                if s.is_past(now()) {
                    return Err(FirewallRefusal::Sunset);
                }
                sunset = Some(i);
            }
        }
        if !self.client_networks.is_empty() || !self.windows.is_empty() {
            match &self.subjects {
                None => {
                    for subject in default_subject_refs(request.extensions())
                        .into_iter()
                        .flatten()
                    {
                        self.judge_subject(subject, &mut client_ip, &mut now)?;
                    }
                }
                Some(subjects) => {
                    for name in subjects(request.extensions()).iter() {
                        let subject = Subject { prefix: "", name };
                        self.judge_subject(subject, &mut client_ip, &mut now)?;
                    }
                }
            }
        }
        Ok(sunset)
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
        let state = match self.config.judge(&request) {
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
                        h.hsts = None;
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
