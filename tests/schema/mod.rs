//! Schema conformance support: loads each dialect's API description (the official files in
//! `../shared/specs/` where they exist, else the hand-written fallbacks beside this file),
//! converts OpenAPI 3.0 / Swagger 2.0 schemas to JSON Schema (draft 7) and validates
//! requests and responses with the `jsonschema` crate.
//!
//! Conversion rules (OpenAPI/Swagger → JSON Schema):
//! - `$ref` to `#/components/schemas/X` (OAS 3) or `#/definitions/X` (Swagger 2) becomes
//!   `#/definitions/X` of the generated schema; only the definitions reachable from the root are
//!   converted. Refs to responses and parameters are resolved against the document.
//! - `nullable: true` (OAS 3.0) and `x-nullable: true` (Swagger 2) add `null` to `type` (and to
//!   `enum`), or wrap the schema in `anyOf [schema, {type: null}]` when it has no `type`.
//! - Swagger 2 `type: file` (a multipart part) becomes a string: the relay turns a multipart
//!   file part into a placeholder string. GitLab's invalid `type: text` is read as `string`.
//! - OAS 3.0 boolean `exclusiveMinimum`/`exclusiveMaximum` become draft-7 numbers.
//! - OpenAPI-only and annotation keywords are dropped: `example(s)`, `discriminator`, `xml`,
//!   `externalDocs`, `readOnly`, `writeOnly`, `deprecated`, `description`, `default`, `x-*`.
//! - Formats are validated (`date-time`, `email`, `uri`, ...); OpenAPI's `int32`/`int64` are
//!   not JSON Schema formats and are ignored.
//!
//! GitLab's description is used in the lenient mode its README asks for (see
//! `gitlab-lenient.json`): paths, parameters, enums, field names and (CE) required fields from
//! the official file; response field types, nullability and status codes from
//! `../shared/research/gitlab.md`.

pub mod relay;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, ValidationError, Validator};
use serde_json::{json, Map, Value};

use relay::Recorded;

/// `../shared/specs` relative to the repository root.
pub fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/specs")
}

/// This folder: hand-written schemas and fallbacks.
pub fn own_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schema")
}

/// One problem found: where (a JSON pointer; for requests prefixed with `/path`, `/query` or
/// `/body`) and the validator's message.
#[derive(Clone, Debug)]
pub struct Problem {
    pub pointer: String,
    pub message: String,
}

fn problem(pointer: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        pointer: pointer.into(),
        message: message.into(),
    }
}

/// One API description file, loaded.
pub struct Source {
    /// Where it came from, e.g. `shared/specs/github/api.github.com-orgs.json (official)`.
    pub label: String,
    pub official: bool,
    doc: Value,
    oas3: bool,
    /// GitLab's lenient rules, for the official GitLab file only.
    lenient: Option<Value>,
    templates: Vec<(String, Vec<String>)>,
}

