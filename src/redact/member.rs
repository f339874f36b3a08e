//! Walking one member of an object under the selector states that reach it, and each value
//! (array item) it holds: where rules match, edits; where they may match deeper, recursion;
//! elsewhere, a byte-exact copy.

use super::compile::ElemAction;
use super::edit::{effective, merge};
use super::engine::{selector_step, BundleKind, Ctx, Out, Root, Special, St, Walker};
use super::outcome::RedactError;
use super::path::{key_matches, Step};
use super::scanner::{self, decode, Member};

impl Walker<'_> {
    pub(super) fn sts(&mut self) -> Vec<St> {
        let mut v = self.st_pool.pop().unwrap_or_default();
        v.clear();
        v
    }

    pub(super) fn member(
        &mut self,
        m: &Member,
        ctx: Ctx,
        states: &[St],
    ) -> Result<Out, RedactError> {
        let (mut hits, mut deeper) = (self.sts(), self.sts());
        let mut items = self.item_pool.pop().unwrap_or_default();
        items.clear();
        let r = self.member_with(m, ctx, states, &mut hits, &mut deeper, &mut items);
        self.st_pool.push(hits);
        self.st_pool.push(deeper);
        self.item_pool.push(items);
        r
    }

    fn member_with(
        &mut self,
        m: &Member,
        ctx: Ctx,
        states: &[St],
        hits: &mut Vec<St>,
        deeper: &mut Vec<St>,
        items: &mut Vec<(usize, usize)>,
    ) -> Result<Out, RedactError> {
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
        if base == b"total"
            && matches!(
                ctx,
                Ctx::Root(Root::Bundle(BundleKind::Searchset | BundleKind::History))
            )
            && self.plan.can_hide()
        {
            // Bundle.total (0..1 in R4) counts the hidden matches of every page, this one
            // and those not yet fetched: no adjusted number could hide how many there are.
            self.changes += 1;
            return Ok(Out::Dropped);
        }
        let mut full: Option<ElemAction> = None;
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
            return self.item(vs, ve, hits, deeper, special);
        }
        scanner::items_in(self.input, Some(&self.index), vs, ve, items);
        let start = self.out.len();
        self.out.push(b'[');
        let mut kept = 0usize;
        let mut hidden = 0usize;
        let mut prev_end = vs + 1;
        let first_start = items.first().map_or(ve, |i| i.0);
        for &(is, ie) in items.iter() {
            let mark = self.out.len();
            if kept == 0 {
                self.copy(vs + 1, first_start);
            } else {
                self.copy(prev_end, is);
            }
            prev_end = ie;
            match self.item(is, ie, hits, deeper, special)? {
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
        let mut child = self.sts();
        child.extend_from_slice(deeper);
        let r = self.item_with(s, e, hits, &mut child, special);
        self.st_pool.push(child);
        r
    }

    fn item_with(
        &mut self,
        s: usize,
        e: usize,
        hits: &[St],
        child: &mut Vec<St>,
        special: Special,
    ) -> Result<Out, RedactError> {
        let mut action: Option<ElemAction> = None;
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
            return match self.object(s, e, ctx.unwrap_or(Ctx::Plain), child)? {
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
}
