//! Primary and member journals connected in-process through a duplex pipe.

use super::follower::{follow, FollowEnd, FromPrimary};
use super::sender::{decide_join, serve_member, FromMember};
use super::wire::Message;
use super::{scan_summary, ShippingError};
use crate::journal::{Journal, JournalOptions, OldValue, Record, RecordBody};
use crate::vfs::sim::SimVfs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

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
    view: watch::Receiver<u64>,
    sender: tokio::task::JoinHandle<Result<String, ShippingError>>,
    follower: tokio::task::JoinHandle<Result<FollowEnd, ShippingError>>,
}

fn join_of(member: &Journal, mirror: &str) -> Message {
    member.flush().unwrap();
    let summary = scan_summary(member).unwrap().expect("test journals start at 1");
    Message::Join {
        mirror: mirror.into(),
        member: "MIRRORB".into(),
        member_type: "failover".into(),
        last_position: summary.end(),
        last_epoch: summary.last_epoch(),
        summary: summary.segments().to_vec(),
    }
}

fn connect(primary: &Arc<Journal>, member: &Arc<Journal>, mirror: &str) -> Link {
    let (a, b) = tokio::io::duplex(256 << 10);
    let (acked_tx, acked) = watch::channel(0);
    let (view_tx, view) = watch::channel(0);
    let p = primary.clone();
    let (_control_tx, control_rx) = mpsc::channel(8);
    let (events_tx, mut events_rx) = mpsc::channel(64);
    let sender = tokio::spawn(async move {
        p.flush().unwrap();
        let ours = scan_summary(&p).unwrap().unwrap_or_default();
        let oldest = p.segments().first().map_or(1, |s| s.first_position);
        let _keep_control_open = _control_tx;
        serve_member(a, p, |j| decide_join("DEMO", &ours, oldest, j), control_rx, events_tx).await
    });
    tokio::spawn(async move {
        while let Some(e) = events_rx.recv().await {
            if let FromMember::Ack { durable, .. } = e {
                acked_tx.send_modify(|a| *a = (*a).max(durable));
            }
        }
    });
    let join = join_of(member, mirror);
    let sink: Arc<dyn super::follower::RecordSink> = member.clone();
    let (_out_tx, out_rx) = mpsc::channel(8);
    let (ev_tx, mut ev_rx) = mpsc::channel(64);
    let follower = tokio::spawn(async move {
        let _keep_outgoing_open = _out_tx;
        follow(b, sink, join, out_rx, ev_tx).await
    });
    tokio::spawn(async move {
        while let Some(e) = ev_rx.recv().await {
            if let FromPrimary::PrimaryDurable(d) | FromPrimary::Welcome { durable: d, .. } = e {
                view_tx.send_modify(|v| *v = (*v).max(d));
            }
        }
    });
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
    // Live: records written while connected arrive through the feed, never re-read from
    // the files, however soon after its write each one is durable (regression: the
    // sender re-read the journal for records the feed still held, and mirrored commits
    // collapsed as the segment grew).
    let reads = primary.file_reads();
    let p = primary.clone();
    tokio::task::spawn_blocking(move || write(&p, 600)).await.unwrap();
    acked_to(&mut link, 1000).await;
    assert_eq!(primary.file_reads(), reads, "the live stream read the journal files");
    assert_same(&member, &primary);
    assert_eq!(member.epoch(), 2);
    assert!(*link.view.borrow() >= 400);
    // A newer epoch flows through too.
    primary.set_epoch(3);
    let p = primary.clone();
    tokio::task::spawn_blocking(move || write(&p, 5)).await.unwrap();
    acked_to(&mut link, 1005).await;
    assert_eq!(member.epoch(), 3);
    // The primary goes away: the member sees the stream end, cleanly.
    link.sender.abort();
    let ended = tokio::time::timeout(Duration::from_secs(10), link.follower).await.expect("the member noticed the end");
    assert_eq!(ended.unwrap().unwrap(), FollowEnd::Closed);
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

async fn refused(primary: &Arc<Journal>, member: &Arc<Journal>, mirror: &str) -> Result<FollowEnd, String> {
    let link = connect(primary, member, mirror);
    let on_member = link.follower.await.unwrap();
    let on_primary = link.sender.await.unwrap().unwrap_err();
    assert!(matches!(on_primary, ShippingError::Rejected(_)), "{on_primary}");
    match on_member {
        Ok(end) => Ok(end),
        Err(ShippingError::Rejected(reason)) => Err(reason),
        Err(other) => panic!("expected a refusal, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_join_matrix_refuses_with_reasons() {
    let primary = journal(5, 1 << 20);
    primary.set_epoch(2);
    write(&primary, 5);

    let other_mirror = journal(6, 1 << 20);
    let reason = refused(&primary, &other_mirror, "OTHER").await.unwrap_err();
    assert!(reason.contains("belongs to mirror OTHER") && reason.contains("serves mirror DEMO"), "{reason}");

    // Records the primary never had: rewind to where the journals part.
    let ahead = journal(7, 1 << 20);
    ahead.set_epoch(2);
    write(&ahead, 9);
    assert_eq!(refused(&primary, &ahead, "DEMO").await, Ok(FollowEnd::Rewind(5)));

    let diverged = journal(8, 1 << 20);
    diverged.set_epoch(1);
    write(&diverged, 5);
    assert_eq!(refused(&primary, &diverged, "DEMO").await, Ok(FollowEnd::Rewind(0)));

    // The primary purged what the member would need: only a copy helps.
    let purging = journal(9, 4 << 10);
    write(&purging, 300);
    let behind = journal(10, 1 << 20);
    behind.append_received(&records(&purging)[0]).unwrap();
    behind.flush().unwrap();
    assert!(!purging.purge(200).unwrap().is_empty());
    let summary = scan_summary(&behind).unwrap().unwrap();
    let join = super::sender::JoinRequest { mirror: "DEMO".into(), member: "B".into(), summary };
    let purged_summary = crate::mirror::failover::JournalSummary::from_records(&[0; 300]);
    let oldest = purging.segments().first().unwrap().first_position;
    match decide_join("DEMO", &purged_summary, oldest, &join) {
        super::sender::JoinDecision::Reject(reason) => {
            assert!(reason.contains("no longer holds position 2 (purged)"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Regression: connections that never sent a JOIN held the primary's member slots for
/// ever, so 32 idle connections locked a restarted backup out.
/// (Real time: JOIN_TIMEOUT, 5 s.)
#[tokio::test]
async fn a_connection_that_never_joins_is_closed() {
    use super::sender::{JoinDecision, JoinRequest, JOIN_TIMEOUT};
    let p = journal(3, 1 << 20);
    let (a, _idle_peer) = tokio::io::duplex(1024);
    let (_control_tx, control_rx) = mpsc::channel(4);
    let (events_tx, _events_rx) = mpsc::channel(4);
    let never = |_: &JoinRequest| -> JoinDecision { unreachable!("nothing was sent") };
    let served = tokio::time::timeout(2 * JOIN_TIMEOUT, serve_member(a, p, never, control_rx, events_tx)).await;
    match served {
        Ok(Err(ShippingError::Protocol(m))) => assert!(m.contains("no JOIN within"), "{m}"),
        Ok(other) => panic!("unexpected end: {other:?}"),
        Err(_) => panic!("the connection was still open after {:?} without a JOIN", 2 * JOIN_TIMEOUT),
    }
}
