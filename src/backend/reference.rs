//! The embedded reference forge: an in-memory organizations service holding canonical state.
//! Served through the dialect front-ends it is a working GitHub, Gitea (and later GitLab)
//! organizations API at once: the default upstream for a new user and the upstream in tests.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Mutex;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::{Avatar, Backend, BoxFuture};
use crate::canonical::{
    CanonicalError, CanonicalRequest, Credential, ErrorKind, Object, OpKind, Outcome, PageOf,
    Paging, Params, ValidationCode,
};

#[derive(Debug, Clone)]
struct Org {
    id: u64,
    login: String,
    profile: Object,
    visibility: String,
    created_at: String,
    updated_at: String,
}

impl Org {
    /// Whether a lower-case search term occurs in the login or display name.
    fn matches(&self, needle: &str) -> bool {
        self.login.to_ascii_lowercase().contains(needle)
            || self
                .profile
                .get("display_name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.to_ascii_lowercase().contains(needle))
    }
}

#[derive(Debug, Clone)]
struct User {
    id: u64,
    login: String,
    display_name: String,
    email: String,
    site_admin: bool,
    created_at: String,
}

#[derive(Debug, Clone, Copy)]
struct Membership {
    owner: bool,
    public: bool,
}

/// Memberships by organization and by user, as a forge indexes them: a user's organizations
/// are found without looking at every membership of every organization.
#[derive(Debug, Default)]
struct Memberships {
    by_org: BTreeMap<(u64, u64), Membership>,
    by_user: BTreeSet<(u64, u64)>,
}

impl Memberships {
    fn get(&self, org: u64, user: u64) -> Option<&Membership> {
        self.by_org.get(&(org, user))
    }

    fn get_mut(&mut self, org: u64, user: u64) -> Option<&mut Membership> {
        self.by_org.get_mut(&(org, user))
    }

    fn insert(&mut self, org: u64, user: u64, membership: Membership) {
        self.by_user.insert((user, org));
        self.by_org.insert((org, user), membership);
    }

    fn remove(&mut self, org: u64, user: u64) {
        self.by_user.remove(&(user, org));
        self.by_org.remove(&(org, user));
    }

    fn remove_org(&mut self, org: u64) {
        let users: Vec<u64> = self.of_org(org).map(|(user, _)| user).collect();
        for user in users {
            self.remove(org, user);
        }
    }

    /// An organization's members, by user id.
    fn of_org(&self, org: u64) -> impl Iterator<Item = (u64, &Membership)> {
        (self.by_org.range((org, 0)..=(org, u64::MAX))).map(|((_, user), m)| (*user, m))
    }

    /// A user's organizations, by organization id.
    fn of_user(&self, user: u64) -> impl Iterator<Item = (u64, &Membership)> {
        (self.by_user.range((user, 0)..=(user, u64::MAX)))
            .filter_map(move |&(_, org)| self.get(org, user).map(|m| (org, m)))
    }

    fn owners(&self, org: u64) -> usize {
        self.of_org(org).filter(|(_, m)| m.owner).count()
    }
}

#[derive(Debug, Clone)]
struct Event {
    id: u64,
    kind: &'static str,
    actor: u64,
    org: u64,
    content: String,
    created_at: String,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    orgs: BTreeMap<u64, Org>,
    users: BTreeMap<u64, User>,
    members: Memberships,
    events: Vec<Event>,
    tokens: HashMap<String, u64>,
    /// Uploaded images by org id: media type and bytes.
    avatars: HashMap<u64, (String, Bytes)>,
}

/// Organization profile fields a client may set, with their canonical types.
const PROFILE_FIELDS: &[&str] = &[
    "display_name",
    "description",
    "email",
    "website",
    "location",
    "company",
    "twitter_username",
    "billing_email",
    "repo_admin_change_team_access",
];

const VISIBILITIES: &[&str] = &["public", "internal", "private"];

/// A seed file: users (with tokens) and organizations with their members.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub users: Vec<SeedUser>,
    #[serde(default)]
    pub orgs: Vec<SeedOrg>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    pub login: String,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub site_admin: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedOrg {
    pub login: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default)]
    pub owners: Vec<String>,
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default)]
    pub public_members: Vec<String>,
}

