//! Mirroring benchmarks with real processes on loopback (figures for docs/benchmarks.md):
//!
//! 1. durable commits, 16 clients, no pipelining: a lone engine vs. a primary with an
//!    active backup, over plain TCP and over mutual TLS (throughput, p50/p99 commit
//!    latency);
//! 2. failover time: kill -9 of the primary under load, measured by a client as the last
//!    acknowledged commit on the old primary → the first on the new one, over N runs of
//!    a plain and N of a TLS mirror, alternated;
//! 3. dejournaling: the primary's maximum ingest rate (pipelined writes, 4 clients, while
//!    the backup's mirroring is stopped), then the rate at which the backup receives,
//!    journals and applies that backlog once mirroring starts again on it.
//!
//! `cargo run --release -p mirrorlab-tests --example mirror_bench -- [seconds] [failover runs]`

use mirrorlab_tests::engine::client::Client;
use mirrorlab_tests::mirror::Lab;
use mirrorlab_tests::{http, Engine};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: u64 = 16;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let runs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20);

    // 1. Commit throughput.
    let lone = Engine::start();
    let (code, text) = http(lone.web_port, "POST", "/api/databases", Some(r#"{"name":"DATA"}"#));
    assert!(code == 201 || code == 200, "{text}");
    let (code, text) = http(lone.web_port, "POST", "/api/namespaces", Some(r#"{"name":"DATA","globals":"DATA"}"#));
    assert!(code == 201 || code == 200, "{text}");
    let alone = commits(lone.superserver_port, seconds);
    drop(lone);
    let lab = Lab::start(&[("MIRRORA", "failover"), ("MIRRORB", "failover")], 3000);
    lab.add_mirrored_database("DATA");
    let mirrored = commits(lab.engine(0).superserver_port, seconds);
    drop(lab);
    let lab = Lab::start_tls(&[("MIRRORA", "failover"), ("MIRRORB", "failover")], 3000);
    lab.add_mirrored_database("DATA");
    let over_tls = commits(lab.engine(0).superserver_port, seconds);
    drop(lab);
    println!("durable commits, {CLIENTS} clients, {seconds} s each");
    println!(
        "  lone engine:          {:>8.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  lowest 250 ms: {:.2}x the mean",
        alone.0, alone.1, alone.2, alone.3
    );
    println!(
        "  primary + backup:     {:>8.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  lowest 250 ms: {:.2}x the mean",
        mirrored.0, mirrored.1, mirrored.2, mirrored.3
    );
    println!(
        "  primary + backup, TLS:{:>8.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  lowest 250 ms: {:.2}x the mean",
        over_tls.0, over_tls.1, over_tls.2, over_tls.3
    );
    println!("  ratio:                {:.2}x", mirrored.0 / alone.0);
    println!("  ratio, TLS / plain:   {:.2}x", over_tls.0 / mirrored.0);

    // 3. Dejournaling against ingest.
    let (ingest, records, catch_up) = dejournal_rate(seconds);
    println!("dejournaling ({records} records)");
    println!("  primary ingest (pipelined):   {ingest:>9.0} records/s");
    println!("  backup catch-up (dejournal):  {:>9.0} records/s", records as f64 / catch_up.as_secs_f64());
    println!("  ratio:                        {:.2}x", records as f64 / catch_up.as_secs_f64() / ingest);

    // 2. Failover time.
    if runs == 0 {
        return;
    }
    // Alternated, so the machine's other load falls on both alike.
    let (mut plain, mut tls) = (Vec::new(), Vec::new());
    for run in 0..runs {
        for (over_tls, times) in [(false, &mut plain), (true, &mut tls)] {
            let t = failover_once(over_tls);
            let what = if over_tls { "TLS  " } else { "plain" };
            println!("  failover run {:>2} {what}: {:>6.0} ms", run + 1, t.as_secs_f64() * 1000.0);
            times.push(t);
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for (what, mut times) in [("plain", plain), ("TLS", tls)] {
        times.sort();
        println!(
            "failover (kill -9 under load, QoS 3000 ms), {what}, {runs} runs: p50 {:.0} ms, max {:.0} ms, min {:.0} ms",
            ms(times[times.len() / 2]),
            ms(*times.last().unwrap()),
            ms(times[0])
        );
    }
}

/// 16 clients committing `SET ^b(n)` in `always` durability for `seconds`: (commits/s,
/// p50 ms, p99 ms, the lowest 250 ms window's rate as a fraction of the mean: a stall or a
/// collapse shows there, never in the mean alone).
fn commits(port: u16, seconds: u64) -> (f64, f64, f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let done_at: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let start = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (stop, latencies, done_at) = (stop.clone(), latencies.clone(), done_at.clone());
            std::thread::spawn(move || {
                let mut client = Client::connect(format!("127.0.0.1:{port}"), Duration::from_secs(5)).unwrap();
                client.namespace("DATA").unwrap();
                client.command(&[b"DURABILITY", b"always"]).unwrap();
                let (mut mine, mut ends) = (Vec::new(), Vec::new());
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    client.set(&format!("^b({c},{n})"), "value-of-about-thirty-two-bytes").unwrap();
                    mine.push(t.elapsed().as_secs_f64() * 1000.0);
                    ends.push(start.elapsed());
                    n += 1;
                }
                latencies.lock().unwrap().extend(mine);
                done_at.lock().unwrap().extend(ends);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut l = latencies.lock().unwrap().clone();
    l.sort_by(f64::total_cmp);
    let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)];
    // Commits per 250 ms window over the whole windows of the run.
    let windows = (seconds * 4).max(1) as usize;
    let mut per_window = vec![0u64; windows];
    for d in done_at.lock().unwrap().iter() {
        if let Some(w) = per_window.get_mut((d.as_millis() / 250) as usize) {
            *w += 1;
        }
    }
    let mean = per_window.iter().sum::<u64>() as f64 / windows as f64;
    let lowest = per_window.iter().copied().min().unwrap_or(0) as f64;
    (l.len() as f64 / elapsed, pct(0.50), pct(0.99), if mean > 0.0 { lowest / mean } else { 0.0 })
}

/// One kill -9 of the primary under load; the client-measured gap between the last
/// acknowledged commit before and the first after.
/// `tls`: the mirror speaks mutual TLS (the clients' superserver connections stay plain).
fn failover_once(tls: bool) -> Duration {
    let members = [("MIRRORA", "failover"), ("MIRRORB", "failover")];
    let mut lab = if tls { Lab::start_tls(&members, 3000) } else { Lab::start(&members, 3000) };
    lab.add_mirrored_database("DATA");
    let ports = [lab.engine(0).superserver_port, lab.engine(1).superserver_port];
    let acks: Arc<Mutex<Vec<(Instant, usize)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acks, stop) = (acks.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            let mut client: Option<(Client, usize)> = None;
            while !stop.load(Ordering::SeqCst) {
                let Some((c, which)) = client.as_mut() else {
                    client = ports.iter().enumerate().find_map(|(i, p)| {
                        let mut c = Client::connect(format!("127.0.0.1:{p}"), Duration::from_millis(300)).ok()?;
                        c.set_timeout(Some(Duration::from_secs(5))).ok()?;
                        c.namespace("DATA").ok()?;
                        c.command(&[b"DURABILITY", b"always"]).ok()?;
                        Some((c, i))
                    });
                    continue;
                };
                match c.set(&format!("^f({n})"), "x") {
                    Ok(()) => {
                        acks.lock().unwrap().push((Instant::now(), *which));
                        n += 1;
                    }
                    Err(_) => {
                        client = None;
                        std::thread::sleep(Duration::from_millis(5)); // retry pacing
                    }
                }
            }
        })
    };
    mirrorlab_tests::wait_until("commits before the kill", Duration::from_secs(30), || {
        acks.lock().unwrap().len() > 100
    });
    lab.kill9(0);
    mirrorlab_tests::wait_until("a commit on the new primary", Duration::from_secs(30), || {
        acks.lock().unwrap().iter().any(|&(_, w)| w == 1)
    });
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let acks = acks.lock().unwrap();
    let last_old = acks.iter().filter(|a| a.1 == 0).map(|a| a.0).max().unwrap();
    let first_new = acks.iter().filter(|a| a.1 == 1).map(|a| a.0).min().unwrap();
    first_new.duration_since(last_old)
}

/// Ingest on the primary while the backup's mirroring is stopped, then the backup's
/// catch-up: (ingest records/s, records, catch-up time).
fn dejournal_rate(seconds: u64) -> (f64, u64, Duration) {
    let lab = Lab::start(&[("MIRRORA", "failover"), ("MIRRORB", "failover")], 3000);
    lab.add_mirrored_database("DATA");
    lab.act(1, r#"{"action":"stop-mirror"}"#);
    let position = |i: usize| lab.status(i)["durable_position"].as_u64().unwrap_or(0);
    let before = position(0);
    let port = lab.engine(0).superserver_port;
    let start = Instant::now();
    let writers: Vec<_> = (0..4u64)
        .map(|c| {
            std::thread::spawn(move || {
                let mut client = Client::connect(format!("127.0.0.1:{port}"), Duration::from_secs(5)).unwrap();
                client.namespace("DATA").unwrap();
                let deadline = Instant::now() + Duration::from_secs(seconds);
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let keys: Vec<String> = (0..256).map(|i| format!("^d({c},{})", n + i)).collect();
                    let commands: Vec<[&[u8]; 3]> =
                        keys.iter().map(|k| [&b"SET"[..], k.as_bytes(), b"value-of-about-thirty-two-bytes"]).collect();
                    let refs: Vec<&[&[u8]]> = commands.iter().map(|c| &c[..]).collect();
                    client.pipeline(&refs).unwrap();
                    n += 256;
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let ingest_time = start.elapsed();
    mirrorlab_tests::wait_until("the primary's journal to be durable", Duration::from_secs(30), || {
        lab.status(0)["durable_position"] == lab.status(0)["journal_position"]
    });
    let end = position(0);
    let records = end - before;
    let start = Instant::now();
    lab.act(1, r#"{"action":"start-mirror"}"#);
    mirrorlab_tests::wait_until("the backup to catch up", Duration::from_secs(300), || position(1) >= end);
    (records as f64 / ingest_time.as_secs_f64(), records, start.elapsed())
}
