//! A client's list answer written straight from a scanned upstream page (`scan`), compiled for
//! one pair of shapes (the upstream's item, the client's answer) on the client's answer plan:
//! the values the answer shows are copied from the page's text where they are plain (strings
//! without escapes, integers, booleans, null). An item with any other value is read into a
//! canonical object and written the general way instead; both ways write the same bytes.

use std::borrow::Cow;

use super::answer::{AnswerPlan, Step};
use super::scan::{ScannedPage, Span};
use super::{encode_segment, write_value, AsType, Compute, EncodeCtx, FieldRule, NodeIdPrefix};
use super::{ReadPath, Shape, Source, UrlPart, View};
use crate::canonical::{Field, FieldType};

#[derive(Debug)]
pub(super) struct PairPlan {
    /// For each canonical field the answer shows, the upstream rules that decode it, in
    /// order: the first whose value converts gives the field.
    fields: Vec<Vec<UpstreamRule>>,
    /// The fields URLs use as path segments (places in `fields`), each with its name (a
    /// missing value falls back to the request's parameter of that name).
    segments: Vec<(usize, Field)>,
    steps: Vec<PairStep>,
    /// The answer's fixed text per item, to reserve room once.
    fixed: usize,
}

/// An upstream rule that decodes a field, and what converting its value involves.
#[derive(Debug)]
struct UpstreamRule {
    rule: usize,
    /// An empty string reads as unset (the dialect writes "" for none).
    empty_unset: bool,
    ty: Option<FieldType>,
}

#[derive(Debug)]
enum PairStep {
    /// A run of the answer plan's text.
    Text(usize, usize),
    /// A field's value; `missing` is written where it has none (the rule's default, or null).
    Value { field: usize, missing: Box<[u8]> },
    /// A GitHub node id from the field of the id.
    NodeId { field: usize, prefix: NodeIdPrefix },
    /// A URL's path segment (a place in `segments`).
    Segment(usize),
    /// A URL's placeholder that is a request parameter.
    Param(Box<str>),
    /// A rule written as the general way writes it, needing no canonical value.
    Rule(usize),
}

