//! Pagination in each dialect's style: reading the client's window from its query, writing
//! `Link` and total headers that point at the proxy, and the query an upstream needs for a window.

use std::collections::HashMap;

use http::{HeaderMap, HeaderValue};

use crate::canonical::{Object, PageOf, Paging};
use crate::mapping::{LinkRel, PaginationSpec, PagingStyle};

fn query_u64(query: &[(String, String)], key: &str) -> Option<u64> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.trim().parse::<i64>().ok())
        .map(|v| v.max(0) as u64)
}

/// The window a client asked for, clamped the way its forge clamps it.
pub fn client_paging(
    spec: &PaginationSpec,
    style: PagingStyle,
    query: &[(String, String)],
) -> Paging {
    let per_page = match query_u64(query, &spec.size_param) {
        Some(0) | None => spec.default_size,
        Some(n) => n.min(spec.max_size),
    };
    match style {
        PagingStyle::Page => Paging::Page {
            page: query_u64(query, &spec.page_param).unwrap_or(1).max(1),
            per_page,
        },
        PagingStyle::Since => Paging::Since {
            since: spec
                .since_param
                .as_deref()
                .and_then(|p| query_u64(query, p))
                .unwrap_or(0),
            per_page,
        },
    }
}

/// `self_url` is the public URL of the request without its query; `query` its original query.
pub fn client_headers(
    spec: &PaginationSpec,
    paging: Paging,
    page: &PageOf,
    self_url: &str,
    query: &[(String, String)],
    headers: &mut HeaderMap,
) {
    set_page_headers(spec, paging, page, headers);
    let mut links: Vec<(LinkRel, String)> = Vec::new();
    match paging {
        Paging::Page {
            page: current,
            per_page,
        } => {
            let last = page.total.map(|t| t.div_ceil(per_page.max(1)).max(1));
            let more = page.more || last.is_some_and(|l| current < l);
            let with_page = |n: u64| link(self_url, query, &spec.page_param, n);
            for rel in &spec.link_order {
                let target = match rel {
                    LinkRel::Next if more => Some(current + 1),
                    LinkRel::Prev if current > 1 => {
                        Some((current - 1).min(last.unwrap_or(u64::MAX)))
                    }
                    LinkRel::First if current > 1 => Some(1),
                    LinkRel::Last if more => last,
                    _ => None,
                };
                if let Some(n) = target {
                    links.push((*rel, with_page(n)));
                }
            }
        }
        Paging::Since { .. } => {
            let since_param = spec.since_param.as_deref().unwrap_or("since");
            let last_id = page.items.last().and_then(item_id);
            for rel in &spec.link_order {
                match (rel, last_id) {
                    (LinkRel::Next, Some(id)) if page.more => {
                        links.push((*rel, link(self_url, query, since_param, id)))
                    }
                    (LinkRel::First, _) => {
                        links.push((*rel, format!("{self_url}{{?{since_param}}}")))
                    }
                    _ => {}
                }
            }
        }
    }
    if links.is_empty() {
        return;
    }
    let value = links
        .iter()
        .map(|(rel, url)| format!("<{url}>; rel=\"{}\"", rel.name()))
        .collect::<Vec<_>>()
        .join(&spec.link_separator);
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(http::header::LINK, v);
    }
}

/// The dialect's page-state headers (X-Total-Count, X-Total, X-Next-Page, …). A header that
/// needs the total is left out when the total is unknown, as GitLab does past 10,000 rows.
fn set_page_headers(spec: &PaginationSpec, paging: Paging, page: &PageOf, headers: &mut HeaderMap) {
    let (current, per_page) = match paging {
        Paging::Page { page, per_page } => (page, per_page),
        Paging::Since { per_page, .. } => (1, per_page),
    };
    let total_pages = page.total.map(|t| t.div_ceil(per_page.max(1)).max(1));
    let more = page.more || total_pages.is_some_and(|l| current < l);
    for (name, template) in &spec.headers {
        let mut complete = true;
        let value = template.render(|var| {
            let v = match var {
                "total" => page.total.map(|t| t.to_string()),
                "total_pages" => total_pages.map(|t| t.to_string()),
                "per_page" => Some(per_page.to_string()),
                "page" => Some(current.to_string()),
                "next_page" => Some(if more {
                    (current + 1).to_string()
                } else {
                    String::new()
                }),
                "prev_page" => Some(if current > 1 {
                    (current - 1).to_string()
                } else {
                    String::new()
                }),
                _ => None,
            };
            if v.is_none() {
                complete = false;
            }
            v.map(std::borrow::Cow::Owned)
        });
        if complete {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name.clone(), v);
            }
        }
    }
}

pub fn item_id(item: &Object) -> Option<u64> {
    item.get("id").and_then(|v| v.as_u64())
}

/// The request URL with `key` set to `value` (moved to the end, as GitHub does).
fn link(self_url: &str, query: &[(String, String)], key: &str, value: u64) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in query.iter().filter(|(k, _)| k != key) {
        ser.append_pair(k, v);
    }
    ser.append_pair(key, &value.to_string());
    format!("{self_url}?{}", ser.finish())
}

/// Query parameters that ask an upstream of this dialect for one page.
pub fn upstream_query(
    spec: &PaginationSpec,
    style: PagingStyle,
    position: u64,
    size: u64,
) -> Vec<(String, String)> {
    let size = size.min(spec.max_size).max(1);
    match style {
        PagingStyle::Page => vec![
            (spec.page_param.clone(), position.max(1).to_string()),
            (spec.size_param.clone(), size.to_string()),
        ],
        PagingStyle::Since => vec![
            (
                spec.since_param.clone().unwrap_or_else(|| "since".into()),
                position.to_string(),
            ),
            (spec.size_param.clone(), size.to_string()),
        ],
    }
}

/// Parses a `Link` header into relation → URL.
pub fn parse_link(value: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for part in value.split(',') {
        let mut pieces = part.split(';');
        let Some(url) = pieces.next().map(str::trim) else {
            continue;
        };
        let Some(url) = url.strip_prefix('<').and_then(|u| u.strip_suffix('>')) else {
            continue;
        };
        for attr in pieces {
            if let Some(rel) = attr.trim().strip_prefix("rel=") {
                for name in rel.trim_matches('"').split_whitespace() {
                    out.insert(name.to_string(), url.to_string());
                }
            }
        }
    }
    out
}

/// The value of a query parameter in a URL.
pub fn query_param(url: &str, key: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_link_separators() {
        let gitea =
            parse_link("<http://a/x?page=3>; rel=\"next\",<http://a/x?page=5>; rel=\"last\"");
        assert_eq!(
            gitea.get("next").map(String::as_str),
            Some("http://a/x?page=3")
        );
        assert_eq!(
            gitea.get("last").map(String::as_str),
            Some("http://a/x?page=5")
        );
        let github =
            parse_link("<http://a/o?since=9>; rel=\"next\", <http://a/o{?since}>; rel=\"first\"");
        assert_eq!(query_param(&github["next"], "since").as_deref(), Some("9"));
    }
}
