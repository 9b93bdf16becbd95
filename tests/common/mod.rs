//! Test harness: real forgebridge processes on real sockets. A reference forge instance plays
//! the upstream; a second instance proxies a client dialect to it.

#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const ADMIN_TOKEN: &str = "test-admin-token";

/// A running forgebridge process, killed when dropped.
pub struct Instance {
    child: Child,
    pub url: String,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

impl Instance {
    /// Starts `forgebridge serve` with extra arguments and environment (and the test admin
    /// token), and waits until `/healthz` answers.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Instance {
        Instance::start_with(|cmd| {
            cmd.arg("--reference-token").arg(ADMIN_TOKEN).args(args);
            for (k, v) in env {
                cmd.env(k, v);
            }
        })
    }

    /// Starts `forgebridge serve --listen <a free port>`, set up further by `configure`, and
    /// waits until `/healthz` answers. A port taken between choosing and binding it (tests run
    /// in parallel) is retried with another.
    pub fn start_with(configure: impl Fn(&mut Command)) -> Instance {
        let mut last = String::new();
        for _ in 0..5 {
            match Instance::try_start(&configure) {
                Ok(instance) => return instance,
                Err(log) if log.contains("cannot listen") => last = log,
                Err(log) => panic!("forgebridge did not start: {log}"),
            }
        }
        panic!("forgebridge found no free port: {last}");
    }

    fn try_start(configure: &impl Fn(&mut Command)) -> Result<Instance, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let log = dir.path().join("forgebridge.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_forgebridge"));
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        configure(&mut cmd);
        let child = cmd.spawn().expect("spawn forgebridge");
        let mut instance = Instance {
            child,
            url,
            log,
            _dir: dir,
        };
        instance.wait_ready()?;
        Ok(instance)
    }

    /// Waits until this process answers `/healthz`. An answer counts only once its own log says
    /// it is ready (it holds the port by then): another test's process that took the port
    /// in between answers too.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let client = reqwest::blocking::Client::new();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited early ({status}): {}", self.log_text()));
            }
            if self.log_text().contains("forgebridge ready")
                && client
                    .get(format!("{}/healthz", self.url))
                    .send()
                    .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        Err(format!("not ready after 15 s: {}", self.log_text()))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends the process SIGTERM (the signal a service manager stops it with).
    pub fn terminate(&self) {
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
    }

    /// Waits for the process to exit by itself and asserts that it exited successfully;
    /// panics, saying `what` was expected, if it is still running after 10 s.
    pub fn assert_exits_cleanly(&mut self, what: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.try_wait() {
                assert!(status.success(), "exit status {status}");
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log once a line containing every one of `parts` is in it (lines reach the file in
    /// batches, within about 100 ms); panics with the log after 5 s without one.
    pub fn log_with_line(&self, parts: &[&str]) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let text = self.log_text();
            if text.lines().any(|l| parts.iter().all(|p| l.contains(p))) {
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no log line with {parts:?} in:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The reference forge, seeded with `seed()`.
    pub fn reference() -> Instance {
        Instance::reference_with(&seed())
    }

    /// The reference forge, seeded with `data`.
    pub fn reference_with(data: &Value) -> Instance {
        let dir = tempfile::tempdir().expect("tempdir");
        let seed_path = dir.path().join("seed.json");
        let mut f = std::fs::File::create(&seed_path).expect("seed file");
        f.write_all(data.to_string().as_bytes())
            .expect("write seed");
        let inst = Instance::start(
            &["--reference-seed", seed_path.to_str().unwrap_or_default()],
            &[],
        );
        drop(dir);
        inst
    }

    /// A proxy speaking to `upstream` (a URL) in `dialect`.
    pub fn proxy(upstream: &str, dialect: &str, env: &[(&str, &str)]) -> Instance {
        Instance::start(
            &["--upstream", upstream, "--upstream-dialect", dialect],
            env,
        )
    }
}

/// Users, tokens, orgs and memberships every test starts from.
pub fn seed() -> Value {
    json!({
        "users": [
            {"login": "alice", "token": "alice-token", "display_name": "Alice"},
            {"login": "bob", "token": "bob-token"},
            {"login": "carol", "token": "carol-token"},
            {"login": "dave", "token": "dave-token"}
        ],
        "orgs": [
            {"login": "acme", "display_name": "Acme", "description": "Rockets",
             "owners": ["alice"], "members": ["bob"], "public_members": ["alice"]},
            {"login": "widgets", "owners": ["alice"], "members": ["carol"]},
            {"login": "hidden", "visibility": "private", "owners": ["carol"]}
        ]
    })
}

/// A tiny HTTP client bound to one base URL and token.
pub struct Client {
    pub base: String,
    token: Option<String>,
    http: reqwest::blocking::Client,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} (status {})", self.text, self.status))
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    /// The URL of a Link relation.
    pub fn link(&self, rel: &str) -> Option<String> {
        let header = self.header("link")?;
        header.split(',').find_map(|part| {
            let (url, attrs) = part.split_once(';')?;
            attrs.contains(&format!("rel=\"{rel}\"")).then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
        })
    }
}

impl Client {
    pub fn new(base: impl Into<String>, token: Option<&str>) -> Client {
        Client {
            base: base.into(),
            token: token.map(str::to_string),
            http: reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        }
    }

    pub fn as_user(&self, token: &str) -> Client {
        Client::new(self.base.clone(), Some(token))
    }

    fn send(&self, method: reqwest::Method, path: &str, body: Option<Vec<u8>>) -> Reply {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        };
        let mut req = self.http.request(method, url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("token {t}"));
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        let resp = req.send().expect("request failed");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().unwrap_or_default();
        Reply {
            status,
            headers,
            text,
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, path, None)
    }
    pub fn delete(&self, path: &str) -> Reply {
        self.send(reqwest::Method::DELETE, path, None)
    }
    pub fn put_empty(&self, path: &str) -> Reply {
        self.send(reqwest::Method::PUT, path, None)
    }
    pub fn post(&self, path: &str, body: Value) -> Reply {
        self.send(
            reqwest::Method::POST,
            path,
            Some(body.to_string().into_bytes()),
        )
    }
    pub fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(
            reqwest::Method::PATCH,
            path,
            Some(body.to_string().into_bytes()),
        )
    }
    pub fn put(&self, path: &str, body: Value) -> Reply {
        self.send(
            reqwest::Method::PUT,
            path,
            Some(body.to_string().into_bytes()),
        )
    }
    pub fn raw(&self, method: &str, path: &str, body: &[u8]) -> Reply {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        self.send(m, path, Some(body.to_vec()))
    }

    /// Follows `rel="next"` from `path` and returns every item, asserting each link stays on
    /// `origin`.
    pub fn walk(&self, path: &str, origin: &str) -> (Vec<Value>, usize) {
        let mut items = Vec::new();
        let mut next = Some(path.to_string());
        let mut pages = 0;
        while let Some(p) = next.take() {
            let r = self.get(&p);
            assert_eq!(r.status, 200, "GET {p}: {}", r.text);
            pages += 1;
            assert!(pages < 1000, "pagination does not end");
            items.extend(r.json().as_array().cloned().unwrap_or_default());
            if let Some(n) = r.link("next") {
                assert!(n.starts_with(origin), "Link {n} does not point at {origin}");
                next = Some(n);
            }
        }
        (items, pages)
    }
}

