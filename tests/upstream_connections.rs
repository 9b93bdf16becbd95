//! The proxy's upstream connections as an upstream sees them: one kept-alive connection serves
//! request after request, a connection the upstream closed while idle is never used again (the
//! next request goes on a new one and is answered), the upstream pages that make one larger
//! client page are asked for at once, and an https upstream is reached over TLS when its
//! certificate is trusted, and refused when it is not.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
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

fn serve(mut stream: impl Read + Write, requests: usize) {
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

/// A Gitea upstream listing 80 organizations in pages of at most `cap` (the proxy's Gitea
/// mapping declares 50). The answers to pages 1 and 2 wait (up to 3 s) until a second request
/// is in flight, and the most requests seen in flight at once are counted: a proxy that asked
/// for its pages one after the other would show 1.
fn gitea_org_pages(cap: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let most = Arc::new(AtomicUsize::new(0));
    let seen = most.clone();
    let in_flight = Arc::new((Mutex::new(0usize), Condvar::new()));
    let origin = url.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let (seen, in_flight, origin) = (seen.clone(), in_flight.clone(), origin.clone());
            std::thread::spawn(move || loop {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let page: usize = head
                    .split(['?', '&', ' '])
                    .find_map(|p| p.strip_prefix("page="))
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(1);
                {
                    let (count, changed) = &*in_flight;
                    let mut n = count.lock().expect("lock");
                    *n += 1;
                    seen.fetch_max(*n, Ordering::SeqCst);
                    changed.notify_all();
                    let _ = changed
                        .wait_timeout_while(n, Duration::from_secs(3), |n| page <= 2 && *n < 2)
                        .expect("lock");
                }
                let first = (page - 1) * cap;
                let orgs: Vec<_> = (first..80.min(first + cap))
                    .map(|i| json!({"id": i + 1, "name": format!("org-{i:02}"), "username": format!("org-{i:02}")}))
                    .collect();
                let body = serde_json::Value::from(orgs).to_string();
                let link = if first + cap < 80 {
                    format!(
                        "Link: <{origin}/api/v1/orgs?page={}&limit=50>; rel=\"next\"\r\n",
                        page + 1
                    )
                } else {
                    String::new()
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Total-Count: 80\r\n{link}Content-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let written = stream.write_all(answer.as_bytes());
                *in_flight.0.lock().expect("lock") -= 1;
                if written.is_err() {
                    return;
                }
            });
        }
    });
    (url, most)
}

/// GitLab's `GET /groups?per_page=100` through the proxy to a Gitea upstream whose pages hold
/// at most `cap`: the group paths in order, and the most upstream requests seen in flight.
fn hundred_groups(cap: usize) -> (Vec<String>, usize) {
    let (url, most) = gitea_org_pages(cap);
    let proxy = proxy(&url);
    // GitLab's largest page is 100, Gitea's 50: one client page is two upstream pages.
    let r =
        Client::new(format!("{}/api/v4", proxy.url), Some(ADMIN_TOKEN)).get("/groups?per_page=100");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-total").as_deref(), Some("80"));
    let paths = r
        .json()
        .as_array()
        .expect("a list")
        .iter()
        .map(|g| g["path"].as_str().unwrap_or_default().to_string())
        .collect();
    (paths, most.load(Ordering::SeqCst))
}

fn eighty_orgs() -> Vec<String> {
    (0..80).map(|i| format!("org-{i:02}")).collect()
}

#[test]
fn the_upstream_pages_of_one_larger_client_page_are_asked_for_at_once() {
    let (paths, most) = hundred_groups(50);
    assert_eq!(paths, eighty_orgs(), "both upstream pages, in order");
    assert_eq!(most, 2, "both pages in flight at once");
}

#[test]
fn upstream_pages_shorter_than_declared_are_read_on_until_the_client_page_is_full() {
    // Pages of 30, not 50: the two pages read at once hold 60; the third is read after them.
    let (paths, most) = hundred_groups(30);
    assert_eq!(paths, eighty_orgs(), "three upstream pages, in order");
    assert_eq!(most, 2);
}

/// A Gitea upstream over TLS on `localhost`, its certificate issued by a CA made for the test;
/// returns its URL, the CA's PEM file and the connection count.
fn tls_upstream(dir: &std::path::Path) -> (String, std::path::PathBuf, Arc<AtomicUsize>) {
    let ca_key = rcgen::KeyPair::generate().expect("a CA key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).expect("a CA certificate");
    let key = rcgen::KeyPair::generate().expect("a server key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("server params")
        .signed_by(&key, &ca, &ca_key)
        .expect("a server certificate");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write the CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("a server config");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().expect("addr").port()
    );
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            let config = config.clone();
            std::thread::spawn(move || {
                if let Ok(tls) = rustls::ServerConnection::new(config) {
                    serve(rustls::StreamOwned::new(tls, stream), usize::MAX);
                }
            });
        }
    });
    (url, ca_file, accepted)
}

#[test]
fn an_https_upstream_is_reached_over_tls_only_when_trusted() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (url, ca_file, accepted) = tls_upstream(dir.path());
    let ca_file = ca_file.to_string_lossy().to_string();
    let trusting = Instance::proxy(
        &url,
        "gitea",
        &[
            ("FORGEBRIDGE__SERVER__WORKERS", "1"),
            ("SSL_CERT_FILE", ca_file.as_str()),
        ],
    );
    for _ in 0..3 {
        get_acme(&trusting);
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one TLS connection, kept alive"
    );

    // The same upstream, its CA not trusted: GitHub's 502, and no answer from it passed on.
    let doubting = proxy(&url);
    let r = Client::new(format!("{}/api/v3", doubting.url), Some(ADMIN_TOKEN)).get("/orgs/acme");
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(r.json()["message"].as_str().is_some(), "{}", r.text);
    assert!(!r.text.contains("Acme Corp"), "{}", r.text);
}
