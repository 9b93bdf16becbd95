//! The life of a request, as named phases (after Pingora's): route → authenticate & decode →
//! perform → encode, or route → forward for a read in the upstream's own dialect. Each phase
//! is data-driven by the client's dialect; the backend is either the HTTP upstream or the
//! embedded reference forge.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::Value;

use crate::backend::Backend;
use crate::canonical::{CanonicalError, ErrorKind, Outcome};
use crate::dialect::{self, PublicUrls};
use crate::mapping::shape::Source;
use crate::mapping::{Dialect, Dialects, Route, RouteLookup};

pub struct Gateway {
    pub dialects: Dialects,
    pub backend: Arc<dyn Backend>,
    pub public_url: String,
    pub body_limit: usize,
    /// The public API root of each base path the dialects answer on, built once.
    api_roots: Vec<(String, String)>,
}

type HttpResponse = Response<Full<Bytes>>;

impl Gateway {
    pub fn new(
        dialects: Dialects,
        backend: Arc<dyn Backend>,
        public_url: String,
        body_limit: usize,
    ) -> Gateway {
        let api_roots = dialects
            .iter()
            .flat_map(|d| d.base_paths.iter())
            .map(|base| (base.clone(), format!("{public_url}{base}")))
            .collect();
        Gateway {
            dialects,
            backend,
            public_url,
            body_limit,
            api_roots,
        }
    }

    /// The public URL plus a base path: the API root a client used.
    fn api_root(&self, base: &str) -> std::borrow::Cow<'_, str> {
        match self.api_roots.iter().find(|(b, _)| b == base) {
            Some((_, api)) => std::borrow::Cow::Borrowed(api),
            None => std::borrow::Cow::Owned(format!("{}{}", self.public_url, base)),
        }
    }

    pub async fn handle<B>(&self, req: Request<B>) -> HttpResponse
    where
        B: http_body::Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let path = req.uri().path().to_string();
        if path == "/healthz" {
            return plain(StatusCode::OK, "application/json", r#"{"status":"ok"}"#);
        }
        if let Some(rest) = path.strip_prefix("/avatars/") {
            return match self.backend.avatar(rest).await {
                Some(a) => plain(StatusCode::OK, &a.content_type, a.bytes),
                None => plain(StatusCode::NOT_FOUND, "text/plain", "404 page not found"),
            };
        }

        // Phase: route. Which dialect, which operation.
        let Some((dialect, base, rest)) = self.dialects.detect(&path) else {
            return plain(StatusCode::NOT_FOUND, "text/plain", "404 page not found");
        };
        crate::layers::note(|n| n.dialect = Some(dialect.name.clone()));
        let query: Vec<(String, String)> = req
            .uri()
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let (route, params) = match dialect.match_route(req.method(), rest, &query) {
            RouteLookup::Found(route, params) => (route, params),
            RouteLookup::MethodNotAllowed | RouteLookup::NotFound => {
                let err = CanonicalError::not_found(format!(
                    "no {} route for {} {rest}",
                    dialect.name,
                    req.method()
                ));
                return dialect::errors::render(dialect, &err, &self.public_url);
            }
        };
        crate::layers::note(|n| n.operation = Some(route.op.name()));
        // Phase: forward. A read in the upstream's own dialect goes to it as it is.
        let forwarder = (req.method() == http::Method::GET && !route.site_admin_only)
            .then(|| self.backend.forwarder(dialect))
            .flatten();
        if let Some(upstream) = forwarder {
            let credential = dialect::auth::credential(&dialect.auth, req.headers(), &query);
            let target = forward_target(dialect, rest, req.uri().query(), &query);
            return match upstream.forward_read(target, credential).await {
                Ok(answer) => {
                    let mut resp = Response::new(Full::new(answer.body));
                    *resp.status_mut() = answer.status;
                    *resp.headers_mut() = answer.headers;
                    with_headers(dialect, resp)
                }
                Err(e) => self.fail(dialect, route, e),
            };
        }
        let api = self.api_root(base);
        let urls = PublicUrls {
            web: &self.public_url,
            api: &api,
            path: &path,
        };

        // Phase: authenticate and decode, within the body limit.
        let (parts, body) = req.into_parts();
        let bytes = match crate::bounded::collect(&parts.headers, body, self.body_limit).await {
            Ok(bytes) => bytes,
            // A body that broke off is as unusable as one too large (the existing answer).
            Err(_) => return self.fail(dialect, route, self.too_large()),
        };
        let creq =
            match dialect::decode(dialect, route, params, &query, &parts.headers, bytes).await {
                Ok(r) => r,
                Err(e) => return self.fail(dialect, route, e),
            };
        let (paging, params) = (creq.paging, creq.params.clone());

        // Phase: perform, on the upstream or the reference forge.
        if route.site_admin_only {
            if let Err(e) = self.require_site_admin(&creq).await {
                return self.fail(dialect, route, e);
            }
        }
        let outcome = match crate::backend::perform(self.backend.as_ref(), creq).await {
            Ok(o) => o,
            Err(e) => return self.fail(dialect, route, e),
        };
        if let (Some(field), Outcome::Entity(obj)) = (&route.require, &outcome) {
            if obj.get(field) != Some(&Value::Bool(true)) {
                return self.fail(
                    dialect,
                    route,
                    CanonicalError::not_found("not a member of the organization"),
                );
            }
        }

        // Phase: encode, in the client's dialect.
        let mut shown = crate::canonical::CanonicalRequest::new(route.op);
        shown.params = params;
        shown.paging = paging;
        with_headers(
            dialect,
            dialect::encode(dialect, route, &shown, outcome, &urls, &query),
        )
    }

    /// Refuses a caller who is not a site administrator of the backend.
    async fn require_site_admin(
        &self,
        req: &crate::canonical::CanonicalRequest,
    ) -> Result<(), CanonicalError> {
        let mut me = crate::canonical::CanonicalRequest::new(crate::canonical::OpKind::UserCurrent);
        me.credential = req.credential.clone();
        match self.backend.execute(me).await? {
            Outcome::Entity(user) if user.get("site_admin") == Some(&Value::Bool(true)) => Ok(()),
            _ => Err(CanonicalError::new(
                ErrorKind::Forbidden,
                "only site administrators may do this",
            )),
        }
    }

    fn too_large(&self) -> CanonicalError {
        CanonicalError::new(
            ErrorKind::PayloadTooLarge,
            format!("the request body is larger than {} bytes", self.body_limit),
        )
    }

    /// Renders an error for the client, naming fields as the client's dialect names them.
    fn fail(&self, dialect: &Dialect, route: &Route, mut err: CanonicalError) -> HttpResponse {
        if route.list_of_one && err.kind == ErrorKind::NotFound {
            return plain(StatusCode::OK, "application/json", "[]");
        }
        if err.kind == ErrorKind::Forbidden {
            if let Some(kind) = route.forbidden_as {
                err.kind = kind;
            }
        }
        if let Some(field) = &err.field {
            if let Some(key) = dialect_key(route, field) {
                err.field = Some(key);
            }
        }
        if err.kind == ErrorKind::Validation && err.detail.is_empty() {
            err.detail = "invalid".into();
        }
        crate::layers::note(|n| n.error = Some(err.kind.name()));
        with_headers(
            dialect,
            dialect::errors::render(dialect, &err, &self.public_url),
        )
    }

    /// Renders an error for a request that never reached a route (deadline, panic), in the
    /// dialect its path speaks.
    pub fn error_for_path(&self, path: &str, err: CanonicalError) -> HttpResponse {
        match self.dialects.detect(path) {
            Some((dialect, _, _)) => with_headers(
                dialect,
                dialect::errors::render(dialect, &err, &self.public_url),
            ),
            None => plain(
                StatusCode::from_u16(match err.kind {
                    ErrorKind::UpstreamTimeout => 504,
                    _ => 500,
                })
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "text/plain",
                err.detail,
            ),
        }
    }
}

