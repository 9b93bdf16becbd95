//! Backends perform canonical operations. Two implementations sit behind one trait: the HTTP
//! upstream (a real forge, or another forgebridge, spoken to in its dialect) and the embedded
//! in-memory reference forge.

pub mod avatars;
pub mod reference;
pub mod transport;
pub mod upstream;
mod wire;

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::canonical::{CanonicalError, CanonicalRequest, OpKind, Outcome, Params};
use crate::mapping::Dialect;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An avatar image: content type and bytes.
pub struct Avatar {
    pub content_type: String,
    pub bytes: Bytes,
}

pub trait Backend: Send + Sync {
    /// A short description for logs and error messages (never a token).
    fn describe(&self) -> String;

    /// Performs one canonical operation.
    fn execute(&self, req: CanonicalRequest) -> BoxFuture<'_, Result<Outcome, CanonicalError>>;

    /// Serves `/avatars/{rest}` so that avatar URLs can point at the proxy.
    fn avatar<'a>(&'a self, rest: &'a str) -> BoxFuture<'a, Option<Avatar>>;

    /// The upstream that reads a client makes in `dialect` are forwarded to as they are
    /// ([`upstream::UpstreamForge::forward_read`]), rather than performed through the canonical
    /// model: one that speaks that dialect, where forwarding is on. None: translate.
    fn forwarder(&self, _dialect: &Dialect) -> Option<&upstream::UpstreamForge> {
        None
    }
}

/// An upstream's answer to a forwarded read, its URLs already pointed at the proxy.
pub struct Forwarded {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// Performs a canonical request on a backend, splitting the one composite the canonical model
/// knows: an update that carries a new login (GitLab's `PUT /groups/:id` with `path`) is a
/// rename followed by an update of the renamed organization. If the update fails, the rename
/// is undone, and the error says so.
pub async fn perform(
    backend: &dyn Backend,
    req: CanonicalRequest,
) -> Result<Outcome, CanonicalError> {
    let Some(new_login) = req.params.get("new_login").map(str::to_string) else {
        return backend.execute(req).await;
    };
    if req.op != OpKind::OrgUpdate {
        return backend.execute(req).await;
    }
    let mut get = CanonicalRequest::new(OpKind::OrgGet);
    get.credential = req.credential.clone();
    for key in ["org", "org_id"] {
        if let Some(v) = req.params.get(key) {
            get.params.set(key, v);
        }
    }
    let old_login = match backend.execute(get).await? {
        Outcome::Entity(org) => org
            .get("login")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        _ => None,
    }
    .ok_or_else(|| CanonicalError::not_found("organization not found"))?;

    let renaming = new_login != old_login;
    if renaming {
        backend
            .execute(rename(&req, &old_login, &new_login))
            .await?;
    }
    let mut update = req.clone();
    update.params = Params::default().with("org", new_login.clone());
    match backend.execute(update).await {
        Ok(outcome) => Ok(outcome),
        Err(mut err) if renaming => {
            match backend.execute(rename(&req, &new_login, &old_login)).await {
                Ok(_) => err.detail = format!("{} (the rename to {new_login} was undone)", err.detail),
                Err(undo) => {
                    err.detail = format!(
                        "{}; the organization was renamed from {old_login} to {new_login}, and renaming it back failed: {}",
                        err.detail, undo.detail
                    )
                }
            }
            Err(err)
        }
        Err(err) => Err(err),
    }
}

fn rename(req: &CanonicalRequest, from: &str, to: &str) -> CanonicalRequest {
    let mut r = CanonicalRequest::new(OpKind::OrgRename);
    r.credential = req.credential.clone();
    r.params = Params::default().with("org", from).with("new_login", to);
    r.want_result = false;
    r
}
