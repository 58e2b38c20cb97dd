//! How the CLI reaches an engine's superserver and web port: plain TCP, or TLS when the
//! engine serves them with TLS only (`network.client_tls`).
//!
//! TLS is used with `--cacert FILE` (environment `MIRRORLAB_CACERT`: the CA that signed
//! the engine's certificate), or, for the engine running on `--data-dir`, when its state
//! file names the CA it serves with. The server's certificate must name the host dialled
//! (`127.0.0.1` for the engine on this machine). Set once by the binary after parsing.

use crate::instance::datadir::RunState;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

static CACERT: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Records `--cacert`.
pub fn init(cacert: Option<PathBuf>) {
    let _ = CACERT.set(cacert);
}

fn cacert() -> Option<&'static Path> {
    CACERT.get().and_then(|c| c.as_deref())
}

/// TLS that believes one CA, for the client ports.
#[derive(Clone)]
pub struct Tls {
    pub ca: PathBuf,
    pub config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("ca", &self.ca).finish_non_exhaustive()
    }
}

impl PartialEq for Tls {
    fn eq(&self, other: &Tls) -> bool {
        self.ca == other.ca
    }
}

impl Eq for Tls {}

impl Tls {
    pub fn load(ca: &Path) -> Result<Tls> {
        let config = crate::tls::ca_client(ca).with_context(|| "the CA to verify the engine's certificate with")?;
        Ok(Tls { ca: ca.to_path_buf(), config })
    }

    /// Speaks TLS on `socket`, believing the server only with a certificate of the CA that
    /// names `host`.
    pub fn connect(
        &self,
        host: &str,
        socket: std::net::TcpStream,
        timeout: std::time::Duration,
    ) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>> {
        let server = crate::tls::host_server_name(host).map_err(std::io::Error::other)?;
        crate::client::tls_handshake(socket, self.config.clone(), server, timeout)
            .map_err(|e| std::io::Error::other(format!("TLS with {host} (CA {}): {e}", self.ca.display())))
    }
}

/// A connection to read and write: plain TCP or TLS.
pub trait Duplex: std::io::Read + std::io::Write {}
impl<S: std::io::Read + std::io::Write> Duplex for S {}

/// `socket` as it is, or TLS over it with `tls` (the certificate must name `host`).
pub fn over(
    tls: Option<&Tls>,
    host: &str,
    socket: std::net::TcpStream,
    timeout: std::time::Duration,
) -> std::io::Result<Box<dyn Duplex>> {
    Ok(match tls {
        Some(tls) => Box::new(tls.connect(host, socket, timeout)?),
        None => Box::new(socket),
    })
}

/// For a host and port the user named: TLS when `--cacert` was given.
pub fn named() -> Result<Option<Tls>> {
    cacert().map(Tls::load).transpose()
}

/// For the engine running on the data directory (its state file): `--cacert`, else the CA
/// the engine says it serves with, else plain TCP.
pub fn of_running(state: &RunState) -> Result<Option<Tls>> {
    match (cacert(), &state.client_tls_ca) {
        (Some(ca), _) => Tls::load(ca).map(Some),
        (None, Some(ca)) => Tls::load(Path::new(ca)).map(Some),
        (None, None) => Ok(None),
    }
}
