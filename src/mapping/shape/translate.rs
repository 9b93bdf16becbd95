//! A list page translated from an upstream's answer straight into a client's: the upstream
//! shape's read plan composed with the client shape's answer, so that no canonical object is
//! built, moved or dropped per item. It keeps every rule of both (conversions, fallbacks,
//! defaults, what the client's dialect can show) and writes what the canonical path writes,
//! byte for byte (held to it by `translated_pages_are_the_canonical_answers`).

use serde_json::Value;

use super::{
    EncodeCtx, KeyMemo, Malformed, ReadPlan, Reader, Scratch, Shape, Source, ValueMap, View,
};
use crate::canonical::op::{Items, WrittenItems};
use crate::canonical::{Field, FieldSet};

/// The answers of one upstream shape (`from`) read into one client shape's (`into`).
pub struct Translation<'s> {
    from: &'s Shape,
    plan: &'s ReadPlan,
    into: &'s Shape,
    /// Which of `from`'s rules decode: those of the fields `into` shows, and the caller's.
    kept: Vec<bool>,
    /// For each field `into` looks up, its place among the fields `from` decodes.
    feeds: Vec<Option<usize>>,
    /// `into`'s strict rules' value maps, with their field's place among `from`'s: an item
    /// whose value is in none of them is not shown.
    strict: Vec<(&'s ValueMap, usize)>,
    /// The place of `id` among the fields `from` decodes.
    id: Option<usize>,
}

impl Shape {
    /// This (upstream) shape's list answers read into `client`'s, decoding `also` too (the
    /// fields the caller needs of each item); None where this shape reads its answers whole
    /// (a JSONPath read, a merged shape).
    pub fn translation<'s>(&'s self, client: &'s Shape, also: FieldSet) -> Option<Translation<'s>> {
        let plan = self.reads.as_ref()?;
        let place = |field: Field| self.decoded.binary_search(&field).ok();
        let strict = (client.fields.iter().filter(|r| r.strict))
            .filter_map(|rule| match (&rule.source, &rule.values) {
                (Source::Canonical(f), Some(map)) => Some((&**map, Field::of(f).and_then(place)?)),
                _ => None,
            })
            .collect();
        Some(Translation {
            from: self,
            plan,
            into: client,
            kept: self.kept(Some(client.shown.union(also))),
            feeds: client.looked_up.iter().map(|&f| place(f)).collect(),
            strict,
            id: Field::of("id").and_then(place),
        })
    }
}

impl Translation<'_> {
    /// Writes the items of an upstream's JSON array (`body`) into `items`, as the client's
    /// answer shows them; `rewrite` changes each decoded value as the canonical path does
    /// (the upstream's URLs pointed at the proxy).
    pub fn write_page(
        &self,
        body: &[u8],
        ctx: &EncodeCtx<'_>,
        mut rewrite: impl FnMut(&mut Value),
        items: &mut WrittenItems,
    ) -> Result<(), Malformed> {
        let mut r = Reader::new(body)?;
        if r.peek() != Some(b'[') {
            return Err(r.malformed("expected an array"));
        }
        let answer = self.into.answer_plan(ctx);
        let mut scratch = Scratch::default();
        let mut memo = KeyMemo::new();
        // A view's room, kept empty from one item to the next.
        let mut room: View<'static> = View::default();
        r.array(|r| {
            let start = (r.place(), items.text().len());
            // The last item's strings, emptied, take this one's.
            let Scratch { slots, spare, .. } = &mut scratch;
            for slot in slots.iter_mut() {
                if let Some(Value::String(mut text)) = slot.take() {
                    text.clear();
                    spare.push(text);
                }
            }
            slots.resize_with(self.from.fields.len(), || None);
            self.plan
                .read(r, slots, &self.kept, Some(&mut memo), spare)?;
            self.from.choose(&mut scratch, &self.kept);
            let Scratch { slots, from, .. } = &mut scratch;
            for &i in from.iter().flatten() {
                if let Some(value) = &mut slots[i] {
                    rewrite(value);
                }
            }
            let value = |at: usize| from[at].and_then(|i| slots[i].as_ref());
            let id = self.id.and_then(value).and_then(Value::as_u64);
            // As [`Shape::expresses`] has it.
            let shown = (self.strict.iter()).all(|&(map, at)| {
                value(at).is_none_or(|v| v.is_null() || map.to_dialect(v).is_some())
            });
            if shown {
                let mut view = std::mem::take(&mut room).recycle();
                view.values
                    .extend(self.feeds.iter().map(|at| at.and_then(value)));
                self.into.fill_segments(ctx.params, &mut view);
                let out = items.text();
                out.push(b',');
                self.into.write_object(answer, &view, ctx, out);
                room = view.recycle();
            }
            items.push(shown, id);
            // Room for as many more as the first one's size says the rest holds, at once.
            if items.len() == 1 {
                let read = r.place().saturating_sub(start.0).max(32);
                let written = items.text().len() - start.1;
                let more = body.len().saturating_sub(r.place()) / read;
                items.reserve(more, more * written);
            }
            Ok(())
        })?;
        r.end()
    }
}
