//! A small blocking RESP2 client for the superserver port: used by the terminal, the
//! end-to-end tests and the installer. One [`Client`] is one connection (one session: its
//! namespace, transaction and durability setting live on the server side of it).
//!
//! ```no_run
//! # fn main() -> Result<(), engine::client::ClientError> {
//! use engine::client::Client;
//! let mut c = Client::connect("127.0.0.1:1972", std::time::Duration::from_secs(5))?;
//! c.set("^Company(1,\"name\")", "Acme")?;
//! assert_eq!(c.get("^Company(1,\"name\")")?.as_deref(), Some(&b"Acme"[..]));
//! # Ok(()) }
//! ```

use crate::instance::Direction;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use thiserror::Error;

/// Longest bulk reply accepted (a maximal value plus headroom).
const MAX_REPLY_BULK: usize = 64 * 1024 * 1024;
/// Most elements of one array reply, and deepest nesting.
const MAX_REPLY_ARRAY: usize = 1 << 20;
const MAX_REPLY_DEPTH: usize = 16;
/// Longest simple, error or header line.
const MAX_LINE: usize = 64 * 1024;

/// An error reply: the engine error name (`SYNTAX`, `PROTECT`, `ERR`...) and the message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{code} {message}")]
pub struct ServerError {
    pub code: String,
    pub message: String,
}

impl ServerError {
    fn from_line(line: &str) -> ServerError {
        match line.split_once(' ') {
            Some((code, message)) => ServerError { code: code.into(), message: message.into() },
            None => ServerError { code: line.into(), message: String::new() },
        }
    }
}

/// A reply, as RESP2 carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(ServerError),
    Integer(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Reply>),
}

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}")]
    Connect { addr: String, source: io::Error },
    #[error("TLS with {addr} failed: {detail}")]
    Tls { addr: String, detail: String },
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    #[error("the server sent something that is not RESP: {0}")]
    Protocol(String),
    /// The server refused the command.
    #[error(transparent)]
    Server(ServerError),
    #[error("{command}: unexpected reply {reply:?}")]
    UnexpectedReply { command: String, reply: Reply },
}

impl ClientError {
    /// The engine error name of a server error (`"SUBSCRIPT"`...), `None` for other errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Server(e) => Some(&e.code),
            _ => None,
        }
    }
}

pub struct Client {
    reader: BufReader<Stream>,
    /// Commands are encoded here, then written whole (one TLS record, one segment).
    pending: Vec<u8>,
    /// The socket under the stream, for its timeouts.
    socket: TcpStream,
}

/// A connection as it is read and written: plain TCP, or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A TLS handshake as a client on a connected socket, bounded by `timeout` (which stays
/// the socket's read and write timeout); the error says why it failed.
pub fn tls_handshake(
    mut socket: TcpStream,
    config: std::sync::Arc<rustls::ClientConfig>,
    server: rustls::pki_types::ServerName<'static>,
    timeout: Duration,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, String> {
    socket.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    socket.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let mut conn = rustls::ClientConnection::new(config, server).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut socket).map_err(|e| e.to_string())?;
    }
    Ok(rustls::StreamOwned::new(conn, socket))
}

fn encode(out: &mut impl Write, args: &[&[u8]]) -> io::Result<()> {
    write!(out, "*{}\r\n", args.len())?;
    for a in args {
        write!(out, "${}\r\n", a.len())?;
        out.write_all(a)?;
        out.write_all(b"\r\n")?;
    }
    Ok(())
}

impl Client {
    /// Connects, trying each address `addr` (`host:port`) resolves to, each within
    /// `timeout`. Host names go through [`crate::resolve`], which works in `FROM scratch`
    /// containers where the C library's resolver cannot.
    pub fn connect(addr: impl std::fmt::Display, timeout: Duration) -> Result<Client, ClientError> {
        let name = addr.to_string();
        let stream = crate::resolve::connect_std(&name, timeout)
            .map_err(|source| ClientError::Connect { addr: name.clone(), source })?;
        Client::from_stream(stream).map_err(|source| ClientError::Connect { addr: name, source })
    }

