//! Two members' runtimes on loopback over journal-only stores: join, the commit rule,
//! and a planned failover and back.

use super::store::{MirrorStore, WriteMode};
use super::{MirrorService, StoreFactory};
use crate::error::EngineError;
use crate::instance::datadir::DataDir;
use crate::journal::{Journal, JournalOptions, OldValue, Position, RecordBody};
use crate::mirror::config::{MemberConfig, MemberType, MirrorConfig};
use crate::mirror::shipping::follower::append_frames;
use crate::mirror::status::{MemberStatus, MirrorAction, MirrorControl, MirroredDatabase};
use crate::vfs::real::RealVfs;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A store with a real journal and no databases.
struct JournalStore {
    journal: Arc<Journal>,
    mode: Mutex<Option<WriteMode>>,
    acked: watch::Sender<Position>,
}

impl MirrorStore for JournalStore {
    fn mirror_journal(&self) -> Arc<Journal> {
        self.journal.clone()
    }
    fn set_write_mode(&self, mode: WriteMode) {
        *self.mode.lock() = Some(mode);
    }
    fn ack_commits(&self, upto: Position) {
        self.acked.send_modify(|a| *a = (*a).max(upto));
    }
    fn fail_pending_commits(&self, _reason: &str) {}
    fn promote(&self, epoch: u64) -> Result<(), EngineError> {
        self.journal.set_epoch(epoch);
        Ok(())
    }
    fn receive(&self, first: Position, last: Position, frames: &[u8]) -> Result<Position, EngineError> {
        append_frames(&self.journal, first, last, frames)
    }
    fn rewind(&self, to: Position) -> Result<(), EngineError> {
        if to >= self.journal.last_position() {
            Ok(())
        } else {
            Err(EngineError::Invalid("this test store cannot rewind".into()))
        }
    }
    fn set_purge_floor(&self, _floor: Position) {}
    fn add_database(&self, _name: &str) -> Result<Position, EngineError> {
        Ok(self.journal.last_position())
    }
    fn activate_database(&self, _name: &str) -> Result<(), EngineError> {
        Ok(())
    }
    fn remove_database(&self, _name: &str) -> Result<(), EngineError> {
        Ok(())
    }
    fn databases(&self) -> Vec<MirroredDatabase> {
        Vec::new()
    }
}

/// A free port below the kernel's ephemeral range (a port the OS handed out for port 0
/// could be taken by an outgoing connection before the member binds it), distinct within
/// this test process.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 29_000 + (std::process::id() % 1000) as u16;
    (0..2000)
        .map(|_| start + NEXT.fetch_add(1, Ordering::SeqCst) % 2000)
        .find(|&p| std::net::TcpListener::bind(("0.0.0.0", p)).is_ok())
        .expect("a free port between 29000 and 32000")
}

struct Node {
    _tmp: tempfile::TempDir,
    store: Arc<JournalStore>,
    service: Arc<MirrorService>,
}

fn config(this: &str, ports: &[u16; 2]) -> MirrorConfig {
    let member = |name: &str, port: u16| MemberConfig {
        name: name.into(),
        member_type: MemberType::Failover,
        superserver: "127.0.0.1:1".into(),
        mirror_address: format!("127.0.0.1:{port}"),
        agent: "127.0.0.1:1".into(),
    };
    MirrorConfig {
        name: "DEMO".into(),
        this_member: this.into(),
        qos_ms: 1000,
        arbiter: None,
        members: vec![member("A", ports[0]), member("B", ports[1])],
    }
}

fn node(this: &str, ports: &[u16; 2]) -> Node {
    let tmp = tempfile::tempdir().unwrap();
    let options = JournalOptions { dir: tmp.path().join("journal/mirror-DEMO"), ..JournalOptions::default() };
    let journal = Arc::new(Journal::open(Arc::new(RealVfs::new()), options).unwrap());
    let store = Arc::new(JournalStore { journal, mode: Mutex::new(None), acked: watch::channel(0).0 });
    let cfg = config(this, ports);
    let s = store.clone();
    let factory: StoreFactory = Arc::new(move || Ok((s.clone() as Arc<dyn MirrorStore>, cfg.clone())));
    let service = MirrorService::start(DataDir::new(tmp.path()), factory, "127.0.0.1".into(), false, None).unwrap();
    Node { _tmp: tmp, store, service }
}

