//! Reads a client makes in the upstream's own dialect are forwarded as they are
//! (`upstream.forward_same_dialect`, on by default): the client gets the upstream's status, body,
//! list headers and errors, with every URL pointed at the proxy, and a token it put in the
//! query travels in a header. Writes, and other dialects, still go through the canonical model.

mod common;

use common::{mappings_copy, Client, Instance, ADMIN_TOKEN};

const ALICE: &str = "alice-token";

/// A proxy in front of a Gitea upstream whose own Gitea mapping leaves `location` out of an
/// organization: a translated answer has no `location`, a forwarded one has the upstream's.
fn proxy(upstream: &str, mappings: &std::path::Path, env: &[(&str, &str)]) -> Instance {
    let dir = mappings.to_str().unwrap_or_default();
    let args = ["--upstream", upstream, "--upstream-dialect", "gitea"];
    Instance::start(&[&args[..], &["--mappings", dir]].concat(), env)
}

/// The shipped mapping files, less the first rule `line` of `file` (an org shape's field).
fn mappings_without(file: &str, line: &str) -> tempfile::TempDir {
    let dir = mappings_copy();
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).expect("mapping file");
    assert!(text.contains(line), "{file} has no {line}");
    std::fs::write(&path, text.replacen(line, "", 1)).expect("write mapping file");
    dir
}

fn without_org_location() -> tempfile::TempDir {
    let line = "  { key = \"location\", canonical = \"location\", default = \"\" },\n";
    mappings_without("gitea.toml", line)
}

#[test]
fn same_dialect_reads_are_the_upstreams_own_answers_pointed_at_the_proxy() {
    let upstream = Instance::reference();
    let mappings = without_org_location();
    let forwarding = proxy(&upstream.url, mappings.path(), &[]);
    let translating = proxy(
        &upstream.url,
        mappings.path(),
        &[("FORGEBRIDGE__UPSTREAM__FORWARD_SAME_DIALECT", "false")],
    );
    let direct = Client::new(format!("{}/api/v1", upstream.url), Some(ALICE));
    let via = Client::new(format!("{}/api/v1", forwarding.url), Some(ALICE));

    for path in [
        "/orgs/acme",
        "/orgs/acme/members",
        "/orgs?limit=1&page=2",
        "/user/orgs?limit=1",
        "/users/alice/orgs",
        "/orgs/acme/public_members/alice",
        "/orgs/nope",
        "/orgs/acme/members/nobody",
    ] {
        let (d, p) = (direct.get(path), via.get(path));
        assert_eq!(p.status, d.status, "GET {path}: {}", p.text);
        assert_eq!(
            p.text,
            d.text.replace(&upstream.url, &forwarding.url),
            "GET {path}"
        );
        for header in ["content-type", "x-total-count"] {
            assert_eq!(p.header(header), d.header(header), "GET {path}: {header}");
        }
        let link = d
            .header("link")
            .map(|l| l.replace(&upstream.url, &forwarding.url));
        assert_eq!(p.header("link"), link, "GET {path}: link");
        let all_headers = format!("{:?}", p.headers);
        for text in [&p.text, &all_headers] {
            assert!(!text.contains(&upstream.url), "GET {path}: {text}");
        }
    }
    let lists = via.get("/orgs?limit=1");
    assert!(lists
        .link("next")
        .is_some_and(|l| l.starts_with(&forwarding.url)));

    // Forwarded, not translated: the upstream's `location` is there, which this proxy's own
    // mapping would have left out.
    let forwarded = via.get("/orgs/acme").json();
    assert!(forwarded.get("location").is_some(), "{forwarded}");
    let translated = Client::new(format!("{}/api/v1", translating.url), Some(ALICE))
        .get("/orgs/acme")
        .json();
    assert!(translated.get("location").is_none(), "{translated}");
    assert_eq!(translated["username"], forwarded["username"]);

    // A token in the query reaches the upstream as the dialect's header; it is never logged.
    let anonymous = Client::new(format!("{}/api/v1", forwarding.url), None);
    let by_query = anonymous.get(&format!("/user/orgs?token={ALICE}"));
    assert_eq!(by_query.status, 200, "{}", by_query.text);
    assert_eq!(by_query.text, via.get("/user/orgs").text);
    assert_eq!(anonymous.get("/user/orgs").status, 401);
    let log = forwarding.log_with_line(&["path=/api/v1/user/orgs", "status=200"]);
    assert!(!log.contains(ALICE));

    // Writes still go through the canonical model: the update is checked against this
    // proxy's mapping and performed, and the forwarded read shows it.
    let update = via.patch("/orgs/acme", serde_json::json!({"description": "Fuel"}));
    assert_eq!(update.status, 200, "{}", update.text);
    assert_eq!(via.get("/orgs/acme").json()["description"], "Fuel");

    // Other dialects are translated as before.
    let github = Client::new(format!("{}/api/v3", forwarding.url), Some(ALICE)).get("/orgs/acme");
    assert_eq!(github.status, 200, "{}", github.text);
    assert_eq!(
        github.json()["url"],
        format!("{}/api/v3/orgs/acme", forwarding.url)
    );
}

