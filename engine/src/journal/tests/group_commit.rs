use super::*;
use std::sync::Barrier;

#[test]
fn one_flush_covers_every_record_appended_before_it() {
    let (_sim, vfs) = sim(20);
    let journal = Arc::new(Journal::open(vfs, options(1 << 20)).unwrap());
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (journal, barrier) = (journal.clone(), barrier.clone());
            std::thread::spawn(move || {
                let position = journal.append(7, &RecordBody::Sync);
                barrier.wait();
                journal.flush_to(position).unwrap();
                assert!(journal.durable_position() >= position);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(journal.durable_position(), threads as u64);
    assert_eq!(journal.sync_count(), 1, "the first flush wrote everything; the others had nothing to do");
}

#[test]
fn concurrent_writers_share_fsyncs() {
    let (sim, vfs) = sim(21);
    sim.set_sync_delay(Duration::from_millis(2));
    let journal = Arc::new(Journal::open(vfs.clone(), options(1 << 20)).unwrap());
    let (threads, rounds) = (8u64, 20u64);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let journal = journal.clone();
            std::thread::spawn(move || {
                for _ in 0..rounds {
                    let position = journal.append(7, &RecordBody::TCommit);
                    journal.flush_to(position).unwrap();
                    assert!(journal.durable_position() >= position);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let writes = threads * rounds;
    assert_eq!(journal.durable_position(), writes);
    let syncs = journal.sync_count();
    assert!(syncs < writes, "{syncs} fsyncs for {writes} commits: no group commit");
    drop(journal);
    let journal = Journal::open(vfs, options(1 << 20)).unwrap();
    assert_eq!(
        journal.read_from(1).unwrap().map(|r| r.unwrap().position).collect::<Vec<_>>(),
        (1..=writes).collect::<Vec<_>>()
    );
}

#[test]
fn the_writer_thread_flushes_for_async_waiters() {
    let (_sim, vfs) = sim(22);
    let mut opts = options(1 << 20);
    opts.sync_interval = Duration::from_secs(3600);
    let journal = Arc::new(Journal::open(vfs, opts).unwrap());
    let writer = journal.start_writer();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let mut waits = Vec::new();
        for _ in 0..10 {
            let position = append_n(&journal, 3);
            let journal = journal.clone();
            waits.push(tokio::spawn(async move { journal.wait_durable(position).await }));
        }
        for w in waits {
            w.await.unwrap().unwrap();
        }
    });
    assert_eq!(journal.durable_position(), 30);
    append_n(&journal, 2);
    assert_eq!(writer.stop().unwrap(), 32, "stop flushes what is left");
    check_records(&journal, 1);
}

#[test]
fn the_writer_thread_flushes_a_full_buffer_without_being_asked() {
    let (_sim, vfs) = sim(23);
    let mut opts = options(1 << 20);
    opts.sync_interval = Duration::from_secs(3600);
    opts.buffer_flush_bytes = 512;
    let journal = Arc::new(Journal::open(vfs, opts).unwrap());
    let _writer = journal.start_writer();
    let mut durable = journal.durable.subscribe();
    while journal.buffered_bytes() < 512 {
        append_n(&journal, 1);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // No request_flush: only the size threshold can trigger this flush.
    rt.block_on(durable.wait_for(|&d| d > 0)).unwrap();
}

#[test]
fn the_writer_thread_flushes_every_sync_interval() {
    let (_sim, vfs) = sim(24);
    let mut opts = options(1 << 20);
    opts.sync_interval = Duration::from_millis(5);
    let journal = Arc::new(Journal::open(vfs, opts).unwrap());
    let _writer = journal.start_writer();
    let mut durable = journal.durable.subscribe();
    let position = append_n(&journal, 4);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(durable.wait_for(|&d| d >= position)).unwrap();
}