/// One field's value for one item, as the page holds it.
#[derive(Clone, Copy)]
enum Plain<'t> {
    Missing,
    Null,
    /// A string's text (no escapes).
    Str(&'t str),
    /// An integer's or a boolean's JSON text, written as it stands.
    Literal(&'t str),
}

impl PairPlan {
    /// The plan for answers of `client` (through `answer`, its answer plan) to items of
    /// `upstream`, or None where some shown value needs more than copying: a value map, a
    /// coercion or nesting on either side, a fallback field, a URL that needs escaping.
    pub(super) fn build(client: &Shape, answer: &AnswerPlan, upstream: &Shape) -> Option<PairPlan> {
        if !upstream.flat_reads {
            return None;
        }
        let mut plan = PairPlan {
            fields: Vec::new(),
            segments: Vec::new(),
            steps: Vec::new(),
            fixed: answer.text.len(),
        };
        let mut shown: Vec<Field> = Vec::new();
        let mut need = |plan: &mut PairPlan, field: Field| -> Option<usize> {
            if let Some(at) = shown.iter().position(|&f| f == field) {
                return Some(at);
            }
            plan.fields.push(sources(upstream, field)?);
            shown.push(field);
            Some(shown.len() - 1)
        };
        for step in answer.steps.iter() {
            let step = match step {
                Step::Text(from, to) => PairStep::Text(*from, *to),
                Step::Value(i) => {
                    let rule = &client.fields[*i];
                    match &rule.source {
                        Source::Canonical(name) => {
                            if rule.or.is_some() || !copies(rule) {
                                return None;
                            }
                            let mut missing = Vec::new();
                            match &rule.default {
                                Some(v) => write_value(&mut missing, v),
                                None => missing.extend_from_slice(b"null"),
                            }
                            PairStep::Value {
                                field: need(&mut plan, Field::of(name)?)?,
                                missing: missing.into(),
                            }
                        }
                        Source::Param(_) => PairStep::Rule(*i),
                        Source::Compute(Compute::GithubNodeId(prefix)) => PairStep::NodeId {
                            field: need(&mut plan, Field::of("id")?)?,
                            prefix: prefix.clone(),
                        },
                        _ => return None,
                    }
                }
                Step::Placeholder(UrlPart::Segment(at)) => {
                    let name = *client.looked_up.get(*client.segments.get(*at)?)?;
                    let field = need(&mut plan, name)?;
                    let at = match plan.segments.iter().position(|&(f, _)| f == field) {
                        Some(at) => at,
                        None => {
                            plan.segments.push((field, name));
                            plan.segments.len() - 1
                        }
                    };
                    PairStep::Segment(at)
                }
                Step::Placeholder(UrlPart::Param(name)) => PairStep::Param(name.clone()),
                Step::Placeholder(_) => return None,
            };
            plan.steps.push(step);
        }
        (plan.fields.len() <= MOST_FIELDS && plan.segments.len() <= MOST_FIELDS).then_some(plan)
    }

    /// Writes item `index` of `page` as `client` answers it; false (with `out` part-written)
    /// where a value it shows is not plain, and the item must be written the general way.
    pub(super) fn write(
        &self,
        client: &Shape,
        answer: &AnswerPlan,
        page: &ScannedPage,
        index: usize,
        ctx: &EncodeCtx<'_>,
        out: &mut Vec<u8>,
    ) -> bool {
        let spans = page.item(index);
        let mut found = [Plain::Missing; MOST_FIELDS];
        for (value, sources) in found.iter_mut().zip(&self.fields) {
            match plain_value(sources, spans, &page.text) {
                Some(v) => *value = v,
                None => return false,
            }
        }
        let rebase = &page.rebase;
        // Each segment is percent-encoded once, for all the URLs that use it.
        let mut segments: [Cow<'_, str>; MOST_FIELDS] = Default::default();
        for (segment, &(field, name)) in segments.iter_mut().zip(&self.segments) {
            *segment = match found[field] {
                Plain::Str(s) => match rebase.text(s) {
                    Cow::Borrowed(s) => encode_segment(s),
                    Cow::Owned(url) => Cow::Owned(encode_segment(&url).into_owned()),
                },
                Plain::Literal(t) => encode_segment(t),
                Plain::Null | Plain::Missing => ctx
                    .params
                    .get(name.name())
                    .map_or(Cow::Borrowed(""), encode_segment),
            };
        }
        out.reserve(self.fixed + 64 * self.fields.len());
        for step in &self.steps {
            match step {
                PairStep::Text(from, to) => out.extend_from_slice(&answer.text[*from..*to]),
                PairStep::Value { field, missing } => match found[*field] {
                    Plain::Str(s) => {
                        out.push(b'"');
                        match rebase.rest(s) {
                            Some(rest) => {
                                out.extend_from_slice(rebase.public_url().as_bytes());
                                out.extend_from_slice(rest.as_bytes());
                            }
                            None => out.extend_from_slice(s.as_bytes()),
                        }
                        out.push(b'"');
                    }
                    Plain::Literal(t) => out.extend_from_slice(t.as_bytes()),
                    Plain::Null | Plain::Missing => out.extend_from_slice(missing),
                },
                PairStep::NodeId { field, prefix } => match found[*field] {
                    Plain::Str(s) => prefix.write_id(out, &rebase.text(s)),
                    Plain::Literal(t) => prefix.write_id(out, t),
                    Plain::Null | Plain::Missing => out.extend_from_slice(b"null"),
                },
                PairStep::Segment(at) => out.extend_from_slice(segments[*at].as_bytes()),
                PairStep::Param(name) => {
                    if let Some(value) = ctx.params.get(name) {
                        out.extend_from_slice(encode_segment(value).as_bytes());
                    }
                }
                PairStep::Rule(i) => client.write_rule_value(*i, &View::default(), ctx, out),
            }
        }
        true
    }
}

/// The most fields an answer written from a page may show.
const MOST_FIELDS: usize = 16;

/// Whether a rule takes its value as it is, both ways: no value map, base64 image, nested shape
/// or merge.
fn copies(rule: &FieldRule) -> bool {
    rule.values.is_none() && rule.nested.is_none() && rule.as_type == AsType::Plain && !rule.merge
}

/// The upstream rules that decode `field`, in order, or None where one of them does more
/// than copy its value (a value map, a base64 image, a nested shape, a read inside a value).
fn sources(upstream: &Shape, field: Field) -> Option<Vec<UpstreamRule>> {
    let mut found = Vec::new();
    for (i, rule) in upstream.fields.iter().enumerate() {
        let Some(slot) = upstream.decodes_into[i] else {
            continue;
        };
        if upstream.decoded.get(slot) != Some(&field) {
            continue;
        }
        let top_level = matches!(&rule.read, Some(ReadPath::Simple(path)) if path.len() == 1);
        if !top_level || !copies(rule) {
            return None;
        }
        found.push(UpstreamRule {
            rule: i,
            empty_unset: rule.default.as_ref().and_then(|v| v.as_str()) == Some(""),
            ty: rule.canonical_type,
        });
    }
    Some(found)
}

/// A field's value for one item: the first of its rules' values that converts, as decoding
/// takes it; None where that value is not plain (an escaped string, a fraction, an object, a
/// value the field's type would coerce).
fn plain_value<'t>(sources: &[UpstreamRule], spans: &[Span], text: &'t str) -> Option<Plain<'t>> {
    for source in sources {
        let span = *spans.get(source.rule)?;
        if span.is_none() {
            continue;
        }
        let raw = text.get(span.range())?;
        let fits = |ty: FieldType| source.ty.is_none_or(|t| t == ty);
        return match raw.as_bytes().first()? {
            b'"' if span.is_plain_string() && fits(FieldType::Str) => {
                let s = raw.get(1..raw.len() - 1)?;
                if s.is_empty() && source.empty_unset {
                    continue;
                }
                Some(Plain::Str(s))
            }
            b'n' => Some(Plain::Null),
            b't' | b'f' if fits(FieldType::Bool) => Some(Plain::Literal(raw)),
            b'-' | b'0'..=b'9' if fits(FieldType::Int) && canonical_integer(raw) => {
                Some(Plain::Literal(raw))
            }
            _ => None,
        };
    }
    Some(Plain::Missing)
}

