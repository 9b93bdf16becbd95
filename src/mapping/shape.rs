//! Compiled field maps ("shapes") and the two directions they run in: canonical → dialect JSON
//! (encode) and dialect JSON → canonical (decode). Built once at load time; the request path
//! only walks these vectors.

mod answer;
mod pair;
mod scan;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jsonpath_rust::parser::model::JpQuery;
use jsonpath_rust::query::js_path_process;
use serde_json::Value;

use self::answer::AnswerPlan;
use self::pair::PairPlan;
use self::scan::ScannedPage;
use super::reader::{Malformed, Reader};
use super::template::{Part, Template};
use crate::canonical::avatar;
use crate::canonical::schema::coerce;
use crate::canonical::{
    CanonicalError, Entity, Field, FieldSet, FieldType, Object, Params, ValidationCode,
};

#[derive(Debug)]
pub struct Shape {
    pub name: String,
    pub entity: Entity,
    pub fields: Vec<FieldRule>,
    pub ignores: Vec<String>,
    /// The written fields as the answer nests them (`a.b` under `a`), built once by
    /// [`Shape::new`] so that encoding streams straight to bytes.
    out: Vec<Out>,
    /// Which keys of an upstream answer feed which rules, so that decoding reads the bytes
    /// once and skips everything else; None where a rule needs the whole document (a JSONPath
    /// query, a merged shape).
    reads: Option<ReadPlan>,
    /// Whether every key the read plan reads is a top-level one: lists of this shape are then
    /// scanned (`scan`) rather than decoded.
    flat_reads: bool,
    /// The canonical fields the read rules decode into, sorted, and each rule's place in it:
    /// decoding fills slots (the first rule to yield a field wins), then builds the object.
    decoded: Vec<Field>,
    decodes_into: Vec<Option<usize>>,
    /// The canonical fields the written rules look up, sorted, and where each rule finds its
    /// values in that list: encoding finds them all in one ordered pass over the object
    /// ([`View`]) instead of one map search per field and URL placeholder.
    looked_up: Vec<Field>,
    lookups: Vec<Lookups>,
    /// The looked-up fields URL templates use as path segments (their places in `looked_up`).
    segments: Vec<usize>,
    /// Each rule's answer key as JSON text with its colon (`"login":`), escaped once here.
    json_keys: Vec<Box<[u8]>>,
    /// The canonical fields the written rules read: the looked-up ones, and the ones a strict
    /// rule checks before an object is shown at all.
    shown: FieldSet,
    /// The strict rules (a value outside their map keeps an object from being shown).
    strict: Vec<usize>,
    /// The answer compiled for the first roots it was written with.
    answer: OnceLock<Option<AnswerPlan>>,
    /// That answer compiled for items of each upstream shape met in a scanned page (`pair`).
    pairs: Mutex<Vec<PairEntry>>,
}

/// An upstream shape, and this shape's answer compiled for its items (None: not compilable).
type PairEntry = (Weak<Shape>, Option<Arc<PairPlan>>);

/// Where one written rule finds its canonical values among [`Shape::looked_up`].
#[derive(Debug, Default)]
struct Lookups {
    field: Option<usize>,
    or: Option<usize>,
    /// A URL template's pieces, its placeholders resolved against the shape.
    url: Vec<UrlPart>,
    /// A URL template whose own text needs no JSON escaping (its placeholders render
    /// percent-encoded, so they never do).
    plain_url: bool,
}

#[derive(Debug, Clone)]
enum UrlPart {
    Text(Box<str>),
    Api,
    Web,
    /// A canonical field's value as a path segment: its place in [`Shape::segments`].
    Segment(usize),
    /// A placeholder that names no canonical field: the request's parameter.
    Param(Box<str>),
}

/// The canonical values a shape's answer reads, in [`Shape::looked_up`] order, and the ones
/// its URLs use, percent-encoded once per object, in [`Shape::segments`] order.
#[derive(Default)]
struct View<'a> {
    values: Vec<Option<&'a Value>>,
    segments: Vec<Option<Cow<'a, str>>>,
}

/// The pair plan a list being written last chose, and for which page shape.
#[derive(Default)]
struct PairChoice {
    shape: Option<*const Shape>,
    plan: Option<Arc<PairPlan>>,
}

/// The keys one JSON object level is read for. The table is built once from the mapping file
/// and never grows while reading, so a fixed-seed fast hash is safe against chosen keys.
#[derive(Debug, Default)]
struct ReadPlan {
    keys: HashMap<String, ReadNode, foldhash::fast::FixedState>,
}

/// Room a shape's decoding works in, kept from one object of a list to the next: the value
/// each rule read (`slots`), and the rule each decoded field's value comes from (`from`).
#[derive(Default)]
struct Scratch {
    slots: Vec<Option<Value>>,
    from: Vec<Option<usize>>,
}

/// The keys of the last object of a list read, by place, with what the plan does with each.
type KeyMemo<'a, 'p> = Vec<Option<(&'a str, Member<'p>)>>;

/// What reading does with one key's value, decided once per key (and, in a list, once per
/// place while the objects' keys stay the same).
#[derive(Clone, Copy)]
enum Member<'p> {
    /// Not planned, or read only by rules not kept: checked and stepped over.
    Skip,
    /// Read by one kept rule and nothing inside it: built in that rule's slot.
    Into(usize),
    /// Anything else: [`ReadPlan::read_member`] works it out.
    Node(&'p ReadNode),
}

#[derive(Debug, Default)]
struct ReadNode {
    /// Rules that read this key's value.
    rules: Vec<usize>,
    /// Keys read inside this key's value, when it is an object.
    inner: ReadPlan,
}

impl ReadPlan {
    fn build(fields: &[FieldRule]) -> Option<ReadPlan> {
        let mut plan = ReadPlan::default();
        for (i, rule) in fields.iter().enumerate() {
            if !matches!(rule.source, Source::Canonical(_)) {
                continue;
            }
            match (&rule.read, rule.merge) {
                (None, _) => {}
                (Some(ReadPath::Simple(path)), false) if !path.is_empty() => plan.insert(path, i),
                _ => return None,
            }
        }
        Some(plan)
    }

    fn insert(&mut self, path: &[String], rule: usize) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let node = self.keys.entry(first.clone()).or_default();
        if rest.is_empty() {
            node.rules.push(rule);
        } else {
            node.inner.insert(rest, rule);
        }
    }

    fn get(&self, key: &str) -> Option<&ReadNode> {
        self.keys.get(key)
    }

    /// What reading does with `key`'s value, with rules not `kept` reading nothing.
    fn member(&self, key: &str, kept: &[bool]) -> Member<'_> {
        match self.get(key) {
            None => Member::Skip,
            Some(node) if node.inner.keys.is_empty() => match node.rules[..] {
                _ if !node.rules.iter().any(|&i| is_kept(kept, i)) => Member::Skip,
                [only] => Member::Into(only),
                _ => Member::Node(node),
            },
            Some(node) => Member::Node(node),
        }
    }

    /// Reads the value the reader is at through this plan: planned values land in their
    /// rules' slots, every other value is checked and skipped without being built. Anything
    /// but an object reads as nothing.
    /// Rules not `kept` read nothing: a key only they read is skipped like an unknown one
    /// (see [`is_kept`]).
    /// With a `memo`, the keys found are remembered by their place, for the next object of
    /// the same list (see [`Reader::object_remembered`]).
    fn read<'a, 'p>(
        &'p self,
        r: &mut Reader<'a>,
        slots: &mut [Option<Value>],
        kept: &[bool],
        memo: Option<&mut KeyMemo<'a, 'p>>,
    ) -> Result<(), Malformed> {
        if r.peek() != Some(b'{') {
            return r.skip();
        }
        // The value is built where it stays, in its rule's slot: returned and moved there
        // instead, its parts' stores stalled the loads that copied it.
        let mut member = |r: &mut Reader<'a>, member: Member<'p>| match member {
            Member::Skip => r.skip(),
            Member::Into(i) => r.value_into(slots[i].insert(Value::Null)),
            Member::Node(node) => Self::read_member(node, r, slots, kept),
        };
        match memo {
            Some(memo) => r.object_remembered(memo, |key| self.member(key, kept), member),
            None => r.object(|r, key| member(r, self.member(&key, kept))),
        }
    }

    /// A key's value that an object inside it is read from, or that several rules read.
    fn read_member<'a>(
        node: &ReadNode,
        r: &mut Reader<'a>,
        slots: &mut [Option<Value>],
        kept: &[bool],
    ) -> Result<(), Malformed> {
        let Some((&last, rest)) = node.rules.split_last() else {
            return node.inner.read(r, slots, kept, None);
        };
        r.value_into(slots[last].insert(Value::Null))?;
        if let Some(value) = slots[last].clone() {
            node.inner.fill_from(&value, slots);
            for &i in rest {
                slots[i] = Some(value.clone());
            }
        }
        Ok(())
    }

    /// The same, from a value already built (a planned key that is also read inside).
    fn fill_from(&self, json: &Value, slots: &mut [Option<Value>]) {
        for (key, node) in &self.keys {
            let Some(value) = json.get(key) else { continue };
            for &i in &node.rules {
                slots[i] = Some(value.clone());
            }
            node.inner.fill_from(value, slots);
        }
    }
}

