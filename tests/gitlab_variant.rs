//! The setting that chooses GitLab's Organizations API over top-level groups for a GitLab
//! upstream: creates go to `POST /organizations` (and the named admin becomes owner), while
//! everything else still works through groups.

mod common;

use common::{Client, Instance, ADMIN_TOKEN};
use serde_json::json;

fn create_through(variant: Option<&str>) -> (Instance, Instance) {
    let upstream = Instance::reference();
    let env: Vec<(&str, &str)> = variant
        .map(|v| vec![("FORGEBRIDGE__UPSTREAM__VARIANT", v)])
        .unwrap_or_default();
    let proxy = Instance::proxy(&format!("{}/api/v4", upstream.url), "gitlab", &env);
    let gh = Client::new(format!("{}/api/v3", proxy.url), Some(ADMIN_TOKEN));
    let r = gh.post(
        "/admin/organizations",
        json!({"login": "orgapi", "admin": "alice", "profile_name": "Org API"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["login"], "orgapi");
    let membership = gh.get("/orgs/orgapi/memberships/alice");
    assert_eq!(membership.json()["role"], "admin", "{}", membership.text);
    (upstream, proxy)
}

/// Whether the upstream's log shows a POST to `path`. A marker request sent afterwards is
/// waited for first: once its line is in the file, every earlier one is too.
fn upstream_saw(upstream: &Instance, path: &str) -> bool {
    Client::new(upstream.url.clone(), None).get("/log-marker");
    upstream
        .log_with_line(&["handled", "path=/log-marker "])
        .lines()
        .any(|l| l.contains("method=POST") && l.contains(&format!("path={path} ")))
}

#[test]
fn organizations_variant_creates_through_the_organizations_api() {
    let (upstream, _proxy) = create_through(Some("organizations"));
    assert!(
        upstream_saw(&upstream, "/api/v4/organizations"),
        "{}",
        upstream.log_text()
    );
    assert!(!upstream_saw(&upstream, "/api/v4/groups"));
}

#[test]
fn default_creates_top_level_groups() {
    let (upstream, _proxy) = create_through(None);
    assert!(
        upstream_saw(&upstream, "/api/v4/groups"),
        "{}",
        upstream.log_text()
    );
    assert!(!upstream_saw(&upstream, "/api/v4/organizations"));
}
