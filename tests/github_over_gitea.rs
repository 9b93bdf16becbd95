//! GitHub-dialect clients against a Gitea upstream: a reference forge speaks Gitea to a second
//! forgebridge, which answers GitHub clients. Real processes, real HTTP.

mod common;

use common::{org_logins, Client, Instance, ADMIN_TOKEN};
use serde_json::{json, Value};

struct Setup {
    upstream: Instance,
    proxy: Instance,
}

fn setup() -> Setup {
    let upstream = Instance::reference();
    let proxy = Instance::proxy(&upstream.url, "gitea", &[]);
    Setup { upstream, proxy }
}

fn github(s: &Setup, token: &str) -> Client {
    Client::new(format!("{}/api/v3", s.proxy.url), Some(token))
}

fn gitea_on_upstream(s: &Setup) -> Client {
    Client::new(format!("{}/api/v1", s.upstream.url), Some(ADMIN_TOKEN))
}

const SIMPLE_KEYS: &[&str] = &[
    "login",
    "id",
    "node_id",
    "url",
    "repos_url",
    "events_url",
    "hooks_url",
    "issues_url",
    "members_url",
    "public_members_url",
    "avatar_url",
    "description",
];

fn assert_simple_org(org: &Value, proxy: &str) {
    for key in SIMPLE_KEYS {
        assert!(org.get(key).is_some(), "missing {key} in {org}");
    }
    let login = org["login"].as_str().unwrap_or_default();
    assert_eq!(org["url"], json!(format!("{proxy}/api/v3/orgs/{login}")));
    assert_eq!(
        org["members_url"],
        json!(format!("{proxy}/api/v3/orgs/{login}/members{{/member}}"))
    );
    let avatar = org["avatar_url"].as_str().unwrap_or_default();
    assert!(
        avatar.starts_with(proxy),
        "avatar {avatar} must point at the proxy"
    );
}