/// One entry of an encoded answer: a field rule (by index), or an object of entries.
#[derive(Debug)]
enum Out {
    Rule(usize),
    /// An object of entries: its key, and the key as JSON text (`"plan":`).
    Group(String, Box<[u8]>, Vec<Out>),
}

#[derive(Debug, Clone)]
pub struct FieldRule {
    /// Dotted location in the dialect's JSON, as written in the mapping file.
    pub key: String,
    pub path: Vec<String>,
    pub source: Source,
    pub read: Option<ReadPath>,
    pub write: bool,
    pub default: Option<Value>,
    pub values: Option<Arc<ValueMap>>,
    pub required: bool,
    pub max_len: Option<usize>,
    pub nested: Option<Arc<Shape>>,
    pub as_type: AsType,
    pub canonical_type: Option<FieldType>,
    pub or: Option<String>,
    pub merge: bool,
    pub strict: bool,
}

#[derive(Debug, Clone)]
pub enum Source {
    Canonical(String),
    Param(String),
    Url(Template),
    Const(Value),
    Compute(Compute),
}

/// How a value is spelled in this dialect when it differs from its canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsType {
    Plain,
    /// A number written as a string (GitHub event ids).
    String,
    /// An image as bare base64 (Gitea's avatar upload); canonically a data: URL.
    Base64,
    /// A parameter written as a JSON number (GitLab's `user_id`).
    Number,
}

#[derive(Debug, Clone)]
pub enum Compute {
    /// GitHub's legacy global node id: base64("0<len>:<Type><id>").
    GithubNodeId(NodeIdPrefix),
    /// Always null (a field the canonical model has no value for, such as GitLab's parent_id).
    Null,
}

#[derive(Debug, Clone)]
pub enum ReadPath {
    /// `$.a.b`: walked directly, no JSONPath engine needed on the hot path.
    Simple(Vec<String>),
    Query(Box<JpQuery>),
}

/// A two-way table of enum values: canonical value ↔ dialect value. Where two canonical values
/// share a dialect value, reading back takes the first one listed (a declared lossy direction).
/// The tables hold a handful of values each, so they are searched in order, not hashed.
#[derive(Debug, Default)]
pub struct ValueMap {
    /// Canonical value → the value the dialect writes for it.
    pub to_dialect: Vec<(String, Value)>,
    /// A dialect's value (as text) → canonical value.
    pub to_canonical: Vec<(String, String)>,
}

/// Where URL templates point and which request parameters they may use.
pub struct EncodeCtx<'a> {
    pub api: &'a str,
    pub web: &'a str,
    pub params: &'a Params,
    /// Whether both roots are JSON text as they stand (no quote, backslash or control
    /// character), so that URLs built on them can be written without escaping.
    plain_roots: bool,
}

impl<'a> EncodeCtx<'a> {
    pub fn new(api: &'a str, web: &'a str, params: &'a Params) -> Self {
        EncodeCtx {
            api,
            web,
            params,
            plain_roots: json_plain(api) && json_plain(web),
        }
    }
}

/// Whether `s` is the same inside JSON quotes as outside: nothing in it needs escaping.
pub(crate) fn json_plain(s: &str) -> bool {
    !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20)
}

fn value_key(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

impl ValueMap {
    fn to_dialect(&self, v: &Value) -> Option<&Value> {
        find(&self.to_dialect, v)
    }
    fn to_canonical(&self, v: &Value) -> Option<Value> {
        find(&self.to_canonical, v).map(|s| Value::String(s.clone()))
    }
}

fn find<'m, T>(entries: &'m [(String, T)], v: &Value) -> Option<&'m T> {
    let key = value_key(v);
    entries
        .iter()
        .find(|(k, _)| k.as_str() == key.as_ref())
        .map(|(_, t)| t)
}

impl ReadPath {
    pub fn read<'a>(&self, json: &'a Value) -> Option<&'a Value> {
        match self {
            ReadPath::Simple(segments) => {
                let mut cur = json;
                for seg in segments {
                    cur = cur.get(seg)?;
                }
                Some(cur)
            }
            ReadPath::Query(q) => js_path_process(q, json)
                .ok()
                .and_then(|found| found.into_iter().next().map(|r| r.val)),
        }
    }
}

fn set_path(target: &mut serde_json::Map<String, Value>, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            target.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let slot = target
                .entry(first.clone())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(serde_json::Map::new());
            }
            if let Value::Object(inner) = slot {
                set_path(inner, rest, value);
            }
        }
    }
}

/// GitHub's legacy node id for one type: base64 of `0{length of the type name}:{type name}{id}`.
/// The part of the prefix that fills whole base64 groups is encoded once, here; the rest of it
/// (up to two bytes) is encoded with each id.
#[derive(Debug, Clone)]
pub struct NodeIdPrefix {
    encoded: Box<str>,
    rest: Box<[u8]>,
}

impl NodeIdPrefix {
    pub fn new(type_name: &str) -> NodeIdPrefix {
        let raw = format!("0{}:{type_name}", type_name.len());
        let whole = raw.len() / 3 * 3;
        NodeIdPrefix {
            encoded: STANDARD.encode(&raw.as_bytes()[..whole]).into(),
            rest: raw.as_bytes()[whole..].into(),
        }
    }

    /// Appends the node id of the object with this `id`, as a JSON string (base64 text needs
    /// no escaping, so it is encoded straight into the answer).
    fn write(&self, out: &mut Vec<u8>, id: &Value) {
        let mut digits = itoa::Buffer::new();
        let text;
        let id = match id {
            Value::String(s) => s.as_str(),
            Value::Number(n) => match n.as_u64() {
                Some(n) => digits.format(n),
                None => {
                    text = n.to_string();
                    &text
                }
            },
            other => {
                text = other.to_string();
                &text
            }
        };
        self.write_id(out, id);
    }

    /// The same, from the id's text.
    fn write_id(&self, out: &mut Vec<u8>, id: &str) {
        let (mut short, long);
        let len = self.rest.len() + id.len();
        let tail: &[u8] = if len <= 32 {
            short = [0u8; 32];
            short[..self.rest.len()].copy_from_slice(&self.rest);
            short[self.rest.len()..len].copy_from_slice(id.as_bytes());
            &short[..len]
        } else {
            long = [&self.rest[..], id.as_bytes()].concat();
            &long
        };
        out.push(b'"');
        out.extend_from_slice(self.encoded.as_bytes());
        push_base64(out, tail);
        out.push(b'"');
    }
}

/// Appends the base64 text (standard alphabet, padded) of a few bytes: a node id's tail is a
/// dozen bytes, too few for the base64 crate's engine to pay for its set-up.
fn push_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = byte(0) << 16 | byte(1) << 8 | byte(2);
        let sextet = |shift: u32| ALPHABET[(n >> shift & 63) as usize];
        let pad = |present: bool, shift: u32| if present { sextet(shift) } else { b'=' };
        out.extend_from_slice(&[
            sextet(18),
            sextet(12),
            pad(chunk.len() > 1, 6),
            pad(chunk.len() > 2, 0),
        ]);
    }
}