impl Source {
    fn load(path: &Path, label: String, official: bool, lenient: Option<Value>) -> Option<Source> {
        let bytes = std::fs::read(path).ok()?;
        let text = if path.extension().is_some_and(|e| e == "gz") {
            let mut out = String::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut out)
                .unwrap_or_else(|e| panic!("{}: not gzip: {e}", path.display()));
            out
        } else {
            String::from_utf8(bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        let oas3 = doc.get("openapi").is_some();
        // The base each description declares: OAS 3 `servers[0].url`'s path, Swagger 2
        // `basePath`. GitLab's file has neither and spells `/api/v4` in every path key.
        let declared_base = if oas3 {
            doc["servers"][0]["url"]
                .as_str()
                .map(|u| {
                    let after_scheme = u.split_once("://").map(|(_, r)| r).unwrap_or(u);
                    after_scheme
                        .find('/')
                        .map(|i| after_scheme[i..].to_string())
                        .unwrap_or_default()
                })
                .unwrap_or_default()
        } else {
            doc["basePath"].as_str().unwrap_or_default().to_string()
        };
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        // The prefix of the description's own path keys that is the API base: GitLab's file
        // spells `/api/v4` in every key; GitHub and Gitea put the base in servers/basePath.
        let prefix = if declared_base.is_empty() || declared_base == "/" {
            // Paths carry the base themselves (GitLab) when they all start with /api/vN.
            let first = paths.keys().next().cloned().unwrap_or_default();
            let p: Vec<&str> = first.split('/').collect();
            if p.len() > 2 && p[1] == "api" && paths.keys().all(|k| k.starts_with("/api/")) {
                format!("/{}/{}", p[1], p[2])
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        let templates = paths
            .keys()
            .map(|k| {
                let rest = k.strip_prefix(&prefix).unwrap_or(k);
                (k.clone(), split(rest))
            })
            .collect();
        Some(Source {
            label,
            official,
            doc,
            oas3,
            lenient,
            templates,
        })
    }

    /// Follows `$ref` pointers inside the document.
    fn resolve<'a>(&'a self, mut v: &'a Value) -> &'a Value {
        for _ in 0..16 {
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) if r.starts_with("#/") => match self.doc.pointer(&r[1..]) {
                    Some(target) => v = target,
                    None => panic!("{}: unresolvable $ref {r}", self.label),
                },
                _ => break,
            }
        }
        v
    }

    fn definition(&self, name: &str) -> Option<&Value> {
        if self.oas3 {
            self.doc["components"]["schemas"].get(name)
        } else {
            self.doc["definitions"].get(name)
        }
    }
}

fn split(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// An operation found for a request.
pub struct Found<'a> {
    pub source: &'a Source,
    /// The path template without the API base, e.g. `/orgs/{org}`.
    pub template: String,
    key: String,
    op: &'a Value,
    item: &'a Value,
    pub path_params: Vec<(String, String)>,
}

/// A dialect's descriptions, in the order they are consulted, plus its error body schema.
pub struct DialectSpec {
    pub name: &'static str,
    /// The API base path requests carry (`/api/v3`, `/api/v1`, `/api/v4`).
    pub base: &'static str,
    pub sources: Vec<Source>,
    /// Official files looked for and not found.
    pub missing: Vec<String>,
    error_schema: Value,
    error_label: String,
    cache: RefCell<HashMap<String, Rc<Validator>>>,
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

impl DialectSpec {
    pub fn load(name: &'static str) -> DialectSpec {
        // (file under ../shared/specs, official) in the order consulted: the cut-down files
        // first (the organization paths), then the whole descriptions for anything else the
        // proxy calls (e.g. GitHub's `GET /user/{account_id}`).
        let (base, official, fallback): (&'static str, &[&str], &str) = match name {
            "github" => (
                "/api/v3",
                &[
                    "github/api.github.com-orgs.json",
                    // GitHub Enterprise Server 3.19: /admin/organizations and /admin/users.
                    "github/ghes-3.19-orgs.json",
                    "github/api.github.com.json.gz",
                    "github/ghes-3.19.json.gz",
                ],
                "github-fallback.json",
            ),
            "gitea" => (
                "/api/v1",
                &[
                    "gitea/gitea-1.27.1-orgs.json",
                    "gitea/gitea-1.27.1-swagger.json.gz",
                ],
                "gitea-fallback.json",
            ),
            "gitlab" => (
                "/api/v4",
                &["gitlab/openapi_v2-3cdb310d-orgs.json"],
                // GitLab's v2 description has no Users endpoints at all (API::Users is mounted
                // outside its namespace): those come from this file, written from the research.
                "gitlab-fallback.json",
            ),
            other => panic!("unknown dialect {other}"),
        };
        let lenient = (name == "gitlab").then(|| read_json(&own_dir().join("gitlab-lenient.json")));
        let mut sources = Vec::new();
        let mut missing = Vec::new();
        for file in official {
            let path = specs_dir().join(file);
            let label = format!("shared/specs/{file} (official)");
            match Source::load(&path, label, true, lenient.clone()) {
                Some(s) => sources.push(s),
                None => missing.push(format!("shared/specs/{file}")),
            }
        }
        // A fallback exists only where shared/specs lacks something (today: GitLab's users).
        let path = own_dir().join(fallback);
        let label = format!("tests/schema/{fallback} (written from the research notes)");
        sources.extend(Source::load(&path, label, false, None));
        let error_file = format!("{name}-error.json");
        DialectSpec {
            name,
            base,
            sources,
            missing,
            error_schema: read_json(&own_dir().join(&error_file)),
            error_label: format!("tests/schema/{error_file}"),
            cache: RefCell::new(HashMap::new()),
        }
    }

