//! `engine qlist`: one caret-separated line in the reference product's layout, for
//! liveness probes (`engine qlist | grep running`).
//!
//! `name^directory^version^state^config file^superserver port^web port^gateway port^health^product^mirror member type^mirror status^data directory`

use crate::instance::config::Config;
use crate::instance::datadir::DataDir;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QList {
    pub line: String,
    pub running: bool,
}

pub fn qlist(dir: &DataDir) -> QList {
    let config = std::fs::read_to_string(dir.config_file()).ok().and_then(|t| Config::parse(&t, "").ok());
    let name = config.as_ref().map_or("MIRRORLAB".to_string(), |c| c.instance.name.clone());
    let install_dir =
        std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.display().to_string())).unwrap_or_default();
    let state = dir.read_state();
    let holder = dir.lock_holder();
    let (running, state_text, ports, health) = match (&holder, &state) {
        (Some(_), Some(s)) => {
            let health = probe_health(s.superserver_port);
            (true, format!("running, since {}", s.started_at), (s.superserver_port, s.web_port), health)
        }
        (Some(_), None) => (true, "running, starting".to_string(), (0, 0), "warn"),
        (None, s) => {
            let last = s
                .as_ref()
                .map(|s| s.stopped_at.clone().unwrap_or_else(|| s.started_at.clone()))
                .unwrap_or_else(|| "never".into());
            let ports = config.as_ref().map_or((1972, 52773), |c| (c.network.superserver_port, c.network.web_port));
            (false, format!("down, last used {last}"), ports, "")
        }
    };
    let fields = [
        name,
        install_dir,
        env!("CARGO_PKG_VERSION").to_string(),
        state_text,
        dir.config_file().display().to_string(),
        ports.0.to_string(),
        ports.1.to_string(),
        String::new(),
        health.to_string(),
        "Mirrorlab".to_string(),
        String::new(),
        String::new(),
        dir.root().display().to_string(),
    ];
    QList { line: fields.join("^"), running }
}

/// `ok` when the superserver answers PING within two seconds, `hung` otherwise.
fn probe_health(port: u16) -> &'static str {
    let ping = || -> std::io::Result<bool> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(b"*1\r\n$4\r\nPING\r\n")?;
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf)?;
        Ok(&buf == b"+PONG\r\n")
    };
    if ping().unwrap_or(false) {
        "ok"
    } else {
        "hung"
    }
}
