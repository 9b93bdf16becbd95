//! Request bodies as clients send them: JSON (every dialect), and the form encodings GitLab
//! also takes (`application/x-www-form-urlencoded`, `multipart/form-data`). All become one JSON
//! object for the request shapes to read; an uploaded file becomes a `data:` URL string.

use base64::Engine;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Map, Value};

use crate::canonical::{CanonicalError, ErrorKind};

fn bad(detail: impl Into<String>) -> CanonicalError {
    CanonicalError::new(ErrorKind::BadRequest, detail)
}

pub async fn parse(headers: &HeaderMap, body: Bytes, forms: bool) -> Result<Value, CanonicalError> {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    if forms && content_type.starts_with("application/x-www-form-urlencoded") {
        let fields = url::form_urlencoded::parse(&body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        return Ok(Value::Object(fields));
    }
    if forms && content_type.starts_with("multipart/form-data") {
        return multipart(&content_type, body).await;
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(bad("Body should be a JSON object")),
        Err(e) => Err(bad(format!("the body is not valid JSON: {e}"))),
    }
}

async fn multipart(content_type: &str, body: Bytes) -> Result<Value, CanonicalError> {
    let boundary =
        multer::parse_boundary(content_type).map_err(|e| bad(format!("multipart body: {e}")))?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut fields = Map::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| bad(format!("multipart body: {e}")))?
    {
        let Some(name) = field.name().map(str::to_string) else {
            continue;
        };
        let is_file = field.file_name().is_some();
        let mime = field
            .content_type()
            .map(|m| m.essence_str().to_string())
            .unwrap_or_else(|| "application/octet-stream".into());
        let data = field
            .bytes()
            .await
            .map_err(|e| bad(format!("multipart body: {e}")))?;
        let value = if is_file {
            let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
            format!("data:{mime};base64,{encoded}")
        } else {
            String::from_utf8_lossy(&data).into_owned()
        };
        fields.insert(name, Value::String(value));
    }
    Ok(Value::Object(fields))
}
