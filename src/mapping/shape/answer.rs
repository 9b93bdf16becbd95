//! A shape's answer compiled for one pair of API and web roots: the text between an object's
//! values (keys, punctuation, constants, URLs' fixed parts with the roots in them) joined into
//! runs, so that writing an object is an append per run and per value.

use super::{render_part, write_value, Compute, EncodeCtx, Out, Shape, Source, UrlPart, View};

#[derive(Debug)]
pub(super) struct AnswerPlan {
    /// The roots the plan was made for: its text holds them.
    api: Box<str>,
    web: Box<str>,
    pub(super) text: Box<[u8]>,
    pub(super) steps: Box<[Step]>,
}

#[derive(Debug)]
pub(super) enum Step {
    /// A run of `text`, from and to.
    Text(usize, usize),
    /// A rule's value, as written after its key ([`Shape::write_rule_value`]).
    Value(usize),
    /// A URL's placeholder (a canonical field's segment, or a request parameter).
    Placeholder(UrlPart),
}

impl AnswerPlan {
    /// None where a rule merges a nested shape's members into the object: how many members
    /// it adds, and so where commas go, is known only object by object.
    pub(super) fn build(shape: &Shape, ctx: &EncodeCtx<'_>) -> Option<AnswerPlan> {
        if shape.fields.iter().any(|rule| rule.merge) {
            return None;
        }
        let mut plan = Builder::default();
        plan.object(shape, &shape.out, ctx);
        plan.flush();
        Some(AnswerPlan {
            api: ctx.api.into(),
            web: ctx.web.into(),
            text: plan.text.into(),
            steps: plan.steps.into(),
        })
    }

    /// Whether the plan was made for the roots `ctx` points at.
    pub(super) fn fits(&self, ctx: &EncodeCtx<'_>) -> bool {
        *self.api == *ctx.api && *self.web == *ctx.web
    }

    /// Appends one object's answer.
    pub(super) fn write(
        &self,
        shape: &Shape,
        view: &View<'_>,
        ctx: &EncodeCtx<'_>,
        out: &mut Vec<u8>,
    ) {
        for step in &self.steps {
            match step {
                Step::Text(from, to) => out.extend_from_slice(&self.text[*from..*to]),
                Step::Value(i) => shape.write_rule_value(*i, view, ctx, out),
                Step::Placeholder(part) => {
                    render_part(
                        &mut |s| out.extend_from_slice(s.as_bytes()),
                        part,
                        view,
                        ctx,
                    );
                }
            }
        }
    }
}

#[derive(Default)]
struct Builder {
    text: Vec<u8>,
    steps: Vec<Step>,
    /// Where the text not yet in a step starts.
    run: usize,
}

impl Builder {
    fn text(&mut self, bytes: &[u8]) {
        self.text.extend_from_slice(bytes);
    }

    fn step(&mut self, step: Step) {
        self.flush();
        self.steps.push(step);
    }

    fn flush(&mut self) {
        if self.text.len() > self.run {
            self.steps.push(Step::Text(self.run, self.text.len()));
            self.run = self.text.len();
        }
    }

    /// An object of entries: without merged shapes, every entry is one member.
    fn object(&mut self, shape: &Shape, entries: &[Out], ctx: &EncodeCtx<'_>) {
        self.text(b"{");
        for (n, entry) in entries.iter().enumerate() {
            if n > 0 {
                self.text(b",");
            }
            match entry {
                Out::Group(_, key, inner) => {
                    self.text(key);
                    self.object(shape, inner, ctx);
                }
                Out::Rule(i) => {
                    self.text(&shape.json_keys[*i]);
                    self.value(shape, *i, ctx);
                }
            }
        }
        self.text(b"}");
    }

    /// A rule's value: as text where it is the same for every object, else a step.
    fn value(&mut self, shape: &Shape, i: usize, ctx: &EncodeCtx<'_>) {
        match &shape.fields[i].source {
            Source::Url(_) if shape.plain_url(i, ctx) => {
                self.text(b"\"");
                for part in &shape.lookups[i].url {
                    match part {
                        UrlPart::Text(text) => self.text(text.as_bytes()),
                        UrlPart::Api => self.text(ctx.api.as_bytes()),
                        UrlPart::Web => self.text(ctx.web.as_bytes()),
                        placeholder => self.step(Step::Placeholder(placeholder.clone())),
                    }
                }
                self.text(b"\"");
            }
            Source::Const(v) => write_value(&mut self.text, v),
            Source::Compute(Compute::Null) => self.text(b"null"),
            _ => self.step(Step::Value(i)),
        }
    }
}
