//! The [`Journal`]: appending into a buffer, group commit, rotation and purge.
//!
//! Locks, always taken in this order: `io` (held for the whole write + fdatasync), then
//! `append` (held only to add a record or swap the buffer out), then `segments`. `append`
//! never waits for I/O because the buffer is swapped out before the I/O starts.

use super::reader::JournalReader;
use super::record::{check_frame, encode_parts, Frame, Position, Record, RecordBody, FRAME_HEADER_BYTES};
use super::segment::{io_error, segment_file_name, SegmentHeader, FORMAT_VERSION, HEADER_BYTES};
use super::{now_ms, JournalOptions, SegmentInfo};
use crate::error::{EngineError, Result};
use crate::vfs::{OpenMode, Vfs, VfsFile};
use parking_lot::{Condvar, Mutex};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

pub(super) struct AppendState {
    pub buffer: Vec<u8>,
    pub last_position: Position,
}

/// The segment being written, owned by whoever holds the `io` lock.
pub(super) struct IoState {
    pub file: Arc<dyn VfsFile>,
    pub path: PathBuf,
    pub sequence: u64,
    /// Offset of the next record (end of the last record).
    pub end: u64,
    /// File length, including zero-filled preallocated space.
    pub allocated: u64,
    pub records: u64,
    pub durable: Position,
    /// The previous buffer, kept to reuse its allocation.
    pub spare: Vec<u8>,
}

#[derive(Default)]
pub(super) struct Signal {
    pub requested: bool,
    pub stop: bool,
}

/// The journal of one engine instance. `Send + Sync`; share it as `Arc<Journal>`.
pub struct Journal {
    pub(super) vfs: Arc<dyn Vfs>,
    pub(super) options: JournalOptions,
    pub(super) epoch: AtomicU64,
    pub(super) append: Mutex<AppendState>,
    pub(super) io: Mutex<IoState>,
    pub(super) segments: Mutex<Vec<SegmentInfo>>,
    pub(super) durable: watch::Sender<Position>,
    pub(super) failed: AtomicBool,
    pub(super) failure: Mutex<Option<String>>,
    pub(super) signal: Mutex<Signal>,
    pub(super) wake: Condvar,
    pub(super) syncs: AtomicU64,
    /// Just-written records for mirror members (see [`Journal::subscribe_feed`]).
    pub(super) feed: tokio::sync::broadcast::Sender<Arc<FeedChunk>>,
    /// Where records start in the current segment, so a reader seeks instead of decoding
    /// the segment from its top (a mirror member catching up reads from the middle).
    pub(super) seek: Mutex<SeekIndex>,
    /// Calls of [`Journal::read_from`].
    pub(super) file_reads: AtomicU64,
    /// How long each group commit's fdatasync took, and how many records it made durable.
    pub(super) commit_stats: CommitStats,
}

/// Group-commit figures for `/metrics`: the fdatasync time and the records each sync made
/// durable (how many writers shared it). Histograms with fixed buckets, so recording one
/// is a few atomic adds.
#[derive(Clone, Debug)]
pub struct CommitStats {
    pub sync_seconds: prometheus_client::metrics::histogram::Histogram,
    pub batch_records: prometheus_client::metrics::histogram::Histogram,
}

impl Default for CommitStats {
    fn default() -> CommitStats {
        use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
        CommitStats {
            // 25 µs .. about 0.4 s.
            sync_seconds: Histogram::new(exponential_buckets(25e-6, 2.0, 15)),
            // 1 .. 4096 records.
            batch_records: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
        }
    }
}

/// Sparse (position, offset) points of the current segment, at least [`SEEK_STRIDE`]
/// bytes apart: each is the start of a flushed buffer, so a record boundary. Reset when
/// the segment changes (rotation, truncation); a segment written before this process
/// started has none, and is read from its top.
#[derive(Debug, Default)]
pub(super) struct SeekIndex {
    /// The segment the points belong to.
    pub(super) sequence: u64,
    pub(super) points: Vec<(Position, u64)>,
}

