//! Gitea-dialect clients against a GitHub upstream: a reference forge speaks GitHub (Enterprise)
//! to a second forgebridge, which answers Gitea clients. Real processes, real HTTP.

mod common;

use common::{org_logins, snapshot, Client, Instance, ADMIN_TOKEN};
use serde_json::{json, Value};

struct Setup {
    upstream: Instance,
    proxy: Instance,
}

fn setup() -> Setup {
    let upstream = Instance::reference();
    let proxy = Instance::proxy(&format!("{}/api/v3", upstream.url), "github", &[]);
    Setup { upstream, proxy }
}

fn gitea(s: &Setup, token: &str) -> Client {
    Client::new(format!("{}/api/v1", s.proxy.url), Some(token))
}

fn github_on_upstream(s: &Setup) -> Client {
    Client::new(format!("{}/api/v3", s.upstream.url), Some(ADMIN_TOKEN))
}

const ORG_KEYS: &[&str] = &[
    "id",
    "name",
    "full_name",
    "email",
    "avatar_url",
    "description",
    "website",
    "location",
    "visibility",
    "repo_admin_change_team_access",
    "username",
];

fn assert_gitea_org(org: &Value, proxy: &str) {
    for key in ORG_KEYS {
        assert!(org.get(key).is_some(), "missing {key} in {org}");
    }
    assert_eq!(org["name"], org["username"]);
    let avatar = org["avatar_url"].as_str().unwrap_or_default();
    assert!(
        avatar.starts_with(proxy),
        "avatar {avatar} must point at the proxy"
    );
}

