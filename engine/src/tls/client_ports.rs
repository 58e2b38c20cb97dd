//! TLS on the client ports: the superserver and the web port (optional; engine.yaml's
//! `network.client_tls`, `engine start --client-tls-*`).
//!
//! Unlike the members' mutual TLS, a client need not present a certificate: it
//! authenticates with a password, as Redis's `tls-auth-clients optional`. A certificate it
//! does present must be signed by the CA. The handshake runs in the connection's own task
//! (never in an accept loop), within [`super::HANDSHAKE_TIMEOUT`]; a peer that speaks
//! plain text to the port gets one plain answer saying the port wants TLS, and is closed.

use super::{TlsError, TlsFiles, HANDSHAKE_TIMEOUT};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;
/// What a plain-text client may still send after the refusal before the socket closes
/// (read so the refusal is not lost to a reset), and for how long.
const PLAIN_DRAIN_BYTES: usize = 64 * 1024;
const PLAIN_DRAIN_TIME: Duration = Duration::from_millis(500);

/// The server side of one client port.
#[derive(Clone)]
pub struct ClientPortTls {
    acceptor: tokio_rustls::TlsAcceptor,
    /// The port, for the logs: `superserver` or `web`.
    port: &'static str,
    /// What a plain-text client is told before the close.
    plain_refusal: &'static [u8],
}

impl std::fmt::Debug for ClientPortTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientPortTls").field("port", &self.port).finish_non_exhaustive()
    }
}

/// The superserver's refusal of a plain-text client (a RESP error).
pub const RESP_PLAIN_REFUSAL: &[u8] =
    b"-ERR this port speaks TLS only: connect with TLS (redis-cli --tls --cacert <the CA file>)\r\n";
/// The web port's refusal of a plain-text client.
pub const HTTP_PLAIN_REFUSAL: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 48\r\nConnection: close\r\n\r\nthis port speaks HTTPS only: use https:// URLs.\n";

/// The files of both client ports, loaded and checked (each error names its file).
#[derive(Clone, Debug)]
pub struct ClientTls {
    pub superserver: ClientPortTls,
    pub web: ClientPortTls,
    /// The CA file, absolute: the state file names it, so the CLI and the agent beside the
    /// engine know to connect with TLS and what to believe.
    pub ca: PathBuf,
    /// The certificate's file stem (for the logs).
    pub name: String,
}

impl ClientTls {
    /// Loads `files` (relative paths under `base`).
    pub fn load(files: &TlsFiles, base: &Path) -> Result<ClientTls, TlsError> {
        let [ca, certificate, key] = files.resolved(base);
        let (resp, name) = super::load::client_port_server(&ca, &certificate, &key, &[])?;
        let (web, _) = super::load::client_port_server(&ca, &certificate, &key, &[b"http/1.1"])?;
        let ca = std::path::absolute(&ca).unwrap_or(ca);
        Ok(ClientTls {
            superserver: ClientPortTls {
                acceptor: resp.into(),
                port: "superserver",
                plain_refusal: RESP_PLAIN_REFUSAL,
            },
            web: ClientPortTls { acceptor: web.into(), port: "web", plain_refusal: HTTP_PLAIN_REFUSAL },
            ca,
            name,
        })
    }
}

impl ClientPortTls {
    /// Completes the handshake on a fresh connection within [`HANDSHAKE_TIMEOUT`]; `None`
    /// when it did not (logged): a plain-text client, a refused certificate, garbage, or
    /// silence. Only this connection is affected.
    pub async fn accept(&self, stream: TcpStream, peer: SocketAddr) -> Option<TlsStream<TcpStream>> {
        let port = self.port;
        let handshake = async {
            let mut first = [0u8; 1];
            match stream.peek(&mut first).await {
                Ok(0) => return None,
                Ok(_) if first[0] != TLS_HANDSHAKE_RECORD => {
                    tracing::warn!(%peer, "{port}: a plain-text client on a TLS port: refused and closed");
                    refuse_plain(stream, self.plain_refusal).await;
                    return None;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "{port}: connection failed before the TLS handshake");
                    return None;
                }
            }
            match self.acceptor.accept(stream).await {
                Ok(tls) => Some(tls),
                Err(e) => {
                    tracing::warn!(%peer, "{port}: TLS handshake failed: {e}");
                    None
                }
            }
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(done) => done,
            Err(_) => {
                tracing::warn!(%peer, "{port}: connection closed: no TLS handshake within {} s", HANDSHAKE_TIMEOUT.as_secs());
                None
            }
        }
    }
}

/// Answers a plain-text client, then reads (and drops) what it sent for a moment, so
/// that closing a socket with unread input does not reset the connection before the
/// answer is read.
async fn refuse_plain(mut stream: TcpStream, answer: &[u8]) {
    if stream.write_all(answer).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = vec![0u8; 4096];
    let mut drained = 0;
    let _ = tokio::time::timeout(PLAIN_DRAIN_TIME, async {
        while drained < PLAIN_DRAIN_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}

/// The client-port TLS from `files`, or plain TCP when `None`, logged either way.
pub fn load_optional(files: Option<&TlsFiles>, base: &Path) -> Result<Option<ClientTls>, TlsError> {
    let Some(files) = files else {
        tracing::info!("superserver and web port: plain TCP (no network.client_tls)");
        return Ok(None);
    };
    let tls = ClientTls::load(files, base)?;
    tracing::info!(
        "superserver and web port: TLS only, as {} (client certificates optional, signed by {} when given)",
        tls.name,
        tls.ca.display()
    );
    Ok(Some(tls))
}
