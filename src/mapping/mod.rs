//! Mapping files: one declarative description per dialect (routes, auth, pagination, errors,
//! field maps), loaded and validated once at start-up into `Dialect`s shared behind an `Arc`.

pub mod body;
mod compile;
mod raw;
mod reader;
pub mod rebase;
pub mod shape;
pub mod template;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use http::{HeaderName, HeaderValue, Method, StatusCode};

use crate::canonical::{ErrorKind, OpKind, Params};
pub use body::Body;
pub use shape::{EncodeCtx, Shape};
pub use template::Template;

/// The mapping files built into the binary, used when no mappings directory is configured.
pub const EMBEDDED: &[(&str, &str)] = &[
    ("github.toml", include_str!("../../mappings/github.toml")),
    ("gitea.toml", include_str!("../../mappings/gitea.toml")),
    ("gitlab.toml", include_str!("../../mappings/gitlab.toml")),
];

/// A problem in a mapping file, pointing at the file and the key at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError {
    pub file: String,
    pub key: String,
    pub reason: String,
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.key, self.reason)
    }
}

#[derive(Debug)]
pub enum AuthSource {
    /// `Authorization: token T`, `Bearer T`, or Basic with the token as password (or as the
    /// user name when the password is empty or `x-oauth-basic`).
    Authorization,
    Header(HeaderName),
    Query(String),
}

#[derive(Debug)]
pub struct AuthSpec {
    pub accept: Vec<AuthSource>,
    pub emit_header: HeaderName,
    pub emit_value: Template,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRel {
    Next,
    Prev,
    First,
    Last,
}

impl LinkRel {
    pub fn name(self) -> &'static str {
        match self {
            LinkRel::Next => "next",
            LinkRel::Prev => "prev",
            LinkRel::First => "first",
            LinkRel::Last => "last",
        }
    }
}

#[derive(Debug)]
pub struct PaginationSpec {
    pub page_param: String,
    pub size_param: String,
    pub since_param: Option<String>,
    pub default_size: u64,
    pub max_size: u64,
    /// The header an upstream of this dialect reports its list total in.
    pub total_header: Option<HeaderName>,
    /// Headers set on list answers to clients, from page state.
    pub headers: Vec<(HeaderName, Template)>,
    pub link_order: Vec<LinkRel>,
    pub link_separator: String,
}

#[derive(Debug)]
pub struct KindSpec {
    pub status: StatusCode,
    pub message: Template,
    pub body: Option<Body>,
}

#[derive(Debug)]
pub struct DecodeRule {
    pub status: u16,
    pub kind: ErrorKind,
    pub code: Option<String>,
    pub message_contains: Option<String>,
}

#[derive(Debug)]
pub struct ErrorSpec {
    pub content_type: HeaderValue,
    pub body: Body,
    pub validation_body: Option<Body>,
    pub code_missing: String,
    pub code_invalid: String,
    pub code_conflict: String,
    pub default_resource: String,
    pub kinds: HashMap<ErrorKind, KindSpec>,
    pub decode: Vec<DecodeRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagingStyle {
    Page,
    Since,
}

#[derive(Debug)]
pub struct Route {
    pub op: OpKind,
    pub method: Method,
    pub path: String,
    pub path_template: Template,
    pub status: StatusCode,
    pub false_status: Option<StatusCode>,
    pub request: Option<Arc<Shape>>,
    pub response: Option<Arc<Shape>>,
    pub body: Option<Body>,
    pub paging: Option<PagingStyle>,
    /// (canonical parameter, query key in this dialect)
    pub query: Vec<(String, String)>,
    pub location: Option<Template>,
    pub forbidden_as: Option<ErrorKind>,
    /// Parameters that, when the caller leaves them out, come from another operation's result.
    pub resolve: Vec<(String, OpKind)>,
    /// Follow-up operations of a create, each carrying the input fields the steps before it
    /// could not.
    pub complete_with: Vec<OpKind>,
    /// Nested canonical fields the upstream answer lacks, and the operation that supplies each.
    pub enrich: Vec<(String, OpKind)>,
    pub inbound_only: bool,
    /// A boolean canonical field of the result that must be true, or the client sees 404
    /// (GitHub answers a non-member's membership with 404; Gitea with all-false permissions).
    pub require: Option<String>,
    /// (path placeholder, id parameter): the placeholder may carry a numeric id.
    pub numeric: Vec<(String, String)>,
    pub needs: Vec<String>,
    pub list_of_one: bool,
    pub upstream_only: bool,
    pub fixed_query: Vec<(String, String)>,
    pub grant_owner: Option<String>,
    pub next_route_on: Vec<ErrorKind>,
    pub upstream_not_found_as: Option<ErrorKind>,
    pub variant: Option<String>,
    pub site_admin_only: bool,
    pub inbound_when: Vec<String>,
}

impl Route {
    /// Parameters the route cannot be called without: path placeholders and required body
    /// parameters.
    pub fn needed_params(&self) -> impl Iterator<Item = &str> {
        let body = self.request.iter().flat_map(|s| {
            s.fields.iter().filter_map(|f| match &f.source {
                shape::Source::Param(p) if f.required => Some(p.as_str()),
                _ => None,
            })
        });
        self.path_template
            .vars()
            .chain(body)
            .chain(self.needs.iter().map(String::as_str))
    }