    /// Finds the operation for `method` on `path` (without the API base): the first source
    /// with a matching template that has the method; the template with the most literal
    /// segments wins inside a source.
    pub fn find(&self, method: &str, path: &str) -> Result<Found<'_>, String> {
        let segs = split(path);
        let mut path_without_method = Vec::new();
        for source in &self.sources {
            let mut best: Option<(usize, &String, &Vec<String>)> = None;
            for (key, tpl) in &source.templates {
                if tpl.len() != segs.len() {
                    continue;
                }
                let mut literals = 0;
                let ok = tpl.iter().zip(&segs).all(|(t, s)| {
                    if t.starts_with('{') && t.ends_with('}') {
                        true
                    } else {
                        literals += 1;
                        t == s
                    }
                });
                if !ok {
                    continue;
                }
                let item = &source.doc["paths"][key];
                if item.get(method.to_lowercase()).is_none() {
                    path_without_method.push(format!("{key} in {}", source.label));
                    continue;
                }
                if best.is_none_or(|(n, _, _)| literals > n) {
                    best = Some((literals, key, tpl));
                }
            }
            if let Some((_, key, tpl)) = best {
                let item = &source.doc["paths"][key];
                let path_params = tpl
                    .iter()
                    .zip(&segs)
                    .filter(|(t, _)| t.starts_with('{'))
                    .map(|(t, s)| {
                        (
                            t.trim_matches(|c| c == '{' || c == '}').to_string(),
                            percent_decode(s),
                        )
                    })
                    .collect();
                return Ok(Found {
                    source,
                    template: format!("/{}", tpl.join("/")),
                    key: key.clone(),
                    op: &item[method.to_lowercase()],
                    item,
                    path_params,
                });
            }
        }
        let consulted: Vec<&str> = self.sources.iter().map(|s| s.label.as_str()).collect();
        if path_without_method.is_empty() {
            Err(format!(
                "no path template matches {method} {path} in the {} descriptions ({})",
                self.name,
                consulted.join(", ")
            ))
        } else {
            Err(format!(
                "{method} is not declared for {}",
                path_without_method.join("; ")
            ))
        }
    }

    fn validator(&self, source: &Source, key: &str, root: &Value, lenient: bool) -> Rc<Validator> {
        let cache_key = format!("{}#{key}#{lenient}", source.label);
        if let Some(v) = self.cache.borrow().get(&cache_key) {
            return v.clone();
        }
        let schema = to_json_schema(source, root, lenient);
        let validator = Rc::new(compile(&schema, &cache_key));
        self.cache.borrow_mut().insert(cache_key, validator.clone());
        validator
    }

    fn error_validator(&self) -> Rc<Validator> {
        let key = self.error_label.clone();
        if let Some(v) = self.cache.borrow().get(&key) {
            return v.clone();
        }
        let validator = Rc::new(compile(&self.error_schema, &key));
        self.cache.borrow_mut().insert(key, validator.clone());
        validator
    }

    /// Checks a response the proxy sent a client of this dialect. `path` excludes the base.
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &str,
    ) -> Vec<Problem> {
        let found = match self.find(method, path) {
            Ok(f) => f,
            Err(e) => return vec![problem("", e)],
        };
        let src = found.source;
        let lenient = src.lenient.as_ref();
        let op_key = format!("{} {}", method.to_uppercase(), found.template);
        // GitLab: status codes as the server really answers (research/gitlab.md §2, §5).
        let overridden = lenient.and_then(|l| l["responses"].get(&op_key));
        let responses = overridden.unwrap_or(&found.op["responses"]);
        let code = status.to_string();
        let declared = responses.get(&code).or_else(|| responses.get("default"));
        let declared = declared.map(|r| src.resolve(r));
        let schema = declared.and_then(|r| {
            if src.oas3 {
                let content = r.get("content")?.as_object()?;
                content
                    .iter()
                    .find(|(media, _)| media.contains("json"))
                    .and_then(|(_, c)| c.get("schema"))
            } else {
                r.get("schema")
            }
        });
        let where_ = format!("{op_key} in {}", src.label);
        match (declared, schema) {
            (None, _) if status < 400 => {
                let codes: Vec<&String> = responses
                    .as_object()
                    .map(|m| m.keys().collect())
                    .unwrap_or_default();
                vec![problem(
                    "",
                    format!("status {status} is not declared for {where_} (declared: {codes:?})"),
                )]
            }
            // An error status the description leaves out (GitHub's 501, GitLab's errors, which
            // its file never declares), or declares without a body schema (Gitea's error
            // responses carry `message` and `url` as *headers*, a generator quirk: the real
            // bodies are JSON objects; specs/README.md): the dialect's documented error body
            // shape, written from the research notes in tests/schema/<dialect>-error.json.
            (_, None) if status >= 400 => {
                if body.trim().is_empty() {
                    return Vec::new();
                }
                match serde_json::from_str::<Value>(body) {
                    Ok(v) => validate(&self.error_validator(), &v),
                    Err(e) => vec![problem(
                        "",
                        format!(
                            "error body is not JSON ({e}); {} expects JSON",
                            self.error_label
                        ),
                    )],
                }
            }
            (_, None) => {
                if body.trim().is_empty() {
                    Vec::new()
                } else {
                    vec![problem(
                        "",
                        format!(
                            "{where_} declares no body for {status}, but one was sent: {}",
                            clip(body)
                        ),
                    )]
                }
            }
            (_, Some(schema)) => {
                let instance = match serde_json::from_str::<Value>(body) {
                    Ok(v) => v,
                    Err(e) => {
                        return vec![problem(
                            "",
                            format!(
                                "{where_} declares a JSON body for {status}; got {e}: {}",
                                clip(body)
                            ),
                        )]
                    }
                };
                let key = format!("{op_key} {status}");
                let v = self.validator(src, &key, schema, lenient.is_some());
                validate(&v, &instance)
            }
        }
    }

