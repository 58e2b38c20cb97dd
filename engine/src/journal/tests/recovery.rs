use super::*;
use crate::error::EngineError;
use crate::journal::dump_segment;
use crate::journal::segment::{SegmentHeader, FORMAT_VERSION};
use crate::vfs::OpenMode;
use std::path::Path;

fn expect_corrupt(result: crate::error::Result<Journal>, path: &Path, offset: u64) -> String {
    match result {
        Err(EngineError::CorruptJournal { path: p, offset: o, detail }) => {
            assert_eq!((p.as_path(), o), (path, offset), "{detail}");
            detail
        }
        other => panic!("expected CorruptJournal at {}:{offset}, got {other:?}", path.display()),
    }
}

/// The offset just after the record at `offset`.
fn record_end(sim: &SimVfs, path: &Path, offset: u64) -> u64 {
    let bytes = sim.read_all(path).unwrap();
    let len = u32::from_le_bytes(bytes[offset as usize..][..4].try_into().unwrap());
    offset + 8 + u64::from(len)
}

type TenRecords = (SimVfs, Arc<dyn Vfs>, PathBuf, Vec<(u64, crate::journal::Record)>);

/// One segment holding records 1..=10, flushed.
fn ten_records(seed: u64) -> TenRecords {
    let (sim, vfs) = sim(seed);
    let journal = Journal::open(vfs.clone(), options(1 << 20)).unwrap();
    append_n(&journal, 10);
    journal.flush().unwrap();
    let path = journal.segments()[0].path.clone();
    drop(journal);
    let records = dump_segment(vfs.as_ref(), &path).unwrap();
    (sim, vfs, path, records)
}

#[test]
fn torn_tail_in_the_last_segment_is_cut() {
    let (sim, vfs, path, records) = ten_records(10);
    let (last_offset, _) = records[9];
    // Only part of the last record reached the disk: its end reads as zeros.
    let end = record_end(&sim, &path, last_offset);
    sim.corrupt(&path, end - 4, &[0; 4]).unwrap();
    let journal = Journal::open(vfs.clone(), options(1 << 20)).unwrap();
    assert_eq!(journal.durable_position(), 9);
    assert_eq!(sim.read_all(&path).unwrap().len() as u64, last_offset, "tail cut at the bad record");
    check_records(&journal, 1);
    append_n(&journal, 3);
    journal.flush().unwrap();
    drop(journal);
    let journal = Journal::open(vfs, options(1 << 20)).unwrap();
    assert_eq!(check_records(&journal, 1).len(), 12);
}

#[test]
fn garbage_after_the_last_record_is_a_torn_tail() {
    let (sim, vfs, path, records) = ten_records(11);
    let end = record_end(&sim, &path, records[9].0);
    sim.corrupt(&path, end, &[0xAB; 5]).unwrap();
    let journal = Journal::open(vfs, options(1 << 20)).unwrap();
    assert_eq!(journal.durable_position(), 10);
    check_records(&journal, 1);
}

#[test]
fn corruption_followed_by_valid_records_in_the_last_segment_is_an_error() {
    let (sim, vfs, path, records) = ten_records(12);
    let (offset, _) = records[3];
    sim.corrupt(&path, offset + 20, &[0xFF]).unwrap();
    let detail = expect_corrupt(Journal::open(vfs.clone(), options(1 << 20)), &path, offset);
    assert!(detail.contains("CRC") && detail.contains("valid record follows"), "{detail}");
    // The offline tools report it too, and change nothing.
    let before = sim.read_all(&path).unwrap();
    assert!(
        matches!(dump_segment(vfs.as_ref(), &path), Err(EngineError::CorruptJournal { offset: o, .. }) if o == offset)
    );
    assert!(crate::journal::list_segments(vfs.as_ref(), &options(0).dir).is_err());
    assert_eq!(sim.read_all(&path).unwrap(), before);
}

