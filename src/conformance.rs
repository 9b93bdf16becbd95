//! `forgebridge conformance`: does a server really speak a dialect? A fixed sequence of cases
//! (create an organization, read, list with pagination, members, rename, errors, delete) runs
//! against any target — the reference forge, a forgebridge proxy, a real forge — and each
//! answer is checked for the status and the fields the forge's official API description
//! requires. The field lists below come from those descriptions, not from the mapping files.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};

use crate::backend::transport::Transport;

/// What a case expects back.
#[derive(Clone, Copy)]
enum Expect {
    /// A JSON object with these fields.
    Object(&'static [&'static str]),
    /// A JSON array whose items have these fields.
    List(&'static [&'static str]),
    /// No body needed.
    Empty,
}

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    body: Option<Value>,
    status: &'static [u16],
    expect: Expect,
}

pub struct Outcome {
    pub name: &'static str,
    pub call: String,
    pub status: Option<u16>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// The target answered the dialect's 501: the operation is not available there.
    NotImplemented,
    Fail(String),
}

// GitHub: organization-simple, organization-full, simple-user, org-membership (api.github.com
// and GHES 3.19 descriptions, `required` lists).
const GH_ORG_SIMPLE: &[&str] = &[
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
const GH_ORG_FULL: &[&str] = &[
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
    "html_url",
    "has_organization_projects",
    "has_repository_projects",
    "public_repos",
    "public_gists",
    "followers",
    "following",
    "type",
    "created_at",
    "updated_at",
    "archived_at",
];
const GH_SIMPLE_USER: &[&str] = &[
    "avatar_url",
    "events_url",
    "followers_url",
    "following_url",
    "gists_url",
    "gravatar_id",
    "html_url",
    "id",
    "node_id",
    "login",
    "organizations_url",
    "received_events_url",
    "repos_url",
    "site_admin",
    "starred_url",
    "subscriptions_url",
    "type",
    "url",
];
const GH_MEMBERSHIP: &[&str] = &[
    "state",
    "role",
    "organization_url",
    "url",
    "organization",
    "user",
];
const GH_RENAME: &[&str] = &["message", "url"];
const GH_ERROR: &[&str] = &["message"];

// Gitea 1.27: Organization, User, OrganizationPermissions; errors are {message, url}.
const GITEA_ORG: &[&str] = &[
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
const GITEA_USER: &[&str] = &[
    "id",
    "login",
    "full_name",
    "email",
    "avatar_url",
    "username",
];
const GITEA_PERMISSIONS: &[&str] = &[
    "is_owner",
    "is_admin",
    "can_write",
    "can_read",
    "can_create_repository",
];
const GITEA_ERROR: &[&str] = &["message", "url"];

// GitLab v4: Group (GroupDetail), Member, UserBasic; errors carry message or error.
const GITLAB_GROUP: &[&str] = &[
    "id",
    "web_url",
    "name",
    "path",
    "description",
    "visibility",
    "full_name",
    "full_path",
    "parent_id",
    "avatar_url",
    "created_at",
];
const GITLAB_MEMBER: &[&str] = &[
    "id",
    "username",
    "name",
    "state",
    "avatar_url",
    "web_url",
    "access_level",
];
const GITLAB_USER: &[&str] = &["id", "username", "name", "state", "avatar_url", "web_url"];
const GITLAB_ERROR: &[&str] = &["message"];

fn case(
    name: &'static str,
    method: &'static str,
    path: impl Into<String>,
    body: Option<Value>,
    status: &'static [u16],
    expect: Expect,
) -> Case {
    Case {
        name,
        method,
        path: path.into(),
        body,
        status,
        expect,
    }
}

/// The API base path of a dialect.
pub fn base_path(dialect: &str) -> Option<&'static str> {
    match dialect {
        "github" => Some("/api/v3"),
        "gitea" => Some("/api/v1"),
        "gitlab" => Some("/api/v4"),
        _ => None,
    }
}

/// The cases of a dialect, for an organization `org` (renamed to `renamed`) created by `me`.
fn cases(dialect: &str, me: &str, my_id: u64, org: &str, renamed: &str) -> Vec<Case> {
    use Expect::*;
    match dialect {
        "github" => vec![
            case(
                "org.create",
                "POST",
                "/admin/organizations",
                Some(json!({"login": org, "admin": me, "profile_name": "Conformance"})),
                &[201],
                Object(GH_ORG_SIMPLE),
            ),
            case(
                "org.get",
                "GET",
                format!("/orgs/{org}"),
                None,
                &[200],
                Object(GH_ORG_FULL),
            ),
            case(
                "org.update",
                "PATCH",
                format!("/orgs/{org}"),
                Some(json!({"description": "checked by forgebridge conformance"})),
                &[200],
                Object(GH_ORG_FULL),
            ),
            case(
                "org.list",
                "GET",
                "/organizations?per_page=1",
                None,
                &[200],
                List(GH_ORG_SIMPLE),
            ),
            case(
                "org.list_mine",
                "GET",
                "/user/orgs?per_page=1",
                None,
                &[200],
                List(GH_ORG_SIMPLE),
            ),
            case(
                "org.list_for_user",
                "GET",
                format!("/users/{me}/orgs"),
                None,
                &[200],
                List(GH_ORG_SIMPLE),
            ),
            case(
                "member.list",
                "GET",
                format!("/orgs/{org}/members"),
                None,
                &[200],
                List(GH_SIMPLE_USER),
            ),
            case(
                "member.check",
                "GET",
                format!("/orgs/{org}/members/{me}"),
                None,
                &[204],
                Empty,
            ),
            case(
                "member.permissions",
                "GET",
                format!("/orgs/{org}/memberships/{me}"),
                None,
                &[200],
                Object(GH_MEMBERSHIP),
            ),
            case(
                "public_member.publicize",
                "PUT",
                format!("/orgs/{org}/public_members/{me}"),
                None,
                &[204],
                Empty,
            ),
            case(
                "public_member.list",
                "GET",
                format!("/orgs/{org}/public_members"),
                None,
                &[200],
                List(GH_SIMPLE_USER),
            ),
            case(
                "public_member.conceal",
                "DELETE",
                format!("/orgs/{org}/public_members/{me}"),
                None,
                &[204],
                Empty,
            ),
            case(
                "org.rename",
                "PATCH",
                format!("/admin/organizations/{org}"),
                Some(json!({"login": renamed})),
                &[202],
                Object(GH_RENAME),
            ),
            case(
                "error.not_found",
                "GET",
                format!("/orgs/{org}-missing"),
                None,
                &[404],
                Object(GH_ERROR),
            ),
            case(
                "error.name_taken",
                "POST",
                "/admin/organizations",
                Some(json!({"login": renamed, "admin": me})),
                &[422],
                Object(&["message", "errors"]),
            ),
            case(
                "org.delete",
                "DELETE",
                format!("/orgs/{renamed}"),
                None,
                &[202],
                Empty,
            ),
            case(
                "org.deleted",
                "GET",
                format!("/orgs/{renamed}"),
                None,
                &[404],
                Object(GH_ERROR),
            ),
        ],
        "gitea" => vec![
            case(
                "org.create",
                "POST",
                "/orgs",
                Some(json!({"username": org, "full_name": "Conformance"})),
                &[201],
                Object(GITEA_ORG),
            ),
            case(
                "org.get",
                "GET",
                format!("/orgs/{org}"),
                None,
                &[200],
                Object(GITEA_ORG),
            ),
            case(
                "org.update",
                "PATCH",
                format!("/orgs/{org}"),
                Some(json!({"description": "checked by forgebridge conformance"})),
                &[200],
                Object(GITEA_ORG),
            ),
            case(
                "org.list",
                "GET",
                "/orgs?limit=1",
                None,
                &[200],
                List(GITEA_ORG),
            ),
            case(
                "org.list_mine",
                "GET",
                "/user/orgs?limit=1",
                None,
                &[200],
                List(GITEA_ORG),
            ),
            case(
                "org.list_for_user",
                "GET",
                format!("/users/{me}/orgs"),
                None,
                &[200],
                List(GITEA_ORG),
            ),
            case(
                "member.list",
                "GET",
                format!("/orgs/{org}/members"),
                None,
                &[200],
                List(GITEA_USER),
            ),
            case(
                "member.check",
                "GET",
                format!("/orgs/{org}/members/{me}"),
                None,
                &[204],
                Empty,
            ),
            case(
                "member.permissions",
                "GET",
                format!("/users/{me}/orgs/{org}/permissions"),
                None,
                &[200],
                Object(GITEA_PERMISSIONS),
            ),
            case(
                "public_member.publicize",
                "PUT",
                format!("/orgs/{org}/public_members/{me}"),
                None,
                &[204],
                Empty,
            ),
            case(
                "public_member.list",
                "GET",
                format!("/orgs/{org}/public_members"),
                None,
                &[200],
                List(GITEA_USER),
            ),
            case(
                "public_member.conceal",
                "DELETE",
                format!("/orgs/{org}/public_members/{me}"),
                None,
                &[204],
                Empty,
            ),
            case(
                "org.rename",
                "POST",
                format!("/orgs/{org}/rename"),
                Some(json!({"new_name": renamed})),
                &[204],
                Empty,
            ),
            case(
                "error.not_found",
                "GET",
                format!("/orgs/{org}-missing"),
                None,
                &[404],
                Object(GITEA_ERROR),
            ),
            case(
                "error.name_taken",
                "POST",
                "/orgs",
                Some(json!({"username": renamed})),
                &[422],
                Object(GITEA_ERROR),
            ),
            case(
                "org.delete",
                "DELETE",
                format!("/orgs/{renamed}"),
                None,
                &[204],
                Empty,
            ),
            case(
                "org.deleted",
                "GET",
                format!("/orgs/{renamed}"),
                None,
                &[404],
                Object(GITEA_ERROR),
            ),
        ],
        _ => vec![
            case(
                "org.create",
                "POST",
                "/groups",
                Some(json!({"name": "Conformance", "path": org})),
                &[201],
                Object(GITLAB_GROUP),
            ),
            case(
                "org.get",
                "GET",
                format!("/groups/{org}"),
                None,
                &[200],
                Object(GITLAB_GROUP),
            ),
            case(
                "org.update",
                "PUT",
                format!("/groups/{org}"),
                Some(json!({"description": "checked by forgebridge conformance"})),
                &[200],
                Object(GITLAB_GROUP),
            ),
            case(
                "org.list",
                "GET",
                "/groups?per_page=1",
                None,
                &[200],
                List(GITLAB_GROUP),
            ),
            case(
                "member.list",
                "GET",
                format!("/groups/{org}/members"),
                None,
                &[200],
                List(GITLAB_MEMBER),
            ),
            case(
                "member.permissions",
                "GET",
                format!("/groups/{org}/members/{my_id}"),
                None,
                &[200],
                Object(GITLAB_MEMBER),
            ),
            case(
                "user.get",
                "GET",
                format!("/users?username={me}"),
                None,
                &[200],
                List(GITLAB_USER),
            ),
            case(
                "org.rename",
                "PUT",
                format!("/groups/{org}"),
                Some(json!({"path": renamed})),
                &[200],
                Object(GITLAB_GROUP),
            ),
            case(
                "error.not_found",
                "GET",
                format!("/groups/{org}-missing"),
                None,
                &[404],
                Object(GITLAB_ERROR),
            ),
            case(
                "error.name_taken",
                "POST",
                "/groups",
                Some(json!({"name": "Again", "path": renamed})),
                &[400],
                Object(GITLAB_ERROR),
            ),
            case(
                "org.delete",
                "DELETE",
                format!("/groups/{renamed}"),
                None,
                &[202],
                Empty,
            ),
            case(
                "org.deleted",
                "GET",
                format!("/groups/{renamed}"),
                None,
                &[404],
                Object(GITLAB_ERROR),
            ),
        ],
    }
}

/// Why a JSON value does not hold the fields a case expects (None when it does).
fn check_fields(value: &Value, fields: &[&str]) -> Option<String> {
    let Value::Object(map) = value else {
        return Some(format!("expected a JSON object, got {}", short(value)));
    };
    let missing: Vec<&str> = fields
        .iter()
        .copied()
        .filter(|f| !map.contains_key(*f))
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "missing field{} {}",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        ));
    }
    for key in ["id"] {
        if fields.contains(&key) && !map.get(key).is_some_and(Value::is_u64) {
            return Some(format!("field {key} is not a number: {}", short(&map[key])));
        }
    }
    None
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(120).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s
    }
}

