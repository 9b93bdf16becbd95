//! An upstream's list page scanned instead of decoded: every value is checked, and where each
//! value a rule reads lies is noted, but nothing is built. Each item is an unread canonical
//! object, read from its noted values when its fields are first asked for, or never, where
//! the client's answer is written from the page's text directly (`pair`).

use std::any::Any;
use std::ops::Range;
use std::sync::Arc;

use serde_json::Value;

use super::{KeyMemo, Member, ReadPlan, Scratch, Shape};
use crate::canonical::{Field, FieldSet, Object, UnreadPage};
use crate::mapping::reader::{Malformed, Reader};
use crate::mapping::rebase::Rebase;

/// A list page's text and, for each item and each rule of the shape, where the value the
/// rule reads lies.
#[derive(Debug)]
pub(crate) struct ScannedPage {
    pub(super) text: Box<str>,
    pub(super) shape: Arc<Shape>,
    /// The rules whose fields the reader wants (none listed: all).
    kept: Vec<bool>,
    pub(super) rebase: Arc<Rebase>,
    /// `shape.fields.len()` spans per item.
    spans: Vec<Span>,
}

/// Where one value lies in the page's text: none where both ends are 0 (no value is empty).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Span {
    start: u32,
    /// The end, with the top bit set for a string without escapes.
    end: u32,
}

const PLAIN: u32 = 1 << 31;

impl Span {
    pub(super) fn is_none(self) -> bool {
        self.end == 0
    }

    /// A string whose text between its quotes is the string itself.
    pub(super) fn is_plain_string(self) -> bool {
        self.end & PLAIN != 0
    }

    pub(super) fn range(self) -> Range<usize> {
        self.start as usize..(self.end & !PLAIN) as usize
    }

    /// Checks the value the reader is at and steps over it, noting where it lies.
    fn of(r: &mut Reader<'_>) -> Result<Span, Malformed> {
        r.peek();
        let start = r.place();
        let plain = r.skip_noting_plain()?;
        let end = r.place();
        // Pages are scanned only while every place fits in 31 bits.
        Ok(Span {
            start: start as u32,
            end: end as u32 | if plain { PLAIN } else { 0 },
        })
    }
}

impl ScannedPage {
    /// Item `index`'s spans, one per rule.
    pub(super) fn item(&self, index: usize) -> &[Span] {
        let width = self.shape.fields.len();
        self.spans
            .get(index * width..(index + 1) * width)
            .unwrap_or_default()
    }
}

impl UnreadPage for ScannedPage {
    /// Builds the values the item's rules read, then decodes them as a decoded list does.
    fn read(&self, index: usize) -> Vec<(Field, Value)> {
        let mut scratch = Scratch::default();
        scratch.slots.extend(self.item(index).iter().map(|span| {
            let mut value = Value::Null;
            let text = self.text.get(span.range()).filter(|_| !span.is_none())?;
            Reader::over(text).value_into(&mut value).ok()?;
            Some(value)
        }));
        let mut obj = self.shape.decode_in_slots(&mut scratch, &self.kept);
        self.rebase.object(&mut obj);
        obj.into_entries()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Shape {
    /// An upstream's JSON array of these objects, with its URLs pointed at the proxy by
    /// `rebase`: as unread objects where every planned key is a top-level one (each then read
    /// only when asked for), else decoded. Either way every value is checked here.
    pub fn scan_list(
        self: &Arc<Self>,
        body: &[u8],
        only: Option<FieldSet>,
        rebase: &Arc<Rebase>,
    ) -> Result<Vec<Object>, Malformed> {
        let plan = match &self.reads {
            Some(plan) if self.flat_reads && body.len() < PLAIN as usize => plan,
            _ => {
                let mut items = self.decode_list_slice(body, only)?;
                items.iter_mut().for_each(|item| rebase.object(item));
                return Ok(items);
            }
        };
        let text: Box<str> = Reader::new(body)?.text().into();
        let kept = self.kept(only);
        let width = self.fields.len();
        let mut spans = Vec::new();
        let mut count = 0;
        {
            let mut r = Reader::over(&text);
            if r.peek() != Some(b'[') {
                return Err(r.malformed("expected an array"));
            }
            let mut memo = KeyMemo::new();
            r.array(|r| {
                let (at, start) = (spans.len(), r.place());
                spans.resize(at + width, Span::default());
                plan.scan(r, &mut spans[at..], &kept, &mut memo)?;
                count += 1;
                // Room for as many more items as the first one's size says the rest holds.
                if count == 1 {
                    let size = r.place().saturating_sub(start).max(32);
                    spans.reserve(text.len().saturating_sub(r.place()) / size * width);
                }
                Ok(())
            })?;
            r.end()?;
        }
        let page: Arc<dyn UnreadPage> = Arc::new(ScannedPage {
            text,
            shape: Arc::clone(self),
            kept,
            rebase: Arc::clone(rebase),
            spans,
        });
        Ok((0..count)
            .map(|i| Object::unread(Arc::clone(&page), i))
            .collect())
    }
}

impl ReadPlan {
    /// Whether every planned key is read whole, none of them read inside.
    pub(super) fn is_flat(&self) -> bool {
        self.keys.values().all(|node| node.inner.keys.is_empty())
    }

    /// Notes where the values of the object the reader is at lie, for the rules that read
    /// them (a flat plan's); anything but an object is skipped, and reads as nothing.
    fn scan<'a, 'p>(
        &'p self,
        r: &mut Reader<'a>,
        spans: &mut [Span],
        kept: &[bool],
        memo: &mut KeyMemo<'a, 'p>,
    ) -> Result<(), Malformed> {
        if r.peek() != Some(b'{') {
            return r.skip();
        }
        let member = |r: &mut Reader<'a>, member: Member<'p>| {
            match member {
                Member::Skip => r.skip()?,
                Member::Into(i) => spans[i] = Span::of(r)?,
                Member::Node(node) => {
                    let span = Span::of(r)?;
                    node.rules.iter().for_each(|&i| spans[i] = span);
                }
            }
            Ok(())
        };
        r.object_remembered(memo, |key| self.member(key, kept), member)
    }
}
