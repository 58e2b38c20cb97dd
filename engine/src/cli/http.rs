//! A minimal HTTP/1.1 client for the CLI's calls to a running engine's management API
//! (`engine freeze`, `thaw`, `integrity`, `mirror`), so the engine binary needs no HTTP
//! client stack.

use super::transport::Tls;
use std::io::{Read, Write};
use std::time::Duration;

/// Largest response body read.
const MAX_RESPONSE_BYTES: u64 = 16 << 20;

pub struct Response {
    pub status: u16,
    /// The status line and headers.
    pub head: String,
    pub body: String,
}

/// Calls the management API on 127.0.0.1 (the engine on this host), plain HTTP.
pub fn call(port: u16, method: &str, path: &str, body: Option<&str>, timeout: Duration) -> std::io::Result<Response> {
    call_over(port, method, path, body, timeout, None)
}

/// [`call`], over TLS with `tls`.
pub fn call_over(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
    tls: Option<&Tls>,
) -> std::io::Result<Response> {
    call_host("127.0.0.1", port, method, path, body, timeout, tls)
}

/// Calls the management API on `host:port`, trying each address the name resolves to.
pub fn call_host(
    host: &str,
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
    tls: Option<&Tls>,
) -> std::io::Result<Response> {
    let auth = super::credentials::basic_header().unwrap_or_default();
    request_over(host, port, method, path, body, &auth, timeout, tls)
}

/// One request with `headers` (complete `Name: value\r\n` lines) besides Host, the JSON
/// content type, the length and `Connection: close`, plain HTTP.
pub fn request(
    host: &str,
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &str,
    timeout: Duration,
) -> std::io::Result<Response> {
    request_over(host, port, method, path, body, headers, timeout, None)
}

/// [`request`], over TLS with `tls`.
#[allow(clippy::too_many_arguments)]
pub fn request_over(
    host: &str,
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &str,
    timeout: Duration,
    tls: Option<&Tls>,
) -> std::io::Result<Response> {
    let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let socket = crate::resolve::connect_std(&authority, timeout)?;
    socket.set_read_timeout(Some(timeout))?;
    socket.set_write_timeout(Some(timeout))?;
    let mut stream = super::transport::over(tls, host, socket, timeout)?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()?;
    let mut raw = Vec::new();
    match stream.take(MAX_RESPONSE_BYTES).read_to_end(&mut raw) {
        Ok(_) => {}
        // A TLS peer that closes without close_notify: the response is what arrived (its
        // length and framing are checked below).
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").ok_or_else(|| std::io::Error::other("malformed HTTP response"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("malformed HTTP status line"))?;
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let body = if chunked { dechunk(rest) } else { rest.to_string() };
    Ok(Response { status, head: head.to_string(), body })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The message of a management API error body (`{"error":{"code","message"}}`), or the
/// body itself.
pub fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            Some(format!("{} {}", e.get("code")?.as_str()?, e.get("message")?.as_str()?))
        })
        .map(|m| {
            if m.starts_with("NOAUTH") {
                format!("{m} (give --user, and the password in MIRRORLAB_PASSWORD or at the prompt)")
            } else {
                m
            }
        })
        .unwrap_or_else(|| body.trim().to_string())
}
