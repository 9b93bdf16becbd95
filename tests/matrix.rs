//! The 3×3 dialect matrix: every operation, in every direction (GitHub, Gitea, GitLab clients ×
//! GitHub, Gitea, GitLab upstreams), against the reference forge behind a second forgebridge.
//! Each call must answer with the client dialect's success status and body shape, or with that
//! dialect's 501 naming the operation. The resulting matrix must equal the one in the README.

mod common;

use common::{Client, Instance, Reply, ADMIN_TOKEN};
use serde_json::{json, Value};

const DIALECTS: [&str; 3] = ["github", "gitea", "gitlab"];

/// What a successful answer carries.
#[derive(Clone, Copy)]
enum Shape {
    Empty,
    One(&'static str),
    List(&'static str),
    /// An activity feed: a Gitea feed (as client or upstream) holds repository activities
    /// only, so the reference forge's organization events may leave it empty.
    Feed(&'static str),
}

struct Call {
    op: &'static str,
    method: &'static str,
    path: String,
    body: Option<Value>,
    token: &'static str,
    status: u16,
    shape: Shape,
}

fn call(
    op: &'static str,
    method: &'static str,
    path: impl Into<String>,
    body: Option<Value>,
    token: &'static str,
    status: u16,
    shape: Shape,
) -> Call {
    Call {
        op,
        method,
        path: path.into(),
        body,
        token,
        status,
        shape,
    }
}

const ALICE: &str = "alice-token";
const BOB: &str = "bob-token";
const ADMIN: &str = ADMIN_TOKEN;

/// The calls a client of `dialect` makes, in order, with the status and shape its forge's
/// documentation gives for success.
fn calls(dialect: &str, ids: &Ids) -> Vec<Call> {
    use Shape::*;
    match dialect {
        "github" => vec![
            call(
                "org.list",
                "GET",
                "/organizations",
                None,
                ADMIN,
                200,
                List("login"),
            ),
            call(
                "org.list_mine",
                "GET",
                "/user/orgs",
                None,
                ALICE,
                200,
                List("login"),
            ),
            call(
                "org.list_for_user",
                "GET",
                "/users/alice/orgs",
                None,
                ALICE,
                200,
                List("login"),
            ),
            call(
                "org.get",
                "GET",
                "/orgs/acme",
                None,
                ALICE,
                200,
                One("login"),
            ),
            call(
                "org.create",
                "POST",
                "/admin/organizations",
                Some(json!({"login": "newco", "admin": "alice", "profile_name": "New Co"})),
                ADMIN,
                201,
                One("login"),
            ),
            call(
                "org.update",
                "PATCH",
                "/orgs/newco",
                Some(json!({"description": "updated"})),
                ADMIN,
                200,
                One("login"),
            ),
            call(
                "org.rename",
                "PATCH",
                "/admin/organizations/newco",
                Some(json!({"login": "newco2"})),
                ADMIN,
                202,
                One("message"),
            ),
            call(
                "org.delete",
                "DELETE",
                "/orgs/newco2",
                None,
                ADMIN,
                202,
                Empty,
            ),
            call(
                "member.list",
                "GET",
                "/orgs/acme/members",
                None,
                ALICE,
                200,
                List("login"),
            ),
            call(
                "member.check",
                "GET",
                "/orgs/acme/members/bob",
                None,
                ALICE,
                204,
                Empty,
            ),
            call(
                "member.set_role",
                "PUT",
                "/orgs/acme/memberships/dave",
                Some(json!({"role": "member"})),
                ALICE,
                200,
                One("role"),
            ),
            call(
                "member.permissions",
                "GET",
                "/orgs/acme/memberships/alice",
                None,
                ALICE,
                200,
                One("role"),
            ),
            call(
                "member.remove",
                "DELETE",
                "/orgs/widgets/members/carol",
                None,
                ALICE,
                204,
                Empty,
            ),
            call(
                "public_member.list",
                "GET",
                "/orgs/acme/public_members",
                None,
                ALICE,
                200,
                List("login"),
            ),
            call(
                "public_member.check",
                "GET",
                "/orgs/acme/public_members/alice",
                None,
                ALICE,
                204,
                Empty,
            ),
            call(
                "public_member.publicize",
                "PUT",
                "/orgs/acme/public_members/bob",
                None,
                BOB,
                204,
                Empty,
            ),
            call(
                "public_member.conceal",
                "DELETE",
                "/orgs/acme/public_members/bob",
                None,
                BOB,
                204,
                Empty,
            ),
            call(
                "activity.list",
                "GET",
                "/orgs/acme/events",
                None,
                ALICE,
                200,
                Feed("type"),
            ),
            call(
                "user.current",
                "GET",
                "/user",
                None,
                ALICE,
                200,
                One("login"),
            ),
            call(
                "user.get",
                "GET",
                "/users/alice",
                None,
                ALICE,
                200,
                One("login"),
            ),
            call(
                "user.create",
                "POST",
                "/admin/users",
                Some(json!({"login": "newuser", "email": "newuser@example.com"})),
                ADMIN,
                201,
                One("login"),
            ),
        ],
        "gitea" => vec![
            call(
                "org.list",
                "GET",
                "/orgs",
                None,
                ADMIN,
                200,
                List("username"),
            ),
            call(
                "org.list_mine",
                "GET",
                "/user/orgs",
                None,
                ALICE,
                200,
                List("username"),
            ),
            call(
                "org.list_for_user",
                "GET",
                "/users/alice/orgs",
                None,
                ALICE,
                200,
                List("username"),
            ),
            call(
                "org.get",
                "GET",
                "/orgs/acme",
                None,
                ALICE,
                200,
                One("username"),
            ),
            call(
                "org.create",
                "POST",
                "/orgs",
                Some(json!({"username": "newco", "full_name": "New Co"})),
                ADMIN,
                201,
                One("username"),
            ),
            call(
                "org.update",
                "PATCH",
                "/orgs/newco",
                Some(json!({"description": "updated"})),
                ADMIN,
                200,
                One("username"),
            ),
            call(
                "org.rename",
                "POST",
                "/orgs/newco/rename",
                Some(json!({"new_name": "newco2"})),
                ADMIN,
                204,
                Empty,
            ),
            call(
                "org.delete",
                "DELETE",
                "/orgs/newco2",
                None,
                ADMIN,
                204,
                Empty,
            ),
            call(
                "member.list",
                "GET",
                "/orgs/acme/members",
                None,
                ALICE,
                200,
                List("login"),
            ),
            call(
                "member.check",
                "GET",
                "/orgs/acme/members/bob",
                None,
                ALICE,
                204,
                Empty,
            ),
            call(
                "member.permissions",
                "GET",
                "/users/alice/orgs/acme/permissions",
                None,
                ALICE,
                200,
                One("is_owner"),
            ),
            call(
                "member.remove",
                "DELETE",
                "/orgs/widgets/members/carol",
                None,
                ALICE,
                204,
                Empty,
            ),
            call(
                "public_member.list",
                "GET",
                "/orgs/acme/public_members",
                None,
                ALICE,
                200,
                List("login"),
            ),
            call(
                "public_member.check",
                "GET",
                "/orgs/acme/public_members/alice",
                None,
                ALICE,
                204,
                Empty,
            ),
            call(
                "public_member.publicize",
                "PUT",
                "/orgs/acme/public_members/bob",
                None,
                BOB,
                204,
                Empty,
            ),
            call(
                "public_member.conceal",
                "DELETE",
                "/orgs/acme/public_members/bob",
                None,
                BOB,
                204,
                Empty,
            ),
            call(
                "activity.list",
                "GET",
                "/orgs/acme/activities/feeds",
                None,
                ALICE,
                200,
                Feed("op_type"),
            ),
            call(
                "user.current",
                "GET",
                "/user",
                None,
                ALICE,
                200,
                One("login"),
            ),
            call(
                "user.get",
                "GET",
                "/users/alice",
                None,
                ALICE,
                200,
                One("login"),
            ),
            call(
                "user.create",
                "POST",
                "/admin/users",
                Some(
                    json!({"username": "newuser", "email": "newuser@example.com", "password": "pw-123456"}),
                ),
                ADMIN,
                201,
                One("login"),
            ),
        ],
        _ => vec![
            call("org.list", "GET", "/groups", None, ADMIN, 200, List("path")),
            call(
                "org.get",
                "GET",
                "/groups/acme",
                None,
                ALICE,
                200,
                One("path"),
            ),
            call(
                "org.create",
                "POST",
                "/groups",
                Some(json!({"name": "New Co", "path": "newco"})),
                ADMIN,
                201,
                One("path"),
            ),
            call(
                "org.update",
                "PUT",
                "/groups/newco",
                Some(json!({"description": "updated"})),
                ADMIN,
                200,
                One("path"),
            ),
            call(
                "org.rename",
                "PUT",
                "/groups/newco",
                Some(json!({"path": "newco2"})),
                ADMIN,
                200,
                One("path"),
            ),
            call(
                "org.delete",
                "DELETE",
                "/groups/newco2",
                None,
                ADMIN,
                202,
                One("message"),
            ),
            call(
                "member.list",
                "GET",
                "/groups/acme/members",
                None,
                ALICE,
                200,
                List("username"),
            ),
            call(
                "member.set_role",
                "POST",
                "/groups/acme/members",
                Some(json!({"user_id": ids.dave, "access_level": 30})),
                ALICE,
                201,
                One("access_level"),
            ),
            call(
                "member.permissions",
                "GET",
                format!("/groups/acme/members/{}", ids.alice),
                None,
                ALICE,
                200,
                One("access_level"),
            ),
            call(
                "member.remove",
                "DELETE",
                format!("/groups/widgets/members/{}", ids.carol),
                None,
                ALICE,
                204,
                Empty,
            ),
            call(
                "user.current",
                "GET",
                "/user",
                None,
                ALICE,
                200,
                One("username"),
            ),
            call(
                "user.get",
                "GET",
                format!("/users/{}", ids.alice),
                None,
                ALICE,
                200,
                One("username"),
            ),
            call(
                "user.create",
                "POST",
                "/users",
                Some(
                    json!({"username": "newuser", "email": "newuser@example.com", "name": "New User", "password": "pw-123456"}),
                ),
                ADMIN,
                201,
                One("username"),
            ),
        ],
    }
}

struct Ids {
    alice: u64,
    carol: u64,
    dave: u64,
}

fn send(proxy: &Instance, dialect: &str, c: &Call) -> Reply {
    let client = Client::new(
        format!("{}{}", proxy.url, common::api_base(dialect)),
        Some(c.token),
    );
    match (c.method, &c.body) {
        ("GET", _) => client.get(&c.path),
        ("DELETE", _) => client.delete(&c.path),
        ("PUT", None) => client.put_empty(&c.path),
        (m, Some(b)) => client.raw(m, &c.path, b.to_string().as_bytes()),
        (m, None) => client.raw(m, &c.path, b""),
    }
}

/// "ok" for the documented success, "501" for the dialect's not-implemented answer; any other
/// answer fails the test.
fn judge(client: &str, upstream: &str, c: &Call, r: &Reply) -> &'static str {
    let direction = format!(
        "{client} client, {upstream} upstream, {} {} ({})",
        c.method, c.path, c.op
    );
    if r.status == 501 {
        assert!(
            r.text.contains(c.op),
            "{direction}: a 501 must name the operation: {}",
            r.text
        );
        return "501";
    }
    assert_eq!(r.status, c.status, "{direction}: {}", r.text);
    match c.shape {
        Shape::Empty => {}
        Shape::One(key) => assert!(
            r.json().get(key).is_some(),
            "{direction}: no {key} in {}",
            r.text
        ),
        Shape::List(key) | Shape::Feed(key) => {
            let items = r.json();
            let items = items
                .as_array()
                .unwrap_or_else(|| panic!("{direction}: not a list: {}", r.text));
            let may_be_empty =
                matches!(c.shape, Shape::Feed(_)) && (client == "gitea" || upstream == "gitea");
            assert!(may_be_empty || !items.is_empty(), "{direction}: empty list");
            assert!(
                items.iter().all(|i| i.get(key).is_some()),
                "{direction}: items lack {key}: {}",
                r.text
            );
        }
    }
    "ok"
}

fn seed_ids(upstream: &Instance) -> Ids {
    let gitlab = Client::new(format!("{}/api/v4", upstream.url), Some(ADMIN_TOKEN));
    let id = |name: &str| {
        gitlab.get(&format!("/users?username={name}")).json()[0]["id"]
            .as_u64()
            .expect("user id")
    };
    Ids {
        alice: id("alice"),
        carol: id("carol"),
        dave: id("dave"),
    }
}

#[test]
fn every_operation_in_all_nine_directions() {
    // op → (direction → result)
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut cell = |op: &str, column: usize, value: &str| {
        if !rows.iter().any(|(o, _)| o == op) {
            rows.push((op.to_string(), vec!["–".to_string(); 9]));
        }
        if let Some((_, cells)) = rows.iter_mut().find(|(o, _)| o == op) {
            cells[column] = value.to_string();
        }
    };
    for (ci, client) in DIALECTS.iter().enumerate() {
        for (ui, upstream_dialect) in DIALECTS.iter().enumerate() {
            let upstream = Instance::reference();
            let proxy = Instance::proxy(
                &common::upstream_url(&upstream.url, upstream_dialect),
                upstream_dialect,
                &[],
            );
            let ids = seed_ids(&upstream);
            for c in calls(client, &ids) {
                let reply = send(&proxy, client, &c);
                let verdict = judge(client, upstream_dialect, &c, &reply);
                cell(c.op, ci * 3 + ui, verdict);
            }
        }
    }
    let mut table = String::from("| operation | ");
    for client in DIALECTS {
        for upstream in DIALECTS {
            table.push_str(&format!("{client}→{upstream} | "));
        }
    }
    table = table.trim_end().to_string();
    table.push_str("\n|---|");
    table.push_str(&"---|".repeat(9));
    table.push('\n');
    for (op, cells) in &rows {
        table.push_str(&format!("| {op} | {} |\n", cells.join(" | ")));
    }
    println!("{table}");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .unwrap_or_default();
    let section = readme
        .split("<!-- matrix:start -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- matrix:end -->").next())
        .map(str::trim)
        .unwrap_or_default();
    assert_eq!(section, table.trim(), "the README's matrix (between <!-- matrix:start --> and <!-- matrix:end -->) must be what this test prints");
}
