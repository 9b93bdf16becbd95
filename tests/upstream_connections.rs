//! The proxy's upstream connections as an upstream sees them: one kept-alive connection serves
//! request after request, and a connection the upstream closed while idle is never used again
//! (the next request goes on a new one and is answered).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Client, Instance, ADMIN_TOKEN};
use serde_json::json;

/// A Gitea upstream answering `GET /api/v1/orgs/{org}`; it counts the connections it accepts
/// and serves `per_connection` requests on each before closing it without warning.
fn gitea_upstream(per_connection: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || serve(stream, per_connection));
        }
    });
    (url, accepted)
}

fn serve(mut stream: TcpStream, requests: usize) {
    let mut pending = Vec::new();
    for _ in 0..requests {
        let mut buf = [0u8; 4096];
        while !pending.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
        }
        let end = pending
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |at| at + 4);
        pending.drain(..end);
        let body = json!({"id": 7, "name": "acme", "username": "acme", "full_name": "Acme Corp", "visibility": "public"})
            .to_string();
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
    // Closed without a `Connection: close`: the proxy learns it only from the socket.
}

fn proxy(upstream: &str) -> Instance {
    // One serving thread, so that every request uses the same pool.
    Instance::proxy(upstream, "gitea", &[("FORGEBRIDGE__SERVER__WORKERS", "1")])
}

/// GitHub's `GET /orgs/acme` through the proxy, answered with the upstream's org.
fn get_acme(proxy: &Instance) {
    let r = Client::new(format!("{}/api/v3", proxy.url), Some(ADMIN_TOKEN)).get("/orgs/acme");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["login"], "acme");
    assert_eq!(r.json()["name"], "Acme Corp");
}

#[test]
fn a_kept_alive_connection_serves_request_after_request() {
    let (url, accepted) = gitea_upstream(usize::MAX);
    let proxy = proxy(&url);
    for _ in 0..5 {
        get_acme(&proxy);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[test]
fn a_connection_the_upstream_closed_is_not_used_again() {
    let (url, accepted) = gitea_upstream(1);
    let proxy = proxy(&url);
    for _ in 0..5 {
        get_acme(&proxy);
        // Time for the close to reach the proxy, as between two requests of a quiet client.
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 5);
}
