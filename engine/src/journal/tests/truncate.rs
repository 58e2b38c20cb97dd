//! Truncation (a diverged mirror member cutting its journal back): the records after the
//! point are gone, durably, the journal continues from there, and a power cut at any disk
//! operation of the cut leaves either the old tail or the new one.

use super::*;

const FILE_LIMIT: u64 = 1024;

/// 200 records over several segments, epoch 2 up to 100 and 5 after.
fn journal_of_200(vfs: &Arc<dyn Vfs>) -> Journal {
    let journal = Journal::open(vfs.clone(), options(FILE_LIMIT)).unwrap();
    journal.set_epoch(2);
    for batch in 0..40 {
        if batch == 20 {
            journal.set_epoch(5);
        }
        append_n(&journal, 5);
        journal.flush().unwrap();
    }
    journal
}

fn epoch_of(journal: &Journal, position: Position) -> u64 {
    journal.read_from(position).unwrap().next().unwrap().unwrap().epoch
}

#[test]
fn records_after_the_point_are_gone_and_the_journal_continues_from_it() {
    let (_sim, vfs) = sim(31);
    let journal = journal_of_200(&vfs);
    let segments = journal.segments().len();
    assert!(segments >= 4);
    let removed = journal.truncate_after(77).unwrap();
    assert!(!removed.is_empty(), "later segments are removed");
    assert_eq!((journal.last_position(), journal.durable_position()), (77, 77));
    assert_eq!(journal.epoch(), 2, "the epoch of record 77");
    assert_eq!(check_records(&journal, 1).len(), 77);
    assert!(journal.segments().len() < segments);
    // It goes on from 78, across rotations, and survives a reopen.
    journal.set_epoch(9);
    for _ in 0..10 {
        append_n(&journal, 5);
        journal.flush().unwrap();
    }
    assert_eq!(journal.durable_position(), 127);
    assert_eq!(epoch_of(&journal, 78), 9);
    drop(journal);
    let journal = Journal::open(vfs.clone(), options(FILE_LIMIT)).unwrap();
    assert_eq!(journal.durable_position(), 127);
    assert_eq!(check_records(&journal, 1).len(), 127);
    assert_eq!(epoch_of(&journal, 77), 2);
    assert!(!vfs.exists(&options(0).dir.join("TRUNCATE")), "the marker is gone");
}

#[test]
fn truncating_at_a_segment_boundary_or_to_the_end_or_beyond() {
    let (_sim, vfs) = sim(32);
    let journal = journal_of_200(&vfs);
    assert!(journal.truncate_after(200).unwrap().is_empty(), "nothing after the last record");
    let beyond = journal.truncate_after(201).unwrap_err().to_string();
    assert!(beyond.contains("it ends at 200"), "{beyond}");
    let boundary = journal.segments()[2].first_position - 1;
    journal.truncate_after(boundary).unwrap();
    assert_eq!(journal.segments().last().unwrap().last_position, Some(boundary));
    assert_eq!(check_records(&journal, 1).len() as u64, boundary);
    journal.purge(journal.segments()[1].first_position).unwrap();
    let oldest = journal.segments()[0].first_position;
    assert!(oldest > 1);
    let purged = journal.truncate_after(oldest - 2).unwrap_err().to_string();
    assert!(purged.contains(&format!("the oldest record kept is {oldest}")), "{purged}");
    // Cutting every record still kept leaves an empty journal that continues.
    journal.truncate_after(oldest - 1).unwrap();
    assert_eq!(journal.durable_position(), oldest - 1);
    append_n(&journal, 3);
    journal.flush().unwrap();
    assert_eq!(check_records(&journal, oldest).len(), 3);
}

#[test]
fn a_power_cut_during_truncation_leaves_the_old_tail_or_the_new_one() {
    for seed in 0..12u64 {
        let to = 30 + seed * 11;
        let ops = {
            let (dry, vfs) = sim(seed);
            let journal = journal_of_200(&vfs);
            let before = dry.operations();
            journal.truncate_after(to).unwrap();
            dry.operations() - before
        };
        assert!(ops >= 6, "marker, removals, cut and their syncs ({ops})");
        let (mut old_tail, mut new_tail) = (0, 0);
        for cut in 0..=ops {
            let (sim, vfs) = sim(seed);
            let journal = journal_of_200(&vfs);
            sim.fail_after(cut);
            let result = journal.truncate_after(to);
            assert!(result.is_err() || cut == ops, "seed {seed} cut {cut}: no error");
            drop(journal);
            let context = format!("seed {seed}, truncating after {to}, power cut after {cut} of {ops} operations");
            let crashed: Arc<dyn Vfs> = Arc::new(sim.crash());
            let journal =
                Journal::open(crashed.clone(), options(FILE_LIMIT)).unwrap_or_else(|e| panic!("{context}: {e}"));
            match journal.durable_position() {
                200 => old_tail += 1,
                p if p == to => new_tail += 1,
                p => panic!("{context}: the journal ends at {p}, neither the old tail (200) nor the new one ({to})"),
            }
            check_records(&journal, 1);
            assert!(!crashed.exists(&options(0).dir.join("TRUNCATE")), "{context}: the marker is left");
            let next = append_n(&journal, 2);
            journal.flush().unwrap();
            drop(journal);
            let journal = Journal::open(crashed, options(FILE_LIMIT)).unwrap();
            assert_eq!(journal.durable_position(), next, "{context}");
            check_records(&journal, 1);
        }
        assert!(old_tail > 0 && new_tail > 0, "seed {seed}: both outcomes occur ({old_tail}, {new_tail})");
    }
}
