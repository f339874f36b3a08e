//! The resources a redacted body holds, counted by the rule of the query budget (`limit`): in
//! a `Bundle`, every `entry` with a `resource` except `search.mode = outcome`; an
//! `OperationOutcome` 0; any other resource 1.
//!
//! The walk has the container index and knows what became of each entry of the top-level
//! Bundle, so the count costs a look at each entry's few members instead of the budget layer's
//! scan of every byte again. It answers only where it is sure to give the budget's own count
//! of the body sent; anything else (a Bundle of responses, where a hidden resource leaves its
//! entry; a rule on the Bundle itself; an entry or `search` of an unexpected shape; an entry
//! the walk did not report) is `None`, and the budget counts the body itself.

use super::engine::{Out, Walker};
use super::scanner::{self, string_value, Member};
use super::strings::same;

/// What became of one entry of a Bundle, by where it starts in the input.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    Kept,
    Gone,
}

impl Fate {
    pub(super) fn of(out: &Out) -> Fate {
        match out {
            Out::Kept => Fate::Kept,
            Out::Dropped | Out::Hidden => Fate::Gone,
        }
    }
}

impl Walker<'_> {
    /// The count of the body written, once the top-level value `[s, e)` was walked and kept.
    pub(super) fn root_count(&mut self, s: usize, e: usize) -> Option<u64> {
        let input = self.input;
        if input.get(s) != Some(&b'{') {
            return None;
        }
        let members = self.members_of(s, e);
        let count = self.count_members(&members);
        self.recycle(members);
        count
    }

    fn count_members(&mut self, members: &[Member]) -> Option<u64> {
        let input = self.input;
        let rt = self.find(members, b"resourceType")?;
        let rt = string_value(input, rt.0, rt.1)?;
        match &*rt {
            b"Bundle" => {}
            b"OperationOutcome" => return Some(0),
            _ => return Some(1),
        }
        let kind = self
            .find(members, b"type")
            .and_then(|(a, b)| string_value(input, a, b));
        if matches!(
            kind.as_deref(),
            Some(b"batch-response" | b"transaction-response")
        ) {
            return None;
        }
        if !self.plan.selectors_for(b"Bundle").0.is_empty() {
            return None;
        }
        let Some((vs, ve)) = self.find(members, b"entry") else {
            return Some(0);
        };
        if input.get(vs) != Some(&b'[') {
            return None;
        }
        // Entries of nested Bundles are reported before the entry holding them.
        self.entry_fates.sort_unstable_by_key(|&(at, _)| at);
        let mut items = self.item_pool.pop().unwrap_or_default();
        items.clear();
        scanner::items_in(input, Some(&self.index), vs, ve, &mut items);
        let mut total = 0u64;
        let mut sure = true;
        for &(is, ie) in &items {
            let counted = match self.entry_fate(is) {
                Some(Fate::Kept) => self.entry_counts(is, ie),
                Some(Fate::Gone) => Some(false),
                None => None,
            };
            match counted {
                Some(c) => total += u64::from(c),
                None => {
                    sure = false;
                    break;
                }
            }
        }
        self.item_pool.push(items);
        sure.then_some(total)
    }

    /// What the walk reported for the entry starting at `start`.
    fn entry_fate(&self, start: usize) -> Option<Fate> {
        let fates = &self.entry_fates;
        fates
            .binary_search_by_key(&start, |&(at, _)| at)
            .ok()
            .and_then(|i| fates.get(i))
            .map(|&(_, fate)| fate)
    }

    /// Whether the entry object `[s, e)` counts: it has a `resource` that is not `null`, and
    /// no `search.mode` of `outcome`. `None` for shapes the budget's reading would refuse or
    /// read otherwise (an entry or `search` that is not an object, a `mode` not a string).
    fn entry_counts(&mut self, s: usize, e: usize) -> Option<bool> {
        let input = self.input;
        if input.get(s) != Some(&b'{') {
            return None;
        }
        let members = self.members_of(s, e);
        let resource = self.find(&members, b"resource");
        let search = self.find(&members, b"search");
        self.recycle(members);
        let has_resource = resource.is_some_and(|(a, _)| input.get(a) != Some(&b'n'));
        let outcome = match search {
            None => false,
            Some((a, _)) if input.get(a) == Some(&b'n') => false,
            Some((a, b)) if input.get(a) == Some(&b'{') => {
                let search_members = self.members_of(a, b);
                let mode = self.find(&search_members, b"mode");
                self.recycle(search_members);
                match mode {
                    None => false,
                    Some((m, _)) if input.get(m) == Some(&b'n') => false,
                    Some((m, n)) => &*string_value(input, m, n)? == b"outcome",
                }
            }
            Some(_) => return None,
        };
        Some(has_resource && !outcome)
    }

    /// The value of the member named `key` (keys compared decoded when the text has escaped
    /// keys).
    fn find(&self, members: &[Member], key: &[u8]) -> Option<(usize, usize)> {
        let escaped = self.index.keys_escaped();
        members
            .iter()
            .find(|m| {
                let raw = self.bytes(m.key.0, m.key.1);
                if escaped {
                    scanner::decode(raw) == key
                } else {
                    same(raw, key)
                }
            })
            .map(|m| m.value)
    }
}