/// Runs the dialect's cases against `target` (the server's base URL, without the API path).
pub async fn run(dialect: &str, target: &str, token: Option<&str>) -> anyhow::Result<Vec<Outcome>> {
    let base = base_path(dialect)
        .ok_or_else(|| anyhow::anyhow!("unknown dialect {dialect:?} (github, gitea, gitlab)"))?;
    let target = target.trim_end_matches('/');
    let api = if target.ends_with(base) {
        target.to_string()
    } else {
        format!("{target}{base}")
    };
    let origin = url::Url::parse(&api)?.origin().ascii_serialization();
    let transport = Transport::new(Duration::from_secs(30), 64 * 1024 * 1024);
    let exchange = |method: &str, url: String, body: Option<&Value>| {
        let mut req = http::Request::builder().method(method).uri(url);
        req = match (token, dialect) {
            (Some(t), "gitlab") => req.header("PRIVATE-TOKEN", t),
            (Some(t), _) => req.header("Authorization", format!("token {t}")),
            (None, _) => req,
        };
        let payload = match body {
            Some(b) => {
                req = req.header(http::header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(b).unwrap_or_default())
            }
            None => Bytes::new(),
        };
        let req = req.body(payload);
        let transport = &transport;
        async move {
            let req = req.map_err(|e| format!("cannot build the request: {e}"))?;
            transport.send(&req).await.map_err(|f| f.to_string())
        }
    };

    // Who the token belongs to: the organization is created for, and checked against, them.
    let me: Value = match exchange("GET", format!("{api}/user"), None).await {
        Ok(reply) => serde_json::from_slice(&reply.body).unwrap_or(Value::Null),
        Err(e) => anyhow::bail!("GET {api}/user: {e}"),
    };
    let login = me
        .get("login")
        .or_else(|| me.get("username"))
        .and_then(Value::as_str);
    let Some(login) = login.map(str::to_string) else {
        anyhow::bail!(
            "GET {api}/user did not name the caller; is the token valid? ({})",
            short(&me)
        );
    };
    let my_id = me.get("id").and_then(Value::as_u64).unwrap_or(0);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() % 1_000_000_000)
        .unwrap_or(0);
    let org = format!("fbconf-{stamp}");
    let renamed = format!("fbconf-{stamp}-renamed");

    let mut outcomes = Vec::new();
    for c in cases(dialect, &login, my_id, &org, &renamed) {
        let call = format!("{} {}{}", c.method, base, c.path);
        let reply = match exchange(c.method, format!("{api}{}", c.path), c.body.as_ref()).await {
            Ok(r) => r,
            Err(e) => {
                outcomes.push(Outcome {
                    name: c.name,
                    call,
                    status: None,
                    verdict: Verdict::Fail(format!("no answer: {e}")),
                });
                continue;
            }
        };
        let status = reply.status.as_u16();
        let link = reply.headers.get("link").map(str::to_string);
        let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        let verdict = if status == 501 && !c.name.starts_with("error.") {
            match check_fields(&body, &["message"]).or_else(|| check_fields(&body, &["error"])) {
                Some(_) if body.get("message").is_none() && body.get("error").is_none() => {
                    Verdict::Fail("501 without the dialect's error body".into())
                }
                _ => Verdict::NotImplemented,
            }
        } else if !c.status.contains(&status) {
            Verdict::Fail(format!(
                "expected status {:?}, got {status}: {}",
                c.status,
                short(&body)
            ))
        } else {
            let problem = match c.expect {
                Expect::Empty => None,
                Expect::Object(fields) => check_fields(&body, fields),
                Expect::List(fields) => match &body {
                    Value::Array(items) if items.is_empty() => {
                        Some("expected at least one item".to_string())
                    }
                    Value::Array(items) => items.iter().find_map(|i| check_fields(i, fields)),
                    other => Some(format!("expected a JSON array, got {}", short(other))),
                },
            };
            // One item per page was asked for: more items must come with a next link that
            // stays on the target.
            let paging = match (&c.expect, c.path.contains("=1"), link.as_deref()) {
                (Expect::List(_), true, Some(l))
                    if l.contains("rel=\"next\"") && !l.contains(&origin) =>
                {
                    Some(format!("Link points away from the target: {l}"))
                }
                _ => None,
            };
            match problem.or(paging) {
                Some(p) => Verdict::Fail(p),
                None => Verdict::Pass,
            }
        };
        outcomes.push(Outcome {
            name: c.name,
            call,
            status: Some(status),
            verdict,
        });
    }
    Ok(outcomes)
}

/// The outcomes as a Markdown table.
pub fn table(dialect: &str, target: &str, outcomes: &[Outcome]) -> String {
    let mut out = format!("conformance of {target} to the {dialect} dialect\n\n| case | call | status | result |\n|---|---|---|---|\n");
    for o in outcomes {
        let status = o
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into());
        let result = match &o.verdict {
            Verdict::Pass => "pass".to_string(),
            Verdict::NotImplemented => "not implemented (501)".to_string(),
            Verdict::Fail(why) => format!("FAIL: {why}"),
        };
        let _ = writeln!(out, "| {} | `{}` | {status} | {result} |", o.name, o.call);
    }
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::Fail(_)))
        .count();
    let _ = writeln!(
        out,
        "\n{} of {} cases passed",
        outcomes.len() - failed,
        outcomes.len()
    );
    out
}