#[test]
fn a_zeroed_length_before_valid_records_is_an_error() {
    let (sim, vfs, path, records) = ten_records(13);
    let (offset, _) = records[5];
    sim.corrupt(&path, offset, &[0; 4]).unwrap();
    let detail = expect_corrupt(Journal::open(vfs, options(1 << 20)), &path, offset);
    assert!(detail.contains("zero length"), "{detail}");
}

#[test]
fn corruption_in_a_middle_segment_is_an_error() {
    let (sim, vfs) = sim(14);
    let journal = Journal::open(vfs.clone(), options(1024)).unwrap();
    for _ in 0..20 {
        append_n(&journal, 5);
        journal.flush().unwrap();
    }
    let segments = journal.segments();
    assert!(segments.len() >= 3);
    drop(journal);
    // Even the very last record of a middle segment: no torn tail outside the last segment.
    let middle = &segments[1].path;
    let records = dump_segment(vfs.as_ref(), middle).unwrap();
    let (offset, _) = *records.last().unwrap();
    sim.corrupt(middle, offset + 9, &[0x55]).unwrap();
    expect_corrupt(Journal::open(vfs.clone(), options(1024)), middle, offset);
}

#[test]
fn a_missing_middle_segment_is_an_error() {
    let (_sim, vfs) = sim(15);
    let journal = Journal::open(vfs.clone(), options(1024)).unwrap();
    for _ in 0..20 {
        append_n(&journal, 5);
        journal.flush().unwrap();
    }
    let segments = journal.segments();
    drop(journal);
    vfs.remove_file(&segments[1].path).unwrap();
    let detail = expect_corrupt(Journal::open(vfs, options(1024)), &segments[2].path, 24);
    assert!(detail.contains("does not follow"), "{detail}");
}

#[test]
fn a_future_format_version_is_refused() {
    let (sim, vfs, path, _) = ten_records(16);
    let bytes = sim.read_all(&path).unwrap();
    let mut header = SegmentHeader::decode(&bytes[..64]).unwrap();
    header.version = FORMAT_VERSION + 1;
    sim.corrupt(&path, 0, &header.encode()).unwrap();
    let detail = expect_corrupt(Journal::open(vfs, options(1 << 20)), &path, 8);
    assert!(detail.contains("newer than the newest this engine reads"), "{detail}");
}

#[test]
fn an_interrupted_segment_creation_is_removed() {
    let (_sim, vfs, path, _) = ten_records(17);
    let leftover = path.with_file_name("20991231.002");
    let f = vfs.open(&leftover, OpenMode::CreateNew).unwrap();
    f.write_all_at(0, b"MLJR").unwrap();
    f.set_len(4096).unwrap();
    let journal = Journal::open(vfs.clone(), options(1 << 20)).unwrap();
    assert!(!vfs.exists(&leftover));
    assert_eq!(journal.durable_position(), 10);
}

#[test]
fn other_files_in_the_directory_are_ignored() {
    let (_sim, vfs, path, _) = ten_records(18);
    let other = path.with_file_name("notes.txt");
    vfs.open(&other, OpenMode::CreateNew).unwrap().write_all_at(0, b"hello").unwrap();
    let journal = Journal::open(vfs, options(1 << 20)).unwrap();
    assert_eq!(journal.segments().len(), 1);
}

#[test]
fn after_an_io_error_the_journal_is_failed() {
    let (sim, vfs) = sim(19);
    let journal = Journal::open(vfs, options(1 << 20)).unwrap();
    append_n(&journal, 3);
    sim.fail_after(0);
    let e = journal.flush().unwrap_err().to_string();
    assert!(e.contains("must stop"), "{e}");
    append_n(&journal, 1);
    let e = journal.flush().unwrap_err().to_string();
    assert!(e.contains("failed earlier") && e.contains("must stop"), "{e}");
    assert!(journal.flush_to(4).is_err());
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert!(rt.block_on(journal.wait_durable(4)).is_err());
    assert_eq!(journal.durable_position(), 0);
}