#[test]
fn admin_create_get_update_rename_delete() {
    let s = setup();
    let gh = github(&s, ADMIN_TOKEN);

    let created = gh.post(
        "/admin/organizations",
        json!({"login": "rockets", "admin": "alice", "profile_name": "Rockets Inc"}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let org = created.json();
    assert_simple_org(&org, &s.proxy.url);
    assert_eq!(org["login"], "rockets");
    assert_eq!(
        created.header("location"),
        Some(format!("{}/api/v3/orgs/rockets", s.proxy.url))
    );
    let id = org["id"].as_u64().expect("numeric id");

    // The upstream really holds it, with alice as owner.
    let upstream_org = gitea_on_upstream(&s).get("/orgs/rockets");
    assert_eq!(upstream_org.status, 200);
    assert_eq!(upstream_org.json()["full_name"], "Rockets Inc");
    let perms = gitea_on_upstream(&s)
        .get("/users/alice/orgs/rockets/permissions")
        .json();
    assert_eq!(perms["is_owner"], true);

    let full = gh.get("/orgs/rockets");
    assert_eq!(full.status, 200);
    let full = full.json();
    assert_simple_org(&full, &s.proxy.url);
    assert_eq!(full["name"], "Rockets Inc");
    assert_eq!(full["type"], "Organization");
    assert_eq!(full["html_url"], json!(format!("{}/rockets", s.proxy.url)));

    let alice = gh.as_user("alice-token");
    let patched = alice.patch("/orgs/rockets", json!({"description": "To the moon", "blog": "https://rockets.example", "location": "Houston"}));
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.json()["description"], "To the moon");
    assert_eq!(patched.json()["blog"], "https://rockets.example");
    let upstream_org = gitea_on_upstream(&s).get("/orgs/rockets").json();
    assert_eq!(upstream_org["website"], "https://rockets.example");
    assert_eq!(upstream_org["location"], "Houston");

    let renamed = gh.patch(
        "/admin/organizations/rockets",
        json!({"login": "spaceships"}),
    );
    assert_eq!(renamed.status, 202, "{}", renamed.text);
    let body = renamed.json();
    assert_eq!(
        body["message"],
        "Job queued to rename organization. It may take a few minutes to complete."
    );
    assert_eq!(
        body["url"],
        json!(format!("{}/api/v3/organizations/{id}", s.proxy.url))
    );
    assert_eq!(gh.get("/orgs/rockets").status, 404);
    assert_eq!(gh.get("/orgs/spaceships").json()["id"], json!(id));

    let deleted = alice.delete("/orgs/spaceships");
    assert_eq!(deleted.status, 202, "{}", deleted.text);
    assert_eq!(deleted.json(), json!({}));
    assert_eq!(gh.get("/orgs/spaceships").status, 404);
    assert!(!org_logins(&s.upstream).contains(&"spaceships".to_string()));
}

#[test]
fn list_all_orgs_with_since_cursor_yields_each_once() {
    let s = setup();
    let gh = github(&s, ADMIN_TOKEN);
    for i in 0..23 {
        let r = gh.post(
            "/admin/organizations",
            json!({"login": format!("org-{i:02}"), "admin": "admin"}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let first = gh.get("/organizations?per_page=5");
    assert_eq!(first.status, 200);
    let next = first.link("next").expect("next link");
    assert!(
        next.starts_with(&format!("{}/api/v3/organizations?", s.proxy.url)),
        "{next}"
    );
    assert!(next.contains("since="), "{next}");
    assert_eq!(
        first.link("first"),
        Some(format!("{}/api/v3/organizations{{?since}}", s.proxy.url))
    );

    let (items, pages) = gh.walk("/organizations?per_page=5", &s.proxy.url);
    let ids: Vec<u64> = items.iter().filter_map(|o| o["id"].as_u64()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "ascending ids, no repeats");
    // 23 new orgs plus the two seeded public ones and the admin-visible private one.
    assert_eq!(items.len(), 26);
    assert_eq!(pages, 6);
    for org in &items {
        assert_simple_org(org, &s.proxy.url);
    }
}

#[test]
fn caller_and_user_org_lists_paginate_with_links_on_the_proxy() {
    let s = setup();
    let gh = github(&s, ADMIN_TOKEN);
    for i in 0..4 {
        let r = gh.post(
            "/admin/organizations",
            json!({"login": format!("team-{i}"), "admin": "alice"}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let alice = gh.as_user("alice-token");
    let page1 = alice.get("/user/orgs?per_page=2");
    assert_eq!(page1.status, 200);
    assert_eq!(page1.json().as_array().map(Vec::len), Some(2));
    let last = page1.link("last").expect("last link");
    assert_eq!(
        last,
        format!("{}/api/v3/user/orgs?per_page=2&page=3", s.proxy.url)
    );
    let (items, pages) = alice.walk("/user/orgs?per_page=2", &s.proxy.url);
    assert_eq!(pages, 3);
    let mut logins: Vec<&str> = items.iter().filter_map(|o| o["login"].as_str()).collect();
    logins.sort();
    assert_eq!(
        logins,
        vec!["acme", "team-0", "team-1", "team-2", "team-3", "widgets"]
    );

    // Only public memberships show for another user.
    let bob_view = gh.as_user("bob-token").get("/users/alice/orgs");
    assert_eq!(bob_view.status, 200);
    let bob_view = bob_view.json();
    let public: Vec<&str> = bob_view
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["login"].as_str())
        .collect();
    assert_eq!(public, vec!["acme"]);
}

#[test]
fn members_public_members_and_permissions() {
    let s = setup();
    let alice = github(&s, "alice-token");

    let members = alice.get("/orgs/acme/members");
    assert_eq!(members.status, 200);
    let logins: Vec<String> = members
        .json()
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["login"].as_str().map(str::to_string))
        .collect();
    assert_eq!(logins, vec!["alice", "bob"]);
    let first = &members.json()[0];
    assert_eq!(first["type"], "User");
    assert_eq!(
        first["url"],
        json!(format!("{}/api/v3/users/alice", s.proxy.url))
    );

    assert_eq!(alice.get("/orgs/acme/members/bob").status, 204);
    assert_eq!(alice.get("/orgs/acme/members/carol").status, 404);

    let public = alice.get("/orgs/acme/public_members").json();
    assert_eq!(public.as_array().map(Vec::len), Some(1));
    assert_eq!(alice.get("/orgs/acme/public_members/alice").status, 204);
    assert_eq!(alice.get("/orgs/acme/public_members/bob").status, 404);

    let bob = alice.as_user("bob-token");
    assert_eq!(bob.put_empty("/orgs/acme/public_members/bob").status, 204);
    assert_eq!(alice.get("/orgs/acme/public_members/bob").status, 204);
    assert_eq!(bob.delete("/orgs/acme/public_members/bob").status, 204);
    assert_eq!(alice.get("/orgs/acme/public_members/bob").status, 404);

    let membership = alice.get("/orgs/acme/memberships/alice");
    assert_eq!(membership.status, 200, "{}", membership.text);
    let m = membership.json();
    assert_eq!(m["role"], "admin");
    assert_eq!(m["state"], "active");
    assert_eq!(m["organization"]["login"], "acme");
    assert_eq!(m["user"]["login"], "alice");
    assert_eq!(
        m["url"],
        json!(format!(
            "{}/api/v3/orgs/acme/memberships/alice",
            s.proxy.url
        ))
    );
    assert_eq!(
        alice.get("/orgs/acme/memberships/bob").json()["role"],
        "member"
    );
    assert_eq!(alice.get("/orgs/acme/memberships/carol").status, 404);

    assert_eq!(alice.delete("/orgs/acme/members/bob").status, 204);
    assert_eq!(alice.get("/orgs/acme/members/bob").status, 404);
    let upstream_members = gitea_on_upstream(&s).get("/orgs/acme/members").json();
    assert_eq!(upstream_members.as_array().map(Vec::len), Some(1));
}

#[test]
fn activity_feed_and_unsupported_operations() {
    let s = setup();
    let alice = github(&s, "alice-token");
    assert_eq!(
        alice
            .patch("/orgs/acme", json!({"description": "Rockets and more"}))
            .status,
        200
    );
    // The reference forge, asked in GitHub's dialect directly, shows the update as an event.
    let direct = Client::new(format!("{}/api/v3", s.upstream.url), Some("alice-token"));
    let first = &direct.get("/orgs/acme/events").json()[0];
    assert!(
        first["id"].is_string(),
        "GitHub event ids are strings: {first}"
    );
    assert_eq!(first["actor"]["login"], "alice");
    assert_eq!(first["org"]["login"], "acme");
    assert_eq!(first["type"], "OrganizationEvent");
    // Through a Gitea upstream the feed is Gitea's: repository activities only, which an
    // organization update is not. The answer is a GitHub event list all the same.
    let events = alice.get("/orgs/acme/events");
    assert_eq!(events.status, 200, "{}", events.text);
    assert!(
        events
            .json()
            .as_array()
            .is_some_and(|e| e.iter().all(|e| e["type"] != "OrganizationEvent")),
        "{}",
        events.text
    );

    // Gitea adds members through teams only: the GitHub membership PUT has no equivalent.
    let set = alice.put("/orgs/acme/memberships/carol", json!({"role": "member"}));
    assert_eq!(set.status, 501, "{}", set.text);
    let msg = set.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("member.set_role") && msg.contains("gitea"),
        "{msg}"
    );
    assert_eq!(alice.get("/orgs/acme/members/carol").status, 404);
}