    /// Whether the route carries a parameter to the upstream (path, body, query or a plan step).
    pub fn carries(&self, param: &str) -> bool {
        self.needed_params().any(|p| p == param)
            || self.numeric.iter().any(|(_, id)| id == param)
            || self.query.iter().any(|(p, _)| p == param)
            || self.resolve.iter().any(|(p, _)| p == param)
            || self.grant_owner.as_deref() == Some(param)
            || self.request.as_ref().is_some_and(|s| {
                s.fields
                    .iter()
                    .any(|f| matches!(&f.source, shape::Source::Param(p) if p == param))
            })
    }

    /// The id parameter that may fill a path placeholder.
    pub fn numeric_for(&self, placeholder: &str) -> Option<&str> {
        self.numeric
            .iter()
            .find(|(p, _)| p == placeholder)
            .map(|(_, id)| id.as_str())
    }
}

#[derive(Debug)]
pub struct Dialect {
    pub name: String,
    pub file: String,
    pub base_paths: Vec<String>,
    pub forms: bool,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub auth: AuthSpec,
    pub pagination: PaginationSpec,
    pub errors: ErrorSpec,
    pub routes: Vec<Route>,
    routers: HashMap<Method, matchit::Router<usize>>,
    /// Route index → conditional routes with the same method and path (see `inbound_when`).
    alternatives: HashMap<usize, Vec<usize>>,
}

pub enum RouteLookup<'a> {
    Found(&'a Route, Params),
    MethodNotAllowed,
    NotFound,
}

impl Dialect {
    /// Matches a path (already stripped of its base path) to a route.
    pub fn match_route(
        &self,
        method: &Method,
        path: &str,
        query: &[(String, String)],
    ) -> RouteLookup<'_> {
        if let Some(router) = self.routers.get(method) {
            if let Ok(found) = router.at(path) {
                let chosen = self
                    .alternatives
                    .get(found.value)
                    .and_then(|alts| {
                        alts.iter().copied().find(|a| {
                            self.routes[*a].inbound_when.iter().any(|k| {
                                query
                                    .iter()
                                    .any(|(q, v)| q == k && !v.is_empty() && v != "false")
                            })
                        })
                    })
                    .unwrap_or(*found.value);
                let route = &self.routes[chosen];
                let mut params = Params::default();
                for (name, value) in found.params.iter() {
                    let decoded = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
                    let is_id = !decoded.is_empty() && decoded.bytes().all(|b| b.is_ascii_digit());
                    match route.numeric_for(name) {
                        Some(id_param) if is_id => params.set(id_param, decoded.into_owned()),
                        _ => params.set(name, decoded.into_owned()),
                    }
                }
                return RouteLookup::Found(route, params);
            }
        }
        let elsewhere = self
            .routers
            .iter()
            .any(|(m, r)| m != method && r.at(path).is_ok());
        if elsewhere {
            RouteLookup::MethodNotAllowed
        } else {
            RouteLookup::NotFound
        }
    }

    /// Routes this dialect offers for an operation when it is the upstream, in preference order:
    /// those of the configured variant first, then those of no variant.
    pub fn upstream_routes_of<'a>(
        &'a self,
        op: OpKind,
        variant: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Route> {
        let eligible = move |r: &&Route| r.op == op && !r.inbound_only;
        let chosen = self
            .routes
            .iter()
            .filter(eligible)
            .filter(move |r| variant.is_some() && r.variant.as_deref() == variant);
        chosen.chain(
            self.routes
                .iter()
                .filter(eligible)
                .filter(|r| r.variant.is_none()),
        )
    }

    /// Routes for an operation when this dialect is the upstream with no variant configured.
    pub fn upstream_routes(&self, op: OpKind) -> impl Iterator<Item = &Route> {
        self.upstream_routes_of(op, None)
    }

    pub fn supports(&self, op: OpKind) -> bool {
        self.upstream_routes(op).next().is_some()
    }
}

/// All loaded dialects, and the base paths that tell them apart on the proxy.
#[derive(Debug, Clone)]
pub struct Dialects {
    list: Vec<Arc<Dialect>>,
    /// (base path, dialect index), longest base first.
    bases: Vec<(String, usize)>,
}

