//! A recording relay: a small HTTP server in the test process, on a free loopback port, placed
//! between a forgebridge proxy and the reference forge that plays its upstream. It records every
//! request the proxy sends upstream (method, path, query, content type, body), forwards it to
//! the reference forge unchanged and returns the reference's answer. Real sockets, no mocks.

use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// One request the proxy sent upstream.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// The path as sent, percent-encoded, without the query.
    pub path: String,
    /// The raw query string, without `?` (empty when there is none).
    pub query: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// The status the reference forge answered (502 when forwarding failed).
    pub status: u16,
}

struct Shared {
    records: Mutex<Vec<Recorded>>,
    target: Mutex<Option<String>>,
}

/// The relay; stopped when dropped.
pub struct Relay {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    /// Binds a free loopback port and starts serving. Requests answer 502 until
    /// [`Relay::forward_to`] names the origin to forward to.
    pub fn start() -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay: bind");
        listener.set_nonblocking(true).expect("relay: nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("relay: addr"));
        let shared = Arc::new(Shared {
            records: Mutex::new(Vec::new()),
            target: Mutex::new(None),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("relay: runtime");
            rt.block_on(serve(listener, state, stopped));
        });
        Relay {
            url,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Sets the origin (e.g. `http://127.0.0.1:4711`) every request is forwarded to.
    pub fn forward_to(&self, origin: &str) {
        *self.shared.target.lock().expect("relay lock") = Some(origin.to_string());
    }

    /// Takes the requests recorded since the last call.
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.shared.records.lock().expect("relay lock"))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("relay: tokio listener");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("relay: client");
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                let client = client.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| relay(req, shared.clone(), client.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

async fn relay(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    client: reqwest::Client,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return Ok(answer(
                502,
                format!("relay: reading the request failed: {e}"),
            ))
        }
    };
    let content_type = parts
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut record = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        content_type,
        body: body.to_vec(),
        status: 502,
    };
    let response = forward(&parts, body, &shared, &client).await;
    record.status = response.status().as_u16();
    shared.records.lock().expect("relay lock").push(record);
    Ok(response)
}

async fn forward(
    parts: &hyper::http::request::Parts,
    body: Bytes,
    shared: &Shared,
    client: &reqwest::Client,
) -> Response<Full<Bytes>> {
    let Some(target) = shared.target.lock().expect("relay lock").clone() else {
        return answer(502, "relay: no upstream set".to_string());
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let method = match reqwest::Method::from_bytes(parts.method.as_str().as_bytes()) {
        Ok(m) => m,
        Err(e) => return answer(502, format!("relay: method: {e}")),
    };
    let mut request = client.request(method, format!("{target}{path_and_query}"));
    for (name, value) in &parts.headers {
        let skip = matches!(
            name.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        );
        if !skip {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    let upstream = match request.body(body).send().await {
        Ok(r) => r,
        Err(e) => return answer(502, format!("relay: forwarding failed: {e}")),
    };
    let mut response = Response::builder().status(upstream.status().as_u16());
    for (name, value) in upstream.headers() {
        let skip = matches!(
            name.as_str(),
            "content-length" | "connection" | "transfer-encoding"
        );
        if !skip {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    let bytes = upstream.bytes().await.unwrap_or_default();
    response
        .body(Full::new(bytes))
        .unwrap_or_else(|e| answer(502, format!("relay: response: {e}")))
}

fn answer(status: u16, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    response
}