    /// Checks a request the proxy sent to an upstream of this dialect.
    pub fn check_request(&self, rec: &Recorded) -> Vec<Problem> {
        let Some(path) = rec.path.strip_prefix(self.base) else {
            return vec![problem(
                "",
                format!(
                    "{} is outside the {} API base {}",
                    rec.path, self.name, self.base
                ),
            )];
        };
        let found = match self.find(&rec.method, path) {
            Ok(f) => f,
            Err(e) => return vec![problem("", e)],
        };
        let src = found.source;
        let mut out = Vec::new();
        // Parameters: path-level, overridden by operation-level (same name and `in`).
        let mut params: BTreeMap<(String, String), &Value> = BTreeMap::new();
        for list in [&found.item["parameters"], &found.op["parameters"]] {
            for p in list.as_array().into_iter().flatten() {
                let p = src.resolve(p);
                let name = p["name"].as_str().unwrap_or_default().to_string();
                let loc = p["in"].as_str().unwrap_or_default().to_string();
                params.insert((loc, name), p);
            }
        }
        let query: Vec<(String, String)> = url::form_urlencoded::parse(rec.query.as_bytes())
            .into_owned()
            .collect();
        for ((loc, name), p) in &params {
            let required = p["required"].as_bool().unwrap_or(false);
            let value = match loc.as_str() {
                "path" => found
                    .path_params
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone()),
                "query" => query
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone()),
                _ => continue,
            };
            let pointer = format!("/{loc}/{}", escape(name));
            let Some(value) = value else {
                if required {
                    out.push(problem(
                        pointer,
                        format!("required {loc} parameter {name} is missing"),
                    ));
                }
                continue;
            };
            let raw_schema = param_schema(p);
            let instance = coerce(&value, src.resolve(&raw_schema));
            let key = format!("{}#param/{loc}/{name}", found.key);
            let v = self.validator(src, &key, &raw_schema, false);
            for mut pr in validate(&v, &instance) {
                pr.pointer = format!("{pointer}{}", pr.pointer);
                out.push(pr);
            }
        }
        for (name, _) in &query {
            // Credentials in the query are an auth form, not an operation parameter.
            let auth = matches!(name.as_str(), "token" | "access_token" | "private_token");
            if !auth && !params.contains_key(&("query".to_string(), name.clone())) {
                out.push(problem(
                    format!("/query/{}", escape(name)),
                    format!(
                        "query parameter {name} is not declared for {} {} in {}",
                        rec.method, found.template, src.label
                    ),
                ));
            }
        }
        out.extend(self.check_body(&found, rec, &params));
        out
    }

    fn check_body(
        &self,
        found: &Found<'_>,
        rec: &Recorded,
        params: &BTreeMap<(String, String), &Value>,
    ) -> Vec<Problem> {
        let src = found.source;
        let media = rec
            .content_type
            .as_deref()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_lowercase();
        let empty = rec.body.iter().all(u8::is_ascii_whitespace);
        // (schema, required, accepted media types)
        let (schema, required, accepted): (Option<Value>, bool, Vec<String>) = if src.oas3 {
            match found.op.get("requestBody").map(|b| src.resolve(b)) {
                Some(body) => {
                    let content = body["content"].as_object().cloned().unwrap_or_default();
                    let accepted: Vec<String> = content.keys().cloned().collect();
                    let schema = content
                        .get(&media)
                        .or_else(|| content.get("application/json"))
                        .and_then(|c| c.get("schema"))
                        .cloned();
                    (
                        schema,
                        body["required"].as_bool().unwrap_or(false),
                        accepted,
                    )
                }
                None => (None, false, Vec::new()),
            }
        } else {
            let consumes = found
                .op
                .get("consumes")
                .or_else(|| src.doc.get("consumes"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|m| m.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_else(|| vec!["application/json".to_string()]);
            let body_param = params
                .iter()
                .find(|((loc, _), _)| loc == "body")
                .map(|(_, p)| *p);
            let form: Vec<&Value> = params
                .iter()
                .filter(|((loc, _), _)| loc == "formData")
                .map(|(_, p)| *p)
                .collect();
            if let Some(p) = body_param {
                (
                    Some(p["schema"].clone()),
                    p["required"].as_bool().unwrap_or(false),
                    consumes,
                )
            } else if !form.is_empty() {
                let mut props = Map::new();
                let mut req = Vec::new();
                for p in &form {
                    let name = p["name"].as_str().unwrap_or_default().to_string();
                    if p["required"].as_bool().unwrap_or(false) {
                        req.push(Value::from(name.clone()));
                    }
                    props.insert(name, param_schema(p));
                }
                let required = !req.is_empty();
                (
                    Some(json!({"type": "object", "properties": props, "required": req})),
                    required,
                    consumes,
                )
            } else {
                (None, false, consumes)
            }
        };
        let Some(schema) = schema else {
            if !empty {
                return vec![problem(
                    "/body",
                    format!(
                        "{} {} takes no request body in {}, but one was sent: {}",
                        rec.method,
                        found.template,
                        src.label,
                        clip(&String::from_utf8_lossy(&rec.body))
                    ),
                )];
            }
            return Vec::new();
        };
        if empty {
            if required {
                return vec![problem("/body", "the required request body is missing")];
            }
            return Vec::new();
        }
        let mut out = Vec::new();
        // GitLab (Grape) takes JSON, form and multipart bodies alike (research/gitlab.md §0),
        // though its file declares only application/json.
        let grape = src.lenient.is_some()
            && matches!(
                media.as_str(),
                "application/x-www-form-urlencoded" | "multipart/form-data"
            );
        if !grape && !accepted.iter().any(|a| a.eq_ignore_ascii_case(&media)) {
            out.push(problem(
                "/body",
                format!(
                    "content type {media:?} is not one {} {} accepts in {} ({accepted:?})",
                    rec.method, found.template, src.label
                ),
            ));
        }
        let resolved = src.resolve(&schema).clone();
        let instance = match media.as_str() {
            "application/x-www-form-urlencoded" => {
                let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&rec.body)
                    .into_owned()
                    .collect();
                form_object(src, &resolved, pairs)
            }
            "multipart/form-data" => {
                let boundary = rec
                    .content_type
                    .as_deref()
                    .unwrap_or_default()
                    .split(';')
                    .find_map(|p| p.trim().strip_prefix("boundary="))
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string();
                form_object(src, &resolved, multipart_pairs(&rec.body, &boundary))
            }
            _ => match serde_json::from_slice::<Value>(&rec.body) {
                Ok(v) => v,
                Err(e) => {
                    out.push(problem(
                        "/body",
                        format!("the request body is not JSON: {e}"),
                    ));
                    return out;
                }
            },
        };
        let key = format!("{} {} body", rec.method, found.key);
        let v = self.validator(src, &key, &schema, false);
        for mut pr in validate(&v, &instance) {
            pr.pointer = format!("/body{}", pr.pointer);
            out.push(pr);
        }
        out
    }
}

