//! Avatars for an upstream that cannot store them (GitHub has no API to upload an organization
//! avatar): forgebridge keeps the uploaded image itself, serves it at `/avatars/org-{id}` on its
//! public URL, and shows that URL for the organization in every answer. The images live in
//! this process's memory. Until it keeps one, reads in the upstream's own dialect may be
//! forwarded as they are: the upstream's avatar URLs are then the ones to show.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use serde_json::Value;

use super::upstream::UpstreamForge;
use super::{Avatar, Backend, BoxFuture};
use crate::canonical::op::ResultKind;
use crate::canonical::{
    avatar, CanonicalError, CanonicalRequest, Entity, Object, OpKind, Outcome, ValidationCode,
};
use crate::mapping::Dialect;

pub struct AvatarKeeper {
    inner: Arc<dyn Backend>,
    public_url: String,
    images: RwLock<HashMap<u64, (String, Bytes)>>,
}

/// Whether an upstream of this dialect stores organization avatars itself.
pub fn upstream_stores_avatars(dialect: &Dialect) -> bool {
    dialect.supports(OpKind::OrgSetAvatar)
        || dialect.upstream_routes(OpKind::OrgCreate).any(|r| {
            r.request
                .as_ref()
                .is_some_and(|s| s.writes_canonical("avatar"))
        })
}

fn decode(value: &Value) -> Result<(String, Bytes), CanonicalError> {
    value
        .as_str()
        .and_then(avatar::decode)
        .map(|(mime, bytes)| (mime, Bytes::from(bytes)))
        .ok_or_else(|| {
            CanonicalError::validation(
                "avatar",
                ValidationCode::Invalid,
                "the avatar is not a base64 image",
            )
        })
}

impl AvatarKeeper {
    pub fn new(inner: Arc<dyn Backend>, public_url: &str) -> Self {
        AvatarKeeper {
            inner,
            public_url: public_url.trim_end_matches('/').to_string(),
            images: RwLock::new(HashMap::new()),
        }
    }

    /// Whether no image is kept yet.
    fn keeps_none(&self) -> bool {
        self.images.read().is_ok_and(|images| images.is_empty())
    }

    fn store(&self, id: u64, image: (String, Bytes)) {
        if let Ok(mut images) = self.images.write() {
            images.insert(id, image);
        }
    }

    /// Points the avatar_url of every organization with a kept image at the proxy.
    fn show(&self, org: &mut Object) {
        if let Some(url) = self.kept_url(org.get("id")) {
            org.insert("avatar_url", url);
        }
    }

    /// The proxy's URL of the image kept for the organization with this id, if any.
    fn kept_url(&self, id: Option<&Value>) -> Option<Value> {
        let id = id.and_then(Value::as_u64)?;
        let kept = self
            .images
            .read()
            .is_ok_and(|images| images.contains_key(&id));
        kept.then(|| Value::from(format!("{}/avatars/org-{id}", self.public_url)))
    }

    async fn perform(&self, mut req: CanonicalRequest) -> Result<Outcome, CanonicalError> {
        // The image is checked before anything is written upstream.
        let image = match req.op {
            OpKind::OrgCreate | OpKind::OrgUpdate | OpKind::OrgSetAvatar => {
                req.input.remove("avatar").map(|v| decode(&v)).transpose()?
            }
            _ => None,
        };
        if req.op == OpKind::OrgSetAvatar {
            let image = image.ok_or_else(|| {
                CanonicalError::validation(
                    "avatar",
                    ValidationCode::Missing,
                    "the image is missing",
                )
            })?;
            let mut get = CanonicalRequest::new(OpKind::OrgGet);
            get.credential = req.credential.clone();
            get.params = req.params.clone();
            let id = match self.inner.execute(get).await? {
                Outcome::Entity(org) => org.get("id").and_then(Value::as_u64),
                _ => None,
            };
            let id = id.ok_or_else(|| CanonicalError::not_found("organization not found"))?;
            self.store(id, image);
            return Ok(Outcome::Done);
        }
        let result = req.op.result();
        let mut outcome = self.inner.execute(req).await?;
        if let (Some(image), Outcome::Entity(org)) = (image, &outcome) {
            if let Some(id) = org.get("id").and_then(Value::as_u64) {
                self.store(id, image);
            }
        }
        match (&mut outcome, result) {
            (Outcome::Entity(org), ResultKind::Entity(Entity::Organization)) => self.show(org),
            // (Without a kept image, a list's items are left as the upstream gave them: read
            // for nothing, they could no longer be written straight from its pages.)
            (Outcome::List(page), ResultKind::List(Entity::Organization)) if !self.keeps_none() => {
                page.items.iter_mut().for_each(|org| self.show(org))
            }
            (Outcome::Entity(perms), ResultKind::Entity(Entity::Permissions)) => {
                if let Some(Value::Object(org)) = perms.get_mut("organization") {
                    if let Some(url) = self.kept_url(org.get("id")) {
                        org.insert("avatar_url".to_string(), url);
                    }
                }
            }
            _ => {}
        }
        Ok(outcome)
    }
}

impl Backend for AvatarKeeper {
    fn describe(&self) -> String {
        format!(
            "{} (organization avatars kept by forgebridge)",
            self.inner.describe()
        )
    }

    fn execute(&self, req: CanonicalRequest) -> BoxFuture<'_, Result<Outcome, CanonicalError>> {
        Box::pin(self.perform(req))
    }

    /// The upstream's own answers show the right avatars until an image is kept here; from
    /// then on every read is translated, so that the kept ones are shown.
    fn forwarder(&self, dialect: &Dialect) -> Option<&UpstreamForge> {
        self.inner.forwarder(dialect).filter(|_| self.keeps_none())
    }

    fn avatar<'a>(&'a self, rest: &'a str) -> BoxFuture<'a, Option<Avatar>> {
        let kept = rest
            .strip_prefix("org-")
            .and_then(|id| id.parse::<u64>().ok())
            .and_then(|id| self.images.read().ok()?.get(&id).cloned());
        match kept {
            Some((content_type, bytes)) => Box::pin(async move {
                Some(Avatar {
                    content_type,
                    bytes,
                })
            }),
            None => self.inner.avatar(rest),
        }
    }
}
