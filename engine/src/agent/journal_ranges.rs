//! Journal records served from the files on disk, for other members and for STATUS.
//!
//! Read-only and offline: works whether the engine runs, hangs or is down, never
//! truncates or repairs anything, and validates every record right after reading it
//! (length, CRC32C, decoding, contiguous positions). A torn or half-written record at the
//! end of the newest segment is where the data ends; the same thing anywhere else is
//! corruption and an error.

use crate::error::EngineError;
use crate::journal::record::{Position, FRAME_HEADER_BYTES};
use crate::journal::segment::{corrupt, io_error, is_segment_file_name, read_step, ChunkReader, Step, HEADER_BYTES};
use crate::vfs::{OpenMode, Vfs};
use std::path::{Path, PathBuf};

/// Records in one JOURNAL RANGE reply when the caller names no count, and the most it may.
pub const MAX_RANGE_RECORDS: u32 = 10_000;
/// Bytes of record frames in one JOURNAL RANGE reply (a single larger record is still sent
/// alone, so a reply is at most one maximal record).
pub const MAX_RANGE_BYTES: u64 = 16 << 20;

/// A segment as its header describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SegmentHead {
    path: PathBuf,
    sequence: u64,
    first_position: Position,
}

/// Where the journal on disk starts and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Positions {
    /// First position still kept (0: no journal file).
    pub oldest: Position,
    /// Position of the last complete, valid record (0: none).
    pub last: Position,
    /// Bytes after the last valid record that are neither zeros nor a record: a write in
    /// progress or a torn tail the engine cuts at its next start.
    pub torn_tail: bool,
}

/// A chunk of records.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Range {
    /// Each record frame exactly as stored: `len u32 LE, crc u32 LE, body`.
    pub frames: Vec<Vec<u8>>,
    /// The position to ask for next.
    pub next: Position,
}

