//! Dialect front-ends, driven entirely by the mapping files: a client's request becomes a
//! `CanonicalRequest` (decode), and a canonical `Outcome` becomes the client's answer (encode).

pub mod auth;
pub mod body;
pub mod errors;
pub mod paging;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};
use http_body_util::Full;
use serde_json::Value;

use crate::canonical::op::ResultKind;
use crate::canonical::{CanonicalError, CanonicalRequest, Outcome, Params};
use crate::mapping::{Dialect, EncodeCtx, Route};

/// Where the client reached the proxy: used for every URL the answer carries.
pub struct PublicUrls<'a> {
    /// The proxy's public URL (the forge's "web" root).
    pub web: &'a str,
    /// The public URL plus the base path the client used (the forge's API root).
    pub api: &'a str,
    /// The path of this request (appended to `web`, the request's public URL without query).
    pub path: &'a str,
}

/// Builds the canonical request from a client's route match, query, headers and body.
pub async fn decode(
    dialect: &Dialect,
    route: &Route,
    mut params: Params,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: bytes::Bytes,
) -> Result<CanonicalRequest, CanonicalError> {
    let mut req = CanonicalRequest::new(route.op);
    req.credential = auth::credential(&dialect.auth, headers, query);
    if let Some(style) = route.paging {
        req.paging = Some(paging::client_paging(&dialect.pagination, style, query));
        // Totals feed page-state headers and the `last` link.
        req.want_total = !dialect.pagination.headers.is_empty()
            || dialect
                .pagination
                .link_order
                .contains(&crate::mapping::LinkRel::Last);
    }
    for (param, key) in &route.query {
        if let Some((_, v)) = query.iter().find(|(k, _)| k == key) {
            params.set(param, v.clone());
        }
    }
    if let Some(shape) = &route.request {
        let json = body::parse(headers, body, dialect.forms).await?;
        req.input = shape.decode_request(&json, &mut params)?;
    }
    req.params = params;
    req.want_result = route.response.is_some() || route.location.is_some();
    if let (Some(shape), ResultKind::List(_)) = (&route.response, route.op.result()) {
        req.fields_shown = Some(shape.fields_shown());
    }
    Ok(req)
}

/// A JSON answer, its text written by `write` into a buffer of about `size_hint` bytes.
fn json_response(
    status: http::StatusCode,
    size_hint: usize,
    write: impl FnOnce(&mut Vec<u8>),
) -> Response<Full<Bytes>> {
    let mut bytes = Vec::with_capacity(size_hint);
    write(&mut bytes);
    let mut resp = Response::new(Full::new(Bytes::from(bytes)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// Appends a value's JSON text (nothing if it cannot be serialized).
fn serialized(out: &mut Vec<u8>, value: &impl serde::Serialize) {
    let start = out.len();
    if sonic_rs::to_writer(&mut *out, value).is_err() {
        out.truncate(start);
    }
}

/// About the size of one encoded entity, to size answer buffers once.
const ENTITY_SIZE: usize = 1536;

fn empty_response(status: http::StatusCode) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

/// Renders a canonical outcome as the client's dialect answers this route.
pub fn encode(
    dialect: &Dialect,
    route: &Route,
    req: &CanonicalRequest,
    outcome: Outcome,
    urls: &PublicUrls<'_>,
    query: &[(String, String)],
) -> Response<Full<Bytes>> {
    let ctx = EncodeCtx::new(urls.api, urls.web, &req.params);
    match outcome {
        Outcome::Flag(yes) => {
            let status = if yes {
                route.status
            } else {
                route.false_status.unwrap_or(http::StatusCode::NOT_FOUND)
            };
            empty_response(status)
        }
        Outcome::List(mut page) => {
            if let Some(shape) = &route.response {
                let before = page.items.len();
                page.items.retain(|o| shape.expresses(o));
                let dropped = (before - page.items.len()) as u64;
                page.total = page.total.map(|t| t.saturating_sub(dropped));
            } else {
                page.items.clear();
            }
            let size = ENTITY_SIZE * page.items.len() + 2;
            let mut resp = json_response(route.status, size, |out| match &route.response {
                Some(shape) => shape.write_list(&page.items, &ctx, out),
                None => out.extend_from_slice(b"[]"),
            });
            if let Some(p) = req.paging {
                // Links repeat the client's query, but never a token it put there.
                let query: Vec<(String, String)> = query
                    .iter()
                    .filter(|(k, _)| !auth::is_query_credential(&dialect.auth, k))
                    .cloned()
                    .collect();
                let this = format!("{}{}", urls.web, urls.path);
                paging::client_headers(
                    &dialect.pagination,
                    p,
                    &page,
                    &this,
                    &query,
                    resp.headers_mut(),
                );
            }
            resp
        }
        Outcome::Entity(obj) => {
            let mut resp = match (&route.response, &route.body) {
                (Some(shape), _) if route.list_of_one => {
                    json_response(route.status, ENTITY_SIZE, |out| {
                        shape.write_list(std::slice::from_ref(&obj), &ctx, out)
                    })
                }
                (Some(shape), _) => json_response(route.status, ENTITY_SIZE, |out| {
                    shape.response(&obj, &ctx).write(out)
                }),
                (None, Some(body)) => json_response(route.status, 128, |out| {
                    serialized(out, &body.fill(&crate::mapping::body::no_facts))
                }),
                (None, None) => empty_response(route.status),
            };
            if let Some(t) = &route.location {
                let loc = shape_free_url(t, &obj, &ctx);
                if let Ok(v) = HeaderValue::from_str(&loc) {
                    resp.headers_mut().insert(http::header::LOCATION, v);
                }
            }
            resp
        }
        Outcome::Done => match &route.body {
            Some(body) => json_response(route.status, 128, |out| {
                serialized(out, &body.fill(&crate::mapping::body::no_facts))
            }),
            None => empty_response(route.status),
        },
    }
}

fn shape_free_url(
    t: &crate::mapping::Template,
    obj: &crate::canonical::Object,
    ctx: &EncodeCtx<'_>,
) -> String {
    use std::borrow::Cow;
    t.render(|var| match var {
        "api" => Some(Cow::Borrowed(ctx.api)),
        "web" => Some(Cow::Borrowed(ctx.web)),
        other => obj
            .get(other)
            .and_then(Value::as_str)
            .map(crate::mapping::shape::encode_segment)
            .or_else(|| ctx.params.get(other).map(|s| Cow::Owned(s.to_string()))),
    })
}
