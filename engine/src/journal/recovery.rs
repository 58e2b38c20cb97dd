//! Opening a journal: find the segments, order them by header sequence, validate every
//! record, cut a torn tail off the last segment, check positions are contiguous.

use super::segment::{corrupt, io_error, is_segment_file_name, scan_segment, ChunkReader, Scan, HEADER_BYTES};
use super::writer::{create_segment, preallocation_chunk, AppendState, IoState, Journal, Signal};
use super::{JournalOptions, SegmentInfo};
use crate::error::Result;
use crate::vfs::{OpenMode, Vfs, VfsFile};
use parking_lot::{Condvar, Mutex};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use tokio::sync::watch;

/// A validated segment.
pub(super) struct Found {
    pub path: PathBuf,
    pub file: Arc<dyn VfsFile>,
    pub scan: Scan,
    pub last_epoch: u64,
}

impl Found {
    pub fn info(&self) -> SegmentInfo {
        SegmentInfo {
            path: self.path.clone(),
            sequence: self.scan.header.sequence,
            first_position: self.scan.header.first_position,
            last_position: self.scan.last_position,
            bytes: self.scan.end,
            created_ms: self.scan.header.created_ms,
            records: self.scan.records,
        }
    }
}

/// Whether a file with an unreadable header is a segment whose creation a crash
/// interrupted: no non-zero byte after the header area (records go in only once the
/// header is durable).
fn interrupted_creation(reader: &mut ChunkReader) -> Result<bool> {
    let mut at = HEADER_BYTES;
    while at < reader.len() {
        let w = reader.window(at, 1)?;
        if w.iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += w.len() as u64;
    }
    Ok(true)
}

/// Finds and validates every segment of `dir`, in sequence order. `writable`: open the
/// files for writing and remove leftovers of an interrupted segment creation; otherwise
/// only warn about them.
pub(super) fn find_segments(vfs: &dyn Vfs, dir: &Path, writable: bool) -> Result<Vec<Found>> {
    let entries = vfs.list(dir).map_err(|e| io_error(dir, "listing the journal directory", e))?;
    let mut headers = Vec::new();
    let mut removed_any = false;
    for path in entries.into_iter().filter(|p| is_segment_file_name(p)) {
        let mode = if writable { OpenMode::ReadWrite } else { OpenMode::ReadOnly };
        let file = vfs.open(&path, mode).map_err(|e| io_error(&path, "opening", e))?;
        let mut reader = ChunkReader::new(file.clone(), &path)?;
        match reader.read_header() {
            Ok(header) => headers.push((header.sequence, path, file)),
            Err((offset, detail)) => {
                if !interrupted_creation(&mut reader)? {
                    return Err(corrupt(&path, offset, detail));
                }
                tracing::warn!(path = %path.display(), "journal: segment creation was interrupted ({detail}); it holds no record");
                if writable {
                    vfs.remove_file(&path).map_err(|e| io_error(&path, "removing", e))?;
                    removed_any = true;
                }
            }
        }
    }
    if removed_any {
        vfs.sync_dir(dir).map_err(|e| io_error(dir, "syncing the journal directory", e))?;
    }
    headers.sort_by_key(|(sequence, _, _)| *sequence);
    for pair in headers.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(corrupt(
                &pair[1].1,
                16,
                format!("sequence {} also used by {}", pair[1].0, pair[0].1.display()),
            ));
        }
    }
    let count = headers.len();
    let mut found: Vec<Found> = Vec::with_capacity(count);
    for (i, (_, path, file)) in headers.into_iter().enumerate() {
        let mut reader = ChunkReader::new(file.clone(), &path)?;
        let mut last_epoch = 0;
        let scan = scan_segment(&mut reader, &path, i + 1 == count, &mut |_, view| {
            last_epoch = view.epoch;
            Ok(())
        })?;
        let last_epoch = if scan.records > 0 { last_epoch } else { scan.header.epoch };
        if let Some(prev) = found.last() {
            let prev_end = prev.scan.last_position.unwrap_or(prev.scan.header.first_position - 1);
            if scan.header.first_position != prev_end + 1 {
                return Err(corrupt(
                    &path,
                    24,
                    format!(
                        "first position {} does not follow the previous segment {}, which ends at {prev_end}",
                        scan.header.first_position,
                        prev.path.display()
                    ),
                ));
            }
        }
        found.push(Found { path, file, scan, last_epoch });
    }
    Ok(found)
}