#[test]
fn create_runs_the_declared_plan_and_every_field_lands() {
    let s = setup();
    // GitHub creates organizations through the site-admin API only: the caller is the admin.
    let admin = gitea(&s, ADMIN_TOKEN);
    let created = admin.post(
        "/orgs",
        json!({"username": "bakery", "full_name": "The Bakery", "description": "Bread", "website": "https://bakery.example", "location": "Lyon", "email": "hi@bakery.example"}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let org = created.json();
    assert_gitea_org(&org, &s.proxy.url);
    assert_eq!(org["name"], "bakery");
    assert_eq!(org["full_name"], "The Bakery");
    assert_eq!(org["website"], "https://bakery.example");

    // On the GitHub upstream: the caller administers it and the profile is complete.
    let upstream = github_on_upstream(&s).get("/orgs/bakery").json();
    assert_eq!(upstream["name"], "The Bakery");
    assert_eq!(upstream["description"], "Bread");
    assert_eq!(upstream["blog"], "https://bakery.example");
    assert_eq!(upstream["location"], "Lyon");
    assert_eq!(upstream["email"], "hi@bakery.example");
    let membership = github_on_upstream(&s)
        .get("/orgs/bakery/memberships/admin")
        .json();
    assert_eq!(membership["role"], "admin");
    // A user who is not a site admin cannot create through GitHub's API: refused (GitHub's
    // site-admin 404 is a 403 to a Gitea client), and nothing is made.
    let refused = gitea(&s, "alice-token").post("/orgs", json!({"username": "alices"}));
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(!org_logins(&s.upstream).contains(&"alices".to_string()));
}

#[test]
fn admin_create_for_a_user() {
    let s = setup();
    let admin = gitea(&s, ADMIN_TOKEN);
    let created = admin.post(
        "/admin/users/bob/orgs",
        json!({"username": "bobs-shop", "full_name": "Bob's"}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let perms = admin.get("/users/bob/orgs/bobs-shop/permissions");
    assert_eq!(perms.status, 200, "{}", perms.text);
    assert_eq!(perms.json()["is_owner"], true);
    assert_eq!(perms.json()["can_read"], true);
    // A non-admin may not create for someone else, and nothing is created.
    let refused =
        gitea(&s, "carol-token").post("/admin/users/carol/orgs", json!({"username": "carols"}));
    assert!(
        refused.status == 403 || refused.status == 404,
        "{} {}",
        refused.status,
        refused.text
    );
    assert!(!org_logins(&s.upstream).contains(&"carols".to_string()));
}

#[test]
fn a_failed_second_step_is_rolled_back() {
    let s = setup();
    let before = snapshot(&s.upstream);
    // Gitea allows 255 characters of description, GitHub 160: the admin create succeeds
    // upstream, the follow-up update is refused, and the create must be undone.
    let long = "x".repeat(200);
    let r = gitea(&s, ADMIN_TOKEN).post(
        "/orgs",
        json!({"username": "halfdone", "description": long}),
    );
    assert_eq!(r.status, 422, "{}", r.text);
    let msg = r.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(
        msg.contains("deleted again"),
        "the answer says what happened: {msg}"
    );
    assert_eq!(snapshot(&s.upstream), before, "nothing may be left behind");
}

#[test]
fn fields_github_cannot_store_are_refused_before_any_write() {
    let s = setup();
    let before = snapshot(&s.upstream);
    let r = gitea(&s, ADMIN_TOKEN).post(
        "/orgs",
        json!({"username": "secret", "visibility": "private"}),
    );
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.json()["message"]
        .as_str()
        .unwrap_or_default()
        .contains("visibility"));
    assert_eq!(snapshot(&s.upstream), before);
    // The default value is no loss and passes.
    let ok =
        gitea(&s, ADMIN_TOKEN).post("/orgs", json!({"username": "open", "visibility": "public"}));
    assert_eq!(ok.status, 201, "{}", ok.text);
}

#[test]
fn edit_rename_and_delete() {
    let s = setup();
    let alice = gitea(&s, "alice-token");
    let edited = alice.patch(
        "/orgs/acme",
        json!({"full_name": "ACME Corp", "location": "Mars"}),
    );
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(edited.json()["full_name"], "ACME Corp");
    assert_eq!(
        github_on_upstream(&s).get("/orgs/acme").json()["location"],
        "Mars"
    );

    // GitHub renames organizations only through its site-admin API, which answers 404 to an
    // owner who is no site administrator (indistinguishable from a missing org): refused, and
    // nothing changes.
    let refused = alice.post("/orgs/acme/rename", json!({"new_name": "acme-corp"}));
    assert_eq!(refused.status, 404, "{}", refused.text);
    assert_eq!(alice.get("/orgs/acme").status, 200);
    let renamed =
        gitea(&s, ADMIN_TOKEN).post("/orgs/acme/rename", json!({"new_name": "acme-corp"}));
    assert_eq!(renamed.status, 204, "{}", renamed.text);
    assert!(renamed.text.is_empty());
    assert_eq!(alice.get("/orgs/acme").status, 404);
    let org = alice.get("/orgs/acme-corp");
    assert_eq!(org.status, 200);
    assert_gitea_org(&org.json(), &s.proxy.url);

    let deleted = alice.delete("/orgs/acme-corp");
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(alice.get("/orgs/acme-corp").status, 404);
    assert!(!org_logins(&s.upstream).contains(&"acme-corp".to_string()));
}

#[test]
fn page_and_limit_over_a_since_cursor_with_totals() {
    let s = setup();
    let admin = gitea(&s, ADMIN_TOKEN);
    let gh = github_on_upstream(&s);
    for i in 0..12 {
        let r = gh.post(
            "/admin/organizations",
            json!({"login": format!("shop-{i:02}"), "admin": "admin"}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let page2 = admin.get("/orgs?page=2&limit=5");
    assert_eq!(page2.status, 200, "{}", page2.text);
    assert_eq!(page2.header("x-total-count").as_deref(), Some("15"));
    assert_eq!(page2.json().as_array().map(Vec::len), Some(5));
    let last = page2.link("last").expect("last link");
    assert_eq!(last, format!("{}/api/v1/orgs?limit=5&page=3", s.proxy.url));
    assert!(page2.link("prev").is_some() && page2.link("first").is_some());

    let (items, pages) = admin.walk("/orgs?limit=5", &s.proxy.url);
    assert_eq!(pages, 3);
    let mut names: Vec<&str> = items.iter().filter_map(|o| o["name"].as_str()).collect();
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "each org exactly once");
    assert_eq!(count, 15);
}

#[test]
fn caller_orgs_members_public_members_permissions_feed() {
    let s = setup();
    let alice = gitea(&s, "alice-token");
    let mine = alice.get("/user/orgs");
    assert_eq!(mine.status, 200, "{}", mine.text);
    assert_eq!(mine.header("x-total-count").as_deref(), Some("2"));
    assert_eq!(mine.json()[0]["name"], "acme");
    assert_eq!(mine.json()[1]["name"], "widgets");
    assert_eq!(alice.get("/users/alice/orgs").json()[0]["name"], "acme");

    let members = alice.get("/orgs/acme/members");
    assert_eq!(members.status, 200);
    assert_eq!(members.header("x-total-count").as_deref(), Some("2"));
    let m = &members.json()[0];
    assert_eq!(m["login"], "alice");
    assert_eq!(m["username"], "alice");
    assert_eq!(alice.get("/orgs/acme/members/bob").status, 204);
    assert_eq!(alice.get("/orgs/acme/members/carol").status, 404);

    assert_eq!(
        alice
            .get("/orgs/acme/public_members")
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let bob = alice.as_user("bob-token");
    assert_eq!(bob.put_empty("/orgs/acme/public_members/bob").status, 204);
    assert_eq!(alice.get("/orgs/acme/public_members/bob").status, 204);
    assert_eq!(bob.delete("/orgs/acme/public_members/bob").status, 204);
    assert_eq!(alice.get("/orgs/acme/public_members/bob").status, 404);

    let perms = alice.get("/users/bob/orgs/acme/permissions");
    assert_eq!(perms.status, 200, "{}", perms.text);
    assert_eq!(
        perms.json(),
        json!({"is_owner": false, "is_admin": false, "can_write": false, "can_read": true, "can_create_repository": true})
    );

    assert_eq!(alice.delete("/orgs/acme/members/bob").status, 204);
    assert_eq!(alice.get("/orgs/acme/members/bob").status, 404);

    // The upstream records the removal as a GitHub MemberEvent...
    let events = github_on_upstream(&s).get("/orgs/acme/events").json();
    assert_eq!(events[0]["type"], "MemberEvent", "{events}");
    // ...which Gitea's feed, made of repository activities, has no op_type for: a Gitea client
    // gets a feed without it, whose total agrees.
    let feed = alice.get("/orgs/acme/activities/feeds");
    assert_eq!(feed.status, 200, "{}", feed.text);
    let items = feed.json();
    let items = items.as_array().cloned().unwrap_or_default();
    assert!(
        items.iter().all(|a| a["op_type"] != "member_added"),
        "{}",
        feed.text
    );
    assert_eq!(feed.header("x-total-count"), Some(items.len().to_string()));
}
