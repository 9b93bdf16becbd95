//! Turns a parsed mapping file into a `Dialect`, checking everything that can be checked before
//! serving: canonical field names, JSONPaths, value maps, shapes, routes and their collisions.
//! Every problem is reported with the file and the key it sits under.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::Arc;

use http::{HeaderName, HeaderValue, Method, StatusCode};
use jsonpath_rust::parser::parse_json_path;
use serde_json::Value;

use super::body::Body;
use super::raw::{RawDialect, RawField, RawShape};
use super::shape::{AsType, Compute, FieldRule, NodeIdPrefix, ReadPath, Shape, Source, ValueMap};
use super::{
    AuthSource, AuthSpec, DecodeRule, Dialect, ErrorSpec, KindSpec, LinkRel, MappingError,
    PaginationSpec, PagingStyle, Route, Template,
};
use crate::canonical::op::{ResultKind, PARAM_NAMES};
use crate::canonical::{Entity, ErrorKind, FieldType, OpKind};

/// Placeholders of pagination header templates.
const PAGE_VARS: &[&str] = &[
    "total",
    "total_pages",
    "per_page",
    "page",
    "next_page",
    "prev_page",
];

struct Ctx<'a> {
    file: &'a str,
    errors: Vec<MappingError>,
}

impl Ctx<'_> {
    fn err(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(MappingError {
            file: self.file.to_string(),
            key: key.into(),
            reason: reason.into(),
        });
    }
}

