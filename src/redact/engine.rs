//! The redaction walk: one validating scan of the body, then one walk that copies every span
//! no rule touches byte for byte and re-emits only what changes.

use super::compile::{ElemAction, Plan, Selector};
use super::edit::{effective, merge};
use super::path::{key_matches, Filter, Step};
use super::scanner::{self, decode, string_value, JsonError, Member};

/// The `meta.security` coding added once to every altered resource (HL7 v3 ObservationValue
/// `REDACTED`).
pub const REDACTED_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

/// The result of redacting a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redacted {
    /// Nothing was selected: send the body exactly as it was.
    Unchanged,
    /// The redacted body.
    Changed {
        /// The new body.
        body: Vec<u8>,
        /// Resources altered (each marked `REDACTED` in `meta.security`).
        altered: usize,
        /// Resources withheld entirely (Bundle entries, contained resources, NDJSON lines...).
        hidden: usize,
    },
    /// The body is one resource the caller may not see at all.
    Hidden,
}

/// Why a body could not be redacted; it must then not be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedactError {
    /// The body is not JSON.
    #[error("the response is not valid JSON")]
    Syntax,
    /// An object repeats a key.
    #[error("the response repeats a JSON key")]
    DuplicateKey,
    /// The body nests deeper than the limit.
    #[error("the response nests too deeply")]
    TooDeep,
    /// The body is larger than the limit.
    #[error("the response is larger than the redaction limit")]
    TooLarge,
    /// JSON that is not a FHIR resource where one must be.
    #[error("the response is not a FHIR resource")]
    NotFhir,
}