/// The JSON Schema of a parameter: OAS 3 `schema`; Swagger 2 keeps type keywords on the
/// parameter itself.
fn param_schema(p: &Value) -> Value {
    if let Some(s) = p.get("schema") {
        return s.clone();
    }
    let mut out = Map::new();
    for (k, v) in p.as_object().into_iter().flatten() {
        if !matches!(
            k.as_str(),
            "name" | "in" | "required" | "description" | "collectionFormat" | "allowEmptyValue"
        ) {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// A query, path or form value as the JSON value its (unconverted) schema types it as.
fn coerce(value: &str, schema: &Value) -> Value {
    let ty = schema["type"].as_str().unwrap_or("string");
    match ty {
        "integer" => value
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(value)),
        "number" => value
            .parse::<f64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(value)),
        "boolean" => match value {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            other => Value::from(other),
        },
        "array" => Value::Array(
            value
                .split(',')
                .map(|item| coerce(item, &schema["items"]))
                .collect(),
        ),
        _ => Value::from(value),
    }
}

/// Form or multipart pairs as a JSON object, each value typed by the body schema's property.
fn form_object(src: &Source, schema: &Value, pairs: Vec<(String, String)>) -> Value {
    let mut obj = Map::new();
    for (k, v) in pairs {
        let prop = schema["properties"].get(&k).map(|p| src.resolve(p).clone());
        obj.insert(k, coerce(&v, &prop.unwrap_or(Value::Null)));
    }
    Value::Object(obj)
}

/// The parts of a multipart/form-data body as (name, value); a file part's value is
/// `<file NAME, N bytes>`.
fn multipart_pairs(body: &[u8], boundary: &str) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    let delimiter = format!("--{boundary}");
    let mut out = Vec::new();
    for part in text.split(delimiter.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.trim_start_matches("\r\n");
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let value = value.strip_suffix("\r\n").unwrap_or(value);
        let disposition = head
            .lines()
            .find(|l| l.to_lowercase().starts_with("content-disposition"))
            .unwrap_or_default();
        let attr = |name: &str| {
            disposition
                .split(';')
                .find_map(|a| a.trim().strip_prefix(&format!("{name}=")))
                .map(|v| v.trim_matches('"').to_string())
        };
        let Some(name) = attr("name") else { continue };
        match attr("filename") {
            Some(file) => out.push((name, format!("<file {file}, {} bytes>", value.len()))),
            None => out.push((name, value.to_string())),
        }
    }
    out
}

