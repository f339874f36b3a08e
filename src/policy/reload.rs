//! [`PolicyHandle`]: the policy in force, replaced atomically; [`Reloadable`]: its service.

use super::{Policy, PolicyError, PolicyErrorKind};
use crate::limit::MemoryStore;
use crate::stack::{Fhirwall, StackStore};
use arc_swap::ArcSwap;
use http::{Request, Response};
use pin_project_lite::pin_project;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// The version of the policy a request was served under (1 for the first, one more for each
/// successful reload); put in the request and response extensions by [`Reloadable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyVersion(pub u64);

/// One policy and the stack built from it.
#[derive(Debug)]
pub struct Snapshot<St = MemoryStore> {
    policy: Policy,
    stack: Fhirwall<St>,
    version: u64,
}

impl<St> Snapshot<St> {
    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The stack built from it.
    pub fn stack(&self) -> &Fhirwall<St> {
        &self.stack
    }

    /// Its version.
    pub fn version(&self) -> u64 {
        self.version
    }
}

type BuildFn<St> = dyn Fn(&Policy) -> Result<Fhirwall<St>, PolicyError> + Send + Sync;

/// The policy in force, and the way to replace it while requests are served.
///
/// Use the handle as a tower [`Layer`]: its service ([`Reloadable`]) takes the stack in force
/// once per request, so every request runs under exactly one policy, whole; a reload never
/// shows a request half of the old policy and half of the new. A reload that fails (a bad
/// file) changes nothing and returns the error: the old policy keeps running.
///
/// Budgets live in one store for the handle's life, so a reload does not give every client a
/// fresh budget (a changed `budgets.store.max_keys` applies on restart). Requests in flight
/// finish under the policy they started with.
///
/// For the gateway: call [`reload`](Self::reload) on SIGHUP and log the error if there is one.
pub struct PolicyHandle<St = MemoryStore> {
    current: Arc<ArcSwap<Snapshot<St>>>,
    path: Arc<Mutex<Option<PathBuf>>>,
    build: Arc<BuildFn<St>>,
    reloading: Arc<Mutex<()>>,
}

impl<St> Clone for PolicyHandle<St> {
    fn clone(&self) -> Self {
        PolicyHandle {
            current: self.current.clone(),
            path: self.path.clone(),
            build: self.build.clone(),
            reloading: self.reloading.clone(),
        }
    }
}

impl<St> fmt::Debug for PolicyHandle<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyHandle")
            .field("version", &self.current.load().version)
            .field("origin", &self.current.load().policy.origin())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded values are replaced whole, so a poisoned lock still holds a whole value.
    match m.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl PolicyHandle<MemoryStore> {
    /// Loads the policy file at `path` and builds its stack with in-memory budgets;
    /// [`reload`](Self::reload) reads the same path again.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let path = path.as_ref();
        let handle = Self::new(Policy::load(path)?)?;
        *lock(&handle.path) = Some(path.to_path_buf());
        Ok(handle)
    }

    /// A handle for a policy already loaded, with in-memory budgets kept across reloads.
    pub fn new(policy: Policy) -> Result<Self, PolicyError> {
        if policy.store_kind() == super::StoreKind::Redis {
            return Err(policy.ctx().err(
                PolicyErrorKind::Build,
                "budgets.store.kind",
                "a Redis store connects asynchronously: use PolicyHandle::with_builder with the store of Policy::redis_store().await",
            ));
        }
        let store = policy.memory_store();
        Self::with_builder(policy, move |p| {
            if p.store_kind() == super::StoreKind::Redis {
                return Err(p.ctx().err(
                    PolicyErrorKind::Build,
                    "budgets.store.kind",
                    "this handle keeps budgets in memory: a policy moving them to Redis needs a restart",
                ));
            }
            p.build_with_store(store.clone())
        })
    }
}

impl<St: StackStore> PolicyHandle<St> {
    /// A handle that builds each policy's stack with `build` (for instance
    /// `move |p| p.build_with_store(redis.clone())`).
    pub fn with_builder(
        policy: Policy,
        build: impl Fn(&Policy) -> Result<Fhirwall<St>, PolicyError> + Send + Sync + 'static,
    ) -> Result<Self, PolicyError> {
        let stack = build(&policy)?;
        Ok(PolicyHandle {
            current: Arc::new(ArcSwap::from_pointee(Snapshot {
                policy,
                stack,
                version: 1,
            })),
            path: Arc::new(Mutex::new(None)),
            build: Arc::new(build),
            reloading: Arc::new(Mutex::new(())),
        })
    }

