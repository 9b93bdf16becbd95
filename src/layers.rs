//! Cross-cutting behaviour as tower layers around the gateway: an access-log span per request
//! (never a token: the query string is not logged), a whole-request deadline answered in the
//! client's dialect, and request ids.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower::{Layer, Service};
use tower_http::request_id::{MakeRequestId, RequestId};
use tracing::Instrument;

use crate::backend::BoxFuture;
use crate::canonical::{CanonicalError, ErrorKind};
use crate::gateway::Gateway;

pub type HttpResponse = Response<Full<Bytes>>;

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

impl MakeRequestId for Counter {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        http::HeaderValue::from_str(&format!("fb-{n}"))
            .ok()
            .map(RequestId::new)
    }
}

/// One tracing span per request: method, path, request id, dialect, operation, upstream
/// status, error kind, status and latency.
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
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<HttpResponse, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string();
        let span = tracing::info_span!(
            "request",
            method = %req.method(),
            path = %req.uri().path(),
            request_id = %request_id,
            dialect = tracing::field::Empty,
            operation = tracing::field::Empty,
            upstream_status = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        let start = Instant::now();
        let fut = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        Box::pin(
            async move {
                let result = fut.await;
                if let Ok(resp) = &result {
                    tracing::info!(
                        status = resp.status().as_u16(),
                        latency_ms = start.elapsed().as_secs_f64() * 1000.0,
                        "handled"
                    );
                }
                result
            }
            .instrument(span),
        )
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
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<HttpResponse, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let path = req.uri().path().to_string();
        let fut = self.inner.call(req);
        let (gateway, limit) = (self.gateway.clone(), self.limit);
        Box::pin(async move {
            match tokio::time::timeout(limit, fut).await {
                Ok(result) => result,
                Err(_) => {
                    let err = CanonicalError::new(
                        ErrorKind::UpstreamTimeout,
                        format!("the request took longer than {} s", limit.as_secs_f32()),
                    );
                    Ok(gateway.error_for_path(&path, err))
                }
            }
        })
    }
}
