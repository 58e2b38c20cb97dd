//! The journal: every change, in apply order, in checksummed records across segment files.
//!
//! Invariants (docs/design/journal.md has the byte layout and the crash analysis):
//! - positions are contiguous from the first segment to the last, in segment-sequence order;
//! - a record at or below [`Journal::durable_position`] has been fdatasynced and survives a
//!   power cut intact;
//! - only the writer path ([`Journal::flush`]) writes or fsyncs segment files, one write and
//!   one fdatasync per group commit; [`Journal::append`] never does I/O.

mod background;
mod reader;
pub mod record;
mod recovery;
pub mod segment;
mod tools;
mod truncate;
mod writer;

#[cfg(test)]
mod tests;

pub use background::WriterHandle;
pub use reader::JournalReader;
pub use record::{OldValue, Position, Record, RecordBody, MAX_RECORD_BYTES};
pub use tools::{dump_segment, list_segments};
pub use writer::CommitStats;
pub use writer::{FeedChunk, Journal, FEED_CAPACITY};

use std::path::PathBuf;
use std::time::Duration;

/// How the journal writes.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// Directory of the segment files.
    pub dir: PathBuf,
    /// A segment that reaches this size is closed and a new one started at the next flush.
    pub file_size_limit: u64,
    /// The writer thread flushes at least this often while anything is buffered.
    pub sync_interval: Duration,
    /// The writer thread flushes as soon as this many bytes are buffered.
    pub buffer_flush_bytes: usize,
}

impl Default for JournalOptions {
    fn default() -> JournalOptions {
        JournalOptions {
            dir: PathBuf::from("journal"),
            file_size_limit: 1024 << 20,
            sync_interval: Duration::from_millis(1000),
            buffer_flush_bytes: 1 << 20,
        }
    }
}

/// What a segment file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub path: PathBuf,
    /// Order of the segment (from its header, not its name).
    pub sequence: u64,
    pub first_position: Position,
    /// `None` while the segment holds no record.
    pub last_position: Option<Position>,
    /// Bytes of header and records (not counting preallocated space).
    pub bytes: u64,
    pub created_ms: u64,
    pub records: u64,
}

/// Unix time in milliseconds.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
