//! The HTTP upstream: performs canonical operations on a real forge (or another forgebridge)
//! in that forge's dialect, through its mapping file, over pooled connections; multi-call
//! plans (resolve a missing parameter, complete a create, enrich an answer) come from the
//! mapping, and a half-done create is rolled back, never reported as success.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Method, StatusCode};
use serde_json::Value;

use super::transport::{self, Failure, Transport};
use super::{Avatar, Backend, BoxFuture, Forwarded};
use crate::canonical::op::{Derivation, ResultKind, DERIVATIONS};
use crate::canonical::schema::is_default_value;
use crate::canonical::{
    CanonicalError, CanonicalRequest, Credential, ErrorKind, Field, FieldSet, Object, OpKind,
    Outcome, PageOf, Paging, Params,
};
use crate::dialect::{auth, errors, paging};
use crate::mapping::rebase::{origin_ends, Rebase};
use crate::mapping::shape::encode_segment;
use crate::mapping::{Dialect, PagingStyle, Route};

/// Largest upstream answer read into memory.
const MAX_UPSTREAM_BODY: usize = 16 * 1024 * 1024;
/// Upstream pages read at once for one client page larger than the upstream's largest.
const PAGES_AT_ONCE: usize = 4;

pub struct UpstreamForge {
    dialect: Arc<Dialect>,
    /// The upstream's origin and the proxy's public URL, that URLs on the first are shown on.
    rebase: Arc<Rebase>,
    api_root: String,
    /// The Host header of every call, built once (the client would format it per request).
    host: http::HeaderValue,
    transport: Transport,
    max_walk_pages: u64,
    variant: Option<String>,
    /// Whether reads in the upstream's own dialect are forwarded as they are: on in the
    /// settings, and the upstream's API root is its origin plus the dialect's base path, as
    /// the proxy's is (so pointing a URL at the proxy is swapping its origin).
    forwards: bool,
    /// Finds the upstream's origin (`https://gitea.example.com`) in a forwarded answer.
    origin: memchr::memmem::Finder<'static>,
}

/// One upstream answer.
struct Answer {
    status: StatusCode,
    link: Option<String>,
    total: Option<u64>,
    body: Bytes,
}

/// One page of an upstream list.
struct Fetched {
    items: Vec<Object>,
    total: Option<u64>,
    next: bool,
    last_page: Option<u64>,
}

