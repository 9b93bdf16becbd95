//! Errors in the client's own dialect, in both directions: unknown org, name taken, malformed
//! JSON, oversized body, upstream down, upstream too slow, upstream answer too large. After
//! each, the upstream's state is unchanged.

mod common;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, snapshot, Client, Instance, ADMIN_TOKEN};
use serde_json::json;

/// GitHub's error body: message, documentation_url, status as a string.
fn assert_github_error(r: &common::Reply, status: u16) {
    assert_eq!(r.status, status, "{}", r.text);
    let body = r.json();
    assert!(body["message"].is_string(), "{body}");
    assert!(body["documentation_url"].is_string(), "{body}");
    assert_eq!(body["status"], json!(status.to_string()));
}

/// Gitea's error body: message and url.
fn assert_gitea_error(r: &common::Reply, status: u16) {
    assert_eq!(r.status, status, "{}", r.text);
    let body = r.json();
    assert!(body["message"].is_string(), "{body}");
    assert!(
        body["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/api/swagger"),
        "{body}"
    );
}

#[test]
fn github_client_errors_over_gitea_upstream() {
    let upstream = Instance::reference();
    let proxy = Instance::proxy(
        &upstream.url,
        "gitea",
        &[("FORGEBRIDGE__SERVER__BODY_LIMIT_BYTES", "2048")],
    );
    let gh = Client::new(format!("{}/api/v3", proxy.url), Some(ADMIN_TOKEN));
    let before = snapshot(&upstream);

    let r = gh.get("/orgs/no-such-org");
    assert_github_error(&r, 404);
    assert_eq!(r.json()["message"], "Not Found");

    let r = gh.post(
        "/admin/organizations",
        json!({"login": "acme", "admin": "alice"}),
    );
    assert_github_error(&r, 422);
    let body = r.json();
    assert_eq!(body["message"], "Validation Failed");
    assert_eq!(body["errors"][0]["code"], "already_exists");
    assert_eq!(body["errors"][0]["field"], "login");

    let r = gh.post("/admin/organizations", json!({"admin": "alice"}));
    assert_github_error(&r, 422);
    assert_eq!(r.json()["errors"][0]["code"], "missing_field");
    assert_eq!(r.json()["errors"][0]["field"], "login");

    let r = gh.raw("POST", "/admin/organizations", b"{\"login\": \"broken\",");
    assert_github_error(&r, 400);
    assert_eq!(r.json()["message"], "Problems parsing JSON");

    let big = json!({"login": "big", "admin": "alice", "profile_name": "x".repeat(5000)});
    let r = gh.post("/admin/organizations", big);
    assert_github_error(&r, 413);

    let r = Client::new(format!("{}/api/v3", proxy.url), Some("wrong-token")).get("/orgs/acme");
    assert_github_error(&r, 401);

    assert_eq!(
        snapshot(&upstream),
        before,
        "errors must leave the upstream unchanged"
    );
}

#[test]
fn gitea_client_errors_over_github_upstream() {
    let upstream = Instance::reference();
    let proxy = Instance::proxy(
        &format!("{}/api/v3", upstream.url),
        "github",
        &[("FORGEBRIDGE__SERVER__BODY_LIMIT_BYTES", "2048")],
    );
    let gitea = Client::new(format!("{}/api/v1", proxy.url), Some(ADMIN_TOKEN));
    let before = snapshot(&upstream);

    let r = gitea.get("/orgs/no-such-org");
    assert_gitea_error(&r, 404);

    let r = gitea.post("/orgs", json!({"username": "acme"}));
    assert_gitea_error(&r, 422);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap_or_default()
            .contains("acme"),
        "{}",
        r.text
    );

    let r = gitea.post("/orgs/acme/rename", json!({"new_name": "hidden"}));
    assert_gitea_error(&r, 422);

    let r = gitea.post("/orgs", json!({"full_name": "No name"}));
    assert_gitea_error(&r, 422);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap_or_default()
            .contains("username"),
        "{}",
        r.text
    );

    let r = gitea.raw("POST", "/orgs", b"{not json");
    assert_gitea_error(&r, 422);

    let r = gitea.post(
        "/orgs",
        json!({"username": "big", "description": "x".repeat(5000)}),
    );
    assert_gitea_error(&r, 413);

    let r = gitea.patch("/orgs/acme", json!({"visibility": "sideways"}));
    assert_gitea_error(&r, 422);

    assert_eq!(
        snapshot(&upstream),
        before,
        "errors must leave the upstream unchanged"
    );
}

