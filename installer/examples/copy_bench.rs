//! Copy rate of a database file to a joining member: the exact code `apply` runs
//! (`installer::target::copy::install_file`: staging file, fsync, rename, fsync of the
//! directory), on a file of SIZE_MIB (default 1024) in DIR (default: a temporary
//! directory). Run by bench/mirrorlab-up.sh; prints one line of figures.
//!
//!   cargo run --release -p mirrorlab-installer --example copy_bench -- [SIZE_MIB] [DIR]

use std::io::Write;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: u64 = args.next().map(|s| s.parse().expect("SIZE_MIB is a number")).unwrap_or(1024);
    let base = args.next().map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let work = base.join(format!("mirrorlab-copy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("create the work directory");
    let src = work.join("source.dat");
    {
        // Seeded xorshift bytes: incompressible, identical on every run.
        let mut f = std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(&src).expect("create the source"));
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..mib {
            for chunk in block.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
            }
            f.write_all(&block).expect("write the source");
        }
        f.into_inner().expect("flush").sync_all().expect("fsync the source");
    }
    // A cold source is the honest case (the primary's file is not necessarily cached);
    // dropping the page cache needs root, so say which case was measured.
    let cold = std::fs::write("/proc/sys/vm/drop_caches", "1").is_ok();
    let dir = work.join("member/databases/BIG");
    let start = Instant::now();
    let n = installer::target::copy::install_file(&src, &dir, &|_, _| {}).expect("copy");
    let secs = start.elapsed().as_secs_f64();
    println!(
        "copied {} MiB in {:.2} s: {:.0} MB/s ({} source, staging + fsync + rename + directory fsync included)",
        n >> 20,
        secs,
        n as f64 / secs / 1e6,
        if cold { "cold" } else { "page-cached" }
    );
    std::fs::remove_dir_all(&work).expect("remove the work directory");
}
