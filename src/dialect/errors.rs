//! Errors in a dialect's own shape: canonical errors rendered for a client with the status and
//! body template of its mapping file, and an upstream's error answers read back into canonical
//! errors through the mapping's `errors.decode` rules.

use std::borrow::Cow;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::Value;

use crate::canonical::{CanonicalError, ErrorKind, ValidationCode};
use crate::mapping::{Dialect, Template};

/// Renders `error` as `dialect` would answer it; `web` is the proxy's public URL.
pub fn render(dialect: &Dialect, error: &CanonicalError, web: &str) -> Response<Full<Bytes>> {
    let spec = &dialect.errors;
    let (status, message, kind_body) = match spec.kinds.get(&error.kind) {
        Some(k) => (k.status, k.message.clone(), k.body.as_ref()),
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Template::parse("{detail}"),
            None,
        ),
    };
    let code = match error.code {
        Some(ValidationCode::Missing) => spec.code_missing.as_str(),
        Some(ValidationCode::Conflict) => spec.code_conflict.as_str(),
        Some(ValidationCode::Invalid) | None => spec.code_invalid.as_str(),
    };
    let status_text = status.as_u16().to_string();
    let field = error.field.as_deref().unwrap_or("");
    let resource = error.resource.as_deref().unwrap_or(&spec.default_resource);
    // A detail may name the field as {field}: it reads in the client's own terms.
    let detail = if error.detail.contains("{field}") {
        error.detail.replace("{field}", field)
    } else {
        error.detail.clone()
    };
    let facts = |var: &str| -> Option<Cow<'_, str>> {
        match var {
            "detail" => Some(Cow::Borrowed(detail.as_str())),
            "status" => Some(Cow::Borrowed(status_text.as_str())),
            "field" => Some(Cow::Borrowed(field)),
            "code" => Some(Cow::Borrowed(code)),
            "resource" => Some(Cow::Borrowed(resource)),
            "web" => Some(Cow::Borrowed(web)),
            _ => None,
        }
    };
    let message = message.render(facts);
    let lookup = |var: &str| -> Option<Cow<'_, str>> {
        match var {
            "message" => Some(Cow::Borrowed(message.as_str())),
            other => facts(other),
        }
    };
    let validation =
        matches!(error.kind, ErrorKind::Validation | ErrorKind::Conflict) && error.field.is_some();
    let template = match (kind_body, &spec.validation_body, validation) {
        (Some(b), _, _) => b,
        (None, Some(v), true) => v,
        _ => &spec.body,
    };
    let bytes = serde_json::to_vec(&template.fill(&lookup)).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(bytes)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, spec.content_type.clone());
    resp
}

/// Reads an upstream's error answer into a canonical error. The upstream's own wording is kept
/// as detail only after its address has been scrubbed by the caller.
pub fn decode(dialect: &Dialect, status: StatusCode, body: &[u8]) -> CanonicalError {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = extract_message(&json);
    let first_error = json.get("errors").and_then(|e| e.get(0));
    let code = first_error
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str);
    let field = first_error
        .and_then(|e| e.get("field"))
        .and_then(Value::as_str);
    let rule = dialect.errors.decode.iter().find(|r| {
        r.status == status.as_u16()
            && r.code.as_deref().is_none_or(|c| Some(c) == code)
            && r.message_contains.as_deref().is_none_or(|m| {
                message
                    .to_ascii_lowercase()
                    .contains(&m.to_ascii_lowercase())
            })
    });
    let kind = match rule {
        Some(r) => r.kind,
        None if status.is_server_error() => ErrorKind::UpstreamUnavailable,
        None => ErrorKind::BadRequest,
    };
    let detail = first_error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or(message);
    let detail = if kind == ErrorKind::UpstreamUnavailable {
        format!(
            "upstream {} answered {}: {detail}",
            dialect.name,
            status.as_u16()
        )
    } else {
        detail
    };
    let mut err = CanonicalError::new(kind, detail);
    if matches!(kind, ErrorKind::Validation | ErrorKind::Conflict) {
        err.field = field.map(str::to_string);
        err.code = Some(match kind {
            ErrorKind::Conflict => ValidationCode::Conflict,
            _ if code == Some("missing_field") => ValidationCode::Missing,
            _ => ValidationCode::Invalid,
        });
    }
    err
}

/// The human message of an error body in any of the forge shapes: `message` as a string,
/// GitLab's `message` as a map of field errors, or `error`.
fn extract_message(json: &Value) -> String {
    match json.get("message").or_else(|| json.get("error")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(fields)) => fields
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k} {}",
                    v.as_array()
                        .and_then(|a| a.first())
                        .and_then(Value::as_str)
                        .unwrap_or("is invalid")
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}
