//! Canonical objects: each value under its field's place in the table of every canonical field
//! name (`schema`), kept in that order. No key is allocated, compared as a string, or freed per
//! object; shapes look fields up by place ([`Field`]), resolved once when a mapping is loaded.
//! An object may also be an upstream's item not read yet ([`Unread`]): its fields are read
//! the first time anything asks for them.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, LazyLock, OnceLock};

use serde_json::Value;

use super::schema::Entity;

/// Every canonical field name of every entity, sorted: a field's place here is its [`Field`],
/// so an object's fields iterate in name order.
static NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut names: Vec<&'static str> = [
        Entity::Organization,
        Entity::User,
        Entity::Permissions,
        Entity::Activity,
    ]
    .iter()
    .flat_map(|e| e.fields().iter().map(|(name, _)| *name))
    .collect();
    names.sort_unstable();
    names.dedup();
    names
});

/// A canonical field, by its place among all canonical field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Field(u16);

impl Field {
    /// The first field by place (a placeholder for an entry about to be filled).
    pub(crate) const FIRST: Field = Field(0);

    /// The field of that name, if it is a canonical field of any entity.
    pub fn of(name: &str) -> Option<Field> {
        NAMES
            .binary_search(&name)
            .ok()
            .and_then(|at| u16::try_from(at).ok())
            .map(Field)
    }

    pub fn name(self) -> &'static str {
        NAMES.get(usize::from(self.0)).copied().unwrap_or("")
    }
}

/// A set of canonical fields, one bit per place. A field past the set's 128 places (there are
/// far fewer) is always in it: the set may only ever say too much, never too little.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldSet(u128);

impl FieldSet {
    pub fn with(mut self, field: Field) -> FieldSet {
        if let Some(bit) = 1u128.checked_shl(u32::from(field.0)) {
            self.0 |= bit;
        }
        self
    }

    pub fn union(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 | other.0)
    }

    pub fn contains(self, field: Field) -> bool {
        1u128
            .checked_shl(u32::from(field.0))
            .is_none_or(|bit| self.0 & bit != 0)
    }
}

impl FromIterator<Field> for FieldSet {
    fn from_iter<I: IntoIterator<Item = Field>>(iter: I) -> FieldSet {
        iter.into_iter().fold(FieldSet::default(), FieldSet::with)
    }
}

/// A canonical object: canonical fields (see `schema`) to values.
#[derive(Debug, Clone, Default)]
pub struct Object {
    /// Sorted by field, each field at most once (an unread object's are in `unread`).
    fields: Vec<(Field, Value)>,
    unread: Option<Unread>,
}

/// A page of an upstream's list whose items are found but not read: the upstream layer
/// knows where each item's values lie, and reads an item's fields when they are first asked
/// for. An answer in a dialect that can be written from the page's text directly (a
/// translation compiled for the pair of shapes) never reads them at all.
pub trait UnreadPage: Send + Sync + fmt::Debug {
    /// Item `index`'s fields, sorted by field, each at most once.
    fn read(&self, index: usize) -> Vec<(Field, Value)>;

    /// The page itself, for the writer that knows its kind.
    fn as_any(&self) -> &dyn Any;
}

/// An item of an [`UnreadPage`], and its fields once read.
#[derive(Debug, Clone)]
pub struct Unread {
    pub page: Arc<dyn UnreadPage>,
    pub index: usize,
    fields: OnceLock<Vec<(Field, Value)>>,
}

impl PartialEq for Object {
    fn eq(&self, other: &Object) -> bool {
        self.entries() == other.entries()
    }
}

impl Object {
    pub fn new() -> Object {
        Object::default()
    }

    /// An object from fields already in order, each once (as a shape decodes them).
    pub(crate) fn from_sorted(fields: Vec<(Field, Value)>) -> Object {
        debug_assert!(fields.windows(2).all(|w| w[0].0 < w[1].0));
        Object {
            fields,
            unread: None,
        }
    }

    /// Item `index` of an unread page, read when its fields are first asked for.
    pub fn unread(page: Arc<dyn UnreadPage>, index: usize) -> Object {
        Object {
            fields: Vec::new(),
            unread: Some(Unread {
                page,
                index,
                fields: OnceLock::new(),
            }),
        }
    }

    /// The page item this object still is, unchanged: None once anything has changed it
    /// (reading its fields does not).
    pub fn as_unread(&self) -> Option<&Unread> {
        self.unread.as_ref()
    }

    /// Fields (as places) and values, in name order.
    pub(crate) fn entries(&self) -> &[(Field, Value)] {
        match &self.unread {
            None => &self.fields,
            Some(u) => u.fields.get_or_init(|| u.page.read(u.index)),
        }
    }

    /// The fields, to change: an unread object is read first, and is no longer its item.
    fn entries_mut(&mut self) -> &mut Vec<(Field, Value)> {
        if let Some(u) = self.unread.take() {
            self.fields = u
                .fields
                .into_inner()
                .unwrap_or_else(|| u.page.read(u.index));
        }
        &mut self.fields
    }

