//! The mapping file format as written on disk (TOML), before validation. `compile` turns
//! these into the checked, ready-to-run forms; unknown keys are rejected here already.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDialect {
    pub dialect: String,
    pub base_paths: Vec<String>,
    /// Request bodies may also be form-encoded or multipart (GitLab); otherwise bodies are JSON
    /// whatever their Content-Type says, as GitHub and Gitea read them.
    #[serde(default)]
    pub forms: bool,
    /// Headers set on every answer to a client of this dialect.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub auth: RawAuth,
    pub pagination: RawPagination,
    pub errors: RawErrors,
    #[serde(default)]
    /// Value maps keep their file order: the first canonical value listed for a dialect value
    /// is the one it reads back as.
    pub values: BTreeMap<String, toml::Table>,
    pub operations: Vec<RawOperation>,
    #[serde(default)]
    pub shapes: BTreeMap<String, RawShape>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub accept: Vec<String>,
    pub emit: RawEmit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmit {
    pub header: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPagination {
    pub page_param: String,
    pub size_param: String,
    #[serde(default)]
    pub since_param: Option<String>,
    pub default_size: u64,
    pub max_size: u64,
    /// Headers set on every list answer: name → template over {total}, {total_pages},
    /// {per_page}, {page}, {next_page}, {prev_page}.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub link_order: Vec<String>,
    pub link_separator: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawErrors {
    pub content_type: String,
    pub body: toml::Value,
    #[serde(default)]
    pub validation_body: Option<toml::Value>,
    pub codes: RawCodes,
    /// The resource named in errors that name none ("Organization", "Group").
    #[serde(default = "default_resource")]
    pub default_resource: String,
    pub kinds: BTreeMap<String, RawErrorKind>,
    #[serde(default)]
    pub decode: Vec<RawDecode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCodes {
    pub missing: String,
    pub invalid: String,
    pub conflict: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawErrorKind {
    pub status: u16,
    pub message: String,
    /// A body template for this kind alone, in place of `errors.body`.
    #[serde(default)]
    pub body: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDecode {
    pub status: u16,
    pub kind: String,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message_contains: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOperation {
    pub op: String,
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub false_status: Option<u16>,
    #[serde(default)]
    pub request: Option<String>,
    #[serde(default)]
    pub response: Option<String>,
    #[serde(default)]
    pub body: Option<toml::Value>,
    #[serde(default)]
    pub paging: Option<String>,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub forbidden_as: Option<String>,
    #[serde(default)]
    pub resolve: BTreeMap<String, String>,
    #[serde(default)]
    pub complete_with: Vec<String>,
    #[serde(default)]
    pub enrich: BTreeMap<String, String>,
    #[serde(default)]
    pub inbound_only: bool,
    #[serde(default)]
    pub require: Option<String>,
    /// Path placeholders that may hold a numeric id instead: placeholder → id parameter.
    #[serde(default)]
    pub numeric: BTreeMap<String, String>,
    /// Parameters the route cannot be called upstream without, beyond its path placeholders.
    #[serde(default)]
    pub needs: Vec<String>,
    /// The entity travels as an array of zero or one (GitLab's `GET /users?username=`): an
    /// empty array means not found.
    #[serde(default)]
    pub list_of_one: bool,
    /// Used only to call an upstream of this dialect; never matched for clients.
    #[serde(default)]
    pub upstream_only: bool,
    /// After a create, make the user this parameter names an owner (member.set_role), undoing
    /// the create if that fails.
    #[serde(default)]
    pub grant_owner: Option<String>,
    /// Canonical error kinds on which the next route for the operation is tried instead
    /// (GitLab adds a member with POST, but answers 409 for an existing one, whose role PUT sets).
    #[serde(default)]
    pub next_route_on: Vec<String>,
    /// What a 404 from an upstream of this dialect means on this route (GitHub's site-admin
    /// routes answer 404 to callers who are not site administrators).
    #[serde(default)]
    pub upstream_not_found_as: Option<String>,
    /// A route an upstream uses only when configured with this variant (upstream.variant), and
    /// then in preference to the others (GitLab's Organizations API instead of groups).
    #[serde(default)]
    pub variant: Option<String>,
    /// Only site administrators may call this route (GitHub Enterprise's /admin routes): the
    /// caller is checked with user.current before anything is done, whatever the upstream.
    #[serde(default)]
    pub site_admin_only: bool,
    /// Query parameters that select this route for a client over the unconditional route with
    /// the same method and path (GitLab's `GET /groups?min_access_level=…` lists the caller's
    /// own groups).
    #[serde(default)]
    pub inbound_when: Vec<String>,
    /// Query parameters always sent to an upstream of this dialect on this route.
    #[serde(default)]
    pub fixed_query: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShape {
    pub entity: String,
    /// Canonical fields this request shape has no place for and may drop: a lossy direction
    /// declared on purpose (e.g. GitHub's admin user create takes no display name).
    #[serde(default)]
    pub ignores: Vec<String>,
    #[serde(default)]
    pub include: Option<String>,
    pub fields: Vec<RawField>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    pub key: String,
    #[serde(default)]
    pub canonical: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(rename = "const", default)]
    pub constant: Option<toml::Value>,
    #[serde(default)]
    pub compute: Option<String>,
    /// A JSONPath to read the field from, or `false` for a field that is only written.
    #[serde(default)]
    pub read: Option<toml::Value>,
    #[serde(default = "yes")]
    pub write: bool,
    #[serde(default)]
    pub default: Option<toml::Value>,
    #[serde(default)]
    pub values: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub max_len: Option<usize>,
    #[serde(default)]
    pub shape: Option<String>,
    #[serde(rename = "as", default)]
    pub as_type: Option<String>,
    /// Another canonical field written when this one is missing or empty (GitLab's `name`
    /// falls back to the path).
    #[serde(default)]
    pub or: Option<String>,
    /// The nested shape's fields sit in this object itself, not under `key` (GitLab members).
    #[serde(default)]
    pub merge: bool,
    /// Only the values of the value map exist in this dialect: a list item with another value
    /// cannot be shown to its clients and is left out (Gitea's activity op_type).
    #[serde(default)]
    pub strict: bool,
}

fn default_resource() -> String {
    "Organization".to_string()
}

fn yes() -> bool {
    true
}