impl From<JsonError> for RedactError {
    fn from(e: JsonError) -> Self {
        match e {
            JsonError::Syntax => RedactError::Syntax,
            JsonError::DuplicateKey => RedactError::DuplicateKey,
            JsonError::TooDeep => RedactError::TooDeep,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct St {
    sel: usize,
    pos: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BundleKind {
    Searchset,
    /// batch-response and transaction-response: entries answer requests one to one, so a hidden
    /// resource leaves its entry (and its `response`) in place.
    Response,
    Other,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Plain,
    Root(Root),
    Entry(BundleKind),
    EntryResponse,
    Parameter,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Root {
    Bundle(BundleKind),
    Parameters,
    Other,
}

/// How a member's value is to be treated beyond the selectors.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Special {
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
    pub(super) out: Vec<u8>,
    pub(super) plan: &'a Plan,
    /// Changes to the resource being walked (not counting nested Bundle entries).
    pub(super) changes: usize,
    pub(super) altered: usize,
    pub(super) hidden: usize,
    pub(super) pool: Vec<Vec<Member>>,
}

impl Plan {
    /// Redacts one FHIR JSON resource (a Bundle included).
    pub fn redact(&self, input: &[u8]) -> Result<Redacted, RedactError> {
        let inner = &self.redactor.inner;
        if input.len() > inner.max_body {
            return Err(RedactError::TooLarge);
        }
        scanner::validate(input, inner.max_depth)?;
        let s = scanner::skip_ws(input, 0);
        let e = scanner::skip_value(input, s);
        let mut w = Walker::new(input, self);
        w.out.extend_from_slice(input.get(..s).unwrap_or_default());
        match w.resource(s, e, true)? {
            Out::Hidden => return Ok(Redacted::Hidden),
            Out::Dropped => return Ok(Redacted::Hidden),
            Out::Kept => {}
        }
        w.out.extend_from_slice(input.get(e..).unwrap_or_default());
        Ok(w.finish())
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
                w.out.extend_from_slice(line);
                start = end;
                continue;
            }
            scanner::validate(line, inner.max_depth)?;
            let e = scanner::skip_value(input, s);
            let mark = w.out.len();
            w.out
                .extend_from_slice(input.get(start..s).unwrap_or_default());
            match w.resource(s, e, false)? {
                Out::Hidden | Out::Dropped => w.out.truncate(mark),
                Out::Kept => w
                    .out
                    .extend_from_slice(input.get(e..end).unwrap_or_default()),
            }
            start = end;
        }
        Ok(w.finish())
    }
}

fn selector_step(sel: &Selector, pos: usize) -> Option<&Step> {
    sel.steps.get(pos)
}

impl<'a> Walker<'a> {
    fn new(input: &'a [u8], plan: &'a Plan) -> Self {
        Walker {
            input,
            out: Vec::with_capacity(input.len() + 256),
            plan,
            changes: 0,
            altered: 0,
            hidden: 0,
            pool: Vec::new(),
        }
    }

    fn finish(self) -> Redacted {
        // Unchanged means the walk reproduced the input exactly; anything else is sent as
        // written (and the byte-exactness tests would catch a difference).
        if self.altered == 0 && self.hidden == 0 && self.out == self.input {
            Redacted::Unchanged
        } else {
            Redacted::Changed {
                body: self.out,
                altered: self.altered,
                hidden: self.hidden,
            }
        }
    }

    pub(super) fn bytes(&self, s: usize, e: usize) -> &'a [u8] {
        self.input.get(s..e).unwrap_or_default()
    }

    pub(super) fn copy(&mut self, s: usize, e: usize) {
        let input = self.input;
        self.out
            .extend_from_slice(input.get(s..e).unwrap_or_default());
    }

    fn members_of(&mut self, s: usize, e: usize) -> Vec<Member> {
        let mut v = self.pool.pop().unwrap_or_default();
        v.clear();
        scanner::members(self.input, s, e, &mut v);
        v
    }

    fn recycle(&mut self, v: Vec<Member>) {
        self.pool.push(v);
    }

    fn member_value(&mut self, s: usize, e: usize, key: &[u8]) -> Option<(usize, usize)> {
        let members = self.members_of(s, e);
        let found = members
            .iter()
            .find(|m| decode(self.bytes(m.key.0, m.key.1)) == key)
            .map(|m| m.value);
        self.recycle(members);
        found
    }

    /// Whether the object `[s, e)` satisfies `where(field='value')`.
    fn filter_ok(&mut self, s: usize, e: usize, filter: &Filter) -> bool {
        if self.input.get(s) != Some(&b'{') {
            return false;
        }
        match self.member_value(s, e, filter.field.as_bytes()) {
            Some((vs, ve)) => match string_value(self.input, vs, ve) {
                Some(text) => *text == *filter.value.as_bytes(),
                None => self.bytes(vs, ve) == filter.value.as_bytes(),
            },
            None => false,
        }
    }

    /// Whether `meta` carries a label a visibility rule hides, and whether it already has the
    /// REDACTED coding.
    ///
    /// A `meta` that is not an object, or a `meta.security` that is not an array, is not FHIR:
    /// the label could be neither read nor added.
    fn labels(&mut self, meta: Option<(usize, usize)>) -> Result<(bool, bool), RedactError> {
        let Some((ms, me)) = meta else {
            return Ok((false, false));
        };
        if self.input.get(ms) != Some(&b'{') {
            return Err(RedactError::NotFhir);
        }
        let Some((ss, se)) = self.member_value(ms, me, b"security") else {
            return Ok((false, false));
        };
        if self.input.get(ss) != Some(&b'[') {
            return Err(RedactError::NotFhir);
        }
        let mut codings = Vec::new();
        scanner::items(self.input, ss, se, &mut codings);
        let (mut hide, mut redacted) = (false, false);
        for (cs, ce) in codings {
            if self.input.get(cs) != Some(&b'{') {
                continue;
            }
            let system = self
                .member_value(cs, ce, b"system")
                .and_then(|(a, b)| string_value(self.input, a, b));
            let code = self
                .member_value(cs, ce, b"code")
                .and_then(|(a, b)| string_value(self.input, a, b));
            let Some(code) = code else {
                continue;
            };
            let Some(system) = system else {
                hide |= self
                    .plan
                    .label_rules()
                    .any(|l| l.system.is_none() && l.codes.iter().any(|c| c.as_bytes() == &*code));
                continue;
            };
            redacted |= &*system == REDACTED_SYSTEM.as_bytes() && &*code == b"REDACTED";
            hide |= self.plan.label_rules().any(|l| {
                l.system.as_ref().is_none_or(|s| s.as_bytes() == &*system)
                    && l.codes.iter().any(|c| c.as_bytes() == &*code)
            });
        }
        Ok((hide, redacted))
    }

    /// Walks one resource at `[s, e)`.
    fn resource(&mut self, s: usize, e: usize, top: bool) -> Result<Out, RedactError> {
        if self.input.get(s) != Some(&b'{') {
            return Err(RedactError::NotFhir);
        }
        let members = self.members_of(s, e);
        let mut rt = None;
        let mut meta = None;
        let mut kind = None;
        for m in &members {
            match self.bytes(m.key.0, m.key.1) {
                b"resourceType" => rt = string_value(self.input, m.value.0, m.value.1),
                b"meta" => meta = Some(m.value),
                b"type" => kind = Some(m.value),
                _ => {}
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
                    _ => BundleKind::Other,
                })
            }
            b"Parameters" => Root::Parameters,
            _ => Root::Other,
        };
        let states: Vec<St> = self
            .plan
            .selectors
            .iter()
            .filter(|&&i| {
                self.plan
                    .selector(i)
                    .is_some_and(|sel| sel.root.as_ref().is_none_or(|r| r.as_bytes() == &*rt))
            })
            .map(|&i| St { sel: i, pos: 0 })
            .collect();
        let nested = root != Root::Other
            || members
                .iter()
                .any(|m| self.bytes(m.key.0, m.key.1) == b"contained");
        if states.is_empty() && !nested {
            self.recycle(members);
            self.copy(s, e);
            return Ok(Out::Kept);
        }
        let saved = std::mem::replace(&mut self.changes, 0);
        let start = self.out.len();
        let mut marks = Marks::default();
        let result = self.object_members(s, e, &members, Ctx::Root(root), &states, &mut marks);
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

