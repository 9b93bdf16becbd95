//! The upstream transport: HTTP/1.1 connections (HTTPS through rustls with the system's roots,
//! else the bundled webpki roots) kept in a pool per serving thread, a deadline over the whole
//! exchange, a cap on the answer's size, and multipart bodies for uploads.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::ServiceExt;

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

/// Idle connections kept per origin and thread, and for how long.
const MAX_IDLE: usize = 64;
const IDLE_FOR: Duration = Duration::from_secs(60);

type Sender = SendRequest<Full<Bytes>>;

/// The idle connections to one origin, oldest first.
struct Idle {
    scheme: Scheme,
    authority: Authority,
    senders: VecDeque<(Sender, Instant)>,
}

/// Each serving thread runs its own single-threaded runtime (`server::run`), so each keeps its
/// own idle connections: a connection is driven by the thread that uses it, and taking one
/// needs no lock. (A task that moves between threads, in `forgebridge conformance`, gives its
/// connection back to the pool of the thread it ends on.)
#[derive(Default)]
struct Pools(thread_local::ThreadLocal<RefCell<Vec<Idle>>>);

impl Pools {
    /// An idle connection to the origin that is still open, newest first.
    fn idle(&self, scheme: &Scheme, authority: &Authority) -> Option<Sender> {
        let mut pools = self.0.get_or_default().borrow_mut();
        let idle = pools
            .iter_mut()
            .find(|i| i.scheme == *scheme && i.authority == *authority)?;
        while let Some((sender, _)) = idle.senders.pop_back() {
            if sender.is_ready() && !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    /// Gives back a connection whose answer was read, if it can take the next request (it
    /// nearly always can at once; one that cannot is closed instead of waited for), and drops
    /// idle ones that closed or waited too long.
    fn keep(&self, scheme: &Scheme, authority: &Authority, sender: Sender) {
        if !sender.is_ready() {
            return;
        }
        let mut pools = self.0.get_or_default().borrow_mut();
        let at = match pools
            .iter()
            .position(|i| i.scheme == *scheme && i.authority == *authority)
        {
            Some(at) => at,
            None => {
                pools.push(Idle {
                    scheme: scheme.clone(),
                    authority: authority.clone(),
                    senders: VecDeque::new(),
                });
                pools.len() - 1
            }
        };
        let senders = &mut pools[at].senders;
        let now = Instant::now();
        while senders.front().is_some_and(|(s, since)| {
            s.is_closed() || now.duration_since(*since) > IDLE_FOR || senders.len() >= MAX_IDLE
        }) {
            senders.pop_front();
        }
        senders.push_back((sender, now));
    }
}

pub struct Transport {
    pools: Pools,
    connector: HttpsConnector<HttpConnector>,
    timeout: Duration,
    max_body: usize,
    user_agent: HeaderValue,
}

impl Transport {
    /// `timeout` bounds each whole exchange, connecting at most 5 s of it.
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
            pools: Pools::default(),
            connector: https,
            timeout,
            max_body,
            user_agent: HeaderValue::from_static(concat!(
                "forgebridge/",
                env!("CARGO_PKG_VERSION")
            )),
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one request and reads its whole answer. Never retried here once it may have
    /// reached the upstream: the caller decides. (A request refused by an idle connection
    /// that had closed meanwhile was never written, and goes again on a new connection.)
    pub async fn send(&self, mut req: Request<Full<Bytes>>) -> Result<Reply, Failure> {
        let uri = req.uri().clone();
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err(Failure::Connect);
        };
        let headers = req.headers_mut();
        headers
            .entry(http::header::USER_AGENT)
            .or_insert_with(|| self.user_agent.clone());
        if !headers.contains_key(http::header::HOST) {
            headers.insert(
                http::header::HOST,
                host_header(&uri).ok_or(Failure::Connect)?,
            );
        }
        // Origin form on the wire: the connection already knows the origin.
        *req.uri_mut() = Uri::from(
            uri.path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        );
        let exchange = async {
            let mut fresh = false;
            let (sender, resp) = loop {
                let mut sender = match self.pools.idle(scheme, authority) {
                    Some(sender) => sender,
                    None => {
                        fresh = true;
                        self.connect(&uri).await?
                    }
                };
                match sender.try_send_request(req).await {
                    Ok(resp) => break (sender, resp),
                    Err(mut refused) => match refused.take_message() {
                        Some(unsent) if !fresh => req = unsent,
                        Some(_) => return Err(Failure::Connect),
                        None => return Err(Failure::Broken),
                    },
                }
            };
            let (parts, body) = resp.into_parts();
            let body = crate::bounded::collect(&parts.headers, body, self.max_body)
                .await
                .map_err(|e| match e {
                    Unread::TooLarge => Failure::TooLarge,
                    Unread::Broken => Failure::Broken,
                })?;
            self.pools.keep(scheme, authority, sender);
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

    /// A new connection, its protocol driven by a task on this thread's runtime.
    async fn connect(&self, uri: &Uri) -> Result<Sender, Failure> {
        let io = self
            .connector
            .clone()
            .oneshot(uri.clone())
            .await
            .map_err(|_| Failure::Connect)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|_| Failure::Connect)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// The Host header of requests to `uri`: its host and any port it names, never user info.
pub fn host_header(uri: &Uri) -> Option<HeaderValue> {
    let authority = uri.authority()?;
    let host = match authority.port() {
        Some(port) => format!("{}:{port}", authority.host()),
        None => authority.host().to_string(),
    };
    HeaderValue::from_str(&host).ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_keeps_host_and_port_only() {
        let host = |u: &str| host_header(&u.parse().expect("a URI")).expect("a host");
        assert_eq!(host("https://ghe.example.com/api/v3"), "ghe.example.com");
        assert_eq!(host("http://127.0.0.1:3000/api/v1"), "127.0.0.1:3000");
        assert_eq!(
            host("http://bot:s3cret@gitea.local:8080/"),
            "gitea.local:8080"
        );
        assert_eq!(host("http://[::1]:8080/"), "[::1]:8080");
    }
}
