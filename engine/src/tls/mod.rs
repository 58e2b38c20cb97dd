//! Mutual TLS between the members of a lab: the data channel, the agents and the arbiter
//! (docs/design/security.md, "Member authentication").
//!
//! Every lab party holds a certificate signed by the lab CA (made by `mirrorlab up`, see
//! installer/src/certs.rs). A server here requires a client certificate signed by that CA
//! and a client verifies that the server's certificate, signed by the same CA, names the
//! party it meant to reach. What a certificate names decides what its holder may do
//! ([`identity`]).
//!
//! - [`load`]: the PEM files, checked (missing, unreadable, not PEM, expired, key mismatch);
//! - [`identity`]: the names certificates carry and what a peer's certificate proves;
//! - [`client_ports`]: optional TLS on the superserver and the web port, where clients
//!   need not present a certificate (their password authenticates them).
//!
//! Only the ring provider is used (no aws-lc): it builds for the static binaries the
//! images ship.

pub mod client_ports;
pub mod identity;
pub mod load;
#[cfg(test)]
mod tests;

use rustls::pki_types::{CertificateDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

pub use identity::{Identity, ARBITER_NAME, OPERATOR_NAME};

/// How long a TLS handshake may take before the connection is closed: a peer that opens
/// a connection and never finishes the handshake holds a connection slot no longer.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the lab CA, this party's certificate and its private key are (PEM files).
/// Relative paths are taken from the engine's data directory (engine.yaml) or the
/// current directory (flags).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The lab CA's certificate: peers are believed only with a certificate it signed.
    pub ca: String,
    /// This party's certificate (signed by the lab CA).
    pub certificate: String,
    /// This party's private key.
    pub key: String,
}

impl TlsFiles {
    /// The three paths, each relative to `base` unless absolute.
    pub fn resolved(&self, base: &Path) -> [PathBuf; 3] {
        [&self.ca, &self.certificate, &self.key].map(|p| base.join(p))
    }
}

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("TLS {what} {path}: the file does not exist")]
    Missing { what: &'static str, path: PathBuf },
    #[error("TLS {what} {path}: cannot read it: {source}")]
    Unreadable { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("TLS {what} {path}: not a PEM file with {expected} ({detail})")]
    NotPem { what: &'static str, path: PathBuf, expected: &'static str, detail: String },
    #[error("TLS certificate {path}: {problem}")]
    Certificate { path: PathBuf, problem: String },
    #[error("TLS key {key} does not belong to the certificate {certificate}: {problem}")]
    KeyMismatch { key: PathBuf, certificate: PathBuf, problem: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// A loaded TLS identity: the configurations for serving and for connecting.
pub struct Tls {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    /// The name this party's own certificate carries (for the logs).
    pub name: String,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads and checks the files (see [`load`]), then builds both configurations.
    pub fn load(files: &TlsFiles, base: &Path) -> Result<Tls, TlsError> {
        let [ca, certificate, key] = files.resolved(base);
        load::build(&ca, &certificate, &key)
    }

    /// The server side: every client must present a certificate signed by the lab CA.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server.clone())
    }

    /// The client side (async): presents this party's certificate.
    pub fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(self.client.clone())
    }

    /// The client configuration (the blocking client, [`crate::client`]).
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        self.client.clone()
    }

    /// What the certificate a peer presented proves (it was verified against the lab CA
    /// during the handshake; this reads which names it carries).
    pub fn identify(&self, peer: Option<&[CertificateDer<'static>]>) -> Identity {
        identity::identify(peer.and_then(|chain| chain.first()))
    }
}

/// The name a client expects the server's certificate to carry: a member's name, or
/// [`ARBITER_NAME`].
pub fn server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(identity::dns_name(name))
        .map_err(|e| TlsError::Config(format!("{name:?} cannot be a certificate name: {e}")))
}

/// The name a client expects the certificate of a client port to carry: the host it
/// dialled (an IP address such as `127.0.0.1`, or a DNS name such as `localhost` or a
/// member's container name), as HTTPS clients and `redis-cli --tls` check it.
pub fn host_server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string())
        .map_err(|e| TlsError::Config(format!("{host:?} cannot be checked against a certificate: {e}")))
}

/// A client configuration for the client ports that believes servers with a certificate
/// the CA in `ca` signed and presents no certificate (the CLI, scripts).
pub fn ca_client(ca: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    load::ca_only_client(ca)
}

/// The TLS identity from `files`, or plain TCP when `None`, logged either way.
pub fn load_optional(files: Option<&TlsFiles>, base: &Path, who: &str) -> Result<Option<Arc<Tls>>, TlsError> {
    let Some(files) = files else {
        tracing::info!("{who}: no TLS configured: peers are not authenticated (plain TCP)");
        return Ok(None);
    };
    let tls = Tls::load(files, base)?;
    tracing::info!("{who}: mutual TLS with the lab CA, as {}", tls.name);
    Ok(Some(Arc::new(tls)))
}

/// The files named by the binaries' `--tls-ca`, `--tls-cert` and `--tls-key` flags: all
/// three or none, made absolute against the current directory.
pub fn files_from_flags(
    ca: Option<PathBuf>,
    certificate: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Result<Option<TlsFiles>, String> {
    match (ca, certificate, key) {
        (None, None, None) => Ok(None),
        (Some(ca), Some(certificate), Some(key)) => {
            let absolute = |p: PathBuf| {
                std::path::absolute(&p)
                    .map(|p| p.display().to_string())
                    .map_err(|e| format!("TLS file {}: {e}", p.display()))
            };
            Ok(Some(TlsFiles { ca: absolute(ca)?, certificate: absolute(certificate)?, key: absolute(key)? }))
        }
        _ => Err("--tls-ca, --tls-cert and --tls-key go together: give all three, or none for plain TCP".into()),
    }
}
