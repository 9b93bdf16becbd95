//! GitLab's wire conventions, as a GitLab client sees them through a proxy to a Gitea upstream:
//! the three auth forms, the page-state headers, the three error shapes, numeric ids and URL-
//! encoded paths, access levels, and an update that renames (undone when the update fails).

mod common;

use common::{Instance, ADMIN_TOKEN};
use serde_json::{json, Value};

struct Setup {
    _upstream: Instance,
    proxy: Instance,
}

fn setup() -> Setup {
    let upstream = Instance::reference();
    let proxy = Instance::proxy(&upstream.url, "gitea", &[]);
    Setup {
        _upstream: upstream,
        proxy,
    }
}

fn get(s: &Setup, path: &str, auth: (&str, &str)) -> reqwest::blocking::Response {
    reqwest::blocking::Client::new()
        .get(format!("{}/api/v4{path}", s.proxy.url))
        .header(auth.0, auth.1)
        .send()
        .expect("request")
}

fn send(s: &Setup, method: &str, path: &str, body: &str, content_type: &str) -> (u16, Value) {
    let resp = reqwest::blocking::Client::new()
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            format!("{}/api/v4{path}", s.proxy.url),
        )
        .header("PRIVATE-TOKEN", ADMIN_TOKEN)
        .header("Content-Type", content_type)
        .body(body.to_string())
        .send()
        .expect("request");
    (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
}

#[test]
fn auth_forms_and_page_headers() {
    let s = setup();
    for auth in [
        ("PRIVATE-TOKEN", "alice-token"),
        ("Authorization", "Bearer alice-token"),
    ] {
        let r = get(&s, "/groups/acme/members", auth);
        assert_eq!(r.status(), 200, "{auth:?}");
    }
    let r = get(
        &s,
        "/groups/acme/members?private_token=alice-token&per_page=1",
        ("X-Nothing", "-"),
    );
    assert_eq!(r.status(), 200);
    let h = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(h("x-total").as_deref(), Some("2"));
    assert_eq!(h("x-total-pages").as_deref(), Some("2"));
    assert_eq!(h("x-per-page").as_deref(), Some("1"));
    assert_eq!(h("x-page").as_deref(), Some("1"));
    assert_eq!(h("x-next-page").as_deref(), Some("2"));
    assert_eq!(h("x-prev-page").as_deref(), Some(""));
    let link = h("link").unwrap_or_default();
    assert!(
        link.contains(&format!("<{}/api/v4/groups/acme/members?", s.proxy.url))
            && link.contains("rel=\"next\""),
        "{link}"
    );
    assert!(
        !link.contains("private_token="),
        "the token must not be echoed into links: {link}"
    );

    let unauthenticated = get(&s, "/groups/acme/members", ("PRIVATE-TOKEN", "wrong"));
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(
        unauthenticated.json::<Value>().unwrap_or_default(),
        json!({"message": "401 Unauthorized"})
    );
}

#[test]
fn error_shapes() {
    let s = setup();
    let r = get(&s, "/groups/no-such-group", ("PRIVATE-TOKEN", ADMIN_TOKEN));
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().unwrap_or_default(),
        json!({"message": "404 Group Not Found"})
    );

    let (status, body) = send(
        &s,
        "POST",
        "/groups",
        r#"{"name": "Again", "path": "acme"}"#,
        "application/json",
    );
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"message": {"path": ["has already been taken"]}})
    );

    let (status, body) = send(&s, "POST", "/groups", r#"{"name": "#, "application/json");
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("JSON")),
        "{body}"
    );

    let (status, body) = send(
        &s,
        "POST",
        "/groups",
        "name=No+path",
        "application/x-www-form-urlencoded",
    );
    assert_eq!(status, 400);
    assert!(
        body["message"]["path"][0]
            .as_str()
            .is_some_and(|m| m.contains("missing")),
        "{body}"
    );
}

#[test]
fn ids_paths_access_levels_and_renaming_updates() {
    let s = setup();
    let admin = ("PRIVATE-TOKEN", ADMIN_TOKEN);
    let acme: Value = get(&s, "/groups/acme", admin).json().expect("group");
    let id = acme["id"].as_u64().expect("id");
    let by_id: Value = get(&s, &format!("/groups/{id}"), admin)
        .json()
        .expect("group");
    assert_eq!(by_id["path"], "acme");
    assert_eq!(by_id["full_path"], "acme");
    assert_eq!(
        by_id["web_url"],
        json!(format!("{}/groups/acme", s.proxy.url))
    );

    let alice: Value = get(&s, "/users?username=alice", admin)
        .json()
        .expect("users");
    let alice_id = alice[0]["id"].as_u64().expect("alice id");
    let member: Value = get(&s, &format!("/groups/{id}/members/{alice_id}"), admin)
        .json()
        .expect("member");
    assert_eq!(member["access_level"], 50, "alice owns acme: {member}");
    assert_eq!(member["username"], "alice");
    assert_eq!(
        get(&s, "/users?username=nobody", admin)
            .json::<Value>()
            .unwrap_or_default(),
        json!([])
    );

    // A new path with a valid update renames, then updates.
    let (status, body) = send(
        &s,
        "PUT",
        &format!("/groups/{id}"),
        r#"{"path": "acme-two", "description": "moved"}"#,
        "application/json",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["path"], "acme-two");
    assert_eq!(body["description"], "moved");
    assert_eq!(get(&s, "/groups/acme", admin).status(), 404);

    // A new path with an update the Gitea upstream refuses: the rename is undone.
    let long = "x".repeat(300);
    let (status, body) = send(
        &s,
        "PUT",
        "/groups/acme-two",
        &json!({"path": "acme-three", "description": long}).to_string(),
        "application/json",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("undone"), "{body}");
    assert_eq!(get(&s, "/groups/acme-two", admin).status(), 200);
    assert_eq!(get(&s, "/groups/acme-three", admin).status(), 404);
}
