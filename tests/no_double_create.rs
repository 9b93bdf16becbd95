//! No create is ever performed twice. A faulty relay sits between the proxy and the reference
//! forge (real sockets, loopback): for a POST it drops the connection before forwarding,
//! forwards and then drops it, answers 500 without forwarding, forwards and answers 500, or
//! holds the request past the proxy's upstream timeout (1 s) and forwards it afterwards. For
//! every fault, a GitHub-dialect admin create and a Gitea-dialect create through the proxy
//! must get an error in the client's dialect, the relay must have received and forwarded each
//! create at most once (a POST is never retried), and the organization exists on the reference
//! at most once. A GET whose first connection is dropped before forwarding may be retried
//! (idempotent), and then answers 200; otherwise 502 in the client's dialect.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{org_logins, Client, Instance, Reply, ADMIN_TOKEN};
use serde_json::{json, Value};

/// The proxy's per-call upstream timeout in these tests.
const UPSTREAM_TIMEOUT_SECS: &str = "1";
/// How long the relay holds a request in the `DelayPastTimeout` fault.
const LONG_DELAY: Duration = Duration::from_millis(2500);
/// Longest any single call through the proxy may take here.
const CALL_BOUND: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Read the request, close the connection; nothing reaches the upstream.
    DropBeforeForward,
    /// Forward the request, read the upstream's answer, close without answering.
    ForwardThenDrop,
    /// Answer 500 (Gitea's error shape) without forwarding.
    Answer500,
    /// Forward the request, then answer 500 instead of the upstream's answer.
    ForwardThen500,
    /// Hold the request past the proxy's upstream timeout, then forward it anyway.
    DelayPastTimeout,
}

impl Fault {
    fn forwards(self) -> bool {
        matches!(
            self,
            Fault::ForwardThenDrop | Fault::ForwardThen500 | Fault::DelayPastTimeout
        )
    }

    /// The status the proxy answers with: a slow upstream is 504, every other failure 502.
    fn expected_status(self) -> u16 {
        match self {
            Fault::DelayPastTimeout => 504,
            _ => 502,
        }
    }
}

#[derive(Default)]
struct Log {
    /// (method, path, org name in the body) of every request the relay read.
    received: Vec<(String, String, Option<String>)>,
    /// The same, for every request it sent on to the upstream.
    forwarded: Vec<(String, String, Option<String>)>,
}

#[derive(Default)]
struct Settings {
    post_fault: Option<Fault>,
    /// GET connections still to drop before forwarding.
    drop_gets: usize,
}

/// A one-request-per-connection HTTP/1.1 relay to `upstream` that injects faults.
struct Relay {
    url: String,
    settings: Arc<Mutex<Settings>>,
    log: Arc<Mutex<Log>>,
    in_flight: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    port: u16,
}

/// Binds a loopback port in 19000-19999 (the range these tests may use).
fn bind_in_range() -> TcpListener {
    let offset = (std::process::id() as u16) % 500;
    (0..1000u16)
        .map(|i| 19000 + (offset + i) % 1000)
        .find_map(|port| TcpListener::bind(("127.0.0.1", port)).ok())
        .expect("no free port in 19000-19999")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

struct Request {
    method: String,
    path: String,
    head_lines: Vec<String>,
    body: Vec<u8>,
}

/// Reads one request (head and Content-Length body); None when the peer closed first.
fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let start = lines.next()?.to_string();
    let mut parts = start.split(' ');
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let head_lines: Vec<String> = lines.map(str::to_string).collect();
    let length = head_lines
        .iter()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    body.truncate(length);
    Some(Request {
        method,
        path,
        head_lines,
        body,
    })
}

