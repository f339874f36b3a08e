//! The record's JSON line, written by hand: the same bytes as its derived `Serialize` (the
//! tests below hold the two together), without serde's character-by-character escaping of the
//! many strings that are fixed codes. Strings that need no escaping are copied whole; the rest
//! go through `serde_json`.

use super::record::{AuditAgent, AuditRecord, RecordedDecision, RecordedParam};

/// Appends `record` as one JSON object (no newline).
pub(crate) fn write_record(r: &AuditRecord, out: &mut Vec<u8>) {
    let mut o = Obj::new(out);
    o.str("time", &r.time);
    o.str("type", r.event_type);
    o.str("subtype", &r.subtype);
    o.str("action", r.action);
    o.str("method", &r.method);
    o.opt_str("path", r.path.as_deref());
    o.opt_str("resource_type", r.resource_type);
    o.opt_str("id", r.id.as_deref());
    o.opt_str("operation", r.operation.as_deref());
    if !r.query.is_empty() {
        o.key("query");
        o.out.push(b'[');
        for (i, p) in r.query.iter().enumerate() {
            if i > 0 {
                o.out.push(b',');
            }
            param(p, o.out);
        }
        o.out.push(b']');
    }
    if let Some(ip) = r.address {
        o.key("address");
        address(o.out, ip);
    }
    o.key("agent");
    agent(&r.agent, o.out);
    o.num("status", u64::from(r.status));
    o.str("outcome", r.outcome);
    o.key("decision");
    decision(&r.decision, o.out);
    if r.probe {
        o.key("probe");
        o.out.extend_from_slice(b"true");
    }
    o.opt_num("resources_returned", r.resources_returned);
    o.opt_num("redactions", r.redactions);
    o.num("latency_us", r.latency_us);
    o.end();
}

fn param(p: &RecordedParam, out: &mut Vec<u8>) {
    let mut o = Obj::new(out);
    o.str("name", &p.name);
    o.opt_str("value", p.value.as_deref());
    o.end();
}

fn agent(a: &AuditAgent, out: &mut Vec<u8>) {
    let mut o = Obj::new(out);
    o.opt_str("client", a.client.as_deref());
    o.opt_str("client_id", a.client_id.as_deref());
    o.opt_str("subject", a.subject.as_deref());
    o.opt_str("fhir_user", a.fhir_user.as_deref());
    if !a.patients.is_empty() {
        o.key("patients");
        o.out.push(b'[');
        for (i, p) in a.patients.iter().enumerate() {
            if i > 0 {
                o.out.push(b',');
            }
            string(o.out, p);
        }
        o.out.push(b']');
    }
    o.end();
}

fn decision(d: &RecordedDecision, out: &mut Vec<u8>) {
    let mut o = Obj::new(out);
    o.str("layer", &d.layer);
    o.str("outcome", d.outcome);
    o.str("reason", &d.reason);
    o.end();
}

/// A JSON object being written.
struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj { out, first: true }
    }

    /// A member name (ours: plain ASCII, no escaping) and the colon.
    fn key(&mut self, name: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn str(&mut self, name: &str, value: &str) {
        self.key(name);
        string(self.out, value);
    }

    fn opt_str(&mut self, name: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.str(name, v);
        }
    }

    fn num(&mut self, name: &str, value: u64) {
        self.key(name);
        number(self.out, value);
    }

    fn opt_num(&mut self, name: &str, value: Option<usize>) {
        if let Some(v) = value {
            self.num(name, u64::try_from(v).unwrap_or(u64::MAX));
        }
    }

    fn end(self) {
        self.out.push(b'}');
    }
}

/// A JSON string: copied whole when nothing in it needs escaping (what `serde_json` escapes:
/// `"`, `\` and control characters below U+0020), else escaped by `serde_json`.
fn string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        // Writing a `&str` to a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// An address as its `Display` text, quoted (it never needs escaping). IPv4, by far the most
/// common, is written without the formatting machinery.
fn address(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    out.push(b'"');
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                number(out, u64::from(octet));
            }
        }
        std::net::IpAddr::V6(v6) => {
            let _ = std::io::Write::write_fmt(out, format_args!("{v6}"));
        }
    }
    out.push(b'"');
}

/// `n` in decimal.
fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(crate::decimal::Decimal::new(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn derived(r: &AuditRecord) -> Vec<u8> {
        serde_json::to_vec(r).unwrap()
    }

    fn hand(r: &AuditRecord) -> Vec<u8> {
        let mut out = Vec::new();
        write_record(r, &mut out);
        out
    }

    fn bare() -> AuditRecord {
        AuditRecord::new(
            UNIX_EPOCH + Duration::from_millis(1_709_210_096_789),
            &http::Method::GET,
        )
    }

    #[test]
    fn same_bytes_as_serialize_for_a_bare_record() {
        let r = bare();
        assert_eq!(String::from_utf8(hand(&r)), String::from_utf8(derived(&r)));
    }

    #[test]
    fn same_bytes_as_serialize_for_a_full_record() {
        let mut r = bare();
        r.subtype = "search-type".into();
        r.path = Some("/x\"y\\z\u{1}\u{7f}é😀".into());
        r.resource_type = Some("Patient");
        r.id = Some("a-1.b".into());
        r.operation = Some("everything".into());
        r.query = vec![
            RecordedParam {
                name: "family".into(),
                value: Some("sha256:00".into()),
            },
            RecordedParam {
                name: "access_token".into(),
                value: None,
            },
            RecordedParam {
                name: "code:text".into(),
                value: Some("line\nbreak\t\"q\"".into()),
            },
        ];
        r.address = Some("2001:db8::1".parse().unwrap());
        r.agent = AuditAgent {
            client: Some("lab".into()),
            client_id: Some("app\u{0}".into()),
            subject: Some("user".into()),
            fhir_user: Some("Practitioner/1".into()),
            patients: vec!["p1".into(), "p\"2".into()],
        };
        r.status = 404;
        r.outcome = "4";
        r.decision = RecordedDecision {
            layer: "firewall".into(),
            outcome: "refused",
            reason: "undeclared-route".into(),
        };
        r.probe = true;
        r.resources_returned = Some(0);
        r.redactions = Some(usize::MAX);
        r.latency_us = u64::MAX;
        assert_eq!(String::from_utf8(hand(&r)), String::from_utf8(derived(&r)));
        r.address = Some("192.0.2.7".parse().unwrap());
        assert_eq!(String::from_utf8(hand(&r)), String::from_utf8(derived(&r)));
        r.address = Some("0.10.255.100".parse().unwrap());
        r.agent.patients.clear();
        r.latency_us = 0;
        assert_eq!(String::from_utf8(hand(&r)), String::from_utf8(derived(&r)));
    }

    proptest::proptest! {
        #[test]
        fn same_bytes_as_serialize_for_any_strings(
            path in proptest::option::of(".{0,40}"),
            id in proptest::option::of("\\PC{0,10}"),
            reason in ".{0,20}",
            name in "[\\x00-\\x7f]{0,12}",
            value in proptest::option::of("[\\x00-\\x7f]{0,12}"),
            latency in proptest::num::u64::ANY,
        ) {
            let mut r = bare();
            r.path = path;
            r.id = id;
            r.decision.reason = reason;
            r.query = vec![RecordedParam { name, value }];
            r.latency_us = latency;
            proptest::prop_assert_eq!(hand(&r), derived(&r));
        }
    }
}
