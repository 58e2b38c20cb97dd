//! The lab CA and the lab's certificates (docs/design/security.md, "Member
//! authentication"): made once with rcgen under `<lab dir>/tls/`, then reused; a member
//! that joins the lab later gets a certificate signed by the same CA.
//!
//! - `ca.pem` / `ca.key`: the lab CA. Its key never leaves this directory: only the
//!   installer signs.
//! - `<member>.pem` / `<member>.key` (member name lower-cased): the member's engine and
//!   the agent beside it;
//! - `arbiter.pem` / `arbiter.key`, `operator.pem` / `operator.key`: the arbiter and the
//!   installer itself.
//!
//! Private keys are written mode 0600. What each certificate names is the contract in
//! `engine::tls::identity`. A member's certificate also names what clients dial to reach
//! its superserver and web port when they serve TLS ([`CLIENT_HOSTS`], and its container
//! host name, which is its member name): so `redis-cli --tls --cacert ca.pem` and
//! `curl --cacert ca.pem` verify it. A member certificate made before it carried those
//! names is made again (same CA, new key).

use engine::tls::{identity::dns_name, TlsFiles, ARBITER_NAME, OPERATOR_NAME};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The names of a container's TLS files (its directory: docker_layout::TLS_DIR for the
/// docker target, `<out>/<party>/` of [`export`] for the Compose lab): the lab CA's
/// certificate, the party's certificate, the party's key.
pub const TLS_FILES: [&str; 3] = ["ca.pem", "certificate.pem", "key.pem"];

/// The names a member's certificate carries besides its member name: how the local and
/// docker targets' clients reach its ports (published on the host's loopback).
pub const CLIENT_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The lab CA's subject (the same every time: a CA reloaded from its key signs
/// certificates that chain to the saved `ca.pem`).
const CA_NAME: &str = "Mirrorlab lab CA";

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("lab certificates {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("lab certificates {path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
}

/// The lab's certificate directory.
#[derive(Debug, Clone)]
pub struct LabCerts {
    pub dir: PathBuf,
}

/// A party of the lab: which certificate it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party<'a> {
    Member(&'a str),
    Arbiter,
    Operator,
}

impl Party<'_> {
    /// The file stem of its certificate and key (and its directory in `export`).
    pub fn stem(&self) -> String {
        match self {
            Party::Member(m) => dns_name(m),
            Party::Arbiter => "arbiter".into(),
            Party::Operator => "operator".into(),
        }
    }

    /// The DNS name its certificate carries (engine::tls::identity).
    fn dns(&self) -> String {
        match self {
            Party::Member(m) => dns_name(m),
            Party::Arbiter => ARBITER_NAME.into(),
            Party::Operator => OPERATOR_NAME.into(),
        }
    }

    /// The subject alternative names of its certificate: its name, and for a member the
    /// hosts clients dial.
    fn alt_names(&self) -> Result<Vec<SanType>, String> {
        let mut names = vec![SanType::DnsName(self.dns().try_into().map_err(|e| format!("{e}"))?)];
        if matches!(self, Party::Member(_)) {
            for host in CLIENT_HOSTS {
                names.push(match host.parse::<std::net::IpAddr>() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) => SanType::DnsName(host.try_into().map_err(|e| format!("{e}"))?),
                });
            }
        }
        Ok(names)
    }
}

/// Whether the certificate file at `path` names every host of [`CLIENT_HOSTS`] (a member
/// certificate made before it did is made again).
fn names_client_hosts(path: &Path) -> bool {
    let Ok(chain) = engine::tls::load::certificates("certificate", path) else { return false };
    CLIENT_HOSTS.iter().all(|host| engine::tls::identity::names_host(&chain[0], host))
}

impl LabCerts {
    pub fn new(dir: impl Into<PathBuf>) -> LabCerts {
        LabCerts { dir: dir.into() }
    }