    /// Walks the object `[s, e)` member by member.
    fn object(&mut self, s: usize, e: usize, ctx: Ctx, states: &[St]) -> Result<Out, RedactError> {
        let members = self.members_of(s, e);
        let mut marks = Marks::default();
        let r = self.object_members(s, e, &members, ctx, states, &mut marks);
        self.recycle(members);
        r
    }

    fn object_members(
        &mut self,
        s: usize,
        e: usize,
        members: &[Member],
        ctx: Ctx,
        states: &[St],
        marks: &mut Marks,
    ) -> Result<Out, RedactError> {
        let start = self.out.len();
        self.out.push(b'{');
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
            match self.member(m, ctx, states)? {
                Out::Kept => {
                    kept += 1;
                    if let Ctx::Root(_) = ctx {
                        match self.bytes(m.key.0, m.key.1) {
                            b"id" => marks.after_id = Some(self.out.len()),
                            b"resourceType" => marks.after_type = Some(self.out.len()),
                            b"meta" => {
                                // The member as written: key, colon, value.
                                let written = self.out.get(mark..).unwrap_or_default();
                                // After the gap (whitespace and a comma) comes the key.
                                let key_start =
                                    written.iter().position(|&b| b == b'"').unwrap_or(0);
                                let colon = scanner::skip_ws(
                                    written,
                                    scanner::skip_string(written, key_start),
                                );
                                let value_start = scanner::skip_ws(written, colon + 1);
                                marks.meta = Some((mark + value_start, self.out.len()));
                            }
                            _ => {}
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

    fn member(&mut self, m: &Member, ctx: Ctx, states: &[St]) -> Result<Out, RedactError> {
        let key_raw = self.bytes(m.key.0, m.key.1);
        let key = decode(key_raw);
        if matches!(ctx, Ctx::Root(_)) && &*key == b"resourceType" {
            self.copy(m.start, m.value.1);
            return Ok(Out::Kept);
        }
        let (base, sibling) = match key.strip_prefix(b"_") {
            Some(b) => (b, true),
            None => (&*key, false),
        };
        let mut full: Option<ElemAction> = None;
        let mut hits: Vec<St> = Vec::new();
        let mut deeper: Vec<St> = Vec::new();
        for &st in states {
            let Some(sel) = self.plan.selector(st.sel) else {
                continue;
            };
            let mut pos = st.pos;
            if let Some(Step::Descendants) = selector_step(sel, pos) {
                deeper.push(st);
                pos += 1;
            }
            if let Some(Step::Element {
                name,
                choice,
                filter,
            }) = selector_step(sel, pos)
            {
                if key_matches(base, name, *choice) {
                    let last = pos + 1 == sel.steps.len();
                    if last && filter.is_none() {
                        full = Some(merge(full, effective(sel, &sel.action)));
                    } else {
                        hits.push(St { sel: st.sel, pos });
                    }
                }
            }
        }
        if let Some(action) = full {
            return self.whole_member(m, base, sibling, &action);
        }
        let special = match (ctx, base) {
            _ if sibling => Special::None,
            (Ctx::Root(_), b"contained") => Special::Resource,
            (Ctx::Root(Root::Bundle(k)), b"entry") => Special::Object(Ctx::Entry(k)),
            (Ctx::Root(Root::Parameters), b"parameter") => Special::Object(Ctx::Parameter),
            (Ctx::Entry(_), b"resource") => Special::Resource,
            (Ctx::Entry(_), b"response") => Special::Object(Ctx::EntryResponse),
            (Ctx::EntryResponse, b"outcome") => Special::Resource,
            (Ctx::Parameter, b"resource") => Special::Resource,
            (Ctx::Parameter, b"part") => Special::Object(Ctx::Parameter),
            _ => Special::None,
        };
        if hits.is_empty() && deeper.is_empty() && special == Special::None {
            self.copy(m.start, m.value.1);
            return Ok(Out::Kept);
        }
        let (vs, ve) = m.value;
        self.copy(m.start, vs);
        if self.input.get(vs) != Some(&b'[') {
            return self.item(vs, ve, &hits, &deeper, special);
        }
        let mut items = Vec::new();
        scanner::items(self.input, vs, ve, &mut items);
        let start = self.out.len();
        self.out.push(b'[');
        let mut kept = 0usize;
        let mut hidden = 0usize;
        let mut prev_end = vs + 1;
        let first_start = items.first().map_or(ve, |i| i.0);
        for &(is, ie) in &items {
            let mark = self.out.len();
            if kept == 0 {
                self.copy(vs + 1, first_start);
            } else {
                self.copy(prev_end, is);
            }
            prev_end = ie;
            match self.item(is, ie, &hits, &deeper, special)? {
                Out::Kept => kept += 1,
                Out::Dropped => self.out.truncate(mark),
                Out::Hidden => {
                    hidden += 1;
                    self.changes += 1;
                    self.out.truncate(mark);
                }
            }
        }
        let note = hidden > 0
            && ctx == Ctx::Root(Root::Bundle(BundleKind::Searchset))
            && self.plan.redactor.inner.policy.suppressed_note;
        if note {
            if kept > 0 {
                self.out.push(b',');
            }
            self.out.extend_from_slice(
                format!(
                    r#"{{"resource":{{"resourceType":"OperationOutcome","issue":[{{"severity":"information","code":"suppressed","details":{{"text":"{hidden} resource(s) withheld by the data visibility policy"}}}}]}},"search":{{"mode":"outcome"}}}}"#
                )
                .as_bytes(),
            );
            kept += 1;
        }
        if kept == 0 && !items.is_empty() {
            // FHIR JSON has no empty arrays: the element goes.
            self.out.truncate(start);
            return Ok(Out::Dropped);
        }
        self.copy(if items.is_empty() { vs + 1 } else { prev_end }, ve);
        Ok(Out::Kept)
    }

    /// One value (an array item or a single value) under the selector states that matched its
    /// member.
    fn item(
        &mut self,
        s: usize,
        e: usize,
        hits: &[St],
        deeper: &[St],
        special: Special,
    ) -> Result<Out, RedactError> {
        let mut action: Option<ElemAction> = None;
        let mut child: Vec<St> = deeper.to_vec();
        for &st in hits {
            let Some(sel) = self.plan.selector(st.sel) else {
                continue;
            };
            let Some(Step::Element { filter, .. }) = selector_step(sel, st.pos) else {
                continue;
            };
            let pass = match filter {
                Some(f) => self.filter_ok(s, e, f),
                None => true,
            };
            if !pass {
                continue;
            }
            if st.pos + 1 == sel.steps.len() {
                action = Some(merge(action, effective(sel, &sel.action)));
            } else {
                child.push(St {
                    sel: st.sel,
                    pos: st.pos + 1,
                });
            }
        }
        if let Some(action) = action {
            return Ok(self.act_on_item(s, e, &action));
        }
        if special == Special::Resource {
            if let Out::Hidden = self.resource_nested(s, e)? {
                return Ok(Out::Hidden);
            }
            return Ok(Out::Kept);
        }
        let is_object = self.input.get(s) == Some(&b'{');
        let ctx = match special {
            Special::Object(ctx) => Some(ctx),
            _ => None,
        };
        if is_object && (!child.is_empty() || ctx.is_some()) {
            return match self.object(s, e, ctx.unwrap_or(Ctx::Plain), &child)? {
                Out::Dropped => {
                    self.changes += 1;
                    Ok(Out::Dropped)
                }
                other => Ok(other),
            };
        }
        self.copy(s, e);
        Ok(Out::Kept)
    }

    fn resource_nested(&mut self, s: usize, e: usize) -> Result<Out, RedactError> {
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