fn compile(schema: &Value, label: &str) -> Validator {
    jsonschema::options()
        .with_draft(Draft::Draft7)
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("{label}: the converted schema does not compile: {e}\n{schema}"))
}

fn validate(v: &Validator, instance: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    for e in v.iter_errors(instance) {
        flatten(&e, "", &mut out);
    }
    out
}

/// One problem per leaf error: a failed `oneOf`/`anyOf` is reported through the errors of its
/// nearest branch (the one with the fewest errors), and a missing required property points at
/// the property itself.
fn flatten(e: &ValidationError<'_>, note: &str, out: &mut Vec<Problem>) {
    let path = e.instance_path().as_str().to_string();
    match e.kind() {
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            let best = context
                .iter()
                .enumerate()
                .filter(|(_, errs)| !errs.is_empty())
                .min_by_key(|(_, errs)| errs.len());
            match best {
                Some((i, errs)) => {
                    let keyword = e.kind().keyword();
                    let note = format!("{note}[no {keyword} branch matches; nearest is #{i}] ");
                    for sub in errs {
                        flatten(sub, &note, out);
                    }
                }
                None => out.push(problem(path, format!("{note}{}", clip(&e.to_string())))),
            }
        }
        ValidationErrorKind::OneOfMultipleValid { context } => {
            let valid: Vec<String> = context
                .iter()
                .enumerate()
                .filter(|(_, errs)| errs.is_empty())
                .map(|(i, _)| format!("#{i}"))
                .collect();
            out.push(problem(
                path,
                format!(
                    "{note}{} is valid under more than one oneOf branch ({})",
                    clip(&e.instance().to_string()),
                    valid.join(", ")
                ),
            ));
        }
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| property.to_string());
            out.push(problem(
                format!("{path}/{}", escape(&name)),
                format!("{note}required property {name:?} is missing"),
            ));
        }
        _ => out.push(problem(path, format!("{note}{}", clip(&e.to_string())))),
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() > 240 {
        format!("{}…", s.chars().take(240).collect::<String>())
    } else {
        s.to_string()
    }
}

/// JSON-pointer escaping of one segment.
pub fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

// ---------------------------------------------------------------- OpenAPI → JSON Schema

struct Conv<'a> {
    src: &'a Source,
    lenient: Option<&'a Value>,
    defs: Map<String, Value>,
    pending: Vec<String>,
}

