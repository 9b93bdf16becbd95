//! Pagination round trip: 250 organizations on the upstream, listed page by page through each
//! client dialect's own mechanism (GitHub's `since` cursor, Gitea's `page`/`limit`, GitLab's
//! `page`/`per_page`), following the `Link` header, in all nine directions: each organization
//! exactly once, and every link on the proxy.

mod common;

use std::collections::BTreeSet;

use common::{Client, Instance, ADMIN_TOKEN};
use serde_json::{json, Value};

const ORGS: usize = 250;

fn many_orgs() -> Value {
    let orgs: Vec<Value> = (0..ORGS)
        .map(|i| json!({"login": format!("org-{i:03}")}))
        .collect();
    json!({"users": [], "orgs": orgs})
}

/// (client dialect, base path, first page, page size, key of the login in an item, total header)
type ListingClient = (
    &'static str,
    &'static str,
    &'static str,
    usize,
    &'static str,
    Option<&'static str>,
);

#[rustfmt::skip]
const CLIENTS: [ListingClient; 4] = [
    ("github", "/api/v3", "/organizations?per_page=40", 40, "login", None),
    ("gitea", "/api/v1", "/orgs?limit=40", 40, "name", Some("x-total-count")),
    ("gitlab", "/api/v4", "/groups?per_page=40", 40, "path", Some("x-total")),
    // Pages larger than a Gitea upstream's largest (50): several upstream pages make one.
    ("gitlab", "/api/v4", "/groups?per_page=100", 100, "path", Some("x-total")),
];

#[test]
fn two_hundred_fifty_orgs_each_exactly_once_in_every_direction() {
    let upstream = Instance::reference_with(&many_orgs());
    let expected: BTreeSet<String> = (0..ORGS).map(|i| format!("org-{i:03}")).collect();
    for upstream_dialect in ["github", "gitea", "gitlab"] {
        let url = common::upstream_url(&upstream.url, upstream_dialect);
        let proxy = Instance::proxy(&url, upstream_dialect, &[]);
        for (client, base, first, size, key, total_header) in CLIENTS {
            let direction = format!("{client} client, {upstream_dialect} upstream");
            let c = Client::new(format!("{}{base}", proxy.url), Some(ADMIN_TOKEN));
            if let Some(h) = total_header {
                let head = c.get(first);
                assert_eq!(head.header(h).as_deref(), Some("250"), "{direction}: {h}");
            }
            let (items, pages) = c.walk(first, &proxy.url);
            let logins: Vec<String> = items
                .iter()
                .map(|o| o[key].as_str().unwrap_or_default().to_string())
                .collect();
            let unique: BTreeSet<String> = logins.iter().cloned().collect();
            assert_eq!(
                logins.len(),
                ORGS,
                "{direction}: {} items over {pages} pages",
                logins.len()
            );
            assert_eq!(unique, expected, "{direction}: each org exactly once");
            assert_eq!(pages, ORGS.div_ceil(size), "{direction}: pages of {size}");
        }
    }
}