pub struct ReferenceForge {
    public_url: String,
    state: Mutex<State>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Gitea's rule, which also admits every valid GitHub login: ASCII letters and digits, single
/// `-`, `_` or `.` between them.
fn valid_login(login: &str) -> bool {
    let bytes = login.as_bytes();
    let special = |b: u8| matches!(b, b'-' | b'_' | b'.');
    !bytes.is_empty()
        && bytes.len() <= 255
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || special(*b))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !bytes.windows(2).any(|w| special(w[0]) && special(w[1]))
}

enum Caller {
    Anonymous,
    User(u64, bool),
}

impl Caller {
    fn id(&self) -> Option<u64> {
        match self {
            Caller::User(id, _) => Some(*id),
            Caller::Anonymous => None,
        }
    }
    fn is_admin(&self) -> bool {
        matches!(self, Caller::User(_, true))
    }
}

fn unauthenticated() -> CanonicalError {
    CanonicalError::new(ErrorKind::Unauthenticated, "authentication is required")
}

impl State {
    fn caller(&self, credential: Option<&Credential>) -> Result<Caller, CanonicalError> {
        match credential {
            None => Ok(Caller::Anonymous),
            Some(c) => match self
                .tokens
                .get(c.secret())
                .and_then(|id| self.users.get(id))
            {
                Some(u) => Ok(Caller::User(u.id, u.site_admin)),
                None => Err(CanonicalError::new(
                    ErrorKind::BadCredentials,
                    "bad credentials",
                )),
            },
        }
    }

    fn login_taken(&self, login: &str, except: Option<u64>) -> bool {
        let lower = login.to_ascii_lowercase();
        self.orgs
            .values()
            .filter(|o| Some(o.id) != except)
            .any(|o| o.login.to_ascii_lowercase() == lower)
            || self
                .users
                .values()
                .any(|u| u.login.to_ascii_lowercase() == lower)
    }

    fn org_id(&self, login: &str) -> Option<u64> {
        self.orgs
            .values()
            .find(|o| o.login.eq_ignore_ascii_case(login))
            .map(|o| o.id)
    }

    fn user_id(&self, login: &str) -> Option<u64> {
        self.users
            .values()
            .find(|u| u.login.eq_ignore_ascii_case(login))
            .map(|u| u.id)
    }

    fn member(&self, org: u64, user: Option<u64>) -> Option<Membership> {
        user.and_then(|u| self.members.get(org, u).copied())
    }

    fn can_see(&self, org: &Org, caller: &Caller) -> bool {
        match org.visibility.as_str() {
            "public" => true,
            "internal" => caller.id().is_some(),
            _ => caller.is_admin() || self.member(org.id, caller.id()).is_some(),
        }
    }
    /// The org a request names, by login or by id.
    fn org_ref(&self, p: &Params) -> Option<u64> {
        match (p.get("org"), p.get("org_id")) {
            (Some(login), _) => self.org_id(login),
            (None, Some(id)) => id.parse().ok().filter(|id| self.orgs.contains_key(id)),
            (None, None) => None,
        }
    }

    /// The user a request names, by login or by id.
    fn user_ref(&self, p: &Params) -> Option<u64> {
        match (p.get("user"), p.get("user_id")) {
            (Some(login), _) => self.user_id(login),
            (None, Some(id)) => id.parse().ok().filter(|id| self.users.contains_key(id)),
            (None, None) => None,
        }
    }

    fn login_of(&self, user: u64) -> String {
        self.users
            .get(&user)
            .map(|u| u.login.clone())
            .unwrap_or_default()
    }

    /// The org a request names, if the caller may see it.
    fn visible_org(&self, p: &Params, caller: &Caller) -> Result<u64, CanonicalError> {
        self.org_ref(p)
            .filter(|id| self.orgs.get(id).is_some_and(|o| self.can_see(o, caller)))
            .ok_or_else(|| {
                CanonicalError::not_found("organization not found").with_resource("Group")
            })
    }

