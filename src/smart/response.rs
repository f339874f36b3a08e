//! Checking a response resource by resource before it reaches the client.
//!
//! A single resource the token may not see is replaced by the hidden-resource refusal (404 by
//! default). A Bundle keeps only the entries the token may see: search matches need the
//! search's permission, `_include`/`_revinclude`/`:iterate` entries need `r` or `s` (for
//! `$everything`, both), and every kept entry passes the compartment and granular checks.
//! When an entry is withheld, or the search was not narrowed, `Bundle.total` is removed (it
//! would count what was withheld). Entries without a resource (deletions in a history) can't be
//! attributed and are withheld. Batch and transaction responses are checked entry by entry, a
//! withheld entry becoming `{"response":{"status":"404 Not Found"}}`.
//!
//! Anything that can't be parsed is refused as a whole (502), never passed on.
//! Untouched members keep their exact bytes (FHIR decimals included).

use super::access::{permitted, reads_member};
use super::context::AccessContext;
use super::decision::{Need, Refusal, RefusalKind, ResponseCheck, Shape};
use super::json::{raw_array, strict_value, RawObject};
use super::policy::AuthzPolicy;
use super::sparse::{sparse_resource, strict_check};
use crate::fhir::ResourceType;
use serde_json::value::RawValue;
use serde_json::Value;

/// What the check made of a body.
#[derive(Debug)]
pub(crate) struct Checked {
    /// The body to send instead, when something was withheld.
    pub(crate) replacement: Option<Vec<u8>>,
    /// How many resources were withheld.
    pub(crate) withheld: usize,
}

pub(crate) fn uncheckable() -> Refusal {
    Refusal::new(
        RefusalKind::UncheckableResponse,
        "the server's response could not be checked against the token's access",
    )
}

struct Checker<'a> {
    ctx: &'a AccessContext,
    policy: &'a AuthzPolicy,
}

/// Checks a response body (of a 2xx response).
pub(crate) fn check_response(
    body: &[u8],
    check: &ResponseCheck,
    ctx: &AccessContext,
    policy: &AuthzPolicy,
) -> Result<Checked, Refusal> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Checked {
            replacement: None,
            withheld: 0,
        });
    }
    Checker { ctx, policy }.check(body, check)
}

