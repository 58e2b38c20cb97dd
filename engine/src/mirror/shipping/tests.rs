//! Primary and member journals connected in-process through a duplex pipe.

use super::follower::{follow, PrimaryView};
use super::sender::serve_member;
use super::ShippingError;
use crate::journal::{Journal, JournalOptions, OldValue, Record, RecordBody};
use crate::vfs::sim::SimVfs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

fn journal(seed: u64, file_size_limit: u64) -> Arc<Journal> {
    let options = JournalOptions {
        dir: PathBuf::from("/data/journal/mirror-DEMO"),
        file_size_limit,
        sync_interval: Duration::from_millis(50),
        buffer_flush_bytes: 1 << 20,
    };
    Arc::new(Journal::open(Arc::new(SimVfs::new(seed)), options).unwrap())
}

fn write(j: &Journal, n: u64) {
    for _ in 0..n {
        let p = j.last_position() + 1;
        let body = RecordBody::Set {
            db: "COMPANY".into(),
            key: format!("Company\0{p}").into_bytes(),
            value: vec![b'v'; (p % 50) as usize],
            old: OldValue::NotRecorded,
        };
        j.append(0, &body);
        if p.is_multiple_of(7) {
            j.flush().unwrap();
        }
    }
    j.flush().unwrap();
}

fn records(j: &Journal) -> Vec<Record> {
    j.read_from(1).unwrap().map(Result::unwrap).collect()
}

/// Asserts two journals hold the same records, naming the first difference.
fn assert_same(member: &Journal, primary: &Journal) {
    let (ours, theirs) = (records(member), records(primary));
    if let Some(i) = (0..ours.len().min(theirs.len())).find(|&i| ours[i] != theirs[i]) {
        panic!("first difference at index {i}:\n member:  {:?}\n primary: {:?}", ours[i], theirs[i]);
    }
    assert_eq!(ours.len(), theirs.len(), "member has {} records, primary {}", ours.len(), theirs.len());
}

struct Link {
    acked: watch::Receiver<u64>,
    view: watch::Receiver<PrimaryView>,
    sender: tokio::task::JoinHandle<Result<(), ShippingError>>,
    follower: tokio::task::JoinHandle<Result<(), ShippingError>>,
}

fn connect(primary: &Arc<Journal>, member: &Arc<Journal>, mirror: &str) -> Link {
    let (a, b) = tokio::io::duplex(256 << 10);
    let (acked_tx, acked) = watch::channel(0);
    let (view_tx, view) = watch::channel(PrimaryView::default());
    let p = primary.clone();
    let sender = tokio::spawn(async move { serve_member(a, p, "DEMO", acked_tx, |_| {}).await });
    let (m, mirror) = (member.clone(), mirror.to_string());
    let follower = tokio::spawn(async move { follow(b, m, &mirror, "MIRRORB", view_tx).await });
    Link { acked, view, sender, follower }
}

async fn acked_to(link: &mut Link, position: u64) {
    // `wait_for` also ends when the sender task is gone (its watch closed): that is a
    // failure, and the sender's own result says why.
    let reached = matches!(
        tokio::time::timeout(Duration::from_secs(20), link.acked.wait_for(|a| *a >= position)).await,
        Ok(Ok(_))
    );
    if !reached {
        let acked = *link.acked.borrow();
        let sender =
            if link.sender.is_finished() { format!("{:?}", (&mut link.sender).await) } else { "running".into() };
        panic!("the member did not acknowledge position {position}; it acked {acked}; the sender: {sender}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_catches_up_from_files_then_follows_live() {
    let primary = journal(1, 16 << 10);
    primary.set_epoch(2);
    write(&primary, 400);
    let member = journal(2, 1 << 20);
    let mut link = connect(&primary, &member, "demo");
    acked_to(&mut link, 400).await;
    // Live: records written while connected arrive through the feed.
    let p = primary.clone();
    tokio::task::spawn_blocking(move || write(&p, 600)).await.unwrap();
    acked_to(&mut link, 1000).await;
    assert_same(&member, &primary);
    assert_eq!(member.epoch(), 2);
    assert!(link.view.borrow().durable >= 400);
    // A newer epoch flows through too.
    primary.set_epoch(3);
    let p = primary.clone();
    tokio::task::spawn_blocking(move || write(&p, 5)).await.unwrap();
    acked_to(&mut link, 1005).await;
    assert_eq!(member.epoch(), 3);
    // The primary goes away: the member sees the stream end, cleanly.
    link.sender.abort();
    let ended = tokio::time::timeout(Duration::from_secs(10), link.follower).await.expect("the member noticed the end");
    assert!(ended.unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_reconnects_resumes_where_it_stopped() {
    let primary = journal(3, 1 << 20);
    write(&primary, 50);
    let member = journal(4, 1 << 20);
    let mut link = connect(&primary, &member, "DEMO");
    acked_to(&mut link, 50).await;
    link.sender.abort();
    let _ = link.follower.await;
    write(&primary, 50);
    let mut again = connect(&primary, &member, "DEMO");
    acked_to(&mut again, 100).await;
    assert_same(&member, &primary);
}

async fn refused(primary: &Arc<Journal>, member: &Arc<Journal>, mirror: &str) -> String {
    let link = connect(primary, member, mirror);
    let on_member = link.follower.await.unwrap().unwrap_err();
    let on_primary = link.sender.await.unwrap().unwrap_err();
    assert!(matches!(on_primary, ShippingError::Rejected(_)), "{on_primary}");
    match on_member {
        ShippingError::Rejected(reason) => reason,
        other => panic!("expected a refusal, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_join_matrix_refuses_with_reasons() {
    let primary = journal(5, 1 << 20);
    primary.set_epoch(2);
    write(&primary, 5);

    let other_mirror = journal(6, 1 << 20);
    let reason = refused(&primary, &other_mirror, "OTHER").await;
    assert!(reason.contains("belongs to mirror OTHER") && reason.contains("serves mirror DEMO"), "{reason}");

    let ahead = journal(7, 1 << 20);
    ahead.set_epoch(2);
    write(&ahead, 9);
    let reason = refused(&primary, &ahead, "DEMO").await;
    assert!(reason.contains("ends at position 9, past the primary's 5"), "{reason}");

    let diverged = journal(8, 1 << 20);
    diverged.set_epoch(1);
    write(&diverged, 5);
    let reason = refused(&primary, &diverged, "DEMO").await;
    assert!(reason.contains("diverged at position 5 (its epoch 1, the primary's 2)"), "{reason}");

    // The primary purged what the member would need: only a copy helps.
    let purging = journal(9, 4 << 10);
    write(&purging, 300);
    let behind = journal(10, 1 << 20);
    behind.append_received(&records(&purging)[0]).unwrap();
    behind.flush().unwrap();
    assert!(!purging.purge(200).unwrap().is_empty());
    let reason = refused(&purging, &behind, "DEMO").await;
    assert!(reason.contains("no longer holds position 1 (purged)"), "{reason}");
}