/// Bytes between seek points: a seek reads at most this much before the record it wants,
/// and a 1 GiB segment holds at most 4,096 points.
pub(super) const SEEK_STRIDE: u64 = 256 << 10;

impl SeekIndex {
    /// Notes that records from `first` start at `offset` of segment `sequence`.
    fn note(&mut self, sequence: u64, first: Position, offset: u64) {
        if self.sequence != sequence {
            *self = SeekIndex { sequence, points: Vec::new() };
        }
        if self.points.last().is_none_or(|&(_, at)| offset >= at + SEEK_STRIDE) {
            self.points.push((first, offset));
        }
    }

    /// The latest point at or before `position` in segment `sequence`.
    pub(super) fn before(&self, sequence: u64, position: Position) -> Option<(Position, u64)> {
        if self.sequence != sequence {
            return None;
        }
        let i = self.points.partition_point(|&(p, _)| p <= position);
        i.checked_sub(1).map(|i| self.points[i])
    }
}

/// Consecutive encoded record frames, positions `first..=last`, as they were written.
#[derive(Debug)]
pub struct FeedChunk {
    pub first: Position,
    pub last: Position,
    pub frames: Vec<u8>,
}

/// Chunks a slow subscriber may fall behind before it is told it lagged (and rereads files).
pub const FEED_CAPACITY: usize = 1024;

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.options.dir)
            .field("last_position", &self.last_position())
            .field("durable_position", &self.durable_position())
            .finish()
    }
}

/// How much file space to add at a time: fdatasync then rarely has a size change to commit.
pub(super) fn preallocation_chunk(options: &JournalOptions) -> u64 {
    (options.file_size_limit / 16).clamp(64 << 10, 8 << 20)
}

/// Creates a segment durably: header written, file fsynced, directory fsynced, before any
/// record goes into it. Returns the file, its path and its creation time.
pub(super) fn create_segment(
    vfs: &dyn Vfs,
    dir: &Path,
    sequence: u64,
    first_position: Position,
    epoch: u64,
    preallocate: u64,
) -> Result<(Arc<dyn VfsFile>, PathBuf, u64)> {
    let created_ms = now_ms();
    let path = dir.join(segment_file_name(created_ms, sequence));
    let header = SegmentHeader { version: FORMAT_VERSION, sequence, first_position, epoch, created_ms };
    let file = vfs.open(&path, OpenMode::CreateNew).map_err(|e| io_error(&path, "creating", e))?;
    file.write_all_at(0, &header.encode()).map_err(|e| io_error(&path, "writing the header", e))?;
    file.set_len(HEADER_BYTES.max(preallocate)).map_err(|e| io_error(&path, "preallocating", e))?;
    file.sync_data().map_err(|e| io_error(&path, "syncing the new segment", e))?;
    vfs.sync_dir(dir).map_err(|e| io_error(dir, "syncing the journal directory", e))?;
    Ok((file, path, created_ms))
}