impl Checker<'_> {
    fn check(&self, body: &[u8], check: &ResponseCheck) -> Result<Checked, Refusal> {
        match &check.shape {
            Shape::Single => {
                let value = self.resource(body).ok_or_else(uncheckable)?;
                if self.visible(&value, check.need, &check.presatisfied)? {
                    Ok(Checked {
                        replacement: None,
                        withheld: 0,
                    })
                } else {
                    Err(Refusal::hidden(self.policy.hidden_status))
                }
            }
            Shape::Bundle => self.bundle(body, check),
            Shape::Batch(entries) => self.batch(body, entries),
        }
    }

    /// The resource in `bytes`, with the members the check reads.
    fn resource(&self, bytes: &[u8]) -> Option<Value> {
        sparse_resource(bytes, |rt, key| reads_member(self.ctx, rt, key))
    }

    /// Whether one resource may be shown. OperationOutcomes always may.
    fn visible(&self, value: &Value, need: Need, presatisfied: &[usize]) -> Result<bool, Refusal> {
        let name = value
            .get("resourceType")
            .and_then(Value::as_str)
            .ok_or_else(uncheckable)?;
        if name == "OperationOutcome" {
            return Ok(true);
        }
        let rt = ResourceType::from_name(name).ok_or_else(uncheckable)?;
        Ok(permitted(
            self.ctx,
            self.policy,
            rt,
            value,
            need,
            presatisfied,
            false,
        ))
    }

    fn bundle(&self, body: &[u8], check: &ResponseCheck) -> Result<Checked, Refusal> {
        let bundle = RawObject::parse(body).ok_or_else(uncheckable)?;
        match bundle.get_str("resourceType").as_deref() {
            Some("Bundle") => {}
            Some("OperationOutcome") => {
                return Ok(Checked {
                    replacement: None,
                    withheld: 0,
                })
            }
            _ => return Err(uncheckable()),
        }
        let entries = match bundle.get("entry") {
            Some(raw) => raw_array(raw).ok_or_else(uncheckable)?,
            None => Vec::new(),
        };
        let mut kept: Vec<&RawValue> = Vec::with_capacity(entries.len());
        for raw in &entries {
            let entry = RawObject::parse_raw(raw).ok_or_else(uncheckable)?;
            let mut resource = None;
            let mut search = None;
            // Every member is parsed as strictly as the resource, kept or not.
            for (key, member) in entry.members() {
                let bytes = member.get().as_bytes();
                match key {
                    "resource" => resource = Some(self.resource(bytes).ok_or_else(uncheckable)?),
                    "search" => search = Some(strict_value(bytes).ok_or_else(uncheckable)?),
                    _ => strict_check(bytes).ok_or_else(uncheckable)?,
                }
            }
            let Some(resource) = resource else {
                // A deletion in a history (or an entry with no resource at all): nothing to
                // attribute it to a patient by.
                continue;
            };
            let include = search
                .as_ref()
                .and_then(|s| s.get("mode"))
                .and_then(Value::as_str)
                == Some("include");
            let (need, presatisfied): (Need, &[usize]) = if include {
                (check.include_need, &[])
            } else {
                (check.need, &check.presatisfied)
            };
            if self.visible(&resource, need, presatisfied)? {
                kept.push(raw);
            }
        }
        let withheld = entries.len() - kept.len();
        if withheld > 0 && kept.is_empty() && check.hide_if_emptied {
            return Err(Refusal::hidden(self.policy.hidden_status));
        }
        let drop_total = withheld > 0 || !check.narrowed;
        if withheld == 0 && !(drop_total && bundle.get("total").is_some()) {
            return Ok(Checked {
                replacement: None,
                withheld: 0,
            });
        }
        let mut joined =
            String::with_capacity(kept.iter().map(|r| r.get().len() + 1).sum::<usize>() + 2);
        joined.push('[');
        for (i, raw) in kept.iter().enumerate() {
            if i > 0 {
                joined.push(',');
            }
            joined.push_str(raw.get());
        }
        joined.push(']');
        let had_entries = bundle.get("entry").is_some();
        let out = bundle.write(|key| match key {
            "entry" if had_entries => Some(Some(joined.clone())),
            "total" if drop_total => Some(None),
            _ => None,
        });
        Ok(Checked {
            replacement: Some(out),
            withheld,
        })
    }

    fn batch(&self, body: &[u8], checks: &[Option<ResponseCheck>]) -> Result<Checked, Refusal> {
        let bundle = RawObject::parse(body).ok_or_else(uncheckable)?;
        match bundle.get_str("resourceType").as_deref() {
            Some("Bundle") => {}
            Some("OperationOutcome") => {
                return Ok(Checked {
                    replacement: None,
                    withheld: 0,
                })
            }
            _ => return Err(uncheckable()),
        }
        let entries = match bundle.get("entry") {
            Some(raw) => raw_array(raw).ok_or_else(uncheckable)?,
            None => {
                return Ok(Checked {
                    replacement: None,
                    withheld: 0,
                })
            }
        };
        let mut changed = false;
        let mut withheld = 0;
        let mut out_entries: Vec<String> = Vec::with_capacity(entries.len());
        for (i, raw) in entries.iter().enumerate() {
            let Some(Some(check)) = checks.get(i) else {
                if checks.get(i).is_none() {
                    // More answers than requests: the response can't be matched up.
                    return Err(uncheckable());
                }
                out_entries.push(raw.get().to_owned());
                continue;
            };
            let entry = RawObject::parse_raw(raw).ok_or_else(uncheckable)?;
            let Some(resource) = entry.get("resource") else {
                out_entries.push(raw.get().to_owned());
                continue;
            };
            match self.check(resource.get().as_bytes(), check) {
                Ok(Checked {
                    replacement: None,
                    withheld: w,
                }) => {
                    withheld += w;
                    out_entries.push(raw.get().to_owned());
                }
                Ok(Checked {
                    replacement: Some(new),
                    withheld: w,
                }) => {
                    withheld += w;
                    changed = true;
                    let new = String::from_utf8(new).map_err(|_| uncheckable())?;
                    let rebuilt = entry.write(|key| (key == "resource").then(|| Some(new.clone())));
                    out_entries.push(String::from_utf8(rebuilt).map_err(|_| uncheckable())?);
                }
                Err(refusal) if refusal.kind == RefusalKind::Hidden => {
                    withheld += 1;
                    changed = true;
                    let status = refusal.status;
                    out_entries.push(format!(
                        r#"{{"response":{{"status":"{} {}"}}}}"#,
                        status.as_u16(),
                        status.canonical_reason().unwrap_or("")
                    ));
                }
                Err(refusal) => return Err(refusal),
            }
        }
        if !changed {
            return Ok(Checked {
                replacement: None,
                withheld,
            });
        }
        let joined = format!("[{}]", out_entries.join(","));
        let out = bundle.write(|key| (key == "entry").then(|| Some(joined.clone())));
        Ok(Checked {
            replacement: Some(out),
            withheld,
        })
    }
}

/// The check of a resource read before a write (update or delete of one resource under scopes
/// with conditions): the stored resource must be one the token may write.
pub(crate) fn check_stored(
    body: &[u8],
    permission: super::scope::Permissions,
    ctx: &AccessContext,
    policy: &AuthzPolicy,
) -> Result<(), Refusal> {
    let value =
        sparse_resource(body, |rt, key| reads_member(ctx, rt, key)).ok_or_else(uncheckable)?;
    let rt = value
        .get("resourceType")
        .and_then(Value::as_str)
        .and_then(ResourceType::from_name)
        .ok_or_else(uncheckable)?;
    if permitted(ctx, policy, rt, &value, Need::all(permission), &[], true) {
        Ok(())
    } else {
        Err(Refusal::hidden(policy.hidden_status))
    }
}
