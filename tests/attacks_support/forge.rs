//! Tokens from a corpus cell: a profile (signer and claims) and the mutations an attacker
//! (or a buggy issuer) applies to it.

use super::pki::Issued;
use super::{cert, redact_demo, tokens};
use jsonwebtoken::Algorithm;
use serde_json::{json, Map, Value};

/// A base token: the signer and claims a profile name stands for, and whether its holder may
/// legitimately see other patients (user-level scopes).
pub struct Profile {
    pub signer: &'static str,
    pub claims: Map<String, Value>,
    pub sees_all: bool,
}

pub fn profile(name: &str) -> Profile {
    let mut claims = tokens::default_claims();
    let mut set = |k: &str, v: Value| {
        claims.insert(k.to_owned(), v);
    };
    let sees_all = match name {
        // A patient app in the context of pat-1, read and search only.
        "pat1" => {
            set("client_id", json!("demo-patient-app"));
            set("sub", json!("patient-pat-1"));
            set(
                "scope",
                json!("launch/patient openid fhirUser patient/*.rs"),
            );
            set("patient", json!("pat-1"));
            set("fhirUser", json!("Patient/pat-1"));
            false
        }
        // The same app with write access to pat-1's compartment.
        "pat1w" => {
            set("client_id", json!("demo-patient-app"));
            set("sub", json!("patient-pat-1"));
            set("scope", json!("launch/patient patient/*.cruds"));
            set("patient", json!("pat-1"));
            set("fhirUser", json!("Patient/pat-1"));
            false
        }
        // The redacted client (`patient-app`) in the context of pat-ssn.
        "ssn" => {
            set("client_id", json!(redact_demo::PATIENT_APP));
            set("sub", json!("patient-pat-ssn"));
            set("scope", json!("launch/patient patient/*.rs"));
            set("patient", json!("pat-ssn"));
            set("fhirUser", json!("Patient/pat-ssn"));
            false
        }
        // The redacted client with user-level read access: sees every patient, no SSN.
        "appuser" => {
            claims.remove("patient");
            claims.insert("client_id".into(), json!(redact_demo::PATIENT_APP));
            claims.insert("sub".into(), json!("front-desk"));
            claims.insert("scope".into(), json!("user/*.rs"));
            true
        }
        // A clinician: everything, SSN included (detector self-test only).
        "clinician" => {
            claims.remove("patient");
            claims.insert("client_id".into(), json!("clinician-app"));
            claims.insert("scope".into(), json!("user/*.cruds"));
            true
        }
        other => panic!("unknown token profile {other:?}"),
    };
    Profile {
        signer: "rs256",
        claims,
        sees_all,
    }
}

/// HMAC-SHA256 (RFC 2104), for keys jsonwebtoken refuses to take.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn signer(name: &str) -> tokens::Signer {
    if name == "hs256-empty" {
        // Header says HS256; the signature is made in `token`.
        let mut unsigned = tokens::named_signer("unsigned");
        unsigned.header_alg = "HS256".into();
        return unsigned;
    }
    let secret = |s: &[u8], kid: &str| tokens::Signer {
        kid: kid.into(),
        alg: Some(Algorithm::HS256),
        key: Some(jsonwebtoken::EncodingKey::from_secret(s).unwrap()),
        header_alg: "HS256".into(),
    };
    match name {
        "hs256-kid" => secret(b"rsa-1", "rsa-1"),
        other => tokens::named_signer(other),
    }
}

/// Expands `$now`, `$now+N`, `$now-N`, `$jwk:NAME` (`rsa`, `attacker`, `ec`) and
/// `$x5t:CERT` (RFC 8705 thumbprint) in a token mutation.
fn expand_token_value(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let word: String = rest[1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == ':' || *c == '-' || *c == '+')
            .collect();
        let consumed = 1 + word.len();
        let now = tokens::now() as i64;
        let value = if word == "now" {
            now.to_string()
        } else if let Some(n) = word.strip_prefix("now+") {
            (now + n.parse::<i64>().unwrap()).to_string()
        } else if let Some(n) = word.strip_prefix("now-") {
            (now - n.parse::<i64>().unwrap()).to_string()
        } else if let Some(name) = word.strip_prefix("jwk:") {
            let k = tokens::keys();
            match name {
                "rsa" => tokens::jwk(&k.rsa, Algorithm::RS256, "rsa-1", true),
                "attacker" => tokens::jwk(&k.rsa_other, Algorithm::RS256, "attacker", true),
                "ec" => tokens::jwk(&k.ec256_other, Algorithm::ES256, "ec-256", true),
                other => panic!("unknown jwk {other:?}"),
            }
            .to_string()
        } else if let Some(name) = word.strip_prefix("x5t:") {
            x5t(cert(name))
        } else {
            panic!("unknown expansion ${word} in {text:?}");
        };
        out.push_str(&value);
        rest = &rest[consumed..];
    }
    out.push_str(rest);
    out
}