/// Whether `text` is an integer as it is written back (no fraction, exponent, leading zero or
/// `-0`, within 64 bits).
fn canonical_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let bytes = digits.as_bytes();
    let well_formed = !bytes.is_empty()
        && bytes.iter().all(u8::is_ascii_digit)
        && (bytes.len() == 1 || bytes[0] != b'0')
        && text != "-0";
    well_formed && (text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;

    use super::*;
    use crate::canonical::{Entity, Object, Params};
    use crate::mapping::rebase::Rebase;
    use crate::mapping::shape::PairChoice;

    /// A field's value by its name and type (None: left out).
    type Pick<'a> = dyn Fn(&str, FieldType) -> Option<Value> + 'a;

    /// A canonical object of `entity` whose values `value` picks by field type and name.
    fn object(entity: Entity, value: impl Fn(&str, FieldType) -> Option<Value>) -> Object {
        entity
            .fields()
            .iter()
            .filter_map(|(name, ty)| Some((*name, value(name, *ty)?)))
            .collect()
    }

    /// Upstream items of every kind a page may hold: as each shape writes plain, escaped,
    /// empty, null, missing and odd values, and items no shape writes.
    fn items(upstream: &Shape, params: &Params) -> Vec<Vec<u8>> {
        let ctx = EncodeCtx::new("http://up/api/v1", "http://up", params);
        let plain = |name: &str, ty| match ty {
            FieldType::Int => Some(Value::from(7)),
            FieldType::Bool => Some(Value::Bool(false)),
            FieldType::Str if name.ends_with("url") => {
                Some(Value::from(format!("http://up/{name}/1")))
            }
            FieldType::Str => Some(Value::from(format!("v-{name}"))),
            FieldType::Object(_) => None,
        };
        let variants: [&Pick<'_>; 7] = [
            &plain,
            &|name, ty| match ty {
                FieldType::Str => Some(Value::from(format!("q\"{name}\" é"))),
                _ => plain(name, ty),
            },
            &|_, ty| matches!(ty, FieldType::Str).then(|| Value::from("")),
            &|_, _| Some(Value::Null),
            &|_, _| None,
            &|name, ty| match ty {
                FieldType::Str => Some(Value::from(format!("é/\u{7f}~{name} http://up"))),
                FieldType::Int => Some(Value::from(u64::MAX - 3)),
                _ => plain(name, ty),
            },
            &|name, ty| match ty {
                FieldType::Str if name == "login" => Some(Value::from("http://up")),
                FieldType::Str => Some(Value::from("http://upper.example/x")),
                FieldType::Int => Some(Value::from(-12)),
                _ => plain(name, ty),
            },
        ];
        let mut items: Vec<Vec<u8>> = variants
            .iter()
            .map(|value| {
                let mut item = Vec::new();
                upstream
                    .response(&object(upstream.entity, value), &ctx)
                    .write(&mut item);
                item
            })
            .collect();
        // Values no shape writes: a fraction, digits in a string, a leading zero's neighbour,
        // objects and arrays where strings are, whitespace, keys twice, items not objects.
        let plain_item = items[0].clone();
        let text = String::from_utf8(plain_item).expect("UTF-8");
        for (from, to) in [
            (":7", ":7.0"),
            (":7", ":\"7\""),
            (":7", ":1e2"),
            (":7", ": -0 "),
        ] {
            items.push(text.replacen(from, to, 1).into_bytes());
        }
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&text) {
            let changed = |pick: fn(&Value) -> bool, change: fn(Value) -> Value| {
                let mut map = map.clone();
                if let Some(v) = map.values_mut().find(|v| pick(v)) {
                    *v = change(v.take());
                }
                serde_json::to_vec(&map).expect("serializes")
            };
            items.push(changed(Value::is_string, |v| Value::Array(vec![v])));
            items.push(changed(Value::is_string, |v| serde_json::json!({ "v": v })));
            items.push(changed(Value::is_boolean, |_| Value::from("true")));
        }
        items.push(text.replace(',', " ,\n\t").replace(':', " : ").into_bytes());
        items.push(text.replacen('{', "{\"id\":\"x\",", 1).into_bytes());
        if let Some(end) = text.rfind('}') {
            items.push([&text[..end], ",\"id\":99}"].concat().into_bytes());
        }
        items.push(b"5".to_vec());
        items.push(b"null".to_vec());
        items.push(b"{}".to_vec());
        items
    }

    /// For every pair of bundled answer shapes of one entity, a scanned page's answer is byte
    /// for byte the answer written from its decoded objects; items the pair plan takes are
    /// written from the page's text, and the ones it does not, the general way.
    #[test]
    fn answers_written_from_a_page_are_the_decoded_answers() {
        // The upstream's items are written by shapes of their own (a shape's answer plan is
        // made for the first roots it writes with).
        let load = || crate::mapping::Dialects::load(None).expect("bundled mappings");
        let shapes_of = |dialects: &crate::mapping::Dialects| -> Vec<Arc<Shape>> {
            (dialects.iter())
                .flat_map(|d| d.routes.iter().filter_map(|r| r.response.clone()))
                .collect()
        };
        let (dialects, writers) = (load(), load());
        let (shapes, writers) = (shapes_of(&dialects), shapes_of(&writers));
        let params = Params::default().with("org", "acme").with("user", "alice");
        let ctx = EncodeCtx::new("http://p/fb/api", "http://p/fb", &params);
        let rebase = Arc::new(Rebase::new("http://up", "http://p/fb"));
        let (mut pairs, mut copied, mut general) = (0, 0, 0);
        for (upstream, writer) in shapes.iter().zip(&writers) {
            let items = items(writer, &params);
            let mut page = b"[".to_vec();
            page.extend_from_slice(&items.join(&b","[..]));
            page.push(b']');
            for client in shapes.iter().filter(|s| s.entity == upstream.entity) {
                let only = Some(client.fields_shown());
                let scanned = upstream.scan_list(&page, only, &rebase).expect("scans");
                let mut decoded = upstream.decode_list_slice(&page, only).expect("decodes");
                decoded.iter_mut().for_each(|o| rebase.object(o));
                let what = format!("{} for {}", upstream.name, client.name);
                assert_eq!(scanned.len(), decoded.len(), "{what}");

                let (mut written, mut expected) = (Vec::new(), Vec::new());
                client.write_list(&scanned, &ctx, &mut written);
                client.write_list(&decoded, &ctx, &mut expected);
                assert_eq!(
                    String::from_utf8_lossy(&written),
                    String::from_utf8_lossy(&expected),
                    "{what}"
                );
                // Read, the scanned items are the decoded ones.
                assert_eq!(scanned, decoded, "{what}");

                let Some(answer) = client.answer_plan(&ctx) else {
                    continue;
                };
                let mut choice = PairChoice::default();
                let took: Vec<bool> = (scanned.iter())
                    .map(|item| {
                        client.write_scanned(item, answer, &ctx, &mut choice, &mut Vec::new())
                    })
                    .collect();
                if choice.plan.is_some() {
                    pairs += 1;
                    assert!(took[0], "{what}: a plain item is written from the page");
                }
                copied += took.iter().filter(|&&t| t).count();
                general += took.iter().filter(|&&t| !t).count();
            }
        }
        assert!(pairs >= 10, "only {pairs} pairs of shapes compiled");
        assert!(copied > 0 && general > 0, "{copied} copied, {general} not");

        // The pair the benchmark measures (a Gitea upstream's organizations, a GitHub client)
        // compiles.
        let shape = |dialect: &str, name: &str| {
            let d = dialects.get(dialect).expect("dialect");
            d.routes
                .iter()
                .filter_map(|r| r.response.clone())
                .find(|s| s.name == name)
                .expect("shape")
        };
        let (gitea, github) = (shape("gitea", "org"), shape("github", "org_simple"));
        let answer = github.answer_plan(&ctx).expect("answer plan");
        assert!(PairPlan::build(&github, answer, &gitea).is_some());
    }
}
