//! Identity extraction and policy matching on real certificates generated with rcgen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;
use base64::Engine;
use rcgen::{
    CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use sha2::{Digest, Sha256};

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Test");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ca {
        issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
    }
}

fn leaf(
    ca: &Ca,
    cn: &str,
    sans: Vec<SanType>,
    eku: Vec<ExtendedKeyUsagePurpose>,
) -> (Vec<u8>, KeyPair) {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CountryName, "US");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Example, Inc.");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.subject_alt_names = sans;
    params.extended_key_usages = eku;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.serial_number = Some(SerialNumber::from_slice(&[0x01, 0x02, 0xfe]));
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.der().to_vec(), key)
}

fn client(ca: &Ca) -> (Vec<u8>, ClientIdentity) {
    let (der, _) = leaf(
        ca,
        "lab gateway",
        vec![
            SanType::DnsName("gw.lab.example".try_into().unwrap()),
            SanType::URI("spiffe://lab.example/ns/prod/sa/ingest".try_into().unwrap()),
            SanType::Rfc822Name("ops@lab.example".try_into().unwrap()),
            SanType::IpAddress("192.0.2.1".parse().unwrap()),
        ],
        vec![ExtendedKeyUsagePurpose::ClientAuth],
    );
    let id = ClientIdentity::from_der(&der).unwrap();
    (der, id)
}

