//! The redaction walk: one validating scan of the body, then one walk that copies every span
//! no rule touches byte for byte and re-emits only what changes.

use super::compile::{Plan, Selector};
use super::count::Fate;
use super::member::{KeyFilter, RootKeys};
use super::outcome::{RedactError, Redacted};
use super::output::Output;
use super::path::Step;
use super::scanner::{self, string_value, Index, Member};
use super::strings::same;

#[derive(Clone, Copy, Debug)]
pub(super) struct St {
    pub(super) sel: usize,
    pub(super) pos: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum BundleKind {
    Searchset,
    /// batch-response and transaction-response: entries answer requests one to one, so a hidden
    /// resource leaves its entry (and its `response`) in place.
    Response,
    /// history: its `total` counts like a searchset's.
    History,
    Other,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Ctx {
    Plain,
    Root(Root),
    Entry(BundleKind),
    EntryResponse,
    Parameter,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Root {
    Bundle(BundleKind),
    Parameters,
    Other,
}

/// How a member's value is to be treated beyond the selectors.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Special {
    None,
    Resource,
    Object(Ctx),
}

pub(super) enum Out {
    Kept,
    Dropped,
    Hidden,
}

pub(super) struct Walker<'a> {
    pub(super) input: &'a [u8],
    pub(super) out: Output<'a>,
    pub(super) plan: &'a Plan,
    /// Changes to the resource being walked (not counting nested Bundle entries).
    pub(super) changes: usize,
    pub(super) altered: usize,
    pub(super) hidden: usize,
    pub(super) pool: Vec<Vec<Member>>,
    /// Where the containers of the text being walked end.
    pub(super) index: Index,
    /// Reused scratch vectors, so walking a member allocates nothing in the steady state.
    pub(super) st_pool: Vec<Vec<St>>,
    pub(super) item_pool: Vec<Vec<(usize, usize)>>,
    /// What became of each Bundle entry walked, by where it starts (for the count).
    pub(super) entry_fates: Vec<(usize, Fate)>,
}

impl Plan {
    /// Redacts one FHIR JSON resource (a Bundle included).
    pub fn redact(&self, input: &[u8]) -> Result<Redacted, RedactError> {
        self.redact_counted(input, false)
            .map(|(redacted, _)| redacted)
    }

    /// [`redact`](Self::redact), and with `count` the resources of the body written as the
    /// query budget counts them, where the walk is sure of it ([`Walker::root_count`]).
    pub(crate) fn redact_counted(
        &self,
        input: &[u8],
        count: bool,
    ) -> Result<(Redacted, Option<u64>), RedactError> {
        let inner = &self.redactor.inner;
        if input.len() > inner.max_body {
            return Err(RedactError::TooLarge);
        }
        let mut w = Walker::new(input, self);
        scanner::validate_indexed(input, inner.max_depth, 0, &mut w.index)?;
        let s = scanner::skip_ws(input, 0);
        let e = scanner::skip_value_in(input, Some(&w.index), s);
        w.out.copy(0, s);
        match w.resource(s, e, true)? {
            Out::Hidden => return Ok((Redacted::Hidden, None)),
            Out::Dropped => return Ok((Redacted::Hidden, None)),
            Out::Kept => {}
        }
        w.out.copy(e, input.len());
        let counted = if count { w.root_count(s, e) } else { None };
        Ok((w.finish(), counted))
    }

    /// Redacts newline-delimited FHIR JSON (bulk data export files): one resource per line;
    /// hidden resources lose their line.
    pub fn redact_ndjson(&self, input: &[u8]) -> Result<Redacted, RedactError> {
        let inner = &self.redactor.inner;
        if input.len() > inner.max_body {
            return Err(RedactError::TooLarge);
        }
        let mut w = Walker::new(input, self);
        let mut start = 0;
        while start < input.len() {
            let end = input
                .get(start..)
                .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
                .map_or(input.len(), |p| start + p + 1);
            let line = input.get(start..end).unwrap_or_default();
            let s = start + scanner::skip_ws(line, 0);
            if s == end {
                w.out.copy(start, end);
                start = end;
                continue;
            }
            w.index.clear();
            scanner::validate_indexed(line, inner.max_depth, start, &mut w.index)?;
            let e = scanner::skip_value_in(input, Some(&w.index), s);
            let mark = w.out.len();
            w.out.copy(start, s);
            match w.resource(s, e, false)? {
                Out::Hidden | Out::Dropped => w.out.truncate(mark),
                Out::Kept => w.out.copy(e, end),
            }
            start = end;
        }
        Ok(w.finish())
    }
}

/// The walk's scratch vectors, kept per thread between bodies (a small body then allocates
/// nothing but its output).
#[derive(Default)]
struct Pools {
    members: Vec<Vec<Member>>,
    states: Vec<Vec<St>>,
    items: Vec<Vec<(usize, usize)>>,
}

/// Pools holding more vectors than this are not kept.
const KEEP_POOLED: usize = 256;

thread_local! {
    static POOLS: std::cell::Cell<Option<Pools>> = const { std::cell::Cell::new(None) };
}

impl Drop for Walker<'_> {
    fn drop(&mut self) {
        std::mem::take(&mut self.index).give_back();
        let pools = Pools {
            members: std::mem::take(&mut self.pool),
            states: std::mem::take(&mut self.st_pool),
            items: std::mem::take(&mut self.item_pool),
        };
        let big = |n: usize| n > KEEP_POOLED;
        let large = pools.members.iter().any(|v| big(v.capacity()))
            || pools.states.iter().any(|v| big(v.capacity()))
            || pools.items.iter().any(|v| big(v.capacity()));
        if !large && !big(pools.members.len() + pools.states.len() + pools.items.len()) {
            POOLS.with(|p| p.set(Some(pools)));
        }
    }
}

