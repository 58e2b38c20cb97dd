//! Mirroring benchmarks with real processes on loopback (figures for docs/benchmarks.md):
//!
//! 1. durable commits, 16 clients, no pipelining: a lone engine vs. a primary with an
//!    active backup, over plain TCP and over mutual TLS (throughput, p50/p99 commit
//!    latency);
//! 2. failover time: kill -9 of the primary under load, measured by a client as the last
//!    acknowledged commit on the old primary → the first on the new one, over N runs:
//!    kill -9 of the engine with its agent left running (the agent path), over plain TCP
//!    and over mutual TLS alternated; then the whole host lost, its agent killed first
//!    (the backup waits for the QoS timeout and asks the arbiter);
//! 3. dejournaling: the primary's maximum ingest rate (pipelined writes, 4 clients, while
//!    the backup's mirroring is stopped), then the rate at which the backup receives,
//!    journals and applies that backlog once mirroring starts again on it.
//!
//! `cargo run --release -p mirrorlab-tests --example mirror_bench -- [seconds] [failover runs]`
//!
//! `... --example mirror_bench -- commits SECONDS CLIENTS` runs part 1 only, with CLIENTS
//! clients, and ends with one `result` line of figures for scripts
//! (bench/mirror-vs-postgres.sh); `... -- failover RUNS` runs part 2 only.

use mirrorlab_tests::engine::client::Client;
use mirrorlab_tests::mirror::Lab;
use mirrorlab_tests::{http, Engine};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: u64 = 16;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("commits") {
        let number = |i: usize, what: &str| -> u64 {
            args.get(i).and_then(|a| a.parse().ok()).unwrap_or_else(|| {
                eprintln!("usage: mirror_bench commits SECONDS CLIENTS ({what} missing or not a number)");
                std::process::exit(2)
            })
        };
        let (alone, mirrored) = commit_rates(number(2, "SECONDS"), number(3, "CLIENTS"), false);
        // alone: rate p50 p99 lowest-window; mirrored: the same.
        println!(
            "result {:.0} {:.3} {:.3} {:.2} {:.0} {:.3} {:.3} {:.2}",
            alone.0, alone.1, alone.2, alone.3, mirrored.0, mirrored.1, mirrored.2, mirrored.3
        );
        return;
    }
    if args.get(1).map(String::as_str) == Some("failover") {
        let runs = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20);
        failovers(runs);
        return;
    }
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let runs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20);

    // 1. Commit throughput.
    commit_rates(seconds, CLIENTS, true);

    // 3. Dejournaling against ingest.
    let (ingest, records, catch_up) = dejournal_rate(seconds);
    println!("dejournaling ({records} records)");
    println!("  primary ingest (pipelined):   {ingest:>9.0} records/s");
    println!("  backup catch-up (dejournal):  {:>9.0} records/s", records as f64 / catch_up.as_secs_f64());
    println!("  ratio:                        {:.2}x", records as f64 / catch_up.as_secs_f64() / ingest);

    // 2. Failover time.
    failovers(runs);
}