impl Dialects {
    pub fn get(&self, name: &str) -> Option<&Arc<Dialect>> {
        self.list.iter().find(|d| d.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Dialect>> {
        self.list.iter()
    }

    /// Which dialect a request path speaks: returns the dialect, the base path it used, and
    /// the rest of the path.
    pub fn detect<'p>(&self, path: &'p str) -> Option<(&Arc<Dialect>, &str, &'p str)> {
        self.bases.iter().find_map(|(base, idx)| {
            let rest = path.strip_prefix(base.as_str())?;
            if base.is_empty() || rest.is_empty() || rest.starts_with('/') {
                Some((&self.list[*idx], base.as_str(), rest))
            } else {
                None
            }
        })
    }

    /// A Markdown table of every canonical operation and the routes each dialect maps it to,
    /// straight from the mapping files (`forgebridge routes`; the README carries its output).
    pub fn routes_table(&self) -> String {
        let mut out = String::from("| operation |");
        for d in &self.list {
            out.push_str(&format!(" {} |", d.name));
        }
        out.push_str("\n|---|");
        out.push_str(&"---|".repeat(self.list.len()));
        out.push('\n');
        for op in OpKind::ALL {
            out.push_str(&format!("| `{}` |", op.name()));
            for d in &self.list {
                let cells: Vec<String> = d
                    .routes
                    .iter()
                    .filter(|r| r.op == *op)
                    .map(|r| {
                        let mut notes = Vec::new();
                        if r.status != StatusCode::OK {
                            notes.push(r.status.as_u16().to_string());
                        }
                        if let Some(no) = r.false_status {
                            notes.push(format!("no: {}", no.as_u16()));
                        }
                        if r.inbound_only {
                            notes.push("clients only".into());
                        }
                        if r.upstream_only {
                            notes.push("upstream only".into());
                        }
                        if !r.inbound_when.is_empty() {
                            notes.push(format!("with `{}`", r.inbound_when.join("` or `")));
                        }
                        if let Some(v) = &r.variant {
                            notes.push(format!("upstream variant {v}"));
                        }
                        let notes = if notes.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", notes.join(", "))
                        };
                        format!("`{} {}`{notes}", r.method, r.path)
                    })
                    .collect();
                let cell = if cells.is_empty() {
                    "—".to_string()
                } else {
                    cells.join("<br>")
                };
                out.push_str(&format!(" {cell} |"));
            }
            out.push('\n');
        }
        out
    }

    /// Loads the mapping files from a directory, or the embedded ones when `dir` is None.
    pub fn load(dir: Option<&Path>) -> Result<Dialects, Vec<MappingError>> {
        let mut sources: Vec<(String, String)> = Vec::new();
        match dir {
            None => {
                for (name, text) in EMBEDDED {
                    sources.push((format!("mappings/{name}"), (*text).to_string()));
                }
            }
            Some(dir) => {
                let entries = std::fs::read_dir(dir).map_err(|e| {
                    vec![MappingError {
                        file: dir.display().to_string(),
                        key: "-".into(),
                        reason: format!("cannot read the mappings directory: {e}"),
                    }]
                })?;
                let mut paths: Vec<_> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                    .collect();
                paths.sort();
                for path in paths {
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        vec![MappingError {
                            file: path.display().to_string(),
                            key: "-".into(),
                            reason: format!("cannot read: {e}"),
                        }]
                    })?;
                    sources.push((path.display().to_string(), text));
                }
            }
        }
        Self::from_sources(&sources)
    }

    pub fn from_sources(sources: &[(String, String)]) -> Result<Dialects, Vec<MappingError>> {
        let mut errors = Vec::new();
        let mut list = Vec::new();
        for (file, text) in sources {
            match compile::compile(file, text) {
                Ok(d) => list.push(Arc::new(d)),
                Err(mut e) => errors.append(&mut e),
            }
        }
        let mut bases = Vec::new();
        for (idx, d) in list.iter().enumerate() {
            for base in &d.base_paths {
                if let Some((_, other)) = bases.iter().find(|(b, _)| b == base) {
                    let other: &Arc<Dialect> = &list[*other];
                    errors.push(MappingError {
                        file: d.file.clone(),
                        key: "base_paths".into(),
                        reason: format!("base path {base:?} is also claimed by {}", other.file),
                    });
                }
                bases.push((base.clone(), idx));
            }
        }
        if list.is_empty() && errors.is_empty() {
            errors.push(MappingError {
                file: "-".into(),
                key: "-".into(),
                reason: "no mapping files found".into(),
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        bases.sort_by_key(|b| std::cmp::Reverse(b.0.len()));
        Ok(Dialects { list, bases })
    }
}