fn write(n: &Node, count: u64) -> Position {
    let mut last = 0;
    for i in 0..count {
        let body = RecordBody::Set { db: "X".into(), key: vec![i as u8 + 1], value: vec![7], old: OldValue::Absent };
        last = n.store.journal.append(0, &body);
    }
    n.store.journal.flush().unwrap();
    last
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn status_of(n: &Node) -> Option<MemberStatus> {
    n.service.status().map(|s| s.status.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_joins_confirms_commits_and_a_planned_failover_goes_both_ways() {
    let _ = tracing_subscriber::fmt().with_test_writer().with_max_level(tracing::Level::INFO).try_init();
    let ports = [free_port(), free_port()];
    let a = node("A", &ports);
    let b = node("B", &ports);
    assert!(a.service.act(MirrorAction::Create).unwrap().contains("created mirror DEMO"));
    until("A is an open primary", || *a.store.mode.lock() == Some(WriteMode::Primary { open: true })).await;
    // Alone with no backup ever seen, the primary confirms its own commits.
    let p = write(&a, 5);
    until("A confirms alone", || *a.store.acked.borrow() >= p).await;

    b.service.act(MirrorAction::Join).unwrap();
    until("B is the active backup", || status_of(&b) == Some(MemberStatus::Backup)).await;
    assert_eq!(*b.store.mode.lock(), Some(WriteMode::Member { writable: false }));
    let p = write(&a, 20);
    until("A confirms with the backup", || *a.store.acked.borrow() >= p).await;
    assert!(b.store.journal.durable_position() >= p, "confirmed only once the backup has it");
    let st = a.service.status().unwrap();
    assert_eq!(st.status, MemberStatus::Primary);
    assert!(
        st.members.iter().any(|m| m.name == "B" && m.status == MemberStatus::Backup && m.journal_transfer == "Active"),
        "{st:?}"
    );

    // Planned failover: B takes over with everything A had; A follows B.
    a.service.act(MirrorAction::PlannedFailover).unwrap();
    until("B is primary", || status_of(&b) == Some(MemberStatus::Primary)).await;
    until("A is B's backup", || status_of(&a) == Some(MemberStatus::Backup)).await;
    assert!(b.service.status().unwrap().epoch > a.service.status().unwrap().epoch.min(16));
    let p = write(&b, 3);
    until("B confirms with A as backup", || *b.store.acked.borrow() >= p).await;
    assert_eq!(a.store.journal.durable_position(), p);

    // And back.
    b.service.act(MirrorAction::PlannedFailover).unwrap();
    until("A is primary again", || status_of(&a) == Some(MemberStatus::Primary)).await;
    until("B is backup again", || status_of(&b) == Some(MemberStatus::Backup)).await;
    let p = write(&a, 2);
    until("A confirms", || *a.store.acked.borrow() >= p).await;
    assert_eq!(b.store.journal.durable_position(), p);
    for n in [&a, &b] {
        replay_matches(n);
    }
}

/// Replays everything a real driver fed its machine through a fresh machine: the same
/// commands must come out of every step. The machine decides only from its events (the
/// simulator can feed it the same ones), and the driver steps it nowhere else.
fn replay_matches(n: &Node) {
    use crate::mirror::failover::Member;
    let r = super::driver::recording::take(n._tmp.path()).expect("the driver recorded its run");
    let (mut m, first) = if r.create {
        Member::create_primary(r.cfg, r.me, 0)
    } else {
        (Member::start(r.cfg, r.me, r.durable, 0), Vec::new())
    };
    assert_eq!(first, r.first);
    assert!(r.steps.len() > 50, "a real run of {} steps", r.steps.len());
    for (i, (now, event, commands)) in r.steps.into_iter().enumerate() {
        let replayed = m.step(now, event.clone());
        assert_eq!(replayed, commands, "step {i} at {now} ms: {event:?}");
    }
}
