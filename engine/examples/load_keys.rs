//! Loads N keys into a RESP server (the engine or redis-server, the same way), for the
//! keyspace-growth benchmark (`bench/keyspace-growth.sh`): `SET key:<i, 12 digits> <value>`
//! for every i below N, pipelined, so `redis-benchmark -t get -r N` then hits every key it
//! asks for. Prints the load rate.
//!
//! `cargo run --release -p mirrorlab-engine --example load_keys -- <port> <keys> [value bytes]`

use engine::client::{Client, Reply};
use std::time::{Duration, Instant};

/// SETs per pipeline round trip.
const PIPELINE: u64 = 1000;

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: load_keys <port> <keys> [value bytes]";
    let port: u16 = args.next().and_then(|s| s.parse().ok()).expect(usage);
    let keys: u64 = args.next().and_then(|s| s.parse().ok()).expect(usage);
    let value_bytes: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    let mut c = Client::connect(format!("127.0.0.1:{port}"), Duration::from_secs(10)).expect("connect");
    c.set_timeout(Some(Duration::from_secs(300))).expect("timeout");
    let value = vec![b'x'; value_bytes];
    let started = Instant::now();
    let mut next = 0u64;
    while next < keys {
        let end = (next + PIPELINE).min(keys);
        let names: Vec<String> = (next..end).map(|i| format!("key:{i:012}")).collect();
        let commands: Vec<[&[u8]; 3]> = names.iter().map(|k| [&b"SET"[..], k.as_bytes(), &value[..]]).collect();
        let refs: Vec<&[&[u8]]> = commands.iter().map(|c| &c[..]).collect();
        for reply in c.pipeline(&refs).expect("pipeline") {
            assert!(matches!(reply, Reply::Simple(ref s) if s == "OK"), "SET answered {reply:?}");
        }
        next = end;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("loaded {keys} keys of {value_bytes} B in {secs:.1} s ({:.0} SET/s)", keys as f64 / secs);
}
