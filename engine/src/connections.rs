//! The accept loop shared by the superserver and the agent: protected mode (loopback
//! peers only unless configured otherwise), a bounded number of connections, each on its own task; over the bound, a RESP error and close; accept
//! errors retried with a backoff; at shutdown, stop accepting, tell every connection, and
//! wait for them all.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// First retry after a failed accept (out of file descriptors, say); doubled each time.
const ACCEPT_BACKOFF_START: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What the loop asks of its server.
pub(crate) trait ConnectionHandler {
    /// Whether to serve this peer at all; `false` closes the connection at once, silently.
    fn admit(&mut self, _peer: SocketAddr) -> bool {
        true
    }
    /// Called when a peer is refused because `max_connections` are open.
    fn refused(&mut self, _peer: SocketAddr) {}
    /// The task serving one connection; it should end soon after `stop` turns true.
    fn serve(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
        stop: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static;
}

/// Serves connections until `shutdown` completes, then drains them. `name` labels the log.
/// `protected`: protected mode's refusal (see [`crate::access`]); a peer not on loopback
/// gets it as a RESP error and is closed. `None`: protected mode is off.
pub(crate) async fn accept_connections(
    listener: TcpListener,
    name: &'static str,
    max_connections: usize,
    protected: Option<&'static str>,
    shutdown: impl Future,
    mut handler: impl ConnectionHandler,
) {
    let permits = Arc::new(Semaphore::new(max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut backoff = ACCEPT_BACKOFF_START;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => break,
        };
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = ACCEPT_BACKOFF_START;
                a
            }
            Err(e) => {
                tracing::warn!(error = %e, "{name}: accept failed; retrying in {} ms", backoff.as_millis());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        if let Some(denied) = protected {
            if !crate::access::admits(true, peer.ip()) {
                tracing::warn!(%peer, "{name}: connection refused: protected mode admits loopback peers only");
                // A fresh socket's send buffer is empty: this cannot block.
                let _ = stream.try_write(format!("-{denied}\r\n").as_bytes());
                continue;
            }
        }
        if !handler.admit(peer) {
            continue;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            handler.refused(peer);
            tracing::warn!(%peer, max = max_connections, "{name}: connection refused: too many clients");
            // The socket is fresh and its send buffer empty: this cannot block.
            let _ = stream.try_write(b"-ERR max number of clients reached\r\n");
            continue;
        };
        let connection = handler.serve(stream, peer, stop_rx.clone());
        tasks.spawn(async move {
            connection.await;
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!(connections = tasks.len(), "{name} stopping: closing connections");
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
}