    fn find(&self, field: Field) -> Result<usize, usize> {
        self.entries().binary_search_by_key(&field, |(f, _)| *f)
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        let at = self.find(Field::of(name)?).ok()?;
        Some(&self.entries()[at].1)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        let at = self.find(Field::of(name)?).ok()?;
        Some(&mut self.entries_mut()[at].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets a field, giving back its old value. A name that is no canonical field is a bug in
    /// the caller (mapping files are checked against the schema when loaded): it is dropped.
    pub fn insert(&mut self, name: &str, value: Value) -> Option<Value> {
        let Some(field) = Field::of(name) else {
            debug_assert!(false, "{name} is not a canonical field");
            return None;
        };
        let found = self.find(field);
        let fields = self.entries_mut();
        match found {
            Ok(at) => Some(std::mem::replace(&mut fields[at].1, value)),
            Err(at) => {
                fields.insert(at, (field, value));
                None
            }
        }
    }

    /// Sets a field unless it is set already.
    pub fn insert_if_absent(&mut self, name: &str, value: impl FnOnce() -> Value) {
        if !self.contains_key(name) {
            self.insert(name, value());
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let at = self.find(Field::of(name)?).ok()?;
        Some(self.entries_mut().remove(at).1)
    }

    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    /// Fields and values, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.entries().iter().map(|(f, v)| (f.name(), v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries().iter().map(|(f, _)| f.name())
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Value> {
        self.entries_mut().iter_mut().map(|(_, v)| v)
    }

    /// The fields (as places) and values, in name order.
    pub(crate) fn into_entries(mut self) -> Vec<(Field, Value)> {
        std::mem::take(self.entries_mut())
    }

    /// The object as a JSON map (a nested canonical object is kept as one inside a value).
    pub fn into_map(self) -> serde_json::Map<String, Value> {
        self.into_entries()
            .into_iter()
            .map(|(f, v)| (f.name().to_string(), v))
            .collect()
    }

    /// A JSON map's canonical fields as an object; other keys are left out.
    pub fn from_map(map: &serde_json::Map<String, Value>) -> Object {
        let mut fields: Vec<(Field, Value)> = map
            .iter()
            .filter_map(|(k, v)| Field::of(k).map(|f| (f, v.clone())))
            .collect();
        fields.sort_by_key(|(f, _)| *f);
        Object::from_sorted(fields)
    }
}

impl<'a> FromIterator<(&'a str, Value)> for Object {
    fn from_iter<I: IntoIterator<Item = (&'a str, Value)>>(iter: I) -> Object {
        let mut obj = Object::new();
        for (name, value) in iter {
            obj.insert(name, value);
        }
        obj
    }
}

impl<'a> IntoIterator for &'a Object {
    type Item = (&'static str, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Field, Value)>,
        fn(&'a (Field, Value)) -> (&'static str, &'a Value),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.entries().iter().map(|(f, v)| (f.name(), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_sets_hold_what_was_put_in_and_every_field_past_their_places() {
        let [id, login, email] = ["id", "login", "email"].map(|n| Field::of(n).expect(n));
        let set: FieldSet = [id, login].into_iter().collect();
        assert!(set.contains(id) && set.contains(login) && !set.contains(email));
        assert!(FieldSet::default().contains(Field(128)));
        assert!(
            NAMES.len() <= 128,
            "FieldSet holds the first 128 fields only"
        );
    }

    #[test]
    fn fields_are_kept_in_name_order_and_found_by_name() {
        let mut obj = Object::new();
        assert_eq!(obj.insert("login", Value::from("acme")), None);
        obj.insert("id", Value::from(7));
        obj.insert("avatar_url", Value::from("u"));
        assert_eq!(
            obj.insert("login", Value::from("acme2")),
            Some(Value::from("acme"))
        );
        let names: Vec<_> = obj.iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["avatar_url", "id", "login"]);
        assert_eq!(obj.get("login"), Some(&Value::from("acme2")));
        assert_eq!(obj.remove("id"), Some(Value::from(7)));
        assert!(!obj.contains_key("id"));
        assert_eq!(
            serde_json::to_string(&obj.clone().into_map())
                .ok()
                .as_deref(),
            Some(r#"{"avatar_url":"u","login":"acme2"}"#)
        );
        assert_eq!(Object::from_map(&obj.clone().into_map()), obj);
    }

    #[test]
    fn every_schema_field_has_a_place() {
        for entity in [
            Entity::Organization,
            Entity::User,
            Entity::Permissions,
            Entity::Activity,
        ] {
            for (name, _) in entity.fields() {
                assert_eq!(Field::of(name).map(Field::name), Some(*name));
            }
        }
        assert_eq!(Field::of("no_such_field"), None);
    }
}
