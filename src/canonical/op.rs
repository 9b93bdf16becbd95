//! Canonical operations: what a client asked for, independent of the dialect it asked in,
//! and what came back. Dialect front-ends build a `CanonicalRequest`; backends answer with an
//! `Outcome`.

use std::fmt;

use serde_json::Value;

use super::object::{FieldSet, Object};
use super::schema::Entity;

macro_rules! operations {
    ($($variant:ident = $name:literal => $result:expr, [$($param:literal),*];)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum OpKind { $($variant,)* }

        impl OpKind {
            pub const ALL: &'static [OpKind] = &[$(OpKind::$variant,)*];

            pub fn name(self) -> &'static str {
                match self { $(OpKind::$variant => $name,)* }
            }

            pub fn parse(name: &str) -> Option<OpKind> {
                match name { $($name => Some(OpKind::$variant),)* _ => None }
            }

            /// What the operation returns.
            pub fn result(self) -> ResultKind {
                match self { $(OpKind::$variant => $result,)* }
            }

            /// Parameters the operation cannot be performed without.
            pub fn required_params(self) -> &'static [&'static str] {
                match self { $(OpKind::$variant => &[$($param),*],)* }
            }
        }
    };
}

operations! {
    OrgList = "org.list" => ResultKind::List(Entity::Organization), [];
    OrgListMine = "org.list_mine" => ResultKind::List(Entity::Organization), [];
    OrgListForUser = "org.list_for_user" => ResultKind::List(Entity::Organization), ["user"];
    OrgGet = "org.get" => ResultKind::Entity(Entity::Organization), ["org"];
    OrgCreate = "org.create" => ResultKind::Entity(Entity::Organization), [];
    OrgUpdate = "org.update" => ResultKind::Entity(Entity::Organization), ["org"];
    OrgRename = "org.rename" => ResultKind::Entity(Entity::Organization), ["org", "new_login"];
    OrgDelete = "org.delete" => ResultKind::Done, ["org"];
    OrgSetAvatar = "org.set_avatar" => ResultKind::Done, ["org"];
    MemberList = "member.list" => ResultKind::List(Entity::User), ["org"];
    MemberCheck = "member.check" => ResultKind::Flag, ["org", "user"];
    MemberRemove = "member.remove" => ResultKind::Done, ["org", "user"];
    MemberSetRole = "member.set_role" => ResultKind::Entity(Entity::Permissions), ["org", "user"];
    MemberPermissions = "member.permissions" => ResultKind::Entity(Entity::Permissions), ["org", "user"];
    PublicMemberList = "public_member.list" => ResultKind::List(Entity::User), ["org"];
    PublicMemberCheck = "public_member.check" => ResultKind::Flag, ["org", "user"];
    PublicMemberPublicize = "public_member.publicize" => ResultKind::Done, ["org", "user"];
    PublicMemberConceal = "public_member.conceal" => ResultKind::Done, ["org", "user"];
    ActivityList = "activity.list" => ResultKind::List(Entity::Activity), ["org"];
    UserCurrent = "user.current" => ResultKind::Entity(Entity::User), [];
    UserGet = "user.get" => ResultKind::Entity(Entity::User), ["user"];
    UserCreate = "user.create" => ResultKind::Entity(Entity::User), [];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultKind {
    Entity(Entity),
    List(Entity),
    Flag,
    Done,
}

impl ResultKind {
    pub fn entity(self) -> Option<Entity> {
        match self {
            ResultKind::Entity(e) | ResultKind::List(e) => Some(e),
            _ => None,
        }
    }
}

/// Request parameters that are not fields of an entity: path segments, the owner named in an
/// admin create, the new login of a rename, a date filter.
pub const PARAM_NAMES: &[&str] = &[
    "org",
    "org_id",
    "user",
    "user_id",
    "admin",
    "new_login",
    "password",
    "date",
    "search",
    // A member list filter, in GitHub's words: all, admin (owners) or member.
    "role",
];

/// A parameter that can stand in for another: a numeric id for a login and back. When a
/// dialect addresses by one and the upstream by the other, the missing one is looked up with
/// `op` and read from the result's `field`.
pub struct Derivation {
    pub wanted: &'static str,
    pub from: &'static str,
    pub op: OpKind,
    pub field: &'static str,
}

pub const DERIVATIONS: &[Derivation] = &[
    Derivation {
        wanted: "org",
        from: "org_id",
        op: OpKind::OrgGet,
        field: "login",
    },
    Derivation {
        wanted: "user",
        from: "user_id",
        op: OpKind::UserGet,
        field: "login",
    },
    Derivation {
        wanted: "user_id",
        from: "user",
        op: OpKind::UserGet,
        field: "id",
    },
    Derivation {
        wanted: "org_id",
        from: "org",
        op: OpKind::OrgGet,
        field: "id",
    },
];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    values: Vec<(&'static str, String)>,
}

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets a known parameter; names outside `PARAM_NAMES` are refused by the mapping loader
    /// long before they reach this point, and ignored here.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let Some(known) = PARAM_NAMES.iter().find(|n| **n == name) else {
            return;
        };
        let value = value.into();
        match self.values.iter_mut().find(|(n, _)| n == known) {
            Some(slot) => slot.1 = value,
            None => self.values.push((known, value)),
        }
    }

    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set(name, value);
        self
    }
}

