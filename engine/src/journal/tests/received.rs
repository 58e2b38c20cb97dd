//! Records received from a mirror primary keep their position, epoch, transaction and time.

use super::{append_n, options, sim};
use crate::journal::Journal;

#[test]
fn a_member_journal_is_an_exact_copy_of_the_primary_stream() {
    let (_p, pvfs) = sim(21);
    let primary = Journal::open(pvfs, options(64 << 10)).unwrap();
    primary.set_epoch(3);
    append_n(&primary, 500);
    primary.flush().unwrap();
    let (_m, mvfs) = sim(22);
    let member = Journal::open(mvfs.clone(), options(64 << 10)).unwrap();
    for r in primary.read_from(1).unwrap() {
        let r = r.unwrap();
        assert_eq!(member.append_received(&r).unwrap(), r.position);
    }
    member.flush().unwrap();
    assert_eq!(member.epoch(), 3);
    let ours: Vec<_> = member.read_from(1).unwrap().map(Result::unwrap).collect();
    let theirs: Vec<_> = primary.read_from(1).unwrap().map(Result::unwrap).collect();
    assert_eq!(ours, theirs, "same positions, epochs, transactions, times and bodies");
    // The member's own appends continue the same sequence.
    assert_eq!(member.append(0, &crate::journal::RecordBody::Sync), 501);
    drop(member);
    let reopened = Journal::open(mvfs, options(64 << 10)).unwrap();
    assert_eq!(reopened.last_position(), 500, "the unsynced local record is not durable");
}

#[test]
fn gaps_repeats_and_older_epochs_are_refused_and_append_nothing() {
    let (_p, pvfs) = sim(23);
    let primary = Journal::open(pvfs, options(1 << 20)).unwrap();
    primary.set_epoch(2);
    append_n(&primary, 3);
    primary.flush().unwrap();
    let records: Vec<_> = primary.read_from(1).unwrap().map(Result::unwrap).collect();
    let (_m, mvfs) = sim(24);
    let member = Journal::open(mvfs, options(1 << 20)).unwrap();
    let gap = member.append_received(&records[1]).unwrap_err().to_string();
    assert!(gap.contains("position 2 where this journal expects 1"), "{gap}");
    member.append_received(&records[0]).unwrap();
    let repeat = member.append_received(&records[0]).unwrap_err().to_string();
    assert!(repeat.contains("expects 2"), "{repeat}");
    member.set_epoch(5);
    let mut stale = records[1].clone();
    stale.epoch = 4;
    let older = member.append_received(&stale).unwrap_err().to_string();
    assert!(older.contains("epoch 4 is older than this journal's epoch 5"), "{older}");
    assert_eq!(member.last_position(), 1);
}
