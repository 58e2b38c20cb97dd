//! The web port's listener: protected mode and a bound on open connections, before HTTP.
//!
//! A refused peer (protected mode, or over [`MAX_WEB_CONNECTIONS`]) gets one short HTTP
//! answer that says why and is closed; the router never sees it.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections open at once on the web port (idle keep-alive ones included).
pub const MAX_WEB_CONNECTIONS: usize = 512;

pub struct GuardedListener {
    inner: TcpListener,
    protected_mode: bool,
    permits: Arc<Semaphore>,
}

impl GuardedListener {
    pub fn new(inner: TcpListener, protected_mode: bool, max_connections: usize) -> GuardedListener {
        GuardedListener { inner, protected_mode, permits: Arc::new(Semaphore::new(max_connections)) }
    }
}

/// A served connection; it holds its place under the bound until it is dropped.
pub struct Guarded {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

/// Answers a refused peer without waiting for its request. A fresh socket's send buffer
/// is empty, so this one write cannot block.
fn refuse(stream: &TcpStream, status: &str, message: &str) {
    let answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{message}\n",
        message.len() + 1
    );
    let _ = stream.try_write(answer.as_bytes());
}

impl axum::serve::Listener for GuardedListener {
    type Io = Guarded;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Guarded, SocketAddr) {
        loop {
            let (stream, peer) = axum::serve::Listener::accept(&mut self.inner).await;
            if !crate::access::admits(self.protected_mode, peer.ip()) {
                tracing::warn!(%peer, "web: connection refused: protected mode admits loopback peers only");
                refuse(&stream, "403 Forbidden", crate::access::ENGINE_DENIED);
                continue;
            }
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "web: connection refused: too many connections");
                refuse(&stream, "503 Service Unavailable", "BUSY too many connections to the web port; retry shortly");
                continue;
            };
            return (Guarded { stream, _permit: permit }, peer);
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for Guarded {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
