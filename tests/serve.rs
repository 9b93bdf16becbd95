//! The server as an operator sees it: health, users created through each forge's admin API,
//! structured logs with the request's dialect and operation (and no token), graceful shutdown
//! (a request in flight on any serving thread is answered before the process exits).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use common::{Client, Instance, ADMIN_TOKEN};
use serde_json::{json, Value};

#[test]
fn users_are_created_through_each_admin_api() {
    let forge = Instance::reference();
    let gitea = Client::new(format!("{}/api/v1", forge.url), Some(ADMIN_TOKEN));
    let r = gitea.post("/admin/users", json!({"username": "gina", "email": "gina@example.com", "password": "s3cret-pass", "full_name": "Gina"}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["login"], "gina");
    assert_eq!(r.json()["full_name"], "Gina");

    let github = Client::new(format!("{}/api/v3", forge.url), Some(ADMIN_TOKEN));
    let r = github.post(
        "/admin/users",
        json!({"login": "erin", "email": "erin@example.com"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["type"], "User");
    assert_eq!(github.get("/users/gina").json()["login"], "gina");
    assert_eq!(gitea.get("/users/erin").json()["email"], "erin@example.com");

    // Taken names and non-admin callers are refused in each dialect's shape.
    assert_eq!(
        github.post("/admin/users", json!({"login": "gina"})).status,
        422
    );
    let r = Client::new(format!("{}/api/v3", forge.url), Some("alice-token"))
        .post("/admin/users", json!({"login": "mallory"}));
    assert_eq!(
        r.status, 404,
        "site-admin routes answer 404 to others on GitHub: {}",
        r.text
    );
    assert_eq!(github.get("/users/mallory").status, 404);

    // Through a proxy: a GitHub admin creates a user on a Gitea upstream.
    let proxy = Instance::proxy(&forge.url, "gitea", &[]);
    let via = Client::new(format!("{}/api/v3", proxy.url), Some(ADMIN_TOKEN));
    let r = via.post(
        "/admin/users",
        json!({"login": "frank", "email": "frank@example.com"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(gitea.get("/users/frank").status, 200);
}

#[test]
fn json_logs_carry_dialect_and_operation_but_no_token() {
    let upstream = Instance::reference();
    let proxy = Instance::start(
        &[
            "--upstream",
            &upstream.url,
            "--upstream-dialect",
            "gitea",
            "--log-format",
            "json",
        ],
        &[],
    );
    let gh = Client::new(format!("{}/api/v3", proxy.url), Some(ADMIN_TOKEN));
    let r = gh.get("/orgs/acme");
    assert_eq!(r.status, 200);
    // The answer carries the request id the proxy made, and so does the log line.
    let made = r.header("x-request-id").unwrap_or_default();
    assert!(made.starts_with("fb-"), "request id {made:?}");
    let log = proxy.log_with_line(&["handled", "org.get"]);
    let line = log
        .lines()
        .find(|l| l.contains("handled") && l.contains("org.get"))
        .unwrap_or_default();
    let entry: Value = serde_json::from_str(line).expect("JSON log line");
    assert_eq!(entry["dialect"], "github");
    assert_eq!(entry["operation"], "org.get");
    assert_eq!(entry["upstream_status"], 200);
    assert_eq!(entry["path"], "/api/v3/orgs/acme");
    assert_eq!(entry["status"], 200);
    assert_eq!(entry["request_id"], made.as_str());

    // A client's own request id is kept: on the answer and in the log line.
    let own = reqwest::blocking::Client::new()
        .get(format!("{}/api/v3/orgs/acme", proxy.url))
        .header("Authorization", format!("token {ADMIN_TOKEN}"))
        .header("X-Request-Id", "trace-42")
        .send()
        .expect("request");
    assert_eq!(own.status(), 200);
    let echoed = own.headers().get("x-request-id").map(|v| v.as_bytes());
    assert_eq!(echoed, Some(b"trace-42".as_slice()));
    let log = proxy.log_with_line(&["trace-42"]);
    let line = log
        .lines()
        .find(|l| l.contains("trace-42"))
        .unwrap_or_default();
    let entry: Value = serde_json::from_str(line).expect("JSON log line");
    assert_eq!(entry["request_id"], "trace-42");
    assert_eq!(entry["operation"], "org.get");
    assert!(!proxy.log_text().contains(ADMIN_TOKEN));
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let mut forge = Instance::reference();
    let health = Client::new(forge.url.clone(), None).get("/healthz");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    forge.terminate();
    forge.assert_exits_cleanly("did not stop on SIGTERM");
}

/// A Gitea upstream that tells `arrived` when a request reaches it, then answers one org after
/// `delay`.
fn slow_gitea(delay: Duration, arrived: mpsc::Sender<()>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let arrived = arrived.clone();
            std::thread::spawn(move || {
                let mut head = [0u8; 4096];
                let _ = stream.read(&mut head);
                let _ = arrived.send(());
                std::thread::sleep(delay);
                let body = json!({"id": 7, "username": "acme", "name": "acme", "full_name": "Acme Corp", "visibility": "public"}).to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    url
}

#[test]
fn sigterm_lets_requests_in_flight_finish() {
    let (arrived, upstream_saw) = mpsc::channel();
    let upstream = slow_gitea(Duration::from_millis(1500), arrived);
    // More serving threads than requests, so the requests may land on different threads.
    let mut proxy = Instance::proxy(&upstream, "gitea", &[("FORGEBRIDGE__SERVER__WORKERS", "3")]);
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let api = Client::new(format!("{}/api/v3", proxy.url), Some(ADMIN_TOKEN));
            std::thread::spawn(move || api.get("/orgs/acme"))
        })
        .collect();
    for _ in 0..3 {
        upstream_saw
            .recv_timeout(Duration::from_secs(10))
            .expect("the request reached the upstream");
    }
    proxy.terminate();
    for client in clients {
        let r = client.join().expect("client thread");
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["login"], "acme");
        assert_eq!(r.json()["name"], "Acme Corp");
    }
    proxy.assert_exits_cleanly("did not stop after draining");
    // Stopped: nothing listens any more.
    let refused = std::net::TcpStream::connect(proxy.url.trim_start_matches("http://"));
    assert!(refused.is_err());
}