pub fn compile(file: &str, text: &str) -> Result<Dialect, Vec<MappingError>> {
    let raw: RawDialect = toml::from_str(text).map_err(|e| {
        vec![MappingError {
            file: file.to_string(),
            key: e
                .span()
                .map(|s| format!("line {}", line_of(text, s.start)))
                .unwrap_or_else(|| "-".into()),
            reason: e.message().to_string(),
        }]
    })?;
    let mut cx = Ctx {
        file,
        errors: Vec::new(),
    };

    let mut headers = Vec::new();
    for (name, value) in &raw.headers {
        match (HeaderName::from_str(name), HeaderValue::from_str(value)) {
            (Ok(n), Ok(v)) => headers.push((n, v)),
            _ => cx.err(
                format!("headers.{name}"),
                "not a valid header name and value",
            ),
        }
    }
    let values = compile_values(&mut cx, &raw.values);
    let shapes = compile_shapes(&mut cx, &raw.shapes, &values);
    let auth = compile_auth(&mut cx, &raw);
    let pagination = compile_pagination(&mut cx, &raw);
    let errors = compile_errors(&mut cx, &raw);
    let (routes, routers, alternatives) = compile_routes(&mut cx, &raw, &shapes);

    for base in &raw.base_paths {
        if !(base.is_empty() || (base.starts_with('/') && !base.ends_with('/'))) {
            cx.err(
                "base_paths",
                format!("{base:?} must be empty or start (and not end) with '/'"),
            );
        }
    }
    if raw.base_paths.is_empty() {
        cx.err("base_paths", "at least one base path is needed");
    }

    match (cx.errors.is_empty(), auth, pagination, errors) {
        (true, Some(auth), Some(pagination), Some(errors)) => Ok(Dialect {
            name: raw.dialect,
            file: file.to_string(),
            base_paths: raw.base_paths,
            forms: raw.forms,
            headers,
            auth,
            pagination,
            errors,
            routes,
            routers,
            alternatives,
        }),
        _ => Err(cx.errors),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

fn compile_values(
    cx: &mut Ctx<'_>,
    raw: &BTreeMap<String, toml::Table>,
) -> HashMap<String, Arc<ValueMap>> {
    let mut out = HashMap::new();
    for (name, table) in raw {
        let mut map = ValueMap::default();
        for (canonical, dialect_value) in table {
            // A list: the first value is written, every one reads back as this canonical value.
            let values = match to_json(dialect_value) {
                Value::Array(items) => items,
                single => vec![single],
            };
            for (i, v) in values.iter().enumerate() {
                let key = match v {
                    Value::String(s) => s.clone(),
                    Value::Bool(_) | Value::Number(_) => v.to_string(),
                    _ => {
                        cx.err(
                            format!("values.{name}.{canonical}"),
                            "must be a string, number, boolean or a list of them",
                        );
                        continue;
                    }
                };
                if !map.to_canonical.iter().any(|(k, _)| *k == key) {
                    map.to_canonical.push((key, canonical.clone()));
                }
                if i == 0 {
                    map.to_dialect.push((canonical.clone(), v.clone()));
                }
            }
        }
        out.insert(name.clone(), Arc::new(map));
    }
    out
}

fn compile_shapes(
    cx: &mut Ctx<'_>,
    raw: &BTreeMap<String, RawShape>,
    values: &HashMap<String, Arc<ValueMap>>,
) -> HashMap<String, Arc<Shape>> {
    let mut done: HashMap<String, Arc<Shape>> = HashMap::new();
    for name in raw.keys() {
        let mut stack = Vec::new();
        build_shape(cx, name, raw, values, &mut done, &mut stack);
    }
    done
}

fn build_shape(
    cx: &mut Ctx<'_>,
    name: &str,
    raw: &BTreeMap<String, RawShape>,
    values: &HashMap<String, Arc<ValueMap>>,
    done: &mut HashMap<String, Arc<Shape>>,
    stack: &mut Vec<String>,
) -> Option<Arc<Shape>> {
    if let Some(s) = done.get(name) {
        return Some(s.clone());
    }
    if stack.iter().any(|s| s == name) {
        cx.err(
            format!("shapes.{name}"),
            format!(
                "shapes refer to each other in a cycle: {}",
                stack.join(" -> ")
            ),
        );
        return None;
    }
    let shape = raw.get(name)?;
    stack.push(name.to_string());
    let key = format!("shapes.{name}");
    let Some(entity) = Entity::parse(&shape.entity) else {
        cx.err(
            format!("{key}.entity"),
            format!("unknown canonical entity {:?}", shape.entity),
        );
        stack.pop();
        return None;
    };
    let mut fields = Vec::new();
    if let Some(include) = &shape.include {
        match raw.get(include) {
            None => cx.err(
                format!("{key}.include"),
                format!("no shape named {include:?}"),
            ),
            Some(_) => {
                if let Some(inc) = build_shape(cx, include, raw, values, done, stack) {
                    if inc.entity != entity {
                        cx.err(
                            format!("{key}.include"),
                            format!(
                                "{include:?} maps {} , not {}",
                                inc.entity.name(),
                                entity.name()
                            ),
                        );
                    }
                    for f in &inc.fields {
                        fields.push(f.clone());
                    }
                }
            }
        }
    }
    for (i, f) in shape.fields.iter().enumerate() {
        let fkey = format!("{key}.fields[{i}] ({})", f.key);
        if let Some(rule) = build_rule(cx, &fkey, f, entity, raw, values, done, stack) {
            fields.retain(|existing: &FieldRule| existing.key != rule.key);
            fields.push(rule);
        }
    }
    stack.pop();
    for field in &shape.ignores {
        if entity.field_type(field).is_none() {
            cx.err(
                format!("{key}.ignores"),
                format!("unknown canonical field {field:?} of {}", entity.name()),
            );
        }
    }
    let compiled = Arc::new(Shape::new(
        name.to_string(),
        entity,
        fields,
        shape.ignores.clone(),
    ));
    for clash in compiled.clashing_keys() {
        cx.err(
            key.clone(),
            format!("answers would carry the key {clash:?} twice (a field and an object, or a merged shape's field)"),
        );
    }
    done.insert(name.to_string(), compiled.clone());
    Some(compiled)
}

#[allow(clippy::too_many_arguments)]
fn build_rule(
    cx: &mut Ctx<'_>,
    key: &str,
    f: &RawField,
    entity: Entity,
    raw: &BTreeMap<String, RawShape>,
    values: &HashMap<String, Arc<ValueMap>>,
    done: &mut HashMap<String, Arc<Shape>>,
    stack: &mut Vec<String>,
) -> Option<FieldRule> {
    let path: Vec<String> = f.key.split('.').map(str::to_string).collect();
    if path.iter().any(|s| s.is_empty()) {
        cx.err(key, "the key must be a dotted path with no empty segments");
        return None;
    }
    let sources = [
        f.canonical.is_some(),
        f.param.is_some(),
        f.url.is_some(),
        f.constant.is_some(),
        f.compute.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        cx.err(
            key,
            "give exactly one of canonical, param, url, const, compute",
        );
        return None;
    }
    let mut canonical_type = None;
    let source = if let Some(c) = &f.canonical {
        match entity.field_type(c) {
            Some(ty) => {
                canonical_type = Some(ty);
                Source::Canonical(c.clone())
            }
            None => {
                cx.err(
                    key,
                    format!("unknown canonical field {c:?} of {}", entity.name()),
                );
                return None;
            }
        }
    } else if let Some(p) = &f.param {
        if !PARAM_NAMES.contains(&p.as_str()) {
            cx.err(
                key,
                format!(
                    "unknown parameter {p:?} (known: {})",
                    PARAM_NAMES.join(", ")
                ),
            );
            return None;
        }
        Source::Param(p.clone())
    } else if let Some(u) = &f.url {
        let t = Template::parse(u);
        for var in t.vars() {
            let known = var == "api"
                || var == "web"
                || entity.field_type(var).is_some()
                || PARAM_NAMES.contains(&var);
            if !known {
                cx.err(key, format!("URL template names {{{var}}}, which is neither api, web, a canonical field of {} nor a parameter", entity.name()));
            }
        }
        Source::Url(t)
    } else if let Some(c) = &f.constant {
        Source::Const(to_json(c))
    } else {
        let compute = f.compute.as_deref().unwrap_or_default();
        match compute.split_once(':') {
            None if compute == "null" => Source::Compute(Compute::Null),
            Some(("github_node_id", ty)) if !ty.is_empty() => {
                Source::Compute(Compute::GithubNodeId(NodeIdPrefix::new(ty)))
            }
            _ => {
                cx.err(
                    key,
                    format!("unknown computation {compute:?} (known: github_node_id:<Type>, null)"),
                );
                return None;
            }
        }
    };
    let reads_value = matches!(source, Source::Canonical(_) | Source::Param(_));
    let read = match &f.read {
        Some(toml::Value::Boolean(false)) => None,
        Some(toml::Value::String(expr)) => match parse_json_path(expr) {
            Ok(q) => Some(
                simple_path(expr)
                    .map(ReadPath::Simple)
                    .unwrap_or(ReadPath::Query(Box::new(q))),
            ),
            Err(e) => {
                cx.err(key, format!("read: JSONPath {expr:?} does not parse: {e}"));
                return None;
            }
        },
        Some(_) => {
            cx.err(key, "read must be a JSONPath string or false");
            return None;
        }
        None if reads_value => Some(ReadPath::Simple(path.clone())),
        None => None,
    };
    let values_map = match &f.values {
        Some(name) => match values.get(name) {
            Some(m) => Some(m.clone()),
            None => {
                cx.err(key, format!("no value map named {name:?}"));
                return None;
            }
        },
        None => None,
    };
    let nested = match &f.shape {
        Some(name) => {
            if !raw.contains_key(name) {
                cx.err(key, format!("no shape named {name:?}"));
                return None;
            }
            let nested = build_shape(cx, name, raw, values, done, stack)?;
            if canonical_type != Some(FieldType::Object(nested.entity)) {
                cx.err(
                    key,
                    format!(
                        "shape {name:?} maps {}, which this field does not hold",
                        nested.entity.name()
                    ),
                );
                return None;
            }
            Some(nested)
        }
        None => {
            if matches!(canonical_type, Some(FieldType::Object(_))) {
                cx.err(key, "an object field needs a shape");
                return None;
            }
            None
        }
    };
    if let Some(other) = &f.or {
        if entity.field_type(other).is_none() || f.canonical.is_none() {
            cx.err(
                key,
                format!(
                    "or = {other:?} needs canonical and a canonical field of {}",
                    entity.name()
                ),
            );
            return None;
        }
    }
    let or = f.or.clone();
    if f.strict && values_map.is_none() {
        cx.err(key, "strict needs a value map");
        return None;
    }
    if f.merge && nested.is_none() {
        cx.err(key, "merge needs a nested shape");
        return None;
    }
    let as_type = match f.as_type.as_deref() {
        None => AsType::Plain,
        Some("string") => AsType::String,
        Some("base64") => AsType::Base64,
        Some("number") => AsType::Number,
        Some(other) => {
            cx.err(
                key,
                format!("as = {other:?}: known are \"string\", \"number\" and \"base64\""),
            );
            return None;
        }
    };
    Some(FieldRule {
        key: f.key.clone(),
        path,
        source,
        read,
        write: f.write,
        default: f.default.as_ref().map(to_json),
        values: values_map,
        required: f.required,
        max_len: f.max_len,
        nested,
        as_type,
        canonical_type,
        or,
        merge: f.merge,
        strict: f.strict,
    })
}

/// `$.a.b` → ["a", "b"], so that plain paths skip the JSONPath engine when serving.
fn simple_path(expr: &str) -> Option<Vec<String>> {
    let rest = expr.strip_prefix("$.")?;
    let segs: Vec<String> = rest.split('.').map(str::to_string).collect();
    segs.iter()
        .all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(segs)
}

fn compile_auth(cx: &mut Ctx<'_>, raw: &RawDialect) -> Option<AuthSpec> {
    let mut accept = Vec::new();
    for (i, a) in raw.auth.accept.iter().enumerate() {
        let key = format!("auth.accept[{i}]");
        if a == "authorization" {
            accept.push(AuthSource::Authorization);
        } else if let Some(h) = a.strip_prefix("header:") {
            match HeaderName::from_str(h) {
                Ok(h) => accept.push(AuthSource::Header(h)),
                Err(_) => cx.err(key, format!("{h:?} is not a header name")),
            }
        } else if let Some(q) = a.strip_prefix("query:") {
            accept.push(AuthSource::Query(q.to_string()));
        } else {
            cx.err(
                key,
                format!("{a:?}: expected authorization, header:NAME or query:NAME"),
            );
        }
    }
    let emit_header = match HeaderName::from_str(&raw.auth.emit.header) {
        Ok(h) => h,
        Err(_) => {
            cx.err("auth.emit.header", "not a header name");
            return None;
        }
    };
    let emit_value = Template::parse(&raw.auth.emit.value);
    if emit_value.vars().any(|v| v != "token") || emit_value.vars().count() != 1 {
        cx.err(
            "auth.emit.value",
            "must contain {token} once and no other placeholder",
        );
    }
    Some(AuthSpec {
        accept,
        emit_header,
        emit_value,
    })
}

fn compile_pagination(cx: &mut Ctx<'_>, raw: &RawDialect) -> Option<PaginationSpec> {
    let p = &raw.pagination;
    let mut link_order = Vec::new();
    for rel in &p.link_order {
        match rel.as_str() {
            "next" => link_order.push(LinkRel::Next),
            "prev" => link_order.push(LinkRel::Prev),
            "first" => link_order.push(LinkRel::First),
            "last" => link_order.push(LinkRel::Last),
            other => cx.err(
                "pagination.link_order",
                format!("unknown relation {other:?}"),
            ),
        }
    }
    if p.default_size == 0 || p.default_size > p.max_size {
        cx.err("pagination.default_size", "must be between 1 and max_size");
    }
    let mut headers = Vec::new();
    let mut total_header = None;
    for (name, value) in &p.headers {
        let key = format!("pagination.headers.{name}");
        let Ok(header) = HeaderName::from_str(name) else {
            cx.err(key, "not a header name");
            continue;
        };
        let template = Template::parse(value);
        for var in template.vars() {
            if !PAGE_VARS.contains(&var) {
                cx.err(
                    &key,
                    format!(
                        "unknown placeholder {{{var}}} (known: {})",
                        PAGE_VARS.join(", ")
                    ),
                );
            }
        }
        if value == "{total}" {
            total_header = Some(header.clone());
        }
        headers.push((header, template));
    }
    Some(PaginationSpec {
        page_param: p.page_param.clone(),
        size_param: p.size_param.clone(),
        since_param: p.since_param.clone(),
        default_size: p.default_size,
        max_size: p.max_size,
        total_header,
        headers,
        link_order,
        link_separator: p.link_separator.clone(),
    })
}

fn compile_errors(cx: &mut Ctx<'_>, raw: &RawDialect) -> Option<ErrorSpec> {
    let e = &raw.errors;
    let content_type = match HeaderValue::from_str(&e.content_type) {
        Ok(v) => v,
        Err(_) => {
            cx.err("errors.content_type", "not a valid header value");
            return None;
        }
    };
    let mut kinds = HashMap::new();
    for (name, spec) in &e.kinds {
        let key = format!("errors.kinds.{name}");
        let Some(kind) = ErrorKind::parse(name) else {
            cx.err(key, "unknown canonical error kind");
            continue;
        };
        let Ok(status) = StatusCode::from_u16(spec.status) else {
            cx.err(key, format!("{} is not an HTTP status", spec.status));
            continue;
        };
        kinds.insert(
            kind,
            KindSpec {
                status,
                message: Template::parse(&spec.message),
                body: spec.body.as_ref().map(Body::from_toml),
            },
        );
    }
    for kind in ErrorKind::ALL {
        if !kinds.contains_key(kind) {
            cx.err(
                "errors.kinds",
                format!(
                    "canonical error kind {:?} has no status and message",
                    kind.name()
                ),
            );
        }
    }
    let mut decode = Vec::new();
    for (i, d) in e.decode.iter().enumerate() {
        match ErrorKind::parse(&d.kind) {
            Some(kind) => decode.push(DecodeRule {
                status: d.status,
                kind,
                code: d.code.clone(),
                message_contains: d.message_contains.clone(),
            }),
            None => cx.err(
                format!("errors.decode[{i}].kind"),
                format!("unknown canonical error kind {:?}", d.kind),
            ),
        }
    }
    Some(ErrorSpec {
        content_type,
        body: Body::from_toml(&e.body),
        validation_body: e.validation_body.as_ref().map(Body::from_toml),
        code_missing: e.codes.missing.clone(),
        code_invalid: e.codes.invalid.clone(),
        code_conflict: e.codes.conflict.clone(),
        default_resource: e.default_resource.clone(),
        kinds,
        decode,
    })
}

type Routers = HashMap<Method, matchit::Router<usize>>;
/// Conditional routes (by query parameter) sharing an unconditional route's method and path.
type Alternatives = HashMap<usize, Vec<usize>>;

fn compile_routes(
    cx: &mut Ctx<'_>,
    raw: &RawDialect,
    shapes: &HashMap<String, Arc<Shape>>,
) -> (Vec<Route>, Routers, Alternatives) {
    let mut routes = Vec::new();
    let mut routers: Routers = HashMap::new();
    let mut owners: HashMap<(Method, String), usize> = HashMap::new();
    let mut primaries: HashMap<(Method, String), usize> = HashMap::new();
    let mut conditional: Vec<(Method, String, usize, String)> = Vec::new();
    for (i, o) in raw.operations.iter().enumerate() {
        let key = format!("operations[{i}] ({} {})", o.method, o.path);
        let Some(op) = OpKind::parse(&o.op) else {
            cx.err(
                format!("{key}.op"),
                format!("unknown canonical operation {:?}", o.op),
            );
            continue;
        };
        let Ok(method) = Method::from_str(&o.method) else {
            cx.err(format!("{key}.method"), "not an HTTP method");
            continue;
        };
        if !o.path.starts_with('/') {
            cx.err(format!("{key}.path"), "must start with '/'");
            continue;
        }
        let path_template = Template::parse(&o.path);
        for var in path_template.vars() {
            if !PARAM_NAMES.contains(&var) {
                cx.err(
                    format!("{key}.path"),
                    format!(
                        "placeholder {{{var}}} is not a parameter (known: {})",
                        PARAM_NAMES.join(", ")
                    ),
                );
            }
        }
        let mut shape = |field: &str, name: &Option<String>| -> Option<Arc<Shape>> {
            let name = name.as_ref()?;
            match shapes.get(name) {
                Some(s) => Some(s.clone()),
                None => {
                    cx.err(format!("{key}.{field}"), format!("no shape named {name:?}"));
                    None
                }
            }
        };
        let request = shape("request", &o.request);
        let response = shape("response", &o.response);
        let result = op.result();
        if let (Some(resp), Some(entity)) = (&response, result.entity()) {
            if resp.entity != entity {
                cx.err(
                    format!("{key}.response"),
                    format!(
                        "shape {:?} maps {}, but {} returns {}",
                        resp.name,
                        resp.entity.name(),
                        op.name(),
                        entity.name()
                    ),
                );
            }
        }
        if response.is_some() && result.entity().is_none() {
            cx.err(
                format!("{key}.response"),
                format!("{} returns no entity", op.name()),
            );
        }
        let paging = match (o.paging.as_deref(), result) {
            (Some("page"), ResultKind::List(_)) => Some(PagingStyle::Page),
            (Some("since"), ResultKind::List(_)) => {
                if raw.pagination.since_param.is_none() {
                    cx.err(
                        format!("{key}.paging"),
                        "since paging needs pagination.since_param",
                    );
                }
                Some(PagingStyle::Since)
            }
            (None, ResultKind::List(_)) => {
                cx.err(
                    format!("{key}.paging"),
                    format!("{} is a list: say page or since", op.name()),
                );
                None
            }
            (Some(other), ResultKind::List(_)) => {
                cx.err(format!("{key}.paging"), format!("unknown paging {other:?}"));
                None
            }
            (Some(_), _) => {
                cx.err(
                    format!("{key}.paging"),
                    format!("{} is not a list", op.name()),
                );
                None
            }
            (None, _) => None,
        };
        let status = match StatusCode::from_u16(o.status.unwrap_or(200)) {
            Ok(s) => s,
            Err(_) => {
                cx.err(format!("{key}.status"), "not an HTTP status");
                continue;
            }
        };
        let false_status = o.false_status.and_then(|s| StatusCode::from_u16(s).ok());
        if result == ResultKind::Flag && false_status.is_none() {
            cx.err(
                format!("{key}.false_status"),
                format!("{} answers yes or no: give the status for no", op.name()),
            );
        }
        let mut kind_ref = |field: &str, name: &str| -> Option<ErrorKind> {
            let found = ErrorKind::parse(name);
            if found.is_none() {
                cx.err(
                    format!("{key}.{field}"),
                    format!("unknown canonical error kind {name:?}"),
                );
            }
            found
        };
        let upstream_not_found_as = o
            .upstream_not_found_as
            .as_deref()
            .and_then(|k| kind_ref("upstream_not_found_as", k));
        let forbidden_as = o
            .forbidden_as
            .as_deref()
            .and_then(|k| kind_ref("forbidden_as", k));
        let next_route_on: Vec<ErrorKind> = o
            .next_route_on
            .iter()
            .filter_map(|k| kind_ref("next_route_on", k))
            .collect();
        let mut op_ref = |field: &str, name: &str| -> Option<OpKind> {
            let found = OpKind::parse(name);
            if found.is_none() {
                cx.err(
                    format!("{key}.{field}"),
                    format!("unknown canonical operation {name:?}"),
                );
            }
            found
        };
        let resolve: Vec<(String, OpKind)> = o
            .resolve
            .iter()
            .filter_map(|(p, name)| Some((p.clone(), op_ref("resolve", name)?)))
            .collect();
        let enrich: Vec<(String, OpKind)> = o
            .enrich
            .iter()
            .filter_map(|(f, name)| Some((f.clone(), op_ref("enrich", name)?)))
            .collect();
        let complete_with: Vec<OpKind> = o
            .complete_with
            .iter()
            .filter_map(|n| op_ref("complete_with", n))
            .collect();
        for (p, _) in &resolve {
            if !PARAM_NAMES.contains(&p.as_str()) {
                cx.err(
                    format!("{key}.resolve"),
                    format!("{p:?} is not a parameter"),
                );
            }
        }
        for (f, _) in &enrich {
            let holds_object = result
                .entity()
                .and_then(|e| e.field_type(f))
                .is_some_and(|t| matches!(t, FieldType::Object(_)));
            if !holds_object {
                cx.err(
                    format!("{key}.enrich"),
                    format!("{f:?} is not an object field of what {} returns", op.name()),
                );
            }
        }
        let mut query = Vec::new();
        for (param, qkey) in &o.query {
            if PARAM_NAMES.contains(&param.as_str()) {
                query.push((param.clone(), qkey.clone()));
            } else {
                cx.err(
                    format!("{key}.query"),
                    format!("{param:?} is not a parameter"),
                );
            }
        }
        if let Some(field) = &o.require {
            let is_bool = result
                .entity()
                .and_then(|e| e.field_type(field))
                .is_some_and(|t| t == FieldType::Bool);
            if !is_bool {
                cx.err(
                    format!("{key}.require"),
                    format!(
                        "{field:?} is not a boolean field of what {} returns",
                        op.name()
                    ),
                );
            }
        }
        let mut numeric = Vec::new();
        for (placeholder, id_param) in &o.numeric {
            if !path_template.vars().any(|v| v == placeholder) {
                cx.err(
                    format!("{key}.numeric"),
                    format!("{{{placeholder}}} is not a placeholder of the path"),
                );
            }
            if !PARAM_NAMES.contains(&id_param.as_str()) {
                cx.err(
                    format!("{key}.numeric"),
                    format!("{id_param:?} is not a parameter"),
                );
            }
            numeric.push((placeholder.clone(), id_param.clone()));
        }
        for need in &o.needs {
            if !PARAM_NAMES.contains(&need.as_str()) {
                cx.err(
                    format!("{key}.needs"),
                    format!("{need:?} is not a parameter"),
                );
            }
        }
        if o.list_of_one && !matches!(result, ResultKind::Entity(_)) {
            cx.err(
                format!("{key}.list_of_one"),
                format!("{} does not return one entity", op.name()),
            );
        }
        if let Some(p) = &o.grant_owner {
            if !PARAM_NAMES.contains(&p.as_str()) || op != OpKind::OrgCreate {
                cx.err(
                    format!("{key}.grant_owner"),
                    format!("{p:?}: grant_owner takes a parameter, on org.create only"),
                );
            }
        }
        if o.upstream_only && o.inbound_only {
            cx.err(
                key.clone(),
                "a route cannot be both inbound_only and upstream_only",
            );
        }
        let idx = routes.len();
        if !o.upstream_only && !o.inbound_when.is_empty() {
            conditional.push((method.clone(), o.path.clone(), idx, key.clone()));
        } else if !o.upstream_only {
            primaries.insert((method.clone(), o.path.clone()), idx);
            let router = routers.entry(method.clone()).or_default();
            if let Err(e) = router.insert(o.path.clone(), idx) {
                let other = owners
                    .get(&(method.clone(), o.path.clone()))
                    .map(|j| format!(" (operations[{j}])"))
                    .unwrap_or_default();
                cx.err(
                    format!("{key}.path"),
                    format!("collides with another route{other}: {e}"),
                );
            }
            owners.insert((method.clone(), o.path.clone()), i);
        }
        routes.push(Route {
            op,
            method,
            path: o.path.clone(),
            path_template,
            status,
            false_status,
            request,
            response,
            body: o.body.as_ref().map(Body::from_toml),
            paging,
            query,
            location: o.location.as_deref().map(Template::parse),
            forbidden_as,
            resolve,
            complete_with,
            enrich,
            inbound_only: o.inbound_only,
            require: o.require.clone(),
            numeric,
            needs: o.needs.clone(),
            list_of_one: o.list_of_one,
            upstream_only: o.upstream_only,
            fixed_query: o
                .fixed_query
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            grant_owner: o.grant_owner.clone(),
            upstream_not_found_as,
            variant: o.variant.clone(),
            site_admin_only: o.site_admin_only,
            inbound_when: o.inbound_when.clone(),
            next_route_on,
        });
    }
    let mut alternatives: Alternatives = HashMap::new();
    for (method, path, idx, key) in conditional {
        match primaries.get(&(method, path)) {
            Some(primary) => alternatives.entry(*primary).or_default().push(idx),
            None => cx.err(
                format!("{key}.inbound_when"),
                "needs a route without conditions with the same method and path",
            ),
        }
    }
    (routes, routers, alternatives)
}