impl Shape {
    /// A shape from its rules, which the caller has made unique by key.
    pub fn new(name: String, entity: Entity, fields: Vec<FieldRule>, ignores: Vec<String>) -> Self {
        let mut out = Vec::new();
        for (i, rule) in fields.iter().enumerate().filter(|(_, r)| r.write) {
            let mut level = &mut out;
            let groups = rule.path.split_last().map_or(&[][..], |(_, g)| g);
            for seg in groups {
                let at = level
                    .iter()
                    .position(|o| matches!(o, Out::Group(k, _, _) if k == seg))
                    .unwrap_or_else(|| {
                        level.push(Out::Group(seg.clone(), json_key(seg), Vec::new()));
                        level.len() - 1
                    });
                let Out::Group(_, _, inner) = &mut level[at] else {
                    unreachable!("position() found a group")
                };
                level = inner;
            }
            level.push(Out::Rule(i));
        }
        let reads = ReadPlan::build(&fields);
        let flat_reads = reads.as_ref().is_some_and(ReadPlan::is_flat);
        let read_field = |r: &FieldRule| match (&r.read, &r.source) {
            (Some(_), Source::Canonical(field)) => Field::of(field),
            _ => None,
        };
        let mut decoded: Vec<Field> = fields.iter().filter_map(read_field).collect();
        decoded.sort_unstable();
        decoded.dedup();
        let decodes_into = fields
            .iter()
            .map(|r| read_field(r).and_then(|f| decoded.binary_search(&f).ok()))
            .collect();
        // Placeholders that name no canonical field are the request's parameters.
        let mut looked_up: Vec<Field> = Vec::new();
        for rule in fields.iter().filter(|r| r.write) {
            match &rule.source {
                Source::Canonical(field) => looked_up.extend(Field::of(field)),
                Source::Url(t) => looked_up.extend(t.vars().filter_map(Field::of)),
                Source::Compute(Compute::GithubNodeId(_)) => looked_up.extend(Field::of("id")),
                _ => {}
            }
            looked_up.extend(rule.or.as_deref().and_then(Field::of));
        }
        looked_up.sort_unstable();
        looked_up.dedup();
        let slot = |name: &str| Field::of(name).and_then(|f| looked_up.binary_search(&f).ok());
        let mut segments = Vec::new();
        let segment = |segments: &mut Vec<usize>, at: usize| {
            segments.iter().position(|&s| s == at).unwrap_or_else(|| {
                segments.push(at);
                segments.len() - 1
            })
        };
        let lookups = fields
            .iter()
            .map(|rule| {
                let url: Vec<UrlPart> = match &rule.source {
                    Source::Url(t) => t
                        .parts()
                        .iter()
                        .map(|part| match part {
                            Part::Lit(text) => UrlPart::Text(text.as_str().into()),
                            Part::Var(v) if v == "api" => UrlPart::Api,
                            Part::Var(v) if v == "web" => UrlPart::Web,
                            Part::Var(name) => match slot(name) {
                                Some(at) => UrlPart::Segment(segment(&mut segments, at)),
                                None => UrlPart::Param(name.as_str().into()),
                            },
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let plain_url = url
                    .iter()
                    .all(|part| !matches!(part, UrlPart::Text(text) if !json_plain(text)));
                Lookups {
                    field: match &rule.source {
                        Source::Canonical(field) => slot(field),
                        Source::Compute(Compute::GithubNodeId(_)) => slot("id"),
                        _ => None,
                    },
                    or: rule.or.as_deref().and_then(slot),
                    url,
                    plain_url,
                }
            })
            .collect();
        let json_keys = fields
            .iter()
            .map(|rule| json_key(rule.path.last().unwrap_or(&rule.key)))
            .collect();
        let strict: Vec<usize> = (fields.iter().enumerate())
            .filter(|(_, r)| r.strict)
            .map(|(i, _)| i)
            .collect();
        let strict_fields = strict.iter().filter_map(|&i| match &fields[i].source {
            Source::Canonical(f) => Field::of(f),
            _ => None,
        });
        let shown = looked_up.iter().copied().chain(strict_fields).collect();
        Shape {
            answer: OnceLock::new(),
            pairs: Mutex::default(),
            flat_reads,
            shown,
            strict,
            json_keys,
            looked_up,
            lookups,
            segments,
            decoded,
            decodes_into,
            name,
            entity,
            fields,
            ignores,
            out,
            reads,
        }
    }

    /// Appends a JSON array of this shape's answers for `items` (one view kept for them all).
    /// Items still as an upstream page holds them are written from its text where this shape
    /// has a plan for the page's shape (`pair`).
    pub fn write_list(&self, items: &[Object], ctx: &EncodeCtx<'_>, out: &mut Vec<u8>) {
        let mut view = View::default();
        let plan = self.answer_plan(ctx);
        let mut pair = PairChoice::default();
        out.push(b'[');
        for (n, item) in items.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            if let Some(plan) = plan {
                if self.write_scanned(item, plan, ctx, &mut pair, out) {
                    continue;
                }
            }
            self.fill_view(item, ctx.params, &mut view);
            self.write_object(plan, &view, ctx, out);
        }
        out.push(b']');
    }

    /// Writes an item that is still a scanned page's straight from the page's text, where this
    /// shape has a pair plan for the page's shape and the item's values are plain; false
    /// (nothing written) otherwise.
    fn write_scanned(
        &self,
        item: &Object,
        answer: &AnswerPlan,
        ctx: &EncodeCtx<'_>,
        choice: &mut PairChoice,
        out: &mut Vec<u8>,
    ) -> bool {
        let Some(unread) = item.as_unread() else {
            return false;
        };
        let Some(page) = unread.page.as_any().downcast_ref::<ScannedPage>() else {
            return false;
        };
        let shape = Arc::as_ptr(&page.shape);
        if choice.shape != Some(shape) {
            choice.shape = Some(shape);
            choice.plan = self.pair_plan(&page.shape, answer);
        }
        let Some(plan) = choice.plan.as_ref().filter(|_| page.rebase.is_plain()) else {
            return false;
        };
        let mark = out.len();
        if plan.write(self, answer, page, unread.index, ctx, out) {
            return true;
        }
        out.truncate(mark);
        false
    }

    /// This shape's answer compiled for items of `upstream`, made the first time a page of
    /// them is written.
    fn pair_plan(&self, upstream: &Arc<Shape>, answer: &AnswerPlan) -> Option<Arc<PairPlan>> {
        let mut pairs = self.pairs.lock().ok()?;
        let found = pairs
            .iter()
            .find(|(shape, _)| std::ptr::eq(shape.as_ptr(), Arc::as_ptr(upstream)));
        if let Some((_, plan)) = found {
            return plan.clone();
        }
        let plan = PairPlan::build(self, answer, upstream).map(Arc::new);
        pairs.push((Arc::downgrade(upstream), plan.clone()));
        plan
    }

    /// Canonical → a response body in this dialect, serialized straight to bytes without an
    /// intermediate JSON tree: every written field is present, missing canonical values become
    /// the field's default or null.
    pub fn response<'a>(&'a self, obj: &'a Object, ctx: &'a EncodeCtx<'a>) -> Encoded<'a> {
        Encoded {
            shape: self,
            obj,
            ctx,
        }
    }

    /// Keys an answer would carry twice: a key that is both a field and an object of fields
    /// (`a` and `a.b`), or a merged shape's field beside a field of the same name.
    pub fn clashing_keys(&self) -> Vec<String> {
        fn keys(shape: &Shape, entries: &[Out], seen: &mut Vec<String>, clashes: &mut Vec<String>) {
            for entry in entries {
                match entry {
                    Out::Group(key, _, _) => note(key, seen, clashes),
                    Out::Rule(i) => {
                        let rule = &shape.fields[*i];
                        match (&rule.nested, rule.merge) {
                            (Some(nested), true) => keys(nested, &nested.out, seen, clashes),
                            _ => note(rule.path.last().unwrap_or(&rule.key), seen, clashes),
                        }
                    }
                }
            }
            for entry in entries {
                if let Out::Group(_, _, inner) = entry {
                    keys(shape, inner, &mut Vec::new(), clashes);
                }
            }
        }
        fn note(key: &str, seen: &mut Vec<String>, clashes: &mut Vec<String>) {
            if seen.iter().any(|k| k == key) {
                clashes.push(key.to_string());
            } else {
                seen.push(key.to_string());
            }
        }
        let mut clashes = Vec::new();
        keys(self, &self.out, &mut Vec::new(), &mut clashes);
        clashes
    }

    /// Writes the members of an object (without its braces), `first` telling whether a comma
    /// is due before the next one. (Shapes without merged members write through their
    /// [`AnswerPlan`] instead.)
    fn write_members(
        &self,
        entries: &[Out],
        view: &View<'_>,
        ctx: &EncodeCtx<'_>,
        out: &mut Vec<u8>,
        first: &mut bool,
    ) {
        for entry in entries {
            let i = match entry {
                Out::Group(_, key, inner) => {
                    member(out, first, key);
                    out.push(b'{');
                    self.write_members(inner, view, ctx, out, &mut true);
                    out.push(b'}');
                    continue;
                }
                Out::Rule(i) => *i,
            };
            let rule = &self.fields[i];
            if let (true, Source::Canonical(_), Some(nested)) =
                (rule.merge, &rule.source, &rule.nested)
            {
                if let Some(Value::Object(inner)) = self.canonical_in(view, i) {
                    // The nested shape's members join this object.
                    let inner = Object::from_map(inner);
                    let inner_view = nested.view(&inner, ctx.params);
                    nested.write_members(&nested.out, &inner_view, ctx, out, first);
                    continue;
                }
            }
            member(out, first, &self.json_keys[i]);
            self.write_rule_value(i, view, ctx, out);
        }
    }

    /// Writes rule `i`'s value, as it follows the rule's key in an answer: missing canonical
    /// values as the rule's default or null.
    fn write_rule_value(&self, i: usize, view: &View<'_>, ctx: &EncodeCtx<'_>, out: &mut Vec<u8>) {
        let rule = &self.fields[i];
        let piece = match &rule.source {
            Source::Canonical(_) => match self.canonical_in(view, i) {
                None => rule.default.as_ref().map_or(Piece::Null, Piece::Ref),
                Some(v) => match (&rule.nested, v) {
                    (Some(nested), Value::Object(inner)) => {
                        nested.response(&Object::from_map(inner), ctx).write(out);
                        return;
                    }
                    _ => rule.outbound(v),
                },
            },
            Source::Param(p) => match ctx.params.get(p) {
                Some(v) => Piece::Str(v),
                None => rule.default.as_ref().map_or(Piece::Null, Piece::Ref),
            },
            // Placeholders render percent-encoded, so the URL needs escaping only where the
            // template's text or the roots do: otherwise it goes straight into `out`.
            Source::Url(_) if self.plain_url(i, ctx) => {
                out.push(b'"');
                let push = |s: &str| out.extend_from_slice(s.as_bytes());
                render_url(push, &self.lookups[i].url, view, ctx);
                out.push(b'"');
                return;
            }
            Source::Url(_) => {
                let mut url = String::with_capacity(192);
                render_url(|s| url.push_str(s), &self.lookups[i].url, view, ctx);
                write_str(out, &url);
                return;
            }
            Source::Const(v) => Piece::Ref(v),
            Source::Compute(Compute::GithubNodeId(ty)) => {
                match self.lookups[i].field.and_then(|at| view.values[at]) {
                    Some(id) if !id.is_null() => {
                        ty.write(out, id);
                        return;
                    }
                    _ => Piece::Null,
                }
            }
            Source::Compute(Compute::Null) => Piece::Null,
        };
        piece.write(out);
    }

    /// Whether rule `i`'s URL can be written without escaping: placeholders render
    /// percent-encoded, so it needs escaping only where the template's text or the roots do.
    fn plain_url(&self, i: usize, ctx: &EncodeCtx<'_>) -> bool {
        ctx.plain_roots && self.lookups[i].plain_url
    }

    /// The shape's answer plan for `ctx`'s roots: made for the first roots it is asked for,
    /// and kept (a dialect's answers all point at the same roots).
    fn answer_plan(&self, ctx: &EncodeCtx<'_>) -> Option<&AnswerPlan> {
        self.answer
            .get_or_init(|| AnswerPlan::build(self, ctx))
            .as_ref()
            .filter(|plan| plan.fits(ctx))
    }

    /// Appends one object's answer, through `plan` where there is one.
    fn write_object(
        &self,
        plan: Option<&AnswerPlan>,
        view: &View<'_>,
        ctx: &EncodeCtx<'_>,
        out: &mut Vec<u8>,
    ) {
        match plan {
            Some(plan) => plan.write(self, view, ctx, out),
            None => {
                out.push(b'{');
                self.write_members(&self.out, view, ctx, out, &mut true);
                out.push(b'}');
            }
        }
    }

    /// Finds the looked-up fields in one pass over the object's fields (both are in field
    /// order), and encodes the ones URLs use as path segments.
    fn view<'a>(&self, obj: &'a Object, params: &'a Params) -> View<'a> {
        let mut view = View::default();
        self.fill_view(obj, params, &mut view);
        view
    }

    /// The same, into a view kept from one object of a list to the next.
    fn fill_view<'a>(&self, obj: &'a Object, params: &'a Params, view: &mut View<'a>) {
        let values = &mut view.values;
        values.clear();
        values.resize(self.looked_up.len(), None);
        let mut wanted = self.looked_up.iter().enumerate().peekable();
        for (key, value) in obj.entries() {
            while let Some((at, field)) = wanted.peek() {
                match (*field).cmp(key) {
                    std::cmp::Ordering::Less => {
                        wanted.next();
                    }
                    std::cmp::Ordering::Equal => {
                        values[*at] = Some(value);
                        wanted.next();
                        break;
                    }
                    std::cmp::Ordering::Greater => break,
                }
            }
        }
        // A field without a value (or an object) falls back to the request's parameter of the
        // same name.
        view.segments.clear();
        view.segments
            .extend(self.segments.iter().map(|&at| match values[at] {
                Some(Value::String(s)) => Some(encode_segment(s)),
                Some(Value::Null | Value::Object(_)) | None => {
                    params.get(self.looked_up[at].name()).map(encode_segment)
                }
                Some(v) => Some(Cow::Owned(encode_segment(&v.to_string()).into_owned())),
            }));
    }

    /// Rule `i`'s canonical value as [`FieldRule::canonical_value`] picks it, from a view.
    fn canonical_in<'a>(&self, view: &View<'a>, i: usize) -> Option<&'a Value> {
        let at = &self.lookups[i];
        let get = |slot: Option<usize>| slot.and_then(|s| view.values[s]);
        pick(get(at.field), get(at.or))
    }

    /// Whether this dialect can show the object: every strict field's value is in its map.
    pub fn expresses(&self, obj: &Object) -> bool {
        (self.strict.iter().map(|&i| &self.fields[i])).all(|r| match (&r.source, &r.values) {
            (Source::Canonical(f), Some(map)) => obj
                .get(f)
                .is_none_or(|v| v.is_null() || map.to_dialect(v).is_some()),
            _ => true,
        })
    }

    /// Canonical → a request body in this dialect: only the values the caller supplied.
    pub fn encode_request(&self, obj: &Object, params: &Params) -> Value {
        let mut out = serde_json::Map::new();
        for rule in self.fields.iter().filter(|r| r.write) {
            let value = match &rule.source {
                Source::Canonical(field) => match rule.canonical_value(obj, field) {
                    Some(v) => rule.outbound_value(v),
                    None => continue,
                },
                Source::Param(p) => match params.get(p) {
                    Some(v) => rule.outbound_value(&Value::String(v.to_string())),
                    None => continue,
                },
                _ => continue,
            };
            set_path(&mut out, &rule.path, value);
        }
        Value::Object(out)
    }

    /// Whether this request shape carries a canonical field, or declares it may drop it.
    pub fn writes_canonical(&self, field: &str) -> bool {
        self.ignores.iter().any(|f| f == field)
            || self
                .fields
                .iter()
                .any(|r| r.write && matches!(&r.source, Source::Canonical(f) if f == field))
    }

    /// A dialect response body → canonical. Lenient: a missing or odd field is left out.
    pub fn decode_response(&self, json: &Value) -> Object {
        self.decode_slots(|_, rule| rule.raw_in(json))
    }

    /// An upstream's answer, as bytes, decoded without building its JSON tree.
    pub fn decode_slice(&self, body: &[u8]) -> Result<Object, Malformed> {
        let mut r = Reader::new(body)?;
        let obj = self.read(&mut r, &mut Scratch::default(), &[], None)?;
        r.end()?;
        Ok(obj)
    }

    /// An upstream's JSON array of these objects, decoded without building its JSON tree;
    /// with `only`, the objects hold those canonical fields and no others (every value is
    /// still checked, the others are not built).
    pub fn decode_list_slice(
        &self,
        body: &[u8],
        only: Option<FieldSet>,
    ) -> Result<Vec<Object>, Malformed> {
        let mut r = Reader::new(body)?;
        if r.peek() != Some(b'[') {
            return Err(r.malformed("expected an array"));
        }
        let kept = self.kept(only);
        let mut items = Vec::new();
        let mut scratch = Scratch::default();
        let mut memo = KeyMemo::new();
        r.array(|r| {
            let start = r.place();
            items.push(self.read(r, &mut scratch, &kept, Some(&mut memo))?);
            // Room for as many more as the first one's size says the rest holds, at once
            // instead of doubling (and copying) five or six times on the way to 50.
            if items.len() == 1 {
                let size = r.place().saturating_sub(start).max(32);
                items.reserve(body.len().saturating_sub(r.place()) / size);
            }
            Ok(())
        })?;
        r.end()?;
        Ok(items)
    }

    /// The first object of an upstream's JSON array (a list of one), if any.
    pub fn decode_first_slice(&self, body: &[u8]) -> Result<Option<Object>, Malformed> {
        Ok(self.decode_list_slice(body, None)?.into_iter().next())
    }

    /// Which rules decode a field of `only`; none listed (every rule kept) without it.
    fn kept(&self, only: Option<FieldSet>) -> Vec<bool> {
        let Some(only) = only else {
            return Vec::new();
        };
        self.decodes_into
            .iter()
            .map(|slot| slot.is_none_or(|slot| only.contains(self.decoded[slot])))
            .collect()
    }

    /// The canonical fields this shape's answers show: the ones their written rules read.
    pub fn fields_shown(&self) -> FieldSet {
        self.shown
    }

    /// One object read through the shape's read plan, or built and then decoded where the
    /// shape's rules need the whole value (merges, JSONPath reads). `slots` is scratch space,
    /// kept from one object of a list to the next.
    fn read<'a, 'p>(
        &'p self,
        r: &mut Reader<'a>,
        scratch: &mut Scratch,
        kept: &[bool],
        memo: Option<&mut KeyMemo<'a, 'p>>,
    ) -> Result<Object, Malformed> {
        match &self.reads {
            Some(plan) => {
                // (`resize_with`: `resize` would clone a `None` per slot, through `Value`'s
                // whole `clone`.)
                scratch.slots.clear();
                scratch.slots.resize_with(self.fields.len(), || None);
                plan.read(r, &mut scratch.slots, kept, memo)?;
                Ok(self.decode_in_slots(scratch, kept))
            }
            None => r.value().map(|json| {
                self.decode_slots(|i, rule| rule.raw_in(&json).filter(|_| is_kept(kept, i)))
            }),
        }
    }

    /// The values read into `slots` (one per rule) → the object: for each decoded field, the
    /// first rule whose value converts wins; each is converted where it lies and moved once,
    /// into the object. (Moving a `Value` through an `Option`, a `Cow` and back costs more
    /// than its instructions: the copies of its odd-sized parts stall the loads that follow
    /// them.)
    fn decode_in_slots(&self, scratch: &mut Scratch, kept: &[bool]) -> Object {
        let Scratch { slots, from } = scratch;
        // The rule each decoded field's value comes from.
        from.clear();
        from.resize(self.decoded.len(), None);
        let mut found = 0;
        for (i, rule) in self.fields.iter().enumerate() {
            let Some(slot) = self.decodes_into[i] else {
                continue;
            };
            if from[slot].is_some() || !is_kept(kept, i) {
                continue;
            }
            if let Some(value) = &mut slots[i] {
                if rule.convert(value) {
                    from[slot] = Some(i);
                    found += 1;
                }
            }
        }
        // The entries are made in place, then each field and value is moved into its entry
        // (a pair made on the stack and copied in stalls the loads that copy it: its parts
        // were stored in pieces of other sizes).
        let mut entries: Vec<(Field, Value)> = Vec::with_capacity(found);
        entries.resize_with(found, || (Field::FIRST, Value::Null));
        let winners =
            (self.decoded.iter().zip(from.iter())).filter_map(|(field, i)| i.map(|i| (*field, i)));
        for (entry, (field, i)) in entries.iter_mut().zip(winners) {
            entry.0 = field;
            if let Some(value) = &mut slots[i] {
                // Swapped, not taken: assigning would drop the entry's `Null` by a call.
                std::mem::swap(&mut entry.1, value);
            }
        }
        Object::from_sorted(entries)
    }

    /// Runs the read rules in order over the raw value each one reads (`raw(i, rule)`): the
    /// first rule that yields a canonical field wins.
    fn decode_slots<'v>(
        &self,
        mut raw: impl FnMut(usize, &FieldRule) -> Option<Cow<'v, Value>>,
    ) -> Object {
        let slots: Vec<Option<Value>> = (self.fields.iter().enumerate())
            .map(|(i, rule)| {
                self.decodes_into[i]
                    .and_then(|_| raw(i, rule))
                    .map(Cow::into_owned)
            })
            .collect();
        let mut scratch = Scratch {
            slots,
            from: Vec::new(),
        };
        self.decode_in_slots(&mut scratch, &[])
    }

    /// A client's request body → canonical input and parameters, checked against the rules
    /// the mapping declares (required, maximum length, type, enum values).
    pub fn decode_request(
        &self,
        json: &Value,
        params: &mut Params,
    ) -> Result<Object, CanonicalError> {
        let mut obj = Object::new();
        for rule in &self.fields {
            let Some(read) = &rule.read else { continue };
            let raw = read.read(json).filter(|v| !v.is_null());
            let Some(raw) = raw else {
                if rule.required {
                    return Err(CanonicalError::validation(
                        &rule.key,
                        ValidationCode::Missing,
                        format!("{} is missing", rule.key),
                    ));
                }
                continue;
            };
            if let (Some(max), Value::String(s)) = (rule.max_len, raw) {
                if s.chars().count() > max {
                    return Err(CanonicalError::validation(
                        &rule.key,
                        ValidationCode::Invalid,
                        format!("{} is longer than {max} characters", rule.key),
                    ));
                }
            }
            let invalid = || {
                CanonicalError::validation(
                    &rule.key,
                    ValidationCode::Invalid,
                    format!("{} has an invalid value", rule.key),
                )
            };
            match &rule.source {
                Source::Canonical(field) => {
                    if let Some(map) = &rule.values {
                        if map.to_canonical(raw).is_none() {
                            return Err(invalid());
                        }
                    }
                    let mut value = raw.clone();
                    if !rule.inbound(&mut value) {
                        return Err(invalid());
                    }
                    if rule.required && value.as_str().is_some_and(str::is_empty) {
                        return Err(CanonicalError::validation(
                            &rule.key,
                            ValidationCode::Missing,
                            format!("{} is missing", rule.key),
                        ));
                    }
                    obj.insert_if_absent(field, move || value);
                }
                Source::Param(p) => match raw {
                    Value::String(s) if !s.is_empty() => params.set(p, s.clone()),
                    Value::Number(n) => params.set(p, n.to_string()),
                    _ if rule.required => {
                        return Err(CanonicalError::validation(
                            &rule.key,
                            ValidationCode::Missing,
                            format!("{} is missing", rule.key),
                        ))
                    }
                    _ => return Err(invalid()),
                },
                _ => {}
            }
        }
        Ok(obj)
    }
}

