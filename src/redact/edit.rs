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
            let meta = self.out.get(ms..me).unwrap_or_default().to_vec();
            let mut members = Vec::new();
            scanner::members(&meta, 0, meta.len(), &mut members);
            let security = members
                .iter()
                .find(|m| meta.get(m.key.0..m.key.1) == Some(b"security".as_slice()))
                .map(|m| m.value);
            let (at, insert) = match security {
                Some((ss, se)) if meta.get(ss) == Some(&b'[') => {
                    let empty = meta.get(scanner::skip_ws(&meta, ss + 1)) == Some(&b']');
                    let mut insert = Vec::new();
                    if !empty {
                        insert.push(b',');
                    }
                    insert.extend_from_slice(REDACTED_CODING);
                    (ms + se - 1, insert)
                }
                Some(_) => return,
                None => {
                    let mut insert = Vec::new();
                    if !members.is_empty() {
                        insert.push(b',');
                    }
                    insert.extend_from_slice(b"\"security\":[");
                    insert.extend_from_slice(REDACTED_CODING);
                    insert.push(b']');
                    (me - 1, insert)
                }
            };
            self.out.splice(at..at, insert);
        } else if let Some(at) = marks.after_id.or(marks.after_type) {
            let mut insert = b",\"meta\":{\"security\":[".to_vec();
            insert.extend_from_slice(REDACTED_CODING);
            insert.extend_from_slice(b"]}");
            self.out.splice(at..at, insert);
        }
    }

    /// A filtered action on one repetition.
    pub(super) fn act_on_item(&mut self, s: usize, e: usize, action: &ElemAction) -> Out {
        let original = self.bytes(s, e);
        let replacement: Option<Vec<u8>> = match action {
            ElemAction::Remove => None,
            ElemAction::Mask(value) => match (self.input.get(s), value) {
                (Some(b'{' | b'['), _) => Some(MASKED.to_vec()),
                (_, Some(v)) => Some(v.clone()),
                (_, None) => None,
            },
            ElemAction::YearOnly => year(original),
        };
        match replacement {
            None => {
                self.changes += 1;
                Out::Dropped
            }
            Some(r) => {
                if r != original {
                    self.changes += 1;
                }
                self.out.extend_from_slice(&r);
                Out::Kept
            }
        }
    }

    /// An action on a whole member (`"key": value`).
    pub(super) fn whole_member(
        &mut self,
        m: &Member,
        base: &[u8],
        sibling: bool,
        action: &ElemAction,
    ) -> Result<Out, RedactError> {
        let (vs, ve) = m.value;
        let original = self.bytes(m.start, ve);
        let first = self.input.get(vs).copied();
        if first == Some(b'n') {
            self.copy(m.start, ve);
            return Ok(Out::Kept);
        }
        let mut items = Vec::new();
        let array = first == Some(b'[');
        if array {
            scanner::items_in(self.input, Some(&self.index), vs, ve, &mut items);
        } else {
            items.push((vs, ve));
        }
        let complex = items
            .iter()
            .any(|&(s, _)| matches!(self.input.get(s), Some(b'{' | b'[')));
        let mut new: Vec<u8> = Vec::new();
        let prefix = |underscore: bool| {
            let mut p = Vec::with_capacity(base.len() + 4);
            p.push(b'"');
            if underscore {
                p.push(b'_');
            }
            p.extend_from_slice(base);
            p.extend_from_slice(b"\":");
            p
        };
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
                new = prefix(primitive_value.is_none() && !complex);
                let one: &[u8] = primitive_value.map_or(MASKED, Vec::as_slice);
                if array {
                    new.push(b'[');
                    new.extend_from_slice(one);
                    new.push(b']');
                } else {
                    new.extend_from_slice(one);
                }
            }
            ElemAction::YearOnly => {
                let years: Vec<Vec<u8>> = items
                    .iter()
                    .filter_map(|&(s, e)| year(self.bytes(s, e)))
                    .collect();
                if !years.is_empty() {
                    new = prefix(false);
                    if array {
                        new.push(b'[');
                        new.extend_from_slice(&years.join(&b","[..]));
                        new.push(b']');
                    } else {
                        new.extend_from_slice(&years.concat());
                    }
                }
            }
        }
        if new.is_empty() {
            self.changes += 1;
            return Ok(Out::Dropped);
        }
        if new != original {
            self.changes += 1;
        }
        self.out.extend_from_slice(&new);
        Ok(Out::Kept)
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

/// `"YYYY..."` cut to `"YYYY"`; `None` for anything that is not a date.
fn year(raw: &[u8]) -> Option<Vec<u8>> {
    let digits = raw.get(1..5)?;
    if raw.first() != Some(&b'"') || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut out = Vec::with_capacity(6);
    out.push(b'"');
    out.extend_from_slice(digits);
    out.push(b'"');
    Some(out)
}

fn is_mask(value: &[u8]) -> bool {
    value == MASKED
        || (value.first() == Some(&b'[')
            && value.last() == Some(&b']')
            && value.get(1..value.len() - 1) == Some(MASKED))
}
