//! [`AuditLayer`] (outermost: one record per request) and [`AuditCaptureLayer`] (innermost:
//! copies who the client is from the request onto the response for the record).

use super::decision::{is_probe, refusal_of, LayerDecision, Redactions, ResourcesReturned};
use super::record::{AuditAgent, AuditRecord, ParamPolicy, RecordedDecision};
use super::sink::AuditSink;
use crate::fhir::{Classification, Classifier};
use crate::net::{remote_addr, TrustedProxies};
use http::{Extensions, Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Instant, SystemTime};
use tower_layer::Layer;
use tower_service::Service;

struct Config {
    sink: Arc<dyn AuditSink>,
    classifier: Classifier,
    policy: ParamPolicy,
    proxies: TrustedProxies,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("base_path", &self.classifier.base_path())
            .finish_non_exhaustive()
    }
}

/// Writes one [`AuditRecord`] per request, refused ones included, once the response head is
/// known. Put it outermost.
///
/// The request is described from its own head (method, path, interaction, resource type, id,
/// search parameters: the body is never read); who the client was and which layer decided
/// come from the response extensions. Defaults: FHIR base `/fhir`, [`ParamPolicy::default`],
/// no trusted proxies.
#[derive(Clone, Debug)]
pub struct AuditLayer {
    config: Arc<Config>,
}

impl AuditLayer {
    /// Records to `sink`.
    pub fn new(sink: impl AuditSink) -> Self {
        AuditLayer {
            config: Arc::new(Config {
                sink: Arc::new(sink),
                classifier: Classifier::new("/fhir"),
                policy: ParamPolicy::default(),
                proxies: TrustedProxies::none(),
            }),
        }
    }

    fn with(mut self, f: impl FnOnce(&mut Config)) -> Self {
        if let Some(c) = Arc::get_mut(&mut self.config) {
            f(c);
        }
        self
    }

    /// Describes requests with this classifier (its base path should match the service's).
    pub fn classifier(self, classifier: Classifier) -> Self {
        self.with(|c| c.classifier = classifier)
    }

    /// What to do with search parameter values.
    pub fn params(self, policy: ParamPolicy) -> Self {
        self.with(|c| c.policy = policy)
    }

    /// Proxies whose `X-Forwarded-For` names the client address.
    pub fn trusted_proxies(self, proxies: TrustedProxies) -> Self {
        self.with(|c| c.proxies = proxies)
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = Audit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Audit {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service of [`AuditLayer`].
#[derive(Clone, Debug)]
pub struct Audit<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Audit<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = AuditFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let start = Instant::now();
        let config = &self.config;
        let mut record = AuditRecord::new(SystemTime::now(), request.method());
        match config
            .classifier
            .classify_head(request.method(), request.uri(), request.headers())
        {
            Ok(Classification::Done(fhir)) => record.describe(&fhir, &config.policy),
            Ok(Classification::NeedsBody(pending)) => {
                record.describe(pending.request(), &config.policy)
            }
            Err(_) => record.set_path(request.uri().path()),
        }
        // A request through an alias base (such as a deprecated `/fhir-v0`) keeps its path,
        // so which base was used stays on record.
        if record.path.is_none() && !under_base(request.uri().path(), config.classifier.base_path())
        {
            record.set_path(request.uri().path());
        }
        record.address = remote_addr(request.extensions())
            .map(|a| config.proxies.client_ip(a.ip(), request.headers()));
        AuditFuture {
            future: self.inner.call(request),
            pending: Some((record, start)),
            config: self.config.clone(),
        }
    }
}

pin_project! {
    /// Response future of [`Audit`].
    pub struct AuditFuture<F> {
        #[pin]
        future: F,
        pending: Option<(AuditRecord, Instant)>,
        config: Arc<Config>,
    }
}

impl<F, ResB, E> Future for AuditFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
{
    type Output = Result<Response<ResB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = ready!(this.future.poll(cx));
        if let Some((mut record, start)) = this.pending.take() {
            record.latency_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
            match &mut result {
                Ok(response) => {
                    let status = response.status();
                    finish(&mut record, status, response.extensions_mut());
                }
                Err(_) => {
                    record.status = 500;
                    record.outcome = "8";
                    record.decision = LayerDecision::refused("service", "error").into();
                }
            }
            emit(&record);
            this.config.sink.record(record);
        }
        Poll::Ready(result)
    }
}

