//! Requests a browser could be tricked into sending are refused before any handler runs.
//!
//! - **DNS rebinding**: the `Host` header must name this engine: an IP literal, `localhost`,
//!   this machine's host name, or a name in `network.allowed_hosts`. A page on
//!   `evil.example` whose name was re-pointed at 127.0.0.1 sends `Host: evil.example`.
//!   IP literals are always allowed (a rebinding attack needs a name), so the installer
//!   and the docker target, which use addresses, need no configuration; the Compose lab
//!   reaches an engine by its service name, which is the container's host name.
//! - **Cross-site requests (CSRF)**: a request that changes state (anything but GET, HEAD,
//!   OPTIONS) must say `Content-Type: application/json` or carry `X-Mirrorlab-Request`;
//!   a plain HTML form can send neither, and a script on another site cannot without a
//!   CORS preflight this server never grants. An `Origin` header, when present, must name
//!   the same host and port as `Host`.

use super::error::ApiError;
use axum::http::{header, HeaderMap, Method, StatusCode};

/// The header a non-browser client may send instead of a JSON content type.
pub const REQUEST_HEADER: &str = "x-mirrorlab-request";

/// Host names (lower case, without port) this engine answers to, besides IP literals and
/// `localhost`.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    pub names: Vec<String>,
}

impl AllowedHosts {
    /// This machine's host name and the configured names.
    pub fn new(configured: &[String]) -> AllowedHosts {
        let mut names: Vec<String> = configured.iter().map(|n| n.to_ascii_lowercase()).collect();
        if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            let h = h.trim().to_ascii_lowercase();
            if !h.is_empty() {
                names.push(h);
            }
        }
        AllowedHosts { names }
    }

    fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        host == "localhost"
            || host.ends_with(".localhost")
            || host.parse::<std::net::IpAddr>().is_ok()
            || (host.starts_with('[')
                && host.ends_with(']')
                && host[1..host.len() - 1].parse::<std::net::Ipv6Addr>().is_ok())
            || self.names.contains(&host)
    }
}

/// `host[:port]` -> `host` (IPv6 literals keep their brackets).
fn host_part(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.find(']').map_or(authority, |end| &authority[..=end]);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

fn forbidden(message: String) -> ApiError {
    ApiError { status: StatusCode::FORBIDDEN, code: "FORBIDDEN", message }
}

/// Checks one request's method and headers.
pub fn check(method: &Method, headers: &HeaderMap, allowed: &AllowedHosts) -> Result<(), ApiError> {
    let text = |name: header::HeaderName| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let host = text(header::HOST);
    if let Some(host) = host {
        if !allowed.allows(host_part(host)) {
            return Err(forbidden(format!(
                "Host {:?} is not a name of this engine (a DNS rebinding attack looks like this): use its IP \
                 address, localhost, or add the name to network.allowed_hosts in engine.yaml",
                crate::globals::error::excerpt(host)
            )));
        }
    }
    if let Some(origin) = text(header::ORIGIN) {
        let authority = origin.split_once("://").map(|(_, rest)| rest.trim_end_matches('/'));
        let same = matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h));
        if !same {
            return Err(forbidden(format!(
                "a request from origin {} to host {} is refused: cross-site requests are not served",
                crate::globals::error::excerpt(origin),
                crate::globals::error::excerpt(host.unwrap_or("(none)"))
            )));
        }
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let json = text(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
    if json || headers.contains_key(REQUEST_HEADER) {
        return Ok(());
    }
    Err(ApiError {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        code: "ILLEGAL",
        message: "a request that changes something needs Content-Type: application/json (curl: -H \
                  'Content-Type: application/json') or an X-Mirrorlab-Request header: a web page on another \
                  site can send neither"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn hosts_must_name_this_engine() {
        let allowed = AllowedHosts { names: vec!["mirrora".into()] };
        for host in ["127.0.0.1:52773", "localhost", "LOCALHOST:1", "[::1]:52773", "192.0.2.7", "mirrora:52773"] {
            assert!(check(&Method::GET, &headers(&[("host", host)]), &allowed).is_ok(), "{host}");
        }
        for host in ["evil.example", "evil.example:52773", "mirrorb:52773", "127.0.0.1.evil.example"] {
            let e = check(&Method::GET, &headers(&[("host", host)]), &allowed).unwrap_err();
            assert_eq!(e.status, StatusCode::FORBIDDEN, "{host}");
            assert!(e.message.contains("network.allowed_hosts"), "{}", e.message);
        }
        // HTTP/1.0 clients may send no Host at all.
        assert!(check(&Method::GET, &HeaderMap::new(), &allowed).is_ok());
    }

    #[test]
    fn changes_need_json_or_the_request_header_and_a_matching_origin() {
        let allowed = AllowedHosts::default();
        let form = headers(&[("host", "127.0.0.1:52773"), ("content-type", "application/x-www-form-urlencoded")]);
        let e = check(&Method::POST, &form, &allowed).unwrap_err();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(check(&Method::DELETE, &headers(&[("host", "localhost")]), &allowed).is_err());
        let json = headers(&[("host", "localhost:52773"), ("content-type", "application/json; charset=utf-8")]);
        assert!(check(&Method::PUT, &json, &allowed).is_ok());
        assert!(check(&Method::DELETE, &headers(&[(REQUEST_HEADER, "1")]), &allowed).is_ok());
        // GETs change nothing: no content type needed.
        assert!(check(&Method::GET, &headers(&[("host", "localhost")]), &allowed).is_ok());
        let same = headers(&[
            ("host", "localhost:52773"),
            ("origin", "http://localhost:52773"),
            ("content-type", "application/json"),
        ]);
        assert!(check(&Method::POST, &same, &allowed).is_ok());
        for origin in ["http://evil.example", "null", "http://localhost:8080"] {
            let cross =
                headers(&[("host", "localhost:52773"), ("origin", origin), ("content-type", "application/json")]);
            assert_eq!(check(&Method::POST, &cross, &allowed).unwrap_err().status, StatusCode::FORBIDDEN, "{origin}");
        }
    }
}
