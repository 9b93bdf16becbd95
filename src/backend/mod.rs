//! Backends perform canonical operations. Two implementations sit behind one trait: the HTTP
//! upstream (a real forge, or another forgebridge, spoken to in its dialect) and the embedded
//! in-memory reference forge.

pub mod reference;
pub mod upstream;

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::canonical::{CanonicalError, CanonicalRequest, Outcome};

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
}