    /// The org a request names, if the caller may manage it.
    fn managed_org(&self, p: &Params, caller: &Caller) -> Result<u64, CanonicalError> {
        let id = self.visible_org(p, caller)?;
        if caller.id().is_none() {
            return Err(unauthenticated());
        }
        let owner = self.member(id, caller.id()).is_some_and(|m| m.owner);
        if owner || caller.is_admin() {
            Ok(id)
        } else {
            Err(CanonicalError::new(
                ErrorKind::Forbidden,
                "must be an owner of the organization",
            ))
        }
    }

    fn named_user(&self, p: &Params) -> Result<u64, CanonicalError> {
        self.user_ref(p)
            .ok_or_else(|| CanonicalError::not_found("user not found").with_resource("User"))
    }

    fn org_object(&self, id: u64, public_url: &str) -> Object {
        let Some(org) = self.orgs.get(&id) else {
            return Object::new();
        };
        let mut obj = org.profile.clone();
        obj.insert("id", Value::from(org.id));
        obj.insert("login", Value::from(org.login.clone()));
        obj.insert("visibility", Value::from(org.visibility.clone()));
        obj.insert(
            "avatar_url",
            Value::from(format!("{public_url}/avatars/{}", org.id)),
        );
        obj.insert("created_at", Value::from(org.created_at.clone()));
        obj.insert("updated_at", Value::from(org.updated_at.clone()));
        obj.insert("public_repos", Value::from(0));
        obj.insert_if_absent("repo_admin_change_team_access", || Value::Bool(false));
        obj
    }

    /// The page of organizations a client asked for, out of all the list's ids (in id order):
    /// objects are built only for the orgs on the page.
    fn org_window(&self, ids: Vec<u64>, paging: Option<Paging>, public_url: &str) -> PageOf {
        PageOf::window_of(ids, paging, |id| *id, |id| self.org_object(id, public_url))
    }

    fn user_object(&self, id: u64, public_url: &str) -> Object {
        let Some(u) = self.users.get(&id) else {
            return Object::new();
        };
        let mut obj = Object::new();
        obj.insert("id", Value::from(u.id));
        obj.insert("login", Value::from(u.login.clone()));
        if !u.display_name.is_empty() {
            obj.insert("display_name", Value::from(u.display_name.clone()));
        }
        obj.insert("email", Value::from(u.email.clone()));
        obj.insert(
            "avatar_url",
            Value::from(format!("{public_url}/avatars/{}", u.id)),
        );
        obj.insert("site_admin", Value::Bool(u.site_admin));
        obj.insert("created_at", Value::from(u.created_at.clone()));
        obj
    }

    fn permissions_object(&self, org: u64, user: u64, public_url: &str) -> Object {
        let m = self.members.get(org, user);
        let owner = m.is_some_and(|m| m.owner);
        let member = m.is_some();
        let mut obj = Object::new();
        obj.insert("is_owner", Value::Bool(owner));
        obj.insert("is_admin", Value::Bool(owner));
        obj.insert("can_write", Value::Bool(owner));
        obj.insert("can_read", Value::Bool(member));
        obj.insert("can_create_repository", Value::Bool(member));
        obj.insert(
            "organization",
            Value::Object(self.org_object(org, public_url).into_map()),
        );
        obj.insert(
            "user",
            Value::Object(self.user_object(user, public_url).into_map()),
        );
        obj
    }

    fn record(&mut self, kind: &'static str, actor: Option<u64>, org: u64, content: String) {
        self.next_id += 1;
        self.events.push(Event {
            id: self.next_id,
            kind,
            actor: actor.unwrap_or(0),
            org,
            content,
            created_at: now(),
        });
    }