/// Whether `path` is `base` or below it, on a segment boundary.
fn under_base(path: &str, base: &str) -> bool {
    let base = base.trim_end_matches('/');
    match path.strip_prefix(base) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

fn finish(record: &mut AuditRecord, status: http::StatusCode, ext: &mut Extensions) {
    record.status = status.as_u16();
    record.outcome = if status.is_server_error() {
        "8"
    } else if status.is_client_error() {
        "4"
    } else {
        "0"
    };
    record.probe = is_probe(ext);
    record.decision = match refusal_of(ext) {
        Some(d) => d.into(),
        None => match ext.get::<LayerDecision>() {
            Some(d) => d.clone().into(),
            None if status.is_client_error() || status.is_server_error() => RecordedDecision {
                layer: String::from("handler"),
                outcome: "refused",
                reason: format!("status-{}", status.as_u16()),
            },
            None => RecordedDecision {
                layer: String::from("handler"),
                outcome: "allowed",
                reason: String::new(),
            },
        },
    };
    // Taken, not copied: the capture put it there for this layer only.
    record.agent = ext.remove::<AuditAgent>().unwrap_or_default();
    #[cfg(feature = "mtls")]
    if record.agent.client.is_none() {
        record.agent.client = ext
            .get::<crate::identity::IdentityDecision>()
            .and_then(|d| d.client())
            .map(|c| c.name().to_owned());
    }
    #[cfg(feature = "smart")]
    if let Some(d) = ext.get::<crate::smart::SmartDecision>() {
        if record.agent.client_id.is_none() {
            record.agent.client_id = d.client_id.clone();
        }
        if d.withheld > 0 {
            record.redactions = Some(d.withheld);
        }
    }
    if let Some(ResourcesReturned(n)) = ext.get::<ResourcesReturned>() {
        record.resources_returned = Some(*n);
    }
    if let Some(Redactions(n)) = ext.get::<Redactions>() {
        record.redactions = Some(record.redactions.unwrap_or(0) + n);
    }
}

fn emit(record: &AuditRecord) {
    // Fields are evaluated only when a subscriber listens at this level.
    tracing::debug!(
        target: "fhirwall::audit",
        subtype = %record.subtype,
        status = record.status,
        layer = %record.decision.layer,
        decision = record.decision.outcome,
        reason = %record.decision.reason,
        probe = record.probe,
        latency_us = record.latency_us,
        "request"
    );
}

/// Reads who the client is from the request extensions the inner layers filled.
pub type AgentFn = Arc<dyn Fn(&Extensions) -> AuditAgent + Send + Sync>;

/// The agent fhirwall's own layers establish: the [`TrustedClient`](crate::identity::TrustedClient)
/// (feature `mtls`) and the [`AccessContext`](crate::smart::AccessContext) (feature `smart`).
pub fn default_agent(extensions: &Extensions) -> AuditAgent {
    #[allow(unused_mut)]
    let mut agent = AuditAgent::default();
    #[cfg(feature = "mtls")]
    if let Some(c) = extensions.get::<crate::identity::TrustedClient>() {
        agent.client = Some(c.name().to_owned());
    }
    #[cfg(feature = "smart")]
    if let Some(c) = extensions.get::<crate::smart::AccessContext>() {
        agent.client_id = c.client_id().map(str::to_owned);
        agent.subject = c.subject().map(str::to_owned);
        agent.fhir_user = c.fhir_user().map(str::to_owned);
        agent.patients = c.patients().to_vec();
    }
    let _ = extensions;
    agent
}

/// Innermost layer (just before the handlers): copies who the client is (an [`AuditAgent`]
/// read by an [`AgentFn`], default [`default_agent`]) from the request onto the response for
/// the [`AuditLayer`].
#[derive(Clone)]
pub struct AuditCaptureLayer {
    agent: AgentFn,
}

impl std::fmt::Debug for AuditCaptureLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditCaptureLayer").finish_non_exhaustive()
    }
}

impl Default for AuditCaptureLayer {
    fn default() -> Self {
        AuditCaptureLayer {
            agent: Arc::new(default_agent),
        }
    }
}

impl AuditCaptureLayer {
    /// Captures with [`default_agent`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Captures with your own extractor.
    pub fn with_agent(agent: AgentFn) -> Self {
        AuditCaptureLayer { agent }
    }
}

impl<S> Layer<S> for AuditCaptureLayer {
    type Service = AuditCapture<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuditCapture {
            inner,
            agent: self.agent.clone(),
        }
    }
}

/// The service of [`AuditCaptureLayer`].
#[derive(Clone)]
pub struct AuditCapture<S> {
    inner: S,
    agent: AgentFn,
}

impl<S: std::fmt::Debug> std::fmt::Debug for AuditCapture<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditCapture")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for AuditCapture<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = CaptureFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let agent = (self.agent)(request.extensions());
        CaptureFuture {
            future: self.inner.call(request),
            agent: Some(agent),
        }
    }
}

pin_project! {
    /// Response future of [`AuditCapture`].
    pub struct CaptureFuture<F> {
        #[pin]
        future: F,
        agent: Option<AuditAgent>,
    }
}

impl<F, ResB, E> Future for CaptureFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
{
    type Output = Result<Response<ResB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = ready!(this.future.poll(cx));
        if let (Ok(response), Some(agent)) = (&mut result, this.agent.take()) {
            response.extensions_mut().insert(agent);
        }
        Poll::Ready(result)
    }
}
