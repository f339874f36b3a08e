//! One audit record per request, shaped after FHIR R4 AuditEvent and the IHE Basic Audit Log
//! Patterns (BALP) profile: what happened (type `rest`, subtype = the interaction, action
//! C/R/U/D/E), when, who (the agent: trusted client, token client, user, patient context,
//! network address), on what (the entity: resource type, id, search parameters), and how it
//! ended (outcome, the deciding layer and why).

use super::decision::LayerDecision;
use crate::fhir::{FhirRequest, Interaction};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Who made the request (AuditEvent.agent), as far as the layers established it.
///
/// Put it on the response extensions (the [`AuditCaptureLayer`](super::AuditCaptureLayer)
/// does, innermost) and the audit layer records it. Tokens and keys never go here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AuditAgent {
    /// The trusted client's name (its certificate, by the trust policy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The token's `client_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The token's subject (the user).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The token's `fhirUser`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    /// The patient context(s) of the token.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub patients: Vec<String>,
}

/// What to do with the value of a search parameter in the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValuePolicy {
    /// Record the value as sent.
    Keep,
    /// Record `sha256:` and the first 16 bytes (hex) of SHA-256 over the salt and the value,
    /// so equal values can be correlated without being readable.
    Hash,
    /// Record the parameter's name only.
    Drop,
}

/// Which search parameter values are identifying (hashed by default) or secret (always
/// dropped, with their name kept).
///
/// Defaults: identifying = `identifier`, `name`, `family`, `given`, `phonetic`, `birthdate`,
/// `phone`, `email`, `telecom`, `address` and its parts, `_content`, `_text`, hashed; every
/// other value kept; secret (`access_token`, `client_secret`, `client_assertion`,
/// `refresh_token`, `id_token`, `password`, `token`, `api_key`, `apikey`, `key`) always dropped.
#[derive(Clone, Debug)]
pub struct ParamPolicy {
    identifying: BTreeSet<String>,
    identifying_policy: ValuePolicy,
    salt: Vec<u8>,
}

const SECRET_PARAMS: [&str; 10] = [
    "access_token",
    "client_secret",
    "client_assertion",
    "refresh_token",
    "id_token",
    "password",
    "token",
    "api_key",
    "apikey",
    "key",
];

const IDENTIFYING: [&str; 17] = [
    "identifier",
    "name",
    "family",
    "given",
    "phonetic",
    "birthdate",
    "phone",
    "email",
    "telecom",
    "address",
    "address-city",
    "address-country",
    "address-postalcode",
    "address-state",
    "address-use",
    "_content",
    "_text",
];

impl Default for ParamPolicy {
    fn default() -> Self {
        ParamPolicy {
            identifying: IDENTIFYING.iter().map(|s| (*s).to_owned()).collect(),
            identifying_policy: ValuePolicy::Hash,
            salt: Vec::new(),
        }
    }
}

impl ParamPolicy {
    /// Also treats these parameter names as identifying.
    pub fn identifying<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.identifying.extend(names.into_iter().map(Into::into));
        self
    }

    /// What to do with identifying values (default [`ValuePolicy::Hash`]).
    pub fn identifying_values(mut self, policy: ValuePolicy) -> Self {
        self.identifying_policy = policy;
        self
    }

    /// The salt of the hashes (default empty; set one so values can't be found by hashing
    /// guesses).
    pub fn salt(mut self, salt: impl Into<Vec<u8>>) -> Self {
        self.salt = salt.into();
        self
    }

    /// The policy for the parameter `name` (without modifier or chain).
    pub fn policy_for(&self, name: &str) -> ValuePolicy {
        if SECRET_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            ValuePolicy::Drop
        } else if self.identifying.contains(name) {
            self.identifying_policy
        } else {
            ValuePolicy::Keep
        }
    }

    fn hash(&self, value: &str) -> String {
        let mut h = Sha256::new();
        h.update(&self.salt);
        h.update(value.as_bytes());
        let digest = h.finalize();
        let mut out = String::with_capacity(7 + 32);
        out.push_str("sha256:");
        for b in digest.iter().take(16) {
            for nibble in [b >> 4, b & 0xf] {
                out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
            }
        }
        out
    }
}

