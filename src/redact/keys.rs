//! The slow path of the validating scan's duplicate-key check (RFC 8259 §4 leaves duplicate
//! names undefined; FHIR JSON forbids them): keys that may repeat one before them are compared.

use super::scanner::{Frame, JsonError, Key, LINEAR_KEYS};
use super::strings::decode;
use std::collections::HashSet;

/// The duplicate check of a key that may repeat one before it in `frame` (a large object, an
/// escape, or a signature seen already): compares it with them.
#[inline(never)]
pub(super) fn check_key(
    input: &[u8],
    raw: &[u8],
    escaped: bool,
    sig: u64,
    keys: &[Key],
    frame: &mut Frame,
) -> Result<(), JsonError> {
    let count = keys.len() - frame.keys_start;
    if let Some(set) = &mut frame.set {
        if !set.insert(decode(raw).into_owned()) {
            return Err(JsonError::DuplicateKey);
        }
    } else if count >= LINEAR_KEYS {
        let mut set = HashSet::with_capacity(count * 2);
        for k in keys.get(frame.keys_start..).unwrap_or(&[]) {
            set.insert(decode(input.get(k.start..k.end).unwrap_or(&[])).into_owned());
        }
        if !set.insert(decode(raw).into_owned()) {
            return Err(JsonError::DuplicateKey);
        }
        frame.set = Some(Box::new(set));
    } else {
        if escaped {
            frame.escapes = true;
        } else {
            frame.seen |= sig;
        }
        for k in keys.get(frame.keys_start..).unwrap_or(&[]) {
            // Unescaped keys of different lengths differ: no bytes to look at.
            if !escaped && !k.escaped && k.end - k.start != raw.len() {
                continue;
            }
            let other = input.get(k.start..k.end).unwrap_or(&[]);
            let same = if escaped || k.escaped {
                decode(other) == decode(raw)
            } else {
                other == raw
            };
            if same {
                return Err(JsonError::DuplicateKey);
            }
        }
    }
    Ok(())
}
