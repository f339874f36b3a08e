//! Walking one member of an object under the selector states that reach it, and each value
//! (array item) it holds: where rules match, edits; where they may match deeper, recursion;
//! elsewhere, a byte-exact copy.

use super::compile::{ElemAction, Plan, Selector};
use super::count::Fate;
use super::edit::{effective, merge};
use super::engine::{selector_step, BundleKind, Ctx, Out, Root, Special, St, Walker};
use super::outcome::RedactError;
use super::path::{key_matches, Step};
use super::scanner::{self, decode, Member};
use super::strings::same;

impl Walker<'_> {
    pub(super) fn sts(&mut self) -> Vec<St> {
        let mut v = self.st_pool.pop().unwrap_or_default();
        v.clear();
        v
    }

    /// Walks one member under `states`; `filter` is theirs ([`KeyFilter::new`]); `root` is
    /// their table when they are a resource's root states ([`RootKeys`]).
    pub(super) fn member(
        &mut self,
        m: &Member,
        ctx: Ctx,
        states: &[St],
        filter: &KeyFilter,
        root: Option<&RootKeys>,
    ) -> Result<Out, RedactError> {
        let key_raw = self.bytes(m.key.0, m.key.1);
        // A plain slice, not a `Cow` looked into at each use: decoded only when the text has
        // an escaped key.
        let decoded;
        let key: &[u8] = if self.index.keys_escaped() {
            decoded = decode(key_raw);
            &decoded
        } else {
            key_raw
        };
        if matches!(ctx, Ctx::Root(_)) && same(key, b"resourceType") {
            self.copy(m.start, m.value.1);
            return Ok(Out::Kept);
        }
        let (base, sibling) = match key.strip_prefix(b"_") {
            Some(b) => (b, true),
            None => (key, false),
        };
        if same(base, b"total")
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
        let special = special(ctx, base, sibling);
        // Most members no selector reaches: copied without the scratch vectors.
        if special == Special::None && !filter.may_match(base) {
            self.copy(m.start, m.value.1);
            return Ok(Out::Kept);
        }
        if let Some(keys) = root.and_then(|r| r.keys.as_deref()) {
            // One lookup gives what the loop over the states below would: the keys are
            // disjoint, so the one entry matching holds every state that matches.
            let entry = keys.iter().find(|k| key_matches(base, &k.name, k.choice));
            if let Some(action) = entry.and_then(|k| k.full.as_ref()) {
                return self.whole_member(m, sibling, action);
            }
            let hits = entry.map_or(&[][..], |k| k.hits.as_slice());
            return self.values(m, ctx, special, hits, &[]);
        }
        let (mut hits, mut deeper) = (self.sts(), self.sts());
        let r = self.member_with(
            m,
            (base, sibling, special),
            ctx,
            states,
            &mut hits,
            &mut deeper,
        );
        self.st_pool.push(hits);
        self.st_pool.push(deeper);
        r
    }

    fn member_with(
        &mut self,
        m: &Member,
        (base, sibling, special): (&[u8], bool, Special),
        ctx: Ctx,
        states: &[St],
        hits: &mut Vec<St>,
        deeper: &mut Vec<St>,
    ) -> Result<Out, RedactError> {
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
            return self.whole_member(m, sibling, &action);
        }
        self.values(m, ctx, special, hits, deeper)
    }

    /// The member's value (or each item of its array) under the states that matched its key
    /// (`hits`) and those carried down (`deeper`).
    fn values(
        &mut self,
        m: &Member,
        ctx: Ctx,
        special: Special,
        hits: &[St],
        deeper: &[St],
    ) -> Result<Out, RedactError> {
        if hits.is_empty() && deeper.is_empty() && special == Special::None {
            self.copy(m.start, m.value.1);
            return Ok(Out::Kept);
        }
        let (vs, ve) = m.value;
        if self.input.get(vs) != Some(&b'[') {
            self.copy(m.start, vs);
            return self.item(vs, ve, hits, deeper, special, None);
        }
        // The key and the input's `[`, copied: they join the copies that follow.
        let start = self.out.len() + (vs - m.start);
        self.copy(m.start, vs + 1);
        let input = self.input;
        let mut kept = 0usize;
        let mut hidden = 0usize;
        let mut any = false;
        let mut prev_end = vs + 1;
        let first_start = scanner::skip_ws(input, vs + 1);
        let mut is = first_start;
        while is < ve && input.get(is).is_some_and(|&b| b != b']') {
            // An object's members are read once, here, for the filters and the walk below
            // (a resource reads its own).
            let mut members = None;
            let ie = if special != Special::Resource && input.get(is) == Some(&b'{') {
                let mut v = self.pool.pop().unwrap_or_default();
                v.clear();
                let end = scanner::members_in(input, Some(&self.index), is, ve, &mut v);
                members = Some(v);
                end
            } else {
                scanner::skip_value_in(input, Some(&self.index), is)
            };
            if ie <= is {
                if let Some(v) = members {
                    self.recycle(v);
                }
                break;
            }
            any = true;
            let mark = self.out.len();
            if kept == 0 {
                self.copy(vs + 1, first_start);
            } else {
                self.copy(prev_end, is);
            }
            prev_end = ie;
            let r = self.item(is, ie, hits, deeper, special, members.as_deref());
            if let Some(v) = members {
                self.recycle(v);
            }
            let out = r?;
            if matches!(special, Special::Object(Ctx::Entry(_))) {
                self.entry_fates.push((is, Fate::of(&out)));
            }
            match out {
                Out::Kept => kept += 1,
                Out::Dropped => self.out.truncate(mark),
                Out::Hidden => {
                    hidden += 1;
                    self.changes += 1;
                    self.out.truncate(mark);
                }
            }
            is = scanner::skip_ws(input, ie);
            if input.get(is) == Some(&b',') {
                is = scanner::skip_ws(input, is + 1);
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
        if kept == 0 && any {
            // FHIR JSON has no empty arrays: the element goes.
            self.out.truncate(start);
            return Ok(Out::Dropped);
        }
        self.copy(if any { prev_end } else { vs + 1 }, ve);
        Ok(Out::Kept)
    }

    /// One value (an array item or a single value) under the selector states that matched its
    /// member; `members` are its members if it is an object whose members were read already.
    fn item(
        &mut self,
        s: usize,
        e: usize,
        hits: &[St],
        deeper: &[St],
        special: Special,
        members: Option<&[Member]>,
    ) -> Result<Out, RedactError> {
        if hits.is_empty() && deeper.is_empty() {
            // No state to carry down: no scratch vector either.
            return self.item_with(s, e, hits, &mut Vec::new(), special, members);
        }
        let mut child = self.sts();
        child.extend_from_slice(deeper);
        let r = self.item_with(s, e, hits, &mut child, special, members);
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
        members: Option<&[Member]>,
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
                Some(f) => self.filter_ok(s, e, f, members),
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
            return match self.object(s, e, ctx.unwrap_or(Ctx::Plain), child, members)? {
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

/// How a member's value is treated beyond the selectors, by where it is.
#[inline]
fn special(ctx: Ctx, base: &[u8], sibling: bool) -> Special {
    if sibling {
        return Special::None;
    }
    match ctx {
        Ctx::Plain => Special::None,
        Ctx::Root(_) if same(base, b"contained") => Special::Resource,
        Ctx::Root(Root::Bundle(k)) if same(base, b"entry") => Special::Object(Ctx::Entry(k)),
        Ctx::Root(Root::Parameters) if same(base, b"parameter") => Special::Object(Ctx::Parameter),
        Ctx::Entry(_) if same(base, b"resource") => Special::Resource,
        Ctx::Entry(_) if same(base, b"response") => Special::Object(Ctx::EntryResponse),
        Ctx::EntryResponse if same(base, b"outcome") => Special::Resource,
        Ctx::Parameter if same(base, b"resource") => Special::Resource,
        Ctx::Parameter if same(base, b"part") => Special::Object(Ctx::Parameter),
        _ => Special::None,
    }
}

/// What the keys the selector states of one object can match look like: their first bytes
/// and lengths, a bit each (64 of them, so some keys pass that no state matches). A key that
/// fails is matched by none, and its member is copied without the per-member work.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct KeyFilter {
    /// A state at `descendants()`: every member is walked.
    all: bool,
    firsts: u64,
    lens: u64,
}

#[inline]
fn bit(x: usize) -> u64 {
    1u64 << (x & 63)
}

#[inline]
fn first(name: &[u8]) -> usize {
    usize::from(name.first().copied().unwrap_or(0))
}

impl KeyFilter {
    pub(super) fn new(plan: &Plan, states: &[St]) -> Self {
        let mut f = KeyFilter::default();
        for st in states {
            if let Some(sel) = plan.selector(st.sel) {
                f.add(selector_step(sel, st.pos));
            }
        }
        f
    }

    fn add(&mut self, step: Option<&Step>) {
        match step {
            Some(Step::Descendants) => self.all = true,
            Some(Step::Element { name, choice, .. }) => {
                self.firsts |= bit(first(name.as_bytes()));
                // A choice (`value[x]`) matches longer keys: any length.
                self.lens |= if *choice { u64::MAX } else { bit(name.len()) };
            }
            None => {}
        }
    }

    /// Whether some state may match `base` (the key without `_`); `false` only when none does
    /// ([`key_matches`]: a match has the name's first byte, and its length unless a choice).
    #[inline]
    pub(super) fn may_match(&self, base: &[u8]) -> bool {
        self.all || (self.firsts & bit(first(base)) != 0 && self.lens & bit(base.len()) != 0)
    }
}

/// The root states of a resource type, tabled by key once, with the plan: a member of the
/// resource finds the states its key matches in one lookup, where the walk would otherwise go
/// through every state's selector and step for each member (issue #5).
#[derive(Debug, Default)]
pub(crate) struct RootKeys {
    /// What [`KeyFilter::new`] finds for these states.
    pub(super) filter: KeyFilter,
    /// An entry per element name; `None` when a state is at `descendants()` or one key could
    /// match two entries (`value[x]` and `valueQuantity`): the states are then walked one by
    /// one, as for any object.
    keys: Option<Vec<RootKey>>,
}

#[derive(Debug)]
struct RootKey {
    name: String,
    choice: bool,
    /// The merged action of the states selecting the whole member, in policy order.
    full: Option<ElemAction>,
    /// The states going on into the value (a filter or more steps), in policy order.
    hits: Vec<St>,
}

impl RootKeys {
    /// The table of the states of `selectors` at `states`, each at its first step.
    pub(crate) fn new(selectors: &[Selector], states: &[usize]) -> Self {
        let mut filter = KeyFilter::default();
        let mut keys: Vec<RootKey> = Vec::new();
        let mut tabled = true;
        for &i in states {
            let Some(sel) = selectors.get(i) else {
                continue;
            };
            let step = sel.steps.first();
            filter.add(step);
            let Some(Step::Element {
                name,
                choice,
                filter: where_filter,
            }) = step
            else {
                tabled &= step.is_none();
                continue;
            };
            let at = keys
                .iter()
                .position(|k| k.name == *name && k.choice == *choice)
                .unwrap_or_else(|| {
                    keys.push(RootKey {
                        name: name.clone(),
                        choice: *choice,
                        full: None,
                        hits: Vec::new(),
                    });
                    keys.len() - 1
                });
            let Some(key) = keys.get_mut(at) else {
                continue;
            };
            if sel.steps.len() == 1 && where_filter.is_none() {
                key.full = Some(merge(key.full.take(), effective(sel, &sel.action)));
            } else {
                key.hits.push(St { sel: i, pos: 0 });
            }
        }
        // Two entries one key can match (a choice and a longer name it covers): conservative,
        // `value` and `value[x]` count too though no key matches both.
        let overlap = keys.iter().enumerate().any(|(a, x)| {
            keys.iter().skip(a + 1).any(|y| {
                key_matches(y.name.as_bytes(), &x.name, x.choice)
                    || key_matches(x.name.as_bytes(), &y.name, y.choice)
            })
        });
        RootKeys {
            filter,
            keys: (tabled && !overlap).then_some(keys),
        }
    }
}