impl std::fmt::Debug for AuditRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_json())
    }
}

/// One recorded search parameter.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct RecordedParam {
    /// The name as sent, with its modifier (`code:text`) or chain.
    pub name: String,
    /// The value, hashed or absent by policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// The deciding layer in a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordedDecision {
    /// The layer (`firewall`, `classify`, `identity`, `smart`, `handler` …).
    pub layer: String,
    /// `allowed` or `refused`.
    pub outcome: &'static str,
    /// The layer's reason code.
    pub reason: String,
}

impl From<LayerDecision> for RecordedDecision {
    fn from(d: LayerDecision) -> Self {
        RecordedDecision {
            layer: d.layer.to_owned(),
            outcome: d.outcome.as_str(),
            reason: d.reason.into_owned(),
        }
    }
}

/// One audit record, shaped after FHIR AuditEvent (see [`crate::audit`]). Serialises to one
/// JSON object.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// When the request arrived (RFC 3339, UTC, milliseconds) — AuditEvent.recorded.
    pub time: String,
    /// Always `rest` (AuditEvent.type, DICOM `rest`).
    #[serde(rename = "type")]
    pub event_type: &'static str,
    /// The interaction (AuditEvent.subtype), or `unknown` when the request is not FHIR.
    pub subtype: String,
    /// AuditEvent.action: `C`, `R`, `U`, `D` or `E`.
    pub action: &'static str,
    /// The HTTP method.
    pub method: String,
    /// The path, for requests that are not classified FHIR interactions (probes) and for
    /// requests through an alias base path (such as a deprecated `/fhir-v0`), cut to 256
    /// characters. Other classified requests are described by `resource_type` and `id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The resource type (AuditEvent.entity.what).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<&'static str>,
    /// The logical id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The operation name, for `$op` calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Search parameters (AuditEvent.entity.query), values by [`ParamPolicy`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<RecordedParam>,
    /// The client's address (AuditEvent.agent.network).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// Who.
    pub agent: AuditAgent,
    /// The HTTP status.
    pub status: u16,
    /// AuditEvent.outcome: `0` success, `4` minor failure (4xx), `8` serious failure (5xx).
    pub outcome: &'static str,
    /// Which layer decided, and why.
    pub decision: RecordedDecision,
    /// Whether this was a hit on an undeclared route (a probe for a backdoor).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub probe: bool,
    /// Resources returned, when a layer counted them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources_returned: Option<usize>,
    /// Redactions applied, when a layer counted them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redactions: Option<usize>,
    /// Microseconds from the request to the response head.
    pub latency_us: u64,
}

impl AuditRecord {
    /// The record as one line of JSON.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(JSON_CAPACITY);
        self.write_json(&mut out);
        String::from_utf8(out).unwrap_or_else(|_| String::from("{}"))
    }

    /// Appends the record's JSON to `out` (the bytes its `Serialize` gives, written by hand),
    /// without the intermediate `String` of [`to_json`](Self::to_json).
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        super::json::write_record(self, out);
    }

    pub(crate) fn new(time: SystemTime, method: &http::Method) -> Self {
        AuditRecord {
            time: rfc3339(time),
            event_type: "rest",
            subtype: String::from("unknown"),
            action: action_of_method(method),
            method: method.as_str().to_owned(),
            path: None,
            resource_type: None,
            id: None,
            operation: None,
            query: Vec::new(),
            address: None,
            agent: AuditAgent::default(),
            status: 0,
            outcome: "0",
            decision: RecordedDecision {
                layer: String::from("handler"),
                outcome: "allowed",
                reason: String::new(),
            },
            probe: false,
            resources_returned: None,
            redactions: None,
            latency_us: 0,
        }
    }

    pub(crate) fn describe(&mut self, request: &FhirRequest, policy: &ParamPolicy) {
        let interaction = request.interaction();
        self.subtype = interaction.as_str().to_owned();
        self.action = action_of(interaction);
        self.resource_type = request.resource_type().map(|t| t.as_str());
        self.id = request.id().map(|s| clip(s, 64));
        self.operation = request.operation().map(|o| clip(&o.name, 64));
        for param in request.query().params().take(100) {
            let name = param.name();
            let shown = match (param.modifier(), param.chain()) {
                (Some(m), _) => format!("{name}:{m}"),
                (None, Some(c)) => format!("{name}.{c}"),
                (None, None) => name.to_owned(),
            };
            let value = match policy.policy_for(name) {
                ValuePolicy::Keep => Some(clip(param.raw_value(), 256)),
                ValuePolicy::Hash => Some(policy.hash(param.raw_value())),
                ValuePolicy::Drop => None,
            };
            self.query.push(RecordedParam {
                name: clip(&shown, 64),
                value,
            });
        }
    }

    pub(crate) fn set_path(&mut self, path: &str) {
        self.path = Some(clip(path, 256));
    }
}