/// The org name a create body carries (Gitea `username`, GitHub `login`).
fn body_name(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("username")
        .or_else(|| v.get("login"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

impl Relay {
    fn start(upstream_url: &str) -> Relay {
        let upstream = upstream_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = bind_in_range();
        let port = listener.local_addr().expect("addr").port();
        let relay = Relay {
            url: format!("http://127.0.0.1:{port}"),
            settings: Arc::default(),
            log: Arc::default(),
            in_flight: Arc::default(),
            stop: Arc::default(),
            port,
        };
        let (settings, log, in_flight, stop) = (
            relay.settings.clone(),
            relay.log.clone(),
            relay.in_flight.clone(),
            relay.stop.clone(),
        );
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = conn else { continue };
                let (settings, log, in_flight, upstream) = (
                    settings.clone(),
                    log.clone(),
                    in_flight.clone(),
                    upstream.clone(),
                );
                thread::spawn(move || serve(stream, &upstream, &settings, &log, &in_flight));
            }
        });
        relay
    }

    fn set_post_fault(&self, fault: Option<Fault>) {
        self.settings.lock().unwrap().post_fault = fault;
    }

    fn drop_next_gets(&self, n: usize) {
        self.settings.lock().unwrap().drop_gets = n;
    }

    /// Waits until no request is being handled (a delayed request has been forwarded).
    fn wait_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.in_flight.load(Ordering::SeqCst) > 0 {
            assert!(Instant::now() < deadline, "relay still busy after 15 s");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn count(
        &self,
        forwarded: bool,
        method: &str,
        name: Option<&str>,
        path: Option<&str>,
    ) -> usize {
        let log = self.log.lock().unwrap();
        let entries = if forwarded {
            &log.forwarded
        } else {
            &log.received
        };
        entries
            .iter()
            .filter(|(m, p, n)| {
                m == method
                    && name.is_none_or(|want| n.as_deref() == Some(want))
                    && path.is_none_or(|want| p == want)
            })
            .count()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Handles one connection: one request, then the connection is closed.
fn serve(
    mut client: TcpStream,
    upstream: &str,
    settings: &Mutex<Settings>,
    log: &Mutex<Log>,
    in_flight: &AtomicUsize,
) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(req) = read_request(&mut client) else {
        return;
    };
    in_flight.fetch_add(1, Ordering::SeqCst);
    let name = (req.method == "POST")
        .then(|| body_name(&req.body))
        .flatten();
    log.lock()
        .unwrap()
        .received
        .push((req.method.clone(), req.path.clone(), name.clone()));
    let fault = {
        let mut s = settings.lock().unwrap();
        match req.method.as_str() {
            "POST" => s.post_fault,
            "GET" if s.drop_gets > 0 => {
                s.drop_gets -= 1;
                Some(Fault::DropBeforeForward)
            }
            _ => None,
        }
    };
    match fault {
        Some(Fault::DropBeforeForward) => {
            let _ = client.shutdown(Shutdown::Both);
        }
        Some(Fault::Answer500) => answer_500(&mut client),
        Some(Fault::DelayPastTimeout) => {
            thread::sleep(LONG_DELAY);
            let answer = forward(upstream, &req, name, log);
            let _ = client.write_all(&answer);
        }
        Some(Fault::ForwardThenDrop) => {
            let _ = forward(upstream, &req, name, log);
            let _ = client.shutdown(Shutdown::Both);
        }
        Some(Fault::ForwardThen500) => {
            let _ = forward(upstream, &req, name, log);
            answer_500(&mut client);
        }
        None => {
            let answer = forward(upstream, &req, name, log);
            let _ = client.write_all(&answer);
        }
    }
    in_flight.fetch_sub(1, Ordering::SeqCst);
}

fn answer_500(client: &mut TcpStream) {
    let body = r#"{"message":"injected failure","url":"http://relay/api/swagger"}"#;
    let _ = write!(
        client,
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json;charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Sends the request to the upstream on a fresh connection and returns its raw answer (the
/// upstream closes after answering: `Connection: close`).
fn forward(upstream: &str, req: &Request, name: Option<String>, log: &Mutex<Log>) -> Vec<u8> {
    log.lock()
        .unwrap()
        .forwarded
        .push((req.method.clone(), req.path.clone(), name));
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_vec();
    };
    let _ = up.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {upstream}\r\n",
        req.method, req.path
    );
    for line in &req.head_lines {
        let key = line.split(':').next().unwrap_or_default().trim();
        if !key.eq_ignore_ascii_case("host") && !key.eq_ignore_ascii_case("connection") {
            head.push_str(line);
            head.push_str("\r\n");
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut answer = Vec::new();
    if up.write_all(head.as_bytes()).is_ok() && up.write_all(&req.body).is_ok() {
        let _ = up.read_to_end(&mut answer);
    }
    answer
}

/// A stack: reference forge ← faulty relay ← proxy (gitea upstream, 1 s upstream timeout).
struct Stack {
    reference: Instance,
    relay: Relay,
    proxy: Instance,
}

impl Stack {
    fn start() -> Stack {
        let reference = Instance::reference();
        let relay = Relay::start(&reference.url);
        let proxy = Instance::proxy(
            &relay.url,
            "gitea",
            &[("FORGEBRIDGE__UPSTREAM__TIMEOUT_SECS", UPSTREAM_TIMEOUT_SECS)],
        );
        Stack {
            reference,
            relay,
            proxy,
        }
    }

    fn github(&self) -> Client {
        Client::new(format!("{}/api/v3", self.proxy.url), Some(ADMIN_TOKEN))
    }

    fn gitea(&self) -> Client {
        Client::new(format!("{}/api/v1", self.proxy.url), Some(ADMIN_TOKEN))
    }

    fn copies_on_reference(&self, name: &str) -> usize {
        org_logins(&self.reference)
            .iter()
            .filter(|l| l.eq_ignore_ascii_case(name))
            .count()
    }
}

fn timed(what: &str, call: impl FnOnce() -> Reply) -> Reply {
    let start = Instant::now();
    let reply = call();
    let took = start.elapsed();
    assert!(
        took < CALL_BOUND,
        "{what} took {took:?} (more than {CALL_BOUND:?})"
    );
    reply
}

fn assert_github_error(r: &Reply, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text);
    let body = r.json();
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: GitHub error needs a message: {body}"
    );
    assert!(
        body["documentation_url"].is_string(),
        "{what}: GitHub error needs documentation_url: {body}"
    );
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: content-type {:?}",
        r.header("content-type")
    );
    assert!(
        r.header("x-github-media-type").is_some(),
        "{what}: no X-GitHub-Media-Type header"
    );
}

fn assert_gitea_error(r: &Reply, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text);
    let body = r.json();
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: Gitea error needs a message: {body}"
    );
    assert!(
        body["url"].is_string(),
        "{what}: Gitea error needs url: {body}"
    );
    assert!(
        body.get("documentation_url").is_none(),
        "{what}: a GitHub-shaped error for a Gitea client: {body}"
    );
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: content-type {:?}",
        r.header("content-type")
    );
}

