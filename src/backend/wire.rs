//! One HTTP/1.1 exchange with an upstream, driven by the task that makes the call: the request
//! written in one piece, the answer's head parsed with httparse, its body framed by
//! Content-Length, chunked coding or the end of the connection (RFC 9112, section 6).

use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest answer head, and the most header fields in it.
const MAX_HEAD: usize = 64 * 1024;
const MAX_FIELDS: usize = 128;
/// The longest chunk-size line (with extensions) or trailer section accepted.
const MAX_LINE: usize = 4 * 1024;
/// A read buffer larger than this is not kept with an idle connection.
const KEEP_BUFFER: usize = 64 * 1024;

/// Why an exchange failed.
#[derive(Debug, PartialEq, Eq)]
pub enum WireError {
    /// The request could not be written whole: the upstream cannot have acted on it.
    Unsent,
    /// The answer was larger than the cap.
    TooLarge,
    /// The connection ended or broke the protocol before the answer's end.
    Broken,
}

/// An answer's header fields, as received: the head's bytes and where each name and value is.
pub struct Headers {
    head: Bytes,
    fields: Vec<(Range<usize>, Range<usize>)>,
}

impl Headers {
    /// The first field named `name` (any case), if its value is text.
    pub fn get(&self, name: &str) -> Option<&str> {
        let (_, value) = self
            .fields
            .iter()
            .find(|(n, _)| self.head[n.clone()].eq_ignore_ascii_case(name.as_bytes()))?;
        std::str::from_utf8(&self.head[value.clone()]).ok()
    }
}

/// An answer read to its end.
pub struct Answer {
    pub status: StatusCode,
    pub headers: Headers,
    pub body: Bytes,
}

/// How an answer's body ends.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

/// A connection to an upstream with its buffers, kept between exchanges.
pub struct Connection<S> {
    io: S,
    read: BytesMut,
    write: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(io: S) -> Self {
        Connection {
            io,
            read: BytesMut::new(),
            write: Vec::new(),
        }
    }

    pub fn io(&self) -> &S {
        &self.io
    }

    /// Sends a request and reads its whole answer. The boolean says whether the connection can
    /// carry another exchange (the answer was framed, nothing followed it, and neither side
    /// asked to close).
    pub async fn exchange(
        &mut self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        body: &[u8],
        max_body: usize,
    ) -> Result<(Answer, bool), WireError> {
        self.write_request(method, target, headers, body).await?;
        let (status, headers, mut reusable, framing) = loop {
            let head = self.read_head().await?;
            match head.0.as_u16() {
                101 => return Err(WireError::Broken),
                100..=199 => continue,
                _ => break head,
            }
        };
        let framing = match framing {
            _ if *method == Method::HEAD => Framing::Empty,
            _ if matches!(status.as_u16(), 204 | 304) => Framing::Empty,
            framing => framing,
        };
        let body = match framing {
            Framing::Empty => Bytes::new(),
            Framing::Length(n) if n > max_body => return Err(WireError::TooLarge),
            Framing::Length(n) => {
                self.fill(n).await?;
                self.read.split_to(n).freeze()
            }
            Framing::Chunked => self.read_chunked(max_body).await?,
            Framing::UntilClose => {
                reusable = false;
                self.read_to_end(max_body).await?
            }
        };
        reusable &= self.read.is_empty();
        if self.read.capacity() > KEEP_BUFFER {
            self.read = BytesMut::new();
        }
        Ok((
            Answer {
                status,
                headers,
                body,
            },
            reusable,
        ))
    }

