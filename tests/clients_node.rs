//! Real Node client libraries end to end: @octokit/rest (GitHub dialect), gitea-js (Gitea) and
//! @gitbeaker/rest (GitLab), each pointed at a forgebridge proxy with its own base-URL setting,
//! in front of a GitHub, a Gitea and a GitLab upstream (a seeded reference forge behind the
//! proxy, as in `tests/matrix.rs`). Each script in `tests/clients/node/` makes its library's
//! calls, checks the answers (and the dialect's 501 where the README matrix has one), prints a
//! line per call and exits non-zero on any failure; its output is shown when it fails.
//!
//! The libraries are pinned in `tests/clients/node/package-lock.json` and installed by
//! `.ci/install-node-clients.sh` (`npm ci`), which these tests run first. Without them they fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, Instance, ADMIN_TOKEN};

/// The longest a script may run. gitbeaker retries a 502 ten times with exponential back-off
/// (over four minutes), so a misbehaving proxy must not hang the suite.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// The seeded users of `common::seed()` and their tokens.
const USERS: [(&str, &str); 4] = [
    ("alice", "alice-token"),
    ("bob", "bob-token"),
    ("carol", "carol-token"),
    ("dave", "dave-token"),
];

/// The packages the scripts import, as installed under `node_modules`.
const PACKAGES: [&str; 3] = ["@octokit/rest", "gitea-js", "@gitbeaker/rest"];

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/node")
}

/// Installs the client libraries first (see `common::install_once`).
fn install_node_clients() {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    common::install_once(&INSTALLED, "install-node-clients.sh");
}

/// Fails (never skips) when Node or the pinned libraries are missing.
fn require_node_clients() {
    install_node_clients();
    let dir = node_dir();
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            !dir.join("node_modules")
                .join(p)
                .join("package.json")
                .is_file()
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the Node client libraries are not installed in {} (missing: {}): run .ci/install-node-clients.sh",
        dir.join("node_modules").display(),
        missing.join(", ")
    );
    let version = Command::new("node")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `node` ({e}): install Node 20 or later, then run .ci/install-node-clients.sh"));
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 20,
        "the Node client libraries need Node 20 or later, `node --version` says {version:?}"
    );
}

/// `alice=5,bob=6,…`: the users' ids on the upstream, which GitLab clients address them by.
fn user_ids(reference: &Instance) -> String {
    let gitlab = Client::new(format!("{}/api/v4", reference.url), Some(ADMIN_TOKEN));
    USERS
        .iter()
        .map(|(login, _)| {
            let r = gitlab.get(&format!("/users?username={login}"));
            let id = r.json()[0]["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("no id for {login}: {}", r.text));
            format!("{login}={id}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs `script` against a fresh reference forge behind a fresh proxy to a `dialect` upstream
/// and asserts that it succeeds.
fn run_client(script: &str, dialect: &str) {
    require_node_clients();
    let reference = Instance::reference();
    let proxy = Instance::proxy(&common::upstream_url(&reference.url, dialect), dialect, &[]);
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out_path = out_dir.path().join("output.txt");
    let out = std::fs::File::create(&out_path).expect("output file");
    let err = out.try_clone().expect("output file");

    let mut cmd = Command::new("node");
    cmd.arg(script)
        .arg(&proxy.url)
        .arg(dialect)
        .current_dir(node_dir())
        .env("FB_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("FB_USER_IDS", user_ids(&reference))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    for (login, token) in USERS {
        cmd.env(format!("FB_{}_TOKEN", login.to_uppercase()), token);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `node {script}`: {e}"));
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    println!("node {script} {} {dialect}\n{output}", proxy.url);
    let verdict = match status {
        Some(s) if s.success() => return,
        Some(s) => format!("exited with {s}"),
        None => format!("did not finish within {SCRIPT_TIMEOUT:?} and was killed"),
    };
    panic!(
        "node {script} against a proxy to a {dialect} upstream {verdict}.\n\
         --- script output ---\n{output}\n\
         --- proxy log (last 40 lines) ---\n{}\n\
         --- upstream reference forge log (last 20 lines) ---\n{}",
        tail(&proxy.log_text(), 40),
        tail(&reference.log_text(), 20)
    );
}

#[test]
fn octokit_over_a_github_upstream() {
    run_client("github-octokit.mjs", "github");
}

#[test]
fn octokit_over_a_gitea_upstream() {
    run_client("github-octokit.mjs", "gitea");
}

#[test]
fn octokit_over_a_gitlab_upstream() {
    run_client("github-octokit.mjs", "gitlab");
}

#[test]
fn gitea_js_over_a_github_upstream() {
    run_client("gitea-js.mjs", "github");
}

#[test]
fn gitea_js_over_a_gitea_upstream() {
    run_client("gitea-js.mjs", "gitea");
}

#[test]
fn gitea_js_over_a_gitlab_upstream() {
    run_client("gitea-js.mjs", "gitlab");
}

#[test]
fn gitbeaker_over_a_github_upstream() {
    run_client("gitlab-gitbeaker.mjs", "github");
}

#[test]
fn gitbeaker_over_a_gitea_upstream() {
    run_client("gitlab-gitbeaker.mjs", "gitea");
}

#[test]
fn gitbeaker_over_a_gitlab_upstream() {
    run_client("gitlab-gitbeaker.mjs", "gitlab");
}