    pub fn from_stream(stream: TcpStream) -> io::Result<Client> {
        stream.set_nodelay(true)?;
        let socket = stream.try_clone()?;
        Ok(Client { reader: BufReader::new(Stream::Plain(stream)), pending: Vec::new(), socket })
    }

    /// Connects as [`Client::connect`], then speaks TLS presenting `tls`'s certificate,
    /// and believes the server only if its certificate is signed by the lab CA and names
    /// `peer` (a member's name or [`crate::tls::ARBITER_NAME`]). The handshake is bounded
    /// by `timeout` too.
    pub fn connect_tls(
        addr: impl std::fmt::Display,
        timeout: Duration,
        tls: &crate::tls::Tls,
        peer: &str,
    ) -> Result<Client, ClientError> {
        let name = addr.to_string();
        let server = crate::tls::server_name(peer)
            .map_err(|e| ClientError::Tls { addr: name.clone(), detail: e.to_string() })?;
        Client::connect_verified(name, timeout, tls.client_config(), server)
    }

    /// Connects as [`Client::connect`], then speaks TLS with `config` and believes the
    /// server only if its certificate names `server` (for a superserver serving TLS: the
    /// host dialled, [`crate::tls::host_server_name`]). The handshake is bounded by
    /// `timeout` too.
    pub fn connect_verified(
        addr: impl std::fmt::Display,
        timeout: Duration,
        config: std::sync::Arc<rustls::ClientConfig>,
        server: rustls::pki_types::ServerName<'static>,
    ) -> Result<Client, ClientError> {
        let name = addr.to_string();
        let socket = crate::resolve::connect_std(&name, timeout)
            .map_err(|source| ClientError::Connect { addr: name.clone(), source })?;
        socket.set_nodelay(true)?;
        let clone = socket.try_clone()?;
        let stream = tls_handshake(socket, config, server, timeout)
            .map_err(|detail| ClientError::Tls { addr: name.clone(), detail })?;
        Ok(Client { reader: BufReader::new(Stream::Tls(Box::new(stream))), pending: Vec::new(), socket: clone })
    }