impl UpstreamForge {
    pub fn new(
        dialect: Arc<Dialect>,
        base_url: &str,
        public_url: &str,
        timeout: Duration,
        max_walk_pages: u64,
        variant: Option<String>,
        forward_same_dialect: bool,
    ) -> anyhow::Result<Self> {
        let base_url = base_url.trim_end_matches('/').to_string();
        let parsed = url::Url::parse(&base_url)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            anyhow::bail!("upstream URL must be http or https: {base_url}");
        }
        let base_path = dialect.base_paths.first().cloned().unwrap_or_default();
        // A URL with a path is the API root as given (https://ghe.example.com/api/v3); so is
        // api.github.com, which serves the API at its root. Otherwise the dialect's base path
        // is appended (https://gitea.example.com → …/api/v1).
        let as_given = parsed.path() != "/" || parsed.host_str() == Some("api.github.com");
        let api_root = if as_given {
            base_url.clone()
        } else {
            format!("{base_url}{base_path}")
        };
        let origin = parsed.origin().ascii_serialization();
        let host = api_root
            .parse::<http::Uri>()
            .ok()
            .as_ref()
            .and_then(transport::host_header)
            .ok_or_else(|| anyhow::anyhow!("upstream URL has no usable host: {base_url}"))?;
        let forwards = forward_same_dialect && api_root == format!("{origin}{base_path}");
        let finder = memchr::memmem::Finder::new(origin.as_bytes()).into_owned();
        Ok(UpstreamForge {
            forwards,
            origin: finder,
            host,
            dialect,
            rebase: Arc::new(Rebase::new(&origin, public_url)),
            api_root,
            transport: Transport::new(timeout, MAX_UPSTREAM_BODY),
            max_walk_pages,
            variant,
        })
    }

    fn unsupported(&self, op: OpKind) -> CanonicalError {
        CanonicalError::new(
            ErrorKind::Unsupported,
            format!(
                "operation {} is not supported by the {} upstream",
                op.name(),
                self.dialect.name
            ),
        )
    }

    /// Picks the first route whose parameters are all at hand; failing that, the first whose
    /// missing parameters can be derived (an id looked up from a login, or back) or resolved.
    fn choose_route(&self, req: &CanonicalRequest) -> Result<&Route, CanonicalError> {
        let given = |route: &Route, p: &str| {
            req.params.get(p).is_some()
                || route
                    .numeric_for(p)
                    .is_some_and(|id| req.params.get(id).is_some())
        };
        let obtainable = |route: &Route, p: &str| {
            given(route, p)
                || route.resolve.iter().any(|(r, _)| r == p)
                || (req.derive
                    && DERIVATIONS
                        .iter()
                        .any(|d| d.wanted == p && req.params.get(d.from).is_some()))
        };
        let routes = || {
            self.dialect
                .upstream_routes_of(req.op, self.variant.as_deref())
        };
        if let Some(route) = routes().find(|r| r.needed_params().all(|p| given(r, p))) {
            return Ok(route);
        }
        if let Some(route) = routes().find(|r| r.needed_params().all(|p| obtainable(r, p))) {
            return Ok(route);
        }
        match routes()
            .flat_map(|r| r.needed_params())
            .find(|p| req.params.get(p).is_none())
        {
            Some(missing) => Err(CanonicalError::validation(
                missing,
                crate::canonical::ValidationCode::Missing,
                format!("{missing} is missing"),
            )),
            None => Err(self.unsupported(req.op)),
        }
    }

    /// Fills the route's missing parameters: an id standing in for a login in the path, a
    /// resolution the mapping declares, or a lookup through a derivation.
    async fn fill_params(
        &self,
        route: &Route,
        req: &mut CanonicalRequest,
    ) -> Result<(), CanonicalError> {
        let mut needed: Vec<String> = route.needed_params().map(str::to_string).collect();
        // The organization first: finding a user by id may need its member list.
        needed.sort_by_key(|p| !p.starts_with("org"));
        for param in needed {
            if req.params.get(&param).is_some() {
                continue;
            }
            if let Some(id) = route.numeric_for(&param).and_then(|id| req.params.get(id)) {
                let id = id.to_string();
                req.params.set(&param, id);
                continue;
            }
            if let Some((_, op)) = route.resolve.iter().find(|(r, _)| *r == param) {
                let mut sub = CanonicalRequest::new(*op);
                sub.credential = req.credential.clone();
                let value = self.lookup(sub, "login").await?;
                req.params.set(&param, value);
                continue;
            }
            if let Some(d) = DERIVATIONS
                .iter()
                .find(|d| d.wanted == param && req.params.get(d.from).is_some())
            {
                let from = req.params.get(d.from).unwrap_or_default().to_string();
                let value = self.derive(d, &from, req).await?;
                req.params.set(&param, value);
            }
        }
        Ok(())
    }

    /// Performs a lookup and reads one field of the entity it returns.
    async fn lookup(&self, sub: CanonicalRequest, field: &str) -> Result<String, CanonicalError> {
        let op = sub.op;
        match self.perform(sub).await? {
            Outcome::Entity(obj) => match obj.get(field) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Number(n)) => Ok(n.to_string()),
                _ => Err(CanonicalError::new(
                    ErrorKind::UpstreamUnavailable,
                    format!(
                        "the {} upstream's {} answer has no {field}",
                        self.dialect.name,
                        op.name()
                    ),
                )),
            },
            _ => Err(CanonicalError::not_found(format!(
                "{} found nothing",
                op.name()
            ))),
        }
    }

    async fn derive(
        &self,
        d: &Derivation,
        from: &str,
        req: &CanonicalRequest,
    ) -> Result<String, CanonicalError> {
        let mut sub = CanonicalRequest::new(d.op);
        sub.credential = req.credential.clone();
        sub.params.set(d.from, from);
        sub.derive = false;
        let routable = self.choose_route(&sub).is_ok();
        if routable {
            return self.lookup(sub, d.field).await;
        }
        // No way to fetch by id: find the organization in the full list, or the user among
        // the members of the organization a member operation names.
        let list_op = match (d.op, d.from) {
            (OpKind::OrgGet, "org_id") => OpKind::OrgList,
            (OpKind::UserGet, "user_id") if req.params.get("org").is_some() => OpKind::MemberList,
            _ => return Err(self.unsupported(d.op)),
        };
        let mut list = CanonicalRequest::new(list_op);
        list.credential = req.credential.clone();
        list.params = req.params.clone();
        let route = self.choose_route(&list)?;
        let style = route.paging.unwrap_or(PagingStyle::Page);
        let all = self.walk(route, &list, style).await?;
        all.iter()
            .find(|o| o.get("id").is_some_and(|v| value_text(v) == from))
            .and_then(|o| o.get(d.field))
            .map(value_text)
            .ok_or_else(|| {
                let err = CanonicalError::not_found(format!("nothing with id {from}"));
                match d.op {
                    OpKind::UserGet => err.with_resource("User"),
                    _ => err,
                }
            })
    }

    fn perform(&self, mut req: CanonicalRequest) -> BoxFuture<'_, Result<Outcome, CanonicalError>> {
        Box::pin(async move {
            let mut route = self.choose_route(&req)?;
            loop {
                self.fill_params(route, &mut req).await?;
                self.check_expressible(route, &req)?;
                let result = match req.op.result() {
                    ResultKind::List(_) => self.list(route, &req).await.map(Outcome::List),
                    _ => self.single(route, req.clone()).await,
                };
                let next = match &result {
                    Err(e) if route.next_route_on.contains(&e.kind) => self
                        .dialect
                        .upstream_routes_of(req.op, self.variant.as_deref())
                        .skip_while(|r| !std::ptr::eq(*r, route))
                        .nth(1),
                    _ => None,
                };
                match next {
                    Some(r) => route = r,
                    None => return result,
                }
            }
        })
    }

    /// Refuses input the upstream has no place for, rather than dropping it silently.
    fn check_expressible(
        &self,
        route: &Route,
        req: &CanonicalRequest,
    ) -> Result<(), CanonicalError> {
        let completion: Vec<_> = route
            .complete_with
            .iter()
            .filter_map(|op| {
                self.dialect
                    .upstream_routes_of(*op, self.variant.as_deref())
                    .next()
            })
            .filter_map(|r| r.request.clone())
            .collect();
        // Parameters that carry meaning (an owner, a new login) must reach the upstream.
        for param in ["admin", "new_login"] {
            if req.params.get(param).is_some() && !route.carries(param) {
                return Err(CanonicalError::validation(
                    param,
                    crate::canonical::ValidationCode::Invalid,
                    format!(
                        "{{field}} cannot be passed to the {} upstream",
                        self.dialect.name
                    ),
                ));
            }
        }
        for (field, value) in &req.input {
            let storable = route
                .request
                .as_ref()
                .is_some_and(|s| s.writes_canonical(field))
                || completion.iter().any(|s| s.writes_canonical(field));
            if !storable && !is_default_value(field, value) {
                return Err(CanonicalError::validation(
                    field,
                    crate::canonical::ValidationCode::Invalid,
                    format!(
                        "{{field}} cannot be stored by the {} upstream",
                        self.dialect.name
                    ),
                ));
            }
        }
        Ok(())
    }

    async fn single(
        &self,
        route: &Route,
        req: CanonicalRequest,
    ) -> Result<Outcome, CanonicalError> {
        let body = route
            .request
            .as_ref()
            .map(|s| s.encode_request(&req.input, &req.params));
        let answer = self.send(route, &req, Vec::new(), body).await?;
        if route.false_status == Some(answer.status) && req.op.result() == ResultKind::Flag {
            return Ok(Outcome::Flag(false));
        }
        if !answer.status.is_success() {
            return Err(self.upstream_error(route, &req, &answer));
        }
        let outcome = match req.op.result() {
            ResultKind::Flag => Outcome::Flag(true),
            ResultKind::Done => Outcome::Done,
            ResultKind::List(_) => Outcome::List(PageOf::default()),
            ResultKind::Entity(_) => {
                let obj = match &route.response {
                    Some(shape) if !answer.body.is_empty() => {
                        let decoded = if route.list_of_one {
                            shape.decode_first_slice(&answer.body)
                        } else {
                            shape.decode_slice(&answer.body).map(Some)
                        };
                        let Some(mut obj) = decoded.map_err(|_| self.garbled())? else {
                            return Err(CanonicalError::not_found(format!(
                                "{} found nothing",
                                req.op.name()
                            )));
                        };
                        self.rebase.object(&mut obj);
                        Some(obj)
                    }
                    _ => None,
                };
                // An answer that names no entity (GitHub's rename job) is as good as none.
                let obj = obj.filter(|o| !o.is_empty());
                let obj = match obj {
                    Some(obj) if req.want_result => self.enrich(route, &req, obj).await?,
                    Some(obj) => obj,
                    None if req.want_result => self.read_back(&req).await?,
                    None => Object::new(),
                };
                Outcome::Entity(obj)
            }
        };
        if let (ResultKind::Entity(_), Outcome::Entity(created), OpKind::OrgCreate) =
            (req.op.result(), &outcome, req.op)
        {
            return self.finish_create(route, &req, created.clone()).await;
        }
        Ok(outcome)
    }

    /// Fetches the entity a mutation produced when the upstream answered without it.
    async fn read_back(&self, req: &CanonicalRequest) -> Result<Object, CanonicalError> {
        let login = req
            .params
            .get("new_login")
            .or_else(|| req.params.get("org"))
            .map(str::to_string)
            .or_else(|| input_login(req));
        let (Some(login), Some(entity)) = (login, req.op.result().entity()) else {
            return Ok(Object::new());
        };
        if entity != crate::canonical::Entity::Organization {
            return Ok(Object::new());
        }
        let get = |login: &str| {
            let mut get = CanonicalRequest::new(OpKind::OrgGet);
            get.credential = req.credential.clone();
            get.params.set("org", login);
            get
        };
        let found = match self.perform(get(&login)).await {
            // A rename the upstream runs later (GitHub queues it): the old name still answers.
            Err(e) if e.kind == ErrorKind::NotFound && req.op == OpKind::OrgRename => {
                let old = req.params.get("org").unwrap_or_default().to_string();
                self.perform(get(&old)).await?
            }
            other => other?,
        };
        match found {
            Outcome::Entity(obj) => Ok(obj),
            _ => Ok(Object::new()),
        }
    }

    /// Fills nested objects the upstream's answer lacks (e.g. Gitea permissions name no org).
    async fn enrich(
        &self,
        route: &Route,
        req: &CanonicalRequest,
        mut obj: Object,
    ) -> Result<Object, CanonicalError> {
        for (field, op) in &route.enrich {
            if obj.contains_key(field) {
                continue;
            }
            let mut sub = CanonicalRequest::new(*op);
            sub.credential = req.credential.clone();
            sub.params = req.params.clone();
            if let Outcome::Entity(found) = self.perform(sub).await? {
                obj.insert(field, Value::Object(found.into_map()));
            }
        }
        Ok(obj)
    }

    /// The later steps of a declared create plan: grant ownership to the named user
    /// (`grant_owner`), then set what the create could not carry (`complete_with`). When a
    /// step fails, the create is undone, and the answer says exactly what happened.
    async fn finish_create(
        &self,
        route: &Route,
        req: &CanonicalRequest,
        created: Object,
    ) -> Result<Outcome, CanonicalError> {
        let Some(login) = created
            .get("login")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| input_login(req))
        else {
            return Ok(Outcome::Entity(created));
        };
        let mut steps = Vec::new();
        let mut grant_user = None;
        if let Some(user) = route.grant_owner.as_deref().and_then(|p| req.params.get(p)) {
            let mut grant = CanonicalRequest::new(OpKind::MemberSetRole);
            grant.params = Params::default()
                .with("org", login.clone())
                .with("user", user);
            grant.input.insert("is_owner", Value::Bool(true));
            grant.want_result = false;
            steps.push((grant, format!("making {user} its owner")));
            grant_user = Some((
                route.grant_owner.clone().unwrap_or_default(),
                user.to_string(),
            ));
        }
        let carried = |f: &str| {
            route
                .request
                .as_ref()
                .is_some_and(|s| s.writes_canonical(f))
        };
        let mut taken: Vec<&str> = Vec::new();
        for next_op in &route.complete_with {
            let shape = self
                .dialect
                .upstream_routes_of(*next_op, self.variant.as_deref())
                .next()
                .and_then(|r| r.request.clone());
            let step_input: Object = req
                .input
                .iter()
                .filter(|(f, v)| !carried(f) && !is_default_value(f, v) && !taken.contains(f))
                .filter(|(f, _)| shape.as_ref().is_some_and(|s| s.writes_canonical(f)))
                .map(|(f, v)| (f, v.clone()))
                .collect();
            if !step_input.is_empty() {
                taken.extend(step_input.keys());
                let mut step = CanonicalRequest::new(*next_op);
                step.params.set("org", login.clone());
                step.input = step_input;
                let what = match next_op {
                    OpKind::OrgSetAvatar => "uploading its avatar".to_string(),
                    _ => "setting its other fields".to_string(),
                };
                steps.push((step, what));
            }
        }
        // The upstream stored what it was sent; where its answer leaves a field out (GitHub's
        // admin create answers without the display name), the answer shows what was stored.
        let mut result = created;
        for (field, value) in &req.input {
            if field != "avatar" && !is_default_value(field, value) {
                result.insert_if_absent(field, || value.clone());
            }
        }
        for (mut step, what) in steps {
            step.credential = req.credential.clone();
            let step_op = step.op;
            match self.perform(step).await {
                Ok(Outcome::Entity(obj)) if step_op == OpKind::OrgUpdate => result = obj,
                Ok(_) => {}
                Err(mut step_error) => {
                    // An owner who does not exist is the caller's mistake, not a missing org.
                    if let (OpKind::MemberSetRole, ErrorKind::NotFound, Some((param, user))) =
                        (step_op, step_error.kind, &grant_user)
                    {
                        step_error = CanonicalError::validation(
                            param,
                            crate::canonical::ValidationCode::Invalid,
                            format!("user {user} does not exist"),
                        );
                    }
                    return Err(self.undo_create(req, &login, &what, step_error).await);
                }
            }
        }
        Ok(Outcome::Entity(result))
    }

    async fn undo_create(
        &self,
        req: &CanonicalRequest,
        login: &str,
        what: &str,
        step_error: CanonicalError,
    ) -> CanonicalError {
        let mut undo = CanonicalRequest::new(OpKind::OrgDelete);
        undo.credential = req.credential.clone();
        undo.params.set("org", login);
        undo.want_result = false;
        let mut err = step_error.clone();
        match self.perform(undo).await {
            Ok(_) => {
                err.detail = format!(
                    "{} (organization {login} was created upstream, {what} failed, and it was deleted again: nothing was changed)",
                    step_error.detail
                );
            }
            Err(undo_error) => {
                err.kind = ErrorKind::UpstreamUnavailable;
                err.detail = format!(
                    "organization {login} was created upstream, but {what} failed ({}) and deleting it again failed too ({}); it exists upstream without that step",
                    step_error.detail, undo_error.detail
                );
            }
        }
        err
    }

    async fn list(&self, route: &Route, req: &CanonicalRequest) -> Result<PageOf, CanonicalError> {
        let style = route.paging.unwrap_or(PagingStyle::Page);
        let max = self.dialect.pagination.max_size;
        let paging = req.paging.unwrap_or(Paging::Page {
            page: 1,
            per_page: self.dialect.pagination.default_size,
        });
        // A search the upstream cannot do is done here, over the whole list.
        let local_search = req
            .params
            .get("search")
            .filter(|_| !route.query.iter().any(|(p, _)| p == "search"))
            .map(str::to_ascii_lowercase);
        // So is a member role filter (GitHub's `role=admin|member`).
        let local_role = req
            .params
            .get("role")
            .filter(|r| *r != "all" && !route.query.iter().any(|(p, _)| p == "role"))
            .map(str::to_string);
        if local_search.is_some() || local_role.is_some() {
            let mut all = self.walk(route, req, style).await?;
            if let Some(needle) = local_search {
                all.retain(|o| {
                    SEARCHED_FIELDS.iter().any(|f| {
                        o.get(f)
                            .and_then(Value::as_str)
                            .is_some_and(|v| v.to_ascii_lowercase().contains(&needle))
                    })
                });
            }
            if let Some(role) = local_role {
                self.fill_member_roles(req, &mut all).await?;
                let want_owner = role == "admin";
                all.retain(|u| {
                    (u.get("org_role").and_then(Value::as_str) == Some("owner")) == want_owner
                });
            }
            all.sort_by_key(|o| paging::item_id(o).unwrap_or(0));
            return Ok(PageOf::window(all, Some(paging)));
        }
        match (paging, style) {
            (Paging::Page { page, per_page }, PagingStyle::Page) if per_page <= max => {
                let first = self
                    .fetch(route, req, page, per_page, *CURSOR_FIELD)
                    .await?;
                let total = match (first.total, req.want_total) {
                    (Some(t), _) => Some(t),
                    (None, false) => None,
                    (None, true) => match first.last_page {
                        Some(last) if last > page => {
                            let tail = self
                                .fetch(route, req, last, per_page, *CURSOR_FIELD)
                                .await?;
                            Some((last - 1) * per_page + tail.items.len() as u64)
                        }
                        _ if !first.next => Some((page - 1) * per_page + first.items.len() as u64),
                        _ => None,
                    },
                };
                Ok(PageOf {
                    items: first.items,
                    total,
                    more: first.next,
                })
            }
            // A client page larger than the upstream's: read the upstream pages that cover it.
            (Paging::Page { page, per_page }, PagingStyle::Page) => {
                let offset = (page.max(1) - 1).saturating_mul(per_page);
                let first_page = offset / max + 1;
                let skip = (offset % max) as usize;
                // The upstream pages that cover the client's page are read at once (a few at
                // a time), not one after the other: one upstream round trip instead of two or
                // three. The price: when the list ends early, the reads past its end were
                // not needed (they are dropped, unread).
                let needed = skip as u64 + per_page;
                let covering = needed.div_ceil(max);
                let mut pages = futures_util::stream::iter(
                    (0..covering)
                        .map(|i| self.fetch(route, req, first_page + i, max, *CURSOR_FIELD)),
                )
                .buffered(PAGES_AT_ONCE);
                let mut upstream_page = first_page;
                let mut items = Vec::with_capacity(needed.min(1000) as usize);
                let (mut total, mut next) = (None, false);
                loop {
                    let got = match pages.next().await {
                        Some(got) => got?,
                        // Pages shorter than the upstream's declared largest (an upstream
                        // configured below it): read on, one page at a time.
                        None if (items.len() as u64) < needed => {
                            self.fetch(route, req, upstream_page, max, *CURSOR_FIELD)
                                .await?
                        }
                        None => break,
                    };
                    upstream_page += 1;
                    total = got.total.or(total);
                    next = got.next;
                    let count = got.items.len();
                    items.extend(got.items);
                    if !next || count == 0 {
                        break;
                    }
                }
                // Reads still in flight past the end of the list are cancelled here.
                drop(pages);
                let leftover = items.len() > skip + per_page as usize;
                let window: Vec<Object> = items
                    .into_iter()
                    .skip(skip)
                    .take(per_page as usize)
                    .collect();
                let seen = offset + window.len() as u64;
                let more = total.map_or(next || leftover, |t| seen < t);
                Ok(PageOf {
                    items: window,
                    total,
                    more,
                })
            }
            (Paging::Since { since, per_page }, PagingStyle::Since) => {
                let got = self
                    .fetch(route, req, since, per_page.min(max), *CURSOR_FIELD)
                    .await?;
                Ok(PageOf {
                    items: got.items,
                    total: got.total,
                    more: got.next,
                })
            }
            _ => {
                let mut all = self.walk(route, req, style).await?;
                all.sort_by_key(|o| paging::item_id(o).unwrap_or(0));
                Ok(PageOf::window(all, Some(paging)))
            }
        }
    }

    /// Gives every member its role in the organization, asking the upstream one member at a
    /// time where its member list carries no roles (Gitea, GitHub).
    async fn fill_member_roles(
        &self,
        req: &CanonicalRequest,
        members: &mut [Object],
    ) -> Result<(), CanonicalError> {
        for member in members.iter_mut().filter(|m| !m.contains_key("org_role")) {
            let Some(login) = member
                .get("login")
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                continue;
            };
            let mut perms = CanonicalRequest::new(OpKind::MemberPermissions);
            perms.credential = req.credential.clone();
            perms.params = req.params.clone().with("user", login);
            perms.want_result = false;
            let owner = match self.perform(perms).await? {
                Outcome::Entity(p) => p.get("is_owner").and_then(Value::as_bool).unwrap_or(false),
                _ => false,
            };
            member.insert(
                "org_role",
                Value::from(if owner { "owner" } else { "member" }),
            );
        }
        Ok(())
    }

    /// Reads a whole upstream list, page by page, to re-paginate it in another style.
    async fn walk(
        &self,
        route: &Route,
        req: &CanonicalRequest,
        style: PagingStyle,
    ) -> Result<Vec<Object>, CanonicalError> {
        let size = self.dialect.pagination.max_size;
        let mut all = Vec::new();
        let mut position = match style {
            PagingStyle::Page => 1,
            PagingStyle::Since => 0,
        };
        for _ in 0..self.max_walk_pages {
            let got = self
                .fetch(route, req, position, size, *FIELDS_READ_WHOLE)
                .await?;
            let last_id = got.items.last().and_then(paging::item_id);
            let count = got.items.len() as u64;
            all.extend(got.items);
            if !got.next || count == 0 {
                return Ok(all);
            }
            position = match style {
                PagingStyle::Page => position + 1,
                PagingStyle::Since => last_id.unwrap_or(position),
            };
        }
        Err(CanonicalError::new(
            ErrorKind::UpstreamUnavailable,
            format!(
                "the {} upstream's list is longer than {} pages; cannot re-paginate it",
                self.dialect.name, self.max_walk_pages
            ),
        ))
    }

    /// One upstream page of a list, decoded: its items, with the fields the client shows and
    /// `read_here` (the ones this module reads itself: [`CURSOR_FIELD`] for a page,
    /// [`FIELDS_READ_WHOLE`] for a list read whole), and what its answer says of the pages
    /// after it.
    async fn fetch(
        &self,
        route: &Route,
        req: &CanonicalRequest,
        position: u64,
        size: u64,
        read_here: FieldSet,
    ) -> Result<Fetched, CanonicalError> {
        let style = route.paging.unwrap_or(PagingStyle::Page);
        let query = paging::upstream_query(&self.dialect.pagination, style, position, size);
        let answer = self.send(route, req, query, None).await?;
        if !answer.status.is_success() {
            return Err(self.upstream_error(route, req, &answer));
        }
        let fields = req.fields_shown.map(|shown| shown.union(read_here));
        // Items are scanned, not decoded: each is read when its fields are asked for.
        let items: Vec<Object> = match &route.response {
            Some(shape) => shape
                .scan_list(&answer.body, fields, &self.rebase)
                .map_err(|_| self.garbled())?,
            None => match serde_json::from_slice::<Value>(&answer.body) {
                Ok(Value::Array(_)) => Vec::new(),
                _ => return Err(self.garbled()),
            },
        };
        let links = answer
            .link
            .as_deref()
            .map(paging::parse_link)
            .unwrap_or_default();
        let last_page = links
            .get("last")
            .and_then(|u| paging::query_param(u, &self.dialect.pagination.page_param))
            .and_then(|p| p.parse().ok());
        let next = links.contains_key("next");
        Ok(Fetched {
            items,
            total: answer.total,
            next,
            last_page,
        })
    }

    async fn send(
        &self,
        route: &Route,
        req: &CanonicalRequest,
        mut query: Vec<(String, String)>,
        body: Option<Value>,
    ) -> Result<Answer, CanonicalError> {
        let path = route
            .path_template
            .render(|var| req.params.get(var).map(encode_segment));
        for (param, key) in &route.query {
            if let Some(v) = req.params.get(param) {
                query.push((key.clone(), v.to_string()));
            }
        }
        query.extend(route.fixed_query.iter().cloned());
        let mut url = [self.api_root.as_str(), path.as_str()].concat();
        if !query.is_empty() {
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &query {
                ser.append_pair(k, v);
            }
            url.push('?');
            url.push_str(&ser.finish());
        }
        let uri: http::Uri = url.parse().map_err(|_| {
            CanonicalError::new(
                ErrorKind::Internal,
                format!("cannot build an upstream URL for {}", route.op.name()),
            )
        })?;
        let mut headers = self.headers(req.credential.as_ref());
        let payload = match &body {
            // A file travels as a multipart part where the dialect takes forms (GitLab).
            Some(json) if self.dialect.forms && has_file(json) => {
                let (content_type, bytes) = multipart_form(json);
                let content_type = http::HeaderValue::from_str(&content_type).map_err(|_| {
                    CanonicalError::new(ErrorKind::Internal, "cannot build a multipart body")
                })?;
                headers.insert(http::header::CONTENT_TYPE, content_type);
                bytes
            }
            Some(json) => {
                headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                Bytes::from(serde_json::to_vec(json).unwrap_or_default())
            }
            None => Bytes::new(),
        };
        let mut request = http::Request::new(payload);
        *request.method_mut() = route.method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        self.exchange(&request)
            .await
            .map(|reply| self.answer(reply))
    }

    /// The request's headers every call carries: Host, User-Agent, Accept and the credential.
    fn headers(&self, credential: Option<&Credential>) -> http::HeaderMap {
        let mut headers = http::HeaderMap::with_capacity(6);
        headers.insert(http::header::HOST, self.host.clone());
        headers.insert(
            http::header::USER_AGENT,
            self.transport.user_agent().clone(),
        );
        headers.insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/json"),
        );
        if let Some((name, value)) = credential.and_then(|c| auth::emit(&self.dialect.auth, c)) {
            headers.insert(name, value);
        }
        headers
    }

    /// Sends a request and reads its answer (its status goes into the access log). Only a
    /// request that never reached the upstream, and only an idempotent one, is tried again: a
    /// write is never repeated.
    async fn exchange(
        &self,
        request: &http::Request<Bytes>,
    ) -> Result<transport::Reply, CanonicalError> {
        let idempotent = matches!(*request.method(), Method::GET | Method::HEAD);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.transport.send(request).await {
                Ok(reply) => {
                    crate::layers::note(|n| n.upstream_status = Some(reply.status.as_u16()));
                    return Ok(reply);
                }
                Err(Failure::Connect) if idempotent && attempt < 2 => continue,
                Err(f) => return Err(self.transport_error(f)),
            }
        }
    }

    /// A read in the upstream's own dialect, forwarded as it is; the answer's status, body
    /// and list headers come back with every URL on the upstream's origin pointed at the
    /// proxy.
    pub async fn forward_read(
        &self,
        path_and_query: String,
        credential: Option<Credential>,
    ) -> Result<Forwarded, CanonicalError> {
        let uri: http::Uri = [self.api_root.as_str(), &path_and_query]
            .concat()
            .parse()
            .map_err(|_| {
                CanonicalError::new(ErrorKind::Internal, "cannot build an upstream URL")
            })?;
        let mut request = http::Request::new(Bytes::new());
        *request.uri_mut() = uri;
        *request.headers_mut() = self.headers(credential.as_ref());
        let reply = self.exchange(&request).await?;
        let pagination = &self.dialect.pagination;
        let names = [
            &http::header::CONTENT_TYPE,
            &http::header::ETAG,
            &http::header::LAST_MODIFIED,
        ];
        let names = names
            .into_iter()
            .chain(pagination.total_header.as_ref())
            .chain(pagination.headers.iter().map(|(h, _)| h));
        let mut headers = http::HeaderMap::new();
        for name in names {
            if let Some(Ok(v)) = reply.headers.get(name.as_str()).map(str::parse) {
                headers.insert(name.clone(), v);
            }
        }
        for name in [http::header::LINK, http::header::LOCATION] {
            let Some(value) = reply.headers.get(name.as_str()) else {
                continue;
            };
            let pointed = self.point_at_proxy(value.as_bytes());
            let value = pointed.as_deref().unwrap_or(value.as_bytes());
            if let Ok(v) = http::HeaderValue::from_bytes(value) {
                headers.insert(name, v);
            }
        }
        let body = match self.point_at_proxy(&reply.body) {
            Some(pointed) => Bytes::from(pointed),
            None => reply.body,
        };
        Ok(Forwarded {
            status: reply.status,
            headers,
            body,
        })
    }

    /// Text (a body, a header's value) with the upstream's origin pointed at the proxy's public
    /// URL wherever it is a URL's origin (not followed by more of a host name or a port);
    /// None when there is none to point.
    fn point_at_proxy(&self, text: &[u8]) -> Option<Vec<u8>> {
        let skip = self.origin.needle().len();
        let mut found = self
            .origin
            .find_iter(text)
            .filter(|&at| origin_ends(text, at + skip))
            .peekable();
        found.peek()?;
        let mut out = Vec::with_capacity(text.len() + text.len() / 8);
        let mut from = 0;
        for at in found {
            out.extend_from_slice(&text[from..at]);
            out.extend_from_slice(self.rebase.public_url().as_bytes());
            from = at + skip;
        }
        out.extend_from_slice(&text[from..]);
        Some(out)
    }

    fn answer(&self, reply: transport::Reply) -> Answer {
        let header = |name: &str| reply.headers.get(name).map(str::to_string);
        let link = header("link");
        let total = self
            .dialect
            .pagination
            .total_header
            .as_ref()
            .and_then(|h| header(h.as_str()))
            .and_then(|v| v.trim().parse().ok());
        Answer {
            status: reply.status,
            link,
            total,
            body: reply.body,
        }
    }

    fn transport_error(&self, failure: Failure) -> CanonicalError {
        match failure {
            Failure::Timeout => CanonicalError::new(
                ErrorKind::UpstreamTimeout,
                format!(
                    "the {} upstream did not answer within {} s",
                    self.dialect.name,
                    self.transport.timeout().as_secs_f32()
                ),
            ),
            Failure::TooLarge => CanonicalError::new(
                ErrorKind::UpstreamUnavailable,
                "the upstream's answer is too large",
            ),
            Failure::Connect | Failure::Broken => CanonicalError::new(
                ErrorKind::UpstreamUnavailable,
                format!("the {} upstream could not be reached", self.dialect.name),
            ),
        }
    }

    fn garbled(&self) -> CanonicalError {
        CanonicalError::new(
            ErrorKind::UpstreamUnavailable,
            format!(
                "the {} upstream answered with a body that is not the expected JSON",
                self.dialect.name
            ),
        )
    }

    fn upstream_error(
        &self,
        route: &Route,
        req: &CanonicalRequest,
        answer: &Answer,
    ) -> CanonicalError {
        let mut err = errors::decode(&self.dialect, answer.status, &answer.body);
        if let (ErrorKind::NotFound, Some(kind)) = (err.kind, route.upstream_not_found_as) {
            err.kind = kind;
            err.detail = format!("the {} upstream refused the caller", self.dialect.name);
        }
        err.detail = err
            .detail
            .replace(self.rebase.origin(), self.rebase.public_url());
        if err.kind == ErrorKind::Conflict {
            let name = req
                .params
                .get("new_login")
                .map(str::to_string)
                .or_else(|| input_login(req));
            if let Some(name) = name {
                err.detail = name;
                err.field = Some(
                    if req.params.get("new_login").is_some() {
                        "new_login"
                    } else {
                        "login"
                    }
                    .to_string(),
                );
            }
        }
        if matches!(err.kind, ErrorKind::Validation) && err.field.is_none() {
            err.detail = format!(
                "the {} upstream refused the request: {}",
                self.dialect.name, err.detail
            );
        }
        err
    }
}