impl std::fmt::Debug for RecordedParam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={:?}", self.name, self.value)
    }
}

fn clip(s: &str, n: usize) -> String {
    // No more bytes than `n` is no more characters either: one copy, no per-character walk.
    if s.len() <= n {
        return s.to_owned();
    }
    s.chars().take(n).collect()
}

fn action_of_method(method: &http::Method) -> &'static str {
    match *method {
        http::Method::POST => "C",
        http::Method::PUT | http::Method::PATCH => "U",
        http::Method::DELETE => "D",
        _ => "R",
    }
}

/// AuditEvent.action per the BALP profile.
fn action_of(i: Interaction) -> &'static str {
    match i {
        Interaction::Create => "C",
        Interaction::Update | Interaction::Patch => "U",
        Interaction::Delete => "D",
        Interaction::Batch | Interaction::Transaction | Interaction::Operation => "E",
        _ => "R",
    }
}

/// RFC 3339 in UTC with milliseconds, without a date library (days-from-civil, inverted).
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Written digit by digit: `format!` costs more than everything else in the record.
    let mut out = String::with_capacity(24);
    push_padded(&mut out, u64::try_from(year).unwrap_or(0), 4);
    out.push('-');
    push_padded(&mut out, u64::try_from(month).unwrap_or(0), 2);
    out.push('-');
    push_padded(&mut out, u64::try_from(day).unwrap_or(0), 2);
    out.push('T');
    push_padded(&mut out, rem / 3600, 2);
    out.push(':');
    push_padded(&mut out, rem % 3600 / 60, 2);
    out.push(':');
    push_padded(&mut out, rem % 60, 2);
    out.push('.');
    push_padded(&mut out, u64::from(d.subsec_millis()), 3);
    out.push('Z');
    out
}

/// `n` in decimal, zero-padded to at least `width` digits.
fn push_padded(out: &mut String, n: u64, width: usize) {
    out.push_str(crate::decimal::Decimal::padded(n, width).as_str());
}

/// Room for a typical record, so serialising it doesn't grow the buffer again and again.
pub(crate) const JSON_CAPACITY: usize = 512;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.789Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(253_402_300_799_999);
        assert_eq!(rfc3339(t), "9999-12-31T23:59:59.999Z");
        let t = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
        assert_eq!(rfc3339(t), "10000-01-01T00:00:00.000Z");
    }

    #[test]
    fn secrets_dropped_identifiers_hashed() {
        let p = ParamPolicy::default().salt("s");
        assert_eq!(p.policy_for("access_token"), ValuePolicy::Drop);
        assert_eq!(p.policy_for("ACCESS_TOKEN"), ValuePolicy::Drop);
        assert_eq!(p.policy_for("family"), ValuePolicy::Hash);
        assert_eq!(p.policy_for("code"), ValuePolicy::Keep);
        assert_eq!(p.policy_for("_count"), ValuePolicy::Keep);
        assert!(p.hash("Smith").starts_with("sha256:"));
        assert_eq!(p.hash("Smith"), p.hash("Smith"));
        assert_ne!(p.hash("Smith"), ParamPolicy::default().hash("Smith"));
    }
}
