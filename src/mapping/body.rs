//! JSON bodies written in a mapping file (error bodies, fixed answers), kept in the file's key
//! order; strings and keys may hold `{placeholders}`, filled when the body is serialized.

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

use super::Template;

#[derive(Debug, Clone)]
pub enum Body {
    Scalar(Value),
    Text(Template),
    Array(Vec<Body>),
    Object(Vec<(Template, Body)>),
}

impl Body {
    pub fn from_toml(v: &toml::Value) -> Body {
        match v {
            toml::Value::String(s) if s.contains('{') => Body::Text(Template::parse(s)),
            toml::Value::String(s) => Body::Scalar(Value::String(s.clone())),
            toml::Value::Integer(i) => Body::Scalar(Value::from(*i)),
            toml::Value::Float(f) => Body::Scalar(Value::from(*f)),
            toml::Value::Boolean(b) => Body::Scalar(Value::Bool(*b)),
            toml::Value::Datetime(d) => Body::Scalar(Value::String(d.to_string())),
            toml::Value::Array(a) => Body::Array(a.iter().map(Body::from_toml).collect()),
            toml::Value::Table(t) => Body::Object(
                t.iter()
                    .map(|(k, v)| (Template::parse(k), Body::from_toml(v)))
                    .collect(),
            ),
        }
    }

    /// The body with its placeholders filled by `lookup` (an unknown one renders empty).
    pub fn fill<'a, F>(&'a self, lookup: &'a F) -> Filled<'a, F>
    where
        F: Fn(&str) -> Option<Cow<'a, str>>,
    {
        Filled { body: self, lookup }
    }
}

/// A body being serialized with its placeholders filled.
pub struct Filled<'a, F> {
    body: &'a Body,
    lookup: &'a F,
}

impl<'a, F> Serialize for Filled<'a, F>
where
    F: Fn(&str) -> Option<Cow<'a, str>>,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.body {
            Body::Scalar(v) => v.serialize(serializer),
            Body::Text(t) => serializer.serialize_str(&t.render(self.lookup)),
            Body::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&item.fill(self.lookup))?;
                }
                seq.end()
            }
            Body::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(&key.render(self.lookup), &value.fill(self.lookup))?;
                }
                map.end()
            }
        }
    }
}

/// Fills nothing: for bodies without placeholders.
pub fn no_facts<'a>(_: &str) -> Option<Cow<'a, str>> {
    None
}
