//! The canonical entities and their fields. Mapping files may only name fields listed here;
//! the loader rejects anything else, so a typo in a mapping is a start-up error.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entity {
    Organization,
    User,
    Permissions,
    Activity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Int,
    Str,
    Bool,
    Object(Entity),
}

const ORGANIZATION: &[(&str, FieldType)] = &[
    ("id", FieldType::Int),
    ("login", FieldType::Str),
    ("display_name", FieldType::Str),
    ("description", FieldType::Str),
    ("email", FieldType::Str),
    ("website", FieldType::Str),
    ("location", FieldType::Str),
    ("company", FieldType::Str),
    ("twitter_username", FieldType::Str),
    ("billing_email", FieldType::Str),
    ("avatar_url", FieldType::Str),
    ("visibility", FieldType::Str),
    ("repo_admin_change_team_access", FieldType::Bool),
    ("public_repos", FieldType::Int),
    ("created_at", FieldType::Str),
    ("updated_at", FieldType::Str),
    ("archived_at", FieldType::Str),
    // An uploaded avatar image, as a data: URL (input only).
    ("avatar", FieldType::Str),
];

const USER: &[(&str, FieldType)] = &[
    ("id", FieldType::Int),
    ("login", FieldType::Str),
    ("display_name", FieldType::Str),
    ("email", FieldType::Str),
    ("avatar_url", FieldType::Str),
    ("site_admin", FieldType::Bool),
    ("created_at", FieldType::Str),
    // In member lists: the user's role in the organization (owner or member).
    ("org_role", FieldType::Str),
];

const PERMISSIONS: &[(&str, FieldType)] = &[
    ("is_owner", FieldType::Bool),
    ("is_admin", FieldType::Bool),
    ("can_write", FieldType::Bool),
    ("can_read", FieldType::Bool),
    ("can_create_repository", FieldType::Bool),
    ("organization", FieldType::Object(Entity::Organization)),
    ("user", FieldType::Object(Entity::User)),
];

const ACTIVITY: &[(&str, FieldType)] = &[
    ("id", FieldType::Int),
    ("kind", FieldType::Str),
    ("actor_id", FieldType::Int),
    ("actor_login", FieldType::Str),
    ("actor_avatar_url", FieldType::Str),
    ("org_id", FieldType::Int),
    ("org_login", FieldType::Str),
    ("content", FieldType::Str),
    ("created_at", FieldType::Str),
];

/// Values a canonical field takes when a client leaves it out; an upstream that cannot store a
/// field may drop it only while it holds this value.
const DEFAULTS: &[(&str, &str)] = &[("visibility", "public")];

impl Entity {
    pub fn parse(name: &str) -> Option<Entity> {
        match name {
            "organization" => Some(Entity::Organization),
            "user" => Some(Entity::User),
            "permissions" => Some(Entity::Permissions),
            "activity" => Some(Entity::Activity),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Entity::Organization => "organization",
            Entity::User => "user",
            Entity::Permissions => "permissions",
            Entity::Activity => "activity",
        }
    }

    pub fn fields(self) -> &'static [(&'static str, FieldType)] {
        match self {
            Entity::Organization => ORGANIZATION,
            Entity::User => USER,
            Entity::Permissions => PERMISSIONS,
            Entity::Activity => ACTIVITY,
        }
    }

    pub fn field_type(self, field: &str) -> Option<FieldType> {
        self.fields()
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, ty)| *ty)
    }
}

/// True when `value` is what the field holds by default (false, empty, or a listed default),
/// so that dropping it on an upstream without that field loses nothing.
pub fn is_default_value(field: &str, value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty() || DEFAULTS.iter().any(|(f, d)| *f == field && s == d),
        _ => false,
    }
}

/// Coerces a value read from a dialect into the canonical type of a field, in place: numbers
/// sent as strings, booleans sent as "true"/"false". False when the value cannot be that type.
pub fn coerce(ty: FieldType, value: &mut Value) -> bool {
    let coerced = match (ty, &*value) {
        (_, Value::Null)
        | (FieldType::Int, Value::Number(_))
        | (FieldType::Bool, Value::Bool(_))
        | (FieldType::Str, Value::String(_))
        | (FieldType::Object(_), Value::Object(_)) => return true,
        (FieldType::Int, Value::String(s)) => s.trim().parse::<i64>().ok().map(Value::from),
        (FieldType::Bool, Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        (FieldType::Str, Value::Number(n)) => Some(Value::String(n.to_string())),
        (FieldType::Str, Value::Bool(b)) => Some(Value::String(b.to_string())),
        _ => None,
    };
    match coerced {
        Some(v) => {
            *value = v;
            true
        }
        None => false,
    }
}
