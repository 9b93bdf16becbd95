//! Pointing an upstream's URLs at the proxy: a value that is a URL on the upstream's origin
//! (`https://gitea.example.com/...`) is shown on the proxy's public URL instead, wherever the
//! upstream's answers are read (decoded objects, and pages written without being decoded).

use std::borrow::Cow;

use serde_json::Value;

use crate::canonical::Object;

#[derive(Debug)]
pub struct Rebase {
    /// The upstream's origin, without a trailing slash.
    origin: Box<str>,
    /// The proxy's public URL, without a trailing slash.
    public_url: Box<str>,
    /// Whether the public URL is JSON text as it stands (URLs pointed at it can be copied into
    /// an answer without escaping).
    plain: bool,
}

impl Rebase {
    pub fn new(origin: &str, public_url: &str) -> Rebase {
        let public_url = public_url.trim_end_matches('/');
        Rebase {
            origin: origin.trim_end_matches('/').into(),
            public_url: public_url.into(),
            plain: super::shape::json_plain(public_url),
        }
    }

    pub fn is_plain(&self) -> bool {
        self.plain
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// What follows the upstream's origin in `text`, where `text` is a URL on it.
    pub fn rest<'a>(&self, text: &'a str) -> Option<&'a str> {
        let origin = self.origin.as_bytes();
        // The origin's last byte is compared first: most strings that are not URLs (names,
        // descriptions) differ there, without a `memcmp` call.
        let starts = text
            .as_bytes()
            .get(..origin.len())
            .is_some_and(|head| head.last() == origin.last() && head == origin);
        (starts && origin_ends(text.as_bytes(), origin.len()))
            .then(|| text.get(origin.len()..))
            .flatten()
    }

    /// `text` pointed at the proxy (borrowed where it is no URL on the upstream's origin).
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.rest(text) {
            Some(rest) => Cow::Owned([&*self.public_url, rest].concat()),
            None => Cow::Borrowed(text),
        }
    }

    /// Every string of a value (and of the values of a nested object) pointed at the proxy.
    pub fn value(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                if let Some(rest) = self.rest(s) {
                    // A new string of the right size, written in two copies: growing the old
                    // one in place reallocated it, and `replace_range` copies byte by byte.
                    let mut url = String::with_capacity(self.public_url.len() + rest.len());
                    url.push_str(&self.public_url);
                    url.push_str(rest);
                    *s = url;
                }
            }
            Value::Object(inner) => inner.values_mut().for_each(|v| self.value(v)),
            _ => {}
        }
    }

    /// Every value of an object pointed at the proxy.
    pub fn object(&self, obj: &mut Object) {
        obj.values_mut().for_each(|v| self.value(v));
    }
}

/// Whether an origin found in `text` ends at `at`: not followed by more of a host name or a
/// port (`http://up` is not the origin of `http://upper.example` or `http://up:8080`).
pub fn origin_ends(text: &[u8], at: usize) -> bool {
    text.get(at)
        .is_none_or(|&c| !(c.is_ascii_alphanumeric() || b".-_:@".contains(&c)))
}
