//! Reading the lab CA, a certificate and its key from PEM files, and checking them before
//! any connection depends on them: each error names the file and what is wrong with it.

use super::{Tls, TlsError};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use std::path::Path;
use std::sync::Arc;

/// The one crypto provider: ring. rustls deprecates it for lacking post-quantum key
/// exchange; aws-lc has that but needs cmake and a C toolchain in every build and does not
/// suit the static binaries of the images. A lab CA's lifetime is a lab's: classical key
/// exchange is the trade-off we take.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => TlsError::Missing { what, path: path.to_path_buf() },
        _ => TlsError::Unreadable { what, path: path.to_path_buf(), source },
    })
}

/// Every certificate of a PEM file (at least one).
pub fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(what, path)?;
    let not_pem =
        |detail: String| TlsError::NotPem { what, path: path.to_path_buf(), expected: "a CERTIFICATE", detail };
    let certs =
        CertificateDer::pem_slice_iter(&bytes).collect::<Result<Vec<_>, _>>().map_err(|e| not_pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(not_pem("no BEGIN CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// The private key of a PEM file.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read("key", path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::NotPem {
        what: "key",
        path: path.to_path_buf(),
        expected: "a PRIVATE KEY",
        detail: e.to_string(),
    })
}

/// The three files, loaded and checked: the certificate is signed by the CA, valid now,
/// and matches the key.
pub(super) struct Checked {
    provider: Arc<CryptoProvider>,
    roots: Arc<rustls::RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// The certificate file's stem (for the logs).
    name: String,
}

pub(super) fn checked(ca_path: &Path, cert_path: &Path, key_path: &Path) -> Result<Checked, TlsError> {
    let provider = provider();
    let ca = certificates("CA certificate", ca_path)?.swap_remove(0);
    let chain = certificates("certificate", cert_path)?;
    let key = private_key(key_path)?;
    let anchor = webpki::anchor_from_trusted_cert(&ca)
        .map_err(|e| TlsError::Certificate { path: ca_path.to_path_buf(), problem: format!("not a usable CA: {e}") })?
        .to_owned();
    check_signed_and_current(&chain, &anchor, cert_path, ca_path)?;
    let certified = rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider).map_err(|e| {
        TlsError::KeyMismatch {
            key: key_path.to_path_buf(),
            certificate: cert_path.to_path_buf(),
            problem: e.to_string(),
        }
    })?;
    certified.keys_match().map_err(|e| TlsError::KeyMismatch {
        key: key_path.to_path_buf(),
        certificate: cert_path.to_path_buf(),
        problem: e.to_string(),
    })?;
    let name = cert_path.file_stem().map_or_else(|| cert_path.display().to_string(), |s| s.to_string_lossy().into());
    Ok(Checked { provider, roots: Arc::new(roots_of(ca, ca_path)?), chain, key, name })
}

/// A root store holding the one CA.
fn roots_of(ca: CertificateDer<'static>, ca_path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).map_err(|e| TlsError::Certificate { path: ca_path.to_path_buf(), problem: e.to_string() })?;
    Ok(roots)
}

fn config_error(e: rustls::Error) -> TlsError {
    TlsError::Config(e.to_string())
}

/// Loads the three files (see [`checked`]) and builds the server and client
/// configurations of mutual TLS.
pub fn build(ca_path: &Path, cert_path: &Path, key_path: &Path) -> Result<Tls, TlsError> {
    let Checked { provider, roots, chain, key, name } = checked(ca_path, cert_path, key_path)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(config_error)?;
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(config_error)?;
    Ok(Tls { server: Arc::new(server), client: Arc::new(client), name })
}

/// The server configuration of a client port (superserver, web port): a client need not
/// present a certificate (passwords authenticate it), but one it presents must be signed
/// by the CA. `alpn`: the protocols offered (the web port: HTTP/1.1).
pub fn client_port_server(
    ca_path: &Path,
    cert_path: &Path,
    key_path: &Path,
    alpn: &[&[u8]],
) -> Result<(Arc<rustls::ServerConfig>, String), TlsError> {
    let Checked { provider, roots, chain, key, name } = checked(ca_path, cert_path, key_path)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(config_error)?;
    server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok((Arc::new(server), name))
}

/// A client configuration that believes servers with a certificate `ca_path` signed and
/// presents none (the CLI, scripts): for the client ports.
pub fn ca_only_client(ca_path: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let ca = certificates("CA certificate", ca_path)?.swap_remove(0);
    let roots = roots_of(ca, ca_path)?;
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(client))
}

/// The certificate must chain to the lab CA and be valid now, for both ends of a
/// connection (every lab party serves and connects).
fn check_signed_and_current(
    chain: &[CertificateDer<'static>],
    anchor: &rustls::pki_types::TrustAnchor<'static>,
    cert_path: &Path,
    ca_path: &Path,
) -> Result<(), TlsError> {
    let problem = |problem: String| TlsError::Certificate { path: cert_path.to_path_buf(), problem };
    let end = webpki::EndEntityCert::try_from(&chain[0]).map_err(|e| problem(format!("cannot be parsed: {e}")))?;
    for usage in [webpki::KeyUsage::server_auth(), webpki::KeyUsage::client_auth()] {
        end.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            std::slice::from_ref(anchor),
            &chain[1..],
            UnixTime::now(),
            usage,
            None,
            None,
        )
        .map_err(|e| {
            problem(match e {
                webpki::Error::CertExpired { .. } => format!("has expired ({e:?}): make a new one"),
                webpki::Error::CertNotValidYet { .. } => format!("is not valid yet ({e:?}): check the clock"),
                // Another lab's CA has the same name: its signature is what fails.
                webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey => {
                    format!("is not signed by the lab CA {}", ca_path.display())
                }
                other => format!("is not usable with the lab CA {}: {other}", ca_path.display()),
            })
        })?;
    }
    Ok(())
}