/// The JSON Schema (draft 7) of a schema node of `src`, with every definition it reaches.
fn to_json_schema(src: &Source, root: &Value, lenient: bool) -> Value {
    let mut conv = Conv {
        src,
        lenient: if lenient { src.lenient.as_ref() } else { None },
        defs: Map::new(),
        pending: Vec::new(),
    };
    let root = conv.schema(root);
    while let Some(name) = conv.pending.pop() {
        if conv.defs.contains_key(&name) {
            continue;
        }
        conv.defs.insert(name.clone(), Value::Bool(true));
        let def = src
            .definition(&name)
            .unwrap_or_else(|| panic!("{}: no definition {name}", src.label))
            .clone();
        let mut converted = conv.schema(&def);
        if let Some(l) = conv.lenient {
            lenient_definition(l, &name, &mut converted);
        }
        conv.defs.insert(name, converted);
    }
    let mut out = match root {
        Value::Object(m) => m,
        other => {
            let mut m = Map::new();
            m.insert("allOf".into(), Value::Array(vec![other]));
            m
        }
    };
    out.insert(
        "$schema".into(),
        Value::from("http://json-schema.org/draft-07/schema#"),
    );
    out.insert("definitions".into(), Value::Object(conv.defs));
    Value::Object(out)
}

impl Conv<'_> {
    fn schema(&mut self, node: &Value) -> Value {
        let Some(obj) = node.as_object() else {
            return node.clone();
        };
        let nullable = obj.get("nullable").and_then(Value::as_bool) == Some(true)
            || obj.get("x-nullable").and_then(Value::as_bool) == Some(true);
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            let name = r
                .strip_prefix("#/components/schemas/")
                .or_else(|| r.strip_prefix("#/definitions/"));
            let converted = match name {
                Some(name) => {
                    if !self.defs.contains_key(name) {
                        self.pending.push(name.to_string());
                    }
                    json!({"$ref": format!("#/definitions/{}", escape(name))})
                }
                // Any other pointer into the document: inline it.
                None => {
                    let target = self.src.resolve(node).clone();
                    self.schema(&target)
                }
            };
            return if nullable {
                json!({"anyOf": [converted, {"type": "null"}]})
            } else {
                converted
            };
        }
        let mut out = Map::new();
        for (k, v) in obj {
            match k.as_str() {
                "type" => {
                    let ty = match v.as_str() {
                        // A Swagger 2 multipart file part, seen here as the relay's placeholder
                        // string (`<file NAME, N bytes>`).
                        Some("file") => Value::from("string"),
                        // GitLab's `type: text` (invalid Swagger) is a string.
                        Some("text") => Value::from("string"),
                        _ => v.clone(),
                    };
                    out.insert(k.clone(), ty);
                }
                "properties" | "patternProperties" => {
                    let mut props = Map::new();
                    for (name, s) in v.as_object().into_iter().flatten() {
                        props.insert(name.clone(), self.schema(s));
                    }
                    out.insert(k.clone(), Value::Object(props));
                }
                "items" | "not" => {
                    out.insert(k.clone(), self.schema(v));
                }
                "additionalProperties" => {
                    let converted = if v.is_object() {
                        self.schema(v)
                    } else {
                        v.clone()
                    };
                    out.insert(k.clone(), converted);
                }
                "allOf" | "anyOf" | "oneOf" => {
                    let list = v
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|s| self.schema(s))
                        .collect();
                    out.insert(k.clone(), Value::Array(list));
                }
                "exclusiveMinimum" | "exclusiveMaximum" => {
                    // OAS 3.0 / Swagger 2: a boolean beside minimum/maximum.
                    if v.as_bool() == Some(true) {
                        let bound = if k == "exclusiveMinimum" {
                            "minimum"
                        } else {
                            "maximum"
                        };
                        if let Some(b) = obj.get(bound) {
                            out.insert(k.clone(), b.clone());
                        }
                    } else if v.is_number() {
                        out.insert(k.clone(), v.clone());
                    }
                }
                "minimum" | "maximum" => {
                    let ex = if k == "minimum" {
                        "exclusiveMinimum"
                    } else {
                        "exclusiveMaximum"
                    };
                    if obj.get(ex).and_then(Value::as_bool) != Some(true) {
                        out.insert(k.clone(), v.clone());
                    }
                }
                "required" if v.is_array() => {
                    out.insert(k.clone(), v.clone());
                }
                // OpenAPI's numeric and binary formats are no JSON Schema formats.
                "format" if !is_openapi_only_format(v) => {
                    out.insert(k.clone(), v.clone());
                }
                "enum" | "const" | "pattern" | "minLength" | "maxLength" | "minItems"
                | "maxItems" | "uniqueItems" | "multipleOf" | "minProperties" | "maxProperties"
                | "title" => {
                    out.insert(k.clone(), v.clone());
                }
                // example(s), discriminator, xml, externalDocs, readOnly, writeOnly,
                // deprecated, description, default, nullable, x-*: dropped.
                _ => {}
            }
        }
        self.discriminate_by_type(obj, &mut out);
        if nullable {
            add_null(&mut out);
        }
        Value::Object(out)
    }

    /// An object with a `type` property and a property whose `oneOf` branches are all
    /// definitions with a `title` (GitHub's `event`: `payload` is one of `MemberEvent`,
    /// `PublicEvent`, … by title): the branch is chosen by `type`, as the titles name the event
    /// types. Read literally, the `oneOf` can never pass for a payload with an `action`, because
    /// `public-event` is `{type: object}` and matches everything; so the branch named by `type`
    /// is required instead (a stricter, not a weaker, check), and a `type` that names no branch
    /// keeps the literal `oneOf`.
    fn discriminate_by_type(&mut self, obj: &Map<String, Value>, out: &mut Map<String, Value>) {
        let Some(props) = obj.get("properties").and_then(Value::as_object) else {
            return;
        };
        if !props.contains_key("type") {
            return;
        }
        let mut rules = Vec::new();
        for (name, schema) in props {
            let Some(branches) = schema.get("oneOf").and_then(Value::as_array) else {
                continue;
            };
            let titled: Option<Vec<(String, String)>> = branches
                .iter()
                .map(|b| {
                    let r = b.get("$ref")?.as_str()?;
                    let def = r
                        .strip_prefix("#/components/schemas/")
                        .or_else(|| r.strip_prefix("#/definitions/"))?;
                    let title = self.src.definition(def)?.get("title")?.as_str()?;
                    Some((title.to_string(), def.to_string()))
                })
                .collect();
            let Some(titled) = titled else { continue };
            let literal = out["properties"][name].clone();
            let titles: Vec<&String> = titled.iter().map(|(t, _)| t).collect();
            for (title, def) in &titled {
                rules.push(json!({
                    "if": {"properties": {"type": {"const": title}}, "required": ["type"]},
                    "then": {"properties": {name.clone(): {"$ref": format!("#/definitions/{}", escape(def))}}}
                }));
            }
            rules.push(json!({
                "if": {"properties": {"type": {"enum": titles}}, "required": ["type"]},
                "else": {"properties": {name.clone(): literal}}
            }));
            if let Some(p) = out.get_mut("properties").and_then(Value::as_object_mut) {
                p.insert(name.clone(), Value::Bool(true));
            }
        }
        if !rules.is_empty() {
            match out.get_mut("allOf").and_then(Value::as_array_mut) {
                Some(all) => all.extend(rules),
                None => {
                    out.insert("allOf".into(), Value::Array(rules));
                }
            }
        }
    }
}

