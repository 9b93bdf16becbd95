//! The HTTP server: one single-threaded tokio runtime per serving thread, each fed connections
//! in turn by an acceptor on the main thread; hyper 1 connections, the tower stack around the
//! gateway, and graceful shutdown on SIGTERM/SIGINT (in-flight requests finish first).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use crate::gateway::Gateway;
use crate::layers::{AccessLogLayer, Counter, DeadlineLayer, GatewayService, RequestIdLayer};

/// Below the shortest per-request timer (the upstream call's, 10 s by default).
const HEARTBEAT: Duration = Duration::from_secs(2);

fn panic_response(_: Box<dyn std::any::Any + Send>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(
        br#"{"message":"internal error in forgebridge"}"#,
    )));
    *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    resp
}

/// Serves `listener` from `workers` threads until SIGTERM or SIGINT, then lets each drain its
/// open connections. The main thread accepts and deals connections to the threads in turn (a
/// shared listening socket let whichever thread woke first take a burst of them: two threads
/// served 64 connections split 2:1). A connection lives on its thread, and so do its upstream
/// calls (`Transport` keeps a pool per thread): no request waits on another thread's wake-up,
/// which on a busy machine costs more than the work itself (bench/PROFILE.md).
pub fn run(
    listener: std::net::TcpListener,
    gateway: Arc<Gateway>,
    request_timeout: Duration,
    workers: usize,
) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let workers = workers.max(1);
    let ids = Counter::default();
    let (ended, mut first_end) = tokio::sync::mpsc::unbounded_channel();
    let mut threads = Vec::with_capacity(workers);
    let mut feeds = Vec::with_capacity(workers);
    for n in 0..workers {
        let (feed, connections) = tokio::sync::mpsc::unbounded_channel();
        feeds.push(feed);
        let (gateway, ids, ended) = (gateway.clone(), ids.clone(), ended.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name(format!("forgebridge-{n}"))
            .spawn(move || {
                let served = runtime.block_on(serve(connections, gateway, ids, request_timeout));
                let _ = ended.send(());
                served
            })?;
        threads.push(thread);
    }
    drop(ended);
    let main = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    main.block_on(async {
        let listener = TcpListener::from_std(listener)?;
        let mut next = 0;
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = first_end.recv() => break,
                accepted = listener.accept() => {
                    let stream = match accepted.and_then(|(s, _)| s.into_std()) {
                        Ok(stream) => stream,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    // A thread that has ended closes the connection; `first_end` then stops
                    // the server.
                    let _ = feeds[next % feeds.len()].send(stream);
                    next = next.wrapping_add(1);
                }
            }
        }
        anyhow::Ok(())
    })?;
    tracing::info!("shutting down: draining open connections");
    // Closing the feeds tells each thread to stop taking connections and drain.
    drop(feeds);
    let mut outcome = Ok(());
    for thread in threads {
        let served = thread
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("a serving thread panicked")));
        if outcome.is_ok() {
            outcome = served;
        }
    }
    outcome
}

/// Serves the connections dealt to this thread until the feed closes, then drains open
/// connections (at most 10 s).
async fn serve(
    mut connections: tokio::sync::mpsc::UnboundedReceiver<std::net::TcpStream>,
    gateway: Arc<Gateway>,
    ids: Counter,
    request_timeout: Duration,
) -> anyhow::Result<()> {
    let service = ServiceBuilder::new()
        .layer(RequestIdLayer(ids))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(AccessLogLayer)
        .layer(DeadlineLayer {
            gateway: gateway.clone(),
            limit: request_timeout,
        })
        .service(GatewayService(gateway));

    // Every request registers timers (hyper's header read, the deadline, the upstream call's),
    // and one due before the driver's planned wake-up makes tokio wake the driver through its
    // eventfd: a write and an extra epoll_wait per request. A timer that is never more than a
    // few seconds away keeps the planned wake-up closer than any of them.
    let heartbeat = tokio::spawn(async {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
        }
    });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .keep_alive(true);
    while let Some(stream) = connections.recv().await {
        let stream = match TcpStream::from_std(stream) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "cannot serve an accepted connection");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(service.clone()),
        );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("connections still open after 10 s; closing");
        }
    }
    heartbeat.abort();
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