/// The window of a list the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// 1-based page number and page size.
    Page { page: u64, per_page: u64 },
    /// Items whose id is greater than `since`.
    Since { since: u64, per_page: u64 },
}

impl Paging {
    pub fn per_page(self) -> u64 {
        match self {
            Paging::Page { per_page, .. } | Paging::Since { per_page, .. } => per_page,
        }
    }
}

/// The caller's token, whatever form it arrived in. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential(String);

impl Credential {
    pub fn new(token: impl Into<String>) -> Self {
        Credential(token.into())
    }
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

#[derive(Debug, Clone)]
pub struct CanonicalRequest {
    pub op: OpKind,
    pub params: Params,
    /// Entity fields the client supplied (create, update, set role).
    pub input: Object,
    pub paging: Option<Paging>,
    pub credential: Option<Credential>,
    /// The client dialect reports an exact total (e.g. X-Total-Count).
    pub want_total: bool,
    /// The client dialect shows the resulting entity (false for e.g. Gitea's 204 rename).
    pub want_result: bool,
    /// Whether a missing parameter may be looked up from another (off inside such lookups).
    pub derive: bool,
    /// For a list: the canonical fields the client's answer shows of each item. An upstream
    /// may leave the others out while decoding its pages. None: every field.
    pub fields_shown: Option<FieldSet>,
}

impl CanonicalRequest {
    pub fn new(op: OpKind) -> Self {
        CanonicalRequest {
            op,
            params: Params::default(),
            input: Object::new(),
            paging: None,
            credential: None,
            want_total: false,
            want_result: true,
            derive: true,
            fields_shown: None,
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, Default)]
pub struct PageOf {
    pub items: Vec<Object>,
    /// Total number of items across all pages, when known.
    pub total: Option<u64>,
    /// Whether items follow this page.
    pub more: bool,
}

impl PageOf {
    /// Cuts the window a client asked for out of a whole list ordered by id.
    pub fn window(items: Vec<Object>, paging: Option<Paging>) -> PageOf {
        let total = items.len() as u64;
        match paging {
            None => PageOf {
                items,
                total: Some(total),
                more: false,
            },
            Some(Paging::Page { page, per_page }) => {
                let start = (page.max(1) - 1).saturating_mul(per_page) as usize;
                let chunk: Vec<Object> = items
                    .into_iter()
                    .skip(start)
                    .take(per_page as usize)
                    .collect();
                let more = start.saturating_add(chunk.len()) < total as usize;
                PageOf {
                    items: chunk,
                    total: Some(total),
                    more,
                }
            }
            Some(Paging::Since { since, per_page }) => {
                let after: Vec<Object> = items
                    .into_iter()
                    .filter(|o| {
                        o.get("id")
                            .and_then(Value::as_u64)
                            .is_some_and(|id| id > since)
                    })
                    .collect();
                let more = after.len() > per_page as usize;
                PageOf {
                    items: after.into_iter().take(per_page as usize).collect(),
                    total: Some(total),
                    more,
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Entity(Object),
    List(PageOf),
    Flag(bool),
    Done,
}