/// A forwarded read's path and query under the API root: the client's own, less any token
/// it put in the query (the credential travels in a header, as on every upstream call).
fn forward_target(
    dialect: &Dialect,
    rest: &str,
    raw_query: Option<&str>,
    query: &[(String, String)],
) -> String {
    let is_credential = |k: &str| dialect::auth::is_query_credential(&dialect.auth, k);
    match raw_query {
        None | Some("") => rest.to_string(),
        Some(raw) if !query.iter().any(|(k, _)| is_credential(k)) => format!("{rest}?{raw}"),
        Some(_) => {
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in query.iter().filter(|(k, _)| !is_credential(k)) {
                ser.append_pair(k, v);
            }
            let kept = ser.finish();
            if kept.is_empty() {
                rest.to_string()
            } else {
                format!("{rest}?{kept}")
            }
        }
    }
}

/// The client-dialect key of a canonical field or parameter, through the route's request shape.
fn dialect_key(route: &Route, field: &str) -> Option<String> {
    route
        .request
        .as_ref()?
        .fields
        .iter()
        .find_map(|rule| match &rule.source {
            Source::Canonical(f) | Source::Param(f) if f == field => Some(rule.key.clone()),
            _ => None,
        })
}

/// The dialect's own headers on every answer (e.g. GitHub's X-GitHub-Media-Type).
fn with_headers(dialect: &Dialect, mut resp: HttpResponse) -> HttpResponse {
    for (name, value) in &dialect.headers {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

fn plain(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> HttpResponse {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    resp
}
