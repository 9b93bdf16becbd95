//! Real Python client libraries against forgebridge, end to end: PyGithub (GitHub dialect),
//! gitea-api-client (Gitea dialect) and python-gitlab (GitLab dialect), each pointed at a
//! forgebridge proxy through its own base-URL setting, in front of a seeded reference forge
//! spoken to as a GitHub, a Gitea and a GitLab upstream.
//!
//! The scripts live in `tests/clients/python/`; their libraries, pinned in
//! `tests/clients/python/requirements.txt`, are installed into `tests/clients/python/.venv` by
//! `.ci/install-python-clients.sh`, which this test runs first (it returns at once when the
//! environment is current). If the install fails, these tests fail (they do not skip). Each script checks every call and expects the client
//! dialect's 501 where the upstream has no such operation; a failed check ends its section with
//! `FAIL [client] call: expected ...; received ...` and makes the script exit non-zero.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Instance, ADMIN_TOKEN};

/// How long one script may run (gitea-api-client alone takes seconds to import).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

/// The scripts, one per client dialect.
const SCRIPTS: [&str; 3] = [
    "github_pygithub.py",
    "gitea_api_client_check.py",
    "gitlab_python_gitlab.py",
];

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/python")
}

/// Installs the client libraries first (see `common::install_once`).
fn ensure_installed() {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    common::install_once(&INSTALLED, "install-python-clients.sh");
}

/// The virtual environment's interpreter, after checking that the client libraries are there.
fn venv_python() -> PathBuf {
    ensure_installed();
    let python = scripts_dir().join(".venv/bin/python");
    let hint = "run .ci/install-python-clients.sh first (it creates tests/clients/python/.venv \
                with the pinned client libraries; CI runs it before cargo test)";
    assert!(
        python.exists(),
        "{} does not exist: {hint}",
        python.display()
    );
    let check = Command::new(&python)
        .args([
            "-c",
            "import importlib.util as u, sys; \
             sys.exit(not all(u.find_spec(m) for m in ('github', 'gitlab', 'gitea_api_client')))",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {hint}", python.display()));
    assert!(
        check.status.success(),
        "{} lacks PyGithub, python-gitlab or gitea-api-client: {hint}\n{}",
        python.display(),
        String::from_utf8_lossy(&check.stderr)
    );
    python
}

struct ScriptRun {
    ok: bool,
    output: String,
}

/// Runs one script against `base` and returns whether it passed, with its output.
fn run_script(python: &Path, script: &str, base: &str, upstream: &str) -> ScriptRun {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("output.txt");
    let out = std::fs::File::create(&out_path).expect("output file");
    let err = out.try_clone().expect("output file");
    let mut child = Command::new(python)
        .arg(scripts_dir().join(script))
        .args(["--base", base, "--upstream", upstream])
        .current_dir(scripts_dir())
        .env("FB_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // The proxy is on loopback; an HTTP proxy from the environment must not be used.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {script}: {e}"));
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for script") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut output = std::fs::read_to_string(&out_path).unwrap_or_default();
    let ok = match status {
        Some(s) if s.success() => true,
        Some(s) => {
            output.push_str(&format!("\n(script exited with {s})\n"));
            false
        }
        None => {
            output.push_str(&format!(
                "\n(script killed after {}s)\n",
                SCRIPT_TIMEOUT.as_secs()
            ));
            false
        }
    };
    // A script that exits 0 must also have run its checks to the end.
    let ok = ok && output.contains("checks passed, 0 sections failed");
    ScriptRun { ok, output }
}

/// The last lines of a log, for failure messages.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs every script against a fresh reference forge behind a fresh proxy whose upstream speaks
/// `upstream`, and fails with each failing script's output.
fn clients_against(upstream: &str) {
    let python = venv_python();
    let mut failures = Vec::new();
    for script in SCRIPTS {
        // Each script starts from the seed: it creates, renames and removes things.
        let reference = Instance::reference();
        let proxy = Instance::proxy(
            &common::upstream_url(&reference.url, upstream),
            upstream,
            &[],
        );
        let run = run_script(&python, script, &proxy.url, upstream);
        println!(
            "==== {script} via proxy to a {upstream} upstream: {}\n{}",
            if run.ok { "passed" } else { "FAILED" },
            run.output
        );
        if !run.ok {
            let fails: Vec<&str> = run
                .output
                .lines()
                .filter(|l| l.starts_with("FAIL "))
                .collect();
            failures.push(format!(
                "{script} against a {upstream} upstream failed:\n{}\n\n-- full output --\n{}\n\
                 -- proxy log (last 30 lines) --\n{}",
                fails.join("\n"),
                run.output,
                tail(&proxy.log_text(), 30)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn python_clients_through_a_github_upstream() {
    clients_against("github");
}

#[test]
fn python_clients_through_a_gitea_upstream() {
    clients_against("gitea");
}

#[test]
fn python_clients_through_a_gitlab_upstream() {
    clients_against("gitlab");
}
