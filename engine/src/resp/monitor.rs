//! `MONITOR`: every command the superserver runs, streamed to the connections that asked,
//! one line each in Redis's format (`+1339518083.107412 [0 127.0.0.1:60866] "set" "^a" "1"`),
//! so `redis-cli monitor` and the tools that read it work.
//!
//! Bounded: a line quotes at most [`MAX_ARGS`] arguments of at most [`MAX_ARG_BYTES`]
//! bytes each, and a monitor that falls more than [`BACKLOG`] lines behind loses the
//! oldest (it is told how many). Passwords never appear: `AUTH`'s arguments and those
//! after `HELLO`'s `AUTH` are shown as `(redacted)`. Nothing is formatted while nobody
//! monitors.

use super::codec::Frame;
use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Lines a monitor may fall behind before it loses the oldest.
pub const BACKLOG: usize = 4096;
/// Arguments quoted per line; the rest are counted.
pub const MAX_ARGS: usize = 64;
/// Bytes quoted per argument; the rest are counted.
pub const MAX_ARG_BYTES: usize = 1024;

/// The feed the connections publish to and monitors subscribe to.
pub struct Monitors {
    feed: broadcast::Sender<Arc<str>>,
    /// Monitors subscribed now: every command reads it, so it is an atomic, not the
    /// channel's own count (which takes a lock).
    active: Arc<AtomicUsize>,
}

impl Default for Monitors {
    fn default() -> Monitors {
        Monitors { feed: broadcast::channel(BACKLOG).0, active: Arc::default() }
    }
}