/// Whether rule `i` decodes, by a shape's `kept` list: every rule when the list is empty.
fn is_kept(kept: &[bool], i: usize) -> bool {
    kept.get(i) != Some(&false)
}

/// Of a field's value and its declared fallback's (`or`), the one to write: the field's unless
/// it is null or empty, then the fallback's unless it is, then the field's unless it is null.
fn pick<'a>(field: Option<&'a Value>, or: Option<&'a Value>) -> Option<&'a Value> {
    let present = |v: &&Value| !v.is_null() && v.as_str() != Some("");
    field
        .filter(present)
        .or_else(|| or.filter(present))
        .or_else(|| field.filter(|v| !v.is_null()))
}

impl FieldRule {
    /// The raw value this rule reads from an answer's JSON tree.
    fn raw_in<'v>(&self, json: &'v Value) -> Option<Cow<'v, Value>> {
        if self.merge {
            return Some(Cow::Borrowed(json));
        }
        self.read.as_ref()?.read(json).map(Cow::Borrowed)
    }

    /// The canonical value to write: the field, or its declared fallback when it is missing,
    /// null or empty.
    fn canonical_value<'a>(&self, obj: &'a Object, field: &str) -> Option<&'a Value> {
        pick(obj.get(field), self.or.as_deref().and_then(|o| obj.get(o)))
    }

    fn outbound_value(&self, v: &Value) -> Value {
        self.outbound(v).into_value()
    }

    /// A canonical value as this dialect spells it, borrowed where nothing changes.
    fn outbound<'a>(&'a self, v: &'a Value) -> Piece<'a> {
        let mapped = self
            .values
            .as_ref()
            .and_then(|m| m.to_dialect(v))
            .unwrap_or(v);
        match (mapped, self.as_type) {
            (Value::Number(n), AsType::String) => Piece::String(n.to_string()),
            (Value::String(s), AsType::Number) => s
                .parse::<i64>()
                .map_or(Piece::Ref(mapped), |n| Piece::Owned(Value::from(n))),
            (Value::String(s), AsType::Base64) => Piece::Str(avatar::to_base64(s).unwrap_or(s)),
            _ => Piece::Ref(mapped),
        }
    }

    /// Turns the raw value this rule read from an answer into its canonical value, in place;
    /// false when it yields none (the next rule for the field may).
    fn convert(&self, value: &mut Value) -> bool {
        if self.merge {
            return match &self.nested {
                Some(nested) => {
                    *value = Value::Object(nested.decode_response(value).into_map());
                    true
                }
                None => false,
            };
        }
        // An empty string where the dialect writes "" for "unset" reads back as unset.
        if value.as_str() == Some("") && self.default.as_ref().and_then(Value::as_str) == Some("") {
            return false;
        }
        match (&self.nested, &*value) {
            (Some(nested), Value::Object(_)) => {
                *value = Value::Object(nested.decode_response(value).into_map());
                true
            }
            _ => self.inbound(value),
        }
    }

    /// A dialect's value as the canonical model holds it, in place (enum values mapped, base64
    /// images as data: URLs, the field's type coerced); false when it cannot be.
    fn inbound(&self, value: &mut Value) -> bool {
        if let Some(mapped) = self.values.as_ref().and_then(|m| m.to_canonical(value)) {
            *value = mapped;
        } else if let (AsType::Base64, Value::String(s)) = (self.as_type, &*value) {
            match avatar::from_base64(s) {
                Some(url) => *value = Value::String(url),
                None => return false,
            }
        }
        self.canonical_type.is_none_or(|ty| coerce(ty, value))
    }
}