    async fn write_request(
        &mut self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), WireError> {
        let out = &mut self.write;
        out.clear();
        out.extend_from_slice(method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in headers {
            if name == http::header::CONTENT_LENGTH || name == http::header::TRANSFER_ENCODING {
                continue;
            }
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !body.is_empty() || !matches!(*method, Method::GET | Method::HEAD) {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        // A small body goes in the same write as the head.
        let separate = body.len() > 16 * 1024;
        if !separate {
            out.extend_from_slice(body);
        }
        let written = async {
            self.io.write_all(&self.write).await?;
            if separate {
                self.io.write_all(body).await?;
            }
            self.io.flush().await
        };
        written.await.map_err(|_| WireError::Unsent)
    }

    /// Reads and parses the next answer head, leaving the buffer at the body.
    async fn read_head(&mut self) -> Result<(StatusCode, Headers, bool, Framing), WireError> {
        loop {
            if !self.read.is_empty() {
                if let Some(parsed) = parse_head(&self.read)? {
                    let (len, status, fields, reusable, framing) = parsed;
                    let head = self.read.split_to(len).freeze();
                    return Ok((status, Headers { head, fields }, reusable, framing));
                }
                if self.read.len() > MAX_HEAD {
                    return Err(WireError::TooLarge);
                }
            }
            self.more(8 * 1024).await?;
        }
    }

    /// Reads until the buffer holds at least `n` bytes.
    async fn fill(&mut self, n: usize) -> Result<(), WireError> {
        while self.read.len() < n {
            let missing = n - self.read.len();
            self.more(missing).await?;
        }
        Ok(())
    }

    /// One read of up to `want` more bytes (at least 4 KiB of room); the connection's end here
    /// means the answer was cut short.
    async fn more(&mut self, want: usize) -> Result<(), WireError> {
        self.read.reserve(want.max(4 * 1024));
        match self.io.read_buf(&mut self.read).await {
            Ok(0) | Err(_) => Err(WireError::Broken),
            Ok(_) => Ok(()),
        }
    }

    /// A chunked body, its chunks joined, its trailer section read and dropped.
    async fn read_chunked(&mut self, max_body: usize) -> Result<Bytes, WireError> {
        let mut body = BytesMut::new();
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.read) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.read.advance(used);
                        break size;
                    }
                    Ok(httparse::Status::Partial) if self.read.len() <= MAX_LINE => {
                        self.more(MAX_LINE).await?
                    }
                    _ => return Err(WireError::Broken),
                }
            };
            if size == 0 {
                break;
            }
            let size = usize::try_from(size).map_err(|_| WireError::TooLarge)?;
            if size > max_body.saturating_sub(body.len()) {
                return Err(WireError::TooLarge);
            }
            self.fill(size + 2).await?;
            body.extend_from_slice(&self.read[..size]);
            if &self.read[size..size + 2] != b"\r\n" {
                return Err(WireError::Broken);
            }
            self.read.advance(size + 2);
        }
        // The trailer section: fields up to an empty line.
        let mut trailers = 0;
        loop {
            match self.read.windows(2).position(|w| w == b"\r\n") {
                Some(0) => {
                    self.read.advance(2);
                    return Ok(body.freeze());
                }
                Some(end) => {
                    trailers += end + 2;
                    self.read.advance(end + 2);
                }
                None => {}
            }
            if trailers + self.read.len() > MAX_LINE {
                return Err(WireError::Broken);
            }
            if !self.read.windows(2).any(|w| w == b"\r\n") {
                self.more(MAX_LINE).await?;
            }
        }
    }

    /// A body that ends with the connection.
    async fn read_to_end(&mut self, max_body: usize) -> Result<Bytes, WireError> {
        loop {
            if self.read.len() > max_body {
                return Err(WireError::TooLarge);
            }
            self.read.reserve(16 * 1024);
            match self.io.read_buf(&mut self.read).await {
                Ok(0) => return Ok(self.read.split().freeze()),
                Ok(_) => {}
                Err(_) => return Err(WireError::Broken),
            }
        }
    }
}

type ParsedHead = (
    usize,
    StatusCode,
    Vec<(Range<usize>, Range<usize>)>,
    bool,
    Framing,
);

