//! Reading a whole HTTP body within a size limit: refused at once when its declared length is
//! already over, otherwise read until the limit. Used for client requests and upstream answers.

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Limited};

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum Unread {
    /// Declared or found larger than the limit.
    TooLarge,
    /// The stream broke before its end.
    Broken,
}

/// Reads `body` to its end, refusing more than `limit` bytes.
pub async fn collect<B>(headers: &HeaderMap, body: B, limit: usize) -> Result<Bytes, Unread>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Unread::TooLarge);
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Unread::TooLarge),
        Err(_) => Err(Unread::Broken),
    }
}