    /// How long a reply may take before the call fails (`None`: forever, the default).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket.set_read_timeout(timeout)?;
        self.socket.set_write_timeout(timeout)
    }

    /// Writes the encoded commands.
    fn send_pending(&mut self) -> io::Result<()> {
        let stream = self.reader.get_mut();
        let sent = stream.write_all(&self.pending).and_then(|()| stream.flush());
        self.pending.clear();
        sent
    }

    /// Sends one command; an error reply becomes [`ClientError::Server`].
    pub fn command(&mut self, args: &[&[u8]]) -> Result<Reply, ClientError> {
        encode(&mut self.pending, args)?;
        self.send_pending()?;
        match self.read_reply()? {
            Reply::Error(e) => Err(ClientError::Server(e)),
            r => Ok(r),
        }
    }

    /// Sends one command without reading its reply: [`Client::reply_started`] tells when
    /// it comes, [`Client::read_reply`] reads it.
    pub fn send(&mut self, args: &[&[u8]]) -> Result<(), ClientError> {
        encode(&mut self.pending, args)?;
        Ok(self.send_pending()?)
    }

    /// Whether a reply has begun to arrive (or the connection closed) within `timeout`,
    /// consuming nothing: a caller can wait in slices and look elsewhere in between.
    pub fn reply_started(&mut self, timeout: Duration) -> io::Result<bool> {
        if !self.reader.buffer().is_empty() {
            return Ok(true);
        }
        let previous = self.socket.read_timeout()?;
        self.socket.set_read_timeout(Some(timeout))?;
        let arrived = self.reader.fill_buf().map(|_| ());
        self.socket.set_read_timeout(previous)?;
        match arrived {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends all commands at once, then reads their replies in order. Error replies stay in
    /// the list as [`Reply::Error`], so one failing command does not hide the others.
    pub fn pipeline(&mut self, commands: &[&[&[u8]]]) -> Result<Vec<Reply>, ClientError> {
        for c in commands {
            encode(&mut self.pending, c)?;
        }
        self.send_pending()?;
        commands.iter().map(|_| self.read_reply()).collect()
    }

    /// Sends raw bytes (tests of malformed input) without reading anything.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.pending.extend_from_slice(bytes);
        Ok(self.send_pending()?)
    }

    /// Reads one reply.
    pub fn read_reply(&mut self) -> Result<Reply, ClientError> {
        self.read_depth(0)
    }

    fn read_line(&mut self) -> Result<String, ClientError> {
        let mut line = Vec::new();
        (&mut self.reader).take(MAX_LINE as u64 + 2).read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection").into());
        }
        if !line.ends_with(b"\r\n") {
            return Err(ClientError::Protocol("line not terminated by CRLF".into()));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|_| ClientError::Protocol("line is not UTF-8".into()))
    }

    fn read_depth(&mut self, depth: usize) -> Result<Reply, ClientError> {
        if depth > MAX_REPLY_DEPTH {
            return Err(ClientError::Protocol("replies nested too deeply".into()));
        }
        let line = self.read_line()?;
        let bad = || ClientError::Protocol(format!("bad reply line {line:?}"));
        let (kind, rest) = line.split_at_checked(1).ok_or_else(bad)?;
        match kind {
            "+" => Ok(Reply::Simple(rest.into())),
            "-" => Ok(Reply::Error(ServerError::from_line(rest))),
            ":" => rest.parse().map(Reply::Integer).map_err(|_| bad()),
            "$" => {
                let len: i64 = rest.parse().map_err(|_| bad())?;
                if len < 0 {
                    return Ok(Reply::Nil);
                }
                let len = usize::try_from(len).ok().filter(|&l| l <= MAX_REPLY_BULK).ok_or_else(bad)?;
                let mut data = vec![0; len + 2];
                self.reader.read_exact(&mut data)?;
                if !data.ends_with(b"\r\n") {
                    return Err(ClientError::Protocol("bulk reply not terminated by CRLF".into()));
                }
                data.truncate(len);
                Ok(Reply::Bulk(data))
            }
            "*" => {
                let n: i64 = rest.parse().map_err(|_| bad())?;
                if n < 0 {
                    return Ok(Reply::Nil);
                }
                let n = usize::try_from(n).ok().filter(|&n| n <= MAX_REPLY_ARRAY).ok_or_else(bad)?;
                (0..n).map(|_| self.read_depth(depth + 1)).collect::<Result<_, _>>().map(Reply::Array)
            }
            _ => Err(bad()),
        }
    }

    fn call(&mut self, args: &[&[u8]]) -> Result<Reply, ClientError> {
        self.command(args)
    }

    fn unexpected(args: &[&[u8]], reply: Reply) -> ClientError {
        ClientError::UnexpectedReply { command: String::from_utf8_lossy(args[0]).into_owned(), reply }
    }

    fn ok(&mut self, args: &[&[u8]]) -> Result<(), ClientError> {
        match self.call(args)? {
            Reply::Simple(s) if s == "OK" => Ok(()),
            r => Err(Self::unexpected(args, r)),
        }
    }

    fn integer(&mut self, args: &[&[u8]]) -> Result<i64, ClientError> {
        match self.call(args)? {
            Reply::Integer(i) => Ok(i),
            r => Err(Self::unexpected(args, r)),
        }
    }

    fn optional_bulk(&mut self, args: &[&[u8]]) -> Result<Option<Vec<u8>>, ClientError> {
        match self.call(args)? {
            Reply::Bulk(b) => Ok(Some(b)),
            Reply::Nil => Ok(None),
            r => Err(Self::unexpected(args, r)),
        }
    }

    /// `SET ref value`. `r` is a reference (`^a(1)`) or a Redis-style key (`a:1`).
    pub fn set(&mut self, r: &str, value: impl AsRef<[u8]>) -> Result<(), ClientError> {
        self.ok(&[b"SET", r.as_bytes(), value.as_ref()])
    }

    pub fn get(&mut self, r: &str) -> Result<Option<Vec<u8>>, ClientError> {
        self.optional_bulk(&[b"GET", r.as_bytes()])
    }

    /// Kills the nodes and their subtrees; returns how many had data.
    pub fn kill(&mut self, refs: &[&str]) -> Result<i64, ClientError> {
        let mut args: Vec<&[u8]> = vec![b"KILL"];
        args.extend(refs.iter().map(|r| r.as_bytes()));
        self.integer(&args)
    }

    /// Kills one node's value; returns whether it had one.
    pub fn zkill(&mut self, r: &str) -> Result<bool, ClientError> {
        Ok(self.integer(&[b"ZKILL", r.as_bytes()])? == 1)
    }

    /// `$DATA`: 0, 1, 10 or 11.
    pub fn data(&mut self, r: &str) -> Result<u8, ClientError> {
        let args: &[&[u8]] = &[b"DATA", r.as_bytes()];
        let v = self.integer(args)?;
        u8::try_from(v).map_err(|_| Self::unexpected(args, Reply::Integer(v)))
    }

    /// `$ORDER`: the next (or previous) subscript's text; `r` may end in `""`.
    pub fn order(&mut self, r: &str, dir: Direction) -> Result<Option<Vec<u8>>, ClientError> {
        self.optional_bulk(&[b"ORDER", r.as_bytes(), direction(dir)])
    }

    /// `$QUERY`: the next (or previous) reference holding a value.
    pub fn query(&mut self, r: &str, dir: Direction) -> Result<Option<String>, ClientError> {
        let args: &[&[u8]] = &[b"QUERY", r.as_bytes(), direction(dir)];
        match self.optional_bulk(args)? {
            None => Ok(None),
            Some(b) => String::from_utf8(b).map(Some).map_err(|e| Self::unexpected(args, Reply::Bulk(e.into_bytes()))),
        }
    }

    /// `$INCREMENT` by `by` (a number's text, may be decimal); returns the new value's text.
    pub fn incr(&mut self, r: &str, by: &str) -> Result<String, ClientError> {
        let args: &[&[u8]] = &[b"INCRBY", r.as_bytes(), by.as_bytes()];
        match self.call(args)? {
            Reply::Integer(i) => Ok(i.to_string()),
            Reply::Bulk(b) => String::from_utf8(b).map_err(|e| Self::unexpected(args, Reply::Bulk(e.into_bytes()))),
            r => Err(Self::unexpected(args, r)),
        }
    }

    /// Switches namespace.
    pub fn namespace(&mut self, name: &str) -> Result<(), ClientError> {
        self.ok(&[b"NAMESPACE", name.as_bytes()])
    }

    /// The current namespace.
    pub fn current_namespace(&mut self) -> Result<String, ClientError> {
        let args: &[&[u8]] = &[b"NAMESPACE"];
        match self.optional_bulk(args)? {
            Some(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
            None => Err(Self::unexpected(args, Reply::Nil)),
        }
    }

    /// Returns the new `$TLEVEL`.
    pub fn tstart(&mut self) -> Result<u32, ClientError> {
        let args: &[&[u8]] = &[b"TSTART"];
        let v = self.integer(args)?;
        u32::try_from(v).map_err(|_| Self::unexpected(args, Reply::Integer(v)))
    }

    pub fn tcommit(&mut self) -> Result<(), ClientError> {
        self.ok(&[b"TCOMMIT"])
    }

    pub fn trollback(&mut self) -> Result<(), ClientError> {
        self.ok(&[b"TROLLBACK"])
    }

    /// Returns once everything written so far (by anyone) is durable.
    pub fn sync(&mut self) -> Result<(), ClientError> {
        self.ok(&[b"SYNC"])
    }

    pub fn ping(&mut self) -> Result<(), ClientError> {
        let args: &[&[u8]] = &[b"PING"];
        match self.call(args)? {
            Reply::Simple(s) if s == "PONG" => Ok(()),
            r => Err(Self::unexpected(args, r)),
        }
    }
}

