//! GitLab's multipart organization create with an avatar (seed document's example), through a
//! proxy to each upstream: the image lands (Gitea: through its avatar upload; GitHub, which has
//! no avatar API: kept by forgebridge; GitLab: sent on as a multipart file) and is served back,
//! byte for byte, at the avatar_url the answer gives.

mod common;

use common::{Instance, ADMIN_TOKEN};
use reqwest::blocking::multipart::{Form, Part};

/// A tiny PNG: signature, IHDR of a 1×1 image, IEND.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

fn upload(proxy: &Instance, path: &str, name: &str) -> (u16, serde_json::Value) {
    let form = Form::new()
        .text("name", format!("New {name}"))
        .text("path", name.to_string())
        .text("description", "A new organization")
        .part(
            "avatar",
            Part::bytes(PNG.to_vec())
                .file_name("avatar.png")
                .mime_str("image/png")
                .expect("mime"),
        );
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/api/v4{path}", proxy.url))
        .header("PRIVATE-TOKEN", ADMIN_TOKEN)
        .multipart(form)
        .send()
        .expect("upload");
    let status = resp.status().as_u16();
    let body = resp.json().unwrap_or_default();
    (status, body)
}

fn fetch(url: &str) -> (u16, Option<String>, Vec<u8>) {
    let resp = reqwest::blocking::get(url).expect("fetch avatar");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (
        status,
        ct,
        resp.bytes().map(|b| b.to_vec()).unwrap_or_default(),
    )
}

#[test]
fn multipart_create_with_avatar_on_every_upstream() {
    for dialect in ["gitea", "github", "gitlab"] {
        let upstream = Instance::reference();
        let url = common::upstream_url(&upstream.url, dialect);
        let proxy = Instance::proxy(&url, dialect, &[]);
        for (path, name) in [("/organizations", "neworg"), ("/groups", "newgroup")] {
            let (status, body) = upload(&proxy, path, name);
            assert_eq!(status, 201, "{dialect} upstream, POST {path}: {body}");
            assert_eq!(body["path"], name);
            assert_eq!(body["description"], "A new organization");
            let avatar_url = body["avatar_url"].as_str().unwrap_or_default().to_string();
            assert!(
                avatar_url.starts_with(&proxy.url),
                "{dialect}: avatar_url {avatar_url} must point at the proxy"
            );
            let (status, ct, bytes) = fetch(&avatar_url);
            assert_eq!(status, 200, "{dialect}: GET {avatar_url}");
            assert_eq!(ct.as_deref(), Some("image/png"), "{dialect}");
            assert_eq!(bytes, PNG, "{dialect}: the avatar comes back byte for byte");
            // A later read of the organization shows the same avatar.
            let again: serde_json::Value = reqwest::blocking::Client::new()
                .get(format!("{}/api/v4/groups/{name}", proxy.url))
                .header("PRIVATE-TOKEN", ADMIN_TOKEN)
                .send()
                .and_then(|r| r.json())
                .expect("get group");
            assert_eq!(again["avatar_url"], avatar_url.as_str(), "{dialect}");
        }
    }
}