/// Failover time over `runs` runs of each path: the primary's engine killed with its
/// agent left running, then its whole host lost (agent and engine).
fn failovers(runs: usize) {
    if runs == 0 {
        return;
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let summary = |what: &str, mut times: Vec<Duration>| {
        times.sort();
        println!(
            "failover, {what}, under load, QoS {QOS_MS} ms, {runs} runs: p50 {:.0} ms, max {:.0} ms, min {:.0} ms",
            ms(times[times.len() / 2]),
            ms(*times.last().unwrap()),
            ms(times[0])
        );
    };
    // The agent path over plain TCP and TLS alternated, so the machine's other load falls
    // on both alike.
    let (mut plain, mut tls) = (Vec::new(), Vec::new());
    for run in 0..runs {
        for (over_tls, times) in [(false, &mut plain), (true, &mut tls)] {
            let t = failover_once(false, over_tls);
            let what = if over_tls { "TLS  " } else { "plain" };
            println!("  failover run {:>2} {what}: {:>6.0} ms", run + 1, ms(t));
            times.push(t);
        }
    }
    summary("kill -9 of the engine, agent left (agent path), plain TCP", plain);
    summary("kill -9 of the engine, agent left (agent path), mutual TLS", tls);
    let mut lost = Vec::new();
    for run in 0..runs {
        let t = failover_once(true, false);
        println!("  failover run {:>2} host loss: {:>6.0} ms", run + 1, ms(t));
        lost.push(t);
    }
    summary("host loss, agent and engine killed (QoS + arbiter path)", lost);
}

/// The QoS timeout of the failover runs (the engine's default).
const QOS_MS: u32 = 3000;

/// Durable commits on a lone engine, then on a primary with an active backup, the same
/// load each (see `commits`), and with `tls` on a mirror speaking mutual TLS too; prints
/// them and their ratios.
fn commit_rates(seconds: u64, clients: u64, tls: bool) -> (Rates, Rates) {
    let lone = Engine::start();
    let (code, text) = http(lone.web_port, "POST", "/api/databases", Some(r#"{"name":"DATA"}"#));
    assert!(code == 201 || code == 200, "{text}");
    let (code, text) = http(lone.web_port, "POST", "/api/namespaces", Some(r#"{"name":"DATA","globals":"DATA"}"#));
    assert!(code == 201 || code == 200, "{text}");
    let alone = commits(lone.superserver_port, seconds, clients);
    drop(lone);
    let lab = Lab::start(&[("MIRRORA", "failover"), ("MIRRORB", "failover")], 3000);
    lab.add_mirrored_database("DATA");
    let mirrored = commits(lab.engine(0).superserver_port, seconds, clients);
    let stages = [(0, "round_trip"), (0, "confirm"), (1, "member_append"), (1, "member_sync")].map(|(i, stage)| {
        let (_, text) = http(lab.engine(i).web_port, "GET", "/metrics", None);
        (stage, stage_figures(&text, stage))
    });
    drop(lab);
    let over_tls = tls.then(|| {
        let lab = Lab::start_tls(&[("MIRRORA", "failover"), ("MIRRORB", "failover")], 3000);
        lab.add_mirrored_database("DATA");
        commits(lab.engine(0).superserver_port, seconds, clients)
    });
    println!("durable commits, {clients} clients, {seconds} s each");
    println!(
        "  lone engine:          {:>8.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  lowest 250 ms: {:.2}x the mean",
        alone.0, alone.1, alone.2, alone.3
    );
    println!(
        "  primary + backup:     {:>8.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  lowest 250 ms: {:.2}x the mean",
        mirrored.0, mirrored.1, mirrored.2, mirrored.3
    );
    println!("  ratio:                {:.2}x", mirrored.0 / alone.0);
    if let Some(t) = over_tls {
        println!(
            "  primary + backup, TLS:{:>8.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  lowest 250 ms: {:.2}x the mean",
            t.0, t.1, t.2, t.3
        );
        println!("  ratio, TLS / plain:   {:.2}x", t.0 / mirrored.0);
    }
    println!("  where a mirrored commit's time goes (mirror::stages; p99 as a bucket bound):");
    for (stage, (count, mean, p99)) in stages {
        println!("    {stage:<14} {count:>9} observed  mean {:>7.3} ms  p99 <= {:>7.3} ms", mean * 1e3, p99 * 1e3);
    }
    (alone, mirrored)
}

/// (observations, mean seconds, the bucket bound under which 99% fall) of the histogram
/// `mirrorlab_mirror_commit_<stage>_seconds` in a scrape.
fn stage_figures(scrape: &str, stage: &str) -> (u64, f64, f64) {
    let name = format!("mirrorlab_mirror_commit_{stage}_seconds");
    let value = |line: &str| line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let find =
        |suffix: &str| scrape.lines().find(|l| l.starts_with(&format!("{name}_{suffix} "))).map(value).unwrap_or(0.0);
    let (count, sum) = (find("count"), find("sum"));
    let buckets: Vec<(f64, f64)> = scrape
        .lines()
        .filter_map(|l| {
            let le = l.strip_prefix(&format!("{name}_bucket{{le=\""))?.split('"').next()?;
            Some((if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? }, value(l)))
        })
        .collect();
    let p99 = buckets.iter().find(|(_, n)| *n >= count * 0.99).map_or(0.0, |b| b.0);
    (count as u64, if count > 0.0 { sum / count } else { 0.0 }, p99)
}

/// (commits/s, p50 ms, p99 ms, the lowest 250 ms window's rate as a fraction of the mean).
type Rates = (f64, f64, f64, f64);

/// `clients` clients committing `SET ^b(n)` in `always` durability for `seconds`: (commits/s,
/// p50 ms, p99 ms, the lowest 250 ms window's rate as a fraction of the mean: a stall or a
/// collapse shows there, never in the mean alone).
fn commits(port: u16, seconds: u64, clients: u64) -> Rates {
    let stop = Arc::new(AtomicBool::new(false));
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let done_at: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
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

/// One kill -9 of the primary under load (with its agent first when `host_loss`); the
/// client-measured gap between the last acknowledged commit before and the first after.
/// `tls`: the mirror speaks mutual TLS (the clients' superserver connections stay plain).
fn failover_once(host_loss: bool, tls: bool) -> Duration {
    let members = [("MIRRORA", "failover"), ("MIRRORB", "failover")];
    let mut lab = if tls { Lab::start_tls(&members, QOS_MS) } else { Lab::start(&members, QOS_MS) };
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
    if host_loss {
        lab.lose_host(0);
    } else {
        lab.kill9(0);
    }
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