    /// Stores an uploaded avatar, checked beforehand by `avatar_of`.
    fn set_avatar(&mut self, org: u64, avatar: Option<(String, Bytes)>) {
        if let Some(image) = avatar {
            self.avatars.insert(org, image);
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn add_user(
        &mut self,
        login: &str,
        email: Option<&str>,
        display_name: Option<&str>,
        site_admin: bool,
    ) -> Result<u64, CanonicalError> {
        if !valid_login(login) {
            return Err(CanonicalError::validation(
                "login",
                ValidationCode::Invalid,
                format!("{login:?} is not a valid login"),
            )
            .with_resource("User"));
        }
        if self.login_taken(login, None) {
            return Err(CanonicalError::conflict("login", login).with_resource("User"));
        }
        let id = self.next_id();
        let email = email.map(str::to_string).unwrap_or_else(|| {
            format!("{}@noreply.forgebridge.invalid", login.to_ascii_lowercase())
        });
        self.users.insert(
            id,
            User {
                id,
                login: login.to_string(),
                display_name: display_name.unwrap_or_default().to_string(),
                email,
                site_admin,
                created_at: now(),
            },
        );
        Ok(id)
    }

    fn apply_profile(
        profile: &mut Object,
        visibility: &mut String,
        input: &Object,
    ) -> Result<(), CanonicalError> {
        if let Some(v) = input.get("visibility") {
            match v.as_str() {
                Some(s) if VISIBILITIES.contains(&s) => *visibility = s.to_string(),
                _ => {
                    return Err(CanonicalError::validation(
                        "visibility",
                        ValidationCode::Invalid,
                        "visibility must be public, internal or private",
                    ))
                }
            }
        }
        for field in PROFILE_FIELDS {
            if let Some(v) = input.get(field) {
                profile.insert(field, v.clone());
            }
        }
        Ok(())
    }
}

/// The avatar a request uploads (a data: URL), checked before anything is written.
fn avatar_of(input: &Object) -> Result<Option<(String, Bytes)>, CanonicalError> {
    let Some(value) = input.get("avatar") else {
        return Ok(None);
    };
    value
        .as_str()
        .and_then(crate::canonical::avatar::decode)
        .map(|(mime, bytes)| Some((mime, Bytes::from(bytes))))
        .ok_or_else(|| {
            CanonicalError::validation(
                "avatar",
                ValidationCode::Invalid,
                "the avatar is not a base64 image",
            )
        })
}

impl ReferenceForge {
    /// A forge with one site administrator, `admin`, whose token is `admin_token`.
    pub fn new(public_url: &str, admin_token: &str) -> Self {
        let mut state = State::default();
        if let Ok(id) = state.add_user(
            "admin",
            Some("admin@forgebridge.invalid"),
            Some("Site Administrator"),
            true,
        ) {
            state.tokens.insert(admin_token.to_string(), id);
        }
        ReferenceForge {
            public_url: public_url.trim_end_matches('/').to_string(),
            state: Mutex::new(state),
        }
    }

    /// Loads users, tokens, organizations and memberships from a JSON seed file.
    pub fn seed_file(&self, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read seed file {}: {e}", path.display()))?;
        let seed: Seed = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("seed file {}: {e}", path.display()))?;
        self.seed(seed)
    }

    pub fn seed(&self, seed: Seed) -> anyhow::Result<()> {
        let mut st = self.lock();
        for u in &seed.users {
            let id = st
                .add_user(
                    &u.login,
                    u.email.as_deref(),
                    u.display_name.as_deref(),
                    u.site_admin,
                )
                .map_err(|e| anyhow::anyhow!("seed user {}: {}", u.login, e.detail))?;
            if let Some(t) = &u.token {
                st.tokens.insert(t.clone(), id);
            }
        }
        for o in &seed.orgs {
            if !valid_login(&o.login) || st.login_taken(&o.login, None) {
                anyhow::bail!("seed org {}: invalid or taken login", o.login);
            }
            let id = st.next_id();
            let mut profile = Object::new();
            if let Some(n) = &o.display_name {
                profile.insert("display_name", Value::from(n.clone()));
            }
            if let Some(d) = &o.description {
                profile.insert("description", Value::from(d.clone()));
            }
            let visibility = o.visibility.clone().unwrap_or_else(|| "public".into());
            if !VISIBILITIES.contains(&visibility.as_str()) {
                anyhow::bail!(
                    "seed org {}: visibility must be public, internal or private",
                    o.login
                );
            }
            let t = now();
            st.orgs.insert(
                id,
                Org {
                    id,
                    login: o.login.clone(),
                    profile,
                    visibility,
                    created_at: t.clone(),
                    updated_at: t,
                },
            );
            for (list, owner) in [(&o.owners, true), (&o.members, false)] {
                for login in list {
                    let uid = st.user_id(login).ok_or_else(|| {
                        anyhow::anyhow!("seed org {}: unknown user {login}", o.login)
                    })?;
                    let public = o.public_members.contains(login);
                    st.members.insert(id, uid, Membership { owner, public });
                }
            }
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent state (every change is a single
        // insert or remove), so a poisoned lock is still safe to use.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn perform(&self, req: CanonicalRequest) -> Result<Outcome, CanonicalError> {
        let url = self.public_url.as_str();
        let mut st = self.lock();
        let caller = st.caller(req.credential.as_ref())?;
        let p = &req.params;
        match req.op {
            OpKind::OrgList => {
                let needle = p.get("search").map(str::to_ascii_lowercase);
                let ids: Vec<u64> = st
                    .orgs
                    .values()
                    .filter(|o| st.can_see(o, &caller))
                    .filter(|o| needle.as_deref().is_none_or(|n| o.matches(n)))
                    .map(|o| o.id)
                    .collect();
                Ok(Outcome::List(st.org_window(ids, req.paging, url)))
            }
            OpKind::OrgListMine => {
                let me = caller.id().ok_or_else(unauthenticated)?;
                let ids: Vec<u64> = st.members.of_user(me).map(|(org, _)| org).collect();
                Ok(Outcome::List(st.org_window(ids, req.paging, url)))
            }
            OpKind::OrgListForUser => {
                let uid = st.named_user(p)?;
                let everything = caller.id() == Some(uid) || caller.is_admin();
                let ids: Vec<u64> = (st.members.of_user(uid))
                    .filter(|(_, m)| everything || m.public)
                    .filter(|(org, _)| {
                        everything || st.orgs.get(org).is_some_and(|o| st.can_see(o, &caller))
                    })
                    .map(|(org, _)| org)
                    .collect();
                Ok(Outcome::List(st.org_window(ids, req.paging, url)))
            }
            OpKind::OrgGet => {
                let id = st.visible_org(p, &caller)?;
                Ok(Outcome::Entity(st.org_object(id, url)))
            }
            OpKind::OrgCreate => {
                let me = caller.id().ok_or_else(unauthenticated)?;
                let avatar = avatar_of(&req.input)?;
                let owner = match p.get("admin") {
                    Some(admin) => {
                        if !caller.is_admin() {
                            return Err(CanonicalError::new(ErrorKind::Forbidden, "only site administrators may create organizations for another user"));
                        }
                        st.user_id(admin).ok_or_else(|| {
                            CanonicalError::validation(
                                "admin",
                                ValidationCode::Invalid,
                                format!("user {admin} does not exist"),
                            )
                        })?
                    }
                    None => me,
                };
                let login = req
                    .input
                    .get("login")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if login.is_empty() {
                    return Err(CanonicalError::validation(
                        "login",
                        ValidationCode::Missing,
                        "login is missing",
                    )
                    .with_resource("Organization"));
                }
                if !valid_login(&login) {
                    return Err(CanonicalError::validation(
                        "login",
                        ValidationCode::Invalid,
                        format!("{login:?} is not a valid name"),
                    )
                    .with_resource("Organization"));
                }
                if st.login_taken(&login, None) {
                    return Err(
                        CanonicalError::conflict("login", &login).with_resource("Organization")
                    );
                }
                let mut profile = Object::new();
                let mut visibility = "public".to_string();
                State::apply_profile(&mut profile, &mut visibility, &req.input)?;
                let id = st.next_id();
                let t = now();
                st.orgs.insert(
                    id,
                    Org {
                        id,
                        login: login.clone(),
                        profile,
                        visibility,
                        created_at: t.clone(),
                        updated_at: t,
                    },
                );
                st.members.insert(
                    id,
                    owner,
                    Membership {
                        owner: true,
                        public: false,
                    },
                );
                st.set_avatar(id, avatar);
                st.record(
                    "org_created",
                    Some(me),
                    id,
                    format!("created organization {login}"),
                );
                Ok(Outcome::Entity(st.org_object(id, url)))
            }
            OpKind::OrgUpdate => {
                let id = st.managed_org(p, &caller)?;
                let org = st
                    .orgs
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| CanonicalError::not_found("organization vanished"))?;
                let (mut profile, mut visibility) = (org.profile.clone(), org.visibility.clone());
                State::apply_profile(&mut profile, &mut visibility, &req.input)?;
                let avatar = avatar_of(&req.input)?;
                if let Some(o) = st.orgs.get_mut(&id) {
                    o.profile = profile;
                    o.visibility = visibility;
                    o.updated_at = now();
                }
                st.set_avatar(id, avatar);
                st.record(
                    "org_updated",
                    caller.id(),
                    id,
                    format!("updated organization {}", org.login),
                );
                Ok(Outcome::Entity(st.org_object(id, url)))
            }
            OpKind::OrgRename => {
                let id = st.managed_org(p, &caller)?;
                let new_login = p.get("new_login").unwrap_or_default().to_string();
                if !valid_login(&new_login) {
                    return Err(CanonicalError::validation(
                        "new_login",
                        ValidationCode::Invalid,
                        format!("{new_login:?} is not a valid name"),
                    )
                    .with_resource("Organization"));
                }
                if st.login_taken(&new_login, Some(id)) {
                    return Err(CanonicalError::conflict("new_login", &new_login)
                        .with_resource("Organization"));
                }
                let old = st
                    .orgs
                    .get(&id)
                    .map(|o| o.login.clone())
                    .unwrap_or_default();
                if let Some(o) = st.orgs.get_mut(&id) {
                    o.login = new_login.clone();
                    o.updated_at = now();
                }
                st.record(
                    "org_renamed",
                    caller.id(),
                    id,
                    format!("renamed organization {old} to {new_login}"),
                );
                Ok(Outcome::Entity(st.org_object(id, url)))
            }
            OpKind::OrgSetAvatar => {
                let id = st.managed_org(p, &caller)?;
                let Some(avatar) = avatar_of(&req.input)? else {
                    return Err(CanonicalError::validation(
                        "avatar",
                        ValidationCode::Missing,
                        "the image is missing",
                    ));
                };
                st.set_avatar(id, Some(avatar));
                Ok(Outcome::Done)
            }
            OpKind::OrgDelete => {
                let id = st.managed_org(p, &caller)?;
                st.orgs.remove(&id);
                st.avatars.remove(&id);
                st.members.remove_org(id);
                st.events.retain(|e| e.org != id);
                Ok(Outcome::Done)
            }
            OpKind::MemberList | OpKind::PublicMemberList => {
                if req.op == OpKind::MemberList && caller.id().is_none() {
                    return Err(unauthenticated());
                }
                let id = st.visible_org(p, &caller)?;
                let all = req.op == OpKind::MemberList
                    && (caller.is_admin() || st.member(id, caller.id()).is_some());
                let role = p.get("role").filter(|r| *r != "all");
                let members: Vec<(u64, &Membership)> = (st.members.of_org(id))
                    .filter(|(_, m)| all || m.public)
                    .filter(|(_, m)| role.is_none_or(|r| (r == "admin") == m.owner))
                    .collect();
                let page = PageOf::window_of(
                    members,
                    req.paging,
                    |(u, _)| *u,
                    |(u, m)| {
                        let mut user = st.user_object(u, url);
                        let role = if m.owner { "owner" } else { "member" };
                        user.insert("org_role", Value::from(role));
                        user
                    },
                );
                Ok(Outcome::List(page))
            }
            OpKind::MemberCheck | OpKind::PublicMemberCheck => {
                if req.op == OpKind::MemberCheck && caller.id().is_none() {
                    return Err(unauthenticated());
                }
                let id = st.visible_org(p, &caller)?;
                let m = st.user_ref(p).and_then(|u| st.member(id, Some(u)));
                let yes = match req.op {
                    OpKind::MemberCheck => m.is_some(),
                    _ => m.is_some_and(|m| m.public),
                };
                Ok(Outcome::Flag(yes))
            }
            OpKind::MemberRemove => {
                let id = st.managed_org(p, &caller)?;
                let uid = st.named_user(p)?;
                if let Some(m) = st.members.get(id, uid) {
                    let owners = st.members.owners(id);
                    if m.owner && owners == 1 {
                        return Err(CanonicalError::validation(
                            "user",
                            ValidationCode::Invalid,
                            "cannot remove the last owner of the organization",
                        ));
                    }
                    st.members.remove(id, uid);
                    let login = st.login_of(uid);
                    st.record(
                        "member_removed",
                        caller.id(),
                        id,
                        format!("removed {login}"),
                    );
                }
                Ok(Outcome::Done)
            }
            OpKind::MemberSetRole => {
                let id = st.managed_org(p, &caller)?;
                let uid = st.named_user(p)?;
                let owner = req
                    .input
                    .get("is_owner")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let existing = st.members.get(id, uid).copied();
                if existing.is_some_and(|m| m.owner) && !owner {
                    let owners = st.members.owners(id);
                    if owners == 1 {
                        return Err(CanonicalError::validation(
                            "role",
                            ValidationCode::Invalid,
                            "cannot demote the last owner of the organization",
                        ));
                    }
                }
                let public = existing.is_some_and(|m| m.public);
                st.members.insert(id, uid, Membership { owner, public });
                if existing.is_none() {
                    let login = st.login_of(uid);
                    st.record("member_added", caller.id(), id, format!("added {login}"));
                }
                Ok(Outcome::Entity(st.permissions_object(id, uid, url)))
            }
            OpKind::MemberPermissions => {
                caller.id().ok_or_else(unauthenticated)?;
                let id = st.visible_org(p, &caller)?;
                let uid = st.named_user(p)?;
                Ok(Outcome::Entity(st.permissions_object(id, uid, url)))
            }
            OpKind::PublicMemberPublicize | OpKind::PublicMemberConceal => {
                let me = caller.id().ok_or_else(unauthenticated)?;
                let id = st.visible_org(p, &caller)?;
                let uid = st.named_user(p)?;
                let manager = caller.is_admin() || st.member(id, Some(me)).is_some_and(|m| m.owner);
                if uid != me && !manager {
                    return Err(CanonicalError::new(
                        ErrorKind::Forbidden,
                        "cannot change another user's membership visibility",
                    ));
                }
                let public = req.op == OpKind::PublicMemberPublicize;
                let changed = match st.members.get_mut(id, uid) {
                    Some(m) if m.public != public => {
                        m.public = public;
                        true
                    }
                    Some(_) => false,
                    None if uid == me => {
                        return Err(CanonicalError::new(
                            ErrorKind::Forbidden,
                            "must be a member of the organization",
                        ))
                    }
                    None => false,
                };
                if changed {
                    let kind = if public {
                        "member_publicized"
                    } else {
                        "member_concealed"
                    };
                    let login = st.login_of(uid);
                    st.record(kind, Some(me), id, login);
                }
                Ok(Outcome::Done)
            }
            OpKind::ActivityList => {
                let id = st.visible_org(p, &caller)?;
                let org_login = st
                    .orgs
                    .get(&id)
                    .map(|o| o.login.clone())
                    .unwrap_or_default();
                let date = p
                    .get("date")
                    .filter(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok());
                let events: Vec<_> = st
                    .events
                    .iter()
                    .rev()
                    .filter(|e| e.org == id && date.is_none_or(|d| e.created_at.starts_with(d)))
                    .collect();
                let page = PageOf::window_of(
                    events,
                    req.paging,
                    |e| e.id,
                    |e| {
                        let mut obj = Object::new();
                        obj.insert("id", Value::from(e.id));
                        obj.insert("kind", Value::from(e.kind));
                        obj.insert("actor_id", Value::from(e.actor));
                        let actor = st.users.get(&e.actor);
                        obj.insert(
                            "actor_login",
                            Value::from(actor.map(|a| a.login.clone()).unwrap_or_default()),
                        );
                        obj.insert(
                            "actor_avatar_url",
                            Value::from(format!("{url}/avatars/{}", e.actor)),
                        );
                        obj.insert("org_id", Value::from(id));
                        obj.insert("org_login", Value::from(org_login.clone()));
                        obj.insert("content", Value::from(e.content.clone()));
                        obj.insert("created_at", Value::from(e.created_at.clone()));
                        obj
                    },
                );
                Ok(Outcome::List(page))
            }
            OpKind::UserCurrent => {
                let me = caller.id().ok_or_else(unauthenticated)?;
                Ok(Outcome::Entity(st.user_object(me, url)))
            }
            OpKind::UserGet => {
                let uid = st.named_user(p)?;
                Ok(Outcome::Entity(st.user_object(uid, url)))
            }
            OpKind::UserCreate => {
                caller.id().ok_or_else(unauthenticated)?;
                if !caller.is_admin() {
                    return Err(CanonicalError::new(
                        ErrorKind::Forbidden,
                        "only site administrators may create users",
                    ));
                }
                let login = req
                    .input
                    .get("login")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let email = req.input.get("email").and_then(Value::as_str);
                let name = req.input.get("display_name").and_then(Value::as_str);
                let id = st.add_user(&login, email, name, false)?;
                Ok(Outcome::Entity(st.user_object(id, url)))
            }
        }
    }
}

impl Backend for ReferenceForge {
    fn describe(&self) -> String {
        "the embedded reference forge".to_string()
    }

    fn execute(&self, req: CanonicalRequest) -> BoxFuture<'_, Result<Outcome, CanonicalError>> {
        let result = self.perform(req);
        Box::pin(async move { result })
    }

    fn avatar<'a>(&'a self, rest: &'a str) -> BoxFuture<'a, Option<Avatar>> {
        let found = rest.parse::<u64>().ok().and_then(|id| {
            let st = self.lock();
            if let Some((mime, bytes)) = st.avatars.get(&id) {
                return Some(Avatar {
                    content_type: mime.clone(),
                    bytes: bytes.clone(),
                });
            }
            st.orgs
                .get(&id)
                .map(|o| o.login.clone())
                .or_else(|| st.users.get(&id).map(|u| u.login.clone()))
                .map(|login| Avatar {
                    content_type: "image/svg+xml".into(),
                    bytes: Bytes::from(identicon(&login)),
                })
        });
        Box::pin(async move { found })
    }
}

/// A small generated avatar: the first letter of the login on a colour derived from it.
fn identicon(login: &str) -> String {
    let hash = login
        .bytes()
        .fold(5381u32, |h, b| h.wrapping_mul(33) ^ u32::from(b));
    let letter = login.chars().next().unwrap_or('?').to_ascii_uppercase();
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"120\" height=\"120\"><rect width=\"120\" height=\"120\" fill=\"hsl({},55%,45%)\"/><text x=\"60\" y=\"78\" font-size=\"56\" text-anchor=\"middle\" fill=\"#fff\" font-family=\"sans-serif\">{letter}</text></svg>",
        hash % 360
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memberships_by_user_follow_every_change() {
        let member = Membership {
            owner: false,
            public: false,
        };
        let owner = Membership {
            owner: true,
            public: true,
        };
        let mut m = Memberships::default();
        for (org, user) in [(3, 7), (1, 7), (2, 7), (1, 8), (2, 9)] {
            m.insert(org, user, member);
        }
        m.insert(2, 8, owner);
        m.insert(2, 8, owner); // again: still one membership
        let orgs_of = |m: &Memberships, user| m.of_user(user).map(|(o, _)| o).collect::<Vec<_>>();
        assert_eq!(orgs_of(&m, 7), [1, 2, 3]);
        assert_eq!(orgs_of(&m, 8), [1, 2]);
        assert_eq!(m.owners(2), 1);
        assert!(m.of_user(8).any(|(o, ms)| o == 2 && ms.owner));

        m.remove(1, 7);
        assert_eq!(orgs_of(&m, 7), [2, 3]);
        m.remove_org(2);
        assert_eq!(orgs_of(&m, 7), [3]);
        assert_eq!(orgs_of(&m, 8), [1]);
        assert!(orgs_of(&m, 9).is_empty());
        assert_eq!(m.of_org(2).count(), 0);
        assert_eq!(m.by_user.len(), m.by_org.len());
    }

    #[test]
    fn login_rules() {
        for ok in ["a", "acme", "a-b", "a.b_c", "A1"] {
            assert!(valid_login(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "a b", "a_.b", "ä"] {
            assert!(!valid_login(bad), "{bad}");
        }
    }
}
