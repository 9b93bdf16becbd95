//! The upstream transport: a pooled hyper client per serving thread (HTTP/1.1; HTTPS through
//! rustls with the system's roots, else the bundled webpki roots), a deadline over the whole
//! exchange, a cap on the answer's size, and multipart bodies for uploads.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::bounded::Unread;

/// An answer read to its end.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why an exchange failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// The connection could not be made: the request never reached the upstream.
    Connect,
    /// No whole answer within the deadline.
    Timeout,
    /// The answer was larger than the cap.
    TooLarge,
    /// The connection broke during the exchange.
    Broken,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Failure::Connect => "could not connect",
            Failure::Timeout => "no answer in time",
            Failure::TooLarge => "the answer is too large",
            Failure::Broken => "the connection broke",
        })
    }
}

type Pooled = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Each serving thread runs its own single-threaded runtime (`server::run`), so each gets its own
/// client: its pooled connections are driven by that thread, and a request never waits on
/// another thread's wake-up.
pub struct Transport {
    clients: thread_local::ThreadLocal<Pooled>,
    connector: HttpsConnector<HttpConnector>,
    timeout: Duration,
    max_body: usize,
    user_agent: HeaderValue,
}

impl Transport {
    /// A pooled client: `timeout` bounds each whole exchange, connecting at most 5 s of it.
    pub fn new(timeout: Duration, max_body: usize) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout.min(Duration::from_secs(5))));
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let https = match builder.with_native_roots() {
            Ok(b) => b,
            Err(_) => hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots(),
        }
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
        Transport {
            clients: thread_local::ThreadLocal::new(),
            connector: https,
            timeout,
            max_body,
            user_agent: HeaderValue::from_static(concat!(
                "forgebridge/",
                env!("CARGO_PKG_VERSION")
            )),
        }
    }

    /// This thread's pooled client.
    fn client(&self) -> &Pooled {
        self.clients.get_or(|| {
            Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(64)
                .build(self.connector.clone())
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one request and reads its whole answer. Never retried here: the caller decides.
    pub async fn send(&self, mut req: Request<Full<Bytes>>) -> Result<Reply, Failure> {
        req.headers_mut()
            .entry(http::header::USER_AGENT)
            .or_insert_with(|| self.user_agent.clone());
        let exchange = async {
            let resp = self.client().request(req).await.map_err(|e| {
                if e.is_connect() {
                    Failure::Connect
                } else {
                    Failure::Broken
                }
            })?;
            let (parts, body) = resp.into_parts();
            let body = crate::bounded::collect(&parts.headers, body, self.max_body)
                .await
                .map_err(|e| match e {
                    Unread::TooLarge => Failure::TooLarge,
                    Unread::Broken => Failure::Broken,
                })?;
            Ok(Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(Failure::Timeout))
    }
}

/// One part of a multipart/form-data body: a text value, or a file with its media type.
pub enum Part<'a> {
    Text(&'a str, String),
    File(&'a str, String, Vec<u8>),
}

/// Encodes parts as multipart/form-data (RFC 7578); returns the Content-Type and the body.
pub fn multipart(parts: &[Part<'_>]) -> (String, Bytes) {
    let boundary = format!(
        "forgebridge-{:016x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ std::process::id() as u64
    );
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match part {
            Part::Text(name, value) => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{}\"\r\n\r\n",
                        quoted(name)
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(value.as_bytes());
            }
            Part::File(name, mime, bytes) => {
                let mime = if is_media_type(mime) {
                    mime.as_str()
                } else {
                    "application/octet-stream"
                };
                let ext = mime
                    .rsplit('/')
                    .next()
                    .unwrap_or("bin")
                    .trim_end_matches("+xml");
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{n}\"; filename=\"{n}.{e}\"\r\nContent-Type: {mime}\r\n\r\n",
                        n = quoted(name),
                        e = quoted(ext),
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(bytes);
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/form-data; boundary={boundary}"),
        Bytes::from(body),
    )
}

/// Whether a media type is plain `type/subtype` (safe to put in a part's header).
fn is_media_type(s: &str) -> bool {
    s.split_once('/').is_some_and(|(t, sub)| {
        [t, sub].iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        })
    })
}

/// A name safe inside a quoted header parameter.
fn quoted(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '\r' | '\n' | '\\' => '_',
            c => c,
        })
        .collect()
}