fn direction(d: Direction) -> &'static [u8] {
    match d {
        Direction::Forward => b"1",
        Direction::Backward => b"-1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-connection fake server that checks the request bytes and answers `reply`.
    fn fake(expect: &'static [u8], reply: &'static [u8]) -> Client {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = vec![0; expect.len()];
            s.read_exact(&mut got).unwrap();
            assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(expect));
            s.write_all(reply).unwrap();
        });
        Client::connect(addr, Duration::from_secs(5)).unwrap()
    }

    #[test]
    fn typed_helpers_encode_and_decode() {
        let mut c = fake(b"*3\r\n$3\r\nSET\r\n$5\r\n^a(1)\r\n$1\r\nx\r\n", b"+OK\r\n");
        c.set("^a(1)", "x").unwrap();
        let mut c = fake(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n", b"$-1\r\n");
        assert_eq!(c.get("a").unwrap(), None);
        let mut c = fake(b"*3\r\n$5\r\nORDER\r\n$6\r\n^a(\"\")\r\n$2\r\n-1\r\n", b"$2\r\n12\r\n");
        assert_eq!(c.order("^a(\"\")", Direction::Backward).unwrap(), Some(b"12".to_vec()));
        let mut c = fake(b"*3\r\n$6\r\nINCRBY\r\n$1\r\nc\r\n$3\r\n1.5\r\n", b"$3\r\n2.5\r\n");
        assert_eq!(c.incr("c", "1.5").unwrap(), "2.5");
        let mut c = fake(b"*2\r\n$4\r\nDATA\r\n$1\r\nc\r\n", b":11\r\n");
        assert_eq!(c.data("c").unwrap(), 11);
    }

    #[test]
    fn server_errors_carry_their_name() {
        let mut c = fake(b"*2\r\n$3\r\nGET\r\n$2\r\n^(\r\n", b"-SYNTAX expected a global name\r\n");
        let e = c.get("^(").unwrap_err();
        assert_eq!(e.code(), Some("SYNTAX"));
        assert_eq!(e.to_string(), "SYNTAX expected a global name");
    }

    #[test]
    fn pipelines_keep_errors_in_place() {
        let mut c = fake(
            b"*1\r\n$4\r\nPING\r\n*1\r\n$3\r\nBAD\r\n*1\r\n$7\r\nCOMMAND\r\n",
            b"+PONG\r\n-ERR unknown command 'BAD'\r\n*2\r\n:1\r\n*-1\r\n",
        );
        let replies = c.pipeline(&[&[b"PING"], &[b"BAD"], &[b"COMMAND"]]).unwrap();
        assert_eq!(
            replies,
            vec![
                Reply::Simple("PONG".into()),
                Reply::Error(ServerError { code: "ERR".into(), message: "unknown command 'BAD'".into() }),
                Reply::Array(vec![Reply::Integer(1), Reply::Nil]),
            ]
        );
    }

    #[test]
    fn a_closed_connection_is_an_io_error() {
        let mut c = fake(b"*1\r\n$4\r\nPING\r\n", b"");
        assert!(matches!(c.ping(), Err(ClientError::Io(_))));
    }

    #[test]
    fn connect_failures_name_the_address() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = Client::connect(format!("127.0.0.1:{port}"), Duration::from_secs(1)).err().unwrap();
        assert!(e.to_string().starts_with(&format!("cannot connect to 127.0.0.1:{port}")), "{e}");
    }
}