/// Parses an answer head at the start of `buf`: its length, status, fields, whether the
/// connection stays open after it, and how its body is framed. `None` while incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<ParsedHead>, WireError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut response = httparse::Response::new(&mut slots);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(WireError::Broken),
    };
    let status = response
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(WireError::Broken)?;
    let mut reusable = response.version == Some(1);
    let mut length: Option<usize> = None;
    let mut chunked = None;
    let start = buf.as_ptr() as usize;
    let at = |s: &[u8]| {
        let from = s.as_ptr() as usize - start;
        from..from + s.len()
    };
    let mut fields = Vec::with_capacity(response.headers.len());
    for field in response.headers.iter() {
        let name = field.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(field.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or(WireError::Broken)?;
            if length.is_some_and(|m| m != n) {
                return Err(WireError::Broken);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = field.value.rsplit(|b| *b == b',').next().unwrap_or(b"");
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in field.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    reusable = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && response.version == Some(0) {
                    reusable = true;
                }
            }
        }
        fields.push((at(name.as_bytes()), at(field.value)));
    }
    let framing = match (chunked, length) {
        (Some(true), _) => {
            // Both framings at once: trust the coding, then close (RFC 9112, 6.3).
            reusable &= length.is_none();
            Framing::Chunked
        }
        (Some(false), _) => Framing::UntilClose,
        (None, Some(0)) => Framing::Empty,
        (None, Some(n)) => Framing::Length(n),
        (None, None) => Framing::UntilClose,
    };
    Ok(Some((len, status, fields, reusable, framing)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Runs one GET over an in-memory pipe whose far end answers `answer` (written in pieces
    /// of `piece` bytes) and then closes if `close`.
    async fn exchange(
        answer: &[u8],
        piece: usize,
        close: bool,
        max: usize,
    ) -> (Result<(Answer, bool), WireError>, Vec<u8>) {
        let (near, mut far) = tokio::io::duplex(1 << 20);
        let answer = answer.to_vec();
        let server = tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match far.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            for part in answer.chunks(piece.max(1)) {
                if far.write_all(part).await.is_err() {
                    break;
                }
                tokio::task::yield_now().await;
            }
            if !close {
                // Hold the pipe open until the client is done.
                let _ = far.read(&mut buf).await;
            }
            request
        });
        let mut conn = Connection::new(near);
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, "up.example".parse().expect("a value"));
        let got = conn
            .exchange(&Method::GET, "/api/v1/orgs/acme", &headers, b"", max)
            .await;
        drop(conn);
        let request = server.await.expect("the far end ran");
        (got, request)
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(f)
    }

    #[test]
    fn a_request_head_is_written_in_origin_form() {
        let answer = b"HTTP/1.1 204 No Content\r\n\r\n";
        let (got, request) = run(exchange(answer, 64, false, 1024));
        assert!(got.is_ok());
        assert_eq!(
            String::from_utf8_lossy(&request),
            "GET /api/v1/orgs/acme HTTP/1.1\r\nhost: up.example\r\n\r\n"
        );
    }

    #[test]
    fn bodies_framed_by_length_chunks_or_close_are_read_whole() {
        for piece in [1, 7, 4096] {
            let (got, _) = run(exchange(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nLink: <x>; rel=\"next\"\r\n\r\nhello",
                piece,
                false,
                1024,
            ));
            let (answer, reusable) = got.expect("an answer");
            assert_eq!(
                (answer.status.as_u16(), &answer.body[..]),
                (200, &b"hello"[..])
            );
            assert_eq!(answer.headers.get("link"), Some("<x>; rel=\"next\""));
            assert!(reusable);

            let (got, _) = run(exchange(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
                piece,
                false,
                1024,
            ));
            let (answer, reusable) = got.expect("an answer");
            assert_eq!(&answer.body[..], b"hello world");
            assert!(reusable);

            let (got, _) = run(exchange(
                b"HTTP/1.1 200 OK\r\n\r\nuntil the end",
                piece,
                true,
                1024,
            ));
            let (answer, reusable) = got.expect("an answer");
            assert_eq!(&answer.body[..], b"until the end");
            assert!(!reusable);
        }
    }

    #[test]
    fn interim_answers_are_skipped_and_close_is_honoured() {
        let (got, _) = run(exchange(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            3,
            false,
            1024,
        ));
        let (answer, reusable) = got.expect("an answer");
        assert_eq!(
            (answer.status.as_u16(), &answer.body[..]),
            (201, &b"{}"[..])
        );
        assert!(!reusable);
    }

    #[test]
    fn cut_oversized_or_garbled_answers_are_errors() {
        // (answer, whether the far end then closes, the error)
        let cases: [(&[u8], bool, WireError); 7] = [
            (b"", true, WireError::Broken),
            (b"HTTQ/1.1 200 OK\r\n\r\n", false, WireError::Broken),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                true,
                WireError::Broken,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n",
                false,
                WireError::TooLarge,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                true,
                WireError::Broken,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n",
                false,
                WireError::TooLarge,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                false,
                WireError::Broken,
            ),
        ];
        for (answer, close, expected) in cases {
            match run(exchange(answer, 5, close, 1024)).0 {
                Err(e) => assert_eq!(e, expected, "{}", String::from_utf8_lossy(answer)),
                Ok((a, _)) => panic!(
                    "{}: answered {} with {:?}",
                    String::from_utf8_lossy(answer),
                    a.status,
                    a.body
                ),
            }
        }
    }
}
