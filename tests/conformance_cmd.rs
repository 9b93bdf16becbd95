//! `forgebridge conformance` against real servers: the reference forge passes in all three
//! dialects, so does every proxy direction (an operation the upstream lacks shows as 501, not
//! as a failure), and a target whose mapping renames a field fails, naming the field.

mod common;

use std::process::Command;

use common::{Instance, ADMIN_TOKEN};

fn conformance(dialect: &str, target: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_forgebridge"))
        .args([
            "conformance",
            "--dialect",
            dialect,
            "--target",
            target,
            "--token",
            ADMIN_TOKEN,
        ])
        .output()
        .expect("run conformance");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn the_reference_forge_speaks_all_three_dialects() {
    let forge = Instance::reference();
    for dialect in ["github", "gitea", "gitlab"] {
        let (ok, out) = conformance(dialect, &forge.url);
        assert!(ok, "{dialect}: {out}");
        assert!(
            out.contains("| org.create |") && out.contains("| pass |"),
            "{out}"
        );
        assert!(
            !out.contains("not implemented"),
            "the reference forge implements everything: {out}"
        );
    }
}

#[test]
fn every_proxy_direction_conforms() {
    let forge = Instance::reference();
    for upstream in ["github", "gitea", "gitlab"] {
        let url = common::upstream_url(&forge.url, upstream);
        let proxy = Instance::proxy(&url, upstream, &[]);
        for client in ["github", "gitea", "gitlab"] {
            let (ok, out) = conformance(client, &proxy.url);
            assert!(ok, "{client} client, {upstream} upstream: {out}");
        }
    }
}

#[test]
fn a_renamed_field_fails_and_is_named() {
    let forge = Instance::reference();
    let dir = common::mappings_copy();
    let gitea = dir.path().join("gitea.toml");
    let text = std::fs::read_to_string(&gitea).expect("read");
    let broken = text.replacen(
        r#"{ key = "full_name", canonical = "display_name", default = "" }"#,
        r#"{ key = "fullname", canonical = "display_name", default = "" }"#,
        1,
    );
    assert_ne!(text, broken, "the mapping line to break was not found");
    std::fs::write(&gitea, broken).expect("write");
    let proxy = Instance::start(
        &[
            "--upstream",
            &forge.url,
            "--upstream-dialect",
            "gitea",
            "--mappings",
            dir.path().to_str().unwrap_or_default(),
        ],
        &[],
    );
    let (ok, out) = conformance("gitea", &proxy.url);
    assert!(!ok, "a broken target must fail: {out}");
    assert!(out.contains("FAIL: missing field full_name"), "{out}");
}