/// An encoded answer (or one nested object of it), serialized on demand.
pub struct Encoded<'a> {
    shape: &'a Shape,
    obj: &'a Object,
    ctx: &'a EncodeCtx<'a>,
}

impl Encoded<'_> {
    /// Appends the answer's JSON text to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let view = self.shape.view(self.obj, self.ctx.params);
        let plan = self.shape.answer_plan(self.ctx);
        self.shape.write_object(plan, &view, self.ctx, out);
    }
}

/// One field's value in an answer: borrowed from the canonical object or the mapping where
/// possible.
enum Piece<'a> {
    Null,
    Ref(&'a Value),
    Str(&'a str),
    String(String),
    Owned(Value),
}

impl Piece<'_> {
    fn into_value(self) -> Value {
        match self {
            Piece::Null => Value::Null,
            Piece::Ref(v) => v.clone(),
            Piece::Str(s) => Value::String(s.to_string()),
            Piece::String(s) => Value::String(s),
            Piece::Owned(v) => v,
        }
    }
}

impl Piece<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Piece::Null => out.extend_from_slice(b"null"),
            Piece::Ref(v) => write_value(out, v),
            Piece::Str(s) => write_str(out, s),
            Piece::String(s) => write_str(out, s),
            Piece::Owned(v) => write_value(out, v),
        }
    }
}