/// The fields a search the upstream cannot do looks in, here.
const SEARCHED_FIELDS: [&str; 2] = ["login", "display_name"];

/// The field of a list's items read here whatever the client shows: the paging cursor (a
/// `since` Link's) and the sort key of a list read whole.
static CURSOR_FIELD: LazyLock<FieldSet> = LazyLock::new(|| Field::of("id").into_iter().collect());

/// The fields read here from a list read whole ([`UpstreamForge::walk`]), whatever the client
/// shows: the cursor, a local search's, and the member role a role filter reads and fills.
static FIELDS_READ_WHOLE: LazyLock<FieldSet> = LazyLock::new(|| {
    ["id", "org_role"]
        .into_iter()
        .chain(SEARCHED_FIELDS)
        .filter_map(Field::of)
        .collect()
});

/// Whether a request body carries an uploaded file (a data: URL).
fn has_file(body: &Value) -> bool {
    body.as_object().is_some_and(|o| {
        o.values()
            .any(|v| v.as_str().is_some_and(|s| s.starts_with("data:")))
    })
}

/// A request body as multipart/form-data: data: URLs become file parts, the rest text parts.
fn multipart_form(body: &Value) -> (String, Bytes) {
    let parts: Vec<transport::Part<'_>> = body
        .as_object()
        .into_iter()
        .flatten()
        .map(
            |(key, value)| match value.as_str().and_then(crate::canonical::avatar::decode) {
                Some((mime, bytes)) => transport::Part::File(key, mime, bytes),
                None => transport::Part::Text(key, value_text(value)),
            },
        )
        .collect();
    transport::multipart(&parts)
}