#[test]
fn upstream_down_is_502_in_each_dialect() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let to_gitea = Instance::proxy(&closed, "gitea", &[]);
    let r = Client::new(format!("{}/api/v3", to_gitea.url), Some(ADMIN_TOKEN)).get("/orgs/acme");
    assert_github_error(&r, 502);
    assert!(
        !r.text.contains(&closed),
        "the upstream's address must not leak: {}",
        r.text
    );

    let to_github = Instance::proxy(&closed, "github", &[]);
    let r = Client::new(format!("{}/api/v1", to_github.url), Some(ADMIN_TOKEN))
        .post("/orgs", json!({"username": "x"}));
    assert_gitea_error(&r, 502);
}

/// Answers every request with a JSON body of `size` bytes, sent chunked (no length declared)
/// or with its Content-Length.
fn oversized_upstream(size: usize, chunked: bool) -> String {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut head = [0u8; 4096];
                let _ = stream.read(&mut head);
                let framing = if chunked {
                    "Transfer-Encoding: chunked".to_string()
                } else {
                    format!("Content-Length: {size}")
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
                );
                let chunk = vec![b' '; 1 << 20];
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk.len());
                    let sent = if chunked {
                        write!(stream, "{n:x}\r\n")
                            .and_then(|()| stream.write_all(&chunk[..n]))
                            .and_then(|()| stream.write_all(b"\r\n"))
                    } else {
                        stream.write_all(&chunk[..n])
                    };
                    if sent.is_err() {
                        return; // the proxy stopped reading: what it should do
                    }
                    left -= n;
                }
                if chunked {
                    let _ = stream.write_all(b"0\r\n\r\n");
                }
            });
        }
    });
    url
}

/// An upstream answer past the 16 MiB cap is refused (502 in the client's dialect), whether
/// its length is declared or only found while reading; the proxy keeps serving.
#[test]
fn oversized_upstream_answer_is_502() {
    for chunked in [false, true] {
        let upstream = oversized_upstream(17 << 20, chunked);
        let proxy = Instance::proxy(&upstream, "gitea", &[]);
        let gh = Client::new(format!("{}/api/v3", proxy.url), Some(ADMIN_TOKEN));
        let r = gh.get("/orgs/acme");
        assert_github_error(&r, 502);
        assert!(r.text.contains("too large"), "{}", r.text);
        assert_eq!(
            Client::new(proxy.url.clone(), None).get("/healthz").status,
            200
        );
    }
}

/// Accepts connections and never answers.
fn silent_upstream() -> (String, Arc<Mutex<Vec<std::net::TcpStream>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if let Ok(mut v) = keep.lock() {
                v.push(stream);
            }
        }
    });
    (url, held)
}

#[test]
fn upstream_too_slow_is_504_in_each_dialect() {
    let (url, _held) = silent_upstream();
    let env = [("FORGEBRIDGE__UPSTREAM__TIMEOUT_SECS", "1")];
    let to_gitea = Instance::proxy(&url, "gitea", &env);
    let started = Instant::now();
    let r = Client::new(format!("{}/api/v3", to_gitea.url), Some(ADMIN_TOKEN)).get("/orgs/acme");
    assert_github_error(&r, 504);
    assert!(started.elapsed() < Duration::from_secs(20));

    let to_github = Instance::proxy(&url, "github", &env);
    let r = Client::new(format!("{}/api/v1", to_github.url), Some(ADMIN_TOKEN)).get("/orgs/acme");
    assert_gitea_error(&r, 504);
}

#[test]
fn unknown_routes_and_tokens_never_echoed() {
    let upstream = Instance::reference();
    let gh = Client::new(format!("{}/api/v3", upstream.url), Some(ADMIN_TOKEN));
    assert_github_error(&gh.get("/orgs/acme/no-such-thing"), 404);
    let r = Client::new(format!("{}/api/v1", upstream.url), None)
        .get("/orgs/acme?token=not-a-real-token");
    assert_gitea_error(&r, 401);
    assert!(!r.text.contains("not-a-real-token"));
    // Both requests are in the log by now: their access lines carry the path, not the query.
    let log = upstream.log_with_line(&["handled", "path=/api/v1/orgs/acme ", "status=401"]);
    assert!(
        log.contains("path=/api/v3/orgs/acme/no-such-thing "),
        "{log}"
    );
    assert!(
        !log.contains("not-a-real-token"),
        "tokens must not be logged"
    );
    assert!(!log.contains(ADMIN_TOKEN), "tokens must not be logged");
}
