//! The web port's listener: protected mode, a bound on open connections, TLS when
//! configured, and a deadline for request heads, before HTTP.
//!
//! A refused peer (protected mode, or over [`MAX_WEB_CONNECTIONS`]) gets one short HTTP
//! answer that says why and is closed; the router never sees it. A connection must send a
//! whole request head (up to its blank line) within [`HEADER_READ_TIMEOUT`] of opening, or
//! of the previous response: a client that trickles a head byte by byte, or sits idle
//! between requests, gives its place back.
//!
//! With TLS (`network.client_tls`), each handshake runs in a task of its own within
//! `tls::HANDSHAKE_TIMEOUT`, holding its place under the bound: the accept loop hands
//! axum only connections whose handshake completed, and a slow or silent client delays
//! nobody else. A plain-text client gets a plain 400 saying the port wants HTTPS.

use crate::tls::client_ports::ClientPortTls;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// Connections open at once on the web port (idle keep-alive ones included).
pub const MAX_WEB_CONNECTIONS: usize = 512;
/// How long a request head may take to arrive (also the longest idle keep-alive).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

pub struct GuardedListener {
    inner: TcpListener,
    protected_mode: bool,
    permits: Arc<Semaphore>,
    header_timeout: Duration,
    tls: Option<ClientPortTls>,
    /// TLS handshakes in progress, each on its own task (aborted when the listener is
    /// dropped at shutdown).
    handshakes: JoinSet<Option<(Guarded, SocketAddr)>>,
}

impl GuardedListener {
    pub fn new(
        inner: TcpListener,
        protected_mode: bool,
        max_connections: usize,
        header_timeout: Duration,
        tls: Option<ClientPortTls>,
    ) -> GuardedListener {
        GuardedListener {
            inner,
            protected_mode,
            permits: Arc::new(Semaphore::new(max_connections)),
            header_timeout,
            tls,
            handshakes: JoinSet::new(),
        }
    }
}

/// How long to wait after a failed accept (out of file descriptors, say), as axum does.
const ACCEPT_RETRY: Duration = Duration::from_secs(1);

/// The next TCP connection that passes protected mode and the bound, with its place.
async fn admitted(
    inner: &TcpListener,
    protected_mode: bool,
    permits: &Arc<Semaphore>,
) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
    loop {
        let (stream, peer) = match inner.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "web: accept failed; retrying in {} s", ACCEPT_RETRY.as_secs());
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        if !crate::access::admits(protected_mode, peer.ip()) {
            tracing::warn!(%peer, "web: connection refused: protected mode admits loopback peers only");
            refuse(&stream, "403 Forbidden", crate::access::ENGINE_DENIED);
            continue;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "web: connection refused: too many connections");
            refuse(&stream, "503 Service Unavailable", "BUSY too many connections to the web port; retry shortly");
            continue;
        };
        return (stream, peer, permit);
    }
}

/// What a served connection is read and written through.
enum WebStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// A served connection; it holds its place under the bound until it is dropped.
pub struct Guarded {
    stream: WebStream,
    _permit: OwnedSemaphorePermit,
    timeout: Duration,
    /// Set while a request head is awaited: when it runs out, reads fail.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The last bytes of the head so far, to find `\r\n\r\n` across reads.
    tail: [u8; 3],
}

impl Guarded {
    fn new(stream: WebStream, permit: OwnedSemaphorePermit, timeout: Duration) -> Guarded {
        Guarded {
            stream,
            _permit: permit,
            timeout,
            deadline: Some(Box::pin(tokio::time::sleep(timeout))),
            tail: [0; 3],
        }
    }

    /// Scans bytes just read while a head is awaited; the blank line ends the wait.
    fn saw(&mut self, bytes: &[u8]) {
        if self.deadline.is_none() || bytes.is_empty() {
            return;
        }
        let mut window = self.tail.to_vec();
        window.extend_from_slice(bytes);
        if window.windows(4).any(|w| w == b"\r\n\r\n") {
            self.deadline = None;
        }
        let n = window.len();
        self.tail.copy_from_slice(&window[n - 3..]);
    }

    /// A response is going out: the next request's head is awaited from now on.
    fn await_next_head(&mut self) {
        if self.deadline.is_none() {
            self.deadline = Some(Box::pin(tokio::time::sleep(self.timeout)));
            self.tail = [0; 3];
        }
    }
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

    // Cancel-safe, as axum needs (it drops this future at shutdown): both awaits are,
    // and nothing after them awaits.
    async fn accept(&mut self) -> (Guarded, SocketAddr) {
        let Some(tls) = self.tls.clone() else {
            let (stream, peer, permit) = admitted(&self.inner, self.protected_mode, &self.permits).await;
            return (Guarded::new(WebStream::Plain(stream), permit, self.header_timeout), peer);
        };
        loop {
            tokio::select! {
                done = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Some(Ok(Some(served))) = done {
                        return served;
                    }
                }
                (stream, peer, permit) = admitted(&self.inner, self.protected_mode, &self.permits) => {
                    let (tls, timeout) = (tls.clone(), self.header_timeout);
                    self.handshakes.spawn(async move {
                        // The place is held through the handshake; a failed one gives it back.
                        let stream = tls.accept(stream, peer).await?;
                        Some((Guarded::new(WebStream::Tls(Box::new(stream)), permit, timeout), peer))
                    });
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for Guarded {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let filled = buf.filled()[before..].to_vec();
                this.saw(&filled);
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.deadline.as_mut().map(|d| d.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no complete request head within the header read timeout",
                ))),
                _ => Poll::Pending,
            },
            other => other,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.await_next_head();
        Pin::new(&mut this.stream).poll_write(cx, buf)
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
        let this = self.get_mut();
        this.await_next_head();
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl AsyncRead for WebStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WebStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            WebStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WebStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            WebStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            WebStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WebStream::Plain(s) => Pin::new(s).poll_flush(cx),
            WebStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WebStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            WebStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            WebStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            WebStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            WebStream::Plain(s) => s.is_write_vectored(),
            WebStream::Tls(s) => s.is_write_vectored(),
        }
    }
}