pub(super) fn selector_step(sel: &Selector, pos: usize) -> Option<&Step> {
    sel.steps.get(pos)
}

impl<'a> Walker<'a> {
    fn new(input: &'a [u8], plan: &'a Plan) -> Self {
        let pools = POOLS.with(std::cell::Cell::take).unwrap_or_default();
        Walker {
            input,
            out: Output::new(input),
            plan,
            changes: 0,
            altered: 0,
            hidden: 0,
            pool: pools.members,
            index: Index::take(),
            st_pool: pools.states,
            item_pool: pools.items,
            entry_fates: Vec::new(),
        }
    }

    fn finish(mut self) -> Redacted {
        // Unchanged means the walk reproduced the input exactly; anything else is sent as
        // written (and the byte-exactness tests would catch a difference).
        let (altered, hidden) = (self.altered, self.hidden);
        let out = std::mem::replace(&mut self.out, Output::new(self.input));
        match out.into_changed() {
            None if altered == 0 && hidden == 0 => Redacted::Unchanged,
            body => Redacted::Changed {
                body: body.unwrap_or_else(|| self.input.to_vec().into()),
                altered,
                hidden,
            },
        }
    }

    pub(super) fn bytes(&self, s: usize, e: usize) -> &'a [u8] {
        self.input.get(s..e).unwrap_or_default()
    }

    #[inline]
    pub(super) fn copy(&mut self, s: usize, e: usize) {
        self.out.copy(s, e);
    }

    pub(super) fn members_of(&mut self, s: usize, e: usize) -> Vec<Member> {
        let mut v = self.pool.pop().unwrap_or_default();
        v.clear();
        scanner::members_in(self.input, Some(&self.index), s, e, &mut v);
        v
    }

    pub(super) fn recycle(&mut self, v: Vec<Member>) {
        self.pool.push(v);
    }

    /// Walks one resource at `[s, e)`.
    pub(super) fn resource(&mut self, s: usize, e: usize, top: bool) -> Result<Out, RedactError> {
        if self.input.get(s) != Some(&b'{') {
            return Err(RedactError::NotFhir);
        }
        let members = self.members_of(s, e);
        let mut rt = None;
        let mut meta = None;
        let mut kind = None;
        let mut contained = false;
        // Keys compared decoded when the text has an escaped key: `"\u0063ontained"` is the
        // member `contained`, and its resources are walked.
        let escaped = self.index.keys_escaped();
        for m in &members {
            let raw = self.bytes(m.key.0, m.key.1);
            let key = if escaped {
                scanner::decode(raw)
            } else {
                std::borrow::Cow::Borrowed(raw)
            };
            let key = &*key;
            if same(key, b"resourceType") {
                rt = string_value(self.input, m.value.0, m.value.1);
            } else if same(key, b"meta") {
                meta = Some(m.value);
            } else if same(key, b"type") {
                kind = Some(m.value);
            } else if same(key, b"contained") {
                contained = true;
            }
        }
        let Some(rt) = rt else {
            self.recycle(members);
            // Plain JSON (not FHIR) at the top is passed only if no resource hides inside.
            if top && !contains(self.bytes(s, e), b"\"resourceType\"") {
                self.copy(s, e);
                return Ok(Out::Kept);
            }
            return Err(RedactError::NotFhir);
        };
        let (hide_label, already) = match self.labels(meta) {
            Ok(found) => found,
            Err(e) => {
                self.recycle(members);
                return Err(e);
            }
        };
        if hide_label || self.plan.hides_type(&rt) {
            self.recycle(members);
            self.hidden += 1;
            return Ok(Out::Hidden);
        }
        let root = match &*rt {
            b"Bundle" => {
                let k = kind.and_then(|(a, b)| string_value(self.input, a, b));
                Root::Bundle(match k.as_deref() {
                    Some(b"searchset") => BundleKind::Searchset,
                    Some(b"batch-response" | b"transaction-response") => BundleKind::Response,
                    Some(b"history") => BundleKind::History,
                    _ => BundleKind::Other,
                })
            }
            b"Parameters" => Root::Parameters,
            _ => Root::Other,
        };
        let plan = self.plan;
        let (selectors, keys) = plan.selectors_for(&rt);
        let mut states = self.sts();
        states.extend(selectors.iter().map(|&i| St { sel: i, pos: 0 }));
        let nested = root != Root::Other || contained;
        if states.is_empty() && !nested {
            self.recycle(members);
            self.copy(s, e);
            return Ok(Out::Kept);
        }
        let saved = std::mem::replace(&mut self.changes, 0);
        let start = self.out.len();
        let mut marks = Marks::default();
        let ctx = Ctx::Root(root);
        let result = self.object_members(s, e, &members, (ctx, Some(keys)), &states, &mut marks);
        self.st_pool.push(states);
        self.recycle(members);
        let result = result?;
        let changed = self.changes > 0;
        self.changes = saved;
        match result {
            Out::Kept => {}
            // A resource emptied by its rules is still a resource: keep its type at least.
            Out::Dropped | Out::Hidden => {
                self.out.truncate(start);
                self.hidden += 1;
                return Ok(Out::Hidden);
            }
        }
        if changed {
            self.altered += 1;
            if !already {
                self.mark_redacted(&marks);
            }
        }
        Ok(Out::Kept)
    }

    /// Walks the object `[s, e)` member by member; `members` are its members when read
    /// already.
    pub(super) fn object(
        &mut self,
        s: usize,
        e: usize,
        ctx: Ctx,
        states: &[St],
        members: Option<&[Member]>,
    ) -> Result<Out, RedactError> {
        if let Some(members) = members {
            return self.object_members(s, e, members, (ctx, None), states, &mut Marks::default());
        }
        let members = self.members_of(s, e);
        let mut marks = Marks::default();
        let r = self.object_members(s, e, &members, (ctx, None), states, &mut marks);
        self.recycle(members);
        r
    }

    fn object_members(
        &mut self,
        s: usize,
        e: usize,
        members: &[Member],
        (ctx, root): (Ctx, Option<&RootKeys>),
        states: &[St],
        marks: &mut Marks,
    ) -> Result<Out, RedactError> {
        let start = self.out.len();
        // The input's `{`, copied: it joins the copies that follow.
        self.copy(s, s + 1);
        let filter = match root {
            Some(keys) => keys.filter,
            None => KeyFilter::new(self.plan, states),
        };
        let mut kept = 0usize;
        let mut prev_end = s + 1;
        let first_start = members.first().map_or(e, |m| m.start);
        for m in members {
            let mark = self.out.len();
            if kept == 0 {
                self.copy(s + 1, first_start);
            } else {
                self.copy(prev_end, m.start);
            }
            prev_end = m.value.1;
            match self.member(m, ctx, states, &filter, root)? {
                Out::Kept => {
                    kept += 1;
                    if let Ctx::Root(_) = ctx {
                        let raw = self.bytes(m.key.0, m.key.1);
                        // Decoded when the text has an escaped key: a `"\u006deta"` member is
                        // the resource's `meta`, and the REDACTED label goes into it rather
                        // than into a second `meta` (a duplicate key).
                        let key = if self.index.keys_escaped() {
                            scanner::decode(raw)
                        } else {
                            std::borrow::Cow::Borrowed(raw)
                        };
                        let key = &*key;
                        if same(key, b"id") {
                            marks.after_id = Some(self.out.len());
                        } else if same(key, b"resourceType") {
                            marks.after_type = Some(self.out.len());
                        } else if same(key, b"meta") {
                            // The member as written: key, colon, value.
                            let written = self.out.written_from(mark);
                            // After the gap (whitespace and a comma) comes the key.
                            let key_start = written.iter().position(|&b| b == b'"').unwrap_or(0);
                            let colon =
                                scanner::skip_ws(written, scanner::skip_string(written, key_start));
                            let value_start = scanner::skip_ws(written, colon + 1);
                            marks.meta = Some((mark + value_start, self.out.len()));
                        }
                    }
                }
                Out::Dropped => self.out.truncate(mark),
                Out::Hidden => match ctx {
                    Ctx::Entry(k) if k != BundleKind::Response => {
                        self.out.truncate(start);
                        return Ok(Out::Hidden);
                    }
                    Ctx::Parameter => {
                        self.out.truncate(start);
                        return Ok(Out::Hidden);
                    }
                    _ => {
                        self.changes += 1;
                        self.out.truncate(mark);
                    }
                },
            }
        }
        if kept == 0 && !members.is_empty() {
            self.out.truncate(start);
            return Ok(Out::Dropped);
        }
        self.copy(if members.is_empty() { s + 1 } else { prev_end }, e);
        Ok(Out::Kept)
    }

    pub(super) fn resource_nested(&mut self, s: usize, e: usize) -> Result<Out, RedactError> {
        let before = self.out.len();
        let r = self.resource(s, e, false)?;
        if let Out::Hidden = r {
            self.out.truncate(before);
        }
        Ok(r)
    }
}

#[derive(Default)]
pub(super) struct Marks {
    pub(super) meta: Option<(usize, usize)>,
    pub(super) after_id: Option<usize>,
    pub(super) after_type: Option<usize>,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
