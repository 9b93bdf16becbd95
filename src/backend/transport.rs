//! The upstream transport: HTTP/1.1 connections (HTTPS through rustls with the system's roots,
//! else the bundled webpki roots) kept in a pool per serving thread, each exchange driven by the
//! calling task (`wire`), a deadline over it, a cap on the answer's size, and multipart bodies.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Request, Uri};
use tokio::io::ReadBuf;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_util::either::Either;

pub use super::wire::{Answer as Reply, Headers};
use super::wire::{Connection, WireError};

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

/// A connection's byte stream: TCP, or TLS over TCP.
type Stream = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// Whether an idle connection can carry a request: the upstream has neither closed it nor sent
/// anything unasked. (Nothing was read since the last answer ended, so any byte waiting now is
/// a close, a TLS alert or garbage.)
fn is_quiet(stream: &Stream, cx: &mut Context<'_>) -> bool {
    let tcp = match stream {
        Either::Left(tcp) => tcp,
        Either::Right(tls) => tls.get_ref().0,
    };
    let mut byte = [0u8; 1];
    tcp.poll_peek(cx, &mut ReadBuf::new(&mut byte)).is_pending()
}

type Conn = Connection<Stream>;

/// The idle connections to one origin, oldest first.
struct Idle {
    scheme: Scheme,
    authority: Authority,
    conns: VecDeque<(Conn, Instant)>,
}

/// Each serving thread runs its own single-threaded runtime (`server::run`), so each keeps its
/// own idle connections: a connection is used by the task on the thread that took it, and
/// taking one needs no lock. (A task that moves between threads, in `forgebridge conformance`,
/// gives its connection back to the pool of the thread it ends on.)
#[derive(Default)]
struct Pools(thread_local::ThreadLocal<RefCell<Vec<Idle>>>);

impl Pools {
    /// An idle connection to the origin that the upstream has not closed, newest first.
    fn idle(&self, scheme: &Scheme, authority: &Authority, cx: &mut Context<'_>) -> Option<Conn> {
        let mut pools = self.0.get_or_default().borrow_mut();
        let idle = pools
            .iter_mut()
            .find(|i| i.scheme == *scheme && i.authority == *authority)?;
        while let Some((conn, _)) = idle.conns.pop_back() {
            if is_quiet(conn.io(), cx) {
                return Some(conn);
            }
        }
        None
    }

    /// Gives back a connection whose answer was read, and drops idle ones that waited too
    /// long or are over the limit.
    fn keep(&self, scheme: &Scheme, authority: &Authority, conn: Conn) {
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
                    conns: VecDeque::new(),
                });
                pools.len() - 1
            }
        };
        let conns = &mut pools[at].conns;
        let now = Instant::now();
        while conns.front().is_some_and(|(_, since)| {
            now.duration_since(*since) > IDLE_FOR || conns.len() >= MAX_IDLE
        }) {
            conns.pop_front();
        }
        conns.push_back((conn, now));
    }
}

pub struct Transport {
    pools: Pools,
    tls: TlsConnector,
    timeout: Duration,
    connect_timeout: Duration,
    max_body: usize,
    user_agent: HeaderValue,
}

impl Transport {
    /// `timeout` bounds each whole exchange, connecting at most 5 s of it.
    pub fn new(timeout: Duration, max_body: usize) -> Self {
        Transport {
            pools: Pools::default(),
            tls: TlsConnector::from(Arc::new(tls_config())),
            timeout,
            connect_timeout: timeout.min(Duration::from_secs(5)),
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

    /// The User-Agent sent where a request names none.
    pub fn user_agent(&self) -> &HeaderValue {
        &self.user_agent
    }

    /// Sends one request and reads its whole answer. Never retried here once it may have
    /// reached the upstream: the caller decides. (A request that could not be written whole
    /// on an idle connection, which the upstream had closed meanwhile, goes again on a new one.)
    /// The request is borrowed, so that a caller that may send it again keeps it without a copy.
    pub async fn send(&self, req: &Request<Bytes>) -> Result<Reply, Failure> {
        let uri = req.uri();
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err(Failure::Connect);
        };
        // A user agent and a host where the request has none (the upstream client sets both).
        let filled;
        let given = req.headers();
        let headers = if given.contains_key(http::header::USER_AGENT)
            && given.contains_key(http::header::HOST)
        {
            given
        } else {
            let mut headers = given.clone();
            headers
                .entry(http::header::USER_AGENT)
                .or_insert_with(|| self.user_agent.clone());
            if !headers.contains_key(http::header::HOST) {
                headers.insert(
                    http::header::HOST,
                    host_header(uri).ok_or(Failure::Connect)?,
                );
            }
            filled = headers;
            &filled
        };
        // Origin form on the wire: the connection already knows the origin.
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let exchange = async {
            let idle =
                std::future::poll_fn(|cx| Poll::Ready(self.pools.idle(scheme, authority, cx)))
                    .await;
            let (mut conn, mut fresh) = match idle {
                Some(conn) => (conn, false),
                None => (self.connect(scheme, authority).await?, true),
            };
            loop {
                let sent = conn
                    .exchange(req.method(), target, headers, req.body(), self.max_body)
                    .await;
                match sent {
                    Ok((answer, reusable)) => {
                        if reusable {
                            self.pools.keep(scheme, authority, conn);
                        }
                        return Ok(answer);
                    }
                    Err(WireError::Unsent) if !fresh => {
                        conn = self.connect(scheme, authority).await?;
                        fresh = true;
                    }
                    Err(WireError::Unsent) => return Err(Failure::Connect),
                    Err(WireError::TooLarge) => return Err(Failure::TooLarge),
                    Err(WireError::Broken) => return Err(Failure::Broken),
                }
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(Failure::Timeout))
    }

    /// A new connection to the origin: TCP without Nagle's delay, and TLS for https.
    async fn connect(&self, scheme: &Scheme, authority: &Authority) -> Result<Conn, Failure> {
        let https = *scheme == Scheme::HTTPS;
        let host = authority.host();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        // An IPv6 literal comes bracketed in a URI.
        let name = host.trim_start_matches('[').trim_end_matches(']');
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect((name, port)))
            .await
            .map_err(|_| Failure::Connect)?
            .map_err(|_| Failure::Connect)?;
        let _ = tcp.set_nodelay(true);
        let stream = if https {
            let server = rustls::pki_types::ServerName::try_from(name.to_string())
                .map_err(|_| Failure::Connect)?;
            let tls = tokio::time::timeout(self.connect_timeout, self.tls.connect(server, tcp))
                .await
                .map_err(|_| Failure::Connect)?
                .map_err(|_| Failure::Connect)?;
            Either::Right(Box::new(tls))
        } else if *scheme == Scheme::HTTP {
            Either::Left(tcp)
        } else {
            return Err(Failure::Connect);
        };
        Ok(Connection::new(stream))
    }
}

/// TLS for https upstreams: the system's trusted roots, else the bundled webpki roots.
fn tls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls's default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
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