/// One monitor's subscription: the feed, counted among the active monitors until dropped.
pub struct Subscription {
    feed: broadcast::Receiver<Arc<str>>,
    active: Arc<AtomicUsize>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Monitors {
    /// Publishes `frame`, run by the client at `peer`, if anyone monitors.
    pub fn publish(&self, frame: &Frame, peer: &str) {
        if self.active.load(Ordering::SeqCst) == 0 {
            return;
        }
        let _ = self.feed.send(line(frame, peer, std::time::SystemTime::now()).into());
    }

    pub fn subscribe(&self) -> Subscription {
        // Counted before it can receive, so no line published after this returns is skipped.
        self.active.fetch_add(1, Ordering::SeqCst);
        Subscription { feed: self.feed.subscribe(), active: self.active.clone() }
    }
}

/// The monitor line of `frame` (without the trailing CRLF).
pub fn line(frame: &Frame, peer: &str, at: std::time::SystemTime) -> String {
    let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut out = format!("+{}.{:06} [0 {peer}]", since.as_secs(), since.subsec_micros());
    let n = frame.len();
    let redact_from = redacted_from(frame);
    for i in 0..n.min(MAX_ARGS) {
        out.push(' ');
        if i >= redact_from {
            out.push_str("\"(redacted)\"");
        } else {
            quote(frame.arg(i), &mut out);
        }
    }
    if n > MAX_ARGS {
        let _ = write!(out, " ... ({} more arguments)", n - MAX_ARGS);
    }
    out
}

/// The first argument not to show: `AUTH`'s password (and user name), and everything
/// after `HELLO`'s `AUTH`.
fn redacted_from(frame: &Frame) -> usize {
    let n = frame.len();
    if n == 0 {
        return usize::MAX;
    }
    let name = frame.arg(0);
    if name.eq_ignore_ascii_case(b"auth") {
        return 1;
    }
    if name.eq_ignore_ascii_case(b"hello") {
        if let Some(i) = (1..n).find(|&i| frame.arg(i).eq_ignore_ascii_case(b"auth")) {
            return i + 1;
        }
    }
    usize::MAX
}

/// `arg` in double quotes with Redis's escapes (`\"`, `\\`, `\n`, `\r`, `\t`, `\xHH` for
/// other unprintable bytes), cut at [`MAX_ARG_BYTES`].
fn quote(arg: &[u8], out: &mut String) {
    out.push('"');
    for &b in &arg[..arg.len().min(MAX_ARG_BYTES)] {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    if arg.len() > MAX_ARG_BYTES {
        let _ = write!(out, "...({} more bytes)", arg.len() - MAX_ARG_BYTES);
    }
}

/// How a monitoring connection ended.
pub(super) enum Left {
    /// `RESET` (already answered): back to running commands, starting with these bytes
    /// the client sent after it.
    Reset(Vec<u8>),
    /// `QUIT`, the peer closed, a protocol error, or shutdown.
    Closed,
    /// A socket error.
    Io(std::io::Error),
}

/// Writes `bytes` and flushes them (TLS keeps what the socket did not take until a flush).
async fn send(stream: &mut impl super::server::Stream, bytes: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// Streams `feed` to a connection that sent `MONITOR` (its `+OK` already sent) until it
/// sends `QUIT` or `RESET`, closes, or the server stops. `input`: what the client sent
/// after `MONITOR`. Other commands get an error: nothing else runs while monitoring.
pub(super) async fn stream_to(
    stream: &mut impl super::server::Stream,
    mut subscription: Subscription,
    mut input: Vec<u8>,
    limits: &super::codec::CodecLimits,
    proto: super::Protocol,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Left {
    use tokio::io::AsyncReadExt;
    let mut frame = Frame::default();
    let mut out = Vec::new();
    loop {
        // The client's commands first, in order.
        loop {
            match super::codec::parse(&input, limits, &mut frame) {
                Ok(Some(n)) => {
                    input.drain(..n);
                    if frame.is_empty() {
                        continue;
                    }
                    let name = frame.arg(0);
                    let mut w = super::ReplyWriter { out: &mut out, proto };
                    if name.eq_ignore_ascii_case(b"quit") {
                        w.ok();
                        let _ = send(stream, &out).await;
                        return Left::Closed;
                    }
                    if name.eq_ignore_ascii_case(b"reset") {
                        w.simple("RESET");
                        return match send(stream, &out).await {
                            Ok(()) => Left::Reset(input),
                            Err(e) => Left::Io(e),
                        };
                    }
                    w.error("ERR only QUIT and RESET are allowed while monitoring");
                }
                Ok(None) => break,
                Err(_) => return Left::Closed,
            }
        }
        if !out.is_empty() {
            if let Err(e) = send(stream, &out).await {
                return Left::Io(e);
            }
            out.clear();
        }
        tokio::select! {
            line = subscription.feed.recv() => match line {
                Ok(line) => {
                    out.extend_from_slice(line.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                Err(broadcast::error::RecvError::Lagged(lost)) => {
                    out.extend_from_slice(format!("-ERR MONITOR fell behind: {lost} lines were dropped\r\n").as_bytes());
                }
                Err(broadcast::error::RecvError::Closed) => return Left::Closed,
            },
            read = stream.read_buf(&mut input) => match read {
                Ok(0) => return Left::Closed,
                Ok(_) => {}
                Err(e) => return Left::Io(e),
            },
            _ = stop.changed() => return Left::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn frame(args: &[&[u8]]) -> Frame {
        let mut wire = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            wire.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            wire.extend_from_slice(a);
            wire.extend_from_slice(b"\r\n");
        }
        let mut f = Frame::default();
        super::super::codec::parse(&wire, &Default::default(), &mut f).unwrap().unwrap();
        f
    }

    fn at() -> std::time::SystemTime {
        UNIX_EPOCH + Duration::from_micros(1_339_518_083_107_412)
    }

    #[test]
    fn lines_look_like_redis_with_escapes() {
        let f = frame(&[b"set", b"^a(\"x\")", b"line\nbreak \x01\\"]);
        assert_eq!(
            line(&f, "127.0.0.1:60866", at()),
            r#"+1339518083.107412 [0 127.0.0.1:60866] "set" "^a(\"x\")" "line\nbreak \x01\\""#
        );
    }

    #[test]
    fn passwords_are_redacted() {
        let l = line(&frame(&[b"AUTH", b"alice", b"secret"]), "p", at());
        assert!(l.ends_with(r#""AUTH" "(redacted)" "(redacted)""#), "{l}");
        let l = line(&frame(&[b"hello", b"3", b"auth", b"alice", b"secret", b"setname", b"x"]), "p", at());
        assert!(!l.contains("secret") && !l.contains("alice"), "{l}");
        assert!(l.contains(r#""hello" "3" "auth" "(redacted)""#), "{l}");
    }

    #[test]
    fn long_arguments_and_many_arguments_are_cut() {
        let big = vec![b'x'; MAX_ARG_BYTES + 10];
        let l = line(&frame(&[b"set", b"^k", &big]), "p", at());
        assert!(l.ends_with("...(10 more bytes)"), "{}", &l[l.len() - 40..]);
        let args: Vec<Vec<u8>> = (0..MAX_ARGS + 3).map(|i| i.to_string().into_bytes()).collect();
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        assert!(line(&frame(&refs), "p", at()).ends_with(" ... (3 more arguments)"));
    }

    #[test]
    fn nothing_is_published_without_a_monitor_and_everything_with_one() {
        let m = Monitors::default();
        m.publish(&frame(&[b"ping"]), "p");
        let mut rx = m.subscribe();
        assert!(rx.feed.try_recv().is_err(), "a line published before subscribing is not kept");
        m.publish(&frame(&[b"get", b"^a"]), "p");
        assert!(rx.feed.try_recv().unwrap().ends_with(r#"[0 p] "get" "^a""#));
        drop(rx);
        assert_eq!(m.active.load(Ordering::Relaxed), 0, "a dropped subscription no longer counts");
    }
}