    /// Makes the CA (if there is none yet) and every missing certificate among `parties`.
    /// Existing files are kept: a lab restarted keeps its certificates.
    pub fn ensure(&self, parties: &[Party<'_>]) -> Result<(), CertError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CertError::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let (ca_cert, ca_key) = self.ca()?;
        for party in parties {
            let (cert_path, key_path) = self.paths(*party);
            let current = cert_path.exists() && key_path.exists();
            if current && (!matches!(party, Party::Member(_)) || names_client_hosts(&cert_path)) {
                continue;
            }
            let key = KeyPair::generate().map_err(|e| self.invalid(&key_path, e))?;
            let mut params = CertificateParams::new(vec![party.dns()]).map_err(|e| self.invalid(&cert_path, e))?;
            params.distinguished_name.push(DnType::CommonName, party.dns());
            params.subject_alt_names = party.alt_names().map_err(|e| self.invalid(&cert_path, e))?;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
            // Every party both serves and connects.
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
            let cert = params.signed_by(&key, &ca_cert, &ca_key).map_err(|e| self.invalid(&cert_path, e))?;
            write_private(&key_path, key.serialize_pem().as_bytes())?;
            std::fs::write(&cert_path, cert.pem()).map_err(io(&cert_path))?;
        }
        Ok(())
    }

    /// The CA, made on first use. The certificate is rebuilt from the saved key with the
    /// same subject: certificates it signs chain to the saved `ca.pem`.
    fn ca(&self) -> Result<(rcgen::Certificate, KeyPair), CertError> {
        let (ca_pem, ca_key_path) = (self.ca_file(), self.dir.join("ca.key"));
        let fresh = !ca_key_path.exists();
        let key = if fresh {
            let key = KeyPair::generate().map_err(|e| self.invalid(&ca_key_path, e))?;
            write_private(&ca_key_path, key.serialize_pem().as_bytes())?;
            key
        } else {
            let text = std::fs::read_to_string(&ca_key_path)
                .map_err(|source| CertError::Io { path: ca_key_path.clone(), source })?;
            KeyPair::from_pem(&text).map_err(|e| self.invalid(&ca_key_path, e))?
        };
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| self.invalid(&ca_pem, e))?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, CA_NAME);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).map_err(|e| self.invalid(&ca_pem, e))?;
        if fresh || !ca_pem.exists() {
            std::fs::write(&ca_pem, cert.pem()).map_err(|source| CertError::Io { path: ca_pem.clone(), source })?;
        }
        Ok((cert, key))
    }

    fn invalid(&self, path: &Path, e: impl std::fmt::Display) -> CertError {
        CertError::Invalid { path: path.to_path_buf(), problem: e.to_string() }
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A party's certificate and key.
    pub fn paths(&self, party: Party<'_>) -> (PathBuf, PathBuf) {
        let stem = party.stem();
        (self.dir.join(format!("{stem}.pem")), self.dir.join(format!("{stem}.key")))
    }

    /// The files a party's process is given.
    pub fn files(&self, party: Party<'_>) -> TlsFiles {
        let (cert, key) = self.paths(party);
        let text = |p: PathBuf| p.display().to_string();
        TlsFiles { ca: text(self.ca_file()), certificate: text(cert), key: text(key) }
    }

    /// The installer's own TLS identity, loaded for talking to agents.
    pub fn operator(&self) -> Result<engine::tls::Tls, engine::tls::TlsError> {
        engine::tls::Tls::load(&self.files(Party::Operator), Path::new("/"))
    }
}

/// The files one container is given (`mirrorlab secrets`, the Compose lab): under
/// `<out>/<party>/`, the names docker_layout::TLS_FILES gives them. Certificates 0444, the
/// key 0600, all owned by `owner` (uid and gid) when given: the images' user, which must
/// read them, while `secrets` runs as root to own the shared volume. The CA's key is not
/// among them: it stays in the lab CA's directory.
pub fn export(
    certs: &LabCerts,
    parties: &[Party<'_>],
    out: &Path,
    owner: Option<u32>,
) -> Result<Vec<PathBuf>, CertError> {
    certs.ensure(parties)?;
    let ca = std::fs::read(certs.ca_file()).map_err(|source| CertError::Io { path: certs.ca_file(), source })?;
    let mut written = Vec::new();
    for party in parties {
        let dir = out.join(party.stem());
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CertError::Io { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let (cert, key) = certs.paths(*party);
        let cert = std::fs::read(&cert).map_err(io(&cert))?;
        let key = std::fs::read(&key).map_err(io(&key))?;
        let [ca_name, cert_name, key_name] = TLS_FILES;
        for (name, bytes, mode) in [(ca_name, &ca, 0o444), (cert_name, &cert, 0o444), (key_name, &key, 0o600)] {
            let path = dir.join(name);
            // Replaced whole: an older file may be read-only.
            let _ = std::fs::remove_file(&path);
            let mut f =
                std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&path).map_err(io(&path))?;
            f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io(&path))?;
            if let Some(uid) = owner {
                std::os::unix::fs::chown(&path, Some(uid), Some(uid)).map_err(io(&path))?;
            }
            written.push(path);
        }
        if let Some(uid) = owner {
            std::os::unix::fs::chown(&dir, Some(uid), Some(uid)).map_err(io(&dir))?;
        }
    }
    Ok(written)
}

