//! Credentials in each dialect's forms: taken from a client's request as the mapping's
//! `auth.accept` lists them, and written to an upstream request in its `auth.emit` form.

use base64::Engine;
use http::{HeaderMap, HeaderValue};

use crate::canonical::Credential;
use crate::mapping::{AuthSource, AuthSpec};

/// The caller's token, if the request carries one in a form this dialect accepts.
pub fn credential(
    spec: &AuthSpec,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Option<Credential> {
    spec.accept.iter().find_map(|source| match source {
        AuthSource::Authorization => headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(from_authorization),
        AuthSource::Header(name) => headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Credential::new),
        AuthSource::Query(key) => query
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| Credential::new(v.clone())),
    })
}

fn from_authorization(value: &str) -> Option<Credential> {
    let mut parts = value.split_whitespace();
    let scheme = parts.next()?;
    let rest = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    match scheme.to_ascii_lowercase().as_str() {
        "token" | "bearer" => Some(Credential::new(rest)),
        "basic" => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (user, password) = decoded.split_once(':')?;
            if password.is_empty() || password == "x-oauth-basic" {
                Some(Credential::new(user))
            } else {
                Some(Credential::new(password))
            }
        }
        _ => None,
    }
}

/// Whether a query parameter carries a credential in this dialect (`token`, `private_token`, …).
pub fn is_query_credential(spec: &AuthSpec, key: &str) -> bool {
    spec.accept
        .iter()
        .any(|s| matches!(s, AuthSource::Query(q) if q == key))
}

/// The header that carries `credential` to an upstream of this dialect.
pub fn emit(spec: &AuthSpec, credential: &Credential) -> Option<(http::HeaderName, HeaderValue)> {
    let value = spec
        .emit_value
        .render(|_| Some(std::borrow::Cow::Borrowed(credential.secret())));
    let mut value = HeaderValue::from_str(&value).ok()?;
    value.set_sensitive(true);
    Some((spec.emit_header.clone(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_authorization_form() {
        for header in ["token abc", "Bearer abc", "TOKEN abc"] {
            assert_eq!(from_authorization(header), Some(Credential::new("abc")));
        }
        let basic = base64::engine::general_purpose::STANDARD.encode("alice:abc");
        assert_eq!(
            from_authorization(&format!("Basic {basic}")),
            Some(Credential::new("abc"))
        );
        let token_as_user = base64::engine::general_purpose::STANDARD.encode("abc:x-oauth-basic");
        assert_eq!(
            from_authorization(&format!("Basic {token_as_user}")),
            Some(Credential::new("abc"))
        );
        assert_eq!(from_authorization("Digest abc"), None);
        assert_eq!(from_authorization("token"), None);
    }
}
