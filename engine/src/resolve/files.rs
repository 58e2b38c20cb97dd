//! `/etc/hosts` and `/etc/resolv.conf`, parsed from their text (pure). Docker writes both
//! into every container; in a user-defined network resolv.conf names the embedded DNS
//! server 127.0.0.11, which knows every container by its name, alias and hostname.

use std::net::IpAddr;
use std::time::Duration;

/// Most nameservers used, as glibc (MAXNS).
const MAX_NAMESERVERS: usize = 3;
/// Most search domains used (glibc allows 6).
const MAX_SEARCH: usize = 6;
/// Bounds on `options timeout:` and `attempts:` (glibc caps them at 30 and 5).
const MAX_TIMEOUT_S: u64 = 30;
const MAX_ATTEMPTS: u32 = 5;

/// The addresses `/etc/hosts` gives `name` (case-insensitive, as glibc), in file order.
pub fn hosts_lookup(text: &str, name: &str) -> Vec<IpAddr> {
    let name = name.trim_end_matches('.');
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(Ok(ip)) = fields.next().map(|f| f.split('%').next().unwrap_or(f).parse::<IpAddr>()) else {
            continue;
        };
        if fields.any(|n| n.eq_ignore_ascii_case(name)) && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    /// Names with at least this many dots are tried as given before the search list.
    pub ndots: usize,
    /// Per query and nameserver.
    pub timeout: Duration,
    /// Rounds over the nameservers.
    pub attempts: u32,
}

impl Default for ResolvConf {
    /// What glibc assumes without the file: a local server, 5 s, 2 attempts; our timeout
    /// is shorter because every caller has its own deadline and retries.
    fn default() -> Self {
        ResolvConf {
            nameservers: vec![IpAddr::from([127, 0, 0, 1])],
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(2),
            attempts: 2,
        }
    }
}

pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut conf = ResolvConf { nameservers: Vec::new(), ..ResolvConf::default() };
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("nameserver") => {
                let ip = fields.next().and_then(|f| f.split('%').next()?.parse::<IpAddr>().ok());
                if let Some(ip) = ip.filter(|_| conf.nameservers.len() < MAX_NAMESERVERS) {
                    conf.nameservers.push(ip);
                }
            }
            // As glibc: the last search or domain line wins.
            Some("search") | Some("domain") => {
                conf.search = fields.take(MAX_SEARCH).map(|d| d.trim_end_matches('.').to_string()).collect();
                conf.search.retain(|d| !d.is_empty());
            }
            Some("options") => {
                for opt in fields {
                    let (key, value) = opt.split_once(':').unwrap_or((opt, ""));
                    let n = value.parse::<u64>().ok();
                    match (key, n) {
                        ("ndots", Some(n)) => conf.ndots = n.min(15) as usize,
                        ("timeout", Some(n)) => conf.timeout = Duration::from_secs(n.clamp(1, MAX_TIMEOUT_S)),
                        ("attempts", Some(n)) => conf.attempts = n.clamp(1, MAX_ATTEMPTS.into()) as u32,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if conf.nameservers.is_empty() {
        conf.nameservers = ResolvConf::default().nameservers;
    }
    conf
}

/// The names to query for `name`, in order (resolv.conf(5): as given first when it has
/// at least `ndots` dots, else the search domains first).
pub fn candidates(conf: &ResolvConf, name: &str) -> Vec<String> {
    if name.ends_with('.') {
        return vec![name.trim_end_matches('.').to_string()];
    }
    let searched = conf.search.iter().map(|d| format!("{name}.{d}"));
    if name.matches('.').count() >= conf.ndots {
        std::iter::once(name.to_string()).chain(searched).collect()
    } else {
        searched.chain(std::iter::once(name.to_string())).collect()
    }
}