fn is_openapi_only_format(v: &Value) -> bool {
    matches!(
        v.as_str(),
        Some("int32" | "int64" | "float" | "double" | "byte" | "binary" | "password")
    )
}

/// Lets a converted schema also accept `null`.
fn add_null(out: &mut Map<String, Value>) {
    if let Some(e) = out.get_mut("enum").and_then(Value::as_array_mut) {
        if !e.contains(&Value::Null) {
            e.push(Value::Null);
        }
    }
    match out.get("type").cloned() {
        Some(Value::String(t)) => {
            out.insert("type".into(), json!([t, "null"]));
        }
        Some(Value::Array(mut ts)) => {
            if !ts.contains(&Value::from("null")) {
                ts.push(Value::from("null"));
            }
            out.insert("type".into(), Value::Array(ts));
        }
        _ => {
            let inner = Value::Object(std::mem::take(out));
            out.insert("anyOf".into(), json!([inner, {"type": "null"}]));
        }
    }
}

/// GitLab's lenient rules on one converted response definition: field types from the research
/// (`types`), every other field nullable, and the EE-only fields not required.
fn lenient_definition(l: &Value, name: &str, def: &mut Value) {
    let types = &l["types"];
    if let Some(props) = def.get_mut("properties").and_then(Value::as_object_mut) {
        for (field, schema) in props.iter_mut() {
            if let Some(t) = types.get(field) {
                *schema = t.clone();
            } else if let Some(m) = schema.as_object_mut() {
                if m.contains_key("$ref") {
                    let inner = Value::Object(std::mem::take(m));
                    m.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                } else {
                    add_null(m);
                }
            }
        }
    }
    let dropped: Vec<&str> = l["not_required"]
        .get(name)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(l["not_required"]["*"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    if let Some(req) = def.get_mut("required").and_then(Value::as_array_mut) {
        req.retain(|f| !f.as_str().is_some_and(|f| dropped.contains(&f)));
    }
}
