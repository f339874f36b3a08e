//! Reading what decides visibility: `meta.security` labels and `where()` filters.

use super::engine::Walker;
use super::outcome::{RedactError, REDACTED_SYSTEM};
use super::path::Filter;
use super::scanner::{self, decode, string_value, Member};
use super::strings::same;

impl Walker<'_> {
    /// The value of member `key` of the validated object `[s, e)`, scanning only up to it.
    pub(super) fn member_value(
        &mut self,
        s: usize,
        e: usize,
        key: &[u8],
    ) -> Option<(usize, usize)> {
        scanner::find_member(self.input, Some(&self.index), s, e, key)
    }

    /// Whether the object `[s, e)` satisfies `where(field='value')`; `members` are its members
    /// when read already.
    pub(super) fn filter_ok(
        &mut self,
        s: usize,
        e: usize,
        filter: &Filter,
        members: Option<&[Member]>,
    ) -> bool {
        if self.input.get(s) != Some(&b'{') {
            return false;
        }
        let field = filter.field.as_bytes();
        let value = match members {
            Some(members) => {
                let escaped = self.index.keys_escaped();
                let input = self.input;
                members
                    .iter()
                    .find(|m| {
                        let raw = input.get(m.key.0..m.key.1).unwrap_or_default();
                        if escaped {
                            *decode(raw) == *field
                        } else {
                            same(raw, field)
                        }
                    })
                    .map(|m| m.value)
            }
            None => self.member_value(s, e, field),
        };
        match value {
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
    pub(super) fn labels(
        &mut self,
        meta: Option<(usize, usize)>,
    ) -> Result<(bool, bool), RedactError> {
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
        let mut codings = self.item_pool.pop().unwrap_or_default();
        codings.clear();
        scanner::items_in(self.input, Some(&self.index), ss, se, &mut codings);
        let (mut hide, mut redacted) = (false, false);
        for &(cs, ce) in &codings {
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
        self.item_pool.push(codings);
        Ok((hide, redacted))
    }
}
