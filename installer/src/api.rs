//! The engine's management API (docs/api.md), blocking, with bounded timeouts. Errors say
//! which request on which member failed and carry the engine's error name.

use engine::mirror::config::MirrorConfig;
use engine::mirror::status::MirrorStatus;
use serde_json::Value;
use std::time::Duration;

/// A request that takes longer than this is reported, not waited for.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Mirror actions (a planned failover waits for the backup to catch up) get longer.
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{member}: {method} {path}: cannot reach the management API at {base}: {reason} (is the engine running? `mirrorlab status` shows it)")]
    Unreachable { member: String, method: String, path: String, base: String, reason: String },
    #[error("{member}: {method} {path}: HTTP {status} {code}: {message}")]
    Refused { member: String, method: String, path: String, status: u16, code: String, message: String },
}

impl ApiError {
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Refused { code, .. } => Some(code),
            ApiError::Unreachable { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Refused { status, .. } => Some(*status),
            ApiError::Unreachable { .. } => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Api {
    pub member: String,
    pub base: String,
    client: reqwest::blocking::Client,
    /// The lab's admin password (`credentials.rs`), sent as HTTP Basic; `None` for a lab
    /// built before engines had users.
    password: Option<String>,
}

/// Host names resolved by the engine's resolver (hosts file, then DNS over UDP), not the
/// C library's: `mirrorlab` is a static binary, and in the engine image (no NSS modules)
/// the C library cannot resolve the Compose lab's service names.
struct FilesAndDns;

impl reqwest::dns::Resolve for FilesAndDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            // On a blocking thread: a name Docker's DNS does not know is forwarded to the
            // host's servers and may take seconds, and the request's timeout must still
            // fire meanwhile.
            let lookup = tokio::task::spawn_blocking(move || engine::resolve::resolve(&format!("{host}:0")));
            let addrs = lookup.await??;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// How the installer reaches engines whose web port speaks TLS only: a client
/// configuration (ring) believing the lab CA, presenting the operator's certificate.
pub type ApiTls = std::sync::Arc<rustls::ClientConfig>;

/// For plain HTTP: a TLS configuration that believes no server (it is never used).
fn believing_nobody() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(engine::tls::load::provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

impl Api {
    /// Plain HTTP to `host:web_port`.
    pub fn new(member: &str, host: &str, web_port: u16) -> Api {
        Api::reaching(member, host, web_port, None)
    }

    /// HTTPS with `tls` (the engine's certificate must name `host`), else plain HTTP.
    pub fn reaching(member: &str, host: &str, web_port: u16, tls: Option<&ApiTls>) -> Api {
        let builder = reqwest::blocking::Client::builder()
            .timeout(ACTION_TIMEOUT)
            .connect_timeout(Duration::from_secs(2))
            // The engine closes a keep-alive connection idle for 10 s (its header read
            // timeout): drop ours first, so a request never races that close.
            .pool_idle_timeout(Duration::from_secs(5))
            .no_proxy()
            .dns_resolver(std::sync::Arc::new(FilesAndDns));
        // Always a configuration of ours: reqwest would otherwise look for a process-wide
        // rustls provider, and we install none (ring is chosen per configuration).
        let (config, scheme) = match tls {
            Some(config) => (rustls::ClientConfig::clone(config), "https"),
            None => (believing_nobody(), "http"),
        };
        let builder = builder.use_preconfigured_tls(config);
        let client = builder.build().expect("an HTTP client with a rustls configuration of ours always builds");
        let authority = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
        Api { member: member.to_string(), base: format!("{scheme}://{authority}:{web_port}"), client, password: None }
    }

    /// The same API, calling as the lab's admin with `password`.
    pub fn with_password(mut self, password: Option<String>) -> Api {
        self.password = password;
        self
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>, timeout: Duration) -> Result<Value, ApiError> {
        let url = format!("{}{path}", self.base);
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("methods are literals");
        // The engine refuses a state-changing request without a JSON content type or this
        // header (its guard against cross-site requests from browsers).
        let mut req = self.client.request(m, &url).timeout(timeout).header("X-Mirrorlab-Request", "installer");
        if let Some(p) = &self.password {
            req = req.basic_auth(crate::credentials::ADMIN_USER, Some(p));
        }
        if let Some(b) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(b.to_string());
        }
        let unreachable = |reason: String| ApiError::Unreachable {
            member: self.member.clone(),
            method: method.to_string(),
            path: path.to_string(),
            base: self.base.clone(),
            reason,
        };
        let resp = req.send().map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp.text().map_err(|e| unreachable(e.to_string()))?;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if (200..300).contains(&status) {
            return Ok(json);
        }
        let err = &json["error"];
        Err(ApiError::Refused {
            member: self.member.clone(),
            method: method.to_string(),
            path: path.to_string(),
            status,
            code: err["code"].as_str().unwrap_or("HTTP").to_string(),
            message: err["message"].as_str().map(str::to_string).unwrap_or_else(|| json.to_string()),
        })
    }

    pub fn get(&self, path: &str) -> Result<Value, ApiError> {
        self.call("GET", path, None, REQUEST_TIMEOUT)
    }

    /// GET with a short timeout, for status polling (a paused engine must not stall it).
    pub fn probe(&self, path: &str, timeout: Duration) -> Result<Value, ApiError> {
        self.call("GET", path, None, timeout)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        self.call("POST", path, Some(body), REQUEST_TIMEOUT)
    }

    pub fn patch(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        self.call("PATCH", path, Some(body), REQUEST_TIMEOUT)
    }

    pub fn put(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        self.call("PUT", path, Some(body), REQUEST_TIMEOUT)
    }

    /// A mirror action (`{"action": ...}`); answers the engine's sentence.
    pub fn act(&self, body: Value) -> Result<String, ApiError> {
        let v = self.call("POST", "/api/mirror/actions", Some(&body), ACTION_TIMEOUT)?;
        Ok(v["message"].as_str().unwrap_or_default().to_string())
    }

    /// This member's Mirror Monitor, typed as the engine defines it; `None` while it is
    /// no mirror member.
    pub fn mirror_status(&self) -> Result<Option<MirrorStatus>, ApiError> {
        self.typed("/api/mirror/status", "status")
    }

    /// This member's mirror configuration, typed as the engine defines it; `None` while
    /// it has none.
    pub fn mirror_config(&self) -> Result<Option<MirrorConfig>, ApiError> {
        self.typed("/api/mirror/config", "mirror")
    }

    /// The `key` object of GET `path` as the engine's type (null: `None`). An answer that
    /// does not parse is refused, naming what did not (an engine of another version).
    fn typed<T: serde::de::DeserializeOwned>(&self, path: &str, key: &str) -> Result<Option<T>, ApiError> {
        let v = self.get(path)?;
        if v[key].is_null() {
            return Ok(None);
        }
        serde_json::from_value(v[key].clone()).map(Some).map_err(|e| ApiError::Refused {
            member: self.member.clone(),
            method: "GET".into(),
            path: path.into(),
            status: 200,
            code: "FORMAT".into(),
            message: format!("the answer is not what this installer's engine sends: {e}"),
        })
    }

    pub fn healthy(&self) -> bool {
        self.probe("/health", Duration::from_millis(500)).is_ok()
    }
}

/// Percent-encodes a query value (global references contain `^ ( ) " ,`).
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: with reqwest's rustls (no process-wide provider), a plain-HTTP client
    /// panicked when it was built.
    #[test]
    fn plain_and_tls_clients_build_and_report_an_unreachable_engine() {
        let plain = Api::new("MIRRORA", "127.0.0.1", 1);
        assert!(plain.base.starts_with("http://"));
        assert!(matches!(plain.probe("/health", Duration::from_secs(2)), Err(ApiError::Unreachable { .. })));
        let tls: ApiTls = std::sync::Arc::new(believing_nobody());
        let secure = Api::reaching("MIRRORA", "::1", 1, Some(&tls));
        assert_eq!(secure.base, "https://[::1]:1");
        assert!(matches!(secure.probe("/health", Duration::from_secs(2)), Err(ApiError::Unreachable { .. })));
    }
}