/// The state of the segment to write next: the last one found (its torn tail cut off), or
/// a new first segment in an empty directory (then pushed onto `found`).
pub(super) fn current_segment(vfs: &dyn Vfs, options: &JournalOptions, found: &mut Vec<Found>) -> Result<IoState> {
    let dir = &options.dir;
    Ok(match found.last_mut() {
        Some(last) => {
            if let Some((offset, detail)) = &last.scan.torn {
                tracing::warn!(path = %last.path.display(), offset, "journal: torn tail cut off ({detail})");
                last.file.set_len(last.scan.end).map_err(|e| io_error(&last.path, "cutting the torn tail", e))?;
                last.file.sync_data().map_err(|e| io_error(&last.path, "syncing the cut", e))?;
                last.scan.file_len = last.scan.end;
                last.scan.torn = None;
            }
            let durable = last.scan.last_position.unwrap_or(last.scan.header.first_position - 1);
            IoState {
                file: last.file.clone(),
                path: last.path.clone(),
                sequence: last.scan.header.sequence,
                end: last.scan.end,
                allocated: last.scan.file_len,
                records: last.scan.records,
                durable,
                spare: Vec::new(),
            }
        }
        None => {
            let preallocate = preallocation_chunk(options);
            let (file, path, created_ms) = create_segment(vfs, dir, 1, 1, 0, preallocate)?;
            tracing::info!(path = %path.display(), "journal: created the first segment");
            let mut reader = ChunkReader::new(file.clone(), &path)?;
            let scan = scan_segment(&mut reader, &path, true, &mut |_, _| Ok(()))?;
            debug_assert_eq!(scan.header.created_ms, created_ms);
            found.push(Found { path: path.clone(), file: file.clone(), scan, last_epoch: 0 });
            IoState {
                file,
                path,
                sequence: 1,
                end: HEADER_BYTES,
                allocated: HEADER_BYTES.max(preallocate),
                records: 0,
                durable: 0,
                spare: Vec::new(),
            }
        }
    })
}

pub(super) fn open(vfs: Arc<dyn Vfs>, options: JournalOptions) -> Result<Journal> {
    let dir = options.dir.clone();
    vfs.create_dir_all(&dir).map_err(|e| io_error(&dir, "creating the journal directory", e))?;
    super::truncate::finish_pending(vfs.as_ref(), &dir)?;
    let mut found = find_segments(vfs.as_ref(), &dir, true)?;
    let io = current_segment(vfs.as_ref(), &options, &mut found)?;
    let epoch = found.last().map_or(0, |f| f.last_epoch);
    let segments: Vec<SegmentInfo> = found.iter().map(Found::info).collect();
    let durable = io.durable;
    let (durable_tx, _) = watch::channel(durable);
    Ok(Journal {
        vfs,
        options,
        epoch: AtomicU64::new(epoch),
        append: Mutex::new(AppendState { buffer: Vec::new(), last_position: durable }),
        io: Mutex::new(io),
        segments: Mutex::new(segments),
        durable: durable_tx,
        failed: AtomicBool::new(false),
        failure: Mutex::new(None),
        signal: Mutex::new(Signal::default()),
        wake: Condvar::new(),
        syncs: AtomicU64::new(0),
        feed: tokio::sync::broadcast::channel(super::writer::FEED_CAPACITY).0,
        seek: Mutex::new(super::writer::SeekIndex::default()),
        file_reads: AtomicU64::new(0),
        commit_stats: super::writer::CommitStats::default(),
    })
}
