//! Cross-cutting behaviour as tower layers around the gateway: one access-log line per request
//! (never a token: the query string is not logged), a whole-request deadline answered in the
//! client's dialect, and request ids.

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response};
use http_body_util::Full;
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

use crate::backend::BoxFuture;
use crate::canonical::{CanonicalError, ErrorKind};
use crate::gateway::Gateway;

pub type HttpResponse = Response<Full<Bytes>>;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The gateway as a tower service.
#[derive(Clone)]
pub struct GatewayService(pub Arc<Gateway>);

impl<B> Service<Request<B>> for GatewayService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<HttpResponse, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let gateway = self.0.clone();
        Box::pin(async move { Ok(gateway.handle(req).await) })
    }
}

/// Request ids `fb-<n>`, unique within a process.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    fn next(&self) -> Option<HeaderValue> {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        let mut id = itoa::Buffer::new();
        let id = [b"fb-".as_slice(), id.format(n).as_bytes()].concat();
        HeaderValue::from_bytes(&id).ok()
    }
}

/// Every request carries an `X-Request-Id`, the client's own or `fb-<n>` made here, and its
/// answer carries the same one back (unless the answer set one itself).
#[derive(Clone)]
pub struct RequestIdLayer(pub Counter);

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIds<S>;
    fn layer(&self, inner: S) -> RequestIds<S> {
        RequestIds {
            inner,
            ids: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RequestIds<S> {
    inner: S,
    ids: Counter,
}

impl<S, B, R> Service<Request<B>> for RequestIds<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = WithRequestId<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let id = match req.headers().get(X_REQUEST_ID) {
            Some(id) => Some(id.clone()),
            None => self.ids.next().inspect(|id| {
                req.headers_mut().insert(X_REQUEST_ID, id.clone());
            }),
        };
        WithRequestId {
            inner: self.inner.call(req),
            id,
        }
    }
}

pin_project_lite::pin_project! {
    /// A request being served; its answer gets the request's id.
    pub struct WithRequestId<F> {
        #[pin]
        inner: F,
        id: Option<HeaderValue>,
    }
}

impl<F, R, E> Future for WithRequestId<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let mut result = std::task::ready!(this.inner.poll(cx));
        if let (Ok(resp), Some(id)) = (&mut result, this.id.take()) {
            resp.headers_mut().entry(X_REQUEST_ID).or_insert(id);
        }
        Poll::Ready(result)
    }
}

tokio::task_local! {
    static NOTED: RefCell<Noted>;
}

/// What the phases of a request learn about it, for its access-log line.
#[derive(Default)]
pub struct Noted {
    pub dialect: Option<String>,
    pub operation: Option<&'static str>,
    pub upstream_status: Option<u16>,
    pub error: Option<&'static str>,
}

/// Notes something about the request being served (nothing outside a request).
pub fn note(f: impl FnOnce(&mut Noted)) {
    let _ = NOTED.try_with(|n| f(&mut n.borrow_mut()));
}

/// One access-log line per request, written when its answer is ready: method, path, request
/// id, dialect, operation, upstream status, error kind, status and latency. The phases fill in
/// what they learn through [`note`], a task-local record, which costs far less than a span.
#[derive(Clone, Default)]
pub struct AccessLogLayer;

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;
    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog { inner }
    }
}

#[derive(Clone)]
pub struct AccessLog<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for AccessLog<S>
where
    S: Service<Request<B>, Response = HttpResponse, Error = Infallible>,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = Logged<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let request = crate::logging::access_enabled().then(|| Requested {
            method: req.method().clone(),
            uri: req.uri().clone(),
            request_id: req.headers().get(X_REQUEST_ID).cloned(),
            start: Instant::now(),
        });
        Logged {
            inner: NOTED.scope(RefCell::new(Noted::default()), self.inner.call(req)),
            request,
        }
    }
}

/// What the access log keeps of a request while it is served (the URI is shared, not copied).
struct Requested {
    method: http::Method,
    uri: http::Uri,
    request_id: Option<http::HeaderValue>,
    start: Instant,
}

pin_project_lite::pin_project! {
    /// A request being served with its task-local [`Noted`] record; writes the access-log line
    /// when the answer is ready.
    pub struct Logged<F: Future> {
        #[pin]
        inner: TaskLocalFuture<RefCell<Noted>, F>,
        request: Option<Requested>,
    }
}

impl<F> Future for Logged<F>
where
    F: Future<Output = Result<HttpResponse, Infallible>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        let result = std::task::ready!(this.inner.as_mut().poll(cx));
        if let (Some(request), Ok(resp)) = (this.request.take(), &result) {
            let noted = this
                .inner
                .take_value()
                .map(RefCell::into_inner)
                .unwrap_or_default();
            crate::logging::access(&crate::logging::AccessLine {
                method: request.method.as_str(),
                path: request.uri.path(),
                request_id: request
                    .request_id
                    .as_ref()
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-"),
                dialect: noted.dialect.as_deref(),
                operation: noted.operation,
                upstream_status: noted.upstream_status,
                error: noted.error,
                status: resp.status().as_u16(),
                latency_ms: request.start.elapsed().as_secs_f64() * 1000.0,
            });
        }
        Poll::Ready(result)
    }
}

/// The whole-request deadline; a request past it gets 504 in its client's dialect.
#[derive(Clone)]
pub struct DeadlineLayer {
    pub gateway: Arc<Gateway>,
    pub limit: Duration,
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            gateway: self.gateway.clone(),
            limit: self.limit,
        }
    }
}

#[derive(Clone)]
pub struct Deadline<S> {
    inner: S,
    gateway: Arc<Gateway>,
    limit: Duration,
}

impl<S, B> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>, Response = HttpResponse, Error = Infallible>,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = WithinDeadline<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let uri = req.uri().clone();
        WithinDeadline {
            inner: tokio::time::timeout(self.limit, self.inner.call(req)),
            gateway: self.gateway.clone(),
            limit: self.limit,
            uri,
        }
    }
}

pin_project_lite::pin_project! {
    /// A request racing its deadline; past it, the answer is a 504 in the client's dialect.
    pub struct WithinDeadline<F> {
        #[pin]
        inner: tokio::time::Timeout<F>,
        gateway: Arc<Gateway>,
        limit: Duration,
        uri: http::Uri,
    }
}

impl<F> Future for WithinDeadline<F>
where
    F: Future<Output = Result<HttpResponse, Infallible>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        Poll::Ready(match std::task::ready!(this.inner.poll(cx)) {
            Ok(result) => result,
            Err(_) => {
                let err = CanonicalError::new(
                    ErrorKind::UpstreamTimeout,
                    format!(
                        "the request took longer than {} s",
                        this.limit.as_secs_f32()
                    ),
                );
                Ok(this.gateway.error_for_path(this.uri.path(), err))
            }
        })
    }
}