/// A path for the upstream's avatar route: each segment percent-encoded as needed.
fn encode_path(rest: &str) -> String {
    rest.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The login a create request names.
fn input_login(req: &CanonicalRequest) -> Option<String> {
    req.input
        .get("login")
        .and_then(Value::as_str)
        .map(str::to_string)
}

impl Backend for UpstreamForge {
    fn describe(&self) -> String {
        format!("{} upstream at {}", self.dialect.name, self.rebase.origin())
    }

    fn execute(&self, req: CanonicalRequest) -> BoxFuture<'_, Result<Outcome, CanonicalError>> {
        self.perform(req)
    }

    fn forwarder(&self, dialect: &Dialect) -> Option<&UpstreamForge> {
        (self.forwards && dialect.name == self.dialect.name).then_some(self)
    }

    fn avatar<'a>(&'a self, rest: &'a str) -> BoxFuture<'a, Option<Avatar>> {
        Box::pin(async move {
            let url = format!("{}/avatars/{}", self.rebase.origin(), encode_path(rest));
            let request = http::Request::get(url).body(Bytes::new()).ok()?;
            let reply = self.transport.send(&request).await.ok()?;
            if !reply.status.is_success() {
                return None;
            }
            let content_type = reply
                .headers
                .get("content-type")
                .unwrap_or("application/octet-stream")
                .to_string();
            Some(Avatar {
                content_type,
                bytes: reply.body,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The upstream's origin is pointed at the proxy where it is a URL's whole origin, and
    /// nowhere it only begins a longer host name or another port.
    #[test]
    fn forwarded_text_points_only_the_upstreams_own_origin_at_the_proxy() {
        let dialects = crate::mapping::Dialects::load(None).expect("bundled mappings");
        let gitea = dialects.get("gitea").expect("gitea").clone();
        let upstream = UpstreamForge::new(
            gitea,
            "http://up",
            "https://proxy.example/fb",
            Duration::from_secs(1),
            1,
            None,
            true,
        )
        .expect("upstream");
        let point = |text: &str| {
            upstream
                .point_at_proxy(text.as_bytes())
                .map(|t| String::from_utf8_lossy(&t).into_owned())
        };
        assert_eq!(
            point(r#"{"a":"http://up/x","b":"see http://up","c":"http://up?q"}"#).as_deref(),
            Some(
                r#"{"a":"https://proxy.example/fb/x","b":"see https://proxy.example/fb","c":"https://proxy.example/fb?q"}"#
            )
        );
        assert_eq!(
            point("<http://up/api/v1/orgs?page=2>; rel=\"next\"").as_deref(),
            Some("<https://proxy.example/fb/api/v1/orgs?page=2>; rel=\"next\"")
        );
        for other in [
            "http://upper.example/x",
            "http://up:8080/x",
            "http://up.example",
            "https://up/x",
        ] {
            assert_eq!(point(other), None, "{other}");
        }
        // Translated answers follow the same rule for the URLs they copy.
        for (url, rewritten) in [
            ("http://up/avatars/1", "https://proxy.example/fb/avatars/1"),
            ("http://upper.example/a", "http://upper.example/a"),
            ("http://up:8080/a", "http://up:8080/a"),
            ("http://up", "https://proxy.example/fb"),
            // The origin's last byte matches, an earlier one does not; too short; not a URL.
            ("http://xp/a", "http://xp/a"),
            ("http:/", "http:/"),
            ("acme", "acme"),
        ] {
            let mut value = Value::from(url);
            upstream.rebase.value(&mut value);
            assert_eq!(value, rewritten);
        }
    }
}