/// An upstream that cannot be reached is answered alike on both paths: the dialect's error.
#[test]
fn a_forwarded_read_that_fails_is_answered_in_the_clients_dialect() {
    let closed = format!("http://127.0.0.1:{}", common::free_port());
    let mappings = mappings_copy();
    let forwarding = proxy(&closed, mappings.path(), &[]);
    let translating = proxy(
        &closed,
        mappings.path(),
        &[("FORGEBRIDGE__UPSTREAM__FORWARD_SAME_DIALECT", "false")],
    );
    let get = |inst: &Instance| {
        Client::new(format!("{}/api/v1", inst.url), Some(ALICE)).get("/orgs/acme")
    };
    let (f, t) = (get(&forwarding), get(&translating));
    assert_eq!(f.status, 502, "{}", f.text);
    assert_eq!(f.status, t.status);
    assert_eq!(
        f.json()["message"],
        t.json()["message"],
        "{} / {}",
        f.text,
        t.text
    );
}

/// A GitHub upstream cannot store avatars, so the proxy keeps them and shows them: reads are
/// forwarded until it keeps the first image, and translated from then on.
#[test]
fn a_github_upstream_is_forwarded_to_until_the_proxy_keeps_an_avatar() {
    let upstream = Instance::reference();
    let line = "  { key = \"company\", canonical = \"company\" },\n";
    let mappings = mappings_without("github.toml", line);
    let dir = mappings.path().to_str().unwrap_or_default().to_string();
    let url = common::upstream_url(&upstream.url, "github");
    let proxy = Instance::start(
        &[
            "--upstream",
            &url,
            "--upstream-dialect",
            "github",
            "--mappings",
            &dir,
        ],
        &[],
    );
    let github = Client::new(format!("{}/api/v3", proxy.url), Some(ADMIN_TOKEN));

    // Forwarded: the upstream's own `company`, which this proxy's mapping leaves out.
    let before = github.get("/orgs/acme").json();
    assert!(before.get("company").is_some(), "{before}");
    assert!(before["avatar_url"]
        .as_str()
        .is_some_and(|u| u.starts_with(&proxy.url)));

    // A Gitea client sets the avatar; the proxy keeps it.
    let gitea = Client::new(format!("{}/api/v1", proxy.url), Some(ADMIN_TOKEN));
    let image = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAAElFTkSuQmCC";
    let set = gitea.post("/orgs/acme/avatar", serde_json::json!({ "image": image }));
    assert_eq!(set.status, 204, "{}", set.text);

    // Translated from now on, so that the kept avatar is shown.
    let after = github.get("/orgs/acme").json();
    assert!(after.get("company").is_none(), "{after}");
    let kept = format!("{}/avatars/org-{}", proxy.url, after["id"]);
    assert_eq!(after["avatar_url"], kept.as_str());

    // Lists show it too (their items are read to show it); the other organizations keep the
    // upstream's avatars, pointed at the proxy.
    let list = github.get("/organizations?per_page=100").json();
    let orgs = list.as_array().cloned().unwrap_or_default();
    let acme = orgs.iter().find(|o| o["login"] == "acme");
    assert_eq!(
        acme.map(|o| &o["avatar_url"]),
        Some(&kept.as_str().into()),
        "{list}"
    );
    let others: Vec<&serde_json::Value> = orgs.iter().filter(|o| o["login"] != "acme").collect();
    assert!(!others.is_empty(), "{list}");
    for org in others {
        let url = org["avatar_url"].as_str().unwrap_or_default();
        assert!(
            url.starts_with(&proxy.url) && !url.contains("/avatars/org-"),
            "{org}"
        );
    }
}
