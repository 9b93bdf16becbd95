//! Avatar images in canonical form: a `data:` URL carrying the media type and the bytes, so that
//! a multipart upload (GitLab), a base64 field (Gitea) and a stored image are one value.

use base64::Engine;

/// The media type and bytes of a `data:<type>;base64,<data>` URL.
pub fn decode(data_url: &str) -> Option<(String, Vec<u8>)> {
    let rest = data_url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()?;
    let mime = if mime.is_empty() { sniff(&bytes) } else { mime };
    Some((mime.to_string(), bytes))
}

/// A `data:` URL for bare base64 image data, its media type read from the bytes.
pub fn from_base64(data: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()?;
    Some(format!("data:{};base64,{}", sniff(&bytes), data.trim()))
}

/// The bare base64 data of a `data:` URL.
pub fn to_base64(data_url: &str) -> Option<&str> {
    data_url.split_once(";base64,").map(|(_, d)| d)
}

fn sniff(bytes: &[u8]) -> &'static str {
    match bytes {
        [0x89, b'P', b'N', b'G', ..] => "image/png",
        [0xFF, 0xD8, 0xFF, ..] => "image/jpeg",
        [b'G', b'I', b'F', b'8', ..] => "image/gif",
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => "image/webp",
        _ if bytes.starts_with(b"<svg") || bytes.starts_with(b"<?xml") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_base64() {
        let png = [0x89, b'P', b'N', b'G', 1, 2, 3];
        let b64 = base64::engine::general_purpose::STANDARD.encode(png);
        let url = from_base64(&b64).expect("data url");
        assert!(url.starts_with("data:image/png;base64,"));
        assert_eq!(to_base64(&url), Some(b64.as_str()));
        assert_eq!(decode(&url), Some(("image/png".to_string(), png.to_vec())));
        assert_eq!(decode("not a data url"), None);
    }
}
