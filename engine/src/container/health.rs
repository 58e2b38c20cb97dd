//! `mirrorlab-init health`: the container's HEALTHCHECK. A `FROM scratch` image has no
//! shell and no curl, so the probe is one of our own binaries: GET `/health` on the
//! engine's web port over loopback, healthy only on 200.

use crate::instance::datadir::DataDir;
use std::time::Duration;

/// Default management API port (the engine's default `network.web_port`).
pub const DEFAULT_WEB_PORT: u16 = 52773;

/// The web port to probe: the one given, else the running engine's (its state file),
/// else the default.
pub fn web_port(given: Option<u16>, data_dir: &std::path::Path) -> u16 {
    given.or_else(|| DataDir::new(data_dir).read_state().map(|s| s.web_port)).unwrap_or(DEFAULT_WEB_PORT)
}

/// `Ok(())` when `/health` answers 200 within `timeout`; otherwise a sentence saying why.
pub fn check(port: u16, timeout: Duration) -> Result<(), String> {
    match crate::cli::http::call(port, "GET", "/health", None, timeout) {
        Ok(r) if r.status == 200 => Ok(()),
        Ok(r) => Err(format!("GET /health on port {port} answered {}: {}", r.status, r.body.trim())),
        Err(e) => Err(format!("GET /health on port {port}: {e}")),
    }
}