/// After a create under `fault`: received and forwarded at most once (exactly as the fault
/// implies), and on the reference at most once, after any delayed forward has landed.
fn assert_at_most_once(stack: &Stack, fault: Fault, name: &str, what: &str) {
    stack.relay.wait_idle();
    let received = stack.relay.count(false, "POST", Some(name), None);
    let forwarded = stack.relay.count(true, "POST", Some(name), None);
    assert_eq!(
        received, 1,
        "{what}: the proxy sent the create {received} times (a POST must never be retried)"
    );
    assert_eq!(
        forwarded,
        usize::from(fault.forwards()),
        "{what}: the create reached the upstream {forwarded} times"
    );
    let copies = stack.copies_on_reference(name);
    assert!(copies <= 1, "{what}: {name} exists {copies} times upstream");
    assert_eq!(
        copies, forwarded,
        "{what}: {name} exists {copies} times upstream but was forwarded {forwarded} times"
    );
}

fn creates_are_never_repeated(fault: Fault, tag: &str) {
    let stack = Stack::start();
    stack.relay.set_post_fault(Some(fault));

    let name = format!("gh-{tag}");
    let what = format!("GitHub admin create under {fault:?}");
    let r = timed(&what, || {
        stack.github().post(
            "/admin/organizations",
            json!({"login": name, "admin": "admin", "profile_name": "Fault"}),
        )
    });
    assert_github_error(&r, fault.expected_status(), &what);
    assert_at_most_once(&stack, fault, &name, &what);

    let name = format!("gt-{tag}");
    let what = format!("Gitea create under {fault:?}");
    let r = timed(&what, || {
        stack
            .gitea()
            .post("/orgs", json!({"username": name, "full_name": "Fault"}))
    });
    assert_gitea_error(&r, fault.expected_status(), &what);
    assert_at_most_once(&stack, fault, &name, &what);

    // With the fault gone, the same proxy still creates (nothing is stuck), exactly once.
    stack.relay.set_post_fault(None);
    let name = format!("ok-{tag}");
    let r = timed("create after the fault", || {
        stack.github().post(
            "/admin/organizations",
            json!({"login": name, "admin": "admin"}),
        )
    });
    assert_eq!(r.status, 201, "create after {fault:?}: {}", r.text);
    assert_eq!(stack.relay.count(true, "POST", Some(&name), None), 1);
    assert_eq!(stack.copies_on_reference(&name), 1);
}

#[test]
fn create_dropped_before_forwarding_is_not_repeated() {
    creates_are_never_repeated(Fault::DropBeforeForward, "drop-before");
}

#[test]
fn create_dropped_after_forwarding_is_not_repeated() {
    creates_are_never_repeated(Fault::ForwardThenDrop, "drop-after");
}

#[test]
fn create_answered_500_is_not_repeated() {
    creates_are_never_repeated(Fault::Answer500, "error-500");
}

#[test]
fn create_forwarded_then_answered_500_is_not_repeated() {
    creates_are_never_repeated(Fault::ForwardThen500, "fwd-500");
}

#[test]
fn create_past_the_upstream_timeout_is_not_repeated() {
    creates_are_never_repeated(Fault::DelayPastTimeout, "slow");
}

#[test]
fn get_may_be_retried_when_its_first_connection_drops() {
    let stack = Stack::start();
    for (client, path, upstream_path, github) in [
        (stack.github(), "/orgs/acme", "/api/v1/orgs/acme", true),
        (
            stack.gitea(),
            "/orgs/widgets",
            "/api/v1/orgs/widgets",
            false,
        ),
    ] {
        stack.relay.drop_next_gets(1);
        let what = format!("GET {path} with its first upstream connection dropped");
        let before = stack.relay.count(false, "GET", None, Some(upstream_path));
        let r = timed(&what, || client.get(path));
        stack.relay.wait_idle();
        let tries = stack.relay.count(false, "GET", None, Some(upstream_path)) - before;
        match r.status {
            200 => assert!(
                r.json()["id"].is_number(),
                "{what}: 200 without an org: {}",
                r.text
            ),
            _ if github => assert_github_error(&r, 502, &what),
            _ => assert_gitea_error(&r, 502, &what),
        }
        assert!(
            (1..=2).contains(&tries),
            "{what}: {tries} upstream attempts (expected 1, or 2 with one retry)"
        );
        if r.status == 200 {
            assert_eq!(tries, 2, "{what}: answered 200 without a second attempt");
        }
    }
}
