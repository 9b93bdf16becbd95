//! `forgebridge check`: mapping files are validated before serving, and every problem names
//! the file, the key and the reason.

use std::path::Path;
use std::process::Command;

mod common;

use common::mappings_copy;

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{from:?} not in {file}");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
}

fn check(dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_forgebridge"))
        .args(["check", "--mappings"])
        .arg(dir)
        .output()
        .expect("run check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn shipped_mappings_pass() {
    let dir = mappings_copy();
    let (ok, out) = check(dir.path());
    assert!(ok, "{out}");
    for dialect in ["github", "gitea", "gitlab"] {
        assert!(out.contains(&format!("ok: {dialect}")), "{out}");
    }
}

#[test]
fn broken_jsonpath_is_named_with_file_and_key() {
    let dir = mappings_copy();
    edit(
        dir.path(),
        "github.toml",
        r#"{ key = "is_admin", canonical = "is_admin", read = "$.role""#,
        r#"{ key = "is_admin", canonical = "is_admin", read = "$.role[?(""#,
    );
    let (ok, out) = check(dir.path());
    assert!(!ok, "check must fail: {out}");
    assert!(out.contains("github.toml"), "{out}");
    assert!(
        out.contains("shapes.membership.fields[") && out.contains("(is_admin)"),
        "{out}"
    );
    assert!(out.contains("JSONPath"), "{out}");
}

#[test]
fn unknown_canonical_field_is_named_with_file_and_key() {
    let dir = mappings_copy();
    edit(
        dir.path(),
        "gitea.toml",
        r#"canonical = "display_name", default = """#,
        r#"canonical = "display_nam", default = """#,
    );
    let (ok, out) = check(dir.path());
    assert!(!ok, "check must fail: {out}");
    assert!(out.contains("gitea.toml"), "{out}");
    assert!(out.contains("shapes.org.fields[2] (full_name)"), "{out}");
    assert!(
        out.contains("unknown canonical field \"display_nam\""),
        "{out}"
    );
}

#[test]
fn colliding_routes_and_unknown_operations_are_refused() {
    let dir = mappings_copy();
    edit(
        dir.path(),
        "gitea.toml",
        r#"path = "/admin/orgs""#,
        r#"path = "/orgs""#,
    );
    edit(
        dir.path(),
        "github.toml",
        r#"op = "org.get""#,
        r#"op = "org.fetch""#,
    );
    let (ok, out) = check(dir.path());
    assert!(!ok, "check must fail: {out}");
    assert!(
        out.contains("gitea.toml") && out.contains("collides"),
        "{out}"
    );
    assert!(
        out.contains("github.toml") && out.contains("unknown canonical operation \"org.fetch\""),
        "{out}"
    );
}

#[test]
fn serve_refuses_to_start_on_broken_mappings() {
    let dir = mappings_copy();
    edit(
        dir.path(),
        "gitea.toml",
        r#"entity = "organization""#,
        r#"entity = "organisation""#,
    );
    let out = Command::new(env!("CARGO_BIN_EXE_forgebridge"))
        .args(["serve", "--listen", "127.0.0.1:0", "--mappings"])
        .arg(dir.path())
        .output()
        .expect("run serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("gitea.toml") && err.contains("unknown canonical entity"),
        "{err}"
    );
}

#[test]
fn readme_operation_table_is_generated_from_the_mappings() {
    let out = Command::new(env!("CARGO_BIN_EXE_forgebridge"))
        .arg("routes")
        .output()
        .expect("run routes");
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(table.contains("| `org.create` |"), "{table}");
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let section = readme
        .split("<!-- routes:start -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- routes:end -->").next())
        .map(str::trim)
        .unwrap_or_default();
    assert_eq!(
        section, table,
        "README's operation table must be `forgebridge routes` output"
    );
}

#[test]
fn serving_threads_are_validated_with_the_settings() {
    let check_with = |workers: &str| {
        Command::new(env!("CARGO_BIN_EXE_forgebridge"))
            .arg("check")
            .env("FORGEBRIDGE__SERVER__WORKERS", workers)
            .output()
            .expect("run check")
    };
    assert!(check_with("4").status.success());
    let out = check_with("100000");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("server.workers") && text.contains("100000"),
        "{text}"
    );
}