impl Journal {
    pub fn open(vfs: Arc<dyn Vfs>, options: JournalOptions) -> Result<Journal> {
        super::recovery::open(vfs, options)
    }

    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::SeqCst);
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Buffers one record, assigns and returns its position. Never does I/O.
    ///
    /// Panics if the record exceeds [`super::MAX_RECORD_BYTES`]: see
    /// [`RecordBody::encoded_len`].
    pub fn append(&self, txn: u64, body: &RecordBody) -> Position {
        let time_ms = now_ms();
        let epoch = self.epoch();
        let (position, buffered) = {
            let mut a = self.append.lock();
            let position = a.last_position + 1;
            encode_parts(position, epoch, txn, time_ms, body, &mut a.buffer);
            a.last_position = position;
            (position, a.buffer.len())
        };
        if buffered >= self.options.buffer_flush_bytes {
            self.request_flush();
        }
        position
    }

    /// Appends a record received from the mirror's primary, keeping its position, epoch,
    /// transaction id and time, so that every member's mirror journal holds one sequence
    /// (see docs/design/mirroring.md). Refused, with nothing appended: a position that does
    /// not follow the last one (a gap or a repeat), or an epoch older than this journal's.
    /// A newer epoch becomes this journal's epoch.
    pub fn append_received(&self, record: &Record) -> Result<Position> {
        let buffered = {
            let mut a = self.append.lock();
            let expected = a.last_position + 1;
            if record.position != expected {
                return Err(EngineError::Invalid(format!(
                    "received journal record at position {} where this journal expects {expected}",
                    record.position
                )));
            }
            let epoch = self.epoch();
            if record.epoch < epoch {
                return Err(EngineError::Invalid(format!(
                    "received journal record of epoch {} is older than this journal's epoch {epoch}",
                    record.epoch
                )));
            }
            self.epoch.store(record.epoch, Ordering::SeqCst);
            encode_parts(record.position, record.epoch, record.txn, record.time_ms, &record.body, &mut a.buffer);
            a.last_position = record.position;
            a.buffer.len()
        };
        if buffered >= self.options.buffer_flush_bytes {
            self.request_flush();
        }
        Ok(record.position)
    }

    /// Every chunk of records written from now on, as written (before its fsync). A
    /// receiver that falls [`FEED_CAPACITY`] chunks behind gets `Lagged` and should reread
    /// the journal files.
    pub fn subscribe_feed(&self) -> tokio::sync::broadcast::Receiver<Arc<FeedChunk>> {
        self.feed.subscribe()
    }

    /// A receiver of the durable position.
    pub fn watch_durable(&self) -> watch::Receiver<Position> {
        self.durable.subscribe()
    }

    pub fn last_position(&self) -> Position {
        self.append.lock().last_position
    }

    pub fn durable_position(&self) -> Position {
        *self.durable.borrow()
    }

    pub fn buffered_bytes(&self) -> usize {
        self.append.lock().buffer.len()
    }

    /// fdatasync calls made so far (for metrics and group-commit tests).
    pub fn sync_count(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// `Err` once an I/O error has failed the journal: nothing more may be written. The
    /// error every call returns from then on.
    pub fn check_failed(&self) -> Result<()> {
        if !self.failed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let why = self.failure.lock().clone().unwrap_or_default();
        Err(EngineError::JournalFailed {
            dir: self.options.dir.clone(),
            detail: format!("the journal failed earlier and accepts no more writes; the engine must stop ({why})"),
        })
    }

    /// Fails the journal for good after an I/O error: every later call is refused, every
    /// waiter wakes to the error, and the process is told to stop ([`crate::fatal`]).
    pub(super) fn fail(&self, error: EngineError) -> EngineError {
        let failed = EngineError::JournalFailed {
            dir: self.options.dir.clone(),
            detail: format!("{error} (the journal accepts no more writes; the engine must stop)"),
        };
        tracing::error!("fatal: {failed}");
        *self.failure.lock() = Some(error.to_string());
        self.failed.store(true, Ordering::SeqCst);
        // Wake every waiter so it sees the failure.
        self.durable.send_modify(|_| {});
        crate::fatal::report(failed.to_string());
        failed
    }

    /// Group commit: one write and one fdatasync for everything buffered.
    pub fn flush(&self) -> Result<Position> {
        let mut io = self.io.lock();
        self.flush_locked(&mut io)
    }

    /// Blocking: returns once `position` is durable, flushing if needed.
    pub fn flush_to(&self, position: Position) -> Result<()> {
        if position <= self.durable_position() {
            return self.check_failed();
        }
        let mut io = self.io.lock();
        if position <= io.durable {
            return self.check_failed();
        }
        let durable = self.flush_locked(&mut io)?;
        assert!(durable >= position, "flush_to({position}) beyond the last appended position {durable}");
        Ok(())
    }

    pub(super) fn flush_locked(&self, io: &mut IoState) -> Result<Position> {
        self.check_failed()?;
        let mut buf = std::mem::take(&mut io.spare);
        buf.clear();
        let last = {
            let mut a = self.append.lock();
            std::mem::swap(&mut a.buffer, &mut buf);
            a.last_position
        };
        if buf.is_empty() {
            io.spare = buf;
            return Ok(io.durable);
        }
        let count = validate_buffer(&buf, io.durable + 1, last);
        // Mirror members get the records before our own fsync, so their fsync overlaps
        // ours; a commit still waits for both (docs/design/mirroring.md).
        if self.feed.receiver_count() > 0 {
            let chunk = FeedChunk { first: io.durable + 1, last, frames: buf.clone() };
            let _ = self.feed.send(Arc::new(chunk));
        }
        let result = self.write_and_sync(io, &buf, count, last);
        io.spare = buf;
        match result {
            Ok(()) => {
                io.durable = last;
                self.durable.send_replace(last);
                Ok(last)
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn write_and_sync(&self, io: &mut IoState, buf: &[u8], count: u64, last: Position) -> Result<()> {
        if io.end >= self.options.file_size_limit && io.records > 0 {
            self.rotate(io)?;
        }
        let end = io.end + buf.len() as u64;
        if end > io.allocated {
            let chunk = preallocation_chunk(&self.options);
            let allocated = end.div_ceil(chunk) * chunk;
            io.file.set_len(allocated).map_err(|e| io_error(&io.path, "preallocating", e))?;
            io.allocated = allocated;
        }
        io.file.write_all_at(io.end, buf).map_err(|e| io_error(&io.path, "writing records", e))?;
        // Noted before the sync: a reader only asks for positions already durable.
        self.seek.lock().note(io.sequence, last + 1 - count, io.end);
        let started = std::time::Instant::now();
        io.file.sync_data().map_err(|e| io_error(&io.path, "fdatasync", e))?;
        self.commit_stats.sync_seconds.observe(started.elapsed().as_secs_f64());
        self.commit_stats.batch_records.observe(count as f64);
        self.syncs.fetch_add(1, Ordering::Relaxed);
        io.end = end;
        io.records += count;
        let mut segments = self.segments.lock();
        let current = segments.last_mut().expect("the journal always has a current segment");
        current.bytes = end;
        current.records = io.records;
        current.last_position = Some(last);
        Ok(())
    }

    /// Seals the current segment (cuts its preallocated tail) and starts the next one.
    fn rotate(&self, io: &mut IoState) -> Result<()> {
        io.file.set_len(io.end).map_err(|e| io_error(&io.path, "trimming the closed segment", e))?;
        io.file.sync_data().map_err(|e| io_error(&io.path, "syncing the closed segment", e))?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        let sequence = io.sequence + 1;
        let first_position = io.durable + 1;
        let preallocate = preallocation_chunk(&self.options);
        let (file, path, created_ms) =
            create_segment(self.vfs.as_ref(), &self.options.dir, sequence, first_position, self.epoch(), preallocate)?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        tracing::info!(path = %path.display(), first_position, "journal: new segment");
        *io = IoState {
            file,
            path: path.clone(),
            sequence,
            end: HEADER_BYTES,
            allocated: HEADER_BYTES.max(preallocate),
            records: 0,
            durable: io.durable,
            spare: std::mem::take(&mut io.spare),
        };
        self.segments.lock().push(SegmentInfo {
            path,
            sequence,
            first_position,
            last_position: None,
            bytes: HEADER_BYTES,
            created_ms,
            records: 0,
        });
        Ok(())
    }

    /// Wakes the writer thread to flush soon.
    pub fn request_flush(&self) {
        self.signal.lock().requested = true;
        self.wake.notify_all();
    }

    /// Waits until `position` is durable (the writer thread does the flush).
    pub async fn wait_durable(&self, position: Position) -> Result<()> {
        let mut rx = self.durable.subscribe();
        loop {
            self.check_failed()?;
            if *rx.borrow_and_update() >= position {
                return Ok(());
            }
            self.request_flush();
            // The sender lives in `self`, so it cannot be dropped while we wait.
            let _ = rx.changed().await;
        }
    }

    /// Records with position >= `from`, up to the durable position when called.
    pub fn read_from(&self, from: Position) -> Result<JournalReader> {
        self.file_reads.fetch_add(1, Ordering::Relaxed);
        let upto = self.durable_position();
        let segments = self.segments();
        let start = segments
            .iter()
            .rfind(|s| s.first_position <= from)
            .and_then(|s| self.seek.lock().before(s.sequence, from))
            .map(|(_, offset)| offset);
        JournalReader::new(self.vfs.clone(), segments, from, upto, start)
    }

    /// The group-commit histograms (shared: `/metrics` registers these very ones).
    pub fn commit_stats(&self) -> &CommitStats {
        &self.commit_stats
    }

    /// The current segment's seek points, (position, offset) (tests and diagnostics).
    pub fn seek_points(&self) -> Vec<(Position, u64)> {
        self.seek.lock().points.clone()
    }

    /// How many times records were read back from the journal files (`read_from`): a
    /// mirror primary streaming live should not (diagnostics, and the shipping tests).
    pub fn file_reads(&self) -> u64 {
        self.file_reads.load(Ordering::Relaxed)
    }

    /// The file system this journal writes through (the instance's: real, or simulated in
    /// crash tests); the mirror's state file is written through it too.
    pub fn vfs(&self) -> Arc<dyn Vfs> {
        self.vfs.clone()
    }

    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.segments.lock().clone()
    }

    /// Removes whole segments all of whose records are below `keep_from`, oldest first,
    /// never the current one; fsyncs the directory; returns the removed paths.
    ///
    /// The directory is fsynced after each removal, so a power cut can only bring back the
    /// oldest remaining file, never leave a hole in the positions.
    pub fn purge(&self, keep_from: Position) -> Result<Vec<PathBuf>> {
        let _io = self.io.lock();
        let snapshot = self.segments();
        let dir = &self.options.dir;
        let mut removed = Vec::new();
        let mut result = Ok(());
        for pair in snapshot.windows(2) {
            // Every record of pair[0] is below the next segment's first position.
            if pair[1].first_position > keep_from {
                break;
            }
            let path = &pair[0].path;
            if let Err(e) = self.vfs.remove_file(path) {
                result = Err(io_error(path, "removing", e));
                break;
            }
            self.segments.lock().remove(0);
            removed.push(path.clone());
            tracing::info!(path = %path.display(), "journal: purged segment");
            if let Err(e) = self.vfs.sync_dir(dir) {
                result = Err(io_error(dir, "syncing the journal directory after a purge", e));
                break;
            }
        }
        result.map(|()| removed)
    }
}

/// Checks a buffer right before it is written: whole frames, valid CRCs, positions
/// `first..=last` in order. A failure is a bug, so it panics. Returns the record count.
fn validate_buffer(buf: &[u8], first: Position, last: Position) -> u64 {
    let mut at = 0;
    let mut expected = first;
    while at < buf.len() {
        let Frame::Record(body) = check_frame(&buf[at..]) else {
            panic!("journal buffer holds a bad frame at byte {at} before writing");
        };
        let position = u64::from_le_bytes(body[0..8].try_into().expect("8 bytes"));
        assert_eq!(position, expected, "journal buffer positions out of order before writing");
        expected += 1;
        at += FRAME_HEADER_BYTES + body.len();
    }
    assert_eq!(expected - 1, last, "journal buffer does not end at the last appended position");
    expected - first
}