#[test]
fn identity_fields_come_from_the_certificate() {
    let ca = ca("Test CA");
    let (der, id) = client(&ca);
    assert_eq!(
        id.subject().to_string(),
        r"CN=lab gateway,O=Example\, Inc.,C=US"
    );
    assert_eq!(id.subject().common_name(), Some("lab gateway"));
    assert_eq!(id.issuer().to_string(), "CN=Test CA,O=Test");
    assert_eq!(id.serial_hex(), "0102fe");
    assert_eq!(id.dns_names(), ["gw.lab.example"]);
    assert_eq!(id.uris(), ["spiffe://lab.example/ns/prod/sa/ingest"]);
    assert_eq!(id.emails(), ["ops@lab.example"]);
    assert_eq!(
        id.ip_addresses(),
        ["192.0.2.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(id.allows_client_auth());
    assert!(id.not_before() < id.not_after());
    // RFC 8705 §3.1: x5t#S256 is the base64url SHA-256 of the DER.
    let digest: [u8; 32] = Sha256::digest(&der).into();
    assert_eq!(id.thumbprint().0, digest);
    assert_eq!(
        id.x5t_s256(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    );
    assert_eq!(id.thumbprint_hex().len(), 64);
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(id.spki_pin())
            .unwrap(),
        id.spki_sha256()
    );
    assert!(id.authority_key_id().is_some());
}

#[test]
fn trailing_bytes_are_refused() {
    let ca = ca("Test CA");
    let (mut der, _) = client(&ca);
    der.push(0);
    assert_eq!(ClientIdentity::from_der(&der), Err(CertificateParseError));
}

#[test]
fn server_auth_only_certificates_are_not_for_clients() {
    // RFC 5280 §4.2.1.12.
    let ca = ca("Test CA");
    let (der, _) = leaf(
        &ca,
        "server",
        vec![],
        vec![ExtendedKeyUsagePurpose::ServerAuth],
    );
    assert!(!ClientIdentity::from_der(&der).unwrap().allows_client_auth());
    let (der, _) = leaf(&ca, "no eku", vec![], vec![]);
    assert!(ClientIdentity::from_der(&der).unwrap().allows_client_auth());
}

#[test]
fn validity_window_with_leeway() {
    let ca = ca("Test CA");
    let (_, id) = client(&ca);
    let at = |secs: i64| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
    let zero = std::time::Duration::ZERO;
    assert_eq!(
        id.validity_at(at(id.not_before() + 1), zero),
        Validity::Valid
    );
    assert_eq!(
        id.validity_at(at(id.not_after() + 1), zero),
        Validity::Expired
    );
    assert_eq!(
        id.validity_at(at(id.not_after() + 1), std::time::Duration::from_secs(5)),
        Validity::Valid
    );
}

fn allowed(rule: ClientMatch, id: &ClientIdentity) -> Option<MatchedBy> {
    let policy = TrustPolicy::builder().allow("c", rule).build().unwrap();
    policy.evaluate(id).map(|(client, by)| {
        assert_eq!(client.name(), "c");
        by
    })
}

#[test]
fn every_rule_kind_matches_the_right_certificate() {
    let ca = ca("Test CA");
    let (der, id) = client(&ca);
    let b64 = base64::engine::general_purpose::STANDARD;
    let cases = [
        (
            ClientMatch::spki_pin(&id.spki_pin()).unwrap(),
            MatchedBy::SpkiPin,
        ),
        (
            ClientMatch::spki_pin(&format!("sha256//{}", id.spki_pin())).unwrap(),
            MatchedBy::SpkiPin,
        ),
        (
            ClientMatch::thumbprint(&id.thumbprint_hex()).unwrap(),
            MatchedBy::Thumbprint,
        ),
        (
            ClientMatch::thumbprint(&id.x5t_s256()).unwrap(),
            MatchedBy::Thumbprint,
        ),
        (
            ClientMatch::thumbprint(&b64.encode(id.thumbprint().0)).unwrap(),
            MatchedBy::Thumbprint,
        ),
        (
            ClientMatch::san_uri("spiffe://lab.example/ns/prod/sa/ingest").unwrap(),
            MatchedBy::SanUri,
        ),
        (
            ClientMatch::san_uri("spiffe://lab.example/ns/prod/sa/*").unwrap(),
            MatchedBy::SanUri,
        ),
        (
            ClientMatch::san_dns("GW.lab.example.").unwrap(),
            MatchedBy::SanDns,
        ),
        (
            ClientMatch::san_dns("*.lab.example").unwrap(),
            MatchedBy::SanDns,
        ),
        (
            ClientMatch::san_email("OPS@lab.example").unwrap(),
            MatchedBy::SanEmail,
        ),
        (
            ClientMatch::subject(r"CN=lab gateway,O=Example\, Inc.,C=US").unwrap(),
            MatchedBy::Subject,
        ),
        (
            ClientMatch::subject(r"C=US, O=Example\2C Inc., CN=lab gateway").unwrap(),
            MatchedBy::Subject,
        ),
        (
            ClientMatch::issuer("CN=Test CA,O=Test").unwrap(),
            MatchedBy::Issuer,
        ),
        (
            ClientMatch::issued_by(ca.issuer.der()).unwrap(),
            MatchedBy::Issuer,
        ),
        (
            ClientMatch::all([
                ClientMatch::issued_by(ca.issuer.der()).unwrap(),
                ClientMatch::san_dns("*.lab.example").unwrap(),
            ])
            .unwrap(),
            MatchedBy::All,
        ),
    ];
    for (rule, by) in cases {
        assert_eq!(allowed(rule.clone(), &id), Some(by), "{rule:?}");
    }
    assert!(!der.is_empty());
}

#[test]
fn near_misses_do_not_match() {
    let ca = ca("Test CA");
    let other = self::ca("Test CA");
    let (_, id) = client(&ca);
    let misses = [
        ClientMatch::spki_pin(&"00".repeat(32)).unwrap(),
        ClientMatch::thumbprint(&"00".repeat(32)).unwrap(),
        ClientMatch::san_uri("spiffe://lab.example/ns/prod/sa/ingest/x").unwrap(),
        ClientMatch::san_uri("spiffe://lab.example/ns/prod/*").unwrap(),
        ClientMatch::san_uri("spiffe://lab.example/ns/prod/sa/INGEST").unwrap(),
        ClientMatch::san_dns("lab.example").unwrap(),
        ClientMatch::san_dns("*.other.example").unwrap(),
        ClientMatch::san_dns("*.gw.lab.example").unwrap(),
        ClientMatch::san_email("ops@lab.example.org").unwrap(),
        ClientMatch::subject("CN=lab gateway,O=Example\\, Inc.").unwrap(),
        ClientMatch::issuer("CN=Other CA,O=Test").unwrap(),
        // Same DN, different key: the authority key identifier tells them apart.
        ClientMatch::issued_by(other.issuer.der()).unwrap(),
        ClientMatch::all([
            ClientMatch::issued_by(ca.issuer.der()).unwrap(),
            ClientMatch::san_dns("*.payer.example").unwrap(),
        ])
        .unwrap(),
    ];
    for rule in misses {
        assert_eq!(allowed(rule.clone(), &id), None, "{rule:?}");
    }
}

#[test]
fn wildcard_segments_refuse_dot_segments() {
    let ca = ca("Test CA");
    let (der, _) = leaf(
        &ca,
        "x",
        vec![SanType::URI(
            "spiffe://lab.example/sa/..".try_into().unwrap(),
        )],
        vec![ExtendedKeyUsagePurpose::ClientAuth],
    );
    let id = ClientIdentity::from_der(&der).unwrap();
    assert_eq!(
        allowed(
            ClientMatch::san_uri("spiffe://lab.example/sa/*").unwrap(),
            &id
        ),
        None
    );
}

#[test]
fn first_matching_rule_names_the_client() {
    let ca = ca("Test CA");
    let (_, id) = client(&ca);
    let policy = TrustPolicy::builder()
        .allow("nobody", ClientMatch::san_dns("other.example").unwrap())
        .allow("by-dns", ClientMatch::san_dns("*.lab.example").unwrap())
        .allow(
            "by-issuer",
            ClientMatch::issued_by(ca.issuer.der()).unwrap(),
        )
        .build()
        .unwrap();
    assert_eq!(policy.evaluate(&id).unwrap().0.name(), "by-dns");
    assert_eq!(policy.client_names(), ["nobody", "by-dns", "by-issuer"]);
    assert!(TrustPolicy::deny_all().evaluate(&id).is_none());
}

#[test]
fn refusals_have_the_documented_status_and_code() {
    use crate::fhir::IssueType;
    use http::StatusCode;
    let table = [
        (
            IdentityRefusal::MissingCertificate,
            StatusCode::UNAUTHORIZED,
            IssueType::Login,
        ),
        (
            IdentityRefusal::MalformedHeader,
            StatusCode::BAD_REQUEST,
            IssueType::Structure,
        ),
        (
            IdentityRefusal::UnreadableCertificate,
            StatusCode::UNAUTHORIZED,
            IssueType::Unknown,
        ),
        (
            IdentityRefusal::UntrustedIssuer,
            StatusCode::UNAUTHORIZED,
            IssueType::Unknown,
        ),
        (
            IdentityRefusal::Revoked,
            StatusCode::UNAUTHORIZED,
            IssueType::Unknown,
        ),
        (
            IdentityRefusal::WrongKeyUsage,
            StatusCode::UNAUTHORIZED,
            IssueType::Unknown,
        ),
        (
            IdentityRefusal::Expired,
            StatusCode::UNAUTHORIZED,
            IssueType::Expired,
        ),
        (
            IdentityRefusal::NotYetValid,
            StatusCode::UNAUTHORIZED,
            IssueType::Unknown,
        ),
        (
            IdentityRefusal::NotAllowed,
            StatusCode::FORBIDDEN,
            IssueType::Forbidden,
        ),
    ];
    for (refusal, status, code) in table {
        let response = refusal.to_response::<http_body_util::Empty<bytes::Bytes>>();
        assert_eq!(response.status(), status, "{refusal:?}");
        assert_eq!(refusal.issue_type(), code, "{refusal:?}");
        assert_eq!(response.headers()["content-type"], "application/fhir+json");
    }
}