/// Writes a private key readable by its owner only (created 0600, never wider).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CertError> {
    let io = |source| CertError::Io { path: path.to_path_buf(), source };
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn certificates_are_made_once_signed_by_one_ca_and_load_for_mutual_tls() {
        let tmp = tempfile::tempdir().unwrap();
        let certs = LabCerts::new(tmp.path().join("tls"));
        certs.ensure(&[Party::Member("MEMBERA"), Party::Operator]).unwrap();
        let ca_before = std::fs::read(certs.ca_file()).unwrap();
        let a_before = std::fs::read(certs.paths(Party::Member("MEMBERA")).0).unwrap();
        // A member added later: same CA, the existing certificates untouched.
        certs.ensure(&[Party::Member("MEMBERA"), Party::Member("MEMBERB"), Party::Arbiter, Party::Operator]).unwrap();
        assert_eq!(std::fs::read(certs.ca_file()).unwrap(), ca_before);
        assert_eq!(std::fs::read(certs.paths(Party::Member("MEMBERA")).0).unwrap(), a_before);
        for party in [Party::Member("MEMBERA"), Party::Member("MEMBERB"), Party::Arbiter, Party::Operator] {
            let tls = engine::tls::Tls::load(&certs.files(party), Path::new("/"));
            assert!(tls.is_ok(), "{party:?}: {:?}", tls.err());
            let mode = std::fs::metadata(certs.paths(party).1).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{party:?}");
        }
        let mode = std::fs::metadata(certs.dir.join("ca.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn member_certificates_name_the_hosts_clients_dial_and_older_ones_are_made_again() {
        let tmp = tempfile::tempdir().unwrap();
        let certs = LabCerts::new(tmp.path().join("tls"));
        let member = Party::Member("MIRRORA");
        certs.ensure(&[member, Party::Arbiter]).unwrap();
        assert!(names_client_hosts(&certs.paths(member).0));
        assert!(!names_client_hosts(&certs.paths(Party::Arbiter).0), "only members serve clients");
        // A member certificate from before (it names no client host) is made again.
        let (arbiter_cert, arbiter_key) = certs.paths(Party::Arbiter);
        std::fs::copy(&arbiter_cert, certs.paths(member).0).unwrap();
        std::fs::copy(&arbiter_key, certs.paths(member).1).unwrap();
        certs.ensure(&[member]).unwrap();
        assert!(names_client_hosts(&certs.paths(member).0));
        assert!(engine::tls::Tls::load(&certs.files(member), Path::new("/")).is_ok());
    }

    #[test]
    fn export_gives_each_party_its_files_and_never_the_ca_key() {
        let tmp = tempfile::tempdir().unwrap();
        let certs = LabCerts::new(tmp.path().join("ca"));
        let out = tmp.path().join("out");
        let parties = [Party::Member("MIRRORA"), Party::Arbiter, Party::Operator];
        let written = export(&certs, &parties, &out, None).unwrap();
        assert_eq!(written.len(), 9);
        for party in parties {
            let dir = out.join(party.stem());
            let [ca, cert, key] = TLS_FILES.map(|f| dir.join(f));
            let files = TlsFiles {
                ca: ca.display().to_string(),
                certificate: cert.display().to_string(),
                key: key.display().to_string(),
            };
            assert!(engine::tls::Tls::load(&files, Path::new("/")).is_ok(), "{party:?}");
            assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let ca_key = std::fs::read(certs.dir.join("ca.key")).unwrap();
        for path in walk(&out) {
            assert_ne!(std::fs::read(&path).unwrap(), ca_key, "{} is the CA's key", path.display());
        }
        // A second run (the Compose lab's `up` again) rewrites the same files.
        export(&certs, &parties, &out, None).unwrap();
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
        files
    }
}