/// Appends a member's key (JSON text with its colon), after a comma unless it is the first.
fn member(out: &mut Vec<u8>, first: &mut bool, key: &[u8]) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.extend_from_slice(key);
}

/// A key as JSON text with its colon: `"login":`.
fn json_key(key: &str) -> Box<[u8]> {
    let mut out = Vec::with_capacity(key.len() + 3);
    write_str(&mut out, key);
    out.push(b':');
    out.into_boxed_slice()
}

/// Appends a JSON string, escaped by sonic-rs (SIMD: answers are mostly strings).
fn write_str(out: &mut Vec<u8>, s: &str) {
    use sonic_rs::format::Formatter;
    // Writing to a vector cannot fail.
    let _ = sonic_rs::format::CompactFormatter.write_string_fast(out, s, true);
}

/// Appends any JSON value: strings through [`write_str`], anything else through sonic-rs.
fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => write_str(out, s),
        // Integers (ids, counts) as itoa writes them, without going through serde.
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes()),
            (None, Some(i)) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
            (None, None) => {
                let _ = sonic_rs::to_writer(&mut *out, v);
            }
        },
        // A `Value` always serializes, and writing to a vector cannot fail.
        other => {
            let _ = sonic_rs::to_writer(&mut *out, other);
        }
    }
}

/// Renders a URL field's value, piece by piece, into `push`. Every placeholder's value is
/// percent-encoded as a path segment.
fn render_url(mut push: impl FnMut(&str), url: &[UrlPart], view: &View<'_>, ctx: &EncodeCtx<'_>) {
    for part in url {
        render_part(&mut push, part, view, ctx);
    }
}

/// Renders one piece of a URL into `push`.
fn render_part(push: &mut impl FnMut(&str), part: &UrlPart, view: &View<'_>, ctx: &EncodeCtx<'_>) {
    match part {
        UrlPart::Text(text) => push(text),
        UrlPart::Api => push(ctx.api),
        UrlPart::Web => push(ctx.web),
        UrlPart::Segment(at) => {
            if let Some(segment) = &view.segments[*at] {
                push(segment);
            }
        }
        UrlPart::Param(name) => {
            if let Some(value) = ctx.params.get(name) {
                push(&encode_segment(value));
            }
        }
    }
}

/// Percent-encodes one path segment (borrowed when nothing needs escaping).
pub fn encode_segment(s: &str) -> Cow<'_, str> {
    // Most segments (logins, names) need nothing: one plain pass says so.
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
    if s.bytes().all(unreserved) {
        return Cow::Borrowed(s);
    }
    percent_encoding::utf8_percent_encode(s, SEGMENT).into()
}

