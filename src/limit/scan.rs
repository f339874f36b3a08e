//! The single counting pass, written by hand ([`plain_json`](crate::plain_json)): it walks the
//! bytes once and keeps nothing.
//!
//! It reads only the plain shape of FHIR JSON and answers `None` (so that the full parse
//! decides) on anything it is not sure of: escapes in a member name or in the strings it
//! compares, a `\u` escape anywhere, a repeated member it reads, nesting past
//! [`MAX_DEPTH`](crate::plain_json::MAX_DEPTH), and everything that is not JSON. Whatever it accepts, `serde_json` accepts
//! too (it is, if anything, stricter: it also checks that strings are UTF-8), so its count is
//! always the full parse's.

use crate::plain_json::Scanner;

/// What the top-level `resourceType` says.
#[derive(Clone, Copy)]
enum Kind {
    Bundle,
    OperationOutcome,
    Other,
}

/// The resources `body` holds (a Bundle's entries with a resource that are not
/// `search.mode = outcome`; 0 for an OperationOutcome; 1 for any other resource), or `None`.
pub(super) fn quick(body: &[u8]) -> Option<u64> {
    let mut s = Scanner { b: body, i: 0 };
    s.ws();
    if s.i == body.len() {
        return None;
    }
    let mut kind = None;
    let mut seen_type = false;
    let mut entries = None;
    s.object(|s, key| {
        match key {
            b"resourceType" if kind.is_none() => {
                kind = Some(match s.plain_string()? {
                    b"Bundle" => Kind::Bundle,
                    b"OperationOutcome" => Kind::OperationOutcome,
                    _ => Kind::Other,
                });
            }
            b"type" if !seen_type => {
                seen_type = true;
                s.value(1)?;
            }
            b"entry" if entries.is_none() => entries = Some(s.entries()?),
            b"resourceType" | b"type" | b"entry" => return None,
            _ => s.value(1)?,
        }
        Some(())
    })?;
    s.ws();
    if s.i != body.len() {
        return None;
    }
    match kind? {
        Kind::Bundle => Some(entries.unwrap_or(0)),
        Kind::OperationOutcome => Some(0),
        Kind::Other => Some(1),
    }
}

impl Scanner<'_> {
    /// `Bundle.entry`: the entries with a resource that are not `search.mode = outcome`.
    fn entries(&mut self) -> Option<u64> {
        let mut n = 0u64;
        self.list(b'[', b']', |s| {
            n += u64::from(s.entry()?);
            Some(())
        })?;
        Some(n)
    }

    fn entry(&mut self) -> Option<bool> {
        let mut resource: Option<bool> = None;
        let mut outcome: Option<bool> = None;
        self.object(|s, key| {
            match key {
                b"resource" if resource.is_none() => {
                    let null = s.null();
                    if !null {
                        s.value(3)?;
                    }
                    resource = Some(!null);
                }
                b"search" if outcome.is_none() => {
                    outcome = Some(if s.null() {
                        false
                    } else {
                        s.search_is_outcome()?
                    });
                }
                b"resource" | b"search" => return None,
                _ => s.value(3)?,
            }
            Some(())
        })?;
        Some(resource == Some(true) && outcome != Some(true))
    }

    /// Reads `null` if it is next.
    fn null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.literal(b"null").is_some()
    }

    /// `entry.search`: whether `mode` is `outcome`.
    fn search_is_outcome(&mut self) -> Option<bool> {
        let mut mode: Option<bool> = None;
        self.object(|s, key| {
            match key {
                b"mode" if mode.is_none() => {
                    mode = Some(!s.null() && s.plain_string()? == b"outcome");
                }
                b"mode" => return None,
                _ => s.value(4)?,
            }
            Some(())
        })?;
        Some(mode.unwrap_or(false))
    }
}
