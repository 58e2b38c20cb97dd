//! Loading TLS files: each problem is refused with the file named, and what certificates
//! name is what peers are taken for. Certificates are made here with rcgen as the
//! installer makes them (installer/src/certs.rs), plus broken ones.

use super::identity::{identify, Identity};
use super::{Tls, TlsError, TlsFiles, OPERATOR_NAME};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::CertificateDer;
use std::path::Path;

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    Ca { cert: params.self_signed(&key).unwrap(), key }
}

/// A certificate for `name` signed by `ca`; `expired`: valid in 2000 only.
fn leaf(ca: &Ca, name: &str, expired: bool) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2000, 12, 31);
    }
    (params.signed_by(&key, &ca.cert, &ca.key).unwrap(), key)
}

/// Writes `ca.pem`, `<stem>.pem`, `<stem>.key` into `dir`; the files, relative to it.
fn write(dir: &Path, ca: &Ca, stem: &str, (cert, key): &(rcgen::Certificate, KeyPair)) -> TlsFiles {
    std::fs::write(dir.join("ca.pem"), ca.cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{stem}.key")), key.serialize_pem()).unwrap();
    TlsFiles { ca: "ca.pem".into(), certificate: format!("{stem}.pem"), key: format!("{stem}.key") }
}

#[test]
fn a_lab_certificate_loads_with_paths_relative_to_the_base_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = ca();
    let files = write(tmp.path(), &ca, "mirrora", &leaf(&ca, "mirrora", false));
    let tls = Tls::load(&files, tmp.path()).unwrap();
    assert_eq!(tls.name, "mirrora");
}

#[test]
fn each_problem_names_the_file_and_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = ca();
    let good = write(dir, &ca, "mirrora", &leaf(&ca, "mirrora", false));
    let error = |files: &TlsFiles| Tls::load(files, dir).unwrap_err();

    let missing = TlsFiles { ca: "nowhere.pem".into(), ..good.clone() };
    let e = error(&missing);
    assert!(matches!(e, TlsError::Missing { what: "CA certificate", .. }), "{e}");
    assert!(e.to_string().contains("nowhere.pem") && e.to_string().contains("does not exist"), "{e}");

    std::fs::create_dir(dir.join("adir")).unwrap();
    let e = error(&TlsFiles { certificate: "adir".into(), ..good.clone() });
    assert!(matches!(e, TlsError::Unreadable { what: "certificate", .. }), "{e}");
    assert!(e.to_string().contains("adir"), "{e}");

    std::fs::write(dir.join("text.pem"), "not a certificate\n").unwrap();
    let e = error(&TlsFiles { certificate: "text.pem".into(), ..good.clone() });
    assert!(matches!(e, TlsError::NotPem { what: "certificate", .. }), "{e}");
    assert!(e.to_string().contains("text.pem") && e.to_string().contains("CERTIFICATE"), "{e}");
    let e = error(&TlsFiles { key: "text.pem".into(), ..good.clone() });
    assert!(matches!(e, TlsError::NotPem { what: "key", .. }), "{e}");

    let expired = write(dir, &ca, "old", &leaf(&ca, "old", true));
    let e = error(&expired);
    assert!(e.to_string().contains("old.pem") && e.to_string().contains("has expired"), "{e}");

    let other = self::ca();
    let foreign = leaf(&other, "mirrora", false);
    std::fs::write(dir.join("foreign.pem"), foreign.0.pem()).unwrap();
    std::fs::write(dir.join("foreign.key"), foreign.1.serialize_pem()).unwrap();
    let e = error(&TlsFiles { certificate: "foreign.pem".into(), key: "foreign.key".into(), ..good.clone() });
    assert!(e.to_string().contains("foreign.pem") && e.to_string().contains("not signed by the lab CA"), "{e}");

    let _ = write(dir, &ca, "mirrorb", &leaf(&ca, "mirrorb", false));
    let e = error(&TlsFiles { key: "mirrorb.key".into(), ..good.clone() });
    assert!(matches!(e, TlsError::KeyMismatch { .. }), "{e}");
    assert!(e.to_string().contains("mirrorb.key") && e.to_string().contains("mirrora.pem"), "{e}");
}

#[test]
fn a_certificate_is_taken_for_what_it_names() {
    let ca = ca();
    let der = |name: &str| CertificateDer::from(leaf(&ca, name, false).0.der().to_vec());
    let member = identify(Some(&der("mirrora")));
    assert!(member.is_member() && member.names_member("MIRRORA") && !member.names_member("MIRRORB"));
    let operator = identify(Some(&der(OPERATOR_NAME)));
    assert!(matches!(operator, Identity::Operator) && !operator.is_member() && !operator.names_member("MIRRORA"));
    assert!(operator.is_operator_or_member());
    let arbiter = identify(Some(&der(super::ARBITER_NAME)));
    assert!(matches!(arbiter, Identity::Arbiter) && !arbiter.is_operator_or_member());
    assert!(matches!(identify(None), Identity::Anonymous));
    assert!(Identity::Plain.names_member("ANYONE"), "without TLS a JOIN is believed, as before");
}

#[test]
fn the_web_ports_plain_refusal_is_a_whole_http_response() {
    let text = std::str::from_utf8(super::client_ports::HTTP_PLAIN_REFUSAL).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let length: usize = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap().parse().unwrap();
    assert_eq!(body.len(), length, "{text}");
    assert!(
        super::client_ports::RESP_PLAIN_REFUSAL.starts_with(b"-ERR ")
            && super::client_ports::RESP_PLAIN_REFUSAL.ends_with(b"\r\n")
    );
}

#[test]
fn client_port_tls_loads_lab_files_and_names_a_missing_one() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = ca();
    let files = write(tmp.path(), &ca, "mirrora", &leaf(&ca, "mirrora", false));
    let loaded = super::client_ports::ClientTls::load(&files, tmp.path()).unwrap();
    assert_eq!(loaded.ca, tmp.path().join("ca.pem"), "the state file gets the CA's absolute path");
    let missing = TlsFiles { key: "nope.key".into(), ..files };
    let e = super::client_ports::ClientTls::load(&missing, tmp.path()).unwrap_err().to_string();
    assert!(e.contains("nope.key") && e.contains("does not exist"), "{e}");
}

#[test]
fn host_names_for_client_ports_are_addresses_or_dns_names() {
    assert!(super::host_server_name("127.0.0.1").is_ok());
    assert!(super::host_server_name("[::1]").is_ok());
    assert!(super::host_server_name("mirrora").is_ok());
    assert!(super::host_server_name("not a host").is_err());
}
