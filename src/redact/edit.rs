//! The edits of the redaction walk: masking, cutting dates to the year, removing members,
//! and adding the `REDACTED` label to an altered resource.

use super::compile::{ElemAction, Selector};
use super::engine::{Marks, Out, Walker};
use super::outcome::RedactError;
use super::scanner::{self, Member};

const REDACTED_CODING: &[u8] =
    br#"{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"REDACTED"}"#;
/// A masked element: the FHIR `data-absent-reason` extension with code `masked`.
const MASKED: &[u8] = br#"{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"masked"}]}"#;

impl Walker<'_> {
    /// Adds the REDACTED coding to the resource just written.
    pub(super) fn mark_redacted(&mut self, marks: &Marks) {
        if let Some((ms, me)) = marks.meta {
            let mut members = self.pool.pop().unwrap_or_default();
            members.clear();
            let meta = self.out.written(ms, me);
            scanner::members(meta, 0, meta.len(), &mut members);
            // Decoded when the text has an escaped key, so a `"\u0073ecurity"` list gets the
            // coding rather than a second `security` beside it.
            let escaped = self.index.keys_escaped();
            let security = members
                .iter()
                .find(|m| {
                    let raw = meta.get(m.key.0..m.key.1).unwrap_or_default();
                    if escaped {
                        &*scanner::decode(raw) == b"security"
                    } else {
                        raw == b"security"
                    }
                })
                .map(|m| m.value);
            // Where the coding goes, and whether it follows another member or item.
            let place = match security {
                Some((ss, se)) if meta.get(ss) == Some(&b'[') => {
                    let empty = meta.get(scanner::skip_ws(meta, ss + 1)) == Some(&b']');
                    Some((ms + se - 1, !empty, true))
                }
                Some(_) => None,
                None => Some((me - 1, !members.is_empty(), false)),
            };
            self.pool.push(members);
            let Some((at, comma, in_array)) = place else {
                return;
            };
            let comma: &[u8] = if comma { b"," } else { b"" };
            if in_array {
                self.out.insert(at, &[comma, REDACTED_CODING]);
            } else {
                self.out
                    .insert(at, &[comma, b"\"security\":[", REDACTED_CODING, b"]"]);
            }
        } else if let Some(at) = marks.after_id.or(marks.after_type) {
            self.out
                .insert(at, &[b",\"meta\":{\"security\":[", REDACTED_CODING, b"]}"]);
        }
    }

    /// A filtered action on one repetition.
    pub(super) fn act_on_item(&mut self, s: usize, e: usize, action: &ElemAction) -> Out {
        let original = self.bytes(s, e);
        let mark = self.out.len();
        let written = match action {
            ElemAction::Remove => false,
            ElemAction::Mask(value) => match (self.input.get(s), value) {
                (Some(b'{' | b'['), _) => {
                    self.out.extend_from_slice(MASKED);
                    true
                }
                (_, Some(v)) => {
                    self.out.extend_from_slice(v);
                    true
                }
                (_, None) => false,
            },
            ElemAction::YearOnly => match year(original) {
                Some(digits) => {
                    self.out.push(b'"');
                    self.out.extend_from_slice(digits);
                    self.out.push(b'"');
                    true
                }
                None => false,
            },
        };
        if !written {
            self.changes += 1;
            return Out::Dropped;
        }
        if self.out.written_from(mark) != original {
            self.changes += 1;
        }
        Out::Kept
    }

    /// An action on a whole member (`"key": value`).
    pub(super) fn whole_member(
        &mut self,
        m: &Member,
        sibling: bool,
        action: &ElemAction,
    ) -> Result<Out, RedactError> {
        let mut items = self.item_pool.pop().unwrap_or_default();
        items.clear();
        let r = self.whole_member_with(m, sibling, action, &mut items);
        self.item_pool.push(items);
        r
    }

    fn whole_member_with(
        &mut self,
        m: &Member,
        sibling: bool,
        action: &ElemAction,
        items: &mut Vec<(usize, usize)>,
    ) -> Result<Out, RedactError> {
        let (vs, ve) = m.value;
        let original = self.bytes(m.start, ve);
        let first = self.input.get(vs).copied();
        if first == Some(b'n') {
            self.copy(m.start, ve);
            return Ok(Out::Kept);
        }
        let array = first == Some(b'[');
        if array {
            scanner::items_in(self.input, Some(&self.index), vs, ve, items);
        } else {
            items.push((vs, ve));
        }
        let input = self.input;
        let complex = items
            .iter()
            .any(|&(s, _)| matches!(input.get(s), Some(b'{' | b'[')));
        let mark = self.out.len();
        match action {
            ElemAction::Remove => {}
            // The primitive's own `_key` member goes with the value (it may carry it in an
            // extension); a masked value brings a fresh one where needed.
            // A `_key` that is already the mask stays, so redaction is idempotent.
            ElemAction::Mask(None) if sibling && is_mask(self.bytes(vs, ve)) => {
                self.copy(m.start, ve);
                return Ok(Out::Kept);
            }
            ElemAction::Mask(_) if sibling => {}
            ElemAction::YearOnly if sibling => {
                self.copy(m.start, ve);
                return Ok(Out::Kept);
            }
            ElemAction::Mask(value) => {
                let primitive_value = value.as_ref().filter(|_| !complex);
                self.key_prefix(m, primitive_value.is_none() && !complex);
                let one: &[u8] = primitive_value.map_or(MASKED, Vec::as_slice);
                if array {
                    self.out.push(b'[');
                    self.out.extend_from_slice(one);
                    self.out.push(b']');
                } else {
                    self.out.extend_from_slice(one);
                }
            }
            ElemAction::YearOnly => {
                let mut years = items
                    .iter()
                    .filter_map(|&(s, e)| year(input.get(s..e).unwrap_or_default()));
                if let Some(first_year) = years.next() {
                    self.key_prefix(m, false);
                    if array {
                        self.out.push(b'[');
                    }
                    self.out.push(b'"');
                    self.out.extend_from_slice(first_year);
                    self.out.push(b'"');
                    for y in years {
                        self.out.extend_from_slice(b",\"");
                        self.out.extend_from_slice(y);
                        self.out.push(b'"');
                    }
                    if array {
                        self.out.push(b']');
                    }
                }
            }
        }
        if self.out.len() == mark {
            self.changes += 1;
            return Ok(Out::Dropped);
        }
        if self.out.written_from(mark) != original {
            self.changes += 1;
        }
        Ok(Out::Kept)
    }

    /// `"key":` or `"_key":` for a member that is not itself a `_key` sibling.
    fn key_prefix(&mut self, m: &Member, underscore: bool) {
        // The key as written, escapes and all: the decoded key may hold a quote or a control
        // character that would end or break the string.
        let raw = self.input.get(m.key.0..m.key.1).unwrap_or_default();
        self.out.push(b'"');
        if underscore {
            self.out.push(b'_');
        }
        self.out.extend_from_slice(raw);
        self.out.extend_from_slice(b"\":");
    }
}

/// Remove on a required element masks instead.
pub(super) fn effective(sel: &Selector, action: &ElemAction) -> ElemAction {
    match action {
        ElemAction::Remove if sel.required => ElemAction::Mask(None),
        other => other.clone(),
    }
}

/// The stronger of two actions: remove, then mask, then year only.
pub(super) fn merge(a: Option<ElemAction>, b: ElemAction) -> ElemAction {
    let rank = |x: &ElemAction| match x {
        ElemAction::Remove => 0,
        ElemAction::Mask(None) => 1,
        ElemAction::Mask(Some(_)) => 2,
        ElemAction::YearOnly => 3,
    };
    match a {
        Some(a) if rank(&a) <= rank(&b) => a,
        _ => b,
    }
}

/// The year of `"YYYY..."`; `None` for anything that is not a date.
fn year(raw: &[u8]) -> Option<&[u8]> {
    let digits = raw.get(1..5)?;
    if raw.first() != Some(&b'"') || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits)
}

fn is_mask(value: &[u8]) -> bool {
    value == MASKED
        || (value.first() == Some(&b'[')
            && value.last() == Some(&b']')
            && value.get(1..value.len() - 1) == Some(MASKED))
}