    /// Reads the policy file again (the one given to [`load`](Self::load) or the last
    /// [`reload_from`](Self::reload_from)) and puts it in force. On error nothing changes.
    /// Returns the new version.
    pub fn reload(&self) -> Result<u64, PolicyError> {
        let path = lock(&self.path).clone();
        match path {
            Some(path) => self.reload_from(path),
            None => Err(PolicyError::new(
                self.current.load().policy.origin(),
                PolicyErrorKind::Io,
                "",
                "this policy was not loaded from a file: use reload_from(path) or replace(policy)",
            )),
        }
    }

    /// Loads the policy file at `path` and puts it in force (later [`reload`](Self::reload)s
    /// read this path). On error nothing changes.
    pub fn reload_from(&self, path: impl AsRef<Path>) -> Result<u64, PolicyError> {
        let path = path.as_ref();
        let policy = Policy::load(path)?;
        let version = self.replace(policy)?;
        *lock(&self.path) = Some(path.to_path_buf());
        Ok(version)
    }

    /// Puts a loaded policy in force. On error (the stack can't be built) nothing changes.
    pub fn replace(&self, policy: Policy) -> Result<u64, PolicyError> {
        let _one_at_a_time = lock(&self.reloading);
        let stack = (self.build)(&policy)?;
        let version = self.current.load().version + 1;
        self.current.store(Arc::new(Snapshot {
            policy,
            stack,
            version,
        }));
        Ok(version)
    }

    /// The policy and stack in force now.
    pub fn current(&self) -> Arc<Snapshot<St>> {
        self.current.load_full()
    }

    /// The version in force now.
    pub fn version(&self) -> u64 {
        self.current.load().version
    }
}

impl<S, St> Layer<S> for PolicyHandle<St> {
    type Service = Reloadable<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        Reloadable {
            inner,
            current: self.current.clone(),
        }
    }
}

/// The service of a [`PolicyHandle`]: each request runs through the stack in force when it
/// arrived.
pub struct Reloadable<S, St = MemoryStore> {
    inner: S,
    current: Arc<ArcSwap<Snapshot<St>>>,
}

impl<S: Clone, St> Clone for Reloadable<S, St> {
    fn clone(&self) -> Self {
        Reloadable {
            inner: self.inner.clone(),
            current: self.current.clone(),
        }
    }
}

impl<S: fmt::Debug, St> fmt::Debug for Reloadable<S, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloadable")
            .field("inner", &self.inner)
            .field("version", &self.current.load().version)
            .finish()
    }
}

impl<S, St, ReqB, ResB> Service<Request<ReqB>> for Reloadable<S, St>
where
    S: Clone,
    St: StackStore,
    Fhirwall<St>: Layer<S>,
    <Fhirwall<St> as Layer<S>>::Service: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = <<Fhirwall<St> as Layer<S>>::Service as Service<Request<ReqB>>>::Error;
    type Future = ReloadableFuture<<Fhirwall<St> as Layer<S>>::Service, Request<ReqB>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is the stack's, asked in the future: the stack is only chosen in `call`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<ReqB>) -> Self::Future {
        let snapshot = self.current.load_full();
        let version = PolicyVersion(snapshot.version);
        request.extensions_mut().insert(version);
        let service = snapshot.stack.layer(self.inner.clone());
        ReloadableFuture {
            service,
            request: Some(request),
            version,
            future: None,
        }
    }
}

pin_project! {
    /// The response future of [`Reloadable`]: waits for the stack to be ready, then calls it.
    pub struct ReloadableFuture<Svc, Req>
    where
        Svc: Service<Req>,
    {
        service: Svc,
        request: Option<Req>,
        version: PolicyVersion,
        #[pin]
        future: Option<Svc::Future>,
    }
}

impl<Svc, Req, ResB> Future for ReloadableFuture<Svc, Req>
where
    Svc: Service<Req, Response = Response<ResB>>,
{
    type Output = Result<Response<ResB>, Svc::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            if let Some(future) = this.future.as_mut().as_pin_mut() {
                let mut response = ready!(future.poll(cx))?;
                response.extensions_mut().insert(*this.version);
                return Poll::Ready(Ok(response));
            }
            ready!(this.service.poll_ready(cx))?;
            match this.request.take() {
                Some(request) => this.future.set(Some(this.service.call(request))),
                // The request is taken only when the call's future is set.
                None => return Poll::Pending,
            }
        }
    }
}
