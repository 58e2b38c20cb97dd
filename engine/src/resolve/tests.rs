//! The resolver against its own files and a DNS responder on a loopback port. The
//! responder answers from a fixed table, so every run is the same.

use super::*;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// A DNS server on 127.0.0.1: answers names in `table`, NXDOMAIN for the rest; with
/// `stray`, each real answer is preceded by one for another query id.
struct Responder {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Responder {
    fn start(table: &[(&str, &[IpAddr])], stray: bool) -> Responder {
        let table: BTreeMap<Vec<u8>, Vec<IpAddr>> = table
            .iter()
            .map(|(name, a)| (dns::query(0, name, dns::TYPE_A).unwrap()[12..].to_vec(), a.to_vec()))
            .collect();
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let port = socket.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
                let q = &buf[..n];
                // The table is keyed by the question with its type set to A.
                let mut key = q[12..].to_vec();
                let l = key.len();
                key[l - 4..l - 2].copy_from_slice(&dns::TYPE_A.to_be_bytes());
                let reply = match table.get(&key) {
                    Some(a) => dns::answer(q, 0, a),
                    None => dns::answer(q, 3, &[]),
                };
                if stray {
                    let mut other = reply.clone();
                    other[0] ^= 0xFF;
                    socket.send_to(&other, from).unwrap();
                }
                socket.send_to(&reply, from).unwrap();
            }
        });
        Responder { port, stop, thread: Some(thread) }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn resolver(dir: &tempfile::TempDir, hosts: &str, resolv_conf: &str, dns_port: u16) -> Resolver {
    std::fs::write(dir.path().join("hosts"), hosts).unwrap();
    std::fs::write(dir.path().join("resolv.conf"), resolv_conf).unwrap();
    Resolver { hosts: dir.path().join("hosts"), resolv_conf: dir.path().join("resolv.conf"), dns_port }
}

const V4: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(172, 18, 0, 3));

#[test]
fn numeric_addresses_need_no_files() {
    let r = Resolver { hosts: "/nonexistent/hosts".into(), resolv_conf: "/nonexistent/resolv".into(), dns_port: 1 };
    assert_eq!(r.resolve("10.1.2.3:1972").unwrap(), vec!["10.1.2.3:1972".parse().unwrap()]);
    assert_eq!(r.resolve("[::1]:2188").unwrap(), vec!["[::1]:2188".parse().unwrap()]);
}

#[test]
fn malformed_addresses_say_what_is_expected() {
    let r = Resolver::default();
    for bad in ["mirrorb", "mirrorb:", "mirrorb:99999", ":1972", "::1:1972", "[::1]1972"] {
        let e = r.resolve(bad).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}");
        assert!(e.to_string().contains("expected host:port"), "{bad}: {e}");
    }
}

#[test]
fn hosts_file_wins_and_ignores_case_and_comments() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = "# comment\n127.0.0.1 localhost\n172.18.0.3\tMirrorB mirrorb.lab # the backup\n::1 ip6-localhost\n";
    // The DNS port answers nothing: the hosts file must be enough.
    let r = resolver(&dir, hosts, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n", 1);
    assert_eq!(r.lookup("mirrorb").unwrap(), vec![V4]);
    assert_eq!(r.lookup("MIRRORB.lab").unwrap(), vec![V4]);
    assert_eq!(r.lookup("localhost").unwrap(), vec![IpAddr::from([127, 0, 0, 1])]);
}

#[test]
fn localhost_without_a_hosts_file_is_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let r = resolver(&dir, "", "nameserver 127.0.0.1\n", 1);
    let a = r.lookup("localhost").unwrap();
    assert_eq!(a[0], IpAddr::from([127, 0, 0, 1]));
}

#[test]
fn dns_answers_a_records_and_follows_the_search_list() {
    let v6: IpAddr = "fd00::7".parse().unwrap();
    let dns = Responder::start(&[("arbiter", &[V4]), ("mirrora.lab.test", &[V4]), ("dr", &[v6])], false);
    let dir = tempfile::tempdir().unwrap();
    let r =
        resolver(&dir, "127.0.0.1 localhost\n", "nameserver 127.0.0.1\nsearch lab.test\noptions ndots:0\n", dns.port);
    assert_eq!(r.resolve("arbiter:2188").unwrap(), vec![SocketAddr::new(V4, 2188)]);
    assert_eq!(r.lookup("mirrora").unwrap(), vec![V4], "found through the search domain");
    assert_eq!(r.lookup("dr").unwrap(), vec![v6], "AAAA when there is no A record");
}