/// Every org login the reference forge holds, seen by its admin in Gitea dialect.
pub fn org_logins(reference: &Instance) -> Vec<String> {
    let admin = Client::new(format!("{}/api/v1", reference.url), Some(ADMIN_TOKEN));
    let (items, _) = admin.walk("/orgs?limit=50", &reference.url);
    let mut names: Vec<String> = items
        .iter()
        .filter_map(|o| o["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// A canonical snapshot of the reference forge's orgs and memberships, for "nothing changed"
/// checks after an error.
pub fn snapshot(reference: &Instance) -> Value {
    let admin = Client::new(format!("{}/api/v1", reference.url), Some(ADMIN_TOKEN));
    let mut orgs = Vec::new();
    for name in org_logins(reference) {
        let org = admin.get(&format!("/orgs/{name}")).json();
        let members = admin.get(&format!("/orgs/{name}/members?limit=50")).json();
        orgs.push(json!({"org": org, "members": members}));
    }
    Value::Array(orgs)
}

/// Runs a `.ci/install-*.sh` script (idempotent, quick when already done) once per test
/// process, so that `cargo test` alone installs the real client libraries on a fresh machine.
pub fn install_once(cell: &'static std::sync::OnceLock<Result<(), String>>, script: &str) {
    let result = cell.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".ci")
            .join(script);
        match Command::new("bash").arg(&path).output() {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(format!(
                "{} failed:\n{}{}",
                path.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
            Err(e) => Err(format!("cannot run {}: {e}", path.display())),
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A temporary copy of the shipped mapping files, for tests that break one on purpose.
pub fn mappings_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["github.toml", "gitea.toml", "gitlab.toml"] {
        let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("mappings")
            .join(name);
        std::fs::copy(from, dir.path().join(name)).expect("copy mapping");
    }
    dir
}

/// The API base path of a dialect.
pub fn api_base(dialect: &str) -> &'static str {
    match dialect {
        "github" => "/api/v3",
        "gitea" => "/api/v1",
        _ => "/api/v4",
    }
}

/// The upstream URL a proxy is given for a forge at `origin` spoken to in `dialect`: GitHub and
/// GitLab with their API path, Gitea as a bare origin (forgebridge adds its /api/v1 itself).
pub fn upstream_url(origin: &str, dialect: &str) -> String {
    match dialect {
        "gitea" => origin.to_string(),
        other => format!("{origin}{}", api_base(other)),
    }
}