fn x5t(issued: &Issued) -> String {
    use sha2::Digest;
    tokens::b64(sha2::Sha256::digest(issued.cert.as_ref()))
}

fn set_member(map: &mut Map<String, Value>, m: &str, line: &str) {
    if let Some((name, value)) = m.split_once('=') {
        let value: Value = serde_json::from_str(&expand_token_value(value))
            .unwrap_or_else(|e| panic!("{line}: bad JSON in {m:?}: {e}"));
        map.insert(name.to_owned(), value);
    } else if let Some(name) = m.strip_suffix('-') {
        map.remove(name);
    } else {
        panic!("{line}: bad mutation {m:?}");
    }
}

/// A token from a corpus cell: `PROFILE` then optional `;`-separated mutations:
/// `signer=NAME`, `h.NAME=JSON`, `h.NAME-`, `c.NAME=JSON`, `c.NAME-`,
/// `hraw=TEXT`, `cappend=TEXT` (raw JSON text inserted before the claims' closing brace,
/// for duplicate members), `sig=zero|zero-der|strip|truncate|flip|reuse`,
/// `form=two-segments|five-segments|space|padded`.
/// The cell `raw:TEXT` is the token text itself.
pub fn token(cell: &str) -> (String, bool) {
    if let Some(raw) = cell.strip_prefix("raw:") {
        return (raw.to_owned(), false);
    }
    let (name, mutations) = cell.split_once(' ').unwrap_or((cell, ""));
    let base = profile(name);
    let mut signer_name = base.signer.to_owned();
    let mut claims = base.claims;
    let mut header: Option<Map<String, Value>> = None;
    let mut header_ops = Vec::new();
    let (mut hraw, mut cappend) = (None, None);
    let (mut sig_ops, mut form_ops) = (Vec::new(), Vec::new());
    for op in mutations
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if let Some(s) = op.strip_prefix("signer=") {
            signer_name = s.to_owned();
        } else if let Some(m) = op.strip_prefix("h.") {
            header_ops.push(m.to_owned());
        } else if let Some(m) = op.strip_prefix("c.") {
            set_member(&mut claims, m, cell);
        } else if let Some(raw) = op.strip_prefix("hraw=") {
            hraw = Some(expand_token_value(raw));
        } else if let Some(raw) = op.strip_prefix("cappend=") {
            cappend = Some(expand_token_value(raw));
        } else if let Some(s) = op.strip_prefix("sig=") {
            sig_ops.push(s.to_owned());
        } else if let Some(s) = op.strip_prefix("form=") {
            form_ops.push(s.to_owned());
        } else {
            panic!("{cell}: unknown token mutation {op:?}");
        }
    }
    let signer = signer(&signer_name);
    let h = header.get_or_insert_with(|| tokens::default_header(&signer));
    for m in &header_ops {
        set_member(h, m, cell);
    }
    let header_text = hraw.unwrap_or_else(|| Value::Object(h.clone()).to_string());
    let mut claims_text = Value::Object(claims).to_string();
    if let Some(extra) = cappend {
        claims_text.pop();
        claims_text.push_str(&extra);
        claims_text.push('}');
    }
    let mut token = tokens::token_from_texts(&signer, &header_text, &claims_text);
    if signer_name == "hs256-empty" {
        // An HMAC keyed with nothing (the contents of /dev/null), which jsonwebtoken won't
        // make.
        let (input, _) = token.rsplit_once('.').unwrap();
        token = format!(
            "{input}.{}",
            tokens::b64(hmac_sha256(b"", input.as_bytes()))
        );
    }
    for op in &sig_ops {
        let (input, sig) = token.rsplit_once('.').unwrap();
        let new_sig = match op.as_str() {
            // CVE-2022-21449: r = s = 0, raw (JWS) and DER forms.
            "zero" => tokens::b64([0u8; 64]),
            "zero-der" => tokens::b64([0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]),
            "strip" => String::new(),
            "truncate" => sig[..sig.len() / 2].to_owned(),
            "flip" => {
                let mut bytes = base64_decode(sig);
                let last = bytes.len() - 1;
                bytes[last] ^= 1;
                tokens::b64(bytes)
            }
            other => panic!("unknown sig op {other:?}"),
        };
        token = format!("{input}.{new_sig}");
    }
    for op in &form_ops {
        token = match op.as_str() {
            "two-segments" => token.rsplit_once('.').unwrap().0.to_owned(),
            "five-segments" => format!("{token}.{}.{}", tokens::b64("x"), tokens::b64("y")),
            "padded" => {
                let parts: Vec<&str> = token.split('.').collect();
                format!("{}==.{}.{}", parts[0], parts[1], parts[2])
            }
            "space" => token.replacen('.', ". ", 1),
            other => panic!("unknown form op {other:?}"),
        };
    }
    (token, base.sees_all)
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}