#[test]
fn an_unknown_name_is_a_clear_not_found() {
    let dns = Responder::start(&[("arbiter", &[V4])], false);
    let dir = tempfile::tempdir().unwrap();
    let r = resolver(&dir, "", "nameserver 127.0.0.1\n", dns.port);
    let e = r.resolve("mirrorb:1972").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(e.to_string().starts_with("cannot resolve mirrorb: no such host"), "{e}");
}

#[test]
fn late_answers_to_other_questions_are_skipped() {
    let dns = Responder::start(&[("arbiter", &[V4])], true);
    let dir = tempfile::tempdir().unwrap();
    let r = resolver(&dir, "", "nameserver 127.0.0.1\n", dns.port);
    assert_eq!(r.lookup("arbiter").unwrap(), vec![V4]);
}

#[test]
fn a_silent_nameserver_times_out_within_the_configured_bound() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let r = resolver(&dir, "", "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n", port);
    let started = Instant::now();
    let e = r.resolve("mirrorb:1972").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(e.to_string().starts_with("cannot resolve mirrorb: no answer from DNS server 127.0.0.1"), "{e}");
    // A then AAAA, one second each, at most.
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[test]
fn resolv_conf_options_are_bounded() {
    let c = files::parse_resolv_conf(
        "nameserver 127.0.0.11\nnameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nsearch a b\noptions ndots:0 timeout:999 attempts:0\n",
    );
    assert_eq!(c.nameservers.len(), 3, "glibc uses three at most");
    assert_eq!(c.search, vec!["a", "b"]);
    assert_eq!((c.ndots, c.timeout, c.attempts), (0, Duration::from_secs(30), 1));
    assert_eq!(files::parse_resolv_conf("").nameservers, vec![IpAddr::from([127, 0, 0, 1])]);
}

#[test]
fn garbage_answers_are_errors_never_panics() {
    let seed = 0x5EED_0005u64;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let q = dns::query(7, "mirrorb", dns::TYPE_A).unwrap();
    let good = dns::answer(&q, 0, &[V4, "10.0.0.1".parse().unwrap()]);
    assert_eq!(
        dns::parse(7, dns::TYPE_A, &good).unwrap(),
        dns::Answer::Addresses(vec![V4, "10.0.0.1".parse().unwrap()])
    );
    for case in 0..20_000 {
        let mut b = good.clone();
        match rng.gen_range(0..3) {
            0 => b.truncate(rng.gen_range(0..b.len())),
            1 => {
                let i = rng.gen_range(2..b.len());
                b[i] = rng.gen();
            }
            _ => b = (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect(),
        }
        // Whatever the result, it must come back (seed {seed:#x}, case {case}).
        let _ = std::panic::catch_unwind(|| dns::parse(7, dns::TYPE_A, &b))
            .unwrap_or_else(|_| panic!("parse panicked: seed {seed:#x}, case {case}, bytes {b:?}"));
    }
}

#[test]
fn names_that_cannot_be_sent_are_refused() {
    assert!(dns::query(1, &"a".repeat(64), dns::TYPE_A).is_err());
    assert!(dns::query(1, "a..b", dns::TYPE_A).is_err());
    assert!(dns::query(1, &"a.".repeat(130), dns::TYPE_A).is_err());
}

#[test]
fn connect_std_reaches_a_listener_by_name() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    connect_std(&format!("127.0.0.1:{port}"), Duration::from_secs(2)).unwrap();
    drop(l);
    let e = connect_std(&format!("127.0.0.1:{port}"), Duration::from_secs(2)).unwrap_err();
    assert!(e.to_string().starts_with(&format!("cannot connect to 127.0.0.1:{port}")), "{e}");
}

#[tokio::test]
async fn async_connect_reaches_a_listener() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    connect(&format!("127.0.0.1:{port}")).await.unwrap();
}
