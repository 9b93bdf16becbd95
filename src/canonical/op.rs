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
        PageOf::window_of(
            items,
            paging,
            |o| o.get("id").and_then(Value::as_u64).unwrap_or(0),
            |o| o,
        )
    }

    /// Cuts the window out of a whole list of items ordered by id (`id` gives an item's), and
    /// builds objects (`build`) only for the items inside it: a page of 50 out of 1,000 builds
    /// 50 objects, not 1,000.
    pub fn window_of<T>(
        items: Vec<T>,
        paging: Option<Paging>,
        id: impl Fn(&T) -> u64,
        build: impl FnMut(T) -> Object,
    ) -> PageOf {
        let total = items.len() as u64;
        let whole = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let (start, per_page, since) = match paging {
            None => (0, usize::MAX, None),
            Some(Paging::Page { page, per_page }) => (
                whole((page.max(1) - 1).saturating_mul(per_page)),
                whole(per_page),
                None,
            ),
            Some(Paging::Since { since, per_page }) => (0, whole(per_page), Some(since)),
        };
        let after = |item: &T| since.is_none_or(|since| id(item) > since);
        let left = match since {
            None => items.len().saturating_sub(start),
            Some(_) => items.iter().filter(|item| after(item)).count(),
        };
        let more = left > per_page;
        let items = items
            .into_iter()
            .skip(start)
            .filter(after)
            .take(per_page)
            .map(build)
            .collect();
        PageOf {
            items,
            total: Some(total),
            more,
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// The ids on the page, whether more follow, and how many objects were built.
    fn cut(ids: &[u64], paging: Option<Paging>) -> (Vec<u64>, bool, usize) {
        let built = Cell::new(0);
        let page = PageOf::window_of(
            ids.to_vec(),
            paging,
            |id| *id,
            |id| {
                built.set(built.get() + 1);
                let mut o = Object::new();
                o.insert("id", Value::from(id));
                o
            },
        );
        assert_eq!(page.total, Some(ids.len() as u64));
        let on_page = page.items.iter().filter_map(|o| o.get("id")?.as_u64());
        (on_page.collect(), page.more, built.get())
    }

    #[test]
    fn windows_build_only_the_objects_on_the_page() {
        let up: Vec<u64> = (1..=10).collect();
        let page = |page, per_page| Some(Paging::Page { page, per_page });
        let since = |since, per_page| Some(Paging::Since { since, per_page });
        assert_eq!(cut(&up, None), (up.clone(), false, 10));
        assert_eq!(cut(&up, page(2, 3)), (vec![4, 5, 6], true, 3));
        assert_eq!(cut(&up, page(4, 3)), (vec![10], false, 1));
        assert_eq!(cut(&up, page(5, 3)), (vec![], false, 0));
        assert_eq!(cut(&up, page(0, 4)), (vec![1, 2, 3, 4], true, 4));
        assert_eq!(cut(&up, since(7, 2)), (vec![8, 9], true, 2));
        assert_eq!(cut(&up, since(8, 2)), (vec![9, 10], false, 2));
        assert_eq!(cut(&up, since(10, 2)), (vec![], false, 0));
        // Newest first (activity): `since` keeps the items after it wherever they stand.
        let down: Vec<u64> = (1..=10).rev().collect();
        assert_eq!(cut(&down, since(7, 2)), (vec![10, 9], true, 2));
        assert_eq!(cut(&down, since(7, 3)), (vec![10, 9, 8], false, 3));
    }
}