#[derive(Debug, thiserror::Error)]
pub enum RangeError {
    /// The records asked for were purged; a full copy of the databases is needed.
    #[error("PURGED oldest {oldest}")]
    Purged { oldest: Position },
    #[error(transparent)]
    Journal(#[from] EngineError),
}

/// The segments of `dir` in sequence order, from their headers only. A file whose header
/// is all zeros (a crash interrupted its creation) holds no record and is skipped.
fn segment_heads(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<SegmentHead>, EngineError> {
    if !vfs.exists(dir) {
        return Ok(Vec::new());
    }
    let entries = vfs.list(dir).map_err(|e| io_error(dir, "listing the journal directory", e))?;
    let mut heads = Vec::new();
    for path in entries.into_iter().filter(|p| is_segment_file_name(p)) {
        let file = vfs.open(&path, OpenMode::ReadOnly).map_err(|e| io_error(&path, "opening", e))?;
        let mut reader = ChunkReader::new(file, &path)?;
        match reader.read_header() {
            Ok(h) => heads.push(SegmentHead { path, sequence: h.sequence, first_position: h.first_position }),
            Err((offset, detail)) => {
                let head = reader.window(0, HEADER_BYTES as usize)?;
                let head = &head[..head.len().min(HEADER_BYTES as usize)];
                if !head.iter().all(|&b| b == 0) {
                    return Err(corrupt(&path, offset, detail));
                }
            }
        }
    }
    heads.sort_by_key(|h| h.sequence);
    for pair in heads.windows(2) {
        if pair[0].first_position > pair[1].first_position {
            return Err(corrupt(
                &pair[1].path,
                24,
                format!(
                    "first position {} is before {} of the previous segment {}",
                    pair[1].first_position,
                    pair[0].first_position,
                    pair[0].path.display()
                ),
            ));
        }
    }
    Ok(heads)
}

/// How a segment's records ended.
struct SegmentEnd {
    /// The position after the last valid record.
    next: Position,
    /// A bad record (rather than zeros or the end of the file) ended them.
    bad: Option<(u64, String)>,
}

/// Reads the records of one segment in order, giving `visit` each position and frame;
/// `visit` returns false to stop early.
fn scan(
    vfs: &dyn Vfs,
    head: &SegmentHead,
    visit: &mut dyn FnMut(Position, &[u8]) -> bool,
) -> Result<SegmentEnd, EngineError> {
    let file = vfs.open(&head.path, OpenMode::ReadOnly).map_err(|e| io_error(&head.path, "opening", e))?;
    let mut reader = ChunkReader::new(file, &head.path)?;
    let mut offset = HEADER_BYTES;
    let mut expected = head.first_position;
    loop {
        let (position, size) = match read_step(&mut reader, offset)? {
            Step::Record(view, size) => (view.position, size),
            Step::End(_) => return Ok(SegmentEnd { next: expected, bad: None }),
            Step::Bad(at, detail) => return Ok(SegmentEnd { next: expected, bad: Some((at, detail)) }),
        };
        if position != expected {
            return Err(corrupt(
                &head.path,
                offset,
                format!("record position {position} where {expected} was expected"),
            ));
        }
        let frame = reader.window(offset, size as usize)?;
        assert!(frame.len() >= size as usize && size as usize >= FRAME_HEADER_BYTES, "read_step measured the frame");
        if !visit(position, &frame[..size as usize]) {
            return Ok(SegmentEnd { next: expected + 1, bad: None });
        }
        offset += size;
        expected += 1;
    }
}

/// The oldest and last positions on disk. Reads the headers of every segment and the
/// records of the newest one only.
pub fn positions(vfs: &dyn Vfs, dir: &Path) -> Result<Positions, EngineError> {
    let heads = segment_heads(vfs, dir)?;
    let (Some(first), Some(last)) = (heads.first(), heads.last()) else {
        return Ok(Positions::default());
    };
    let end = scan(vfs, last, &mut |_, _| true)?;
    Ok(Positions { oldest: first.first_position, last: end.next - 1, torn_tail: end.bad.is_some() })
}

/// Up to `max_records` records from position `from` (at least one when any exists, even if
/// it alone is larger than `max_bytes`). `from` 0 means 1, the first position.
pub fn range(vfs: &dyn Vfs, dir: &Path, from: Position, max_records: u32, max_bytes: u64) -> Result<Range, RangeError> {
    let from = from.max(1);
    let heads = segment_heads(vfs, dir)?;
    let Some(oldest) = heads.first().map(|h| h.first_position) else {
        return Ok(Range { frames: Vec::new(), next: from });
    };
    if from < oldest {
        return Err(RangeError::Purged { oldest });
    }
    let mut index = heads.iter().rposition(|h| h.first_position <= from).expect("from >= oldest");
    let mut out = Range { frames: Vec::new(), next: from };
    let mut bytes = 0u64;
    let mut full = false;
    loop {
        let head = &heads[index];
        let end = scan(vfs, head, &mut |position, frame| {
            if position < from {
                return true;
            }
            let n = frame.len() as u64;
            if out.frames.len() as u64 >= u64::from(max_records) || (!out.frames.is_empty() && bytes + n > max_bytes) {
                full = true;
                return false;
            }
            bytes += n;
            out.frames.push(frame.to_vec());
            out.next = position + 1;
            true
        })?;
        if full {
            return Ok(out);
        }
        let Some(following) = heads.get(index + 1) else {
            // The newest segment: a bad record here is a write in progress or a torn tail,
            // which is where the journal ends for now.
            return Ok(out);
        };
        if let Some((at, detail)) = end.bad {
            return Err(corrupt(&head.path, at, format!("{detail} (not the newest segment)")).into());
        }
        if following.first_position != end.next {
            return Err(corrupt(
                &head.path,
                0,
                format!(
                    "segment ends before position {}; the next one starts at {}",
                    end.next, following.first_position
                ),
            )
            .into());
        }
        index += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record::{decode, RecordBody};
    use crate::journal::{Journal, JournalOptions};
    use crate::vfs::real::RealVfs;
    use std::sync::Arc;
    use std::time::Duration;

    fn journal(dir: &Path, file_size_limit: u64) -> Journal {
        let options = JournalOptions {
            dir: dir.to_path_buf(),
            file_size_limit,
            sync_interval: Duration::from_secs(3600),
            buffer_flush_bytes: usize::MAX,
        };
        Journal::open(Arc::new(RealVfs::new()), options).unwrap()
    }

    fn write(j: &Journal, n: u64, value_len: usize) {
        for i in 0..n {
            let body = RecordBody::Set {
                db: "USER".into(),
                key: format!("k{i}").into_bytes(),
                value: vec![b'v'; value_len],
                old: crate::journal::OldValue::NotRecorded,
            };
            j.append(0, &body);
            if i % 7 == 6 {
                j.flush().unwrap();
            }
        }
        j.flush().unwrap();
    }

    fn positions_of(frames: &[Vec<u8>]) -> Vec<u64> {
        frames
            .iter()
            .map(|f| {
                let (record, used) = decode(f).unwrap();
                assert_eq!(used, f.len(), "one frame per bulk string");
                record.position
            })
            .collect()
    }

    #[test]
    fn no_journal_means_nothing_to_serve() {
        let dir = tempfile::tempdir().unwrap();
        let vfs = RealVfs::new();
        let missing = dir.path().join("journal");
        assert_eq!(positions(&vfs, &missing).unwrap(), Positions::default());
        assert_eq!(range(&vfs, &missing, 1, 10, MAX_RANGE_BYTES).unwrap(), Range { frames: vec![], next: 1 });
    }

    #[test]
    fn chunks_are_contiguous_across_segments_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let jdir = dir.path().join("journal");
        let j = journal(&jdir, 4096);
        write(&j, 100, 100);
        let vfs = RealVfs::new();
        assert!(j.segments().len() > 3, "the test needs several segments");
        assert_eq!(positions(&vfs, &jdir).unwrap(), Positions { oldest: 1, last: 100, torn_tail: false });

        let mut from = 0;
        let mut seen = Vec::new();
        loop {
            let r = range(&vfs, &jdir, from, 30, MAX_RANGE_BYTES).unwrap();
            if r.frames.is_empty() {
                assert_eq!(r.next, from.max(1));
                break;
            }
            assert!(r.frames.len() <= 30);
            seen.extend(positions_of(&r.frames));
            from = r.next;
        }
        assert_eq!(seen, (1..=100).collect::<Vec<_>>());

        // The byte bound cuts a chunk short, but never below one record.
        let three: u64 =
            range(&vfs, &jdir, 10, 3, MAX_RANGE_BYTES).unwrap().frames.iter().map(|f| f.len() as u64).sum();
        let r = range(&vfs, &jdir, 10, 1000, three).unwrap();
        assert_eq!(positions_of(&r.frames), vec![10, 11, 12]);
        assert_eq!(r.next, 13);
        let r = range(&vfs, &jdir, 10, 1000, 1).unwrap();
        assert_eq!(positions_of(&r.frames), vec![10]);
        // Past the end: nothing yet, ask again from the same place.
        assert_eq!(range(&vfs, &jdir, 101, 10, MAX_RANGE_BYTES).unwrap(), Range { frames: vec![], next: 101 });
    }

    #[test]
    fn purged_positions_are_reported_with_the_oldest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let jdir = dir.path().join("journal");
        let j = journal(&jdir, 4096);
        write(&j, 100, 100);
        j.purge(60).unwrap();
        let vfs = RealVfs::new();
        let oldest = positions(&vfs, &jdir).unwrap().oldest;
        assert!(oldest > 1 && oldest <= 60, "oldest {oldest}");
        match range(&vfs, &jdir, 1, 10, MAX_RANGE_BYTES) {
            Err(RangeError::Purged { oldest: o }) => assert_eq!(o, oldest),
            other => panic!("expected PURGED, got {other:?}"),
        }
        assert_eq!(RangeError::Purged { oldest: 42 }.to_string(), "PURGED oldest 42");
        let r = range(&vfs, &jdir, oldest, 1000, MAX_RANGE_BYTES).unwrap();
        assert_eq!(positions_of(&r.frames), (oldest..=100).collect::<Vec<_>>());
    }

    #[test]
    fn a_torn_tail_ends_the_data_and_is_never_cut() {
        let dir = tempfile::tempdir().unwrap();
        let jdir = dir.path().join("journal");
        let j = journal(&jdir, 1 << 20);
        write(&j, 5, 10);
        let path = j.segments().last().unwrap().path.clone();
        let end = j.segments().last().unwrap().bytes;
        drop(j);
        // Half a record after the last one, as a crash in the middle of a write leaves it.
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &[40, 0, 0, 0, 1, 2, 3, 4, 5], end).unwrap();
        let len_before = file.metadata().unwrap().len();
        let vfs = RealVfs::new();
        assert_eq!(positions(&vfs, &jdir).unwrap(), Positions { oldest: 1, last: 5, torn_tail: true });
        let r = range(&vfs, &jdir, 1, 100, MAX_RANGE_BYTES).unwrap();
        assert_eq!(positions_of(&r.frames), vec![1, 2, 3, 4, 5]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len_before, "the agent never truncates");
    }
}
