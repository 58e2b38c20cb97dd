//! Host name resolution without NSS, and the connects built on it.
//!
//! Our binaries are static glibc executables that run `FROM scratch` in containers. There
//! `getaddrinfo` cannot load the NSS modules it needs for anything but numeric addresses,
//! so members could not find each other by container hostname. This module resolves the
//! way a stub resolver does: a numeric address as is; `localhost`; `/etc/hosts`; then DNS
//! A queries (AAAA when there is no A record) over UDP to the nameservers of
//! `/etc/resolv.conf` (Docker's embedded DNS at 127.0.0.11 in a container).
//!
//! Invariant: *every outbound connection of the engine and the agent goes through
//! [`resolve`]*; every query has a timeout and every answer a size bound.

mod dns;
mod files;
#[cfg(test)]
mod tests;

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// Largest DNS answer read (the EDNS-free UDP limit is 512; 1232 is today's safe size).
const MAX_ANSWER_BYTES: usize = 1232;
/// Answers for other queries (late answers to earlier ones) skipped before giving up.
const MAX_STRAY_ANSWERS: usize = 16;

/// Where the resolver reads its configuration; tests point it at their own files and at
/// a responder on a loopback port.
#[derive(Debug, Clone)]
pub struct Resolver {
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
    /// Port the nameservers listen on (53; resolv.conf cannot say otherwise).
    pub dns_port: u16,
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver { hosts: "/etc/hosts".into(), resolv_conf: "/etc/resolv.conf".into(), dns_port: 53 }
    }
}

/// Resolves `host:port` (`[v6]:port` for IPv6) with the system's files.
pub fn resolve(host_port: &str) -> io::Result<Vec<SocketAddr>> {
    Resolver::default().resolve(host_port)
}

/// Connects to `host:port`, trying each address within `timeout`.
pub fn connect_std(host_port: &str, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in resolve(host_port)? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(with_context(host_port, last.expect("resolve returns at least one address")))
}

/// Connects to `host:port` from async code; the lookup runs on a blocking thread (it is
/// bounded by the resolver's timeouts). Callers put their own deadline around it.
pub async fn connect(host_port: &str) -> io::Result<tokio::net::TcpStream> {
    let name = host_port.to_string();
    let addrs = tokio::task::spawn_blocking(move || resolve(&name))
        .await
        .map_err(|e| io::Error::other(format!("resolving {host_port}: {e}")))??;
    let mut last = None;
    for addr in addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(with_context(host_port, last.expect("resolve returns at least one address")))
}

fn with_context(host_port: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot connect to {host_port}: {e}"))
}

/// Splits `host:port` / `[v6]:port`.
fn split_host_port(host_port: &str) -> io::Result<(&str, u16)> {
    let bad =
        || io::Error::new(io::ErrorKind::InvalidInput, format!("{host_port:?} is not an address: expected host:port"));
    let (host, port) = if let Some(rest) = host_port.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
        (h, p)
    } else {
        host_port.rsplit_once(':').filter(|(h, _)| !h.contains(':')).ok_or_else(bad)?
    };
    let port = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host, port))
}

impl Resolver {
    pub fn resolve(&self, host_port: &str) -> io::Result<Vec<SocketAddr>> {
        let (host, port) = split_host_port(host_port)?;
        let ips = self.lookup(host).map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {host}: {e}")))?;
        Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, port)).collect())
    }

    /// The addresses of `host`; never an empty list.
    pub fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let hosts = read_optional(&self.hosts)?;
        let found = files::hosts_lookup(&hosts, host);
        if !found.is_empty() {
            return Ok(found);
        }
        // RFC 6761: localhost is loopback, whatever any file or server says.
        if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
            return Ok(vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from(std::net::Ipv6Addr::LOCALHOST)]);
        }
        let conf = match std::fs::read_to_string(&self.resolv_conf) {
            Ok(text) => files::parse_resolv_conf(&text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => files::ResolvConf::default(),
            Err(e) => return Err(io::Error::new(e.kind(), format!("reading {}: {e}", self.resolv_conf.display()))),
        };
        let mut last_error = None;
        for name in files::candidates(&conf, host) {
            for qtype in [dns::TYPE_A, dns::TYPE_AAAA] {
                match self.query(&conf, &name, qtype) {
                    Ok(dns::Answer::Addresses(a)) if !a.is_empty() => return Ok(a),
                    Ok(dns::Answer::Addresses(_)) => {}
                    // The name does not exist: no other record type will change that.
                    Ok(dns::Answer::NoSuchName) => break,
                    Err(e) => last_error = Some(e),
                }
            }
        }
        Err(last_error.unwrap_or_else(|| {
            let servers: Vec<String> = conf.nameservers.iter().map(|s| s.to_string()).collect();
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "no such host (not in {}; DNS at {} knows no address)",
                    self.hosts.display(),
                    servers.join(", ")
                ),
            )
        }))
    }

    /// One question, asked of each nameserver in turn for `attempts` rounds, until one
    /// answers.
    fn query(&self, conf: &files::ResolvConf, name: &str, qtype: u16) -> io::Result<dns::Answer> {
        let id = next_query_id();
        let question = dns::query(id, name, qtype).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut last = None;
        for _ in 0..conf.attempts {
            for &server in &conf.nameservers {
                let server = SocketAddr::new(server, self.dns_port);
                match ask(server, &question, id, qtype, conf.timeout) {
                    Ok(answer) => return Ok(answer),
                    Err(e) => last = Some(e),
                }
            }
        }
        Err(last.expect("at least one nameserver and one attempt"))
    }
}

fn ask(server: SocketAddr, question: &[u8], id: u16, qtype: u16, timeout: Duration) -> io::Result<dns::Answer> {
    let local: SocketAddr =
        if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = UdpSocket::bind(local)?;
    // A connected UDP socket only receives from the server it asked.
    socket.connect(server)?;
    socket.send(question)?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; MAX_ANSWER_BYTES];
    for _ in 0..MAX_STRAY_ANSWERS {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        socket.set_read_timeout(Some(left))?;
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => break,
            Err(e) => return Err(io::Error::new(e.kind(), format!("DNS server {server}: {e}"))),
        };
        if n < 2 || buf[..2] != id.to_be_bytes() {
            continue; // a late answer to an earlier question
        }
        match dns::parse(id, qtype, &buf[..n]) {
            Ok(answer) => return Ok(answer),
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("DNS server {server}: {e}"))),
        }
    }
    Err(io::Error::new(io::ErrorKind::TimedOut, format!("no answer from DNS server {server} within {timeout:?}")))
}

fn read_optional(path: &std::path::Path) -> io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(io::Error::new(e.kind(), format!("reading {}: {e}", path.display()))),
    }
}

/// Query ids: distinct within the process, and not the same sequence in every process
/// (an id is the only thing tying a UDP answer to its question). Not a secret: the
/// connected socket and the answer's checks do the rest.
fn next_query_id() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let salt = (std::process::id() as u16).wrapping_mul(40503);
    NEXT.fetch_add(1, Ordering::Relaxed).wrapping_add(salt)
}