const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::Entity;

    #[test]
    fn base64_of_a_few_bytes_is_the_crates() {
        let bytes: Vec<u8> = (0..=255).rev().collect();
        for len in 0..40 {
            let mut out = Vec::new();
            push_base64(&mut out, &bytes[..len]);
            assert_eq!(out, STANDARD.encode(&bytes[..len]).into_bytes(), "{len}");
        }
    }

    fn sample(entity: Entity) -> Object {
        entity
            .fields()
            .iter()
            .map(|(name, ty)| {
                let value = match ty {
                    FieldType::Int => Value::from(7),
                    FieldType::Str => Value::from(format!("v-{name} \"q\" é")),
                    FieldType::Bool => Value::Bool(true),
                    FieldType::Object(inner) => Value::Object(sample(*inner).into_map()),
                };
                (*name, value)
            })
            .collect()
    }

    /// Encodes a sample object through every answer shape of the bundled mappings and hands
    /// `check` the dialect's name, the shape, the object, the request parameters and the bytes;
    /// returns how many shapes it checked.
    fn each_answer(mut check: impl FnMut(&str, &Shape, &Object, &Params, &[u8])) -> usize {
        let params = Params::default().with("org", "acme").with("user", "alice");
        let ctx = EncodeCtx::new("http://p/api", "http://p", &params);
        let mut checked = 0;
        each_answer_shape(|dialect, shape| {
            let obj = sample(shape.entity);
            let mut bytes = Vec::new();
            shape.response(&obj, &ctx).write(&mut bytes);
            check(dialect, shape, &obj, &params, &bytes);
            checked += 1;
        });
        checked
    }

    /// Hands `check` every answer shape of the bundled mappings, with its dialect's name.
    fn each_answer_shape(mut check: impl FnMut(&str, &Shape)) {
        let dialects = crate::mapping::Dialects::load(None).expect("bundled mappings");
        for dialect in dialects.iter() {
            for shape in dialect.routes.iter().filter_map(|r| r.response.as_ref()) {
                check(&dialect.name, shape);
            }
        }
    }

    /// A list decoded for the fields one shape shows holds exactly those fields of the whole
    /// decode, for every pair of answer shapes of one entity; a bad value under a key that is
    /// not decoded is still an error.
    #[test]
    fn lists_decode_only_the_fields_shown() {
        let dialects = crate::mapping::Dialects::load(None).expect("bundled mappings");
        let shapes: Vec<&Shape> = dialects
            .iter()
            .flat_map(|d| d.routes.iter().filter_map(|r| r.response.as_deref()))
            .collect();
        let params = Params::default().with("org", "acme").with("user", "alice");
        let ctx = EncodeCtx::new("http://p/api", "http://p", &params);
        let mut narrowed = 0;
        for reader in &shapes {
            let mut list = b"[".to_vec();
            reader
                .response(&sample(reader.entity), &ctx)
                .write(&mut list);
            list.push(b']');
            let whole = reader.decode_list_slice(&list, None).expect("decodes");
            for shown in shapes.iter().filter(|s| s.entity == reader.entity) {
                let only = shown.fields_shown();
                let part = reader
                    .decode_list_slice(&list, Some(only))
                    .expect("decodes");
                let expected: Vec<Object> = whole
                    .iter()
                    .map(|o| {
                        o.entries()
                            .iter()
                            .filter(|(f, _)| only.contains(*f))
                            .map(|(f, v)| (f.name(), v.clone()))
                            .collect()
                    })
                    .collect();
                assert_eq!(part, expected, "{} for {}", reader.name, shown.name);
                narrowed += usize::from(part != whole);
            }
        }
        assert!(
            narrowed > 0,
            "no shape shows fewer fields than another decodes"
        );

        let gitea = dialects.get("gitea").expect("gitea");
        let org = gitea
            .routes
            .iter()
            .filter_map(|r| r.response.as_deref())
            .find(|s| s.name == "org")
            .expect("gitea org shape");
        let id: FieldSet = Field::of("id").into_iter().collect();
        let good = org.decode_list_slice(br#"[{"id":1,"website":"w"}]"#, Some(id));
        assert_eq!(
            good.expect("decodes"),
            vec![Object::from_iter([("id", Value::from(1))])]
        );
        for bad in [
            &b"[{\"id\":1,\"website\":\"\x01\"}]"[..],
            br#"[{"id":1,"website":"\q"}]"#,
            br#"[{"id":1,"website":[1,]}]"#,
        ] {
            assert!(org.decode_list_slice(bad, Some(id)).is_err());
        }
    }

    /// The read plan (decoding straight from bytes) and the JSON-tree decoder agree on every
    /// answer shape of the bundled mappings, for an answer the shape itself wrote.
    #[test]
    fn read_plans_decode_like_the_tree() {
        let checked = each_answer(|dialect, shape, _, _, bytes| {
            let tree: Value = serde_json::from_slice(bytes).expect("valid JSON");
            let planned = shape.decode_slice(bytes).expect("decodes");
            if shape.fields.iter().any(|r| r.read.is_some() && r.write) {
                assert!(!planned.is_empty(), "{dialect} {}", shape.name);
            }
            assert_eq!(
                planned,
                shape.decode_response(&tree),
                "{dialect} {}",
                shape.name
            );
            let list = [b"[".as_slice(), bytes, b",", bytes, b"]"].concat();
            let items = shape
                .decode_list_slice(&list, None)
                .expect("decodes a list");
            assert_eq!(items, vec![planned.clone(), planned]);
            // Objects of one list whose keys come in another order, with one missing, with
            // escapes, or after an unknown key: each decodes as it would on its own.
            let Value::Object(map) = &tree else { return };
            let member = |k: &str, v: &Value| format!("{}:{v}", Value::from(k));
            let members: Vec<String> = map.iter().map(|(k, v)| member(k, v)).collect();
            let escaped: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    let key: String = k.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
                    format!("\"{key}\":{v}")
                })
                .collect();
            let mut reversed = members.clone();
            reversed.reverse();
            let unknown_first = [
                vec![r#""zz":{"a":[1,{"b":null}]}"#.to_string()],
                members.clone(),
            ];
            let variants = [
                members.clone(),
                reversed,
                members.iter().skip(1).cloned().collect(),
                escaped,
                unknown_first.concat(),
                members.clone(),
            ];
            let objects: Vec<String> = variants
                .iter()
                .map(|m| format!("{{{}}}", m.join(",")))
                .collect();
            let list = format!("[{}]", objects.join(","));
            let items = shape
                .decode_list_slice(list.as_bytes(), None)
                .expect("decodes a list");
            assert_eq!(items.len(), objects.len());
            for (item, text) in items.iter().zip(&objects) {
                let tree: Value = serde_json::from_str(text).expect("valid JSON");
                assert_eq!(
                    *item,
                    shape.decode_response(&tree),
                    "{dialect} {}: {text}",
                    shape.name
                );
            }
        });
        assert!(checked > 20, "only {checked} shapes checked");
    }

    /// Every answer shape of the bundled mappings writes each canonical value where its rule
    /// says, and fills each URL template with the object's values (escaped) or the API root.
    #[test]
    fn answers_carry_each_written_value() {
        let (mut values, mut urls) = (0, 0);
        each_answer(|dialect, shape, obj, params, bytes| {
            let answer: Value = serde_json::from_slice(bytes).expect("valid JSON");
            // (A merged rule writes its nested shape's fields at this level, checked there.)
            for rule in shape.fields.iter().filter(|r| r.write && !r.merge) {
                let at = rule
                    .path
                    .iter()
                    .try_fold(&answer, |v, k| v.get(k))
                    .unwrap_or_else(|| panic!("{dialect} {}: no {}", shape.name, rule.key));
                match &rule.source {
                    Source::Canonical(field)
                        if rule.values.is_none()
                            && rule.nested.is_none()
                            && rule.as_type == AsType::Plain =>
                    {
                        assert_eq!(Some(at), obj.get(field), "{dialect} {}", rule.key);
                        values += 1;
                    }
                    Source::Url(t) => {
                        let url = at.as_str().expect("a URL is a string");
                        assert!(url.starts_with("http://p"), "{} {url}", rule.key);
                        for var in t.vars().filter(|v| !matches!(*v, "api" | "web")) {
                            let expected = match obj.get(var) {
                                Some(Value::String(s)) => encode_segment(s).into_owned(),
                                Some(Value::Object(_)) | None => {
                                    params.get(var).unwrap_or_default().to_string()
                                }
                                Some(v) => v.to_string(),
                            };
                            assert!(url.contains(&expected), "{} {url} lacks {var}", rule.key);
                        }
                        urls += 1;
                    }
                    _ => {}
                }
            }
        });
        assert!(
            values > 50 && urls > 20,
            "only {values} values and {urls} URLs checked"
        );
    }

    /// URLs written straight into an answer (template text and roots that need no escaping)
    /// and URLs escaped on the way (roots with a quote and a backslash in them) carry the same
    /// text, and both answers are valid JSON.
    #[test]
    fn urls_are_the_same_written_straight_or_escaped() {
        let params = Params::default().with("org", "acme").with("user", "alice");
        let plain = EncodeCtx::new("http://p/api", "http://p", &params);
        let quoted = EncodeCtx::new("http://p/a\"pi", "http://p\\", &params);
        assert!(plain.plain_roots && !quoted.plain_roots);
        let mut urls = 0;
        each_answer_shape(|dialect, shape| {
            let obj = sample(shape.entity);
            let (mut straight, mut escaped) = (Vec::new(), Vec::new());
            shape.response(&obj, &plain).write(&mut straight);
            shape.response(&obj, &quoted).write(&mut escaped);
            let straight: Value = serde_json::from_slice(&straight).expect("valid JSON");
            let escaped: Value = serde_json::from_slice(&escaped).expect("valid JSON, escaped");
            for rule in shape.fields.iter().filter(|r| r.write) {
                if !matches!(rule.source, Source::Url(_)) {
                    continue;
                }
                let at = |v: &Value| {
                    let at = rule.path.iter().try_fold(v, |v, k| v.get(k))?;
                    at.as_str().map(str::to_string)
                };
                let (Some(a), Some(b)) = (at(&straight), at(&escaped)) else {
                    continue;
                };
                let b = b
                    .replace("http://p/a\"pi", "http://p/api")
                    .replace("http://p\\", "http://p");
                assert_eq!(a, b, "{dialect} {} {}", shape.name, rule.key);
                urls += 1;
            }
        });
        assert!(urls > 20, "only {urls} URLs compared");
    }

    /// An answer written through the shape's plan is byte for byte the one its members write
    /// one by one, whether the roots need escaping or not, for objects with every field and
    /// with none; every shape without merged members has a plan.
    #[test]
    fn answer_plans_write_what_the_members_write() {
        let params = Params::default()
            .with("org", "a/c me")
            .with("user", "alice");
        let plain = EncodeCtx::new("http://p/api", "http://p", &params);
        let quoted = EncodeCtx::new("http://p/a\"pi", "http://p\\", &params);
        let (mut planned, mut merged) = (0, 0);
        each_answer_shape(|dialect, shape| {
            for obj in [sample(shape.entity), Object::new()] {
                for ctx in [&plain, &quoted] {
                    let view = shape.view(&obj, &params);
                    let Some(plan) = AnswerPlan::build(shape, ctx) else {
                        assert!(
                            shape.fields.iter().any(|r| r.merge),
                            "{} has no plan",
                            shape.name
                        );
                        merged += 1;
                        continue;
                    };
                    let (mut by_plan, mut by_members) = (Vec::new(), vec![b'{']);
                    plan.write(shape, &view, ctx, &mut by_plan);
                    shape.write_members(&shape.out, &view, ctx, &mut by_members, &mut true);
                    by_members.push(b'}');
                    assert_eq!(
                        String::from_utf8_lossy(&by_plan),
                        String::from_utf8_lossy(&by_members),
                        "{dialect} {}",
                        shape.name
                    );
                    serde_json::from_slice::<Value>(&by_plan).expect("valid JSON");
                    planned += 1;
                }
            }
        });
        assert!(
            planned > 40 && merged > 0,
            "{planned} planned, {merged} merged"
        );
        // A plan is kept for the roots it was made for, and not used for others.
        each_answer_shape(|_, shape| {
            if let Some(plan) = shape.answer_plan(&plain) {
                assert!(plan.fits(&plain) && !plan.fits(&quoted));
                assert!(shape.answer_plan(&quoted).is_none());
            }
        });
    }

    /// Whatever an upstream sends, decoding ends in a value or an error, never a crash: deep
    /// nesting, truncation, bytes that are not UTF-8.
    #[test]
    fn hostile_answers_are_errors() {
        let deep_array = "[".repeat(100_000);
        let deep_object = "{\"login\":".repeat(100_000);
        let deep_kept = format!("{{\"login\":{}", "[".repeat(100_000));
        let broken: [&[u8]; 5] = [
            deep_array.as_bytes(),
            deep_object.as_bytes(),
            deep_kept.as_bytes(),
            b"{\"login\": \"acme",
            b"",
        ];
        each_answer_shape(|_, shape| {
            for body in broken {
                assert!(shape.decode_slice(body).is_err(), "{}", shape.name);
                assert!(
                    shape.decode_list_slice(body, None).is_err(),
                    "{}",
                    shape.name
                );
            }
            // Not UTF-8 inside a string: an error where the value is read; where it is
            // skipped, either way, but no crash.
            let _ = shape.decode_slice(b"{\"login\": \"\xff\xfe\", \"x\": \"\xff\"}");
        });
    }

    #[test]
    fn segments_are_percent_encoded_only_where_needed() {
        assert!(matches!(
            encode_segment("acme-corp_1.x~"),
            Cow::Borrowed("acme-corp_1.x~")
        ));
        assert_eq!(encode_segment("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(encode_segment("café"), "caf%C3%A9");
        assert_eq!(encode_segment(""), "");
    }

    #[test]
    fn values_are_written_as_serde_json_writes_them() {
        let values = [
            Value::from(0),
            Value::from(u64::MAX),
            Value::from(i64::MIN),
            Value::from(-7),
            Value::from(1.5),
            Value::from(-2e-7),
            Value::from("a \"b\" \\ é \u{1}"),
            Value::Null,
            Value::Bool(false),
            serde_json::json!({"a": [1, "x", null]}),
        ];
        for v in values {
            let mut out = Vec::new();
            write_value(&mut out, &v);
            let ours: Value = serde_json::from_slice(&out).expect("valid JSON");
            assert_eq!(ours, v, "{}", String::from_utf8_lossy(&out));
        }
    }

    #[test]
    fn legacy_node_id_matches_github() {
        let node_id = |type_name: &str, id: Value| {
            let mut out = b"[".to_vec();
            NodeIdPrefix::new(type_name).write(&mut out, &id);
            String::from_utf8(out).unwrap_or_default()
        };
        assert_eq!(
            node_id("Organization", Value::from(1)),
            "[\"MDEyOk9yZ2FuaXphdGlvbjE=\""
        );
        assert_eq!(
            node_id("User", Value::from(3407303)),
            "[\"MDQ6VXNlcjM0MDczMDM=\""
        );
        // Prefixes that leave none, one or two bytes past whole base64 groups, ids of every
        // kind and length: the same as base64 of the whole text.
        let long = "x".repeat(40);
        for type_name in ["abc", "User", "ab", "Organization", "Team"] {
            for (id, text) in [
                (Value::from(0), "0"),
                (Value::from(18446744073709551615u64), "18446744073709551615"),
                (Value::from(-5), "-5"),
                (Value::from("a1"), "a1"),
                (Value::from(long.as_str()), long.as_str()),
            ] {
                let whole = format!("0{}:{type_name}{text}", type_name.len());
                let expected = format!("[\"{}\"", STANDARD.encode(whole));
                assert_eq!(node_id(type_name, id), expected, "{type_name} {text}");
            }
        }
    }
}
